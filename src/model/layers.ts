/**
 * Building blocks shared by the architectures: parameter construction (JS side)
 * and the engine-side layers (linear, MLP with ReLU + dropout, softmax gate
 * mixtures, hard-concrete gates). Every engine helper consumes its array
 * arguments (jax-js ownership rule).
 */
import { jax, type FloatArray, type FloatDType, type JArray } from "../grad/engine.ts";
import { Rng } from "../util/rng.ts";
import type { Architecture, DenseParam, EmbeddingTable, ForwardCtx, Mode, ParamGroup } from "./types.ts";

export interface LinearSpec {
  W: number;
  b: number;
  inDim: number;
  outDim: number;
}

export interface MlpSpec {
  layers: LinearSpec[];
  inDim: number;
  outDim: number;
}

/** Collects dense parameters with deterministic initialisation from a seeded Rng. */
export class ParamBuilder {
  readonly dense: DenseParam[] = [];
  private readonly names = new Set<string>();
  constructor(
    readonly rng: Rng,
    readonly dtype: FloatDType,
  ) {}

  alloc(n: number): FloatArray {
    return this.dtype === "float64" ? new Float64Array(n) : new Float32Array(n);
  }

  add(name: string, shape: number[], group: ParamGroup, decay: boolean, init: (rng: Rng) => number): number {
    if (this.names.has(name)) throw new Error(`model: duplicate parameter name ${name}`);
    this.names.add(name);
    let n = 1;
    for (const s of shape) n *= s;
    const data = this.alloc(n);
    for (let i = 0; i < n; i++) data[i] = init(this.rng);
    this.dense.push({ name, shape, group, decay, data });
    return this.dense.length - 1;
  }

  /** Dense layer: W [in, out] Xavier/Glorot-uniform (decayed), b [out] zeros (not decayed). */
  linear(name: string, inDim: number, outDim: number, group: ParamGroup, bias = true): LinearSpec {
    const a = Math.sqrt(6 / (inDim + outDim));
    const W = this.add(`${name}.W`, [inDim, outDim], group, true, (r) => (2 * r.next() - 1) * a);
    const b = bias ? this.add(`${name}.b`, [outDim], group, false, () => 0) : -1;
    return { W, b, inDim, outDim };
  }

  mlp(name: string, inDim: number, units: readonly number[], group: ParamGroup): MlpSpec {
    const layers: LinearSpec[] = [];
    let d = inDim;
    units.forEach((u, i) => {
      layers.push(this.linear(`${name}.l${i}`, d, u, group));
      d = u;
    });
    return { layers, inDim, outDim: d };
  }
}

/**
 * Embedding tables, N(0, std) init. `sets` = 1 gives one shared table per field;
 * `sets` = T gives per-task tables (set s owned by task s).
 */
export function buildTables(
  fields: readonly { name: string; vocabSize: number }[],
  dim: number,
  sets: number,
  rng: Rng,
  dtype: FloatDType,
  std = 0.01,
): EmbeddingTable[][] {
  const out: EmbeddingTable[][] = [];
  for (let s = 0; s < sets; s++) {
    const set: EmbeddingTable[] = [];
    fields.forEach((f, i) => {
      if (!Number.isInteger(f.vocabSize) || f.vocabSize < 1) {
        throw new Error(`model: field ${f.name} has invalid vocabSize ${f.vocabSize}`);
      }
      const n = f.vocabSize * dim;
      const data = dtype === "float64" ? new Float64Array(n) : new Float32Array(n);
      for (let k = 0; k < n; k++) data[k] = std * rng.normal();
      set.push({
        name: sets === 1 ? `emb.${f.name}` : `emb.t${s}.${f.name}`,
        field: i,
        vocab: f.vocabSize,
        dim,
        group: sets === 1 ? "shared" : s,
        data,
      });
    });
    out.push(set);
  }
  return out;
}

// ---------------------------------------------------------------- engine side

/** x [B, in] @ W + b (consumes x and the params it reads). */
export function linear(x: JArray, p: JArray[], l: LinearSpec): JArray {
  const np = jax().numpy;
  const y = np.matmul(x, p[l.W]!);
  return l.b >= 0 ? y.add(p[l.b]!) : y;
}

/** ReLU MLP with dropout after every hidden activation (train mode only). */
export function mlp(x: JArray, p: JArray[], spec: MlpSpec, ctx: ForwardCtx): JArray {
  const nn = jax().nn;
  let h = x;
  for (const l of spec.layers) h = ctx.dropout(nn.relu(linear(h, p, l)), l.outDim);
  return h;
}

/** Task tower: hidden ReLU layers (dropout) then a 1-unit logit, returned as [B]. */
export interface TowerSpec {
  hidden: MlpSpec;
  out: LinearSpec;
}

export function buildTower(b: ParamBuilder, name: string, inDim: number, units: readonly number[], group: ParamGroup): TowerSpec {
  const hidden = b.mlp(`${name}`, inDim, units, group);
  const out = b.linear(`${name}.out`, hidden.outDim, 1, group);
  return { hidden, out };
}

export function tower(x: JArray, p: JArray[], t: TowerSpec, ctx: ForwardCtx): JArray {
  const h = mlp(x, p, t.hidden, ctx);
  return linear(h, p, t.out).reshape([ctx.batch]);
}

/**
 * Softmax-gated mixture: gate logits [B, K], experts K arrays of [B, d] -> [B, d].
 * Consumes the logits and the experts it is given (pass `.ref`s to keep them).
 */
export function mixture(gateLogits: JArray, experts: JArray[], batch: number): JArray {
  const { numpy: np, nn } = jax();
  const K = experts.length;
  const g = nn.softmax(gateLogits, -1).reshape([batch, K, 1]);
  const e = np.stack(experts, 1); // [B, K, d]
  return g.mul(e).sum(1);
}

/** Dispose every array of a list (arguments a function does not use). */
export function disposeAll(a: readonly JArray[]): void {
  for (const x of a) x.dispose();
}

/** Full forward = trunk then heads 0..T-1 (same call order, hence same masks, as the split gradient path). */
export function forwardAll(
  arch: { numTasks: number; trunk: Architecture["trunk"]; head: Architecture["head"] },
  p: JArray[],
  xs: JArray[],
  ctx: ForwardCtx,
): JArray[] {
  const T = arch.numTasks;
  const feats = arch.trunk(p, xs.map((x) => x.ref), ctx);
  const out: JArray[] = [];
  for (let t = 0; t < T; t++) {
    out.push(arch.head(t, p, feats.map((f) => f.ref), xs.map((x) => x.ref), ctx));
  }
  disposeAll(feats);
  disposeAll(xs);
  return out;
}

/** n owning handles to `a` (n-1 extra references); disposes `a` when n = 0. */
export function dup(a: JArray, n: number): JArray[] {
  if (n === 0) {
    a.dispose();
    return [];
  }
  const out: JArray[] = [];
  for (let i = 0; i < n - 1; i++) out.push(a.ref);
  out.push(a);
  return out;
}

// ---------------------------------------------------------------- dropout masks

/** Reusable JS buffers for dropout masks (uploaded into the engine per forward). */
export class MaskPool {
  private bufs: FloatArray[] = [];
  private next = 0;
  reset(): void {
    this.next = 0;
  }
  take(n: number, dtype: FloatDType): FloatArray {
    let b = this.bufs[this.next];
    const want64 = dtype === "float64";
    if (!b || b.length < n || b instanceof Float64Array !== want64) {
      b = want64 ? new Float64Array(n) : new Float32Array(n);
      this.bufs[this.next] = b;
    }
    this.next++;
    return b.length === n ? b : b.subarray(0, n);
  }
}

/**
 * Fill `out` with an inverted-dropout mask: each entry is 0 with probability
 * q = round(rate * 65536) / 65536 and 1/(1-q) otherwise. The mask's stream is
 * seeded by one draw of `rng` and generated by an inlined xoshiro128** (same
 * algorithm as src/util/rng.ts, kept in locals: ~5x faster than calling
 * Rng.nextU32 per pair), two 16-bit decisions per 32-bit output.
 */
export function fillDropoutMask(out: FloatArray, rate: number, rng: Rng): void {
  const thr = Math.round(rate * 65536);
  const keep = 65536 / (65536 - thr);
  // splitmix32 seeding of the 4 state words
  let a = rng.nextU32();
  const sm = (): number => {
    a = (a + 0x9e3779b9) >>> 0;
    let z = a;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  };
  let s0 = sm();
  let s1 = sm();
  let s2 = sm();
  let s3 = sm() | 1;
  const n = out.length;
  for (let i = 0; i < n; i += 2) {
    const r = Math.imul(((Math.imul(s1, 5) << 7) | (Math.imul(s1, 5) >>> 25)) >>> 0, 9) >>> 0;
    const t = s1 << 9;
    s2 ^= s0;
    s3 ^= s1;
    s1 ^= s2;
    s0 ^= s3;
    s2 ^= t;
    s3 = (s3 << 11) | (s3 >>> 21);
    out[i] = (r & 0xffff) < thr ? 0 : keep;
    if (i + 1 < n) out[i + 1] = r >>> 16 < thr ? 0 : keep;
  }
}

/** Build the per-forward context (masks drawn from `new Rng(seed)` in call order). */
export function makeCtx(mode: Mode, batch: number, dtype: FloatDType, rate: number, seed: number, pool: MaskPool): ForwardCtx {
  const noise = new Rng(seed);
  pool.reset();
  const keep: JArray[] = [];
  return {
    release() {
      for (const a of keep) a.dispose();
      keep.length = 0;
    },
    mode,
    batch,
    dtype,
    noise,
    dropout(h: JArray, units: number): JArray {
      if (mode !== "train" || rate <= 0) return h;
      const m = pool.take(batch * units, dtype);
      fillDropoutMask(m, rate, noise);
      const np = jax().numpy;
      const mask = np.array(m, { shape: [batch, units], dtype: dtype === "float64" ? np.float64 : np.float32 });
      keep.push(mask);
      return h.mul(mask.ref);
    },
  };
}

// ---------------------------------------------------------------- hard-concrete gates

export interface HardConcreteOptions {
  /** Temperature beta (default 0.9 per SNR). */
  beta: number;
  /** Stretch lower bound gamma (default -0.1). */
  gamma: number;
  /** Stretch upper bound zeta (default 1.1). */
  zeta: number;
}

/**
 * Hard-concrete gates (Louizos et al. ICLR'18) over log-alpha [n]:
 * train: s = sigmoid((log u - log(1-u) + logAlpha) / beta), u ~ U(0,1) drawn in JS;
 * eval: s = sigmoid(logAlpha); z = clip(s * (zeta - gamma) + gamma, 0, 1).
 */
export function hardConcrete(logAlpha: JArray, n: number, o: HardConcreteOptions, ctx: ForwardCtx): JArray {
  const { numpy: np, nn } = jax();
  let s: JArray;
  if (ctx.mode === "train") {
    const u = ctx.dtype === "float64" ? new Float64Array(n) : new Float32Array(n);
    for (let i = 0; i < n; i++) {
      let r = ctx.noise.next();
      if (r < 1e-6) r = 1e-6;
      if (r > 1 - 1e-6) r = 1 - 1e-6;
      u[i] = Math.log(r) - Math.log(1 - r);
    }
    const logistic = np.array(u, { shape: [n], dtype: ctx.dtype === "float64" ? np.float64 : np.float32 });
    s = nn.sigmoid(logAlpha.add(logistic).mul(1 / o.beta));
  } else {
    s = nn.sigmoid(logAlpha);
  }
  return np.clip(s.mul(o.zeta - o.gamma).add(o.gamma), 0, 1);
}

/** Expected L0 norm sum_i sigmoid(logAlpha_i - beta*log(-gamma/zeta)) and its gradient (JS side). */
export function l0Penalty(logAlpha: FloatArray, o: HardConcreteOptions, weight: number, grad: FloatArray | null): number {
  const shift = o.beta * Math.log(-o.gamma / o.zeta);
  let v = 0;
  for (let i = 0; i < logAlpha.length; i++) {
    const p = 1 / (1 + Math.exp(-(logAlpha[i]! - shift)));
    v += p;
    if (grad) grad[i] = grad[i]! + weight * p * (1 - p);
  }
  return weight * v;
}
