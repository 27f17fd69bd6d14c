/**
 * UW — Uncertainty Weighting (table label "UC").
 * Paper: A. Kendall, Y. Gal, R. Cipolla, "Multi-Task Learning Using Uncertainty to
 * Weigh Losses for Scene Geometry and Semantics", CVPR 2018.
 *
 * Exact form used: with learned s_i = log σ_i², the total objective is
 *     L(s) = Σ_i exp(−s_i)·L_i + s_i,
 * i.e. the paper's classification-style form without the 1/2 factors. The loss
 * weights are w_i = exp(−s_i) (towers of task i get w_i times their gradient;
 * direction = Σ w_i g_i). Each call:
 *   1. returns w = exp(−s) computed from the current s (before this step's update);
 *   2. updates s with its own Adam on ∂L/∂s_i = −exp(−s_i)·L_i + 1, using this
 *      step's losses (the gradient the training loop would back-propagate into s).
 *
 * Hyperparameters (defaults): lr = 5e-4 (Adam lr for s; Adam β1 = 0.9, β2 = 0.999,
 * eps = 1e-8), init = 0 (s_i at step 0, so w_i = 1 initially).
 *
 * Difference from LibMTL's UW: LibMTL optimises 0.5·(exp(−s)·L + s) (i.e.
 * L/(2σ²) + log σ) with s initialised to −0.5 and weights 1/(2 exp(s)), using the
 * model's optimiser and learning rate. Both share the stationary point
 * exp(−s_i) = 1/L_i; here the weight at the optimum is 1/L_i rather than
 * 1/(2 L_i), and s has its own Adam so the method is self-contained.
 * State: s and its Adam moments.
 */
import type { BalanceInput, BalancingMethod, JsonValue, MethodEntry } from "./types.ts";
import { checkInput, checkRange, checkTasks, finish, gramOf, withDefaults } from "./common.ts";
import { adamFromJson, adamInit, adamStep, adamToJson, numArray, stateObject } from "./methodkit.ts";

export interface UWOptions {
  /** Adam learning rate for the log-variances s. */
  lr: number;
  /** Initial value of every s_i = log σ_i². */
  init: number;
}

/** ∂/∂s_i of Σ exp(−s_i) L_i + s_i. */
export function uwGrad(s: Float64Array, losses: Float64Array): Float64Array {
  const g = new Float64Array(s.length);
  for (let i = 0; i < s.length; i++) g[i] = -Math.exp(-s[i]!) * losses[i]! + 1;
  return g;
}

/** The UW objective Σ exp(−s_i) L_i + s_i (for checks). */
export function uwObjective(s: Float64Array, losses: Float64Array): number {
  let v = 0;
  for (let i = 0; i < s.length; i++) v += Math.exp(-s[i]!) * losses[i]! + s[i]!;
  return v;
}

export const uw: MethodEntry<UWOptions> = {
  name: "uw",
  label: "UC",
  kind: "loss-weighting",
  summary: "Uncertainty weighting (Kendall, Gal & Cipolla, CVPR 2018): learned log-variances, w_i = exp(-s_i)",
  defaults: { lr: 5e-4, init: 0 },
  properties: ["permutation-equivariant", "scale-equivariant", "linear-combination", "deterministic"],
  create(numTasks: number, options?: Partial<UWOptions>): BalancingMethod {
    checkTasks("uw", numTasks);
    const o = withDefaults("uw", uw.defaults, options);
    const lr = checkRange("uw", "lr", o.lr, 0, Infinity);
    const init = checkRange("uw", "init", o.init, -30, 30);
    const T = numTasks;
    let s: Float64Array = new Float64Array(T).fill(init);
    let adam = adamInit(T);
    const weights = (): Float64Array => Float64Array.from(s, (v) => Math.exp(-v));
    const observe = (losses: Float64Array): void => {
      if (losses.length !== T) throw new Error(`uw: expected ${T} losses, got ${losses.length}`);
      for (let i = 0; i < T; i++) {
        if (!Number.isFinite(losses[i]!)) throw new Error(`uw: loss of task ${i} is not finite (${losses[i]})`);
      }
      adamStep(s, uwGrad(s, losses), adam, lr);
    };
    return {
      name: "uw",
      kind: "loss-weighting",
      numTasks,
      combine(input: BalanceInput) {
        checkInput("uw", T, input);
        const G = gramOf(input);
        const w = weights();
        observe(input.losses);
        return finish(input.grads, G, Float64Array.from(w), { taskScale: Float64Array.from(w), weights: w });
      },
      lossWeighting: { weights: () => weights(), observe },
      getState(): JsonValue {
        return { s: Array.from(s), adam: adamToJson(adam) };
      },
      setState(state: JsonValue) {
        const j = stateObject(state, "uw");
        s = numArray(j.s, T, "uw: setState: s");
        adam = adamFromJson(j.adam, T, "uw");
      },
    };
  },
};
