/**
 * The paper-layout comparison table (GradCraft, Table 1): one column per method,
 * rows "<task> AUC", "<task> GAUC" for each task, then AV-A, AV-G, RI-A, RI-G.
 *
 * Cells are mean ± sample std over seeds (std omitted with one seed).
 *   - AV-A / AV-G: per seed, the mean over tasks of AUC / GAUC; then mean ± std over seeds.
 *   - RI-A / RI-G (percent): per seed s, 100 · mean_t (M_t,s − B_t) / B_t where B_t is the
 *     baseline's seed-mean for task t; then mean ± std over seeds. The mean therefore equals
 *     the RI of the method's seed-means vs the baseline's seed-means, and the std reflects the
 *     method's seed variation only (the baseline mean is treated as a fixed reference).
 *     The baseline's own RI cells are null (0 by definition) and are not ranked.
 * Seeds are aligned by index: within one method every task's auc and gauc arrays must have
 * the same length (seed i of every task is the same run). Methods may differ in seed count.
 *
 * Marks: per row, higher is better for every metric. Cells are ranked on the value as
 * displayed (rounded to the row's digits), so equal-looking numbers share a mark; dense
 * ranking: every cell with the top value is "best", every cell with the next distinct value
 * is "second". NaN means and null cells are never marked.
 *
 * Undefined metrics (a task with one class on the test split has no AUC, nor GAUC; one whose
 * groups all hold one class has no GAUC; see src/metrics/defined.ts): such a value is NaN (or
 * null in a result file). A task row's cell with any undefined value reads "n/a" (mean NaN,
 * never marked; empty in the CSV). AV-A / RI-A are over the tasks whose AUC is defined in every
 * run of every method (AV-G / RI-G likewise with GAUC), so the columns stay comparable and
 * never turn NaN; the table's `notes` say which tasks were left out ("AV-A/AV-G and RI-A/RI-G
 * over 5 of 6 tasks: follow undefined on test"), printed under the table in every format but CSV.
 */
import { meanStd, relativeImprovement } from "../metrics/summary.ts";
import { isDefined, meanAt } from "../metrics/defined.ts";
import { pairedDifference } from "../metrics/ci.ts";
import { holmFamily } from "../metrics/multiple.ts";

export interface MethodSummary {
  /** Method id (e.g. "single", "gradcraft"); unique across the table. */
  method: string;
  /** Column header shown in the table. */
  label: string;
  /** One entry per task; auc / gauc hold one value per seed. */
  perTask: { task: string; auc: number[]; gauc: number[] }[];
  /**
   * The seed of each value index (optional). Paired differences match runs by these ids;
   * without them, by index (then both methods must have the same number of seeds).
   */
  seeds?: number[];
}

export interface ComparisonOptions {
  /** Method name of the single-task baseline used for RI. */
  baseline: string;
  /** Decimals for AUC / GAUC / AV rows; default 4. */
  digits?: number;
  /** Decimals for the RI rows (in percent); default 2. */
  riDigits?: number;
  /**
   * References for paired-difference tables (e.g. ["single", "ew"]): for every other method,
   * the mean over seeds of (method − reference) on the same seeds with a 95 % t-interval, for
   * AV-A, AV-G and each task's AUC. References not among the methods are skipped.
   */
  differences?: string[];
  /** The split the values come from, as named in the notes on undefined tasks; default "test". */
  split?: string;
}

export type CellMark = "best" | "second" | null;

export interface TableCell {
  mean: number;
  /** Sample std over seeds; null when there is a single seed. */
  std: number | null;
  /** Number of seeds. */
  n: number;
  mark: CellMark;
  /** Display text, e.g. "0.7123 ± 0.0012" or "1.23 ± 0.40%". */
  text: string;
}

export interface TableRow {
  /** Row label: "<task> AUC", "<task> GAUC", "AV-A", "AV-G", "RI-A" or "RI-G". */
  metric: string;
  /** "%" for RI rows, "" otherwise. Values in RI rows are already in percent. */
  unit: "" | "%";
  /** Aligned with `columns`; null where not applicable (the baseline's RI). */
  cells: (TableCell | null)[];
}

export interface ComparisonTable {
  columns: { method: string; label: string }[];
  rows: TableRow[];
  baseline: string;
  digits: number;
  riDigits: number;
  /** Paired-difference tables, one per reference in opts.differences that is present. */
  differences?: DifferenceTable[];
  /** Footnotes: which tasks AV/RI leave out because a metric is undefined there (absent when none). */
  notes?: string[];
}

/** A paired difference (method − reference over the seeds both have) with its 95 % t-interval. */
export interface DiffCell {
  /** Mean difference; NaN when the two methods share no seed. */
  mean: number;
  /** Sample std of the differences (n − 1); null for n < 2. */
  std: number | null;
  /** Number of paired seeds. */
  n: number;
  /** 95 % t-interval (n − 1 dof); null for n < 2. */
  lo: number | null;
  hi: number | null;
  /** "above" / "below": the interval excludes 0 on that side; "spans": it contains 0; null: no interval. */
  sign: "above" | "below" | "spans" | null;
  /** Display text, e.g. "+0.0012 [-0.0003, +0.0027]", "+0.0012 [n/a]" with one seed, "n/a" without pairs. */
  text: string;
  /**
   * Holm's correction over the family "every method against this reference on this metric"
   * (src/metrics/multiple.ts): the unadjusted and adjusted two-sided p-values of the paired
   * t-test, and the Holm-consistent interval (it excludes 0 exactly when pHolm < 0.05). Absent
   * without an interval.
   */
  holm?: { p: number; pHolm: number; lo: number; hi: number; level: number; m: number; sign: "above" | "below" | "spans" };
}

export interface DifferenceTable {
  /** Reference method id and its label. */
  reference: string;
  referenceLabel: string;
  /** Every method but the reference, in table order. */
  columns: { method: string; label: string }[];
  /** "AV-A", "AV-G", then "<task> AUC" per task; cells aligned with `columns`. */
  rows: { metric: string; cells: DiffCell[] }[];
  /** Confidence level of the intervals (0.95). */
  level: number;
  digits: number;
}

function checkDigits(name: string, d: number): void {
  if (!Number.isInteger(d) || d < 0 || d > 12) throw new Error(`buildComparisonTable: opts.${name} must be an integer in [0, 12], got ${d}`);
}

/** toFixed without a "-0.00" sign artefact. */
function fixed(x: number, digits: number): string {
  const s = x.toFixed(digits);
  return /^-0(\.0*)?$/.test(s) ? s.slice(1) : s;
}

/** The text of a cell whose value is undefined (a one-class split) in at least one seed. */
export const UNDEFINED_TEXT = "n/a";

function makeCell(values: number[], digits: number, unit: "" | "%"): TableCell {
  const n = values.filter(isDefined).length;
  if (n < values.length) return { mean: NaN, std: null, n, mark: null, text: UNDEFINED_TEXT };
  const ms = meanStd(values);
  const std = ms.n > 1 ? ms.std : null;
  const text = fixed(ms.mean, digits) + (std === null ? "" : ` ± ${fixed(std, digits)}`) + unit;
  return { mean: ms.mean, std, n: ms.n, mark: null, text };
}

function markRow(row: TableRow, digits: number, skip: number): void {
  const keyOf = (c: TableCell) => Number(c.mean.toFixed(digits));
  const keys: number[] = [];
  row.cells.forEach((c, j) => {
    if (c !== null && j !== skip && Number.isFinite(c.mean)) keys.push(keyOf(c));
  });
  const distinct = [...new Set(keys)].sort((a, b) => b - a);
  const best = distinct[0];
  const second = distinct[1];
  row.cells.forEach((c, j) => {
    if (c === null || j === skip || !Number.isFinite(c.mean)) return;
    const k = keyOf(c);
    if (k === best) c.mark = "best";
    else if (k === second) c.mark = "second";
  });
}

interface Validated {
  tasks: string[];
  /** [method][task] -> {auc, gauc} */
  byTask: { auc: number[]; gauc: number[] }[][];
  seeds: number[];
}

function validate(summaries: MethodSummary[], baseline: string): Validated {
  if (summaries.length === 0) throw new Error("buildComparisonTable: summaries is empty");
  const names = new Set<string>();
  for (const s of summaries) {
    if (names.has(s.method)) throw new Error(`buildComparisonTable: duplicate method "${s.method}"`);
    names.add(s.method);
  }
  const base = summaries.find((s) => s.method === baseline);
  if (base === undefined) {
    throw new Error(`buildComparisonTable: opts.baseline "${baseline}" is not among the methods (${[...names].join(", ")})`);
  }
  const tasks = base.perTask.map((t) => t.task);
  if (tasks.length === 0) throw new Error(`buildComparisonTable: baseline "${baseline}" has no tasks`);
  const byTask: Validated["byTask"] = [];
  const seeds: number[] = [];
  for (const s of summaries) {
    const map = new Map<string, { auc: number[]; gauc: number[] }>();
    for (const t of s.perTask) {
      if (map.has(t.task)) throw new Error(`buildComparisonTable: method "${s.method}" lists task "${t.task}" twice`);
      if (!tasks.includes(t.task)) {
        throw new Error(`buildComparisonTable: method "${s.method}" has task "${t.task}" which the baseline lacks`);
      }
      map.set(t.task, t);
    }
    let nSeeds = -1;
    const row: { auc: number[]; gauc: number[] }[] = [];
    for (const task of tasks) {
      const t = map.get(task);
      if (t === undefined) throw new Error(`buildComparisonTable: method "${s.method}" is missing task "${task}"`);
      for (const [kind, xs] of [["auc", t.auc], ["gauc", t.gauc]] as const) {
        if (xs.length === 0) throw new Error(`buildComparisonTable: method "${s.method}" task "${task}" has no ${kind} values`);
        if (nSeeds === -1) nSeeds = xs.length;
        else if (xs.length !== nSeeds) {
          throw new Error(
            `buildComparisonTable: method "${s.method}" task "${task}" has ${xs.length} ${kind} values, expected ${nSeeds} (one per seed, aligned across tasks)`,
          );
        }
      }
      row.push(t);
    }
    if (s.seeds !== undefined) {
      if (s.seeds.length !== nSeeds) {
        throw new Error(`buildComparisonTable: method "${s.method}" lists ${s.seeds.length} seeds for ${nSeeds} values per task`);
      }
      if (new Set(s.seeds).size !== s.seeds.length) throw new Error(`buildComparisonTable: method "${s.method}" lists a seed twice`);
    }
    byTask.push(row);
    seeds.push(nSeeds);
  }
  return { tasks, byTask, seeds };
}

/** Build the table model. @throws on inconsistent summaries (messages name the method/task). */
export function buildComparisonTable(summaries: MethodSummary[], opts: ComparisonOptions): ComparisonTable {
  const digits = opts.digits ?? 4;
  const riDigits = opts.riDigits ?? 2;
  checkDigits("digits", digits);
  checkDigits("riDigits", riDigits);
  const { tasks, byTask, seeds } = validate(summaries, opts.baseline);
  const bIdx = summaries.findIndex((s) => s.method === opts.baseline);
  const T = tasks.length;
  const baseAuc = byTask[bIdx]!.map((t) => meanStd(t.auc).mean);
  const baseGauc = byTask[bIdx]!.map((t) => meanStd(t.gauc).mean);

  const rows: TableRow[] = [];
  for (let t = 0; t < T; t++) {
    rows.push({ metric: `${tasks[t]} AUC`, unit: "", cells: byTask.map((m) => makeCell(m[t]!.auc, digits, "")) });
    rows.push({ metric: `${tasks[t]} GAUC`, unit: "", cells: byTask.map((m) => makeCell(m[t]!.gauc, digits, "")) });
  }
  const perSeed = (m: number, fn: (s: number) => number) => Array.from({ length: seeds[m]! }, (_, s) => fn(s));
  // AV and RI over the tasks whose metric is defined in every run of every method (see the file comment)
  const defined = {
    auc: tasks.map((_, t) => t).filter((t) => byTask.every((m) => m[t]!.auc.every(isDefined))),
    gauc: tasks.map((_, t) => t).filter((t) => byTask.every((m) => m[t]!.gauc.every(isDefined))),
  };
  const taskValues = (m: number, kind: "auc" | "gauc", s: number) => defined[kind].map((t) => byTask[m]![t]![kind][s]!);
  const av = (m: number, kind: "auc" | "gauc", s: number) => meanAt(taskValues(m, kind, s));
  rows.push({ metric: "AV-A", unit: "", cells: byTask.map((_, m) => makeCell(perSeed(m, (s) => av(m, "auc", s)), digits, "")) });
  rows.push({ metric: "AV-G", unit: "", cells: byTask.map((_, m) => makeCell(perSeed(m, (s) => av(m, "gauc", s)), digits, "")) });
  const riCells = (kind: "auc" | "gauc", base: number[]) =>
    byTask.map((_, m) =>
      m === bIdx
        ? null
        : makeCell(perSeed(m, (s) => (defined[kind].length ? 100 * relativeImprovement(taskValues(m, kind, s), defined[kind].map((t) => base[t]!)) : NaN)), riDigits, "%"),
    );
  rows.push({ metric: "RI-A", unit: "%", cells: riCells("auc", baseAuc) });
  rows.push({ metric: "RI-G", unit: "%", cells: riCells("gauc", baseGauc) });

  for (const row of rows) {
    if (row.unit === "%") markRow(row, riDigits, bIdx);
    else markRow(row, digits, -1);
  }
  const table: ComparisonTable = {
    columns: summaries.map((s) => ({ method: s.method, label: s.label })),
    rows,
    baseline: opts.baseline,
    digits,
    riDigits,
  };
  const notes = undefinedNotes(tasks, defined.auc, defined.gauc, opts.split ?? "test");
  if (notes.length) table.notes = notes;
  if (opts.differences) {
    // Per method and seed index: AV-A, AV-G, then each task's AUC (the difference rows).
    const series = byTask.map((_, m) => [
      perSeed(m, (s) => av(m, "auc", s)),
      perSeed(m, (s) => av(m, "gauc", s)),
      ...tasks.map((_, t) => byTask[m]![t]!.auc),
    ]);
    const metrics = ["AV-A", "AV-G", ...tasks.map((t) => `${t} AUC`)];
    table.differences = [];
    for (const ref of opts.differences) {
      const r = summaries.findIndex((s) => s.method === ref);
      if (r < 0) continue;
      const others = summaries.map((_, m) => m).filter((m) => m !== r);
      table.differences.push({
        reference: ref,
        referenceLabel: summaries[r]!.label,
        columns: others.map((m) => ({ method: summaries[m]!.method, label: summaries[m]!.label })),
        rows: metrics.map((metric, k) => ({
          metric,
          cells: withHolm(
            others.map((m) => {
              const pairs = seedPairs(summaries[m]!, summaries[r]!, seeds[m]!, seeds[r]!);
              return diffCell(pairs.map(([i]) => series[m]![k]![i]!), pairs.map(([, j]) => series[r]![k]![j]!), digits);
            }),
          ),
        })),
        level: 0.95,
        digits,
      });
    }
  }
  return table;
}

/**
 * The notes on tasks left out of AV/RI: one for A and G together when they leave out the same
 * tasks, else one each, e.g. "AV-A/AV-G and RI-A/RI-G over 5 of 6 tasks: follow undefined on test (n/a)".
 */
export function undefinedNotes(tasks: readonly string[], definedA: readonly number[], definedG: readonly number[], split: string): string[] {
  const T = tasks.length;
  const left = (d: readonly number[]) => tasks.filter((_, t) => !d.includes(t));
  const note = (rows: string, d: readonly number[]) =>
    d.length === 0
      ? `${rows}: n/a, no task is defined on ${split} (${left(d).join(", ")})`
      : `${rows} over ${d.length} of ${T} tasks: ${left(d).join(", ")} undefined on ${split} (n/a)`;
  const a = left(definedA);
  const g = left(definedG);
  if (a.length === 0 && g.length === 0) return [];
  if (a.join("\0") === g.join("\0")) return [note("AV-A/AV-G and RI-A/RI-G", definedA)];
  return [...(a.length ? [note("AV-A and RI-A", definedA)] : []), ...(g.length ? [note("AV-G and RI-G", definedG)] : [])];
}

/** Index pairs [i in a, j in b] of the same seed: by seed id when both list them, else by index (equal counts only). */
function seedPairs(a: MethodSummary, b: MethodSummary, na: number, nb: number): [number, number][] {
  if (a.seeds && b.seeds) {
    const out: [number, number][] = [];
    a.seeds.forEach((s, i) => {
      const j = b.seeds!.indexOf(s);
      if (j >= 0) out.push([i, j]);
    });
    return out;
  }
  return na === nb ? Array.from({ length: na }, (_, i) => [i, i] as [number, number]) : [];
}

/** Signed fixed-point text: "+0.0012", "-0.0030", "0.0000" for a displayed zero. */
function signed(x: number, digits: number): string {
  const s = fixed(x, digits);
  return /^-|^NaN$/.test(s) || Number(s) === 0 ? s : `+${s}`;
}

/** The cell of the paired difference a − b (aligned by seed) at `digits` decimals. */
export function diffCell(a: number[], b: number[], digits: number): DiffCell {
  if (a.length === 0) return { mean: NaN, std: null, n: 0, lo: null, hi: null, sign: null, text: "n/a" };
  // an undefined metric (one-class split) in any paired seed: no difference either
  if (!a.every(isDefined) || !b.every(isDefined)) return { mean: NaN, std: null, n: a.length, lo: null, hi: null, sign: null, text: UNDEFINED_TEXT };
  const d = pairedDifference(a, b);
  if (d.n < 2) return { mean: d.mean, std: null, n: d.n, lo: null, hi: null, sign: null, text: `${signed(d.mean, digits)} [n/a]` };
  const sign = d.lo > 0 ? "above" : d.hi < 0 ? "below" : "spans";
  return {
    mean: d.mean,
    std: d.std,
    n: d.n,
    lo: d.lo,
    hi: d.hi,
    sign: Number.isNaN(d.lo) || Number.isNaN(d.hi) ? null : sign,
    text: `${signed(d.mean, digits)} [${signed(d.lo, digits)}, ${signed(d.hi, digits)}]`,
  };
}

/** Family-wise error rate of the Holm correction in the difference tables. */
export const HOLM_ALPHA = 0.05;

/** Adds Holm's correction to the cells of one family (one metric against one reference); cells without an interval are left out of it. */
export function withHolm(cells: DiffCell[]): DiffCell[] {
  const idx = cells.map((c, i) => (c.lo !== null && c.hi !== null && c.std !== null && c.n >= 2 ? i : -1)).filter((i) => i >= 0);
  const fam = holmFamily(
    idx.map((i) => ({ mean: cells[i]!.mean, std: cells[i]!.std!, n: cells[i]!.n })),
    HOLM_ALPHA,
  );
  idx.forEach((i, k) => {
    const h = fam[k]!;
    if (!Number.isFinite(h.lo) || !Number.isFinite(h.hi)) return;
    cells[i]!.holm = { p: h.p, pHolm: h.pHolm, lo: h.lo, hi: h.hi, level: h.level, m: h.m, sign: h.lo > 0 ? "above" : h.hi < 0 ? "below" : "spans" };
  });
  return cells;
}

/** True when the cell's Holm-adjusted interval excludes 0 (what the tables set in bold). */
export function holmExcludes(c: DiffCell): boolean {
  return c.holm !== undefined && c.holm.sign !== "spans";
}

/** Placeholder for not-applicable cells (the baseline's RI). */
const NA = "-";

/** Escapes a label for GitHub Markdown (backslash before Markdown punctuation, newlines → space). */
export function mdEscape(s: string): string {
  return s.replace(/[\r\n]+/g, " ").replace(/[\\`*_{}[\]<>|&~#]/g, (c) => `\\${c}`);
}

/**
 * GitHub-flavoured Markdown: best **x**, second <u>x</u>, "-" for not-applicable.
 * Labels and task names are escaped (backslash before Markdown punctuation, newlines → space).
 */
export function toMarkdown(table: ComparisonTable): string {
  const head = `| Metric | ${table.columns.map((c) => mdEscape(c.label)).join(" | ")} |`;
  const sep = `|---|${table.columns.map(() => "---:").join("|")}|`;
  const body = table.rows.map((r) => {
    const cells = r.cells.map((c) => {
      if (c === null) return NA;
      if (c.mark === "best") return `**${c.text}**`;
      if (c.mark === "second") return `<u>${c.text}</u>`;
      return c.text;
    });
    return `| ${mdEscape(r.metric)} | ${cells.join(" | ")} |`;
  });
  const notes = table.notes?.length ? `\n${table.notes.map((n) => `Note: ${mdEscape(n)}`).join("\n\n")}\n` : "";
  const main = [head, sep, ...body].join("\n") + "\n" + notes;
  return table.differences?.length ? `${main}\n${differencesToMarkdown(table)}` : main;
}

/** What a difference table shows, in one sentence (Markdown and HTML captions). */
export function differenceCaption(d: DifferenceTable): string {
  const pct = Math.round(d.level * 100);
  return (
    `Paired difference vs ${d.referenceLabel}: mean over seeds of (method − ${d.referenceLabel}) on the same seed ` +
    `(same initialisation and data order), with its ${pct} % t-interval (n − 1 degrees of freedom); ` +
    `bold: the difference holds after Holm's correction over the ${d.columns.length} methods compared with ${d.referenceLabel} on that metric ` +
    `(its Holm-adjusted interval excludes 0, adjusted p < ${HOLM_ALPHA}; those intervals and p-values are in differences.csv); "n/a": one seed, no interval.` +
    (d.rows.some((r) => r.cells.some((c) => c.text === UNDEFINED_TEXT && c.n > 0)) ? ` A cell reading only "n/a": the metric is undefined on the split (one class).` : "")
  );
}

/**
 * The paired-difference tables in GitHub Markdown (one per reference, each after a caption
 * line); cells whose interval excludes 0 are bold. "" when the table has none.
 */
export function differencesToMarkdown(table: Pick<ComparisonTable, "differences">): string {
  const parts: string[] = [];
  for (const d of table.differences ?? []) {
    const head = `| Δ vs ${mdEscape(d.referenceLabel)} | ${d.columns.map((c) => mdEscape(c.label)).join(" | ")} |`;
    const sep = `|---|${d.columns.map(() => "---:").join("|")}|`;
    const body = d.rows.map((r) => `| ${mdEscape(r.metric)} | ${r.cells.map((c) => (holmExcludes(c) ? `**${c.text}**` : c.text)).join(" | ")} |`);
    parts.push(`${mdEscape(differenceCaption(d))}\n\n${[head, sep, ...body].join("\n")}\n`);
  }
  return parts.join("\n");
}

/**
 * The paired differences as long CSV, one line per (reference, metric, method):
 * method,label,vs,metric,mean,std,n,ci_low,ci_high,level,p,p_holm,holm_low,holm_high,holm_level,holm_m.
 * std and the interval are empty with fewer than two paired seeds; mean is empty without any;
 * the Holm columns (see DiffCell.holm: the family is every method against `vs` on `metric`) are
 * empty without an interval. Header only when none.
 */
export function differencesToCsv(table: Pick<ComparisonTable, "differences">): string {
  const lines = ["method,label,vs,metric,mean,std,n,ci_low,ci_high,level,p,p_holm,holm_low,holm_high,holm_level,holm_m"];
  const num = (x: number | null) => (x === null || Number.isNaN(x) ? "" : String(x));
  for (const d of table.differences ?? []) {
    for (const r of d.rows) {
      r.cells.forEach((c, j) => {
        const col = d.columns[j]!;
        const h = c.holm;
        const holm = h ? [num(h.p), num(h.pHolm), num(h.lo), num(h.hi), num(h.level), String(h.m)] : ["", "", "", "", "", ""];
        lines.push([col.method, col.label, d.reference, r.metric, num(c.mean), num(c.std), String(c.n), num(c.lo), num(c.hi), String(d.level), ...holm].map(csvField).join(","));
      });
    }
  }
  return lines.join("\n") + "\n";
}

/** A CSV field, quoted when it holds a quote, comma, line break or edge whitespace (RFC 4180). */
export function csvField(s: string): string {
  return /[",\r\n]|^\s|\s$/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/**
 * Long ("tidy") CSV, one line per (metric row, method), rows in table order, methods in
 * column order. Header: method,label,metric,unit,mean,std,n,mark.
 * Numbers are unrounded (shortest round-trip form); RI rows are in percent (unit "%").
 * std is empty with one seed; mean, std and n are empty for not-applicable cells
 * (the baseline's RI); mean and std are empty for an undefined ("n/a") or missing cell, whose
 * n counts the seeds with a defined value (never "NaN" in the file; the notes on which tasks
 * AV/RI leave out are in results.md and report.html). mark is "best", "second" or empty. Fields containing a comma,
 * quote, CR/LF or edge whitespace are quoted with "" doubling (RFC 4180); lines end in "\n".
 */
export function toCsv(table: ComparisonTable): string {
  const lines = ["method,label,metric,unit,mean,std,n,mark"];
  for (const r of table.rows) {
    r.cells.forEach((c, j) => {
      const col = table.columns[j]!;
      const num = (x: number | null) => (x === null || !Number.isFinite(x) ? "" : String(x));
      const nums = c === null ? ["", "", ""] : [num(c.mean), Number.isFinite(c.mean) ? num(c.std) : "", String(c.n)];
      lines.push([col.method, col.label, r.metric, r.unit, ...nums, c?.mark ?? ""].map(csvField).join(","));
    });
  }
  return lines.join("\n") + "\n";
}

function htmlEscape(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!);
}

/** An HTML <table> string: best in <b>, second in <u>, "-" for not-applicable; all text escaped; the notes follow as captions. */
export function toHtmlTable(table: ComparisonTable): string {
  const out: string[] = ["<table>", "<thead>"];
  out.push(`<tr><th>Metric</th>${table.columns.map((c) => `<th>${htmlEscape(c.label)}</th>`).join("")}</tr>`);
  out.push("</thead>", "<tbody>");
  for (const r of table.rows) {
    const tds = r.cells.map((c) => {
      if (c === null) return `<td>${NA}</td>`;
      const t = htmlEscape(c.text);
      return `<td>${c.mark === "best" ? `<b>${t}</b>` : c.mark === "second" ? `<u>${t}</u>` : t}</td>`;
    });
    out.push(`<tr><th scope="row">${htmlEscape(r.metric)}</th>${tds.join("")}</tr>`);
  }
  out.push("</tbody>", "</table>");
  for (const n of table.notes ?? []) out.push(`<p class="caption">Note: ${htmlEscape(n)}</p>`);
  return out.join("\n") + "\n";
}

/** The paired-difference tables as HTML (a caption paragraph, then a <table>, per reference); bold where the interval excludes 0. */
export function differencesToHtml(table: Pick<ComparisonTable, "differences">): string {
  const out: string[] = [];
  for (const d of table.differences ?? []) {
    out.push(`<p class="caption">${htmlEscape(differenceCaption(d))}</p>`, "<table>", "<thead>");
    out.push(`<tr><th>Δ vs ${htmlEscape(d.referenceLabel)}</th>${d.columns.map((c) => `<th>${htmlEscape(c.label)}</th>`).join("")}</tr>`);
    out.push("</thead>", "<tbody>");
    for (const r of d.rows) {
      const tds = r.cells.map((c) => {
        const t = htmlEscape(c.text);
        const title = c.holm ? ` title="Holm-adjusted p = ${c.holm.pHolm.toPrecision(2)} (unadjusted ${c.holm.p.toPrecision(2)}, ${c.holm.m} comparisons); Holm interval [${c.holm.lo.toFixed(d.digits)}, ${c.holm.hi.toFixed(d.digits)}]"` : "";
        return `<td${title}>${holmExcludes(c) ? `<b>${t}</b>` : t}</td>`;
      });
      out.push(`<tr><th scope="row">${htmlEscape(r.metric)}</th>${tds.join("")}</tr>`);
    }
    out.push("</tbody>", "</table>");
  }
  return out.length ? out.join("\n") + "\n" : "";
}
