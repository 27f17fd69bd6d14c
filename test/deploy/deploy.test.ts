/**
 * From trained model to ranking, end to end on the bundled KuaiRand slice: a small model is
 * trained (`train --out` keeps its best parameters as run.model), exported (model.onnx,
 * features.json, README.md), and then
 * - model.onnx, loaded from file in a fresh onnxruntime-node session, reproduces the trainer's eval
 *   probabilities (predictLogits, then the sigmoid) on the whole test split to 1e-5, at two batch
 *   sizes (the batch dimension is dynamic);
 * - the test split's raw log rows, scored through `score`, get exactly the ids prepare gave them
 *   (all 29 fields, the multi-valued tag lists and the numeric buckets; OOV included), and the
 *   probabilities of model.onnx on prepare's ids;
 * - the same file gives the same outputs in onnxruntime-web's wasm backend, run in Node;
 * - the fusion search never reads the test split (the dataset reader and the target reader are
 *   instrumented; a reader that refuses the test split changes nothing before the choice);
 * - a missing column, an empty input and a corrupt model file each get a clear error and leave no
 *   partial output (nor touch an existing one).
 */
import { before, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { copyFileSync, cpSync, existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import * as ortNode from "onnxruntime-node";
import * as ortWeb from "onnxruntime-web";
import { loadDataset, type PreparedDataset, type SplitReader } from "../../src/data/index.ts";
import { DataError } from "../../src/data/errors.ts";
import { splitValues } from "../../src/data/prepare.ts";
import { exportModel, findPrepared } from "../../src/deploy/export.ts";
import { fuseModel } from "../../src/deploy/fuse.ts";
import { fuseScores } from "../../src/deploy/fusion.ts";
import { loadModel } from "../../src/deploy/model.ts";
import { scoreFile, scoreRows } from "../../src/deploy/score.ts";
import { GradWorkspace, predictLogits } from "../../src/grad/pertask.ts";
import { auc } from "../../src/metrics/auc.ts";
import { loadModelArtifact, modelArtifactPath, modelFromArtifact } from "../../src/train/artifact.ts";
import { runTraining } from "../../src/train/run.ts";
import type { RunResult } from "../../src/report/types.ts";
import { bundledDataDir } from "../../src/data/builtin.ts";
import { query, readI32, tempDir } from "../data/helpers.ts";

const root = tempDir("deploy");
const cacheDir = join(root, "cache");
const modelDir = join(root, "model");
const testCsv = join(root, "test-rows.csv.gz");
let data: PreparedDataset & { dir?: string };
let result: RunResult;

before(async () => {
  data = await loadDataset("kuairand", { cacheDir });
  result = await runTraining(
    {
      dataset: "kuairand",
      cacheDir,
      model: "ple",
      modelOptions: { expertUnits: [16], towerUnits: [8] },
      embDim: 4,
      method: "ew",
      seed: 3,
      epochs: 1,
      maxSteps: 6,
      evalEvery: 3,
      batchSize: 2048,
      evalBatchSize: 8192,
      maxEvalRows: 8000,
      patience: 0,
      out: join(root, "run.json"),
    },
    data,
  );
  await exportModel({ source: join(root, "run.json"), out: modelDir, cacheDir });
  // the test split's raw rows (dates 2022-05-06..08 of the second log file), in log order
  const log = join(bundledDataDir(), "kuairand-pure", "log_standard_2022-05-01_to_05-08.csv.gz");
  await query(`COPY (SELECT * FROM read_csv('${log}') WHERE date BETWEEN 20220506 AND 20220508) TO '${testCsv}' (FORMAT csv, HEADER true, COMPRESSION gzip)`);
});

const sigmoid = (z: number): number => 1 / (1 + Math.exp(-z));

function idFeeds(ort: typeof ortNode | typeof ortWeb, features: { fields: { input: string; multi?: { maxLen: number } }[] }, fields: Int32Array[], n: number): Record<string, ortNode.Tensor> {
  const feeds: Record<string, ortNode.Tensor> = {};
  features.fields.forEach((f, i) => {
    const L = f.multi?.maxLen ?? 1;
    feeds[f.input] = new ort.Tensor("int64", BigInt64Array.from(fields[i]!.subarray(0, n * L), (x) => BigInt(x)), L > 1 ? [n, L] : [n]) as ortNode.Tensor;
  });
  return feeds;
}

test("train keeps its best parameters beside the result (run.model), and the export folder has model.onnx, features.json, README.md", () => {
  assert.ok(existsSync(join(modelArtifactPath(join(root, "run.json")), "tensors.bin")));
  assert.deepEqual(readdirSync(modelDir).sort(), ["README.md", "checksums.json", "features.json", "model.onnx", "side_0.parquet", "side_1.parquet"]);
  const card = readFileSync(join(modelDir, "README.md"), "utf8");
  for (const s of ["## Test metrics", "onnxruntime-node", "onnxruntime-web", "onnxruntime as ort", data.meta.tasks[0]!.name]) assert.ok(card.includes(s), s);
  const f = JSON.parse(readFileSync(join(modelDir, "features.json"), "utf8")) as { dataset: { hash: string }; fields: { name: string; ids?: Record<string, number> }[]; training: { config?: unknown } };
  assert.equal(f.dataset.hash, (data as unknown as { manifest: { hash: string } }).manifest.hash);
  assert.equal(f.fields.length, 29);
  assert.ok(Object.keys(f.fields[0]!.ids!).length > 20000, "the user_id map");
  assert.ok(f.training.config);
});

test("model.onnx, loaded from file in a fresh onnxruntime session, reproduces the trainer's eval probabilities on the test split to 1e-5", async () => {
  const features = JSON.parse(readFileSync(join(modelDir, "features.json"), "utf8")) as { fields: { input: string; multi?: { maxLen: number } }[]; tasks: { output: string }[] };
  const session = await ortNode.InferenceSession.create(join(modelDir, "model.onnx"));
  const model = modelFromArtifact(loadModelArtifact(join(root, "run.json")), data.meta);
  const ws = new GradWorkspace(model);
  const T = data.meta.tasks.length;
  const test = data.split("test");
  const probs = Array.from({ length: T }, () => new Float32Array(test.rows));
  const labels = Array.from({ length: T }, () => new Float32Array(test.rows));
  let max = 0;
  for (const bs of [4096, 1000]) {
    let off = 0;
    for (const b of test.iterate({ batchSize: bs, shuffle: false, seed: 0, epoch: 0 })) {
      const out = await session.run(idFeeds(ortNode, features, b.fields, b.size));
      const z = await predictLogits(ws, b);
      for (let t = 0; t < T; t++) {
        const p = out[features.tasks[t]!.output]!.data as Float32Array;
        assert.equal(p.length, b.size);
        for (let r = 0; r < b.size; r++) max = Math.max(max, Math.abs(p[r]! - sigmoid(z[t]![r]!)));
        probs[t]!.set(p, off);
        labels[t]!.set(b.labels[t]!.subarray(0, b.size), off);
      }
      off += b.size;
    }
    assert.equal(off, test.rows);
  }
  assert.ok(max <= 1e-5, `max |p_onnx - p_trainer| = ${max}`);
  // and the trainer's own test AUC (computed in the run on its restored best parameters, before anything was saved) is that of
  // these probabilities; the best evaluation is not the last one, so saving the last parameters would fail here
  const mean = (xs: number[]): number => xs.reduce((p, q) => p + q, 0) / xs.length;
  const best = result.history.reduce((b, h, i) => (mean(h.valAuc) > mean(result.history[b]!.valAuc) ? i : b), 0);
  assert.ok(best < result.history.length - 1, "fixture: the best validation point should not be the last one");
  for (let t = 0; t < T; t++) assert.ok(Math.abs(auc(labels[t]!, probs[t]!) - result.test.auc[t]!) < 1e-4, `task ${t}: ${auc(labels[t]!, probs[t]!)} vs ${result.test.auc[t]}`);
  await session.release();
});

test("vocabulary round trip: the test split's raw rows scored through `score` get exactly the ids prepare gave them (OOV included) and model.onnx's probabilities", async () => {
  const out = join(root, "scores.parquet");
  const r = await scoreFile(modelDir, testCsv, out, { withIds: true, batchSize: 5000 });
  const test = data.split("test");
  assert.equal(r.rows, test.rows);
  const rows = await query(`SELECT * FROM '${out}'`);
  assert.equal(rows.length, test.rows);
  const dir = (data as unknown as { dir: string }).dir;
  let zeros = 0;
  data.meta.fields.forEach((f, i) => {
    const want = readI32(join(dir, "test", `field_${i}.i32`));
    const L = f.multi?.maxLen ?? 1;
    for (let k = 0; k < rows.length; k++) {
      const got = rows[k]![`id_${f.name}`];
      if (L > 1) {
        const exp = Array.from(want.subarray(k * L, (k + 1) * L)).filter((x) => x !== -1);
        assert.deepEqual((got as unknown[]).map(Number), exp, `${f.name} row ${k}`);
      } else {
        assert.equal(Number(got), want[k], `${f.name} row ${k}`);
        if (f.name === "user_id" && want[k] === 0) zeros++;
      }
    }
  });
  assert.ok(zeros > 100, `the test split has users unseen in train (OOV id 0): ${zeros}`);
  // probabilities: model.onnx on prepare's ids; the fused score: the default fusion (equal-weights sum)
  const m = await loadModel(modelDir);
  let off = 0;
  let max = 0;
  for (const b of test.iterate({ batchSize: 4096, shuffle: false, seed: 0, epoch: 0 })) {
    const p = await m.predict(b);
    const s = fuseScores(m.fusion, p, b.size);
    for (let k = 0; k < b.size; k++) {
      const row = rows[off + k]!;
      m.features.tasks.forEach((t, ti) => (max = Math.max(max, Math.abs(Number(row[t.output]) - p[ti]![k]!))));
      max = Math.max(max, Math.abs(Number(row.score) - s[k]!));
    }
    off += b.size;
  }
  assert.ok(max < 1e-6, `score vs model.onnx on prepare's ids: ${max}`);
  assert.deepEqual(Object.keys(rows[0]!).slice(0, 2), ["user_id", "video_id"]);
  // the library's scoreRows: rows in memory, same encoding
  const few = (await query(`SELECT * FROM read_csv('${testCsv}') LIMIT 5`)).map((x) => Object.fromEntries(Object.entries(x).map(([k, v]) => [k, typeof v === "bigint" ? Number(v) : v])));
  const scored = await scoreRows(m, few, { withIds: true });
  scored.forEach((s, k) => {
    assert.equal(s.user_id, few[k]!.user_id);
    assert.ok(Math.abs(s.score - Number(rows[k]!.score)) < 1e-6);
    assert.equal(s.id_video_id, Number(rows[k]!.id_video_id));
  });
  await m.close();
});

test("the same model.onnx gives the same outputs in onnxruntime-web's wasm backend, run in Node", async () => {
  ortWeb.env.wasm.numThreads = 1;
  const features = JSON.parse(readFileSync(join(modelDir, "features.json"), "utf8")) as { fields: { input: string; multi?: { maxLen: number } }[]; tasks: { output: string }[] };
  const bytes = readFileSync(join(modelDir, "model.onnx"));
  const web = await ortWeb.InferenceSession.create(bytes, { executionProviders: ["wasm"] });
  const node = await ortNode.InferenceSession.create(bytes);
  const b = data.split("test").iterate({ batchSize: 777, shuffle: false, seed: 0, epoch: 0 }).next().value!;
  const a = await node.run(idFeeds(ortNode, features, b.fields, b.size));
  const w = await web.run(idFeeds(ortWeb, features, b.fields, b.size) as unknown as Record<string, ortWeb.Tensor>);
  let max = 0;
  for (const t of features.tasks) {
    const x = a[t.output]!.data as Float32Array;
    const y = w[t.output]!.data as Float32Array;
    assert.equal(y.length, b.size);
    for (let r = 0; r < b.size; r++) max = Math.max(max, Math.abs(x[r]! - y[r]!));
  }
  assert.ok(max < 1e-6, `onnxruntime-web vs onnxruntime-node: max |Δp| = ${max}`);
  await web.release();
  await node.release();
});

/** The dataset with its split reader instrumented: every read of a split is logged (and the test split may be refused). */
function instrumented(events: string[], refuseTest = false): PreparedDataset {
  return {
    ...data,
    split(name) {
      const r = data.split(name);
      const wrapped: SplitReader = {
        rows: r.rows,
        numBatches: (bs, dl) => r.numBatches(bs, dl),
        *iterate(o) {
          events.push(`read:${name}`);
          if (refuseTest && name === "test") throw new Error("the test split was read");
          yield* r.iterate(o);
        },
      };
      return wrapped;
    },
  };
}

test("the fusion search never reads the test split: the weights are chosen from validation reads alone, then the test split is read once", async () => {
  const events: string[] = [];
  const target = (split: "val" | "test", expr: string): Promise<Uint8Array> => {
    events.push(`target:${split}`);
    return splitValues("kuairand", { cacheDir }, split, expr, "--objective target");
  };
  const opts = { dataset: "kuairand", cacheDir, samples: 10, rounds: 1, data: instrumented(events), readTarget: target, onSelected: () => events.push("selected") };
  const a = await fuseModel(modelDir, { ...opts, objective: "target:is_click = 1 AND play_time_ms > 5000", save: false });
  const sel = events.indexOf("selected");
  assert.ok(sel > 0, events.join(" "));
  assert.deepEqual(events.slice(0, sel).sort(), ["read:val", "target:val"], events.join(" "));
  assert.deepEqual(events.slice(sel + 1).sort(), ["read:test", "target:test"], events.join(" "));
  assert.ok(Number.isFinite(a.val) && Number.isFinite(a.test));
  // a reader that refuses the test split: the same choice is made before the refusal
  events.length = 0;
  let chosen: number[] | null = null;
  await assert.rejects(
    fuseModel(modelDir, { ...opts, objective: "gauc", data: instrumented(events, true), onSelected: (s) => (chosen = s.best.weights) }),
    /the test split was read/,
  );
  const b = await fuseModel(modelDir, { ...opts, objective: "gauc", data: instrumented([]) });
  assert.deepEqual(chosen, b.fusion.weights);
  assert.ok(b.saved && existsSync(b.saved));
  const saved = JSON.parse(readFileSync(b.saved, "utf8")) as { kind: string; weights: Record<string, number>; search: { split: string }; test: number };
  assert.equal(saved.search.split, "val");
  assert.equal(saved.test, b.test);
  // score uses the saved weights by default
  const m = await loadModel(modelDir);
  assert.equal(m.fusionSource, "fusion.json");
  assert.deepEqual(m.fusion.weights, b.fusion.weights);
  await m.close();
});

/** Files in `dir` besides the expected ones (temporaries an error might leave). */
function leftovers(dir: string, expected: string[]): string[] {
  return readdirSync(dir).filter((f) => !expected.includes(f));
}

test("a missing column, an empty input and a corrupt model file each get a clear error and leave no partial output", async () => {
  const outDir = tempDir("deploy-out");
  const out = join(outDir, "scores.parquet");
  // missing column: hourmin feeds the "hour" feature
  const noHour = join(outDir, "no-hourmin.csv");
  await query(`COPY (SELECT * EXCLUDE (hourmin) FROM read_csv('${testCsv}') LIMIT 50) TO '${noHour}' (FORMAT csv, HEADER true)`);
  await assert.rejects(scoreFile(modelDir, noHour, out), (e: unknown) => e instanceof DataError && e.column === "hourmin" && /no-hourmin\.csv has no column "hourmin", which feature "hour"/.test(e.message));
  assert.deepEqual(leftovers(outDir, ["no-hourmin.csv"]), []);
  // a side-table join key: video_id
  const noVideo = join(outDir, "no-video.csv");
  await query(`COPY (SELECT * EXCLUDE (video_id) FROM read_csv('${testCsv}') LIMIT 50) TO '${noVideo}' (FORMAT csv, HEADER true)`);
  await assert.rejects(scoreFile(modelDir, noVideo, out), (e: unknown) => e instanceof DataError && e.column === "video_id" && /has no column "video_id"/.test(e.message));
  // an existing output is left as it was
  writeFileSync(out, "previous");
  // empty inputs
  const empty = join(outDir, "empty.csv");
  writeFileSync(empty, "");
  await assert.rejects(scoreFile(modelDir, empty, out), (e: unknown) => e instanceof DataError && /empty\.csv/.test(e.message) && /empty/.test(e.message));
  const header = join(outDir, "header-only.csv");
  writeFileSync(header, readFileSync(noHour, "utf8").split("\n")[0] + "\n");
  await assert.rejects(scoreFile(modelDir, header, out), (e: unknown) => e instanceof DataError && /header-only\.csv/.test(e.message));
  assert.equal(readFileSync(out, "utf8"), "previous");
  // corrupt model files: a flipped byte, a truncated features.json, an unreadable model.onnx with a matching checksum
  const bad = join(outDir, "bad-model");
  cpSync(modelDir, bad, { recursive: true });
  const onnx = readFileSync(join(bad, "model.onnx"));
  onnx[onnx.length >> 1] = onnx[onnx.length >> 1]! ^ 0xff;
  writeFileSync(join(bad, "model.onnx"), onnx);
  await assert.rejects(scoreFile(bad, testCsv, out), /model\.onnx is corrupt \(sha256/);
  copyFileSync(join(modelDir, "model.onnx"), join(bad, "model.onnx"));
  writeFileSync(join(bad, "features.json"), readFileSync(join(modelDir, "features.json")).subarray(0, 100));
  await assert.rejects(scoreFile(bad, testCsv, out), /features\.json is corrupt/);
  copyFileSync(join(modelDir, "features.json"), join(bad, "features.json"));
  writeFileSync(join(bad, "model.onnx"), "not a model");
  const sums = JSON.parse(readFileSync(join(bad, "checksums.json"), "utf8")) as { sha256: Record<string, string> };
  const { createHash } = await import("node:crypto");
  sums.sha256["model.onnx"] = createHash("sha256").update("not a model").digest("hex");
  writeFileSync(join(bad, "checksums.json"), JSON.stringify(sums));
  await assert.rejects(scoreFile(bad, testCsv, out), /model\.onnx cannot be loaded: it is not an ONNX model/);
  assert.equal(readFileSync(out, "utf8"), "previous");
  assert.deepEqual(leftovers(outDir, ["no-hourmin.csv", "no-video.csv", "scores.parquet", "empty.csv", "header-only.csv", "bad-model"]), []);
  // export into a folder that is not an export is refused, and a failed export leaves nothing
  await assert.rejects(exportModel({ source: join(root, "run.json"), out: outDir, cacheDir }), /is not an exported mtlcraft model/);
  await assert.rejects(exportModel({ source: join(outDir, "missing.json"), out: join(outDir, "x") }), /missing\.json does not exist/);
  assert.throws(() => findPrepared({ info: { dataset: { name: "kuairand", hash: "0".repeat(64), option: "kuairand" } } } as Parameters<typeof findPrepared>[0], [cacheDir]), (e: unknown) => e instanceof DataError && /is not in .*prepare it again with `mtlcraft prepare kuairand/.test(e.message));
  assert.equal(existsSync(join(outDir, "x")), false);
  assert.deepEqual(leftovers(outDir, ["no-hourmin.csv", "no-video.csv", "scores.parquet", "empty.csv", "header-only.csv", "bad-model"]), []);
});

test("CLI: mtlcraft score writes CSV with a given fusion and prints what it did", async () => {
  const out = join(root, "cli-scores.csv");
  const input = join(root, "cli-rows.parquet");
  await query(`COPY (SELECT * FROM read_csv('${testCsv}') LIMIT 3000) TO '${input}' (FORMAT parquet)`);
  const r = spawnSync(process.execPath, ["--import", "tsx", "src/cli.ts", "score", "--model", modelDir, "--input", input, "--out", out, "--fusion", "product:ev=1,like=0.5", "--keep", "user_id"], { encoding: "utf8", timeout: 120_000 });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /scored 3000 rows/);
  assert.match(r.stdout, /score = ln\(p_ev\^1 · p_like\^0\.5\) \(product\)/);
  const head = readFileSync(out, "utf8").split("\n")[0];
  assert.equal(head, "user_id,p_ev,p_lv,p_cv,p_like,p_follow,p_forward,score");
});
