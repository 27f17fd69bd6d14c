/**
 * `snr-trans` — Sub-Network Routing with transformations (Ma et al., "SNR:
 * Sub-Network Routing for Flexible Parameter Sharing in Multi-Task Learning",
 * AAAI'19).
 *
 * Structure (one routing layer, the common re-implementation of the paper's
 * two-level figure): shared embedding tables -> x; `numExperts` lower
 * sub-networks v_k = MLP_k(x) (`expertUnits`, ReLU, dropout, shared); the upper
 * sub-networks are the task towers, whose input is u_t = sum_k z_tk W_tk v_k with
 * a learned [d, d] transformation W_tk per connection (task t's group) and a
 * hard-concrete gate z_tk (Louizos et al. ICLR'18): in train mode
 * s = sigmoid((log u - log(1-u) + log_alpha_tk)/beta), u ~ U(0,1) drawn in JS from
 * the step's seeded Rng; in eval mode s = sigmoid(log_alpha_tk);
 * z = clip(s (zeta - gamma) + gamma, 0, 1). log_alpha (per task, length K) is
 * learned and belongs to task t. The expected-L0 penalty
 * l0Weight * sum sigmoid(log_alpha - beta log(-gamma/zeta)) is applied directly
 * to log_alpha by the trainer (analytic gradient, not through balancing).
 *
 * Hyperparameters (defaults): numExperts = numTasks + 1, expertUnits
 * [256, 128, 64], beta 0.9, gamma -0.1, zeta 1.1, l0Weight 1e-3, log_alpha init
 * N(0, 0.01), towerUnits [32, 16], embDim 16, dropout 0.2.
 */
import type { Architecture } from "./types.ts";
import type { ModelInput } from "./common.ts";
import { SNR_DEFAULTS, createSnr, type SnrOptions } from "./snr.ts";

export type SnrTransOptions = SnrOptions;
export const defaults: Readonly<SnrTransOptions> = SNR_DEFAULTS;

export function create(input: ModelInput, options: Partial<SnrTransOptions> = {}): Architecture {
  return createSnr("snr-trans", input, options);
}
