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
  const out: SplitMetrics = { auc: [], gauc: [], logloss: [], gaucGroups: [] };
  for (let t = 0; t < T; t++) {
    const s = scores[t]!.subarray(0, off);
    const y = labels[t]!.subarray(0, off);
    out.auc.push(auc(y, s));
    const g = gauc(y, s, groups.subarray(0, off));
    out.gauc.push(g.gauc);
    out.gaucGroups.push({ used: g.groupsUsed, skipped: g.groupsSkipped });
    out.logloss.push(loglossFromLogits(y, s));
  }
  return out;
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
