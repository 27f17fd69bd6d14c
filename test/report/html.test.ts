import { test } from "node:test";
import assert from "node:assert/strict";
import { parse } from "parse5";
import { renderReport, methodColors } from "../../src/report/html.ts";
import { divergingColor, esc, heatmap, lineChart, niceTicks, logTicks } from "../../src/report/svg.ts";
import type { RunResult } from "../../src/report/types.ts";
import { buildComparisonTable, toHtmlTable } from "../../src/report/table.ts";
import { syntheticRuns, sampleTableHtml, summariesOf, DEFAULT_METHODS } from "../fixtures/report/runs.ts";

// --- tiny parse5 tree helpers -------------------------------------------------

interface Node {
  nodeName: string;
  tagName?: string;
  attrs?: { name: string; value: string }[];
  childNodes?: Node[];
  value?: string;
}

function parseStrict(html: string): Node {
  const errors: string[] = [];
  const doc = parse(html, { onParseError: (e) => errors.push(`${e.code} at ${e.startLine}:${e.startCol}`) }) as unknown as Node;
  assert.deepEqual(errors, [], "HTML parse errors");
  return doc;
}

function all(n: Node, pred: (n: Node) => boolean, out: Node[] = []): Node[] {
  if (pred(n)) out.push(n);
  for (const c of n.childNodes ?? []) all(c, pred, out);
  // parse5 keeps <template> content separately; we emit none.
  return out;
}
const byTag = (n: Node, tag: string) => all(n, (x) => x.tagName === tag);
const attr = (n: Node, name: string) => n.attrs?.find((a) => a.name === name)?.value;
const text = (n: Node): string => (n.nodeName === "#text" ? (n.value ?? "") : (n.childNodes ?? []).map(text).join(""));
function section(doc: Node, id: string): Node {
  const s = all(doc, (x) => x.tagName === "section" && attr(x, "id") === id);
  assert.equal(s.length, 1, `one <section id="${id}">`);
  return s[0]!;
}

const runs = syntheticRuns();
const META = { command: "mtlcraft bench --methods gradcraft,uw", date: "2026-11-23", machine: "ci <box> & co" };
const html = renderReport({ title: "Sweep <kuairand> & friends", runs, tableHtml: sampleTableHtml(runs), meta: META });
const doc = parseStrict(html);

// Fixture: single (no diagnostics) + gradcraft (diagnostics, no weights) + "uw<&>" (weights), 2 seeds, 3 tasks.
// AUC: 1 mean + 3 per task; norms: 2; cosine heatmaps: 2; conflict rate: 1; weights: 1.
const EXPECTED_SVGS = { auc: 4, norms: 2, cosine: 3, weights: 1 };

test("fixture shape is what the expectations assume", () => {
  assert.equal(runs.length, 6);
  assert.deepEqual([...new Set(runs.map((r) => r.method))], ["single", "gradcraft", "uw<&>"]);
  assert.ok(runs.every((r) => r.tasks.length === 3));
});

test("report has header, meta, table and every section", () => {
  assert.match(html, /^<!doctype html>/);
  const h1 = byTag(doc, "h1");
  assert.equal(h1.length, 1);
  assert.equal(text(h1[0]!), "Sweep <kuairand> & friends");
  const dts = byTag(doc, "dt").map(text);
  const dds = byTag(doc, "dd").map(text);
  assert.deepEqual(dts, Object.keys(META));
  assert.deepEqual(dds, Object.values(META));
  const table = section(doc, "table");
  assert.equal(byTag(table, "table").length, 1);
  assert.equal(byTag(table, "tr").length, 4, "header + 3 methods from the given table HTML");
  for (const [id, heading] of [
    ["auc", "Validation AUC"],
    ["norms", "Per-task gradient norms"],
    ["cosine", "Gradient cosine and conflicts"],
    ["weights", "Task weights"],
  ] as const) {
    const s = section(doc, id);
    assert.equal(text(byTag(s, "h2")[0]!), heading);
  }
  assert.ok(!html.includes("no loss-weighting methods in this sweep"));
});

test("one <svg> per expected plot, each in a figure with a caption", () => {
  for (const [id, n] of Object.entries(EXPECTED_SVGS)) {
    assert.equal(byTag(section(doc, id), "svg").length, n, `svgs in #${id}`);
  }
  const total = Object.values(EXPECTED_SVGS).reduce((a, b) => a + b, 0);
  assert.equal(byTag(doc, "svg").length, total);
  assert.equal(html.split("<svg").length - 1, total, "textual <svg count");
  assert.equal(html.split("</svg>").length - 1, total, "balanced </svg>");
  const figures = byTag(doc, "figure");
  assert.equal(figures.length, total);
  for (const f of figures) {
    assert.equal(byTag(f, "svg").length, 1);
    const cap = byTag(f, "figcaption");
    assert.equal(cap.length, 1);
    assert.ok(text(cap[0]!).trim().length > 40, "caption says what the plot shows");
  }
  // Each chart has axis labels and tick labels.
  for (const svg of byTag(section(doc, "auc"), "svg")) {
    const texts = byTag(svg, "text").map(text);
    assert.ok(texts.includes("epoch"));
    assert.ok(texts.some((t) => /val AUC/.test(t)));
    assert.ok(texts.filter((t) => /^\d+$/.test(t)).length >= 3, "x tick labels");
    assert.ok(texts.filter((t) => /^0\.\d+$/.test(t)).length >= 2, "y tick labels");
  }
  for (const svg of byTag(section(doc, "norms"), "svg")) {
    assert.ok(byTag(svg, "text").map(text).some((t) => t.includes("(log scale)")));
  }
});

test("no NaN/undefined/Infinity anywhere and every numeric attribute is finite", () => {
  assert.ok(!/NaN|undefined|Infinity/.test(html), "bad token in HTML");
  const numeric = ["x", "y", "x1", "x2", "y1", "y2", "cx", "cy", "r", "width", "height"];
  let checked = 0;
  for (const svg of byTag(doc, "svg")) {
    for (const el of all(svg, (n) => n.attrs !== undefined)) {
      for (const a of el.attrs!) {
        if (numeric.includes(a.name)) {
          assert.ok(Number.isFinite(Number(a.value)), `${el.tagName} ${a.name}="${a.value}"`);
          checked++;
        }
        if (a.name === "d") assert.match(a.value, /^(?:[ML]-?\d+(?:\.\d+)? -?\d+(?:\.\d+)?)+$/, "path d");
        if (a.name === "points") assert.match(a.value, /^-?\d+(?:\.\d+)?,-?\d+(?:\.\d+)?(?: -?\d+(?:\.\d+)?,-?\d+(?:\.\d+)?)*$/);
        if (a.name === "viewBox") assert.match(a.value, /^0 0 \d+(?:\.\d+)? \d+(?:\.\d+)?$/);
      }
    }
  }
  assert.ok(checked > 500, `checked ${checked} numeric attributes`);
});

test("a method name with <&> is escaped everywhere", () => {
  assert.ok(!html.includes(`UW <&> "x"`), "raw label leaked");
  assert.ok(html.includes("UW &lt;&amp;&gt; &quot;x&quot;"));
  assert.ok(!html.includes("<kuairand>"));
  assert.ok(!html.includes("<box>"));
  // Parsed back, the label is intact text in legends and chart titles, never markup.
  const legendText = byTag(section(doc, "auc"), "ul").map(text).join("|");
  assert.ok(legendText.includes(`UW <&> "x"`));
  const weightTitles = byTag(section(doc, "weights"), "text").map(text);
  assert.ok(weightTitles.includes(`UW <&> "x"`));
  assert.equal(byTag(doc, "kuairand").length + byTag(doc, "box").length, 0);
});

test("self-contained: no scripts, no external references", () => {
  assert.equal(byTag(doc, "script").length, 0);
  for (const tag of ["link", "img", "iframe", "object", "embed", "image", "use"]) {
    assert.equal(byTag(doc, tag).length, 0, `<${tag}>`);
  }
  for (const el of all(doc, (n) => n.attrs !== undefined)) {
    for (const a of el.attrs!) {
      if (["src", "href", "xlink:href", "action", "srcset"].includes(a.name)) {
        assert.match(a.value, /^#[\w-]+$/, `${el.tagName} ${a.name}="${a.value}" must be an in-page anchor`);
      }
    }
  }
  assert.ok(!/(?:src|href)\s*=\s*["']?\s*(?:https?:)?\/\//i.test(html));
  assert.ok(!/https?:\/\//i.test(html), "no URL at all (meta has none)");
  assert.ok(!/@import|url\(/i.test(html), "no CSS imports or url()");
});

test("each method keeps one colour across all plots and legends", () => {
  const colors = methodColors(runs);
  assert.equal(new Set(colors.values()).size, 3, "distinct colours");
  const strokes = (svg: Node) => new Set(all(svg, (n) => attr(n, "stroke") !== undefined).map((n) => attr(n, "stroke")));
  for (const svg of byTag(section(doc, "auc"), "svg")) {
    const s = strokes(svg);
    for (const [m, col] of colors) assert.ok(s.has(col), `${m} drawn in ${col}`);
  }
  const conflict = byTag(section(doc, "cosine"), "svg").filter((s) => attr(s, "class") === "chart");
  assert.equal(conflict.length, 1);
  const cs = strokes(conflict[0]!);
  assert.ok(cs.has(colors.get("gradcraft")!) && cs.has(colors.get("uw<&>")!));
  assert.ok(!cs.has(colors.get("single")!), "baseline has no diagnostics, so no conflict line");
  // Legend swatches use the same colours.
  const legend = byTag(section(doc, "auc"), "ul")[0]!;
  const sw = byTag(legend, "span").map((s) => /border-top-color:(#[0-9a-f]{6})/.exec(attr(s, "style") ?? "")?.[1]);
  assert.deepEqual(sw, [...colors.values()]);
});

test("heatmap prints the mean cosine over steps and seeds", () => {
  const rs: RunResult[] = structuredClone(runs);
  const gc = rs.filter((r) => r.method === "gradcraft");
  gc.forEach((r, k) => {
    for (const d of r.diagnostics) {
      // tasks click, like, share: cos(click, like) = 0.2 in seed 1 and 0.6 in seed 2 → mean 0.40.
      const v = k === 0 ? 0.2 : 0.6;
      d.cosines = [1, v, -0.75, v, 1, NaN, -0.75, NaN, 1];
    }
  });
  const d = parseStrict(renderReport({ title: "t", runs: rs }));
  const heat = byTag(section(d, "cosine"), "svg").filter((s) => attr(s, "class") === "heatmap");
  assert.equal(heat.length, 2);
  const cells = byTag(heat[0]!, "text").map(text);
  assert.equal(cells.filter((t) => t === "0.40").length, 2, "symmetric pair printed twice");
  assert.equal(cells.filter((t) => t === "-0.75").length, 2);
  assert.equal(cells.filter((t) => t === "–").length, 2, "all-NaN pair shown as a dash");
  assert.equal(cells.filter((t) => t === "1.00").length, 3);
  const fills = new Set(byTag(heat[0]!, "rect").map((r) => attr(r, "fill")));
  assert.ok(fills.has(divergingColor(-0.75)) && fills.has(divergingColor(0.4)));
  // Legend ticks -1..1.
  for (const t of ["-1", "-0.5", "0", "0.5", "1"]) assert.ok(cells.includes(t), `legend tick ${t}`);
});

test("sweep without loss-weighting methods says so in the weights section", () => {
  const rs = syntheticRuns({ methods: DEFAULT_METHODS.filter((m) => !m.weights) });
  const h = renderReport({ title: "no weights", runs: rs });
  const d = parseStrict(h);
  const w = section(d, "weights");
  assert.equal(byTag(w, "svg").length, 0);
  assert.ok(text(w).includes("no run logged task weights"));
  assert.equal(byTag(d, "svg").length, 4 + 1 + 2, "auc 4, norms 1, heatmap 1 + conflict 1");
  assert.equal(byTag(d, "section").filter((s) => attr(s, "id") === "table").length, 0, "no table section without tableHtml");
});

test("degenerate inputs render without NaN: no runs, all-null metrics, empty diagnostics", () => {
  const empty = renderReport({ title: "empty", runs: [] });
  parseStrict(empty);
  assert.ok(!/NaN|undefined|Infinity/.test(empty));
  assert.ok(empty.includes("No runs to report."));

  const rs: RunResult[] = structuredClone(syntheticRuns({ seeds: [1], awkward: false }));
  for (const r of rs) {
    for (const h of r.history) h.valAuc = h.valAuc.map(() => null as unknown as number);
    for (const d of r.diagnostics) {
      d.norms = d.norms.map(() => NaN);
      d.cosines = d.cosines.map(() => NaN);
      d.conflicts = NaN;
      if (d.weights) d.weights = d.weights.map(() => Infinity);
    }
  }
  const h = renderReport({ title: "all null", runs: rs });
  const d = parseStrict(h);
  assert.ok(!/NaN|undefined|Infinity/.test(h));
  const charts = byTag(d, "svg").filter((s) => attr(s, "class") === "chart");
  assert.ok(charts.length >= 7);
  for (const c of charts) assert.ok(byTag(c, "text").map(text).includes("no data"), "empty chart says no data");
});

test("the comparison table from toHtmlTable is embedded intact", () => {
  const tableHtml = toHtmlTable(buildComparisonTable(summariesOf(runs), { baseline: "single" }));
  const d = parseStrict(renderReport({ title: "with table", runs, tableHtml }));
  const t = section(d, "table");
  const headers = byTag(byTag(t, "thead")[0]!, "th").map(text);
  assert.deepEqual(headers.slice(1), ["Single", "GradCraft", `UW <&> "x"`]);
  // 3 tasks × (AUC, GAUC) + AV-A, AV-G, RI-A, RI-G.
  assert.equal(byTag(byTag(t, "tbody")[0]!, "tr").length, 10);
});

// --- svg helpers ----------------------------------------------------------------

test("lineChart breaks the line at gaps and never writes NaN", () => {
  const svg = lineChart({
    xLabel: "x",
    yLabel: "y",
    series: [
      { name: "a", color: "#123456", points: [[0, 1], [1, 2], [2, null], [3, NaN], [4, 3], [5, 4], [6, null], [7, 5]] },
      { name: "empty", color: "#654321", points: [] },
    ],
  });
  assert.ok(!/NaN|undefined|Infinity/.test(svg));
  const paths = [...svg.matchAll(/<path d="([^"]+)"/g)].map((m) => m[1]!);
  assert.equal(paths.length, 2, "two multi-point segments");
  for (const p of paths) assert.equal(p.split("M").length - 1, 1);
  assert.equal((svg.match(/<circle /g) ?? []).length, 1, "isolated point drawn as a dot");
  assert.ok(!svg.includes("#654321"), "empty series draws nothing");
});

test("lineChart log scale drops non-positive values and uses decade ticks", () => {
  const svg = lineChart({
    xLabel: "step",
    yLabel: "norm",
    logY: true,
    series: [{ name: "n", color: "#000000", points: [[0, 100], [1, 0], [2, -5], [3, 1], [4, 0.01]], band: [[0, 50, 200], [1, null, 3], [3, 0.5, 2], [4, 0.001, 0.1]] }],
  });
  assert.ok(!/NaN|undefined|Infinity/.test(svg));
  const ticks = [...svg.matchAll(/text-anchor="end" fill="#52606d">([^<]+)</g)].map((m) => m[1]);
  assert.ok(ticks.includes("0.01") && ticks.includes("1") && ticks.includes("100"), `ticks ${ticks.join(",")}`);
  assert.equal((svg.match(/<circle /g) ?? []).length, 1, "the lone 100 before the gap is a dot");
  assert.equal((svg.match(/<path /g) ?? []).length, 1, "1 → 0.01 is one segment");
  assert.equal((svg.match(/<polygon /g) ?? []).length, 1, "band segment [3,4] only");
  assert.ok(svg.includes("(log scale)"));
});

test("lineChart with no finite data shows 'no data' and a sane frame", () => {
  const svg = lineChart({ xLabel: "x", yLabel: "y", logY: true, series: [{ name: "s", color: "#111111", points: [[0, NaN], [1, null]] }] });
  assert.ok(svg.includes(">no data<"));
  assert.ok(!/NaN|undefined|Infinity/.test(svg));
  assert.ok(!svg.includes("#111111"));
});

test("escaping of labels in svg helpers", () => {
  const svg = lineChart({ xLabel: `a<b`, yLabel: `"q"`, title: "x&y", series: [{ name: "<s>", color: "#000", points: [[0, 1], [1, 2]] }] });
  assert.ok(svg.includes("a&lt;b") && svg.includes("&quot;q&quot;") && svg.includes("x&amp;y") && svg.includes("&lt;s&gt;"));
  assert.ok(!svg.includes("<s>"));
  const hm = heatmap({ labels: ["<t>", "u&v"], values: [[1, -0.5], [-0.5, 1]] });
  assert.ok(hm.includes("&lt;t&gt;") && hm.includes("u&amp;v") && !hm.includes("<t>"));
  assert.equal(esc(`<&>"'`), "&lt;&amp;&gt;&quot;&#39;");
});

test("diverging colour scale endpoints and clamping", () => {
  assert.equal(divergingColor(-1), "#b2182b");
  assert.equal(divergingColor(0), "#f7f7f7");
  assert.equal(divergingColor(1), "#2166ac");
  assert.equal(divergingColor(7), "#2166ac");
  assert.equal(divergingColor(-3), "#b2182b");
});

test("tick helpers produce round, in-range values", () => {
  assert.deepEqual(niceTicks(0, 1, 5), [0, 0.2, 0.4, 0.6, 0.8, 1]);
  assert.deepEqual(niceTicks(0.68, 0.76, 4), [0.68, 0.7, 0.72, 0.74, 0.76]);
  assert.deepEqual(niceTicks(0, 800, 5), [0, 200, 400, 600, 800]);
  assert.deepEqual(niceTicks(NaN, 1), []);
  assert.deepEqual(logTicks(0.001, 1000), [0.001, 0.01, 0.1, 1, 10, 100, 1000]);
  assert.deepEqual(logTicks(-1, 10), []);
  for (const t of niceTicks(0.123, 0.987, 6)) assert.ok(t >= 0.123 && t <= 0.987);
});

test("effective task weights are drawn for gradient methods too when the runs logged coefficients", () => {
  const rs = syntheticRuns({ methods: DEFAULT_METHODS.filter((m) => !m.weights) });
  const T = rs.find((r) => r.method === "gradcraft")!.tasks.length;
  for (const r of rs) if (r.method === "gradcraft") for (const [k, d] of r.diagnostics.entries()) d.coeffs = Array.from({ length: T }, (_, i) => 1 + 0.01 * k * (i + 1));
  const d = parseStrict(renderReport({ title: "coeffs", runs: rs }));
  const w = section(d, "weights");
  assert.equal(byTag(w, "svg").length, 1, "one chart: GradCraft's effective weights");
  const labels = byTag(w, "text").map(text);
  assert.ok(labels.includes("GradCraft") && labels.includes("effective weight"), labels.join("|"));
  assert.ok(text(w).includes("coefficient c"), "the caption says what an effective weight is");
});
