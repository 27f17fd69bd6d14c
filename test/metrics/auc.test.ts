import { test } from "node:test";
import assert from "node:assert/strict";
import { auc, mannWhitneyU, sortRange } from "../../src/metrics/auc.ts";
import { Rng } from "../../src/util/rng.ts";

const f32 = (xs: number[]) => Float32Array.from(xs);
const f64 = (xs: number[]) => Float64Array.from(xs);

/** O(n²) reference: fraction of (pos, neg) pairs ordered correctly, ties 1/2. */
function pairAuc(labels: ArrayLike<number>, scores: ArrayLike<number>): number {
  let good = 0;
  let pairs = 0;
  for (let i = 0; i < labels.length; i++) {
    if (labels[i] !== 1) continue;
    for (let j = 0; j < labels.length; j++) {
      if (labels[j] !== 0) continue;
      pairs++;
      if (scores[i]! > scores[j]!) good += 1;
      else if (scores[i] === scores[j]) good += 0.5;
    }
  }
  return pairs === 0 ? NaN : good / pairs;
}

test("auc: perfect ranking is 1, reversed is 0, all-equal scores are 0.5", () => {
  const y = f32([0, 0, 1, 1]);
  assert.equal(auc(y, f64([0.1, 0.2, 0.3, 0.4])), 1);
  assert.equal(auc(y, f64([0.4, 0.3, 0.2, 0.1])), 0);
  assert.equal(auc(y, f64([0.7, 0.7, 0.7, 0.7])), 0.5);
});

test("auc: hand-computed cases with ties", () => {
  // pos {0.5, 0.8}, neg {0.5, 0.2}: pairs (0.5,0.5)=½ (0.5,0.2)=1 (0.8,0.5)=1 (0.8,0.2)=1 → 3.5/4
  assert.equal(auc(f32([1, 0, 1, 0]), f64([0.5, 0.5, 0.8, 0.2])), 0.875);
  // pos {1, 2}, neg {1, 1, 3}: vs1: ½+½, vs1: ½+1 ... = (0.5+0.5+0)+(1+1+0) = 3 of 6
  assert.equal(auc(f32([1, 0, 0, 1, 0]), f64([1, 1, 1, 2, 3])), 0.5);
  // one pos tied with one of two negatives, above the other: (½ + 1)/2
  assert.equal(auc(f32([1, 0, 0]), f32([2, 2, 1])), 0.75);
});

test("auc: -0 and 0 are one tie block", () => {
  assert.equal(auc(f32([1, 0]), f64([-0, 0])), 0.5);
  assert.equal(auc(f32([0, 1]), f64([-0, 0])), 0.5);
});

test("auc: infinite scores are ordered", () => {
  assert.equal(auc(f32([0, 1, 0, 1]), f64([-Infinity, Infinity, 0, 1])), 1);
});

test("auc: matches O(n²) pair counting on random inputs with many ties", () => {
  const rng = new Rng(7);
  for (let trial = 0; trial < 200; trial++) {
    const n = 2 + rng.int(60);
    const levels = 1 + rng.int(6); // few distinct scores => heavy ties
    const y = new Float32Array(n);
    const s32 = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      y[i] = rng.next() < 0.4 ? 1 : 0;
      s32[i] = rng.int(levels) / levels - 0.5;
    }
    const s64 = Float64Array.from(s32);
    const ref = pairAuc(y, s32);
    const got32 = auc(y, s32);
    const got64 = auc(y, s64);
    if (Number.isNaN(ref)) {
      assert.ok(Number.isNaN(got32) && Number.isNaN(got64), `trial ${trial}: expected NaN`);
    } else {
      assert.ok(Math.abs(got32 - ref) < 1e-12, `trial ${trial}: ${got32} vs ${ref}`);
      assert.ok(Math.abs(got64 - ref) < 1e-12, `trial ${trial}: ${got64} vs ${ref}`);
    }
  }
});

test("auc: returns NaN when a class is absent or input is empty", () => {
  assert.ok(Number.isNaN(auc(f32([1, 1, 1]), f64([0.1, 0.2, 0.3]))));
  assert.ok(Number.isNaN(auc(f32([0, 0]), f64([0.1, 0.2]))));
  assert.ok(Number.isNaN(auc(f32([]), f64([]))));
});

test("auc: rejects non-binary labels naming the index, NaN scores and length mismatch", () => {
  assert.throws(() => auc(f32([0, 1, 0.5]), f64([1, 2, 3])), /labels\[2\] = 0\.5 is not binary/);
  assert.throws(() => auc(f32([0, 2]), f64([1, 2])), /labels\[1\] = 2/);
  assert.throws(() => auc(f32([0, NaN]), f64([1, 2])), /labels\[1\] = NaN/);
  assert.throws(() => auc(f32([0, 1]), f64([1, NaN])), /scores\[1\] is NaN/);
  assert.throws(() => auc(f32([0, 1]), f64([1])), /labels has length 2 but scores has length 1/);
});

test("sortRange sorts only its range (short and long runs)", () => {
  const rng = new Rng(9);
  for (const len of [0, 1, 5, 24, 25, 200]) {
    const v = Float64Array.from({ length: len + 6 }, () => rng.int(10) - 5);
    const before = Float64Array.from(v);
    sortRange(v, 3, 3 + len);
    const want = Array.from(before.subarray(3, 3 + len)).sort((a, b) => a - b);
    assert.deepEqual(Array.from(v.subarray(3, 3 + len)), want, `len ${len}`);
    assert.deepEqual(Array.from(v.subarray(0, 3)), Array.from(before.subarray(0, 3)), `len ${len} prefix`);
    assert.deepEqual(Array.from(v.subarray(3 + len)), Array.from(before.subarray(3 + len)), `len ${len} suffix`);
  }
});

test("mannWhitneyU counts pairs within the given runs only", () => {
  // [junk, pos 1 2 2, neg 0 2 3, junk]: pairs above = 1 (1>0) + 2*(1 + 0.5) = 4
  const v = Float64Array.from([9, 1, 2, 2, 0, 2, 3, -9]);
  assert.equal(mannWhitneyU(v, 1, 4, 4, 7), 4);
  assert.equal(mannWhitneyU(v, 1, 1, 4, 7), 0);
});
