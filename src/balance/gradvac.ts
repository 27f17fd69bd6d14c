/**
 * GradVac — Wang et al., "Gradient Vaccine: Investigating and Improving
 * Multi-task Optimization in Massively Multilingual Models", ICLR 2021.
 *
 * State: an EMA target φ̂_ij for every ordered pair (i ≠ j), initialised to 0.
 * Update rule: for each task i, g_i^PC = g_i; for j ≠ i in a random order (a
 * fresh permutation per i from input.rng, as in PCGrad), with
 * φ_ij = cos(g_i^PC, g_j):
 *   if φ_ij < φ̂_ij:
 *     g_i^PC ← g_i^PC + ‖g_i^PC‖ (φ̂_ij √(1−φ_ij²) − φ_ij √(1−φ̂_ij²)) / (‖g_j‖ √(1−φ̂_ij²)) · g_j
 *   φ̂_ij ← (1−β) φ̂_ij + β φ_ij          (always, with the pre-adjustment φ_ij)
 * direction = Σ_i g_i^PC (sum, as in LibMTL).
 * Hyperparameters: beta (β) = 0.01 in (0, 1].
 *
 * Differences from the reference (LibMTL GradVac): the whole shared parameter
 * vector is one group (LibMTL's group_type 0; no per-layer groups). If g_i^PC
 * or g_j is zero the cosine is undefined: no adjustment and no EMA update for
 * that pair. The cosine is clamped to [−1, 1] against rounding, and
 * 1 − φ̂² is floored at 1e-12 so a target EMA'd to ±1 cannot divide by zero.
 * Computed on the Gramian with g_i^PC tracked as coefficients over the raw g's.
 * RNG use: identical to PCGrad's (T permutations of T−1 per step).
 */
import type { BalanceInput, BalancingMethod, JsonValue, GramMethodEntry } from "./types.ts";
import { checkInput, checkRange, checkTasks, finish, gramOf, withDefaults } from "./common.ts";
import { drawOrders, sumRows } from "./pcgrad.ts";
import { gramForm } from "./gram.ts";

export interface GradVacOptions {
  /** EMA rate β of the cosine targets, in (0, 1]. */
  beta: number;
}

export const GRADVAC_DEFAULTS: Readonly<GradVacOptions> = Object.freeze({ beta: 0.01 });

/**
 * One GradVac step on the Gramian G with given orders; updates the T×T EMA
 * matrix `phi` (row i, column j = φ̂_ij) in place and returns the T×T matrix
 * whose row i holds g_i^PC's coefficients over the raw g's.
 */
export function gradvacRows(G: Float64Array, T: number, phi: Float64Array, beta: number, orders: readonly Int32Array[]): Float64Array {
  const rows = new Float64Array(T * T);
  const u = new Float64Array(T); // u = G c, c = current row
  for (let i = 0; i < T; i++) {
    const off = i * T;
    rows[off + i] = 1;
    for (let k = 0; k < T; k++) u[k] = G[i * T + k]!;
    const order = orders[i]!;
    for (let a = 0; a < order.length; a++) {
      const j = order[a]!;
      const gjj = G[j * T + j]!;
      let cc = 0;
      for (let k = 0; k < T; k++) cc += rows[off + k]! * u[k]!;
      if (!(gjj > 0) || !(cc > 0)) continue;
      const ni = Math.sqrt(cc);
      const nj = Math.sqrt(gjj);
      const cos = Math.min(1, Math.max(-1, u[j]! / (ni * nj)));
      const target = phi[off + j]!;
      if (cos < target) {
        const sT = Math.sqrt(Math.max(1 - target * target, 1e-12));
        const w = (ni * (target * Math.sqrt(1 - cos * cos) - cos * sT)) / (nj * sT);
        rows[off + j]! += w;
        for (let k = 0; k < T; k++) u[k]! += w * G[j * T + k]!;
      }
      phi[off + j] = (1 - beta) * target + beta * cos;
    }
  }
  return rows;
}

export const gradvac: GramMethodEntry<GradVacOptions> = {
  name: "gradvac",
  label: "GradVac",
  kind: "gradient",
  summary: "GradVac: steer pairwise gradient cosines to EMA targets (Wang et al., ICLR 2021)",
  defaults: GRADVAC_DEFAULTS,
  properties: ["scale-equivariant", "linear-combination"],
  weightsFromGram: gramForm(() => gradvac),
  create(numTasks: number, options?: Partial<GradVacOptions>): BalancingMethod {
    checkTasks("gradvac", numTasks);
    const o = withDefaults("gradvac", GRADVAC_DEFAULTS, options);
    const beta = checkRange("gradvac", "beta", o.beta, 0, 1);
    if (beta === 0) throw new Error("gradvac: option beta must be > 0 (the EMA targets would never move); use e.g. 0.01");
    const T = numTasks;
    let phi = new Float64Array(T * T);
    return {
      name: "gradvac",
      kind: "gradient",
      numTasks,
      combine(input: BalanceInput) {
        checkInput("gradvac", T, input);
        const G = gramOf(input);
        const rows = gradvacRows(G, T, phi, beta, drawOrders(input.rng, T));
        return finish(input.grads, G, sumRows(rows, T));
      },
      getState(): JsonValue {
        return { phi: Array.from(phi) };
      },
      setState(state: JsonValue) {
        const arr = state !== null && typeof state === "object" && !Array.isArray(state) ? state.phi : undefined;
        if (!Array.isArray(arr) || arr.length !== T * T || !arr.every((v) => typeof v === "number" && Number.isFinite(v) && Math.abs(v) <= 1)) {
          throw new Error(`gradvac: setState expects { phi: number[${T * T}] } with entries in [-1, 1] (from getState of a ${T}-task GradVac)`);
        }
        phi = Float64Array.from(arr as number[]);
      },
    };
  },
};
