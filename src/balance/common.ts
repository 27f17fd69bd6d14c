/**
 * Shared plumbing for balancing methods: Gramian lookup, output assembly and
 * option validation helpers. Every method reduces to a coefficient vector over
 * the raw task gradients; `finish` turns it into a BalanceOutput.
 */
import type { BalanceInput, BalanceOutput } from "./types.ts";
import { combine, diagnosticsFromGram, gramian } from "./linalg.ts";
import { didYouMean } from "../util/suggest.ts";

/** The T×T Gramian of the input's gradients: `input.gram` if given, else computed. */
export function gramOf(input: BalanceInput): Float64Array {
  const T = input.grads.length;
  if (input.gram !== undefined) {
    if (input.gram.length !== T * T) {
      throw new Error(`gram: expected a ${T}x${T} Gramian (length ${T * T}), got length ${input.gram.length}`);
    }
    return input.gram;
  }
  return gramian(input.grads);
}

/**
 * Build the BalanceOutput for direction = Σ_i coeffs[i] * g_i. Non-finite
 * coefficients are a bug upstream and throw instead of leaking NaN into training.
 * taskScale defaults to all ones (gradient-surgery methods).
 */
export function finish(
  grads: readonly Float32Array[],
  G: Float64Array,
  coeffs: Float64Array,
  extra?: { taskScale?: Float64Array; weights?: Float64Array },
): BalanceOutput {
  const T = grads.length;
  if (coeffs.length !== T) throw new Error(`finish: ${coeffs.length} coefficients for ${T} tasks`);
  for (let i = 0; i < T; i++) {
    if (!Number.isFinite(coeffs[i]!)) throw new Error(`finish: non-finite coefficient for task ${i}: ${coeffs[i]}`);
  }
  const direction = combine(grads, coeffs);
  const taskScale = extra?.taskScale ?? new Float64Array(T).fill(1);
  const out: BalanceOutput = { direction, coeffs, taskScale, diagnostics: diagnosticsFromGram(G, T) };
  if (extra?.weights !== undefined) out.weights = extra.weights;
  return out;
}

/** Throw unless `v` is a finite number in [lo, hi]; the message names the option. */
export function checkRange(method: string, option: string, v: unknown, lo: number, hi: number): number {
  if (typeof v !== "number" || !Number.isFinite(v) || v < lo || v > hi) {
    const range = hi === Infinity ? `>= ${lo}` : `in [${lo}, ${hi}]`;
    throw new Error(`${method}: option ${option} must be a finite number ${range}, got ${String(v)}`);
  }
  return v;
}

/** Throw unless numTasks is an integer >= 1. */
export function checkTasks(method: string, numTasks: number): void {
  if (!Number.isInteger(numTasks) || numTasks < 1) {
    throw new Error(`${method}: numTasks must be an integer >= 1, got ${numTasks}`);
  }
}

/**
 * Largest accepted |gradient entry|. Healthy BCE gradients are O(1); beyond this the
 * optimiser breaks down silently: Adam keeps g² in float32, which overflows to
 * Infinity once |g| > ~1.8e19 (float32 max 3.4e38), and the update then vanishes.
 * 1e18 sits below that point and ~18 orders of magnitude above any healthy value,
 * so an entry above it means the run has exploded.
 */
export const MAX_ABS_GRAD = 1e18;

/** A non-finite or exploding balancing input: names the task (index) and the first bad position. */
export class NonFiniteInputError extends Error {
  constructor(
    message: string,
    /** Index of the task whose gradient or loss is bad. */
    readonly task: number,
    /** "gradient" or "loss". */
    readonly what: "gradient" | "loss",
    /** Position in that task's gradient (-1 for a loss). */
    readonly position: number,
    readonly value: number,
  ) {
    super(message);
    this.name = "NonFiniteInputError";
  }
}

/**
 * Throw unless the input has exactly `numTasks` gradients, every loss is finite and
 * every gradient entry is finite with |g| <= MAX_ABS_GRAD. Every method calls this
 * first, so no method ever combines NaN, Infinity or exploded values.
 */
export function checkInput(method: string, numTasks: number, input: BalanceInput): void {
  if (input.grads.length !== numTasks) {
    throw new Error(`${method}: built for ${numTasks} tasks but got ${input.grads.length} gradients`);
  }
  for (let t = 0; t < input.losses.length; t++) {
    const l = input.losses[t]!;
    if (!Number.isFinite(l)) throw new NonFiniteInputError(`${method}: loss of task ${t} is not finite (${l})`, t, "loss", -1, l);
  }
  // Fast path: the Gramian's diagonal bounds every entry (G_tt = sum_i g_i^2 <= MAX^2 implies
  // |g_i| <= MAX, and a NaN or infinite entry makes G_tt NaN or infinite). It is computed here
  // once and handed to the method through input.gram (gramOf), so the check costs no extra pass.
  // A caller-supplied Gramian is not trusted for this: the entries are scanned below.
  if (input.gram === undefined && numTasks > 0) {
    const G = gramian(input.grads);
    let ok = true;
    for (let t = 0; t < numTasks && ok; t++) ok = G[t * numTasks + t]! <= MAX_ABS_GRAD * MAX_ABS_GRAD;
    if (ok) {
      input.gram = G;
      return;
    }
  }
  for (let t = 0; t < numTasks; t++) {
    const g = input.grads[t]!;
    for (let i = 0; i < g.length; i++) {
      // one comparison per entry: false for NaN, ±Infinity and |x| > MAX_ABS_GRAD
      if (!(Math.abs(g[i]!) <= MAX_ABS_GRAD)) {
        const x = g[i]!;
        const kind = Number.isFinite(x) ? `exploding (|g| > ${MAX_ABS_GRAD.toExponential()})` : "not finite";
        const shown = Number.isFinite(x) ? x.toExponential(3) : String(x);
        throw new NonFiniteInputError(`${method}: gradient of task ${t} is ${kind} at position ${i} (${shown})`, t, "gradient", i, x);
      }
    }
  }
}

/**
 * Merge user options over defaults, rejecting keys the method does not know
 * (a typo such as `tua` should fail loudly, not silently use the default).
 */
export function withDefaults<O extends object>(method: string, defaults: Readonly<O>, options?: Partial<NoInfer<O>>): O {
  const merged = { ...defaults } as O;
  if (options === undefined) return merged;
  const known = Object.keys(defaults);
  for (const [k, v] of Object.entries(options)) {
    if (!known.includes(k)) {
      const list = known.length > 0 ? known.join(", ") : "(none)";
      throw new Error(`${method}: unknown option "${k}"; valid options are ${list}${didYouMean(k, known)}`);
    }
    if (v !== undefined) (merged as Record<string, unknown>)[k] = v;
  }
  return merged;
}

/** For stateless methods: getState() returns null and setState accepts only null. */
export function expectNullState(method: string, state: unknown): void {
  if (state !== null && state !== undefined) {
    throw new Error(`${method}: this method is stateless; setState expects null, got ${JSON.stringify(state)}`);
  }
}

/**
 * Indices (ascending) of a maximal linearly independent subset of the vectors
 * whose m×m Gramian is A, by Cholesky with complete pivoting: repeatedly take the
 * vector with the largest residual squared norm (after removing its projection
 * on the span of those already taken) and stop when that residual is
 * ≤ relTol * max_k A_kk. relTol = 1e-8 means a vector whose sine of angle to the
 * span of the chosen ones is below ~1e-4 counts as dependent. Zero vectors are
 * never selected; an all-zero A gives an empty subset.
 */
export function independentSubset(A: Float64Array, m: number, relTol = 1e-8): Int32Array {
  const R = Float64Array.from(A);
  const taken = new Uint8Array(m);
  const chosen: number[] = [];
  let maxDiag = 0;
  for (let k = 0; k < m; k++) maxDiag = Math.max(maxDiag, A[k * m + k]!);
  if (!(maxDiag > 0)) return new Int32Array(0);
  const tol = relTol * maxDiag;
  for (let step = 0; step < m; step++) {
    let p = -1;
    let best = tol;
    for (let k = 0; k < m; k++) {
      if (taken[k] === 0 && R[k * m + k]! > best) {
        best = R[k * m + k]!;
        p = k;
      }
    }
    if (p < 0) break;
    taken[p] = 1;
    chosen.push(p);
    const rpp = R[p * m + p]!;
    // Schur complement: R_qr -= R_qp R_pr / R_pp over the untaken block.
    for (let q = 0; q < m; q++) {
      if (taken[q] !== 0) continue;
      const f = R[q * m + p]! / rpp;
      if (f === 0) continue;
      for (let r = 0; r < m; r++) {
        if (taken[r] !== 0) continue;
        R[q * m + r]! -= f * R[p * m + r]!;
      }
    }
  }
  chosen.sort((a, b) => a - b);
  return Int32Array.from(chosen);
}
