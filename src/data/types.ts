/**
 * The contract between the data layer and the model/trainer.
 * Every categorical feature (including bucketised numeric columns) is a field of
 * int32 ids in [0, vocabSize); id 0 is reserved for OOV / missing.
 */
export type SplitName = "train" | "val" | "test";

export interface FieldInfo {
  name: string;
  /** Number of ids including the reserved OOV id 0. */
  vocabSize: number;
}

export interface TaskInfo {
  name: string;
}

export interface DatasetMeta {
  name: string;
  fields: FieldInfo[];
  tasks: TaskInfo[];
  /** Name of the column used to group rows for GAUC (usually the user id). */
  groupColumn: string;
  rows: Record<SplitName, number>;
}

/** One mini-batch. Arrays have length `size` (field ids, labels in {0,1}, group ids). */
export interface Batch {
  size: number;
  /** fields[f][r] = id of row r in field f (same order as DatasetMeta.fields). */
  fields: Int32Array[];
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
