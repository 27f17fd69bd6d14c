/**
 * Undefined metrics in the comparison table (issue #19, class 7): a task whose test AUC/GAUC is
 * undefined (NaN, or null read back from a result file) reads "n/a" in Markdown and HTML and is
 * empty in the CSV; AV-A/AV-G and RI-A/RI-G are over the defined tasks (checked against means
 * computed here), with a note naming what was left out; no "NaN" anywhere.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { buildComparisonTable, differencesToCsv, differencesToMarkdown, toCsv, toHtmlTable, toMarkdown, undefinedNotes, type ComparisonTable, type MethodSummary, type TableCell } from "../../src/report/table.ts";
import { chartLibraryScripts } from "../../src/report/vendor.ts";
import { renderReport } from "../../src/report/html.ts";
import { splitWarnings, undefinedWarning } from "../../src/metrics/defined.ts";

const close = (a: number, b: number, tol = 1e-12) => assert.ok(Math.abs(a - b) <= tol, `${a} vs ${b}`);

function cells(t: ComparisonTable, metric: string): (TableCell | null)[] {
  const r = t.rows.find((x) => x.metric === metric);
  assert.ok(r, `no row ${metric}`);
  return r.cells;
}

// follow's test labels are all 0: its AUC and GAUC are NaN in every run (null as read from JSON in method "b").
const NULL = null as unknown as number;
const summaries: MethodSummary[] = [
  { method: "single", label: "Single", seeds: [1, 2], perTask: [
    { task: "click", auc: [0.60, 0.62], gauc: [0.55, 0.57] },
    { task: "like", auc: [0.70, 0.72], gauc: [0.65, 0.61] },
    { task: "follow", auc: [NaN, NaN], gauc: [NaN, NaN] },
  ] },
  { method: "a", label: "A", seeds: [1, 2], perTask: [
    { task: "click", auc: [0.64, 0.66], gauc: [0.56, 0.60] },
    { task: "like", auc: [0.71, 0.75], gauc: [0.66, 0.64] },
    { task: "follow", auc: [NaN, NaN], gauc: [NaN, NaN] },
  ] },
  { method: "b", label: "B", seeds: [1, 2], perTask: [
    { task: "click", auc: [0.61, 0.63], gauc: [0.50, 0.52] },
    { task: "like", auc: [0.69, 0.70], gauc: [0.60, 0.62] },
    { task: "follow", auc: [NULL, NULL], gauc: [NULL, NULL] },
  ] },
];

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

test("an undefined task reads n/a, AV-A/AV-G are the mean over the other tasks, RI likewise, with a note", () => {
  const t = buildComparisonTable(summaries, { baseline: "single", differences: ["single"] });
  for (const metric of ["follow AUC", "follow GAUC"]) {
    for (const c of cells(t, metric)) {
      assert.equal(c!.text, "n/a", metric);
      assert.equal(c!.mark, null);
    }
  }
  summaries.forEach((s, m) => {
    const [click, like] = s.perTask;
    // independently: per seed, mean over click and like; then mean over seeds
    const avA = mean([0, 1].map((i) => (click!.auc[i]! + like!.auc[i]!) / 2));
    const avG = mean([0, 1].map((i) => (click!.gauc[i]! + like!.gauc[i]!) / 2));
    close(cells(t, "AV-A")[m]!.mean, avA);
    close(cells(t, "AV-G")[m]!.mean, avG);
    assert.ok(Number.isFinite(cells(t, "AV-A")[m]!.std!));
    if (m === 0) return;
    const b = summaries[0]!.perTask;
    const bClick = mean(b[0]!.auc);
    const bLike = mean(b[1]!.auc);
    const ri = mean([0, 1].map((i) => (100 * ((click!.auc[i]! - bClick) / bClick + (like!.auc[i]! - bLike) / bLike)) / 2));
    close(cells(t, "RI-A")[m]!.mean, ri, 1e-9);
    assert.ok(Number.isFinite(cells(t, "RI-G")[m]!.mean));
  });
  assert.deepEqual(t.notes, ["AV-A/AV-G and RI-A/RI-G over 2 of 3 tasks: follow undefined on test (n/a)"]);
  // marks still work on the defined rows
  assert.deepEqual(cells(t, "AV-A").map((c) => c!.mark), ["second", "best", null]);
  // paired differences: AV finite, follow's row n/a
  const d = t.differences![0]!;
  const row = (metric: string) => d.rows.find((r) => r.metric === metric)!.cells;
  assert.ok(row("AV-A").every((c) => Number.isFinite(c.mean)));
  close(row("AV-A")[0]!.mean, mean([0, 1].map((i) => (0.64 + [0, 0.02][i]! + 0.71 + [0, 0.04][i]!) / 2 - (0.60 + [0, 0.02][i]! + 0.70 + [0, 0.02][i]!) / 2)), 1e-12);
  assert.ok(row("follow AUC").every((c) => c.text === "n/a" && c.sign === null));
});

test("Markdown, CSV and HTML: n/a cells (empty in the CSV), the note under the table, never NaN", () => {
  const t = buildComparisonTable(summaries, { baseline: "single", differences: ["single"] });
  const md = toMarkdown(t);
  assert.match(md, /^\| follow AUC \| n\/a \| n\/a \| n\/a \|$/m);
  assert.match(md, /^\| follow GAUC \| n\/a \| n\/a \| n\/a \|$/m);
  assert.match(md, /^Note: AV-A\/AV-G and RI-A\/RI-G over 2 of 3 tasks: follow undefined on test \(n\/a\)$/m);
  assert.match(md, /^\| AV-A \| <u>0\.6600 ± 0\.0141<\/u> \| \*\*0\.6900 ± 0\.0212\*\* \| 0\.6575 ± 0\.0106 \|$/m);
  assert.match(md, /^\| follow AUC \| n\/a \| n\/a \|$/m, "paired differences: n/a");
  assert.match(md, /A cell reading only "n\/a": the metric is undefined on the split \(one class\)\./);
  const csv = toCsv(t);
  assert.match(csv, /^single,Single,follow AUC,,,,0,$/m, "mean and std empty, n = 0 seeds with a value");
  assert.match(csv, /^a,A,AV-A,,0\.69\d*,0\.0\d+,2,best$/m);
  const html = toHtmlTable(t);
  assert.match(html, /<tr><th scope="row">follow AUC<\/th><td>n\/a<\/td><td>n\/a<\/td><td>n\/a<\/td><\/tr>/);
  assert.match(html, /<p class="caption">Note: AV-A\/AV-G and RI-A\/RI-G over 2 of 3 tasks: follow undefined on test \(n\/a\)<\/p>/);
  const page = renderReport({ title: "t", runs: [], tableHtml: html, differences: t.differences });
  // The page without the inlined charting library (whose code has its own NaN and Infinity).
  const pageOwn = page.replace(chartLibraryScripts(), "");
  assert.ok(pageOwn.length < page.length, "the library was inlined once");
  for (const [name, text] of [["md", md], ["csv", csv], ["html", html], ["page", pageOwn], ["diff md", differencesToMarkdown(t)], ["diff csv", differencesToCsv(t)]] as const) {
    assert.ok(!/NaN|Infinity|[|,>] ?undefined ?[|,<]/.test(text), `${name} has a NaN:\n${text}`);
  }
});

test("GAUC undefined but AUC defined: AV-A over every task, AV-G over the others, one note each", () => {
  const s: MethodSummary[] = [
    { method: "s", label: "S", perTask: [{ task: "x", auc: [0.6], gauc: [0.5] }, { task: "y", auc: [0.8], gauc: [NaN] }] },
    { method: "m", label: "M", perTask: [{ task: "x", auc: [0.7], gauc: [0.6] }, { task: "y", auc: [0.9], gauc: [NaN] }] },
  ];
  const t = buildComparisonTable(s, { baseline: "s" });
  close(cells(t, "AV-A")[1]!.mean, 0.8);
  close(cells(t, "AV-G")[1]!.mean, 0.6);
  assert.equal(cells(t, "y AUC")[1]!.text, "0.9000");
  assert.equal(cells(t, "y GAUC")[1]!.text, "n/a");
  assert.deepEqual(t.notes, ["AV-G and RI-G over 1 of 2 tasks: y undefined on test (n/a)"]);
});

test("no task defined: AV and RI read n/a with a note saying so; a fully defined table has no notes", () => {
  const s: MethodSummary[] = [
    { method: "s", label: "S", perTask: [{ task: "x", auc: [NaN], gauc: [NaN] }] },
    { method: "m", label: "M", perTask: [{ task: "x", auc: [NaN], gauc: [NaN] }] },
  ];
  const t = buildComparisonTable(s, { baseline: "s" });
  for (const metric of ["AV-A", "AV-G"]) assert.deepEqual(cells(t, metric).map((c) => c!.text), ["n/a", "n/a"]);
  assert.equal(cells(t, "RI-A")[1]!.text, "n/a");
  assert.deepEqual(t.notes, ["AV-A/AV-G and RI-A/RI-G: n/a, no task is defined on test (x)"]);
  assert.ok(!/NaN/.test(toMarkdown(t) + toCsv(t) + toHtmlTable(t)));
  const ok = buildComparisonTable([{ method: "s", label: "S", perTask: [{ task: "x", auc: [0.5], gauc: [0.5] }] }], { baseline: "s" });
  assert.equal(ok.notes, undefined);
  assert.doesNotMatch(toMarkdown(ok), /Note:/);
  assert.deepEqual(undefinedNotes(["a", "b"], [0], [0], "val"), ["AV-A/AV-G and RI-A/RI-G over 1 of 2 tasks: b undefined on val (n/a)"]);
});

test("warnings name the task, the split, the class present and what the task is left out of", () => {
  const m = { auc: [0.7, NaN, NaN, 0.6], gauc: [0.6, NaN, NaN, NaN], logloss: [0.5, 0.1, 0.1, 0.5], gaucGroups: [], positives: [10, 0, 40, 12], rows: 40 };
  assert.deepEqual(splitWarnings(["a", "b", "c", "d"], "test", m), [
    'task "b": the test split has only one class (all 0): its test AUC and GAUC are undefined; it is left out of AV-A/AV-G and RI-A/RI-G',
    'task "c": the test split has only one class (all 1): its test AUC and GAUC are undefined; it is left out of AV-A/AV-G and RI-A/RI-G',
    'task "d": no group of the test split has both classes: its test GAUC is undefined; it is left out of AV-G and RI-G',
  ]);
  assert.equal(
    undefinedWarning({ task: "b", split: "val", auc: true, gauc: true, onlyClass: null }),
    'task "b": the val split has only one class: its val AUC and GAUC are undefined; it is left out of early stopping (the mean val AUC)',
  );
  assert.deepEqual(splitWarnings(["a"], "test", { auc: [NaN], gauc: [NaN], logloss: [NaN], gaucGroups: [], positives: [0], rows: 0 }), [
    "the test split is empty: every task's test AUC and GAUC are undefined",
  ]);
  // an older result without positives/rows: null values (JSON) are undefined too
  assert.deepEqual(splitWarnings(["a", "b"], "test", { auc: [0.6, null as unknown as number], gauc: [0.6, null as unknown as number], logloss: [0.5, 0.5], gaucGroups: [] }), [
    'task "b": the test split has only one class: its test AUC and GAUC are undefined; it is left out of AV-A/AV-G and RI-A/RI-G',
  ]);
});
