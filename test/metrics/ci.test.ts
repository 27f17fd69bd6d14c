import { test } from "node:test";
import assert from "node:assert/strict";
import { incompleteBeta, lnGamma, meanInterval, pairedDifference, studentTCdf, studentTQuantile } from "../../src/metrics/ci.ts";

const close = (a: number, b: number, tol: number) => assert.ok(Math.abs(a - b) <= tol, `${a} vs ${b} (tol ${tol})`);

test("lnGamma and the incomplete beta against closed forms", () => {
  close(lnGamma(1), 0, 1e-13);
  close(lnGamma(5), Math.log(24), 1e-12);
  close(lnGamma(0.5), 0.5 * Math.log(Math.PI), 1e-12);
  // I_x(1, 1) = x; I_x(a, 1) = x^a; I_x(1/2, 1/2) = (2/π) asin(√x)
  close(incompleteBeta(0.3, 1, 1), 0.3, 1e-13);
  close(incompleteBeta(0.4, 3, 1), 0.064, 1e-13);
  close(incompleteBeta(0.25, 0.5, 0.5), (2 / Math.PI) * Math.asin(0.5), 1e-12);
  assert.throws(() => incompleteBeta(1.5, 1, 1), /x must be in \[0, 1\]/);
});

test("Student t: 97.5 % quantiles match the table (scipy.stats.t.ppf) and the CDF inverts them", () => {
  // scipy.stats.t.ppf(0.975, [1, 2, 4, 9, 30])
  const table: [number, number][] = [[1, 12.706204736174698], [2, 4.302652729749464], [4, 2.7764451051977934], [9, 2.262157162798205], [30, 2.0422724563012373]];
  for (const [df, q] of table) {
    close(studentTQuantile(0.975, df), q, 1e-9 * q);
    close(studentTCdf(q, df), 0.975, 1e-12);
    close(studentTQuantile(0.025, df), -q, 1e-9 * q);
  }
  // df = 1 is Cauchy: F(t) = 1/2 + atan(t)/π
  close(studentTCdf(0.7, 1), 0.5 + Math.atan(0.7) / Math.PI, 1e-12);
  close(studentTCdf(-2, 3), 1 - studentTCdf(2, 3), 1e-14);
  assert.equal(studentTQuantile(0.5, 4), 0);
  assert.throws(() => studentTQuantile(1, 3), /p must be in \(0, 1\)/);
});

test("paired difference: mean, sample std and the t-interval on n - 1 dof (hand-computed)", () => {
  // d = [0.02, 0.03, 0]: mean 1/60, sd 0.0152753, half-width 4.3026527 · sd / √3
  const r = pairedDifference([0.75, 0.78, 0.74], [0.73, 0.75, 0.74]);
  assert.equal(r.n, 3);
  close(r.mean, 1 / 60, 1e-15);
  close(r.std, 0.01527525231651948, 1e-15);
  close(r.lo, -0.02127916366930097, 1e-11);
  close(r.hi, 0.05461249700263433, 1e-11);
  assert.equal(r.level, 0.95);
  // 90 % level: narrower, t(0.95, 2) = 2.9199855803537242
  const r90 = pairedDifference([0.75, 0.78, 0.74], [0.73, 0.75, 0.74], 0.9);
  close(r90.hi - r90.mean, (2.9199855803537242 * 0.01527525231651948) / Math.sqrt(3), 1e-11);
});

test("one pair: the difference but no interval; mismatched or empty inputs throw", () => {
  const r = pairedDifference([0.8], [0.75]);
  close(r.mean, 0.05, 1e-15);
  assert.ok(Number.isNaN(r.lo) && Number.isNaN(r.hi) && Number.isNaN(r.std));
  assert.throws(() => pairedDifference([1, 2], [1]), /2 values against 1/);
  assert.throws(() => pairedDifference([], []), /no pairs/);
});

test("meanInterval is the one-sample t-interval", () => {
  const r = meanInterval([0.7, 0.72]);
  close(r.mean, 0.71, 1e-15);
  close(r.lo, 0.582937952638253, 1e-10);
  close(r.hi, 0.8370620473617469, 1e-10);
});
