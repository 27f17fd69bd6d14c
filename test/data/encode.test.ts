/**
 * Encoding new raw rows with a prepared dataset's saved encoding (src/data/encode.ts) gives
 * exactly what prepare wrote, on a spec with every kind of feature: categorical with OOV (unseen
 * and rare values, NULL), trimmed text, multi-valued with unknown items and overlong lists,
 * numeric buckets with a point mass, an expression, a side table with a prefix, and a dense log1p
 * input; from a CSV file, from Parquet and from rows in memory. Also: the vocabularies and side
 * tables of the cache are checked by verifyPrepared.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { appendFileSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { prepareDataset } from "../../src/data/prepare.ts";
import { readVocab, verifyPrepared } from "../../src/data/integrity.ts";
import { encodeRows, openWorkDb, type EncodeInput } from "../../src/data/encode.ts";
import { DataError } from "../../src/data/errors.ts";
import { encodingOf } from "../../src/deploy/features.ts";
import type { DatasetSpec } from "../../src/data/spec.ts";
import { Rng } from "../../src/util/rng.ts";
import { query, readI32, tempDir } from "./helpers.ts";

const root = tempDir("encode");
const rng = new Rng(3);
const lines = ["uid,item,tags,price,age,hourmin,day,click"];
for (let r = 0; r < 400; r++) {
  const day = 1 + (r % 10);
  const u = rng.next() < 0.05 ? "" : ` u${rng.int(day >= 9 ? 40 : 30)} `; // test days see unseen users; some NULL
  const item = rng.int(25);
  const ntag = rng.int(5);
  const tags = Array.from({ length: ntag }, () => (day >= 9 && rng.next() < 0.2 ? "new" : `t${rng.int(6)}`)).join("|");
  const price = rng.next() < 0.1 ? "" : (rng.next() * 100).toFixed(2);
  const age = rng.next() < 0.3 ? "0" : String(18 + rng.int(50));
  const hourmin = rng.int(2400);
  lines.push(`${u},${item},"${tags}",${price},${age},${hourmin},${day},${rng.next() < 0.4 ? 1 : 0}`);
}
writeFileSync(join(root, "log.csv"), lines.join("\n") + "\n");
const items = ["item_id,brand,cat"];
for (let i = 0; i < 25; i++) items.push(`${i},b${i % 4},${i % 3 === 0 ? "" : `c${i % 5}`}`);
writeFileSync(join(root, "items.csv"), items.join("\n") + "\n");

const spec: DatasetSpec = {
  name: "enc",
  log: ["log.csv"],
  csv: { trim: true },
  joins: [{ path: "items.csv", on: { left: "item", right: "item_id" }, columns: ["brand", "cat"], prefix: "i_" }],
  userColumn: "uid",
  itemColumn: "item",
  groupColumn: "uid",
  minCount: 2,
  categorical: ["uid", "item", "i_brand", "i_cat", { name: "hour", expr: "hourmin // 100" }, { name: "tags", separator: "|", maxLen: 3, pooling: "mean" }],
  numeric: [{ name: "age_b", column: "age", buckets: 4 }],
  dense: [{ name: "price_z", column: "price", log1p: true }],
  tasks: [{ name: "click", kind: "column", column: "click" }],
  split: { kind: "date", column: "day", train: [1, 6], val: [7, 8], test: [9, 10] },
};

test("rows encoded with the saved encoding get exactly prepare's ids and dense values (CSV, Parquet and rows in memory), OOV included", async () => {
  const cacheDir = join(root, "cache");
  const { dir, manifest } = await prepareDataset(spec, { cacheDir, dataDir: root });
  assert.equal(manifest.version, 4);
  assert.deepEqual(manifest.sides?.map((s) => [s.file, s.on, s.columns]), [["side_0.parquet", "item", ["i_brand", "i_cat"]]]);
  assert.equal(manifest.columns?.uid, "VARCHAR");
  const enc = encodingOf(manifest, (i) => readVocab(dir, manifest.fields[i]!), manifest.fields.map((f) => f.name));
  // expected: per row of the log, its split and position in that split
  const days = lines.slice(1).map((l) => Number(l.split(",").at(-2)));
  const splitOf = (d: number): "train" | "val" | "test" => (d <= 6 ? "train" : d <= 8 ? "val" : "test");
  const pos = { train: 0, val: 0, test: 0 };
  const where = days.map((d) => ({ s: splitOf(d), k: pos[splitOf(d)]++ }));
  const cache = (s: string, f: string): Int32Array => readI32(join(dir, s, f));
  const denseOf = (s: string): Float32Array => {
    const b = readFileSync(join(dir, s, "dense_0.f32"));
    return new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4);
  };
  await query(`COPY (SELECT * FROM read_csv('${join(root, "log.csv")}', all_varchar = true)) TO '${join(root, "log.parquet")}' (FORMAT parquet)`);
  const rowsInMemory = lines.slice(1).map((l) => {
    const v = l.match(/("[^"]*"|[^,]*)(,|$)/g)!.map((x) => x.replace(/,$/, "").replace(/^"|"$/g, ""));
    return { uid: v[0] === "" ? null : v[0], item: Number(v[1]), tags: v[2], price: v[3] === "" ? null : Number(v[3]), age: v[4], hourmin: Number(v[5]), day: Number(v[6]) };
  });
  const inputs: [string, EncodeInput][] = [
    ["csv", { file: join(root, "log.csv") }],
    ["parquet (all text columns)", { file: join(root, "log.parquet") }],
    ["rows", { rows: rowsInMemory }],
  ];
  for (const [name, input] of inputs) {
    const w = await openWorkDb(join(root, `work-${name.split(" ")[0]}`), [root, dir]);
    try {
      const r = await encodeRows(w.db, enc, input, { dir, keep: ["uid"] });
      assert.equal(r.rows, 400, name);
      const got = await w.db.rows("SELECT * FROM enc ORDER BY __rid", "test");
      let oov = 0;
      manifest.fields.forEach((f, i) => {
        const L = f.multi?.maxLen ?? 1;
        for (let r2 = 0; r2 < 400; r2++) {
          const { s, k } = where[r2]!;
          const want = cache(s, `field_${i}.i32`);
          for (let j = 0; j < L; j++) {
            const v = Number(got[r2]![L > 1 ? `c_${i}_${j}` : `c_${i}`]);
            assert.equal(v, want[k * L + j], `${name}: field ${f.name} row ${r2} (${s} ${k}) item ${j}`);
            if (s === "test" && j === 0 && v === 0 && (f.name === "uid" || f.name === "tags")) oov++;
          }
        }
      });
      assert.ok(oov > 5, `OOV ids in the test rows: ${oov}`);
      for (let r2 = 0; r2 < 400; r2++) {
        const { s, k } = where[r2]!;
        assert.ok(Math.abs(Number(got[r2]!.d_0) - denseOf(s)[k]!) < 1e-6, `${name}: dense row ${r2}: ${String(got[r2]!.d_0)} vs ${denseOf(s)[k]}`);
      }
      // the kept column is the input's, as read (trimmed like the log; empty is NULL)
      rowsInMemory.forEach((row, r2) => assert.equal(got[r2]!.__k0, row.uid === null ? null : String(row.uid).trim(), `${name}: kept uid of row ${r2}`));
    } finally {
      w.close();
    }
  }
});

test("a missing column names itself and what needs it; an empty input is an error; the cache's vocabularies are checked", async () => {
  const cacheDir = join(root, "cache2");
  const { dir, manifest } = await prepareDataset(spec, { cacheDir, dataDir: root });
  const enc = encodingOf(manifest, (i) => readVocab(dir, manifest.fields[i]!), manifest.fields.map((f) => f.name));
  writeFileSync(join(root, "nohour.csv"), "uid,item,tags,price,age,day\nu1,3,t1,2.5,20,9\n");
  writeFileSync(join(root, "noitem.csv"), "uid,tags,price,age,hourmin,day\nu1,t1,2.5,20,1200,9\n");
  writeFileSync(join(root, "header.csv"), "uid,item,tags,price,age,hourmin,day\n");
  writeFileSync(join(root, "empty.csv"), "");
  const w = await openWorkDb(join(root, "work-err"), [root, dir]);
  try {
    const fresh = async (): Promise<void> => {
      for (const t of ["log", "raw", "enc"]) await w.db.run(`DROP TABLE IF EXISTS ${t}`, "reset");
    };
    await assert.rejects(encodeRows(w.db, enc, { file: join(root, "nohour.csv") }, { dir, keep: [] }), (e: unknown) => e instanceof DataError && e.column === "hourmin" && /has no column "hourmin", which feature "hour" \(expression "hourmin \/\/ 100"\) needs/.test(e.message));
    await fresh();
    await assert.rejects(encodeRows(w.db, enc, { file: join(root, "noitem.csv") }, { dir, keep: [] }), (e: unknown) => e instanceof DataError && e.column === "item" && /has no column "item"/.test(e.message));
    await fresh();
    await assert.rejects(encodeRows(w.db, enc, { file: join(root, "header.csv") }, { dir, keep: [] }), (e: unknown) => e instanceof DataError && /header.csv/.test(e.message) && /no (data )?rows|header/i.test(e.message));
    await fresh();
    await assert.rejects(encodeRows(w.db, enc, { file: join(root, "empty.csv") }, { dir, keep: [] }), (e: unknown) => e instanceof DataError && /empty/.test(e.message));
    await fresh();
    await assert.rejects(encodeRows(w.db, enc, { rows: [] }, { dir, keep: [] }), /no rows to score/);
  } finally {
    w.close();
  }
  // an edited vocabulary is caught by the full check
  const vf = join(dir, manifest.fields[0]!.vocab!.file);
  appendFileSync(vf, " ");
  assert.throws(() => verifyPrepared(dir, manifest, "full"), (e: unknown) => e instanceof DataError && /vocab\/field_0\.json/.test(e.message));
});
