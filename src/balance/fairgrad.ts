/**
 * FairGrad — fair resource allocation in multi-task learning.
 * Paper: H. Ban, K. Ji, "Fair Resource Allocation in Multi-Task Learning", ICML 2024.
 * Reference: the official code (github.com/OptMN-Lab/fairgrad, methods/weight_methods.py
 * `FairGrad`) and LibMTL's `FairGrad` (same solver).
 *
 * Update rule: the update d = Σ_i w_i g_i maximises the α-fair utility
 * Σ_i (g_iᵀd)^{1−α}/(1−α) (log for α = 1) of the per-task improvements over a ball; its
 * weights solve, elementwise,
 *     (G w)_i = w_i^{−1/α},  w > 0          (G_ij = <g_i, g_j>, the Gramian),
 * so every task improves: <d, g_i> = w_i^{−1/α} > 0 (non-conflicting). α = 0 is linear
 * scalarisation, α = 1 proportional fairness (the Nash-MTL condition Gw = 1/w), α → ∞
 * max-min fairness. Then, as the official code's clip_grad_norm_(max_norm), d is
 * rescaled to norm maxNorm when it is longer (for α = 1, ‖d‖² = Σ w_i (Gw)_i = T, so
 * with the default maxNorm = 1 the direction has unit norm whenever T ≥ 2).
 *
 * Solver (differs from the reference's scipy.optimize.least_squares on G w − w^{−1/α}
 * with bounds (0, ∞), start 1/T, default tolerances): w solves the system iff it
 * minimises the strictly convex
 *     Φ(v) = ½ vᵀ A v + Σ_i h(v_i),  h(v) = −log v (α = 1),  −α/(α−1) · v^{(α−1)/α} (α ≠ 1)
 * (∇Φ = A v − v^{−1/α}, ∇²Φ = A + diag(v^{−1/α−1}/α) positive definite), on the Gramian
 * normalised by the mean squared norm s (A = G/s + ρ·diag(G/s), ρ = 1e-8). Damped Newton
 * (Cholesky) from the best multiple of the ones vector, with a fraction-to-boundary
 * rule keeping v > 0 and Armijo backtracking, until the Newton decrement² < 1e-28 (full
 * steps once it is < 1e-12, while it keeps shrinking; ≤ 200 iterations): quadratic
 * convergence to rounding level, where the reference's least squares stops at ~1e-5
 * relative. w = v · s^{−α/(α+1)} then solves (G + ρ·diag G) w = w^{−1/α} in the scale of G.
 * The ridge ρ (relative to each task's own squared norm, so it perturbs every weight by
 * ~1e-8 whatever the norms) is our addition: when the gradients are Pareto-stationary
 * (a positive combination is zero, e.g. opposite gradients) the system has no solution
 * and the reference's least squares stops wherever its tolerances stop it; with ρ the
 * answer is the unique minimiser, whose weights on the cancelling tasks are large
 * (~ρ^{−α/(α+1)}) but cancel in d. A zero gradient (‖g_i‖² ≤ 1e-24 · max_j ‖g_j‖²) is left
 * out of the solve and gets w_i = 0 (its equation 0 = w_i^{−1/α} has no solution; its
 * weight would not change d). All-zero gradients: w = 0, zero direction.
 *
 * Hyperparameters (defaults): alpha = 1 (the official code's and LibMTL's default; the
 * paper tunes α per benchmark), maxNorm = 1 (the official code's max_norm; 0 disables
 * the clip; LibMTL does not clip).
 * Other differences from the reference code: the official code multiplies d by T before
 * the clip "to match the sum loss" (not in the paper; with α = 1 and the default clip it
 * makes no difference for T ≥ 2: both give a unit-norm direction); LibMTL backpropagates
 * Σ w_i L_i, scaling the towers by w_i, and the official code leaves the task-specific
 * gradients unweighted — as here (taskScale = 1). Stateless.
 */
import type { BalanceInput, BalancingMethod, GramMethodEntry, JsonValue } from "./types.ts";
import { checkInput, checkRange, checkTasks, expectNullState, finish, gramOf, withDefaults } from "./common.ts";
import { solveSPD } from "./linalg.ts";
import { gramForm } from "./gram.ts";

export interface FairGradOptions {
  /** α of the α-fair utility (> 0): 1 proportional fairness, larger → closer to max-min fairness. */
  alpha: number;
  /** Rescale the direction to this norm when longer (the reference's clip_grad_norm_); 0 = no clip. */
  maxNorm: number;
}

export const FAIRGRAD_DEFAULTS: Readonly<FairGradOptions> = Object.freeze({ alpha: 1, maxNorm: 1 });

/** Ridge on the diagonal, relative to each task's squared norm (see the file comment). */
export const FAIRGRAD_RIDGE = 1e-8;
const MAX_ITER = 200;

/** Reusable buffers of the Newton solver for up to n tasks (no allocation per iteration). */
export class FairGradWorkspace {
  readonly A: Float64Array;
  readonly H: Float64Array;
  readonly L: Float64Array;
  readonly v: Float64Array;
  readonly grad: Float64Array;
  readonly step: Float64Array;
  readonly next: Float64Array;
  readonly idx: Int32Array;
  constructor(readonly n: number) {
    this.A = new Float64Array(n * n);
    this.H = new Float64Array(n * n);
    this.L = new Float64Array(n * n);
    this.v = new Float64Array(n);
    this.grad = new Float64Array(n);
    this.step = new Float64Array(n);
    this.next = new Float64Array(n);
    this.idx = new Int32Array(n);
  }
}

/** Φ(v) = ½ vᵀAv + Σ h(v_i) (see the file comment); +∞ outside v > 0. */
export function fairgradObjective(A: Float64Array, n: number, alpha: number, v: ArrayLike<number>): number {
  let q = 0;
  let h = 0;
  const p = (alpha - 1) / alpha;
  for (let i = 0; i < n; i++) {
    const vi = v[i]!;
    if (!(vi > 0)) return Infinity;
    let s = 0;
    for (let j = 0; j < n; j++) s += A[i * n + j]! * v[j]!;
    q += vi * s;
    h += alpha === 1 ? -Math.log(vi) : -(Math.pow(vi, p) / p);
  }
  return 0.5 * q + h;
}

/** In-place Cholesky solve H x = b (n×n), L as scratch; false when H is not numerically positive definite. */
function cholSolve(H: Float64Array, b: Float64Array, n: number, L: Float64Array, x: Float64Array): boolean {
  for (let i = 0; i < n; i++) {
    for (let j = 0; j <= i; j++) {
      let s = H[i * n + j]!;
      for (let p = 0; p < j; p++) s -= L[i * n + p]! * L[j * n + p]!;
      if (i === j) {
        if (!(s > 0)) return false;
        L[i * n + i] = Math.sqrt(s);
      } else L[i * n + j] = s / L[j * n + j]!;
    }
  }
  for (let i = 0; i < n; i++) {
    let s = b[i]!;
    for (let j = 0; j < i; j++) s -= L[i * n + j]! * x[j]!;
    x[i] = s / L[i * n + i]!;
  }
  for (let i = n - 1; i >= 0; i--) {
    let s = x[i]!;
    for (let j = i + 1; j < n; j++) s -= L[j * n + i]! * x[j]!;
    x[i] = s / L[i * n + i]!;
  }
  return true;
}

/**
 * argmin Φ over v > 0 for the n×n matrix in ws.A (positive semi-definite plus a positive
 * diagonal ridge), by damped Newton; the result is left in ws.v. Returns the iterations used.
 */
export function fairgradNewton(ws: FairGradWorkspace, n: number, alpha: number, maxIter = MAX_ITER): number {
  const { A, H, L, v, grad, step, next } = ws;
  // start: the best multiple t·1, t^{1+1/α} = n / 1ᵀA1
  let q = 0;
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) q += A[i * n + j]!;
  const t0 = q > 0 ? Math.pow(n / q, alpha / (alpha + 1)) : 1;
  for (let i = 0; i < n; i++) v[i] = t0;
  let f = fairgradObjective(A, n, alpha, v);
  let prevDec = Infinity;
  let it = 0;
  for (; it < maxIter; it++) {
    for (let i = 0; i < n; i++) {
      let s = 0;
      for (let j = 0; j < n; j++) {
        s += A[i * n + j]! * v[j]!;
        H[i * n + j] = A[i * n + j]!;
      }
      const vp = Math.pow(v[i]!, -1 / alpha);
      grad[i] = s - vp;
      H[i * n + i] = H[i * n + i]! + vp / (alpha * v[i]!);
      next[i] = -grad[i]!;
    }
    if (!cholSolve(H, next, n, L, step)) step.set(solveSPD(H, next, n, 1e-14).x.subarray(0, n));
    let dec = 0;
    for (let i = 0; i < n; i++) dec -= grad[i]! * step[i]!;
    if (!(dec > 1e-28)) break;
    let t = 1;
    for (let i = 0; i < n; i++) if (step[i]! < 0) t = Math.min(t, (-0.99 * v[i]!) / step[i]!);
    if (dec < 1e-12 && t === 1) {
      // quadratic-convergence region: take the full Newton step (Φ's rounding, ~1e-16·|Φ|, would
      // stop an Armijo test here); stop when the decrement no longer shrinks
      if (!(dec < 0.25 * prevDec)) break;
      prevDec = dec;
      for (let i = 0; i < n; i++) v[i] = v[i]! + step[i]!;
      f = fairgradObjective(A, n, alpha, v);
      continue;
    }
    prevDec = dec;
    let ok = false;
    let fn = f;
    for (let bt = 0; bt < 60; bt++) {
      for (let i = 0; i < n; i++) next[i] = v[i]! + t * step[i]!;
      fn = fairgradObjective(A, n, alpha, next);
      if (fn <= f - 0.25 * t * dec) {
        ok = true;
        break;
      }
      t *= 0.5;
    }
    if (!ok) break;
    for (let i = 0; i < n; i++) v[i] = next[i]!;
    f = fn;
  }
  return it;
}

/**
 * FairGrad coefficients from a T×T Gramian: w with (G + ρ·diag G) w = w^{−1/α} on the
 * non-zero tasks (0 for zero gradients), then scaled so that ‖Σ w_i g_i‖ ≤ maxNorm (when > 0).
 */
export function fairgradCoeffs(G: Float64Array, T: number, alpha: number, maxNorm: number, ws: FairGradWorkspace = new FairGradWorkspace(T)): Float64Array {
  const w = new Float64Array(T);
  let maxDiag = 0;
  for (let i = 0; i < T; i++) maxDiag = Math.max(maxDiag, G[i * T + i]!);
  if (!(maxDiag > 0) || !Number.isFinite(maxDiag)) return w;
  const { idx, A, v } = ws;
  let n = 0;
  let s = 0;
  for (let i = 0; i < T; i++) {
    if (G[i * T + i]! > 1e-24 * maxDiag) {
      idx[n++] = i;
      s += G[i * T + i]!;
    }
  }
  s /= n;
  for (let a = 0; a < n; a++) {
    for (let b = 0; b < n; b++) A[a * n + b] = G[idx[a]! * T + idx[b]!]! / s;
    A[a * n + a] = A[a * n + a]! * (1 + FAIRGRAD_RIDGE);
  }
  fairgradNewton(ws, n, alpha);
  const k = Math.pow(s, -alpha / (alpha + 1));
  for (let a = 0; a < n; a++) w[idx[a]!] = v[a]! * k;
  if (maxNorm > 0) {
    let q = 0;
    for (let i = 0; i < T; i++) for (let j = 0; j < T; j++) q += w[i]! * G[i * T + j]! * w[j]!;
    const norm = Math.sqrt(Math.max(q, 0));
    if (norm > maxNorm) for (let i = 0; i < T; i++) w[i] = (w[i]! * maxNorm) / norm;
  }
  return w;
}

export const fairgrad: GramMethodEntry<FairGradOptions> = {
  name: "fairgrad",
  label: "FairGrad",
  kind: "gradient",
  summary: "FairGrad (Ban & Ji, ICML 2024): α-fair allocation of the update over tasks, (G w)_i = w_i^(-1/α)",
  defaults: FAIRGRAD_DEFAULTS,
  properties: ["permutation-equivariant", "non-conflicting", "linear-combination", "deterministic"],
  weightsFromGram: gramForm(() => fairgrad),
  create(numTasks: number, options?: Partial<FairGradOptions>): BalancingMethod {
    checkTasks("fairgrad", numTasks);
    const o = withDefaults("fairgrad", FAIRGRAD_DEFAULTS, options);
    // α far below 0.1 makes w^{-1/α} overflow-prone; far above 100 it is indistinguishable from max-min fairness
    const alpha = checkRange("fairgrad", "alpha", o.alpha, 0.1, 100);
    const maxNorm = checkRange("fairgrad", "maxNorm", o.maxNorm, 0, Infinity);
    const ws = new FairGradWorkspace(numTasks);
    return {
      name: "fairgrad",
      kind: "gradient",
      numTasks,
      combine(input: BalanceInput) {
        checkInput("fairgrad", numTasks, input);
        const G = gramOf(input);
        return finish(input.grads, G, fairgradCoeffs(G, numTasks, alpha, maxNorm, ws));
      },
      getState() {
        return null;
      },
      setState(state: JsonValue) {
        expectNullState("fairgrad", state);
      },
    };
  },
};
