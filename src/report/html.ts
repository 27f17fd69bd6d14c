/**
 * Self-contained HTML report for a sweep of runs (several methods × seeds on one
 * dataset/model). One file: inline CSS, the charting library (Vega-Lite, see vendor.ts) and
 * the charts' specs and data inlined, no external requests, so it can be mailed, archived or
 * opened offline. One focus method (the best on validation, or the one asked for) and EW are
 * drawn strong; the others are muted until picked in a method legend; values show on hover.
 */
import type { RunResult } from "./types.ts";
import { esc, finite } from "./svg.ts";
import type { ComparisonTable, DifferenceTable } from "./table.ts";
import { methodCosts, type MethodCost } from "./verdict.ts";
import { meanInterval } from "../metrics/ci.ts";
import { didYouMean } from "../util/suggest.ts";
import { BASELINE_COLOR, METHOD_PALETTE, methodPalette } from "./palette.ts";
import {
  ChartSet,
  costSpec,
  heatmapsSpec,
  intervalsSpec,
  methodLinesSpec,
  taskLinesSpec,
  type CostPoint,
  type HeatCell,
  type LinePoint,
  type MethodStyle,
} from "./charts.ts";
import { chartLibraryScripts } from "./vendor.ts";
import { comparisonToHtml, differenceToHtml } from "./tables-html.ts";

export { BASELINE_COLOR, METHOD_PALETTE };

export interface ReportOptions {
  title: string;
  runs: RunResult[];
  /** Pre-rendered verdict section (trusted HTML from verdictToHtml, a <section id="verdict">); the report's first section. */
  verdictHtml?: string;
  /** The comparison table: rendered here, methods as rows beyond 8 methods, with cost relative to EW. */
  comparison?: ComparisonTable;
  /** Pre-rendered comparison table (trusted HTML from toHtmlTable); inserted as is when `comparison` is not given. */
  tableHtml?: string;
  /** Free-text metadata (command, date, machine, ...), shown escaped in the header. */
  meta?: Record<string, string>;
  /** Paired differences with 95 % intervals (ComparisonTable.differences): tables and interval plots. */
  differences?: DifferenceTable[];
  /** Pre-rendered quality-bar section (trusted HTML from qualityToHtml, a <section id="quality">); inserted as is. */
  qualityHtml?: string;
  /** Pre-rendered grid-selection section (trusted HTML from selectionToHtml, a <section id="selection">); inserted as is. */
  selectionHtml?: string;
  /** Method (option name) drawn strong beside EW; default: the best mean val AUC of its final runs (Single excluded). */
  focus?: string;
}

/** Task colours (Okabe–Ito), used where lines are tasks rather than methods. */
const TASK_PALETTE = ["#0072b2", "#d55e00", "#009e73", "#cc79a7", "#e69f00", "#56b4e9", "#000000", "#f0e442"];
/** Cap on points per plotted line; longer diagnostics are averaged into buckets. */
const MAX_POINTS = 240;

interface MethodGroup {
  key: string;
  /** Unique among the groups (a repeated label gets its option name appended). */
  label: string;
  color: string;
  dashed: boolean;
  runs: RunResult[];
}

/** Runs grouped by method: the `single` baseline first, then in order of first appearance. */
export function groupMethods(runs: RunResult[]): MethodGroup[] {
  const byKey = new Map<string, RunResult[]>();
  for (const r of runs) {
    const list = byKey.get(r.method);
    if (list) list.push(r);
    else byKey.set(r.method, [r]);
  }
  const keys = [...byKey.keys()].sort((a, b) => Number(b === "single") - Number(a === "single"));
  const palette = methodPalette(keys.filter((k) => k !== "single").length);
  let k = 0;
  const seen = new Set<string>();
  return keys.map((key) => {
    const list = byKey.get(key)!;
    const base = key === "single";
    const color = base ? BASELINE_COLOR : palette[k++]!;
    let label = list[0]!.methodLabel || key;
    if (seen.has(label)) label = `${label} (${key})`;
    seen.add(label);
    return { key, label, color, dashed: base, runs: list };
  });
}

/** Method option name → colour, as used in every plot of the report. */
export function methodColors(runs: RunResult[]): Map<string, string> {
  return new Map(groupMethods(runs).map((g) => [g.key, g.color]));
}

/** Task names in first-seen order across runs. */
function allTasks(runs: RunResult[]): string[] {
  const out: string[] = [];
  for (const r of runs) for (const t of r.tasks) if (!out.includes(t)) out.push(t);
  return out;
}

function taskColor(i: number): string {
  return TASK_PALETTE[i % TASK_PALETTE.length]!;
}

function mean(xs: (number | null | undefined)[]): number | null {
  let s = 0;
  let n = 0;
  for (const x of xs) {
    const f = finite(x);
    if (f !== null) {
      s += f;
      n++;
    }
  }
  return n ? s / n : null;
}

interface Agg {
  points: [number, number | null][];
  band: [number, number | null, number | null][];
  seeds: number;
}

/**
 * Combine one x→y map per run (seed) into mean and min..max per x over the
 * runs that have a finite value there; long series are averaged into buckets.
 */
function aggregate(perRun: Map<number, number | null>[], maxPoints = MAX_POINTS): Agg {
  const xset = new Set<number>();
  for (const m of perRun) for (const x of m.keys()) if (Number.isFinite(x)) xset.add(x);
  const xs = Float64Array.from(xset).sort();
  type Row = { x: number; mean: number | null; lo: number | null; hi: number | null };
  const rows: Row[] = [];
  for (const x of xs) {
    let sum = 0, n = 0, lo = Infinity, hi = -Infinity;
    for (const m of perRun) {
      const v = finite(m.get(x));
      if (v === null) continue;
      sum += v;
      n++;
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
    rows.push(n ? { x, mean: sum / n, lo, hi } : { x, mean: null, lo: null, hi: null });
  }
  let out: Row[] = rows;
  if (rows.length > maxPoints) {
    const k = Math.ceil(rows.length / maxPoints);
    out = [];
    for (let i = 0; i < rows.length; i += k) {
      const b = rows.slice(i, i + k);
      const lows = b.map((r) => r.lo).filter((v): v is number => v !== null);
      const highs = b.map((r) => r.hi).filter((v): v is number => v !== null);
      out.push({
        x: mean(b.map((r) => r.x))!,
        mean: mean(b.map((r) => r.mean)),
        lo: lows.length ? Math.min(...lows) : null,
        hi: highs.length ? Math.max(...highs) : null,
      });
    }
  }
  return {
    points: out.map((r) => [r.x, r.mean]),
    band: out.map((r) => [r.x, r.lo, r.hi]),
    seeds: perRun.length,
  };
}

/** epoch → value for one run; `pick` reduces a history point to a number (last point per epoch wins). */
function byEpoch(r: RunResult, pick: (h: RunResult["history"][number]) => number | null): Map<number, number | null> {
  const m = new Map<number, number | null>();
  for (const h of r.history) m.set(h.epoch + 1, pick(h)); // epochs completed (1-based)
  return m;
}

function byStep(r: RunResult, pick: (d: RunResult["diagnostics"][number]) => number | null): Map<number, number | null> {
  const m = new Map<number, number | null>();
  for (const d of r.diagnostics) m.set(d.step, pick(d));
  return m;
}

/** Centered moving average over a run's points in x order (non-finite values skipped). */
function smooth(m: Map<number, number | null>, window: number): Map<number, number | null> {
  if (window <= 1) return m;
  const xs = [...m.keys()].sort((a, b) => a - b);
  const half = Math.floor(window / 2);
  // Prefix sums of finite values and of their count: O(n) for any window.
  const sum = [0];
  const cnt = [0];
  for (const x of xs) {
    const v = finite(m.get(x));
    sum.push(sum[sum.length - 1]! + (v ?? 0));
    cnt.push(cnt[cnt.length - 1]! + (v === null ? 0 : 1));
  }
  const out = new Map<number, number | null>();
  xs.forEach((x, i) => {
    const a = Math.max(0, i - half);
    const b = Math.min(xs.length, i + half + 1);
    const n = cnt[b]! - cnt[a]!;
    out.set(x, n > 0 ? (sum[b]! - sum[a]!) / n : null);
  });
  return out;
}

/** The small multiples keep fewer points per line than the method charts. */
const PANEL_POINTS = 120;

function figure(chart: string, caption: string, cls = ""): string {
  return `<figure${cls ? ` class="${cls}"` : ""}>${chart}<figcaption>${caption}</figcaption></figure>`;
}

function note(text: string): string {
  return `<p class="note">${text}</p>`;
}

function names(groups: MethodGroup[]): string {
  return groups.map((g) => esc(g.label)).join(", ");
}

/** Mean over a run's tasks of its final val AUC (non-finite tasks skipped). */
function runValAuc(r: RunResult): number | null {
  return mean(r.val.auc);
}

/**
 * The focus method's option name: `focus` when given (an unknown one is an error naming the
 * methods present), else the method with the best mean val AUC over its final runs, Single
 * excluded (it is not one model); null when no method qualifies.
 */
export function pickFocus(runs: RunResult[], focus?: string): string | null {
  const methods = [...new Set(runs.map((r) => r.method))];
  if (focus !== undefined) {
    if (!methods.includes(focus)) {
      throw new Error(`--focus ${focus}: no runs of that method in this report (methods: ${methods.join(", ")})${didYouMean(focus, methods)}`);
    }
    return focus;
  }
  let best: string | null = null;
  let bestV = -Infinity;
  for (const m of methods) {
    if (m === "single") continue;
    const v = mean(runs.filter((r) => r.method === m).map(runValAuc));
    if (v !== null && v > bestV) {
      bestV = v;
      best = m;
    }
  }
  return best;
}

interface Ctx {
  groups: MethodGroup[];
  tasks: string[];
  charts: ChartSet;
  styles: MethodStyle[];
  strong: string[];
  base: string[];
  focus: MethodGroup | null;
  /** The focus was named (--focus) rather than picked on validation. */
  focusAsked: boolean;
  ew: MethodGroup | null;
}

/** The buttons above method charts: one per method, its colour, click to draw it strong (again to mute). */
function methodLegend(c: Ctx, groups = c.groups): string {
  const items = groups.map((g) => {
    const tag = g === c.focus ? " (focus)" : "";
    const cls = c.strong.includes(g.label) ? ` class="strong"` : "";
    const sw = `<span class="sw${g.dashed ? " dashed" : ""}" style="border-top-color:${esc(g.color)}"></span>`;
    return `<button type="button"${cls} data-m="${esc(g.label)}" data-color="${esc(g.color)}" aria-pressed="false">${sw}${esc(g.label)}${tag}</button>`;
  });
  return `<div class="mlegend" role="group" aria-label="Methods: click one to draw it strong">${items.join("")}</div>`;
}

function strongNote(c: Ctx): string {
  const parts: string[] = [];
  if (c.focus) parts.push(`<b>${esc(c.focus.label)}</b> (the focus method: ${c.focusAsked ? "asked for with --focus" : "the best mean validation AUC of its final runs"})`);
  if (c.ew && c.ew !== c.focus) parts.push(`<b>${esc(c.ew.label)}</b>`);
  return parts.length ? `Drawn strong: ${parts.join(" and ")}; the other methods are muted: click a method in the legend to draw it strong (again to mute it), hover a point for its value.` : "Click a method in the legend to draw it strong (again to mute it); hover a point for its value.";
}

function methodLines(c: Ctx, perGroup: (g: MethodGroup) => Agg | null, groups = c.groups): LinePoint[] {
  const rows: LinePoint[] = [];
  for (const g of groups) {
    const a = perGroup(g);
    if (!a) continue;
    a.points.forEach(([x, y], i) => {
      const b = a.band[i];
      rows.push({ m: g.label, x, y, lo: b?.[1] ?? null, hi: b?.[2] ?? null });
    });
  }
  return rows;
}

function aucSection(c: Ctx): string {
  const { groups, tasks, charts } = c;
  const curve = (pick: (r: RunResult) => (h: RunResult["history"][number]) => number | null) => (g: MethodGroup) =>
    aggregate(g.runs.map((r) => byEpoch(r, pick(r))));
  const baseline = groups.some((g) => g.dashed);
  const withHistory = groups.filter((g) => g.runs.some((r) => r.history.length > 0));
  const parts = [`<section id="auc"><h2>Validation AUC</h2>`, `<p class="caption">${strongNote(c)}</p>`, methodLegend(c)];
  if (withHistory.length === 0) parts.push(note("No training history recorded in these runs."));
  const rows = methodLines(c, curve((r) => (h) => mean(r.tasks.map((_, i) => h.valAuc[i]))));
  parts.push(
    figure(
      charts.add(
        methodLinesSpec({ rows, methods: c.styles, strong: c.strong, base: c.base, xLabel: "epoch", yLabel: "val AUC (mean over tasks)", title: "Mean validation AUC over tasks", height: 320 }),
        "Mean validation AUC over tasks, per method and epoch",
      ),
      "Validation AUC averaged over tasks, per method, after each epoch. Lines are the mean over seeds; the light band (strong methods only) spans the minimum to maximum over seeds. Higher is better; curves that flatten or drop early indicate over-fitting or a task being starved.",
      "wide",
    ),
  );
  parts.push(`<h3>Per task</h3><div class="grid">`);
  for (const t of tasks) {
    const trows = methodLines(
      c,
      curve((r) => {
        const i = r.tasks.indexOf(t);
        return (h) => (i < 0 ? null : finite(h.valAuc[i]));
      }),
    );
    parts.push(
      figure(
        charts.add(methodLinesSpec({ rows: trows, methods: c.styles, strong: c.strong, base: c.base, xLabel: "epoch", yLabel: "val AUC", title: `Task: ${t}`, height: 230 }), `Validation AUC of task ${t} per method and epoch`),
        `Validation AUC of task <b>${esc(t)}</b> per method (mean over seeds, band = min..max).${baseline ? " Compare against the dashed single-task baseline to see whether sharing helps or hurts this task." : ""}`,
      ),
    );
  }
  parts.push(`</div></section>`);
  return parts.join("");
}

/**
 * Methods with gradient diagnostics to plot. Runs without shared parameters
 * (Single, LR: every gradient norm is 0) have nothing to balance and are listed in a note instead.
 */
function withDiagnostics(groups: MethodGroup[]): { has: MethodGroup[]; missing: MethodGroup[] } {
  const has = groups.filter((g) => g.runs.some((r) => r.diagnostics.some((d) => d.norms.some((n) => n !== 0))));
  return { has, missing: groups.filter((g) => !has.includes(g)) };
}

function taskRows(groups: MethodGroup[], tasks: string[], pick: (d: RunResult["diagnostics"][number], i: number) => number | null): (LinePoint & { t: string })[] {
  const rows: (LinePoint & { t: string })[] = [];
  for (const g of groups) {
    for (const t of tasks) {
      const a = aggregate(
        g.runs.map((r) => {
          const i = r.tasks.indexOf(t);
          return byStep(r, (d) => (i < 0 ? null : pick(d, i)));
        }),
        PANEL_POINTS,
      );
      a.points.forEach(([x, y], k) => rows.push({ m: g.label, t, x, y, lo: a.band[k]?.[1] ?? null, hi: a.band[k]?.[2] ?? null }));
    }
  }
  return rows;
}

function taskStyles(tasks: string[]): MethodStyle[] {
  return tasks.map((t, i) => ({ label: t, color: taskColor(i) }));
}

function normsSection(c: Ctx): string {
  const { has, missing } = withDiagnostics(c.groups);
  const parts = [`<section id="norms"><h2>Per-task gradient norms</h2>`];
  if (has.length === 0) {
    parts.push(note("No balancing diagnostics recorded in these runs."), `</section>`);
    return parts.join("");
  }
  const rows = taskRows(has, c.tasks, (d, i) => finite(d.norms[i]));
  parts.push(
    figure(
      c.charts.add(
        taskLinesSpec({ rows, methods: has.map((g) => g.label), tasks: taskStyles(c.tasks), xLabel: "training step", yLabel: "‖g_task‖", logY: true }),
        "Per-task gradient norms, one panel per method",
        "vl panels",
      ),
      `L2 norm of each task's raw gradient on the shared parameters, one panel per method (log scale; mean over seeds, band = min..max). Lines far apart mean one task dominates the shared update unless the method rebalances it.`,
    ),
  );
  if (missing.length) parts.push(note(`No shared-parameter gradients (nothing to balance) for: ${names(missing)}.`));
  parts.push(`</section>`);
  return parts.join("");
}

/** T×T mean cosine of one method: over each run's logged steps, then over seeds. */
function meanCosines(g: MethodGroup, tasks: string[]): (number | null)[][] {
  const T = tasks.length;
  const cells: (number | null)[][] = [];
  for (let a = 0; a < T; a++) {
    const row: (number | null)[] = [];
    for (let b = 0; b < T; b++) {
      const vals: (number | null)[] = [];
      for (const r of g.runs) {
        const i = r.tasks.indexOf(tasks[a]!);
        const j = r.tasks.indexOf(tasks[b]!);
        if (i < 0 || j < 0) continue;
        const n = r.tasks.length;
        vals.push(mean(r.diagnostics.map((d) => d.cosines[i * n + j])));
      }
      row.push(mean(vals));
    }
    cells.push(row);
  }
  return cells;
}

/** Mean off-diagonal cosine (lower = more conflict); null without any finite pair. */
function offDiagonalMean(m: (number | null)[][]): number | null {
  const vals: (number | null)[] = [];
  m.forEach((row, a) => row.forEach((v, b) => a !== b && vals.push(v)));
  return mean(vals);
}

function heatCells(label: string, tasks: string[], m: (number | null)[][]): HeatCell[] {
  const out: HeatCell[] = [];
  tasks.forEach((a, i) => tasks.forEach((b, j) => out.push({ m: label, a, b, v: m[i]?.[j] ?? null })));
  return out;
}

function cosineSection(c: Ctx): string {
  const { has, missing } = withDiagnostics(c.groups);
  const { tasks, charts } = c;
  const parts = [`<section id="cosine"><h2>Gradient cosine and conflicts</h2>`];
  if (has.length === 0) {
    parts.push(note("No balancing diagnostics recorded in these runs."), `</section>`);
    return parts.join("");
  }
  const mats = new Map(has.map((g) => [g, meanCosines(g, tasks)]));
  // Most conflicting first: ascending mean off-diagonal cosine (methods without one last).
  const byConflict = [...has].sort((x, y) => (offDiagonalMean(mats.get(x)!) ?? Infinity) - (offDiagonalMean(mats.get(y)!) ?? Infinity));
  const ew = c.ew && has.includes(c.ew) ? c.ew : null;
  if (ew) {
    const ref = mats.get(ew)!;
    parts.push(
      `<h3>Mean pairwise cosine under ${esc(ew.label)}</h3>`,
      figure(
        charts.add(heatmapsSpec({ cells: heatCells(ew.label, tasks, ref), methods: [ew.label], tasks, domain: 1, legendTitle: "cos", format: ".2f", columns: 1 }), `${ew.label}: mean pairwise gradient cosine`, "vl panels"),
        `<b>${esc(ew.label)}</b>: cosine between task gradients, averaged over each run's logged steps, then over seeds. Red cells (&lt; 0) are conflicting task pairs, blue cells (&gt; 0) aligned ones; the diagonal is 1 by definition.`,
        "heat",
      ),
    );
    const others = byConflict.filter((g) => g !== ew);
    if (others.length) {
      const cells: HeatCell[] = [];
      let d = 0;
      for (const g of others) {
        const m = mats.get(g)!;
        // The diagonal is 1 − 1 for every method: left blank.
        const diff = m.map((row, i) => row.map((v, j) => (i === j || v === null || ref[i]?.[j] == null ? null : v - ref[i]![j]!)));
        diff.forEach((row, i) => row.forEach((v, j) => i !== j && v !== null && (d = Math.max(d, Math.abs(v)))));
        cells.push(...heatCells(g.label, tasks, diff));
      }
      const domain = Math.max(0.05, Math.ceil(d * 20) / 20);
      parts.push(
        `<h3>Difference from ${esc(ew.label)}'s cosines, most conflicting method first</h3>`,
        figure(
          charts.add(heatmapsSpec({ cells, methods: others.map((g) => g.label), tasks, domain, legendTitle: `Δ cos vs ${ew.label}`, format: "+.2f" }), `Mean pairwise gradient cosine minus ${ew.label}'s, per method`, "vl panels"),
          `Each method's mean pairwise cosine minus ${esc(ew.label)}'s (same averaging), on a scale of ±${domain.toFixed(2)}: red cells are pairs more in conflict than under ${esc(ew.label)}, blue cells better aligned. Panels run from the method with the lowest mean cosine (most conflict) to the highest.`,
        ),
      );
    }
  } else {
    const cells = byConflict.flatMap((g) => heatCells(g.label, tasks, mats.get(g)!));
    parts.push(
      `<h3>Mean pairwise cosine, most conflicting method first</h3>`,
      figure(
        charts.add(heatmapsSpec({ cells, methods: byConflict.map((g) => g.label), tasks, domain: 1, legendTitle: "cos", format: ".2f" }), "Mean pairwise gradient cosine per method", "vl panels"),
        `Cosine between task gradients, averaged over each run's logged steps, then over seeds, per method (EW did not run, so no differences from it). Red cells (&lt; 0) are conflicting task pairs, blue cells (&gt; 0) aligned ones; panels run from the lowest mean cosine (most conflict) to the highest.`,
      ),
    );
  }
  if (missing.length) parts.push(note(`No shared-parameter gradients (nothing to balance) for: ${names(missing)}.`));

  const pairsOf = (n: number) => (n * (n - 1)) / 2;
  // Per-step conflict counts are small integers, so the raw rate jumps between a few levels;
  // a short moving average (about 1/25 of the logged points) makes trends readable.
  const nDiag = Math.max(...has.flatMap((g) => g.runs.map((r) => r.diagnostics.length)));
  const window = Math.max(1, Math.round(nDiag / 25)) | 1;
  const rows = methodLines(
    c,
    (g) =>
      aggregate(
        g.runs.map((r) => {
          const pairs = pairsOf(r.tasks.length);
          return smooth(byStep(r, (d) => (pairs > 0 ? finite(d.conflicts / pairs) : null)), window);
        }),
      ),
    has,
  );
  parts.push(
    `<h3>Conflict rate over training</h3>`,
    methodLegend(c, has),
    figure(
      charts.add(
        methodLinesSpec({ rows, methods: c.styles, strong: c.strong, base: c.base, xLabel: "training step", yLabel: "conflicting pairs / all pairs", yDomain: [0, 1], title: "Share of task pairs with conflicting gradients", yFormat: ".3f" }),
        "Share of task pairs with conflicting gradients per method over training",
      ),
      `Fraction of the T(T−1)/2 task pairs whose gradients point against each other (negative inner product) at each logged step${window > 1 ? `, smoothed by a centred moving average over ${window} logged steps` : ""}; mean over seeds, band = min..max. 0 means all tasks agree, 1 means every pair conflicts.`,
      "wide",
    ),
    `</section>`,
  );
  return parts.join("");
}

function weightsSection(c: Ctx): string {
  // Effective weights (the coefficients of the task gradients in the update) where logged; loss weights in older results.
  const has = (g: MethodGroup, k: "coeffs" | "weights") => g.runs.some((r) => r.diagnostics.some((d) => Array.isArray(d[k])));
  const eff = c.groups.filter((g) => has(g, "coeffs"));
  const loss = c.groups.filter((g) => !has(g, "coeffs") && has(g, "weights"));
  const parts = [`<section id="weights"><h2>Task weights</h2>`];
  if (eff.length + loss.length === 0) {
    parts.push(note("no run logged task weights (results written before effective weights were logged show loss-weighting methods only)"), `</section>`);
    return parts.join("");
  }
  if (eff.length) {
    const rows = taskRows(eff, c.tasks, (d, i) => finite(d.coeffs?.[i]));
    parts.push(
      figure(
        c.charts.add(taskLinesSpec({ rows, methods: eff.map((g) => g.label), tasks: taskStyles(c.tasks), xLabel: "training step", yLabel: "effective weight" }), "Effective task weights, one panel per method", "vl panels"),
        `Effective weight of each task, the coefficient c<sub>i</sub> of its gradient in the update of the shared parameters (direction = Σ c<sub>i</sub> g<sub>i</sub>), at each logged step, one panel per method (mean over seeds, band = min..max). For loss weighting it is the loss weight; for gradient methods it shows how the method resolved the tasks' conflicts.`,
      ),
    );
  }
  if (loss.length) {
    const rows = taskRows(loss, c.tasks, (d, i) => finite(d.weights?.[i]));
    parts.push(
      figure(
        c.charts.add(taskLinesSpec({ rows, methods: loss.map((g) => g.label), tasks: taskStyles(c.tasks), xLabel: "training step", yLabel: "loss weight" }), "Loss weights, one panel per method", "vl panels"),
        `Weight the method puts on each task's loss at each logged step, one panel per method (mean over seeds, band = min..max); these runs logged loss weights only.`,
      ),
    );
  }
  parts.push(`</section>`);
  return parts.join("");
}

function differencesSection(c: Ctx, diffs: DifferenceTable[]): string {
  const parts = [`<section id="differences"><h2>Paired differences (95 % intervals)</h2>`];
  const styleOf = new Map(c.styles.map((s) => [s.label, s]));
  for (const d of diffs) {
    parts.push(`<h3>Against ${esc(d.referenceLabel)}</h3><div class="table-wrap">${differenceToHtml(d)}</div><div class="grid">`);
    const labelOf = new Map(c.groups.map((g) => [g.key, g.label]));
    for (const metric of ["AV-A", "AV-G"]) {
      const row = d.rows.find((r) => r.metric === metric);
      if (!row) continue;
      const methods: MethodStyle[] = d.columns.map((col) => {
        const label = labelOf.get(col.method) ?? col.label;
        return styleOf.get(label) ?? { label, color: BASELINE_COLOR };
      });
      const rows = d.columns.map((col, j) => {
        const cell = row.cells[j]!;
        return { m: methods[j]!.label, mean: cell.mean, lo: cell.lo, hi: cell.hi, hlo: cell.holm?.lo ?? null, hhi: cell.holm?.hi ?? null, p: cell.holm?.p ?? null, ph: cell.holm?.pHolm ?? null };
      });
      parts.push(
        figure(
          c.charts.add(intervalsSpec({ rows, methods, xLabel: `${metric}: method − ${d.referenceLabel}`, title: `${metric} vs ${d.referenceLabel}` }), `${metric} difference against ${d.referenceLabel} per method`),
          `Mean paired difference in ${metric} against <b>${esc(d.referenceLabel)}</b> (same seeds): dot = mean, thin bar = 95 % t-interval, thick pale bar = Holm-adjusted interval over the family of comparisons (no bar with one seed). A bar that crosses the dashed zero line means the seeds do not show a difference.`,
        ),
      );
    }
    parts.push(`</div>`);
  }
  parts.push(`</section>`);
  return parts.join("");
}

/** AV-A of one run: mean over its tasks of the test AUC (non-finite tasks skipped). */
function runAvA(r: RunResult): number | null {
  return mean(r.test.auc);
}

function costSection(c: Ctx, costs: Map<string, MethodCost>): string {
  const parts = [`<section id="cost"><h2>Quality against cost</h2>`];
  const withCost = c.groups.filter((g) => costs.has(g.key));
  const without = c.groups.filter((g) => !costs.has(g.key));
  if (withCost.length === 0) {
    parts.push(note(`No run recorded its cost (results written before ms per step and peak RSS were measured): ${names(without)}.`), `</section>`);
    return parts.join("");
  }
  const ewCost = c.ew ? costs.get(c.ew.key) : undefined;
  const rows: CostPoint[] = withCost.map((g) => {
    const k = costs.get(g.key)!;
    const av = g.runs.map(runAvA).filter((v): v is number => v !== null);
    const iv = av.length ? meanInterval(av) : null;
    return {
      m: g.label,
      ms: k.msPerStep,
      rel: ewCost && ewCost.msPerStep > 0 ? k.msPerStep / ewCost.msPerStep : null,
      a: iv ? iv.mean : null,
      lo: iv && Number.isFinite(iv.lo) ? iv.lo : null,
      hi: iv && Number.isFinite(iv.hi) ? iv.hi : null,
      rss: k.peakRssMb,
    };
  });
  parts.push(
    methodLegend(c, withCost),
    figure(
      c.charts.add(costSpec({ rows, methods: c.styles, strong: c.strong, base: c.base }), "AV-A against milliseconds per training step, per method"),
      `Test AV-A (mean over tasks of the AUC, per seed; dot = mean over seeds, bar = 95 % t-interval) against the median wall time of one training step. Up and to the left is better: a method to the right of ${c.ew ? esc(c.ew.label) : "EW"} must sit clearly above it to be worth its cost. Times are from the machine that ran the sweep.`,
      "wide",
    ),
  );
  if (without.length) parts.push(note(`No cost recorded for: ${names(without)}.`));
  parts.push(`</section>`);
  return parts.join("");
}

// ---------------------------------------------------------------------------

/** The report's style sheet (also used by the conflict-benchmark page). */
export const REPORT_CSS = `
:root{color-scheme:light}
*{box-sizing:border-box}
body{margin:0;background:#f6f7f9;color:#1f2933;font:15px/1.55 system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif}
main{max-width:1380px;margin:0 auto;padding:28px clamp(10px,2vw,28px) 48px}
header{border-bottom:1px solid #dde1e6;padding-bottom:14px;margin-bottom:8px}
h1{font-size:26px;line-height:1.25;margin:0 0 4px;font-weight:650;letter-spacing:-.01em}
h2{font-size:20px;margin:18px 0 8px;font-weight:650}
h3{font-size:15px;margin:22px 0 8px;color:#3e4c59;font-weight:600}
.sub{margin:0 0 10px;color:#52606d}
dl.meta{display:grid;grid-template-columns:max-content 1fr;gap:2px 14px;margin:8px 0 0;font-size:13px}
dl.meta dt{color:#616e7c;font-weight:600}
dl.meta dd{margin:0;font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;word-break:break-all}
nav{font-size:13px;margin:10px 0 0;color:#616e7c}
nav a{color:#2f5f8a;text-decoration:none;margin-right:14px}
section{background:#fff;border:1px solid #e4e7eb;border-radius:8px;padding:4px 16px 16px;margin:18px 0}
.table-wrap{overflow-x:auto}
.table-wrap table{border-collapse:separate;border-spacing:0;font-size:13px;font-variant-numeric:tabular-nums;margin:6px 0}
.table-wrap th,.table-wrap td{padding:5px 9px;border-bottom:1px solid #e4e7eb;text-align:right;white-space:nowrap;background:#fff}
.table-wrap th:first-child,.table-wrap td:first-child{text-align:left;position:sticky;left:0;z-index:1;box-shadow:1px 0 0 #e4e7eb}
.table-wrap thead th{border-bottom:2px solid #9aa5b1;background:#f9fafb}
.table-wrap table.sortable thead th{cursor:pointer;user-select:none}
.table-wrap table.sortable thead th[aria-sort=descending]::after{content:" \\25BE"}
.table-wrap table.sortable thead th[aria-sort=ascending]::after{content:" \\25B4"}
.table-wrap tr.cost th,.table-wrap tr.cost td{color:#52606d}
.table-wrap table.sortable{font-size:12.5px}
.table-wrap table.sortable th,.table-wrap table.sortable td{padding:4px 6px}
.table-wrap table.sortable thead th{white-space:normal;min-width:4em;max-width:7em;vertical-align:bottom}
.table-wrap table.sortable th:first-child{white-space:normal;min-width:8em;max-width:13em}
.table-wrap td small{color:#616e7c;font-size:11px}
figure{margin:0;min-width:0}
figure.wide{max-width:1000px}
.vl{width:100%;min-height:60px}
.vl.panels{width:auto;overflow-x:auto}
.vl svg{max-width:none}
.mlegend{display:flex;flex-wrap:wrap;gap:4px 6px;margin:6px 0 10px}
.mlegend button{display:inline-flex;align-items:center;gap:6px;font:inherit;font-size:12.5px;color:#323f4b;background:#fff;border:1px solid #d0d4da;border-radius:12px;padding:2px 10px;cursor:pointer}
.mlegend button.strong{font-weight:650;color:#1f2933}
.mlegend button[aria-pressed=true]{background:#eef2f7;border-color:#52606d}
.mlegend .sw{display:inline-block;width:20px;height:0;border-top:3px solid}
.mlegend .sw.dashed{border-top-style:dashed}
#vg-tooltip-element{font:12px system-ui,sans-serif}
figure svg{display:block;width:100%;height:auto;max-width:100%}
figure.heat svg{width:auto;max-width:100%}
figcaption{font-size:12.5px;color:#52606d;margin:4px 2px 0;line-height:1.45}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(330px,1fr));gap:18px 22px}
.legend{list-style:none;display:flex;flex-wrap:wrap;gap:4px 18px;padding:0;margin:6px 0 10px;font-size:13px}
.legend li{display:flex;align-items:center;gap:7px}
.legend .sw{display:inline-block;width:24px;height:0;border-top-width:3px}
.note{color:#616e7c;font-style:italic;font-size:14px}
.caption{color:#52606d;font-size:13px;margin:4px 0}
footer{color:#9aa5b1;font-size:12px;margin-top:24px}
`;

/** Render the whole report as one HTML document. */
export function renderReport(opts: ReportOptions): string {
  const runs = opts.runs;
  const groups = groupMethods(runs);
  const tasks = allTasks(runs);
  const focusKey = pickFocus(runs, opts.focus);
  const focus = groups.find((g) => g.key === focusKey) ?? null;
  const ew = groups.find((g) => g.key === "ew") ?? null;
  const strong = [focus, ew].filter((g): g is MethodGroup => g !== null).map((g) => g.label);
  const charts = new ChartSet();
  const ctx: Ctx = {
    groups,
    tasks,
    charts,
    styles: groups.map((g) => ({ label: g.label, color: g.color })),
    strong: [...new Set(strong)],
    base: groups.filter((g) => g.dashed).map((g) => g.label),
    focus,
    focusAsked: opts.focus !== undefined,
    ew,
  };
  const costs = methodCosts(runs);
  const uniq = (xs: string[]) => [...new Set(xs)];
  const datasets = uniq(runs.map((r) => r.dataset));
  const models = uniq(runs.map((r) => r.model));
  const summary = runs.length
    ? [
        `dataset <b>${esc(datasets.join(", "))}</b>`,
        `model <b>${esc(models.join(", "))}</b>`,
        `${groups.length} method${groups.length === 1 ? "" : "s"} × up to ${Math.max(...groups.map((g) => g.runs.length))} seeds (${runs.length} runs)`,
        `tasks: ${esc(tasks.join(", "))}`,
        ...(focus ? [`focus: <b>${esc(focus.label)}</b>${opts.focus === undefined ? " (best mean val AUC)" : ""}`] : []),
      ].join(" · ")
    : "no runs";
  const meta = Object.entries(opts.meta ?? {});
  const body: string[] = [
    `<header><h1>${esc(opts.title)}</h1><p class="sub">${summary}</p>`,
    meta.length ? `<dl class="meta">${meta.map(([k, v]) => `<dt>${esc(k)}</dt><dd>${esc(v)}</dd>`).join("")}</dl>` : "",
    `<nav>${[
      opts.verdictHtml ? ["verdict", "Verdict"] : null,
      opts.comparison || opts.tableHtml ? ["table", "Comparison"] : null,
      opts.differences?.length ? ["differences", "Paired differences"] : null,
      runs.length ? ["cost", "Quality vs cost"] : null,
      opts.qualityHtml ? ["quality", "Quality bar"] : null,
      opts.selectionHtml ? ["selection", "Grid selection"] : null,
      ["auc", "Validation AUC"],
      ["norms", "Gradient norms"],
      ["cosine", "Cosine &amp; conflicts"],
      ["weights", "Task weights"],
    ]
      .filter((x): x is string[] => x !== null)
      .map(([id, t]) => `<a href="#${id}">${t}</a>`)
      .join("")}</nav></header>`,
  ];
  if (opts.verdictHtml) body.push(opts.verdictHtml);
  const tableHtml = opts.comparison ? comparisonToHtml(opts.comparison, { costs, reference: "ew" }) : opts.tableHtml;
  if (tableHtml) body.push(`<section id="table"><h2>Comparison</h2><div class="table-wrap">${tableHtml}</div></section>`);
  if (opts.differences?.length) body.push(differencesSection(ctx, opts.differences));
  if (runs.length) body.push(costSection(ctx, costs));
  if (opts.qualityHtml) body.push(opts.qualityHtml);
  if (opts.selectionHtml) body.push(opts.selectionHtml);
  if (runs.length === 0) {
    body.push(`<section><h2>Runs</h2>${note("No runs to report.")}</section>`);
  } else {
    body.push(aucSection(ctx), normsSection(ctx), cosineSection(ctx), weightsSection(ctx));
  }
  body.push(`<footer>Generated by mtlcraft. Self-contained: charts drawn by the inlined Vega-Lite ${esc(VEGA_NOTE)}; no external resources.</footer>`);
  body.push(charts.scripts(charts.size ? chartLibraryScripts() : ""));
  return reportPage(opts.title, body);
}

const VEGA_NOTE = "(Vega, Vega-Lite, vega-embed: BSD-3-Clause)";

/** Footer of the pages without scripts (the conflict benchmark, the cross-dataset summary). */
export const REPORT_FOOTER = `<footer>Generated by mtlcraft. Self-contained: no scripts, no external resources.</footer>`;

/** A self-contained HTML page (the report's styles) around the given body sections. */
export function reportPage(title: string, body: readonly string[]): string {
  return [
    `<!doctype html>`,
    `<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">`,
    `<title>${esc(title)}</title><style>${REPORT_CSS}</style></head>`,
    `<body><main>${body.join("\n")}</main></body></html>`,
    ``,
  ].join("\n");
}
