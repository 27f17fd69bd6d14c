import { test } from "node:test";
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { SWEEP_CONFIG, checkSweepFile, parseGridValues, parseSet, readSweepFile, resolveSweepConfig } from "../../src/config/sweep-config.ts";
import { selectionJobs } from "../../src/sweep/plan.ts";
import { tempDir } from "../data/helpers.ts";

test("the shipped configs are valid", () => {
  for (const f of ["configs/quick.json", "configs/paper.json"]) assert.equal(readSweepFile(f).dataset, "kuairand");
  assert.deepEqual(readSweepFile("configs/quick.json").seeds, [1]);
  assert.deepEqual(readSweepFile("configs/paper.json").seeds, [1, 2, 3, 4, 5]);
});

test("configs/paper.json: the paper's sizes, and every method (Single and LR too) selects its lr on validation, no overrides", async () => {
  const cfg = await resolveSweepConfig(readSweepFile("configs/paper.json"));
  assert.deepEqual(cfg.modelOptions, { expertUnits: "256,128,64", towerUnits: "32,16" });
  assert.equal(cfg.train["batch-size"], 4096);
  assert.equal(cfg.train["emb-dim"], 16);
  assert.equal(cfg.train.epochs, 20);
  assert.ok((cfg.train.patience as number) > 0, "early stopping on validation");
  assert.deepEqual(cfg.overrides, {}, "no hand-set per-method options (the default LR override is off)");
  assert.ok(!("lr" in cfg.train), "lr comes from the grid only");
  assert.ok(cfg.grid.lr!.length >= 3);
  // a method's own lr range (methodGrid) replaces the shared one; nothing else is per-method
  for (const [m, own] of Object.entries(cfg.methodGrid ?? {})) {
    for (const k of Object.keys(own)) assert.ok(k === "lr" || k in cfg.grid, `${m}: methodGrid only re-ranges the shared grid's keys, got ${k}`);
  }
  const valuesOf = (m: string, k: string) => cfg.methodGrid?.[m]?.[k] ?? cfg.grid[k]!;
  const lrsOf = (m: string) => valuesOf(m, "lr");
  const sel = selectionJobs(cfg);
  const points = (m: string) => sel.filter((j) => j.method === m).map((j) => j.point);
  for (const m of cfg.methods) {
    assert.ok(lrsOf(m).length >= 3);
    assert.deepEqual([...new Set(points(m).map((p) => p.lr))], lrsOf(m), `${m} tries every lr of its range`);
    assert.ok(sel.filter((j) => j.method === m).every((j) => j.seed === 1), `${m}: selection on seed 1`);
  }
  assert.ok(cfg.methods.includes("single") && cfg.methods.includes("lr"));
  // GradCraft: lr × tau × eps; PCGrad+: lr × tau; the rest: lr only
  assert.equal(points("gradcraft").length, lrsOf("gradcraft").length * valuesOf("gradcraft", "tau").length * valuesOf("gradcraft", "eps").length);
  assert.equal(points("pcgrad-plus").length, lrsOf("pcgrad-plus").length * valuesOf("pcgrad-plus", "tau").length);
  assert.ok(cfg.grid.tau!.length >= 2 && cfg.grid.eps!.length >= 2);
  assert.equal(points("ew").length, lrsOf("ew").length);
  // the Single baseline gets the experts' widths as its bottom
  const single = sel.find((j) => j.method === "single")!;
  assert.deepEqual(single.options["model-opt"], ["bottomUnits=256,128,64"]);
});

test("unknown keys get a suggestion; a non-object is refused; wrong types name the key", () => {
  const w = "cfg.json";
  const bad: [unknown, RegExp][] = [
    [{ metods: ["ew"] }, /cfg\.json: unknown key "metods"; did you mean "methods"\? \(valid: /],
    [["ew"], /a sweep config must be a JSON object, got an array/],
    [null, /must be a JSON object, got null/],
    [{ seeds: "3" }, /cfg\.json: seeds must be a count or a non-empty list of seeds, got "3"/],
    [{ seeds: [1, 4294967296] }, /seeds\[1\] must be an integer in \[0, 4294967296\), got 4294967296/],
    [{ seeds: [1, 1] }, /lists a seed twice/],
    [{ seeds: 0 }, /must be a count in \[1, 10000\]/],
    [{ methods: 5 }, /methods must be a string or a non-empty list of strings/],
    [{ jobs: 0 }, /jobs must be an integer >= 1/],
    [{ train: { "batch-size": "2048" } }, /train\.batch-size must be an integer, got "2048"/],
    [{ train: { batchsize: 2048 } }, /unknown train option "batchsize"; did you mean "batch-size"\?/],
    [{ train: { seed: 3 } }, /"seed" is set by bench for every job; use --seeds/],
    [{ train: [] }, /train must be an object/],
    [{ grid: { tua: [0.1] } }, /unknown train option "tua"; did you mean "tau"\?/],
    [{ grid: { tau: 0.1 } }, /grid\.tau must be a non-empty list of values/],
    [{ grid: { tau: [0.1, 2] } }, /grid\.tau\[1\] must be <= 1/],
    [{ grid: { "method-opt": ["a=1"] } }, /cannot be a grid key/],
    [{ overrides: { lr: { lr: "x" } } }, /overrides\.lr\.lr must be a number, got "x"/],
    [{ methodGrid: { ew: { lr: [] } } }, /methodGrid\.ew\.lr must be a non-empty list of values/],
    [{ methodGrid: { ew: { lrr: [0.1] } } }, /unknown train option "lrr"; did you mean "lr"\?/],
    [{ methodGrid: { ew: [0.1] } }, /methodGrid\.ew must be an object/],
    [{ modelOptions: { expertUnits: { a: 1 } } }, /modelOptions\.expertUnits must be a string, number, boolean or list of numbers/],
    [{ out: 3 }, /out must be a non-empty string/],
  ];
  for (const [x, re] of bad) assert.throws(() => checkSweepFile(x, w), re, JSON.stringify(x));
  const ok = checkSweepFile({ methods: "ew,gradcraft", seeds: [0, 4294967295], modelOptions: { expertUnits: [64, 32], levels: 2 }, grid: { tau: [0.1, 0.3] } }, w);
  assert.deepEqual(ok.methods, ["ew,gradcraft"]);
  assert.deepEqual(ok.seeds, [0, 4294967295]);
  assert.deepEqual(ok.modelOptions, { expertUnits: "64,32", levels: "2" });
});

test("methodGrid: a method's own values replace the shared grid's; names and reserved keys are checked", async () => {
  const cfg = await resolveSweepConfig({
    methods: ["ew", "gradcraft"], grid: { lr: [1e-3, 1e-2], tau: [0.1, 0.5] }, gridMethods: { tau: ["gradcraft"] },
    methodGrid: { ew: { lr: [1e-4, 1e-3] }, gradcraft: { eps: [1e-8] } },
  });
  const sel = selectionJobs(cfg);
  const pts = (m: string) => sel.filter((j) => j.method === m).map((j) => j.point);
  assert.deepEqual(pts("ew"), [{ lr: 1e-4 }, { lr: 1e-3 }]);
  // a key the shared grid lacks adds an axis for that method alone
  assert.equal(pts("gradcraft").length, 2 * 2 * 1);
  assert.ok(pts("gradcraft").every((p) => p.eps === 1e-8));
  await assert.rejects(resolveSweepConfig({ methods: ["ew"], methodGrid: { gradcarft: { lr: [1e-3] } } }), /methodGrid\.gradcarft: "gradcarft" is not one of this sweep's methods \(ew\)/);
  await assert.rejects(resolveSweepConfig({ methods: ["ew", "gradcraft"], methodGrid: { gradcarft: { lr: [1e-3] } } }), /did you mean "gradcraft"\?/);
  await assert.rejects(
    resolveSweepConfig({ methods: ["ew", "gradcraft"], grid: { tau: [0.1] }, gridMethods: { tau: ["gradcraft"] }, methodGrid: { ew: { tau: [0.5] } } }),
    /methodGrid\.ew\.tau: gridMethods gives "tau" only to gradcraft; add "ew" there or remove this key/,
  );
});

test("--config files: invalid JSON names the file; every key has a default or a description", () => {
  const d = tempDir("sweepcfg");
  const p = join(d, "c.json");
  writeFileSync(p, "{ methods: [ew] }");
  assert.throws(() => readSweepFile(p), new RegExp(`--config ${p} is not valid JSON`));
  writeFileSync(p, JSON.stringify({ metods: ["ew"] }));
  assert.throws(() => readSweepFile(p), /unknown key "metods"; did you mean "methods"\?/);
  for (const f of SWEEP_CONFIG) assert.ok(f.description.length > 0 && typeof f.schema === "object", f.key);
});

test("--set and --grid keys must be train options bench does not set itself; values are parsed to their type", () => {
  assert.equal(parseSet("epochs", "3"), 3);
  assert.deepEqual(parseSet("method-opt", "beta=0.5"), ["beta=0.5"]);
  assert.throws(() => parseSet("epoch", "3"), /--set: unknown train option "epoch"; did you mean "epochs"\?/);
  assert.throws(() => parseSet("epochs", "three"), /--set epochs must be a number, got "three"/);
  assert.throws(() => parseSet("out", "x"), /"out" is set by bench/);
  assert.deepEqual(parseGridValues("lr", "1e-3, 5e-4"), [0.001, 0.0005]);
  assert.deepEqual(parseGridValues("scope", "shared,all"), ["shared", "all"]);
  assert.throws(() => parseGridValues("scope", "shared,everything"), /--grid scope must be one of shared, shared-dense, all, got "everything"/);
  assert.throws(() => parseGridValues("lrr", "1"), /--grid: unknown train option "lrr"; did you mean "lr"\?/);
  assert.throws(() => parseGridValues("tau", "0.1,,0.2"), /empty value/);
});
