import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { pairedDifference, studentTQuantile } from "../../src/metrics/ci.ts";
import { cdGroups, chiSquareCdf, fCdf, friedman, friedmanFromRanks, holmAdjust, holmFamily, nemenyiCD, normalCdf, pairedTTestP, rankRow, studentizedRangeQuantile } from "../../src/metrics/multiple.ts";

interface Fixture {
  paired: { a: number[]; b: number[]; mean: number; std: number; n: number; p: number }[];
  holm: { p: number[]; adjusted: number[] };
  friedman: { table: number[][]; avgRanks: number[]; chi2_untied: number; pChi2_untied: number; ff: number; pFF: number };
  q: Record<string, { "0.05": number; "0.10": number }>;
  chi2cdf: [number, number, number][];
  fcdf: [number, number, number, number][];
  normcdf: [number, number][];
}
const fx = JSON.parse(readFileSync(new URL("../fixtures/metrics/multiple.json", import.meta.url), "utf8")) as Fixture;

function close(a: number, b: number, tol: number, what: string): void {
  assert.ok(Math.abs(a - b) <= tol, `${what}: ${a} vs ${b} (tol ${tol})`);
}

test("Holm against a hand-computed case", () => {
  // m = 4: sorted 0.01, 0.02, 0.03, 0.04 -> 4*0.01 = 0.04, max(0.04, 3*0.02) = 0.06, max(0.06, 2*0.03) = 0.06, max(0.06, 0.04) = 0.06.
  assert.deepEqual(holmAdjust([0.03, 0.01, 0.04, 0.02]).map((x) => +x.toFixed(12)), [0.06, 0.04, 0.06, 0.06]);
  // NaN is not part of the family (m = 2 here): 2*0.01 = 0.02, max(0.02, 1*0.5) = 0.5.
  const r = holmAdjust([0.5, NaN, 0.01]);
  assert.ok(Number.isNaN(r[1]));
  close(r[0]!, 0.5, 1e-15, "p0");
  close(r[2]!, 0.02, 1e-15, "p2");
  // Capped at 1.
  assert.deepEqual(holmAdjust([0.6, 0.7]), [1, 1]);
  assert.throws(() => holmAdjust([1.5]), /p\[0\] must be in \[0, 1\]/);
});

test("paired t-test p-values and Holm adjustment match scipy", () => {
  for (const [i, f] of fx.paired.entries()) {
    const d = pairedDifference(f.a, f.b);
    close(d.mean, f.mean, 1e-15, `mean ${i}`);
    close(pairedTTestP(d), f.p, 1e-9, `p ${i}`);
  }
  const adj = holmAdjust(fx.holm.p);
  fx.holm.adjusted.forEach((x, i) => close(adj[i]!, x, 1e-12, `adjusted ${i}`));
});

test("Holm-consistent intervals exclude 0 exactly when the adjusted p is below alpha, and are never narrower than the unadjusted ones", () => {
  const fam = fx.paired.map((f) => pairedDifference(f.a, f.b));
  for (const alpha of [0.05, 0.1, 0.2]) {
    const h = holmFamily(fam, alpha);
    let rejected = 0;
    for (const [i, c] of h.entries()) {
      const excludes = c.lo > 0 || c.hi < 0;
      assert.equal(excludes, c.pHolm < alpha, `alpha ${alpha}, comparison ${i}: interval [${c.lo}, ${c.hi}], pHolm ${c.pHolm}`);
      if (excludes) rejected++;
      assert.ok(c.hi - c.lo >= fam[i]!.hi - fam[i]!.lo - 1e-15, "a corrected interval is at least as wide as the 95 % one");
      assert.ok(c.level >= 1 - alpha && c.level <= 1 - alpha / h.length + 1e-15);
    }
    if (alpha === 0.2) assert.ok(rejected >= 1, "the fixture has at least one real effect");
  }
  // The first-ranked comparison gets Bonferroni's level.
  const h = holmFamily(fam, 0.05);
  const best = h.reduce((a, b) => (b.p < a.p ? b : a));
  close(best.level, 1 - 0.05 / fam.length, 1e-15, "Bonferroni level of the smallest p");
  // One seed: no interval, not in the family.
  const one = holmFamily([{ mean: 0.1, std: NaN, n: 1 }, fam[0]!], 0.05);
  assert.ok(Number.isNaN(one[0]!.lo) && Number.isNaN(one[0]!.pHolm));
  assert.equal(one[1]!.m, 1);
});

test("Holm intervals use the level of their step: 1 - alpha/(m - j + 1) while every earlier step rejected, then the first non-rejected step's level", () => {
  // Three comparisons, n = 10, sd = 1: t = mean * sqrt(10). Raw p about 0.001, 0.03 and 0.2:
  // Holm rejects the first (3 * 0.001 < 0.05), not the second (2 * 0.03 > 0.05), so the second and third use level 1 - 0.05/2.
  const fam = [4.6, 2.55, 1.37].map((t) => ({ mean: t / Math.sqrt(10), std: 1, n: 10 }));
  const h = holmFamily(fam, 0.05);
  assert.ok(h[0]!.pHolm < 0.05 && h[1]!.p < 0.05 && h[1]!.pHolm > 0.05, `fixture: p ${h.map((c) => c.p).join(", ")}`);
  const expectLevel = [1 - 0.05 / 3, 1 - 0.05 / 2, 1 - 0.05 / 2];
  h.forEach((c, i) => {
    close(c.level, expectLevel[i]!, 1e-15, `level ${i}`);
    const half = studentTQuantile(1 - (1 - expectLevel[i]!) / 2, 9) / Math.sqrt(10);
    close((c.hi - c.lo) / 2, half, 1e-12, `half-width ${i}`);
  });
  // The raw 95 % interval of the second excludes 0, the Holm one does not.
  assert.ok(pairedTTestP(fam[1]!) < 0.05 && h[1]!.lo < 0);
});

test("ranks: 1 is best, ties share the mean rank; NaN is refused", () => {
  assert.deepEqual(rankRow([0.7, 0.9, 0.8]), [3, 1, 2]);
  assert.deepEqual(rankRow([0.7, 0.9, 0.8], false), [1, 3, 2]);
  assert.deepEqual(rankRow([0.5, 0.7, 0.5, 0.7]), [3.5, 1.5, 3.5, 1.5]);
  assert.throws(() => rankRow([0.5, NaN]), /score 1 is not a finite number/);
});

test("Friedman and Iman-Davenport: Demšar's worked example (JMLR 2006, section 3.2.2)", () => {
  // Four classifiers on 14 data sets, average ranks 3.143, 2.000, 2.893, 1.964:
  // the paper reports chi2_F = 9.28 and F_F = 3.69; F(3, 39) at alpha = 0.05 is 2.85.
  const r = friedmanFromRanks([44 / 14, 2, 40.5 / 14, 27.5 / 14], 14);
  close(r.chi2, 9.28, 0.005, "chi2_F");
  close(r.ff, 3.69, 0.005, "F_F");
  assert.ok(r.pFF < 0.05 && r.pFF > 0.01, `F_F p-value ${r.pFF}`);
  // Nemenyi: q_0.05 = 2.569 for k = 4, so CD = 2.569 * sqrt(4*5/(6*14)) = 1.25 (the paper's value).
  close(nemenyiCD(4, 14, 0.05), 1.25, 0.005, "CD");
});

test("Friedman on a table matches the formula over scipy's ranks, with scipy's chi2 and F tails", () => {
  const r = friedman(fx.friedman.table);
  fx.friedman.avgRanks.forEach((x, j) => close(r.avgRanks[j]!, x, 1e-12, `rank ${j}`));
  close(r.chi2, fx.friedman.chi2_untied, 1e-10, "chi2");
  close(r.pChi2, fx.friedman.pChi2_untied, 1e-9, "p chi2");
  close(r.ff, fx.friedman.ff, 1e-10, "F_F");
  close(r.pFF, fx.friedman.pFF, 1e-9, "p F_F");
  assert.throws(() => friedman([[1, 2, 3]]), /at least 2 datasets/);
  assert.throws(() => friedman([[1, 2, 3], [1, 2]]), /dataset 1 has 2 scores, expected 3/);
});

test("studentized range quantiles match scipy (Demšar's q table, and beyond 10 methods)", () => {
  for (const [k, q] of Object.entries(fx.q)) {
    close(studentizedRangeQuantile(0.95, Number(k)) / Math.SQRT2, q["0.05"], 2e-6, `q_0.05 k=${k}`);
    close(studentizedRangeQuantile(0.9, Number(k)) / Math.SQRT2, q["0.10"], 2e-6, `q_0.10 k=${k}`);
  }
});

test("chi-square, F and normal CDFs match scipy", () => {
  for (const [x, df, p] of fx.chi2cdf) close(chiSquareCdf(x, df), p, 1e-12, `chi2(${x}; ${df})`);
  for (const [x, a, b, p] of fx.fcdf) close(fCdf(x, a, b), p, 1e-11, `F(${x}; ${a}, ${b})`);
  for (const [x, p] of fx.normcdf) close(normalCdf(x), p, Math.max(1e-15, p * 1e-12), `Phi(${x})`);
});

test("critical-difference groups join methods within CD of each other", () => {
  // Sorted ranks 1.0, 1.5, 2.6, 3.0 with CD 1.0: 1.0..1.5 is one group, 2.6..3.0 another; 1.5 -> 2.6 (1.1) joins nothing.
  assert.deepEqual(cdGroups([1.0, 1.5, 2.6, 3.0], 1.0), [[0, 1], [2, 3]]);
  assert.deepEqual(cdGroups([3, 1, 2], 5), [[1, 2, 0]]);
  assert.deepEqual(cdGroups([1, 3, 5], 1), []);
});
