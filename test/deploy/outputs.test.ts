/**
 * `export --out` and `score --out` never destroy good data (src/util/outpath.ts through
 * checkOut in src/deploy/export.ts and the checks at the top of scoreFile): an export never
 * replaces its own source (a run's `.model` artefact, a checkpoint) or anything that is not an
 * earlier export; a symlinked --out folder is written through, the link kept; scores never land
 * inside a model folder, on the input (through a symlink either way) or on a FIFO. Every hostile
 * input is made here, on the tiny dataset; files are compared by hash before and after.
 */
import { before, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, realpathSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { exportModel } from "../../src/deploy/export.ts";
import { scoreFile } from "../../src/deploy/score.ts";
import { runTraining, type TrainOptions } from "../../src/train/run.ts";
import { folderKind } from "../../src/util/outpath.ts";
import { tempDir } from "../data/helpers.ts";
import { writeTinyDataset } from "../train/tiny-data.ts";

const root = realpathSync(tempDir("deploy-out"));
const cacheDir = join(root, "cache");
const spec = writeTinyDataset(join(root, "data"));
const log = join(root, "data", "log.csv");
const run = join(root, "run.json");
const artefact = join(root, "run.model");
const ck = join(root, "ck");
const modelDir = join(root, "model");

const options: TrainOptions = { dataset: spec, cacheDir, model: "shared-bottom", modelOptions: { bottomUnits: "4" }, method: "ew", seed: 1, epochs: 1, maxSteps: 4, batchSize: 32, embDim: 2, dropout: 0, patience: 0 };

before(async () => {
  await runTraining({ ...options, out: run });
  await assert.rejects(runTraining({ ...options, checkpoint: ck, interruptAfter: 2 }), /interrupted/);
  await exportModel({ source: run, out: modelDir, cacheDir });
});

/** sha256 of every regular file under a folder (relative path -> hash), to show it unchanged. */
function hashes(dir: string, out: Record<string, string> = {}, prefix = ""): Record<string, string> {
  for (const f of readdirSync(dir).sort()) {
    const p = join(dir, f);
    const st = lstatSync(p);
    if (st.isDirectory()) hashes(p, out, `${prefix}${f}/`);
    else if (st.isFile()) out[prefix + f] = createHash("sha256").update(readFileSync(p)).digest("hex"); // (never open a FIFO)
  }
  return out;
}

/** A fresh folder holding a copy of the tiny log as `rows.csv` (the score input), and its hash. */
function scoreFolder(name: string): { dir: string; input: string; h: string } {
  const dir = join(root, name);
  mkdirSync(dir);
  const input = join(dir, "rows.csv");
  writeFileSync(input, readFileSync(log));
  return { dir, input, h: hashes(dir)["rows.csv"]! };
}

test("the fixtures are what the guards recognise: an export, a run's artefact, a checkpoint", () => {
  assert.equal(folderKind(modelDir), "export");
  assert.equal(folderKind(artefact), "artifact");
  assert.equal(folderKind(ck), "checkpoint");
});

test("export onto its own source is refused and the source is unchanged: run.json -> run.model, a checkpoint onto itself", async () => {
  const art = hashes(artefact);
  const cki = hashes(ck);
  await assert.rejects(exportModel({ source: run, out: artefact, cacheDir }), new RegExp(`^Error: --out ${artefact} exists and is a run's model artefact, not an exported mtlcraft model; refusing to replace it`));
  await assert.rejects(exportModel({ source: artefact, out: artefact, cacheDir }), /--out .*run\.model exists and is a run's model artefact/);
  await assert.rejects(exportModel({ source: ck, out: ck, cacheDir }), new RegExp(`^Error: --out ${ck} exists and is a training checkpoint`));
  // a symlink to its own source: the real paths are compared
  symlinkSync(ck, join(root, "ck-link"));
  await assert.rejects(exportModel({ source: join(root, "ck-link"), out: ck, cacheDir }), /--out .*ck exists and is a training checkpoint/);
  assert.deepEqual(hashes(artefact), art);
  assert.deepEqual(hashes(ck), cki);
  // the checkpoint still resumes where it was (not at step 0)
  const res = await runTraining({ ...options, checkpoint: ck, out: join(root, "resumed.json") });
  assert.equal(res.steps, 4);
  assert.ok(res.history.length >= 1);
  assert.deepEqual(readdirSync(root).filter((f) => f.includes(".tmp-") || f.includes(".old-")), [], "no temporary folder left");
});

test("export --out inside a model folder, a checkpoint or the prepared dataset, or over a file or a FIFO, is refused", async () => {
  const ds = join(cacheDir, readdirSync(cacheDir).find((d) => d.startsWith("tiny-"))!);
  const dsh = hashes(ds);
  await assert.rejects(exportModel({ source: run, out: join(modelDir, "sub"), cacheDir }), /--out .*model\/sub lies inside an exported mtlcraft model/);
  await assert.rejects(exportModel({ source: run, out: join(ck, "m"), cacheDir }), /lies inside a training checkpoint/);
  await assert.rejects(exportModel({ source: run, out: join(ds, "m"), cacheDir }), /lies inside a prepared dataset/);
  await assert.rejects(exportModel({ source: run, out: ds, cacheDir }), /exists and is a prepared dataset/);
  await assert.rejects(exportModel({ source: run, out: log, cacheDir }), /--out .*log\.csv is a file; give a folder/);
  const fifo = join(root, "fifo-model");
  assert.equal(spawnSync("mkfifo", [fifo]).status, 0);
  await assert.rejects(exportModel({ source: run, out: fifo, cacheDir }), /--out .*fifo-model is a FIFO \(named pipe\), not a regular file; refusing to replace it/);
  assert.ok(lstatSync(fifo).isFIFO());
  assert.deepEqual(hashes(ds), dsh);
});

test("a symlinked export --out folder is written through: the link stays, its target gets the new export, nothing is left beside either", async () => {
  const dir = join(root, "linked");
  mkdirSync(join(dir, "store"), { recursive: true });
  await exportModel({ source: run, out: join(dir, "store", "m"), cacheDir });
  writeFileSync(join(dir, "store", "m", "stale.txt"), "from an earlier export");
  symlinkSync(join(dir, "store", "m"), join(dir, "m-link"));
  const r = await exportModel({ source: run, out: join(dir, "m-link"), cacheDir });
  assert.equal(r.dir, join(dir, "m-link"));
  assert.ok(lstatSync(join(dir, "m-link")).isSymbolicLink(), "the link is kept");
  assert.equal(readlinkSync(join(dir, "m-link")), join(dir, "store", "m"));
  assert.equal(folderKind(join(dir, "store", "m")), "export");
  assert.equal(existsSync(join(dir, "store", "m", "stale.txt")), false, "the target was replaced as a whole");
  assert.deepEqual(readdirSync(dir).sort(), ["m-link", "store"]);
  assert.deepEqual(readdirSync(join(dir, "store")), ["m"]);
});

test("score --out inside the model folder is refused and the model is unchanged", async () => {
  const before = hashes(modelDir);
  for (const f of ["side_0.parquet", "model.onnx.csv", "features.parquet"]) {
    await assert.rejects(scoreFile(modelDir, log, join(modelDir, f)), new RegExp(`^Error: --out ${modelDir}/${f.replace(/\./g, "\\.")} lies inside an exported mtlcraft model \\(${modelDir}\\)`));
  }
  // through a symlink to the model folder
  symlinkSync(modelDir, join(root, "model-link"));
  await assert.rejects(scoreFile(modelDir, log, join(root, "model-link", "x.parquet")), /--out .*model-link\/x\.parquet \(.*model\/x\.parquet\) lies inside an exported mtlcraft model/);
  assert.deepEqual(hashes(modelDir), before);
  assert.equal(folderKind(modelDir), "export");
});

test("score never writes its scores over the input: --input a symlink to --out, --out a symlink to the input, a hard link; nor onto a FIFO", async () => {
  const { dir, input, h } = scoreFolder("score-in");
  symlinkSync(input, join(dir, "in-link.csv"));
  await assert.rejects(scoreFile(modelDir, join(dir, "in-link.csv"), input), new RegExp(`^Error: --out ${input} is --input .*in-link\\.csv; an output must not replace an input`));
  symlinkSync(input, join(dir, "out-link.csv"));
  await assert.rejects(scoreFile(modelDir, input, join(dir, "out-link.csv")), /--out .*out-link\.csv \(.*rows\.csv\) is --input .*rows\.csv/);
  spawnSync("ln", [input, join(dir, "hard.csv")]);
  await assert.rejects(scoreFile(modelDir, input, join(dir, "hard.csv")), /--out .*hard\.csv is --input/);
  const fifo = join(dir, "fifo.csv");
  assert.equal(spawnSync("mkfifo", [fifo]).status, 0);
  await assert.rejects(scoreFile(modelDir, input, fifo), /--out .*fifo\.csv is a FIFO \(named pipe\), not a regular file/);
  assert.ok(lstatSync(fifo).isFIFO());
  assert.equal(hashes(dir)["rows.csv"], h, "the input is unchanged");
  assert.ok(lstatSync(join(dir, "in-link.csv")).isSymbolicLink());
  // a symlinked --out to a scores file elsewhere is written through, the link kept
  mkdirSync(join(dir, "elsewhere"));
  writeFileSync(join(dir, "elsewhere", "s.csv"), "old scores");
  symlinkSync(join(dir, "elsewhere", "s.csv"), join(dir, "s-link.csv"));
  const r = await scoreFile(modelDir, input, join(dir, "s-link.csv"));
  assert.equal(r.rows, 240);
  assert.ok(lstatSync(join(dir, "s-link.csv")).isSymbolicLink());
  assert.match(readFileSync(join(dir, "elsewhere", "s.csv"), "utf8"), /^user_id,p_click,p_like,score\n/);
  assert.deepEqual(readdirSync(join(dir, "elsewhere")), ["s.csv"], "no work folder or temp file left beside the target");
  assert.deepEqual(readdirSync(dir).sort(), ["elsewhere", "fifo.csv", "hard.csv", "in-link.csv", "out-link.csv", "rows.csv", "s-link.csv"]);
});

test("CLI: `mtlcraft export run.json --out run.model` and `score --out <model>/side_0.parquet` exit 1 with the reason and change nothing", () => {
  const art = hashes(artefact);
  const model = hashes(modelDir);
  const e = spawnSync(process.execPath, ["--import", "tsx", "src/cli.ts", "export", run, "--out", artefact, "--cache-dir", cacheDir], { encoding: "utf8", timeout: 120_000 });
  assert.equal(e.status, 1, e.stderr);
  assert.match(e.stderr, /--out .*run\.model exists and is a run's model artefact, not an exported mtlcraft model; refusing to replace it/);
  const s = spawnSync(process.execPath, ["--import", "tsx", "src/cli.ts", "score", "--model", modelDir, "--input", log, "--out", join(modelDir, "side_0.parquet")], { encoding: "utf8", timeout: 120_000 });
  assert.equal(s.status, 1, s.stderr);
  assert.match(s.stderr, /--out .*model\/side_0\.parquet lies inside an exported mtlcraft model/);
  assert.deepEqual(hashes(artefact), art);
  assert.deepEqual(hashes(modelDir), model);
});

test("score and export hold a lock on --out (a second writer fails fast, naming the pid), and check --out again before the rename: a swap to the input while scoring writes nothing", async () => {
  const { dir, input, h } = scoreFolder("score-lock");
  // a second score into the same --out while the first runs
  const out = join(dir, "s.csv");
  let second: Promise<unknown> | null = null; // resolves to the second score's error (or null)
  const first = scoreFile(modelDir, input, out, {
    batchSize: 64,
    progress: () => {
      second ??= scoreFile(modelDir, input, out).then(
        () => null,
        (e: unknown) => e,
      );
    },
  });
  await first;
  assert.ok(second, "the second score was started while the first ran");
  const err = (await second) as Error | null;
  assert.ok(err, "the second score ran beside the first");
  assert.match(err.message, new RegExp(`--out ${out} is in use by process ${process.pid}`));
  assert.match(readFileSync(out, "utf8"), /^user_id,p_click,p_like,score\n/);
  // --out swapped for a link to the input while scoring: refused at the rename, the input unchanged
  const swapped = join(dir, "swapped.csv");
  await assert.rejects(
    scoreFile(modelDir, input, swapped, {
      batchSize: 64,
      progress: (done) => {
        if (done === 64) symlinkSync(input, swapped);
      },
    }),
    /--out .*swapped\.csv \(.*rows\.csv\) is --input/,
  );
  assert.equal(hashes(dir)["rows.csv"], h, "the input is unchanged");
  assert.deepEqual(readdirSync(dir).sort(), ["rows.csv", "s.csv", "swapped.csv"], "no lock, work folder or temp file left");
  // export: another holder of the lock on its --out
  const { acquireLock } = await import("../../src/util/lock.ts");
  const target = join(dir, "m");
  const held = acquireLock(`${target}.lock`, "a test");
  try {
    await assert.rejects(exportModel({ source: run, out: target, cacheDir }), new RegExp(`--out ${target} is in use by process ${process.pid}`));
  } finally {
    held.release();
  }
  assert.ok(!existsSync(target));
});
