/**
 * Every registered balancing method trains with every registered architecture (both lists
 * from the registries): three steps each on a tiny learnable dataset (per-task path,
 * diagnostics on), no NaN anywhere, and the loss on a held-out batch moved.
 *
 * The fast path of the loss-weighting methods (EW, UW, DWA, RLW: `diagnostics:
 * false` runs the weighted-sum program, one backward of sum_t w_t L_t) gives
 * the same parameters, method state and generator state as the per-task path
 * (`diagnostics: true`: T per-task gradients -> combine) from the same start;
 * a gradient method ignores `diagnostics: false`.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { createModel, MODEL_NAMES, type Model } from "../../src/model/index.ts";
import { modelNames } from "../../src/model/registry.ts";
import { GradWorkspace, lossesOnly } from "../../src/grad/pertask.ts";
import { createAdam } from "../../src/optim/adam.ts";
import { createMethod, getMethod, methodNames } from "../../src/balance/registry.ts";
import type { BalancingMethod, JsonValue } from "../../src/balance/types.ts";
import type { FloatArray } from "../../src/graph/graph.ts";
import { trainStep, type StepResult } from "../../src/train/step.ts";
import { Rng } from "../../src/util/rng.ts";
import { TINY_FIELDS, learnableBatch, randomBatch } from "../grad/fixtures.ts";

const T = 3;
const SMALL = { embDim: 3, expertUnits: [6, 4], bottomUnits: [6, 4], towerUnits: [4], seed: 5 };

for (const arch of modelNames()) {
  test(`every method x ${arch}: 3 steps with varying batches, finite losses and parameters, the held-out loss moved`, async () => {
    // one model per architecture (its compiled programs are reused), reset to the same start for every method
    const model = createModel(arch, { fields: TINY_FIELDS, numTasks: T }, SMALL);
    const init = model.getParams();
    const held = learnableBatch(TINY_FIELDS, T, 32, 999);
    const before = Float64Array.from(await lossesOnly(new GradWorkspace(model), held, "eval", 0));
    for (const l of before) assert.ok(Number.isFinite(l), `${arch}: initial loss ${l}`);
    for (const name of methodNames()) {
      model.setParams(init);
      const opt = createAdam(model, { lr: 0.01 });
      const method = createMethod(name, T);
      const rng = new Rng(9);
      // batches of different sizes have different unique ids, so the flat vector length changes
      for (const [s, B] of [[0, 24], [1, 9], [2, 17]] as const) {
        const r = await trainStep(model, opt, method, learnableBatch(TINY_FIELDS, T, B, 100 + s), { step: s, epoch: 0, rng, diagnostics: true });
        for (const l of r.losses) assert.ok(Number.isFinite(l), `${name}/${arch}: loss ${l}`);
        assert.equal(r.balance.direction.length, r.dim, `${name}/${arch}: direction length`);
        assert.equal(r.balance.diagnostics.norms.length, T, `${name}/${arch}: combine's diagnostics (T norms)`);
        for (const x of r.balance.diagnostics.norms) assert.ok(Number.isFinite(x), `${name}/${arch}: norm ${x}`);
      }
      method.endEpoch?.(Float64Array.of(0.6, 0.5, 0.4));
      let moved = false;
      for (const [k, v] of Object.entries(model.getParams())) {
        for (const x of v) assert.ok(Number.isFinite(x), `${name}/${arch}: ${k} is not finite`);
        if (!moved && v.some((x, i) => x !== init[k]![i])) moved = true;
      }
      assert.ok(moved, `${name}/${arch}: no parameter changed`);
      const after = await lossesOnly(new GradWorkspace(model), held, "eval", 0);
      for (const l of after) assert.ok(Number.isFinite(l), `${name}/${arch}: held-out loss ${l}`);
      const change = Math.max(...before.map((l, t) => Math.abs(after[t]! - l) / l));
      assert.ok(change > 1e-6, `${name}/${arch}: the held-out loss did not move (relative change ${change})`);
    }
  });
}

/** Adam with eps = 1: nearly linear in the gradient (see compareParams). */
const ADAM = { lr: 0.1, eps: 1 };
const STEPS = 3;

interface Run {
  model: Model;
  init: Record<string, FloatArray>;
  method: BalancingMethod;
  rng: Rng;
  results: StepResult[];
}

/** Three float64 steps (dropout on) from a fixed start, seed and generator state; DWA gets a loss history first. */
async function run(arch: string, name: string, diagnostics: boolean): Promise<Run> {
  const model = createModel(arch, { fields: TINY_FIELDS, numTasks: T }, { ...SMALL, dtype: "float64", dropout: 0.2 });
  const init = model.getParams();
  const opt = createAdam(model, ADAM);
  const method = createMethod(name, T);
  method.endEpoch?.(Float64Array.of(0.7, 0.6, 0.5));
  method.endEpoch?.(Float64Array.of(0.6, 0.66, 0.35));
  const rng = new Rng(9);
  const results: StepResult[] = [];
  for (let s = 0; s < STEPS; s++) results.push(await trainStep(model, opt, method, randomBatch(TINY_FIELDS, T, 16, 200 + s), { step: s, epoch: 0, rng, diagnostics }));
  // end of the "epoch": DWA's next weights (and its state) depend on these losses
  const mean = new Float64Array(T);
  for (const r of results) r.losses.forEach((l, t) => (mean[t] = mean[t]! + l / STEPS));
  method.endEpoch?.(mean);
  return { model, init, method, rng, results };
}

/** Every number of two JSON states agrees to `rel` (same structure otherwise). */
function sameState(a: JsonValue, b: JsonValue, rel: number, path: string): void {
  if (typeof a === "number" && typeof b === "number") {
    assert.ok(Math.abs(a - b) <= rel * (1 + Math.abs(a)), `${path}: ${a} vs ${b}`);
  } else if (Array.isArray(a) && Array.isArray(b)) {
    assert.equal(a.length, b.length, `${path}: length`);
    a.forEach((x, i) => sameState(x, b[i]!, rel, `${path}[${i}]`));
  } else if (a && b && typeof a === "object" && typeof b === "object" && !Array.isArray(a) && !Array.isArray(b)) {
    assert.deepEqual(Object.keys(a).sort(), Object.keys(b).sort(), `${path}: keys`);
    for (const k of Object.keys(a)) sameState(a[k]!, b[k]!, rel, `${path}.${k}`);
  } else assert.deepEqual(a, b, path);
}

/**
 * Both paths' parameters after the steps, compared relative to how far the
 * parameters moved. Where the per-task path stays in float64 (no shared
 * parameter: the flat vector is empty and every gradient reaches Adam as
 * taskScale_t * g_t in float64), they agree to 1e-12 (measured ~4e-16). Where
 * shared parameters exist, the per-task path hands the method float32 flat
 * vectors and gets a float32 direction back (BalanceInput's contract), so the
 * shared update carries float32 rounding (half an ulp: 6e-8): bound 2e-7
 * (measured <= 3e-8). Adam runs with eps = 1, nearly linear in the gradient:
 * with the default eps its per-entry normalisation amplifies that rounding
 * wherever the tasks' gradients cancel (measured 7e-7 on mmoe). Any real
 * divergence (other weights, masks or rows) is O(1) of the movement.
 */
function compareParams(slow: Run, fast: Run, float64Path: boolean, label: string): number {
  const pa = slow.model.getParams();
  const pb = fast.model.getParams();
  let diff2 = 0;
  let move2 = 0;
  let maxMove = 0;
  let maxDiff = 0;
  let where = "";
  let n = 0;
  for (const [k, x] of Object.entries(pa)) {
    const y: FloatArray = pb[k]!;
    const x0 = slow.init[k]!;
    assert.deepEqual(Array.from(fast.init[k]!), Array.from(x0), `${label} ${k}: same start`);
    assert.equal(y.length, x.length, `${label} ${k}: length`);
    for (let i = 0; i < x.length; i++) {
      const d = Math.abs(x[i]! - y[i]!);
      const m = Math.abs(x[i]! - x0[i]!);
      diff2 += d * d;
      move2 += m * m;
      maxMove = Math.max(maxMove, m);
      if (d > maxDiff) [maxDiff, where] = [d, `${k}[${i}] (per-task path ${x[i]}, fast path ${y[i]})`];
      n++;
    }
  }
  const tol = float64Path ? 1e-12 : 2e-7;
  assert.ok(maxMove > 1e-3, `${label}: the parameters barely moved (${maxMove})`);
  assert.ok(Math.sqrt(diff2 / move2) <= tol, `${label}: parameters differ by ${Math.sqrt(diff2 / move2).toExponential(2)} of their movement`);
  assert.ok(maxDiff <= tol * maxMove, `${label}: largest difference ${maxDiff.toExponential(2)} at ${where}, movement up to ${maxMove.toExponential(2)}`);
  return n;
}

/** Methods that offer the gradient-free path (LossWeighting), and the gradient methods: from the registry. */
const FAST_PATH = methodNames().filter((n) => createMethod(n, T).lossWeighting !== undefined);
const GRADIENT = methodNames().filter((n) => getMethod(n).kind === "gradient");

test("the registry has methods of both groups (the loops below are not vacuous)", () => {
  assert.ok(FAST_PATH.length >= 1 && GRADIENT.length >= 1, `fast path: ${FAST_PATH.join(", ")}; gradient: ${GRADIENT.join(", ")}`);
});

for (const name of FAST_PATH) {
  test(`fast path (diagnostics: false, weighted-sum program) = per-task path after ${STEPS} steps, every architecture: ${name}`, async () => {
    assert.ok(createMethod(name, T).lossWeighting, `${name} offers lossWeighting`);
    let compared = 0;
    for (const arch of MODEL_NAMES) {
      const slow = await run(arch, name, true);
      const fast = await run(arch, name, false);
      const label = `${name}/${arch}`;
      const float64Path = slow.results.every((r) => r.dim === 0);
      for (let s = 0; s < STEPS; s++) {
        const a = slow.results[s]!;
        const b = fast.results[s]!;
        // the fast path really ran (no per-task gradients, no diagnostics); the per-task path ran combine
        assert.equal(b.dim, 0, `${label} step ${s}: fast path dim`);
        assert.equal(b.balance.diagnostics.norms.length, 0, `${label} step ${s}: fast path computes no diagnostics`);
        assert.equal(a.balance.diagnostics.norms.length, T, `${label} step ${s}: per-task path diagnostics`);
        assert.ok(b.balance.weights, `${label}: fast path reports its weights`);
        assert.ok(a.balance.weights, `${label}: per-task path reports its weights`);
        for (let t = 0; t < T; t++) {
          const rel = s === 0 || float64Path ? 1e-12 : 1e-7;
          assert.ok(Math.abs(a.losses[t]! - b.losses[t]!) <= rel * a.losses[t]!, `${label} step ${s} loss ${t}: ${a.losses[t]} vs ${b.losses[t]}`);
          assert.ok(Math.abs(a.balance.weights[t]! - b.balance.weights[t]!) <= 1e-9 * Math.abs(a.balance.weights[t]!), `${label} step ${s} weight ${t}: ${a.balance.weights[t]} vs ${b.balance.weights[t]}`);
          assert.ok(Math.abs(a.balance.taskScale[t]! - b.balance.taskScale[t]!) <= 1e-9 * Math.abs(a.balance.taskScale[t]!), `${label} step ${s} taskScale ${t}`);
        }
        assert.equal(a.penalty === 0, b.penalty === 0, `${label} step ${s}: penalty applied on both paths`);
      }
      compared += compareParams(slow, fast, float64Path, label);
      sameState(slow.method.getState(), fast.method.getState(), float64Path ? 1e-12 : 1e-9, `${label} method state`);
      assert.deepEqual(fast.rng.getState(), slow.rng.getState(), `${label}: generator state`);
    }
    assert.ok(compared > 1000, `only ${compared} parameters compared`);
  });
}

test("a gradient method ignores diagnostics: false (per-task path, T norms, same update)", async () => {
  for (const name of GRADIENT) {
    const method = createMethod(name, T);
    assert.equal(method.lossWeighting, undefined, `${name} has no gradient-free path`);
    const slow = await run("mmoe", name, true);
    const fast = await run("mmoe", name, false);
    for (const [s, r] of fast.results.entries()) {
      assert.equal(r.balance.diagnostics.norms.length, T, `${name} step ${s}: T norms`);
      for (const x of r.balance.diagnostics.norms) assert.ok(Number.isFinite(x) && x > 0, `${name} step ${s}: norm ${x}`);
      assert.equal(r.dim, slow.results[s]!.dim, `${name} step ${s}: flat vector length`);
      assert.ok(r.dim > 0, `${name} step ${s}: per-task vectors were built`);
    }
    const pa = slow.model.getParams();
    const pb = fast.model.getParams();
    for (const k of Object.keys(pa)) assert.deepEqual(Array.from(pb[k]!), Array.from(pa[k]!), `${name}: ${k}`);
  }
});
