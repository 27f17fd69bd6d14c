/**
 * The report's comparison and paired-difference tables, laid out to fit the page: metrics as
 * rows and methods as columns up to METHODS_AS_COLUMNS methods, methods as rows beyond (then
 * each column sorts when its header is clicked); the first column is sticky either way. The
 * comparison table carries each method's cost relative to EW.
 */
import { esc } from "./svg.ts";
import { holmExcludes, type ComparisonTable, type DifferenceTable, differenceCaption } from "./table.ts";
import type { MethodCost } from "./verdict.ts";

/** Up to this many methods, methods are columns; beyond, they are rows. */
export const METHODS_AS_COLUMNS = 8;

/** A cost that was not recorded. */
const NA = "–";
/** A metric that does not apply (as toHtmlTable writes it). */
const NOT_APPLICABLE = "-";

/** The sort key attribute: the cell's number, none when it has none (those sort last). */
function dv(v: number | null | undefined): string {
  return typeof v === "number" && Number.isFinite(v) ? ` data-v="${v}"` : "";
}

interface CostCells {
  rel: { text: string; v: number | null; title: string };
  rss: { text: string; v: number | null };
}

function costCells(method: string, costs: ReadonlyMap<string, MethodCost> | undefined, reference: string): CostCells | null {
  if (!costs || costs.size === 0) return null;
  const c = costs.get(method);
  const ref = costs.get(reference);
  if (!c) return { rel: { text: NA, v: null, title: "no cost recorded" }, rss: { text: NA, v: null } };
  const rel = ref && ref.msPerStep > 0 ? c.msPerStep / ref.msPerStep : null;
  return {
    rel: { text: rel === null ? NA : `${rel.toFixed(2)}×`, v: rel, title: `${c.msPerStep.toPrecision(3)} ms per step (median of ${c.n} run${c.n === 1 ? "" : "s"})` },
    rss: { text: c.peakRssMb.toFixed(0), v: c.peakRssMb },
  };
}

/**
 * A cell's text, in the methods-as-rows layout on two lines (the estimate, then its spread or
 * interval in small type) so that many columns fit the page.
 */
function twoLines(text: string): string {
  const m = /^(\S+) (± .+|\[.+\])$/.exec(text);
  return m ? `${esc(m[1]!)}<br><small>${esc(m[2]!)}</small>` : esc(text);
}

function markup(text: string, mark: string | null | undefined, stacked = false): string {
  const t = stacked ? twoLines(text) : esc(text);
  return mark === "best" ? `<b>${t}</b>` : mark === "second" ? `<u>${t}</u>` : t;
}

/**
 * The comparison table (ComparisonTable) with cost columns: ms/step relative to `reference`
 * (EW) and peak RSS, when any run recorded its cost.
 */
export function comparisonToHtml(table: ComparisonTable, o: { costs?: ReadonlyMap<string, MethodCost>; reference?: string } = {}): string {
  const reference = o.reference ?? "ew";
  const refLabel = table.columns.find((c) => c.method === reference)?.label ?? reference.toUpperCase();
  const costs = table.columns.map((c) => costCells(c.method, o.costs, reference));
  const hasCost = costs.some((c) => c !== null);
  const relHead = `ms/step ×${esc(refLabel)}`;
  const rssHead = "peak RSS (MiB)";
  const out: string[] = [];
  if (table.columns.length <= METHODS_AS_COLUMNS) {
    out.push(`<table class="cmp">`, `<thead><tr><th>Metric</th>${table.columns.map((c) => `<th>${esc(c.label)}</th>`).join("")}</tr></thead>`, "<tbody>");
    for (const r of table.rows) {
      const tds = r.cells.map((c) => (c === null ? `<td>${NOT_APPLICABLE}</td>` : `<td${dv(c.mean)}>${markup(c.text, c.mark)}</td>`));
      out.push(`<tr><th scope="row">${esc(r.metric)}</th>${tds.join("")}</tr>`);
    }
    if (hasCost) {
      out.push(`<tr class="cost"><th scope="row">${relHead}</th>${costs.map((c) => `<td title="${esc(c?.rel.title ?? "")}">${c?.rel.text ?? NA}</td>`).join("")}</tr>`);
      out.push(`<tr class="cost"><th scope="row">${rssHead}</th>${costs.map((c) => `<td>${c?.rss.text ?? NA}</td>`).join("")}</tr>`);
    }
    out.push("</tbody>", "</table>");
  } else {
    const heads = table.rows.map((r) => `<th>${esc(r.metric)}</th>`);
    if (hasCost) heads.push(`<th>${relHead}</th>`, `<th>${rssHead}</th>`);
    out.push(`<table class="cmp sortable">`, `<thead><tr><th>Method</th>${heads.join("")}</tr></thead>`, "<tbody>");
    table.columns.forEach((col, j) => {
      const tds = table.rows.map((r) => {
        const c = r.cells[j];
        return c === null || c === undefined ? `<td>${NOT_APPLICABLE}</td>` : `<td${dv(c.mean)}>${markup(c.text, c.mark, true)}</td>`;
      });
      const k = costs[j];
      if (hasCost) tds.push(`<td${dv(k?.rel.v)} title="${esc(k?.rel.title ?? "")}">${k?.rel.text ?? NA}</td>`, `<td${dv(k?.rss.v)}>${k?.rss.text ?? NA}</td>`);
      out.push(`<tr><th scope="row">${esc(col.label)}</th>${tds.join("")}</tr>`);
    });
    out.push("</tbody>", "</table>");
  }
  if (hasCost) out.push(`<p class="caption">Cost: median ms per training step relative to ${esc(refLabel)}'s, and median peak resident memory, over each method's runs (timed on the machine that ran them).</p>`);
  for (const n of table.notes ?? []) out.push(`<p class="caption">Note: ${esc(n)}</p>`);
  return out.join("\n") + "\n";
}

/** One paired-difference table (against one reference), bold where the Holm interval excludes 0. */
export function differenceToHtml(d: DifferenceTable): string {
  const title = (c: DifferenceTable["rows"][number]["cells"][number]) =>
    c.holm
      ? ` title="Holm-adjusted p = ${c.holm.pHolm.toPrecision(2)} (unadjusted ${c.holm.p.toPrecision(2)}, ${c.holm.m} comparisons); Holm interval [${c.holm.lo.toFixed(d.digits)}, ${c.holm.hi.toFixed(d.digits)}]"`
      : "";
  const stacked = d.columns.length > METHODS_AS_COLUMNS;
  const cell = (c: DifferenceTable["rows"][number]["cells"][number]) => {
    const t = stacked ? twoLines(c.text) : esc(c.text);
    return `<td${dv(c.mean)}${title(c)}>${holmExcludes(c) ? `<b>${t}</b>` : t}</td>`;
  };
  const out: string[] = [`<p class="caption">${esc(differenceCaption(d))}</p>`];
  if (d.columns.length <= METHODS_AS_COLUMNS) {
    out.push(`<table class="cmp">`, `<thead><tr><th>Δ vs ${esc(d.referenceLabel)}</th>${d.columns.map((c) => `<th>${esc(c.label)}</th>`).join("")}</tr></thead>`, "<tbody>");
    for (const r of d.rows) out.push(`<tr><th scope="row">${esc(r.metric)}</th>${r.cells.map(cell).join("")}</tr>`);
  } else {
    out.push(`<table class="cmp sortable">`, `<thead><tr><th>Δ vs ${esc(d.referenceLabel)}</th>${d.rows.map((r) => `<th>${esc(r.metric)}</th>`).join("")}</tr></thead>`, "<tbody>");
    d.columns.forEach((col, j) => out.push(`<tr><th scope="row">${esc(col.label)}</th>${d.rows.map((r) => cell(r.cells[j]!)).join("")}</tr>`));
  }
  out.push("</tbody>", "</table>");
  return out.join("\n") + "\n";
}
