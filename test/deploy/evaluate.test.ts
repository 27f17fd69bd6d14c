/**
 * `mtlcraft evaluate` / evaluateFile: a small model is trained on a dataset whose test split is a
 * file of its own (three tasks: a 0/1 column, a watch-time threshold and a SQL condition; a dense
 * input; integer user ids, so text order would differ from numeric order), exported, and
 * evaluated on that raw test file. Its AUC, GAUC and log loss must be the numbers the training
 * run reported for the test split, bit for bit (CSV and Parquet). Hostile inputs get errors that
 * name the file, column and row, and leave no output.
 */
import { before, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { exportModel } from "../../src/deploy/export.ts";
import { evaluateFile, type EvaluateResult } from "../../src/deploy/evaluate.ts";
import { evaluationReportTable, formatEvaluation } from "../../src/deploy/evaluate-cli.ts";
import { calibration } from "../../src/metrics/calibration.ts";
import { runTraining } from "../../src/train/run.ts";
import type { RunResult } from "../../src/report/types.ts";
import { Rng } from "../../src/util/rng.ts";
import { query, tempDir } from "../data/helpers.ts";

const root = tempDir("evaluate");
const dataDir = join(root, "data");
const modelDir = join(root, "model");
const testCsv = join(dataDir, "test.csv");
const HEADER = "user_id,item_id,price,click,watch_ms";
let result: RunResult;
let csvLines: string[];

function rows(rng: Rng, n: number): string[] {
  const out: string[] = [];
  for (let r = 0; r < n; r++) {
    const u = 1 + rng.int(40);
    const i = 1 + rng.int(30);
    const price = (rng.next() * 100).toFixed(2);
    const click = rng.next() < 0.2 + 0.02 * (i % 10) + 0.005 * (u % 7) ? 1 : 0;
    const watch = Math.round(rng.next() * 8000 * (click ? 1.5 : 1));
    out.push(`${u},${i},${price},${click},${watch}`);
  }
  return out;
}

before(async () => {
  mkdirSync(dataDir, { recursive: true });
  const rng = new Rng(7);
  writeFileSync(join(dataDir, "train.csv"), [HEADER, ...rows(rng, 1500)].join("\n") + "\n");
  writeFileSync(join(dataDir, "val.csv"), [HEADER, ...rows(rng, 300)].join("\n") + "\n");
  csvLines = [HEADER, ...rows(rng, 500)];
  writeFileSync(testCsv, csvLines.join("\n") + "\n");
  const spec = {
    name: "evalset",
    categorical: ["user_id", "item_id"],
    dense: ["price"],
    groupColumn: "user_id",
    userColumn: "user_id",
    itemColumn: "item_id",
    tasks: [
      { name: "click", kind: "column", column: "click" },
      { name: "long", kind: "ev", watch: "watch_ms" },
      { name: "deep", kind: "sql", expr: "click = 1 AND watch_ms > 6000" },
    ],
    split: { kind: "files", train: "train.csv", val: "val.csv", test: "test.csv" },
  };
  writeFileSync(join(dataDir, "evalset.json"), JSON.stringify(spec));
  const out = join(root, "run.json");
  result = await runTraining({
    dataset: join(dataDir, "evalset.json"),
    cacheDir: join(root, "cache"),
    model: "shared-bottom",
    modelOptions: { bottomUnits: "8" },
    method: "ew",
    seed: 1,
    epochs: 2,
    batchSize: 64,
    evalBatchSize: 128,
    embDim: 4,
    patience: 0,
    out,
  });
  await exportModel({ source: out, out: modelDir, cacheDir: join(root, "cache") });
});

/** AUC, GAUC and log loss of the evaluation equal the training run's test metrics, bit for bit. */
function assertSameAsTraining(r: EvaluateResult): void {
  assert.equal(r.scoredFrom, "logits");
  assert.deepEqual(r.tasks.map((t) => t.task), ["click", "long", "deep"]);
  r.tasks.forEach((t, k) => {
    assert.equal(t.auc, result.test.auc[k], `${t.task} AUC`);
    assert.equal(t.gauc, result.test.gauc[k], `${t.task} GAUC`);
    assert.equal(t.logloss, result.test.logloss[k], `${t.task} log loss`);
    assert.deepEqual(t.gaucGroups, result.test.gaucGroups[k], `${t.task} GAUC groups`);
    assert.equal(t.positives, result.test.positives![k], `${t.task} positives`);
  });
}

test("evaluate reproduces the training run's test AUC, GAUC and log loss exactly, from CSV and from Parquet", async () => {
  assert.equal(result.test.rows, 500);
  for (const k of [0, 1, 2]) assert.ok(result.test.positives![k]! > 10 && result.test.positives![k]! < 490, "every task has both classes on test");
  const r = await evaluateFile(modelDir, testCsv);
  assert.equal(r.rows, 500);
  assert.equal(r.groupColumn, "user_id");
  assertSameAsTraining(r);
  assert.deepEqual(r.warnings, []);
  // the label definitions are the model's: the sql task is click = 1 AND watch > 6000, the ev task a fitted threshold
  assert.match(r.tasks[1]!.label, /^watch "watch_ms" > [0-9.]+ \(fitted on train\)$/);
  const parquet = join(root, "test.parquet");
  await query(`COPY (SELECT * FROM read_csv('${testCsv}')) TO '${parquet}' (FORMAT parquet)`);
  assertSameAsTraining(await evaluateFile(modelDir, parquet));
  // other batch sizes change the last bit of a few logits (MLAS kernels for small batches), nothing more
  const b1 = await evaluateFile(modelDir, testCsv, { batchSize: 1 });
  b1.tasks.forEach((t, k) => {
    assert.ok(Math.abs(t.auc - result.test.auc[k]!) < 1e-6, `${t.task} AUC at batch 1`);
    assert.ok(Math.abs(t.logloss - result.test.logloss[k]!) < 1e-7, `${t.task} log loss at batch 1`);
  });
});

test("evaluate's calibration table is that of the probabilities model.onnx serves; JSON output round-trips", async () => {
  const out = join(root, "eval.json");
  const r = await evaluateFile(modelDir, testCsv, { out, bins: 5, binning: "width" });
  assert.equal(r.out, out);
  const j = JSON.parse(readFileSync(out, "utf8")) as EvaluateResult;
  assert.equal(j.format, "mtlcraft-evaluate");
  assert.equal(j.version, 1);
  assert.deepEqual(j.tasks.map((t) => [t.auc, t.gauc, t.logloss, t.calibration.ece]), r.tasks.map((t) => [t.auc, t.gauc, t.logloss, t.calibration.ece]));
  for (const t of r.tasks) {
    assert.equal(t.calibration.binning, "width");
    assert.equal(t.calibration.bins.length, 5);
    assert.equal(t.calibration.bins.reduce((s, b) => s + b.count, 0), 500);
    assert.equal(t.calibration.bins.reduce((s, b) => s + b.positives, 0), t.positives);
    assert.ok(t.calibration.ece >= 0 && t.calibration.ece <= 1, `ece ${t.calibration.ece}`);
  }
  // nothing but the JSON is left beside it (temporary file renamed, lock released)
  assert.deepEqual(readdirSync(root).filter((f) => f.startsWith(".eval.json") || f.startsWith("eval.json.")), []);
  // the text forms
  const text = formatEvaluation(r);
  assert.match(text, /\| click \| column "click" \| \d+ \| 0\.\d{4} \| 0\.\d{4} \|/);
  assert.match(text, /calibration of deep \(5 equal-width bins; ECE 0\.\d{4}/);
  const rep = evaluationReportTable(r);
  assert.match(rep, /\| click AUC \| /);
  assert.match(rep, /\| AV-A \| /);
  assert.doesNotMatch(rep, /RI-A/);
  assert.doesNotMatch(rep, /\*\*/, "one column: nothing is marked best");
  // ECE recomputed independently from the reliability bins
  const t0 = r.tasks[0]!;
  let ece = 0;
  for (const b of t0.calibration.bins) if (b.count) ece += (b.count / 500) * Math.abs(b.rate - b.meanPred);
  assert.ok(Math.abs(ece - t0.calibration.ece) < 1e-15, `ece ${ece} vs ${t0.calibration.ece}`);
  assert.ok(calibration(Float32Array.of(0, 1), Float64Array.of(0.2, 0.7)).ece > 0);
});

test("--label task=column takes a task's labels from another column; an unknown task gets a did-you-mean", async () => {
  const f = join(root, "relabelled.csv");
  // (with columns named like evaluate's own internal ones, which must not clash)
  writeFileSync(f, [`${HEADER},clicked2,grp,__rid,l_0,mtlcraft.evaluate.rid`, ...csvLines.slice(1).map((l, r) => `${l},${l.split(",")[3] === "1" ? "true" : "false"},x${r},7,9,5`)].join("\n") + "\n");
  const r = await evaluateFile(modelDir, f, { labels: { click: "clicked2" } });
  assert.equal(r.tasks[0]!.label, '--label column "clicked2"');
  assertSameAsTraining(r);
  await assert.rejects(evaluateFile(modelDir, f, { labels: { clik: "clicked2" } }), /--label clik=…: the model has no task "clik"; did you mean "click"\? \(its tasks: click, long, deep\)/);
});

test("hostile labels: a value not 0/1, a negative or missing watch time, a missing label column: the file, column and row are named", async () => {
  const bad = (name: string, edit: (cells: string[], r: number) => string[]): string => {
    const f = join(root, name);
    writeFileSync(f, [HEADER, ...csvLines.slice(1).map((l, r) => edit(l.split(","), r + 1).join(","))].join("\n") + "\n");
    return f;
  };
  const two = bad("two.csv", (c, r) => (r === 7 || r === 9 ? [c[0]!, c[1]!, c[2]!, "2", c[4]!] : c));
  await assert.rejects(evaluateFile(modelDir, two), (e: Error & { file?: string; column?: string; rows?: number }) => {
    assert.match(e.message, /two\.csv: column "click" is not 0 or 1 \(nor true\/false; missing included\) in 2 rows, first at data row 7/);
    assert.equal(e.column, "click");
    assert.equal(e.rows, 2);
    assert.ok(e.file?.endsWith("two.csv"), `file ${e.file}`);
    return true;
  });
  const word = bad("word.csv", (c, r) => (r === 3 ? [c[0]!, c[1]!, c[2]!, "yes-secret", c[4]!] : c));
  await assert.rejects(evaluateFile(modelDir, word), (e: Error) => {
    assert.match(e.message, /column "click" is not 0 or 1 .* in 1 row, first at data row 3/);
    assert.doesNotMatch(e.message, /secret/, "file content is not quoted");
    return true;
  });
  const empty = bad("empty-label.csv", (c, r) => (r === 5 ? [c[0]!, c[1]!, c[2]!, "", c[4]!] : c));
  await assert.rejects(evaluateFile(modelDir, empty), /column "click" is not 0 or 1 .* first at data row 5/);
  const neg = bad("neg.csv", (c, r) => (r === 11 ? [c[0]!, c[1]!, c[2]!, c[3]!, "-5"] : c));
  await assert.rejects(evaluateFile(modelDir, neg), /neg\.csv: column "watch_ms" is negative in 1 row, first at data row 11/);
  const frac = bad("frac.csv", (c, r) => (r === 4 ? [c[0]!, c[1]!, c[2]!, "0.5", c[4]!] : c));
  await assert.rejects(evaluateFile(modelDir, frac), /column "click" is not 0 or 1 .* first at data row 4/);
  const noLabel = join(root, "nolabel.csv");
  writeFileSync(noLabel, csvLines.map((l) => l.split(",").filter((_, k) => k !== 3).join(",")).join("\n") + "\n");
  await assert.rejects(evaluateFile(modelDir, noLabel), (e: Error & { column?: string }) => {
    assert.match(e.message, /nolabel\.csv has no column "click", which the label of task "click" needs; columns: user_id, item_id, price, watch_ms/);
    assert.equal(e.column, "click");
    return true;
  });
  // 1.0 and 0.0 are 0/1 (true/false too, for a label column: see the --label test)
  const spelled = bad("spelled.csv", (c) => [c[0]!, c[1]!, c[2]!, c[3] === "1" ? "1.0" : "0.0", c[4]!]);
  assertSameAsTraining(await evaluateFile(modelDir, spelled));
  // but the SQL task reads click as the BIGINT it was in training: "false" is no BIGINT
  const words = bad("words.csv", (c) => [c[0]!, c[1]!, c[2]!, c[3] === "1" ? "true" : "false", c[4]!]);
  await assert.rejects(evaluateFile(modelDir, words), /words\.csv: column "click" is not a BIGINT value as in training in 500 rows, first at data row 1/);
});

test("an input that is not CSV or Parquet, or a folder, or missing, is refused in one clear line", async () => {
  const bin = join(root, "random.csv");
  const rng = new Rng(3);
  writeFileSync(bin, Buffer.from(Array.from({ length: 4000 }, () => rng.int(256))));
  await assert.rejects(evaluateFile(modelDir, bin), (e: Error) => {
    assert.ok(e.message.includes("random.csv"), e.message);
    assert.ok(e.message.split("\n").length <= 3, `a short message, got:\n${e.message}`);
    return true;
  });
  const fakeParquet = join(root, "fake.parquet");
  writeFileSync(fakeParquet, csvLines.join("\n"));
  await assert.rejects(evaluateFile(modelDir, fakeParquet), /fake\.parquet/);
  await assert.rejects(evaluateFile(modelDir, root), /is a folder; give a CSV, CSV\.gz or Parquet file/);
  await assert.rejects(evaluateFile(modelDir, join(root, "nope.csv")), /input file not found/);
});

test("paths: a symlinked input is read through its link; --out never lands on the input or in the model folder, and nothing is written then", async () => {
  const elsewhere = join(root, "links");
  mkdirSync(elsewhere, { recursive: true });
  const link = join(elsewhere, "test-link.csv");
  symlinkSync(testCsv, link);
  assertSameAsTraining(await evaluateFile(modelDir, link));
  const before = readFileSync(testCsv, "utf8");
  // --out a link to the input
  const outLink = join(elsewhere, "out-link.json");
  symlinkSync(testCsv, outLink);
  await assert.rejects(evaluateFile(modelDir, testCsv, { out: outLink }), /--out .*out-link\.json/);
  assert.equal(readFileSync(testCsv, "utf8"), before);
  // --out inside the model folder (over features.json, or a new file there)
  const features = readFileSync(join(modelDir, "features.json"));
  await assert.rejects(evaluateFile(modelDir, testCsv, { out: join(modelDir, "features.json") }), /--out/);
  await assert.rejects(evaluateFile(modelDir, testCsv, { out: join(modelDir, "eval.json") }), /--out .*exported mtlcraft model/);
  assert.deepEqual(readFileSync(join(modelDir, "features.json")), features);
  assert.ok(!existsSync(join(modelDir, "eval.json")));
  await assert.rejects(evaluateFile(modelDir, testCsv, { out: join(root, "eval.txt") }), /the output must end in \.json/);
});

test("mtlcraft evaluate (CLI): --format json and report, --out, --help", () => {
  const run = (args: string[]) => spawnSync(process.execPath, ["--import", "tsx", "src/cli.ts", "evaluate", ...args], { encoding: "utf8" });
  const out = join(root, "cli.json");
  const j = run(["--model", modelDir, "--input", testCsv, "--format", "json", "--out", out]);
  assert.equal(j.status, 0, j.stderr);
  const r = JSON.parse(j.stdout) as EvaluateResult;
  assertSameAsTraining(r);
  assert.deepEqual(JSON.parse(readFileSync(out, "utf8")), r);
  const rep = run(["--model", modelDir, "--input", testCsv, "--format", "report"]);
  assert.equal(rep.status, 0, rep.stderr);
  assert.match(rep.stdout, /\| long GAUC \| /);
  const help = run(["--help"]);
  assert.equal(help.status, 0);
  for (const o of ["--model", "--input", "--out", "--format", "--label", "--bins", "--binning"]) assert.ok(help.stdout.includes(o), `--help names ${o}`);
  const bad = run(["--model", modelDir, "--input", testCsv, "--binning", "quantile"]);
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, /--binning must be mass or width/);
});
