/**
 * `train --out` / `--checkpoint` never destroy good data (src/train/run.ts checkTrainOutputs,
 * src/util/outpath.ts): a FIFO or a device as --out is refused before any work and left as it
 * was; two runs with one --out (other checkpoints) cannot both run; an input is never an
 * output; a checkpoint replaces only a checkpoint; a symlinked --checkpoint stays a symlink and
 * its target holds the checkpoint. Hostile inputs are made here, on the tiny dataset.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { checkTrainOutputs, runTraining, type TrainOptions } from "../../src/train/run.ts";
import { saveCheckpoint } from "../../src/train/checkpoint.ts";
import { tempDir } from "../data/helpers.ts";
import { writeTinyDataset } from "./tiny-data.ts";

const root = tempDir("train-out");
const cacheDir = join(root, "cache");
const spec = writeTinyDataset(join(root, "data"));

function options(over: Partial<TrainOptions> = {}): TrainOptions {
  return { dataset: spec, cacheDir, model: "shared-bottom", modelOptions: { bottomUnits: "4" }, method: "ew", seed: 1, epochs: 1, maxSteps: 4, batchSize: 32, embDim: 2, dropout: 0, patience: 0, ...over };
}

function hashOf(path: string): string {
  return createHash("sha256").update(readFileSync(path)).digest("hex");
}

test("train --out on a FIFO or a character device is refused before any work, and the node is left as it was", async () => {
  const dir = tempDir("train-out-nodes");
  const fifo = join(dir, "r.json");
  assert.equal(spawnSync("mkfifo", [fifo]).status, 0);
  const noCache = join(dir, "never-created");
  await assert.rejects(runTraining(options({ cacheDir: noCache, out: fifo })), new RegExp(`^Error: --out ${fifo} is a FIFO \\(named pipe\\), not a regular file; refusing to replace it`));
  assert.ok(lstatSync(fifo).isFIFO());
  // a character device: made here when allowed (root), else /dev/null itself (which a non-root user cannot replace anyway)
  const made = spawnSync("mknod", [join(dir, "null.json"), "c", "1", "3"]).status === 0;
  const dev = made ? join(dir, "null.json") : "/dev/null";
  await assert.rejects(runTraining(options({ cacheDir: noCache, out: dev })), /--out .* is a character device, not a regular file; refusing to replace it/);
  assert.ok(lstatSync(dev).isCharacterDevice());
  // /dev/null by name: the check alone (no run), so a broken guard can never touch the real one
  assert.throws(() => checkTrainOutputs({ out: "/dev/null", dataset: spec }), /^Error: --out \/dev\/null is a character device/);
  assert.throws(() => checkTrainOutputs({ checkpoint: "/dev/null", dataset: spec }), /--checkpoint \/dev\/null is a character device/);
  assert.equal(existsSync(noCache), false, "nothing was prepared");
  assert.deepEqual(readdirSync(dir).sort(), made ? ["null.json", "r.json"] : ["r.json"], "no sidecar (.model, .diag.jsonl, .lock) was made");
});

test("two runs with one --out and different checkpoints: the second fails fast naming the process that holds --out; the first's result stands", async () => {
  const dir = tempDir("train-out-lock");
  const out = join(dir, "r.json");
  const first = runTraining(options({ out, checkpoint: join(dir, "ck1") })); // takes its locks before its first await
  await assert.rejects(runTraining(options({ out, checkpoint: join(dir, "ck2"), seed: 2 })), new RegExp(`^Error: --out ${out} is in use by process ${process.pid} .*\\(lock file ${out}\\.lock\\)`));
  assert.equal(existsSync(join(dir, "ck2.lock")), false, "the refused run holds nothing");
  const res = await first;
  assert.equal((JSON.parse(readFileSync(out, "utf8")) as { seed: number }).seed, res.seed);
  assert.deepEqual(readdirSync(dir).sort(), ["ck1", "r.diag.jsonl", "r.json", "r.model"], "locks released");
  // the checkpoint is locked too (through another path to it: a symlink)
  symlinkSync(join(dir, "ck1"), join(dir, "ck-link"));
  const again = runTraining(options({ out: join(dir, "a.json"), checkpoint: join(dir, "ck1") }));
  await assert.rejects(runTraining(options({ out: join(dir, "b.json"), checkpoint: join(dir, "ck-link") })), new RegExp(`^Error: checkpoint .*ck-link is in use by process ${process.pid}`));
  await again;
});

test("no output is an input: --out is never the spec, a log file, the checkpoint or inside the prepared dataset; --checkpoint is never the result's artefact", async () => {
  const dir = tempDir("train-out-inputs");
  const before = hashOf(spec);
  await assert.rejects(runTraining(options({ out: spec })), /^Error: --out .*tiny\.json is --dataset .*tiny\.json; an output must not replace an input/);
  const log = join(root, "data", "log.csv");
  const logHash = hashOf(log);
  symlinkSync(log, join(dir, "log-link.json"));
  await assert.rejects(runTraining(options({ out: join(dir, "log-link.json") })), /--out .*log-link\.json \(.*log\.csv\) is the dataset input .*log\.csv/);
  assert.equal(hashOf(spec), before);
  assert.equal(hashOf(log), logHash);
  const ds = readdirSync(cacheDir).find((d) => d.startsWith("tiny-"))!;
  await assert.rejects(runTraining(options({ out: join(cacheDir, ds, "r.json") })), /lies inside a prepared dataset/);
  await assert.rejects(runTraining(options({ out: join(dir, "r.json"), checkpoint: join(dir, "r.model") })), /--checkpoint .*r\.model is the model artefact of --out .*r\.model/);
  await assert.rejects(runTraining(options({ out: join(dir, "ck", "r.json"), checkpoint: join(dir, "ck") })), /--checkpoint .*ck contains --out .*r\.json/);
  assert.deepEqual(readdirSync(dir), ["log-link.json"], "nothing was written");
});

test("a checkpoint replaces only a checkpoint, a result's artefact only an artefact; foreign folders are left as they were", async () => {
  const dir = tempDir("train-out-kinds");
  mkdirSync(join(dir, "docs"));
  writeFileSync(join(dir, "docs", "notes.txt"), "keep me");
  await assert.rejects(runTraining(options({ checkpoint: join(dir, "docs") })), /--checkpoint .*docs exists and is a folder that is not a training checkpoint \(nor empty\); refusing to replace it/);
  // an artefact given as --checkpoint (train would have resumed nothing and replaced it)
  saveCheckpoint(join(dir, "old.model"), { json: { artifact: {} }, tensors: { params: { w: new Float32Array(1) } } });
  const art = hashOf(join(dir, "old.model", "tensors.bin"));
  await assert.rejects(runTraining(options({ checkpoint: join(dir, "old.model") })), /--checkpoint .*old\.model exists and is a run's model artefact, not a training checkpoint; refusing to replace it/);
  // --out whose .model sibling is a checkpoint
  saveCheckpoint(join(dir, "x.model"), { json: { fingerprint: {} }, tensors: { model: { w: new Float32Array(1) } } });
  await assert.rejects(runTraining(options({ out: join(dir, "x.json") })), /the model artefact of --out .*x\.model exists and is a training checkpoint, not a run's model artefact/);
  assert.equal(readFileSync(join(dir, "docs", "notes.txt"), "utf8"), "keep me");
  assert.deepEqual(readdirSync(join(dir, "docs")), ["notes.txt"]);
  assert.equal(hashOf(join(dir, "old.model", "tensors.bin")), art);
  assert.ok(existsSync(join(dir, "x.model", "state.json")));
});

test("a symlinked --checkpoint stays a symlink: its target holds the checkpoint, and the run resumes through the link", async () => {
  const dir = tempDir("train-out-cklink");
  mkdirSync(join(dir, "store"));
  symlinkSync(join(dir, "store", "ck"), join(dir, "ck")); // dangling until the first checkpoint
  await assert.rejects(runTraining(options({ checkpoint: join(dir, "ck"), interruptAfter: 2 })), /interrupted/);
  assert.ok(lstatSync(join(dir, "ck")).isSymbolicLink(), "the link is kept");
  assert.equal(readlinkSync(join(dir, "ck")), join(dir, "store", "ck"));
  assert.ok(existsSync(join(dir, "store", "ck", "state.json")), "the target holds the checkpoint");
  const res = await runTraining(options({ checkpoint: join(dir, "ck"), out: join(dir, "r.json") }));
  assert.equal(res.steps, 4, "resumed and finished");
  assert.ok(lstatSync(join(dir, "ck")).isSymbolicLink());
  assert.deepEqual(readdirSync(join(dir, "store")), ["ck"], "no temporary folder, no lock left beside the target");
  assert.deepEqual(readdirSync(dir).sort(), ["ck", "r.diag.jsonl", "r.json", "r.model", "store"]);
});

test("a copy of the data already prepared elsewhere (a warm cache, found by content hash) does not hide this spec's own files: --out onto them is refused", async () => {
  const dir = tempDir("train-out-copy");
  const copySpec = writeTinyDataset(join(dir, "copy")); // the same content in another folder
  const copyLog = join(dir, "copy", "log.csv");
  const before = hashOf(copyLog);
  await runTraining(options({ out: join(dir, "warm.json") })); // the cache now holds this content, recorded with root/data's paths
  await assert.rejects(runTraining(options({ dataset: copySpec, out: copyLog })), /--out .*copy\/log\.csv is the dataset input .*copy\/log\.csv; an output must not replace an input/);
  symlinkSync(copyLog, join(dir, "x.diag.jsonl"));
  await assert.rejects(runTraining(options({ dataset: copySpec, out: join(dir, "x.json") })), /the diagnostics of --out .*x\.diag\.jsonl \(.*copy\/log\.csv\) is the dataset input/);
  assert.equal(hashOf(copyLog), before, "the copy's log is untouched");
  assert.ok(!existsSync(join(dir, "x.json")));
});
