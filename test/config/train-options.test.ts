import { test } from "node:test";
import assert from "node:assert/strict";
import { BENCH_CONTROLLED, TRAIN_KEYS, TRAIN_OPTIONS, checkJobValue, parseTrainFlag, trainDefaults, trainFlag, validateTrainOptions } from "../../src/config/train-options.ts";
import { fieldJsonSchema, SEED_LIMIT } from "../../src/config/schema.ts";
import type { TrainOptions } from "../../src/train/run.ts";

const base: TrainOptions = { dataset: "d", model: "ple", method: "ew", seed: 1, epochs: 1, batchSize: 8, lr: 0.1, l2: 0, embDim: 4, dropout: 0, scope: "shared" };

test("one schema: every flag once, keys and defaults in one place, a JSON Schema per field", () => {
  const flags = TRAIN_OPTIONS.filter((f) => f.flag).map((f) => f.flag!);
  assert.equal(new Set(flags).size, flags.length);
  assert.equal(new Set(TRAIN_KEYS).size, TRAIN_KEYS.length);
  const d = trainDefaults();
  assert.equal(d.batchSize, 4096);
  assert.equal(d.seed, 1);
  assert.equal(d.tau, undefined, "--tau is a method-option shortcut, not a TrainOptions key");
  assert.deepEqual(fieldJsonSchema(trainFlag("seed", "x")), { description: "random seed (0 <= seed < 2^32)", type: "integer", minimum: 0, exclusiveMaximum: SEED_LIMIT, default: 1 });
});

test("library options: unknown keys get a suggestion, missing required keys and wrong types name the key", () => {
  assert.doesNotThrow(() => validateTrainOptions(base));
  assert.throws(() => validateTrainOptions({ ...base, batchsize: 8 } as never), /unknown option "batchsize"; did you mean "batchSize"\?/);
  assert.throws(() => validateTrainOptions({ ...base, dataset: undefined } as never), /train option dataset is required/);
  assert.doesNotThrow(() => validateTrainOptions({ dataset: "d" }), "every other key has a default");
  assert.throws(() => validateTrainOptions({ ...base, seed: SEED_LIMIT }), /seed must be < 4294967296/);
  assert.doesNotThrow(() => validateTrainOptions({ ...base, seed: SEED_LIMIT - 1 }));
  assert.throws(() => validateTrainOptions({ ...base, lr: Number.NaN }), /train option lr must be a number, got NaN/);
  assert.throws(() => validateTrainOptions({ ...base, dropout: 0.99 }), /dropout must be <= 0\.95/);
  assert.throws(() => validateTrainOptions({ ...base, modelOptions: [] as never }), /modelOptions must be an object/);
  assert.throws(() => validateTrainOptions({ ...base, progress: "loud" as never }), /progress must be one of bar, json, log, none/);
});

test("command-line strings are parsed to the field's type; bench job flags exclude what bench sets itself", () => {
  assert.equal(parseTrainFlag("batch-size", "64", "--set batch-size"), 64);
  assert.equal(parseTrainFlag("lr", "2e-3", "--set lr"), 0.002);
  assert.throws(() => parseTrainFlag("epochs", "two", "--set epochs"), /--set epochs must be a number, got "two"/);
  assert.throws(() => parseTrainFlag("epochs", "1.5", "--set epochs"), /must be an integer/);
  assert.throws(() => parseTrainFlag("seed", "4294967296", "--seed"), /--seed must be < 4294967296/);
  assert.throws(() => trainFlag("bach-size", "--set"), /--set: unknown train option "bach-size"; did you mean "batch-size"\?/);
  for (const k of Object.keys(BENCH_CONTROLLED)) assert.throws(() => checkJobValue(k, "x", `train.${k}`), /is set by bench for every job/, k);
  assert.deepEqual(checkJobValue("method-opt", ["beta=0.5", "c=1"], "train.method-opt"), ["beta=0.5", "c=1"]);
  assert.throws(() => checkJobValue("method-opt", 3, "train.method-opt"), /must be "key=value"/);
  assert.throws(() => checkJobValue("batch-size", "64", "config train.batch-size"), /config train\.batch-size must be an integer, got "64"/);
});
