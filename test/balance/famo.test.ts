import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { famo, famoLogitGrad, softmax } from "../../src/balance/famo.ts";
import { NonFiniteInputError } from "../../src/balance/common.ts";
import { evalWeightRule } from "../../src/balance/weightrule.ts";
import type { BalancingMethod } from "../../src/balance/types.ts";
import { createModel, MODEL_NAMES } from "../../src/model/index.ts";
import { createAdam } from "../../src/optim/adam.ts";
import { trainStep } from "../../src/train/step.ts";
import { Rng } from "../../src/util/rng.ts";
import { TINY_FIELDS, randomBatch } from "../grad/fixtures.ts";
import { DEGENERATE, assertClose, assertDirectionMatchesCoeffs, assertWellFormed, mkInput, randomRows } from "./methodfixtures.ts";

interface FamoCase {
  name: string;
  numTasks: number;
  options: { lr: number; gamma: number; optimizer: "adam" | "sgd"; minLoss: number; eps: number };
  steps: { before: number[]; after: number[]; weights: number[]; xi: number[] }[];
}
interface NextBatchCase {
  name: string;
  numTasks: number;
  options: FamoCase["options"] & { update: "next-batch" };
  steps: { losses: number[]; weights: number[]; xi: number[] }[];
}
const FIX = JSON.parse(readFileSync(new URL("../fixtures/balance/famo.json", import.meta.url), "utf8")) as { cases: FamoCase[]; nextBatch: NextBatchCase[] };

function xiOf(m: BalancingMethod): number[] {
  return (m.getState() as { xi: number[] }).xi;
}

test("famo: weights and logits match the independent float64 computation (scripts/gen-famo-fixtures.py)", () => {
  assert.ok(FIX.cases.length >= 4);
  for (const c of FIX.cases) {
    const m = famo.create(c.numTasks, c.options);
    const rows = randomRows(c.numTasks, 7, 3);
    c.steps.forEach((s, k) => {
      const out = m.combine(mkInput(rows, { losses: s.before, step: k }));
      assertClose(out.weights!, s.weights, 1e-12, `${c.name} step ${k} weights`);
      assertClose(out.taskScale, s.weights, 1e-12, `${c.name} step ${k} taskScale`);
      assertDirectionMatchesCoeffs(out, rows);
      m.afterStep!(Float64Array.from(s.after));
      assertClose(xiOf(m), s.xi, 1e-10, `${c.name} step ${k} xi`);
    });
  }
});

test('famo update "next-batch" (one-step approximation): weights and logits match the float64 computation, no afterStep', () => {
  assert.ok(FIX.nextBatch.length >= 2);
  for (const c of FIX.nextBatch) {
    const m = famo.create(c.numTasks, c.options);
    assert.equal(m.afterStep, undefined, "no extra forward pass is asked for");
    const rows = randomRows(c.numTasks, 5, 8);
    c.steps.forEach((s, k) => {
      const out = m.combine(mkInput(rows, { losses: s.losses, step: k }));
      assertClose(out.weights!, s.weights, 1e-12, `${c.name} step ${k} weights`);
      assertClose(xiOf(m), s.xi, 1e-10, `${c.name} step ${k} xi`);
    });
  }
  assert.equal(typeof famo.create(2).afterStep, "function", 'the default ("exact") has afterStep');
  assert.throws(() => famo.create(2, { update: "lagged" as never }), /famo: option update/);
});

test("famo: at xi = 0 the weights are (1/l_i) / sum_j 1/l_j, they sum to 1, and d = c * sum z_i/l_i g_i", () => {
  const L = [0.5, 2, 1];
  const out = famo.create(3).combine(mkInput([[1, 0], [0, 1], [1, 1]], { losses: L }));
  const inv = L.map((l) => 1 / (l + 1e-8));
  const s = inv.reduce((a, b) => a + b, 0);
  assertClose(out.weights!, inv.map((x) => x / s), 1e-15, "weights");
  assert.ok(Math.abs(out.weights!.reduce((a, b) => a + b, 0) - 1) < 1e-15);
});

test("famo: softmax VJP matches finite differences of <softmax(xi), delta>", () => {
  const xi = [0.3, -0.7, 0.1, 1.2];
  const prev = [0.9, 0.4, 1.3, 0.2];
  const next = [0.8, 0.41, 1.0, 0.19];
  const g = famoLogitGrad(xi, prev, next, 0, 1e-8);
  const delta = prev.map((p, i) => Math.log(p + 1e-8) - Math.log(next[i]! + 1e-8));
  const f = (x: number[]) => softmax(x).reduce((a, z, i) => a + z * delta[i]!, 0);
  for (let i = 0; i < 4; i++) {
    const xp = [...xi];
    const xm = [...xi];
    xp[i]! += 1e-6;
    xm[i]! -= 1e-6;
    const fd = (f(xp) - f(xm)) / 2e-6;
    assert.ok(Math.abs(fd - g[i]!) < 1e-9, `coordinate ${i}: fd ${fd} vs ${g[i]}`);
  }
});

test("famo: a task whose log-loss falls less gets more weight on the next step (balancing)", () => {
  const m = famo.create(2, { lr: 0.05 });
  const rows = [[1, 0], [0, 1]];
  for (let k = 0; k < 20; k++) {
    const wk = m.combine(mkInput(rows, { losses: [1, 1], step: k })).weights!;
    assert.ok(k > 0 || wk[0] === wk[1], "equal weights at the start");
    m.afterStep!(Float64Array.of(0.9, 0.99)); // task 0 improves 10%, task 1 only 1%
  }
  const w = m.combine(mkInput(rows, { losses: [1, 1], step: 20 })).weights!;
  assert.ok(w[1]! > w[0]! + 0.1, `task 1 (slower) should get more weight: ${Array.from(w)}`);
  const xi = xiOf(m);
  assert.ok(xi[1]! > xi[0]!, `logits ${xi}`);
});

test("famo: properties (permutation, scale equivariance, independence from gradients, positive weights)", () => {
  const T = 4;
  const rows = randomRows(T, 9, 11);
  const losses = [0.3, 1.7, 0.9, 0.05];
  const perm = [2, 0, 3, 1];
  const make = () => {
    const m = famo.create(T, { lr: 0.1 });
    // some history so xi is not uniform
    for (let k = 0; k < 3; k++) {
      m.combine(mkInput(rows, { losses: [1, 1, 1, 1], step: k }));
      m.afterStep!(Float64Array.of(0.9, 0.95, 0.99, 0.7));
    }
    return m;
  };
  const base = make().combine(mkInput(rows, { losses }));
  // permutation: a fresh method (xi = 0) permutes its weights with the tasks
  const f0 = famo.create(T).combine(mkInput(rows, { losses }));
  const fp = famo.create(T).combine(mkInput(perm.map((p) => rows[p]!), { losses: perm.map((p) => losses[p]!) }));
  assertClose(fp.coeffs, perm.map((p) => f0.coeffs[p]!), 1e-15, "permuted coefficients");
  assertClose(fp.direction, f0.direction, 1e-6, "direction unchanged by a permutation");
  // scale equivariance: gradients x 3 -> direction x 3, same weights
  const scaled = make().combine(mkInput(rows.map((r) => r.map((x) => 3 * x)), { losses }));
  assertClose(scaled.weights!, base.weights!, 0, "weights ignore the gradient scale");
  assertClose(scaled.direction, Array.from(base.direction, (x) => 3 * x), 1e-5, "direction scales");
  // weights depend on losses and state only, never on the gradients
  const other = make().combine(mkInput(randomRows(T, 9, 99), { losses }));
  assertClose(other.weights!, base.weights!, 0, "weights independent of the gradients");
  assert.ok(base.weights!.every((x) => x > 0));
  assertDirectionMatchesCoeffs(base, rows);
});

test("famo: the lossAware contract (rule + params + observe) gives combine's weights and state", () => {
  const rows = randomRows(3, 5, 4);
  const a = famo.create(3, { lr: 0.2, gamma: 0.01 });
  const b = famo.create(3, { lr: 0.2, gamma: 0.01 });
  const rng = new Rng(1);
  for (let k = 0; k < 5; k++) {
    const L = Float64Array.of(0.5 + 0.1 * k, 0.7, 0.3 / (k + 1));
    const out = a.combine(mkInput(rows, { losses: Array.from(L), step: k }));
    const la = b.lossAware!;
    const w = evalWeightRule(la.rule, L, la.params({ step: k, epoch: 0, rng }));
    la.observe!(L, w);
    assertClose(w, out.weights!, 0, `step ${k}: rule weights = combine's`);
    const next = Float64Array.from(L, (x, i) => x * (0.9 + 0.03 * i));
    a.afterStep!(next);
    b.afterStep!(next);
    assert.deepEqual(b.getState(), a.getState(), `step ${k}: same state`);
  }
});

test("famo: JSON state round trip continues identically, including a pending step", () => {
  const rows = randomRows(3, 6, 5);
  const a = famo.create(3, { lr: 0.1 });
  for (let k = 0; k < 4; k++) {
    a.combine(mkInput(rows, { losses: [1 + k, 0.5, 2], step: k }));
    a.afterStep!(Float64Array.of(0.9 + k, 0.45, 1.9));
  }
  a.combine(mkInput(rows, { losses: [0.3, 0.2, 0.1], step: 4 })); // pending losses in the state
  const b = famo.create(3, { lr: 0.1 });
  b.setState(JSON.parse(JSON.stringify(a.getState())));
  assert.deepEqual(b.getState(), a.getState());
  a.afterStep!(Float64Array.of(0.25, 0.2, 0.09));
  b.afterStep!(Float64Array.of(0.25, 0.2, 0.09));
  for (let k = 5; k < 8; k++) {
    const inp = () => mkInput(rows, { losses: [0.2 * k, 0.3, 0.1], step: k });
    const oa = a.combine(inp());
    const ob = b.combine(inp());
    assert.deepEqual(Array.from(ob.coeffs), Array.from(oa.coeffs));
    assert.deepEqual(Array.from(ob.direction), Array.from(oa.direction));
    a.afterStep!(Float64Array.of(0.19 * k, 0.3, 0.1));
    b.afterStep!(Float64Array.of(0.19 * k, 0.3, 0.1));
  }
  assert.deepEqual(b.getState(), a.getState());
  assert.throws(() => famo.create(3).setState({ xi: [1, 2] }), /famo: setState: xi/);
  assert.throws(() => famo.create(3).setState({ xi: [0, 0, 0], adam: null }), /famo: setState: adam/);
  assert.throws(() => famo.create(3).setState({ xi: [0, 0, 0], adam: { m: [0, 0, 0], v: [0, 0, 0], t: 0 }, pending: [1] }), /famo: setState: pending/);
});

test("famo: option validation, degenerate gradients, non-finite losses, misuse of afterStep", () => {
  assert.throws(() => famo.create(2, { lr: -1 }), /famo: option lr/);
  assert.throws(() => famo.create(2, { gamma: Number.NaN }), /famo: option gamma/);
  assert.throws(() => famo.create(2, { minLoss: -0.1 }), /famo: option minLoss/);
  assert.throws(() => famo.create(2, { eps: 0 }), /famo: option eps/);
  assert.throws(() => famo.create(2, { optimizer: "rmsprop" as never }), /famo: option optimizer/);
  assert.throws(() => famo.create(2, { Lr: 1 } as never), /unknown option "Lr".*did you mean/i);
  assert.throws(() => famo.create(0), /numTasks/);
  for (const [name, r] of Object.entries(DEGENERATE)) {
    const out = famo.create(r.length).combine(mkInput(r, { losses: r.map(() => 0) }));
    assertWellFormed(out, r.length, r[0]!.length);
    assert.ok(out.weights!.every((x) => x > 0 && Number.isFinite(x)), name);
  }
  const m = famo.create(2);
  assert.throws(() => m.afterStep!(Float64Array.of(1, 1)), /afterStep called before combine/);
  assert.throws(() => m.combine(mkInput([[1], [2]], { losses: [1, Number.NaN] })), NonFiniteInputError);
  m.combine(mkInput([[1], [2]], { losses: [1, 1] }));
  assert.throws(() => m.afterStep!(Float64Array.of(1, Number.POSITIVE_INFINITY)), (e: unknown) => e instanceof NonFiniteInputError && /after the update/.test(e.message));
  assert.throws(() => m.afterStep!(Float64Array.of(1)), /expected 2 losses/);
});

for (const arch of MODEL_NAMES) {
  test(`famo trains ${arch} for a few steps on both paths, afterStep every step`, async () => {
    const T = 3;
    for (const diagnostics of [true, false]) {
      const model = createModel(arch, { fields: TINY_FIELDS, numTasks: T }, { embDim: 3, expertUnits: [6, 4], bottomUnits: [6, 4], towerUnits: [4], seed: 5 });
      const init = model.getParams();
      const opt = createAdam(model, { lr: 0.01 });
      const method = famo.create(T);
      const rng = new Rng(3);
      for (let s = 0; s < 4; s++) {
        const r = await trainStep(model, opt, method, randomBatch(TINY_FIELDS, T, 20, 50 + s), { step: s, epoch: 0, rng, diagnostics });
        for (const l of r.losses) assert.ok(Number.isFinite(l));
        const w = r.balance.weights!;
        assert.ok(Math.abs(w.reduce((a, b) => a + b, 0) - 1) < 1e-5, `${arch}: weights sum to 1: ${Array.from(w)}`);
        assert.equal(r.balance.diagnostics.norms.length, diagnostics ? T : 0, `${arch}: the ${diagnostics ? "per-task" : "one-program"} path ran`);
      }
      const st = method.getState() as { xi: number[]; adam: { t: number }; pending: unknown };
      assert.equal(st.adam.t, 4, `${arch}: afterStep ran on every step`);
      assert.equal(st.pending, null);
      assert.ok(st.xi.some((x) => x !== 0), `${arch}: the logits moved`);
      const after = model.getParams();
      assert.ok(
        Object.keys(init).some((k) => after[k]!.some((x, i) => x !== init[k]![i])),
        `${arch}: parameters moved`,
      );
      for (const v of Object.values(after)) for (const x of v) assert.ok(Number.isFinite(x));
    }
  });
}

test("famo: a run interrupted and resumed from its checkpoint ends exactly where an uninterrupted run ends (xi is checkpointed)", async () => {
  const { join } = await import("node:path");
  const { runTraining } = await import("../../src/train/run.ts");
  const { tempDir } = await import("../data/helpers.ts");
  const { writeTinyDataset } = await import("../train/tiny-data.ts");
  const root = tempDir("famo-resume");
  const dataset = writeTinyDataset(join(root, "data"), { seed: 3 });
  const options = (over: Record<string, unknown> = {}) => ({
    dataset,
    cacheDir: join(root, "cache"),
    model: "shared-bottom",
    modelOptions: { bottomUnits: "4" },
    method: "famo",
    methodOptions: { lr: "0.3" },
    seed: 1,
    epochs: 1,
    maxSteps: 6,
    batchSize: 16,
    lr: 0.05,
    l2: 0,
    embDim: 2,
    dropout: 0.1,
    scope: "shared" as const,
    patience: 0,
    diagEvery: 2,
    ...over,
  });
  const whole = await runTraining(options());
  const ck = join(root, "ck");
  await assert.rejects(runTraining(options({ checkpoint: ck, interruptAfter: 3 })), /interrupted/);
  const resumed = await runTraining(options({ checkpoint: ck }));
  assert.equal(resumed.steps, 6);
  assert.deepEqual(resumed.history, whole.history, "same losses and metrics after the resume");
  assert.deepEqual(resumed.diagnostics, whole.diagnostics, "same FAMO weights on the diagnostics steps");
  assert.deepEqual(resumed.test, whole.test);
  const w = whole.diagnostics.at(-1)!.weights!;
  assert.ok(w.some((x) => Math.abs(x - 1 / w.length) > 1e-4), `the weights moved away from uniform: ${w}`);
});
