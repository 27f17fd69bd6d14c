/**
 * CAGrad — Conflict-Averse Gradient descent.
 * Paper: B. Liu, X. Liu, X. Jin, P. Stone, Q. Liu, "Conflict-Averse Gradient Descent
 * for Multi-task Learning", NeurIPS 2021. Reference: LibMTL CAGrad (from the
 * official code), which solves the dual with scipy SLSQP.
 *
 * Update rule, entirely in the T×T Gramian G (G_ij = <g_i, g_j>):
 *   g0 = mean_i g_i,   ‖g0‖² = mean(G),   c_φ = c·‖g0‖  (so φ = c²‖g0‖²),
 *   w* = argmin_{w ∈ simplex}  F(w) = wᵀ G 1/T + c_φ · sqrt(wᵀ G w + ε),
 *   g_w = Σ w*_i g_i,   d = g0 + (c_φ / (‖g_w‖ + ε')) g_w,
 *   rescale 0: d;  1: d / (1 + c²);  2: d / (1 + c)        (as the reference).
 * So coeffs_i = (1/T + λ w*_i) / rescaleFactor with λ = c_φ/(‖g_w‖ + ε').
 *
 * Hyperparameters (defaults): c = 0.5 (LibMTL's `calpha`), rescale = 1.
 *
 * Solver (differs from the reference's SLSQP with default settings): projected
 * gradient descent on the simplex (Euclidean projection, Duchi et al. 2008) with
 * Armijo backtracking and step growth, started from the best of the uniform point
 * and the T vertices, up to `iters` = 2000 iterations or until the iterate moves
 * less than 1e-13. F is convex, so this converges to the global minimum; the
 * returned w is never worse than the uniform point or any vertex.
 * Scale: the problem is solved on G / s with s = mean of diag(G) (F scales by s,
 * so w* is unchanged); the reference's absolute ε = 1e-8 terms (inside the square
 * root, in ‖g0‖ and in the denominator of λ) are applied in these normalised
 * units, which makes the method invariant to the overall gradient scale.
 * All-zero gradients give coeffs = 1/T/rescaleFactor and a zero direction.
 * Stateless.
 */
import type { BalanceInput, BalancingMethod, JsonValue, GramMethodEntry } from "./types.ts";
import { checkInput, checkRange, checkTasks, expectNullState, finish, gramOf, withDefaults } from "./common.ts";
import { projectSimplex } from "./linalg.ts";
import { gramForm } from "./gram.ts";

export interface CAGradOptions {
  /** c (LibMTL `calpha`): radius of the conflict-averse ball relative to ‖g0‖. */
  c: number;
  /** 0: no rescale; 1: divide by 1 + c² (reference default); 2: divide by 1 + c. */
  rescale: 0 | 1 | 2;
  /** Maximum projected-gradient iterations of the inner simplex solver. */
  iters: number;
}

const EPS = 1e-8;

/** F(w) = wᵀA·1/T + cphi·sqrt(wᵀAw + 1e-8) for a (normalised) Gramian A. */
export function cagradObjective(A: Float64Array, T: number, cphi: number, w: ArrayLike<number>): number {
  let lin = 0;
  let quad = 0;
  for (let i = 0; i < T; i++) {
    let rowMean = 0;
    let Aw = 0;
    for (let j = 0; j < T; j++) {
      rowMean += A[i * T + j]! / T;
      Aw += A[i * T + j]! * w[j]!;
    }
    lin += w[i]! * rowMean;
    quad += w[i]! * Aw;
  }
  return lin + cphi * Math.sqrt(Math.max(quad, 0) + EPS);
}

function objectiveGrad(A: Float64Array, T: number, cphi: number, w: Float64Array, out: Float64Array): void {
  let quad = 0;
  const Aw = new Float64Array(T);
  for (let i = 0; i < T; i++) {
    let s = 0;
    for (let j = 0; j < T; j++) s += A[i * T + j]! * w[j]!;
    Aw[i] = s;
    quad += w[i]! * s;
  }
  const k = cphi / Math.sqrt(Math.max(quad, 0) + EPS);
  for (let i = 0; i < T; i++) {
    let rowMean = 0;
    for (let j = 0; j < T; j++) rowMean += A[j * T + i]! / T;
    out[i] = rowMean + k * Aw[i]!;
  }
}

/** argmin over the simplex of cagradObjective(A, T, cphi, ·), by projected gradient descent with backtracking. */
export function cagradSolve(A: Float64Array, T: number, cphi: number, iters = 2000): Float64Array {
  let w: Float64Array = new Float64Array(T).fill(1 / T);
  let fw = cagradObjective(A, T, cphi, w);
  for (let v = 0; v < T; v++) {
    const e = new Float64Array(T);
    e[v] = 1;
    const fe = cagradObjective(A, T, cphi, e);
    if (fe < fw) {
      w = e;
      fw = fe;
    }
  }
  const g = new Float64Array(T);
  const trial = new Float64Array(T);
  let step = 1;
  for (let it = 0; it < iters; it++) {
    objectiveGrad(A, T, cphi, w, g);
    let accepted = false;
    let moved = 0;
    for (let bt = 0; bt < 60; bt++) {
      for (let i = 0; i < T; i++) trial[i] = w[i]! - step * g[i]!;
      const p = projectSimplex(trial);
      let dist2 = 0;
      let lin = 0;
      for (let i = 0; i < T; i++) {
        const dlt = p[i]! - w[i]!;
        dist2 += dlt * dlt;
        lin += g[i]! * dlt;
      }
      const fp = cagradObjective(A, T, cphi, p);
      if (fp <= fw + lin + dist2 / (2 * step) + 1e-15 * Math.abs(fw)) {
        if (fp <= fw) {
          moved = Math.sqrt(dist2);
          w = p;
          fw = fp;
        }
        accepted = true;
        break;
      }
      step *= 0.5;
    }
    if (!accepted || moved < 1e-13) break;
    step *= 2;
  }
  return w;
}

/** CAGrad coefficients over the raw gradients from their Gramian. */
export function cagradCoeffs(G: Float64Array, T: number, c: number, rescale: 0 | 1 | 2, iters = 2000): { coeffs: Float64Array; w: Float64Array } {
  const factor = rescale === 0 ? 1 : rescale === 1 ? 1 + c * c : 1 + c;
  let s = 0;
  for (let i = 0; i < T; i++) s += G[i * T + i]! / T;
  const coeffs = new Float64Array(T);
  if (!(s > 0) || !Number.isFinite(s)) {
    coeffs.fill(1 / T / factor);
    return { coeffs, w: new Float64Array(T).fill(1 / T) };
  }
  const A = new Float64Array(T * T);
  let mean = 0;
  for (let k = 0; k < T * T; k++) {
    A[k] = G[k]! / s;
    mean += A[k]! / (T * T);
  }
  const cphi = c * Math.sqrt(Math.max(mean, 0) + EPS) + EPS;
  const w = cagradSolve(A, T, cphi, iters);
  let quad = 0;
  for (let i = 0; i < T; i++) for (let j = 0; j < T; j++) quad += w[i]! * A[i * T + j]! * w[j]!;
  const lambda = cphi / (Math.sqrt(Math.max(quad, 0)) + EPS);
  for (let i = 0; i < T; i++) coeffs[i] = (1 / T + lambda * w[i]!) / factor;
  return { coeffs, w };
}

export const cagrad: GramMethodEntry<CAGradOptions> = {
  name: "cagrad",
  label: "CAGrad",
  kind: "gradient",
  summary: "Conflict-Averse Gradient descent (Liu et al., NeurIPS 2021): best worst-case improvement within a ball around the mean gradient",
  defaults: { c: 0.5, rescale: 1, iters: 2000 },
  properties: ["permutation-equivariant", "linear-combination", "deterministic"],
  weightsFromGram: gramForm(() => cagrad),
  create(numTasks: number, options?: Partial<CAGradOptions>): BalancingMethod {
    checkTasks("cagrad", numTasks);
    const o = withDefaults("cagrad", cagrad.defaults, options);
    const c = checkRange("cagrad", "c", o.c, 0, Infinity);
    if (o.rescale !== 0 && o.rescale !== 1 && o.rescale !== 2) {
      throw new Error(`cagrad: option rescale must be 0 (none), 1 (divide by 1+c^2) or 2 (divide by 1+c), got ${String(o.rescale)}`);
    }
    const rescale = o.rescale;
    const iters = checkRange("cagrad", "iters", o.iters, 1, 1e6);
    if (!Number.isInteger(iters)) throw new Error(`cagrad: option iters must be an integer >= 1, got ${iters}`);
    return {
      name: "cagrad",
      kind: "gradient",
      numTasks,
      combine(input: BalanceInput) {
        checkInput("cagrad", numTasks, input);
        const G = gramOf(input);
        return finish(input.grads, G, cagradCoeffs(G, numTasks, c, rescale, iters).coeffs);
      },
      getState() {
        return null;
      },
      setState(state: JsonValue) {
        expectNullState("cagrad", state);
      },
    };
  },
};
