import { test } from "node:test";
import assert from "node:assert/strict";
import { moco } from "../../src/balance/moco.ts";
import { f32FromJson, f32ToJson } from "../../src/balance/methodkit.ts";
import { createMethod } from "../../src/balance/registry.ts";
import { assertClose, assertDirectionMatchesCoeffs, assertStateRoundTrip, assertWellFormed, mkInput, randomRows } from "./methodfixtures.ts";
import { propertyViolation } from "./property-checks.ts";
import { fixtureInput, loadFixture, near, sharedLayout, trainEveryArchitecture } from "./stateful-helpers.ts";

interface Expected {
  lambda: number[];
  direction: number[];
}

test("moco: λ and directions match the float64 reference of Algorithm 1 (and of LibMTL's variant) over several steps", () => {
  const cases = loadFixture<Expected>("moco");
  for (const c of cases) {
    const m = moco.create(c.grads[0]!.length, c.options);
    c.expected.forEach((e, k) => {
      const out = m.combine(fixtureInput(c, k));
      near(out.weights!, e.lambda, 2e-6, `${c.name} step ${k} λ`);
      near(out.direction, e.direction, 2e-5, `${c.name} step ${k} direction`);
      assert.deepEqual(Array.from(out.taskScale), new Array<number>(c.grads[0]!.length).fill(1));
    });
  }
  // the boundary case really has a zero weight somewhere (projection, not softmax)
  assert.ok(cases[1]!.expected.some((e) => e.lambda.some((x) => x === 0)));
});

test("moco: first step by hand: y = β g, λ = Π(1/T − γ YᵀY λ), direction = Σ λ y", () => {
  // T = 2, g1 = [1, 0], g2 = [0, 2]; β_1 = 0.5: y1 = [0.5, 0], y2 = [0, 1]; YᵀY = diag(0.25, 1)
  // v = [0.5, 0.5] − 0.1·[0.125, 0.5] = [0.4875, 0.45]; projection: shift by (0.9375 − 1)/2 → [0.51875, 0.48125]
  const out = moco.create(2).combine(mkInput([[1, 0], [0, 2]]));
  assertClose(out.weights!, [0.51875, 0.48125], 1e-12, "λ");
  assertClose(out.direction, [0.259375, 0.48125], 1e-7, "direction");
  assertDirectionMatchesCoeffs(out, [[1, 0], [0, 2]], 1e-7); // no history: direction = Σ coeffs g
});

test("moco: y tracks the stable prefix only; the rows use this step's gradient", () => {
  const m = moco.create(2, { gamma: 0.3 });
  const prefix = randomRows(2, 4, 5);
  const step = (tail: number[][], k: number) => {
    const inp = mkInput(prefix.map((r, i) => [...r, ...tail[i]!]), { step: k });
    inp.stableDim = 4;
    return m.combine(inp);
  };
  step(randomRows(2, 3, 6), 0);
  const tail = randomRows(2, 2, 7);
  const out = step(tail, 1);
  const raw = m.getState() as { y: string[]; lambda: number[] };
  const st = { lambda: raw.lambda, y: raw.y.map((r) => f32FromJson(r, "y")) };
  assert.equal(st.y[0]!.length, 4);
  // tail of the direction = Σ λ_i g_i (this step's rows), not a tracked value
  assertClose(out.direction.subarray(4), [0, 1].map((p) => st.lambda[0]! * tail[0]![p]! + st.lambda[1]! * tail[1]![p]!), 1e-6, "rows part");
  // prefix = Σ λ_i y_i
  assertClose(out.direction.subarray(0, 4), [0, 1, 2, 3].map((p) => st.lambda[0]! * st.y[0]![p]! + st.lambda[1]! * st.y[1]![p]!), 1e-6, "prefix part");
  const bad = mkInput(randomRows(2, 8, 1));
  bad.stableDim = 5;
  assert.throws(() => m.combine(bad), /stable gradient length 5 differs/);
});

test("moco: declared properties hold (cross-method checker); weights stay on the simplex on degenerate input", () => {
  for (const p of moco.properties!) assert.equal(propertyViolation(moco as never, p), null, p);
  for (const options of [{}, { normalize: "loss" as const, simplex: "softmax" as const }, { gamma: 50 }]) {
    const m = moco.create(3, options);
    for (const rows of [[[0, 0, 0], [1, 2, 3], [0, 0, 0]], [[1e6, 0, 0], [0, 1e-6, 0], [-1e6, 0, 0]], [[0, 0, 0], [0, 0, 0], [0, 0, 0]]]) {
      const out = m.combine(mkInput(rows, { losses: [0.5, 1, 0] }));
      assertWellFormed(out, 3, 3);
      assert.ok(out.weights!.every((x) => x >= 0));
      assert.ok(Math.abs(out.weights!.reduce((s, x) => s + x, 0) - 1) < 1e-9);
    }
  }
});

test("moco: options are validated naming the option", () => {
  assert.throws(() => moco.create(2, { beta: 0 }), /option beta must be > 0/);
  assert.throws(() => moco.create(2, { beta: 1.5 }), /option beta must be a finite number in \[0, 1\]/);
  assert.throws(() => moco.create(2, { gamma: -1 }), /option gamma/);
  assert.throws(() => moco.create(2, { rho: Number.NaN }), /option rho/);
  assert.throws(() => moco.create(2, { normalize: "l2" as never }), /option normalize must be one of none, loss/);
  assert.throws(() => moco.create(2, { simplex: "sparsemax" as never }), /option simplex must be one of projection, softmax/);
  assert.throws(() => createMethod("moco", 2, { gama: 1 }), /unknown option "gama".*gamma/);
});

test("moco: checkpoint round trip (state -> JSON -> new method) gives identical next steps; bad states are refused", () => {
  const steps = [0, 1, 2, 3, 4].map((k) => {
    const inp = mkInput(randomRows(3, 6 + (k % 2), 90 + k), { step: k, losses: [0.5 + k / 10, 0.7, 1.1] });
    inp.stableDim = 5;
    return inp;
  });
  assertStateRoundTrip(() => moco.create(3, { gamma: 0.8 }), steps.slice(0, 2), steps.slice(2));
  assertStateRoundTrip(() => moco.create(3, { normalize: "loss", simplex: "softmax" }), steps.slice(0, 3), steps.slice(3));
  const m = moco.create(2);
  assert.throws(() => m.setState({ k: 1, lambda: [0.9, 0.9], y: null }), /lambda must sum to 1/);
  assert.throws(() => m.setState({ k: -1, lambda: [0.5, 0.5], y: null }), /k must be an integer >= 0/);
  assert.throws(() => m.setState({ k: 1, lambda: [0.5, 0.5], y: [f32ToJson(Float32Array.of(1, 2)), f32ToJson(Float32Array.of(3))] }), /same length/);
  assert.throws(() => m.setState({ k: 1, lambda: [0.5, 0.5], y: [f32ToJson(Float32Array.of(1)), f32ToJson(Float32Array.of(Number.NaN))] }), /y\[1\]\[0\] must be a finite number/);
});

test("moco: trains every architecture (y over the shared dense parameters)", async () => {
  for (const { arch, method } of await trainEveryArchitecture("moco", { gamma: 1 })) {
    const st = method.getState() as { y: string[]; k: number };
    assert.equal(st.k, 3);
    assert.equal(f32FromJson(st.y[0], "y").length, sharedLayout(arch).stableDim, `${arch}: y over the stable prefix`);
  }
});
