/**
 * UPGrad — Unconflicting Projection of Gradients.
 * Paper: P. Quinton, V. Rey, "Jacobian Descent for Multi-Objective Optimization",
 * arXiv:2406.16232, 2024. Reference: TorchJD (github.com/TorchJD/torchjd),
 * `UPGradWeighting` (the aggregator TorchJD recommends), which solves each projection with
 * quadprog through qpsolvers.
 *
 * Update rule: project every task gradient g_i onto the dual cone of the task gradients,
 * C = {x : <x, g_j> ≥ 0 for all j}, and average the projections:
 *     d = (1/T) Σ_i π_C(g_i).
 * Each projection is a small QP in the Gramian (the paper's Proposition 1):
 * π_C(Σ_j u_j g_j) = Σ_j v_j g_j with v = argmin_{v ≥ u} vᵀ G v, here with u = e_i / T;
 * so d = Σ_j w_j g_j, w = Σ_i v^{(i)}. By the optimality conditions G v^{(i)} ≥ 0, hence
 * <d, g_j> = (G w)_j ≥ 0 for every task (non-conflicting), and w_j ≥ 1/T.
 * As TorchJD, G is first normalised by its trace (A = G / tr G, which leaves the
 * projections unchanged) and regEps·I is added.
 *
 * Solver (differs from TorchJD's quadprog): with v = u + x, each QP is
 *     min_x ½ xᵀ A x + (A u)ᵀ x  s.t.  x ≥ 0,
 * solved exactly by a Lawson–Hanson-style active-set method (the NNLS algorithm run on
 * the Gramian: add the most violated coordinate, solve the free block by Cholesky, step
 * back to feasibility, drop coordinates that hit zero), with a coordinate's KKT tolerance
 * 1e-12 · sqrt(A_kk · max_j A_jj) / T. T ≤ ~10 makes each solve a few microseconds.
 *
 * Hyperparameters (defaults) and the differences from TorchJD's defaults:
 *  - regEps = 0: the paper's exact projection. TorchJD adds reg_eps = 1e-4 to the
 *    normalised Gramian's diagonal (so that quadprog gets a positive definite matrix),
 *    which shifts the weights towards the mean by up to ~1e-4/λ_min(A) and allows
 *    conflicts of up to ~1e-4 · w_j · tr G; the active-set solver here does not need it.
 *    Set 1e-4 to reproduce TorchJD.
 *  - normEps = 0: TorchJD's norm_eps = 1e-4 replaces the Gramian by 0 when tr G < norm_eps
 *    (an absolute threshold: gradients with Σ‖g_i‖² < 1e-4 then all get weight 1/T, i.e.
 *    the mean, which makes the result depend on the loss scale). Set 1e-4 to reproduce
 *    TorchJD.
 * With regEps = 0 and linearly dependent gradients the weights are not unique (the
 * direction is): the solver returns the minimiser it reaches from v = u by adding the
 * most violated task first; a zero gradient keeps w_j = 1/T (its weight cannot matter).
 * All-zero gradients: w = 1/T each (zero direction). TorchJD's preference vector (pref_vector,
 * default the mean) is not offered. Towers get unscaled task gradients (taskScale = 1).
 * Stateless.
 */
import type { BalanceInput, BalancingMethod, GramMethodEntry, JsonValue } from "./types.ts";
import { checkInput, checkRange, checkTasks, expectNullState, finish, gramOf, withDefaults } from "./common.ts";
import { solveSPD } from "./linalg.ts";
import { gramForm } from "./gram.ts";

export interface UPGradOptions {
  /** Added to the diagonal of the trace-normalised Gramian (TorchJD reg_eps = 1e-4); 0 = exact projection. */
  regEps: number;
  /** Below this trace the Gramian counts as zero (TorchJD norm_eps = 1e-4); 0 = never. */
  normEps: number;
}

export const UPGRAD_DEFAULTS: Readonly<UPGradOptions> = Object.freeze({ regEps: 0, normEps: 0 });

/** Reusable buffers of the active-set solver for T tasks. */
export class UPGradWorkspace {
  readonly A: Float64Array;
  readonly b: Float64Array;
  readonly x: Float64Array;
  readonly z: Float64Array;
  readonly g: Float64Array;
  readonly tol: Float64Array;
  readonly free: Uint8Array;
  readonly banned: Uint8Array;
  readonly sub: Float64Array;
  readonly rhs: Float64Array;
  readonly L: Float64Array;
  readonly sol: Float64Array;
  readonly idx: Int32Array;
  constructor(readonly T: number) {
    this.A = new Float64Array(T * T);
    this.b = new Float64Array(T);
    this.x = new Float64Array(T);
    this.z = new Float64Array(T);
    this.g = new Float64Array(T);
    this.tol = new Float64Array(T);
    this.free = new Uint8Array(T);
    this.banned = new Uint8Array(T);
    this.sub = new Float64Array(T * T);
    this.rhs = new Float64Array(T);
    this.L = new Float64Array(T * T);
    this.sol = new Float64Array(T);
    this.idx = new Int32Array(T);
  }
}

/** z_P = −(A_PP)⁻¹ b_P on the free set P (z = 0 elsewhere); Cholesky, with solveSPD's ridge fallback when A_PP is singular. */
function solveFree(ws: UPGradWorkspace, T: number): void {
  const { A, b, z, free, sub, rhs, L, sol, idx } = ws;
  let n = 0;
  for (let k = 0; k < T; k++) if (free[k] === 1) idx[n++] = k;
  for (let a = 0; a < n; a++) {
    rhs[a] = -b[idx[a]!]!;
    for (let c = 0; c < n; c++) sub[a * n + c] = A[idx[a]! * T + idx[c]!]!;
  }
  let ok = true;
  let maxDiag = 0;
  for (let a = 0; a < n; a++) maxDiag = Math.max(maxDiag, sub[a * n + a]!);
  const minPivot = 1e-13 * maxDiag;
  outer: for (let i = 0; i < n; i++) {
    for (let j = 0; j <= i; j++) {
      let s = sub[i * n + j]!;
      for (let p = 0; p < j; p++) s -= L[i * n + p]! * L[j * n + p]!;
      if (i === j) {
        if (!(s > minPivot)) {
          ok = false;
          break outer;
        }
        L[i * n + i] = Math.sqrt(s);
      } else L[i * n + j] = s / L[j * n + j]!;
    }
  }
  if (ok) {
    for (let i = 0; i < n; i++) {
      let s = rhs[i]!;
      for (let j = 0; j < i; j++) s -= L[i * n + j]! * sol[j]!;
      sol[i] = s / L[i * n + i]!;
    }
    for (let i = n - 1; i >= 0; i--) {
      let s = sol[i]!;
      for (let j = i + 1; j < n; j++) s -= L[j * n + i]! * sol[j]!;
      sol[i] = s / L[i * n + i]!;
    }
  } else {
    sol.set(solveSPD(sub.subarray(0, n * n), rhs.subarray(0, n), n, 1e-13).x);
  }
  z.fill(0);
  for (let a = 0; a < n; a++) z[idx[a]!] = sol[a]!;
}

/**
 * v = argmin_{v ≥ u} vᵀ A v with u = e_i / T, for the T×T PSD matrix in ws.A (ws.tol set);
 * the result is added into `acc`.
 */
function projectInto(ws: UPGradWorkspace, T: number, i: number, acc: Float64Array): void {
  const { A, b, x, z, g, tol, free, banned } = ws;
  const ui = 1 / T;
  for (let k = 0; k < T; k++) b[k] = A[k * T + i]! * ui;
  x.fill(0);
  free.fill(0);
  banned.fill(0);
  const maxOuter = 4 * T + 10;
  for (let outer = 0; outer < maxOuter; outer++) {
    // gradient of ½xᵀAx + bᵀx; the most violated bound (scaled by the coordinate's norm)
    let j = -1;
    let worst = 0;
    for (let k = 0; k < T; k++) {
      let s = b[k]!;
      for (let c = 0; c < T; c++) s += A[k * T + c]! * x[c]!;
      g[k] = s;
      if (free[k] === 0 && banned[k] === 0 && s < -tol[k]!) {
        const score = -s / Math.sqrt(A[k * T + k]!);
        if (score > worst) {
          worst = score;
          j = k;
        }
      }
    }
    if (j < 0) break;
    free[j] = 1;
    let moved = false;
    for (let inner = 0; inner < 2 * T + 5; inner++) {
      solveFree(ws, T);
      let allPos = true;
      for (let k = 0; k < T; k++) if (free[k] === 1 && !(z[k]! > 0)) allPos = false;
      if (allPos) {
        for (let k = 0; k < T; k++) if (x[k] !== z[k]) moved = true;
        x.set(z);
        break;
      }
      // step from x towards z until the first free coordinate reaches 0
      let alpha = 1;
      for (let k = 0; k < T; k++) {
        if (free[k] === 1 && !(z[k]! > 0)) {
          const den = x[k]! - z[k]!;
          const a = den > 0 ? x[k]! / den : 0;
          if (a < alpha) alpha = a;
        }
      }
      for (let k = 0; k < T; k++) {
        if (free[k] === 0) continue;
        const nx = x[k]! + alpha * (z[k]! - x[k]!);
        if (nx !== x[k]) moved = true;
        x[k] = nx;
      }
      let any = false;
      for (let k = 0; k < T; k++) {
        if (free[k] === 1 && (!(x[k]! > 0) || (!(z[k]! > 0) && x[k]! <= 1e-15 * ui))) {
          free[k] = 0;
          x[k] = 0;
        }
        if (free[k] === 1) any = true;
      }
      if (!any) break;
    }
    // a coordinate that could not enter without moving x is skipped until x changes (anti-cycling)
    if (moved) banned.fill(0);
    else banned[j] = 1;
  }
  for (let k = 0; k < T; k++) acc[k] = acc[k]! + x[k]! + (k === i ? ui : 0);
}

/** UPGrad weights w (direction = Σ w_j g_j) from a T×T Gramian. */
export function upgradCoeffs(G: Float64Array, T: number, regEps = 0, normEps = 0, ws: UPGradWorkspace = new UPGradWorkspace(T)): Float64Array {
  const { A, tol } = ws;
  let tr = 0;
  for (let i = 0; i < T; i++) tr += G[i * T + i]!;
  const zero = !(tr > normEps) || !(tr > 0) || !Number.isFinite(tr);
  for (let k = 0; k < T * T; k++) A[k] = zero ? 0 : G[k]! / tr;
  let maxDiag = 0;
  for (let i = 0; i < T; i++) {
    A[i * T + i] = A[i * T + i]! + regEps;
    maxDiag = Math.max(maxDiag, A[i * T + i]!);
  }
  for (let i = 0; i < T; i++) tol[i] = (1e-12 * Math.sqrt(Math.max(0, A[i * T + i]!) * maxDiag)) / T;
  const w = new Float64Array(T);
  for (let i = 0; i < T; i++) projectInto(ws, T, i, w);
  return w;
}

export const upgrad: GramMethodEntry<UPGradOptions> = {
  name: "upgrad",
  label: "UPGrad",
  kind: "gradient",
  summary: "UPGrad (Quinton & Rey, Jacobian Descent, 2024; TorchJD): mean of the task gradients projected onto their dual cone",
  defaults: UPGRAD_DEFAULTS,
  properties: ["permutation-equivariant", "non-conflicting", "scale-equivariant", "linear-combination", "deterministic"],
  weightsFromGram: gramForm(() => upgrad),
  create(numTasks: number, options?: Partial<UPGradOptions>): BalancingMethod {
    checkTasks("upgrad", numTasks);
    const o = withDefaults("upgrad", UPGRAD_DEFAULTS, options);
    const regEps = checkRange("upgrad", "regEps", o.regEps, 0, 1);
    const normEps = checkRange("upgrad", "normEps", o.normEps, 0, Infinity);
    const ws = new UPGradWorkspace(numTasks);
    return {
      name: "upgrad",
      kind: "gradient",
      numTasks,
      combine(input: BalanceInput) {
        checkInput("upgrad", numTasks, input);
        const G = gramOf(input);
        return finish(input.grads, G, upgradCoeffs(G, numTasks, regEps, normEps, ws));
      },
      getState() {
        return null;
      },
      setState(state: JsonValue) {
        expectNullState("upgrad", state);
      },
    };
  },
};
