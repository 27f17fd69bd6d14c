/**
 * Vega-Lite specs for the HTML report, and the page code that draws them.
 *
 * Every chart is a plain JSON spec; its data travels column-wise in the spec's `datasets`
 * (`{"$cols": {field: values}, "$dict": {field: strings}}`, unpacked into rows by the page) to
 * keep the file small. Labels (method and task names) are data only: no spec expression is
 * built from them, and the whole JSON is escaped so that nothing in it can close the
 * <script type="application/json"> element that carries it (see jsonForScript).
 *
 * Method charts share three parameters, set by the page: `strong` (the focus method and EW,
 * drawn strong), `base` (the single-task baseline, dashed) and `pick` (methods the reader
 * highlighted in the legend above the chart; the other methods stay muted).
 */
import { esc } from "./svg.ts";

/** A Vega-Lite spec (JSON). */
export type Spec = Record<string, unknown>;

/** Significant digits kept for plotted numbers (the tables carry the exact values). */
const DIGITS = 5;

/** A finite number rounded to DIGITS significant digits, or null. */
export function num(v: number | null | undefined): number | null {
  return typeof v === "number" && Number.isFinite(v) ? Number(v.toPrecision(DIGITS)) : null;
}

type Cell = string | number | null;

/**
 * Rows → the column-wise dataset the page unpacks. String fields become indexes into a
 * dictionary; numbers are rounded.
 */
export function packRows(fields: readonly string[], objects: readonly object[]): Spec {
  const rows = objects as readonly Record<string, Cell | undefined>[];
  const cols: Record<string, Cell[]> = {};
  const dict: Record<string, string[]> = {};
  for (const f of fields) {
    const vals = rows.map((r) => r[f] ?? null);
    if (vals.some((v) => typeof v === "string")) {
      const words: string[] = [];
      const index = new Map<string, number>();
      cols[f] = vals.map((v) => {
        if (v === null) return null;
        const s = String(v);
        let i = index.get(s);
        if (i === undefined) {
          i = words.length;
          words.push(s);
          index.set(s, i);
        }
        return i;
      });
      dict[f] = words;
    } else cols[f] = vals.map((v) => num(v as number | null));
  }
  return { $cols: cols, $dict: dict };
}

/**
 * JSON for a <script type="application/json"> element: `<`, `>`, `&` and the line separators
 * are \u-escaped, so no label can end the element (`</script>`) or open a comment (`<!--`).
 */
export function jsonForScript(value: unknown): string {
  return JSON.stringify(value).replace(/[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}

export interface MethodStyle {
  label: string;
  color: string;
}

/** The parameters every method chart declares (the page sets `pick`). */
function methodParams(strong: readonly string[], base: readonly string[]): Spec[] {
  return [
    { name: "pick", value: [] },
    { name: "strong", value: [...strong] },
    { name: "base", value: [...base] },
  ];
}

const IS_STRONG = "indexof(strong, datum.m) >= 0 || indexof(pick, datum.m) >= 0";
const IS_BASE = "indexof(base, datum.m) >= 0";

function colorEncoding(methods: readonly MethodStyle[]): Spec {
  return { field: "m", type: "nominal", title: "method", scale: { domain: methods.map((m) => m.label), range: methods.map((m) => m.color) }, legend: null };
}

export interface LinePoint {
  m: string;
  x: number;
  y: number | null;
  lo?: number | null;
  hi?: number | null;
}

export interface MethodLinesOptions {
  rows: LinePoint[];
  methods: MethodStyle[];
  /** Labels drawn strong (focus, EW). */
  strong: string[];
  /** Labels drawn dashed (the single-task baseline). */
  base: string[];
  xLabel: string;
  yLabel: string;
  title?: string;
  height?: number;
  yDomain?: [number, number];
  logY?: boolean;
  /** d3-format of hover values (default ".4f"). */
  yFormat?: string;
}

/** Drop rows a log axis cannot show, and band ends it cannot show. */
function usable<T extends { y: number | null; lo?: number | null; hi?: number | null }>(rows: T[], logY: boolean): T[] {
  const ok = (v: number | null | undefined) => typeof v === "number" && Number.isFinite(v) && (!logY || v > 0);
  return rows
    .filter((r) => ok(r.y))
    .map((r) => ({ ...r, lo: ok(r.lo) && ok(r.hi) ? r.lo : null, hi: ok(r.lo) && ok(r.hi) ? r.hi : null }));
}

function yScale(o: { yDomain?: [number, number]; logY?: boolean }): Spec {
  return o.logY ? { type: "log" } : o.yDomain ? { domain: o.yDomain } : { zero: false };
}

/**
 * One line per method (mean over seeds) with its min..max band. Focus and EW strong, the
 * baseline dashed, the others muted until picked; every point shows its value on hover.
 */
export function methodLinesSpec(o: MethodLinesOptions): Spec {
  const logY = o.logY === true;
  const rows = usable(o.rows, logY);
  const y = { field: "y", type: "quantitative", title: o.yLabel + (logY ? " (log scale)" : ""), scale: yScale(o) };
  const tooltip = [
    { field: "m", type: "nominal", title: "method" },
    { field: "x", type: "quantitative", title: o.xLabel },
    { field: "y", type: "quantitative", title: o.yLabel, format: o.yFormat ?? ".4f" },
  ];
  return {
    ...(o.title ? { title: { text: o.title, anchor: "start", fontSize: 14 } } : {}),
    width: "container",
    height: o.height ?? 300,
    autosize: { type: "fit-x", contains: "padding" },
    datasets: { d: packRows(["m", "x", "y", "lo", "hi"], rows) },
    data: { name: "d" },
    params: methodParams(o.strong, o.base),
    encoding: { x: { field: "x", type: "quantitative", title: o.xLabel }, color: colorEncoding(o.methods) },
    layer: [
      {
        transform: [{ filter: "isValid(datum.lo)" }],
        mark: { type: "area", clip: true },
        encoding: {
          y: { field: "lo", type: "quantitative", scale: yScale(o) },
          y2: { field: "hi" },
          opacity: { condition: { test: IS_STRONG, value: 0.13 }, value: 0 },
        },
      },
      {
        mark: { type: "line", clip: true, strokeCap: "round", strokeJoin: "round" },
        encoding: {
          y,
          strokeOpacity: { condition: { test: IS_STRONG, value: 1 }, value: 0.2 },
          strokeWidth: { condition: { test: IS_STRONG, value: 2.6 }, value: 1.3 },
          strokeDash: { condition: { test: IS_BASE, value: [6, 4] }, value: [1, 0] },
        },
      },
      {
        mark: { type: "point", filled: true, size: 18, clip: true },
        encoding: { y, opacity: { condition: { test: IS_STRONG, value: 0.9 }, value: 0.15 }, tooltip },
      },
    ],
  };
}

export interface TaskLinesOptions {
  /** m: method label (one panel each), t: task. */
  rows: (LinePoint & { t: string })[];
  methods: string[];
  tasks: MethodStyle[];
  xLabel: string;
  yLabel: string;
  logY?: boolean;
  yFormat?: string;
}

/** Small multiples, one panel per method, one line per task (mean over seeds, band = min..max). */
export function taskLinesSpec(o: TaskLinesOptions): Spec {
  const logY = o.logY === true;
  const rows = usable(o.rows, logY);
  const y = { field: "y", type: "quantitative", title: o.yLabel + (logY ? " (log scale)" : ""), scale: yScale(o) };
  return {
    datasets: { d: packRows(["m", "t", "x", "y", "lo", "hi"], rows) },
    data: { name: "d" },
    columns: 3,
    facet: {
      field: "m",
      type: "nominal",
      sort: o.methods,
      title: null,
      header: { labelFontSize: 13, labelFontWeight: "bold", labelAnchor: "start", labelLimit: 300 },
    },
    resolve: { scale: { y: "independent" } },
    spec: {
      width: 330,
      height: 190,
      encoding: {
        x: { field: "x", type: "quantitative", title: o.xLabel },
        color: {
          field: "t",
          type: "nominal",
          title: "task",
          scale: { domain: o.tasks.map((t) => t.label), range: o.tasks.map((t) => t.color) },
          legend: { orient: "top", title: null, symbolType: "stroke", symbolStrokeWidth: 3, symbolOpacity: 1 },
        },
      },
      layer: [
        { transform: [{ filter: "isValid(datum.lo)" }], mark: { type: "area", opacity: 0.14, clip: true }, encoding: { y: { field: "lo", type: "quantitative", scale: yScale(o) }, y2: { field: "hi" } } },
        { mark: { type: "line", strokeWidth: 2, clip: true }, encoding: { y } },
        {
          mark: { type: "point", filled: true, size: 12, opacity: 0.6, clip: true },
          encoding: {
            y,
            tooltip: [
              { field: "m", type: "nominal", title: "method" },
              { field: "t", type: "nominal", title: "task" },
              { field: "x", type: "quantitative", title: o.xLabel },
              { field: "y", type: "quantitative", title: o.yLabel, format: o.yFormat ?? ".4~g" },
            ],
          },
        },
      ],
    },
  };
}

export interface HeatCell {
  m: string;
  a: string;
  b: string;
  v: number | null;
}

/** Small multiples of T×T heatmaps on a diverging scale −d..d, values printed in the cells. */
export function heatmapsSpec(o: { cells: HeatCell[]; methods: string[]; tasks: string[]; domain: number; legendTitle: string; format: string; columns?: number }): Spec {
  const d = Number.isFinite(o.domain) && o.domain > 0 ? o.domain : 1;
  const side = Math.max(34, Math.min(56, Math.floor(220 / Math.max(1, o.tasks.length))));
  const fmt = o.format;
  const rows = o.cells.map((c) => ({ ...c, v: num(c.v), s: c.v === null || !Number.isFinite(c.v) ? "–" : fmtNumber(c.v, fmt) }));
  const axis = { field: "b", type: "ordinal", sort: o.tasks, title: null, axis: { labelAngle: -35, labelLimit: 90 } };
  return {
    datasets: { d: packRows(["m", "a", "b", "v", "s"], rows) },
    data: { name: "d" },
    columns: o.columns ?? 4,
    facet: { field: "m", type: "nominal", sort: o.methods, title: null, header: { labelFontSize: 13, labelFontWeight: "bold", labelAnchor: "start", labelLimit: 300 } },
    spec: {
      width: side * o.tasks.length,
      height: side * o.tasks.length,
      encoding: { x: axis, y: { field: "a", type: "ordinal", sort: o.tasks, title: null, axis: { labelLimit: 90 } } },
      layer: [
        { mark: { type: "rect", fill: "#e4e7eb" } },
        {
          transform: [{ filter: "isValid(datum.v)" }],
          mark: { type: "rect" },
          encoding: {
            color: { field: "v", type: "quantitative", title: o.legendTitle, scale: { scheme: "redblue", domain: [-d, d], clamp: true } },
            tooltip: [
              { field: "m", type: "nominal", title: "method" },
              { field: "a", type: "nominal", title: "task" },
              { field: "b", type: "nominal", title: "with" },
              { field: "s", type: "nominal", title: o.legendTitle },
            ],
          },
        },
        {
          mark: { type: "text", fontSize: side >= 44 ? 11 : 9.5 },
          encoding: {
            text: { field: "s" },
            color: { condition: { test: `isValid(datum.v) && abs(datum.v) > ${num(0.62 * d)}`, value: "#ffffff" }, value: "#1f2933" },
          },
        },
      ],
    },
    config: { view: { stroke: null }, axis: { domain: false, ticks: false } },
  };
}

/** Two decimals; "+" before positive values when `format` starts with "+"; never "-0.00". */
function fmtNumber(v: number, format: string): string {
  const s = v.toFixed(2);
  if (s === "0.00" || s === "-0.00") return "0.00";
  return format.startsWith("+") && v > 0 ? `+${s}` : s;
}

export interface IntervalPoint {
  m: string;
  mean: number | null;
  lo: number | null;
  hi: number | null;
  /** Holm-adjusted interval and p-values, when the family was corrected. */
  hlo?: number | null;
  hhi?: number | null;
  p?: number | null;
  ph?: number | null;
}

/** Forest plot: per method the mean difference, its 95 % interval (thin) and Holm interval (thick), zero dashed. */
export function intervalsSpec(o: { rows: IntervalPoint[]; methods: MethodStyle[]; xLabel: string; title: string }): Spec {
  const rows = o.rows.map((r) => ({ ...r, hlo: r.hlo ?? null, hhi: r.hhi ?? null, p: r.p ?? null, ph: r.ph ?? null }));
  const y = { field: "m", type: "nominal", title: null, sort: o.methods.map((m) => m.label), axis: { labelLimit: 160 } };
  const tooltip = [
    { field: "m", type: "nominal", title: "method" },
    { field: "mean", type: "quantitative", title: "mean difference", format: "+.4f" },
    { field: "lo", type: "quantitative", title: "95 % low", format: "+.4f" },
    { field: "hi", type: "quantitative", title: "95 % high", format: "+.4f" },
    { field: "hlo", type: "quantitative", title: "Holm low", format: "+.4f" },
    { field: "hhi", type: "quantitative", title: "Holm high", format: "+.4f" },
    { field: "ph", type: "quantitative", title: "Holm p", format: ".2g" },
  ];
  return {
    title: { text: o.title, anchor: "start", fontSize: 14 },
    width: "container",
    height: { step: 18 },
    autosize: { type: "fit-x", contains: "padding" },
    datasets: { d: packRows(["m", "mean", "lo", "hi", "hlo", "hhi", "p", "ph"], rows) },
    data: { name: "d" },
    encoding: { y, color: colorEncoding(o.methods) },
    layer: [
      { data: { values: [{ z: 0 }] }, mark: { type: "rule", strokeDash: [4, 3], color: "#52606d" }, encoding: { x: { field: "z", type: "quantitative" }, y: null, color: null } },
      { transform: [{ filter: "isValid(datum.hlo) && isValid(datum.hhi)" }], mark: { type: "rule", strokeWidth: 6, opacity: 0.35 }, encoding: { x: { field: "hlo", type: "quantitative", title: o.xLabel }, x2: { field: "hhi" } } },
      { transform: [{ filter: "isValid(datum.lo) && isValid(datum.hi)" }], mark: { type: "rule", strokeWidth: 1.8 }, encoding: { x: { field: "lo", type: "quantitative", title: o.xLabel }, x2: { field: "hi" } } },
      { transform: [{ filter: "isValid(datum.mean)" }], mark: { type: "point", filled: true, size: 60, opacity: 1 }, encoding: { x: { field: "mean", type: "quantitative", title: o.xLabel }, tooltip } },
    ],
  };
}

export interface CostPoint {
  m: string;
  ms: number;
  /** ms per step relative to EW's (null when EW has no cost). */
  rel: number | null;
  a: number | null;
  lo: number | null;
  hi: number | null;
  rss: number | null;
}

/** AV-A against ms per step, with the AV-A interval as a vertical bar and the method named beside its point. */
export function costSpec(o: { rows: CostPoint[]; methods: MethodStyle[]; strong: string[]; base: string[] }): Spec {
  const x = { field: "ms", type: "quantitative", title: "ms per training step (median over seeds)", scale: { zero: false, nice: true } };
  const yTitle = "AV-A (test; mean, 95 % interval over seeds)";
  return {
    width: "container",
    height: 380,
    autosize: { type: "fit-x", contains: "padding" },
    datasets: { d: packRows(["m", "ms", "rel", "a", "lo", "hi", "rss"], o.rows) },
    data: { name: "d" },
    params: methodParams(o.strong, o.base),
    encoding: { x, color: colorEncoding(o.methods) },
    layer: [
      { transform: [{ filter: "isValid(datum.lo) && isValid(datum.hi)" }], mark: { type: "rule", strokeWidth: 2 }, encoding: { y: { field: "lo", type: "quantitative", title: yTitle, scale: { zero: false } }, y2: { field: "hi" }, opacity: { condition: { test: IS_STRONG, value: 1 }, value: 0.55 } } },
      {
        transform: [{ filter: "isValid(datum.a)" }],
        mark: { type: "point", filled: true, size: 80 },
        encoding: {
          y: { field: "a", type: "quantitative", title: yTitle, scale: { zero: false } },
          opacity: { condition: { test: IS_STRONG, value: 1 }, value: 0.6 },
          tooltip: [
            { field: "m", type: "nominal", title: "method" },
            { field: "a", type: "quantitative", title: "AV-A", format: ".4f" },
            { field: "lo", type: "quantitative", title: "95 % low", format: ".4f" },
            { field: "hi", type: "quantitative", title: "95 % high", format: ".4f" },
            { field: "ms", type: "quantitative", title: "ms/step", format: ".3~f" },
            { field: "rel", type: "quantitative", title: "× EW", format: ".2f" },
            { field: "rss", type: "quantitative", title: "peak RSS (MiB)", format: ".0f" },
          ],
        },
      },
      {
        transform: [{ filter: "isValid(datum.a)" }],
        mark: { type: "text", align: "left", dx: 7, dy: -6, fontSize: 11 },
        encoding: { y: { field: "a", type: "quantitative", title: yTitle, scale: { zero: false } }, text: { field: "m" }, opacity: { condition: { test: IS_STRONG, value: 1 }, value: 0.75 } },
      },
    ],
  };
}

/** Collects the report's charts: each `add` gives the element that shows one. */
export class ChartSet {
  private readonly specs: Record<string, Spec> = {};
  private n = 0;

  /** A placeholder element for `spec`; `label` is its accessible name (escaped here). */
  add(spec: Spec, label: string, cls = "vl"): string {
    const id = `c${this.n++}`;
    this.specs[id] = spec;
    return `<div class="${cls}" data-spec="${id}" role="img" aria-label="${esc(label)}"></div>`;
  }

  get size(): number {
    return this.n;
  }

  /** The specs as one JSON script, then the library, then the page's own code (nothing when there is no chart). */
  scripts(library: string): string {
    if (this.n === 0) return `<script>${PAGE_SCRIPT}</script>`;
    return [`<script type="application/json" id="mtl-specs">${jsonForScript(this.specs)}</script>`, library, `<script>${PAGE_SCRIPT}</script>`].join("\n");
  }
}

/**
 * The report's own code (no network: it reads the specs from the page, draws them with the
 * inlined library, and wires the method legends and the sortable tables).
 * `window.mtlcraftReport.ready` resolves once every chart is drawn (tests wait on it).
 */
export const PAGE_SCRIPT = `(function () {
  "use strict";
  var views = [], picked = [], pending = [];
  function unpack(ds) {
    if (!ds || !ds.$cols) return ds;
    var cols = ds.$cols, dict = ds.$dict || {}, names = Object.keys(cols), n = names.length ? cols[names[0]].length : 0, rows = [];
    for (var i = 0; i < n; i++) {
      var r = {};
      for (var k = 0; k < names.length; k++) {
        var f = names[k], v = cols[f][i];
        r[f] = dict[f] && v !== null ? dict[f][v] : v;
      }
      rows.push(r);
    }
    return rows;
  }
  function usesPick(spec) {
    return (spec.params || []).some(function (p) { return p.name === "pick"; });
  }
  var el = document.getElementById("mtl-specs");
  var specs = el ? JSON.parse(el.textContent) : {};
  document.querySelectorAll("[data-spec]").forEach(function (box) {
    var spec = specs[box.getAttribute("data-spec")];
    if (!spec || typeof vegaEmbed !== "function") return;
    for (var k in spec.datasets || {}) spec.datasets[k] = unpack(spec.datasets[k]);
    pending.push(vegaEmbed(box, spec, { actions: false, renderer: "svg", mode: "vega-lite" }).then(function (res) {
      if (usesPick(spec)) views.push(res.view);
    }, function (e) {
      box.textContent = "This chart could not be drawn: " + (e && e.message ? e.message : e);
      console.error(e);
    }));
  });
  function setPick(label) {
    var i = picked.indexOf(label);
    if (i >= 0) picked.splice(i, 1); else picked.push(label);
    document.querySelectorAll(".mlegend button").forEach(function (b) {
      b.setAttribute("aria-pressed", picked.indexOf(b.getAttribute("data-m")) >= 0 ? "true" : "false");
    });
    return Promise.all(views.map(function (v) { return v.signal("pick", picked.slice()).runAsync(); }));
  }
  document.querySelectorAll(".mlegend button").forEach(function (b) {
    b.addEventListener("click", function () { setPick(b.getAttribute("data-m")); });
  });
  function cellValue(td) {
    var v = td.getAttribute("data-v");
    if (v !== null && v !== "") return Number(v);
    return td.textContent.trim().toLowerCase();
  }
  document.querySelectorAll("table.sortable").forEach(function (table) {
    var heads = table.querySelectorAll("thead th");
    heads.forEach(function (th, col) {
      th.tabIndex = 0;
      function sort() {
        var dir = th.getAttribute("aria-sort") === "descending" ? 1 : -1;
        heads.forEach(function (h) { h.removeAttribute("aria-sort"); });
        th.setAttribute("aria-sort", dir === 1 ? "ascending" : "descending");
        var body = table.tBodies[0], rows = Array.prototype.slice.call(body.rows);
        rows.sort(function (a, b) {
          var x = cellValue(a.cells[col]), y = cellValue(b.cells[col]);
          var xn = typeof x === "number" && x === x, yn = typeof y === "number" && y === y;
          if (xn !== yn) return xn ? -1 : 1;
          return x < y ? -dir : x > y ? dir : 0;
        });
        rows.forEach(function (r) { body.appendChild(r); });
      }
      th.addEventListener("click", sort);
      th.addEventListener("keydown", function (e) { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); sort(); } });
    });
  });
  window.mtlcraftReport = { ready: Promise.all(pending).then(function () { return views.length; }), pick: setPick };
})();`;
