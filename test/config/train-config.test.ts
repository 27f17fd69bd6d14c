/**
 * `train --config run.json`: the train flags as JSON keys, checked by the flags' rules, relative
 * paths from the file's folder, command-line flags over the file (only when typed), and no
 * weaker than the flags for paths that escape through symlinks.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import Ajv from "ajv";
import { checkTrainConfig, mergeTrainValue, readTrainConfig, TRAIN_CONFIG_KEYS, type TrainConfig } from "../../src/config/train-config.ts";
import { TRAIN_FLAGS } from "../../src/config/train-options.ts";
import { tempDir } from "../data/helpers.ts";
import { writeTinyDataset } from "../train/tiny-data.ts";

const REPO = process.cwd();
const CLI = join(REPO, "src", "cli.ts");

function write(dir: string, name: string, content: unknown): string {
  const p = join(dir, name);
  writeFileSync(p, typeof content === "string" ? content : JSON.stringify(content));
  return p;
}

/** Runs the CLI (through tsx) in `cwd`; resolves with its exit code and output. */
function cli(args: string[], cwd: string, env: NodeJS.ProcessEnv = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((res, rej) => {
    const p = spawn(process.execPath, ["--import", join(REPO, "node_modules/tsx/dist/esm/index.mjs"), CLI, ...args], { cwd, env: { ...process.env, ...env } });
    let stdout = "";
    let stderr = "";
    p.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    p.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    p.on("error", rej);
    p.on("close", (code) => res({ code, stdout, stderr }));
  });
}

test("keys are the train flags (plus plugin, $schema, description); values keep the flags' types", () => {
  assert.deepEqual(TRAIN_CONFIG_KEYS.filter((k) => !TRAIN_FLAGS.includes(k)), ["$schema", "description", "plugin"]);
  const c = checkTrainConfig(
    { $schema: "x", description: "d", method: "ew", "batch-size": 64, lr: 0.01, scope: "all", tau: 0.2, "model-opt": { expertUnits: [64, 32], levels: 2 }, "method-opt": ["a=1", "b=x"] },
    "cfg",
    "/base",
  );
  assert.deepEqual(c.values, { method: "ew", "batch-size": 64, lr: 0.01, scope: "all", tau: 0.2, "model-opt": { expertUnits: "64,32", levels: "2" }, "method-opt": { a: "1", b: "x" } });
  assert.deepEqual(checkTrainConfig({ "method-opt": "tau=0.3" }, "cfg", "/b").values["method-opt"], { tau: "0.3" });
});

test("relative paths resolve against the config's folder; built-in names stay names; absolute paths stay", () => {
  const c = checkTrainConfig(
    { dataset: "specs/d.json", source: "raw", "cache-dir": "../cache", out: "runs/r.json", checkpoint: "/abs/ck", plugin: ["./m.mjs", "/p/n.mjs"] },
    "cfg",
    "/base/conf",
  );
  assert.deepEqual(c.values, { dataset: "/base/conf/specs/d.json", source: "/base/conf/raw", "cache-dir": "/base/cache", out: "/base/conf/runs/r.json", checkpoint: "/abs/ck" });
  assert.deepEqual(c.plugins, ["/base/conf/m.mjs", "/p/n.mjs"]);
  assert.equal(checkTrainConfig({ dataset: "kuairand" }, "cfg", "/b").values.dataset, "kuairand");
  assert.equal(checkTrainConfig({ dataset: "wechat:raw/wx" }, "cfg", "/b").values.dataset, "wechat:/b/raw/wx");
  // a bare word that is no file there stays as written, so the data layer's "did you mean" names it
  assert.equal(checkTrainConfig({ dataset: "kuairnd" }, "cfg", "/nowhere").values.dataset, "kuairnd");
  assert.equal(checkTrainConfig({ dataset: "d.json" }, "cfg", "/b").values.dataset, "/b/d.json");
  assert.equal(checkTrainConfig({ plugin: "m.mjs" }, "cfg", "/b").plugins[0], "/b/m.mjs");
});

test("a symlinked config resolves its paths from the folder it really lies in", () => {
  const d = tempDir("tcfg-link");
  mkdirSync(join(d, "real"));
  mkdirSync(join(d, "elsewhere"));
  write(join(d, "real"), "run.json", { out: "r.json" });
  symlinkSync(join(d, "real", "run.json"), join(d, "elsewhere", "run.json"));
  assert.equal(readTrainConfig(join(d, "elsewhere", "run.json")).values.out, join(d, "real", "r.json"));
  assert.equal(readTrainConfig("run.json", join(d, "elsewhere")).values.out, join(d, "real", "r.json"), "relative --config: from the given cwd");
});

test("hostile configs: not an object, unknown or bench-only keys, wrong types and ranges name the file and key", () => {
  const d = tempDir("tcfg-bad");
  const bad: [unknown, RegExp][] = [
    [["ew"], /^Error: --config .*c\.json: a train config must be a JSON object of train options, got an array$/],
    [null, /must be a JSON object of train options, got null/],
    [42, /must be a JSON object of train options, got 42/],
    [{ "batch-sise": 8 }, /--config .*c\.json: unknown train option "batch-sise"; did you mean "batch-size"\? \(valid: \$schema, description, dataset, /],
    [{ batchSize: 8 }, /unknown train option "batchSize"; did you mean "batch-size"\?/],
    [{ metod: "ew" }, /unknown train option "metod"; did you mean "method"\?/],
    [{ seeds: 3 }, /unknown train option "seeds"; did you mean "seed"\? .*\("seeds" is a key of a bench config, bench --config; a train config takes the train command's flags\)$/],
    [{ grid: { lr: [1] } }, /unknown train option "grid".*"grid" is a key of a bench config/],
    [{ plugins: ["m.mjs"] }, /unknown train option "plugins"; did you mean "plugin"\?.*"plugins" is a key of a bench config/],
    [{ "max-eval-rows": 5 }, /unknown train option "max-eval-rows"/], // library-only options have no flag, hence no config key
    [{ "batch-size": "32" }, /--config .*c\.json: batch-size must be an integer, got "32"/],
    [{ "batch-size": 0 }, /batch-size must be >= 1, got 0/],
    [{ "batch-size": 1.5 }, /batch-size must be an integer, got 1\.5/],
    [{ seed: 2 ** 32 }, /seed must be < 4294967296/],
    [{ dropout: 0.99 }, /dropout must be <= 0\.95/],
    [{ scope: "every" }, /scope must be one of shared, shared-dense, all, got "every"/],
    [{ device: "tpu" }, /device must be one of cpu, cuda/],
    [{ lr: null }, /lr must not be null \(leave the key out for the default\)/],
    [{ dataset: "" }, /dataset must be a non-empty string/],
    [{ dataset: 5 }, /dataset must be a string, got 5/],
    [{ out: ["a"] }, /out must be a string, got \["a"\]/],
    [{ "model-opt": { units: { deep: 1 } } }, /model-opt\.units must be a string, number, boolean or list of numbers/],
    [{ "method-opt": "tau" }, /method-opt must be an object of key: value, a "key=value" string or a list of them, got "tau"/],
    [{ plugin: 3 }, /plugin must be a path or a list of paths, got 3/],
    [{ plugin: [""] }, /plugin\[0\] must be a non-empty string/],
    [{ description: 1 }, /description must be a string/],
  ];
  for (const [content, re] of bad) {
    const p = write(d, "c.json", content);
    assert.throws(() => readTrainConfig(p), re, JSON.stringify(content));
  }
  // a long wrong value is cut in the message
  const p = write(d, "c.json", { "method-opt": "x".repeat(5000) });
  assert.throws(() => readTrainConfig(p), (e: Error) => e.message.length < 400);
});

test("unreadable configs: missing, a folder, too large, invalid JSON (its text is not quoted)", () => {
  const d = tempDir("tcfg-read");
  assert.throws(() => readTrainConfig(join(d, "none.json")), /^Error: --config .*none\.json: no such file$/);
  assert.throws(() => readTrainConfig(d), /--config .*: not a regular file/);
  const big = write(d, "big.json", `{"description": "${"x".repeat(1 << 20)}"}`);
  assert.throws(() => readTrainConfig(big), /big\.json: \d+ bytes; a train config is at most 1048576 bytes/);
  const broken = write(d, "broken.json", '{"out": SECRET-TOKEN-42}');
  assert.throws(
    () => readTrainConfig(broken),
    (e: Error) => /--config .*broken\.json is not valid JSON: Unexpected token 'S'$/.test(e.message) && !e.message.includes("SECRET"),
  );
  const cut = write(d, "cut.json", '{\n  "out": "a",\n  "lr" 1\n}');
  assert.throws(() => readTrainConfig(cut), /cut\.json is not valid JSON: Unexpected number in JSON at position 23 \(line 3, column 8\)$/);
});

test("merge: a typed flag wins (even at its default value); a flag left at its default does not; maps merge key by key", () => {
  const cfg: TrainConfig = { where: "cfg", dir: "/b", values: { seed: 7, lr: 0.01, "model-opt": { a: "1", b: "2" } }, plugins: [] };
  assert.equal(mergeTrainValue("seed", 1, true, cfg), 1, "--seed 1 typed: wins although 1 is the default");
  assert.equal(mergeTrainValue("seed", 1, false, cfg), 7, "--seed not typed: the file's 7, not the default 1");
  assert.equal(mergeTrainValue("lr", 0.02, true, cfg), 0.02);
  assert.equal(mergeTrainValue("epochs", 10, false, cfg), 10, "not in the file: the default");
  assert.equal(mergeTrainValue("out", undefined, false, cfg), undefined);
  assert.equal(mergeTrainValue("seed", 3, false, null), 3, "no config: the command line as before");
  assert.deepEqual(mergeTrainValue("model-opt", { b: "9", c: "3" }, true, cfg), { a: "1", b: "9", c: "3" });
  assert.deepEqual(mergeTrainValue("model-opt", undefined, false, cfg), { a: "1", b: "2" });
  assert.equal(mergeTrainValue("method-opt", undefined, false, cfg), undefined);
});

test("schemas/train-config.schema.json accepts a config and rejects typos, bench keys and wrong types", () => {
  const v = new Ajv({ allErrors: true }).compile(JSON.parse(readFileSync("schemas/train-config.schema.json", "utf8")) as object);
  const good = { $schema: "./s.json", dataset: "d.json", "batch-size": 64, tau: 0.2, "model-opt": { expertUnits: [64, 32] }, "method-opt": ["a=1"], plugin: "./m.mjs" };
  assert.ok(v(good), JSON.stringify(v.errors));
  assert.doesNotThrow(() => checkTrainConfig(good, "cfg", "/b"), "what the schema accepts, the reader accepts");
  for (const x of [{ "batch-sise": 1 }, { seeds: 3 }, { "batch-size": "32" }, { scope: "every" }, { seed: 2 ** 32 }, { "method-opt": "tau" }]) {
    assert.equal(v(x), false, JSON.stringify(x));
    assert.throws(() => checkTrainConfig(x, "cfg", "/b"), Error, JSON.stringify(x));
  }
});

test("the README's train config example is valid", () => {
  const m = /```json\n(\{\n {2}"\$schema": "\.\/node_modules\/mtlcraft\/schemas\/train-config\.schema\.json"[\s\S]*?)\n```/.exec(readFileSync("README.md", "utf8"));
  assert.ok(m, "README.md shows a train config");
  const json = JSON.parse(m[1]!) as unknown;
  const v = new Ajv({ allErrors: true }).compile(JSON.parse(readFileSync("schemas/train-config.schema.json", "utf8")) as object);
  assert.ok(v(json), JSON.stringify(v.errors));
  assert.equal(checkTrainConfig(json, "README", "/p").values.out, "/p/runs/gc.json");
});

test("train --config through the CLI: paths from the file's folder, typed flags win, defaults do not, --dataset from the file", { timeout: 300_000 }, async () => {
  const d = tempDir("tcfg-cli");
  const conf = join(d, "conf");
  writeTinyDataset(join(conf, "data"));
  write(conf, "run.json", {
    dataset: "data/tiny.json",
    model: "shared-bottom",
    "model-opt": { bottomUnits: [4] },
    method: "ew",
    "emb-dim": 2,
    "batch-size": 32,
    epochs: 1,
    "max-steps": 2,
    patience: 0,
    seed: 7,
    lr: 0.01,
    dropout: 0.1,
    "cache-dir": "cache",
    out: "runs/r.json",
  });
  const work = join(d, "work");
  mkdirSync(work);
  const [r, help, none] = await Promise.all([
    // from another folder: --seed 1 and --dropout 0.2 equal the defaults but are typed, so they win; --lr too
    cli(["train", "--config", "../conf/run.json", "--seed", "1", "--dropout", "0.2", "--lr", "0.02", "--model-opt", "towerUnits=3"], work),
    cli(["train", "--help"], work),
    cli(["train", "--epochs", "1"], work),
  ]);
  assert.equal(r.code, 0, r.stderr);
  const res = JSON.parse(readFileSync(join(conf, "runs", "r.json"), "utf8")) as { seed: number; config: Record<string, unknown> };
  assert.equal(res.seed, 1);
  assert.equal(res.config.lr, 0.02);
  assert.equal(res.config.dropout, 0.2, "a typed flag at its default value still wins");
  assert.equal(res.config.batchSize, 32, "a flag left at its default (4096) does not override the file");
  assert.equal(res.config.embDim, 2);
  assert.equal(res.config.maxSteps, 2);
  assert.equal(res.config.epochs, 1);
  assert.deepEqual(res.config.modelOptions, { bottomUnits: "4", towerUnits: "3" }, "model-opt merged key by key");
  assert.equal(res.config.dataset, join(conf, "data", "tiny.json"));
  assert.equal(res.config.cacheDir, join(conf, "cache"));
  assert.match(r.stdout, new RegExp(`result: ${join(conf, "runs", "r.json").replace(/[.]/g, "\\.")}`));
  assert.match(help.stdout, /--config <file>\s+JSON file of these options, keyed by flag name/);
  assert.match(help.stdout, /resolved against the file's folder/);
  assert.equal(none.code, 1);
  assert.match(none.stderr, /^mtlcraft: train: --dataset is required \(on the command line or as "dataset" in --config\)$/m);
});

test("a config path escaping through a symlink is refused exactly as the same flag is", { timeout: 300_000 }, async () => {
  const d = tempDir("tcfg-escape");
  const spec = writeTinyDataset(join(d, "data"));
  // an output that is a symlink onto the dataset's input
  symlinkSync(join(d, "data", "log.csv"), join(d, "link.json"));
  write(d, "out.json", { dataset: "data/tiny.json", out: "link.json", "cache-dir": "cache", "max-steps": 1 });
  // a queue worker's confinement: the spec's log leads outside the data folder through a symlink
  const inner = join(d, "inner");
  mkdirSync(inner);
  writeFileSync(join(inner, "tiny.json"), readFileSync(spec));
  symlinkSync(join(d, "data", "log.csv"), join(inner, "log.csv"));
  write(d, "conf.json", { dataset: "inner/tiny.json", "cache-dir": "cache", "max-steps": 1 });
  const confine = { MTLCRAFT_CONFINE_DATA: inner };
  const [outCfg, outFlag, confCfg, confFlag] = await Promise.all([
    cli(["train", "--config", "out.json"], d),
    cli(["train", "--dataset", "data/tiny.json", "--out", "link.json", "--cache-dir", "cache", "--max-steps", "1"], d),
    cli(["train", "--config", "conf.json"], d, confine),
    cli(["train", "--dataset", "inner/tiny.json", "--cache-dir", "cache", "--max-steps", "1"], d, confine),
  ]);
  for (const r of [outCfg, outFlag, confCfg, confFlag]) assert.equal(r.code, 1, r.stderr);
  const last = (s: string) => s.trim().split("\n").pop()!;
  assert.match(last(outFlag.stderr), /^mtlcraft: --out link\.json \(.*log\.csv\) is the dataset input .*log\.csv; an output must not replace an input$/);
  assert.equal(last(outCfg.stderr), last(outFlag.stderr).replace("--out link.json", `--out ${join(d, "link.json")}`), "the same refusal, the path shown absolute");
  assert.match(last(confFlag.stderr), /spec\.log\[0\] \("log\.csv"\) leads outside the data folder \(through a symbolic link\)/);
  assert.equal(last(confCfg.stderr), last(confFlag.stderr));
  assert.equal(readFileSync(join(d, "data", "log.csv"), "utf8").startsWith("user_id,item_id,click,like\n"), true, "the input is intact");
});

test("a config whose out or checkpoint is the config file itself is refused, and the file is left as it was", { timeout: 300_000 }, async () => {
  const dir = tempDir("cfg-self");
  for (const [key, name] of [["out", "self.json"], ["checkpoint", "ck.json"]] as const) {
    const text = JSON.stringify({ dataset: "kuairand", [key]: name, "max-steps": 1 });
    const file = join(dir, name);
    writeFileSync(file, text);
    const r = await cli(["train", "--config", file], dir);
    assert.notEqual(r.code, 0, `${key}: exit ${r.code}`);
    // --out names the config it would replace; a checkpoint over a file is refused as "a file; give a folder"
    assert.match(r.stderr, key === "out" ? /--out .*--config/ : /--checkpoint .* is a file; give a folder/, r.stderr);
    assert.equal(readFileSync(file, "utf8"), text, "the config is unchanged");
  }
});
