/**
 * Adam (Kingma & Ba, ICLR'15) on typed arrays, engine-free.
 *
 * - Defaults: lr 5e-4, beta1 0.9, beta2 0.999, eps 1e-8, weightDecay 1e-5.
 * - L2: `weightDecay * w` is added to the gradient (coupled L2, as DeepCTR's
 *   l2 regularisation loss / PyTorch Adam weight_decay) for dense weights
 *   flagged `decay` (not biases, not SNR log-alphas) and for the embedding rows
 *   used in the batch; it is never part of the balanced task gradients.
 * - Embedding tables are updated sparsely and lazily, like TF LazyAdam: only the
 *   rows present in the batch have their moments decayed and updated; rows not
 *   in the batch are untouched (moments and values). Moments live in tables of
 *   the same size as the embedding table. Bias correction uses the global step
 *   count for every row (as LazyAdam), not a per-row count.
 * - Update: m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
 *   w -= lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)  (PyTorch placement
 *   of eps; t = global step starting at 1).
 * - State (`getState`/`setState`): step count + m/v tensors by slot name.
 */
import type { JsonValue } from "../balance/types.ts";

export interface AdamOptions {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
}

export const ADAM_DEFAULTS: Readonly<AdamOptions> = { lr: 5e-4, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 1e-5 };

export interface AdamSlot {
  name: string;
  size: number;
}

type Vec = Float32Array | Float64Array;

export interface AdamState {
  tensors: Record<string, Float32Array>;
  json: JsonValue;
}

export class Adam {
  readonly opts: AdamOptions;
  /** Completed steps; `beginStep()` increments it, so the first update uses t = 1. */
  step = 0;
  private readonly m: Float32Array[];
  private readonly v: Float32Array[];
  private readonly slots: AdamSlot[];
  private bc1 = 1;
  private bc2 = 1;

  constructor(slots: readonly AdamSlot[], options: Partial<AdamOptions> = {}) {
    const o = { ...ADAM_DEFAULTS, ...options };
    for (const [k, v] of Object.entries(o)) {
      if (typeof v !== "number" || !Number.isFinite(v) || v < 0) throw new Error(`adam: option ${k} must be a finite number >= 0, got ${String(v)}`);
    }
    if (o.beta1 >= 1 || o.beta2 >= 1) throw new Error("adam: beta1 and beta2 must be < 1");
    this.opts = o;
    this.slots = slots.map((s) => ({ ...s }));
    this.m = slots.map((s) => new Float32Array(s.size));
    this.v = slots.map((s) => new Float32Array(s.size));
  }

  /** Start a step: advance the global step used by the bias correction. */
  beginStep(): void {
    this.step++;
    this.bc1 = 1 - Math.pow(this.opts.beta1, this.step);
    this.bc2 = 1 - Math.pow(this.opts.beta2, this.step);
  }

  /** Dense update of slot `k` (whole parameter). `g` is not modified. */
  dense(k: number, w: Vec, g: Vec, decay: boolean): void {
    const m = this.m[k]!;
    const v = this.v[k]!;
    if (w.length !== m.length || g.length !== m.length) throw new Error(`adam: slot ${this.slots[k]?.name} size mismatch`);
    const { lr, beta1: b1, beta2: b2, eps } = this.opts;
    const wd = decay ? this.opts.weightDecay : 0;
    const c1 = 1 / this.bc1;
    const c2 = 1 / this.bc2;
    for (let i = 0; i < w.length; i++) {
      const gi = g[i]! + wd * w[i]!;
      const mi = b1 * m[i]! + (1 - b1) * gi;
      const vi = b2 * v[i]! + (1 - b2) * gi * gi;
      m[i] = mi;
      v[i] = vi;
      w[i] = w[i]! - (lr * (mi * c1)) / (Math.sqrt(vi * c2) + eps);
    }
  }

  /**
   * Lazy sparse update of rows of slot `k` (a [vocab, dim] table): row
   * rows[j] receives gradient g[j*dim .. (j+1)*dim) for j < n. Rows must be distinct.
   */
  rows(k: number, w: Vec, dim: number, rows: Int32Array, n: number, g: Vec, decay: boolean): void {
    const m = this.m[k]!;
    const v = this.v[k]!;
    if (w.length !== m.length) throw new Error(`adam: slot ${this.slots[k]?.name} size mismatch`);
    const { lr, beta1: b1, beta2: b2, eps } = this.opts;
    const wd = decay ? this.opts.weightDecay : 0;
    const c1 = 1 / this.bc1;
    const c2 = 1 / this.bc2;
    for (let j = 0; j < n; j++) {
      const base = rows[j]! * dim;
      const gb = j * dim;
      for (let c = 0; c < dim; c++) {
        const i = base + c;
        const gi = g[gb + c]! + wd * w[i]!;
        const mi = b1 * m[i]! + (1 - b1) * gi;
        const vi = b2 * v[i]! + (1 - b2) * gi * gi;
        m[i] = mi;
        v[i] = vi;
        w[i] = w[i]! - (lr * (mi * c1)) / (Math.sqrt(vi * c2) + eps);
      }
    }
  }

  getState(): AdamState {
    const tensors: Record<string, Float32Array> = {};
    this.slots.forEach((s, k) => {
      tensors[`m.${s.name}`] = this.m[k]!.slice();
      tensors[`v.${s.name}`] = this.v[k]!.slice();
    });
    return { tensors, json: { step: this.step, ...this.opts } };
  }

  setState(st: { tensors: Record<string, ArrayLike<number>>; json: JsonValue }): void {
    const j = st.json as { step?: unknown } | null;
    if (!j || typeof j !== "object" || typeof j.step !== "number" || !Number.isInteger(j.step) || j.step < 0) {
      throw new Error("adam: optimiser state has no valid step count");
    }
    this.slots.forEach((s, k) => {
      for (const [pre, arr] of [["m", this.m[k]!], ["v", this.v[k]!]] as const) {
        const src = st.tensors[`${pre}.${s.name}`];
        if (!src) throw new Error(`adam: optimiser state has no tensor ${pre}.${s.name}`);
        if (src.length !== arr.length) throw new Error(`adam: tensor ${pre}.${s.name} has length ${src.length}, expected ${arr.length}`);
      }
    });
    this.slots.forEach((s, k) => {
      this.m[k]!.set(st.tensors[`m.${s.name}`]!);
      this.v[k]!.set(st.tensors[`v.${s.name}`]!);
    });
    this.step = j.step;
    this.bc1 = 1 - Math.pow(this.opts.beta1, Math.max(1, this.step));
    this.bc2 = 1 - Math.pow(this.opts.beta2, Math.max(1, this.step));
  }
}

/** Slots for a model: one per dense parameter (same order) then one per embedding table (set-major). */
export function modelSlots(model: { dense: readonly { name: string; data: Vec }[]; tables: readonly (readonly { name: string; data: Vec }[])[] }): AdamSlot[] {
  const slots: AdamSlot[] = model.dense.map((p) => ({ name: p.name, size: p.data.length }));
  for (const set of model.tables) for (const t of set) slots.push({ name: t.name, size: t.data.length });
  return slots;
}

export function createAdam(model: Parameters<typeof modelSlots>[0], options: Partial<AdamOptions> = {}): Adam {
  return new Adam(modelSlots(model), options);
}
