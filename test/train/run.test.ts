/**
 * runTraining on a tiny CSV dataset: validation of every option (with suggestions),
 * seeds in [0, 2^32), outputs checked writable before any work, checkpoint locks,
 * and checkpoint fingerprints (dataset content hash, model, method, seed, batch size).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { prepareDataset } from "../../src/data/index.ts";
import { runTraining, type TrainOptions } from "../../src/train/run.ts";
import { tempDir } from "../data/helpers.ts";
import { writeTinyDataset } from "./tiny-data.ts";

const root = tempDir("run");
const cacheDir = join(root, "cache");
const specA = writeTinyDataset(join(root, "a"), { seed: 1 });
const specB = writeTinyDataset(join(root, "b"), { seed: 2 }); // same name and layout, other content

function options(over: Partial<TrainOptions> = {}): TrainOptions {
  return {
    dataset: specA,
    cacheDir,
    model: "shared-bottom",
    modelOptions: { bottomUnits: "4" },
    method: "gradcraft",
    seed: 1,
    epochs: 1,
    maxSteps: 4,
    batchSize: 32,
    lr: 0.01,
    l2: 0,
    embDim: 2,
    dropout: 0,
    scope: "shared",
    patience: 0,
    ...over,
  };
}

test("options are validated before any work: unknown keys with a suggestion, types, seeds in [0, 2^32)", async () => {
  const cases: [Partial<TrainOptions> & Record<string, unknown>, RegExp][] = [
    [{ bathSize: 8 }, /train options: unknown option "bathSize"; did you mean "batchSize"\?/],
    [{ seed: 2 ** 32 }, /train option seed must be < 4294967296, got 4294967296/],
    [{ seed: 2 ** 32 + 1 }, /train option seed must be < 4294967296/],
    [{ seed: -1 }, /train option seed must be >= 0/],
    [{ seed: 1.5 }, /train option seed must be an integer/],
    [{ epochs: "3" as unknown as number }, /train option epochs must be an integer, got "3"/],
    [{ scope: "every" as never }, /train option scope must be one of shared, shared-dense, all/],
    [{ modelOptions: { bottomunits: "4" } }, /model shared-bottom: unknown option "bottomunits"; did you mean "bottomUnits"\?/],
    [{ model: "ple", modelOptions: { expertunits: "16" } }, /model ple: unknown option "expertunits"; did you mean "expertUnits"\?/],
    [{ modelOptions: { expertUnits: "16" } }, /model shared-bottom: unknown option "expertUnits"/],
    [{ modelOptions: { embDim: "8" } }, /model option embDim is set by the train option --emb-dim/],
    [{ methodOptions: { tua: "0.2" } }, /unknown option "tua".*did you mean "tau"\?/],
  ];
  const noCache = join(root, "never-created");
  for (const [over, re] of cases) {
    await assert.rejects(runTraining({ ...options(), cacheDir: noCache, ...over } as TrainOptions), re, JSON.stringify(over));
  }
  assert.equal(existsSync(noCache), false, "nothing was prepared for invalid options");
});

test("an unwritable --out or --checkpoint fails at once, before the dataset is prepared", async () => {
  const file = join(root, "plain-file");
  writeFileSync(file, "x");
  const noCache = join(root, "never-created-2");
  await assert.rejects(runTraining(options({ cacheDir: noCache, out: join(file, "r.json") })), /--out .*plain-file\/r\.json is not writable/);
  await assert.rejects(runTraining(options({ cacheDir: noCache, checkpoint: join(file, "ck") })), /--checkpoint .*plain-file\/ck is not writable/);
  assert.equal(existsSync(noCache), false);
});

test("the result records the dataset content hash and fingerprint; a run never trains into a checkpoint a live process holds", async () => {
  const dir = tempDir("run-lock");
  const ck = join(dir, "ck");
  const out = join(dir, "r.json");
  const child = spawn(process.execPath, ["-e", "setTimeout(() => {}, 30000)"], { stdio: "ignore" });
  try {
    writeFileSync(`${ck}.lock`, JSON.stringify({ pid: child.pid, host: hostname(), since: "then" }));
    await assert.rejects(runTraining(options({ checkpoint: ck, out })), new RegExp(`checkpoint ${ck} is in use by process ${child.pid}`));
    assert.equal(existsSync(out), false);
  } finally {
    child.kill("SIGKILL");
    await new Promise((r) => child.once("exit", r));
  }
  // its owner has exited: the stale lock is taken over, and released at the end
  const res = await runTraining(options({ checkpoint: ck, out }));
  assert.equal(existsSync(`${ck}.lock`), false);
  const hash = (await prepareDataset(specA, { cacheDir })).manifest.hash;
  const saved = JSON.parse(readFileSync(out, "utf8")) as { config: { datasetHash: string; fingerprint: Record<string, unknown> } };
  assert.equal(saved.config.datasetHash, hash);
  assert.equal(res.config.datasetHash, hash);
  assert.equal(saved.config.fingerprint.datasetHash, hash);
  assert.deepEqual(saved.config.fingerprint.methodOptions, { tau: 0.1, eps: 1e-10 });
});

test("resuming a checkpoint under another dataset content, architecture option, method option, seed or batch size is refused, naming each", async () => {
  const ck = join(tempDir("run-fp"), "ck");
  await assert.rejects(runTraining(options({ checkpoint: ck, interruptAfter: 2 })), /interrupted/);
  assert.ok(existsSync(join(ck, "state.json")));
  await assert.rejects(
    runTraining(options({ checkpoint: ck, dataset: specB, seed: 2, batchSize: 16, modelOptions: { bottomUnits: "6" }, methodOptions: { tau: "0.3" } })),
    (e: unknown) => {
      const m = (e as Error).message;
      assert.match(m, /was written by a different run; refusing to resume/);
      assert.match(m, /\n {2}batchSize: 32 → 16\n/);
      assert.match(m, /\n {2}datasetHash: "[0-9a-f]{64}" → "[0-9a-f]{64}"\n/);
      assert.match(m, /\n {2}methodOptions\.tau: 0\.1 → 0\.3\n/);
      assert.match(m, /\n {2}modelOptions\.bottomUnits: \[4\] → \[6\]\n/);
      assert.match(m, /\n {2}seed: 1 → 2\n/);
      assert.doesNotMatch(m, /\n {2}(model|method|lr|l2|scope|dataset):/, "only the differing keys");
      return true;
    },
  );
  // the same settings resume and finish
  const res = await runTraining(options({ checkpoint: ck }));
  assert.equal(res.steps, 4);
});
