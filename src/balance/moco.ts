/**
 * MoCo — stochastic Multi-objective gradient Correction.
 * Paper: H. D. Fernando, H. Shen, M. Liu, S. Chaudhury, K. Murugesan, T. Chen,
 * "Mitigating Gradient Bias in Multi-objective Learning: A Provably Convergent
 * Approach", ICLR 2023 (arXiv:2210.12624). References read: LibMTL MoCo (from the
 * authors' code), TorchJD MoCo.
 *
 * Update rule (the paper's Algorithm 1), at the method's k-th call (k = 1, 2, …), with
 * tracked gradients y_i (0 at the start) and task weights λ (1/T at the start):
 *   β_k = β / k^βσ,  γ_k = γ / k^γσ;
 *   y_i ← y_i − β_k (y_i − h_i)                 (h_i = g_i; see `normalize`);
 *   λ ← Π_Δ(λ − γ_k (YᵀY + ρ I) λ)              (Π_Δ: Euclidean projection onto the simplex;
 *                                               Y = [y_1 … y_T], so YᵀY is the T×T Gramian of the y's);
 *   direction = Σ_i λ_i y_i.
 * The direction is built from the tracked y's, not from this step's gradients, so it is
 * not Σ c_i g_i once history exists: `coeffs_i` = λ_i β_k s_i reports, for diagnostics,
 * the weight this step's g_i gets in the direction (exact on the first call, where
 * y = β_1 h), and `weights` = λ. Towers get their own unscaled gradient (taskScale = 1,
 * as LibMTL, which only replaces the shared parameters' gradient).
 *
 * Hyperparameters (defaults, LibMTL's, which come from the authors' code): beta β = 0.5,
 * betaSigma βσ = 0.5, gamma γ = 0.1, gammaSigma γσ = 0.5, rho ρ = 0 (the paper's
 * ρ ≥ 0 regularises the λ subproblem; its theory takes decaying β_k, γ_k as above).
 * normalize = "none" (paper: h_i = g_i) | "loss" (LibMTL: h_i = g_i · L_i / (‖g_i‖ + 1e-8),
 * s_i = L_i / (‖g_i‖ + 1e-8); "none" has s_i = 1). simplex = "projection" (paper) |
 * "softmax" (LibMTL: λ ← softmax(λ − γ_k (YᵀY + ρI) λ)).
 *
 * Differences from the reference code (LibMTL): by default the paper's rule, i.e. raw
 * gradients (LibMTL rescales each to its loss: normalize "loss") and the Euclidean
 * projection onto the simplex (LibMTL takes a softmax: simplex "softmax"); both
 * LibMTL choices are options, and with them this file reproduces LibMTL's update. The
 * paper's optional projection of y_i onto a ball of radius L_i (the Lipschitz constant)
 * is not applied (unknown in practice; LibMTL and TorchJD skip it too). y starts at 0
 * (LibMTL, TorchJD); ‖g_i‖ for "loss" is the norm of the whole flat vector.
 * Embedding rows: the flat vector's layout is only stable over its first
 * `input.stableDim` entries (the shared dense parameters); the rows of this batch's
 * ids that follow change meaning every step, so a tracked y over them would mix
 * different rows. y covers the stable prefix only; over the rows the method uses this
 * step's h_i (the tracking's fixed point for a constant gradient), both in YᵀY and in
 * the direction. Without stableDim the whole vector is tracked.
 * Memory: T float32 vectors y over the stable prefix (4·T·stableDim bytes), allocated on
 * the first call and reused; the state holds them as base64 strings of their float32
 * bytes (f32ToJson: ~5.3 bytes per entry, about a quarter of a number list's size).
 * `weightsFromGram` is not offered: the step needs the tracked y's (YᵀY mixes past
 * gradients), which the Gramian of this step's g's does not give.
 */
import type { BalanceInput, BalancingMethod, JsonValue, MethodEntry } from "./types.ts";
import { checkInput, checkRange, checkTasks, gramOf, withDefaults } from "./common.ts";
import { diagnosticsFromGram, dot, projectSimplex } from "./linalg.ts";
import { f32FromJson, f32ToJson, numArray, stateObject } from "./methodkit.ts";

export type MoCoNormalize = "none" | "loss";
export type MoCoSimplex = "projection" | "softmax";

export interface MoCoOptions {
  /** Tracking rate β of y (β_k = β / k^βσ), in (0, 1]. */
  beta: number;
  /** Decay exponent βσ of β_k. */
  betaSigma: number;
  /** Step size γ of the λ update (γ_k = γ / k^γσ). */
  gamma: number;
  /** Decay exponent γσ of γ_k. */
  gammaSigma: number;
  /** ℓ2 regularisation ρ of the λ subproblem. */
  rho: number;
  /** "none": track raw gradients (paper); "loss": g_i · L_i / ‖g_i‖ (LibMTL). */
  normalize: MoCoNormalize;
  /** "projection": Euclidean projection onto the simplex (paper); "softmax" (LibMTL). */
  simplex: MoCoSimplex;
}

export const MOCO_DEFAULTS: Readonly<MoCoOptions> = Object.freeze({ beta: 0.5, betaSigma: 0.5, gamma: 0.1, gammaSigma: 0.5, rho: 0, normalize: "none", simplex: "projection" });

const NORMALIZE: readonly MoCoNormalize[] = ["none", "loss"];
const SIMPLEX: readonly MoCoSimplex[] = ["projection", "softmax"];

/** softmax of v (max-shifted). */
function softmax(v: Float64Array): Float64Array {
  let mx = -Infinity;
  for (const x of v) mx = Math.max(mx, x);
  const out = new Float64Array(v.length);
  let z = 0;
  for (let i = 0; i < v.length; i++) z += out[i] = Math.exp(v[i]! - mx);
  for (let i = 0; i < v.length; i++) out[i] = out[i]! / z;
  return out;
}

export const moco: MethodEntry<MoCoOptions> = {
  name: "moco",
  label: "MoCo",
  kind: "gradient",
  summary: "MoCo (Fernando et al., ICLR 2023): tracked gradients, projected-gradient task weights on their Gramian",
  defaults: MOCO_DEFAULTS,
  properties: ["permutation-equivariant", "deterministic"],
  create(numTasks: number, options?: Partial<MoCoOptions>): BalancingMethod {
    checkTasks("moco", numTasks);
    const o = withDefaults("moco", MOCO_DEFAULTS, options);
    const beta = checkRange("moco", "beta", o.beta, 0, 1);
    if (beta === 0) throw new Error("moco: option beta must be > 0 (y would never track the gradients); use e.g. 0.5");
    const betaSigma = checkRange("moco", "betaSigma", o.betaSigma, 0, Infinity);
    const gamma = checkRange("moco", "gamma", o.gamma, 0, Infinity);
    const gammaSigma = checkRange("moco", "gammaSigma", o.gammaSigma, 0, Infinity);
    const rho = checkRange("moco", "rho", o.rho, 0, Infinity);
    if (!NORMALIZE.includes(o.normalize)) throw new Error(`moco: option normalize must be one of ${NORMALIZE.join(", ")}, got ${JSON.stringify(o.normalize)}`);
    if (!SIMPLEX.includes(o.simplex)) throw new Error(`moco: option simplex must be one of ${SIMPLEX.join(", ")}, got ${JSON.stringify(o.simplex)}`);
    const normalize = o.normalize;
    const simplex = o.simplex;
    const T = numTasks;
    let k = 0;
    let lambda: Float64Array = new Float64Array(T).fill(1 / T);
    let y: Float32Array[] | null = null;
    const sc = new Float64Array(T);
    const M = new Float64Array(T * T);
    const v = new Float64Array(T);
    return {
      name: "moco",
      kind: "gradient",
      numTasks,
      combine(input: BalanceInput) {
        checkInput("moco", T, input);
        const G = gramOf(input);
        const d = input.grads[0]!.length;
        const s = Math.min(d, input.stableDim ?? d);
        if (y === null) y = Array.from({ length: T }, () => new Float32Array(s));
        if (y[0]!.length !== s) throw new Error(`moco: the stable gradient length ${s} differs from the tracked gradients' ${y[0]!.length} (the shared dense parameters changed?)`);
        for (let i = 0; i < T; i++) {
          if (normalize === "none") sc[i] = 1;
          else sc[i] = input.losses[i]! / (Math.sqrt(Math.max(0, G[i * T + i]!)) + 1e-8);
        }
        k += 1;
        const bk = beta / k ** betaSigma;
        const gk = gamma / k ** gammaSigma;
        // tracking over the stable prefix: y ← (1 − β_k) y + β_k s_i g_i
        for (let i = 0; i < T; i++) {
          const yi = y[i]!;
          const g = input.grads[i]!;
          const c = bk * sc[i]!;
          const keep = 1 - bk;
          for (let p = 0; p < s; p++) yi[p] = keep * yi[p]! + c * g[p]!;
        }
        // M = YᵀY: prefix from the y's, rows part from this step's h = s_i g_i
        for (let i = 0; i < T; i++) {
          for (let j = i; j < T; j++) {
            let m = dot(y[i]!, y[j]!);
            if (s < d) m += sc[i]! * sc[j]! * dot(input.grads[i]!.subarray(s), input.grads[j]!.subarray(s));
            M[i * T + j] = m;
            M[j * T + i] = m;
          }
        }
        for (let i = 0; i < T; i++) {
          let mv = rho * lambda[i]!;
          for (let j = 0; j < T; j++) mv += M[i * T + j]! * lambda[j]!;
          v[i] = lambda[i]! - gk * mv;
        }
        if (!v.every((x) => Number.isFinite(x))) throw new Error(`moco: non-finite task-weight update (gamma ${gamma} too large for these gradient norms?)`);
        lambda = simplex === "projection" ? projectSimplex(v) : softmax(v);
        const direction = new Float32Array(d);
        for (let i = 0; i < T; i++) {
          const l = lambda[i]!;
          if (l === 0) continue;
          const yi = y[i]!;
          for (let p = 0; p < s; p++) direction[p] = direction[p]! + l * yi[p]!;
          const g = input.grads[i]!;
          const c = l * sc[i]!;
          for (let p = s; p < d; p++) direction[p] = direction[p]! + c * g[p]!;
        }
        for (let p = 0; p < d; p++) {
          if (!Number.isFinite(direction[p]!)) throw new Error(`moco: non-finite direction at index ${p}`);
        }
        const coeffs = new Float64Array(T);
        for (let i = 0; i < T; i++) coeffs[i] = lambda[i]! * bk * sc[i]!;
        return { direction, coeffs, taskScale: new Float64Array(T).fill(1), weights: Float64Array.from(lambda), diagnostics: diagnosticsFromGram(G, T) };
      },
      getState(): JsonValue {
        return { k, lambda: Array.from(lambda), y: y === null ? null : y.map((r) => f32ToJson(r)) };
      },
      setState(state: JsonValue) {
        const j = stateObject(state, "moco");
        if (typeof j.k !== "number" || !Number.isInteger(j.k) || j.k < 0) throw new Error("moco: setState: k must be an integer >= 0");
        const l = numArray(j.lambda, T, "moco: setState: lambda");
        let sum = 0;
        for (const x of l) {
          if (x < 0) throw new Error("moco: setState: lambda must be >= 0");
          sum += x;
        }
        if (Math.abs(sum - 1) > 1e-9) throw new Error(`moco: setState: lambda must sum to 1, got ${sum}`);
        let rows: Float32Array[] | null = null;
        if (j.y !== null && j.y !== undefined) {
          if (!Array.isArray(j.y) || j.y.length !== T) throw new Error(`moco: setState: y must be null or an array of ${T} vectors`);
          rows = j.y.map((r, i) => f32FromJson(r, `moco: setState: y[${i}]`));
          if (rows.some((r) => r.length !== rows![0]!.length)) throw new Error("moco: setState: y vectors must all have the same length");
        }
        k = j.k;
        lambda = l;
        y = rows;
      },
    };
  },
};
