/**
 * The grid-selection report: the chosen point per method (highest mean validation AUC, first on
 * ties, NaN never chosen), the per-key profiles, the edge warnings, and the three renderings.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { parse } from "parse5";
import { buildSelection, selectionEdges, selectionToCsv, selectionToHtml, selectionToMarkdown, type SelectionPoint } from "../../src/report/selection.ts";
import { renderReport } from "../../src/report/html.ts";

const pt = (method: string, point: SelectionPoint["point"], valAuc: number, bestEpoch = 1, epochsRun = 4): SelectionPoint => ({
  method,
  label: method.toUpperCase(),
  point,
  valAuc,
  bestEpoch,
  epochsRun,
});

// EW: lr 1e-2 wins in the middle of three values; GC: lr × tau, winner on tau's lower edge
const points: SelectionPoint[] = [
  pt("ew", { lr: 0.002 }, 0.75),
  pt("ew", { lr: 0.01 }, 0.77),
  pt("ew", { lr: 0.04 }, 0.76),
  pt("gc", { lr: 0.01, tau: 0.1 }, 0.772, 0, 3),
  pt("gc", { lr: 0.01, tau: 0.5 }, 0.771),
  pt("gc", { lr: 0.01, tau: 1 }, 0.7),
  pt("gc", { lr: 0.02, tau: 0.1 }, 0.76),
  pt("gc", { lr: 0.02, tau: 0.5 }, 0.765),
  pt("gc", { lr: 0.02, tau: 1 }, 0.764),
];

test("the chosen point is the highest validation AUC; profiles take the best over the other keys, in value order", () => {
  const [ew, gc] = buildSelection(points);
  assert.deepEqual(ew!.chosen.point, { lr: 0.01 });
  assert.deepEqual(ew!.edges, []);
  assert.deepEqual(ew!.profiles, [{ key: "lr", values: [[0.002, 0.75], [0.01, 0.77], [0.04, 0.76]] }]);
  assert.deepEqual(gc!.chosen.point, { lr: 0.01, tau: 0.1 });
  assert.deepEqual(gc!.profiles, [
    { key: "lr", values: [[0.01, 0.772], [0.02, 0.765]] },
    { key: "tau", values: [[0.1, 0.772], [0.5, 0.771], [1, 0.764]] },
  ]);
  // lr has 2 values (no edge with 2), tau 3 with 0.1 the smallest
  assert.deepEqual(gc!.edges, [{ key: "tau", value: 0.1, side: "lower" }]);
});

test("edges: upper and lower, only numeric keys with at least 3 values; ties keep the first; NaN is never chosen", () => {
  const up = [pt("m", { lr: 1 }, 0.5), pt("m", { lr: 2 }, 0.6), pt("m", { lr: 3 }, 0.7)];
  assert.deepEqual(selectionEdges(up, up[2]!), [{ key: "lr", value: 3, side: "upper" }]);
  assert.deepEqual(selectionEdges(up, up[1]!), []);
  const words = [pt("m", { scope: "a" }, 0.5), pt("m", { scope: "b" }, 0.6), pt("m", { scope: "c" }, 0.7)];
  assert.deepEqual(selectionEdges(words, words[2]!), [], "strings have no order");
  const [tie] = buildSelection([pt("m", { lr: 1 }, 0.7), pt("m", { lr: 2 }, 0.7)]);
  assert.deepEqual(tie!.chosen.point, { lr: 1 });
  const [nan] = buildSelection([pt("m", { lr: 1 }, NaN), pt("m", { lr: 2 }, 0.6), pt("m", { lr: 3 }, NaN)]);
  assert.deepEqual(nan!.chosen.point, { lr: 2 }, "a NaN first point does not block the others");
  // a run cut by a step limit before its first full epoch: no epoch named, no last-epoch flag
  const cut = buildSelection([pt("m", { lr: 1 }, 0.5, 0, 0), pt("m", { lr: 2 }, 0.4, 0, 0)]);
  assert.equal(cut[0]!.atLastEpoch, false);
  assert.match(selectionToMarkdown(cut), /^\| M \| 2 \| lr 1 \| 0\.5000 \| - \| /m);
});

test("Markdown: one row per method with the chosen value marked, and the edges named up front", () => {
  const md = selectionToMarkdown(buildSelection(points)).split("\n");
  assert.equal(md[0], "## Grid selection");
  assert.equal(md[4], "Check these choices: GC (tau 0.1: lower edge).");
  assert.equal(md[6], "| Method | points | chosen | val mean AUC | best epoch | val AUC by value | check |");
  assert.equal(md[8], "| EW | 3 | lr 0.01 | 0.7700 | 2 of 4 | lr: 0.002 0.7500 · **0.01 0.7700** · 0.04 0.7600 | - |");
  assert.equal(md[9], "| GC | 6 | lr 0.01, tau 0.1 | 0.7720 | 1 of 3 | lr: **0.01 0.7720** · 0.02 0.7650; tau: **0.1 0.7720** · 0.5 0.7710 · 1 0.7640 | tau 0.1: lower edge |");
  assert.equal(selectionToMarkdown([]), "", "no grid, no section");
  assert.match(selectionToMarkdown(buildSelection(points.slice(0, 3))), /No chosen value is on an edge of its grid \(tested for numeric keys with at least 3 values\), and every chosen run stopped early/);
  // a chosen run whose best epoch is its last was still improving: flagged, with the edge
  const rising = buildSelection([pt("m", { lr: 1 }, 0.5), pt("m", { lr: 2 }, 0.6), pt("m", { lr: 3 }, 0.7, 3, 4)]);
  assert.equal(rising[0]!.atLastEpoch, true);
  assert.equal(buildSelection(points)[0]!.atLastEpoch, false);
  const rmd = selectionToMarkdown(rising).split("\n");
  assert.equal(rmd[4], "Check these choices: M (lr 3: upper edge; best at its last epoch).");
  assert.match(rmd[8]!, /\| 4 of 4 \| .* \| lr 3: upper edge; best at its last epoch \|$/);
});

test("CSV: every point, the chosen one flagged with its edges; HTML: escaped, well formed, in the report's nav", () => {
  const csv = selectionToCsv(buildSelection(points)).trimEnd().split("\n");
  assert.equal(csv[0], "method,label,point,val_mean_auc,best_epoch,epochs_run,chosen,check");
  assert.equal(csv.length, 1 + points.length);
  assert.equal(csv[2], 'ew,EW,"{""lr"":0.01}",0.77,2,4,true,-');
  assert.equal(csv[4], 'gc,GC,"{""lr"":0.01,""tau"":0.1}",0.772,1,3,true,tau 0.1: lower edge');
  assert.equal(csv[5], 'gc,GC,"{""lr"":0.01,""tau"":0.5}",0.771,2,4,false,');
  const hostile = buildSelection([pt("x", { scope: "<b>&" }, 0.5), pt("x", { scope: "y" }, 0.4)]);
  const html = selectionToHtml(hostile);
  assert.ok(html.includes("scope &lt;b&gt;&amp;") && !html.includes("scope <b>&"), "values are escaped");
  assert.ok(html.includes("<b>&lt;b&gt;&amp; 0.5000</b>"), "the chosen value is marked after escaping");
  const piped = selectionToMarkdown(buildSelection([pt("x", { scope: "a|b" }, 0.5), pt("x", { scope: "c" }, 0.4)]));
  assert.match(piped, /^\| X \| 2 \| scope a\\\|b \| 0\.5000 \| 2 of 4 \| scope: \*\*a\\\|b 0\.5000\*\* · c 0\.4000 \| - \|$/m, "a | in a value cannot split the Markdown row");
  const page = renderReport({ title: "t", runs: [], selectionHtml: selectionToHtml(buildSelection(points)) });
  const errors: string[] = [];
  parse(page, { onParseError: (e) => errors.push(e.code) });
  assert.deepEqual(errors, []);
  assert.ok(page.includes('<a href="#selection">Grid selection</a>') && page.includes('<section id="selection">'));
  assert.equal(selectionToHtml([]), "");
});
