/**
 * Group AUC (GAUC): the AUC computed within each group (typically a user) and
 * averaged with per-group weights, as in DIN (Zhou et al., KDD 2018) and the
 * GradCraft evaluation:
 *
 *   GAUC = Σ_g w_g · AUC_g / Σ_g w_g   over groups g that contain both classes.
 *
 * Groups whose labels are all one class have no AUC and are skipped (counted in
 * `groupsSkipped`). Weights:
 *   - "count" (default, DIN/GradCraft): w_g = number of rows (impressions) in g;
 *   - "uniform": w_g = 1;
 *   - "positives": w_g = number of positive rows in g.
 *
 * Cost O(n log n), no per-row allocation and at most one subarray view per group
 * larger than 24 rows (smaller runs are insertion-sorted in place): group ids are sorted (native sort) and deduplicated, each row gets a
 * dense group index by binary search, rows are bucketed by a counting sort into
 * one float64 buffer (per group: positives' scores, then negatives'), each run is
 * sorted in place and a linear merge counts the Mann-Whitney U.
 * Returns gauc = NaN when no group has both classes.
 */
import { type LabelArray, type ScoreArray, checkBinaryLabels, checkSameLength, checkScores, mannWhitneyU, sortRange } from "./auc.ts";

export type GroupArray = Int32Array | Uint32Array;
export type GaucWeighting = "count" | "uniform" | "positives";

export interface GaucOptions {
  /** Per-group weight; default "count". */
  weighting?: GaucWeighting;
}

export interface GaucResult {
  /** Weighted mean of per-group AUCs; NaN if groupsUsed is 0. */
  gauc: number;
  /** Groups with both classes present. */
  groupsUsed: number;
  /** Groups with a single class (no AUC defined). */
  groupsSkipped: number;
  /** Rows belonging to used groups. */
  rowsUsed: number;
}

/** All three weightings from one pass. */
export interface GaucAllResult {
  count: number;
  uniform: number;
  positives: number;
  groupsUsed: number;
  groupsSkipped: number;
  rowsUsed: number;
}

const WEIGHTINGS: readonly GaucWeighting[] = ["count", "uniform", "positives"];

/** GAUC under all three weightings at once (one pass). Same validation as {@link gauc}. */
export function gaucAll(labels: LabelArray, scores: ScoreArray, groups: GroupArray): GaucAllResult {
  checkSameLength("gauc", labels, scores);
  checkSameLength("gauc", labels, groups, "groups");
  checkBinaryLabels("gauc", labels);
  checkScores("gauc", scores);
  const n = labels.length;

  // Distinct group ids, ascending.
  const uniq = groups.slice().sort();
  let G = 0;
  for (let i = 0; i < n; i++) {
    if (i === 0 || uniq[i]! !== uniq[G - 1]!) uniq[G++] = uniq[i]!;
  }

  // Dense group index per row; positive / row counts per group.
  const gid = new Int32Array(n);
  const posCount = new Int32Array(G);
  const rowCount = new Int32Array(G);
  for (let i = 0; i < n; i++) {
    const g = groups[i]!;
    let lo = 0;
    let hi = G - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (uniq[mid]! < g) lo = mid + 1;
      else hi = mid;
    }
    gid[i] = lo;
    rowCount[lo]!++;
    if (labels[i]! === 1) posCount[lo]!++;
  }

  // Bucket scores: group k occupies vals[start_k .. start_k + rows_k), positives first.
  const posNext = new Int32Array(G);
  const negNext = new Int32Array(G);
  let off = 0;
  for (let k = 0; k < G; k++) {
    posNext[k] = off;
    negNext[k] = off + posCount[k]!;
    off += rowCount[k]!;
  }
  const vals = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const k = gid[i]!;
    if (labels[i]! === 1) vals[posNext[k]!++] = scores[i]!;
    else vals[negNext[k]!++] = scores[i]!;
  }

  let sumCount = 0;
  let wCount = 0;
  let sumUniform = 0;
  let sumPos = 0;
  let wPos = 0;
  let used = 0;
  let skipped = 0;
  let start = 0;
  for (let k = 0; k < G; k++) {
    const cnt = rowCount[k]!;
    const pos = posCount[k]!;
    const neg = cnt - pos;
    const mid = start + pos;
    const end = start + cnt;
    if (pos === 0 || neg === 0) {
      skipped++;
    } else {
      sortRange(vals, start, mid);
      sortRange(vals, mid, end);
      const a = mannWhitneyU(vals, start, mid, mid, end) / (pos * neg);
      used++;
      sumCount += cnt * a;
      wCount += cnt;
      sumUniform += a;
      sumPos += pos * a;
      wPos += pos;
    }
    start = end;
  }
  return {
    count: used > 0 ? sumCount / wCount : NaN,
    uniform: used > 0 ? sumUniform / used : NaN,
    positives: used > 0 ? sumPos / wPos : NaN,
    groupsUsed: used,
    groupsSkipped: skipped,
    rowsUsed: wCount,
  };
}

/**
 * GAUC of `scores` against binary `labels`, grouped by `groups` (e.g. user ids).
 * @throws on length mismatch, non-binary label (names the index), NaN score, or unknown weighting.
 */
export function gauc(labels: LabelArray, scores: ScoreArray, groups: GroupArray, opts: GaucOptions = {}): GaucResult {
  const weighting = opts.weighting ?? "count";
  if (!WEIGHTINGS.includes(weighting)) {
    throw new Error(`gauc: opts.weighting must be one of ${WEIGHTINGS.join(", ")}, got ${String(weighting)}`);
  }
  const r = gaucAll(labels, scores, groups);
  return { gauc: r[weighting], groupsUsed: r.groupsUsed, groupsSkipped: r.groupsSkipped, rowsUsed: r.rowsUsed };
}
