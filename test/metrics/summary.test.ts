import { test } from "node:test";
import assert from "node:assert/strict";
import { averageOverTasks, mean, meanStd, relativeImprovement, sampleStd } from "../../src/metrics/summary.ts";

const close = (a: number, b: number, tol = 1e-12) => assert.ok(Math.abs(a - b) <= tol, `${a} vs ${b}`);

test("mean and sample std (n-1), std 0 for one seed", () => {
  assert.equal(mean([1, 2, 3, 4]), 2.5);
  close(sampleStd([1, 2, 3, 4]), Math.sqrt(5 / 3));
  close(sampleStd(Float64Array.from([2, 4, 4, 4, 5, 5, 7, 9])), Math.sqrt(32 / 7));
  assert.equal(sampleStd([0.7]), 0);
  assert.deepEqual(meanStd([0.7]), { mean: 0.7, std: 0, n: 1 });
  const ms = meanStd([0.5, 0.7]);
  close(ms.mean, 0.6);
  close(ms.std, Math.SQRT2 * 0.1);
  assert.equal(ms.n, 2);
  assert.throws(() => meanStd([]), /meanStd: values is empty/);
});

test("AV and RI on hand-computed values", () => {
  close(averageOverTasks([0.7, 0.8, 0.9]), 0.8);
  // (0.77-0.7)/0.7 = 0.1, (0.72-0.8)/0.8 = -0.1, (0.9-0.9)/0.9 = 0  -> mean 0
  close(relativeImprovement([0.77, 0.72, 0.9], [0.7, 0.8, 0.9]), 0);
  // (0.55-0.5)/0.5 = .1 and (0.84-0.8)/0.8 = .05 -> .075
  close(relativeImprovement([0.55, 0.84], [0.5, 0.8]), 0.075);
  assert.equal(relativeImprovement([0.5, 0.8], [0.5, 0.8]), 0);
});

test("RI validates task count and zero baseline; NaN propagates", () => {
  assert.throws(() => relativeImprovement([0.5], [0.5, 0.6]), /perTask has 1 tasks but single has 2/);
  assert.throws(() => relativeImprovement([0.5, 0.6], [0.5, 0]), /single\[1\] is 0/);
  assert.ok(Number.isNaN(averageOverTasks([0.5, NaN])));
  assert.ok(Number.isNaN(relativeImprovement([NaN], [0.5])));
});
