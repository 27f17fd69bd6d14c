/**
 * Self-contained HTML report for a sweep of runs (several methods × seeds on
 * one dataset/model). One file: inline CSS and inline SVG, no scripts and no
 * external requests, so it can be mailed, archived or opened offline.
 */
import type { RunResult } from "./types.ts";
import { esc, finite, heatmap, intervalChart, lineChart, type Series } from "./svg.ts";
import { differencesToHtml, type DifferenceTable } from "./table.ts";

export interface ReportOptions {
  title: string;
  runs: RunResult[];
  /** Pre-rendered verdict section (trusted HTML from verdictToHtml, a <section id="verdict">); the report's first section. */
  verdictHtml?: string;
  /** Pre-rendered comparison table (trusted HTML from toHtmlTable); inserted as is. */
  tableHtml?: string;
  /** Free-text metadata (command, date, machine, ...), shown escaped in the header. */
  meta?: Record<string, string>;
  /** Paired differences with 95 % intervals (ComparisonTable.differences): tables and interval plots. */
  differences?: DifferenceTable[];
  /** Pre-rendered quality-bar section (trusted HTML from qualityToHtml, a <section id="quality">); inserted as is. */
  qualityHtml?: string;
  /** Pre-rendered grid-selection section (trusted HTML from selectionToHtml, a <section id="selection">); inserted as is. */
  selectionHtml?: string;
}

/** Method colours (Tableau 10 without its grey; the single-task baseline is grey and dashed). */
export const METHOD_PALETTE = ["#4e79a7", "#f28e2b", "#e15759", "#59a14f", "#b07aa1", "#76b7b2", "#edc948", "#9c755f", "#ff9da7"];
export const BASELINE_COLOR = "#6b7280";
/** Task colours (Okabe–Ito), used where lines are tasks rather than methods. */
const TASK_PALETTE = ["#0072b2", "#d55e00", "#009e73", "#cc79a7", "#e69f00", "#56b4e9", "#000000", "#f0e442"];
/** Cap on points per plotted line; longer diagnostics are averaged into buckets. */
const MAX_POINTS = 240;

interface MethodGroup {
  key: string;
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
  let k = 0;
  return keys.map((key) => {
    const list = byKey.get(key)!;
    const base = key === "single";
    const color = base ? BASELINE_COLOR : METHOD_PALETTE[k++ % METHOD_PALETTE.length]!;
    return { key, label: list[0]!.methodLabel || key, color, dashed: base, runs: list };
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

function legend(items: { name: string; color: string; dashed?: boolean }[]): string {
  const li = items.map(
    (i) =>
      `<li><span class="sw" style="border-top-color:${esc(i.color)};border-top-style:${i.dashed ? "dashed" : "solid"}"></span>${esc(i.name)}</li>`,
  );
  return `<ul class="legend">${li.join("")}</ul>`;
}

function figure(svg: string, caption: string, cls = ""): string {
  return `<figure${cls ? ` class="${cls}"` : ""}>${svg}<figcaption>${caption}</figcaption></figure>`;
}

function note(text: string): string {
  return `<p class="note">${text}</p>`;
}

function names(groups: MethodGroup[]): string {
  return groups.map((g) => esc(g.label)).join(", ");
}

// ---------------------------------------------------------------------------
// Sections

function aucSection(groups: MethodGroup[], tasks: string[]): string {
  const curves = (pick: (r: RunResult) => (h: RunResult["history"][number]) => number | null): Series[] =>
    groups.map((g) => {
      const a = aggregate(g.runs.map((r) => byEpoch(r, pick(r))));
      return { name: g.label, color: g.color, dashed: g.dashed, points: a.points, band: a.band };
    });
  const meanCurves = curves((r) => (h) => mean(r.tasks.map((_, i) => h.valAuc[i])));
  const baseline = groups.some((g) => g.dashed);
  const withHistory = groups.filter((g) => g.runs.some((r) => r.history.length > 0));
  const parts = [
    `<section id="auc"><h2>Validation AUC</h2>`,
    legend(groups.map((g) => ({ name: g.label, color: g.color, dashed: g.dashed }))),
  ];
  if (withHistory.length === 0) parts.push(note("No training history recorded in these runs."));
  parts.push(
    figure(
      lineChart({
        series: meanCurves,
        width: 760,
        height: 340,
        fontSize: 12,
        xLabel: "epoch",
        yLabel: "val AUC (mean over tasks)",
        title: "Mean validation AUC over tasks",
      }),
      "Validation AUC averaged over tasks, per method, after each epoch. Lines are the mean over seeds; the light band spans the minimum to maximum over seeds. Higher is better; curves that flatten or drop early indicate over-fitting or a task being starved.",
      "wide",
    ),
  );
  parts.push(`<h3>Per task</h3><div class="grid">`);
  for (const t of tasks) {
    const series = curves((r) => {
      const i = r.tasks.indexOf(t);
      return (h) => (i < 0 ? null : finite(h.valAuc[i]));
    });
    parts.push(
      figure(
        lineChart({ series, width: 400, height: 270, fontSize: 13, xLabel: "epoch", yLabel: "val AUC", title: `Task: ${t}` }),
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

function taskLines(
  g: MethodGroup,
  tasks: string[],
  pick: (d: RunResult["diagnostics"][number], i: number) => number | null,
): Series[] {
  return tasks.map((t, ti) => {
    const a = aggregate(
      g.runs.map((r) => {
        const i = r.tasks.indexOf(t);
        return byStep(r, (d) => (i < 0 ? null : pick(d, i)));
      }),
    );
    return { name: t, color: taskColor(ti), points: a.points, band: a.band };
  });
}

function normsSection(groups: MethodGroup[], tasks: string[]): string {
  const { has, missing } = withDiagnostics(groups);
  const parts = [`<section id="norms"><h2>Per-task gradient norms</h2>`];
  if (has.length === 0) {
    parts.push(note("No balancing diagnostics recorded in these runs."), `</section>`);
    return parts.join("");
  }
  parts.push(legend(tasks.map((t, i) => ({ name: t, color: taskColor(i) }))), `<div class="grid">`);
  for (const g of has) {
    const series = taskLines(g, tasks, (d, i) => finite(d.norms[i]));
    parts.push(
      figure(
        lineChart({ series, width: 400, height: 270, fontSize: 13, xLabel: "training step", yLabel: "‖g_task‖", logY: true, title: g.label }),
        `<b>${esc(g.label)}</b>: L2 norm of each task's raw gradient on the shared parameters (log scale; mean over seeds, band = min..max). Lines far apart mean one task dominates the shared update unless the method rebalances it.`,
      ),
    );
  }
  parts.push(`</div>`);
  if (missing.length) parts.push(note(`No shared-parameter gradients (nothing to balance) for: ${names(missing)}.`));
  parts.push(`</section>`);
  return parts.join("");
}

function cosineSection(groups: MethodGroup[], tasks: string[]): string {
  const { has, missing } = withDiagnostics(groups);
  const T = tasks.length;
  const parts = [`<section id="cosine"><h2>Gradient cosine and conflicts</h2>`];
  if (has.length === 0) {
    parts.push(note("No balancing diagnostics recorded in these runs."), `</section>`);
    return parts.join("");
  }
  parts.push(`<h3>Mean pairwise cosine</h3><div class="grid">`);
  for (const g of has) {
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
          // Mean over the run's logged steps first, so every seed weighs the same.
          vals.push(mean(r.diagnostics.map((d) => d.cosines[i * n + j])));
        }
        row.push(mean(vals));
      }
      cells.push(row);
    }
    parts.push(
      figure(
        heatmap({ labels: tasks, values: cells, title: g.label, label: `${g.label}: mean pairwise gradient cosine` }),
        `<b>${esc(g.label)}</b>: cosine between task gradients, averaged over each run's logged steps, then over seeds. Red cells (&lt; 0) are conflicting task pairs, blue cells (&gt; 0) aligned ones; the diagonal is 1 by definition.`,
        "heat",
      ),
    );
  }
  parts.push(`</div>`);
  if (missing.length) parts.push(note(`No shared-parameter gradients (nothing to balance) for: ${names(missing)}.`));

  const pairsOf = (n: number) => (n * (n - 1)) / 2;
  // Per-step conflict counts are small integers, so the raw rate jumps between a few levels;
  // a short moving average (about 1/25 of the logged points) makes trends readable.
  const nDiag = Math.max(...has.flatMap((g) => g.runs.map((r) => r.diagnostics.length)));
  const window = Math.max(1, Math.round(nDiag / 25)) | 1;
  const series: Series[] = has.map((g) => {
    const a = aggregate(
      g.runs.map((r) => {
        const pairs = pairsOf(r.tasks.length);
        return smooth(byStep(r, (d) => (pairs > 0 ? finite(d.conflicts / pairs) : null)), window);
      }),
    );
    return { name: g.label, color: g.color, dashed: g.dashed, points: a.points, band: a.band };
  });
  parts.push(
    `<h3>Conflict rate over training</h3>`,
    legend(has.map((g) => ({ name: g.label, color: g.color, dashed: g.dashed }))),
    figure(
      lineChart({
        series,
        width: 760,
        height: 300,
        fontSize: 12,
        xLabel: "training step",
        yLabel: "conflicting pairs / all pairs",
        yDomain: [0, 1],
        title: "Share of task pairs with conflicting gradients",
      }),
      `Fraction of the T(T−1)/2 task pairs whose gradients point against each other (negative inner product) at each logged step${window > 1 ? `, smoothed by a centred moving average over ${window} logged steps` : ""}; mean over seeds, band = min..max. 0 means all tasks agree, 1 means every pair conflicts.`,
      "wide",
    ),
    `</section>`,
  );
  return parts.join("");
}

function weightsSection(groups: MethodGroup[], tasks: string[]): string {
  // Effective weights (the coefficients of the task gradients in the update) where logged; loss weights in older results.
  const has = (g: MethodGroup, k: "coeffs" | "weights") => g.runs.some((r) => r.diagnostics.some((d) => Array.isArray(d[k])));
  const weighted = groups.filter((g) => has(g, "coeffs") || has(g, "weights"));
  const parts = [`<section id="weights"><h2>Task weights</h2>`];
  if (weighted.length === 0) {
    parts.push(note("no run logged task weights (results written before effective weights were logged show loss-weighting methods only)"), `</section>`);
    return parts.join("");
  }
  parts.push(legend(tasks.map((t, i) => ({ name: t, color: taskColor(i) }))), `<div class="grid">`);
  for (const g of weighted) {
    const eff = has(g, "coeffs");
    const series = taskLines(g, tasks, (d, i) => finite(eff ? d.coeffs?.[i] : d.weights?.[i]));
    parts.push(
      figure(
        lineChart({ series, width: 400, height: 270, fontSize: 13, xLabel: "training step", yLabel: eff ? "effective weight" : "loss weight", title: g.label }),
        eff
          ? `<b>${esc(g.label)}</b>: effective weight of each task, the coefficient c<sub>i</sub> of its gradient in the update of the shared parameters (direction = Σ c<sub>i</sub> g<sub>i</sub>), at each logged step (mean over seeds, band = min..max). For loss weighting it is the loss weight; for gradient methods it shows how the method resolved the tasks' conflicts.`
          : `<b>${esc(g.label)}</b>: weight the method puts on each task's loss at each logged step (mean over seeds, band = min..max).`,
      ),
    );
  }
  parts.push(`</div></section>`);
  return parts.join("");
}

function differencesSection(diffs: DifferenceTable[], colors: Map<string, string>): string {
  const parts = [`<section id="differences"><h2>Paired differences (95 % intervals)</h2>`];
  for (const d of diffs) {
    parts.push(`<h3>Against ${esc(d.referenceLabel)}</h3><div class="table-wrap">${differencesToHtml({ differences: [d] })}</div><div class="grid">`);
    for (const metric of ["AV-A", "AV-G"]) {
      const row = d.rows.find((r) => r.metric === metric);
      if (!row) continue;
      const rows = d.columns.map((col, j) => {
        const cell = row.cells[j]!;
        return { name: col.label, color: colors.get(col.method) ?? BASELINE_COLOR, mean: cell.mean, lo: cell.lo, hi: cell.hi };
      });
      parts.push(
        figure(
          intervalChart({ rows, width: 480, xLabel: `${metric}: method − ${d.referenceLabel}`, title: `${metric} vs ${d.referenceLabel}` }),
          `Mean paired difference in ${metric} against <b>${esc(d.referenceLabel)}</b> (same seeds), dot = mean, bar = 95 % t-interval (no bar with one seed). A bar that crosses the dashed zero line means the seeds do not show a difference.`,
        ),
      );
    }
    parts.push(`</div>`);
  }
  parts.push(`</section>`);
  return parts.join("");
}

// ---------------------------------------------------------------------------

/** The report's style sheet (also used by the conflict-benchmark page). */
export const REPORT_CSS = `
:root{color-scheme:light}
*{box-sizing:border-box}
body{margin:0;background:#f6f7f9;color:#1f2933;font:15px/1.55 system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif}
main{max-width:1240px;margin:0 auto;padding:28px clamp(12px,3vw,36px) 48px}
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
section{background:#fff;border:1px solid #e4e7eb;border-radius:8px;padding:4px 20px 16px;margin:18px 0}
.table-wrap{overflow-x:auto}
.table-wrap table{border-collapse:collapse;font-size:13px;font-variant-numeric:tabular-nums;margin:6px 0}
.table-wrap th,.table-wrap td{padding:5px 10px;border-bottom:1px solid #e4e7eb;text-align:right;white-space:nowrap}
.table-wrap th:first-child,.table-wrap td:first-child{text-align:left}
.table-wrap thead th{border-bottom:2px solid #9aa5b1;background:#f9fafb}
figure{margin:0}
figure.wide{max-width:900px}
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
  const uniq = (xs: string[]) => [...new Set(xs)];
  const datasets = uniq(runs.map((r) => r.dataset));
  const models = uniq(runs.map((r) => r.model));
  const summary = runs.length
    ? [
        `dataset <b>${esc(datasets.join(", "))}</b>`,
        `model <b>${esc(models.join(", "))}</b>`,
        `${groups.length} method${groups.length === 1 ? "" : "s"} × up to ${Math.max(...groups.map((g) => g.runs.length))} seeds (${runs.length} runs)`,
        `tasks: ${esc(tasks.join(", "))}`,
      ].join(" · ")
    : "no runs";
  const meta = Object.entries(opts.meta ?? {});
  const body: string[] = [
    `<header><h1>${esc(opts.title)}</h1><p class="sub">${summary}</p>`,
    meta.length ? `<dl class="meta">${meta.map(([k, v]) => `<dt>${esc(k)}</dt><dd>${esc(v)}</dd>`).join("")}</dl>` : "",
    `<nav>${[
      opts.verdictHtml ? ["verdict", "Verdict"] : null,
      opts.tableHtml ? ["table", "Comparison"] : null,
      opts.differences?.length ? ["differences", "Paired differences"] : null,
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
  if (opts.tableHtml) body.push(`<section id="table"><h2>Comparison</h2><div class="table-wrap">${opts.tableHtml}</div></section>`);
  if (opts.differences?.length) body.push(differencesSection(opts.differences, methodColors(runs)));
  if (opts.qualityHtml) body.push(opts.qualityHtml);
  if (opts.selectionHtml) body.push(opts.selectionHtml);
  if (runs.length === 0) {
    body.push(`<section><h2>Runs</h2>${note("No runs to report.")}</section>`);
  } else {
    body.push(aucSection(groups, tasks), normsSection(groups, tasks), cosineSection(groups, tasks), weightsSection(groups, tasks));
  }
  body.push(REPORT_FOOTER);
  return reportPage(opts.title, body);
}

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
