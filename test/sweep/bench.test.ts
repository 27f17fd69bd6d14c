/** `bench` end to end on KuaiRand with a tiny budget: parallel jobs, tables, report, and resume without redoing jobs. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { existsSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { tempDir } from "../data/helpers.ts";
import { writeTinyDataset } from "../train/tiny-data.ts";
import { processAlive } from "../../src/util/lock.ts";

const cache = tempDir("bench-cache");
const out = join(tempDir("bench-out"), "sweep");

function bench() {
  const args = ["--import", "tsx", "src/cli.ts", "bench", "--dataset", "kuairand", "--model", "shared-bottom",
    "--methods", "ew,gradcraft", "--seeds", "1", "--jobs", "2", "--out", out, "--model-opt", "bottomUnits=8",
    "--set", "max-steps=3", "--set", "batch-size=1024", "--set", "emb-dim=4", "--set", "epochs=1",
    "--set", "patience=0", "--set", `cache-dir=${cache}`];
  return spawnSync(process.execPath, args, { encoding: "utf8", timeout: 300_000 });
}

test("bench runs every job, writes the paper-layout table, CSV and HTML report, and a re-run reuses finished jobs", () => {
  const r = bench();
  assert.equal(r.status, 0, r.stderr);
  const md = readFileSync(join(out, "results.md"), "utf8");
  assert.match(md, /^\| Metric \| EW \| GradCraft \|$/m);
  for (const t of ["ev", "lv", "cv", "like", "follow", "forward"]) assert.match(md, new RegExp(`^\\| ${t} AUC \\| `, "m"));
  assert.match(md, /^\| AV-A \|/m);
  assert.match(md, /^\| RI-G \|/m);
  const csv = readFileSync(join(out, "results.csv"), "utf8");
  assert.match(csv, /^method,label,metric,unit,mean,std,n,mark$/m);
  assert.match(readFileSync(join(out, "report.html"), "utf8"), /<div class="vl" data-spec="c\d+"/, "charts (drawn by the inlined Vega-Lite)");
  const runs = readdirSync(join(out, "runs")).filter((f) => f.endsWith(".json") && !f.endsWith(".job.json"));
  assert.equal(runs.length, 2);
  // each finished job has its record (dataset content hash + options): the key for reuse
  for (const r of runs) assert.ok(existsSync(join(out, "runs", r.replace(/\.json$/, ".job.json"))), r);
  assert.equal(existsSync(join(out, "runs", "checkpoints", runs[0]!.replace(/\.json$/, ""))), false, "finished jobs drop their checkpoint");
  const again = bench();
  assert.equal(again.status, 0, again.stderr);
  assert.match(again.stderr, /2 of 2 jobs already finished; running 0/);
  assert.equal(readFileSync(join(out, "results.md"), "utf8"), md, "same results from the cached jobs");
});

// ---- on a tiny CSV dataset (seconds): reuse keyed by content, real worker errors, signals, outputs ----

const tinyRoot = tempDir("bench-tiny");
const tinySpec = writeTinyDataset(join(tinyRoot, "data"), { seed: 1 });
const tinyCache = join(tinyRoot, "cache");

function tinyArgs(out: string, ...extra: string[]): string[] {
  return ["--import", "tsx", "src/cli.ts", "bench", "--dataset", tinySpec, "--model", "shared-bottom", "--methods", "ew", "--seeds", "1",
    "--jobs", "1", "--out", out, "--model-opt", "bottomUnits=4", "--set", "max-steps=3", "--set", "batch-size=32", "--set", "emb-dim=2",
    "--set", "epochs=1", "--set", "patience=0", "--set", `cache-dir=${tinyCache}`, ...extra];
}

function tinyBench(out: string, ...extra: string[]) {
  return spawnSync(process.execPath, tinyArgs(out, ...extra), { encoding: "utf8", timeout: 120_000 });
}

test("a finished job is reused only on the same dataset content: re-preparing from other data re-runs it", () => {
  const out = join(tinyRoot, "reuse");
  const a = tinyBench(out);
  assert.equal(a.status, 0, a.stderr);
  const first = readFileSync(join(out, "results.md"), "utf8");
  const again = tinyBench(out);
  assert.equal(again.status, 0, again.stderr);
  assert.match(again.stderr, /1 of 1 jobs already finished; running 0/);
  // same spec path and name, different rows: a new content hash
  writeTinyDataset(join(tinyRoot, "data"), { seed: 7 });
  const changed = tinyBench(out);
  assert.equal(changed.status, 0, changed.stderr);
  assert.doesNotMatch(changed.stderr, /already finished/);
  assert.match(changed.stderr, /ew-s1-\w+: finished before, running again: dataset changed/);
  assert.notEqual(readFileSync(join(out, "results.md"), "utf8"), first, "the table comes from the new data");
  const rec = JSON.parse(readFileSync(join(out, "runs", readdirSync(join(out, "runs")).find((f) => f.endsWith(".job.json"))!), "utf8")) as { datasetHash: string };
  const res = JSON.parse(readFileSync(join(out, "runs", readdirSync(join(out, "runs")).find((f) => /^ew-s1-\w+\.json$/.test(f))!), "utf8")) as { config: { datasetHash: string } };
  assert.equal(rec.datasetHash, res.config.datasetHash);
  writeTinyDataset(join(tinyRoot, "data"), { seed: 1 });
});

test("a failed job shows the worker's own error (not the CLI help) and the sweep exits non-zero", () => {
  const out = join(tinyRoot, "fail");
  const r = tinyBench(out, "--set", "lr=1e9", "--set", "diag-every=1");
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /1 sweep job\(s\) failed:\new-s1-\w+: train exited with code 1:\n {4}mtlcraft: training diverged at step \d+ \(epoch 1\): task "(click|like)"/);
  assert.doesNotMatch(r.stderr, /Usage:|Options:/);
  assert.match(r.stderr, /worker output: .*ew-s1-\w+\.stderr\.log/);
  assert.equal(existsSync(join(out, "results.md")), false);
});

test("bench --out that cannot be written fails at once", () => {
  const file = join(tinyRoot, "plain");
  writeFileSync(file, "x");
  const r = tinyBench(join(file, "sweep"));
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /bench --out .*plain\/sweep is not writable/);
  assert.doesNotMatch(r.stderr, /final runs/);
});

for (const signal of ["SIGTERM", "SIGKILL"] as const) test(`killing bench (${signal}) also ends its workers`, async () => {
  // SIGTERM: bench's handler ends its workers' process groups; SIGKILL leaves no handler to run, so
  // each worker exits when its stdin (a pipe from bench) closes
  const out = join(tinyRoot, `kill-${signal}`);
  // long jobs: thousands of epochs of the tiny data
  const long = tinyArgs(out, "--methods", "ew,pcgrad", "--jobs", "2", "--set", "epochs=100000", "--set", "max-steps=0");
  const child = spawn(process.execPath, long, { stdio: "ignore" });
  const ckDir = join(out, "runs", "checkpoints");
  const locks = () => (existsSync(ckDir) ? readdirSync(ckDir).filter((f) => f.endsWith(".lock")) : []);
  const t0 = Date.now();
  while (locks().length < 2 && Date.now() - t0 < 60_000) await new Promise((r) => setTimeout(r, 200));
  const pids = locks().map((f) => (JSON.parse(readFileSync(join(ckDir, f), "utf8")) as { pid: number }).pid);
  assert.equal(pids.length, 2, "both workers started");
  for (const p of pids) assert.ok(processAlive(p), `worker ${p} running`);
  child.kill(signal);
  const code = await new Promise<number | null>((r) => child.once("exit", (c, sig) => r(c ?? (sig ? -1 : null))));
  assert.notEqual(code, 0);
  const t1 = Date.now();
  while (pids.some(processAlive) && Date.now() - t1 < 10_000) await new Promise((r) => setTimeout(r, 100));
  for (const p of pids) assert.equal(processAlive(p), false, `worker ${p} was left running`);
});

test("bench with a grid: the selection is reported (results.md, selection.csv, report) and an edge choice is flagged", () => {
  const out = join(tinyRoot, "grid");
  const r = tinyBench(out, "--grid", "lr=0.0001,0.001,0.01");
  assert.equal(r.status, 0, r.stderr);
  const md = readFileSync(join(out, "results.md"), "utf8");
  assert.match(md, /^## Grid selection$/m);
  const row = md.split("\n").find((l) => l.startsWith("| EW | 3 | lr "))!;
  assert.ok(row, md);
  // the chosen lr is the one with the highest validation AUC among the three selection runs
  const csv = readFileSync(join(out, "selection.csv"), "utf8").trimEnd().split("\n").slice(1).map((l) => l.split(","));
  assert.equal(csv.length, 3);
  const best = csv.reduce((a, b) => (Number(b[3]) > Number(a[3]) ? b : a));
  assert.deepEqual(csv.filter((c) => c[6] === "true"), [best]);
  const lr = (JSON.parse(best[2]!.slice(1, -1).replace(/""/g, '"')) as { lr: number }).lr;
  assert.ok([0.0001, 0.001, 0.01].includes(lr), String(lr));
  // the middle value is interior; either end is an edge, said in the table and the log
  // 3 steps, less than one epoch: no epoch to name, and no last-epoch flag
  assert.match(row, /^\| EW \| 3 \| lr [\d.e-]+ \| 0\.\d{4} \| - \| /);
  if (lr === 0.001) assert.match(row, /\| - \|$/);
  else {
    assert.match(row, new RegExp(`\\| lr ${lr}: ${lr === 0.01 ? "upper" : "lower"} edge \\|$`));
    assert.match(r.stderr, new RegExp(`check: lr ${lr}: ${lr === 0.01 ? "upper" : "lower"} edge`));
  }
  assert.match(readFileSync(join(out, "report.html"), "utf8"), /<section id="selection"><h2>Grid selection<\/h2>/);
});
