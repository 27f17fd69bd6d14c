/** Reuse of finished bench jobs keyed by content, the error a failed worker reports, and how job options reach it. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { readResult, recordPath, resultPath, runOne, staleReason, toArgs, workerError, type JobRecord } from "../../src/sweep/runner.ts";
import { writeTinyDataset } from "../train/tiny-data.ts";
import type { Job } from "../../src/sweep/plan.ts";
import { modelArtifactPath } from "../../src/train/artifact.ts";
import { tempDir } from "../data/helpers.ts";

const job: Job = { id: "ew-s1-abc", method: "ew", seed: 1, options: { dataset: "d", "batch-size": 64, "model-opt": ["a=1"], seed: 1 }, point: {}, phase: "final" };

function finish(dir: string, rec: Partial<JobRecord>, resultHash: string | undefined): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(resultPath(dir, job), JSON.stringify({ config: resultHash === undefined ? {} : { datasetHash: resultHash } }));
  writeFileSync(recordPath(dir, job), JSON.stringify({ id: job.id, method: "ew", seed: 1, options: job.options, datasetHash: "H1", ...rec }));
  mkdirSync(modelArtifactPath(resultPath(dir, job)), { recursive: true });
}

test("a finished job is reused only with the same dataset content hash and the same full configuration", () => {
  const dir = tempDir("runner");
  assert.equal(staleReason(dir, job, "H1"), "not run yet");
  finish(dir, {}, "H1");
  assert.equal(staleReason(dir, job, "H1"), null);
  // key order never matters
  finish(dir, { options: { seed: 1, "model-opt": ["a=1"], "batch-size": 64, dataset: "d" } }, "H1");
  assert.equal(staleReason(dir, job, "H1"), null);
  // the dataset was re-prepared from other data
  assert.match(staleReason(dir, job, "H2")!, /dataset changed \(H1… → H2…\)/);
  // configuration recorded differently (e.g. an older run with other options under a colliding id)
  finish(dir, { options: { ...job.options, "batch-size": 32 } }, "H1");
  assert.equal(staleReason(dir, job, "H1"), "job configuration changed");
  finish(dir, { options: { ...job.options, "model-opt": ["a=2"] } }, "H1");
  assert.equal(staleReason(dir, job, "H1"), "job configuration changed");
  // the result itself says it was trained on other data
  finish(dir, {}, "H0");
  assert.equal(staleReason(dir, job, "H1"), "result was computed on other data");
  finish(dir, {}, undefined);
  assert.equal(staleReason(dir, job, "H1"), "result was computed on other data");
  // results from before records existed are not trusted
  writeFileSync(recordPath(dir, job), "{");
  assert.match(staleReason(dir, job, "H1")!, /no job record/);
  // a result without its model artefact (the best parameters) is run again
  finish(dir, {}, "H1");
  rmSync(modelArtifactPath(resultPath(dir, job)), { recursive: true });
  assert.match(staleReason(dir, job, "H1")!, /no model artefact/);
});

test("a failed worker's own error is reported, not the help text that follows a usage error", () => {
  const help = ["Usage: mtlcraft train [options]", "", "Options:", "  --dataset <name>   dataset", "  --lr <x>   learning rate", "  -h, --help   display help"].join("\n");
  const usage = `using cached dataset x\nerror: unknown option '--bogus'\n${help}\n`;
  assert.equal(workerError(usage), "error: unknown option '--bogus'");
  const hint = "using cached dataset x\nerror: option '--epochs <n>' argument '0' is invalid. --epochs must be >= 1\n(add --help for usage)\n";
  assert.equal(workerError(hint), "error: option '--epochs <n>' argument '0' is invalid. --epochs must be >= 1");
  const multi = "resumed\nmtlcraft: checkpoint c was written by a different run; refusing to resume. Differences (checkpoint → now):\n  seed: 1 → 2\nUse another --checkpoint folder\n";
  assert.match(workerError(multi), /^mtlcraft: checkpoint c was written by a different run.*\n {4} {2}seed: 1 → 2\n {4}Use another/s);
  // no recognisable error line: the last lines
  assert.equal(workerError("a\nb\nc\nd\ne\nf\ng"), ["c", "d", "e", "f", "g"].join("\n    "));
});

test("toArgs gives each option as one --key=value argument: a value can never become a flag; lists only for key=value options, booleans only for boolean fields", () => {
  assert.deepEqual(toArgs({ lr: 0.001, epochs: 2, scope: "shared", "model-opt": ["a=1", "b=2"], "method-opt": "tau=0.5", dataset: "/d/x.json" }), [
    "--lr=0.001", "--epochs=2", "--scope=shared", "--model-opt=a=1", "--model-opt=b=2", "--method-opt=tau=0.5", "--dataset=/d/x.json",
  ]);
  assert.deepEqual(toArgs({ lr: "--plugin=/tmp/x.mjs" }), ["--lr=--plugin=/tmp/x.mjs"]);
  assert.throws(() => toArgs({ method: true }), /job option method is not a true\/false option \(got true\)/);
  assert.throws(() => toArgs({ epochs: false }), /job option epochs is not a true\/false option \(got false\)/);
  assert.throws(() => toArgs({ lr: ["1", "2"] }), /a list is only for key=value options/);
  assert.throws(() => toArgs({ bogus: 1 }), /unknown train option "bogus"/);
});

test("a train process started from job options with flag text in a value reads it as that option's value: the named plugin never loads", { timeout: 60_000 }, async () => {
  const dir = tempDir("runner-flag");
  const spec = writeTinyDataset(join(dir, "data"));
  const marker = join(dir, "MARKER");
  const plugin = join(dir, "evil.mjs");
  writeFileSync(plugin, `import { writeFileSync } from "node:fs";\nwriteFileSync(${JSON.stringify(marker)}, "ran");\n`);
  const evil: Job = { id: "ew-s1-flag", method: "ew", seed: 1, options: { dataset: spec, "cache-dir": join(dir, "cache"), model: "shared-bottom", "model-opt": ["bottomUnits=4", `x=1 --plugin=${plugin}`], lr: `--plugin=${plugin}`, epochs: 1, "max-steps": 2, "batch-size": 32 }, point: {}, phase: "final" };
  await assert.rejects(runOne(evil, join(dir, "runs"), { cwd: dir, plugins: [] }, () => {}), /--lr must be a number, got "--plugin=/);
  assert.equal(existsSync(marker), false, "the plugin's top-level code ran");
  // the example: a bare boolean for a string option (it used to swallow the next argument)
  const { lr: _lr, ...rest } = evil.options;
  const bare = { ...evil, id: "ew-s1-bare", options: { method: true, lr: `--plugin=${plugin}`, ...rest, "model-opt": ["bottomUnits=4"] } };
  await assert.rejects(runOne(bare, join(dir, "runs"), { cwd: dir, plugins: [] }, () => {}), /job option method is not a true\/false option/);
  assert.equal(existsSync(marker), false, "the plugin's top-level code ran");
  await assert.rejects(runOne({ ...evil, id: "../escape" }, join(dir, "runs"), { cwd: dir, plugins: [] }, () => {}), /bad job id/);
});

test("readResult: names and warnings from a result file reach the terminal without control characters", () => {
  const dir = tempDir("runner-ctl");
  const p = join(dir, "r.json");
  writeFileSync(p, JSON.stringify({ version: 1, dataset: "d\u001b]0;x\u0007", model: "m", method: "ew", methodLabel: "EW\u001b[2J", tasks: ["click\u0085", "like"], warnings: ["w\u001b[31mred"] }));
  const r = readResult(p);
  assert.equal(r.dataset, "d?]0;x?");
  assert.equal(r.methodLabel, "EW?[2J");
  assert.deepEqual(r.tasks, ["click?", "like"]);
  assert.deepEqual(r.warnings, ["w?[31mred"]);
});
