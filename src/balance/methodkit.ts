/**
 * Small helpers shared by the stateful balancing methods (uw, gradnorm, dwa,
 * nashmtl, dbmtl): a tiny Adam (Kingma & Ba, ICLR'15) over method-owned
 * parameters (UW's log-variances, GradNorm's loss weights), kept separate from
 * the model optimiser so a method's state is self-contained plain JSON, plus
 * strict JSON-state parsing.
 */
import type { JsonValue } from "./types.ts";

export interface AdamState {
  m: Float64Array;
  v: Float64Array;
  /** Number of updates taken so far (bias correction uses t+1 on the next step). */
  t: number;
}

export function adamInit(n: number): AdamState {
  return { m: new Float64Array(n), v: new Float64Array(n), t: 0 };
}

/** In-place Adam update p ← p − lr·m̂/(√v̂ + eps) with PyTorch's defaults β1=0.9, β2=0.999, eps=1e-8. */
export function adamStep(p: Float64Array, grad: Float64Array, st: AdamState, lr: number, b1 = 0.9, b2 = 0.999, eps = 1e-8): void {
  st.t += 1;
  const c1 = 1 - b1 ** st.t;
  const c2 = 1 - b2 ** st.t;
  for (let i = 0; i < p.length; i++) {
    const g = grad[i]!;
    st.m[i] = b1 * st.m[i]! + (1 - b1) * g;
    st.v[i] = b2 * st.v[i]! + (1 - b2) * g * g;
    p[i] = p[i]! - (lr * (st.m[i]! / c1)) / (Math.sqrt(st.v[i]! / c2) + eps);
  }
}

export function adamToJson(st: AdamState): JsonValue {
  return { m: Array.from(st.m), v: Array.from(st.v), t: st.t };
}

/** Parse a state written by adamToJson; `where` names the method for error messages. */
export function adamFromJson(j: JsonValue | undefined, n: number, where: string): AdamState {
  if (j === null || j === undefined || typeof j !== "object" || Array.isArray(j)) throw new Error(`${where}: setState: adam state missing`);
  const t = j.t;
  if (typeof t !== "number" || !Number.isInteger(t) || t < 0) throw new Error(`${where}: setState: adam.t must be an integer >= 0`);
  return { m: numArray(j.m, n, `${where}: setState: adam.m`), v: numArray(j.v, n, `${where}: setState: adam.v`), t };
}

/** A JSON array of exactly n finite numbers, as Float64Array. */
export function numArray(j: JsonValue | undefined, n: number, what: string): Float64Array {
  if (!Array.isArray(j) || j.length !== n) throw new Error(`${what} must be an array of ${n} numbers`);
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const x = j[i];
    if (typeof x !== "number" || !Number.isFinite(x)) throw new Error(`${what}[${i}] must be a finite number, got ${String(x)}`);
    out[i] = x;
  }
  return out;
}

/** A JSON object (not array, not null), else throw naming the method. */
export function stateObject(j: JsonValue, where: string): { [k: string]: JsonValue } {
  if (j === null || typeof j !== "object" || Array.isArray(j)) throw new Error(`${where}: setState expects an object, got ${JSON.stringify(j)}`);
  return j;
}

/**
 * A float32 vector as JSON: its little-endian bytes in base64 (about 5.3 characters per
 * entry instead of ~20 for a number list), for d-long method state in checkpoints
 * (ExcessMTL's accumulators, MoCo's tracked gradients). Exact: decodes to the same floats.
 */
export function f32ToJson(a: Float32Array): string {
  const bytes = new Uint8Array(a.length * 4);
  const view = new DataView(bytes.buffer);
  for (let i = 0; i < a.length; i++) view.setFloat32(i * 4, a[i]!, true);
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64");
}

/** Inverse of f32ToJson; every entry must be finite (and >= 0 with `nonNegative`), else throw naming `what`. */
export function f32FromJson(j: JsonValue | undefined, what: string, opts: { nonNegative?: boolean } = {}): Float32Array {
  if (typeof j !== "string" || !/^[A-Za-z0-9+/]*={0,2}$/.test(j)) throw new Error(`${what} must be a base64 string of float32 values (as getState writes it)`);
  const buf = Buffer.from(j, "base64");
  if (buf.length % 4 !== 0) throw new Error(`${what}: ${buf.length} bytes is not a whole number of float32 values`);
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const out = new Float32Array(buf.length / 4);
  for (let i = 0; i < out.length; i++) {
    const x = view.getFloat32(i * 4, true);
    if (!Number.isFinite(x) || (opts.nonNegative && x < 0)) throw new Error(`${what}[${i}] must be a finite number${opts.nonNegative ? " >= 0" : ""}, got ${x}`);
    out[i] = x;
  }
  return out;
}
