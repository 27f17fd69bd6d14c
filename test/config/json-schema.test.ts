/**
 * The JSON Schema files (schemas/*.json) are generated from the option schemas and kept
 * current; they accept the shipped configs and dataset specs, reject unknown keys and
 * wrong types, and carry the same defaults as the CLI.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import Ajv from "ajv";
import { SCHEMA_FILES, schemaText } from "../../src/config/json-schema.ts";
import { TRAIN_DEFAULTS, TRAIN_KEYS, TRAIN_OPTIONS, type TrainOptions } from "../../src/config/train-options.ts";
import { SWEEP_KEYS, type SweepFile } from "../../src/config/sweep-config.ts";
import { tempDir } from "../data/helpers.ts";
import { writeTinyDataset } from "../train/tiny-data.ts";
import { generateSynth, synthSpec } from "../../src/data/synth.ts";

const read = (p: string): unknown => JSON.parse(readFileSync(p, "utf8"));
const ajv = new Ajv({ allErrors: true });
const validator = (name: string) => ajv.compile(read(join("schemas", name)) as object);

test("schemas/*.json are what the option schemas generate (run `npm run schemas` after changing an option)", () => {
  assert.deepEqual(readdirSync("schemas").sort(), Object.keys(SCHEMA_FILES).sort());
  for (const name of Object.keys(SCHEMA_FILES)) assert.equal(readFileSync(join("schemas", name), "utf8"), schemaText(name), `schemas/${name} is stale`);
});

test("every TrainOptions and SweepFile key has a schema entry (and nothing else does)", () => {
  // Record<keyof X, true>: the compiler rejects a missing or an extra key here.
  const train: Record<keyof TrainOptions, true> = {
    dataset: true, source: true, cacheDir: true, model: true, modelOptions: true, method: true, methodOptions: true, seed: true, epochs: true,
    maxSteps: true, batchSize: true, lr: true, l2: true, embDim: true, dropout: true, scope: true, balanceAt: true, evalEvery: true, evalBatchSize: true,
    patience: true, minDelta: true, diagEvery: true, maxEvalRows: true, out: true, checkpoint: true, checkpointEvery: true, interruptAfter: true,
    progress: true, threads: true, device: true, memory: true,
  };
  assert.deepEqual([...TRAIN_KEYS].sort(), Object.keys(train).sort());
  const sweep: Record<keyof SweepFile, true> = {
    $schema: true, description: true, dataset: true, model: true, methods: true, seeds: true, train: true, grid: true, gridMethods: true, methodGrid: true,
    modelOptions: true, overrides: true, jobs: true, out: true, plugins: true,
  };
  assert.deepEqual([...SWEEP_KEYS].sort(), Object.keys(sweep).sort());
});

test("the sweep-config schema accepts configs/*.json and rejects unknown keys and wrong types", () => {
  const v = validator("sweep-config.schema.json");
  for (const f of readdirSync("configs")) {
    // configs/conflict*.json are `mtlcraft conflict` configs: their `sweep` is a bench config (without dataset and out)
    const c = read(join("configs", f)) as Record<string, unknown>;
    assert.ok(v(f.startsWith("conflict") ? c.sweep : c), `configs/${f}: ${ajv.errorsText(v.errors)}`);
  }
  assert.ok(v({ dataset: "spec.json", seeds: [1, 2], train: { "batch-size": 64, "method-opt": ["tau=0.2"] }, grid: { tau: [0.1, 0.3] }, plugins: ["./m.mjs"] }), ajv.errorsText(v.errors));
  const bad: unknown[] = [{ metods: ["ew"] }, { seeds: "3" }, { train: { "batch-size": "big" } }, { train: { seed: 3 } }, { grid: { tua: [1] } }, { overrides: { lr: { lr: "x" } } }];
  for (const x of bad) assert.equal(v(x), false, JSON.stringify(x));
});

test("the dataset-spec schema accepts the bundled specs and a tiny CSV spec, and rejects unknown keys and task kinds", () => {
  const v = validator("dataset-spec.schema.json");
  for (const f of readdirSync(join("data", "specs"))) assert.ok(v(read(join("data", "specs", f))), `data/specs/${f}: ${ajv.errorsText(v.errors)}`);
  const tiny = read(writeTinyDataset(tempDir("schema-tiny"))) as Record<string, unknown>;
  assert.ok(v(tiny), ajv.errorsText(v.errors));
  assert.ok(v(synthSpec(generateSynth({ cosine: -0.5, seed: 1, rows: 100 }))), `mtlcraft synth's spec: ${ajv.errorsText(v.errors)}`);
  assert.equal(v({ ...tiny, catgorical: ["x"] }), false);
  assert.equal(v({ ...tiny, tasks: [{ name: "c", kind: "bogus", column: "c" }] }), false);
  assert.equal(v({ ...tiny, split: { kind: "fraction", train: 2, val: 0, test: 0, seed: 1 } }), false);
});

test("the train-options schema: only dataset required, defaults equal to the CLI's (`train --help`)", () => {
  const s = read(join("schemas", "train-options.schema.json")) as { properties: Record<string, { default?: unknown }>; required: string[] };
  const v = validator("train-options.schema.json");
  assert.deepEqual(s.required, ["dataset"]);
  assert.ok(v({ dataset: "kuairand", epochs: 3, modelOptions: { expertUnits: [64, 32] } }), ajv.errorsText(v.errors));
  assert.equal(v({ dataset: "kuairand", epoch: 3 }), false);
  assert.equal(v({ dataset: "kuairand", seed: 2 ** 32 }), false);
  for (const [k, d] of Object.entries(TRAIN_DEFAULTS)) assert.deepEqual(s.properties[k]!.default, d, k);
  const help = spawnSync(process.execPath, ["--import", "tsx", "src/cli.ts", "train", "--help"], { encoding: "utf8" }).stdout.replace(/\s+/g, " ");
  for (const f of TRAIN_OPTIONS) {
    if (!f.flag || f.default === undefined || f.key === "progress") continue;
    const shown = typeof f.default === "string" ? `"${f.default}"` : String(f.default);
    assert.ok(help.includes(`(default: ${shown})`) || help.includes(`default: ${shown})`), `--${f.flag}: default ${shown} not in train --help`);
  }
});
