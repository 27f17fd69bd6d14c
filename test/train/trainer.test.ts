/**
 * The loop's divergence policy and checkpoint fingerprints, on an in-memory dataset
 * and a scripted model (no engine): non-finite or exploding losses, and balancing
 * inputs refused by the method, stop training naming the step, the task and the value.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import type { Batch, PreparedDataset, SplitReader } from "../../src/data/types.ts";
import type { BalancingMethod, JsonValue } from "../../src/balance/types.ts";
import { createMethod } from "../../src/balance/registry.ts";
import { DivergenceError, MAX_LOSS, runLoop, toRunResult, type LoopConfig, type TrainableModel } from "../../src/train/trainer.ts";
import { loadCheckpoint } from "../../src/train/checkpoint.ts";
import { tempDir } from "../data/helpers.ts";

const ROWS = 16;

function fakeData(): PreparedDataset {
  const split = (): SplitReader => ({
    rows: ROWS,
    numBatches: (bs: number) => Math.ceil(ROWS / bs),
    *iterate(o) {
      for (let b = o.startBatch ?? 0; b * o.batchSize < ROWS; b++) {
        const n = Math.min(o.batchSize, ROWS - b * o.batchSize);
        const lab = () => Float32Array.from({ length: n }, (_, i) => (i + b) % 2);
        const batch: Batch = { size: n, fields: [Int32Array.from({ length: n }, (_, i) => i % 3)], labels: [lab(), lab()], groups: new Int32Array(n) };
        yield batch;
      }
    },
  });
  return {
    meta: { name: "fake", fields: [{ name: "f", vocabSize: 3 }], tasks: [{ name: "click" }, { name: "like" }], groupColumn: "g", rows: { train: ROWS, val: ROWS, test: ROWS } },
    split: () => split(),
  };
}

/** A model whose per-step losses are scripted; its gradients are [1, 1] per task unless `grads` says otherwise. */
function scripted(losses: (step: number) => number[], grads?: (step: number) => number[][]): TrainableModel & { steps: number } {
  const m = {
    steps: 0,
    async step(batch: Batch, method: BalancingMethod, info: { step: number; rng: import("../../src/util/rng.ts").Rng; epoch: number }) {
      m.steps++;
      const l = Float64Array.from(losses(info.step));
      const g = (grads?.(info.step) ?? [[1, 1], [1, 1]]).map((r) => Float32Array.from(r));
      const balance = method.combine({ grads: g, losses: l, step: info.step, epoch: info.epoch, rng: info.rng });
      return { losses: l, balance };
    },
    async predict(batch: Batch) {
      return [Float32Array.from(batch.labels[0]!), Float32Array.from(batch.labels[1]!)];
    },
    getParams: () => ({ w: Float32Array.of(1) }),
    setParams: () => {},
    getState: () => ({ tensors: { w: Float32Array.of(m.steps) }, json: { steps: m.steps } as JsonValue }),
    setState: (s: { json: JsonValue }) => {
      m.steps = (s.json as { steps: number }).steps;
    },
  };
  return m;
}

function cfg(over: Partial<LoopConfig> = {}): LoopConfig {
  return { epochs: 2, batchSize: 4, evalBatchSize: 8, evalEvery: 0, maxSteps: 0, patience: 0, minDelta: 0, diagEvery: 1, maxEvalRows: 0, seed: 1, checkpointEvery: 0, ...over };
}

async function diverges(model: TrainableModel, re: RegExp, check?: (e: DivergenceError) => void): Promise<void> {
  await assert.rejects(runLoop(fakeData(), model, createMethod("ew", 2), cfg()), (e: unknown) => {
    assert.ok(e instanceof DivergenceError, `expected a DivergenceError, got ${String(e)}`);
    assert.match(e.message, re);
    check?.(e);
    return true;
  });
}

test("a healthy scripted run completes (the fixture itself is sound)", async () => {
  const out = await runLoop(fakeData(), scripted(() => [0.7, 0.6]), createMethod("ew", 2), cfg());
  assert.equal(out.completed, true);
  assert.equal(out.state.step, 8);
});

test("a NaN or infinite loss stops training, naming the step (1-based), the task and the value", async () => {
  // the method sees the NaN loss first (checkInput) and the loop names the task
  await diverges(scripted((s) => (s === 2 ? [0.7, NaN] : [0.7, 0.6])), /diverged at step 3 \(epoch 1\): task "like" has loss NaN/, (e) => {
    assert.equal(e.step, 3);
    assert.equal(e.task, "like");
    assert.ok(Number.isNaN(e.value));
  });
  await diverges(scripted((s) => (s === 5 ? [Infinity, 0.6] : [0.7, 0.6])), /diverged at step 6 \(epoch 2\): task "click" has loss Infinity/);
});

test("an exploding loss (above MAX_LOSS = 1e6) stops training; values just below do not", async () => {
  assert.equal(MAX_LOSS, 1e6);
  await diverges(scripted((s) => (s === 1 ? [0.7, 2e6] : [0.7, 0.6])), /diverged at step 2 .*task "like" loss exploded to 2\.000e\+6 \(> 1e\+6\)/);
  const ok = await runLoop(fakeData(), scripted(() => [0.7, 9e5]), createMethod("ew", 2), cfg());
  assert.equal(ok.completed, true);
  // the limit is configurable per loop
  await assert.rejects(runLoop(fakeData(), scripted(() => [0.7, 50]), createMethod("ew", 2), cfg({ maxLoss: 10 })), /task "like" loss exploded/);
});

test("non-finite or exploding gradients are refused by the method and reported with the task name and position", async () => {
  await diverges(
    scripted(() => [0.7, 0.6], (s) => (s === 4 ? [[1, 1], [1, Number.NaN]] : [[1, 1], [1, 1]])),
    /diverged at step 5 .*task "like" has gradient entry 1 = NaN/,
  );
  await diverges(scripted(() => [0.7, 0.6], () => [[3e30, 1], [1, 1]]), /diverged at step 1 .*task "click" has an exploding gradient: entry 0 = 3.000e\+30 \(\|g\| > 1e\+18\)/);
});

test("a run that diverges writes no checkpoint of the bad step", async () => {
  const ck = join(tempDir("div-ck"), "ck");
  const model = scripted((s) => (s === 6 ? [NaN, 0.6] : [0.7, 0.6]));
  await assert.rejects(runLoop(fakeData(), model, createMethod("ew", 2), cfg({ checkpointDir: ck })), DivergenceError);
  // the last checkpoint is the one at the end of epoch 1 (4 steps), before the bad step 7
  const saved = loadCheckpoint(ck)!;
  assert.equal((saved.json.loop as { step: number }).step, 4);
});

test("checkpoints carry the fingerprint; resuming under another one lists every differing key", async () => {
  const ck = join(tempDir("fp-ck"), "ck");
  const fp = { datasetHash: "aaa", model: "ple", modelOptions: { expertUnits: [64, 32] }, seed: 1, batchSize: 4 };
  const part = await runLoop(fakeData(), scripted(() => [0.7, 0.6]), createMethod("ew", 2), cfg({ checkpointDir: ck, interruptAfter: 3, fingerprint: fp }));
  assert.equal(part.completed, false);
  assert.deepEqual(loadCheckpoint(ck)!.json.fingerprint, fp);
  const other = { ...fp, datasetHash: "bbb", modelOptions: { expertUnits: [32] }, seed: 2 };
  await assert.rejects(runLoop(fakeData(), scripted(() => [0.7, 0.6]), createMethod("ew", 2), cfg({ checkpointDir: ck, fingerprint: other })), (e: unknown) => {
    const m = (e as Error).message;
    assert.match(m, new RegExp(`checkpoint ${ck.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")} was written by a different run`));
    assert.match(m, /datasetHash: "aaa" → "bbb"/);
    assert.match(m, /modelOptions\.expertUnits: \[64,32\] → \[32\]/);
    assert.match(m, /seed: 1 → 2/);
    assert.doesNotMatch(m, /batchSize/);
    return true;
  });
  // the same fingerprint resumes
  const resumed = await runLoop(fakeData(), scripted(() => [0.7, 0.6]), createMethod("ew", 2), cfg({ checkpointDir: ck, fingerprint: fp }));
  assert.equal(resumed.completed, true);
  assert.equal(resumed.state.step, 8);
});

test("any other failure of a step is reported with the step it happened at", async () => {
  const model = scripted(() => [0.7, 0.6]);
  const failing: TrainableModel = { ...model, step: async (_b, _m, info) => {
    if (info.step === 2) throw new Error("engine: out of memory");
    return model.step(_b, _m, info);
  } };
  await assert.rejects(runLoop(fakeData(), failing, createMethod("ew", 2), cfg()), (e: unknown) => {
    assert.match((e as Error).message, /^training stopped at step 3 \(epoch 1\): engine: out of memory$/);
    assert.match(String((e as Error).cause), /out of memory/);
    return true;
  });
});

test("every diagnostics point logs the effective task weights (the update's coefficients), and the result records the cost per step", async () => {
  // MGDA on gradients [1, 0] and [0, 3]: the min-norm point weights them 9/10 and 1/10.
  const out = await runLoop(fakeData(), scripted(() => [0.7, 0.6], () => [[1, 0], [0, 3]]), createMethod("mgda", 2), cfg());
  assert.equal(out.state.diagnostics.length, 8);
  for (const d of out.state.diagnostics) {
    assert.equal(d.weights, null, "MGDA is not a loss weighting");
    assert.equal(d.coeffs!.length, 2);
    assert.ok(Math.abs(d.coeffs![0]! / d.coeffs![1]! - 9) < 1e-9, `coeffs ${d.coeffs!.join(", ")}`);
  }
  assert.ok(out.state.stepSeconds! > 0, "time inside the steps is measured");
  const r = toRunResult({ dataset: "fake", model: "m", method: "mgda", methodLabel: "MGDA", seed: 1, tasks: ["click", "like"], config: {} }, out);
  assert.ok(r.cost!.msPerStep > 0 && Number.isFinite(r.cost!.msPerStep));
  assert.ok(Math.abs(r.cost!.msPerStep - (1000 * out.state.stepSeconds!) / 8) < 1e-9);
  assert.ok(r.cost!.peakRssMb > 10 && r.cost!.peakRssMb < 1e6, `peak RSS ${r.cost!.peakRssMb} MiB`);
});
