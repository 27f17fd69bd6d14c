/**
 * EW — equal weighting: direction = Σ_i g_i (coefficients all 1, the plain sum
 * of task losses as in LibMTL's EW). No hyperparameters, no state.
 * Kind "loss-weighting" with weights all 1 (the trainer may equally backprop
 * Σ_i L_i directly); taskScale is 1 for every task.
 */
import type { BalanceInput, BalancingMethod, MethodEntry } from "./types.ts";
import { checkInput, checkTasks, expectNullState, finish, gramOf, withDefaults } from "./common.ts";

// eslint-disable-next-line @typescript-eslint/no-empty-object-type
export interface EWOptions {}

export const EW_DEFAULTS: Readonly<EWOptions> = Object.freeze({});

export const ew: MethodEntry<EWOptions> = {
  name: "ew",
  label: "EW",
  kind: "loss-weighting",
  summary: "EW: equal weights, sum of task losses (baseline)",
  defaults: EW_DEFAULTS,
  properties: ["permutation-equivariant", "scale-equivariant", "linear-combination", "deterministic"],
  create(numTasks: number, options?: Partial<EWOptions>): BalancingMethod {
    checkTasks("ew", numTasks);
    withDefaults("ew", EW_DEFAULTS, options);
    return {
      name: "ew",
      kind: "loss-weighting",
      numTasks,
      combine(input: BalanceInput) {
        checkInput("ew", numTasks, input);
        const G = gramOf(input);
        const ones = new Float64Array(numTasks).fill(1);
        return finish(input.grads, G, ones, { weights: new Float64Array(numTasks).fill(1) });
      },
      lossWeighting: { weights: () => new Float64Array(numTasks).fill(1) },
      getState: () => null,
      setState: (s) => expectNullState("ew", s),
    };
  },
};
