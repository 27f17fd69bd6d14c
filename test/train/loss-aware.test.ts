/**
 * The one-program path of the loss-aware weightings (FAMO, STCH: `diagnostics: false`
 * runs the "loss-aware" program, whose weights are computed in the graph from the same
 * run's losses and enter the backward as constants) gives the same weights, parameters,
 * method state and generator state as the per-task path (`diagnostics: true`: T per-task
 * gradients -> combine, weights from the rule in float64), on every architecture; FAMO's
 * afterStep runs on both. The loss-aware program costs what the weighted-sum one does.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { createModel, MODEL_NAMES, type Model } from "../../src/model/index.ts";
import { createAdam } from "../../src/optim/adam.ts";
import { createMethod, methodNames } from "../../src/balance/registry.ts";
import type { BalancingMethod, JsonValue } from "../../src/balance/types.ts";
import { buildProgramGraph } from "../../src/engine/programs.ts";
import { famoRule } from "../../src/balance/famo.ts";
import { stchRule } from "../../src/balance/stch.ts";
import type { FloatArray } from "../../src/graph/graph.ts";
import { trainStep, type StepResult } from "../../src/train/step.ts";
import { Rng } from "../../src/util/rng.ts";
import { TINY_FIELDS, randomBatch } from "../grad/fixtures.ts";

const T = 3;
const SMALL = { embDim: 3, expertUnits: [6, 4], bottomUnits: [6, 4], towerUnits: [4], seed: 5 };
/** Adam with eps = 1: nearly linear in the gradient (see methods-x-models.test.ts). */
const ADAM = { lr: 0.1, eps: 1 };
const STEPS = 4;

interface Run {
  model: Model;
  init: Record<string, FloatArray>;
  method: BalancingMethod;
  rng: Rng;
  results: StepResult[];
}

async function run(arch: string, name: string, options: Record<string, unknown>, diagnostics: boolean, dtype: "float32" | "float64" = "float64"): Promise<Run> {
  const model = createModel(arch, { fields: TINY_FIELDS, numTasks: T }, { ...SMALL, dtype, dropout: 0.2 });
  const init = model.getParams();
  const opt = createAdam(model, ADAM);
  const method = createMethod(name, T, options);
  const rng = new Rng(9);
  const results: StepResult[] = [];
  for (let s = 0; s < STEPS; s++) results.push(await trainStep(model, opt, method, randomBatch(TINY_FIELDS, T, 16, 300 + s), { step: s, epoch: s < 2 ? 0 : 1, rng, diagnostics }));
  return { model, init, method, rng, results };
}

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

/** Parameters of both paths relative to their movement (float32 flat vectors on the per-task path: 2e-7, as for EW). */
function compareParams(slow: Run, fast: Run, tol: number, label: string): number {
  const pa = slow.model.getParams();
  const pb = fast.model.getParams();
  let diff2 = 0;
  let move2 = 0;
  let maxMove = 0;
  let n = 0;
  for (const [k, x] of Object.entries(pa)) {
    const y = pb[k]!;
    const x0 = slow.init[k]!;
    for (let i = 0; i < x.length; i++) {
      const d = x[i]! - y[i]!;
      const m = x[i]! - x0[i]!;
      diff2 += d * d;
      move2 += m * m;
      maxMove = Math.max(maxMove, Math.abs(m));
      n++;
    }
  }
  assert.ok(maxMove > 1e-3, `${label}: the parameters barely moved (${maxMove})`);
  assert.ok(Math.sqrt(diff2 / move2) <= tol, `${label}: parameters differ by ${Math.sqrt(diff2 / move2).toExponential(2)} of their movement`);
  return n;
}

/** Every registered method that offers the loss-aware path (defaults), plus option variants that change the rule. */
const LOSS_AWARE = methodNames().filter((n) => createMethod(n, T).lossAware !== undefined);
const CASES: [string, Record<string, unknown>][] = [
  ...LOSS_AWARE.map((n): [string, Record<string, unknown>] => [n, {}]),
  ["famo", { lr: 0.2, optimizer: "sgd", minLoss: 0.1 }],
  ["famo", { lr: 0.2, update: "next-batch" }],
  ["stch", { mu: 0.05 }],
  ["stch", { mu: 0.2, log: true, warmupEpochs: 1 }],
  ["stch", { mu: 0.3, log: true, preferences: "1,2,0.5", ideal: "-1,-0.5,-0.7" }],
];

test("the registry has loss-aware methods (the loops below are not vacuous)", () => {
  assert.ok(LOSS_AWARE.includes("famo") && LOSS_AWARE.includes("stch"), `loss-aware: ${LOSS_AWARE.join(", ")}`);
});

for (const [name, options] of CASES) {
  test(`one-program path (diagnostics: false, loss-aware program) = per-task path after ${STEPS} steps, every architecture: ${name} ${JSON.stringify(options)}`, async () => {
    const probe = createMethod(name, T, options);
    assert.ok(probe.lossAware, `${name} offers lossAware`);
    assert.equal(probe.lossWeighting, undefined, `${name}'s weights depend on this step's losses`);
    let compared = 0;
    for (const arch of MODEL_NAMES) {
      const slow = await run(arch, name, options, true);
      const fast = await run(arch, name, options, false);
      const label = `${name}/${arch}`;
      for (let s = 0; s < STEPS; s++) {
        const a = slow.results[s]!;
        const b = fast.results[s]!;
        assert.equal(b.dim, 0, `${label} step ${s}: one-program path`);
        assert.equal(b.balance.diagnostics.norms.length, 0, `${label} step ${s}: no diagnostics on the one-program path`);
        assert.equal(a.balance.diagnostics.norms.length, T, `${label} step ${s}: per-task path diagnostics`);
        for (let t = 0; t < T; t++) {
          assert.ok(Math.abs(a.losses[t]! - b.losses[t]!) <= 1e-7 * a.losses[t]!, `${label} step ${s} loss ${t}: ${a.losses[t]} vs ${b.losses[t]}`);
          const wa = a.balance.weights![t]!;
          const wb = b.balance.weights![t]!;
          assert.ok(Math.abs(wa - wb) <= 1e-7 * Math.abs(wa), `${label} step ${s} weight ${t}: ${wa} vs ${wb}`);
          assert.equal(b.balance.taskScale[t], wb, `${label} step ${s} taskScale ${t}`);
        }
      }
      compared += compareParams(slow, fast, 2e-7, label);
      sameState(slow.method.getState(), fast.method.getState(), 1e-6, `${label} method state`);
      assert.deepEqual(fast.rng.getState(), slow.rng.getState(), `${label}: generator state`);
    }
    assert.ok(compared > 1000, `only ${compared} parameters compared`);
  });
}

test("one-program path in float32: the in-graph weights match the float64 rule to float32 precision (famo, stch)", async () => {
  for (const name of ["famo", "stch"]) {
    const slow = await run("mmoe", name, {}, true, "float32");
    const fast = await run("mmoe", name, {}, false, "float32");
    for (let s = 0; s < STEPS; s++) {
      for (let t = 0; t < T; t++) {
        const wa = slow.results[s]!.balance.weights![t]!;
        const wb = fast.results[s]!.balance.weights![t]!;
        assert.ok(Math.abs(wa - wb) <= 1e-5 * Math.abs(wa), `${name} step ${s} weight ${t}: ${wa} vs ${wb}`);
      }
    }
    compareParams(slow, fast, 1e-4, `${name}/mmoe float32`);
  }
});

test("famo's exact rule: afterStep gets the same batch's losses at the new parameters, with the step's masks", async () => {
  // a recording method wrapping famo: the losses passed to afterStep must equal a fresh forward at the new parameters
  const model = createModel("mmoe", { fields: TINY_FIELDS, numTasks: T }, { ...SMALL, dtype: "float64", dropout: 0.3 });
  const opt = createAdam(model, ADAM);
  const inner = createMethod("famo", T);
  const seen: Float64Array[] = [];
  const method: BalancingMethod = { ...inner, combine: (i) => inner.combine(i), afterStep: (l) => (seen.push(Float64Array.from(l)), inner.afterStep!(l)) };
  const batch = randomBatch(TINY_FIELDS, T, 16, 400);
  const rng = new Rng(4);
  const probe = new Rng(4);
  const seed = probe.nextU32();
  const r = await trainStep(model, opt, method, batch, { step: 0, epoch: 0, rng, diagnostics: false });
  assert.equal(seen.length, 1);
  const { lossesOnly } = await import("../../src/grad/pertask.ts");
  const { workspaceOf } = await import("../../src/train/step.ts");
  const again = await lossesOnly(workspaceOf(model), batch, "train", seed);
  assert.deepEqual(Array.from(seen[0]!), Array.from(again), "same batch, same masks, new parameters");
  assert.ok(seen[0]!.some((l, t) => l !== r.losses[t]), "the losses changed with the update");
  const other = await lossesOnly(workspaceOf(model), batch, "train", seed + 1);
  assert.ok(other.some((l, t) => l !== again[t]), "other masks give other losses (the seed matters)");
});

test("the loss-aware program costs what the weighted-sum program does (a handful of extra nodes)", () => {
  for (const arch of MODEL_NAMES) {
    const model = createModel(arch, { fields: TINY_FIELDS, numTasks: T }, SMALL);
    const ws = buildProgramGraph(model, { kind: "weighted-sum", batch: 32, mode: "train", objective: "bce" }).graph.nodes.length;
    for (const rule of [famoRule(0, 1e-8), stchRule(1, true)]) {
      const la = buildProgramGraph(model, { kind: "loss-aware", batch: 32, mode: "train", objective: "bce", rule });
      const n = la.graph.nodes.length;
      assert.ok(n <= ws + 30, `${arch}: loss-aware program has ${n} nodes, weighted-sum ${ws}`);
      assert.ok(la.outputs.some((o) => o.name === "weights"), `${arch}: the program outputs its weights`);
      assert.ok(la.graph.inputs.some((i) => i.name === "lw0"), `${arch}: the rule's parameters are inputs`);
    }
  }
});
