/**
 * MGDA — Sener & Koltun, "Multi-Task Learning as Multi-Objective Optimization",
 * NeurIPS 2018 (MGDA-UB's MinNormSolver, applied here to the shared-parameter
 * gradients).
 *
 * Update rule: normalise g_i ← g_i / n_i, find the min-norm point of their
 * convex hull, α* = argmin_{α ∈ Δ} ‖Σ α_i g_i/n_i‖², and descend along
 * d = Σ α*_i g_i / n_i, i.e. coeffs_i = α*_i / n_i. As in LibMTL the result is
 * NOT multiplied by T (d is a convex combination, about one gradient in size,
 * while EW's sum is about T gradients).
 * Solver, on the (normalised) Gramian: T = 2 by the exact closed form
 * γ = clip((G22 − G12)/(G11 + G22 − 2G12), 0, 1), α = (γ, 1 − γ); T ≥ 3 starts
 * from the best pair and runs Frank-Wolfe with exact line search (max 250
 * iterations, stop when the L1 change of α is < 1e-5), like the reference
 * MinNormSolver.find_min_norm_element_FW. T = 1 gives α = (1).
 *
 * Hyperparameters: normalization = "none" (default, LibMTL's default mgda_gn) |
 * "l2" (n_i = ‖g_i‖) | "loss" (n_i = L_i) | "loss+" (n_i = L_i‖g_i‖).
 *
 * Differences from the reference: the 2-vector line search clips γ to exactly
 * 1 / 0 (the reference returns 0.999 / 0.001 at the boundaries); the best-pair
 * search starts from +∞ (the reference from 1e8). A normaliser that is not a
 * finite positive number (zero gradient with "l2", zero or negative loss) is
 * replaced by 1 for that task instead of dividing by zero; a zero gradient then
 * makes the min-norm point 0, i.e. a zero direction (Pareto-stationary).
 */
import type { BalanceInput, BalancingMethod, GramMethodEntry } from "./types.ts";
import { normsFromGram } from "./linalg.ts";
import { checkInput, checkTasks, expectNullState, finish, gramOf, withDefaults } from "./common.ts";
import { gramForm } from "./gram.ts";

export type MgdaNormalization = "none" | "l2" | "loss" | "loss+";

export interface MGDAOptions {
  /** Gradient normaliser before the min-norm solve. */
  normalization: MgdaNormalization;
}

export const MGDA_DEFAULTS: Readonly<MGDAOptions> = Object.freeze({ normalization: "none" });

const MAX_ITER = 250;
const STOP_CRIT = 1e-5;

/**
 * Min-norm point on the segment [v1, v2]: returns (γ, cost) minimising
 * ‖γ v1 + (1−γ) v2‖² over γ ∈ [0, 1] from v1·v1, v1·v2, v2·v2.
 */
export function minNormFrom2(v1v1: number, v1v2: number, v2v2: number): { gamma: number; cost: number } {
  if (v1v2 >= v1v1) return { gamma: 1, cost: v1v1 };
  if (v1v2 >= v2v2) return { gamma: 0, cost: v2v2 };
  const gamma = (v2v2 - v1v2) / (v1v1 + v2v2 - 2 * v1v2);
  return { gamma, cost: v2v2 + gamma * (v1v2 - v2v2) };
}

/** α on the simplex minimising αᵀ H α for a T×T PSD Gramian H (see file comment). */
export function minNormElement(H: Float64Array, T: number): Float64Array {
  const sol = new Float64Array(T);
  if (T === 0) return sol;
  if (T === 1) {
    sol[0] = 1;
    return sol;
  }
  let bi = 0, bj = 1, bg = 1, best = Infinity;
  for (let i = 0; i < T; i++) {
    for (let j = i + 1; j < T; j++) {
      const { gamma, cost } = minNormFrom2(H[i * T + i]!, H[i * T + j]!, H[j * T + j]!);
      if (cost < best) {
        best = cost;
        bi = i;
        bj = j;
        bg = gamma;
      }
    }
  }
  sol[bi] = bg;
  sol[bj] = 1 - bg;
  if (T < 3) return sol;
  const u = new Float64Array(T);
  const next = new Float64Array(T);
  for (let iter = 0; iter < MAX_ITER; iter++) {
    // u = H α; the FW vertex is the task with the smallest u_t.
    let t = 0;
    for (let a = 0; a < T; a++) {
      let s = 0;
      for (let b = 0; b < T; b++) s += H[a * T + b]! * sol[b]!;
      u[a] = s;
      if (s < u[t]!) t = a;
    }
    let v1v1 = 0;
    for (let a = 0; a < T; a++) v1v1 += sol[a]! * u[a]!;
    const { gamma } = minNormFrom2(v1v1, u[t]!, H[t * T + t]!);
    let change = 0;
    for (let a = 0; a < T; a++) {
      next[a] = gamma * sol[a]! + (a === t ? 1 - gamma : 0);
      change += Math.abs(next[a]! - sol[a]!);
    }
    if (change < STOP_CRIT) break;
    sol.set(next);
  }
  return sol;
}

/** Per-task normalisers n_i (non-finite or non-positive values replaced by 1). */
export function mgdaNormalizers(norms: ArrayLike<number>, losses: ArrayLike<number>, kind: MgdaNormalization): Float64Array {
  const T = norms.length;
  const n = new Float64Array(T);
  for (let i = 0; i < T; i++) {
    let v: number;
    if (kind === "none") v = 1;
    else if (kind === "l2") v = norms[i]!;
    else if (kind === "loss") v = losses[i]!;
    else v = losses[i]! * norms[i]!;
    n[i] = Number.isFinite(v) && v > 0 ? v : 1;
  }
  return n;
}

/** MGDA coefficients over the raw g's (coeffs_i = α_i / n_i) and the simplex weights α. */
export function mgdaCoeffs(G: Float64Array, T: number, losses: ArrayLike<number>, kind: MgdaNormalization): { coeffs: Float64Array; alpha: Float64Array } {
  const n = mgdaNormalizers(normsFromGram(G, T), losses, kind);
  const H = new Float64Array(T * T);
  for (let i = 0; i < T; i++) for (let j = 0; j < T; j++) H[i * T + j] = G[i * T + j]! / (n[i]! * n[j]!);
  const alpha = minNormElement(H, T);
  const coeffs = new Float64Array(T);
  for (let i = 0; i < T; i++) coeffs[i] = alpha[i]! / n[i]!;
  return { coeffs, alpha };
}

const NORMALIZATIONS: readonly MgdaNormalization[] = ["none", "l2", "loss", "loss+"];

export const mgda: GramMethodEntry<MGDAOptions> = {
  name: "mgda",
  label: "MGDA",
  kind: "gradient",
  summary: "MGDA: min-norm point of the convex hull of task gradients (Sener & Koltun, NeurIPS 2018)",
  defaults: MGDA_DEFAULTS,
  properties: ["permutation-equivariant", "non-conflicting-two-tasks", "scale-equivariant", "linear-combination", "deterministic"],
  weightsFromGram: gramForm(() => mgda),
  create(numTasks: number, options?: Partial<MGDAOptions>): BalancingMethod {
    checkTasks("mgda", numTasks);
    const o = withDefaults("mgda", MGDA_DEFAULTS, options);
    if (!NORMALIZATIONS.includes(o.normalization)) {
      throw new Error(`mgda: option normalization must be one of ${NORMALIZATIONS.join(", ")}, got ${String(o.normalization)}`);
    }
    const kind = o.normalization;
    return {
      name: "mgda",
      kind: "gradient",
      numTasks,
      combine(input: BalanceInput) {
        checkInput("mgda", numTasks, input);
        if ((kind === "loss" || kind === "loss+") && input.losses.length !== numTasks) {
          throw new Error(`mgda: normalization "${kind}" needs ${numTasks} losses, got ${input.losses.length}`);
        }
        const G = gramOf(input);
        const { coeffs } = mgdaCoeffs(G, numTasks, input.losses, kind);
        return finish(input.grads, G, coeffs);
      },
      getState: () => null,
      setState: (s) => expectNullState("mgda", s),
    };
  },
};
