/**
 * Memory: RSS and the JS heap stay flat over 200 small training steps after
 * warm-up, when the loop yields a macrotask between steps (`yieldToEngine`,
 * required: WeakRefs created by the engine's tracing are kept alive until the
 * end of the current macrotask). The engine exposes no live-array count in its
 * public API, so RSS (which includes the wasm heap) and heapUsed are observed.
 */
import { test } from "node:test";
import v8 from "node:v8";
import vm from "node:vm";
import assert from "node:assert/strict";
import { initEngine, yieldToEngine } from "../../src/grad/engine.ts";
import { createModel } from "../../src/model/index.ts";
import { createAdam } from "../../src/optim/adam.ts";
import { predict, trainStep } from "../../src/train/step.ts";
import { Rng } from "../../src/util/rng.ts";
import { TINY_FIELDS, randomBatch } from "./fixtures.ts";
import { localEW } from "../train/ew-local.ts";

test("no leak: RSS growth over 200 steps (+ predict) after warm-up < 40 MB (a per-step leak here is ~250 MB)", async () => {
  await initEngine();
  const T = 3;
  const model = createModel("ple", { fields: TINY_FIELDS, numTasks: T }, { embDim: 4, expertUnits: [32, 16], towerUnits: [8], levels: 2 });
  const opt = createAdam(model);
  const method = localEW(T);
  const rng = new Rng(1);
  const batches = [0, 1, 2, 3].map((s) => randomBatch(TINY_FIELDS, T, 256, s));
  let step = 0;
  const run = async (n: number) => {
    for (let i = 0; i < n; i++) {
      const b = batches[i % batches.length]!;
      trainStep(model, opt, method, b, { step, epoch: 0, rng });
      if (i % 10 === 0) predict(model, b);
      step++;
      await yieldToEngine();
    }
  };
  v8.setFlagsFromString("--expose-gc");
  const gc = vm.runInNewContext("gc") as () => void;
  await run(100); // let the allocator settle: RSS noise, not leaks, dominates the first steps
  gc();
  const r0 = process.memoryUsage();
  await run(200);
  gc();
  const r1 = process.memoryUsage();
  const rssMb = (r1.rss - r0.rss) / 2 ** 20;
  const heapMb = (r1.heapUsed - r0.heapUsed) / 2 ** 20;
  assert.ok(rssMb < 40, `RSS grew by ${rssMb.toFixed(1)} MB over 200 steps`);
  assert.ok(heapMb < 20, `JS heap grew by ${heapMb.toFixed(1)} MB over 200 steps`);
});
