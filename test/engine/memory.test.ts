/**
 * The engine's memory modes (EngineOptions.memory) change how ONNX Runtime gets its buffers,
 * never the numbers: the same steps under "arena", "pattern" and "auto" give bit-identical
 * parameters, for the weighted-sum fast path and the per-task path (whose program "auto" marks
 * occasional for a loss-weighting method).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { configureEngine, engineOptions, MEMORY_MODES, type MemoryMode } from "../../src/engine/ort.ts";
import { createModel } from "../../src/model/index.ts";
import { createAdam } from "../../src/optim/adam.ts";
import { trainStep } from "../../src/train/step.ts";
import { createMethod } from "../../src/balance/registry.ts";
import { Rng } from "../../src/util/rng.ts";
import { TINY_FIELDS, TINY_OPTS, randomBatch } from "../grad/fixtures.ts";

const T = 3;

async function train(memory: MemoryMode, method: string): Promise<Float64Array> {
  const before = engineOptions();
  configureEngine({ memory, threads: 1 });
  try {
    const model = createModel("ple", { fields: TINY_FIELDS, numTasks: T }, { ...TINY_OPTS, dropout: 0.2 });
    const opt = createAdam(model);
    const m = createMethod(method, T);
    const rng = new Rng(5);
    for (let i = 0; i < 4; i++) {
      // steps 0 and 2 record diagnostics (per-task program), 1 and 3 do not (EW: weighted-sum program)
      await trainStep(model, opt, m, randomBatch(TINY_FIELDS, T, 64, 100 + i), { step: i, epoch: 0, rng, diagnostics: i % 2 === 0 });
    }
    const out: number[] = [];
    for (const p of model.dense) out.push(...p.data);
    for (const set of model.tables) for (const t of set) out.push(...t.data);
    return Float64Array.from(out);
  } finally {
    configureEngine(before);
  }
}

for (const method of ["ew", "gradcraft"]) {
  test(`memory modes give bit-identical training (${method}: weighted-sum and per-task programs)`, async () => {
    const ref = await train("pattern", method);
    assert.ok(ref.every(Number.isFinite));
    for (const mode of MEMORY_MODES.filter((m) => m !== "pattern")) {
      const got = await train(mode, method);
      assert.equal(got.length, ref.length);
      let diff = 0;
      for (let i = 0; i < ref.length; i++) if (got[i] !== ref[i]) diff++;
      assert.equal(diff, 0, `memory "${mode}" changed ${diff} of ${ref.length} parameter values against "pattern"`);
    }
  });
}

test("memory: an unknown mode is refused with the valid ones", () => {
  assert.throws(() => configureEngine({ memory: "pool" as MemoryMode }), /memory must be one of auto, arena, pattern, got "pool"/);
  assert.equal(engineOptions().memory, "auto", "the default is auto, and a refused option leaves it");
});

test("the per-task and weighted-sum programs share one set of noise buffers, and overlapping runs still draw their own masks", async () => {
  const { GradWorkspace, perTaskGrads } = await import("../../src/grad/pertask.ts");
  const { programFor } = await import("../../src/engine/programs.ts");
  const model = createModel("ple", { fields: TINY_FIELDS, numTasks: T }, { ...TINY_OPTS, dropout: 0.3 });
  const ws = new GradWorkspace(model);
  const b = randomBatch(TINY_FIELDS, T, 32, 9);
  const run = async (cot: "per-task" | "sum", seed: number): Promise<number[]> => Array.from((await perTaskGrads(ws, b, { mode: "train", seed, cotangents: cot })).losses);
  const seqA = await run("per-task", 1);
  const seqB = await run("sum", 2);
  const seqA2 = await run("per-task", 2);
  assert.notDeepEqual(seqA, seqA2, "different seeds draw different masks (the check below could fail)");
  const pa = await programFor(model, { kind: "per-task", batch: 32, mode: "train", objective: "bce" });
  const pb = await programFor(model, { kind: "weighted-sum", batch: 32, mode: "train", objective: "bce" });
  const shared = (p: unknown): unknown => (p as { shared: unknown }).shared;
  assert.ok(shared(pa) !== null && shared(pa) === shared(pb), "one NoiseBuffers for both programs");
  // overlapping: both runs fill their masks before either executes; the second must not overwrite the first's
  const [ca, cb] = await Promise.all([run("per-task", 1), run("sum", 2)]);
  assert.deepEqual(ca, seqA);
  assert.deepEqual(cb, seqB);
});

test("programFor: only the training step's main program is frequent; eval, losses, a smaller batch after a larger one, and callers' occasional ones are not", async () => {
  const { programFor, releasePrograms } = await import("../../src/engine/programs.ts");
  const model = createModel("ple", { fields: TINY_FIELDS, numTasks: T }, TINY_OPTS);
  const key = (kind: "weighted-sum" | "per-task" | "eval" | "losses", batch: number, mode: "train" | "eval" = "train") => ({ kind, batch, mode, objective: "bce" as const });
  const occ = async (k: ReturnType<typeof key>, o: { occasional?: boolean } = {}) => (await programFor(model, k, o)).occasional;
  try {
    assert.equal(await occ(key("weighted-sum", 64)), false);
    assert.equal(await occ(key("weighted-sum", 32)), true, "an epoch's last, smaller batch");
    assert.equal(await occ(key("weighted-sum", 128)), false, "a larger batch is a main program again");
    assert.equal(await occ(key("per-task", 16)), false, "another kind: no larger batch of its own");
    assert.equal(await occ(key("per-task", 64), { occasional: true }), true, "the caller says so");
    assert.equal(await occ(key("eval", 256, "eval")), true);
    assert.equal(await occ(key("losses", 256, "eval")), true);
    // cached: the same key gives the same program, whatever the caller says now
    assert.equal(await programFor(model, key("weighted-sum", 32)), await programFor(model, key("weighted-sum", 32), { occasional: false }));
  } finally {
    await releasePrograms(model);
  }
});
