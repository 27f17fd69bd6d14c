/**
 * The quality bar of a bench ("report honestly; never tune on test"), computed from the final
 * runs' test metrics only (the methods' options were already chosen on validation). Nothing
 * here feeds back into training or selection. Engine-free: pure functions over the sweep's
 * MethodSummary list, plus `readDiagnostics`, a small reader of `<job>.diag.jsonl` files.
 *
 * Intervals are 95 % two-sided Student-t intervals over seeds (n − 1 degrees of freedom), as in
 * the comparison table's paired differences (buildComparisonTable / diffCell in table.ts):
 *
 * 1. Against LR. For every multi-task method (every method but "single" and "lr") and every task:
 *    the mean test AUC over the method's seeds, LR's mean test AUC over its seeds, and the paired
 *    difference method − LR over the seeds both ran (mean of d_s = AUC_method,s − AUC_LR,s) with
 *    its 95 % t-interval. Each cell is classified by that paired difference:
 *      - "below LR (interval excludes 0)": mean < 0 and the interval lies below 0;
 *      - "below LR (interval contains 0)": mean < 0 and the interval contains 0;
 *      - "below LR (one paired seed: no interval)": mean < 0 with a single paired seed;
 *      - "at or above LR": mean ≥ 0;
 *      - "not comparable": no paired seed, or a NaN AUC (a one-class split).
 *    A summary line names every cell below LR, or says that every multi-task method is at or
 *    above LR on every task. Without "lr" results the section says so.
 *
 * 2. GradCraft's rank on AV-A and AV-G (the table's per-seed mean test AUC / GAUC over tasks,
 *    then the mean over seeds) among all methods of the table, baselines included: "rank r of n"
 *    with r = 1 + the number of methods with a strictly higher mean (so a tie for the top leads),
 *    n = the methods with a finite value. GradCraft's value is shown ± the half-width of its 95 %
 *    t-interval over seeds (t_{0.975, n−1} · sd / √n). When it does not lead: the paired
 *    difference GradCraft − leader (the highest mean, first in table order on ties) with its
 *    interval; when it leads: the same against the runner-up. Without "gradcraft" results the
 *    section says so.
 *
 * 3. Diagnostics, only when GradCraft does not lead on AV-A or AV-G: from the diag.jsonl of
 *    GradCraft's final jobs and of each leader's (a DiagnosticsPoint per line: step, losses,
 *    weights, norms, cosines (T·T row-major), conflicts), per logged step
 *      - conflict rate = conflicts / (T(T − 1)/2), the share of task pairs with a negative inner product,
 *      - norm ratio = max_t ‖g_t‖ / min_t ‖g_t‖ (steps with a zero or non-finite norm are skipped),
 *      - cosine = the mean of cos(g_i, g_j) over the pairs i < j (non-finite entries skipped);
 *    each averaged over the logged steps of a seed, then over the seeds that have diagnostics.
 *    "single" and "lr" have no shared-parameter gradients and so no diagnostics; a missing or
 *    empty file, or one whose norms are all 0, counts as "no diagnostics", not an error. A
 *    malformed line is an error naming the file and the line number.
 */
import { existsSync, readFileSync } from "node:fs";
import { studentTQuantile } from "../metrics/ci.ts";
import { buildComparisonTable, mdEscape, type ComparisonTable, type DiffCell, type MethodSummary, type TableCell } from "./table.ts";
import { esc } from "./svg.ts";
import type { DiagnosticsPoint } from "./types.ts";

/** Methods that are baselines, not multi-task methods (single-task networks, logistic regression). */
export const BASELINE_METHODS: readonly string[] = ["single", "lr"];
/** The method whose rank the quality bar reports. */
export const GRADCRAFT = "gradcraft";
/** The method every multi-task method is held against. */
export const LR = "lr";
/** Confidence level of every interval. */
export const QUALITY_LEVEL = 0.95;
const DIGITS = 4;

// ---------------------------------------------------------------------------------------------
// 1. against LR

export type LrVerdict = "below-excludes-0" | "below-contains-0" | "below-no-interval" | "at-or-above" | "not-comparable";

/** The text of each verdict, as the reports show it. */
export const LR_VERDICT_TEXT: Record<LrVerdict, string> = {
  "below-excludes-0": "below LR (interval excludes 0)",
  "below-contains-0": "below LR (interval contains 0)",
  "below-no-interval": "below LR (one paired seed: no interval)",
  "at-or-above": "at or above LR",
  "not-comparable": "not comparable (no paired seed with a value)",
};

export interface LrCell {
  method: string;
  label: string;
  task: string;
  /** The method's mean test AUC over its seeds. */
  auc: number;
  /** LR's mean test AUC over its seeds. */
  lrAuc: number;
  /** Paired difference method − LR over the seeds both ran, with its 95 % t-interval. */
  diff: DiffCell;
  verdict: LrVerdict;
}

export interface LrComparison {
  /** Whether "lr" has results; without them `cells` is empty. */
  ran: boolean;
  lrLabel: string;
  /** Method-major, tasks in table order. */
  cells: LrCell[];
  /** Cells whose verdict is one of the "below" kinds. */
  below: number;
  /** One plain-language line. */
  summary: string;
}

/** The verdict of a paired difference method − LR (see the file comment). */
export function lrVerdict(d: DiffCell): LrVerdict {
  if (d.n === 0 || Number.isNaN(d.mean)) return "not-comparable";
  if (d.mean >= 0) return "at-or-above";
  if (d.sign === "below") return "below-excludes-0";
  if (d.sign === "spans") return "below-contains-0";
  return "below-no-interval";
}

const isBelow = (v: LrVerdict) => v === "below-excludes-0" || v === "below-contains-0" || v === "below-no-interval";

/** A comparison table over the summaries with paired differences against `refs` (any column serves as RI baseline here). */
function tableWith(summaries: MethodSummary[], refs: string[]): ComparisonTable {
  return buildComparisonTable(summaries, { baseline: summaries[0]!.method, digits: DIGITS, differences: refs });
}

/** Section 1: every multi-task method's per-task test AUC against LR's (see the file comment). */
export function compareWithLr(summaries: MethodSummary[]): LrComparison {
  const lr = summaries.find((s) => s.method === LR);
  const multi = summaries.filter((s) => !BASELINE_METHODS.includes(s.method));
  if (!lr) {
    return { ran: false, lrLabel: "LR", cells: [], below: 0, summary: `LR did not run in this bench (no "${LR}" results): the per-task comparison against LR is not available.` };
  }
  if (multi.length === 0) return { ran: true, lrLabel: lr.label, cells: [], below: 0, summary: "No multi-task method ran in this bench: nothing to compare against LR." };
  const table = tableWith(summaries, [LR]);
  const diffs = table.differences![0]!;
  const tasks = summaries[0]!.perTask.map((t) => t.task);
  const col = (method: string) => table.columns.findIndex((c) => c.method === method);
  const cells: LrCell[] = [];
  for (const s of multi) {
    tasks.forEach((task, t) => {
      // rows: "<task> AUC" at 2t; difference rows: AV-A, AV-G, then "<task> AUC" at 2 + t
      const diff = diffs.rows[2 + t]!.cells[diffs.columns.findIndex((c) => c.method === s.method)]!;
      const aucRow = table.rows[2 * t]!;
      cells.push({ method: s.method, label: s.label, task, auc: aucRow.cells[col(s.method)]!.mean, lrAuc: aucRow.cells[col(LR)]!.mean, diff, verdict: lrVerdict(diff) });
    });
  }
  const below = cells.filter((c) => isBelow(c.verdict));
  const na = cells.filter((c) => c.verdict === "not-comparable");
  const total = `${cells.length} method×task cell${cells.length === 1 ? "" : "s"}`;
  const parts: string[] = [];
  if (below.length) {
    const which = below.map((c) => `${c.label} on ${c.task} (${LR_VERDICT_TEXT[c.verdict].replace(/^below LR \(|\)$/g, "")})`);
    parts.push(`${below.length} of ${total} ${below.length === 1 ? "is" : "are"} below ${lr.label} in test AUC: ${which.join("; ")}.`);
  } else if (na.length === 0) {
    parts.push(`Every multi-task method is at or above ${lr.label} on every task (test AUC, ${total}).`);
  } else {
    parts.push(`No comparable cell is below ${lr.label} in test AUC.`);
  }
  if (na.length) parts.push(`${na.length} of ${total} could not be compared (no paired seed with a value): ${na.map((c) => `${c.label} on ${c.task}`).join("; ")}.`);
  return { ran: true, lrLabel: lr.label, cells, below: below.length, summary: parts.join(" ") };
}

// ---------------------------------------------------------------------------------------------
// 2. GradCraft's rank

export interface RankedValue {
  method: string;
  label: string;
  /** Mean over seeds of the metric. */
  value: number;
}

export interface RankEntry {
  metric: "AV-A" | "AV-G";
  /** GradCraft's mean over seeds. */
  value: number;
  /** Sample std over seeds; null with one seed. */
  std: number | null;
  /** Number of seeds. */
  n: number;
  /** Half-width of the 95 % t-interval of the mean; null with one seed. */
  halfWidth: number | null;
  /** 1-based; null when GradCraft's value is not finite. */
  rank: number | null;
  /** Methods with a finite value (the ranked ones). */
  of: number;
  /** Labels of methods without a finite value (not ranked). */
  unranked: string[];
  leads: boolean;
  /** Other methods with exactly GradCraft's value when it leads (a shared lead). */
  tiedWith: string[];
  /** The leader when GradCraft does not lead, else null. */
  leader: RankedValue | null;
  /** GradCraft − leader, paired by seed, with its 95 % interval; null when it leads. */
  vsLeader: DiffCell | null;
  /** The best other method when GradCraft leads (null when it is the only ranked method or does not lead). */
  runnerUp: RankedValue | null;
  /** GradCraft − runner-up, paired by seed, with its 95 % interval. */
  vsRunnerUp: DiffCell | null;
}

export interface RankSection {
  /** Whether "gradcraft" has results; without them `metrics` is empty. */
  ran: boolean;
  label: string;
  metrics: RankEntry[];
  /** One plain-language line. */
  summary: string;
}

/** Half-width of the 95 % t-interval of a table cell's mean (null with one seed or no spread estimate). */
export function halfWidth(cell: Pick<TableCell, "std" | "n">): number | null {
  if (cell.std === null || cell.n < 2 || !Number.isFinite(cell.std)) return null;
  return (studentTQuantile(1 - (1 - QUALITY_LEVEL) / 2, cell.n - 1) * cell.std) / Math.sqrt(cell.n);
}

/** Section 2: GradCraft's rank on AV-A and AV-G among all methods (see the file comment). */
export function gradcraftRank(summaries: MethodSummary[]): RankSection {
  const gc = summaries.find((s) => s.method === GRADCRAFT);
  if (!gc) return { ran: false, label: "GradCraft", metrics: [], summary: `GradCraft did not run in this bench (no "${GRADCRAFT}" results): no rank to report.` };
  const table = tableWith(summaries, []);
  const g = table.columns.findIndex((c) => c.method === GRADCRAFT);
  const pending: { entry: RankEntry; ref: string; key: "vsLeader" | "vsRunnerUp" }[] = [];
  const metrics: RankEntry[] = (["AV-A", "AV-G"] as const).map((metric) => {
    const row = table.rows.find((r) => r.metric === metric)!;
    const values = row.cells.map((c, j) => ({ method: table.columns[j]!.method, label: table.columns[j]!.label, value: c!.mean }));
    const mine = row.cells[g]!;
    const ranked = values.filter((v) => Number.isFinite(v.value));
    const others = ranked.filter((v) => v.method !== GRADCRAFT);
    const best = others.reduce<RankedValue | null>((b, v) => (b === null || v.value > b.value ? v : b), null);
    const finite = Number.isFinite(mine.mean);
    const rank = finite ? 1 + others.filter((v) => v.value > mine.mean).length : null;
    const leads = rank === 1;
    const entry: RankEntry = {
      metric,
      value: mine.mean,
      std: mine.std,
      n: mine.n,
      halfWidth: halfWidth(mine),
      rank,
      of: ranked.length,
      unranked: values.filter((v) => !Number.isFinite(v.value)).map((v) => v.label),
      leads,
      tiedWith: leads ? others.filter((v) => v.value === mine.mean).map((v) => v.label) : [],
      leader: leads ? null : best,
      vsLeader: null,
      runnerUp: leads ? best : null,
      vsRunnerUp: null,
    };
    if (!leads && best) pending.push({ entry, ref: best.method, key: "vsLeader" });
    if (leads && best) pending.push({ entry, ref: best.method, key: "vsRunnerUp" });
    return entry;
  });
  if (pending.length) {
    const refs = [...new Set(pending.map((p) => p.ref))];
    const diffs = tableWith(summaries, refs).differences!;
    for (const p of pending) {
      const d = diffs.find((x) => x.reference === p.ref)!;
      p.entry[p.key] = d.rows.find((r) => r.metric === p.entry.metric)!.cells[d.columns.findIndex((c) => c.method === GRADCRAFT)]!;
    }
  }
  const lines = metrics.map((m) =>
    m.rank === null ? `${m.metric}: no value` : m.leads ? `${m.metric}: leads (rank 1 of ${m.of})` : `${m.metric}: rank ${m.rank} of ${m.of}, behind ${m.leader!.label}`,
  );
  return { ran: true, label: gc.label, metrics, summary: `${gc.label} — ${lines.join("; ")}.` };
}

// ---------------------------------------------------------------------------------------------
// 3. diagnostics

/** One diag.jsonl file as read: "missing" (no file), "empty" (no records) or "ok". */
export interface DiagFile {
  path: string;
  status: "ok" | "missing" | "empty";
  points: DiagnosticsPoint[];
}

const isNumOrNull = (x: unknown) => x === null || typeof x === "number";

/**
 * Reads diag.jsonl files (one DiagnosticsPoint per line; blank lines ignored; null stands for a
 * non-finite number, as JSON.stringify writes NaN). A missing or empty file is not an error.
 * @throws on a malformed line, naming the file and the 1-based line number.
 */
export function readDiagnostics(paths: readonly string[]): DiagFile[] {
  return paths.map((path) => {
    if (!existsSync(path)) return { path, status: "missing", points: [] };
    const lines = readFileSync(path, "utf8").split("\n");
    const points: DiagnosticsPoint[] = [];
    let T = -1;
    lines.forEach((line, i) => {
      if (line.trim() === "") return;
      const bad = (why: string) => new Error(`${path}:${i + 1}: malformed diagnostics line: ${why}`);
      let v: unknown;
      try {
        v = JSON.parse(line);
      } catch (e) {
        throw bad(`not JSON (${(e as Error).message})`);
      }
      if (typeof v !== "object" || v === null || Array.isArray(v)) throw bad("not a JSON object");
      const o = v as Record<string, unknown>;
      if (typeof o.step !== "number") throw bad('"step" is not a number');
      if (!Array.isArray(o.norms) || o.norms.length === 0 || !o.norms.every(isNumOrNull)) throw bad('"norms" is not a non-empty array of numbers');
      if (T === -1) T = o.norms.length;
      else if (o.norms.length !== T) throw bad(`"norms" has ${o.norms.length} entries, earlier lines ${T}`);
      if (!Array.isArray(o.cosines) || o.cosines.length !== T * T || !o.cosines.every(isNumOrNull)) throw bad(`"cosines" is not an array of ${T * T} numbers (T × T for ${T} tasks)`);
      if (!isNumOrNull(o.conflicts)) throw bad('"conflicts" is not a number');
      if (o.losses !== undefined && !(Array.isArray(o.losses) && o.losses.every(isNumOrNull))) throw bad('"losses" is not an array of numbers');
      if (o.weights !== undefined && o.weights !== null && !(Array.isArray(o.weights) && o.weights.every(isNumOrNull))) throw bad('"weights" is not an array of numbers or null');
      const num = (x: unknown) => (x === null ? NaN : (x as number));
      points.push({
        step: o.step,
        losses: Array.isArray(o.losses) ? o.losses.map(num) : [],
        weights: Array.isArray(o.weights) ? o.weights.map(num) : null,
        norms: o.norms.map(num),
        cosines: o.cosines.map(num),
        conflicts: num(o.conflicts),
      });
    });
    return { path, status: points.length ? "ok" : "empty", points };
  });
}

export interface DiagStats {
  /** Mean share of task pairs with a negative inner product; null when nothing to average. */
  conflictRate: number | null;
  /** Mean ratio of the largest to the smallest per-task gradient norm. */
  normRatio: number | null;
  /** Mean pairwise cosine (pairs i < j). */
  cosine: number | null;
}

const avg = (xs: (number | null)[]): number | null => {
  const f = xs.filter((x): x is number => x !== null && Number.isFinite(x));
  return f.length ? f.reduce((a, b) => a + b, 0) / f.length : null;
};

/** The three statistics of one run, averaged over its logged steps (see the file comment). */
export function runDiagStats(points: readonly DiagnosticsPoint[]): DiagStats {
  const rate: (number | null)[] = [];
  const ratio: (number | null)[] = [];
  const cos: (number | null)[] = [];
  for (const d of points) {
    const T = d.norms.length;
    const pairs = (T * (T - 1)) / 2;
    rate.push(pairs > 0 && Number.isFinite(d.conflicts) ? d.conflicts / pairs : null);
    const lo = Math.min(...d.norms);
    ratio.push(d.norms.every(Number.isFinite) && lo > 0 ? Math.max(...d.norms) / lo : null);
    const c: number[] = [];
    for (let i = 0; i < T; i++) for (let j = i + 1; j < T; j++) c.push(d.cosines[i * T + j]!);
    cos.push(avg(c));
  }
  return { conflictRate: avg(rate), normRatio: avg(ratio), cosine: avg(cos) };
}

export interface MethodDiagnostics extends DiagStats {
  method: string;
  label: string;
  /** Diagnostics files looked at (one per final job). */
  files: number;
  /** Files with diagnostics (records with a non-zero gradient norm). */
  withDiagnostics: number;
  /** Why there are no (or fewer) diagnostics; "" when every file has them. */
  note: string;
}

/** The statistics of one method: per file (seed) over its logged steps, then the mean over files with diagnostics. */
export function summariseDiagnostics(method: string, label: string, files: readonly DiagFile[]): MethodDiagnostics {
  if (BASELINE_METHODS.includes(method)) {
    return { method, label, files: files.length, withDiagnostics: 0, conflictRate: null, normRatio: null, cosine: null, note: "no diagnostics: a baseline without shared-parameter gradients" };
  }
  const useful = files.filter((f) => f.status === "ok" && f.points.some((d) => d.norms.some((n) => n !== 0)));
  const per = useful.map((f) => runDiagStats(f.points));
  const lacking = files.length - useful.length;
  const note =
    files.length === 0
      ? "no diagnostics (no diag.jsonl files)"
      : useful.length === 0
        ? `no diagnostics (${files.length} diag.jsonl file${files.length === 1 ? "" : "s"} missing, empty or without shared-parameter gradients)`
        : lacking
          ? `${lacking} of ${files.length} diag.jsonl files missing, empty or without shared-parameter gradients`
          : "";
  return {
    method,
    label,
    files: files.length,
    withDiagnostics: useful.length,
    conflictRate: avg(per.map((p) => p.conflictRate)),
    normRatio: avg(per.map((p) => p.normRatio)),
    cosine: avg(per.map((p) => p.cosine)),
    note,
  };
}

export interface DiagnosticsSection {
  /** The metrics GradCraft does not lead on, each with its leader's label. */
  notLeading: { metric: string; leader: string }[];
  /** GradCraft first, then each distinct leader. */
  methods: MethodDiagnostics[];
}

// ---------------------------------------------------------------------------------------------
// the whole bar

export interface QualityBar {
  version: 1;
  level: number;
  /** Planned final jobs without a result (the bar covers the results present). */
  missing: number;
  lr: LrComparison;
  gradcraft: RankSection;
  /** Present only when GradCraft ran and does not lead on AV-A or AV-G. */
  diagnostics: DiagnosticsSection | null;
}

export interface QualityOptions {
  /** The diag.jsonl paths of a method's final jobs (read only for GradCraft and the leaders). */
  diagFiles?: (method: string) => string[];
  /** Planned final jobs without a result. */
  missing?: number;
}

/** The quality bar over the final results' summaries (see the file comment). @throws on a malformed diag.jsonl line. */
export function buildQualityBar(summaries: MethodSummary[], opts: QualityOptions = {}): QualityBar {
  if (summaries.length === 0) throw new Error("buildQualityBar: summaries is empty");
  const lr = compareWithLr(summaries);
  const gradcraft = gradcraftRank(summaries);
  let diagnostics: DiagnosticsSection | null = null;
  const behind = gradcraft.metrics.filter((m) => !m.leads && m.leader);
  if (behind.length) {
    const labelOf = (m: string) => summaries.find((s) => s.method === m)!.label;
    const methods = [GRADCRAFT, ...new Set(behind.map((m) => m.leader!.method))];
    diagnostics = {
      notLeading: behind.map((m) => ({ metric: m.metric, leader: m.leader!.label })),
      methods: methods.map((m) => summariseDiagnostics(m, labelOf(m), BASELINE_METHODS.includes(m) ? [] : readDiagnostics(opts.diagFiles?.(m) ?? []))),
    };
  }
  return { version: 1, level: QUALITY_LEVEL, missing: opts.missing ?? 0, lr, gradcraft, diagnostics };
}

// ---------------------------------------------------------------------------------------------
// rendering: one list of blocks, written as Markdown and as HTML (the same content)

type Block =
  | { kind: "h"; text: string }
  | { kind: "p"; text: string }
  | { kind: "ul"; items: string[] }
  | { kind: "table"; head: string[]; right: boolean[]; rows: string[][] };

function fixed(x: number | null, digits: number): string {
  if (x === null || !Number.isFinite(x)) return "n/a";
  const s = x.toFixed(digits);
  return /^-0(\.0*)?$/.test(s) ? s.slice(1) : s;
}

const intervalWords = (d: DiffCell) =>
  d.sign === "above" || d.sign === "below" ? "interval excludes 0" : d.sign === "spans" ? "interval contains 0" : "no interval";

/** The bar as blocks; `name` escapes a label or task name for the output format. */
function blocks(q: QualityBar, name: (s: string) => string): Block[] {
  const pct = Math.round(q.level * 100);
  const out: Block[] = [
    {
      kind: "p",
      text:
        `Computed from the final runs' test metrics; the methods' options were chosen on validation only, and nothing here was tuned on test. ` +
        `Intervals are ${pct} % t-intervals over seeds (n − 1 degrees of freedom); differences are paired by seed.` +
        (q.missing ? ` ${q.missing} planned job${q.missing === 1 ? " has" : "s have"} no result yet: this covers the results present.` : ""),
    },
  ];
  // 1. LR
  out.push({ kind: "h", text: `Multi-task methods against ${name(q.lr.lrLabel)} (per-task test AUC)` });
  const lrSummary = name(q.lr.summary);
  out.push({ kind: "p", text: lrSummary });
  if (q.lr.cells.length) {
    const lr = name(q.lr.lrLabel);
    out.push({
      kind: "table",
      head: ["Method", "Task", "Test AUC", `${lr} test AUC`, `Δ vs ${lr} [${pct} % CI]`, "Verdict"],
      right: [false, false, true, true, true, false],
      rows: q.lr.cells.map((c) => [name(c.label), name(c.task), fixed(c.auc, DIGITS), fixed(c.lrAuc, DIGITS), c.diff.text, LR_VERDICT_TEXT[c.verdict].replace(/LR/, lr)]),
    });
  }
  // 2. GradCraft's rank
  const gc = name(q.gradcraft.label);
  out.push({ kind: "h", text: `${gc}'s rank on AV-A and AV-G` });
  if (!q.gradcraft.ran) {
    out.push({ kind: "p", text: name(q.gradcraft.summary) });
  } else {
    out.push({
      kind: "ul",
      items: q.gradcraft.metrics.map((m) => {
        const hw = m.halfWidth === null ? ` (one seed: no interval)` : ` ± ${fixed(m.halfWidth, DIGITS)} (${pct} % interval half-width, ${m.n} seeds)`;
        const value = `${gc} ${fixed(m.value, DIGITS)}${hw}`;
        const unranked = m.unranked.length ? `; not ranked (no value): ${m.unranked.map(name).join(", ")}` : "";
        if (m.rank === null) return `${m.metric}: ${gc} has no value${unranked}.`;
        if (!m.leads) {
          const l = m.leader!;
          const d = m.vsLeader!;
          return `${m.metric}: ${value}, rank ${m.rank} of ${m.of}${unranked}. Leader: ${name(l.label)} ${fixed(l.value, DIGITS)}; ${gc} − ${name(l.label)} = ${d.text} (${intervalWords(d)}, ${d.n} paired seeds).`;
        }
        const tie = m.tiedWith.length ? ` (shared with ${m.tiedWith.map(name).join(", ")})` : "";
        const ru = m.runnerUp && m.vsRunnerUp
          ? ` Runner-up: ${name(m.runnerUp.label)} ${fixed(m.runnerUp.value, DIGITS)}; ${gc} − ${name(m.runnerUp.label)} = ${m.vsRunnerUp.text} (${intervalWords(m.vsRunnerUp)}, ${m.vsRunnerUp.n} paired seeds).`
          : "";
        return `${m.metric}: ${value}, rank 1 of ${m.of}: leads${tie}${unranked}.${ru}`;
      }),
    });
  }
  // 3. diagnostics
  if (q.diagnostics) {
    const d = q.diagnostics;
    out.push({ kind: "h", text: `Diagnostics: why ${gc} does not lead` });
    out.push({
      kind: "p",
      text:
        `${gc} does not lead on ${d.notLeading.map((x) => `${x.metric} (leader: ${name(x.leader)})`).join(" and ")}. ` +
        `From the final jobs' diag.jsonl, per logged step: conflict rate = share of task pairs whose gradients have a negative inner product; ` +
        `norm ratio = largest / smallest per-task gradient norm on the shared parameters; cosine = mean pairwise cosine of the task gradients. ` +
        `Each is averaged over a seed's logged steps, then over the seeds with diagnostics.`,
    });
    out.push({
      kind: "table",
      head: ["Method", "Seeds with diagnostics", "Conflict rate", "Norm ratio (max/min)", "Mean pairwise cosine"],
      right: [false, true, true, true, true],
      rows: d.methods.map((m) =>
        m.withDiagnostics === 0
          ? [name(m.label), m.files ? `0 of ${m.files}` : "none", "n/a", "n/a", "n/a"]
          : [name(m.label), `${m.withDiagnostics} of ${m.files}`, fixed(m.conflictRate, DIGITS), fixed(m.normRatio, 3), fixed(m.cosine, DIGITS)],
      ),
    });
    const notes = d.methods.filter((m) => m.note).map((m) => `${name(m.label)}: ${m.note}.`);
    if (notes.length) out.push({ kind: "ul", items: notes });
  } else if (q.gradcraft.ran && q.gradcraft.metrics.every((m) => m.leads)) {
    out.push({ kind: "p", text: `${gc} leads on AV-A and AV-G: no diagnostics needed to explain a gap.` });
  }
  return out;
}

/** The "## Quality bar" section of results.md (GitHub Markdown; labels and task names escaped). */
export function qualityToMarkdown(q: QualityBar): string {
  const parts = ["## Quality bar"];
  for (const b of blocks(q, mdEscape)) {
    if (b.kind === "h") parts.push(`### ${b.text}`);
    else if (b.kind === "p") parts.push(b.text);
    else if (b.kind === "ul") parts.push(b.items.map((i) => `- ${i}`).join("\n"));
    else parts.push([`| ${b.head.join(" | ")} |`, `|${b.right.map((r) => (r ? "---:" : "---")).join("|")}|`, ...b.rows.map((r) => `| ${r.join(" | ")} |`)].join("\n"));
  }
  return parts.join("\n\n") + "\n";
}

/** The same content as an HTML <section id="quality"> for report.html (all text escaped). */
export function qualityToHtml(q: QualityBar): string {
  const out = [`<section id="quality"><h2>Quality bar</h2>`];
  for (const b of blocks(q, (s) => s)) {
    if (b.kind === "h") out.push(`<h3>${esc(b.text)}</h3>`);
    else if (b.kind === "p") out.push(`<p>${esc(b.text)}</p>`);
    else if (b.kind === "ul") out.push(`<ul>${b.items.map((i) => `<li>${esc(i)}</li>`).join("")}</ul>`);
    else {
      const cell = (tag: string, right: boolean, t: string) => `<${tag}${right ? "" : ' style="text-align:left"'}>${esc(t)}</${tag}>`;
      out.push(
        `<div class="table-wrap"><table><thead><tr>${b.head.map((h, j) => cell("th", b.right[j]!, h)).join("")}</tr></thead><tbody>` +
          b.rows.map((r) => `<tr>${r.map((t, j) => cell("td", b.right[j]!, t)).join("")}</tr>`).join("") +
          `</tbody></table></div>`,
      );
    }
  }
  out.push(`</section>`);
  return out.join("\n") + "\n";
}

/** quality.json: the bar as JSON (non-finite numbers as null). */
export function qualityToJson(q: QualityBar): string {
  return JSON.stringify(q, (_k, v: unknown) => (typeof v === "number" && !Number.isFinite(v) ? null : v), 2) + "\n";
}
