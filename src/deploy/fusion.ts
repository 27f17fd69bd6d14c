/**
 * Score fusion: one ranking score from the per-task probabilities p_t of a row.
 *
 * Formulas (`--fusion <kind>[:<task>=<w>,...]`; weights w_t >= 0, at least one > 0; tasks not
 * listed get 0; without a list every task gets 1):
 * - `sum`:     s = Σ_t w_t p_t                      (weighted sum of probabilities)
 * - `product`: s = Σ_t w_t ln max(p_t, P_MIN)       (the log of the weighted product of powers
 *              Π_t p_t^{w_t}; tasks with w_t = 0 are left out)
 * The product is ranked, and written to the `score` column, as its logarithm: the same order as
 * Π_t p_t^{w_t}, but the product itself underflows to 0 for every row once the weights are large
 * (Π p^2000 < 1e-308) or overflows to 1 once they are tiny (p^1e-300 = 1), and every row would tie.
 * The log-score is finite and keeps the order for any weights. p = 0 (ln 0 = -∞) is clamped to
 * P_MIN = 2^-149, float32's smallest subnormal: model outputs are float32, so only p = 0 changes,
 * and it ranks like the smallest positive probability the model can output (never -∞ or NaN).
 * Both formulas rank rows the same under any positive scaling of the weights (the log-score is
 * multiplied by the factor), so searched weights are reported normalised to sum 1.
 *
 * Objectives for the weight search (`mtlcraft fuse --objective`):
 * - `gauc` (default): Σ_t a_t GAUC_t(s) / Σ_t a_t, the weighted mean over tasks of the per-group
 *   (per-user: the dataset's group column) AUC of the ranking by s against task t's label
 *   (impression-weighted GAUC, src/metrics/gauc.ts); `a_t` are the task weights of the objective
 *   (`--task-weights ev=1,like=2`, default 1 each); tasks without any group holding both classes
 *   are left out;
 * - `auc`: the same with the AUC over all rows;
 * - `target:<expr>`: the GAUC of s against a user-given target, a boolean SQL expression over the
 *   raw log's columns (a 0/1 column such as `is_click`, or e.g. `play_time_ms > 30000`), evaluated
 *   with the spec's expression sandbox on the split's raw rows.
 *
 * Search (`searchFusion`): on the validation split only. Candidates: equal weights, each single
 * task, then `samples` random points of the simplex (Dirichlet(1), seeded); the best few are
 * refined by coordinate moves (w_t x 0, 0.5, 2, and w_t + 0.1, renormalised) while they improve,
 * for `rounds` rounds. Ties keep the earlier candidate, so the search is deterministic.
 */
import { Rng } from "../util/rng.ts";
import { didYouMean } from "../util/suggest.ts";

export type FusionKind = "sum" | "product";
export const FUSION_KINDS: readonly FusionKind[] = ["sum", "product"];

export interface Fusion {
  kind: FusionKind;
  /** Weight per task, in the model's task order. */
  weights: number[];
}

/** The fusion formula in words, e.g. `0.5·p_ev + 0.5·p_like`, or `ln(p_ev^0.5 · p_like^0.5)` for a product (its log-score). */
export function describeFusion(f: Fusion, tasks: readonly string[]): string {
  const terms = f.weights.map((w, t) => ({ w, t })).filter((x) => x.w > 0);
  const r = (w: number): string => String(Number(w.toPrecision(4)));
  if (f.kind === "sum") return terms.map(({ w, t }) => `${r(w)}·p_${tasks[t]}`).join(" + ");
  return `ln(${terms.map(({ w, t }) => `p_${tasks[t]}^${r(w)}`).join(" · ")})`;
}

/**
 * Largest sum of fusion weights: below it neither Σ w_t p_t nor Σ w_t ln p_t (ln p >= ln 2^-149
 * ≈ -103.3) can overflow, so no two rows tie at ±∞. Only the weights' ratios matter for the
 * ranking, so larger weights are refused rather than rescaled silently.
 */
export const MAX_FUSION_WEIGHT_SUM = 1e300;

function checkWeights(w: readonly number[], where: string): void {
  if (w.some((x) => !(Number.isFinite(x) && x >= 0))) throw new Error(`${where}: fusion weights must be finite numbers >= 0, got ${w.join(", ")}`);
  if (!w.some((x) => x > 0)) throw new Error(`${where}: at least one fusion weight must be > 0`);
  if (w.reduce((a, b) => a + b, 0) > MAX_FUSION_WEIGHT_SUM) throw new Error(`${where}: the fusion weights add up to more than ${MAX_FUSION_WEIGHT_SUM}, where the scores overflow; only their ratios matter: scale them down`);
}

/** A weight as written on the command line: a plain decimal number (no hex, no sign, no Infinity). */
const DECIMAL = /^\s*(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?\s*$/;

/** Parses `sum`, `product`, `sum:ev=1,like=0.5` (tasks not listed get 0). */
export function parseFusion(text: string, tasks: readonly string[], where = "--fusion"): Fusion {
  const i = text.indexOf(":");
  const kind = (i < 0 ? text : text.slice(0, i)).trim();
  if (!(FUSION_KINDS as readonly string[]).includes(kind)) {
    throw new Error(`${where}: unknown fusion "${kind}"; use ${FUSION_KINDS.join(" or ")}, optionally with weights, e.g. sum:${tasks[0] ?? "task"}=1${didYouMean(kind, [...FUSION_KINDS])}`);
  }
  if (i < 0) return { kind: kind as FusionKind, weights: tasks.map(() => 1) };
  return { kind: kind as FusionKind, weights: parseTaskWeights(text.slice(i + 1), tasks, where, 0) };
}

/** Parses `ev=1,like=0.5` into weights in task order; unlisted tasks get `rest`. */
export function parseTaskWeights(text: string, tasks: readonly string[], where: string, rest: number): number[] {
  const w = tasks.map(() => rest);
  const seen = new Set<string>();
  for (const part of text.split(",").map((s) => s.trim()).filter((s) => s !== "")) {
    const j = part.indexOf("=");
    if (j <= 0) throw new Error(`${where}: expected task=weight, got "${part}"`);
    const name = part.slice(0, j).trim();
    const t = tasks.indexOf(name);
    if (t < 0) throw new Error(`${where}: unknown task "${name}"; tasks: ${tasks.join(", ")}${didYouMean(name, [...tasks])}`);
    if (seen.has(name)) throw new Error(`${where}: task "${name}" is given twice`);
    seen.add(name);
    const v = Number(part.slice(j + 1));
    if (!DECIMAL.test(part.slice(j + 1)) || !Number.isFinite(v) || v < 0) throw new Error(`${where}: the weight of "${name}" must be a decimal number >= 0 (e.g. 0.5 or 2e-3), got "${part.slice(j + 1)}"`);
    w[t] = v;
  }
  checkWeights(w, where);
  return w;
}

/** Checks a fusion read from a file (fusion.json) against the model's tasks. */
export function fusionFromJson(x: unknown, tasks: readonly string[], where: string): Fusion {
  const o = x as { kind?: unknown; weights?: unknown } | null;
  const isMap = (v: unknown): boolean => typeof v === "object" && v !== null && !Array.isArray(v);
  if (!isMap(o) || !(FUSION_KINDS as readonly unknown[]).includes(o!.kind) || !isMap(o!.weights)) {
    throw new Error(`${where}: expected {"kind": "sum" | "product", "weights": {"<task>": w, ...}}`);
  }
  const wmap = o!.weights as Record<string, unknown>;
  for (const k of Object.keys(wmap)) if (!tasks.includes(k)) throw new Error(`${where}: weights: unknown task "${k}" (tasks: ${tasks.join(", ")})${didYouMean(k, tasks)}`);
  // exact JSON numbers only: true, [5] or "0x10" would convert with Number(), so they are refused, naming the key
  for (const [k, v] of Object.entries(wmap)) if (typeof v !== "number" || !Number.isFinite(v) || v < 0) throw new Error(`${where}: weights.${k} must be a JSON number >= 0, got ${Array.isArray(v) ? "an array" : v === null ? "null" : typeof v === "number" ? "a negative or non-finite number" : `a ${typeof v}`}`);
  const weights = tasks.map((t) => (wmap[t] === undefined ? 0 : (wmap[t] as number)));
  checkWeights(weights, where);
  return { kind: o!.kind as FusionKind, weights };
}

export function fusionToJson(f: Fusion, tasks: readonly string[]): { kind: FusionKind; weights: Record<string, number> } {
  return { kind: f.kind, weights: Object.fromEntries(tasks.map((t, i) => [t, f.weights[i]!])) };
}

/** The smallest probability the product fusion takes the log of: 2^-149, float32's smallest subnormal (see the module comment). */
export const P_MIN = 2 ** -149;

/** Fused scores of n rows from per-task probabilities (float64 out); `product` gives the log-score Σ_t w_t ln max(p_t, P_MIN). */
export function fuseScores(f: Fusion, probs: readonly ArrayLike<number>[], n: number, out: Float64Array = new Float64Array(n)): Float64Array {
  const T = probs.length;
  if (f.weights.length !== T) throw new Error(`fusion: ${f.weights.length} weights for ${T} tasks`);
  out.fill(0, 0, n);
  for (let t = 0; t < T; t++) {
    const w = f.weights[t]!;
    if (w === 0) continue;
    const p = probs[t]!;
    if (f.kind === "sum") for (let r = 0; r < n; r++) out[r] = out[r]! + w * p[r]!;
    else for (let r = 0; r < n; r++) out[r] = out[r]! + w * Math.log(Math.max(p[r]!, P_MIN));
  }
  return out;
}

// ---- objectives -------------------------------------------------------------------------------

export type ObjectiveSpec = { kind: "gauc" | "auc"; taskWeights: number[] } | { kind: "target"; expr: string };

/** Parses `gauc`, `auc` or `target:<expr>`; `taskWeights` is the `--task-weights` text. */
export function parseObjective(text: string, tasks: readonly string[], taskWeights?: string): ObjectiveSpec {
  const t = text.trim();
  if (t.startsWith("target:")) {
    const expr = t.slice("target:".length).trim();
    if (expr === "") throw new Error("--objective target:<expr> needs an expression, e.g. target:is_click");
    if (taskWeights !== undefined) throw new Error("--task-weights applies to the gauc and auc objectives, not to target:");
    return { kind: "target", expr };
  }
  if (t !== "gauc" && t !== "auc") throw new Error(`--objective: unknown objective "${t}"; use gauc, auc or target:<boolean SQL expression>${didYouMean(t, ["gauc", "auc"])}`);
  return { kind: t, taskWeights: taskWeights === undefined ? tasks.map(() => 1) : parseTaskWeights(taskWeights, tasks, "--task-weights", 0) };
}

export function describeObjective(o: ObjectiveSpec, tasks: readonly string[]): string {
  if (o.kind === "target") return `per-user GAUC of the fused score against the target ${JSON.stringify(o.expr)}`;
  const used = o.taskWeights.map((w, t) => ({ w, t })).filter((x) => x.w > 0);
  const same = used.every((x) => x.w === used[0]!.w);
  const list = used.map(({ w, t }) => (same ? tasks[t] : `${tasks[t]}×${w}`)).join(", ");
  return `${same ? "mean" : "weighted mean"} over tasks (${list}) of the ${o.kind === "gauc" ? "per-user GAUC" : "AUC"} of the ranking by the fused score`;
}

/** What an objective is evaluated on: one split's probabilities, labels, groups (and target). */
export interface SplitScores {
  rows: number;
  probs: Float32Array[];
  labels: Float32Array[];
  groups: Int32Array;
  /** Target labels of a `target:` objective. */
  target?: Float32Array;
}

/**
 * Rank-based objective over several 0/1 label columns sharing one ranking: the weighted mean over
 * columns of the impression-weighted GAUC (or, without groups, the AUC). The rows are grouped
 * once; each evaluation sorts every group's scores once (average ranks for ties, so a tie counts
 * 1/2 as in the Mann-Whitney U of src/metrics) and reads every column's AUC from the rank sums
 * of its positives, so T tasks cost one sort instead of T. Equal to `gauc(...).gauc` (weighting
 * "count") and `auc` per column (tested).
 */
export class RankObjective {
  private readonly order: Int32Array;
  private readonly starts: Int32Array;
  private readonly pos: Int32Array[];
  private readonly idx: Int32Array;
  private readonly rank: Float64Array;
  constructor(
    private readonly labels: readonly ArrayLike<number>[],
    private readonly weights: readonly number[],
    groups: Int32Array | null,
  ) {
    const n = labels[0]?.length ?? 0;
    for (const y of labels) {
      if (y.length !== n) throw new Error("objective: label columns differ in length");
      for (let i = 0; i < n; i++) if (y[i] !== 0 && y[i] !== 1) throw new Error(`objective: labels[${i}] = ${y[i]} is not 0 or 1`);
    }
    if (groups && groups.length !== n) throw new Error("objective: groups and labels differ in length");
    const order = new Int32Array(n);
    for (let i = 0; i < n; i++) order[i] = i;
    const starts: number[] = [0];
    if (groups) {
      order.sort((a, b) => groups[a]! - groups[b]! || a - b);
      for (let i = 1; i < n; i++) if (groups[order[i]!] !== groups[order[i - 1]!]) starts.push(i);
    }
    starts.push(n);
    if (n === 0) starts.splice(1);
    this.order = order;
    this.starts = Int32Array.from(starts);
    const G = this.starts.length - 1;
    this.pos = labels.map((y) => {
      const p = new Int32Array(Math.max(G, 0));
      for (let g = 0; g < G; g++) for (let k = this.starts[g]!; k < this.starts[g + 1]!; k++) p[g]! += y[order[k]!]!;
      return p;
    });
    this.idx = new Int32Array(n);
    this.rank = new Float64Array(n);
  }

  /** The objective for `scores` (one per row); NaN when no column has a group with both classes. */
  value(scores: ArrayLike<number>): number {
    const C = this.labels.length;
    const acc = new Float64Array(C);
    const wsum = new Float64Array(C);
    const G = this.starts.length - 1;
    const idx = this.idx;
    const rank = this.rank;
    for (let g = 0; g < G; g++) {
      const a = this.starts[g]!;
      const b = this.starts[g + 1]!;
      const cnt = b - a;
      if (cnt < 2) continue;
      let any = false;
      for (let c = 0; c < C; c++) {
        const p = this.pos[c]![g]!;
        if (p > 0 && p < cnt && this.weights[c]! > 0) any = true;
      }
      if (!any) continue;
      for (let k = a; k < b; k++) idx[k] = this.order[k]!;
      if (cnt <= 24) {
        for (let k = a + 1; k < b; k++) {
          const v = idx[k]!;
          const sv = scores[v]!;
          let j = k - 1;
          while (j >= a && scores[idx[j]!]! > sv) {
            idx[j + 1] = idx[j]!;
            j--;
          }
          idx[j + 1] = v;
        }
      } else idx.subarray(a, b).sort((x, y) => scores[x]! - scores[y]!);
      // average ranks (1-based within the group) over tie blocks
      for (let k = a; k < b; ) {
        let e = k + 1;
        while (e < b && scores[idx[e]!] === scores[idx[k]!]) e++;
        const r = (k - a + 1 + (e - a)) / 2;
        for (let j = k; j < e; j++) rank[j] = r;
        k = e;
      }
      for (let c = 0; c < C; c++) {
        const P = this.pos[c]![g]!;
        if (P === 0 || P === cnt || !(this.weights[c]! > 0)) continue;
        const y = this.labels[c]!;
        let R = 0;
        for (let k = a; k < b; k++) if (y[idx[k]!] === 1) R += rank[k]!;
        const u = R - (P * (P + 1)) / 2;
        acc[c]! += cnt * (u / (P * (cnt - P)));
        wsum[c]! += cnt;
      }
    }
    let num = 0;
    let den = 0;
    for (let c = 0; c < C; c++) {
      if (!(wsum[c]! > 0)) continue;
      num += this.weights[c]! * (acc[c]! / wsum[c]!);
      den += this.weights[c]!;
    }
    return den > 0 ? num / den : NaN;
  }
}

const evaluators = new WeakMap<SplitScores, Map<string, RankObjective>>();

/** The objective's evaluator on a split (built once per split and objective). */
export function objectiveOn(o: ObjectiveSpec, d: SplitScores): RankObjective {
  let m = evaluators.get(d);
  if (!m) {
    m = new Map();
    evaluators.set(d, m);
  }
  const key = o.kind === "target" ? `target:${o.expr}` : `${o.kind}:${o.taskWeights.join(",")}`;
  let r = m.get(key);
  if (!r) {
    if (o.kind === "target") {
      if (!d.target) throw new Error("internal: the target objective needs the target values");
      r = new RankObjective([d.target], [1], d.groups);
    } else r = new RankObjective(d.labels, o.taskWeights, o.kind === "gauc" ? d.groups : null);
    m.set(key, r);
  }
  return r;
}

/** The objective's value of fused scores `s` on a split (NaN when undefined). */
export function objectiveValue(o: ObjectiveSpec, d: SplitScores, s: Float64Array): number {
  return objectiveOn(o, d).value(s.subarray(0, d.rows));
}

// ---- search -----------------------------------------------------------------------------------

export interface SearchOptions {
  kinds: readonly FusionKind[];
  samples: number;
  rounds: number;
  seed: number;
}

export interface SearchResult {
  best: Fusion;
  value: number;
  /** Best value per kind (the kind's best weights). */
  perKind: { kind: FusionKind; weights: number[]; value: number }[];
  /** The equal-weights sum, for reference. */
  baseline: { fusion: Fusion; value: number };
  evaluations: number;
}

function normalise(w: readonly number[]): number[] {
  const s = w.reduce((a, b) => a + b, 0);
  return w.map((x) => x / s);
}

/** Searches fusion weights maximising the objective on `d` (the validation split). */
export function searchFusion(o: ObjectiveSpec, d: SplitScores, opts: SearchOptions): SearchResult {
  const T = d.probs.length;
  const buf = new Float64Array(d.rows);
  let evaluations = 0;
  const value = (f: Fusion): number => {
    evaluations++;
    const v = objectiveValue(o, d, fuseScores(f, d.probs, d.rows, buf));
    return Number.isFinite(v) ? v : -Infinity;
  };
  const baseFusion: Fusion = { kind: "sum", weights: normalise(new Array<number>(T).fill(1)) };
  const baseline = { fusion: baseFusion, value: value(baseFusion) };
  const perKind: SearchResult["perKind"] = [];
  for (const kind of opts.kinds) {
    const rng = new Rng(opts.seed);
    const cands: number[][] = [normalise(new Array<number>(T).fill(1))];
    if (T > 1) for (let t = 0; t < T; t++) cands.push(Array.from({ length: T }, (_, k) => (k === t ? 1 : 0)));
    for (let k = 0; k < opts.samples; k++) cands.push(normalise(Array.from({ length: T }, () => -Math.log(1 - rng.next()) + 1e-12)));
    const scored = cands.map((w) => ({ w, v: value({ kind, weights: w }) }));
    const order = scored.map((_, i) => i).sort((a, b) => scored[b]!.v - scored[a]!.v || a - b);
    let best = scored[order[0]!]!;
    // refine the best few starting points by coordinate moves
    for (const start of order.slice(0, Math.min(3, order.length))) {
      let cur = scored[start]!;
      for (let r = 0; r < opts.rounds; r++) {
        let improved = false;
        for (let t = 0; t < T; t++) {
          for (const move of [0, 0.5, 2, -1]) {
            const w = [...cur.w];
            w[t] = move === -1 ? w[t]! + 0.1 : w[t]! * move;
            if (!w.some((x) => x > 0)) continue;
            const nw = normalise(w);
            const v = value({ kind, weights: nw });
            if (v > cur.v + 1e-12) {
              cur = { w: nw, v };
              improved = true;
            }
          }
        }
        if (!improved) break;
      }
      if (cur.v > best.v) best = cur;
    }
    perKind.push({ kind, weights: best.w, value: best.v });
  }
  let top = perKind[0]!;
  for (const p of perKind) if (p.value > top.value) top = p;
  return { best: { kind: top.kind, weights: top.weights }, value: top.value, perKind, baseline, evaluations };
}
