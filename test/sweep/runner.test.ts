/** Reuse of finished bench jobs keyed by content, and the error a failed worker reports. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { recordPath, resultPath, staleReason, workerError, type JobRecord } from "../../src/sweep/runner.ts";
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
