/** Paired-difference tables (method − Single / EW over the same seeds, 95 % t-intervals): values, pairing, Markdown, CSV, HTML and the report section. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { parse } from "parse5";
import {
  buildComparisonTable,
  differencesToCsv,
  differencesToHtml,
  differencesToMarkdown,
  toMarkdown,
  type DiffCell,
  type DifferenceTable,
  type MethodSummary,
} from "../../src/report/table.ts";
import { renderReport } from "../../src/report/html.ts";
import { intervalsSpec } from "../../src/report/charts.ts";
import { differenceToHtml } from "../../src/report/tables-html.ts";
import { syntheticRuns } from "../fixtures/report/runs.ts";

const close = (a: number | null, b: number, tol = 1e-10) => assert.ok(a !== null && Math.abs(a - b) <= tol, `${a} vs ${b}`);

// Single and EW ran seeds 1..3 (EW listed in another order: pairing must follow the seed ids);
// GradCraft ran seed 1 only.
const summaries: MethodSummary[] = [
  { method: "single", label: "Single", seeds: [1, 2, 3], perTask: [
    { task: "x", auc: [0.7, 0.72, 0.71], gauc: [0.6, 0.6, 0.6] },
    { task: "y", auc: [0.8, 0.78, 0.79], gauc: [0.5, 0.5, 0.5] },
  ] },
  { method: "ew", label: "EW", seeds: [3, 1, 2], perTask: [
    { task: "x", auc: [0.74, 0.72, 0.75], gauc: [0.6, 0.6, 0.6] },
    { task: "y", auc: [0.79, 0.8, 0.78], gauc: [0.5, 0.5, 0.5] },
  ] },
  { method: "gradcraft", label: "GradCraft", seeds: [1], perTask: [
    { task: "x", auc: [0.73], gauc: [0.62] },
    { task: "y", auc: [0.81], gauc: [0.5] },
  ] },
];

function table() {
  const t = buildComparisonTable(summaries, { baseline: "single", differences: ["single", "ew", "absent"] });
  assert.ok(t.differences, "differences built");
  return t;
}
const cell = (d: DifferenceTable, metric: string, method: string) => {
  const r = d.rows.find((x) => x.metric === metric)!;
  return r.cells[d.columns.findIndex((c) => c.method === method)]!;
};

test("one table per present reference, rows AV-A, AV-G and each task's AUC, the reference left out", () => {
  const t = table();
  assert.deepEqual(t.differences!.map((d) => [d.reference, d.referenceLabel]), [["single", "Single"], ["ew", "EW"]]);
  const [vsSingle, vsEw] = t.differences!;
  assert.deepEqual(vsSingle!.columns.map((c) => c.method), ["ew", "gradcraft"]);
  assert.deepEqual(vsEw!.columns.map((c) => c.method), ["single", "gradcraft"]);
  assert.deepEqual(vsSingle!.rows.map((r) => r.metric), ["AV-A", "AV-G", "x AUC", "y AUC"]);
  assert.equal(buildComparisonTable(summaries, { baseline: "single" }).differences, undefined);
});

test("EW − Single, paired by seed id: hand-computed means and 95 % t-intervals (t(0.975, 2) = 4.3026527)", () => {
  const d = table().differences![0]!;
  // x AUC per seed: s1 .72−.70, s2 .75−.72, s3 .74−.71 = [.02, .03, .03] (by index it would be [.04, 0, .04])
  const x = cell(d, "x AUC", "ew");
  assert.equal(x.n, 3);
  close(x.mean, 0.026666666666666665);
  close(x.std, 0.005773502691896257);
  close(x.lo, 0.012324490900835126);
  close(x.hi, 0.04100884243249821);
  assert.equal(x.sign, "above");
  assert.equal(x.text, "+0.0267 [+0.0123, +0.0410]");
  // AV-A per seed: [.01, .015, .015]
  const av = cell(d, "AV-A", "ew");
  close(av.mean, 0.013333333333333332);
  close(av.lo, 0.006162245450417563);
  close(av.hi, 0.020504421216249104);
  // y AUC: identical per seed: a zero-width interval at 0 contains 0
  const y = cell(d, "y AUC", "ew");
  close(y.mean, 0);
  assert.equal(y.sign, "spans");
  assert.equal(y.text, "0.0000 [0.0000, 0.0000]");
  // the other direction: Single − EW
  const back = cell(table().differences![1]!, "x AUC", "single");
  close(back.mean, -0.026666666666666665);
  assert.equal(back.sign, "below");
  assert.equal(back.text, "-0.0267 [-0.0410, -0.0123]");
});

test("one shared seed: the difference with 'n/a' for the interval; no shared seed: 'n/a'", () => {
  const d = table().differences![0]!;
  const g = cell(d, "x AUC", "gradcraft");
  assert.equal(g.n, 1);
  close(g.mean, 0.03); // seed 1: .73 − .70
  assert.equal(g.lo, null);
  assert.equal(g.sign, null);
  assert.equal(g.text, "+0.0300 [n/a]");
  const none = buildComparisonTable(
    [
      { method: "single", label: "Single", seeds: [1], perTask: [{ task: "x", auc: [0.7], gauc: [0.6] }] },
      { method: "ew", label: "EW", seeds: [2], perTask: [{ task: "x", auc: [0.7], gauc: [0.6] }] },
    ],
    { baseline: "single", differences: ["single"] },
  );
  const c = none.differences![0]!.rows[0]!.cells[0]!;
  assert.equal(c.n, 0);
  assert.equal(c.text, "n/a");
  // without seed ids: by index, and only for equal counts
  const noIds = buildComparisonTable(
    [
      { method: "single", label: "Single", perTask: [{ task: "x", auc: [0.7, 0.72], gauc: [0.6, 0.6] }] },
      { method: "ew", label: "EW", perTask: [{ task: "x", auc: [0.71, 0.74], gauc: [0.6, 0.6] }] },
      { method: "b", label: "B", perTask: [{ task: "x", auc: [0.71], gauc: [0.6] }] },
    ],
    { baseline: "single", differences: ["single"] },
  ).differences![0]!;
  close(cell(noIds, "x AUC", "ew").mean, 0.015);
  assert.equal(cell(noIds, "x AUC", "b").text, "n/a");
});

test("seed ids are checked against the values", () => {
  const bad = (seeds: number[]) => [{ method: "s", label: "S", seeds, perTask: [{ task: "x", auc: [0.5, 0.6], gauc: [0.5, 0.5] }] }];
  assert.throws(() => buildComparisonTable(bad([1]), { baseline: "s" }), /lists 1 seeds for 2 values per task/);
  assert.throws(() => buildComparisonTable(bad([1, 1]), { baseline: "s" }), /lists a seed twice/);
});

test("Markdown: a caption and a table per reference after the main table; bold where the interval excludes 0", () => {
  const t = table();
  const md = differencesToMarkdown(t);
  const lines = md.split("\n");
  assert.match(lines[0]!, /^Paired difference vs Single: mean over seeds of \(method − Single\) on the same seed .*95 % t-interval \(n − 1 degrees of freedom\)/);
  assert.equal(lines[2], "| Δ vs Single | EW | GradCraft |");
  assert.equal(lines[3], "|---|---:|---:|");
  assert.equal(lines[4], "| AV-A | **+0.0133 [+0.0062, +0.0205]** | +0.0200 [n/a] |");
  assert.equal(lines[7], "| y AUC | 0.0000 [0.0000, 0.0000] | +0.0100 [n/a] |");
  assert.ok(md.includes("| Δ vs EW | Single | GradCraft |"), md);
  assert.ok(md.includes("| x AUC | **-0.0267 [-0.0410, -0.0123]** | +0.0100 [n/a] |"), md);
  // toMarkdown appends them after the main table
  const full = toMarkdown(t);
  assert.ok(full.startsWith("| Metric | Single | EW | GradCraft |\n"), full);
  assert.ok(full.endsWith(md), "differences follow the main table");
});

test("CSV: one line per reference, metric and method with unrounded numbers; empty interval with one seed", () => {
  const lines = differencesToCsv(table()).trimEnd().split("\n");
  assert.equal(lines[0], "method,label,vs,metric,mean,std,n,ci_low,ci_high,level,p,p_holm,holm_low,holm_high,holm_level,holm_m");
  assert.equal(lines.length, 1 + 2 * 4 * 2);
  const x = lines.find((l) => l.startsWith("ew,EW,single,x AUC,"))!.split(",");
  close(Number(x[4]), 0.026666666666666665);
  close(Number(x[5]), 0.005773502691896257);
  assert.equal(x[6], "3");
  close(Number(x[7]), 0.012324490900835126);
  close(Number(x[8]), 0.04100884243249821);
  assert.equal(x[9], "0.95");
  // a family of one comparison (GradCraft has one seed, no interval): Holm changes nothing
  close(Number(x[11]), Number(x[10]));
  close(Number(x[12]), Number(x[7]));
  close(Number(x[13]), Number(x[8]));
  assert.equal(x[14], "0.95");
  assert.equal(x[15], "1");
  assert.ok(Number(x[10]) < 0.05 && Number(x[10]) > 0);
  assert.equal(lines.find((l) => l.startsWith("gradcraft,GradCraft,single,x AUC,")), "gradcraft,GradCraft,single,x AUC,0.030000000000000027,,1,,,0.95,,,,,,");
  assert.equal(differencesToCsv({}), "method,label,vs,metric,mean,std,n,ci_low,ci_high,level,p,p_holm,holm_low,holm_high,holm_level,holm_m\n");
});

test("HTML tables and the report's section: escaped, bold where the interval excludes 0, one interval plot per AV row", () => {
  const t = table();
  const h = differencesToHtml(t);
  assert.match(h, /<tr><th scope="row">x AUC<\/th><td title="Holm-adjusted p = [0-9.e-]+ \(unadjusted [0-9.e-]+, 1 comparisons\); Holm interval \[0\.0123, 0\.0410\]"><b>\+0\.0267 \[\+0\.0123, \+0\.0410\]<\/b><\/td><td>\+0\.0300 \[n\/a\]<\/td><\/tr>/);
  assert.equal(differencesToHtml({}), "");
  const runs = syntheticRuns();
  const html = renderReport({ title: "r", runs, differences: t.differences });
  const errors: string[] = [];
  parse(html, { onParseError: (e) => errors.push(e.code) });
  assert.deepEqual(errors, []);
  assert.match(html, /<a href="#differences">Paired differences<\/a>/);
  const section = html.slice(html.indexOf('<section id="differences">'), html.indexOf("</section>", html.indexOf('<section id="differences">')));
  assert.equal((section.match(/<div class="vl" data-spec=/g) ?? []).length, 4, "AV-A and AV-G plots per reference");
  assert.equal((section.match(/<table class="cmp">/g) ?? []).length, 2);
  // The report's own table: the same cells as differencesToHtml (with sort keys), bold where Holm excludes 0.
  const mine = differenceToHtml(t.differences![0]!);
  assert.match(mine, /<tr><th scope="row">x AUC<\/th><td data-v="0\.0266\d*" title="Holm-adjusted p = [0-9.e-]+ \(unadjusted [0-9.e-]+, 1 comparisons\); Holm interval \[0\.0123, 0\.0410\]"><b>\+0\.0267 \[\+0\.0123, \+0\.0410\]<\/b><\/td>/);
  assert.ok(section.includes(mine.split("\n").find((l) => l.includes("x AUC"))!));
  assert.ok(!renderReport({ title: "r", runs }).includes('id="differences"'), "no section without differences");
});

test("intervalsSpec: a thin bar per 95 % interval, a thick one per Holm interval, a dot per estimate, the zero line", () => {
  const spec = intervalsSpec({
    rows: [
      { m: "A <1>", mean: 0.01, lo: 0.004, hi: 0.016, hlo: 0.002, hhi: 0.018, p: 0.01, ph: 0.02 },
      { m: "B", mean: 0.02, lo: null, hi: null },
      { m: "C", mean: NaN, lo: null, hi: null },
    ],
    methods: [{ label: "A <1>", color: "#123456" }, { label: "B", color: "#654321" }, { label: "C", color: "#000000" }],
    xLabel: "AV-A difference",
    title: "AV-A vs EW",
  });
  const layers = spec.layer as { mark: { type: string; strokeWidth?: number; strokeDash?: number[] }; transform?: { filter: string }[]; data?: unknown }[];
  assert.deepEqual(layers.map((l) => l.mark.type), ["rule", "rule", "rule", "point"]);
  assert.deepEqual(layers[0]!.data, { values: [{ z: 0 }] }, "the zero line");
  assert.deepEqual(layers[0]!.mark.strokeDash, [4, 3]);
  assert.ok(layers[1]!.mark.strokeWidth! > layers[2]!.mark.strokeWidth!, "the Holm bar is the thick one");
  // Rows without a bound (one seed) or without an estimate are filtered out of the bars and dots.
  assert.match(layers[2]!.transform![0]!.filter, /isValid\(datum\.lo\) && isValid\(datum\.hi\)/);
  assert.match(layers[3]!.transform![0]!.filter, /isValid\(datum\.mean\)/);
  const cols = (spec.datasets as { d: { $cols: Record<string, unknown[]>; $dict: Record<string, string[]> } }).d;
  assert.deepEqual(cols.$cols.mean, [0.01, 0.02, null], "NaN travels as null");
  assert.deepEqual(cols.$dict.m, ["A <1>", "B", "C"]);
  assert.ok(!/NaN|Infinity/.test(JSON.stringify(spec)));
});

test("Holm: with several methods against EW, a difference the raw 95 % interval shows but the corrected one does not is not bold", () => {
  // EW at 0.70 on 5 seeds; A is clearly better (+0.01 with tiny noise), B is +0.0015 with noise so that
  // its raw p is just under 0.05 but 3 * p (Holm's first step is A, then 2 * p_B, then C) is not.
  const seeds = [1, 2, 3, 4, 5];
  const ew = [0.7, 0.701, 0.699, 0.7005, 0.6995];
  const mk = (method: string, vals: number[]): MethodSummary => ({ method, label: method.toUpperCase(), seeds, perTask: [{ task: "x", auc: vals, gauc: vals }] });
  const a = ew.map((v, i) => v + 0.01 + [0.0001, -0.0001, 0.0002, 0, -0.0002][i]!);
  const b = ew.map((v, i) => v + 0.0015 + [0.0012, -0.0012, 0.0008, -0.0008, 0][i]!);
  const c = ew.map((v, i) => v + [0.001, -0.001, 0.0005, -0.0005, 0][i]!);
  const t = buildComparisonTable([mk("ew", ew), mk("a", a), mk("b", b), mk("c", c)], { baseline: "ew", differences: ["ew"] });
  const d = t.differences![0]!;
  const av = d.rows.find((r) => r.metric === "AV-A")!;
  const [ca, cb, cc] = av.cells as [DiffCell, DiffCell, DiffCell];
  assert.equal(cb.sign, "above", `B's raw interval [${cb.lo}, ${cb.hi}] excludes 0 (fixture)`);
  assert.ok(cb.holm !== undefined && cb.holm.p < 0.05 && cb.holm.pHolm >= 0.05, `B: p ${cb.holm?.p}, Holm ${cb.holm?.pHolm}`);
  assert.equal(cb.holm!.sign, "spans");
  assert.equal(ca.holm!.sign, "above");
  assert.equal(ca.holm!.m, 3);
  assert.ok(ca.holm!.level > 0.98, "the smallest p gets Bonferroni's level 1 - 0.05/3");
  assert.equal(cc.holm!.sign, "spans");
  const md = differencesToMarkdown(t);
  assert.ok(md.includes(`**${ca.text}**`) && !md.includes(`**${cb.text}**`), md);
  assert.match(md, /Holm's correction over the 3 methods compared with EW/);
});
