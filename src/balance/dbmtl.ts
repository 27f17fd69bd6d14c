/**
 * DB-MTL — Dual-Balancing Multi-Task Learning.
 * Paper: B. Lin, W. Jiang, F. Ye, Y. Zhang, P. Chen, Y.-C. Chen, S. Liu, J. T. Kwok,
 * "Dual-Balancing for Multi-Task Learning", arXiv:2308.12029 (2023). Reference:
 * LibMTL DB_MTL.
 *
 * Update rule, at the method's t-th call (t = 1, 2, …):
 *   loss-scale balancing: ∇ log(L_i + ε) = g_i / (L_i + ε), ε = 1e-8
 *     (a negative loss is treated as 0, so the divisor is always ≥ ε);
 *   EMA: ĝ_i ← β_t ĝ_i + (1 − β_t) g_i/(L_i + ε),  β_t = β / t^σ,  ĝ_i(0) = 0
 *     (the reference's `grad_buffer` update; with the default σ = 0 this is the
 *     paper's plain EMA ĝ ← β ĝ + (1 − β) ∇log L; σ > 0 decays β over steps);
 *   gradient-magnitude balancing: α_i = max_j ‖ĝ_j‖ / (‖ĝ_i‖ + 1e-8),
 *     direction = Σ_i α_i ĝ_i   (every task at the largest EMA norm).
 *
 * Hyperparameters (defaults, LibMTL's command-line defaults): beta = 0.9 (DB_beta),
 * betaSigma = 0 (DB_beta_sigma). Note the first steps are biased towards 0 (no
 * bias correction, as the reference); this does not change α_i·ĝ_i's direction
 * and the common scale only matters through the optimiser's learning rate.
 *
 * Memory/compute: the EMA vectors are not a combination of this step's
 * gradients, so the direction is built directly over d (not via the Gramian)
 * and the method keeps T float32 vectors of length d (4·T·d bytes). `coeffs`
 * reports, for diagnostics only, the effective coefficients of the current
 * gradients, α_i (1 − β_t)/(L_i + ε); direction ≠ Σ coeffs_i g_i once history
 * exists. Towers get unscaled task gradients (taskScale = 1; the reference
 * back-propagates the log losses, which would scale them by 1/L_i).
 * Embedding rows: the flat vector's layout is only stable over its first
 * `input.stableDim` entries (the shared dense parameters); the rows of the
 * batch's ids that follow change every step, so an EMA over them would mix
 * different rows. The EMA covers the stable prefix only; the row part uses the
 * step's own log-gradient g_i/(L_i+ε) (the EMA's steady-state scale), and the
 * norms for α include both parts. Without stableDim the whole vector is averaged.
 * State: t and the EMA vectors (as plain number arrays; large for big d).
 */
import type { BalanceInput, BalanceOutput, BalancingMethod, JsonValue, MethodEntry } from "./types.ts";
import { checkInput, checkRange, checkTasks, gramOf, withDefaults } from "./common.ts";
import { diagnosticsFromGram, dot } from "./linalg.ts";
import { stateObject } from "./methodkit.ts";

export interface DBMTLOptions {
  /** EMA factor β (LibMTL DB_beta). */
  beta: number;
  /** Decay exponent σ of β_t = β / t^σ (LibMTL DB_beta_sigma). */
  betaSigma: number;
}

const EPS = 1e-8;

export const dbmtl: MethodEntry<DBMTLOptions> = {
  name: "dbmtl",
  label: "DB-MTL",
  kind: "gradient",
  summary: "Dual-Balancing MTL (Lin et al., 2023): log-loss gradients, EMA, every task scaled to the largest gradient norm",
  defaults: { beta: 0.9, betaSigma: 0 },
  properties: ["permutation-equivariant", "scale-equivariant", "deterministic"],
  create(numTasks: number, options?: Partial<DBMTLOptions>): BalancingMethod {
    checkTasks("dbmtl", numTasks);
    const o = withDefaults("dbmtl", dbmtl.defaults, options);
    const beta = checkRange("dbmtl", "beta", o.beta, 0, 1);
    const betaSigma = checkRange("dbmtl", "betaSigma", o.betaSigma, 0, Infinity);
    const T = numTasks;
    let t = 0;
    let buf: Float32Array[] | null = null;
    return {
      name: "dbmtl",
      kind: "gradient",
      numTasks,
      combine(input: BalanceInput): BalanceOutput {
        checkInput("dbmtl", T, input);
        if (input.losses.length !== T) throw new Error(`dbmtl: expected ${T} losses, got ${input.losses.length}`);
        for (let i = 0; i < T; i++) {
          if (!Number.isFinite(input.losses[i]!)) throw new Error(`dbmtl: loss of task ${i} is not finite (${input.losses[i]})`);
        }
        const d = input.grads[0]!.length;
        // EMA only over the prefix whose layout is the same every step (shared dense
        // parameters); the rest (this batch's embedding rows) uses the step's own log-gradient.
        const s = Math.min(d, input.stableDim ?? d);
        if (buf === null) buf = Array.from({ length: T }, () => new Float32Array(s));
        if (buf[0]!.length !== s) throw new Error(`dbmtl: the stable gradient length ${s} differs from the EMA state's ${buf[0]!.length}`);
        const G = gramOf(input);
        t += 1;
        const bt = beta / t ** betaSigma;
        const scale = new Float64Array(T);
        const norms = new Float64Array(T);
        let maxn = 0;
        for (let i = 0; i < T; i++) {
          scale[i] = 1 / (Math.max(input.losses[i]!, 0) + EPS);
          const b = buf[i]!;
          const g = input.grads[i]!;
          const k = (1 - bt) * scale[i]!;
          for (let p = 0; p < s; p++) b[p] = bt * b[p]! + k * g[p]!;
          let sq = dot(b, b);
          if (s < d) {
            const tail = g.subarray(s);
            sq += scale[i]! * scale[i]! * dot(tail, tail);
          }
          norms[i] = Math.sqrt(sq);
          maxn = Math.max(maxn, norms[i]!);
        }
        const alpha = new Float64Array(T);
        for (let i = 0; i < T; i++) alpha[i] = maxn / (norms[i]! + EPS);
        const direction = new Float32Array(d);
        for (let i = 0; i < T; i++) {
          const a = alpha[i]!;
          if (a === 0) continue;
          const b = buf[i]!;
          for (let p = 0; p < s; p++) direction[p] = direction[p]! + a * b[p]!;
          const g = input.grads[i]!;
          const c = a * scale[i]!;
          for (let p = s; p < d; p++) direction[p] = direction[p]! + c * g[p]!;
        }
        const coeffs = new Float64Array(T);
        for (let i = 0; i < T; i++) coeffs[i] = alpha[i]! * (1 - bt) * scale[i]!;
        for (let p = 0; p < d; p++) {
          if (!Number.isFinite(direction[p]!)) throw new Error(`dbmtl: non-finite direction at index ${p} (gradients too large for float32 after 1/L scaling?)`);
        }
        return { direction, coeffs, taskScale: new Float64Array(T).fill(1), diagnostics: diagnosticsFromGram(G, T) };
      },
      getState(): JsonValue {
        return { t, ema: buf === null ? null : buf.map((b) => Array.from(b)) };
      },
      setState(state: JsonValue) {
        const j = stateObject(state, "dbmtl");
        if (typeof j.t !== "number" || !Number.isInteger(j.t) || j.t < 0) throw new Error("dbmtl: setState: t must be an integer >= 0");
        if (j.ema === null || j.ema === undefined) {
          t = j.t;
          buf = null;
          return;
        }
        if (!Array.isArray(j.ema) || j.ema.length !== T) throw new Error(`dbmtl: setState: ema must be an array of ${T} vectors`);
        const rows = j.ema.map((r, i) => {
          if (!Array.isArray(r)) throw new Error(`dbmtl: setState: ema[${i}] must be an array of numbers`);
          const v = new Float32Array(r.length);
          for (let p = 0; p < r.length; p++) {
            const x = r[p];
            if (typeof x !== "number" || !Number.isFinite(x)) throw new Error(`dbmtl: setState: ema[${i}][${p}] must be a finite number`);
            v[p] = x;
          }
          return v;
        });
        if (rows.some((r) => r.length !== rows[0]!.length)) throw new Error("dbmtl: setState: ema vectors must all have the same length");
        t = j.t;
        buf = rows;
      },
    };
  },
};
