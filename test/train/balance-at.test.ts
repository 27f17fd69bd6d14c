/**
 * runTraining with `balanceAt: "representation"` on a tiny CSV dataset: it trains (GradCraft,
 * MMoE), the method's refusal and a parameter scope are reported before any work, and the
 * checkpoint fingerprint records the option (a checkpoint is not resumed at the other one).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { runTraining, type TrainOptions } from "../../src/train/run.ts";
import { tempDir } from "../data/helpers.ts";
import { writeTinyDataset } from "./tiny-data.ts";

const root = tempDir("balance-at");
const cacheDir = join(root, "cache");
const spec = writeTinyDataset(join(root, "a"), { seed: 1 });

function options(over: Partial<TrainOptions> = {}): TrainOptions {
  return {
    dataset: spec,
    cacheDir,
    model: "mmoe",
    modelOptions: { expertUnits: "4" },
    method: "gradcraft",
    seed: 1,
    epochs: 1,
    maxSteps: 4,
    batchSize: 32,
    lr: 0.01,
    l2: 0,
    embDim: 2,
    dropout: 0,
    patience: 0,
    balanceAt: "representation",
    ...over,
  };
}

test("runTraining --balance-at representation: trains, and records the option in the fingerprint", async () => {
  const res = await runTraining(options());
  assert.equal(res.steps, 4);
  assert.equal((res.config.fingerprint as Record<string, unknown>).balanceAt, "representation");
  for (const [task, auc] of Object.entries(res.val.auc)) assert.ok(Number.isFinite(auc), `${task}: val AUC ${auc}`);
  const atParams = await runTraining(options({ balanceAt: "parameters" }));
  assert.equal("balanceAt" in (atParams.config.fingerprint as Record<string, unknown>), false, "the default leaves the fingerprint as before the option existed");
});

test("runTraining --balance-at representation refuses ExcessMTL and a parameter scope before any work", async () => {
  const noCache = join(root, "never-created");
  await assert.rejects(runTraining(options({ cacheDir: noCache, method: "excessmtl" })), /method excessmtl cannot run with --balance-at representation.*--balance-at parameters/);
  await assert.rejects(runTraining(options({ cacheDir: noCache, scope: "all" })), /--scope all \(scope\) has no effect with --balance-at representation/);
  assert.equal(existsSync(noCache), false, "nothing was prepared");
});

test("a checkpoint written at one --balance-at is not resumed at the other", async () => {
  const ck = join(tempDir("balance-at-ck"), "ck");
  await assert.rejects(runTraining(options({ checkpoint: ck, interruptAfter: 2 })), /interrupted/);
  await assert.rejects(runTraining(options({ checkpoint: ck, balanceAt: "parameters" })), /refusing to resume[\s\S]*balanceAt: "representation" → /);
  const res = await runTraining(options({ checkpoint: ck }));
  assert.equal(res.steps, 4);
});
