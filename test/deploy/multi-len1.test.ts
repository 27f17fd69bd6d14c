/**
 * A multi-valued field whose maxLen is 1 is still a [batch, 1] input of model.onnx (onnx-check and
 * the encoder say so); loadModel's predict must feed it with that shape, not as [batch].
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { exportModel } from "../../src/deploy/export.ts";
import { loadModel } from "../../src/deploy/model.ts";
import { scoreRows } from "../../src/deploy/score.ts";
import { runTraining } from "../../src/train/run.ts";
import { Rng } from "../../src/util/rng.ts";
import { query, tempDir } from "../data/helpers.ts";

test("a multi-valued field with maxLen 1 exports and scores (fed as [batch, 1])", async () => {
  const root = tempDir("len1");
  const dir = join(root, "data");
  mkdirSync(dir, { recursive: true });
  const rng = new Rng(5);
  const rows: string[] = [];
  for (let r = 0; r < 300; r++) {
    const u = rng.int(10);
    const click = rng.next() < 0.3 + 0.04 * u ? 1 : 0;
    rows.push(`(${u}, '${["a", "b", "c", ""][rng.int(4)]}', ${click}, ${click && rng.next() < 0.5 ? 1 : 0})`);
  }
  await query(`COPY (SELECT * FROM (VALUES ${rows.join(", ")}) v(user_id, tags, click, "like")) TO '${join(dir, "log.parquet")}' (FORMAT parquet)`);
  const spec = {
    name: "len1",
    log: ["log.parquet"],
    categorical: ["user_id", { name: "tags", separator: ",", maxLen: 1, pooling: "mean" }],
    groupColumn: "user_id",
    tasks: [
      { name: "click", kind: "column", column: "click" },
      { name: "like", kind: "column", column: "like" },
    ],
    split: { kind: "fraction", train: 0.6, val: 0.2, test: 0.2, seed: 1 },
  };
  writeFileSync(join(dir, "len1.json"), JSON.stringify(spec));
  const out = join(root, "run.json");
  await runTraining({ dataset: join(dir, "len1.json"), cacheDir: join(root, "cache"), model: "shared-bottom", modelOptions: { bottomUnits: "4" }, method: "ew", seed: 1, epochs: 1, maxSteps: 3, batchSize: 32, embDim: 2, patience: 0, out });
  const modelDir = join(root, "model");
  await exportModel({ source: out, out: modelDir, cacheDir: join(root, "cache") });
  const model = await loadModel(modelDir);
  const scored = await scoreRows(model, [{ user_id: 1, tags: "a" }, { user_id: 2, tags: "" }]);
  assert.equal(scored.length, 2, "two rows scored");
  for (const r of scored) for (const t of ["p_click", "p_like"]) assert.ok(Number(r[t]) > 0 && Number(r[t]) < 1, `${t} = ${String(r[t])}`);
});
