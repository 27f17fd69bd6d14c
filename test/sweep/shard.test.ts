/** `bench --shard i/n` and `bench --report-only`: machines sharing an output folder complete a sweep between them. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { parseShard, shardJobs, withMissing } from "../../src/sweep/modes.ts";
import { finalJobs, selectionJobs, type SweepConfig } from "../../src/sweep/plan.ts";
import { buildComparisonTable, toMarkdown } from "../../src/report/table.ts";
import { tempDir } from "../data/helpers.ts";
import { writeTinyDataset } from "../train/tiny-data.ts";
import { withoutMeasuredCost } from "./measured.ts";

test("--shard i/n: parsed strictly; the shards 1..n partition the job list exactly, the same way every time", () => {
  assert.deepEqual(parseShard("2/3"), { index: 2, count: 3 });
  for (const bad of ["0/3", "4/3", "1/0", "2", "a/b", "1/3/4", "-1/3"]) assert.throws(() => parseShard(bad), /--shard/, bad);
  const cfg: SweepConfig = {
    dataset: "kuairand", model: "ple", methods: ["single", "lr", "ew", "pcgrad", "gradcraft"], seeds: [1, 2, 3], train: {},
    grid: { tau: [0.1, 0.3] }, gridMethods: { tau: ["gradcraft"] }, jobs: 1, out: "x",
  };
  for (const jobs of [finalJobs(cfg, {}), selectionJobs(cfg)]) {
    for (const n of [1, 2, 3, 4, 7, 20]) {
      const parts = Array.from({ length: n }, (_, i) => shardJobs(jobs, { index: i + 1, count: n }).map((j) => j.id));
      const union = parts.flat();
      assert.equal(union.length, jobs.length, `n=${n}: no job twice`);
      assert.deepEqual(new Set(union), new Set(jobs.map((j) => j.id)), `n=${n}: every job once`);
      // deterministic: the same config plans the same list, hence the same shards
      const again = Array.from({ length: n }, (_, i) => shardJobs(finalJobs(cfg, {}), { index: i + 1, count: n }).map((j) => j.id));
      if (jobs.length === finalJobs(cfg, {}).length) assert.deepEqual(again, parts);
      // balanced: sizes differ by at most one
      const sizes = parts.map((p) => p.length);
      assert.ok(Math.max(...sizes) - Math.min(...sizes) <= 1, `n=${n}: ${sizes}`);
    }
  }
});

test("a table with missing results: every planned column, 'missing' cells, and (k/n) where runs are missing", () => {
  const mk = (method: string, label: string, vals: number[]) => ({
    method,
    label,
    perTask: [{ task: "a", auc: vals, gauc: vals }, { task: "b", auc: vals, gauc: vals }],
  });
  const planned = [
    { method: "single", label: "Single", runs: 2, present: 2 },
    { method: "ew", label: "EW", runs: 2, present: 1 },
    { method: "pcgrad", label: "PCGrad", runs: 2, present: 0 },
  ];
  const t = withMissing(buildComparisonTable([mk("single", "Single", [0.6, 0.62]), mk("ew", "EW", [0.65])], { baseline: "single" }), planned, "single");
  const md = toMarkdown(t);
  assert.match(md, /^\| Metric \| Single \| EW \| PCGrad \|$/m);
  assert.match(md, /^\| a AUC \| <u>0\.6100 ± 0\.0141<\/u> \| \*\*0\.6500 \(1\/2\)\*\* \| missing \|$/m);
  assert.match(md, /^\| RI-A \| - \| \*\*\S+% \(1\/2\)\*\* \| missing \|$/m);
  // no baseline results: its column and every RI cell are missing
  const nb = toMarkdown(withMissing(buildComparisonTable([mk("ew", "EW", [0.65, 0.66])], { baseline: "ew" }), planned.map((p) => ({ ...p, present: p.method === "ew" ? 2 : 0 })), "single"));
  assert.match(nb, /^\| a AUC \| missing \| \*\*0\.6550 ± 0\.0071\*\* \| missing \|$/m);
  assert.match(nb, /^\| RI-A \| missing \| missing \| missing \|$/m);
});

// ---- end to end on the tiny dataset ----

const root = tempDir("shard");
const spec = writeTinyDataset(join(root, "data"), { seed: 1 });

function bench(out: string, ...extra: string[]) {
  const args = ["--import", "tsx", "src/cli.ts", "bench", "--dataset", spec, "--model", "shared-bottom", "--methods", "single,ew,pcgrad", "--seeds", "2",
    "--jobs", "2", "--out", out, "--model-opt", "bottomUnits=4", "--set", "max-steps=3", "--set", "batch-size=32", "--set", "emb-dim=2",
    "--set", "epochs=1", "--set", "patience=0", "--set", `cache-dir=${join(root, "cache")}`, ...extra];
  return spawnSync(process.execPath, args, { encoding: "utf8", timeout: 180_000 });
}

const resultIds = (out: string) => readdirSync(join(out, "runs")).filter((f) => f.endsWith(".job.json")).map((f) => f.replace(/\.job\.json$/, "")).sort();

test("shards 1/3, 2/3 and 3/3 into one folder run exactly the job list; --report-only over them equals a single run's table", { timeout: 300_000 }, () => {
  const single = join(root, "single");
  const s = bench(single);
  assert.equal(s.status, 0, s.stderr);

  const shared = join(root, "shared");
  const seen: string[][] = [];
  for (const i of [1, 2, 3]) {
    const before = readdirSafe(shared);
    const r = bench(shared, "--shard", `${i}/3`);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, new RegExp(`shard ${i}/3: 2 of 6 jobs`));
    assert.doesNotMatch(r.stderr, /already finished/, "a shard never runs or re-runs another shard's jobs");
    seen.push(resultIds(shared).filter((id) => !before.includes(id)));
    if (i === 1) {
      // after one shard: the report marks the other shards' cells as missing
      const rep = bench(shared, "--report-only");
      assert.equal(rep.status, 0, rep.stderr);
      assert.match(rep.stderr, /4 of 6 jobs have no result yet/);
      const md = readFileSync(join(shared, "results.md"), "utf8");
      assert.match(md, /^\| Metric \| Single \| EW \| PCGrad \|$/m);
      assert.match(md, /\(1\/2\)/);
      assert.match(readFileSync(join(shared, "report.html"), "utf8"), /2 of 6 jobs \(missing: /);
    }
  }
  // every job ran in exactly one shard, and the union is the single run's job list
  assert.deepEqual(seen.map((x) => x.length), [2, 2, 2]);
  assert.deepEqual(seen.flat().sort(), resultIds(single));
  const rep = bench(shared, "--report-only");
  assert.equal(rep.status, 0, rep.stderr);
  assert.doesNotMatch(rep.stderr, /no result yet/);
  // Equal but for the measured cost per step (timed on whichever process ran each job), which both state.
  const mdShared = readFileSync(join(shared, "results.md"), "utf8");
  const mdSingle = readFileSync(join(single, "results.md"), "utf8");
  assert.match(mdShared, /^- Cost per training step /m);
  assert.match(mdSingle, /^- Cost per training step /m);
  assert.equal(withoutMeasuredCost(mdShared), withoutMeasuredCost(mdSingle));
  assert.equal(readFileSync(join(shared, "results.csv"), "utf8"), readFileSync(join(single, "results.csv"), "utf8"));
});

function readdirSafe(out: string): string[] {
  try {
    return resultIds(out);
  } catch {
    return [];
  }
}

test("with a grid, a shard stops until the other shards' selection jobs are done, then completes", { timeout: 300_000 }, () => {
  const out = join(root, "grid");
  const grid = ["--methods", "ew", "--seeds", "2", "--grid", "lr=0.001,0.01"];
  const first = bench(out, ...grid, "--shard", "1/2");
  assert.notEqual(first.status, 0);
  assert.match(first.stderr, /grid selection is not complete: 1 of 2 selection results are missing \(other shards' jobs\) for ew; run this shard again/);
  const second = bench(out, ...grid, "--shard", "2/2");
  assert.equal(second.status, 0, second.stderr);
  const again = bench(out, ...grid, "--shard", "1/2");
  assert.equal(again.status, 0, again.stderr);
  const rep = bench(out, ...grid, "--report-only");
  assert.equal(rep.status, 0, rep.stderr);
  assert.doesNotMatch(rep.stderr, /no result yet/);
  assert.match(readFileSync(join(out, "results.md"), "utf8"), /^\| Metric \| EW \|$/m);
  assert.doesNotMatch(readFileSync(join(out, "results.md"), "utf8"), /missing|\(1\/2\)/);
});
