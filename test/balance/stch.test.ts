import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { stch, stchObjective } from "../../src/balance/stch.ts";
import { evalWeightRule } from "../../src/balance/weightrule.ts";
import { createModel, MODEL_NAMES } from "../../src/model/index.ts";
import { createAdam } from "../../src/optim/adam.ts";
import { trainStep } from "../../src/train/step.ts";
import { Rng } from "../../src/util/rng.ts";
import { TINY_FIELDS, randomBatch } from "../grad/fixtures.ts";
import { DEGENERATE, assertClose, assertDirectionMatchesCoeffs, assertWellFormed, mkInput, randomRows } from "./methodfixtures.ts";

interface StchCase {
  name: string;
  mu: number;
  log: boolean;
  preferences: number[] | null;
  ideal: number[] | null;
  losses: number[];
  weights: number[];
  objective: number;
}
const FIX = JSON.parse(readFileSync(new URL("../fixtures/balance/stch.json", import.meta.url), "utf8")) as { cases: StchCase[] };

test("stch: weights and objective match the independent float64 computation (scripts/gen-stch-fixtures.py)", () => {
  assert.ok(FIX.cases.length >= 20);
  for (const c of FIX.cases) {
    const T = c.losses.length;
    const opts = { mu: c.mu, log: c.log, ...(c.preferences ? { preferences: c.preferences } : {}), ...(c.ideal ? { ideal: c.ideal } : {}) };
    const rows = randomRows(T, 6, T);
    const out = stch.create(T, opts).combine(mkInput(rows, { losses: c.losses }));
    assertClose(out.weights!, c.weights, 1e-12, `${c.name} weights`);
    assertClose(out.taskScale, c.weights, 1e-12, `${c.name} taskScale`);
    assertDirectionMatchesCoeffs(out, rows);
    const lam = c.preferences ?? new Array<number>(T).fill(1);
    const z = c.ideal ?? new Array<number>(T).fill(0);
    assert.ok(Math.abs(stchObjective(c.losses, lam, z, c.mu, c.log) - c.objective) <= 1e-12 * Math.max(1, Math.abs(c.objective)), `${c.name} objective`);
  }
});

test("stch: the weights are the gradient of the scalarization w.r.t. the losses (finite differences)", () => {
  const lam = [0.5, 1.5, 1];
  const z = [0.1, 0, 0.2];
  for (const log of [false, true]) {
    const L = [0.4, 0.9, 0.6];
    const out = stch.create(3, { mu: 0.2, preferences: lam, ideal: log ? [-1, -0.5, -2] : z, log }).combine(mkInput([[1], [2], [3]], { losses: L }));
    for (let i = 0; i < 3; i++) {
      const p = [...L];
      const m = [...L];
      p[i]! += 1e-6;
      m[i]! -= 1e-6;
      const zz = log ? [-1, -0.5, -2] : z;
      const fd = (stchObjective(p, lam, zz, 0.2, log) - stchObjective(m, lam, zz, 0.2, log)) / 2e-6;
      assert.ok(Math.abs(fd - out.weights![i]!) < 1e-7, `log ${log} task ${i}: fd ${fd} vs ${out.weights![i]}`);
    }
  }
});

test("stch: limits in mu (max-loss task as mu -> 0, equal weights as mu -> infinity) and the default string options", () => {
  const L = [0.3, 0.8, 0.5];
  const sharp = stch.create(3, { mu: 1e-3 }).combine(mkInput([[1], [1], [1]], { losses: L })).weights!;
  assertClose(sharp, [0, 1, 0], 1e-12, "mu -> 0 picks the largest loss");
  const flat = stch.create(3, { mu: 1e9 }).combine(mkInput([[1], [1], [1]], { losses: L })).weights!;
  assertClose(flat, [1 / 3, 1 / 3, 1 / 3], 1e-9, "mu -> inf: equal weights");
  // comma-separated options (as typed on the command line) equal the arrays
  const a = stch.create(3, { preferences: "1,2,0.5", ideal: "0.1, 0, 0.2" }).combine(mkInput([[1], [1], [1]], { losses: L })).weights!;
  const b = stch.create(3, { preferences: [1, 2, 0.5], ideal: [0.1, 0, 0.2] }).combine(mkInput([[1], [1], [1]], { losses: L })).weights!;
  assert.deepEqual(Array.from(a), Array.from(b));
});

test("stch: properties (permutation, scale equivariance, independence from gradients, no state change)", () => {
  const T = 4;
  const rows = randomRows(T, 8, 21);
  const losses = [0.3, 1.1, 0.7, 0.2];
  const perm = [3, 1, 0, 2];
  const m = stch.create(T, { mu: 0.5 });
  const base = m.combine(mkInput(rows, { losses }));
  const p = m.combine(mkInput(perm.map((i) => rows[i]!), { losses: perm.map((i) => losses[i]!) }));
  assertClose(p.coeffs, perm.map((i) => base.coeffs[i]!), 1e-15, "permuted coefficients");
  assertClose(p.direction, base.direction, 1e-6, "direction unchanged by a permutation");
  const scaled = m.combine(mkInput(rows.map((r) => r.map((x) => 2.5 * x)), { losses }));
  assertClose(scaled.direction, Array.from(base.direction, (x) => 2.5 * x), 1e-5, "direction scales with the gradients");
  assertClose(m.combine(mkInput(randomRows(T, 8, 5), { losses })).weights!, base.weights!, 0, "weights independent of the gradients");
  assert.ok(Math.abs(base.weights!.reduce((a, b) => a + b, 0) - 1) < 1e-15, "default weights sum to 1");
  // shifting every loss (and the ideal point) by the same amount leaves the weights unchanged
  const shifted = m.combine(mkInput(rows, { losses: losses.map((l) => l + 3) }));
  assertClose(shifted.weights!, base.weights!, 1e-12, "shift invariance");
  assert.deepEqual(m.getState(), { sum: [0, 0, 0, 0], count: 0, nadir: null }, "no warm-up: no state change");
  const la = m.lossAware!;
  assertClose(evalWeightRule(la.rule, Float64Array.from(losses), la.params({ step: 0, epoch: 0, rng: new Rng(1) })), base.weights!, 0, "lossAware rule = combine");
});

test("stch: option validation, degenerate gradients, state", () => {
  assert.throws(() => stch.create(2, { mu: 0 }), /stch: option mu/);
  assert.throws(() => stch.create(2, { mu: Number.NaN }), /stch: option mu/);
  assert.throws(() => stch.create(2, { preferences: "1" }), /stch: option preferences must have 2 entries/);
  assert.throws(() => stch.create(2, { preferences: "1,-1" }), /stch: option preferences: entry 1 must be a finite positive number/);
  assert.throws(() => stch.create(2, { preferences: "1,x" }), /stch: option preferences: entry 1/);
  assert.throws(() => stch.create(2, { ideal: [0, Number.POSITIVE_INFINITY] }), /stch: option ideal: entry 1/);
  assert.throws(() => stch.create(2, { log: "yes" as never }), /stch: option log/);
  assert.throws(() => stch.create(2, { nu: 1 } as never), /unknown option "nu".*did you mean/i);
  assert.throws(() => stch.create(2).setState({ a: 1 }), /stch: setState: sum/);
  assert.throws(() => stch.create(2).setState({ sum: [0, 0], count: -1, nadir: null }), /stch: setState: count/);
  assert.throws(() => stch.create(2).setState({ sum: [0, 0], count: 1, nadir: [1] }), /stch: setState: nadir/);
  assert.throws(() => stch.create(2, { warmupEpochs: 1.5 }), /stch: option warmupEpochs/);
  assert.throws(() => stch.create(2, { warmupEpochs: -1 }), /stch: option warmupEpochs/);
  assert.deepEqual(stch.create(2).getState(), { sum: [0, 0], count: 0, nadir: null }, "no warm-up: the state never changes");
  for (const [name, r] of Object.entries(DEGENERATE)) {
    const out = stch.create(r.length).combine(mkInput(r, { losses: r.map(() => 0) }));
    assertWellFormed(out, r.length, r[0]!.length);
    assert.ok(out.weights!.every((x) => x > 0), name);
  }
  // log form with a zero loss: floored, finite
  const out = stch.create(2, { log: true }).combine(mkInput([[1], [2]], { losses: [0, 0.5] }));
  assert.ok(out.weights!.every((x) => Number.isFinite(x)));
  assert.throws(() => stch.create(2).combine(mkInput([[1], [2]], { losses: [1, Number.NaN] })), /not finite/);
});

test("stch warm-up (the reference's procedure): equal weights on log losses, then z* = log of the last warm-up epoch's mean losses", () => {
  const mu = 0.5;
  const m = stch.create(2, { log: true, mu, warmupEpochs: 2 });
  const rows = [[1, 0], [0, 1]];
  const seen: number[][] = [];
  for (const [epoch, L] of [[0, [0.9, 0.4]], [1, [0.6, 0.3]], [1, [0.8, 0.5]]] as const) {
    const w = m.combine(mkInput(rows, { losses: [...L], epoch })).weights!;
    assertClose(w, L.map((l) => 1 / l), 1e-15, `warm-up epoch ${epoch}: gradient of sum log l`);
    if (epoch === 1) seen.push([...L]);
  }
  const n = [0.7, 0.4]; // mean of epoch 1's losses
  const L = [0.5, 0.35];
  const a = L.map((l, i) => Math.log(l / n[i]!) / mu);
  const e = a.map((x) => Math.exp(x - Math.max(...a)));
  const sm = e.map((x) => x / (e[0]! + e[1]!));
  const w = m.combine(mkInput(rows, { losses: L, epoch: 2 })).weights!;
  assertClose(w, sm.map((x, i) => x / L[i]!), 1e-12, "epoch 2: softmax(log(l/n)/mu)/l");
  const st = m.getState() as { nadir: number[]; count: number };
  assert.equal(st.count, seen.length);
  assertClose(st.nadir, n, 1e-15, "nadir");
  // the state round-trips through JSON and continues identically
  const b = stch.create(2, { log: true, mu, warmupEpochs: 2 });
  b.setState(JSON.parse(JSON.stringify(m.getState())));
  const x = m.combine(mkInput(rows, { losses: [0.2, 0.9], epoch: 3 }));
  const y = b.combine(mkInput(rows, { losses: [0.2, 0.9], epoch: 3 }));
  assert.deepEqual(Array.from(y.weights!), Array.from(x.weights!));
  // no losses in the last warm-up epoch: a clear error, not a NaN ideal point
  assert.throws(() => stch.create(2, { warmupEpochs: 1 }).combine(mkInput(rows, { losses: [1, 1], epoch: 1 })), /no losses were seen in epoch 0/);
});

for (const arch of MODEL_NAMES) {
  test(`stch trains ${arch} for a few steps on both paths`, async () => {
    const T = 3;
    for (const diagnostics of [true, false]) {
      const model = createModel(arch, { fields: TINY_FIELDS, numTasks: T }, { embDim: 3, expertUnits: [6, 4], bottomUnits: [6, 4], towerUnits: [4], seed: 5 });
      const init = model.getParams();
      const opt = createAdam(model, { lr: 0.01 });
      const method = stch.create(T, { mu: 0.1 });
      const rng = new Rng(3);
      for (let s = 0; s < 4; s++) {
        const r = await trainStep(model, opt, method, randomBatch(TINY_FIELDS, T, 20, 70 + s), { step: s, epoch: 0, rng, diagnostics });
        for (const l of r.losses) assert.ok(Number.isFinite(l));
        assert.equal(r.balance.diagnostics.norms.length, diagnostics ? T : 0, `${arch}: the ${diagnostics ? "per-task" : "one-program"} path ran`);
        const expect = evalWeightRule(method.lossAware!.rule, r.losses, method.lossAware!.params({ step: s, epoch: 0, rng }));
        assertClose(r.balance.weights!, expect, 1e-5, `${arch} step ${s}: weights of this step's losses`);
      }
      const after = model.getParams();
      assert.ok(
        Object.keys(init).some((k) => after[k]!.some((x, i) => x !== init[k]![i])),
        `${arch}: parameters moved`,
      );
      for (const v of Object.values(after)) for (const x of v) assert.ok(Number.isFinite(x));
    }
  });
}
