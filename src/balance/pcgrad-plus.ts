/**
 * PCGrad+ — the "PCGrad+" baseline of Bai et al., "GradCraft: Elevating
 * Multi-task Recommendations through Holistic Gradient Crafting", KDD 2024:
 * GradCraft's magnitude alignment followed by PCGrad (Yu et al., NeurIPS 2020).
 *
 * Update rule: ĝ_i = s_i g_i with s_i = τ·max_j‖g_j‖/‖g_i‖ + 1 − τ (see
 * gradcraft.ts), then PCGrad on the ĝ's (random order per task from input.rng,
 * projections against the original ĝ_j), direction = Σ_i ĝ_i^PC (PCGrad's sum,
 * not GradCraft's mean).
 * Hyperparameters: tau (τ) = 0.1 in [0, 1]. With τ = 0 this is exactly PCGrad.
 * Runs on the aligned Gramian S G S; RNG use is identical to PCGrad's.
 */
import type { BalanceInput, BalancingMethod, GramMethodEntry } from "./types.ts";
import { normsFromGram } from "./linalg.ts";
import { checkInput, checkRange, checkTasks, expectNullState, finish, gramOf, withDefaults } from "./common.ts";
import { alignMagnitudes, scaleGram } from "./gradcraft.ts";
import { drawOrders, pcgradRows } from "./pcgrad.ts";
import { gramForm } from "./gram.ts";

export interface PCGradPlusOptions {
  /** Magnitude-alignment strength τ in [0, 1]. */
  tau: number;
}

export const PCGRAD_PLUS_DEFAULTS: Readonly<PCGradPlusOptions> = Object.freeze({ tau: 0.1 });

/** PCGrad+ coefficients over the raw g's for the given orders. */
export function pcgradPlusCoeffs(G: Float64Array, T: number, tau: number, orders: readonly Int32Array[]): Float64Array {
  const s = alignMagnitudes(normsFromGram(G, T), tau);
  const rows = pcgradRows(scaleGram(G, T, s), T, orders);
  const c = new Float64Array(T);
  for (let i = 0; i < T; i++) for (let k = 0; k < T; k++) c[k]! += rows[i * T + k]! * s[k]!;
  return c;
}

export const pcgradPlus: GramMethodEntry<PCGradPlusOptions> = {
  name: "pcgrad-plus",
  label: "PCGrad+",
  kind: "gradient",
  summary: "PCGrad+: GradCraft magnitude alignment then PCGrad (baseline in Bai et al., KDD 2024)",
  defaults: PCGRAD_PLUS_DEFAULTS,
  properties: ["non-conflicting-two-tasks", "scale-equivariant", "linear-combination"],
  weightsFromGram: gramForm(() => pcgradPlus),
  create(numTasks: number, options?: Partial<PCGradPlusOptions>): BalancingMethod {
    checkTasks("pcgrad-plus", numTasks);
    const o = withDefaults("pcgrad-plus", PCGRAD_PLUS_DEFAULTS, options);
    const tau = checkRange("pcgrad-plus", "tau", o.tau, 0, 1);
    return {
      name: "pcgrad-plus",
      kind: "gradient",
      numTasks,
      combine(input: BalanceInput) {
        checkInput("pcgrad-plus", numTasks, input);
        const G = gramOf(input);
        const coeffs = pcgradPlusCoeffs(G, numTasks, tau, drawOrders(input.rng, numTasks));
        return finish(input.grads, G, coeffs);
      },
      getState: () => null,
      setState: (s) => expectNullState("pcgrad-plus", s),
    };
  },
};
