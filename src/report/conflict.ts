/**
 * Tables and the page of the controlled-conflict benchmark (`mtlcraft conflict`): each
 * method's AV-A (mean test AUC over tasks) against the cosine C between the synthetic tasks'
 * weight vectors (src/data/synth.ts), with 95 % t-intervals over seeds, and the paired
 * differences against EW and Single (same seed: same initialisation and data order). Or, on
 * the label-noise axis (`noiseCosines` in the conflict config), against the cosine ρ between
 * the tasks' unobserved per-row logit noise at one fixed C.
 */
import { meanInterval } from "../metrics/ci.ts";
import { BASELINE_COLOR, METHOD_PALETTE, REPORT_FOOTER, reportPage } from "./html.ts";
import { esc, lineChart, type Series } from "./svg.ts";
import { csvField as q, diffCell, type DiffCell } from "./table.ts";

/** One trained run: its method, seed and AV-A on the test split. */
export interface ConflictRun {
  method: string;
  label: string;
  seed: number;
  avA: number;
}

/** What the points vary: the weight-vector cosine C (default), or the label-noise cosine ρ at one fixed C and noise scale σ. */
export type ConflictAxis = { kind: "cosine" } | { kind: "noiseCosine"; weightCosine: number; noise: number };

/** All runs at one cosine. */
export interface ConflictPoint {
  /** The generator's C; on the label-noise axis, its ρ (`noiseCosine`). */
  cosine: number;
  /**
   * Mean pairwise cosine of the weight vectors (C for C ≥ 0; less negative for C < 0); on the
   * label-noise axis, the realised mean pairwise correlation of the label-noise terms.
   */
  meanCosine: number;
  runs: ConflictRun[];
  /**
   * Measured task-gradient statistics on the shared parameters (from one method's logged
   * steps, mean over its seeds): the mean pairwise cosine and the share of conflicting pairs.
   */
  gradients?: { method: string; cosine: number; conflictRate: number };
}

export interface IntervalCell {
  mean: number;
  n: number;
  /** 95 % t-interval; null with one seed. */
  lo: number | null;
  hi: number | null;
  text: string;
}

export interface ConflictTable {
  /** What `cosines` holds: C (default) or the label-noise cosine ρ. */
  axis: ConflictAxis;
  /** The x values: C, or ρ on the label-noise axis. */
  cosines: number[];
  meanCosines: number[];
  /** Per cosine: the measured gradient statistics, null where none were recorded. */
  gradients: (ConflictPoint["gradients"] | null)[];
  /** Methods in first-seen order. */
  columns: { method: string; label: string }[];
  /** avA[i][j]: AV-A at cosines[i] of columns[j]; null where the method did not run there. */
  avA: (IntervalCell | null)[][];
  /** Paired differences against each reference that ran, [cosine][column]. */
  versus: { reference: string; referenceLabel: string; columns: { method: string; label: string }[]; cells: (DiffCell | null)[][] }[];
  digits: number;
}

const fixed = (x: number, d: number) => {
  const s = x.toFixed(d);
  return /^-0(\.0*)?$/.test(s) ? s.slice(1) : s;
};
const signedCos = (c: number) => (c > 0 ? `+${c}` : String(c));

/** The axis' words in the tables, CSV and plots (`caption` is HTML). */
function axisText(a: ConflictAxis) {
  if (a.kind === "cosine") {
    return {
      symbol: "C",
      mean: "mean pair cos",
      csv: "cosine,mean_pair_cosine",
      against: "the weight-vector cosine C",
      xLabel: "cosine C between task weight vectors",
      section: "AV-A against the cosine",
      caption:
        "Test AV-A (mean AUC over the tasks) per method at each cosine C between the tasks' weight vectors; line = mean over seeds, band = 95 % t-interval. C &lt; 0: tasks of different parity point apart (t1 against t2, ...), tasks of the same parity at |C|.",
    };
  }
  const fixedAt = `weight-vector cosine C = ${a.weightCosine}, label-noise scale σ = ${a.noise}`;
  return {
    symbol: "ρ",
    mean: "mean noise corr",
    csv: "noise_cosine,mean_noise_correlation",
    against: `the label-noise cosine ρ (${fixedAt}; mean noise corr: the realised mean pairwise correlation of the tasks' logit noise)`,
    xLabel: "label-noise cosine ρ",
    section: "AV-A against the label-noise cosine",
    caption:
      `Test AV-A (mean AUC over the tasks) per method at each label-noise cosine ρ (${esc(fixedAt)}); line = mean over seeds, band = 95 % t-interval. ` +
      "ρ is the correlation between the tasks' unobserved per-row logit noise; ρ &lt; 0: tasks of different parity get opposite noise (t1 against t2, ...), tasks of the same parity |ρ|.",
  };
}

/**
 * Builds the tables. Within a method and cosine, every seed must appear once; pairs are
 * matched by seed. @throws on an empty input or a duplicated (cosine, method, seed).
 */
export function buildConflictTable(points: ConflictPoint[], opts: { references?: string[]; digits?: number; axis?: ConflictAxis } = {}): ConflictTable {
  if (points.length === 0) throw new Error("buildConflictTable: no points");
  const digits = opts.digits ?? 4;
  const axis: ConflictAxis = opts.axis ?? { kind: "cosine" };
  const columns: { method: string; label: string }[] = [];
  for (const p of points) for (const r of p.runs) if (!columns.some((c) => c.method === r.method)) columns.push({ method: r.method, label: r.label });
  const bySeed = points.map((p) => {
    const m = new Map<string, Map<number, number>>();
    for (const r of p.runs) {
      const s = m.get(r.method) ?? new Map<number, number>();
      if (s.has(r.seed)) throw new Error(`buildConflictTable: ${axis.kind === "cosine" ? "cosine" : "noise cosine"} ${p.cosine}: method "${r.method}" has seed ${r.seed} twice`);
      s.set(r.seed, r.avA);
      m.set(r.method, s);
    }
    return m;
  });
  const avA = bySeed.map((m) =>
    columns.map((c) => {
      const s = m.get(c.method);
      if (!s || s.size === 0) return null;
      const ci = meanInterval([...s.values()]);
      const lo = ci.n > 1 ? ci.lo : null;
      const hi = ci.n > 1 ? ci.hi : null;
      const text = fixed(ci.mean, digits) + (lo === null ? "" : ` ± ${fixed((hi! - lo) / 2, digits)}`);
      return { mean: ci.mean, n: ci.n, lo, hi, text };
    }),
  );
  const versus: ConflictTable["versus"] = [];
  for (const ref of opts.references ?? ["ew", "single"]) {
    const refCol = columns.find((c) => c.method === ref);
    if (!refCol) continue;
    const cols = columns.filter((c) => c.method !== ref);
    const cells = bySeed.map((m) =>
      cols.map((c) => {
        const a = m.get(c.method);
        const b = m.get(ref);
        if (!a || !b) return null;
        const seeds = [...a.keys()].filter((s) => b.has(s));
        return diffCell(seeds.map((s) => a.get(s)!), seeds.map((s) => b.get(s)!), digits);
      }),
    );
    versus.push({ reference: ref, referenceLabel: refCol.label, columns: cols, cells });
  }
  return { axis, cosines: points.map((p) => p.cosine), meanCosines: points.map((p) => p.meanCosine), gradients: points.map((p) => p.gradients ?? null), columns, avA, versus, digits };
}

/** The measured-gradient columns (none when no point has them). */
function gradientColumns(t: ConflictTable): { head: string[]; cells: (i: number) => string[]; note: string } {
  const methods = [...new Set(t.gradients.filter((x) => x).map((x) => x!.method))];
  if (methods.length === 0) return { head: [], cells: () => [], note: "" };
  return {
    head: ["grad cos", "conflicts"],
    cells: (i) => {
      const x = t.gradients[i];
      return x ? [fixed(x.cosine, 3), `${Math.round(x.conflictRate * 100)} %`] : ["-", "-"];
    },
    note: `grad cos / conflicts: the measured mean pairwise cosine of the task gradients on the shared parameters and the share of task pairs with a negative inner product, over the logged steps of ${methods.join(", ")}`,
  };
}

function mdCell(c: DiffCell | null): string {
  if (c === null) return "-";
  return c.sign === "above" || c.sign === "below" ? `**${c.text}**` : c.text;
}

/** Markdown: the AV-A table (mean ± 95 % half-width), then one paired-difference table per reference. */
export function conflictToMarkdown(t: ConflictTable): string {
  const labels = (cols: { label: string }[]) => cols.map((c) => c.label.replace(/\|/g, "\\|")).join(" | ");
  const g = gradientColumns(t);
  const ax = axisText(t.axis);
  const out = [
    `AV-A (mean test AUC over tasks; mean over seeds ± half-width of the 95 % t-interval) against ${ax.against}` +
      (g.note ? `; ${g.note}` : "") + ":",
    "",
    `| ${ax.symbol} | ${ax.mean} | ${g.head.map((h) => `${h} | `).join("")}${labels(t.columns)} |`,
    `|---:|---:|${g.head.map(() => "---:|").join("")}${t.columns.map(() => "---:").join("|")}|`,
    ...t.cosines.map((c, i) => `| ${signedCos(c)} | ${fixed(t.meanCosines[i]!, 2)} | ${g.cells(i).map((x) => `${x} | `).join("")}${t.avA[i]!.map((x) => x?.text ?? "-").join(" | ")} |`),
  ];
  for (const v of t.versus) {
    out.push(
      "",
      `AV-A − ${v.referenceLabel}, paired by seed: mean [95 % t-interval]; bold: the interval excludes 0:`,
      "",
      `| ${ax.symbol} | ${labels(v.columns)} |`,
      `|---:|${v.columns.map(() => "---:").join("|")}|`,
      ...t.cosines.map((c, i) => `| ${signedCos(c)} | ${v.cells[i]!.map(mdCell).join(" | ")} |`),
    );
  }
  return out.join("\n") + "\n";
}

/**
 * Long CSV: cosine,mean_pair_cosine,method,label,metric,mean,n,ci_low,ci_high (metric "AV-A" or
 * "AV-A - <ref>"); on the label-noise axis the first two columns are noise_cosine,mean_noise_correlation.
 */
export function conflictToCsv(t: ConflictTable): string {
  const num = (x: number | null) => (x === null || Number.isNaN(x) ? "" : String(x));
  const lines = [`${axisText(t.axis).csv},method,label,metric,mean,n,ci_low,ci_high`];
  t.cosines.forEach((c, i) => {
    const g = t.gradients[i];
    if (!g) return;
    lines.push([String(c), String(t.meanCosines[i]), q(g.method), "", "gradient cosine", String(g.cosine), "", "", ""].join(","));
    lines.push([String(c), String(t.meanCosines[i]), q(g.method), "", "conflict rate", String(g.conflictRate), "", "", ""].join(","));
  });
  t.cosines.forEach((c, i) => {
    t.columns.forEach((col, j) => {
      const x = t.avA[i]![j];
      if (x) lines.push([String(c), String(t.meanCosines[i]), q(col.method), q(col.label), "AV-A", num(x.mean), String(x.n), num(x.lo), num(x.hi)].join(","));
    });
    for (const v of t.versus) {
      v.columns.forEach((col, j) => {
        const x = v.cells[i]![j];
        if (x) lines.push([String(c), String(t.meanCosines[i]), q(col.method), q(col.label), q(`AV-A - ${v.reference}`), num(x.mean), String(x.n), num(x.lo), num(x.hi)].join(","));
      });
    }
  });
  return lines.join("\n") + "\n";
}

function colors(cols: { method: string }[]): Map<string, string> {
  let k = 0;
  return new Map(cols.map((c) => [c.method, c.method === "single" ? BASELINE_COLOR : METHOD_PALETTE[k++ % METHOD_PALETTE.length]!]));
}

function htmlTable(head: string[], rows: string[][]): string {
  return [
    "<table><thead><tr>",
    head.map((h) => `<th>${esc(h)}</th>`).join(""),
    "</tr></thead><tbody>",
    ...rows.map((r) => `<tr>${r.map((x, i) => (i === 0 ? `<th scope="row">${x}</th>` : `<td>${x}</td>`)).join("")}</tr>`),
    "</tbody></table>",
  ].join("");
}

/** One line per column over the x axis (C or ρ, ascending): mean with its 95 % band; Single dashed. */
function seriesOf(
  t: ConflictTable,
  columns: readonly { method: string; label: string }[],
  cells: readonly (readonly ({ mean: number; lo: number | null; hi: number | null } | null | undefined)[])[],
): Series[] {
  const col = colors(t.columns);
  const order = t.cosines.map((c, i) => [c, i] as const).sort((a, b) => a[0] - b[0]);
  return columns.map((c, j) => ({
    name: c.label,
    color: col.get(c.method)!,
    dashed: c.method === "single",
    points: order.map(([x, i]) => [x, cells[i]![j]?.mean ?? null]),
    band: order.map(([x, i]) => [x, cells[i]![j]?.lo ?? null, cells[i]![j]?.hi ?? null]),
  }));
}

/** The SVG plot of AV-A against C (or ρ) per method (line = mean over seeds, band = 95 % t-interval). */
export function conflictChart(t: ConflictTable): string {
  const series = seriesOf(t, t.columns, t.avA);
  return lineChart({ series, width: 760, height: 360, fontSize: 12, xLabel: axisText(t.axis).xLabel, yLabel: "test AV-A", title: "AV-A against task conflict" });
}

/** The plot of the paired difference against `reference` per method. */
export function conflictDiffChart(t: ConflictTable, v: ConflictTable["versus"][number]): string {
  const series = seriesOf(t, v.columns, v.cells);
  return lineChart({ series, width: 760, height: 320, fontSize: 12, xLabel: axisText(t.axis).xLabel, yLabel: `AV-A − ${v.referenceLabel}`, title: `Paired difference against ${v.referenceLabel}` });
}

/** A self-contained HTML page: tables, the AV-A plot and one difference plot per reference. */
export function renderConflictReport(t: ConflictTable, opts: { title: string; meta?: Record<string, string>; notes?: string } = { title: "Controlled conflict" }): string {
  const col = colors(t.columns);
  const legend = `<ul class="legend">${t.columns
    .map((c) => `<li><span class="sw" style="border-top-color:${col.get(c.method)};border-top-style:${c.method === "single" ? "dashed" : "solid"}"></span>${esc(c.label)}</li>`)
    .join("")}</ul>`;
  const meta = Object.entries(opts.meta ?? {});
  const ax = axisText(t.axis);
  const body = [
    `<header><h1>${esc(opts.title)}</h1>`,
    meta.length ? `<dl class="meta">${meta.map(([k, v]) => `<dt>${esc(k)}</dt><dd>${esc(v)}</dd>`).join("")}</dl>` : "",
    `</header>`,
    `<section id="plot"><h2>${esc(ax.section)}</h2>${legend}<figure class="wide">${conflictChart(t)}<figcaption>${ax.caption}${opts.notes ? ` ${esc(opts.notes)}` : ""}</figcaption></figure>`,
    ...t.versus.map(
      (v) =>
        `<figure class="wide">${conflictDiffChart(t, v)}<figcaption>Paired difference in AV-A against ${esc(v.referenceLabel)} (same seeds), mean and 95 % t-interval; above 0: better than ${esc(v.referenceLabel)}.</figcaption></figure>`,
    ),
    `</section>`,
    `<section id="tables"><h2>Tables</h2><div class="table-wrap">`,
    `<p class="caption">AV-A, mean over seeds ± half-width of the 95 % t-interval.${gradientColumns(t).note ? ` ${esc(gradientColumns(t).note)}.` : ""}</p>`,
    htmlTable(
      [ax.symbol, ax.mean, ...gradientColumns(t).head, ...t.columns.map((c) => c.label)],
      t.cosines.map((c, i) => [esc(signedCos(c)), fixed(t.meanCosines[i]!, 2), ...gradientColumns(t).cells(i).map(esc), ...t.avA[i]!.map((x) => esc(x?.text ?? "-"))]),
    ),
    ...t.versus.map(
      (v) =>
        `<p class="caption">AV-A − ${esc(v.referenceLabel)}, paired by seed: mean [95 % t-interval]; bold: the interval excludes 0.</p>` +
        htmlTable(
          [ax.symbol, ...v.columns.map((c) => c.label)],
          t.cosines.map((c, i) => [esc(signedCos(c)), ...v.cells[i]!.map((x) => (x === null ? "-" : x.sign === "above" || x.sign === "below" ? `<b>${esc(x.text)}</b>` : esc(x.text)))]),
        ),
    ),
    `</div></section>`,
    REPORT_FOOTER,
  ];
  return reportPage(opts.title, body);
}
