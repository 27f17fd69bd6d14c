/**
 * A small exported model over a Parquet log with typed columns, for the encoder, browser and
 * model-card tests: user_id (INTEGER), price (DOUBLE: 9.0, 4.5, ...), grade (DECIMAL(4,1)), city
 * (VARCHAR, with the values "__proto__" and "constructor"), a multi-valued tag list, a numeric
 * field and a dense input over amount (DOUBLE), two tasks.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { exportModel } from "../../src/deploy/export.ts";
import { runTraining } from "../../src/train/run.ts";
import { Rng } from "../../src/util/rng.ts";
import { query } from "../data/helpers.ts";

/** Writes the data under `root`, trains 3 steps and exports to `<root>/model`. */
export async function typedModel(root: string): Promise<{ modelDir: string }> {
  const dir = join(root, "data");
  const rng = new Rng(3);
  const rows: string[] = [];
  for (let r = 0; r < 400; r++) {
    const u = rng.int(15);
    const price = [9, 4.5, 11, 0.25, 7][rng.int(5)]!;
    const grade = [1.5, 2, 3.5, 10][rng.int(4)]!;
    const city = ["Paris", "Lyon", "  Nice", "__proto__", "constructor"][rng.int(5)]!;
    const tags = ["a,b", "b", "c, a ,", "", "toString"][rng.int(5)]!;
    const click = rng.next() < 0.2 + 0.05 * (u % 5) ? 1 : 0;
    const like = click && rng.next() < 0.5 ? 1 : 0;
    rows.push(`(${u}, ${price}::DOUBLE, ${grade}::DECIMAL(4,1), '${city}', '${tags}', ${(rng.next() * 100).toFixed(2)}::DOUBLE, ${click}, ${like})`);
  }
  mkdirSync(dir, { recursive: true });
  await query(`COPY (SELECT * FROM (VALUES ${rows.join(", ")}) v(user_id, price, grade, city, tags, amount, click, "like")) TO '${join(dir, "log.parquet")}' (FORMAT parquet)`);
  const spec = {
    name: "enc",
    log: ["log.parquet"],
    categorical: ["user_id", "price", "grade", "city", { name: "tags", separator: ",", maxLen: 2, pooling: "mean" }],
    numeric: [{ name: "amount_b", column: "amount", buckets: 4 }],
    dense: [{ name: "amount_z", column: "amount", log1p: true }],
    groupColumn: "user_id",
    tasks: [
      { name: "click", kind: "column", column: "click" },
      { name: "like", kind: "column", column: "like" },
    ],
    split: { kind: "fraction", train: 0.6, val: 0.2, test: 0.2, seed: 1 },
  };
  writeFileSync(join(dir, "enc.json"), JSON.stringify(spec));
  const out = join(root, "run.json");
  await runTraining({ dataset: join(dir, "enc.json"), cacheDir: join(root, "cache"), model: "shared-bottom", modelOptions: { bottomUnits: "4" }, method: "ew", seed: 1, epochs: 1, maxSteps: 3, batchSize: 32, embDim: 2, patience: 0, out });
  const modelDir = join(root, "model");
  await exportModel({ source: out, out: modelDir, cacheDir: join(root, "cache") });
  return { modelDir };
}

/** Rows a user might send: numbers, numeric text, fractions, hex, junk, missing columns, prototype names, huge text. */
export function hostileRows(): Record<string, unknown>[] {
  const base = { user_id: 3, price: 9, grade: 2, city: "Paris", tags: "a,b", amount: 12.5 };
  const edits: Record<string, unknown>[] = [
    {},
    { user_id: "3" },
    { user_id: "3.0" },
    { user_id: " +003 " },
    { user_id: 3.5 },
    { user_id: "0x3" },
    { user_id: "1e0" },
    { user_id: NaN },
    { user_id: null },
    { user_id: true },
    { user_id: 2n },
    { user_id: -0 },
    { price: "9" },
    { price: "9.0" },
    { price: 9.0 },
    { price: "9.00000000001" },
    { price: "nine" },
    { price: 4.5 },
    { price: "4.50" },
    { price: Infinity },
    { grade: 2 },
    { grade: "2.0" },
    { grade: "1.50" },
    { grade: 1.55 },
    { grade: "3.5e0" },
    { city: "__proto__" },
    { city: "constructor" },
    { city: "toString" },
    { city: "  Nice" },
    { city: "Nice" },
    { city: "x".repeat(100_000) },
    { city: 42 },
    { tags: "b , a" },
    { tags: "toString,__proto__" },
    { tags: ",,," },
    { tags: null },
    { tags: "c,c,c" },
    { amount: "12.5" },
    { amount: "abc" },
    { amount: -0.5 },
    { amount: null },
    { amount: "1e400" },
  ];
  return edits.map((e) => ({ ...base, ...e }));
}

