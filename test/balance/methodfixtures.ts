/** Test fixtures shared by the balancing-method tests (uw, dwa, gradnorm, rlw, cagrad, imtl, dbmtl, nashmtl, alignedmtl). */
import assert from "node:assert/strict";
import type { BalanceInput, BalanceOutput, BalancingMethod } from "../../src/balance/types.ts";
import { Rng } from "../../src/util/rng.ts";

/** A BalanceInput from plain number rows (float32 gradients). */
export function mkInput(rows: number[][], opts: { losses?: number[]; step?: number; epoch?: number; seed?: number; rng?: Rng } = {}): BalanceInput {
  const T = rows.length;
  return {
    grads: rows.map((r) => Float32Array.from(r)),
    losses: Float64Array.from(opts.losses ?? new Array<number>(T).fill(1)),
    step: opts.step ?? 0,
    epoch: opts.epoch ?? 0,
    rng: opts.rng ?? new Rng(opts.seed ?? 1),
  };
}

/** Random gradient rows from a seeded generator (normal entries). */
export function randomRows(T: number, d: number, seed: number): number[][] {
  const r = new Rng(seed);
  return Array.from({ length: T }, () => Array.from({ length: d }, () => Math.fround(r.normal())));
}

/** Naive float64 helpers, written independently of linalg.ts. */
export function vdot(a: readonly number[], b: readonly number[]): number {
  return a.reduce((s, x, i) => s + x * b[i]!, 0);
}
export function vnorm(a: readonly number[]): number {
  return Math.sqrt(vdot(a, a));
}
export function lincomb(rows: readonly (readonly number[])[], c: ArrayLike<number>): number[] {
  const d = rows[0]!.length;
  const out = new Array<number>(d).fill(0);
  rows.forEach((r, i) => r.forEach((x, k) => (out[k]! += c[i]! * x)));
  return out;
}

export function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: number, what = "value"): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i]!;
    const e = expected[i]!;
    assert.ok(Math.abs(a - e) <= tol * Math.max(1, Math.abs(e)), `${what}[${i}]: got ${a}, expected ${e} (tol ${tol})`);
  }
}

/** Shape and finiteness checks every output must pass. */
export function assertWellFormed(out: BalanceOutput, T: number, d: number): void {
  assert.equal(out.direction.length, d);
  assert.equal(out.coeffs.length, T);
  assert.equal(out.taskScale.length, T);
  assert.equal(out.diagnostics.norms.length, T);
  for (const x of out.direction) assert.ok(Number.isFinite(x), "direction finite");
  for (const x of out.coeffs) assert.ok(Number.isFinite(x), "coeffs finite");
  for (const x of out.taskScale) assert.ok(Number.isFinite(x), "taskScale finite");
}

/** The direction must equal Σ coeffs_i g_i (computed here in float64). */
export function assertDirectionMatchesCoeffs(out: BalanceOutput, rows: number[][], tol = 1e-5): void {
  assertClose(out.direction, lincomb(rows, out.coeffs), tol, "direction vs Σ coeffs g");
}

/** Run `steps` inputs through a, snapshot its state into a fresh b, then check both give identical outputs on `after`. */
export function assertStateRoundTrip(make: () => BalancingMethod, before: BalanceInput[], after: BalanceInput[], beforeEpoch?: (m: BalancingMethod) => void): void {
  const a = make();
  for (const inp of before) a.combine(inp);
  beforeEpoch?.(a);
  const b = make();
  b.setState(JSON.parse(JSON.stringify(a.getState())));
  for (const inp of after) {
    const oa = a.combine(inp);
    const ob = b.combine(inp);
    assert.deepEqual(Array.from(ob.coeffs), Array.from(oa.coeffs));
    assert.deepEqual(Array.from(ob.direction), Array.from(oa.direction));
    assert.deepEqual(Array.from(ob.taskScale), Array.from(oa.taskScale));
  }
  assert.deepEqual(b.getState(), a.getState());
}

/** Degenerate gradient sets: zero row, colinear, opposite, all zero. */
export const DEGENERATE: Record<string, number[][]> = {
  zeroRow: [[1, 2, 0], [0, 0, 0], [-1, 0.5, 3]],
  colinear: [[1, 2, -1], [2, 4, -2]],
  opposite: [[1, -2, 0.5], [-1, 2, -0.5]],
  oppositeUnequal: [[1, -2, 0.5], [-3, 6, -1.5]],
  allZero: [[0, 0, 0], [0, 0, 0]],
  single: [[0.5, -1, 2]],
};
