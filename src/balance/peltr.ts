/**
 * PE-LTR — Pareto-Efficient Learning to Rank, with minimum weights.
 * Paper: X. Lin, H. Chen, C. Pei, F. Sun, X. Xiao, H. Sun, Y. Zhang, W. Ou, P. Jiang,
 * "A Pareto-Efficient Algorithm for Multiple Objective Optimization in E-Commerce
 * Recommendation", RecSys 2019 (Algorithm 1, and Algorithm 2: the solver of the
 * Pareto-efficient conditions). Reference:
 * TorchEasyRec `tzrec/loss/pe_mtl_loss.py` (ParetoEfficientMultiTaskLoss).
 *
 * Update rule: loss weights ω with Σ ω_i = 1 and ω_i ≥ c_i (the minimum weights) that make
 * ‖Σ ω_i g_i‖² small, by the paper's two-stage solver:
 *  1. relaxed problem (ω = c + ω̂, only Σ ω̂ = 1 − Σ c kept): its KKT system
 *         M [ω̂; λ] = z,   M = [[G, 1], [1ᵀ, 0]],   z = [−G c; 1 − Σ c]
 *     solved analytically, ω̂ = ((Mᵀ M)⁻¹ M z)[1..T] (the paper) — here M⁺ z, which is the
 *     same for an invertible M and the minimum-norm least-squares solution otherwise;
 *  2. projection: ω̃ = argmin ‖ω̃ − ω̂‖² s.t. ω̃ ≥ 0, Σ ω̃ = 1 − Σ c (the paper's Algorithm 2
 *     step solved by an active-set method; TorchEasyRec: scipy SLSQP from an nnls start),
 *     here the exact Euclidean projection onto that scaled simplex (Duchi et al. 2008);
 *  3. ω = ω̃ + c. The update is Σ_i ω_i g_i on the shared parameters and the towers get
 *     ω_i g_i (taskScale = ω: PE-LTR weights the task losses, as TorchEasyRec's Σ ω_i L_i).
 * G is normalised by its mean diagonal first (the relaxed ω̂ is unchanged by a scale of G);
 * M⁺ keeps the eigenvalues with |λ| > (T+1) · ε_f32 · max|λ| (ε_f32 = 2^-23, float32
 * gradients). So ω is invariant to the gradients' scale and the direction scales with it.
 * Projected weights ≤ 1e-12·(1 − Σ c) (rounding of an exact 0) are set to 0 and the rest
 * renormalised. The stage-1 solution ignores ω ≥ c, so the result is the paper's
 * approximation, not the exact minimiser of ‖Σ ω_i g_i‖ over {Σ ω = 1, ω ≥ c} (it need not
 * be conflict-free). Permuting the tasks permutes ω when the minimum weights are permuted
 * with them (trivially so for the default, equal c).
 *
 * Hyperparameters (defaults): minWeights = "0" (every c_i = 0) — the c_i: one number for
 * every task, or one per task (a list, or a comma-separated string as on the command line:
 * `--method-opt minWeights=0.1,0.05,0.2`); each ≥ 0 and Σ c ≤ 1 (Σ c = 1 fixes ω = c). The paper sets c per objective by hand and has no
 * default; TorchEasyRec requires it (pareto_min_loss_weight) and asserts 0 ≤ Σ c < 1.
 * Differences from TorchEasyRec: it takes the gradients of all trainable parameters (the
 * towers included) and solves each step in numpy/scipy; here the gradients are the shared
 * parameters' (like every gradient method here); its (MᵀM)⁻¹ fails or returns garbage for
 * a singular M (two identical gradients) where M⁺ z is well defined; its SLSQP projection
 * stops at ~1e-6, the closed form here is exact. Stateless.
 */
import type { BalanceInput, BalancingMethod, GramMethodEntry, JsonValue } from "./types.ts";
import { checkInput, checkTasks, expectNullState, finish, gramOf, withDefaults } from "./common.ts";
import { pinvSymSolve, projectSimplex } from "./linalg.ts";
import { gramForm } from "./gram.ts";

export interface PELTROptions {
  /** Minimum weights c_i: one number for all tasks, or one per task (list or comma-separated string). */
  minWeights: number | readonly number[] | string;
}

// A string default, so the registry passes a command-line list ("0.1,0.05,0.2") through
// unconverted (it converts strings to numbers only for number defaults).
export const PELTR_DEFAULTS: Readonly<PELTROptions> = Object.freeze({ minWeights: "0" });

const F32_EPS = 2 ** -23;

/** The minimum weights as T numbers, validated (each finite and ≥ 0, Σ ≤ 1); errors name the option. */
export function parseMinWeights(v: unknown, T: number): Float64Array {
  const where = "peltr: option minWeights";
  let list: unknown[];
  if (typeof v === "number") list = [v];
  else if (typeof v === "string") {
    if (v.trim() === "") throw new Error(`${where} must be a number or a comma-separated list of ${T} numbers, got an empty string`);
    list = v.split(",").map((s) => (s.trim() === "" ? NaN : Number(s)));
  } else if (Array.isArray(v)) list = v;
  else throw new Error(`${where} must be a number or a list of ${T} numbers (one per task), got ${JSON.stringify(v)}`);
  if (list.length !== 1 && list.length !== T) {
    throw new Error(`${where} has ${list.length} values; give one number for every task or exactly ${T} (one per task)`);
  }
  const c = new Float64Array(T);
  for (let i = 0; i < T; i++) {
    const x = list.length === 1 ? list[0] : list[i];
    if (typeof x !== "number" || !Number.isFinite(x) || x < 0) {
      throw new Error(`${where}: ${list.length === 1 ? "the value" : `entry ${i}`} must be a finite number >= 0, got ${JSON.stringify(x ?? null)}`);
    }
    c[i] = x;
  }
  let sum = 0;
  for (let i = 0; i < T; i++) sum += c[i]!;
  if (sum > 1 + 1e-12) throw new Error(`${where}: the minimum weights sum to ${sum} over ${T} tasks; their sum must be <= 1 (the weights sum to 1)`);
  return c;
}

/** PE-LTR weights ω (Σ ω = 1, ω ≥ c) and the relaxed stage-1 solution ω̂ + c, from a T×T Gramian. */
export function peltrWeights(G: Float64Array, T: number, c: Float64Array): { weights: Float64Array; relaxed: Float64Array } {
  let s = 0;
  for (let i = 0; i < T; i++) s += G[i * T + i]! / T;
  const scale = s > 0 && Number.isFinite(s) ? 1 / s : 0;
  const K = T + 1;
  const M = new Float64Array(K * K);
  const z = new Float64Array(K);
  let csum = 0;
  for (let i = 0; i < T; i++) {
    csum += c[i]!;
    let gc = 0;
    for (let j = 0; j < T; j++) {
      const a = G[i * T + j]! * scale;
      M[i * K + j] = a;
      gc += a * c[j]!;
    }
    M[i * K + T] = 1;
    M[T * K + i] = 1;
    z[i] = -gc;
  }
  const total = Math.max(0, 1 - csum);
  z[T] = total;
  const { x } = pinvSymSolve(M, z, K, K * F32_EPS);
  const hat = x.subarray(0, T);
  const weights = new Float64Array(T);
  const relaxed = new Float64Array(T);
  if (total > 0) {
    const v = new Float64Array(T);
    for (let i = 0; i < T; i++) v[i] = hat[i]! / total;
    const p = projectSimplex(v);
    // a projected weight ≤ 1e-12 is the solve's rounding of an exact 0 (e.g. a zero gradient taking all the
    // weight): snap it and renormalise, so no task keeps a 1e-16 weight whose presence depends on the task order
    let kept = 0;
    for (let i = 0; i < T; i++) {
      if (p[i]! <= 1e-12) p[i] = 0;
      kept += p[i]!;
    }
    for (let i = 0; i < T; i++) weights[i] = (p[i]! / kept) * total + c[i]!;
  } else weights.set(c);
  for (let i = 0; i < T; i++) relaxed[i] = hat[i]! + c[i]!;
  return { weights, relaxed };
}

export const peltr: GramMethodEntry<PELTROptions> = {
  name: "peltr",
  label: "PE-LTR",
  kind: "gradient",
  summary: "PE-LTR (Lin et al., RecSys 2019): Pareto-efficient loss weights with minimum weights c_i (relaxed KKT solution, projected)",
  defaults: PELTR_DEFAULTS,
  properties: ["permutation-equivariant", "scale-equivariant", "linear-combination", "deterministic"],
  weightsFromGram: gramForm(() => peltr),
  create(numTasks: number, options?: Partial<PELTROptions>): BalancingMethod {
    checkTasks("peltr", numTasks);
    const o = withDefaults("peltr", PELTR_DEFAULTS, options);
    const c = parseMinWeights(o.minWeights, numTasks);
    return {
      name: "peltr",
      kind: "gradient",
      numTasks,
      combine(input: BalanceInput) {
        checkInput("peltr", numTasks, input);
        const G = gramOf(input);
        const { weights } = peltrWeights(G, numTasks, c);
        return finish(input.grads, G, weights, { taskScale: Float64Array.from(weights), weights: Float64Array.from(weights) });
      },
      getState() {
        return null;
      },
      setState(state: JsonValue) {
        expectNullState("peltr", state);
      },
    };
  },
};
