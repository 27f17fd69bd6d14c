/**
 * Calibration of predicted probabilities against binary labels: a reliability table (bins of
 * predictions, each with its mean prediction and its observed positive rate) and the expected
 * calibration error (ECE; Naeini, Cooper & Hauskrecht, AAAI 2015; Guo et al., ICML 2017):
 *
 *   ECE = Σ_k (n_k / N) · | rate_k − meanPred_k |,   MCE = max_k | rate_k − meanPred_k |
 *
 * over the non-empty bins k, with rate_k the fraction of positive labels in bin k and meanPred_k
 * the mean predicted probability there.
 *
 * Binning (`binning`):
 * - "mass" (default): equal-mass bins. The predictions are sorted (ties broken by nothing that
 *   depends on the input order: a run of equal predictions is never split), and bin k takes the
 *   rows of sorted positions [⌊kN/B⌋, ⌊(k+1)N/B⌋), its end moved forward past any run of equal
 *   predictions that straddles it; bins left empty by that move are dropped, so there are at most
 *   B bins. Recommendation tasks are mostly rare events (a like rate of 1-2 %): with equal-width
 *   bins nearly every prediction falls into [0, 0.1) and the table says nothing, so equal mass is
 *   the default.
 * - "width": B equal-width bins [k/B, (k+1)/B) on [0, 1], the last one closed at 1 (the
 *   reliability diagram of Guo et al.); empty bins are listed with count 0 and no rate.
 *
 * Sums are in float64 in a fixed order (sorted prediction order), so the result does not depend
 * on the order of the rows. Cost O(N log N) for "mass" (one Float64Array sort of packed keys),
 * O(N) for "width"; no per-row allocation.
 */
import { type LabelArray, type ScoreArray, checkBinaryLabels, checkSameLength } from "./auc.ts";

export type Binning = "mass" | "width";
export const BINNINGS: readonly Binning[] = ["mass", "width"];

export interface CalibrationOptions {
  /** Number of bins (default 10; an integer >= 1). */
  bins?: number;
  /** "mass" (default) or "width"; see the module comment. */
  binning?: Binning;
}

export interface CalibrationBin {
  /** Lower and upper edge: for "width" the bin's interval; for "mass" the smallest and largest prediction in it. */
  lo: number;
  hi: number;
  /** Rows in the bin. */
  count: number;
  /** Positive labels in the bin. */
  positives: number;
  /** Mean prediction in the bin (NaN when empty). */
  meanPred: number;
  /** Observed positive rate in the bin (NaN when empty). */
  rate: number;
}

export interface CalibrationResult {
  binning: Binning;
  bins: CalibrationBin[];
  /** Expected calibration error (NaN for no rows). */
  ece: number;
  /** Maximum calibration error over non-empty bins (NaN for no rows). */
  mce: number;
  /** Mean prediction over all rows, and the positive rate: their ratio is "calibration in the large". */
  meanPred: number;
  rate: number;
  rows: number;
}

/** Throws naming the first index whose probability is not in [0, 1] (NaN included). */
function checkProbabilities(fn: string, probs: ScoreArray): void {
  for (let i = 0; i < probs.length; i++) {
    const p = probs[i]!;
    if (!(p >= 0 && p <= 1)) throw new Error(`${fn}: probs[${i}] = ${p} is not a probability in [0, 1]`);
  }
}

/**
 * The reliability table and ECE of `probs` against binary `labels` (see the module comment).
 * @throws on length mismatch, a label not 0/1 or a probability outside [0, 1] (naming the index), or bad options.
 */
export function calibration(labels: LabelArray, probs: ScoreArray, opts: CalibrationOptions = {}): CalibrationResult {
  const B = opts.bins ?? 10;
  const binning = opts.binning ?? "mass";
  if (!(Number.isInteger(B) && B >= 1)) throw new Error(`calibration: opts.bins must be an integer >= 1, got ${String(B)}`);
  if (!BINNINGS.includes(binning)) throw new Error(`calibration: opts.binning must be one of ${BINNINGS.join(", ")}, got ${String(binning)}`);
  checkSameLength("calibration", labels, probs, "probs");
  checkBinaryLabels("calibration", labels);
  checkProbabilities("calibration", probs);
  const n = labels.length;
  const bins: CalibrationBin[] = [];
  /** Σ of the predictions per bin (the overall mean is Σ_k sums_k / N). */
  const sums: number[] = [];
  if (binning === "width") {
    const cnt = new Float64Array(B);
    const pos = new Float64Array(B);
    const sum = new Float64Array(B);
    // the predictions summed in sorted order, so the float64 sums do not depend on the row order
    const order = Float64Array.from(probs).sort();
    // sorted order keeps the float64 sums independent of the row order; labels are counted per bin
    for (let i = 0; i < n; i++) {
      const p = probs[i]!;
      const k = Math.min(B - 1, Math.floor(p * B));
      cnt[k]!++;
      pos[k]! += labels[i]!;
    }
    for (let i = 0; i < n; i++) {
      const p = order[i]!;
      sum[Math.min(B - 1, Math.floor(p * B))]! += p;
    }
    for (let k = 0; k < B; k++) {
      const c = cnt[k]!;
      sums.push(sum[k]!);
      bins.push({ lo: k / B, hi: (k + 1) / B, count: c, positives: pos[k]!, meanPred: c > 0 ? sum[k]! / c : NaN, rate: c > 0 ? pos[k]! / c : NaN });
    }
  } else {
    // row indices in prediction order (ties by index: a run of equal predictions lies in one bin,
    // where the order of its equal addends changes no sum)
    const idx = new Uint32Array(n);
    for (let i = 0; i < n; i++) idx[i] = i;
    idx.sort((a, b) => probs[a]! - probs[b]! || a - b);
    let start = 0;
    for (let k = 0; k < B && start < n; k++) {
      let end = Math.floor(((k + 1) * n) / B);
      if (end <= start) continue;
      const last = probs[idx[end - 1]!]!;
      while (end < n && probs[idx[end]!]! === last) end++;
      let s = 0;
      let p = 0;
      for (let j = start; j < end; j++) {
        const r = idx[j]!;
        s += probs[r]!;
        p += labels[r]!;
      }
      const c = end - start;
      sums.push(s);
      bins.push({ lo: probs[idx[start]!]!, hi: last, count: c, positives: p, meanPred: s / c, rate: p / c });
      start = end;
    }
  }
  let ece = 0;
  let mce = 0;
  let total = 0;
  let pos = 0;
  bins.forEach((b, k) => {
    total += sums[k]!;
    pos += b.positives;
    if (b.count === 0) return;
    const gap = Math.abs(b.rate - b.meanPred);
    ece += (b.count / n) * gap;
    if (gap > mce) mce = gap;
  });
  return { binning, bins, ece: n > 0 ? ece : NaN, mce: n > 0 ? mce : NaN, meanPred: n > 0 ? total / n : NaN, rate: n > 0 ? pos / n : NaN, rows: n };
}
