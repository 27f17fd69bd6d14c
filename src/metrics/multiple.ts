/**
 * Multiple comparisons: what a table of many methods may claim.
 *
 * Within one dataset (paired over seeds), each method is compared with a reference (EW, or
 * Single) by a paired t-test; with m comparisons, one in twenty would exclude 0 by chance at
 * the 95 % level, so the family is corrected with Holm's step-down procedure:
 *
 *   Holm, S. (1979). A simple sequentially rejective multiple test procedure.
 *   Scandinavian Journal of Statistics 6(2), 65–70.
 *
 *   sort the m finite p-values ascending, p_(1) ≤ … ≤ p_(m);
 *   adjusted p_(j) = min(1, max_{i ≤ j} (m − i + 1) · p_(i)).
 *
 * Intervals that agree with Holm's decisions: comparison (j) gets the two-sided t-interval at
 * level 1 − α/(m − j* + 1), where j* = j while every earlier comparison was rejected, and
 * otherwise the rank of the first comparison Holm did not reject (whose level is then used for
 * every later one). So an interval excludes 0 exactly when the Holm-adjusted p is below α.
 * The first interval is Bonferroni's; the later ones are narrower, so these are "Holm-
 * consistent" intervals, not simultaneous ones: their joint coverage is only guaranteed at
 * the Bonferroni level for the comparison ranked first. (Strassburger and Bretz, Statistics in
 * Medicine 2008, give simultaneous Holm-compatible bounds, which are one-sided at 0 for the
 * rejected comparisons and therefore say nothing about the size of an effect.)
 *
 * Across datasets (one score per method and dataset), methods are ranked per dataset and
 * compared with the Friedman test and the Nemenyi critical difference:
 *
 *   Demšar, J. (2006). Statistical comparisons of classifiers over multiple data sets.
 *   JMLR 7, 1–30.
 *
 *   R_j = average rank of method j over N datasets (1 = best, ties get the mean rank),
 *   χ²_F = 12N / (k(k+1)) · (Σ_j R_j² − k(k+1)²/4)                    (df k − 1),
 *   F_F = (N − 1) χ²_F / (N(k − 1) − χ²_F)                              (Iman–Davenport; df k − 1, (k − 1)(N − 1)),
 *   CD = q_α · sqrt(k(k+1) / (6N)),  q_α = studentized range quantile(1 − α; k, ∞) / √2.
 *
 * Everything here is plain float64 and engine-free.
 */
import { incompleteBeta, studentTCdf, studentTQuantile, type PairedInterval } from "./ci.ts";

/** Two-sided p-value of the paired t-test behind `d` (NaN with fewer than 2 pairs; 1 for all-equal pairs with mean 0). */
export function pairedTTestP(d: Pick<PairedInterval, "mean" | "std" | "n">): number {
  if (!(d.n >= 2) || !Number.isFinite(d.mean)) return NaN;
  if (d.std === 0) return d.mean === 0 ? 1 : 0;
  const t = d.mean / (d.std / Math.sqrt(d.n));
  return Math.min(1, 2 * (1 - studentTCdf(Math.abs(t), d.n - 1)));
}

/**
 * Holm-adjusted p-values, in the input order. NaN entries (comparisons without an interval)
 * stay NaN and do not count in the family size m.
 */
export function holmAdjust(p: readonly number[]): number[] {
  for (const [i, x] of p.entries()) if (!Number.isNaN(x) && !(x >= 0 && x <= 1)) throw new Error(`holmAdjust: p[${i}] must be in [0, 1] or NaN, got ${x}`);
  const order = p.map((x, i) => ({ x, i })).filter((e) => !Number.isNaN(e.x)).sort((a, b) => a.x - b.x || a.i - b.i);
  const m = order.length;
  const out = p.map(() => NaN);
  let running = 0;
  order.forEach((e, j) => {
    running = Math.max(running, Math.min(1, (m - j) * e.x));
    out[e.i] = running;
  });
  return out;
}

/** A paired comparison with its Holm correction. */
export interface HolmComparison {
  /** Mean paired difference (method − reference). */
  mean: number;
  n: number;
  /** Unadjusted two-sided p-value (NaN without an interval). */
  p: number;
  /** Holm-adjusted p-value over the family (NaN without an interval). */
  pHolm: number;
  /** Holm-consistent interval (see the module comment); NaN without an interval. */
  lo: number;
  hi: number;
  /** Confidence level the interval was computed at (1 − α/(m − j* + 1)). */
  level: number;
  /** Number of comparisons in the family (those with an interval). */
  m: number;
}

/**
 * Holm-corrected paired comparisons of a family (each method against one reference, paired by
 * seed). `alpha` is the family-wise error rate (default 0.05).
 */
export function holmFamily(family: readonly Pick<PairedInterval, "mean" | "std" | "n">[], alpha = 0.05): HolmComparison[] {
  if (!(alpha > 0 && alpha < 1)) throw new Error(`holmFamily: alpha must be in (0, 1), got ${alpha}`);
  const p = family.map(pairedTTestP);
  const adj = holmAdjust(p);
  const order = p.map((x, i) => ({ x, i })).filter((e) => !Number.isNaN(e.x)).sort((a, b) => a.x - b.x || a.i - b.i);
  const m = order.length;
  const rankLevel = new Map<number, number>();
  let stuck = -1; // rank (0-based) of the first comparison Holm did not reject
  order.forEach((e, j) => {
    if (stuck < 0 && !(adj[e.i]! < alpha)) stuck = j;
    const jj = stuck < 0 ? j : stuck;
    rankLevel.set(e.i, 1 - alpha / (m - jj));
  });
  return family.map((d, i) => {
    const level = rankLevel.get(i);
    if (level === undefined) return { mean: d.mean, n: d.n, p: NaN, pHolm: NaN, lo: NaN, hi: NaN, level: NaN, m };
    const half = studentTQuantile(1 - (1 - level) / 2, d.n - 1) * (d.std / Math.sqrt(d.n));
    return { mean: d.mean, n: d.n, p: p[i]!, pHolm: adj[i]!, lo: d.mean - half, hi: d.mean + half, level, m };
  });
}

// ---------------------------------------------------------------------------------------------
// Across datasets: Friedman, Iman–Davenport, Nemenyi.

/** Ranks of one row (1 = best; ties get the mean of the ranks they span). NaN scores are refused. */
export function rankRow(scores: readonly number[], higherIsBetter = true): number[] {
  for (const [i, s] of scores.entries()) if (!Number.isFinite(s)) throw new Error(`rankRow: score ${i} is not a finite number (${s})`);
  const idx = scores.map((s, i) => ({ s: higherIsBetter ? -s : s, i })).sort((a, b) => a.s - b.s || a.i - b.i);
  const ranks = new Array<number>(scores.length);
  for (let a = 0; a < idx.length; ) {
    let b = a;
    while (b + 1 < idx.length && idx[b + 1]!.s === idx[a]!.s) b++;
    const r = (a + b) / 2 + 1;
    for (let c = a; c <= b; c++) ranks[idx[c]!.i] = r;
    a = b + 1;
  }
  return ranks;
}

export interface FriedmanResult {
  /** Number of datasets (blocks) and methods. */
  N: number;
  k: number;
  /** Average rank per method (1 = best). */
  avgRanks: number[];
  chi2: number;
  /** P(χ²_{k−1} ≥ chi2). */
  pChi2: number;
  /** Iman–Davenport statistic and its p-value (Infinity and 0 when χ²_F reaches N(k − 1): every dataset ranks the methods alike). */
  ff: number;
  pFF: number;
}

/** Friedman test over `scores[dataset][method]` (complete blocks; at least 2 datasets and 2 methods). */
export function friedman(scores: readonly (readonly number[])[], higherIsBetter = true): FriedmanResult {
  const N = scores.length;
  if (N < 2) throw new Error(`friedman: need at least 2 datasets, got ${N}`);
  const k = scores[0]!.length;
  if (k < 2) throw new Error(`friedman: need at least 2 methods, got ${k}`);
  for (const [i, row] of scores.entries()) if (row.length !== k) throw new Error(`friedman: dataset ${i} has ${row.length} scores, expected ${k} (every method on every dataset)`);
  return friedmanFromRanks(
    Array.from({ length: k }, (_, j) => scores.reduce((s, row) => s + rankRow(row, higherIsBetter)[j]!, 0) / N),
    N,
  );
}

/** The Friedman statistics from average ranks (as published tables give them). */
export function friedmanFromRanks(avgRanks: readonly number[], N: number): FriedmanResult {
  const k = avgRanks.length;
  const sumSq = avgRanks.reduce((s, r) => s + r * r, 0);
  const chi2 = ((12 * N) / (k * (k + 1))) * (sumSq - (k * (k + 1) ** 2) / 4);
  const pChi2 = 1 - chiSquareCdf(chi2, k - 1);
  const denom = N * (k - 1) - chi2;
  // χ²_F reaches its maximum N(k − 1) when every dataset ranks the methods the same way: F_F is
  // then infinite and its p-value 0 (rounding can leave a denominator of a few ulps: same case).
  const ff = denom > 1e-12 * N * (k - 1) ? ((N - 1) * chi2) / denom : Infinity;
  const d1 = k - 1;
  const d2 = (k - 1) * (N - 1);
  const pFF = ff === Infinity ? 0 : 1 - fCdf(ff, d1, d2);
  return { N, k, avgRanks: [...avgRanks], chi2, pChi2, ff, pFF };
}

/** Nemenyi critical difference of average ranks for k methods over N datasets at level α. */
export function nemenyiCD(k: number, N: number, alpha = 0.05): number {
  return (studentizedRangeQuantile(1 - alpha, k) / Math.SQRT2) * Math.sqrt((k * (k + 1)) / (6 * N));
}

/** Groups of methods whose average ranks lie within `cd` of each other (maximal cliques over sorted ranks), as index lists. */
export function cdGroups(avgRanks: readonly number[], cd: number): number[][] {
  const order = avgRanks.map((r, i) => ({ r, i })).sort((a, b) => a.r - b.r || a.i - b.i);
  const groups: number[][] = [];
  let lastEnd = -1;
  for (let a = 0; a < order.length; a++) {
    let b = a;
    while (b + 1 < order.length && order[b + 1]!.r - order[a]!.r <= cd) b++;
    if (b > a && b > lastEnd) {
      groups.push(order.slice(a, b + 1).map((e) => e.i));
      lastEnd = b;
    }
  }
  return groups;
}

// ---------------------------------------------------------------------------------------------
// Distributions (float64).

/** Regularised lower incomplete gamma P(a, x) (series below a + 1, continued fraction above). */
export function gammaP(a: number, x: number): number {
  if (!(a > 0)) throw new Error(`gammaP: a must be > 0, got ${a}`);
  if (!(x >= 0)) return x < 0 ? 0 : NaN;
  if (x === 0) return 0;
  if (x === Infinity) return 1;
  const lnFront = -x + a * Math.log(x) - lnGammaExact(a);
  if (x < a + 1) {
    let sum = 1 / a;
    let term = sum;
    for (let n = 1; n < 1000; n++) {
      term *= x / (a + n);
      sum += term;
      if (Math.abs(term) < Math.abs(sum) * 1e-17) break;
    }
    return Math.exp(lnFront) * sum;
  }
  // Lentz continued fraction for Q(a, x).
  const tiny = 1e-300;
  let b = x + 1 - a;
  let c = 1 / tiny;
  let d = 1 / b;
  let h = d;
  for (let i = 1; i < 1000; i++) {
    const an = -i * (i - a);
    b += 2;
    d = an * d + b;
    if (Math.abs(d) < tiny) d = tiny;
    c = b + an / c;
    if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    const del = d * c;
    h *= del;
    if (Math.abs(del - 1) < 1e-16) break;
  }
  return 1 - Math.exp(lnFront) * h;
}

/** ln Γ(a) through the Lanczos form in ci.ts, exact for the half-integers used by χ² (via recursion to [1, 2)). */
function lnGammaExact(a: number): number {
  // Γ(1/2) = √π and Γ(1) = 1 anchor the half-integer and integer cases exactly.
  if (Number.isInteger(2 * a) && a > 0 && a < 171) {
    let v = Number.isInteger(a) ? 0 : 0.5 * Math.log(Math.PI);
    for (let t = Number.isInteger(a) ? 1 : 0.5; t < a; t += 1) v += Math.log(t);
    return v;
  }
  return lnGammaLanczos(a);
}

function lnGammaLanczos(x: number): number {
  const g = 7;
  const c = [
    0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059,
    12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7,
  ];
  x -= 1;
  let s = c[0]!;
  const t = x + g + 0.5;
  for (let i = 1; i < g + 2; i++) s += c[i]! / (x + i);
  return 0.5 * Math.log(2 * Math.PI) + (x + 0.5) * Math.log(t) - t + Math.log(s);
}

/** P(χ²_df ≤ x). */
export function chiSquareCdf(x: number, df: number): number {
  if (!(df > 0)) throw new Error(`chiSquareCdf: df must be > 0, got ${df}`);
  return x <= 0 ? 0 : gammaP(df / 2, x / 2);
}

/** P(F_{d1,d2} ≤ x). */
export function fCdf(x: number, d1: number, d2: number): number {
  if (!(d1 > 0 && d2 > 0)) throw new Error(`fCdf: degrees of freedom must be > 0, got ${d1}, ${d2}`);
  if (x <= 0) return 0;
  if (x === Infinity) return 1;
  return incompleteBeta((d1 * x) / (d1 * x + d2), d1 / 2, d2 / 2);
}

/** Standard normal CDF Φ(x), from P(1/2, x²/2) (accurate to ~1e-15 in both tails). */
export function normalCdf(x: number): number {
  if (Number.isNaN(x)) return NaN;
  const half = 0.5 * gammaP(0.5, (x * x) / 2);
  return x >= 0 ? 0.5 + half : 0.5 - half;
}

const SQRT_2PI = Math.sqrt(2 * Math.PI);

/**
 * P(range of k independent standard normals ≤ q) (the studentized range with ∞ degrees of
 * freedom): k ∫ φ(z) [Φ(z) − Φ(z − q)]^{k−1} dz, by composite Simpson on [−9, 9] (the
 * integrand is below 1e-17 outside).
 */
export function studentizedRangeCdf(q: number, k: number): number {
  if (!Number.isInteger(k) || k < 2) throw new Error(`studentizedRangeCdf: k must be an integer >= 2, got ${k}`);
  if (!(q > 0)) return 0;
  const lo = -9;
  const hi = 9;
  const n = 3000; // even
  const h = (hi - lo) / n;
  let s = 0;
  for (let i = 0; i <= n; i++) {
    const z = lo + i * h;
    const f = (Math.exp(-0.5 * z * z) / SQRT_2PI) * Math.pow(Math.max(0, normalCdf(z) - normalCdf(z - q)), k - 1);
    s += (i === 0 || i === n ? 1 : i % 2 === 1 ? 4 : 2) * f;
  }
  return Math.min(1, (k * s * h) / 3);
}

/** The p-quantile of the studentized range of k normals (∞ degrees of freedom), by bisection to 1e-10. */
export function studentizedRangeQuantile(p: number, k: number): number {
  if (!(p > 0 && p < 1)) throw new Error(`studentizedRangeQuantile: p must be in (0, 1), got ${p}`);
  let lo = 0;
  let hi = 1;
  while (studentizedRangeCdf(hi, k) < p) hi *= 2;
  while (hi - lo > 1e-10) {
    const mid = (lo + hi) / 2;
    if (studentizedRangeCdf(mid, k) < p) lo = mid;
    else hi = mid;
  }
  return (lo + hi) / 2;
}
