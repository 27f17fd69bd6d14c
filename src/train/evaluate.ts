/**
 * Evaluation of a model on one split: streams the split once in eval mode, collects
 * per-task logits, and computes AUC, GAUC (grouped by the dataset's group column) and logloss.
 */
import type { Batch, SplitReader } from "../data/types.ts";
import type { SplitMetrics } from "../report/types.ts";
import { auc } from "../metrics/auc.ts";
import { gauc } from "../metrics/gauc.ts";
import { loglossFromLogits } from "../metrics/logloss.ts";

export interface Predictor {
  /** Per-task logits for a batch, eval mode (no dropout, deterministic gates). */
  predict(batch: Batch): Promise<Float32Array[]>;
}

export interface EvalOptions {
  batchSize: number;
  numTasks: number;
  /** Evaluate on at most this many rows (first rows of the split, deterministic). */
  maxRows?: number;
}

export async function evaluateSplit(model: Predictor, split: SplitReader, opts: EvalOptions): Promise<SplitMetrics> {
  const n = Math.min(split.rows, opts.maxRows ?? Infinity);
  const T = opts.numTasks;
  const scores = Array.from({ length: T }, () => new Float32Array(n));
  const labels = Array.from({ length: T }, () => new Float32Array(n));
  const groups = new Int32Array(n);
  let off = 0;
  for (const batch of split.iterate({ batchSize: opts.batchSize, shuffle: false, seed: 0, epoch: 0 })) {
    if (off >= n) break;
    const take = Math.min(batch.size, n - off);
    const logits = await model.predict(batch);
    for (let t = 0; t < T; t++) {
      scores[t]!.set(logits[t]!.subarray(0, take), off);
      labels[t]!.set(batch.labels[t]!.subarray(0, take), off);
    }
    groups.set(batch.groups.subarray(0, take), off);
    off += take;
  }
  const out: SplitMetrics = { auc: [], gauc: [], logloss: [], gaucGroups: [], positives: [], rows: off };
  for (let t = 0; t < T; t++) {
    const s = scores[t]!.subarray(0, off);
    const y = labels[t]!.subarray(0, off);
    out.positives!.push(countPositives(y));
    out.auc.push(auc(y, s));
    const g = gauc(y, s, groups.subarray(0, off));
    out.gauc.push(g.gauc);
    out.gaucGroups.push({ used: g.groupsUsed, skipped: g.groupsSkipped });
    out.logloss.push(loglossFromLogits(y, s));
  }
  return out;
}

function countPositives(y: Float32Array): number {
  let p = 0;
  for (let i = 0; i < y.length; i++) p += y[i]!;
  return p;
}

/**
 * Positive labels per task over the rows `evaluateSplit` would evaluate (the first `maxRows`),
 * without running the model: which tasks have both classes, hence an AUC, on this split.
 * The trainer reads it before the first step to say which tasks early stopping watches.
 */
export function classCounts(split: SplitReader, numTasks: number, batchSize: number, maxRows?: number): { rows: number; positives: number[] } {
  const n = Math.min(split.rows, maxRows ?? Infinity);
  const positives = new Array<number>(numTasks).fill(0);
  let off = 0;
  for (const batch of split.iterate({ batchSize, shuffle: false, seed: 0, epoch: 0 })) {
    if (off >= n) break;
    const take = Math.min(batch.size, n - off);
    for (let t = 0; t < numTasks; t++) positives[t]! += countPositives(batch.labels[t]!.subarray(0, take));
    off += take;
  }
  return { rows: off, positives };
}

/** Mean of the finite entries (NaN when none). */
export function meanFinite(xs: readonly number[]): number {
  let s = 0;
  let k = 0;
  for (const x of xs) {
    if (Number.isFinite(x)) {
      s += x;
      k++;
    }
  }
  return k ? s / k : NaN;
}
