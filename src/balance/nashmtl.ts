/**
 * Nash-MTL — multi-task learning as a bargaining game.
 * Paper: A. Navon, A. Shamsian, I. Achituve, H. Maron, K. Kawaguchi, G. Chechik,
 * E. Fetaya, "Multi-Task Learning as a Bargaining Game", ICML 2022. Reference:
 * LibMTL Nash_MTL (from the official code).
 *
 * Update rule: find α > 0 with (G α)_i = 1/α_i for every i (G = Gramian of the
 * task gradients), direction = Σ α_i g_i, then clip the direction to norm
 * ≤ maxNorm (the reference clips the shared parameters' gradient with
 * clip_grad_norm_(max_norm)). At the solution ‖d‖² = αᵀGα = T, so with the default
 * maxNorm = 1 the returned direction has unit norm whenever T ≥ 2.
 *
 * Solver (differs from the reference's CCP with cvxpy/ECOS, ≤ 20 iterations,
 * warm-started): α solves the Nash condition iff it minimises the convex
 *     f(α) = ½ αᵀ A α − Σ_i log α_i,   A = G/‖G‖_F + ρ I,  ρ = 1e-8,
 * on α > 0 (∇f = Aα − 1/α). We run damped Newton (Hessian A + diag(1/α²) is
 * always positive definite; Cholesky via solveSPD) with a fraction-to-boundary
 * rule keeping α > 0 and Armijo backtracking, from the best multiple of the ones
 * vector (s = sqrt(T / 1ᵀA1)), until the Newton decrement² < 1e-20 (≤ 200
 * iterations). The normalised solution α̂ maps back to α = α̂ / sqrt(‖G‖_F), which
 * satisfies (G + ρ‖G‖_F I) α = 1/α. Like the reference we normalise G by its
 * Frobenius norm; ρ is our addition: for a singular G with a positive null
 * direction (a zero task gradient, exactly opposite gradients) the Nash system has
 * no solution (the reference's CCP then keeps its previous α) and the ridge gives
 * a finite, well-defined answer instead (the zero task gets a large but
 * irrelevant α_k; opposite tasks get equal large α that cancel, and the clip
 * bounds the result). All-zero gradients: α = 1, zero direction.
 *
 * Hyperparameters (defaults): maxNorm = 1.0 (0 disables the clip),
 * updateWeightsEvery = 1 (recompute α on steps where step % k == 0, or when no α is
 * cached; otherwise reuse the previous α, as the reference).
 * Towers get unscaled task gradients (taskScale = 1), per this library's gradient
 * methods; the reference's Σ α_i L_i backward would scale them by α_i.
 * State: the last α (only needed when updateWeightsEvery > 1).
 */
import type { BalanceInput, BalancingMethod, JsonValue, GramMethodEntry } from "./types.ts";
import { checkInput, checkRange, checkTasks, finish, gramOf, withDefaults } from "./common.ts";
import { solveSPD } from "./linalg.ts";
import { numArray, stateObject } from "./methodkit.ts";
import { gramForm } from "./gram.ts";

export interface NashMTLOptions {
  /** Clip the direction to this norm (reference clip_grad_norm_ max_norm); 0 = no clip. */
  maxNorm: number;
  /** Recompute α every k steps (reference update_weights_every). */
  updateWeightsEvery: number;
}

const RIDGE = 1e-8;

function nashF(A: Float64Array, T: number, a: Float64Array): number {
  let q = 0;
  let lg = 0;
  for (let i = 0; i < T; i++) {
    let s = 0;
    for (let j = 0; j < T; j++) s += A[i * T + j]! * a[j]!;
    q += a[i]! * s;
    lg += Math.log(a[i]!);
  }
  return 0.5 * q - lg;
}

/** Minimise ½αᵀAα − Σ log α over α > 0 for a positive definite A (damped Newton). */
export function nashNewton(A: Float64Array, T: number, maxIter = 200): Float64Array {
  let oneAone = 0;
  for (let k = 0; k < T * T; k++) oneAone += A[k]!;
  let a: Float64Array = new Float64Array(T).fill(oneAone > 0 ? Math.sqrt(T / oneAone) : 1);
  let fa = nashF(A, T, a);
  const grad = new Float64Array(T);
  const H = new Float64Array(T * T);
  for (let it = 0; it < maxIter; it++) {
    for (let i = 0; i < T; i++) {
      let s = 0;
      for (let j = 0; j < T; j++) {
        s += A[i * T + j]! * a[j]!;
        H[i * T + j] = A[i * T + j]! + (i === j ? 1 / (a[i]! * a[i]!) : 0);
      }
      grad[i] = s - 1 / a[i]!;
    }
    const neg = new Float64Array(T);
    for (let i = 0; i < T; i++) neg[i] = -grad[i]!;
    const { x: step } = solveSPD(H, neg, T, 1e-14);
    let dec = 0;
    for (let i = 0; i < T; i++) dec -= grad[i]! * step[i]!;
    if (!(dec > 1e-20)) break;
    let t = 1;
    for (let i = 0; i < T; i++) if (step[i]! < 0) t = Math.min(t, (-0.99 * a[i]!) / step[i]!);
    let next: Float64Array = a;
    let fn = fa;
    let ok = false;
    for (let bt = 0; bt < 60; bt++) {
      next = new Float64Array(T);
      for (let i = 0; i < T; i++) next[i] = a[i]! + t * step[i]!;
      fn = nashF(A, T, next);
      if (fn <= fa - 0.25 * t * dec) {
        ok = true;
        break;
      }
      t *= 0.5;
    }
    if (!ok) break;
    a = next;
    fa = fn;
  }
  return a;
}

/** Nash-MTL α in the scale of G: (G + ρ‖G‖_F I) α = 1/α, α > 0. All-zero G gives ones. */
export function nashSolve(G: Float64Array, T: number): Float64Array {
  let fro = 0;
  for (let k = 0; k < T * T; k++) fro += G[k]! * G[k]!;
  fro = Math.sqrt(fro);
  if (!(fro > 0) || !Number.isFinite(fro)) return new Float64Array(T).fill(1);
  const A = new Float64Array(T * T);
  for (let k = 0; k < T * T; k++) A[k] = G[k]! / fro;
  for (let i = 0; i < T; i++) A[i * T + i] = A[i * T + i]! + RIDGE;
  const a = nashNewton(A, T);
  const s = 1 / Math.sqrt(fro);
  for (let i = 0; i < T; i++) a[i] = a[i]! * s;
  return a;
}

/** Scale α so that ‖Σ α_i g_i‖ ≤ maxNorm (no-op for maxNorm = 0). */
export function clipCoeffs(G: Float64Array, T: number, alpha: Float64Array, maxNorm: number): Float64Array {
  const out = Float64Array.from(alpha);
  if (maxNorm <= 0) return out;
  let q = 0;
  for (let i = 0; i < T; i++) for (let j = 0; j < T; j++) q += alpha[i]! * G[i * T + j]! * alpha[j]!;
  const norm = Math.sqrt(Math.max(q, 0));
  if (norm > maxNorm) for (let i = 0; i < T; i++) out[i] = (out[i]! * maxNorm) / norm;
  return out;
}

export const nashmtl: GramMethodEntry<NashMTLOptions> = {
  name: "nashmtl",
  label: "Nash-MTL",
  kind: "gradient",
  summary: "Nash-MTL (Navon et al., ICML 2022): Nash bargaining solution, (G Gᵀ)α = 1/α",
  defaults: { maxNorm: 1.0, updateWeightsEvery: 1 },
  properties: ["permutation-equivariant", "scale-invariant", "linear-combination", "deterministic"],
  weightsFromGram: gramForm(() => nashmtl),
  create(numTasks: number, options?: Partial<NashMTLOptions>): BalancingMethod {
    checkTasks("nashmtl", numTasks);
    const o = withDefaults("nashmtl", nashmtl.defaults, options);
    const maxNorm = checkRange("nashmtl", "maxNorm", o.maxNorm, 0, Infinity);
    const every = checkRange("nashmtl", "updateWeightsEvery", o.updateWeightsEvery, 1, Infinity);
    if (!Number.isInteger(every)) throw new Error(`nashmtl: option updateWeightsEvery must be an integer >= 1, got ${every}`);
    const T = numTasks;
    let prev: Float64Array | null = null;
    return {
      name: "nashmtl",
      kind: "gradient",
      numTasks,
      combine(input: BalanceInput) {
        checkInput("nashmtl", T, input);
        const G = gramOf(input);
        if (prev === null || input.step % every === 0) prev = nashSolve(G, T);
        return finish(input.grads, G, clipCoeffs(G, T, prev, maxNorm));
      },
      getState(): JsonValue {
        return { alpha: prev === null ? null : Array.from(prev) };
      },
      setState(state: JsonValue) {
        const j = stateObject(state, "nashmtl");
        prev = j.alpha === null || j.alpha === undefined ? null : numArray(j.alpha, T, "nashmtl: setState: alpha");
      },
    };
  },
};
