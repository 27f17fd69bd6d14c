/**
 * The verdict: the first section of a bench report, saying in sentences what the run supports.
 *
 * It reads the paired-difference tables (ComparisonTable.differences) on the AV-A row, with
 * Holm's correction over the family "every method against EW" and, separately, "every method
 * against Single" (DiffCell.holm; src/metrics/multiple.ts). A method "beats" the reference only
 * when its Holm-adjusted interval lies above 0; the sentence gives the effect, that interval, the
 * adjusted p-value, the family size and, when the runs recorded it, the cost per step relative to
 * the reference. Without a winner it says so, and names the largest point estimate as such.
 * Runs of one seed have no interval: the verdict says that the run cannot tell methods apart.
 *
 * Everything it states comes from the tables; it draws no conclusion the intervals do not support.
 */
import type { ComparisonTable, DiffCell, DifferenceTable } from "./table.ts";
import type { RunResult } from "./types.ts";

/** The cost of one method, from its runs' RunResult.cost (median over seeds). */
export interface MethodCost {
  msPerStep: number;
  peakRssMb: number;
  /** Runs that recorded a cost. */
  n: number;
}

/** Median cost per method over the runs that recorded one (methods without any are absent). */
export function methodCosts(runs: readonly RunResult[]): Map<string, MethodCost> {
  const by = new Map<string, { ms: number[]; rss: number[] }>();
  for (const r of runs) {
    const c = r.cost;
    if (c === undefined || !Number.isFinite(c.msPerStep) || !Number.isFinite(c.peakRssMb)) continue;
    const e = by.get(r.method) ?? { ms: [], rss: [] };
    e.ms.push(c.msPerStep);
    e.rss.push(c.peakRssMb);
    by.set(r.method, e);
  }
  const out = new Map<string, MethodCost>();
  for (const [m, e] of by) out.set(m, { msPerStep: median(e.ms), peakRssMb: median(e.rss), n: e.ms.length });
  return out;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const h = s.length >> 1;
  return s.length % 2 ? s[h]! : (s[h - 1]! + s[h]!) / 2;
}

export interface VerdictLine {
  /** "ew", "single", "cost", "ri" or "seeds". */
  kind: string;
  /** One sentence, plain text (labels as given: escape before rendering). */
  text: string;
}

export interface Verdict {
  /** The metric the verdict is about ("AV-A"). */
  metric: string;
  lines: VerdictLine[];
}

export interface VerdictOptions {
  /** Cost per method (methodCosts of the runs); cost ratios are omitted without it. */
  costs?: ReadonlyMap<string, MethodCost>;
  /** The method the RI rows are measured against (ComparisonTable.baseline) and whether it is the planned Single. */
  riBaseline?: { method: string; label: string };
}

const signed = (x: number, digits: number) => (x >= 0 ? "+" : "") + x.toFixed(digits);
const pText = (p: number) => (p < 0.001 ? p.toExponential(1) : p.toFixed(3));

function costRatio(costs: ReadonlyMap<string, MethodCost> | undefined, method: string, ref: string): number | null {
  const a = costs?.get(method);
  const b = costs?.get(ref);
  return a && b && b.msPerStep > 0 ? a.msPerStep / b.msPerStep : null;
}

function familyLines(d: DifferenceTable, metric: string, costs: ReadonlyMap<string, MethodCost> | undefined, kind: string): VerdictLine[] {
  const row = d.rows.find((r) => r.metric === metric);
  if (!row) return [];
  const cells = row.cells.map((c, j) => ({ c, col: d.columns[j]! }));
  const tested = cells.filter((x): x is { c: DiffCell & { holm: NonNullable<DiffCell["holm"]> }; col: (typeof d.columns)[number] } => x.c.holm !== undefined);
  const ref = d.referenceLabel;
  if (tested.length === 0) {
    return [{ kind, text: `Against ${ref}: no method has two or more paired seeds, so there is no interval and this run cannot tell any method from ${ref}; run more seeds.` }];
  }
  const m = tested[0]!.c.holm.m;
  const fam = `Holm's correction over ${m} method${m === 1 ? "" : "s"} compared with ${ref}`;
  const describe = (x: (typeof tested)[number]) => {
    const h = x.c.holm;
    const r = costRatio(costs, x.col.method, d.reference);
    return `${x.col.label} ${signed(x.c.mean, d.digits)} ${metric} [${signed(h.lo, d.digits)}, ${signed(h.hi, d.digits)}], Holm-adjusted p = ${pText(h.pHolm)}${r === null ? "" : `, at ${r.toFixed(2)}x ${ref}'s time per step`}`;
  };
  const better = tested.filter((x) => x.c.holm.sign === "above").sort((a, b) => b.c.mean - a.c.mean);
  const worse = tested.filter((x) => x.c.holm.sign === "below").sort((a, b) => a.c.mean - b.c.mean);
  const out: VerdictLine[] = [];
  if (better.length) {
    out.push({ kind, text: `On this data, ${better.length === 1 ? "one method beats" : `${better.length} methods beat`} ${ref} beyond noise (${fam}): ${better.map(describe).join("; ")}.` });
  } else {
    const top = [...tested].sort((a, b) => b.c.mean - a.c.mean)[0]!;
    out.push({
      kind,
      text: `No method beats ${ref} beyond noise on ${metric} (${fam}). The largest estimate, ${describe(top)}, is within the noise of these seeds.`,
    });
  }
  if (worse.length) out.push({ kind, text: `Worse than ${ref} beyond noise: ${worse.map(describe).join("; ")}.` });
  return out;
}

/** The verdict of a comparison table with differences against EW and/or Single. */
export function buildVerdict(table: ComparisonTable, opts: VerdictOptions = {}): Verdict {
  const metric = "AV-A";
  const lines: VerdictLine[] = [];
  const diffs = table.differences ?? [];
  const ew = diffs.find((d) => d.reference === "ew");
  const single = diffs.find((d) => d.reference === "single");
  if (ew) lines.push(...familyLines(ew, metric, opts.costs, "ew"));
  if (single) lines.push(...familyLines(single, metric, opts.costs, "single"));
  if (!ew && !single) lines.push({ kind: "ew", text: "Neither EW nor Single ran, so there is no reference to judge the methods against; add ew (and single) to the methods." });
  const costs = opts.costs;
  if (costs && costs.size > 1) {
    const byCost = [...costs.entries()].filter(([m]) => m !== "single" && m !== "lr").sort((a, b) => a[1].msPerStep - b[1].msPerStep);
    if (byCost.length > 1) {
      const label = (m: string) => table.columns.find((c) => c.method === m)?.label ?? m;
      const [cheap, c0] = byCost[0]!;
      const [dear, c1] = byCost.at(-1)!;
      lines.push({
        kind: "cost",
        text: `Cost per training step (median over seeds, this machine): cheapest ${label(cheap)} ${c0.msPerStep.toFixed(1)} ms, dearest ${label(dear)} ${c1.msPerStep.toFixed(1)} ms (${(c1.msPerStep / c0.msPerStep).toFixed(2)}x); peak memory ${Math.min(...byCost.map(([, c]) => c.peakRssMb)).toFixed(0)}-${Math.max(...byCost.map(([, c]) => c.peakRssMb)).toFixed(0)} MiB.`,
      });
    }
  }
  const ri = opts.riBaseline ?? { method: table.baseline, label: table.columns.find((c) => c.method === table.baseline)?.label ?? table.baseline };
  if (ri.method !== "single") lines.push({ kind: "ri", text: `Single did not run, so RI-A and RI-G are relative improvements over ${ri.label}, not over single-task models.` });
  return { metric, lines };
}

function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!);
}

export function verdictToMarkdown(v: Verdict): string {
  const md = (s: string) => s.replace(/[\r\n]+/g, " ").replace(/[\\`*_{}[\]<>|&~#]/g, (c) => `\\${c}`);
  return `## Verdict (${v.metric})\n\n${v.lines.map((l) => `- ${md(l.text)}`).join("\n")}\n`;
}

export function verdictToHtml(v: Verdict): string {
  return `<section id="verdict"><h2>Verdict (${esc(v.metric)})</h2><ul>${v.lines.map((l) => `<li class="verdict-${esc(l.kind)}">${esc(l.text)}</li>`).join("")}</ul></section>`;
}
