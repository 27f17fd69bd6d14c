/**
 * ROC AUC by ranks (Mann-Whitney U) with average ranks for tied scores.
 *
 * AUC = P(score of a random positive > score of a random negative)
 *     + 0.5 * P(tie), i.e. exactly sklearn's `roc_auc_score` for binary labels.
 *
 * Cost: the positives' and negatives' scores are copied into one float64 buffer
 * and each part is sorted with the native (comparator-free) typed-array sort,
 * O(n log n); a linear merge then counts U per tie block as
 * `pos_block * (neg_below + neg_equal / 2)`. U is an exact half-integer in
 * float64 for any realistic n (< 2^52 pairs), so no large rank sums lose precision.
 */

/** Score arrays accepted by the metrics. NaN scores are rejected. */
export type ScoreArray = Float32Array | Float64Array;
/** Label arrays accepted by the metrics (values must be exactly 0 or 1 for AUC/GAUC). */
export type LabelArray = Float32Array | Float64Array | Uint8Array | Int8Array | Int32Array;

/** Throws unless `labels.length === scores.length`. */
export function checkSameLength(fn: string, labels: { length: number }, scores: { length: number }, what = "scores"): void {
  if (labels.length !== scores.length) {
    throw new Error(`${fn}: labels has length ${labels.length} but ${what} has length ${scores.length}`);
  }
}

/** Throws naming the first index whose label is not exactly 0 or 1. */
export function checkBinaryLabels(fn: string, labels: LabelArray): void {
  for (let i = 0; i < labels.length; i++) {
    const v = labels[i]!;
    if (v !== 0 && v !== 1) throw new Error(`${fn}: labels[${i}] = ${v} is not binary (expected 0 or 1)`);
  }
}

/** Throws naming the first index whose score is NaN (±Infinity is allowed: it still orders). */
export function checkScores(fn: string, scores: ScoreArray): void {
  for (let i = 0; i < scores.length; i++) {
    if (Number.isNaN(scores[i]!)) throw new Error(`${fn}: scores[${i}] is NaN`);
  }
}

/**
 * Mann-Whitney U from two ascending-sorted runs of one buffer: positives' scores in
 * `vals[ps..pe)`, negatives' in `vals[ns..ne)`. Returns the number of (positive, negative)
 * pairs with the positive scored higher, ties counting 1/2. O(P + N), no allocation.
 * Tie blocks compare with `===`, so -0 and +0 tie (as in sklearn).
 */
export function mannWhitneyU(vals: Float64Array, ps: number, pe: number, ns: number, ne: number): number {
  let u = 0;
  let j = ns;
  let i = ps;
  while (i < pe) {
    const v = vals[i]!;
    let i2 = i + 1;
    while (i2 < pe && vals[i2]! === v) i2++;
    while (j < ne && vals[j]! < v) j++;
    let k = j;
    while (k < ne && vals[k]! === v) k++;
    u += (i2 - i) * (j - ns + 0.5 * (k - j));
    i = i2;
  }
  return u;
}

/** In-place ascending sort of vals[start..end): insertion sort for short runs, native sort otherwise. */
export function sortRange(vals: Float64Array, start: number, end: number): void {
  if (end - start <= 24) {
    for (let i = start + 1; i < end; i++) {
      const v = vals[i]!;
      let j = i - 1;
      while (j >= start && vals[j]! > v) {
        vals[j + 1] = vals[j]!;
        j--;
      }
      vals[j + 1] = v;
    }
  } else {
    vals.subarray(start, end).sort();
  }
}

/**
 * Binary ROC AUC of `scores` against `labels` (higher score = more positive).
 *
 * Returns NaN when only one class is present (including empty input): the AUC
 * is undefined there, and NaN lets callers average over tasks/groups and notice,
 * instead of crashing an evaluation loop. (sklearn raises in that case.)
 *
 * @throws if lengths differ, a label is not 0/1 (the error names the index), or a score is NaN.
 */
export function auc(labels: LabelArray, scores: ScoreArray): number {
  checkSameLength("auc", labels, scores);
  checkBinaryLabels("auc", labels);
  checkScores("auc", scores);
  const n = labels.length;
  let pos = 0;
  for (let i = 0; i < n; i++) pos += labels[i]!;
  const neg = n - pos;
  if (pos === 0 || neg === 0) return NaN;
  // positives in vals[0..pos), negatives in vals[pos..n)
  const vals = new Float64Array(n);
  let p = 0;
  let q = pos;
  for (let i = 0; i < n; i++) {
    if (labels[i]! === 1) vals[p++] = scores[i]!;
    else vals[q++] = scores[i]!;
  }
  vals.subarray(0, pos).sort();
  vals.subarray(pos, n).sort();
  return mannWhitneyU(vals, 0, pos, pos, n) / (pos * neg);
}
