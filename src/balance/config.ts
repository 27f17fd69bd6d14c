/**
 * ConFIG — Conflict-Free Inverse Gradients (the method, not configuration: `--method config`).
 * Paper: Q. Liu, M. Chu, N. Thuerey, "ConFIG: Towards Conflict-free Training of Physics
 * Informed Neural Networks", ICLR 2025. Reference: the official code
 * (github.com/tum-pbs/ConFIG, `conflictfree.grad_operator.ConFIG_update`) and TorchJD's
 * `ConFIG` aggregator.
 *
 * Update rule (the paper's Eq. 2, equal weights, projection length):
 *     u_i = g_i / ‖g_i‖  (0 for a zero gradient),   U = [u_1; …; u_T],
 *     b = U⁺ 1  (the minimum-norm b with u_iᵀ b = 1 for every i, in the least-squares sense),
 *     g_u = b / ‖b‖,   d = (Σ_i g_iᵀ g_u) g_u.
 * With linearly independent gradients every task gets the same positive cosine with d
 * (u_iᵀ g_u = 1/‖b‖), so d conflicts with none; its length is the sum of the gradients'
 * projections on it.
 * In the Gramian: with n_i = ‖g_i‖ and the cosine matrix C_ij = G_ij/(n_i n_j) (zero row
 * and column for a zero gradient), U⁺ = Uᵀ (U Uᵀ)⁺ = Uᵀ C⁺, so b = Σ_i c_i u_i with
 * c = C⁺ 1, ‖b‖² = cᵀ C c, and with β_i = c_i / n_i (b = Σ β_i g_i):
 *     Σ_j g_jᵀ g_u = 1ᵀ G β / ‖b‖,   coeffs_i = (1ᵀ G β) β_i / ‖b‖².
 * C⁺ comes from the eigendecomposition of C, keeping eigenvalues > T · ε_f32 · λ_max
 * (ε_f32 = 2^-23: the gradients are float32, so directions closer to dependent than that
 * are treated as dependent, as Aligned-MTL here does).
 *
 * Differences from the reference code: the official ConFIG_update solves
 * torch.linalg.lstsq(units, weights) on the T×d matrix of unit gradients (TorchJD:
 * torch.linalg.pinv), whose default cutoff scales with max(T, d)·ε (d = number of
 * parameters) — for a large model it discards far more than the paper's exact pseudo-
 * inverse; here the cutoff depends only on T. A zero b (the ones vector orthogonal to the
 * range of C, e.g. exactly opposite gradients) gives a zero direction, as the reference's
 * unit_vector(0) = 0. Not offered: the reference's other weight models (preference
 * weights) and length models, the two-gradient closed form (ConFIG_update_double, which
 * equals this rule) and M-ConFIG (momentum). With linearly dependent gradients (more tasks
 * than parameters, exact duplicates up to sign) the least-squares b need not satisfy every
 * equation and d can conflict with a task, as in the reference: the method declares no
 * non-conflict property for that reason. Towers get unscaled task gradients
 * (taskScale = 1). Hyperparameters: none. Stateless.
 */
import type { BalanceInput, BalancingMethod, GramMethodEntry, JsonValue } from "./types.ts";
import { checkInput, checkTasks, expectNullState, finish, gramOf, withDefaults } from "./common.ts";
import { normsFromGram, pinvSymSolve } from "./linalg.ts";
import { gramForm } from "./gram.ts";

export type ConFIGOptions = Record<string, never>;

const F32_EPS = 2 ** -23;

/** ConFIG coefficients from a T×T Gramian; `rank` is the numerical rank of the unit gradients. */
export function configCoeffs(G: Float64Array, T: number): { coeffs: Float64Array; rank: number } {
  const n = normsFromGram(G, T);
  const C = new Float64Array(T * T);
  for (let i = 0; i < T; i++) {
    if (!(n[i]! > 0)) continue;
    for (let j = 0; j < T; j++) if (n[j]! > 0) C[i * T + j] = i === j ? 1 : G[i * T + j]! / (n[i]! * n[j]!);
  }
  const ones = new Float64Array(T).fill(1);
  const { x: c, rank } = pinvSymSolve(C, ones, T, T * F32_EPS);
  const beta = new Float64Array(T);
  let bb = 0;
  for (let i = 0; i < T; i++) {
    if (n[i]! > 0) beta[i] = c[i]! / n[i]!;
    for (let j = 0; j < T; j++) bb += c[i]! * C[i * T + j]! * c[j]!;
  }
  const coeffs = new Float64Array(T);
  if (!(bb > 0) || !Number.isFinite(bb)) return { coeffs, rank };
  let length = 0; // ‖b‖ · Σ_j g_jᵀ g_u = 1ᵀ G β
  for (let i = 0; i < T; i++) for (let j = 0; j < T; j++) length += G[i * T + j]! * beta[j]!;
  for (let i = 0; i < T; i++) coeffs[i] = (length * beta[i]!) / bb;
  return { coeffs, rank };
}

export const config: GramMethodEntry<ConFIGOptions> = {
  name: "config",
  label: "ConFIG",
  kind: "gradient",
  summary: "ConFIG, Conflict-Free Inverse Gradients (Liu, Chu & Thuerey, ICLR 2025): equal cosine with every task gradient",
  defaults: {},
  properties: ["permutation-equivariant", "scale-equivariant", "linear-combination", "deterministic"],
  weightsFromGram: gramForm(() => config),
  create(numTasks: number, options?: Partial<ConFIGOptions>): BalancingMethod {
    checkTasks("config", numTasks);
    withDefaults("config", config.defaults, options);
    return {
      name: "config",
      kind: "gradient",
      numTasks,
      combine(input: BalanceInput) {
        checkInput("config", numTasks, input);
        const G = gramOf(input);
        return finish(input.grads, G, configCoeffs(G, numTasks).coeffs);
      },
      getState() {
        return null;
      },
      setState(state: JsonValue) {
        expectNullState("config", state);
      },
    };
  },
};
