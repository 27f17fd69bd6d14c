/**
 * GradCraft — Bai et al., "GradCraft: Elevating Multi-task Recommendations
 * through Holistic Gradient Crafting", KDD 2024.
 *
 * Update rule, for task gradients g_1..g_T over the shared parameters:
 *  1. Magnitude alignment: ĝ_i = τ·(max_j ‖g_j‖ / ‖g_i‖)·g_i + (1-τ)·g_i, i.e.
 *     ĝ_i = s_i g_i with s_i = τ·max/‖g_i‖ + 1 - τ. Then τ·max ≤ ‖ĝ_i‖ ≤ max, so
 *     the max/min norm ratio is at most 1/τ, and τ = 1 makes every norm the max.
 *  2. Direction alignment, per task i, all conflicts at once: C_i = {k ≠ i :
 *     <ĝ_i, ĝ_k> < 0}. If C_i is empty, g̃_i = ĝ_i. Otherwise, with G the rows ĝ_k
 *     (k ∈ C_i), solve (G Gᵀ) w = -G ĝ_i + z, z_k = ε‖ĝ_i‖‖ĝ_k‖, and set
 *     g̃_i = ĝ_i + Gᵀ w, so that <g̃_i, ĝ_k> = ε‖ĝ_i‖‖ĝ_k‖ ≥ 0 for every k ∈ C_i.
 *     Every g̃_i is computed from the ĝ's, never from another task's result.
 *  3. direction = (1/T) Σ_i g̃_i.
 * Everything runs on the T×T Gramian: the aligned Gramian is S G S with
 * S = diag(s), and each g̃_i is tracked as a coefficient vector over the raw g's,
 * so the cost is the Gramian plus one `combine` over the d parameters.
 *
 * Hyperparameters: tau (τ) = 0.1 in [0, 1]; eps (ε) = 1e-10, ≥ 0.
 *
 * Differences from the reference code:
 *  - The reference inverts G Gᵀ with a plain matrix inverse. Here the conflict
 *    rows are first reduced to a maximal linearly independent subset
 *    (`independentSubset`, pivoted Cholesky, residual ≤ 1e-8·max‖ĝ_k‖² counts
 *    as dependent) and the reduced system is solved by `solveSPD`. For a dropped
 *    row the `-G ĝ_i` part of the post-condition still holds exactly (it lies in
 *    the span), only the tiny ε target is met approximately (an ε-sized, or a
 *    ~1e-4·‖g̃_i‖‖ĝ_k‖-sized for a near-dependent row, deviation). Colinear or
 *    duplicated conflicting tasks therefore never produce NaN/Inf.
 *  - A zero gradient keeps scale 1 (it stays zero), is ignored when taking the
 *    max norm, and is never in a conflict set (its dot products are 0). If all
 *    gradients are zero the direction is zero.
 */
import type { BalanceInput, BalancingMethod, GramMethodEntry } from "./types.ts";
import { normsFromGram, solveSPD } from "./linalg.ts";
import { checkInput, checkRange, checkTasks, expectNullState, finish, gramOf, independentSubset, withDefaults } from "./common.ts";
import { gramForm } from "./gram.ts";

export interface GradCraftOptions {
  /** Magnitude-alignment strength τ in [0, 1]: 0 keeps norms, 1 sets all to the max. */
  tau: number;
  /** Small positive target ε for the aligned cosine after deconfliction (≥ 0). */
  eps: number;
}

export const GRADCRAFT_DEFAULTS: Readonly<GradCraftOptions> = Object.freeze({ tau: 0.1, eps: 1e-10 });

/**
 * Magnitude-alignment scales s_i with ĝ_i = s_i g_i:
 * s_i = τ·max_j‖g_j‖/‖g_i‖ + (1-τ) for ‖g_i‖ > 0, and 1 for a zero gradient.
 */
export function alignMagnitudes(norms: ArrayLike<number>, tau: number): Float64Array {
  const T = norms.length;
  let max = 0;
  for (let i = 0; i < T; i++) max = Math.max(max, norms[i]!);
  const s = new Float64Array(T);
  for (let i = 0; i < T; i++) {
    const n = norms[i]!;
    s[i] = n > 0 ? (tau * max) / n + (1 - tau) : 1;
  }
  return s;
}

/** Gramian of the scaled vectors s_i g_i: (S G S)_ij = s_i s_j G_ij. */
export function scaleGram(G: Float64Array, T: number, s: ArrayLike<number>): Float64Array {
  const out = new Float64Array(T * T);
  for (let i = 0; i < T; i++) {
    for (let j = 0; j < T; j++) out[i * T + j] = s[i]! * s[j]! * G[i * T + j]!;
  }
  return out;
}

export interface GradCraftStep {
  /** direction = Σ_k coeffs[k] g_k (the mean of the g̃_i). */
  coeffs: Float64Array;
  /** T×T row-major: row i holds g̃_i's coefficients over the raw g_k. */
  rows: Float64Array;
  /** Magnitude-alignment scales s (ĝ_i = s_i g_i). */
  scales: Float64Array;
  /** Gramian of the aligned gradients (S G S). */
  alignedGram: Float64Array;
  /** Conflict-set sizes |C_i|. */
  conflictSizes: Int32Array;
}

/**
 * Direction alignment on a Gramian H of (already aligned) vectors h_1..h_T:
 * returns the T×T matrix whose row i holds h̃_i's coefficients over the h_k.
 */
export function deconflictRows(H: Float64Array, T: number, eps: number, sizes?: Int32Array): Float64Array {
  const rows = new Float64Array(T * T);
  const norms = normsFromGram(H, T);
  const conf: number[] = [];
  for (let i = 0; i < T; i++) {
    rows[i * T + i] = 1;
    conf.length = 0;
    for (let k = 0; k < T; k++) if (k !== i && H[i * T + k]! < 0) conf.push(k);
    if (sizes !== undefined) sizes[i] = conf.length;
    if (conf.length === 0) continue;
    const m = conf.length;
    const A = new Float64Array(m * m);
    for (let a = 0; a < m; a++) for (let b = 0; b < m; b++) A[a * m + b] = H[conf[a]! * T + conf[b]!]!;
    const keep = independentSubset(A, m);
    const r = keep.length;
    if (r === 0) continue;
    const Ar = new Float64Array(r * r);
    const rhs = new Float64Array(r);
    for (let a = 0; a < r; a++) {
      const ka = conf[keep[a]!]!;
      for (let b = 0; b < r; b++) Ar[a * r + b] = H[ka * T + conf[keep[b]!]!]!;
      rhs[a] = -H[i * T + ka]! + eps * norms[i]! * norms[ka]!;
    }
    const { x } = solveSPD(Ar, rhs, r);
    for (let a = 0; a < r; a++) rows[i * T + conf[keep[a]!]!]! += x[a]!;
  }
  return rows;
}

/** One GradCraft step from the raw Gramian G (T×T): see the file comment. */
export function gradcraftStep(G: Float64Array, T: number, tau: number, eps: number): GradCraftStep {
  const scales = alignMagnitudes(normsFromGram(G, T), tau);
  const alignedGram = scaleGram(G, T, scales);
  const conflictSizes = new Int32Array(T);
  const rows = deconflictRows(alignedGram, T, eps, conflictSizes);
  // Row i over the ĝ's -> over the raw g's: multiply column k by s_k.
  for (let i = 0; i < T; i++) for (let k = 0; k < T; k++) rows[i * T + k]! *= scales[k]!;
  const coeffs = new Float64Array(T);
  for (let i = 0; i < T; i++) for (let k = 0; k < T; k++) coeffs[k]! += rows[i * T + k]! / T;
  return { coeffs, rows, scales, alignedGram, conflictSizes };
}

export const gradcraft: GramMethodEntry<GradCraftOptions> = {
  name: "gradcraft",
  label: "GradCraft",
  kind: "gradient",
  summary: "GradCraft: magnitude alignment + all-at-once conflict projection (Bai et al., KDD 2024)",
  defaults: GRADCRAFT_DEFAULTS,
  properties: ["permutation-equivariant", "non-conflicting-two-tasks", "scale-equivariant", "linear-combination", "deterministic"],
  weightsFromGram: gramForm(() => gradcraft),
  create(numTasks: number, options?: Partial<GradCraftOptions>): BalancingMethod {
    checkTasks("gradcraft", numTasks);
    const o = withDefaults("gradcraft", GRADCRAFT_DEFAULTS, options);
    const tau = checkRange("gradcraft", "tau", o.tau, 0, 1);
    const eps = checkRange("gradcraft", "eps", o.eps, 0, Infinity);
    return {
      name: "gradcraft",
      kind: "gradient",
      numTasks,
      combine(input: BalanceInput) {
        checkInput("gradcraft", numTasks, input);
        const G = gramOf(input);
        const { coeffs } = gradcraftStep(G, numTasks, tau, eps);
        return finish(input.grads, G, coeffs);
      },
      getState: () => null,
      setState: (s) => expectNullState("gradcraft", s),
    };
  },
};
