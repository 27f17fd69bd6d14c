/**
 * Model contract shared by every architecture, the engine and the trainer.
 * Parameters live in JS typed arrays (the source of truth, checkpoint keys);
 * an architecture only DESCRIBES its computation as a static-shape graph
 * (src/graph), which the engine (src/engine) compiles and runs, feeding the
 * parameters as graph inputs.
 */
import type { FloatArray, FloatDType, Graph, Tensor } from "../graph/graph.ts";

/** "shared" or the index of the task that owns the parameter (towers, gates, task experts). */
export type ParamGroup = "shared" | number;

export interface DenseParam {
  /** Unique, stable name, e.g. "expert0.l1.W" (checkpoint key). */
  name: string;
  shape: number[];
  group: ParamGroup;
  /** Whether L2 weight decay applies (dense weights: yes; biases and SNR log-alphas: no). */
  decay: boolean;
  data: FloatArray;
}

export interface EmbeddingTable {
  /** e.g. "emb.user_id" or "emb.t2.user_id" for per-task tables. */
  name: string;
  /** Index into DatasetMeta.fields / Batch.fields. */
  field: number;
  vocab: number;
  dim: number;
  group: ParamGroup;
  /** Row-major [vocab, dim]. */
  data: FloatArray;
}

export interface ModelCommonOptions {
  /** Embedding size per field (default 16). */
  embDim: number;
  /** Dropout rate after every hidden ReLU of experts/bottoms/towers in train mode (default 0.2). */
  dropout: number;
  /** Tower hidden units before the final 1-unit logit (default [32, 16]). */
  towerUnits: number[];
  /** Std of the N(0, std) embedding init (default 0.01). */
  embInitStd: number;
  /** Seed of the parameter initialisation. */
  seed: number;
  /** Parameter dtype: float32 for training, float64 for finite-difference tests. */
  dtype: FloatDType;
}

export type Mode = "train" | "eval";

/**
 * A random graph input drawn in JS per run, in creation order, from
 * `new Rng(seed)` of the step (see fillNoise in layers.ts): inverted-dropout
 * masks and the logistic noise of SNR's hard-concrete gates.
 */
export interface NoiseSpec {
  /** Graph input name. */
  input: string;
  kind: "dropout" | "logistic";
  /** Number of values. */
  n: number;
  /** Dropout rate (dropout only). */
  rate: number;
}

/** Build-time context of one forward description. */
export interface ForwardCtx {
  g: Graph;
  mode: Mode;
  batch: number;
  dtype: FloatDType;
  /** Random inputs this forward declared, in draw order. */
  readonly noise: NoiseSpec[];
  /** Apply dropout (train mode, rate > 0) to h [B, units]: a mask graph input; identity in eval mode. */
  dropout(h: Tensor, units: number): Tensor;
  /** A graph input of n standard-logistic draws log u - log(1-u), u ~ U(0,1) (train mode). */
  logisticNoise(n: number): Tensor;
}

/** Architecture-specific part of a model: parameters and the forward description. */
export interface Architecture {
  /** Option users type (`--model <name>`). */
  readonly name: string;
  readonly numTasks: number;
  readonly dense: DenseParam[];
  /** Embedding tables: `numSets` sets of one table per field (set s has group "shared" if numSets == 1, else s). */
  readonly tables: EmbeddingTable[][];
  /**
   * Forward description, as a shared trunk and per-task heads (built in the
   * order trunk, head 0..T-1, which is also the order noise is drawn in).
   * `p` is indexed like `dense`, `xs[s]` is the gathered embeddings of set s,
   * [B, F*dim]. The trunk returns the shared features (possibly none); head t
   * returns task t's logits [B]. Reverse-mode differentiation of the compiled
   * graph only walks what each task's loss depends on, so the split is for
   * readability and noise order, not for speed.
   */
  trunk(p: Tensor[], xs: Tensor[], ctx: ForwardCtx): Tensor[];
  /**
   * The shared representation, in words: what `trunk` returns (the tensors the heads read from
   * the shared computation). `--balance-at representation` takes the per-task gradients w.r.t.
   * exactly these tensors (src/grad/representation.ts), so the trunk must hold every shared
   * parameter the heads depend on and no task-owned one. Absent: "the trunk's outputs".
   */
  readonly representation?: string;
  head(t: number, p: Tensor[], feats: Tensor[], xs: Tensor[], ctx: ForwardCtx): Tensor;
  /**
   * Penalty applied directly to parameters (not through balancing), e.g. SNR's
   * L0: adds its gradient into `grads` (indexed like `dense`) and returns its value.
   */
  regularize?(grads: (FloatArray | null)[], mode: Mode): number;
}
