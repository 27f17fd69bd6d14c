/**
 * Progress for people and logs: task-named losses, plain lines without a terminal at least every
 * 30 s (a fake clock, so the test does not wait), epochs counted from 1 in what people read, and
 * `train` without a terminal writing those lines to stderr.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { durationText, LogProgress, lossText } from "../../src/train/progress.ts";
import { tempDir } from "../data/helpers.ts";
import { writeTinyDataset } from "./tiny-data.ts";

test("lossText names the tasks; durationText reads as people write durations", () => {
  assert.equal(lossText(["click", "like"], Float64Array.of(0.5123, 0.25)), "click 0.512 like 0.250");
  assert.equal(lossText(["a"], [NaN]), "a n/a");
  assert.equal(durationText(45), "45s");
  assert.equal(durationText(338), "5m38s");
  assert.equal(durationText(7620), "2h07m");
  assert.equal(durationText(Infinity), "?");
});

test("LogProgress: a line at the first step, then whenever 30 s have passed, at each new epoch and at each evaluation", () => {
  let now = 1_000_000;
  const lines: string[] = [];
  const p = new LogProgress({ tasks: ["click", "like"], epochs: 4, now: () => now, write: (l) => lines.push(l) });
  const losses = Float64Array.of(0.5, 0.25);
  p.step({ step: 1, totalSteps: 100, epoch: 0, losses });
  assert.equal(lines.length, 1, "the first step writes a line");
  assert.match(lines[0]!, /^step 1\/100 \(1%\) \| epoch 1\/4 \| \? steps\/s \| loss click 0\.500 like 0\.250 \| ETA \?$/);
  for (let s = 2; s <= 30; s++) {
    now += 1000;
    p.step({ step: s, totalSteps: 100, epoch: 0, losses });
  }
  now += 999;
  p.step({ step: 31, totalSteps: 100, epoch: 0, losses });
  assert.equal(lines.length, 1, "nothing before 30 s have passed");
  now += 1;
  p.step({ step: 32, totalSteps: 100, epoch: 0, losses });
  assert.equal(lines.length, 2, "a line once 30 s have passed");
  // 32 steps in the 30 s since the progress began: 1.07 steps/s; 68 steps left: 64 s
  assert.equal(lines[1], "step 32/100 (32%) | epoch 1/4 | 1.07 steps/s | loss click 0.500 like 0.250 | ETA 1m04s");
  now += 500;
  p.step({ step: 33, totalSteps: 100, epoch: 1, losses });
  assert.equal(lines.length, 3, "a new epoch writes a line");
  assert.match(lines[2]!, /^step 33\/100 \(33%\) \| epoch 2\/4 \| /);
  p.eval({ epoch: 1, step: 33, valAuc: [0.71234, NaN] });
  assert.equal(lines[3], "epoch 2 step 33: val AUC click 0.7123 like n/a");
  // the silence is counted from the last line of any kind
  now += 29_000;
  p.step({ step: 34, totalSteps: 100, epoch: 1, losses });
  assert.equal(lines.length, 4);
  assert.throws(() => new LogProgress({ tasks: [], intervalMs: 0 }), /intervalMs must be > 0/);
});

test("LogProgress on a resumed run: the rate counts this process's steps", () => {
  let now = 0;
  const lines: string[] = [];
  const p = new LogProgress({ tasks: ["t"], now: () => now, write: (l) => lines.push(l), intervalMs: 10_000 });
  p.step({ step: 501, totalSteps: 1000, epoch: 3, losses: [1] });
  now = 10_000;
  p.step({ step: 521, totalSteps: 1000, epoch: 3, losses: [1] });
  assert.equal(lines[1], "step 521/1000 (52%) | epoch 4 | 2.10 steps/s | loss t 1.000 | ETA 3m48s");
});

test("train without a terminal writes plain progress lines to stderr (task names, epochs from 1); --progress none writes none", () => {
  const root = tempDir("progress");
  const spec = writeTinyDataset(join(root, "data"), { seed: 4 });
  const args = ["--import", "tsx", "src/cli.ts", "train", "--dataset", spec, "--cache-dir", join(root, "cache"), "--model", "shared-bottom", "--model-opt", "bottomUnits=4", "--method", "ew", "--epochs", "2", "--batch-size", "32", "--emb-dim", "2"];
  const r = spawnSync(process.execPath, args, { encoding: "utf8", timeout: 120_000 });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /^step 1\/\d+ \(\d+%\) \| epoch 1\/2 \| [0-9.?]+ steps\/s \| loss click \d\.\d{3} like \d\.\d{3} \| ETA /m);
  assert.match(r.stderr, /^step \d+\/\d+ \(\d+%\) \| epoch 2\/2 \| /m, "the second epoch is epoch 2");
  assert.match(r.stderr, /^epoch 1 step \d+: val AUC click \d\.\d{4} like \d\.\d{4}$/m);
  // the "still improving" note: exactly when the best epoch is the last one run (epochs counted from 1 in both)
  const best = Number(/best epoch ([12]), /.exec(r.stdout)?.[1]);
  if (best === 2) assert.match(r.stderr, /^note: best epoch 2 of 2: best validation score in the last epoch run: still improving/m);
  else assert.doesNotMatch(r.stderr, /^note: best epoch/m);
  const quiet = spawnSync(process.execPath, [...args, "--progress", "none"], { encoding: "utf8", timeout: 120_000 });
  assert.equal(quiet.status, 0, quiet.stderr);
  assert.doesNotMatch(quiet.stderr, /^step \d+\//m);
});
