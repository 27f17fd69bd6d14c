/**
 * A task with one class on val or test (issue #19, class 7): its AUC and GAUC are undefined.
 * Training completes, a warning names the task and the split (logged and kept in the result),
 * early stopping averages the val AUC over the defined tasks only and says which, and with no
 * task defined on val it is off (with a warning) instead of stopping on a NaN score.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { Batch, PreparedDataset, SplitReader } from "../../src/data/types.ts";
import type { BalancingMethod, JsonValue } from "../../src/balance/types.ts";
import { createMethod } from "../../src/balance/registry.ts";
import { runLoop, toRunResult, type LoopConfig, type TrainableModel } from "../../src/train/trainer.ts";
import type { RunResult } from "../../src/report/types.ts";
import { tempDir } from "../data/helpers.ts";
import { writeOneClassDataset } from "./one-class-data.ts";

const ROWS = 24;
const TASKS = ["click", "like", "follow"];

/** In-memory data, three tasks; on `val`, the tasks in `oneClass` have every label 0. */
function data(oneClass: { val?: number[]; test?: number[] }): PreparedDataset {
  const split = (name: "train" | "val" | "test"): SplitReader => ({
    rows: ROWS,
    numBatches: (bs: number) => Math.ceil(ROWS / bs),
    *iterate(o) {
      for (let b = o.startBatch ?? 0; b * o.batchSize < ROWS; b++) {
        const n = Math.min(o.batchSize, ROWS - b * o.batchSize);
        const start = b * o.batchSize;
        const lab = (t: number) =>
          Float32Array.from({ length: n }, (_, i) => (name !== "train" && (oneClass[name] ?? []).includes(t) ? 0 : (start + i + t) % 3 === 0 ? 1 : 0));
        const batch: Batch = { size: n, fields: [Int32Array.from({ length: n }, (_, i) => (start + i) % 5)], labels: TASKS.map((_, t) => lab(t)), groups: Int32Array.from({ length: n }, (_, i) => (start + i) % 4) };
        yield batch;
      }
    },
  });
  return {
    meta: { name: "fake3", fields: [{ name: "f", vocabSize: 5 }], tasks: TASKS.map((name) => ({ name })), groupColumn: "g", rows: { train: ROWS, val: ROWS, test: ROWS } },
    split: (s) => split(s as "train" | "val" | "test"),
  };
}

/** A model whose predictions change with every step (so each evaluation has other AUCs): score = label·q(step) + a per-row pattern. */
function drifting(): TrainableModel {
  let steps = 0;
  return {
    async step(_batch: Batch, method: BalancingMethod, info: { step: number; rng: import("../../src/util/rng.ts").Rng; epoch: number }) {
      steps++;
      const l = Float64Array.from(TASKS, () => 0.6);
      const balance = method.combine({ grads: TASKS.map(() => Float32Array.of(1, 1)), losses: l, step: info.step, epoch: info.epoch, rng: info.rng });
      return { losses: l, balance };
    },
    async predict(batch: Batch) {
      const q = [0.3, 1.5, 0.1, 0.9, 0.2, 2.0][steps % 6]!;
      return batch.labels.map((y, t) => Float32Array.from(y, (v, i) => v * q * (t + 1) + ((i * 7 + steps + t) % 5) / 5));
    },
    getParams: () => ({ w: Float32Array.of(steps) }),
    setParams: () => {},
    getState: () => ({ tensors: { w: Float32Array.of(steps) }, json: { steps } as JsonValue }),
    setState: (s: { json: JsonValue }) => {
      steps = (s.json as { steps: number }).steps;
    },
  };
}

function cfg(over: Partial<LoopConfig> = {}): LoopConfig {
  return { epochs: 6, batchSize: 8, evalBatchSize: 8, evalEvery: 0, maxSteps: 0, patience: 0, minDelta: 0, diagEvery: 1, maxEvalRows: 0, seed: 1, checkpointEvery: 0, ...over };
}

function base(): Parameters<typeof toRunResult>[0] {
  return { dataset: "fake3", model: "m", method: "ew", methodLabel: "EW", seed: 1, tasks: TASKS, config: {} };
}

test("a task with one class on val: warned (task and split), left out of early stopping, whose score is the mean over the other tasks", async () => {
  const logs: string[] = [];
  let logsAtFirstEval = -1;
  const out = await runLoop(data({ val: [2] }), drifting(), createMethod("ew", 3), cfg(), {
    log: (m) => logs.push(m),
    onEval: () => {
      if (logsAtFirstEval < 0) logsAtFirstEval = logs.length;
    },
  });
  assert.equal(out.completed, true);
  const warning = 'task "follow": the val split has only one class (all 0): its val AUC and GAUC are undefined; it is left out of early stopping (the mean val AUC)';
  assert.deepEqual(out.warnings, [warning]);
  assert.ok(logs.includes(`warning: ${warning}`), logs.join("\n"));
  assert.ok(logs.includes("early stopping watches the mean val AUC of 2 of 3 tasks: click, like"), logs.join("\n"));
  assert.equal(logsAtFirstEval, 2, "the warning and the line naming the tasks come at the start, before the first evaluation");
  assert.deepEqual(out.earlyStopping, { tasks: ["click", "like"], enabled: true });
  const h = out.state.history;
  assert.equal(h.length, 6);
  let best = -Infinity;
  let bestEpoch = -1;
  for (const p of h) {
    assert.ok(Number.isNaN(p.valAuc[2]!), "follow's val AUC is undefined");
    assert.ok(Number.isFinite(p.valAuc[0]!) && Number.isFinite(p.valAuc[1]!));
    const expected = (p.valAuc[0]! + p.valAuc[1]!) / 2; // independently: mean over click and like
    assert.equal(p.score, expected);
    if (expected > best) {
      best = expected;
      bestEpoch = p.epoch;
    }
  }
  assert.ok(new Set(h.map((p) => p.score)).size > 1, "the fixture's scores vary between evaluations");
  assert.equal(out.state.bestEpoch, bestEpoch, "restore-best picks the evaluation with the best mean over the defined tasks");
  const r = toRunResult(base(), out);
  assert.deepEqual(r.warnings, [warning]);
  assert.deepEqual(r.earlyStopping, { tasks: ["click", "like"], enabled: true });
  assert.deepEqual(r.val.positives?.[2], 0);
  assert.equal(r.val.rows, ROWS);
});

test("a task with one class on test: warned after training, naming the task, the split and what it is left out of", async () => {
  const logs: string[] = [];
  const out = await runLoop(data({ test: [0] }), drifting(), createMethod("ew", 3), cfg({ epochs: 2 }), { log: (m) => logs.push(m) });
  const warning = 'task "click": the test split has only one class (all 0): its test AUC and GAUC are undefined; it is left out of AV-A/AV-G and RI-A/RI-G';
  assert.deepEqual(out.warnings, [warning]);
  assert.ok(logs.includes(`warning: ${warning}`));
  assert.ok(logs.includes("early stopping watches the mean val AUC of all 3 tasks: click, like, follow"), logs.join("\n"));
  assert.ok(Number.isNaN(out.test!.auc[0]!) && Number.isNaN(out.test!.gauc[0]!));
  assert.ok(Number.isFinite(out.test!.auc[1]!) && Number.isFinite(out.test!.auc[2]!));
});

test("no task defined on val: early stopping is off with a warning (no crash, no stop on a NaN score), the last parameters kept", async () => {
  const logs: string[] = [];
  const out = await runLoop(data({ val: [0, 1, 2] }), drifting(), createMethod("ew", 3), cfg({ epochs: 4, patience: 1 }), { log: (m) => logs.push(m) });
  assert.equal(out.completed, true);
  assert.equal(out.state.epoch, 4, "all epochs ran: patience 1 did not stop on an undefined score");
  assert.equal(out.state.stopped, false);
  assert.equal(out.state.bestEpoch, 3, "the last evaluation is kept");
  assert.deepEqual(out.earlyStopping, { tasks: [], enabled: false });
  assert.ok(out.warnings.includes("early stopping is off: no task has both classes in the val split, so no val AUC is defined; the last parameters are kept (--patience 1 ignored)"), out.warnings.join("\n"));
  for (const t of TASKS) assert.ok(out.warnings.some((w) => w.startsWith(`task "${t}": the val split has only one class (all 0)`)), t);
  for (const p of out.state.history) assert.equal(p.score, undefined);
});

// ---- end to end: `mtlcraft train` on a CSV dataset with one task all 0 on a split ----

const root = tempDir("undefined-metrics");
const cache = join(root, "cache");

function train(spec: string, out: string, ...extra: string[]) {
  const args = ["--import", "tsx", "src/cli.ts", "train", "--dataset", spec, "--model", "shared-bottom", "--method", "ew", "--epochs", "3", "--batch-size", "32",
    "--emb-dim", "2", "--model-opt", "bottomUnits=4", "--patience", "1", "--cache-dir", cache, "--out", out, "--progress", "none", ...extra];
  return spawnSync(process.execPath, args, { encoding: "utf8", timeout: 180_000 });
}

test("train: follow all 0 on val: exit 0, the warning on stderr and in the result, early stopping names its tasks, no NaN written", () => {
  const spec = writeOneClassDataset(join(root, "val-data"), "val");
  const out = join(root, "val-run.json");
  const r = train(spec, out);
  assert.equal(r.status, 0, r.stderr);
  const warning = 'task "follow": the val split has only one class (all 0): its val AUC and GAUC are undefined; it is left out of early stopping (the mean val AUC)';
  assert.ok(r.stderr.includes(`warning: ${warning}`), r.stderr);
  assert.match(r.stderr, /early stopping watches the mean val AUC of 2 of 3 tasks: click, like/);
  const text = readFileSync(out, "utf8");
  assert.ok(!/NaN|Infinity/.test(text), "the result file holds no NaN");
  const res = JSON.parse(text) as RunResult;
  assert.deepEqual(res.warnings, [warning]);
  assert.deepEqual(res.earlyStopping, { tasks: ["click", "like"], enabled: true });
  assert.equal(res.val.auc[2], null, "undefined is written as null");
  for (const p of res.history) assert.equal(p.score, (p.valAuc[0]! + p.valAuc[1]!) / 2);
  assert.ok(res.test.auc.every((x) => typeof x === "number" && Number.isFinite(x)), "test is defined for every task");
  assert.ok(!/NaN/.test(r.stdout), r.stdout);
});

test("train: follow all 0 on test: exit 0, the warning names task and split, the printed table reads n/a, the result has null", () => {
  const spec = writeOneClassDataset(join(root, "test-data"), "test");
  const out = join(root, "test-run.json");
  const r = train(spec, out);
  assert.equal(r.status, 0, r.stderr);
  const warning = 'task "follow": the test split has only one class (all 0): its test AUC and GAUC are undefined; it is left out of AV-A/AV-G and RI-A/RI-G';
  assert.ok(r.stderr.includes(`warning: ${warning}`), r.stderr);
  assert.match(r.stdout, /^\| follow \| n\/a \| n\/a \| \d\.\d{4} \|$/m);
  assert.match(r.stdout, /1 warning \(printed above; kept in the result's "warnings"\)/);
  assert.ok(!/NaN/.test(r.stdout), r.stdout);
  const text = readFileSync(out, "utf8");
  assert.ok(!/NaN|Infinity/.test(text));
  const res = JSON.parse(text) as RunResult;
  assert.deepEqual(res.warnings, [warning]);
  assert.equal(res.test.auc[2], null);
  assert.equal(res.test.gauc[2], null);
  assert.equal(res.test.positives?.[2], 0);
  assert.deepEqual(res.earlyStopping, { tasks: ["click", "like", "follow"], enabled: true });
});

test("train: every task one class on val: exit 0, early stopping off with a warning, every epoch run, the last parameters kept", () => {
  const spec = writeOneClassDataset(join(root, "none-data"), "val", { allTasksOneClassOnVal: true });
  const out = join(root, "none-run.json");
  const r = train(spec, out);
  assert.equal(r.status, 0, r.stderr);
  assert.ok(r.stderr.includes("warning: early stopping is off: no task has both classes in the val split, so no val AUC is defined; the last parameters are kept (--patience 1 ignored)"), r.stderr);
  const res = JSON.parse(readFileSync(out, "utf8")) as RunResult;
  assert.equal(res.epochsRun, 3, "patience 1 did not stop training on an undefined score");
  assert.equal(res.bestEpoch, 2);
  assert.deepEqual(res.earlyStopping, { tasks: [], enabled: false });
  assert.equal(res.warnings?.length, 4);
});
