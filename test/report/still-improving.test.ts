/** The "still improving at its last epoch" flag covers every run: selection, bench's run warnings, results written before it. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { STILL_IMPROVING_WARNING, stillImproving } from "../../src/report/selection.ts";
import { runWarnings } from "../../src/sweep/sweep.ts";
import type { RunResult } from "../../src/report/types.ts";

const run = (bestEpoch: number, epochsRun: number, extra: Partial<RunResult> = {}): RunResult => ({ bestEpoch, epochsRun, warnings: [], ...extra }) as unknown as RunResult;

test("stillImproving: best epoch = last epoch run, early stopping on (or not recorded)", () => {
  assert.equal(stillImproving(run(3, 4)), true);
  assert.equal(stillImproving(run(2, 4)), false, "stopped after its best epoch");
  assert.equal(stillImproving(run(0, 1)), true, "one epoch: its best is its last");
  assert.equal(stillImproving(run(0, 0)), false, "cut by a step limit before its first full epoch: no epoch to compare");
  assert.equal(stillImproving(run(3, 4, { earlyStopping: { tasks: [], enabled: false } })), false, "nothing selected: the last parameters are kept by design");
  assert.equal(stillImproving(run(3, 4, { earlyStopping: { tasks: ["click"], enabled: true } })), true);
});

test("runWarnings flags every run still improving, grouped like the stored warnings, old results included", () => {
  const results = [run(3, 4), run(1, 4), run(3, 4, { warnings: ["w"] }), run(0, 1)];
  const jobs = [{ id: "ew-s1" }, { id: "ew-s2" }, { id: "gc-s1" }, { id: "lr-s1" }];
  const lines = runWarnings(results, jobs);
  assert.ok(lines.includes(`warning: ${STILL_IMPROVING_WARNING} (ew-s1, gc-s1, lr-s1)`), lines.join("\n"));
  assert.ok(lines.includes("warning: w (gc-s1)"));
  assert.equal(lines.length, 2);
  assert.deepEqual(runWarnings([run(1, 4)], [{ id: "a" }]), []);
});
