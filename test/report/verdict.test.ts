import { test } from "node:test";
import assert from "node:assert/strict";
import { buildComparisonTable, type MethodSummary } from "../../src/report/table.ts";
import { buildVerdict, methodCosts, verdictToHtml, verdictToMarkdown } from "../../src/report/verdict.ts";
import type { RunResult } from "../../src/report/types.ts";

const seeds = [1, 2, 3, 4, 5];
const EW = [0.7, 0.701, 0.699, 0.7005, 0.6995];
const noise = [0.0001, -0.0001, 0.0002, 0, -0.0002];
const mk = (method: string, label: string, shift: number, n = noise): MethodSummary => ({
  method,
  label,
  seeds,
  perTask: [{ task: "x", auc: EW.map((v, i) => v + shift + n[i]!), gauc: EW.map((v, i) => v + shift + n[i]!) }],
});
const wide = [0.004, -0.004, 0.003, -0.003, 0];

test("a method whose Holm interval is above EW's is named with its effect, interval, adjusted p and cost ratio", () => {
  const sums = [mk("single", "Single", -0.02), mk("ew", "EW", 0, [0, 0, 0, 0, 0]), mk("imtl", "IMTL", 0.004), mk("pcgrad", "PCGrad", 0.0005, wide)];
  const t = buildComparisonTable(sums, { baseline: "single", differences: ["single", "ew"] });
  const costs = new Map([
    ["ew", { msPerStep: 100, peakRssMb: 400, n: 5 }],
    ["imtl", { msPerStep: 130, peakRssMb: 420, n: 5 }],
    ["pcgrad", { msPerStep: 150, peakRssMb: 430, n: 5 }],
  ]);
  const v = buildVerdict(t, { costs });
  const ew = v.lines.filter((l) => l.kind === "ew").map((l) => l.text);
  assert.equal(ew.length, 2, ew.join("\n"));
  assert.match(ew[1]!, /^Worse than EW beyond noise: Single -0\.0200 AV-A/);
  assert.match(ew[0]!, /^On this data, one method beats EW beyond noise \(Holm's correction over 3 methods compared with EW\): IMTL \+0\.0040 AV-A \[\+0\.00\d\d, \+0\.00\d\d\], Holm-adjusted p = [0-9.e-]+, at 1\.30x EW's time per step\.$/);
  assert.ok(!ew[0]!.includes("PCGrad"), "PCGrad's interval spans 0");
  const single = v.lines.find((l) => l.kind === "single")!.text;
  assert.match(single, /^On this data, 3 methods beat Single beyond noise/);
  assert.match(v.lines.find((l) => l.kind === "cost")!.text, /cheapest EW 100\.0 ms, dearest PCGrad 150\.0 ms \(1\.50x\); peak memory 400-430 MiB/);
  assert.equal(v.lines.find((l) => l.kind === "ri"), undefined, "RI is against Single: no note");
});

test("no winner: says so, names the largest estimate as within the noise, and flags methods worse than EW", () => {
  const sums = [mk("ew", "EW", 0, [0, 0, 0, 0, 0]), mk("a", "A", 0.0008, wide), mk("b", "B", -0.01)];
  const t = buildComparisonTable(sums, { baseline: "ew", differences: ["single", "ew"] });
  const v = buildVerdict(t);
  const texts = v.lines.map((l) => l.text);
  assert.match(texts[0]!, /^No method beats EW beyond noise on AV-A \(Holm's correction over 2 methods compared with EW\)\. The largest estimate, A \+0\.0008 AV-A/);
  assert.match(texts[1]!, /^Worse than EW beyond noise: B -0\.0100 AV-A/);
  assert.match(texts.at(-1)!, /Single did not run, so RI-A and RI-G are relative improvements over EW, not over single-task models\./);
  assert.ok(!texts.some((x) => /cheapest/.test(x)), "no cost sentence without costs");
});

test("one seed: the verdict says the run cannot tell methods apart", () => {
  const one = (m: string, l: string, x: number): MethodSummary => ({ method: m, label: l, seeds: [1], perTask: [{ task: "x", auc: [x], gauc: [x] }] });
  const t = buildComparisonTable([one("ew", "EW", 0.7), one("gradcraft", "GradCraft", 0.71)], { baseline: "ew", differences: ["ew"] });
  const v = buildVerdict(t);
  assert.match(v.lines[0]!.text, /no method has two or more paired seeds, so there is no interval and this run cannot tell any method from EW; run more seeds/);
});

test("labels are escaped in Markdown and HTML", () => {
  const sums = [mk("ew", "EW", 0, [0, 0, 0, 0, 0]), mk("x", "<img src=x onerror=alert(1)>|*", 0.004)];
  const v = buildVerdict(buildComparisonTable(sums, { baseline: "ew", differences: ["ew"] }));
  const html = verdictToHtml(v);
  assert.ok(!html.includes("<img"), html);
  assert.ok(html.includes("&lt;img src=x onerror=alert(1)&gt;"));
  const md = verdictToMarkdown(v);
  assert.ok(md.startsWith("## Verdict (AV-A)\n\n- On this data"), md);
  assert.ok(md.includes("\\<img") && md.includes("\\|\\*"), md);
});

test("methodCosts: median per method over the runs that recorded a cost", () => {
  const r = (method: string, ms?: number, rss = 100) => ({ method, cost: ms === undefined ? undefined : { msPerStep: ms, peakRssMb: rss } }) as unknown as RunResult;
  const c = methodCosts([r("ew", 10), r("ew", 30), r("ew", 20, 300), r("imtl", 5), r("imtl"), r("old")]);
  assert.deepEqual(c.get("ew"), { msPerStep: 20, peakRssMb: 100, n: 3 });
  assert.deepEqual(c.get("imtl"), { msPerStep: 5, peakRssMb: 100, n: 1 });
  assert.equal(c.has("old"), false);
});
