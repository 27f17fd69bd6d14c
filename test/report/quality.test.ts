/**
 * The quality bar (src/report/quality.ts): every multi-task method against LR per task, GradCraft's
 * rank on AV-A / AV-G, and the diagnostics read from diag.jsonl when GradCraft does not lead.
 * Every pinned number is computed by hand in the comments, with t(0.975, 2) = 4.302652729749464.
 */
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  buildQualityBar,
  compareWithLr,
  gradcraftRank,
  halfWidth,
  lrVerdict,
  qualityToHtml,
  qualityToJson,
  qualityToMarkdown,
  readDiagnostics,
  runDiagStats,
  summariseDiagnostics,
} from "../../src/report/quality.ts";
import type { MethodSummary } from "../../src/report/table.ts";
import { renderReport } from "../../src/report/html.ts";

const T975_2 = 4.302652729749464;
const close = (a: number | null | undefined, b: number, tol = 1e-12) => assert.ok(typeof a === "number" && Math.abs(a - b) <= tol, `${a} vs ${b}`);

const dir = mkdtempSync(join(tmpdir(), "mtlcraft-quality-"));
after(() => rmSync(dir, { recursive: true, force: true }));

const g = (x: number[], y: number[]) => [
  { task: "x", auc: x, gauc: [0.6, 0.6, 0.6].slice(0, x.length) },
  { task: "y", auc: y, gauc: [0.5, 0.5, 0.5].slice(0, y.length) },
];

// ---- 1. against LR ----
// LR lists its seeds as 3, 1, 2: pairing must follow the seed ids. By seed 1, 2, 3 LR has
// x = 0.70, 0.72, 0.73 and y = 0.80, 0.80, 0.80.
const lrCase: MethodSummary[] = [
  { method: "single", label: "Single", seeds: [1, 2, 3], perTask: g([0.5, 0.5, 0.5], [0.5, 0.5, 0.5]) },
  { method: "lr", label: "LR", seeds: [3, 1, 2], perTask: g([0.73, 0.7, 0.72], [0.8, 0.8, 0.8]) },
  // x: d = 0.01, 0.02, 0.01 → mean 0.04/3 = 0.013333; sd = 0.01/√3; se = sd/√3 = 0.01/3;
  //    half = 4.302652729749464 · 0.01/3 = 0.0143421758 → [-0.0010088, +0.0276755]: at or above (mean ≥ 0).
  // y: d = -0.02, -0.03, -0.02 → mean -0.07/3 = -0.023333, same half → [-0.0376755, -0.0089912]: below, excludes 0.
  { method: "gradcraft", label: "GradCraft", seeds: [1, 2, 3], perTask: g([0.71, 0.74, 0.74], [0.78, 0.77, 0.78]) },
  // x: d = -0.01, 0, -0.02 → mean -0.01; sd = 0.01; half = 4.302652729749464 · 0.01/√3 = 0.0248414 → [-0.0348414, +0.0148414]: below, contains 0.
  // y: d = 0.01 on every seed → at or above.
  { method: "pcgrad", label: "PCGrad", seeds: [1, 2, 3], perTask: g([0.69, 0.72, 0.71], [0.81, 0.81, 0.81]) },
  // one seed (2): x d = 0.71 − 0.72 = -0.01 → below, no interval; y d = 0 → at or above.
  { method: "ew", label: "EW", seeds: [2], perTask: g([0.71], [0.8]) },
  // seed 4 only: LR never ran it → not comparable.
  { method: "uw", label: "UW", seeds: [4], perTask: g([0.9], [0.9]) },
];

test("against LR: paired differences with hand-computed 95 % t-intervals, and each kind of verdict", () => {
  const lr = compareWithLr(lrCase);
  assert.equal(lr.ran, true);
  // every multi-task method × task, none of the baselines
  assert.deepEqual(lr.cells.map((c) => `${c.method}/${c.task}`), ["gradcraft/x", "gradcraft/y", "pcgrad/x", "pcgrad/y", "ew/x", "ew/y", "uw/x", "uw/y"]);
  const cell = (m: string, t: string) => lr.cells.find((c) => c.method === m && c.task === t)!;
  const half1 = (T975_2 * 0.01) / 3;
  const half2 = (T975_2 * 0.01) / Math.sqrt(3);

  const gx = cell("gradcraft", "x");
  close(gx.auc, (0.71 + 0.74 + 0.74) / 3);
  close(gx.lrAuc, (0.7 + 0.72 + 0.73) / 3);
  close(gx.diff.mean, 0.04 / 3);
  close(gx.diff.lo, 0.04 / 3 - half1);
  close(gx.diff.hi, 0.04 / 3 + half1);
  close(gx.diff.lo, -0.001008842432498212);
  assert.equal(gx.diff.n, 3);
  assert.equal(gx.verdict, "at-or-above");

  const gy = cell("gradcraft", "y");
  close(gy.diff.mean, -0.07 / 3);
  close(gy.diff.lo, -0.03767550909916488);
  close(gy.diff.hi, -0.008991157567501788);
  assert.equal(gy.verdict, "below-excludes-0");

  const px = cell("pcgrad", "x");
  close(px.diff.mean, -0.01);
  close(px.diff.lo, -0.01 - half2);
  close(px.diff.hi, -0.01 + half2);
  assert.equal(px.verdict, "below-contains-0");
  assert.equal(cell("pcgrad", "y").verdict, "at-or-above");

  const ex = cell("ew", "x");
  close(ex.diff.mean, -0.01);
  assert.equal(ex.diff.n, 1);
  assert.equal(ex.verdict, "below-no-interval");
  assert.equal(cell("ew", "y").diff.mean, 0);
  assert.equal(cell("ew", "y").verdict, "at-or-above", "a zero difference is at LR");

  assert.equal(cell("uw", "x").diff.n, 0);
  assert.equal(cell("uw", "x").verdict, "not-comparable");

  assert.equal(lr.below, 3);
  assert.equal(
    lr.summary,
    "3 of 8 method×task cells are below LR in test AUC: GradCraft on y (interval excludes 0); PCGrad on x (interval contains 0); EW on x (one paired seed: no interval). " +
      "2 of 8 method×task cells could not be compared (no paired seed with a value): UW on x; UW on y.",
  );
});

test("against LR: the all-clear line, and a bench without LR says so instead of failing", () => {
  const ok = compareWithLr(lrCase.filter((s) => ["lr", "single"].includes(s.method)).concat([
    { method: "gradcraft", label: "GradCraft", seeds: [1, 2, 3], perTask: g([0.71, 0.74, 0.74], [0.81, 0.82, 0.8]) },
  ]));
  assert.equal(ok.below, 0);
  assert.equal(ok.summary, "Every multi-task method is at or above LR on every task (test AUC, 2 method×task cells).");

  const none = compareWithLr(lrCase.filter((s) => s.method !== "lr"));
  assert.equal(none.ran, false);
  assert.deepEqual(none.cells, []);
  assert.match(none.summary, /^LR did not run in this bench/);
  const q = buildQualityBar(lrCase.filter((s) => s.method !== "lr"));
  assert.match(qualityToMarkdown(q), /^LR did not run in this bench \(no "lr" results\): the per-task comparison against LR is not available\.$/m);
});

test("lrVerdict follows the paired difference's mean and interval", () => {
  const base = { std: 0.01, text: "" };
  assert.equal(lrVerdict({ ...base, mean: -0.02, n: 3, lo: -0.03, hi: -0.01, sign: "below" }), "below-excludes-0");
  assert.equal(lrVerdict({ ...base, mean: -0.001, n: 3, lo: -0.03, hi: 0.01, sign: "spans" }), "below-contains-0");
  assert.equal(lrVerdict({ ...base, mean: 0.001, n: 3, lo: -0.03, hi: 0.01, sign: "spans" }), "at-or-above");
  assert.equal(lrVerdict({ ...base, mean: -0.001, n: 1, lo: null, hi: null, sign: null }), "below-no-interval");
  assert.equal(lrVerdict({ ...base, mean: NaN, n: 2, lo: NaN, hi: NaN, sign: null }), "not-comparable");
});

// ---- 2. rank ----
// Per seed (1, 2, 3), AV = mean over the two tasks:
//   GradCraft AV-A: (0.70+0.80)/2, (0.72+0.80)/2, (0.74+0.80)/2 = 0.75, 0.76, 0.77 → mean 0.76, sd 0.01,
//             half-width = 4.302652729749464 · 0.01/√3 = 0.0248414
//   EW        AV-A: (0.74+0.80)/2, (0.74+0.82)/2, (0.76+0.80)/2 = 0.77, 0.78, 0.78 → mean 0.776667 (leader)
//   LR AV-A 0.70, Single AV-A 0.65 → GradCraft rank 2 of 4.
//   GradCraft − EW per seed: -0.02, -0.02, -0.01 → mean -0.05/3 = -0.016667, sd 0.01/√3,
//             half = 4.302652729749464 · 0.01/3 = 0.0143422 → [-0.0310088, -0.0023245] (excludes 0).
//   GradCraft AV-G: (0.62+0.5)/2, (0.64+0.5)/2, (0.66+0.5)/2 = 0.56, 0.57, 0.58 → mean 0.57 (rank 1 of 4)
//   LR AV-G: (0.60+0.5)/2, (0.64+0.5)/2, (0.64+0.5)/2 = 0.55, 0.57, 0.57 → 0.563333 (runner-up); EW 0.55; Single 0.5.
//   GradCraft − LR per seed: 0.01, 0, 0.01 → mean 0.02/3 = 0.006667, half 0.0143422 → [-0.0076755, +0.0210088].
const rankCase: MethodSummary[] = [
  { method: "single", label: "Single", seeds: [1, 2, 3], perTask: [{ task: "x", auc: [0.6, 0.6, 0.6], gauc: [0.5, 0.5, 0.5] }, { task: "y", auc: [0.7, 0.7, 0.7], gauc: [0.5, 0.5, 0.5] }] },
  { method: "lr", label: "LR", seeds: [1, 2, 3], perTask: [{ task: "x", auc: [0.7, 0.7, 0.7], gauc: [0.6, 0.64, 0.64] }, { task: "y", auc: [0.7, 0.7, 0.7], gauc: [0.5, 0.5, 0.5] }] },
  { method: "ew", label: "EW", seeds: [1, 2, 3], perTask: [{ task: "x", auc: [0.74, 0.74, 0.76], gauc: [0.6, 0.6, 0.6] }, { task: "y", auc: [0.8, 0.82, 0.8], gauc: [0.5, 0.5, 0.5] }] },
  { method: "gradcraft", label: "GradCraft", seeds: [1, 2, 3], perTask: [{ task: "x", auc: [0.7, 0.72, 0.74], gauc: [0.62, 0.64, 0.66] }, { task: "y", auc: [0.8, 0.8, 0.8], gauc: [0.5, 0.5, 0.5] }] },
];

test("GradCraft's rank on AV-A and AV-G, its interval half-width, and the paired difference to the leader / runner-up", () => {
  const r = gradcraftRank(rankCase);
  assert.equal(r.ran, true);
  const [a, gm] = r.metrics;
  assert.equal(a!.metric, "AV-A");
  close(a!.value, 0.76);
  close(a!.halfWidth, (T975_2 * 0.01) / Math.sqrt(3));
  close(a!.halfWidth, 0.02484137711750331);
  assert.equal(a!.rank, 2);
  assert.equal(a!.of, 4);
  assert.equal(a!.leads, false);
  assert.equal(a!.leader!.method, "ew");
  close(a!.leader!.value, 2.33 / 3);
  close(a!.vsLeader!.mean, -0.05 / 3);
  close(a!.vsLeader!.lo, -0.031008842432498213);
  close(a!.vsLeader!.hi, -0.0023244909008351203);
  assert.equal(a!.vsLeader!.sign, "below");
  assert.equal(a!.runnerUp, null);

  assert.equal(gm!.metric, "AV-G");
  close(gm!.value, 0.57);
  assert.equal(gm!.rank, 1);
  assert.equal(gm!.leads, true);
  assert.equal(gm!.leader, null);
  assert.equal(gm!.runnerUp!.method, "lr");
  close(gm!.vsRunnerUp!.mean, 0.02 / 3);
  close(gm!.vsRunnerUp!.lo, -0.007675509099164879);
  close(gm!.vsRunnerUp!.hi, 0.021008842432498214);
  assert.equal(gm!.vsRunnerUp!.sign, "spans");
  assert.equal(r.summary, "GradCraft — AV-A: rank 2 of 4, behind EW; AV-G: leads (rank 1 of 4).");

  assert.equal(halfWidth({ std: null, n: 1 }), null);
  close(halfWidth({ std: 0.03, n: 3 }), (T975_2 * 0.03) / Math.sqrt(3));
});

test("without GradCraft the rank section says so and there are no diagnostics", () => {
  const q = buildQualityBar(rankCase.filter((s) => s.method !== "gradcraft"));
  assert.equal(q.gradcraft.ran, false);
  assert.equal(q.diagnostics, null);
  assert.match(qualityToMarkdown(q), /^GradCraft did not run in this bench \(no "gradcraft" results\): no rank to report\.$/m);
  // the LR part still works
  assert.equal(q.lr.cells.length, 2);
});

// ---- 3. diagnostics ----
// File A (T = 3 tasks, 3 pairs), two logged steps:
//   step 0: conflicts 1 → rate 1/3; norms 1, 2, 4 → ratio 4; cosines (0,1)=0.5 (0,2)=-0.2 (1,2)=0.1 → mean 0.4/3
//   step 10: conflicts 2 → rate 2/3; norms 2, 2, 1 → ratio 2; cosines -0.4, -0.1, 0.2 → mean -0.1
//   A: rate (1/3 + 2/3)/2 = 0.5; ratio (4 + 2)/2 = 3; cosine (0.4/3 − 0.1)/2 = 0.0166667
// File B, two steps: step 0: conflicts 0, norms 1, 1, 1 → ratio 1, cosines 0.3 each → 0.3;
//   step 5: a NaN norm (null) → no ratio that step, one NaN cosine (null) skipped → mean of 0.3, 0.3 = 0.3.
//   B: rate 0, ratio 1, cosine 0.3
// Over the two seeds with diagnostics: rate 0.25, ratio 2, cosine (0.0166667 + 0.3)/2 = 0.1583333.
const cos3 = (ab: number | null, ac: number | null, bc: number | null) => [1, ab, ac, ab, 1, bc, ac, bc, 1];
const line = (step: number, norms: (number | null)[], cosines: (number | null)[], conflicts: number) =>
  JSON.stringify({ step, losses: [0.5, 0.4, 0.3], weights: null, norms, cosines, conflicts });
const fileA = join(dir, "a.diag.jsonl");
writeFileSync(fileA, [line(0, [1, 2, 4], cos3(0.5, -0.2, 0.1), 1), line(10, [2, 2, 1], cos3(-0.4, -0.1, 0.2), 2)].join("\n") + "\n");
const fileB = join(dir, "b.diag.jsonl");
writeFileSync(fileB, [line(0, [1, 1, 1], cos3(0.3, 0.3, 0.3), 0), "", line(5, [null, 1, 2], cos3(null, 0.3, 0.3), 0)].join("\n") + "\n");
const fileEmpty = join(dir, "empty.diag.jsonl");
writeFileSync(fileEmpty, "");
const fileZero = join(dir, "zero.diag.jsonl");
writeFileSync(fileZero, line(0, [0, 0, 0], cos3(0, 0, 0), 0) + "\n");
const fileMissing = join(dir, "missing.diag.jsonl");

test("diag.jsonl: averaged over logged steps, then over seeds; missing, empty and all-zero files are 'no diagnostics'", () => {
  const files = readDiagnostics([fileA, fileB, fileMissing, fileEmpty, fileZero]);
  assert.deepEqual(files.map((f) => f.status), ["ok", "ok", "missing", "empty", "ok"]);
  assert.equal(files[1]!.points.length, 2, "blank lines are skipped");
  assert.ok(Number.isNaN(files[1]!.points[1]!.norms[0]!), "null reads as NaN");
  const a = runDiagStats(files[0]!.points);
  close(a.conflictRate, 0.5);
  close(a.normRatio, 3);
  close(a.cosine, 0.016666666666666663);
  const b = runDiagStats(files[1]!.points);
  close(b.conflictRate, 0);
  close(b.normRatio, 1);
  close(b.cosine, 0.3);
  const m = summariseDiagnostics("gradcraft", "GradCraft", files);
  assert.equal(m.files, 5);
  assert.equal(m.withDiagnostics, 2);
  close(m.conflictRate, 0.25);
  close(m.normRatio, 2);
  close(m.cosine, 0.15833333333333333);
  assert.equal(m.note, "3 of 5 diag.jsonl files missing, empty or without shared-parameter gradients");

  const none = summariseDiagnostics("ew", "EW", readDiagnostics([fileMissing, fileEmpty]));
  assert.equal(none.withDiagnostics, 0);
  assert.equal(none.conflictRate, null);
  assert.match(none.note, /^no diagnostics/);
  assert.equal(summariseDiagnostics("lr", "LR", []).note, "no diagnostics: a baseline without shared-parameter gradients");

  // T = 4 tasks: 6 pairs, so 3 conflicts is a rate of 3/6 = 0.5 (not 3/4); norms 1, 2, 3, 8 → ratio 8;
  // cosines of the 6 pairs i < j: 0.1, 0.2, 0.3, -0.4, -0.5, 0.9 → mean 0.6/6 = 0.1 (the lower triangle, 7s, is never read).
  const f4 = join(dir, "t4.diag.jsonl");
  const c4 = [1, 0.1, 0.2, 0.3, 7, 1, -0.4, -0.5, 7, 7, 1, 0.9, 7, 7, 7, 1];
  writeFileSync(f4, JSON.stringify({ step: 0, losses: [1, 1, 1, 1], weights: [1, 1, 1, 1], norms: [1, 2, 3, 8], cosines: c4, conflicts: 3 }) + "\n");
  const s4 = runDiagStats(readDiagnostics([f4])[0]!.points);
  close(s4.conflictRate, 0.5);
  close(s4.normRatio, 8);
  close(s4.cosine, 0.1, 1e-15);
});

test("diag.jsonl: a malformed line is an error naming the file and the line number", () => {
  const bad = join(dir, "bad.diag.jsonl");
  writeFileSync(bad, [line(0, [1, 2, 4], cos3(0.5, -0.2, 0.1), 1), "", "{not json"].join("\n") + "\n");
  assert.throws(() => readDiagnostics([fileA, bad]), (e: Error) => e.message.startsWith(`${bad}:3: malformed diagnostics line: not JSON`));
  const short = join(dir, "short.diag.jsonl");
  writeFileSync(short, [line(0, [1, 2, 4], cos3(0.5, -0.2, 0.1), 1), line(1, [1, 2, 4], [1, 0, 0, 1], 0)].join("\n") + "\n");
  assert.throws(() => readDiagnostics([short]), (e: Error) => e.message.startsWith(`${short}:2: malformed diagnostics line: "cosines"`));
  const noConf = join(dir, "noconf.diag.jsonl");
  writeFileSync(noConf, JSON.stringify({ step: 0, norms: [1, 2], cosines: [1, 0, 0, 1], conflicts: "x" }) + "\n");
  assert.throws(() => readDiagnostics([noConf]), new RegExp(`^Error: ${noConf.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}:1: .*"conflicts"`));
});

test("the whole bar: diagnostics of GradCraft and the leader when it does not lead; Markdown, HTML and JSON say the same", () => {
  const q = buildQualityBar(rankCase, {
    diagFiles: (m) => (m === "gradcraft" ? [fileA, fileB, fileMissing] : m === "ew" ? [fileEmpty] : assert.fail(`read ${m}'s diagnostics`)),
  });
  assert.deepEqual(q.diagnostics!.notLeading, [{ metric: "AV-A", leader: "EW" }]);
  const [gc, ew] = q.diagnostics!.methods;
  assert.equal(gc!.method, "gradcraft");
  assert.equal(gc!.withDiagnostics, 2);
  close(gc!.conflictRate, 0.25);
  close(gc!.normRatio, 2);
  close(gc!.cosine, 0.15833333333333333);
  assert.equal(ew!.method, "ew");
  assert.equal(ew!.withDiagnostics, 0);

  const md = qualityToMarkdown(q);
  assert.match(md, /^## Quality bar\n\n/);
  // x: GradCraft − LR per seed 0, 0.02, 0.04 → mean 0.02, sd 0.02, half 4.302652729749464 · 0.02/√3 = 0.0496828
  assert.ok(md.includes("| GradCraft | x | 0.7200 | 0.7000 | +0.0200 [-0.0297, +0.0697] | at or above LR |"), md);
  assert.match(md, /^- AV-A: GradCraft 0\.7600 ± 0\.0248 \(95 % interval half-width, 3 seeds\), rank 2 of 4\. Leader: EW 0\.7767; GradCraft − EW = -0\.0167 \[-0\.0310, -0\.0023\] \(interval excludes 0, 3 paired seeds\)\.$/m);
  assert.match(md, /^- AV-G: GradCraft 0\.5700 ± 0\.0248 .*, rank 1 of 4: leads\. Runner-up: LR 0\.5633; GradCraft − LR = \+0\.0067 \[-0\.0077, \+0\.0210\] \(interval contains 0, 3 paired seeds\)\.$/m);
  assert.match(md, /^### Diagnostics: why GradCraft does not lead$/m);
  assert.match(md, /^\| GradCraft \| 2 of 3 \| 0\.2500 \| 2\.000 \| 0\.1583 \|$/m);
  assert.match(md, /^\| EW \| 0 of 1 \| n\/a \| n\/a \| n\/a \|$/m);
  assert.match(md, /^- EW: no diagnostics \(1 diag\.jsonl file missing, empty or without shared-parameter gradients\)\.$/m);

  const html = qualityToHtml(q);
  assert.match(html, /^<section id="quality"><h2>Quality bar<\/h2>/);
  assert.match(html, /GradCraft − EW = -0\.0167 \[-0\.0310, -0\.0023\]/);
  assert.match(html, /<td[^>]*>2 of 3<\/td><td>0\.2500<\/td><td>2\.000<\/td><td>0\.1583<\/td>/);
  const page = renderReport({ title: "t", runs: [], qualityHtml: html });
  assert.ok(page.includes(html.trimEnd()), "the section is in the report");
  assert.match(page, /<a href="#quality">Quality bar<\/a>/);
  const plain = renderReport({ title: "t", runs: [] });
  assert.doesNotMatch(plain, /quality/i, "no quality section without the field");

  const json = JSON.parse(qualityToJson(q));
  assert.equal(json.version, 1);
  assert.equal(json.gradcraft.metrics[0].rank, 2);
  assert.equal(json.diagnostics.methods[1].conflictRate, null);
});

test("a leader that is a baseline has no diagnostics; names are escaped in Markdown and HTML", () => {
  // LR leads AV-A: x 0.9 on every seed.
  const cs = rankCase.map((s) => (s.method === "lr" ? { ...s, label: "L|R <b>", perTask: [{ ...s.perTask[0]!, auc: [0.9, 0.9, 0.9] }, s.perTask[1]!] } : s));
  const q = buildQualityBar(cs, { diagFiles: (m) => (m === "gradcraft" ? [fileA] : assert.fail(`read ${m}'s diagnostics`)) });
  assert.equal(q.gradcraft.metrics[0]!.leader!.method, "lr");
  const lr = q.diagnostics!.methods[1]!;
  assert.equal(lr.note, "no diagnostics: a baseline without shared-parameter gradients");
  const md = qualityToMarkdown(q);
  assert.match(md, /^\| L\\\|R \\<b\\> \| none \| n\/a \| n\/a \| n\/a \|$/m);
  assert.doesNotMatch(qualityToHtml(q), /<b>/);
  assert.match(qualityToHtml(q), /L\|R &lt;b&gt;/);
});
