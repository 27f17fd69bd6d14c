/**
 * Balancing from a Gramian alone: every method here (but DB-MTL) computes its
 * coefficients from the T×T Gramian and only then touches the d-long gradients (one
 * `combine`). `gramWeights` runs exactly that code path — a fresh instance of the method,
 * `combine` on T empty gradients with the given Gramian — so its coefficients are the
 * ones training uses, bit for bit, and no d-long vector is ever needed.
 */
import type { GramContext, GramInput, GramWeights, MethodEntry } from "./types.ts";
import { Rng } from "../util/rng.ts";

/** A T×T Gramian as a flat row-major Float64Array, checked square, symmetric enough and finite. */
export function toGram(gram: GramInput, where = "gram"): { G: Float64Array; T: number } {
  let flat: number[] | Float64Array;
  if (gram instanceof Float64Array) flat = gram;
  else if (gram.length > 0 && Array.isArray(gram[0])) {
    const rows = gram as readonly (readonly number[])[];
    const T = rows.length;
    for (const [i, r] of rows.entries()) {
      if (!Array.isArray(r) || r.length !== T) throw new Error(`${where}: row ${i} has ${Array.isArray(r) ? r.length : "no"} entries; a ${T}x${T} Gramian needs ${T}`);
    }
    flat = rows.flat();
  } else flat = Array.from(gram as readonly number[]);
  const T = Math.round(Math.sqrt(flat.length));
  if (T < 1 || T * T !== flat.length) throw new Error(`${where}: expected a T×T Gramian (T² entries), got ${flat.length} entries`);
  const G = Float64Array.from(flat);
  for (let i = 0; i < G.length; i++) {
    if (!Number.isFinite(G[i]!)) throw new Error(`${where}: entry (${Math.floor(i / T)}, ${i % T}) is not finite (${G[i]})`);
  }
  for (let i = 0; i < T; i++) {
    if (G[i * T + i]! < 0) throw new Error(`${where}: diagonal entry ${i} is negative (${G[i * T + i]}); a Gramian has squared norms there`);
  }
  return { G, T };
}

/** An Rng that fails when used: methods that draw random orders must be given one. */
class MissingRng extends Rng {
  constructor(private readonly method: string) {
    super(0);
  }
  private fail(): never {
    throw new Error(`${this.method}: weightsFromGram needs ctx.rng (this method draws random projection orders; pass e.g. new Rng(seed) and reuse it across steps)`);
  }
  override next(): number {
    return this.fail();
  }
  override int(): number {
    return this.fail();
  }
  override normal(): number {
    return this.fail();
  }
  override permutation(): Int32Array {
    return this.fail();
  }
}

/**
 * One step of `entry` from a Gramian: coefficients, the next state and diagnostics.
 * Pure: builds a fresh instance (restoring `ctx.state`), never modifies its inputs.
 */
export function gramWeights<O extends object>(entry: MethodEntry<O>, gram: GramInput, options?: Partial<O>, ctx: GramContext = {}): GramWeights {
  const { G, T } = toGram(gram, `${entry.name}: gram`);
  const method = entry.create(T, options);
  if (ctx.state !== undefined) method.setState(structuredClone(ctx.state));
  const losses = ctx.losses === undefined ? new Float64Array(T).fill(1) : Float64Array.from(ctx.losses);
  if (losses.length !== T) throw new Error(`${entry.name}: ctx.losses has ${losses.length} entries for ${T} tasks`);
  const grads = Array.from({ length: T }, () => new Float32Array(0));
  const out = method.combine({ grads, losses, gram: G, step: ctx.step ?? 0, epoch: ctx.epoch ?? 0, rng: ctx.rng ?? new MissingRng(entry.name) });
  return { coeffs: out.coeffs, state: method.getState(), diagnostics: out.diagnostics };
}

/** The `weightsFromGram` member of a gradient method's entry (see MethodEntry). */
export function gramForm<O extends object>(entry: () => MethodEntry<O>): NonNullable<MethodEntry<O>["weightsFromGram"]> {
  return (gram, options, ctx) => gramWeights(entry(), gram, options, ctx);
}
