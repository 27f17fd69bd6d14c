/**
 * DWA — Dynamic Weight Average.
 * Paper: S. Liu, E. Johns, A. J. Davison, "End-to-End Multi-Task Learning with
 * Attention" (MTAN), CVPR 2019.
 *
 * Update rule: with L̄_i(e) the mean training loss of task i over epoch e (delivered
 * by the trainer through endEpoch), the weights used during epoch e ≥ 2 are
 *     r_i = L̄_i(e−1) / L̄_i(e−2),   w_i = K · exp(r_i / T) / Σ_j exp(r_j / T),   K = #tasks,
 * and w_i = 1 during the first two epochs (fewer than two recorded epochs).
 * "Previous two epochs" means the last two endEpoch calls, so a trainer that
 * calls endEpoch once per epoch gets exactly the paper's/LibMTL's rule.
 *
 * Hyperparameters (defaults): temperature T = 2.
 * Guard (not in the reference): a denominator L̄_i(e−2) ≤ 1e-12 gives r_i = 1
 * instead of dividing by ~0. Weights are constant within an epoch.
 * State: per-epoch mean-loss history (the last two epochs suffice; all are kept).
 */
import type { BalanceInput, BalancingMethod, JsonValue, MethodEntry } from "./types.ts";
import { checkInput, checkRange, checkTasks, finish, gramOf, withDefaults } from "./common.ts";
import { numArray, stateObject } from "./methodkit.ts";

export interface DWAOptions {
  /** Softmax temperature T. */
  temperature: number;
}

/** DWA weights from a loss history (oldest first); ones if fewer than two epochs. */
export function dwaWeights(history: readonly Float64Array[], K: number, temperature: number): Float64Array {
  const w = new Float64Array(K).fill(1);
  const n = history.length;
  if (n < 2) return w;
  const last = history[n - 1]!;
  const prev = history[n - 2]!;
  const r = new Float64Array(K);
  let m = -Infinity;
  for (let i = 0; i < K; i++) {
    const den = prev[i]!;
    r[i] = den > 1e-12 ? last[i]! / den : 1;
    r[i] = r[i]! / temperature;
    m = Math.max(m, r[i]!);
  }
  let s = 0;
  for (let i = 0; i < K; i++) {
    w[i] = Math.exp(r[i]! - m);
    s += w[i]!;
  }
  for (let i = 0; i < K; i++) w[i] = (K * w[i]!) / s;
  return w;
}

export const dwa: MethodEntry<DWAOptions> = {
  name: "dwa",
  label: "DWA",
  kind: "loss-weighting",
  summary: "Dynamic Weight Average (Liu, Johns & Davison, CVPR 2019): softmax of epoch-over-epoch loss ratios",
  defaults: { temperature: 2 },
  properties: ["permutation-equivariant", "scale-equivariant", "linear-combination", "deterministic"],
  create(numTasks: number, options?: Partial<DWAOptions>): BalancingMethod {
    checkTasks("dwa", numTasks);
    const o = withDefaults("dwa", dwa.defaults, options);
    const temperature = checkRange("dwa", "temperature", o.temperature, 1e-6, Infinity);
    const K = numTasks;
    let history: Float64Array[] = [];
    return {
      name: "dwa",
      kind: "loss-weighting",
      numTasks,
      combine(input: BalanceInput) {
        checkInput("dwa", K, input);
        const G = gramOf(input);
        const w = dwaWeights(history, K, temperature);
        return finish(input.grads, G, Float64Array.from(w), { taskScale: Float64Array.from(w), weights: w });
      },
      lossWeighting: { weights: () => dwaWeights(history, K, temperature) },
      endEpoch(meanLosses: Float64Array) {
        if (meanLosses.length !== K) throw new Error(`dwa: endEpoch expected ${K} mean losses, got ${meanLosses.length}`);
        for (let i = 0; i < K; i++) {
          if (!Number.isFinite(meanLosses[i]!)) throw new Error(`dwa: endEpoch mean loss of task ${i} is not finite (${meanLosses[i]})`);
        }
        history.push(Float64Array.from(meanLosses));
      },
      getState(): JsonValue {
        return { history: history.map((h) => Array.from(h)) };
      },
      setState(state: JsonValue) {
        const j = stateObject(state, "dwa");
        if (!Array.isArray(j.history)) throw new Error("dwa: setState: history must be an array of per-epoch loss arrays");
        history = j.history.map((h, e) => numArray(h, K, `dwa: setState: history[${e}]`));
      },
    };
  },
};
