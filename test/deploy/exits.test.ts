/**
 * Clean exits of `score` and `export` (src/util/tempdirs.ts): SIGTERM or SIGINT in the middle
 * removes the command's work folder and temporary output and exits 143 / 130, leaving an existing
 * output as it was; what a killed command (dead pid) left is removed when the next score or
 * export starts in that folder.
 */
import { before, test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, watch, writeFileSync } from "node:fs";
import { join } from "node:path";
import { processAlive } from "../../src/util/lock.ts";
import { Rng } from "../../src/util/rng.ts";
import { tempDir } from "../data/helpers.ts";
import { tinyModel } from "./tiny-model.ts";

const root = tempDir("exits");
let modelDir = "";
const big = join(root, "big.csv");

before(async () => {
  ({ modelDir } = await tinyModel(root));
  // large enough that scoring it in batches of 256 rows takes seconds
  const rng = new Rng(7);
  const lines = ["user_id,item_id"];
  for (let r = 0; r < 200_000; r++) lines.push(`${rng.int(14)},${rng.int(22)}`);
  writeFileSync(big, lines.join("\n") + "\n");
});

function cli(args: string[]): ChildProcess {
  return spawn(process.execPath, ["--import", "tsx", "src/cli.ts", ...args], { stdio: ["ignore", "ignore", "pipe"] });
}

function exited(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }> {
  let stderr = "";
  child.stderr?.on("data", (b: Buffer) => (stderr += String(b)));
  return new Promise((resolve) => child.once("exit", (code, signal) => resolve({ code, signal, stderr })));
}

/** Resolves when an entry whose name matches `re` appears in `dir`. */
function appears(dir: string, re: RegExp): Promise<string> {
  return new Promise((resolve) => {
    const w = watch(dir, (_ev, name) => {
      if (name && re.test(name)) {
        w.close();
        resolve(name);
      }
    });
  });
}

const ours = (dir: string): string[] => readdirSync(dir).filter((n) => /\.mtlcraft-score-|\.tmp-|\.old-/.test(n));

for (const [sig, code] of [["SIGTERM", 143], ["SIGINT", 130]] as const) {
  test(`${sig} in the middle of score removes its work folder and temporary output, exits ${code}, and leaves the existing output as it was`, async () => {
    const dir = join(root, `score-${sig}`);
    mkdirSync(dir);
    const out = join(dir, "scores.parquet");
    writeFileSync(out, "the previous scores");
    const seen = appears(dir, /^\.mtlcraft-score-\d+-/);
    const child = cli(["score", "--model", modelDir, "--input", big, "--out", out, "--batch-size", "256"]);
    const done = exited(child);
    const work = join(dir, await seen);
    // mid-score: the work database is open and being filled
    for (let i = 0; i < 300 && !existsSync(join(work, "work.duckdb")); i++) await new Promise((r) => setTimeout(r, 20));
    await new Promise((r) => setTimeout(r, 700));
    assert.equal(child.exitCode, null, "score was still running when the signal was sent");
    child.kill(sig);
    const r = await done;
    assert.deepEqual([r.code, r.signal], [code, null], r.stderr);
    assert.deepEqual(ours(dir), [], "no work folder or temporary output is left");
    assert.deepEqual(readdirSync(dir), ["scores.parquet"]);
    assert.equal(readFileSync(out, "utf8"), "the previous scores");
  });
}

test("SIGTERM in the middle of export removes its temporary model folder and exits 143", async () => {
  const out = join(root, "exported");
  const seen = appears(root, /^\.exported\.tmp-\d+-/);
  const child = cli(["export", join(root, "run.json"), "--out", out, "--cache-dir", join(root, "cache")]);
  const done = exited(child);
  await seen;
  child.kill("SIGTERM");
  const r = await done;
  assert.deepEqual([r.code, r.signal], [143, null], `export must still have been running (it takes ~200 ms after its temporary folder appears): ${r.stderr}`);
  assert.deepEqual(ours(root), []);
  assert.equal(existsSync(out), false);
});

test("what a killed score or export left (its pid dead) is removed when the next score or export starts in that folder", async () => {
  const dead = spawnSync("true").pid;
  assert.ok(!processAlive(dead));
  const dir = join(root, "stale");
  mkdirSync(dir);
  const plant = (): void => {
    mkdirSync(join(dir, `.mtlcraft-score-${dead}-Ab12Cd`));
    writeFileSync(join(dir, `.mtlcraft-score-${dead}-Ab12Cd`, "work.duckdb"), Buffer.alloc(1 << 20));
    writeFileSync(join(dir, `.scores.csv.tmp-${dead}-0a1b2c3d`), "half");
    mkdirSync(join(dir, `.m.tmp-${dead}-0a1b2c3d`));
  };
  plant();
  const small = join(dir, "rows.csv");
  writeFileSync(small, "user_id,item_id\n1,2\n3,4\n");
  const s = await exited(cli(["score", "--model", modelDir, "--input", small, "--out", join(dir, "scores.csv")]));
  assert.equal(s.code, 0, s.stderr);
  assert.deepEqual(ours(dir), []);
  assert.match(s.stderr, new RegExp(`removed .*\\.mtlcraft-score-${dead}-Ab12Cd \\(left by process ${dead}`));
  plant();
  const e = await exited(cli(["export", join(root, "run.json"), "--out", join(dir, "m"), "--cache-dir", join(root, "cache")]));
  assert.equal(e.code, 0, e.stderr);
  assert.deepEqual(ours(dir), []);
  assert.deepEqual(readdirSync(dir).sort(), ["m", "rows.csv", "scores.csv"]);
});
