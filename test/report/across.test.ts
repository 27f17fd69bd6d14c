import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parse } from "parse5";
import { friedmanFromRanks, nemenyiCD } from "../../src/metrics/multiple.ts";
import { readBenchFolder, summariseAcross, writeAcross } from "../../src/report/across.ts";
import { tempDir } from "../data/helpers.ts";

/** A bench output folder with the files the summary reads. */
function benchFolder(root: string, name: string, dataset: string, avA: Record<string, number>, verdict: string[] | null = ["On this data, one method beats EW."]): string {
  const dir = join(root, name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "sweep.json"), JSON.stringify({ config: { dataset, model: "ple" }, chosen: {}, jobs: [], meta: {} }));
  const lines = ["method,label,metric,unit,mean,std,n,mark"];
  for (const [m, v] of Object.entries(avA)) {
    const label = m === "uw" ? '"UW, ""uncertainty"""' : m.toUpperCase();
    lines.push(`${m},${label},x AUC,,${v},0.001,5,`, `${m},${label},AV-A,,${v},0.001,5,`, `${m},${label},RI-A,%,1.5,0.2,5,`);
  }
  writeFileSync(join(dir, "results.csv"), lines.join("\n") + "\n");
  if (verdict) writeFileSync(join(dir, "verdict.json"), JSON.stringify({ metric: "AV-A", lines: verdict.map((text) => ({ kind: "ew", text })) }));
  return dir;
}

test("mean ranks, Friedman and Nemenyi over bench folders, checked by hand", () => {
  const root = tempDir("across");
  // Three datasets, methods ew, a, b, c. Ranks per dataset (1 = best AV-A):
  //   d1: a 1, b 2, ew 3, c 4    d2: a 1, ew 2, b 3, c 4    d3: b 1, a 2, ew 3.5, c 3.5 (tie)
  // mean ranks: ew 8.5/3, a 4/3, b 2, c 11.5/3.
  const dirs = [
    benchFolder(root, "d1", "kuairand", { ew: 0.7, a: 0.72, b: 0.71, c: 0.69 }),
    benchFolder(root, "d2", "census", { ew: 0.8, a: 0.82, b: 0.79, c: 0.78 }),
    benchFolder(root, "d3", "noise", { ew: 0.6, a: 0.61, b: 0.62, c: 0.6 }),
  ];
  const s = summariseAcross(dirs.map(readBenchFolder));
  assert.deepEqual(s.methods.map((m) => m.method), ["ew", "a", "b", "c"]);
  const expect = [8.5 / 3, 4 / 3, 2, 11.5 / 3];
  s.friedman!.avgRanks.forEach((r, j) => assert.ok(Math.abs(r - expect[j]!) < 1e-12, `rank ${j}: ${r}`));
  const ref = friedmanFromRanks(expect, 3);
  assert.ok(Math.abs(s.friedman!.chi2 - ref.chi2) < 1e-12);
  // chi2_F = 12*3/(4*5) * (sum R^2 - 4*25/4) by hand
  const sumSq = expect.reduce((a, r) => a + r * r, 0);
  assert.ok(Math.abs(s.friedman!.chi2 - 1.8 * (sumSq - 25)) < 1e-12);
  assert.ok(Math.abs(s.cd! - nemenyiCD(4, 3)) < 1e-15);
  // CD for k = 4, N = 3 is 2.569 * sqrt(20/18) = 2.708: every pair is within it, one group.
  assert.deepEqual(s.groups, [[1, 2, 0, 3]]);
});

test("writeAcross writes summary.md/.csv/.html; methods missing on a dataset are listed, not ranked; labels are escaped", () => {
  const root = tempDir("across-out");
  const dirs = [
    benchFolder(root, "d1", "kuairand", { ew: 0.7, a: 0.72, uw: 0.71 }),
    benchFolder(root, "d2", "census", { ew: 0.8, a: 0.82, uw: 0.81, extra: 0.9 }, null),
  ];
  const out = join(root, "summary");
  const { summary, markdown } = writeAcross(dirs, out);
  assert.deepEqual(summary.incomplete, [{ method: "extra", missing: [`kuairand (${dirs[0]})`] }]);
  assert.match(markdown, /Left out of the ranking: extra \(no result on kuairand/);
  assert.match(markdown, /On this data, one method beats EW\./);
  assert.match(markdown, /no verdict\.json: re-render that folder/);
  const csv = readFileSync(join(out, "summary.csv"), "utf8").trimEnd().split("\n");
  assert.equal(csv[0], "method,label,mean_rank,av_a:kuairand,av_a:census");
  assert.equal(csv[1], "a,A,1,0.72,0.82");
  assert.equal(csv[2], 'uw,"UW, ""uncertainty""",2,0.71,0.81');
  const html = readFileSync(join(out, "summary.html"), "utf8");
  assert.ok(html.includes("UW, &quot;uncertainty&quot;"));
  assert.ok(!html.includes("<script"));
  assert.match(html, /<svg class="chart cd"[^>]*>.*CD = \d\.\d{3}.*<\/svg>/s, "the CD diagram is drawn");
  parse(html, { onParseError: (e) => assert.fail(`HTML parse error ${e.code} at line ${e.startLine}`) });
});

test("bad bench folders are named by file and line", () => {
  const root = tempDir("across-bad");
  const good = benchFolder(root, "good", "kuairand", { ew: 0.7, a: 0.72 });
  assert.throws(() => readBenchFolder(join(root, "nope")), /nope\/sweep\.json: not found \(is this a bench --out folder/);
  const bad = benchFolder(root, "bad", "census", { ew: 0.8, a: 0.82 });
  writeFileSync(join(bad, "results.csv"), "method,label,metric,unit,mean,std,n,mark\new,EW,AV-A,,zero,0.1,5,\n");
  assert.throws(() => readBenchFolder(bad), /bad\/results\.csv: line 2: AV-A of "ew" is not a number/);
  writeFileSync(join(bad, "results.csv"), "method,label,metric,unit,mean,std,n,mark\new,EW,AV-A,,0.8,0.1,5\n");
  assert.throws(() => readBenchFolder(bad), /line 2 has 7 fields, expected 8/);
  writeFileSync(join(bad, "sweep.json"), "{not json");
  assert.throws(() => readBenchFolder(bad), /bad\/sweep\.json: not valid JSON/);
  assert.throws(() => writeAcross([good], join(root, "o")), /at least two bench folders/);
});

test("CLI: bench --report-only --across writes the summary; --across without --report-only or --out is refused", () => {
  const root = tempDir("across-cli");
  const a = benchFolder(root, "a", "kuairand", { ew: 0.7, x: 0.72 });
  const b = benchFolder(root, "b", "census", { ew: 0.8, x: 0.82 });
  const run = (...args: string[]) => spawnSync(process.execPath, ["--import", "tsx", "src/cli.ts", "bench", ...args], { encoding: "utf8", timeout: 120_000 });
  const out = join(root, "s");
  const ok = run("--report-only", "--across", `${a},${b}`, "--out", out);
  assert.equal(ok.status, 0, ok.stderr);
  assert.match(ok.stdout, /# Across datasets/);
  assert.match(readFileSync(join(out, "summary.md"), "utf8"), /\| X \| 1\.000 \| 0\.7200 \| 0\.8200 \|/);
  const noReport = run("--across", `${a},${b}`, "--out", out);
  assert.notEqual(noReport.status, 0);
  assert.match(noReport.stderr, /add --report-only/);
  const noOut = run("--report-only", "--across", `${a},${b}`);
  assert.match(noOut.stderr, /name the summary folder with --out/);
});

test("hostile and degenerate inputs: datasets that all agree give F = ∞ and p = 0 (never NaN); a folder given twice is refused; control characters never reach the summary", () => {
  const root = tempDir("across-edge");
  const a = benchFolder(root, "a", "d\u001b]0;PWNED\u0007one", { ew: 0.7, famo: 0.72, mgda: 0.69 }, ["ok\u001b[2J then"]);
  const b = benchFolder(root, "b", "two", { ew: 0.8, famo: 0.82, mgda: 0.79 });
  const c = benchFolder(root, "c", "three", { ew: 0.6, famo: 0.62, mgda: 0.59 });
  const { summary, markdown } = writeAcross([a, b, c], join(root, "o"));
  assert.equal(summary.friedman!.ff, Infinity);
  assert.equal(summary.friedman!.pFF, 0);
  assert.match(markdown, /finds a difference in mean ranks \(Iman–Davenport F = ∞, every dataset ranks the methods alike, p = 0\.0e\+0; χ²_F = 6\.00\)/);
  for (const f of ["summary.md", "summary.csv", "summary.html"]) {
    const text = readFileSync(join(root, "o", f), "utf8");
    assert.ok(!text.includes("NaN"), `${f} holds NaN`);
    // eslint-disable-next-line no-control-regex
    assert.ok(!/[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/.test(text), `${f} holds a control character`);
  }
  assert.throws(() => writeAcross([a, b, `${b}/.`], join(root, "o2")), /are the same folder; give each dataset's bench folder once/);
  writeFileSync(join(c, "results.csv"), "method,label,metric,unit,mean,std,n,mark\r\new,EW,AV-A,,0x1,0.1,5,\r\n");
  assert.throws(() => readBenchFolder(c), /line 2: AV-A of "ew" is not a number in \[0, 1\]/);
});
