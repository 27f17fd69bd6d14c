/**
 * `score` and `mtlcraft/encoder` give identical ids on the whole bundled KuaiRand log
 * (data/kuairand-pure/, both files, every row): a small model is trained and exported, the log is
 * scored by `score` (DuckDB, `--with-ids`), and the same rows, read as a user would (the log's
 * CSV through DuckDB's reader, each row joined in JavaScript with the model folder's side tables:
 * the user and video features), are encoded by src/encoder.ts, with the spec's one expression
 * (`hour`: `hourmin // 100`) given as a `derive` function. All 29 fields (the multi-valued tag
 * list and the duration buckets included) must be equal on every row, and model.onnx fed by the
 * encoder (onnxruntime-node) must give score's probabilities.
 *
 * Why a test and not one code path: score encodes files larger than memory in DuckDB, evaluates
 * the spec's SQL expressions and joins the side tables there; the dependency-free encoder cannot
 * do those, so the two are proved equal where they overlap, on real data.
 */
import { before, test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import * as ort from "onnxruntime-node";
import { DuckDBInstance } from "@duckdb/node-api";
import { bundledDataDir } from "../../src/data/builtin.ts";
import { exportModel } from "../../src/deploy/export.ts";
import { scoreFile } from "../../src/deploy/score.ts";
import { runTraining } from "../../src/train/run.ts";
import { createEncoder, toFeeds } from "../../src/encoder.ts";
import { tempDir } from "../data/helpers.ts";

const root = tempDir("encoder-kuairand");
const modelDir = join(root, "model");
const logCsv = join(root, "log.csv.gz");
const scored = join(root, "scored.parquet");

async function rowsOf(sql: string): Promise<Record<string, unknown>[]> {
  const inst = await DuckDBInstance.create(":memory:");
  const conn = await inst.connect();
  try {
    return (await conn.runAndReadAll(sql)).getRowObjectsJS() as Record<string, unknown>[];
  } finally {
    conn.closeSync();
    inst.closeSync();
  }
}

before(async () => {
  const cacheDir = join(root, "cache");
  const out = join(root, "run.json");
  await runTraining({ dataset: "kuairand", cacheDir, model: "shared-bottom", modelOptions: { bottomUnits: "4" }, embDim: 2, method: "ew", seed: 5, epochs: 1, maxSteps: 2, batchSize: 4096, evalBatchSize: 8192, maxEvalRows: 4000, patience: 0, out });
  await exportModel({ source: out, out: modelDir, cacheDir });
  const dir = join(bundledDataDir(), "kuairand-pure");
  const logs = ["log_standard_2022-04-25_to_04-30.csv.gz", "log_standard_2022-05-01_to_05-08.csv.gz"].map((f) => `'${join(dir, f)}'`);
  await rowsOf(`COPY (SELECT * FROM read_csv([${logs.join(", ")}], all_varchar = true)) TO '${logCsv}' (FORMAT csv, HEADER true, COMPRESSION gzip)`);
  await scoreFile(modelDir, logCsv, scored, { withIds: true, keep: [] });
});

test("score and mtlcraft/encoder give identical ids for all 29 fields on every row of the bundled KuaiRand log, and the same probabilities", { timeout: 600_000 }, async () => {
  const features = JSON.parse(readFileSync(join(modelDir, "features.json"), "utf8")) as {
    fields: { name: string; multi?: { maxLen: number } }[];
    sides: { file: string; on: string; columns: string[] }[];
    tasks: { output: string }[];
  };
  assert.equal(features.fields.length, 29);
  // the rows as a user has them: the log's CSV (DuckDB's reader picks the types), each row joined with the side tables
  const log = await rowsOf(`SELECT * FROM read_csv('${logCsv}')`);
  assert.equal(log.length, 228329, "every row of both log files");
  for (const sd of features.sides) {
    const side = new Map<string, Record<string, unknown>>();
    for (const r of await rowsOf(`SELECT * FROM read_parquet('${join(modelDir, sd.file)}')`)) side.set(String(r.__key), r);
    for (const row of log) {
      const s = side.get(String(row[sd.on]));
      for (const c of sd.columns) row[c] = s ? s[c] : null;
    }
  }
  const enc = createEncoder(features, { derive: { hour: (r) => (r.hourmin === null || r.hourmin === undefined ? null : Math.trunc(Number(r.hourmin) / 100)) } });
  const want = await rowsOf(`SELECT * FROM read_parquet('${scored}')`);
  assert.equal(want.length, log.length);
  const session = await ort.InferenceSession.create(join(modelDir, "model.onnx"));
  const mismatches = new Map<string, number>();
  let maxDiff = 0;
  let known = 0;
  try {
    const B = 16384;
    for (let start = 0; start < log.length; start += B) {
      const rows = log.slice(start, start + B);
      const b = enc.encode(rows);
      assert.deepEqual(b.problems, []);
      features.fields.forEach((f, i) => {
        const L = f.multi?.maxLen ?? 1;
        const ids = b.ids[i]!;
        for (let r = 0; r < rows.length; r++) {
          const w = want[start + r]![`id_${f.name}`];
          let same: boolean;
          if (f.multi) {
            const got = Array.from(ids.subarray(r * L, (r + 1) * L)).filter((x) => x !== -1);
            const exp = Array.from(w as ArrayLike<number>, Number);
            same = got.length === exp.length && got.every((x, k) => x === exp[k]);
          } else {
            same = ids[r] === Number(w);
            if (ids[r]! > 0) known++;
          }
          if (!same) mismatches.set(f.name, (mismatches.get(f.name) ?? 0) + 1);
        }
      });
      const out = await session.run(toFeeds(b, ort.Tensor));
      for (const t of features.tasks) {
        const p = out[t.output]!.data as Float32Array;
        for (let r = 0; r < rows.length; r++) maxDiff = Math.max(maxDiff, Math.abs(p[r]! - Number(want[start + r]![t.output])));
      }
    }
  } finally {
    await session.release();
  }
  assert.deepEqual([...mismatches], [], "fields whose ids differ (field, rows)");
  assert.ok(known > log.length * 20, `most ids are known values (${known})`);
  assert.ok(maxDiff <= 1e-6, `max |p_encoder - p_score| = ${maxDiff}`);
});
