/** The command line: listing, and bad options rejected with messages naming the option. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { existsSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { tempDir } from "./data/helpers.ts";
import { writeTinyDataset } from "./train/tiny-data.ts";
import { methodNames } from "../src/balance/registry.ts";

function cli(...args: string[]) {
  const r = spawnSync(process.execPath, ["--import", "tsx", "src/cli.ts", ...args], { encoding: "utf8", timeout: 120_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

test("methods lists every balancing method with its defaults", () => {
  const r = cli("methods");
  assert.equal(r.code, 0, r.err);
  for (const m of methodNames()) {
    assert.match(r.out, new RegExp(`^${m} `, "m"), `missing ${m}`);
  }
  assert.match(r.out, /gradcraft\s+GradCraft\s+gradient\s+tau=0\.1 eps=1e-10/);
});

test("bad options fail fast with a message naming the option, and write nothing", () => {
  const out = join(tempDir("cli"), "r.json");
  const cases: [string[], RegExp][] = [
    [["train", "--dataset", "kuairand", "--method", "bogus", "--out", out], /unknown method "bogus"/],
    [["train", "--dataset", "kuairand", "--epochs", "0", "--out", out], /--epochs must be >= 1/],
    [["train", "--dataset", "kuairand", "--tau", "1.5", "--out", out], /--tau must be <= 1/],
    [["train", "--dataset", "kuairand", "--scope", "weird", "--out", out], /--scope.*shared, shared-dense, all/],
    [["train", "--dataset", "kuairand", "--method", "gradcraft", "--method-opt", "tua=1", "--out", out], /unknown option "tua"/],
    [["train", "--dataset", "kuairand", "--model", "nope", "--out", out], /unknown model "nope"/],
    [["train", "--dataset", "no-such-dataset.json", "--out", out], /no-such-dataset\.json/],
    [["bench", "--methods", "ew,bogus", "--out", out], /unknown method "bogus"/],
  ];
  for (const [args, re] of cases) {
    const r = cli(...args);
    assert.notEqual(r.code, 0, `${args.join(" ")} should fail`);
    assert.match(r.err, re, `${args.join(" ")}: ${r.err}`);
  }
  assert.equal(existsSync(out), false);
});

test("every key is validated with a did-you-mean suggestion; seeds must be in [0, 2^32); nothing is written", () => {
  const dir = tempDir("cli-keys");
  const out = join(dir, "r.json");
  const bout = join(dir, "bench");
  const cfg = (name: string, x: unknown) => {
    const p = join(dir, name);
    writeFileSync(p, JSON.stringify(x));
    return p;
  };
  const cases: [string[], RegExp][] = [
    [["train", "--dataset", "kuairand", "--model", "ple", "--model-opt", "expertunits=16", "--out", out], /unknown option "expertunits"; did you mean "expertUnits"\?/],
    [["train", "--dataset", "kuairand", "--method", "dbmtl", "--method-opt", "betasigma=1", "--out", out], /unknown option "betasigma".*did you mean "betaSigma"\?/],
    [["train", "--dataset", "kuairand", "--method", "gradcraf", "--out", out], /unknown method "gradcraf".*did you mean "gradcraft"\?/],
    [["train", "--dataset", "kuairand", "--seed", "4294967296", "--out", out], /--seed must be < 4294967296/],
    [["train", "--dataset", "kuairand", "--seed", "-1", "--out", out], /--seed must be >= 0/],
    [["bench", "--config", cfg("metods.json", { metods: ["ew"] }), "--out", bout], /unknown key "metods"; did you mean "methods"\?/],
    [["bench", "--config", cfg("array.json", ["ew", "gradcraft"]), "--out", bout], /a sweep config must be a JSON object, got an array/],
    [["bench", "--config", cfg("type.json", { seeds: "3" }), "--out", bout], /seeds must be a count or a non-empty list of seeds, got "3"/],
    [["bench", "--config", cfg("seed.json", { seeds: [4294967296] }), "--out", bout], /seeds\[0\] must be an integer in \[0, 4294967296\)/],
    [["bench", "--config", cfg("train.json", { train: { "batch-size": "big" } }), "--out", bout], /train\.batch-size must be an integer, got "big"/],
    [["bench", "--set", "batchsize=64", "--out", bout], /--set: unknown train option "batchsize"; did you mean "batch-size"\?/],
    [["bench", "--set", "epochs=abc", "--out", bout], /--set epochs must be a number, got "abc"/],
    [["bench", "--set", "seed=4", "--out", bout], /"seed" is set by bench for every job; use --seeds/],
    [["bench", "--grid", "tua=0.1,0.3", "--out", bout], /--grid: unknown train option "tua"; did you mean "tau"\?/],
    [["bench", "--model", "ple", "--model-opt", "expertunits=16", "--out", bout], /unknown option "expertunits"; did you mean "expertUnits"\?/],
  ];
  for (const [args, re] of cases) {
    const r = cli(...args);
    assert.notEqual(r.code, 0, `${args.join(" ")} should fail`);
    assert.match(r.err, re, `${args.join(" ")}: ${r.err}`);
  }
  assert.equal(existsSync(out), false);
  assert.equal(existsSync(bout), false);
});

test("a usage error prints the error and a hint, not the whole help (so it stays the last line)", () => {
  const r = cli("train", "--dataset", "kuairand", "--bogus");
  assert.notEqual(r.code, 0);
  assert.match(r.err, /error: unknown option '--bogus'/);
  assert.match(r.err.trim().split("\n").at(-1)!, /add --help for usage/);
  assert.doesNotMatch(r.err, /Options:|--batch-size/);
});

const tinyRoot = tempDir("cli-tiny");
const tiny = writeTinyDataset(join(tinyRoot, "data"));
const tinyCache = join(tinyRoot, "cache");
const TINY = ["train", "--dataset", tiny, "--cache-dir", tinyCache, "--model", "shared-bottom", "--method", "ew", "--model-opt", "bottomUnits=4",
  "--emb-dim", "2", "--batch-size", "32", "--epochs", "1", "--max-steps", "4", "--patience", "0"];

test("an unwritable --out or --checkpoint fails at once, before any data is prepared", () => {
  const file = join(tinyRoot, "plain");
  writeFileSync(file, "x");
  const cache = join(tinyRoot, "cache-unused");
  const args = TINY.map((a) => (a === tinyCache ? cache : a));
  const r = cli(...args, "--out", join(file, "r.json"));
  assert.notEqual(r.code, 0);
  assert.match(r.err, /--out .*plain\/r\.json is not writable/);
  const c = cli(...args, "--checkpoint", join(file, "ck"));
  assert.match(c.err, /--checkpoint .*plain\/ck is not writable/);
  assert.equal(existsSync(cache), false, "nothing prepared");
});

test("a diverging run exits non-zero naming the step, task and value, and writes no result", () => {
  const out = join(tinyRoot, "div", "r.json");
  // --diag-every 1: every step goes through the balancing method (the per-task path)
  const r = cli(...TINY, "--lr", "1e9", "--diag-every", "1", "--out", out);
  assert.notEqual(r.code, 0);
  assert.match(r.err, /mtlcraft: training diverged at step \d+ \(epoch 1\): task "(click|like)" (has|loss)/);
  assert.equal(existsSync(out), false);
  assert.deepEqual(readdirSync(join(tinyRoot, "div")).filter((f) => !f.startsWith(".")), [], "no result, no diagnostics");
});

/** Runs the CLI with its stdout closed by the reader at once (as `| head -c0` would). */
function closedStdout(args: string[]): Promise<number | null> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ["--import", "tsx", "src/cli.ts", ...args], { stdio: ["ignore", "pipe", "ignore"] });
    child.stdout.destroy();
    child.on("close", (code) => resolve(code));
  });
}

test("a closed stdout (train ... | head) never exits 0 without a written result", async () => {
  const out = join(tinyRoot, "pipe", "r.json");
  // progress lines hit the closed pipe from the first step on: training still finishes and the result is written
  assert.equal(await closedStdout([...TINY, "--progress", "json", "--out", out]), 0);
  assert.ok(existsSync(out), "result written");
  // without --out the table on stdout was the only output: it is lost, so the exit status says so
  assert.notEqual(await closedStdout([...TINY]), 0);
});
