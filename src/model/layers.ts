/**
 * Building blocks shared by the architectures: parameter construction (JS side)
 * and the engine-side layers (linear, MLP with ReLU + dropout, softmax gate
 * mixtures, hard-concrete gates) described as graph nodes (src/graph).
 */
import type { FloatArray, FloatDType, Graph, Tensor } from "../graph/graph.ts";
import { Rng } from "../util/rng.ts";
import type { Architecture, DenseParam, EmbeddingTable, ForwardCtx, Mode, NoiseSpec, ParamGroup } from "./types.ts";

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

// ---------------------------------------------------------------- graph side

/** x [B, in] @ W + b. */
export function linear(x: Tensor, p: Tensor[], l: LinearSpec, ctx: ForwardCtx): Tensor {
  return ctx.g.linear(x, p[l.W]!, l.b >= 0 ? p[l.b]! : undefined);
}

/** ReLU MLP with dropout after every hidden activation (train mode only); layer scopes "<name>.l<i>". */
export function mlp(x: Tensor, p: Tensor[], spec: MlpSpec, ctx: ForwardCtx): Tensor {
  let h = x;
  for (const l of spec.layers) h = ctx.dropout(ctx.g.relu(linear(h, p, l, ctx)), l.outDim);
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

export function tower(x: Tensor, p: Tensor[], t: TowerSpec, ctx: ForwardCtx): Tensor {
  const h = mlp(x, p, t.hidden, ctx);
  return ctx.g.reshape(linear(h, p, t.out, ctx), [ctx.batch]);
}

/**
 * Softmax-gated mixture: gate logits [B, K], experts K tensors of [B, d] -> [B, d]
 * (sum_k softmax(logits)[:, k] * e_k, as [B, K, 1] * [B, K, d] summed over K).
 */
export function mixture(gateLogits: Tensor, experts: Tensor[], ctx: ForwardCtx): Tensor {
  const g = ctx.g;
  const K = experts.length;
  if (gateLogits.shape[1] !== K) g.fail("mixture", `gate has ${gateLogits.shape[1]} outputs for ${K} experts`);
  const w = g.reshape(g.softmax(gateLogits, -1), [ctx.batch, K, 1]);
  const e = g.concat(
    experts.map((x) => g.unsqueeze(x, [1])),
    1,
  ); // [B, K, d]
  return g.reduceSum(g.mul(w, e), [1], false);
}

/** Full forward = trunk then heads 0..T-1 (the order noise is declared and drawn in). */
export function forwardAll(arch: Pick<Architecture, "numTasks" | "trunk" | "head">, p: Tensor[], xs: Tensor[], ctx: ForwardCtx): Tensor[] {
  const feats = ctx.g.scope("trunk", () => arch.trunk(p, xs, ctx));
  const out: Tensor[] = [];
  for (let t = 0; t < arch.numTasks; t++) out.push(ctx.g.scope(`head${t}`, () => arch.head(t, p, feats, xs, ctx)));
  return out;
}

// ---------------------------------------------------------------- noise (dropout masks, gate noise)

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
  // the state lives in int32 locals (same bits as the uint32 algorithm) so that V8 keeps every
  // value an int32; the masks were about 10 % of a PLE EW step's time (profiled at batch 4096)
  let s0 = sm() | 0;
  let s1 = sm() | 0;
  let s2 = sm() | 0;
  let s3 = sm() | 1 | 0;
  const n = out.length;
  const pairs = n & ~1;
  for (let i = 0; i < pairs; i += 2) {
    const x = Math.imul(s1, 5);
    const r = Math.imul((x << 7) | (x >>> 25), 9);
    const t = s1 << 9;
    s2 ^= s0;
    s3 ^= s1;
    s1 ^= s2;
    s0 ^= s3;
    s2 ^= t;
    s3 = (s3 << 11) | (s3 >>> 21);
    // branch-free keep bits (a random branch mispredicts ~20 % of the time): ~((v - thr)) >>> 31 is
    // 1 when v >= thr (v, thr < 2^16); the same values as `v < thr ? 0 : keep`, about 1.7x faster
    out[i] = (~((r & 0xffff) - thr) >>> 31) * keep;
    out[i + 1] = (~((r >>> 16) - thr) >>> 31) * keep;
  }
  if (pairs < n) {
    const x = Math.imul(s1, 5);
    const r = Math.imul((x << 7) | (x >>> 25), 9);
    out[pairs] = (r & 0xffff) < thr ? 0 : keep;
  }
}

/**
 * Build the forward context: dropout masks and gate noise become graph inputs
 * "noise.<k>" whose values `fillNoise` draws per run.
 */
export function makeCtx(g: Graph, mode: Mode, batch: number, rate: number): ForwardCtx {
  const noise: NoiseSpec[] = [];
  const declare = (kind: NoiseSpec["kind"], shape: number[], r: number): Tensor => {
    const name = `noise.${noise.length}`;
    let n = 1;
    for (const s of shape) n *= s;
    noise.push({ input: name, kind, n, rate: r });
    return g.input(name, shape, g.dtype);
  };
  return {
    g,
    mode,
    batch,
    dtype: g.dtype,
    noise,
    dropout(h: Tensor, units: number): Tensor {
      if (mode !== "train" || rate <= 0) return h;
      return g.mul(h, declare("dropout", [batch, units], rate));
    },
    logisticNoise(n: number): Tensor {
      return declare("logistic", [n], 0);
    },
  };
}

/**
 * Draw every noise input of one run, in declaration order, from `new Rng(seed)`:
 * dropout masks with fillDropoutMask; logistic noise as log r - log(1 - r) with
 * r = rng.next() clipped to [1e-6, 1 - 1e-6].
 */
export function fillNoise(specs: readonly NoiseSpec[], bufs: readonly FloatArray[], seed: number): void {
  const rng = new Rng(seed);
  specs.forEach((s, k) => {
    const out = bufs[k]!;
    if (s.kind === "dropout") fillDropoutMask(out, s.rate, rng);
    else {
      for (let i = 0; i < s.n; i++) {
        let r = rng.next();
        if (r < 1e-6) r = 1e-6;
        if (r > 1 - 1e-6) r = 1 - 1e-6;
        out[i] = Math.log(r) - Math.log(1 - r);
      }
    }
  });
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
export function hardConcrete(logAlpha: Tensor, n: number, o: HardConcreteOptions, ctx: ForwardCtx): Tensor {
  const g = ctx.g;
  const s = ctx.mode === "train" ? g.sigmoid(g.mul(g.add(logAlpha, ctx.logisticNoise(n)), 1 / o.beta)) : g.sigmoid(logAlpha);
  return g.clip(g.add(g.mul(s, o.zeta - o.gamma), o.gamma), 0, 1);
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
