import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { calibration, type Binning } from "../../src/metrics/calibration.ts";
import { Rng } from "../../src/util/rng.ts";

const f32 = (xs: number[]) => Float32Array.from(xs);
const f64 = (xs: number[]) => Float64Array.from(xs);
const close = (a: number, b: number, tol = 1e-12, what = "") => assert.ok(Math.abs(a - b) <= tol, `${what}: ${a} vs ${b}`);

test("calibration: a hand-computed case, equal width and equal mass", () => {
  const y = f32([0, 0, 1, 1]);
  const p = f64([0.1, 0.2, 0.3, 0.9]);
  // width, 2 bins: [0, .5) holds .1 .2 .3 (mean .2, rate 1/3, gap 2/15); [.5, 1] holds .9 (rate 1, gap .1)
  const w = calibration(y, p, { bins: 2, binning: "width" });
  assert.deepEqual(w.bins.map((b) => [b.count, b.positives]), [[3, 1], [1, 1]]);
  close(w.bins[0]!.meanPred, 0.2, 1e-15);
  close(w.ece, (3 / 4) * (2 / 15) + (1 / 4) * 0.1, 1e-15, "ECE width");
  close(w.mce, 2 / 15, 1e-15, "MCE width");
  // mass, 2 bins: {.1, .2} (mean .15, rate 0) and {.3, .9} (mean .6, rate 1): ECE = .5 * .15 + .5 * .4
  const m = calibration(y, p, { bins: 2 });
  assert.equal(m.binning, "mass");
  assert.deepEqual(m.bins.map((b) => [b.lo, b.hi, b.count, b.positives]), [[0.1, 0.2, 2, 0], [0.3, 0.9, 2, 2]]);
  close(m.ece, 0.275, 1e-15, "ECE mass");
  close(m.mce, 0.4, 1e-15, "MCE mass");
  close(m.meanPred, 0.375, 1e-15);
  assert.equal(m.rate, 0.5);
  // perfectly calibrated within each bin: ECE 0
  assert.equal(calibration(f32([0, 1, 0, 1]), f64([0.5, 0.5, 0.5, 0.5]), { bins: 3 }).ece, 0);
});

test("calibration: a run of equal predictions never straddles an equal-mass edge", () => {
  // 6 rows, 3 bins: the edges at 2 and 4 fall inside the run of 0.4s, which stays whole
  const c = calibration(f32([0, 1, 0, 1, 0, 1]), f64([0.1, 0.4, 0.4, 0.4, 0.4, 0.8]), { bins: 3 });
  assert.deepEqual(c.bins.map((b) => b.count), [5, 1]);
  assert.deepEqual(c.bins.map((b) => [b.lo, b.hi]), [[0.1, 0.4], [0.8, 0.8]]);
});

test("calibration: matches the numpy fixture (scripts/gen-calibration-fixture.py) to 1e-12", () => {
  const fx = JSON.parse(readFileSync(new URL("../fixtures/metrics/calibration.json", import.meta.url), "utf8")) as {
    cases: { name: string; bins: number; binning: Binning; labels: number[]; probs: number[]; expected: { bins: { lo: number; hi: number; count: number; positives: number; meanPred: number | null; rate: number | null }[]; ece: number; mce: number; meanPred: number; rate: number; rows: number } }[];
  };
  assert.ok(fx.cases.length >= 8);
  for (const c of fx.cases) {
    const r = calibration(f32(c.labels), f64(c.probs), { bins: c.bins, binning: c.binning });
    assert.equal(r.bins.length, c.expected.bins.length, `${c.name}: bins`);
    r.bins.forEach((b, k) => {
      const e = c.expected.bins[k]!;
      assert.equal(b.count, e.count, `${c.name}: bin ${k} count`);
      assert.equal(b.positives, e.positives, `${c.name}: bin ${k} positives`);
      close(b.lo, e.lo, 1e-15, `${c.name}: bin ${k} lo`);
      close(b.hi, e.hi, 1e-15, `${c.name}: bin ${k} hi`);
      if (e.meanPred === null) assert.ok(Number.isNaN(b.meanPred) && Number.isNaN(b.rate), `${c.name}: empty bin ${k}`);
      else {
        close(b.meanPred, e.meanPred, 1e-12, `${c.name}: bin ${k} meanPred`);
        close(b.rate, e.rate!, 1e-12, `${c.name}: bin ${k} rate`);
      }
    });
    close(r.ece, c.expected.ece, 1e-12, `${c.name}: ECE`);
    close(r.mce, c.expected.mce, 1e-12, `${c.name}: MCE`);
    close(r.meanPred, c.expected.meanPred, 1e-12, `${c.name}: mean prediction`);
    close(r.rate, c.expected.rate, 1e-15, `${c.name}: rate`);
    assert.equal(r.rows, c.expected.rows);
  }
  // the fixture exercises what it claims: tie runs moved an equal-mass edge, and equal-width bins were left empty
  assert.ok(fx.cases.some((c) => c.binning === "mass" && c.expected.bins.some((b) => b.count !== Math.floor(c.labels.length / c.bins))));
  assert.ok(fx.cases.some((c) => c.binning === "width" && c.expected.bins.some((b) => b.count === 0)));
});

test("calibration: properties (row order, counts, ECE <= MCE, bounds)", () => {
  const rng = new Rng(11);
  for (let rep = 0; rep < 20; rep++) {
    const n = 1 + rng.int(400);
    const y = new Float32Array(n);
    const p = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      p[i] = Math.round(rng.next() * 50) / 50;
      y[i] = rng.next() < p[i]! ? 1 : 0;
    }
    const perm = rng.permutation(n);
    const y2 = new Float32Array(n);
    const p2 = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      y2[i] = y[perm[i]!]!;
      p2[i] = p[perm[i]!]!;
    }
    for (const binning of ["mass", "width"] as const) {
      const bins = 1 + rng.int(12);
      const a = calibration(y, p, { bins, binning });
      const b = calibration(y2, p2, { bins, binning });
      assert.deepEqual(b, a, "the result does not depend on the row order (bit for bit)");
      assert.ok(a.bins.length <= bins);
      assert.equal(a.bins.reduce((s, x) => s + x.count, 0), n);
      assert.ok(a.ece >= 0 && a.ece <= a.mce + 1e-15 && a.mce <= 1, `ECE ${a.ece}, MCE ${a.mce}`);
      for (const x of a.bins) if (x.count > 0) assert.ok(x.meanPred >= x.lo - 1e-15 && x.meanPred <= x.hi + 1e-15);
    }
  }
});

test("calibration: validates arguments naming the index", () => {
  assert.throws(() => calibration(f32([0, 2]), f64([0.5, 0.5])), /labels\[1\] = 2 is not binary/);
  assert.throws(() => calibration(f32([0, 1]), f64([0.5, 1.5])), /probs\[1\] = 1\.5 is not a probability/);
  assert.throws(() => calibration(f32([0, 1]), f64([NaN, 0.5])), /probs\[0\] = NaN/);
  assert.throws(() => calibration(f32([0]), f64([0.5]), { bins: 0 }), /opts\.bins must be an integer >= 1/);
  assert.throws(() => calibration(f32([0]), f64([0.5]), { binning: "quantile" as Binning }), /opts\.binning must be one of mass, width/);
  assert.throws(() => calibration(f32([0]), f64([0.5, 0.5])), /labels has length 1 but probs has length 2/);
  const e = calibration(f32([]), f64([]));
  assert.ok(Number.isNaN(e.ece) && e.bins.length === 0);
});
