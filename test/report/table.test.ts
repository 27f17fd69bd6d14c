import { test } from "node:test";
import assert from "node:assert/strict";
import {
  type ComparisonTable,
  type MethodSummary,
  type TableCell,
  buildComparisonTable,
  toCsv,
  toHtmlTable,
  toMarkdown,
} from "../../src/report/table.ts";

const close = (a: number, b: number, tol = 1e-12) => assert.ok(Math.abs(a - b) <= tol, `${a} vs ${b}`);

// Baseline means: click AUC .5, like AUC .8, click GAUC .5, like GAUC .4 (one seed).
const summaries: MethodSummary[] = [
  { method: "single", label: "Single", perTask: [
    { task: "click", auc: [0.5], gauc: [0.5] },
    { task: "like", auc: [0.8], gauc: [0.4] },
  ] },
  { method: "a", label: "A", perTask: [
    // task order differs from the baseline's on purpose: rows follow the baseline's order
    { task: "like", auc: [0.84, 0.8], gauc: [0.4, 0.44] },
    { task: "click", auc: [0.55, 0.5], gauc: [0.6, 0.6] },
  ] },
  { method: "b", label: "B", perTask: [
    { task: "click", auc: [0.525], gauc: [0.55] },
    { task: "like", auc: [0.82], gauc: [0.42] },
  ] },
  { method: "c", label: "C", perTask: [
    { task: "click", auc: [0.5], gauc: [0.45] },
    { task: "like", auc: [0.8], gauc: [0.36] },
  ] },
];

function row(t: ComparisonTable, metric: string): (TableCell | null)[] {
  const r = t.rows.find((x) => x.metric === metric);
  assert.ok(r !== undefined, `no row ${metric}`);
  return r.cells;
}
const marks = (t: ComparisonTable, metric: string) => row(t, metric).map((c) => (c === null ? "n/a" : c.mark));
const texts = (t: ComparisonTable, metric: string) => row(t, metric).map((c) => (c === null ? "n/a" : c.text));

test("row layout: per task AUC, GAUC, then AV and RI; columns in input order", () => {
  const t = buildComparisonTable(summaries, { baseline: "single" });
  assert.deepEqual(
    t.rows.map((r) => r.metric),
    ["click AUC", "click GAUC", "like AUC", "like GAUC", "AV-A", "AV-G", "RI-A", "RI-G"],
  );
  assert.deepEqual(t.columns.map((c) => c.label), ["Single", "A", "B", "C"]);
  assert.deepEqual(t.rows.map((r) => r.unit), ["", "", "", "", "", "", "%", "%"]);
});

test("means, sample std over seeds, std omitted for one seed", () => {
  const t = buildComparisonTable(summaries, { baseline: "single" });
  const a = row(t, "click AUC")[1]!;
  close(a.mean, 0.525);
  close(a.std!, 0.05 / Math.SQRT2);
  assert.equal(a.n, 2);
  assert.deepEqual(texts(t, "click AUC"), ["0.5000", "0.5250 ± 0.0354", "0.5250", "0.5000"]);
  assert.equal(row(t, "click AUC")[0]!.std, null);
  assert.deepEqual(texts(t, "click GAUC"), ["0.5000", "0.6000 ± 0.0000", "0.5500", "0.4500"]);
});

test("AV is per-seed mean over tasks, then mean ± std over seeds", () => {
  const t = buildComparisonTable(summaries, { baseline: "single" });
  const av = row(t, "AV-A");
  close(av[0]!.mean, 0.65);
  close(av[1]!.mean, (0.695 + 0.65) / 2); // seeds: (.55+.84)/2, (.5+.8)/2
  close(av[1]!.std!, 0.045 / Math.SQRT2);
  close(av[2]!.mean, 0.6725);
  close(row(t, "AV-G")[1]!.mean, 0.51);
  close(row(t, "AV-G")[3]!.mean, 0.405);
});

test("RI in percent per seed vs the baseline's mean; baseline cell is null", () => {
  const t = buildComparisonTable(summaries, { baseline: "single" });
  const ri = row(t, "RI-A");
  assert.equal(ri[0], null);
  // A seed 0: ((.55-.5)/.5 + (.84-.8)/.8)/2 = 7.5 %, seed 1: 0 %
  close(ri[1]!.mean, 3.75);
  close(ri[1]!.std!, 7.5 / Math.SQRT2);
  close(ri[2]!.mean, 3.75); // (5 % + 2.5 %) / 2
  close(ri[3]!.mean, 0);
  assert.deepEqual(texts(t, "RI-A"), ["n/a", "3.75 ± 5.30%", "3.75%", "0.00%"]);
  const rg = row(t, "RI-G");
  close(rg[1]!.mean, 12.5); // seeds 10 %, 15 %
  close(rg[2]!.mean, 7.5);
  close(rg[3]!.mean, -10);
  assert.deepEqual(texts(t, "RI-G"), ["n/a", "12.50 ± 3.54%", "7.50%", "-10.00%"]);
});

test("RI uses the baseline's seed mean when the baseline has several seeds", () => {
  const t = buildComparisonTable(
    [
      { method: "s", label: "S", perTask: [{ task: "x", auc: [0.4, 0.6], gauc: [0.5, 0.5] }] },
      { method: "m", label: "M", perTask: [{ task: "x", auc: [0.55], gauc: [0.5] }] },
    ],
    { baseline: "s" },
  );
  close(row(t, "RI-A")[1]!.mean, 10); // vs mean 0.5, not vs either seed
});

test("best/second marks: dense ranking, ties share the mark, on displayed values", () => {
  const t = buildComparisonTable(summaries, { baseline: "single" });
  assert.deepEqual(marks(t, "click AUC"), ["second", "best", "best", "second"]);
  assert.deepEqual(marks(t, "click GAUC"), [null, "best", "second", null]);
  assert.deepEqual(marks(t, "like GAUC"), ["second", "best", "best", null]);
  assert.deepEqual(marks(t, "AV-A"), ["second", "best", "best", "second"]);
  assert.deepEqual(marks(t, "AV-G"), [null, "best", "second", null]);
  // baseline excluded from RI ranking
  assert.deepEqual(marks(t, "RI-A"), ["n/a", "best", "best", "second"]);
  assert.deepEqual(marks(t, "RI-G"), ["n/a", "best", "second", null]);
  // 0.71234 and 0.71226 both display 0.7123 at 4 digits -> tie; at 5 digits they differ
  const near: MethodSummary[] = [
    { method: "s", label: "S", perTask: [{ task: "x", auc: [0.71234], gauc: [0.5] }] },
    { method: "m", label: "M", perTask: [{ task: "x", auc: [0.71226], gauc: [0.5] }] },
  ];
  assert.deepEqual(marks(buildComparisonTable(near, { baseline: "s" }), "x AUC"), ["best", "best"]);
  assert.deepEqual(marks(buildComparisonTable(near, { baseline: "s", digits: 5 }), "x AUC"), ["best", "second"]);
  // everything tied: all best, nobody second
  assert.deepEqual(marks(buildComparisonTable(near, { baseline: "s" }), "x GAUC"), ["best", "best"]);
  // a single non-baseline method is best in RI rows
  assert.deepEqual(marks(buildComparisonTable(near, { baseline: "s" }), "RI-A"), ["n/a", "best"]);
});

test("NaN (undefined) means read n/a and are never marked", () => {
  const t = buildComparisonTable(
    [
      { method: "s", label: "S", perTask: [{ task: "x", auc: [0.5], gauc: [0.5] }] },
      { method: "m", label: "M", perTask: [{ task: "x", auc: [NaN], gauc: [0.6] }] },
    ],
    { baseline: "s" },
  );
  assert.deepEqual(marks(t, "x AUC"), ["best", null]);
  assert.equal(row(t, "x AUC")[1]!.text, "n/a");
});

test("validation errors name the problem", () => {
  const one = (method: string, perTask: MethodSummary["perTask"]): MethodSummary => ({ method, label: method, perTask });
  const ok = one("s", [{ task: "x", auc: [0.5], gauc: [0.5] }]);
  assert.throws(() => buildComparisonTable([], { baseline: "s" }), /summaries is empty/);
  assert.throws(() => buildComparisonTable([ok], { baseline: "zz" }), /opts\.baseline "zz" is not among the methods \(s\)/);
  assert.throws(() => buildComparisonTable([ok, ok], { baseline: "s" }), /duplicate method "s"/);
  assert.throws(() => buildComparisonTable([ok, one("m", [])], { baseline: "s" }), /method "m" is missing task "x"/);
  assert.throws(
    () => buildComparisonTable([ok, one("m", [{ task: "x", auc: [0.5], gauc: [0.5] }, { task: "y", auc: [0.5], gauc: [0.5] }])], { baseline: "s" }),
    /method "m" has task "y" which the baseline lacks/,
  );
  assert.throws(
    () => buildComparisonTable([ok, one("m", [{ task: "x", auc: [0.5, 0.6], gauc: [0.5] }])], { baseline: "s" }),
    /method "m" task "x" has 1 gauc values, expected 2/,
  );
  assert.throws(() => buildComparisonTable([ok, one("m", [{ task: "x", auc: [], gauc: [] }])], { baseline: "s" }), /has no auc values/);
  assert.throws(() => buildComparisonTable([ok], { baseline: "s", digits: 2.5 }), /opts\.digits must be an integer/);
  assert.throws(
    () => buildComparisonTable([one("s", [{ task: "x", auc: [0], gauc: [0.5] }]), one("m", [{ task: "x", auc: [0.5], gauc: [0.5] }])], { baseline: "s" }),
    /single\[0\] is 0/,
  );
});

const tricky: MethodSummary[] = [
  { method: "single", label: "Single <STL>", perTask: [{ task: "is_click", auc: [0.5], gauc: [0.5] }] },
  { method: "grad,craft", label: 'Grad "Craft" | *v2* & <b>', perTask: [{ task: "is_click", auc: [0.6, 0.62], gauc: [0.45, 0.45] }] },
];

test("toMarkdown: bold best, underlined second, escaped labels, '-' for n/a", () => {
  const md = toMarkdown(buildComparisonTable(tricky, { baseline: "single" }));
  const lines = md.trimEnd().split("\n");
  assert.equal(lines[0], '| Metric | Single \\<STL\\> | Grad "Craft" \\| \\*v2\\* \\& \\<b\\> |');
  assert.equal(lines[1], "|---|---:|---:|");
  assert.equal(lines[2], "| is\\_click AUC | <u>0.5000</u> | **0.6100 ± 0.0141** |");
  assert.equal(lines[3], "| is\\_click GAUC | **0.5000** | <u>0.4500 ± 0.0000</u> |");
  assert.equal(lines[6], "| RI-A | - | **22.00 ± 2.83%** |");
  assert.equal(lines[7], "| RI-G | - | **-10.00 ± 0.00%** |");
  assert.equal(lines.length, 2 + 6);
  assert.ok(md.endsWith("\n"), "trailing newline");
});

test("toCsv: long layout, unrounded numbers, RFC 4180 quoting", () => {
  const csv = toCsv(buildComparisonTable(tricky, { baseline: "single" }));
  const lines = csv.trimEnd().split("\n");
  assert.equal(lines[0], "method,label,metric,unit,mean,std,n,mark");
  assert.equal(lines.length, 1 + 6 * 2);
  assert.equal(lines[1], "single,Single <STL>,is_click AUC,,0.5,,1,second");
  const mean = (0.6 + 0.62) / 2;
  const std = Math.sqrt(((0.6 - mean) ** 2 + (0.62 - mean) ** 2) / 1);
  assert.equal(lines[2], `"grad,craft","Grad ""Craft"" | *v2* & <b>",is_click AUC,,${mean},${std},2,best`);
  // baseline RI: not applicable -> empty numbers and mark
  assert.equal(lines[9], "single,Single <STL>,RI-A,%,,,,");
  // RI-A seeds: (0.6-0.5)/0.5 = 20 %, (0.62-0.5)/0.5 = 24 %
  const ri = lines[10]!.split(",");
  assert.deepEqual(ri.slice(0, 2), ['"grad', 'craft"']);
  assert.deepEqual(ri.slice(-6, -4), ["RI-A", "%"]);
  close(Number(ri[ri.length - 4]), 22);
  close(Number(ri[ri.length - 3]), 4 / Math.SQRT2);
  assert.deepEqual(ri.slice(-2), ["2", "best"]);
  // quoting a label with a newline and edge space
  const nl = toCsv(buildComparisonTable([{ method: "s", label: " a\nb", perTask: [{ task: "x", auc: [0.5], gauc: [0.5] }] }], { baseline: "s" }));
  assert.ok(nl.includes('s," a\nb",x AUC,,0.5,,1,best\n'), nl);
});

test("toHtmlTable: <b>/<u> marks, everything escaped", () => {
  const html = toHtmlTable(buildComparisonTable(tricky, { baseline: "single" }));
  assert.ok(html.startsWith("<table>\n<thead>\n"), html);
  assert.ok(html.trimEnd().endsWith("</tbody>\n</table>"), html);
  assert.ok(
    html.includes("<tr><th>Metric</th><th>Single &lt;STL&gt;</th><th>Grad &quot;Craft&quot; | *v2* &amp; &lt;b&gt;</th></tr>"),
    html,
  );
  assert.ok(html.includes('<tr><th scope="row">is_click AUC</th><td><u>0.5000</u></td><td><b>0.6100 ± 0.0141</b></td></tr>'), html);
  assert.ok(html.includes('<tr><th scope="row">RI-A</th><td>-</td><td><b>22.00 ± 2.83%</b></td></tr>'), html);
  // the only raw tags are the table structure and marks
  const tags = new Set(html.match(/<\/?[a-z]+/g));
  assert.deepEqual([...tags].sort(), ["</b", "</tbody", "</td", "</th", "</thead", "</tr", "</table", "</u", "<b", "<table", "<tbody", "<td", "<th", "<thead", "<tr", "<u"].sort());
});
