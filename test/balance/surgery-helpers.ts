/**
 * Float64 vector reference helpers for the gradient-surgery tests (EW, MGDA,
 * PCGrad, PCGrad+, GradVac, GradCraft). Deliberately written on number[] vectors
 * with explicit projections, independent of the Gramian code path under test.
 */
import type { BalanceInput } from "../../src/balance/types.ts";
import { Rng } from "../../src/util/rng.ts";

export type Vec = number[];

export const vdot = (a: Vec, b: Vec): number => a.reduce((s, x, k) => s + x * b[k]!, 0);
export const vnorm = (a: Vec): number => Math.sqrt(vdot(a, a));
export const vadd = (a: Vec, b: Vec, c = 1): Vec => a.map((x, k) => x + c * b[k]!);
export const vscale = (a: Vec, c: number): Vec => a.map((x) => x * c);
export const vzeros = (d: number): Vec => new Array<number>(d).fill(0);
export const vsum = (vs: Vec[], d: number): Vec => vs.reduce((s, v) => vadd(s, v), vzeros(d));

/** Float32-exact copies so reference and library see identical inputs. */
export function toF32(rows: Vec[]): Float32Array[] {
  return rows.map((r) => Float32Array.from(r));
}
export function fromF32(rows: readonly Float32Array[]): Vec[] {
  return rows.map((r) => Array.from(r));
}

/** Random T×d Gaussian gradients with per-task norm scale spread (float32-representable). */
export function randomGrads(rng: Rng, T: number, d: number, spread = 1): Vec[] {
  const out: Vec[] = [];
  for (let i = 0; i < T; i++) {
    const sc = Math.exp(spread * (rng.next() * 2 - 1));
    const r: Vec = [];
    for (let k = 0; k < d; k++) r.push(Math.fround(sc * rng.normal()));
    out.push(r);
  }
  return out;
}

export function makeInput(grads: Vec[] | Float32Array[], seed = 1, losses?: number[]): BalanceInput {
  const g = grads.map((r) => (r instanceof Float32Array ? r : Float32Array.from(r)));
  return {
    grads: g,
    losses: Float64Array.from(losses ?? g.map(() => 1)),
    step: 0,
    epoch: 0,
    rng: new Rng(seed),
  };
}

/** Solve A x = b by Gaussian elimination with partial pivoting (small dense). */
export function gaussSolve(A: number[][], b: number[]): number[] {
  const n = b.length;
  const M = A.map((row, i) => [...row, b[i]!]);
  for (let c = 0; c < n; c++) {
    let p = c;
    for (let r = c + 1; r < n; r++) if (Math.abs(M[r]![c]!) > Math.abs(M[p]![c]!)) p = r;
    [M[c], M[p]] = [M[p]!, M[c]!];
    for (let r = c + 1; r < n; r++) {
      const f = M[r]![c]! / M[c]![c]!;
      for (let k = c; k <= n; k++) M[r]![k]! -= f * M[c]![k]!;
    }
  }
  const x = new Array<number>(n).fill(0);
  for (let r = n - 1; r >= 0; r--) {
    let s = M[r]![n]!;
    for (let k = r + 1; k < n; k++) s -= M[r]![k]! * x[k]!;
    x[r] = s / M[r]![r]!;
  }
  return x;
}

export function assertClose(actual: number, expected: number, tol: number, what = ""): void {
  if (!(Math.abs(actual - expected) <= tol)) {
    throw new Error(`${what}: expected ${expected}, got ${actual} (|diff| ${Math.abs(actual - expected)} > ${tol})`);
  }
}

export function assertVecClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: number, what = ""): void {
  if (actual.length !== expected.length) throw new Error(`${what}: length ${actual.length} vs ${expected.length}`);
  for (let k = 0; k < expected.length; k++) assertClose(actual[k]!, expected[k]!, tol, `${what}[${k}]`);
}

export function allFinite(a: ArrayLike<number>): boolean {
  for (let k = 0; k < a.length; k++) if (!Number.isFinite(a[k]!)) return false;
  return true;
}
