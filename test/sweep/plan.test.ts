import { test } from "node:test";
import assert from "node:assert/strict";
import { expandMethods, finalJobs, gridPoints, jobId, selectionJobs, type SweepConfig } from "../../src/sweep/plan.ts";
import { summarise } from "../../src/sweep/sweep.ts";
import type { RunResult } from "../../src/report/types.ts";

const known = ["ew", "uw", "dwa", "mgda", "pcgrad", "pcgrad-plus", "gradvac", "cagrad", "imtl", "dbmtl", "gradcraft", "rlw"];

function cfg(over: Partial<SweepConfig> = {}): SweepConfig {
  return { dataset: "kuairand", model: "ple", methods: ["single", "ew", "gradcraft"], seeds: [1, 2], train: { epochs: 2 }, grid: {}, jobs: 2, out: "x", ...over };
}

test("methods expand: paper = Table 1 order with both baselines; unknown names are refused", () => {
  assert.deepEqual(expandMethods(["paper"], known), ["single", "lr", "ew", "uw", "dwa", "mgda", "pcgrad", "pcgrad-plus", "gradvac", "cagrad", "imtl", "dbmtl", "gradcraft"]);
  assert.deepEqual(expandMethods(["ew,gradcraft", "ew"], known), ["ew", "gradcraft"]);
  assert.ok(expandMethods(["all"], known).includes("rlw"));
  assert.throws(() => expandMethods(["ew,bogus"], known), /unknown method "bogus"/);
  assert.throws(() => expandMethods(["pcgard"], known), /unknown method "pcgard"; choose from .*; did you mean "pcgrad"\?/);
});

test("job ids are stable, differ by option, seed and method, and ignore key order", () => {
  assert.equal(jobId("ew", 1, { a: 1, b: "x" }), jobId("ew", 1, { b: "x", a: 1 }));
  assert.notEqual(jobId("ew", 1, { a: 1 }), jobId("ew", 2, { a: 1 }));
  assert.notEqual(jobId("ew", 1, { a: 1 }), jobId("ew", 1, { a: 2 }));
  assert.notEqual(jobId("ew", 1, { a: 1 }), jobId("pcgrad", 1, { a: 1 }));
});

test("grid: per-method keys, selection on the first seed only, finals use the chosen point", () => {
  const c = cfg({ grid: { lr: [1e-3, 5e-4], tau: [0.1, 0.5] }, gridMethods: { tau: ["gradcraft"] } });
  assert.equal(gridPoints(c, "ew").length, 2);
  assert.equal(gridPoints(c, "gradcraft").length, 4);
  const sel = selectionJobs(c);
  assert.equal(sel.length, 2 + 2 + 4); // single, ew (lr only), gradcraft (lr x tau)
  assert.ok(sel.every((j) => j.seed === 1 && j.phase === "select"));
  const fin = finalJobs(c, { gradcraft: { lr: 5e-4, tau: 0.5 } });
  assert.equal(fin.length, 3 * 2);
  const gc = fin.filter((j) => j.method === "gradcraft");
  assert.ok(gc.every((j) => j.options.tau === 0.5 && j.options.lr === 5e-4 && j.options.method === "gradcraft"));
  const single = fin.find((j) => j.method === "single")!;
  assert.equal(single.options.model, "single");
  // a final job whose options equal a selection job's reuses its id (no duplicate work)
  assert.ok(sel.some((s) => s.id === gc.find((j) => j.seed === 1)!.id));
});

test("model options go to the MTL model; Single gets the same width as bottomUnits; overrides apply per method", () => {
  const c = cfg({ modelOptions: { expertUnits: "64,32", levels: "1" }, overrides: { lr: { lr: 0.01 } }, methods: ["single", "lr", "ew"] });
  const fin = finalJobs(c, {});
  assert.deepEqual(fin.find((j) => j.method === "ew")!.options["model-opt"], ["expertUnits=64,32", "levels=1"]);
  assert.deepEqual(fin.find((j) => j.method === "single")!.options["model-opt"], ["bottomUnits=64,32"]);
  assert.equal(fin.find((j) => j.method === "lr")!.options.lr, 0.01);
  assert.equal(fin.find((j) => j.method === "ew")!.options.lr, undefined);
});

test("summarise groups runs by method with one value per seed", () => {
  const c = cfg();
  const fin = finalJobs(c, {});
  const mk = (v: number): RunResult =>
    ({ tasks: ["a", "b"], test: { auc: [v, v + 0.1], gauc: [v - 0.1, v], logloss: [0, 0], gaucGroups: [] } }) as unknown as RunResult;
  const results = fin.map((_, i) => mk(0.5 + i * 0.01));
  const s = summarise(results, fin, (m) => m.toUpperCase());
  assert.deepEqual(s.map((x) => x.label), ["Single", "EW", "GRADCRAFT"]);
  assert.deepEqual(s[1]!.perTask[0]!.auc, [0.52, 0.53]);
  assert.deepEqual(s[2]!.perTask[1]!.gauc, [0.54, 0.55]);
});
