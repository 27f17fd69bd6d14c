/** bench --focus: the report's focus method must be one of the bench's methods, checked before anything runs. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { runSweep } from "../../src/sweep/sweep.ts";
import type { SweepConfig } from "../../src/sweep/plan.ts";

test("--focus naming a method the bench does not run is refused up front, with a suggestion", async () => {
  const cfg = { methods: ["single", "ew", "gradcraft"] } as unknown as SweepConfig;
  await assert.rejects(
    runSweep(cfg, { focus: "gradcraf", reportOnly: true, log: () => {} }),
    /--focus gradcraf: not one of this bench's methods \(single, ew, gradcraft\); did you mean "gradcraft"\?/,
  );
});
