import { test } from "node:test";
import assert from "node:assert/strict";
import { auc } from "../../src/metrics/auc.ts";
import { gauc, gaucAll } from "../../src/metrics/gauc.ts";
import { Rng } from "../../src/util/rng.ts";

const f32 = (xs: number[]) => Float32Array.from(xs);
const f64 = (xs: number[]) => Float64Array.from(xs);
const i32 = (xs: number[]) => Int32Array.from(xs);

// Rows deliberately interleaved across groups.
//  group 7: labels 1,0,0 scores .9,.1,.5  -> AUC 1   (3 rows, 1 pos)
//  group 3: labels 1,1,0,0 scores .2,.6,.4,.6 -> pos{.2,.6} neg{.4,.6}: (0+0)+(1+.5) = 1.5/4 = .375 (4 rows, 2 pos)
//  group 5: labels 1,1 -> skipped (single class)
//  group -2: labels 0 -> skipped
const labels = f32([1, 1, 0, 1, 1, 0, 1, 0, 0, 0, 0]);
const scores = f64([0.9, 0.2, 0.1, 0.3, 0.6, 0.4, 0.8, 0.6, 0.5, 0.3, 0.1]);
const groups = i32([7, 3, 7, 5, 3, 3, 5, 3, 7, -2, -2]);

test("gauc: count weighting (default) on a hand-computed example", () => {
  const r = gauc(labels, scores, groups);
  assert.equal(r.groupsUsed, 2);
  assert.equal(r.groupsSkipped, 2);
  assert.equal(r.rowsUsed, 7);
  assert.ok(Math.abs(r.gauc - (3 * 1 + 4 * 0.375) / 7) < 1e-15, String(r.gauc));
});

test("gauc: uniform and positives weighting", () => {
  assert.ok(Math.abs(gauc(labels, scores, groups, { weighting: "uniform" }).gauc - (1 + 0.375) / 2) < 1e-15, "uniform");
  assert.ok(Math.abs(gauc(labels, scores, groups, { weighting: "positives" }).gauc - (1 * 1 + 2 * 0.375) / 3) < 1e-15, "positives");
});

test("gauc: a single group equals plain auc; NaN when every group is one class", () => {
  const rng = new Rng(3);
  const n = 500;
  const y = new Float32Array(n);
  const s = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    y[i] = rng.next() < 0.3 ? 1 : 0;
    s[i] = rng.int(20);
  }
  const r = gauc(y, s, new Int32Array(n).fill(42));
  assert.equal(r.gauc, auc(y, s));
  assert.equal(r.rowsUsed, n);
  const none = gauc(f32([1, 0]), f64([1, 2]), i32([1, 2]));
  assert.ok(Number.isNaN(none.gauc));
  assert.equal(none.groupsUsed, 0);
  assert.equal(none.groupsSkipped, 2);
  assert.equal(none.rowsUsed, 0);
});

test("gaucAll matches a per-group reference built from auc() on random data", () => {
  const rng = new Rng(11);
  for (let trial = 0; trial < 30; trial++) {
    const n = 50 + rng.int(300);
    const nGroups = 1 + rng.int(25);
    const y = new Float32Array(n);
    const s = new Float64Array(n);
    const g = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      y[i] = rng.next() < 0.35 ? 1 : 0;
      s[i] = rng.int(8);
      g[i] = rng.int(nGroups) * 1000 - 5000; // negative and sparse ids
    }
    const ids = [...new Set(g)];
    let sc = 0, wc = 0, su = 0, nu = 0, sp = 0, wp = 0, skipped = 0;
    for (const id of ids) {
      const idx = [...g.keys()].filter((i) => g[i] === id);
      const gy = Float32Array.from(idx, (i) => y[i]!);
      const a = auc(gy, Float64Array.from(idx, (i) => s[i]!));
      if (Number.isNaN(a)) {
        skipped++;
        continue;
      }
      const pos = gy.reduce((p, v) => p + v, 0);
      sc += idx.length * a; wc += idx.length; su += a; nu++; sp += pos * a; wp += pos;
    }
    const r = gaucAll(y, s, g);
    assert.equal(r.groupsUsed, nu);
    assert.equal(r.groupsSkipped, skipped);
    assert.equal(r.rowsUsed, wc);
    if (nu > 0) {
      assert.ok(Math.abs(r.count - sc / wc) < 1e-12, `trial ${trial} count`);
      assert.ok(Math.abs(r.uniform - su / nu) < 1e-12, `trial ${trial} uniform`);
      assert.ok(Math.abs(r.positives - sp / wp) < 1e-12, `trial ${trial} positives`);
    }
  }
});

test("gauc: validates arguments", () => {
  assert.throws(() => gauc(f32([0, 1]), f64([1, 2]), i32([1])), /labels has length 2 but groups has length 1/);
  assert.throws(() => gauc(f32([0, 3]), f64([1, 2]), i32([1, 1])), /labels\[1\] = 3 is not binary/);
  assert.throws(() => gauc(f32([0, 1]), f64([NaN, 2]), i32([1, 1])), /scores\[0\] is NaN/);
  assert.throws(
    () => gauc(f32([0, 1]), f64([1, 2]), i32([1, 1]), { weighting: "impressions" as never }),
    /opts\.weighting must be one of count, uniform, positives/,
  );
});
