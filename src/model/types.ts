/**
 * Model contract shared by every architecture, the per-task gradient layer and
 * the trainer. Parameters live in JS typed arrays (the source of truth); the
 * engine only sees them wrapped for one step.
 */
import type { FloatArray, FloatDType, JArray } from "../grad/engine.ts";
import type { Rng } from "../util/rng.ts";

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
 * Per-forward context inside the engine function. Dropout masks and SNR gate
 * noise are drawn in JS from `noise` (a seeded Rng re-created from the same seed
 * for every call of one step, so repeated forwards see identical masks).
 */
export interface ForwardCtx {
  mode: Mode;
  batch: number;
  dtype: FloatDType;
  noise: Rng;
  /** Apply dropout (train mode, rate > 0) to h [B, units]; identity in eval mode. */
  dropout(h: JArray, units: number): JArray;
  /**
   * Drop the context's own references to the constants it created (masks,
   * noise). Call after the vjp function is done: see src/grad/pertask.ts.
   */
  release(): void;
}

/** Architecture-specific part of a model: parameters and the engine forward. */
export interface Architecture {
  /** Option users type (`--model <name>`). */
  readonly name: string;
  readonly numTasks: number;
  readonly dense: DenseParam[];
  /** Embedding tables: `numSets` sets of one table per field (set s has group "shared" if numSets == 1, else s). */
  readonly tables: EmbeddingTable[][];
  /**
   * Engine forward, split into a shared trunk and per-task heads so that task
   * t's gradient only runs through what task t's loss depends on (see
   * src/grad/pertask.ts). `p` is indexed like `dense` (entries the callee must
   * not touch may be absent), `xs[s]` is the gathered embeddings of set s,
   * [B, F*dim].
   *
   * trunk: uses exactly the "shared"-group params, consumes every `xs` entry
   * once (disposing unused ones), returns the shared features (possibly none).
   */
  trunk(p: JArray[], xs: JArray[], ctx: ForwardCtx): JArray[];
  /**
   * head t: uses exactly task t's params, consumes every `feats` and `xs` entry
   * once (disposing unused ones), returns task t's logits [B]. `usesX`: whether
   * any head reads `xs` (if not, the per-task gradient skips it).
   */
  head(t: number, p: JArray[], feats: JArray[], xs: JArray[], ctx: ForwardCtx): JArray;
  readonly headUsesX: boolean;
  /**
   * Penalty applied directly to parameters (not through balancing), e.g. SNR's
   * L0: adds its gradient into `grads` (indexed like `dense`) and returns its value.
   */
  regularize?(grads: (FloatArray | null)[], mode: Mode): number;
}
