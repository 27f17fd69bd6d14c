/**
 * The library API: runTraining with only dataset / model / method (everything else the CLI's
 * defaults, the cache in the working directory), custom methods and architectures as entry
 * objects or registered names, plugin modules, the sweep config's defaults, and bench's
 * absolute paths for its workers.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { availableParallelism } from "node:os";
import { runTraining } from "../../src/train/run.ts";
import { TRAIN_DEFAULTS, resolveTrainOptions } from "../../src/config/train-options.ts";
import { resolveSweepConfig } from "../../src/config/sweep-config.ts";
import { PAPER_METHODS } from "../../src/sweep/plan.ts";
import { absoluteJobOptions } from "../../src/sweep/runner.ts";
import { getMethod } from "../../src/balance/registry.ts";
import { ew } from "../../src/balance/ew.ts";
import { ARCHITECTURES, registerArchitecture, unregisterArchitecture, type ModelEntry } from "../../src/model/registry.ts";
import { COMMON_DEFAULTS, checkCommon, checkUnits, type ModelInput } from "../../src/model/common.ts";
import { ParamBuilder, buildTables, buildTower, mlp, tower } from "../../src/model/layers.ts";
import type { ModelCommonOptions } from "../../src/model/types.ts";
import { loadPlugins } from "../../src/plugins.ts";
import { Rng } from "../../src/util/rng.ts";
import { tempDir } from "../data/helpers.ts";
import { writeTinyDataset } from "./tiny-data.ts";

const root = tempDir("library");
const spec = writeTinyDataset(join(root, "data"));

test("runTraining({ dataset, model, method }): every other option defaulted as in the CLI, the cache in the working directory", async () => {
  const cwd = join(root, "cwd");
  const { mkdirSync } = await import("node:fs");
  mkdirSync(cwd);
  const was = process.cwd();
  process.chdir(cwd);
  try {
    const res = await runTraining({ dataset: spec, model: "shared-bottom", method: "ew" });
    assert.ok(res.steps > 0, "it trained");
    const cfg = res.config as Record<string, unknown>;
    for (const k of ["epochs", "batchSize", "lr", "l2", "embDim", "dropout", "scope", "seed", "patience", "diagEvery"] as const) {
      assert.deepEqual(cfg[k], TRAIN_DEFAULTS[k], k);
    }
    assert.ok(existsSync(join(cwd, ".cache", "datasets")), "default cache: .cache/datasets in the working directory");
  } finally {
    process.chdir(was);
  }
  await assert.rejects(runTraining({} as never), /train option dataset is required/);
  assert.equal(resolveTrainOptions({ dataset: "d" }).method, "gradcraft");
  assert.equal(resolveTrainOptions({ dataset: "d", epochs: 3 }).epochs, 3);
});

/** A user's architecture built from the exported layer helpers: one shared MLP, a tower per task. */
const tinyNet: ModelEntry = {
  name: "tiny-net",
  summary: "one shared MLP, a tower per task",
  defaults: { ...COMMON_DEFAULTS, units: [8] },
  create(input: ModelInput, options: Record<string, unknown> = {}) {
    const o = { ...COMMON_DEFAULTS, units: [8], ...options } as ModelCommonOptions & { units: number[] };
    checkCommon("tiny-net", input, o);
    checkUnits("tiny-net", "units", o.units);
    const rng = new Rng(o.seed);
    const tables = buildTables(input.fields, o.embDim, 1, rng, o.dtype, o.embInitStd);
    const b = new ParamBuilder(rng, o.dtype);
    const shared = b.mlp("shared", input.fields.length * o.embDim, o.units, "shared");
    const towers = Array.from({ length: input.numTasks }, (_, t) => buildTower(b, `t${t}`, shared.outDim, o.towerUnits, t));
    return {
      name: "tiny-net",
      numTasks: input.numTasks,
      dense: b.dense,
      tables,
      trunk: (p, xs, ctx) => [mlp(xs[0]!, p, shared, ctx)],
      head: (t, p, feats, _xs, ctx) => tower(feats[0]!, p, towers[t]!, ctx),
    };
  },
};

const small = { cacheDir: join(root, "cache"), maxSteps: 2, epochs: 1, batchSize: 32, embDim: 2, patience: 0 };

test("a user's architecture and method as entry objects, then by registered name", async () => {
  const halfEw = { ...ew, name: "half-ew", label: "HalfEW", summary: "EW under another name" };
  const a = await runTraining({ dataset: spec, model: tinyNet, method: halfEw, modelOptions: { units: [4] }, ...small });
  assert.equal(a.model, "tiny-net");
  assert.equal(a.method, "half-ew");
  assert.equal(a.methodLabel, "HalfEW");
  assert.equal(a.steps, 2);
  await assert.rejects(runTraining({ dataset: spec, model: tinyNet, method: "ew", modelOptions: { unit: [4] }, ...small }), /model tiny-net: unknown option "unit"; did you mean "units"\?/);
  registerArchitecture(tinyNet);
  try {
    assert.ok(ARCHITECTURES.has("tiny-net"));
    assert.throws(() => registerArchitecture({ ...tinyNet }), /already registered/);
    assert.throws(() => registerArchitecture({ ...tinyNet, name: "ple" }), /"ple" is a built-in architecture/);
    const b = await runTraining({ dataset: spec, model: "tiny-net", method: "ew", modelOptions: { units: "4" }, ...small });
    assert.equal(b.steps, 2);
  } finally {
    unregisterArchitecture("tiny-net");
  }
  await assert.rejects(runTraining({ dataset: spec, model: "tiny-net", method: "ew", ...small }), /unknown model "tiny-net"/);
});

test("a plugin module registers its methods for the library and the CLI (`methods --plugin`, `train --plugin`)", async () => {
  const plugin = join(root, "plugin.mjs");
  // self-contained: an EW under another name, returning direction = Σ g_i
  writeFileSync(
    plugin,
    `export const sumAll = {
  name: "sum-all", label: "SumAll", kind: "gradient", summary: "plain sum of the task gradients", defaults: {},
  create(numTasks) {
    return {
      name: "sum-all", kind: "gradient", numTasks,
      combine(input) {
        const T = input.grads.length, d = input.grads[0].length, direction = new Float32Array(d);
        for (const g of input.grads) for (let k = 0; k < d; k++) direction[k] += g[k];
        const n = new Float64Array(T).fill(1);
        return { direction, coeffs: n, taskScale: n.slice(), diagnostics: { norms: new Float64Array(T), cosines: new Float64Array(T * T), conflicts: 0 } };
      },
      getState: () => null, setState: () => {},
    };
  },
};
export default { methods: [sumAll] };
`,
  );
  assert.deepEqual(await loadPlugins([plugin]), [plugin]);
  assert.equal(getMethod("sum-all").label, "SumAll");
  await assert.rejects(loadPlugins([join(root, "none.mjs")]), /--plugin .*none\.mjs: no such file/);
  const empty = join(root, "empty.mjs");
  writeFileSync(empty, "export const x = 1;\n");
  await assert.rejects(loadPlugins([empty]), /exports no methods and no architectures/);
  const cli = (...args: string[]) => spawnSync(process.execPath, ["--import", "tsx", "src/cli.ts", ...args], { encoding: "utf8", timeout: 120_000 });
  const m = cli("methods", "--plugin", plugin);
  assert.equal(m.status, 0, m.stderr);
  assert.match(m.stdout, /^sum-all\s+SumAll\s+gradient/m);
  const out = join(root, "cli-train.json");
  const t = cli("train", "--dataset", spec, "--cache-dir", small.cacheDir, "--model", "shared-bottom", "--model-opt", "bottomUnits=4", "--method", "sum-all",
    "--plugin", plugin, "--max-steps", "2", "--epochs", "1", "--batch-size", "32", "--emb-dim", "2", "--patience", "0", "--out", out);
  assert.equal(t.status, 0, t.stderr);
  assert.match(t.stdout, /SumAll on tiny/);
  const bad = cli("train", "--dataset", spec, "--method", "sum-all", "--out", join(root, "never.json"));
  assert.notEqual(bad.status, 0);
  assert.match(bad.stderr, /unknown method "sum-all"/);
});

test("resolveSweepConfig: bench's defaults, keys checked, plugins loaded with absolute paths", async () => {
  const cfg = await resolveSweepConfig({});
  assert.equal(cfg.dataset, "kuairand");
  assert.equal(cfg.model, "ple");
  assert.deepEqual(cfg.methods, ["single", "lr", ...PAPER_METHODS]);
  assert.deepEqual(cfg.seeds, [1, 2, 3]);
  assert.equal(cfg.out, "runs/bench");
  assert.equal(cfg.jobs, availableParallelism());
  assert.deepEqual(cfg.overrides, { lr: { lr: 0.01 } });
  await assert.rejects(resolveSweepConfig({ metods: ["ew"] } as never), /unknown key "metods"; did you mean "methods"\?/);
  await assert.rejects(resolveSweepConfig({ model: "plee" }), /--model: unknown model "plee".*did you mean "ple"\?/);
  // plugin paths relative to the working directory; a plugin's method is a valid --methods name
  const withPlugin = await resolveSweepConfig({ methods: ["ew", "sum-all"], plugins: ["plugin.mjs"] }, { cwd: root });
  assert.deepEqual(withPlugin.plugins, [join(root, "plugin.mjs")]);
  assert.deepEqual(withPlugin.methods, ["ew", "sum-all"]);
});

test("bench hands its workers absolute paths: spec, cache (the default one included), source, wechat folder", () => {
  const cwd = "/home/u/project";
  assert.deepEqual(absoluteJobOptions({ dataset: "specs/my.json", "cache-dir": "c", source: "../raw", epochs: 1 }, cwd), {
    dataset: "/home/u/project/specs/my.json",
    "cache-dir": "/home/u/project/c",
    source: "/home/u/raw",
    epochs: 1,
  });
  assert.deepEqual(absoluteJobOptions({ dataset: "kuairand" }, cwd), { dataset: "kuairand", "cache-dir": resolve(cwd, ".cache/datasets") });
  assert.equal(absoluteJobOptions({ dataset: "wechat:raw/wx" }, cwd).dataset, "wechat:/home/u/project/raw/wx");
});
