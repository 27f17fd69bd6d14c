/**
 * `bench` on a dataset whose `follow` labels are all 0 on test (issue #19, class 7): every run
 * completes, bench prints the runs' warning, the follow cells read n/a, AV-A/AV-G equal the mean
 * over click and like (computed here from the run files), and no "NaN" appears in results.md,
 * results.csv, report.html or quality.json.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { tempDir } from "../data/helpers.ts";
import { writeOneClassDataset } from "../train/one-class-data.ts";
import type { RunResult } from "../../src/report/types.ts";
import { chartLibraryScripts } from "../../src/report/vendor.ts";

test("bench with a task all 0 on test: warning per run, n/a cells, AV over the defined tasks with a note, no NaN in any output", () => {
  const root = tempDir("bench-undefined");
  const spec = writeOneClassDataset(join(root, "data"), "test");
  const out = join(root, "sweep");
  const args = ["--import", "tsx", "src/cli.ts", "bench", "--dataset", spec, "--model", "shared-bottom", "--methods", "single,ew", "--seeds", "2",
    "--jobs", "2", "--out", out, "--model-opt", "bottomUnits=4", "--set", "max-steps=4", "--set", "batch-size=32", "--set", "emb-dim=2",
    "--set", "epochs=1", "--set", "patience=0", "--set", `cache-dir=${join(root, "cache")}`];
  const r = spawnSync(process.execPath, args, { encoding: "utf8", timeout: 240_000 });
  assert.equal(r.status, 0, r.stderr);
  assert.ok(
    r.stderr.includes('warning: task "follow": the test split has only one class (all 0): its test AUC and GAUC are undefined; it is left out of AV-A/AV-G and RI-A/RI-G (all 4 runs)'),
    r.stderr,
  );
  const md = readFileSync(join(out, "results.md"), "utf8");
  assert.match(md, /^\| follow AUC \| n\/a \| n\/a \|$/m);
  assert.match(md, /^\| follow GAUC \| n\/a \| n\/a \|$/m);
  assert.match(md, /^Note: AV-A\/AV-G and RI-A\/RI-G over 2 of 3 tasks: follow undefined on test \(n\/a\)$/m);
  // AV-A / AV-G independently, from the run files: per run the mean of click and like, then the mean over seeds
  const runsDir = join(out, "runs");
  const runs = readdirSync(runsDir)
    .filter((f) => f.endsWith(".json") && !f.endsWith(".job.json"))
    .map((f) => JSON.parse(readFileSync(join(runsDir, f), "utf8")) as RunResult);
  assert.equal(runs.length, 4);
  const cell = (metric: string) => {
    const line = md.split("\n").find((l) => l.startsWith(`| ${metric} |`));
    assert.ok(line, metric);
    return line.split("|").slice(2, -1).map((c) => Number(/\d+\.\d+/.exec(c)![0]));
  };
  ["single", "ew"].forEach((method, col) => {
    const mine = runs.filter((x) => x.method === method);
    assert.equal(mine.length, 2);
    for (const x of mine) assert.equal(x.test.auc[2], null, "follow's test AUC is written as null");
    const av = (k: "auc" | "gauc") => mine.reduce((s, x) => s + (x.test[k][0]! + x.test[k][1]!) / 2, 0) / mine.length;
    assert.equal(cell("AV-A")[col], Number(av("auc").toFixed(4)), `${method} AV-A`);
    assert.equal(cell("AV-G")[col], Number(av("gauc").toFixed(4)), `${method} AV-G`);
  });
  const csv = readFileSync(join(out, "results.csv"), "utf8");
  assert.match(csv, /^ew,EW,follow AUC,,,,0,$/m);
  const html = readFileSync(join(out, "report.html"), "utf8");
  assert.match(html, /<tr><th scope="row">follow AUC<\/th><td>n\/a<\/td><td>n\/a<\/td><\/tr>/);
  assert.match(html, /Note: AV-A\/AV-G and RI-A\/RI-G over 2 of 3 tasks: follow undefined on test \(n\/a\)/);
  for (const f of ["results.md", "results.csv", "report.html", "quality.json", "differences.csv"]) {
    // report.html without the inlined charting library (whose code has its own NaN and Infinity)
    const text = readFileSync(join(out, f), "utf8").replace(chartLibraryScripts(), "");
    assert.ok(!/NaN|Infinity/.test(text), `${f} holds NaN`);
  }
});

test("conflict bench's AV-A of a run is the mean over its defined tasks: a null (one-class) AUC counts neither as 0 nor as NaN", async () => {
  const { avA } = await import("../../src/sweep/conflict.ts");
  const run = (auc: (number | null)[]) => ({ test: { auc } }) as unknown as RunResult;
  assert.equal(avA(run([0.6, null, 0.8])), (0.6 + 0.8) / 2);
  assert.equal(avA(run([0.6, NaN, 0.7])), (0.6 + 0.7) / 2);
  assert.ok(Number.isNaN(avA(run([null, null]))), "no defined task: NaN (shown as a missing value), not 0");
});
