/**
 * ExcessMTL — Multi-Task Learning with Excess Risks.
 * Paper: Y. He, S. Zhou, G. Zhang, H. Yun, Y. Xu, B. Zeng, T. Chilimbi, H. Zhao,
 * "Robust Multi-Task Learning with Excess Risks", ICML 2024 (arXiv:2402.02009).
 * References read: the authors' code (LibMTL fork, weighting/ExcessMTL.py), LibMTL
 * ExcessMTL, TorchJD ExcessMTLWeighting.
 *
 * Update rule, at the method's t-th call (t = 1, 2, …), with α the task weights on the
 * probability simplex (α = 1/T at the start):
 *   diagonal Hessian approximation (AdaGrad-style, accumulated over all calls):
 *     S_i ← S_i + g_i ⊙ g_i,   H_i = sqrt(S_i + 1e-7)          (per coordinate);
 *   excess-risk estimate (second-order Taylor expansion around the optimum):
 *     E_i = Σ_p g_ip² / H_ip   (= g_iᵀ H_i⁻¹ g_i; the paper's constant ½ cancels below);
 *   scale normalisation: during the first `warmupSteps` calls the weights stay uniform
 *     and the estimates are averaged into a per-task baseline B_i; from then on
 *     r_i = E_i / B_i (r_i = 0 when B_i = 0: a task whose gradient was zero
 *     throughout the warm-up never moves its weight);
 *   exponentiated-gradient step on the weights (the paper's Eq. 9):
 *     α_i ← α_i · exp(η r_i) / Σ_j α_j · exp(η r_j);
 *   direction = Σ_i α_i g_i, taskScale = weights = α (the weighted loss Σ α_i L_i, as in
 *     the reference code: towers get α_i times their gradient).
 * The weights are updated with this step's gradients and then used for this step, as
 * in the reference code.
 *
 * Hyperparameters (defaults): robustStepSize η = 0.01 (LibMTL's `--robust_step_size`);
 * warmupSteps = 1, i.e. the first step's estimate is the baseline, as in the authors'
 * code and LibMTL (their first call records it and leaves the weights unchanged). The
 * paper's appendix suggests collecting the baseline over the first epochs: set
 * warmupSteps to that many steps.
 *
 * Differences from the reference code: the weights lie on the simplex (Σ α = 1, the
 * paper's Algorithm 1) where the authors' code and LibMTL keep Σ α = T (their weights are
 * T times ours, so their direction is T times ours and towers get T times the gradient;
 * under Adam this matters mostly through the L2 term). The exponentiated step is
 * computed in the log domain (max-shifted), so it cannot overflow for a large η·r; the
 * reference computes exp directly. A zero baseline gives r = 0 instead of a division
 * by zero.
 * Embedding rows: the flat vector's layout is only stable over its first
 * `input.stableDim` entries (the shared dense parameters); the rows of this batch's ids
 * that follow change meaning every step, so a per-coordinate accumulator over them
 * would mix different rows. S_i and E_i cover the stable prefix only (the reference
 * accumulates over whole embedding tables); the rows still get Σ α_i g_i. With no stable
 * prefix (stableDim = 0) every E_i is 0 and the weights stay uniform. Without
 * stableDim the whole vector is accumulated.
 * Memory: T float32 accumulators over the stable prefix (4·T·stableDim bytes),
 * allocated on the first call and reused; the state holds them as base64 strings of
 * their float32 bytes (f32ToJson: ~5.3 bytes per entry; a number list, as DB-MTL's EMA,
 * takes ~22: 149 MB instead of ~36 MB for MMoE on KuaiRand, 6 tasks x 1.12 M entries). `weightsFromGram` is not offered: E_i needs
 * the per-coordinate accumulators, not just the Gramian. The direction is exactly
 * Σ α_i g_i (tested), but "linear-combination" is not declared in the registry entry,
 * because the registry ties that declaration to offering `weightsFromGram`.
 */
import type { BalanceInput, BalancingMethod, JsonValue, MethodEntry } from "./types.ts";
import { checkInput, checkRange, checkTasks, finish, gramOf, withDefaults } from "./common.ts";
import { f32FromJson, f32ToJson, numArray, stateObject } from "./methodkit.ts";

export interface ExcessMTLOptions {
  /** Step size η of the exponentiated-gradient update of the task weights (LibMTL robust_step_size). */
  robustStepSize: number;
  /** Number of first calls whose mean excess-risk estimate is the per-task baseline (weights uniform meanwhile). */
  warmupSteps: number;
}

export const EXCESSMTL_DEFAULTS: Readonly<ExcessMTLOptions> = Object.freeze({ robustStepSize: 0.01, warmupSteps: 1 });

/** ε inside the square root of the AdaGrad-style Hessian diagonal (as the reference). */
const EPS = 1e-7;

/**
 * One accumulator update and excess-risk estimate: S ← S + g², returns Σ_p g_p² / sqrt(S_p + ε)
 * over the first S.length entries of g (float64 sum; S is updated in place).
 */
export function excessRiskStep(S: Float32Array, g: Float32Array): number {
  let e = 0;
  for (let p = 0; p < S.length; p++) {
    const x = g[p]!;
    const sq = x * x;
    const a = Math.fround(S[p]! + sq);
    S[p] = a;
    if (sq !== 0) e += sq / Math.sqrt(a + EPS);
  }
  return e;
}

export const excessmtl: MethodEntry<ExcessMTLOptions> = {
  name: "excessmtl",
  label: "ExcessMTL",
  kind: "gradient",
  summary: "ExcessMTL (He et al., ICML 2024): task weights by exponentiated gradient on excess-risk estimates (AdaGrad-diagonal Hessian)",
  defaults: EXCESSMTL_DEFAULTS,
  properties: ["permutation-equivariant", "deterministic"],
  create(numTasks: number, options?: Partial<ExcessMTLOptions>): BalancingMethod {
    checkTasks("excessmtl", numTasks);
    const o = withDefaults("excessmtl", EXCESSMTL_DEFAULTS, options);
    const eta = checkRange("excessmtl", "robustStepSize", o.robustStepSize, 0, Infinity);
    const warmup = o.warmupSteps;
    if (typeof warmup !== "number" || !Number.isInteger(warmup) || warmup < 1) {
      throw new Error(`excessmtl: option warmupSteps must be an integer >= 1 (the number of first steps whose excess risks form the baseline), got ${String(warmup)}`);
    }
    const T = numTasks;
    let t = 0;
    let alpha: Float64Array = new Float64Array(T).fill(1 / T);
    let baseSum: Float64Array = new Float64Array(T);
    let acc: Float32Array[] | null = null;
    const E = new Float64Array(T);
    const logw = new Float64Array(T);
    return {
      name: "excessmtl",
      kind: "gradient",
      numTasks,
      combine(input: BalanceInput) {
        checkInput("excessmtl", T, input);
        const G = gramOf(input);
        const d = input.grads[0]!.length;
        const s = Math.min(d, input.stableDim ?? d);
        if (acc === null) acc = Array.from({ length: T }, () => new Float32Array(s));
        if (acc[0]!.length !== s) throw new Error(`excessmtl: the stable gradient length ${s} differs from the accumulators' ${acc[0]!.length} (the shared dense parameters changed?)`);
        for (let i = 0; i < T; i++) E[i] = excessRiskStep(acc[i]!, input.grads[i]!);
        t += 1;
        if (t <= warmup) {
          for (let i = 0; i < T; i++) baseSum[i] = baseSum[i]! + E[i]!;
        } else {
          let mx = -Infinity;
          for (let i = 0; i < T; i++) {
            const base = baseSum[i]! / warmup;
            const r = base > 0 ? E[i]! / base : 0;
            logw[i] = Math.log(alpha[i]!) + eta * r;
            if (logw[i]! > mx) mx = logw[i]!;
          }
          let z = 0;
          for (let i = 0; i < T; i++) z += Math.exp(logw[i]! - mx);
          const next = new Float64Array(T);
          for (let i = 0; i < T; i++) next[i] = Math.exp(logw[i]! - mx) / z;
          if (!next.every((x) => Number.isFinite(x))) throw new Error(`excessmtl: non-finite task weights (robustStepSize ${eta} too large for these excess risks?)`);
          alpha = next;
        }
        const w = Float64Array.from(alpha);
        return finish(input.grads, G, w, { taskScale: Float64Array.from(w), weights: Float64Array.from(w) });
      },
      getState(): JsonValue {
        return { t, weights: Array.from(alpha), baseSum: Array.from(baseSum), acc: acc === null ? null : acc.map((a) => f32ToJson(a)) };
      },
      setState(state: JsonValue) {
        const j = stateObject(state, "excessmtl");
        if (typeof j.t !== "number" || !Number.isInteger(j.t) || j.t < 0) throw new Error("excessmtl: setState: t must be an integer >= 0");
        const w = numArray(j.weights, T, "excessmtl: setState: weights");
        let sw = 0;
        for (const x of w) {
          if (x < 0) throw new Error("excessmtl: setState: weights must be >= 0");
          sw += x;
        }
        if (Math.abs(sw - 1) > 1e-9) throw new Error(`excessmtl: setState: weights must sum to 1, got ${sw}`);
        const b = numArray(j.baseSum, T, "excessmtl: setState: baseSum");
        let rows: Float32Array[] | null = null;
        if (j.acc !== null && j.acc !== undefined) {
          if (!Array.isArray(j.acc) || j.acc.length !== T) throw new Error(`excessmtl: setState: acc must be null or an array of ${T} vectors`);
          rows = j.acc.map((r, i) => f32FromJson(r, `excessmtl: setState: acc[${i}]`, { nonNegative: true }));
          if (rows.some((r) => r.length !== rows![0]!.length)) throw new Error("excessmtl: setState: acc vectors must all have the same length");
        }
        t = j.t;
        alpha = w;
        baseSum = b;
        acc = rows;
      },
    };
  },
};
