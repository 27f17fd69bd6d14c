/**
 * Balancing on the shared representation (`balanceAt: "representation"`, src/grad/representation.ts):
 * - the per-task gradients at the representation equal central finite differences of each task
 *   loss w.r.t. the representation (float64, train mode with fixed masks; Shared-Bottom and MMoE),
 *   probed through a test architecture that adds a shared offset δ_j to each representation tensor
 *   (∂L/∂δ_j = ∂L/∂z_j at δ = 0);
 * - with EW (a linear combination) `representation` and `parameters` give the same update, for
 *   every registered architecture (Σ_t ∂L_t/∂θ = J_trunkᵀ Σ_t ∂L_t/∂z);
 * - with GradCraft and MGDA the update differs from `parameters` but trains (finite, loss moves);
 * - every registered method with every registered architecture trains three steps with
 *   `representation`, except the methods REPRESENTATION_REFUSALS lists, which are refused with a
 *   message naming the method and the option.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { createModel, MODEL_NAMES, type Model } from "../../src/model/index.ts";
import { Model as ModelClass } from "../../src/model/model.ts";
import { modelNames } from "../../src/model/registry.ts";
import type { Architecture } from "../../src/model/types.ts";
import { GradWorkspace, lossesOnly } from "../../src/grad/pertask.ts";
import { REPRESENTATION_REFUSALS, checkBalanceAt, representationGrads, type BalanceAt } from "../../src/grad/representation.ts";
import { createAdam } from "../../src/optim/adam.ts";
import { createMethod, getMethod, methodNames } from "../../src/balance/registry.ts";
import type { FloatArray } from "../../src/graph/graph.ts";
import { trainStep } from "../../src/train/step.ts";
import { resolveTrainOptions } from "../../src/config/train-options.ts";
import { Rng } from "../../src/util/rng.ts";
import { TINY_FIELDS, TINY_OPTS, learnableBatch, randomBatch } from "./fixtures.ts";

const T = 3;
const B = 6;
const H = 1e-5;

function makeModel(name: string, extra: Record<string, unknown> = {}): Model {
  const m = createModel(name, { fields: TINY_FIELDS, numTasks: T }, { ...TINY_OPTS, dtype: "float64", dropout: 0.2, embInitStd: 0.5, ...extra });
  // random biases move every unit off the ReLU kink (see fd.test.ts)
  const rng = new Rng(99);
  for (const p of m.dense) if (p.name.endsWith(".b")) for (let i = 0; i < p.data.length; i++) p.data[i] = 0.3 * rng.normal();
  return m;
}

/** `model` with a shared offset δ_j [shape of z_j] (zero) added to each representation tensor z_j. */
function withOffsets(model: Model, shapes: readonly number[][]): { probe: Model; offsets: Float64Array[] } {
  const arch = model.arch;
  const base = arch.dense.length;
  const offsets = shapes.map((s) => new Float64Array(s.reduce((a, b) => a * b, 1)));
  const dense = [...arch.dense, ...shapes.map((shape, j) => ({ name: `delta${j}`, shape: [...shape], group: "shared" as const, decay: false, data: offsets[j]! }))];
  const probeArch: Architecture = {
    name: arch.name,
    numTasks: arch.numTasks,
    dense,
    tables: arch.tables,
    trunk: (p, xs, ctx) => arch.trunk(p, xs, ctx).map((z, j) => ctx.g.add(z, p[base + j]!)),
    head: (t, p, feats, xs, ctx) => arch.head(t, p, feats, xs, ctx),
  };
  return { probe: new ModelClass(probeArch, model.fields, { dropout: model.dropout, embDim: model.embDim, dtype: model.dtype }), offsets };
}

for (const name of ["shared-bottom", "mmoe"]) {
  test(`representation gradients equal finite differences of each task loss w.r.t. the representation (float64, train mode): ${name}`, async () => {
    const model = makeModel(name);
    const batch = randomBatch(TINY_FIELDS, T, B, 11);
    const seed = 1234;
    const ws0 = new GradWorkspace(model);
    const r0 = await representationGrads(ws0, batch, { mode: "train", seed });
    const sizes = r0.sizes.slice();
    const expectShapes = name === "shared-bottom" ? [[B, 4]] : Array.from({ length: T + 1 }, () => [B, 4]);
    assert.deepEqual(sizes, expectShapes.map((s) => s[0]! * s[1]!), `${name}: representation sizes`);
    const rep0 = r0.rep.map((row) => row.map((a) => a?.slice() ?? null));
    const { probe, offsets } = withOffsets(model, expectShapes);
    const ws = new GradWorkspace(probe);
    const r = await representationGrads(ws, batch, { mode: "train", seed });
    const rep = r.rep.map((row) => row.map((a) => a?.slice() ?? null));
    // adding δ = 0 changes nothing: the same gradients as the model itself
    for (let t = 0; t < T; t++) for (let j = 0; j < sizes.length; j++) assert.deepEqual(Array.from(rep[t]![j]!), Array.from(rep0[t]![j]!), `${name}: task ${t} tensor ${j}`);
    const rng = new Rng(5);
    let probes = 0;
    let nonzero = 0;
    for (let j = 0; j < sizes.length; j++) {
      for (let k = 0; k < 8; k++) {
        const i = rng.int(sizes[j]!);
        const d = offsets[j]!;
        d[i] = H;
        const lp = await lossesOnly(ws, batch, "train", seed);
        d[i] = -H;
        const lm = await lossesOnly(ws, batch, "train", seed);
        d[i] = 0;
        for (let t = 0; t < T; t++) {
          const num = (lp[t]! - lm[t]!) / (2 * H);
          const an = rep[t]![j]?.[i] ?? 0;
          if (Math.abs(an) > 1e-6) nonzero++;
          assert.ok(Math.abs(num - an) <= 1e-8 + 1e-5 * Math.abs(num), `${name} z${j}[${i}] task ${t}: analytic ${an} vs numeric ${num}`);
          probes++;
        }
      }
    }
    assert.ok(probes >= 24 && nonzero >= 12, `${name}: ${probes} probes, ${nonzero} non-zero (the check would be vacuous)`);
  });
}

const SMALL = { embDim: 3, expertUnits: [6, 4], bottomUnits: [6, 4], towerUnits: [4], seed: 5 };

/** Three float64 steps (dropout on) with Adam eps = 1 (nearly linear in the gradient). */
async function steps(arch: string, method: string, balanceAt: BalanceAt, extra: Record<string, unknown> = {}): Promise<{ model: Model; init: Record<string, FloatArray>; losses: number[][] }> {
  const model = createModel(arch, { fields: TINY_FIELDS, numTasks: T }, { ...SMALL, dtype: "float64", dropout: 0.2, ...extra });
  const init = model.getParams();
  const opt = createAdam(model, { lr: 0.1, eps: 1 });
  const m = createMethod(method, T);
  const rng = new Rng(9);
  const losses: number[][] = [];
  for (let s = 0; s < 3; s++) {
    const r = await trainStep(model, opt, m, randomBatch(TINY_FIELDS, T, 16, 200 + s), { step: s, epoch: 0, rng, diagnostics: true, balanceAt });
    losses.push(Array.from(r.losses));
  }
  return { model, init, losses };
}

/** max |a - b| / max |a - init| over every parameter (how far apart, relative to how far they moved). */
function relDiff(a: Model, b: Model, init: Record<string, FloatArray>): { rel: number; moved: number } {
  const pa = a.getParams();
  const pb = b.getParams();
  let diff = 0;
  let moved = 0;
  for (const [k, x] of Object.entries(pa)) {
    const y = pb[k]!;
    const x0 = init[k]!;
    for (let i = 0; i < x.length; i++) {
      diff = Math.max(diff, Math.abs(x[i]! - y[i]!));
      moved = Math.max(moved, Math.abs(x[i]! - x0[i]!));
    }
  }
  return { rel: diff / moved, moved };
}

for (const arch of modelNames()) {
  test(`EW: balancing at the representation gives the parameters' update (three steps, float64): ${arch}`, async () => {
    const a = await steps(arch, "ew", "parameters");
    const b = await steps(arch, "ew", "representation");
    a.losses.forEach((l, s) => l.forEach((v, t) => assert.ok(Math.abs(v - b.losses[s]![t]!) <= 1e-6 * (1 + v), `${arch} step ${s} task ${t}: loss ${b.losses[s]![t]} vs ${v}`)));
    const { rel, moved } = relDiff(a.model, b.model, a.init);
    assert.ok(moved > 1e-3, `${arch}: the parameters did not move (${moved})`);
    // both paths hand the method float32 vectors: float32 rounding of the shared part only
    if (process.env.REP_DEBUG) console.log(arch, rel);
    assert.ok(rel <= 2e-6, `${arch}: EW at the representation differs from EW at the parameters by ${rel} of the movement`);
  });
}

test("every loss weighting whose weights do not read the gradients (a lossWeighting or lossAware path): the same update at the representation as at the parameters (mmoe, ple: heads that read x directly)", async () => {
  // direction Σ w_t g_t with taskScale w; GradNorm's weights follow gradient norms, which differ at the representation
  const names = methodNames().filter((n) => {
    const m = createMethod(n, T);
    return getMethod(n).kind === "loss-weighting" && (m.lossWeighting !== undefined || m.lossAware !== undefined);
  });
  assert.ok(names.length >= 4, `only ${names.length} loss weightings`);
  for (const name of names) {
    for (const arch of ["mmoe", "ple"]) {
      const a = await steps(arch, name, "parameters");
      const b = await steps(arch, name, "representation");
      const { rel, moved } = relDiff(a.model, b.model, a.init);
      assert.ok(moved > 1e-3 && rel <= 2e-6, `${name}/${arch}: ${rel} of the movement ${moved}`);
    }
  }
});

test("EW: the same update at the representation for ple with 2 and 3 levels (task experts and task inputs below the last level are part of the representation)", async () => {
  for (const extra of [{ levels: 2, numShared: 2 }, { levels: 3, numSpecific: 2 }]) {
    const a = await steps("ple", "ew", "parameters", extra);
    const b = await steps("ple", "ew", "representation", extra);
    const { rel, moved } = relDiff(a.model, b.model, a.init);
    assert.ok(moved > 1e-3 && rel <= 2e-6, `ple ${JSON.stringify(extra)}: ${rel} of the movement ${moved}`);
  }
});

for (const method of ["gradcraft", "mgda"]) {
  test(`${method}: at the representation the update differs from the parameters' but trains (mmoe, ple)`, async () => {
    for (const arch of ["mmoe", "ple"]) {
      const a = await steps(arch, method, "parameters");
      const b = await steps(arch, method, "representation");
      const { rel } = relDiff(a.model, b.model, a.init);
      assert.ok(rel > 1e-3, `${method}/${arch}: the representation's update equals the parameters' (${rel}); the balancing saw the same vectors?`);
      for (const [k, v] of Object.entries(b.model.getParams())) for (const x of v) assert.ok(Number.isFinite(x), `${method}/${arch}: ${k} is not finite`);
      const moved = b.losses.some((l, s) => s > 0 && l.some((v, t) => Math.abs(v - b.losses[0]![t]!) > 1e-6));
      assert.ok(moved, `${method}/${arch}: the training loss did not move`);
    }
  });
}

for (const arch of modelNames()) {
  test(`every method x ${arch} at the representation: 3 steps, finite, the held-out loss moved (refused methods refused)`, async () => {
    const model = createModel(arch, { fields: TINY_FIELDS, numTasks: T }, SMALL);
    const init = model.getParams();
    const held = learnableBatch(TINY_FIELDS, T, 32, 999);
    const before = Float64Array.from(await lossesOnly(new GradWorkspace(model), held, "eval", 0));
    for (const name of methodNames()) {
      model.setParams(init);
      const opt = createAdam(model, { lr: 0.01 });
      const method = createMethod(name, T);
      const rng = new Rng(9);
      if (REPRESENTATION_REFUSALS[name] !== undefined) {
        await assert.rejects(
          trainStep(model, opt, method, learnableBatch(TINY_FIELDS, T, 24, 100), { step: 0, epoch: 0, rng, diagnostics: true, balanceAt: "representation" }),
          (e: Error) => e.message.includes(`method ${name}`) && e.message.includes("--balance-at representation") && e.message.includes("--balance-at parameters"),
        );
        assert.deepEqual(model.getParams(), init, `${name}/${arch}: a refused step changed parameters`);
        continue;
      }
      for (const [s, Bs] of [[0, 24], [1, 9], [2, 17]] as const) {
        const r = await trainStep(model, opt, method, learnableBatch(TINY_FIELDS, T, Bs, 100 + s), { step: s, epoch: 0, rng, diagnostics: true, balanceAt: "representation" });
        for (const l of r.losses) assert.ok(Number.isFinite(l), `${name}/${arch}: loss ${l}`);
        assert.equal(r.balance.direction.length, r.dim, `${name}/${arch}: direction length`);
      }
      for (const [k, v] of Object.entries(model.getParams())) for (const x of v) assert.ok(Number.isFinite(x), `${name}/${arch}: ${k} is not finite`);
      const after = await lossesOnly(new GradWorkspace(model), held, "eval", 0);
      const change = Math.max(...before.map((l, t) => Math.abs(after[t]! - l) / l));
      assert.ok(change > 1e-6, `${name}/${arch}: the held-out loss did not move (relative change ${change})`);
    }
  });
}

test("every built-in architecture says in words what its representation is", () => {
  for (const name of MODEL_NAMES) {
    const r = createModel(name, { fields: TINY_FIELDS, numTasks: T }, SMALL).arch.representation;
    assert.ok(typeof r === "string" && r.length > 0, `${name}: no representation line`);
  }
});

test("balanceAt: validated once with the method (refusals name the method and the option), unknown values refused", () => {
  assert.equal(resolveTrainOptions({ dataset: "kuairand" }).balanceAt, "parameters");
  assert.throws(() => resolveTrainOptions({ dataset: "kuairand", balanceAt: "rep" as never }), /balance-at|balanceAt/);
  for (const name of methodNames()) {
    if (REPRESENTATION_REFUSALS[name] !== undefined) assert.throws(() => checkBalanceAt(name, "representation"), new RegExp(`method ${name} cannot run with --balance-at representation`));
    else checkBalanceAt(name, "representation");
    checkBalanceAt(name, "parameters");
  }
  assert.ok(Object.keys(REPRESENTATION_REFUSALS).every((n) => methodNames().includes(n)), "every refusal names a registered method");
  assert.throws(() => checkBalanceAt("ew", "rep" as never), /unknown value "rep"/);
  assert.throws(() => checkBalanceAt("gradcraft", "representation", "all"), /--scope all .*no effect with --balance-at representation/);
  checkBalanceAt("gradcraft", "representation", "shared");
  checkBalanceAt("gradcraft", "parameters", "all");
});
