/**
 * PCGrad — Yu et al., "Gradient Surgery for Multi-Task Learning", NeurIPS 2020.
 *
 * Update rule: for each task i, start from g_i^PC = g_i and, for the other tasks
 * j in a random order (a fresh permutation per task i, drawn from input.rng), if
 * <g_i^PC, g_j> < 0 project g_i^PC onto the normal plane of the ORIGINAL g_j:
 *   g_i^PC ← g_i^PC − (<g_i^PC, g_j> / ‖g_j‖²) g_j.
 * direction = Σ_i g_i^PC (a sum, as in the reference code and LibMTL).
 * Hyperparameters: none.
 *
 * Implementation: every g_i^PC is tracked as a coefficient vector over the raw
 * g's, so all dot products come from the T×T Gramian and the only O(d) work is
 * the Gramian and one `combine`.
 * Differences from the reference: the order excludes i itself (LibMTL shuffles
 * all T tasks, including i); a zero g_j is never projected against (its dot
 * product is 0, so the reference would not either, but this avoids 0/0).
 * RNG use: exactly T calls of rng.permutation(T-1) per step, for i = 0..T-1,
 * whether or not any conflict exists, so the stream does not depend on the data.
 */
import type { BalanceInput, BalancingMethod, GramMethodEntry } from "./types.ts";
import type { Rng } from "../util/rng.ts";
import { checkInput, checkTasks, expectNullState, finish, gramOf, withDefaults } from "./common.ts";
import { gramForm } from "./gram.ts";

// eslint-disable-next-line @typescript-eslint/no-empty-object-type
export interface PCGradOptions {}

/** Orders for one step: orders[i] lists the tasks j ≠ i in the order task i is projected. */
export function drawOrders(rng: Rng, T: number): Int32Array[] {
  const orders: Int32Array[] = [];
  for (let i = 0; i < T; i++) {
    const p = rng.permutation(Math.max(0, T - 1));
    for (let a = 0; a < p.length; a++) if (p[a]! >= i) p[a]! += 1;
    orders.push(p);
  }
  return orders;
}

/**
 * PCGrad on a Gramian H of vectors h_1..h_T with given orders: returns the T×T
 * row-major matrix whose row i holds h_i^PC's coefficients over the h_k.
 */
export function pcgradRows(H: Float64Array, T: number, orders: readonly Int32Array[]): Float64Array {
  const rows = new Float64Array(T * T);
  for (let i = 0; i < T; i++) {
    const off = i * T;
    rows[off + i] = 1;
    const order = orders[i]!;
    for (let a = 0; a < order.length; a++) {
      const j = order[a]!;
      const hjj = H[j * T + j]!;
      if (!(hjj > 0)) continue;
      let dotij = 0;
      for (let k = 0; k < T; k++) dotij += rows[off + k]! * H[k * T + j]!;
      if (dotij < 0) rows[off + j]! -= dotij / hjj;
    }
  }
  return rows;
}

/** Column sums of a T×T row-major matrix, times `scale`. */
export function sumRows(rows: Float64Array, T: number, scale = 1): Float64Array {
  const c = new Float64Array(T);
  for (let i = 0; i < T; i++) for (let k = 0; k < T; k++) c[k]! += rows[i * T + k]! * scale;
  return c;
}

export const PCGRAD_DEFAULTS: Readonly<PCGradOptions> = Object.freeze({});

export const pcgrad: GramMethodEntry<PCGradOptions> = {
  name: "pcgrad",
  label: "PCGrad",
  kind: "gradient",
  summary: "PCGrad: project conflicting gradients onto each other's normal plane (Yu et al., NeurIPS 2020)",
  defaults: PCGRAD_DEFAULTS,
  properties: ["non-conflicting-two-tasks", "scale-equivariant", "linear-combination"],
  weightsFromGram: gramForm(() => pcgrad),
  create(numTasks: number, options?: Partial<PCGradOptions>): BalancingMethod {
    checkTasks("pcgrad", numTasks);
    withDefaults("pcgrad", PCGRAD_DEFAULTS, options);
    return {
      name: "pcgrad",
      kind: "gradient",
      numTasks,
      combine(input: BalanceInput) {
        checkInput("pcgrad", numTasks, input);
        const G = gramOf(input);
        const rows = pcgradRows(G, numTasks, drawOrders(input.rng, numTasks));
        return finish(input.grads, G, sumRows(rows, numTasks));
      },
      getState: () => null,
      setState: (s) => expectNullState("pcgrad", s),
    };
  },
};
