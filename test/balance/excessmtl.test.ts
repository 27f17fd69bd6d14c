import { test } from "node:test";
import assert from "node:assert/strict";
import { excessmtl, excessRiskStep } from "../../src/balance/excessmtl.ts";
import { f32FromJson, f32ToJson } from "../../src/balance/methodkit.ts";
import { createMethod } from "../../src/balance/registry.ts";
import { assertDirectionMatchesCoeffs, assertStateRoundTrip, assertWellFormed, mkInput, randomRows } from "./methodfixtures.ts";
import { propertyViolation } from "./property-checks.ts";
import { fixtureInput, loadFixture, near, sharedLayout, trainEveryArchitecture } from "./stateful-helpers.ts";

interface Expected {
  weights: number[];
  direction: number[];
  excess: number[];
}

test("excessmtl: weights and directions match the float64 reference of the paper's rule over several steps", () => {
  const cases = loadFixture<Expected>("excessmtl");
  for (const c of cases) {
    const m = excessmtl.create(c.grads[0]!.length, c.options);
    c.expected.forEach((e, k) => {
      const out = m.combine(fixtureInput(c, k));
      near(out.weights!, e.weights, 2e-6, `${c.name} step ${k} weights`);
      near(out.coeffs, e.weights, 2e-6, `${c.name} step ${k} coeffs`);
      near(out.taskScale, e.weights, 2e-6, `${c.name} step ${k} taskScale`);
      near(out.direction, e.direction, 1e-5, `${c.name} step ${k} direction`);
    });
  }
  // the fixtures do move the weights (a method that never updated them would fail above)
  const last = cases[0]!.expected.at(-1)!.weights;
  assert.ok(Math.max(...last) - Math.min(...last) > 0.3);
});

test("excessmtl: the accumulator step is S += g², E = Σ g²/sqrt(S + 1e-7) over the stable prefix", () => {
  const S = new Float32Array(3);
  const g = Float32Array.of(2, 0, -1, 5); // the 4th entry lies outside S (an embedding row)
  assert.ok(Math.abs(excessRiskStep(S, g) - (4 / Math.sqrt(4 + 1e-7) + 1 / Math.sqrt(1 + 1e-7))) < 1e-12);
  assert.deepEqual(Array.from(S), [4, 0, 1]);
  const e2 = excessRiskStep(S, g);
  assert.ok(Math.abs(e2 - (4 / Math.sqrt(8 + 1e-7) + 1 / Math.sqrt(2 + 1e-7))) < 1e-9);
});

test("excessmtl: first step (the baseline) keeps uniform weights; a task far from convergence gains weight", () => {
  const m = excessmtl.create(2, { robustStepSize: 1 });
  const o1 = m.combine(mkInput([[1, 0], [0, 1]]));
  assert.deepEqual(Array.from(o1.weights!), [0.5, 0.5]);
  // task 0's gradient keeps its size, task 1's shrinks: E_0/B_0 > E_1/B_1, so α_0 grows
  const o2 = m.combine(mkInput([[1, 0], [0, 0.1]]));
  assert.ok(o2.weights![0]! > 0.5 && o2.weights![1]! < 0.5);
  assert.ok(Math.abs(o2.weights![0]! + o2.weights![1]! - 1) < 1e-12, "weights on the simplex");
  assertDirectionMatchesCoeffs(o2, [[1, 0], [0, 0.1]], 1e-6);
});

test("excessmtl: embedding rows (after stableDim) change neither the accumulators nor the weights", () => {
  const prefix = randomRows(3, 5, 41);
  const mk = (tail: number[][], k: number) => {
    const inp = mkInput(prefix.map((r, i) => [...r.map((x) => x * (1 + 0.3 * k * i)), ...tail[i]!]), { step: k });
    inp.stableDim = 5;
    return inp;
  };
  const a = excessmtl.create(3, { robustStepSize: 0.5 });
  const b = excessmtl.create(3, { robustStepSize: 0.5 });
  for (let k = 0; k < 4; k++) {
    const oa = a.combine(mk(randomRows(3, 2 + k, 50 + k), k));
    const ob = b.combine(mk(randomRows(3, 7 - k, 60 + k).map((r) => r.map((x) => 100 * x)), k));
    assert.deepEqual(Array.from(oa.weights!), Array.from(ob.weights!), `step ${k}`);
  }
  assert.deepEqual(a.getState(), b.getState());
  assert.equal(f32FromJson((a.getState() as { acc: string[] }).acc[0], "acc").length, 5, "accumulators over the prefix only");
  // a change of the stable length is refused, naming the cause
  const bad = mkInput(randomRows(3, 8, 1));
  bad.stableDim = 6;
  assert.throws(() => a.combine(bad), /stable gradient length 6 differs/);
});

test("excessmtl: declared properties hold (cross-method checker), shapes and finiteness on degenerate input", () => {
  for (const p of excessmtl.properties!) assert.equal(propertyViolation(excessmtl as never, p), null, p);
  // direction = Σ α_i g_i holds too (not declared: the registry ties that declaration to a Gramian form)
  assert.equal(propertyViolation(excessmtl as never, "linear-combination"), null);
  const m = excessmtl.create(3);
  for (const rows of [[[0, 0, 0], [1, 2, 3], [0, 0, 0]], [[1e-20, 0, 0], [0, 0, 0], [3, 0, 0]], [[0, 0, 0], [0, 0, 0], [0, 0, 0]]]) {
    const out = m.combine(mkInput(rows));
    assertWellFormed(out, 3, 3);
    assert.ok(Math.abs(out.weights!.reduce((s, x) => s + x, 0) - 1) < 1e-12);
  }
});

test("excessmtl: options are validated naming the option; unknown keys suggest the right one", () => {
  assert.throws(() => excessmtl.create(2, { robustStepSize: -1 }), /option robustStepSize must be a finite number >= 0/);
  assert.throws(() => excessmtl.create(2, { warmupSteps: 0 }), /option warmupSteps must be an integer >= 1/);
  assert.throws(() => excessmtl.create(2, { warmupSteps: 1.5 }), /warmupSteps/);
  assert.throws(() => createMethod("excessmtl", 2, { robustStepsize: 1 }), /unknown option "robustStepsize".*robustStepSize/);
  assert.equal(createMethod("excess-mtl", 2).name, "excessmtl", "alias");
});

test("excessmtl: checkpoint round trip (state -> JSON -> new method) gives identical next steps; bad states are refused", () => {
  const steps = [0, 1, 2, 3, 4, 5].map((k) => {
    const inp = mkInput(randomRows(3, 7 + (k % 3), 80 + k).map((r, i) => r.map((x) => x * (1 + k * i * 0.2))), { step: k });
    inp.stableDim = 6;
    return inp;
  });
  for (const warmupSteps of [1, 3]) assertStateRoundTrip(() => excessmtl.create(3, { robustStepSize: 0.7, warmupSteps }), steps.slice(0, 2), steps.slice(2));
  const m = excessmtl.create(2);
  assert.throws(() => m.setState({ t: 1, weights: [0.7, 0.7], baseSum: [1, 1], acc: null }), /weights must sum to 1/);
  assert.throws(() => m.setState({ t: 1, weights: [0.5, 0.5], baseSum: [1], acc: null }), /baseSum must be an array of 2 numbers/);
  assert.throws(() => m.setState({ t: 1, weights: [0.5, 0.5], baseSum: [1, 1], acc: [f32ToJson(Float32Array.of(1)), f32ToJson(Float32Array.of(-1))] }), /acc\[1\]\[0\] must be a finite number >= 0/);
  assert.throws(() => m.setState({ t: 1, weights: [0.5, 0.5], baseSum: [1, 1], acc: [[1], [1]] }), /acc\[0\] must be a base64 string/);
  assert.throws(() => m.setState({ t: 1, weights: [0.5, 0.5], baseSum: [1, 1], acc: ["AAAA", "AAA="] }), /not a whole number of float32 values/);
  // the base64 form is exact, and about a quarter of a number list's size
  const v = Float32Array.from({ length: 1000 }, (_, i) => Math.fround(Math.sin(i) * 1e-3 * (i + 1)));
  assert.deepEqual(f32FromJson(JSON.parse(JSON.stringify(f32ToJson(v))), "v"), v);
  assert.ok(f32ToJson(v).length < JSON.stringify(Array.from(v)).length / 3);
  assert.throws(() => m.setState(null), /setState expects an object/);
});

test("excessmtl: trains every architecture (accumulators over the shared dense parameters)", async () => {
  for (const { arch, method, results } of await trainEveryArchitecture("excessmtl", { robustStepSize: 0.5 })) {
    const st = method.getState() as { acc: string[]; weights: number[] };
    assert.equal(f32FromJson(st.acc[0], "acc").length, sharedLayout(arch).stableDim, `${arch}: accumulator length = stable prefix`);
    const w = results.at(-1)!.balance.weights!;
    assert.ok(Math.abs(w.reduce((s, x) => s + x, 0) - 1) < 1e-9, `${arch}: weights on the simplex`);
  }
});
