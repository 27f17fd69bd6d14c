/**
 * The contract between the data layer and the model/trainer.
 * Every categorical feature (including bucketised numeric columns) is a field of
 * int32 ids in [0, vocabSize); id 0 is reserved for OOV / missing. A multi-valued
 * field holds up to `multi.maxLen` ids per row (its embedding is their mean or sum).
 * Dense inputs are float columns, standardised by the data layer, that the models
 * read next to the embeddings.
 */
export type SplitName = "train" | "val" | "test";

export interface FieldInfo {
  name: string;
  /** Number of ids including the reserved OOV id 0. */
  vocabSize: number;
  /** Multi-valued field: at most `maxLen` ids per row, embeddings pooled by `pooling` (absent: one id per row). */
  multi?: { maxLen: number; pooling: "mean" | "sum" };
}

/** A dense (float) input column. */
export interface DenseInfo {
  name: string;
}

export interface TaskInfo {
  name: string;
}

export interface DatasetMeta {
  name: string;
  fields: FieldInfo[];
  /** Dense inputs, in the order of Batch.dense (absent or empty: none). */
  dense?: DenseInfo[];
  tasks: TaskInfo[];
  /** Name of the column used to group rows for GAUC (usually the user id). */
  groupColumn: string;
  rows: Record<SplitName, number>;
}

/** One mini-batch. Arrays have length `size` (field ids, labels in {0,1}, group ids, dense values). */
export interface Batch {
  size: number;
  /**
   * fields[f][r] = id of row r in field f (same order as DatasetMeta.fields). A multi-valued
   * field (FieldInfo.multi) has maxLen ids per row instead, row-major (length size * maxLen):
   * fields[f][r * maxLen + k] = item k of row r, the row's ids first then -1 padding; every row
   * has at least one id (a NULL or empty list is the single id 0).
   */
  fields: Int32Array[];
  /** dense[j][r] = value of dense input j in row r (same order as DatasetMeta.dense); absent when there are none. */
  dense?: Float32Array[];
  /** labels[t][r] in {0, 1} for task t (same order as DatasetMeta.tasks). */
  labels: Float32Array[];
  /** Group (user) id of each row, for GAUC. */
  groups: Int32Array;
}

export interface IterateOptions {
  batchSize: number;
  shuffle: boolean;
  /** Shuffle seed; the order is a pure function of (seed, epoch). */
  seed: number;
  epoch: number;
  /** Skip this many batches first (resume mid-epoch). */
  startBatch?: number;
  /** Keep the last, smaller batch (default true). */
  dropLast?: boolean;
}

/** A prepared split, streamed from disk with memory independent of its size. */
export interface SplitReader {
  readonly rows: number;
  /** Number of batches `iterate` yields for these options. */
  numBatches(batchSize: number, dropLast?: boolean): number;
  iterate(opts: IterateOptions): Generator<Batch>;
}

export interface PreparedDataset {
  meta: DatasetMeta;
  split(name: SplitName): SplitReader;
  close?(): void;
}
