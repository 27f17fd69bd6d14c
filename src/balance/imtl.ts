/**
 * IMTL — Impartial Multi-Task Learning, gradient part (IMTL-G).
 * Paper: L. Liu, Y. Li, Z. Kuang, J.-H. Xue, Y. Chen, W. Yang, Q. Liao, W. Zhang,
 * "Towards Impartial Multi-task Learning", ICLR 2021. Reference: LibMTL IMTL.
 *
 * Update rule (closed form of IMTL-G): with u_i = g_i/‖g_i‖,
 *   D = [g_1 − g_2; …; g_1 − g_T],  U = [u_1 − u_2; …; u_1 − u_T]   ((T−1)×d),
 *   α_{2..T} = g_1 Uᵀ (D Uᵀ)⁻¹,   α_1 = 1 − Σ_{i≥2} α_i,   direction = Σ α_i g_i.
 * The result is the unique combination with Σ α = 1 whose projections onto every
 * unit task gradient are equal: <d, u_i> = <d, u_j>. Everything is formed from
 * the Gramian: (g_1 Uᵀ)_j = ‖g_1‖ − G_1j/‖g_j‖ and
 * (D Uᵀ)_jk = G_11/‖g_1‖ − G_1k/‖g_k‖ − G_j1/‖g_1‖ + G_jk/‖g_k‖. The non-symmetric
 * (T−1)×(T−1) system is solved by Gaussian elimination with partial pivoting.
 *
 * Guards (the reference inverts blindly and yields NaN/Inf):
 *  - zero-norm gradients (‖g_i‖ ≤ 1e-12·max_j ‖g_j‖) have no direction; they are
 *    left out of the system and get α_i = 0 (their gradient contributes nothing
 *    anyway); the first non-zero task plays the role of g_1;
 *  - one non-zero task: α = 1 for it; all zero: α = 1/T (zero direction);
 *  - singular D Uᵀ (a pivot ≤ 1e-10 × max |entry|, e.g. colinear same-direction
 *    gradients or more tasks than dimensions) or a non-finite solution: fall back
 *    to equal weights α_i = 1/T (the mean gradient, matching IMTL's Σ α = 1 scale).
 *
 * Out of scope: IMTL-L (learned loss scales exp(s_i)·L_i − s_i applied to the
 * task-specific parameters); only IMTL-G on the shared parameters is implemented,
 * so towers get the unscaled task gradients (taskScale = 1).
 * Hyperparameters: none. Stateless.
 */
import type { BalanceInput, BalancingMethod, JsonValue, GramMethodEntry } from "./types.ts";
import { checkInput, checkTasks, expectNullState, finish, gramOf, withDefaults } from "./common.ts";
import { normsFromGram } from "./linalg.ts";
import { gramForm } from "./gram.ts";

export type IMTLOptions = Record<string, never>;

/** Solve M x = b (n×n row-major, general) with partial pivoting; null if (near-)singular. */
export function solveGeneral(M: Float64Array, b: Float64Array, n: number, relTol = 1e-10): Float64Array | null {
  const a = Float64Array.from(M);
  const x = Float64Array.from(b);
  let scale = 0;
  for (let k = 0; k < n * n; k++) scale = Math.max(scale, Math.abs(a[k]!));
  if (!(scale > 0) || !Number.isFinite(scale)) return null;
  for (let col = 0; col < n; col++) {
    let piv = col;
    for (let r = col + 1; r < n; r++) if (Math.abs(a[r * n + col]!) > Math.abs(a[piv * n + col]!)) piv = r;
    if (!(Math.abs(a[piv * n + col]!) > relTol * scale)) return null;
    if (piv !== col) {
      for (let c = 0; c < n; c++) {
        const t = a[col * n + c]!;
        a[col * n + c] = a[piv * n + c]!;
        a[piv * n + c] = t;
      }
      const t = x[col]!;
      x[col] = x[piv]!;
      x[piv] = t;
    }
    const p = a[col * n + col]!;
    for (let r = col + 1; r < n; r++) {
      const f = a[r * n + col]! / p;
      if (f === 0) continue;
      for (let c = col; c < n; c++) a[r * n + c] = a[r * n + c]! - f * a[col * n + c]!;
      x[r] = x[r]! - f * x[col]!;
    }
  }
  for (let r = n - 1; r >= 0; r--) {
    let s = x[r]!;
    for (let c = r + 1; c < n; c++) s -= a[r * n + c]! * x[c]!;
    x[r] = s / a[r * n + r]!;
  }
  for (let r = 0; r < n; r++) if (!Number.isFinite(x[r]!)) return null;
  return x;
}

/** IMTL-G coefficients from a Gramian; `fallback` tells whether equal weights were used. */
export function imtlCoeffs(G: Float64Array, T: number): { coeffs: Float64Array; fallback: boolean } {
  const norms = normsFromGram(G, T);
  let maxn = 0;
  for (let i = 0; i < T; i++) maxn = Math.max(maxn, norms[i]!);
  const active: number[] = [];
  for (let i = 0; i < T; i++) if (maxn > 0 && norms[i]! > 1e-12 * maxn) active.push(i);
  const coeffs = new Float64Array(T);
  if (active.length === 0) return { coeffs: coeffs.fill(1 / T), fallback: false };
  if (active.length === 1) {
    coeffs[active[0]!] = 1;
    return { coeffs, fallback: false };
  }
  const f = active[0]!;
  const rest = active.slice(1);
  const n = rest.length;
  const nf = norms[f]!;
  const gf = (k: number): number => G[f * T + k]!;
  // Row vector a = g_f Uᵀ and M = D Uᵀ; we solve x M = a, i.e. Mᵀ x = a.
  const a = new Float64Array(n);
  const Mt = new Float64Array(n * n);
  for (let jj = 0; jj < n; jj++) {
    const j = rest[jj]!;
    a[jj] = nf - gf(j) / norms[j]!;
    for (let kk = 0; kk < n; kk++) {
      const k = rest[kk]!;
      const m = gf(f) / nf - gf(k) / norms[k]! - G[j * T + f]! / nf + G[j * T + k]! / norms[k]!;
      Mt[kk * n + jj] = m;
    }
  }
  const x = solveGeneral(Mt, a, n);
  if (x === null) return { coeffs: coeffs.fill(1 / T), fallback: true };
  let s = 0;
  for (let jj = 0; jj < n; jj++) {
    coeffs[rest[jj]!] = x[jj]!;
    s += x[jj]!;
  }
  coeffs[f] = 1 - s;
  return { coeffs, fallback: false };
}

export const imtl: GramMethodEntry<IMTLOptions> = {
  name: "imtl",
  label: "IMTL",
  kind: "gradient",
  summary: "Impartial Multi-Task Learning, IMTL-G (Liu et al., ICLR 2021): equal projection onto every unit task gradient",
  defaults: {},
  properties: ["permutation-equivariant", "non-conflicting", "scale-equivariant", "linear-combination", "deterministic"],
  weightsFromGram: gramForm(() => imtl),
  create(numTasks: number, options?: Partial<IMTLOptions>): BalancingMethod {
    checkTasks("imtl", numTasks);
    withDefaults("imtl", imtl.defaults, options);
    return {
      name: "imtl",
      kind: "gradient",
      numTasks,
      combine(input: BalanceInput) {
        checkInput("imtl", numTasks, input);
        const G = gramOf(input);
        return finish(input.grads, G, imtlCoeffs(G, numTasks).coeffs);
      },
      getState() {
        return null;
      },
      setState(state: JsonValue) {
        expectNullState("imtl", state);
      },
    };
  },
};
