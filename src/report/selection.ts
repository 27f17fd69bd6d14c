/**
 * The grid selection of a `bench` sweep, reported: every grid point each method tried on the
 * first seed with its mean validation AUC over tasks, the point chosen (the highest), and a
 * warning where the choice sits on the edge of the grid.
 *
 * Edge rule: for a numeric grid key with at least 3 distinct values in a method's points, a
 * chosen value equal to the smallest (largest) of them is on the lower (upper) edge: the
 * optimum may lie outside the grid, which should then be widened in that direction
 * (`methodGrid` in a sweep config extends one method's range). With 2 values every choice is an
 * edge, so no warning is given; string and boolean keys have no order and no edge.
 *
 * Budget: a chosen point whose best epoch is its last (the run ended on its epoch or step limit
 * while still improving) is flagged too: more epochs may change the choice.
 *
 * Profiles: for each grid key with more than one value, the best mean validation AUC at each
 * of its values (the maximum over the method's other keys), in the order of the values.
 */
import { esc } from "./svg.ts";
import { csvField } from "./table.ts";

/** A grid value (as sweep/plan.ts's ParamValue; the report layer does not import the sweep). */
export type GridValue = string | number | boolean;

/** One grid point's selection run. */
export interface SelectionPoint {
  method: string;
  label: string;
  point: Record<string, GridValue>;
  /** Mean validation AUC over tasks at the restored (best) epoch. */
  valAuc: number;
  bestEpoch: number;
  epochsRun: number;
}

export interface SelectionEdge {
  key: string;
  value: number;
  side: "lower" | "upper";
}

export interface MethodSelection {
  method: string;
  label: string;
  points: SelectionPoint[];
  chosen: SelectionPoint;
  edges: SelectionEdge[];
  /** The chosen run's best epoch is its last: it was still improving when its budget ended. */
  atLastEpoch: boolean;
  /** Per key with more than one value: [value, best mean val AUC at that value] in value order. */
  profiles: { key: string; values: [GridValue, number][] }[];
}

/** Edges of `chosen` among `points` (see the file comment). */
export function selectionEdges(points: readonly SelectionPoint[], chosen: SelectionPoint): SelectionEdge[] {
  const edges: SelectionEdge[] = [];
  for (const [key, v] of Object.entries(chosen.point)) {
    if (typeof v !== "number") continue;
    const vals = [...new Set(points.map((p) => p.point[key]).filter((x): x is number => typeof x === "number"))];
    if (vals.length < 3) continue;
    if (v === Math.min(...vals)) edges.push({ key, value: v, side: "lower" });
    else if (v === Math.max(...vals)) edges.push({ key, value: v, side: "upper" });
  }
  return edges;
}

const orderOf = (a: GridValue, b: GridValue): number =>
  typeof a === "number" && typeof b === "number" ? a - b : String(a).localeCompare(String(b));

/**
 * Groups selection runs by method (in first-seen order) and picks each method's point with
 * the highest mean validation AUC, the first on ties, as `bench` does. NaN scores never win.
 */
export function buildSelection(points: readonly SelectionPoint[]): MethodSelection[] {
  const byMethod = new Map<string, SelectionPoint[]>();
  for (const p of points) {
    const list = byMethod.get(p.method);
    if (list) list.push(p);
    else byMethod.set(p.method, [p]);
  }
  const out: MethodSelection[] = [];
  for (const [method, pts] of byMethod) {
    let chosen = pts[0]!;
    for (const p of pts) if (p.valAuc > chosen.valAuc || (Number.isNaN(chosen.valAuc) && !Number.isNaN(p.valAuc))) chosen = p;
    const keys = [...new Set(pts.flatMap((p) => Object.keys(p.point)))];
    const profiles = keys
      .map((key) => {
        const best = new Map<GridValue, number>();
        for (const p of pts) {
          const v = p.point[key];
          if (v === undefined) continue;
          const b = best.get(v);
          if (b === undefined || p.valAuc > b || Number.isNaN(b)) best.set(v, p.valAuc);
        }
        return { key, values: [...best.entries()].sort(([a], [b]) => orderOf(a, b)) };
      })
      .filter((p) => p.values.length > 1);
    const atLastEpoch = stillImproving(chosen);
    out.push({ method, label: pts[0]!.label, points: pts, chosen, edges: selectionEdges(pts, chosen), atLastEpoch, profiles });
  }
  return out;
}

/**
 * Whether a run was still improving when its budget ended it: its best validation score (the
 * restored parameters) came in the last epoch it ran. Every run, not only grid-selection runs:
 * bench lists such runs among its warnings (`runWarnings`), `train` prints a note. A run cut by a
 * step limit before its first full epoch (`epochsRun` 0) is not flagged (no epoch to compare), nor
 * one that selected nothing (`earlyStopping.enabled` false: no validation metric, the last
 * parameters are kept by design).
 */
export function stillImproving(r: { bestEpoch: number; epochsRun: number; earlyStopping?: { enabled: boolean } }): boolean {
  return r.epochsRun > 0 && r.bestEpoch + 1 === r.epochsRun && r.earlyStopping?.enabled !== false;
}

/** The warning of a run that `stillImproving` flags (one text, so that bench groups the runs it applies to). */
export const STILL_IMPROVING_WARNING = "best validation score in the last epoch run: still improving when its epoch or step limit ended it (more epochs may change its result)";

const auc = (x: number): string => (Number.isFinite(x) ? x.toFixed(4) : "n/a");
const pointText = (p: Record<string, GridValue>): string =>
  Object.entries(p)
    .map(([k, v]) => `${k} ${String(v)}`)
    .join(", ") || "-";
/** The warnings of a method's choice ("-" for none): grid edges, and a best epoch that is the last one. */
export const warnText = (m: MethodSelection): string =>
  [...m.edges.map((x) => `${x.key} ${String(x.value)}: ${x.side} edge`), ...(m.atLastEpoch ? ["best at its last epoch"] : [])].join("; ") || "-";
/** The sentence above the table: which choices carry a warning. */
const summaryText = (sel: readonly MethodSelection[]): string => {
  const warned = sel.filter((m) => m.edges.length > 0 || m.atLastEpoch);
  return warned.length
    ? `Check these choices: ${warned.map((m) => `${m.label} (${warnText(m)})`).join("; ")}.`
    : "No chosen value is on an edge of its grid (tested for numeric keys with at least 3 values), and every chosen run stopped early, after its best epoch.";
};
/** The profiles, each piece of text through `enc` (the format's escaping) and the chosen value through `mark`. */
const profileText = (m: MethodSelection, enc: (s: string) => string, mark: (s: string) => string): string =>
  m.profiles
    .map(({ key, values }) => `${enc(key)}: ${values.map(([v, a]) => (m.chosen.point[key] === v ? mark : (x: string) => x)(enc(`${String(v)} ${auc(a)}`))).join(" · ")}`)
    .join("; ");

const INTRO =
  "Each method's options were chosen on the first seed by the mean validation AUC over tasks (the test split is never read). " +
  '"val AUC by value": the best mean validation AUC at each value of a grid key, over the other keys; the chosen value is marked. ' +
  '"edge": the chosen value is the smallest or largest of at least 3 values tried, so the optimum may lie outside the grid: widen it in that direction. ' +
  '"best at its last epoch": the chosen run was still improving when its epoch or step limit ended it.';

const HEAD = ["Method", "points", "chosen", "val mean AUC", "best epoch", "val AUC by value", "check"];

/** A run's best epoch, 1-based; "" for a run cut by a step limit before its first full epoch. */
const bestEpochText = (p: SelectionPoint): string => (p.epochsRun > 0 ? String(p.bestEpoch + 1) : "");

/** The table's cells, already in the output format: `enc` escapes text, `mark` highlights the chosen value. */
function rowsOf(sel: readonly MethodSelection[], enc: (s: string) => string, mark: (s: string) => string): string[][] {
  return sel.map((m) => [
    enc(m.label),
    String(m.points.length),
    enc(pointText(m.chosen.point)),
    auc(m.chosen.valAuc),
    m.chosen.epochsRun > 0 ? `${bestEpochText(m.chosen)} of ${m.chosen.epochsRun}` : "-",
    profileText(m, enc, mark),
    enc(warnText(m)),
  ]);
}

/** The "Grid selection" section of results.md (empty when there was no grid). */
export function selectionToMarkdown(sel: readonly MethodSelection[]): string {
  if (sel.length === 0) return "";
  const lines = [
    "## Grid selection",
    "",
    INTRO,
    "",
    summaryText(sel),
    "",
    `| ${HEAD.join(" | ")} |`,
    `|---|---:|---|---:|---:|---|---|`,
    ...rowsOf(sel, (s) => s.replace(/\|/g, "\\|"), (s) => `**${s}**`).map((r) => `| ${r.join(" | ")} |`),
  ];
  return lines.join("\n") + "\n";
}

/** The report's "Grid selection" section (a <section id="selection">; empty when there was no grid). */
export function selectionToHtml(sel: readonly MethodSelection[]): string {
  if (sel.length === 0) return "";
  const right = [false, true, false, true, true, false, false];
  const cell = (tag: string, j: number, t: string) => `<${tag}${right[j] ? "" : ' style="text-align:left"'}>${t}</${tag}>`;
  return (
    [
      `<section id="selection"><h2>Grid selection</h2>`,
      `<p>${esc(INTRO)}</p>`,
      `<p>${esc(summaryText(sel))}</p>`,
      `<div class="table-wrap"><table><thead><tr>${HEAD.map((h, j) => cell("th", j, esc(h))).join("")}</tr></thead><tbody>`,
      ...rowsOf(sel, esc, (s) => `<b>${s}</b>`).map((r) => `<tr>${r.map((t, j) => cell("td", j, t)).join("")}</tr>`),
      `</tbody></table></div></section>`,
    ].join("\n") + "\n"
  );
}

/** selection.csv: one row per grid point (long format), the chosen one flagged. */
export function selectionToCsv(sel: readonly MethodSelection[]): string {
  const lines = ["method,label,point,val_mean_auc,best_epoch,epochs_run,chosen,check"];
  for (const m of sel) {
    for (const p of m.points) {
      const chosen = p === m.chosen;
      lines.push(
        [m.method, m.label, JSON.stringify(p.point), Number.isFinite(p.valAuc) ? String(p.valAuc) : "", bestEpochText(p), String(p.epochsRun), String(chosen), chosen ? warnText(m) : ""]
          .map(csvField)
          .join(","),
      );
    }
  }
  return lines.join("\n") + "\n";
}
