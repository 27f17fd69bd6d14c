import { test } from "node:test";
import assert from "node:assert/strict";
import { MAX_ABS_GRAD, NonFiniteInputError, checkInput, checkRange, checkTasks, expectNullState, finish, gramOf, independentSubset, withDefaults } from "../../src/balance/common.ts";
import { makeInput } from "./surgery-helpers.ts";

test("finish: direction = Σ c_i g_i, taskScale ones, diagnostics from the Gramian", () => {
  // g1 = [1,2,0], g2 = [-1,0,3]; G = [[5,-1],[-1,10]]
  const grads = [Float32Array.from([1, 2, 0]), Float32Array.from([-1, 0, 3])];
  const G = Float64Array.from([5, -1, -1, 10]);
  const out = finish(grads, G, Float64Array.from([2, 0.5]));
  // 2*[1,2,0] + 0.5*[-1,0,3] = [1.5, 4, 1.5]
  assert.deepEqual(Array.from(out.direction), [1.5, 4, 1.5]);
  assert.deepEqual(Array.from(out.taskScale), [1, 1]);
  assert.equal(out.weights, undefined);
  assert.equal(out.diagnostics.conflicts, 1);
  assert.ok(Math.abs(out.diagnostics.norms[0]! - Math.sqrt(5)) < 1e-15);
  assert.ok(Math.abs(out.diagnostics.cosines[1]! - -1 / Math.sqrt(50)) < 1e-15);
});

test("finish: passes taskScale/weights through and rejects non-finite coefficients", () => {
  const grads = [Float32Array.from([1]), Float32Array.from([2])];
  const G = Float64Array.from([1, 2, 2, 4]);
  const ts = Float64Array.from([0.5, 2]);
  const w = Float64Array.from([3, 4]);
  const out = finish(grads, G, Float64Array.from([1, 1]), { taskScale: ts, weights: w });
  assert.equal(out.taskScale, ts);
  assert.equal(out.weights, w);
  assert.equal(out.diagnostics.conflicts, 0);
  assert.throws(() => finish(grads, G, Float64Array.from([NaN, 1])), /non-finite coefficient for task 0/);
  assert.throws(() => finish(grads, G, Float64Array.from([1])), /1 coefficients for 2 tasks/);
});

test("gramOf: uses input.gram when given, computes it otherwise, validates its size", () => {
  const input = makeInput([[1, 2], [3, -1]]);
  assert.deepEqual(Array.from(gramOf(input)), [5, 1, 1, 10]);
  const fake = Float64Array.from([9, 9, 9, 9]);
  assert.equal(gramOf({ ...input, gram: fake }), fake);
  assert.throws(() => gramOf({ ...input, gram: new Float64Array(3) }), /2x2 Gramian/);
});

test("withDefaults / checks: name the option and what to do", () => {
  assert.deepEqual(withDefaults("m", { tau: 0.1, eps: 1 }, { tau: 0.5 }), { tau: 0.5, eps: 1 });
  assert.deepEqual(withDefaults("m", { tau: 0.1 }, { tau: undefined }), { tau: 0.1 });
  assert.throws(() => withDefaults("m", { tau: 0.1 }, { tua: 1 } as never), /m: unknown option "tua"; valid options are tau/);
  assert.throws(() => checkRange("m", "tau", 1.5, 0, 1), /m: option tau must be a finite number in \[0, 1\], got 1.5/);
  assert.throws(() => checkRange("m", "eps", -1, 0, Infinity), /option eps must be a finite number >= 0/);
  assert.throws(() => checkRange("m", "eps", NaN, 0, Infinity), /option eps/);
  assert.equal(checkRange("m", "tau", 1, 0, 1), 1);
  assert.throws(() => checkTasks("m", 0), /numTasks must be an integer >= 1/);
  assert.throws(() => checkInput("m", 3, makeInput([[1], [2]])), /built for 3 tasks but got 2/);
  assert.throws(() => expectNullState("m", { a: 1 }), /stateless/);
  expectNullState("m", null);
});

test("independentSubset: drops colinear and zero vectors, keeps independent ones", () => {
  // vectors a=[1,0,0], b=[2,0,0] (colinear with a, larger), c=[0,1,0], z=0
  const V = [[1, 0, 0], [2, 0, 0], [0, 1, 0], [0, 0, 0]];
  const m = V.length;
  const A = new Float64Array(m * m);
  for (let i = 0; i < m; i++) for (let j = 0; j < m; j++) A[i * m + j] = V[i]!.reduce((s, x, k) => s + x * V[j]![k]!, 0);
  // b has the largest norm and is picked first; a is then dependent; c independent.
  assert.deepEqual(Array.from(independentSubset(A, m)), [1, 2]);
  assert.deepEqual(Array.from(independentSubset(new Float64Array(4), 2)), []);
  // near-dependent: third = a + c + 1e-6 e3 -> residual² 1e-12 ≤ 1e-8·max diag: dropped
  const W = [[1, 0, 0], [0, 1, 0], [1, 1, 1e-6]];
  const B = new Float64Array(9);
  for (let i = 0; i < 3; i++) for (let j = 0; j < 3; j++) B[i * 3 + j] = W[i]!.reduce((s, x, k) => s + x * W[j]![k]!, 0);
  assert.equal(independentSubset(B, 3).length, 2);
  // ... but not with a looser tolerance
  assert.equal(independentSubset(B, 3, 1e-14).length, 3);
});

test("checkInput: the first bad gradient entry or loss is reported with its task and position", () => {
  const ok = makeInput([[1, 2, 3], [4, 5, 6]]);
  assert.doesNotThrow(() => checkInput("m", 2, ok));
  const bad = makeInput([[1, 2, 3], [4, Number.NaN, Infinity]]);
  assert.throws(
    () => checkInput("m", 2, bad),
    (e: unknown) => e instanceof NonFiniteInputError && e.task === 1 && e.position === 1 && e.what === "gradient" && /m: gradient of task 1/.test(e.message),
  );
  // the limit itself passes, the next float32 above it does not
  assert.doesNotThrow(() => checkInput("m", 2, makeInput([[Math.fround(MAX_ABS_GRAD) / 2], [0]])));
  assert.throws(() => checkInput("m", 2, makeInput([[0], [MAX_ABS_GRAD * 4]])), /task 1 is exploding .* position 0/);
  assert.throws(
    () => checkInput("m", 2, makeInput([[1], [2]], 1, [0.5, Infinity])),
    (e: unknown) => e instanceof NonFiniteInputError && e.task === 1 && e.what === "loss" && /loss of task 1 is not finite/.test(e.message),
  );
});

test("unknown option names get a did-you-mean suggestion", () => {
  assert.throws(() => withDefaults("m", { tau: 0.1, eps: 1 }, { tua: 1 } as never), /unknown option "tua"; valid options are tau, eps; did you mean "tau"\?/);
});
