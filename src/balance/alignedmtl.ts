/**
 * Aligned-MTL — independent component alignment.
 * Paper: D. Senushkin, N. Patakin, A. Kuznetsov, A. Konushin, "Independent Component
 * Alignment for Multi-Task Learning", CVPR 2023. Reference: LibMTL Aligned_MTL
 * (from the official SamsungLabs/MTL code).
 *
 * Update rule (as LibMTL): M = G Gᵀ (the Gramian) = V Λ Vᵀ (symEig, descending);
 * keep the r eigenpairs with λ > tol, tol = λ_max · T · ε_f32 (ε_f32 = 2^-23, the
 * reference's torch.finfo() default float32 epsilon); then
 *     B = σ · V_r Λ_r^{-1/2} V_rᵀ   (T×T),   σ = sqrt(λ_min kept) for scale "min",
 *     α = column sums of B (= B·1, B is symmetric),   direction = Σ α_i g_i.
 * The rows of B·[g_1; …; g_T] are the aligned task gradients: their Gramian is
 * σ² V_r V_rᵀ, i.e. all non-zero singular values equal σ (condition number 1 on
 * the kept subspace), and the direction is their sum (task weights all 1, no 1/T,
 * as the reference).
 *
 * Hyperparameters (defaults): scale = "min" (LibMTL/paper default); "median"
 * (σ² = lower median of the kept λ, as torch.median) and "rmse" (σ² = mean of the
 * kept λ) follow the official code's other scale modes.
 * Degenerate input: all-zero gradients keep no eigenpair → α = 0 (zero direction).
 * Towers get unscaled task gradients (taskScale = 1). Stateless.
 */
import type { BalanceInput, BalancingMethod, JsonValue, GramMethodEntry } from "./types.ts";
import { checkInput, checkTasks, expectNullState, finish, gramOf, withDefaults } from "./common.ts";
import { symEig } from "./linalg.ts";
import { gramForm } from "./gram.ts";

export interface AlignedMTLOptions {
  /** Singular value the aligned gradients are scaled to. */
  scale: "min" | "median" | "rmse";
}

const F32_EPS = 2 ** -23;

/** The alignment matrix B (T×T row-major) and the kept rank. */
export function alignedBasis(G: Float64Array, T: number, scale: AlignedMTLOptions["scale"] = "min"): { B: Float64Array; rank: number } {
  const { values, vectors } = symEig(G, T);
  const lmax = values[0] ?? 0;
  const tol = lmax * T * F32_EPS;
  let rank = 0;
  while (rank < T && values[rank]! > tol && values[rank]! > 0) rank++;
  const B = new Float64Array(T * T);
  if (rank === 0) return { B, rank };
  let sigma2: number;
  if (scale === "min") sigma2 = values[rank - 1]!;
  else if (scale === "median") sigma2 = values[rank - 1 - Math.floor((rank - 1) / 2)]!;
  else {
    sigma2 = 0;
    for (let k = 0; k < rank; k++) sigma2 += values[k]! / rank;
  }
  const sigma = Math.sqrt(sigma2);
  for (let k = 0; k < rank; k++) {
    const f = sigma / Math.sqrt(values[k]!);
    for (let i = 0; i < T; i++) {
      const vik = vectors[i * T + k]! * f;
      for (let j = 0; j < T; j++) B[i * T + j] = B[i * T + j]! + vik * vectors[j * T + k]!;
    }
  }
  return { B, rank };
}

/** α = column sums of B. */
export function alignedCoeffs(G: Float64Array, T: number, scale: AlignedMTLOptions["scale"] = "min"): Float64Array {
  const { B } = alignedBasis(G, T, scale);
  const a = new Float64Array(T);
  for (let i = 0; i < T; i++) for (let j = 0; j < T; j++) a[j] = a[j]! + B[i * T + j]!;
  return a;
}

export const alignedmtl: GramMethodEntry<AlignedMTLOptions> = {
  name: "alignedmtl",
  label: "Aligned-MTL",
  kind: "gradient",
  summary: "Aligned-MTL (Senushkin et al., CVPR 2023): align task gradients to a condition-number-1 system",
  defaults: { scale: "min" },
  properties: ["permutation-equivariant", "scale-equivariant", "linear-combination", "deterministic"],
  weightsFromGram: gramForm(() => alignedmtl),
  create(numTasks: number, options?: Partial<AlignedMTLOptions>): BalancingMethod {
    checkTasks("alignedmtl", numTasks);
    const o = withDefaults("alignedmtl", alignedmtl.defaults, options);
    if (o.scale !== "min" && o.scale !== "median" && o.scale !== "rmse") {
      throw new Error(`alignedmtl: option scale must be "min", "median" or "rmse", got ${JSON.stringify(o.scale)}`);
    }
    const scale = o.scale;
    return {
      name: "alignedmtl",
      kind: "gradient",
      numTasks,
      combine(input: BalanceInput) {
        checkInput("alignedmtl", numTasks, input);
        const G = gramOf(input);
        return finish(input.grads, G, alignedCoeffs(G, numTasks, scale));
      },
      getState() {
        return null;
      },
      setState(state: JsonValue) {
        expectNullState("alignedmtl", state);
      },
    };
  },
};
