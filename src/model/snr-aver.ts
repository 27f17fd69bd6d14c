/**
 * `snr-aver` — Sub-Network Routing with weighted averages (Ma et al., "SNR:
 * Sub-Network Routing for Flexible Parameter Sharing in Multi-Task Learning",
 * AAAI'19).
 *
 * Structure: as `snr-trans` but without transformation matrices: the task
 * tower input is u_t = sum_k z_tk v_k (all sub-networks output the same width).
 * Gates: hard-concrete z_tk with learned log_alpha (task t's group), sampled with
 * uniform noise in train mode, deterministic in eval mode; expected-L0 penalty
 * applied directly to log_alpha (not through balancing).
 *
 * Hyperparameters (defaults): numExperts = numTasks + 1, expertUnits
 * [256, 128, 64], beta 0.9, gamma -0.1, zeta 1.1, l0Weight 1e-3, log_alpha init
 * N(0, 0.01), towerUnits [32, 16], embDim 16, dropout 0.2.
 */
import type { Architecture } from "./types.ts";
import type { ModelInput } from "./common.ts";
import { SNR_DEFAULTS, createSnr, type SnrOptions } from "./snr.ts";

export type SnrAverOptions = SnrOptions;
export const defaults: Readonly<SnrAverOptions> = SNR_DEFAULTS;

export function create(input: ModelInput, options: Partial<SnrAverOptions> = {}): Architecture {
  return createSnr("snr-aver", input, options);
}
