/**
 * STCH — Smooth Tchebycheff scalarization.
 * Paper: X. Lin, X. Zhang, Z. Yang, F. Liu, Z. Wang, Q. Zhang, "Smooth Tchebycheff
 * Scalarization for Multi-Objective Optimization", ICML 2024 (reference code:
 * github.com/Xi-L/STCH, STCH_MTL; LibMTL's STCH is the same code).
 *
 * Update rule. The model descends the smooth Tchebycheff scalarization
 *     g_μ(θ | λ) = μ · log Σ_i exp(λ_i (ℓ_i(θ) − z*_i) / μ),
 * whose gradient is Σ_i softmax(λ ⊙ (ℓ − z*) / μ)_i · λ_i · ∇ℓ_i: loss weights
 *     w_i = λ_i · softmax(λ ⊙ (ℓ − z*) / μ)_i
 * from this step's losses (the largest weighted excess over the ideal point gets the
 * largest weight; μ → 0 is the classic Tchebycheff max, μ → ∞ linear scalarization
 * with weights λ/T). With `log: true` the objectives are log ℓ_i instead of ℓ_i, so
 * w_i = λ_i · softmax(λ ⊙ (log ℓ − z*) / μ)_i / ℓ_i.
 *
 * The weights depend on this step's losses, so the method offers `lossAware`: the rule
 * is compiled into the training program (one graph run, EW's cost) on steps without
 * diagnostics.
 *
 * Warm-up and nadir point (`warmupEpochs` W > 0, the reference's procedure): the first W
 * epochs descend Σ_i f_i (equal weights on the objectives: EW, or Σ log ℓ_i with `log`);
 * the losses of every step of epoch W−1 are averaged into the nadir vector n, and from
 * epoch W on the ideal point is z* = f(n) + ideal (`ideal` becomes an offset).
 *
 * Hyperparameters (defaults): mu = 1 (μ > 0, the smoothing; the reference's STCH_mu
 * default), preferences = "" (λ_i = 1 for every task: equal preferences; else T
 * comma-separated positive numbers or an array), ideal = "" (z*_i = 0: a BCE loss is
 * bounded below by 0, its ideal value; else T comma-separated numbers or an array,
 * in log space when `log` is set), log = false, warmupEpochs = 0 (no warm-up: z* = ideal).
 *
 * Differences from the reference / LibMTL code (STCH.py):
 * - The reference first trains `STCH_warmup_epoch` = 4 epochs on Σ_i log ℓ_i (equal
 *   weights on log losses), averages the losses of the last warm-up epoch into a
 *   "nadir" vector n, and then descends T · μ log Σ_i exp(log(ℓ_i/n_i)/μ), i.e. λ = 1,
 *   objectives log ℓ_i and ideal point z* = log n, times T. Its epochs 0..4 all descend
 *   Σ log ℓ (epoch 4, `STCH_warmup_epoch`, also accumulates n), so it equals `log: true,
 *   warmupEpochs: 5` here, times T. The defaults here are the plain published
 *   scalarization (no warm-up, raw losses, z* = 0).
 * - The factor T (LibMTL scales the scalarization by the number of tasks) is not
 *   applied: the weights here sum to Σλ_i softmax_i ≤ max λ (1 with the defaults),
 *   where EW's sum to T; raise the model learning rate to compare at equal step size.
 * - The reference adds 1e-20 inside the log; with `log: true` the loss is floored at
 *   1e-20 the same way (max(ℓ, 1e-20) rather than ℓ + 1e-20).
 */
import type { BalanceInput, BalancingMethod, MethodEntry } from "./types.ts";
import type { JsonValue } from "./types.ts";
import { checkInput, checkRange, checkTasks, finish, gramOf, withDefaults } from "./common.ts";
import { numArray, stateObject } from "./methodkit.ts";
import { W, evalWeightRule, type WeightExpr } from "./weightrule.ts";

export interface STCHOptions {
  /** μ > 0: smoothing of the Tchebycheff max. */
  mu: number;
  /** λ: "" for all ones, else T positive numbers (comma-separated or an array). */
  preferences: string | readonly number[];
  /** z*: "" for all zeros, else T numbers (comma-separated or an array). */
  ideal: string | readonly number[];
  /** Scalarize log ℓ_i instead of ℓ_i. */
  log: boolean;
  /** Epochs of equal weighting whose last one's mean losses become the nadir point (0 = none). */
  warmupEpochs: number;
}

export const STCH_DEFAULTS: Readonly<STCHOptions> = Object.freeze({ mu: 1, preferences: "", ideal: "", log: false, warmupEpochs: 0 });

/** Floor of a loss before its log (the reference's 1e-20). */
export const STCH_LOG_FLOOR = 1e-20;

/**
 * The STCH loss-weight rule a ⊙ softmax(b ⊙ (f − z*)/μ) [/ ℓ with log]; params: 0 = a, 1 = b,
 * 2 = z*. STCH proper: a = b = λ. Warm-up: a = T, b = 0 (weights 1 on every f_i).
 */
export function stchRule(mu: number, log: boolean): WeightExpr {
  const f = log ? W.log(W.max(W.losses(), W.c(STCH_LOG_FLOOR))) : W.losses();
  const soft = W.mul(W.param(0), W.softmax(W.div(W.mul(W.param(1), W.sub(f, W.param(2))), W.c(mu))));
  return log ? W.div(soft, W.max(W.losses(), W.c(STCH_LOG_FLOOR))) : soft;
}

/** The scalarization μ log Σ exp(λ(f − z*)/μ) itself (float64, max-shifted; for checks). */
export function stchObjective(losses: ArrayLike<number>, lambda: ArrayLike<number>, ideal: ArrayLike<number>, mu: number, log = false): number {
  const T = losses.length;
  const a = Array.from({ length: T }, (_, i) => (lambda[i]! * ((log ? Math.log(Math.max(losses[i]!, STCH_LOG_FLOOR)) : losses[i]!) - ideal[i]!)) / mu);
  const m = Math.max(...a);
  return mu * (m + Math.log(a.reduce((s, x) => s + Math.exp(x - m), 0)));
}

function vectorOption(name: string, v: unknown, T: number, fill: number, positive: boolean): Float64Array {
  if (v === "" || v === undefined) return new Float64Array(T).fill(fill);
  const parts: unknown[] = typeof v === "string" ? v.split(",").map((s) => (s.trim() === "" ? NaN : Number(s))) : Array.isArray(v) ? v : [v];
  if (parts.length !== T) throw new Error(`stch: option ${name} must have ${T} entries (one per task), got ${parts.length}`);
  const out = new Float64Array(T);
  parts.forEach((x, i) => {
    if (typeof x !== "number" || !Number.isFinite(x) || (positive && !(x > 0))) {
      throw new Error(`stch: option ${name}: entry ${i} must be a finite${positive ? " positive" : ""} number, got ${String(x)}`);
    }
    out[i] = x;
  });
  return out;
}

export const stch: MethodEntry<STCHOptions> = {
  name: "stch",
  label: "STCH",
  kind: "loss-weighting",
  summary: "STCH, smooth Tchebycheff scalarization (Lin et al., ICML 2024): w = λ·softmax(λ(ℓ − z*)/μ)",
  defaults: STCH_DEFAULTS,
  properties: ["permutation-equivariant", "scale-equivariant", "linear-combination", "deterministic"],
  create(numTasks: number, options?: Partial<STCHOptions>): BalancingMethod {
    checkTasks("stch", numTasks);
    const o = withDefaults("stch", STCH_DEFAULTS, options);
    const mu = checkRange("stch", "mu", o.mu, 1e-12, Infinity);
    if (typeof o.log !== "boolean") throw new Error(`stch: option log must be true or false, got ${String(o.log)}`);
    const T = numTasks;
    const lambda = vectorOption("preferences", o.preferences, T, 1, true);
    const ideal = vectorOption("ideal", o.ideal, T, 0, false);
    const warm = checkRange("stch", "warmupEpochs", o.warmupEpochs, 0, 1e6);
    if (!Number.isInteger(warm)) throw new Error(`stch: option warmupEpochs must be an integer >= 0, got ${warm}`);
    const log = o.log;
    const rule = stchRule(mu, log);
    let sum: Float64Array = new Float64Array(T);
    let count = 0;
    let nadir: Float64Array | null = null;
    /** Epoch of the step whose weights were computed last (observe follows params in the same step). */
    let epochNow = 0;
    const params = (info: { epoch: number }): Float64Array[] => {
      epochNow = info.epoch;
      if (info.epoch < warm) return [new Float64Array(T).fill(T), new Float64Array(T), new Float64Array(T)];
      let z = Float64Array.from(ideal);
      if (warm > 0) {
        if (nadir === null) {
          if (count === 0) throw new Error(`stch: no losses were seen in epoch ${warm - 1}, the last warm-up epoch, so there is no nadir point (warmupEpochs ${warm})`);
          nadir = Float64Array.from(sum, (v) => v / count);
        }
        const n = nadir;
        z = Float64Array.from(ideal, (v, i) => v + (log ? Math.log(Math.max(n[i]!, STCH_LOG_FLOOR)) : n[i]!));
      }
      return [Float64Array.from(lambda), Float64Array.from(lambda), z];
    };
    const observe = (losses: Float64Array): void => {
      if (warm > 0 && epochNow === warm - 1) {
        for (let i = 0; i < T; i++) sum[i] = sum[i]! + losses[i]!;
        count++;
      }
    };
    return {
      name: "stch",
      kind: "loss-weighting",
      numTasks,
      combine(input: BalanceInput) {
        checkInput("stch", T, input);
        if (input.losses.length !== T) throw new Error(`stch: expected ${T} losses, got ${input.losses.length}`);
        const G = gramOf(input);
        const w = evalWeightRule(rule, input.losses, params(input));
        observe(input.losses);
        return finish(input.grads, G, Float64Array.from(w), { taskScale: Float64Array.from(w), weights: w });
      },
      lossAware: { rule, params, observe },
      getState(): JsonValue {
        return { sum: Array.from(sum), count, nadir: nadir ? Array.from(nadir) : null };
      },
      setState(state: JsonValue) {
        const j = stateObject(state, "stch");
        const nsum = numArray(j.sum, T, "stch: setState: sum");
        if (typeof j.count !== "number" || !Number.isInteger(j.count) || j.count < 0) throw new Error("stch: setState: count must be an integer >= 0");
        const nn = j.nadir === null || j.nadir === undefined ? null : numArray(j.nadir, T, "stch: setState: nadir");
        sum = nsum;
        count = j.count;
        nadir = nn;
      },
    };
  },
};
