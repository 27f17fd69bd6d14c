import { test } from "node:test";
import assert from "node:assert/strict";
import { parse } from "parse5";
import { renderReport, methodColors, pickFocus } from "../../src/report/html.ts";
import { esc, lineChart, niceTicks, logTicks } from "../../src/report/svg.ts";
import { jsonForScript, PAGE_SCRIPT } from "../../src/report/charts.ts";
import { chartLibraryScripts } from "../../src/report/vendor.ts";
import type { RunResult } from "../../src/report/types.ts";
import { buildComparisonTable, toHtmlTable } from "../../src/report/table.ts";
import { syntheticRuns, sampleTableHtml, summariesOf, DEFAULT_METHODS, manyMethods } from "../fixtures/report/runs.ts";

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

type Spec = Record<string, unknown>;
/** The charts' specs, from the page's JSON script. */
function specsOf(doc: Node): Record<string, Spec> {
  const s = all(doc, (x) => x.tagName === "script" && attr(x, "id") === "mtl-specs");
  assert.equal(s.length, 1, "one spec script");
  assert.equal(attr(s[0]!, "type"), "application/json");
  return JSON.parse(text(s[0]!)) as Record<string, Spec>;
}
/** The chart placeholders under a node. */
const chartsIn = (n: Node) => all(n, (x) => attr(x, "data-spec") !== undefined);
/** A column-wise dataset unpacked into rows, as the page does. */
function rowsOf(spec: Spec, name = "d"): Record<string, unknown>[] {
  const ds = (spec.datasets as Record<string, { $cols: Record<string, unknown[]>; $dict: Record<string, string[]> }>)[name]!;
  const names = Object.keys(ds.$cols);
  const n = names.length ? ds.$cols[names[0]!]!.length : 0;
  return Array.from({ length: n }, (_, i) => Object.fromEntries(names.map((f) => {
    const v = ds.$cols[f]![i];
    return [f, ds.$dict[f] && v !== null ? ds.$dict[f]![v as number] : v];
  })));
}
/** The page without the inlined library builds (which hold their own "NaN", URLs, ...). */
const own = (h: string) => h.replace(chartLibraryScripts(), "");

const runs = syntheticRuns();
const META = { command: "mtlcraft bench --methods gradcraft,uw", date: "2026-11-23", machine: "ci <box> & co" };
const html = renderReport({ title: "Sweep <kuairand> & friends", runs, tableHtml: sampleTableHtml(runs), meta: META });
const doc = parseStrict(html);
const specs = specsOf(doc);

// Fixture: single (no diagnostics) + gradcraft (diagnostics, no weights) + "uw<&>" (weights), 2 seeds, 3 tasks, no EW.
// AUC: 1 mean + 3 per task; norms: 1 (a panel per method); cosine: heatmap panels 1 + conflict rate 1; weights: 1; cost: none recorded.
const EXPECTED_CHARTS = { auc: 4, norms: 1, cosine: 2, weights: 1, cost: 0 };

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
    ["cost", "Quality against cost"],
  ] as const) {
    const s = section(doc, id);
    assert.equal(text(byTag(s, "h2")[0]!), heading);
  }
  assert.ok(text(section(doc, "cost")).includes("No run recorded its cost"), "the fixture has no cost: said so");
});

test("one chart per expected plot, each in a figure with a caption, each with its spec", () => {
  for (const [id, n] of Object.entries(EXPECTED_CHARTS)) assert.equal(chartsIn(section(doc, id)).length, n, `charts in #${id}`);
  const total = Object.values(EXPECTED_CHARTS).reduce((a, b) => a + b, 0);
  const boxes = chartsIn(doc);
  assert.equal(boxes.length, total);
  assert.deepEqual(boxes.map((b) => attr(b, "data-spec")).sort(), Object.keys(specs).sort(), "one spec per placeholder");
  const figures = byTag(doc, "figure");
  assert.equal(figures.length, total);
  for (const f of figures) {
    assert.equal(chartsIn(f).length, 1);
    assert.ok((attr(chartsIn(f)[0]!, "aria-label") ?? "").length > 10, "accessible name");
    const cap = byTag(f, "figcaption");
    assert.equal(cap.length, 1);
    assert.ok(text(cap[0]!).trim().length > 40, "caption says what the plot shows");
  }
  // The AUC charts: epochs on x, val AUC on y, a line per method with its points.
  for (const box of chartsIn(section(doc, "auc"))) {
    const spec = specs[attr(box, "data-spec")!]!;
    const json = JSON.stringify(spec);
    assert.ok(json.includes(`"title":"epoch"`) && /"title":"val AUC/.test(json), "axis titles");
    const rows = rowsOf(spec);
    assert.deepEqual([...new Set(rows.map((r) => r.m))].sort(), ["GradCraft", "Single", `UW <&> "x"`].sort());
    assert.ok(rows.every((r) => typeof r.x === "number" && typeof r.y === "number"), "only plotted points travel");
    assert.ok(rows.filter((r) => r.m === "GradCraft").length >= 6, "epochs of GradCraft");
  }
  const norms = specs[attr(chartsIn(section(doc, "norms"))[0]!, "data-spec")!]!;
  assert.match(JSON.stringify(norms), /"type":"log"/);
  assert.match(JSON.stringify(norms), /\(log scale\)/);
  assert.ok(rowsOf(norms).every((r) => (r.y as number) > 0), "a log axis gets positive values only");
});

test("no NaN/undefined/Infinity in the report's own content, and every plotted number is finite", () => {
  assert.ok(!/NaN|undefined|Infinity/.test(own(html)), "bad token in HTML");
  let checked = 0;
  for (const spec of Object.values(specs)) {
    for (const ds of Object.values(spec.datasets as Record<string, { $cols: Record<string, unknown[]> }>)) {
      for (const col of Object.values(ds.$cols)) {
        for (const v of col) {
          assert.ok(v === null || (typeof v === "number" && Number.isFinite(v)), `value ${String(v)}`);
          checked++;
        }
      }
    }
  }
  assert.ok(checked > 500, `checked ${checked} values`);
});

test("a method name with <&> is escaped everywhere", () => {
  const mine = own(html);
  assert.ok(!mine.includes(`UW <&> "x"`), "raw label leaked");
  assert.ok(mine.includes("UW &lt;&amp;&gt; &quot;x&quot;"));
  assert.ok(!mine.includes("<kuairand>"));
  assert.ok(!mine.includes("<box>"));
  // Parsed back, the label is intact text in legends and chart data, never markup.
  const legendText = all(section(doc, "auc"), (n) => attr(n, "class") === "mlegend").map(text).join("|");
  assert.ok(legendText.includes(`UW <&> "x"`));
  const weights = specs[attr(chartsIn(section(doc, "weights"))[0]!, "data-spec")!]!;
  assert.ok(rowsOf(weights).some((r) => r.m === `UW <&> "x"`));
  assert.equal(byTag(doc, "kuairand").length + byTag(doc, "box").length, 0);
});

test("a label that closes <script> stays data: the spec JSON is escaped, the page keeps its scripts", () => {
  const evil = `</script><script>alert(1)</script><!--`;
  const rs = syntheticRuns({ methods: [{ method: "x", label: evil, diagnostics: true, weights: true, lift: 0 }, ...DEFAULT_METHODS.slice(1, 2)] });
  const h = renderReport({ title: evil, runs: rs, meta: { note: evil } });
  const d = parseStrict(h);
  const scripts = byTag(d, "script");
  assert.equal(scripts.length, 5, "spec JSON, 3 library builds, the page's code");
  assert.equal(text(scripts[4]!), PAGE_SCRIPT);
  const sp = specsOf(d);
  const labels = Object.values(sp).flatMap((s) => rowsOf(s).map((r) => r.m));
  assert.ok(labels.includes(evil), "label intact in the data");
  assert.ok(!own(h).includes("</script><script>alert"), "never raw in the page");
  assert.equal(jsonForScript({ a: "</script>&\u2028" }), `{"a":"\\u003c/script\\u003e\\u0026\\u2028"}`);
  assert.deepEqual(JSON.parse(jsonForScript({ a: "</script>&\u2028" })), { a: "</script>&\u2028" });
});

test("self-contained: only the inlined library, the specs and the page's own code; no external reference", () => {
  const scripts = byTag(doc, "script");
  assert.equal(scripts.length, 5);
  const lib = chartLibraryScripts();
  assert.equal(scripts.slice(1, 4).map((s) => `<script>${text(s)}</script>`).join("\n"), lib, "the three builds, verbatim");
  assert.equal(text(scripts[4]!), PAGE_SCRIPT);
  for (const s of scripts) {
    assert.deepEqual(s.attrs!.map((a) => a.name).filter((n) => n !== "type" && n !== "id"), [], "no src or other attribute on a script");
  }
  assert.ok(lib.length > 500_000 && lib.length < 1_200_000, `library ${lib.length} bytes`);
  assert.ok(!/sourceMappingURL/.test(lib), "no source-map reference");
  for (const tag of ["link", "img", "iframe", "object", "embed", "image", "use", "base", "form"]) {
    assert.equal(byTag(doc, tag).length, 0, `<${tag}>`);
  }
  for (const el of all(doc, (n) => n.attrs !== undefined)) {
    for (const a of el.attrs!) {
      if (["src", "href", "xlink:href", "action", "srcset", "formaction"].includes(a.name)) {
        assert.match(a.value, /^#[\w-]+$/, `${el.tagName} ${a.name}="${a.value}" must be an in-page anchor`);
      }
      assert.ok(!/^on/i.test(a.name), `no inline handler ${a.name}`);
    }
  }
  const mine = own(html);
  assert.ok(!/(?:src|href)\s*=\s*["']?\s*(?:https?:)?\/\//i.test(html));
  assert.ok(!/https?:\/\//i.test(mine), "no URL outside the library builds (meta has none)");
  assert.ok(!/@import|url\(/i.test(mine), "no CSS imports or url()");
  // The page's own code asks for nothing over the network.
  assert.ok(!/fetch|XMLHttpRequest|WebSocket|EventSource|sendBeacon|import\(|\beval\b|Function\(|\.src\b|location|window\.open/.test(PAGE_SCRIPT));
  // No spec names a URL or a data file: data travels inline.
  for (const spec of Object.values(specs)) {
    assert.ok(!/"url"|"\$schema"|"href"|"image"/.test(JSON.stringify(spec)), "no loaded data, links or images in a spec");
  }
});

test("each method keeps one unique colour across every chart and legend", () => {
  const colors = methodColors(runs);
  assert.equal(new Set(colors.values()).size, 3, "distinct colours");
  const labelColor = new Map(runs.map((r) => [r.methodLabel, colors.get(r.method)!]));
  let scales = 0;
  for (const spec of Object.values(specs)) {
    const json = JSON.stringify(spec);
    const m = /"field":"m","type":"nominal","title":"method","scale":\{"domain":(\[[^\]]*\]),"range":(\[[^\]]*\])/.exec(json);
    if (!m) continue;
    scales++;
    const dom = JSON.parse(m[1]!) as string[];
    const rng = JSON.parse(m[2]!) as string[];
    dom.forEach((l, i) => assert.equal(rng[i], labelColor.get(l), `${l} in one colour`));
  }
  assert.ok(scales >= 5, `${scales} method colour scales`);
  const buttons = byTag(section(doc, "auc"), "button");
  assert.deepEqual(buttons.map((b) => attr(b, "data-color")), [...colors.values()]);
  assert.deepEqual(buttons.map((b) => attr(b, "data-m")), [...labelColor.keys()]);
});

test("unique legend colours with 25 methods (and with 40)", () => {
  for (const n of [25, 40]) {
    const rs = syntheticRuns({ methods: manyMethods(n), seeds: [1], epochs: 3, stepsPerEpoch: 20 });
    const d = parseStrict(renderReport({ title: "many", runs: rs }));
    const buttons = byTag(section(d, "auc"), "button");
    assert.equal(buttons.length, n);
    const cols = buttons.map((b) => attr(b, "data-color")!);
    assert.equal(new Set(cols).size, n, `${n} distinct legend colours`);
    for (const c of cols) assert.match(c, /^#[0-9a-f]{6}$/);
    // The swatch is drawn in the same colour.
    buttons.forEach((b, i) => assert.ok((attr(byTag(b, "span")[0]!, "style") ?? "").includes(cols[i]!)));
  }
});

test("focus: the best mean val AUC (Single excluded) drawn strong with EW, or the one asked for", () => {
  const rs = syntheticRuns({ methods: manyMethods(6), seeds: [1, 2], epochs: 3, stepsPerEpoch: 20 });
  const valOf = (m: string) => {
    const xs = rs.filter((r) => r.method === m).map((r) => r.val.auc.reduce((a, b) => a + b, 0) / r.val.auc.length);
    return xs.reduce((a, b) => a + b, 0) / xs.length;
  };
  const candidates = [...new Set(rs.map((r) => r.method))].filter((m) => m !== "single");
  const best = candidates.reduce((a, b) => (valOf(b) > valOf(a) ? b : a));
  assert.equal(pickFocus(rs), best);
  const label = rs.find((r) => r.method === best)!.methodLabel;
  const d = parseStrict(renderReport({ title: "focus", runs: rs }));
  const sp = specsOf(d);
  const strongOf = (s: Spec) => ((s.params as { name: string; value: unknown }[]) ?? []).find((p) => p.name === "strong")?.value;
  const auc = sp[attr(chartsIn(section(d, "auc"))[0]!, "data-spec")!]!;
  assert.deepEqual(strongOf(auc), [label, "EW"]);
  const strongButtons = byTag(section(d, "auc"), "button").filter((b) => attr(b, "class") === "strong").map((b) => attr(b, "data-m"));
  assert.deepEqual(strongButtons.sort(), [label, "EW"].sort());
  // --focus overrides; an unknown one is refused with a suggestion.
  const other = candidates.find((m) => m !== best && m !== "ew")!;
  const d2 = parseStrict(renderReport({ title: "focus", runs: rs, focus: other }));
  const auc2 = specsOf(d2)[attr(chartsIn(section(d2, "auc"))[0]!, "data-spec")!]!;
  assert.deepEqual(strongOf(auc2), [rs.find((r) => r.method === other)!.methodLabel, "EW"]);
  assert.throws(() => renderReport({ title: "x", runs: rs, focus: "method-44" }), /--focus method-44: no runs of that method.*did you mean "method-4"/);
});

test("cosine: EW's own heatmap, the others as differences from it, most conflicting first", () => {
  const rs: RunResult[] = structuredClone(syntheticRuns({ methods: manyMethods(4), seeds: [1, 2], epochs: 2, stepsPerEpoch: 20 }));
  // tasks click, like, share. EW: cos(click, like) = 0.5; method-2: 0.2 / 0.6 over seeds (mean 0.4, −0.1 vs EW),
  // cos(click, share) = −0.75 vs EW's 0.25 (−1.00); method-3: everything as EW (0.00).
  for (const r of rs) {
    for (const d of r.diagnostics) {
      const cl = r.method === "ew" || r.method === "method-3" ? 0.5 : r.seed === 1 ? 0.2 : 0.6;
      const cs = r.method === "method-2" ? -0.75 : 0.25;
      d.cosines = [1, cl, cs, cl, 1, NaN, cs, NaN, 1];
    }
  }
  const d = parseStrict(renderReport({ title: "t", runs: rs }));
  const boxes = chartsIn(section(d, "cosine"));
  assert.equal(boxes.length, 3, "EW's heatmap, the differences, the conflict rate");
  const sp = specsOf(d);
  const ew = rowsOf(sp[attr(boxes[0]!, "data-spec")!]!);
  const cell = (rows: Record<string, unknown>[], m: string, a: string, b: string) => rows.find((r) => r.m === m && r.a === a && r.b === b)!;
  assert.equal(cell(ew, "EW", "click", "like").s, "0.50");
  assert.equal(cell(ew, "EW", "like", "share").s, "–", "all-NaN pair shown as a dash");
  assert.equal(cell(ew, "EW", "click", "click").s, "1.00");
  const diffSpec = sp[attr(boxes[1]!, "data-spec")!]!;
  const diff = rowsOf(diffSpec);
  assert.equal(cell(diff, "Method 2 with a longer name", "click", "like").s, "-0.10");
  assert.equal(cell(diff, "Method 2 with a longer name", "share", "click").s, "-1.00");
  assert.equal(cell(diff, "Method 3 with a longer name", "click", "like").s, "0.00");
  assert.equal(cell(diff, "Method 2 with a longer name", "like", "like").s, "–", "the diagonal is blank");
  const order = (diffSpec.facet as { sort: string[] }).sort;
  assert.equal(order[0], "Method 2 with a longer name", "most conflicting first");
  assert.ok(!order.includes("EW"));
  assert.match(JSON.stringify(diffSpec), /"domain":\[-1,1\]/, "scale: the largest difference, rounded up to 0.05");
});

test("sweep without loss-weighting methods says so in the weights section", () => {
  const rs = syntheticRuns({ methods: DEFAULT_METHODS.filter((m) => !m.weights) });
  const h = renderReport({ title: "no weights", runs: rs });
  const d = parseStrict(h);
  const w = section(d, "weights");
  assert.equal(chartsIn(w).length, 0);
  assert.ok(text(w).includes("no run logged task weights"));
  assert.equal(chartsIn(d).length, 4 + 1 + 2, "auc 4, norms 1, heatmap 1 + conflict 1");
  assert.equal(byTag(d, "section").filter((s) => attr(s, "id") === "table").length, 0, "no table section without a table");
});

test("degenerate inputs render without NaN: no runs, all-null metrics, empty diagnostics", () => {
  const empty = renderReport({ title: "empty", runs: [] });
  parseStrict(empty);
  assert.ok(!/NaN|undefined|Infinity/.test(empty));
  assert.ok(empty.includes("No runs to report."));
  assert.ok(!empty.includes(chartLibraryScripts()), "no chart, no library");

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
  assert.ok(!/NaN|undefined|Infinity/.test(own(h)));
  const sp = specsOf(d);
  assert.ok(Object.keys(sp).length >= 7);
  for (const box of [...chartsIn(section(d, "auc")), ...chartsIn(section(d, "norms")), ...chartsIn(section(d, "weights"))]) {
    assert.equal(rowsOf(sp[attr(box, "data-spec")!]!).length, 0, "nothing to plot: an empty chart, no NaN");
  }
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

test("comparison: methods as columns up to 8, as sortable rows beyond; cost relative to EW; a sticky first column", () => {
  for (const n of [5, 9]) {
    const rs = syntheticRuns({ methods: manyMethods(n), seeds: [1, 2], epochs: 2, stepsPerEpoch: 20, cost: true });
    delete rs.find((r) => r.method === "method-3")?.cost; // one run without cost: the median of the other
    for (const r of rs) if (r.method === "method-4") delete r.cost; // no cost at all
    const comparison = buildComparisonTable(summariesOf(rs), { baseline: "single" });
    const d = parseStrict(renderReport({ title: "t", runs: rs, comparison }));
    const t = byTag(section(d, "table"), "table")[0]!;
    const head = byTag(byTag(t, "thead")[0]!, "th").map(text);
    const body = byTag(byTag(t, "tbody")[0]!, "tr");
    const ewMs = rs.filter((r) => r.method === "ew").map((r) => r.cost!.msPerStep).sort((a, b) => a - b);
    const m2 = rs.filter((r) => r.method === "method-2").map((r) => r.cost!.msPerStep).sort((a, b) => a - b);
    const rel = ((m2[0]! + m2[1]!) / 2 / ((ewMs[0]! + ewMs[1]!) / 2)).toFixed(2) + "×";
    if (n <= 8) {
      assert.equal(attr(t, "class"), "cmp");
      assert.deepEqual(head.slice(1), comparison.columns.map((c) => c.label));
      const relRow = body.find((r) => text(byTag(r, "th")[0]!) === "ms/step ×EW")!;
      const cells = byTag(relRow, "td").map(text);
      assert.equal(cells[comparison.columns.findIndex((c) => c.method === "ew")], "1.00×");
      assert.equal(cells[comparison.columns.findIndex((c) => c.method === "method-2")], rel);
      assert.equal(cells[comparison.columns.findIndex((c) => c.method === "method-4")], "–", "no cost: a dash");
    } else {
      assert.equal(attr(t, "class"), "cmp sortable");
      assert.equal(head[0], "Method");
      assert.deepEqual(head.slice(-2), ["ms/step ×EW", "peak RSS (MiB)"]);
      assert.equal(body.length, n, "a row per method");
      const row = (label: string) => byTag(body.find((r) => text(byTag(r, "th")[0]!) === label)!, "td");
      assert.equal(text(row("EW").at(-2)!), "1.00×");
      assert.equal(text(row("Method 2 with a longer name").at(-2)!), rel);
      assert.equal(text(row("Method 4 with a longer name").at(-2)!), "–");
      // Sort keys: the cell's number.
      const ava = head.indexOf("AV-A") - 1;
      assert.equal(Number(attr(row("EW")[ava]!, "data-v")), comparison.rows.find((r) => r.metric === "AV-A")!.cells[comparison.columns.findIndex((c) => c.method === "ew")]!.mean);
    }
  }
  assert.match(html, /\.table-wrap th:first-child,\.table-wrap td:first-child\{[^}]*position:sticky;left:0/);
});

test("quality against cost: AV-A with its interval against ms/step, methods without cost listed", () => {
  const rs = syntheticRuns({ methods: manyMethods(4), seeds: [1, 2, 3], epochs: 2, stepsPerEpoch: 20, cost: true });
  for (const r of rs) if (r.method === "method-3") delete r.cost;
  const d = parseStrict(renderReport({ title: "t", runs: rs }));
  const s = section(d, "cost");
  assert.equal(chartsIn(s).length, 1);
  assert.match(text(s), /No cost recorded for: Method 3 with a longer name\./);
  const rows = rowsOf(specsOf(d)[attr(chartsIn(s)[0]!, "data-spec")!]!);
  assert.deepEqual(rows.map((r) => r.m), ["Single", "EW", "Method 2 with a longer name"]);
  const ew = rs.filter((r) => r.method === "ew");
  const av = ew.map((r) => r.test.auc.reduce((a, b) => a + b, 0) / r.test.auc.length);
  const m = av.reduce((a, b) => a + b, 0) / av.length;
  const sd = Math.sqrt(av.reduce((a, b) => a + (b - m) ** 2, 0) / 2);
  const half = 4.302652729911275 * (sd / Math.sqrt(3)); // t(0.975, 2)
  const row = rows.find((r) => r.m === "EW")!;
  assert.ok(Math.abs((row.a as number) - m) < 1e-4 && Math.abs((row.lo as number) - (m - half)) < 1e-4 && Math.abs((row.hi as number) - (m + half)) < 1e-4);
  assert.equal(row.rel, 1);
  const ms = ew.map((r) => r.cost!.msPerStep).sort((a, b) => a - b)[1]!;
  assert.ok(Math.abs((row.ms as number) - ms) < 1e-3 * ms, "median ms/step");
});

// --- svg helpers (the conflict benchmark's page) ----------------------------------

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

test("tick helpers produce round, in-range values", () => {
  assert.deepEqual(niceTicks(0, 1, 5), [0, 0.2, 0.4, 0.6, 0.8, 1]);
  assert.deepEqual(niceTicks(0.68, 0.76, 4), [0.68, 0.7, 0.72, 0.74, 0.76]);
  assert.deepEqual(niceTicks(0, 800, 5), [0, 200, 400, 600, 800]);
  assert.deepEqual(niceTicks(NaN, 1), []);
  assert.deepEqual(logTicks(0.001, 1000), [0.001, 0.01, 0.1, 1, 10, 100, 1000]);
  assert.deepEqual(logTicks(-1, 10), []);
  for (const t of niceTicks(0.123, 0.987, 6)) assert.ok(t >= 0.123 && t <= 0.987);
});

test("escaping of labels in svg helpers", () => {
  const svg = lineChart({ xLabel: `a<b`, yLabel: `"q"`, title: "x&y", series: [{ name: "<s>", color: "#000", points: [[0, 1], [1, 2]] }] });
  assert.ok(svg.includes("a&lt;b") && svg.includes("&quot;q&quot;") && svg.includes("x&amp;y") && svg.includes("&lt;s&gt;"));
  assert.ok(!svg.includes("<s>"));
  assert.equal(esc(`<&>"'`), "&lt;&amp;&gt;&quot;&#39;");
});

test("effective task weights are drawn for gradient methods too when the runs logged coefficients", () => {
  const rs = syntheticRuns({ methods: DEFAULT_METHODS.filter((m) => !m.weights) });
  const T = rs.find((r) => r.method === "gradcraft")!.tasks.length;
  for (const r of rs) if (r.method === "gradcraft") for (const [k, d] of r.diagnostics.entries()) d.coeffs = Array.from({ length: T }, (_, i) => 1 + 0.01 * k * (i + 1));
  const d = parseStrict(renderReport({ title: "coeffs", runs: rs }));
  const w = section(d, "weights");
  assert.equal(chartsIn(w).length, 1, "one chart: GradCraft's effective weights");
  const spec = specsOf(d)[attr(chartsIn(w)[0]!, "data-spec")!]!;
  assert.deepEqual([...new Set(rowsOf(spec).map((r) => r.m))], ["GradCraft"]);
  assert.match(JSON.stringify(spec), /"title":"effective weight"/);
  const last = rowsOf(spec).filter((r) => r.t === "share").at(-1)!;
  const k = rs.find((r) => r.method === "gradcraft")!.diagnostics.length - 1;
  assert.ok(Math.abs((last.y as number) - (1 + 0.01 * k * 3)) < 1e-4, "the last logged coefficient of task 3");
  assert.ok(text(w).includes("coefficient c"), "the caption says what an effective weight is");
});
