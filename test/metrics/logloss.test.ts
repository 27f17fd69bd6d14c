import { test } from "node:test";
import assert from "node:assert/strict";
import { logloss, loglossFromLogits } from "../../src/metrics/logloss.ts";
import { Rng } from "../../src/util/rng.ts";

const f32 = (xs: number[]) => Float32Array.from(xs);
const f64 = (xs: number[]) => Float64Array.from(xs);
const close = (a: number, b: number, tol = 1e-12) => assert.ok(Math.abs(a - b) <= tol, `${a} vs ${b}`);

test("logloss: hand-computed values", () => {
  close(logloss(f32([1, 0]), f64([0.8, 0.4])), -(Math.log(0.8) + Math.log(0.6)) / 2);
  close(logloss(f32([1]), f64([0.5])), Math.LN2);
  // soft label
  close(logloss(f32([0.25]), f64([0.5])), Math.LN2);
});

test("logloss: probabilities are clipped to [eps, 1-eps]", () => {
  close(logloss(f32([1, 0]), f64([0, 1])), -(Math.log(1e-7) + Math.log1p(-(1 - 1e-7))) / 2);
  close(logloss(f32([1, 0]), f64([0, 1])), -Math.log(1e-7), 1e-8); // 1 - (1 - 1e-7) is not exactly 1e-7
  close(logloss(f32([1]), f64([0]), { eps: 1e-3 }), -Math.log(1e-3));
  close(logloss(f32([0]), f64([1]), { eps: 1e-3 }), -Math.log1p(-(1 - 1e-3)));
  assert.ok(Number.isFinite(logloss(f32([1]), f64([0]))));
});

test("logloss: validates arguments naming the index", () => {
  assert.throws(() => logloss(f32([1, 2]), f64([0.5, 0.5])), /labels\[1\] = 2 is outside \[0, 1\]/);
  assert.throws(() => logloss(f32([1, 0]), f64([0.5, 1.5])), /probs\[1\] = 1\.5 is outside/);
  assert.throws(() => logloss(f32([1, 0]), f64([NaN, 0.5])), /probs\[0\] = NaN/);
  assert.throws(() => logloss(f32([1]), f64([0.5]), { eps: 0 }), /opts\.eps must be in/);
  assert.throws(() => logloss(f32([1]), f64([0.5, 0.5])), /labels has length 1 but probs has length 2/);
  assert.ok(Number.isNaN(logloss(f32([]), f64([]))));
});

test("loglossFromLogits agrees with logloss(sigmoid(z)) for moderate logits", () => {
  const rng = new Rng(5);
  const n = 1000;
  const y = new Float32Array(n);
  const z = new Float64Array(n);
  const p = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    y[i] = rng.next() < 0.3 ? 1 : 0;
    z[i] = rng.normal() * 3;
    p[i] = 1 / (1 + Math.exp(-z[i]!));
  }
  close(loglossFromLogits(y, z), logloss(y, p, { eps: 1e-300 }), 1e-12);
});

test("loglossFromLogits is exact and finite for extreme logits", () => {
  // y=1, z=-800: loss = 800 + log1p(e^-800) = 800 (naive log(sigmoid) would be -Infinity)
  close(loglossFromLogits(f32([1]), f64([-800])), 800);
  close(loglossFromLogits(f32([0]), f64([800])), 800);
  close(loglossFromLogits(f32([1]), f64([800])), 0);
  close(loglossFromLogits(f32([1, 0]), f64([0, 0])), Math.LN2);
  // log1p(e^-40) ≈ 4.25e-18 is kept, not rounded to 0 before the mean
  assert.ok(loglossFromLogits(f32([1]), f64([40])) > 0);
  assert.throws(() => loglossFromLogits(f32([1, 0]), f64([0, Infinity])), /logits\[1\] = Infinity is not finite/);
});
