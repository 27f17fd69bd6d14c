/** `bench` end to end on KuaiRand with a tiny budget: parallel jobs, tables, report, and resume without redoing jobs. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { tempDir } from "../data/helpers.ts";

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
  assert.match(readFileSync(join(out, "report.html"), "utf8"), /<svg/);
  const runs = readdirSync(join(out, "runs")).filter((f) => f.endsWith(".json") && !f.endsWith(".diag.jsonl"));
  assert.equal(runs.length, 2);
  assert.equal(existsSync(join(out, "runs", "checkpoints", runs[0]!.replace(/\.json$/, ""))), false, "finished jobs drop their checkpoint");
  const again = bench();
  assert.equal(again.status, 0, again.stderr);
  assert.match(again.stderr, /2 of 2 jobs already finished; running 0/);
  assert.equal(readFileSync(join(out, "results.md"), "utf8"), md, "same results from the cached jobs");
});
