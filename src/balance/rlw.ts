/**
 * RLW — Random Loss Weighting.
 * Paper: B. Lin, F. Ye, Y. Zhang, I. W. Tsang, "Reasonable Effectiveness of Random
 * Weighting: A Litmus Test for Multi-Task Learning", TMLR 2022 (arXiv:2111.10603).
 *
 * Update rule (every step): draw z_i ~ N(0, 1) independently from `input.rng`
 * (tasks in order 0..T-1, one `rng.normal()` each), then w = softmax(z), so the
 * weights lie on the probability simplex (Σ w = 1, as LibMTL's RLW with
 * dist='Normal'; no rescaling to Σ w = T). direction = Σ w_i g_i, task towers
 * scaled by w_i.
 *
 * Hyperparameters: none (the Normal(0, 1) sampling distribution of the paper's
 * default variant is fixed; LibMTL's Uniform/Dirichlet/Bernoulli variants are
 * not offered). Stateless: randomness comes only from the trainer's seeded rng,
 * so runs are reproducible and resumable from the trainer's checkpoint.
 */
import type { BalanceInput, BalancingMethod, JsonValue, MethodEntry } from "./types.ts";
import { checkInput, checkTasks, expectNullState, finish, gramOf, withDefaults } from "./common.ts";
import type { Rng } from "../util/rng.ts";

export type RLWOptions = Record<string, never>;

/** softmax of T standard-normal draws from rng (max-subtracted, so always finite). */
export function rlwWeights(T: number, rng: Rng): Float64Array {
  const z = new Float64Array(T);
  for (let i = 0; i < T; i++) z[i] = rng.normal();
  let m = -Infinity;
  for (let i = 0; i < T; i++) m = Math.max(m, z[i]!);
  let s = 0;
  for (let i = 0; i < T; i++) {
    z[i] = Math.exp(z[i]! - m);
    s += z[i]!;
  }
  for (let i = 0; i < T; i++) z[i] = z[i]! / s;
  return z;
}

export const rlw: MethodEntry<RLWOptions> = {
  name: "rlw",
  label: "RLW",
  kind: "loss-weighting",
  summary: "Random Loss Weighting (Lin et al., TMLR 2022): softmax of standard-normal weights each step",
  defaults: {},
  properties: ["scale-equivariant", "linear-combination"],
  create(numTasks: number, options?: Partial<RLWOptions>): BalancingMethod {
    checkTasks("rlw", numTasks);
    withDefaults("rlw", rlw.defaults, options);
    return {
      name: "rlw",
      kind: "loss-weighting",
      numTasks,
      combine(input: BalanceInput) {
        checkInput("rlw", numTasks, input);
        const G = gramOf(input);
        const w = rlwWeights(numTasks, input.rng);
        return finish(input.grads, G, Float64Array.from(w), { taskScale: Float64Array.from(w), weights: w });
      },
      lossWeighting: { weights: ({ rng }) => rlwWeights(numTasks, rng) },
      getState() {
        return null;
      },
      setState(state: JsonValue) {
        expectNullState("rlw", state);
      },
    };
  },
};
