/**
 * MetaBalance — adapting the gradient magnitudes of auxiliary tasks.
 * Paper: Y. He, X. Feng, C. Cheng, G. Ji, Y. Guo, J. Caverlee, "MetaBalance: Improving
 * Multi-Task Recommendations via Adapting Gradient Magnitudes of Auxiliary Tasks",
 * WWW 2022 (arXiv:2203.06801). Reference read: torch-rechub's MetaBalance optimizer.
 *
 * One task is the target (option `target`), the others are auxiliary. Update rule (the
 * paper's Algorithm 2), applied to each shared parameter tensor separately (the paper's
 * "each part of the shared parameters"), at every call:
 *   m_tar ← β m_tar + (1 − β) ‖g_tar‖,  m_i ← β m_i + (1 − β) ‖g_i‖  (moving averages of
 *     the tensor's gradient norms, 0 at the start);
 *   for each auxiliary task i, if the strategy applies:
 *     g_i ← r · g_i · m_tar / m_i + (1 − r) · g_i     (relax factor r);
 *   direction = g_tar + Σ_i g_i   (per tensor).
 * Strategies (the paper's A/B/C): "reduce" (A: only when m_i > m_tar), "enlarge"
 * (B: only when m_i < m_tar), "both" (C, the paper's choice: always).
 *
 * Hyperparameters (defaults, the paper's): relax r = 0.7 (best in its Figure 3), beta
 * β = 0.9, strategy = "both", target = 0 (the first task). `target` is a task index
 * (0-based, in the order of the run's tasks): the balancing method is created from the
 * number of tasks only, it is never told their names.
 *
 * Tensors: the trainer passes the flat vector's layout in `input.segments` (one segment
 * per shared dense parameter, then one per embedding table: the rows of this batch's
 * ids, whose norm is the table's gradient norm since the other rows get no gradient).
 * The moving averages are kept per (task, tensor); the number of tensors must stay the
 * same from step to step. Without `segments` (a direct caller) the whole vector is one
 * tensor: then direction = Σ_i w_i g_i with w_tar = 1 and w_i the factor above, computed
 * from the Gramian's diagonal. With several tensors the direction is not one
 * combination of the whole g_i's; `coeffs_i` then reports, for diagnostics,
 * ‖Σ_k w_ik g_ik‖ / ‖g_i‖ (task i's effective overall scale). Hence no
 * `weightsFromGram` and no declared "linear-combination": in training the step is a
 * function of the per-tensor norms, not of the whole-vector Gramian (a Gramian form
 * would give coefficients that training does not use).
 * Towers get their own unscaled gradient (taskScale = 1): the rule touches shared
 * parameters only.
 *
 * Differences from the reference code (torch-rechub): the target task's gradient is
 * used as is (torch-rechub also passes it through the rule, multiplying it by
 * m_tar/(m_tar + 1e-5)·r + 1 − r, slightly below 1); the ratio m_tar/m_i is used
 * without torch-rechub's +1e-5 in the denominator, and a tensor where m_i = 0 (task i
 * has had no gradient there) or m_tar = 0 (the target has never had a gradient there:
 * not a tensor it shares, e.g. another task's tower under `--grad-scope all`) is left
 * unscaled; torch-rechub's `break` on a parameter without gradient (which skips the
 * remaining tensors) is not reproduced; the strategies A/B of the paper are offered
 * (torch-rechub has C only).
 */
import type { BalanceInput, BalancingMethod, JsonValue, MethodEntry } from "./types.ts";
import { checkInput, checkRange, checkTasks, finish, gramOf, withDefaults } from "./common.ts";
import { diagnosticsFromGram } from "./linalg.ts";
import { numArray, stateObject } from "./methodkit.ts";

export type MetaBalanceStrategy = "both" | "reduce" | "enlarge";

export interface MetaBalanceOptions {
  /** Relax factor r in [0, 1]: 0 keeps the auxiliary magnitudes, 1 sets them to the target's. */
  relax: number;
  /** Moving-average factor β of the gradient norms, in [0, 1). */
  beta: number;
  /** Index (0-based) of the target task; the others are auxiliary. */
  target: number;
  /** Which auxiliary gradients are rescaled: "both" (paper's C), "reduce" (A: larger ones), "enlarge" (B: smaller ones). */
  strategy: MetaBalanceStrategy;
}

export const METABALANCE_DEFAULTS: Readonly<MetaBalanceOptions> = Object.freeze({ relax: 0.7, beta: 0.9, target: 0, strategy: "both" });

const STRATEGIES: readonly MetaBalanceStrategy[] = ["both", "reduce", "enlarge"];

/** The factor applied to an auxiliary gradient with moving norm `mi` against the target's `mt`. */
export function metabalanceFactor(mt: number, mi: number, relax: number, strategy: MetaBalanceStrategy): number {
  if (!(mt > 0) || !(mi > 0)) return 1;
  if (strategy === "reduce" && !(mi > mt)) return 1;
  if (strategy === "enlarge" && !(mi < mt)) return 1;
  return (relax * mt) / mi + (1 - relax);
}

/** Checks a segments array against the vector length d; returns the number of segments. */
function checkSegments(seg: Int32Array, d: number): number {
  const n = seg.length - 1;
  if (n < 0 || seg[0] !== 0 || seg[n] !== d) throw new Error(`metabalance: input.segments must start at 0 and end at the gradient length ${d} (got ${seg.length} offsets, first ${seg[0]}, last ${seg[n]})`);
  for (let k = 0; k < n; k++) if (seg[k + 1]! < seg[k]!) throw new Error(`metabalance: input.segments must be non-decreasing (offset ${k + 1} is ${seg[k + 1]} < ${seg[k]})`);
  return n;
}

export const metabalance: MethodEntry<MetaBalanceOptions> = {
  name: "metabalance",
  label: "MetaBalance",
  kind: "gradient",
  summary: "MetaBalance (He et al., WWW 2022): auxiliary gradients rescaled per tensor toward the target task's moving gradient norm",
  defaults: METABALANCE_DEFAULTS,
  properties: ["scale-equivariant", "deterministic"],
  create(numTasks: number, options?: Partial<MetaBalanceOptions>): BalancingMethod {
    checkTasks("metabalance", numTasks);
    const o = withDefaults("metabalance", METABALANCE_DEFAULTS, options);
    const relax = checkRange("metabalance", "relax", o.relax, 0, 1);
    const beta = checkRange("metabalance", "beta", o.beta, 0, 1);
    if (beta === 1) throw new Error("metabalance: option beta must be < 1 (the moving averages would stay 0); the paper uses 0.9");
    if (!STRATEGIES.includes(o.strategy)) throw new Error(`metabalance: option strategy must be one of ${STRATEGIES.join(", ")}, got ${JSON.stringify(o.strategy)}`);
    const strategy = o.strategy;
    const target = o.target;
    if (typeof target !== "number" || !Number.isInteger(target) || target < 0 || target >= numTasks) {
      throw new Error(`metabalance: option target must be a task index from 0 to ${numTasks - 1} (the order of the run's tasks), got ${String(target)}`);
    }
    const T = numTasks;
    /** Moving norms, T rows of nseg (row-major); null until the first call fixes nseg. */
    let m: Float64Array | null = null;
    let nseg = 0;
    let n = new Float64Array(0);
    let w = new Float64Array(0);
    return {
      name: "metabalance",
      kind: "gradient",
      numTasks,
      combine(input: BalanceInput) {
        checkInput("metabalance", T, input);
        const G = gramOf(input);
        const d = input.grads[0]!.length;
        const seg = input.segments;
        const ns = seg === undefined ? 1 : checkSegments(seg, d);
        if (m === null) {
          m = new Float64Array(T * ns);
          nseg = ns;
        }
        if (ns !== nseg) throw new Error(`metabalance: ${ns} parameter tensors this step, ${nseg} before (the layout of the shared parameters changed?)`);
        if (n.length !== T * ns) {
          n = new Float64Array(T * ns);
          w = new Float64Array(T * ns);
        }
        // per (task, tensor) norms: from the Gramian when the whole vector is one tensor
        for (let i = 0; i < T; i++) {
          if (seg === undefined) n[i] = Math.sqrt(Math.max(0, G[i * T + i]!));
          else {
            const g = input.grads[i]!;
            for (let k = 0; k < ns; k++) {
              let sq = 0;
              for (let p = seg[k]!; p < seg[k + 1]!; p++) sq += g[p]! * g[p]!;
              n[i * ns + k] = Math.sqrt(sq);
            }
          }
        }
        for (let q = 0; q < T * ns; q++) m[q] = beta * m[q]! + (1 - beta) * n[q]!;
        for (let i = 0; i < T; i++) {
          for (let k = 0; k < ns; k++) w[i * ns + k] = i === target ? 1 : metabalanceFactor(m[target * ns + k]!, m[i * ns + k]!, relax, strategy);
        }
        if (seg === undefined) return finish(input.grads, G, Float64Array.from(w));
        const direction = new Float32Array(d);
        const coeffs = new Float64Array(T);
        for (let i = 0; i < T; i++) {
          const g = input.grads[i]!;
          let num = 0;
          let den = 0;
          for (let k = 0; k < ns; k++) {
            const c = w[i * ns + k]!;
            const nk = n[i * ns + k]!;
            num += c * c * nk * nk;
            den += nk * nk;
            if (nk === 0) continue;
            for (let p = seg[k]!; p < seg[k + 1]!; p++) direction[p] = direction[p]! + c * g[p]!;
          }
          coeffs[i] = den > 0 ? Math.sqrt(num / den) : 1;
        }
        for (let p = 0; p < d; p++) {
          if (!Number.isFinite(direction[p]!)) throw new Error(`metabalance: non-finite direction at index ${p}`);
        }
        return { direction, coeffs, taskScale: new Float64Array(T).fill(1), diagnostics: diagnosticsFromGram(G, T) };
      },
      getState(): JsonValue {
        return { tensors: m === null ? null : nseg, norms: m === null ? null : Array.from(m) };
      },
      setState(state: JsonValue) {
        const j = stateObject(state, "metabalance");
        if (j.tensors === null || j.tensors === undefined) {
          m = null;
          nseg = 0;
          return;
        }
        if (typeof j.tensors !== "number" || !Number.isInteger(j.tensors) || j.tensors < 0) throw new Error("metabalance: setState: tensors must be null or an integer >= 0");
        const v = numArray(j.norms, T * j.tensors, `metabalance: setState: norms (${T} tasks x ${j.tensors} tensors)`);
        if (v.some((x) => x < 0)) throw new Error("metabalance: setState: norms must be >= 0");
        m = v;
        nseg = j.tensors;
      },
    };
  },
};
