/**
 * Users' own logs: CSV options (headerless files, delimiter, quote, NULL strings, trimming),
 * numeric features with point masses, dense inputs fitted on train only, multi-valued fields,
 * the documented hash split (reproduced with the SQL of data/README.md), an empty val split, and
 * the bundled spec for the headerless UCI Census-Income file.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { DataError, openPrepared, prepareDataset, validateSpec, type DatasetSpec, type Manifest } from "../../src/data/index.ts";
import { runTraining } from "../../src/train/run.ts";
import { Rng } from "../../src/util/rng.ts";
import { DuckDBInstance } from "@duckdb/node-api";
import { SHARED, n, readI32, tempDir } from "./helpers.ts";

const root = tempDir("userlogs");
const cacheDir = join(root, "cache");

/** Runs statements in order on one fresh in-memory DuckDB; returns the last one's rows. */
async function queryAll(sqls: string[]): Promise<Record<string, unknown>[]> {
  const inst = await DuckDBInstance.create(":memory:");
  const conn = await inst.connect();
  try {
    let out: Record<string, unknown>[] = [];
    for (const s of sqls) out = (await conn.runAndReadAll(s)).getRowObjectsJS() as Record<string, unknown>[];
    return out;
  } finally {
    conn.closeSync();
    inst.closeSync();
  }
}

function writeLines(path: string, lines: string[]): void {
  writeFileSync(path, lines.join("\n") + "\n");
}

function readF32(path: string): Float32Array {
  const b = readFileSync(path);
  return new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4);
}

function fieldIndex(m: Manifest, name: string): number {
  const i = m.fields.findIndex((f) => f.name === name);
  assert.ok(i >= 0, `field ${name}`);
  return i;
}

// ---- headerless files -------------------------------------------------------------------------

test("a headerless copy of the census fixture prepares with the same encoding as the file with a header", async () => {
  const src = join(SHARED, "fixtures", "census-income");
  const dst = join(root, "census-headerless");
  mkdirSync(dst, { recursive: true });
  let header: string[] = [];
  for (const f of readdirSync(src)) {
    const lines = readFileSync(join(src, f), "utf8").split("\n");
    header = (lines[0] as string).split(",");
    writeFileSync(join(dst, f), lines.slice(1).join("\n"));
  }
  const withHeader = JSON.parse(readFileSync("test/fixtures/census-income-rechub.json", "utf8")) as DatasetSpec;
  const headerless: DatasetSpec = { ...withHeader, name: "census-headerless", csv: { header: false, columns: header } };
  const a = await prepareDataset(withHeader, { cacheDir, dataDir: src });
  const b = await prepareDataset(headerless, { cacheDir, dataDir: dst });
  assert.deepEqual(b.manifest.rows, a.manifest.rows);
  assert.equal(a.manifest.rows.train, 80);
  assert.deepEqual(b.manifest.fields, a.manifest.fields);
  assert.deepEqual(b.manifest.labelRates, a.manifest.labelRates);
  assert.deepEqual(
    b.manifest.inputs.map((i) => i.rows),
    a.manifest.inputs.map((i) => i.rows),
  );
  const files = Object.keys(a.manifest.files ?? {});
  assert.ok(files.length > 3 * 40);
  assert.deepEqual(Object.keys(b.manifest.files ?? {}), files);
  for (const f of files) assert.ok(readFileSync(join(b.dir, f)).equals(readFileSync(join(a.dir, f))), f);
  // read as if it had a header, the first data row becomes the names: the error says what to do
  await assert.rejects(
    prepareDataset({ ...withHeader, name: "census-misread" }, { cacheDir, dataDir: dst }),
    (e: unknown) => e instanceof DataError && /csv\.header to false/.test(e.message),
  );
});

test("CSV options: delimiter, quote, NULL strings; leading spaces are kept unless trim is on", async () => {
  const d = join(root, "csvopts");
  mkdirSync(d, { recursive: true });
  const rows: string[] = [];
  for (let i = 0; i < 60; i++) rows.push(`u${i % 7};'v${i % 5}; x'; ${i % 9 === 0 ? "NA" : i % 11}; ${i % 3 === 0 ? 1 : 0}; ${i % 4}`);
  writeLines(join(d, "log.txt"), rows);
  const spec = (csv: Record<string, unknown>): DatasetSpec =>
    validateSpec({
      name: "csvopts",
      log: "log.txt",
      csv: { header: false, columns: ["user", "item", "amount", "click", "day"], delimiter: ";", quote: "'", ...csv },
      categorical: ["user", "item"],
      numeric: ["amount"],
      tasks: [{ name: "click", kind: "sql", expr: "click = 1" }],
      split: { kind: "date", column: "day", train: [0, 1], val: [2, 2], test: [3, 3] },
    });
  // trim off: values keep their leading space, "amount" is text (" NA" is no NULL string, and not a number)
  await assert.rejects(prepareDataset(spec({ nullStrings: ["NA"] }), { cacheDir, dataDir: d }), /numeric feature "amount" column "amount" .* has type VARCHAR/);
  const raw = await prepareDataset(spec({ nullStrings: [" NA"] }), { cacheDir, dataDir: d });
  assert.equal(raw.manifest.fields[1]?.vocabSize, 6); // the quoted "; " inside 'v1; x' is part of the value
  // trim on: "NA" is NULL after trimming, amount becomes a number column, click = 1 matches
  const t = await prepareDataset(spec({ trim: true, nullStrings: ["NA"] }), { cacheDir, dataDir: d });
  assert.ok(t.manifest.labelRates.train.click! > 0.2);
  const ai = fieldIndex(t.manifest, "amount");
  const ids = readI32(join(t.dir, "train", `field_${ai}.i32`));
  const trainRows = rows.filter((_, i) => i % 4 <= 1);
  trainRows.forEach((line, r) => {
    if (line.includes("NA")) assert.equal(ids[r], 0, `row ${r}: NULL amount`);
    else assert.ok(ids[r]! > 0);
  });
});

// ---- numeric point masses ----------------------------------------------------------------------

function zeroInflated(dir: string): { x: number[]; day: number[] } {
  mkdirSync(dir, { recursive: true });
  const rng = new Rng(3);
  const x: number[] = [];
  const day: number[] = [];
  const lines = ["uid,x,c,y,day"];
  for (let i = 0; i < 600; i++) {
    const v = rng.next() < 0.88 ? 0 : 1 + Math.floor(rng.next() * 5000);
    x.push(v);
    day.push(i % 3);
    lines.push(`u${i % 23},${v},0,${v > 2000 || rng.next() < 0.3 ? 1 : 0},${i % 3}`);
  }
  writeLines(join(dir, "log.csv"), lines);
  return { x, day };
}

function zeroSpec(pointMass?: number): DatasetSpec {
  return validateSpec({
    name: "zeros",
    log: "log.csv",
    categorical: ["uid"],
    numeric: [{ name: "x_b", column: "x", ...(pointMass !== undefined ? { pointMass } : {}) }, { name: "c_b", column: "c" }],
    tasks: [{ name: "y", kind: "column", column: "y" }],
    split: { kind: "date", column: "day", train: [0, 0], val: [1, 1], test: [2, 2] },
  });
}

test("a zero-inflated numeric column keeps its signal: the zero mass alone in its bucket, the rest in quantile buckets", async () => {
  const d = join(root, "zeros");
  const { x, day } = zeroInflated(d);
  const { dir, manifest } = await prepareDataset(zeroSpec(), { cacheDir, dataDir: d });
  const fi = fieldIndex(manifest, "x_b");
  const f = manifest.fields[fi]!;
  assert.deepEqual(f.pointMasses, [0]);
  assert.ok((f.boundaries?.length ?? 0) >= 5, `boundaries ${JSON.stringify(f.boundaries)}`);
  assert.equal(f.vocabSize, 1 + 1 + f.boundaries!.length + 1);
  for (const s of ["train", "val", "test"] as const) {
    const ids = readI32(join(dir, s, `field_${fi}.i32`));
    const xs = x.filter((_, i) => day[i] === ["train", "val", "test"].indexOf(s));
    assert.equal(ids.length, xs.length);
    const nonzeroIds = new Set<number>();
    xs.forEach((v, r) => {
      if (v === 0) assert.equal(ids[r], 1, `${s} row ${r}: the zero bucket`);
      else {
        assert.notEqual(ids[r], 1, `${s} row ${r}: ${v} is not in the zero bucket`);
        nonzeroIds.add(ids[r]!);
      }
    });
    assert.ok(nonzeroIds.size >= 4, `${s}: the non-zero values use ${nonzeroIds.size} buckets`);
  }
  // the constant column collapses to one bucket: warned; x_b is not
  assert.ok(manifest.warnings.some((w) => /numeric feature "c_b" has 1 bucket in train \(every non-missing training value is 0\); it carries no signal/.test(w)), manifest.warnings.join("\n"));
  assert.ok(!manifest.warnings.some((w) => /"x_b"/.test(w)));

  // without point masses (pointMass 1), the zeros share their bucket with small positive values
  const off = await prepareDataset(zeroSpec(1), { cacheDir, dataDir: d });
  const ids = readI32(join(off.dir, "train", `field_${fi}.i32`));
  const xs = x.filter((_, i) => day[i] === 0);
  const zeroId = ids[xs.indexOf(0)]!;
  assert.ok(
    xs.some((v, r) => v !== 0 && ids[r] === zeroId),
    "plain quantiles put positive values in the zero bucket",
  );
});

// ---- dense inputs --------------------------------------------------------------------------------

function denseData(dir: string, testScale: number): number[] {
  mkdirSync(dir, { recursive: true });
  const rng = new Rng(8);
  const v: number[] = [];
  const lines = ["uid,v,y,day"];
  for (let i = 0; i < 300; i++) {
    const day = i % 3;
    let x = Math.round(Math.exp(3 * rng.next()) * 100) / 100;
    if (day === 2) x *= testScale;
    v.push(x);
    const missing = day === 2 && testScale !== 1 && i % 7 === 0;
    lines.push(`u${i % 11},${missing ? "" : x},${rng.next() < 0.4 ? 1 : 0},${day}`);
  }
  writeLines(join(dir, "log.csv"), lines);
  return v;
}

const denseSpec: DatasetSpec = validateSpec({
  name: "dense",
  log: "log.csv",
  categorical: ["uid"],
  dense: [{ name: "v_log", column: "v", log1p: true }, "v"],
  tasks: [{ name: "y", kind: "column", column: "y" }],
  split: { kind: "date", column: "day", train: [0, 0], val: [1, 1], test: [2, 2] },
});

test("dense input statistics come from train only: changing the test rows changes nothing else", async () => {
  const dA = join(root, "denseA");
  const dB = join(root, "denseB");
  const v = denseData(dA, 1);
  denseData(dB, 1000); // same train and val rows; test values x1000 and some missing
  const a = await prepareDataset(denseSpec, { cacheDir, dataDir: dA });
  const b = await prepareDataset(denseSpec, { cacheDir, dataDir: dB });
  assert.notEqual(a.manifest.hash, b.manifest.hash);
  assert.deepEqual(b.manifest.dense, a.manifest.dense);
  for (const s of ["train", "val"]) for (const j of [0, 1]) assert.ok(readFileSync(join(b.dir, s, `dense_${j}.f32`)).equals(readFileSync(join(a.dir, s, `dense_${j}.f32`))), `${s} dense_${j}`);
  assert.ok(!readFileSync(join(b.dir, "test", "dense_1.f32")).equals(readFileSync(join(a.dir, "test", "dense_1.f32"))));
  // statistics: population mean / std of log1p(v) and v over the train rows
  const train = v.filter((_, i) => i % 3 === 0);
  for (const [j, f] of [(x: number) => Math.log1p(x), (x: number) => x].entries()) {
    const xs = train.map(f);
    const mean = xs.reduce((p, q) => p + q, 0) / xs.length;
    const std = Math.sqrt(xs.reduce((p, q) => p + (q - mean) ** 2, 0) / xs.length);
    const md = a.manifest.dense![j]!;
    assert.ok(Math.abs(md.mean - mean) < 1e-9 * Math.max(1, Math.abs(mean)) && Math.abs(md.std - std) < 1e-9 * std, `dense ${j}: ${md.mean} ${md.std} vs ${mean} ${std}`);
    const col = readF32(join(a.dir, "train", `dense_${j}.f32`));
    col.forEach((x, r) => assert.ok(Math.abs(x - (xs[r]! - mean) / std) < 1e-5));
  }
  // missing test values are 0 (the train mean); batches carry the dense columns
  const bt = readF32(join(b.dir, "test", "dense_0.f32"));
  const testIdx = v.map((_, i) => i).filter((i) => i % 3 === 2);
  testIdx.forEach((i, r) => {
    if (i % 7 === 0) assert.equal(bt[r], 0, `missing test value row ${r}`);
  });
  const ds = openPrepared(a.dir);
  assert.deepEqual(ds.meta.dense, [{ name: "v_log" }, { name: "v" }]);
  const batch = ds.split("val").iterate({ batchSize: 16, shuffle: true, seed: 1, epoch: 0 }).next().value!;
  assert.equal(batch.dense?.length, 2);
  assert.equal(batch.dense![0]!.length, 16);
});

// ---- multi-valued fields ---------------------------------------------------------------------

test("multi-valued field: items split, trimmed and counted on train; maxLen cut with a warning; NULL is id 0; -1 padding", async () => {
  const d = join(root, "multi");
  mkdirSync(d, { recursive: true });
  const tags = ["a,b", "b", "", "c, a ,b,d", "b,,c", "a", "zz", "b,a"];
  const lines = ["uid,tags,y,day"];
  for (let i = 0; i < 48; i++) lines.push(`u${i % 5},"${tags[i % tags.length]}",${i % 3 === 0 ? 1 : 0},${i < 32 ? 0 : i < 40 ? 1 : 2}`);
  // a test row with a tag never seen in train
  lines.push(`u1,"q,a",1,2`);
  writeLines(join(d, "log.csv"), lines);
  const { dir, manifest } = await prepareDataset(
    validateSpec({
      name: "multi",
      log: "log.csv",
      categorical: ["uid", { name: "tags", separator: ",", maxLen: 3, pooling: "sum" }],
      tasks: [{ name: "y", kind: "column", column: "y" }],
      split: { kind: "date", column: "day", train: [0, 0], val: [1, 1], test: [2, 2] },
    }),
    { cacheDir, dataDir: d },
  );
  const f = manifest.fields[1]!;
  assert.deepEqual(f.multi, { maxLen: 3, pooling: "sum" });
  // train items (4 copies of the 8 lists; "d" is cut by maxLen): b 5x4, a 4x4, c 2x4, zz 1x4
  assert.equal(f.vocabSize, 5);
  const id = { b: 1, a: 2, c: 3, zz: 4 } as Record<string, number>;
  assert.ok(manifest.warnings.some((w) => /multi-valued feature "tags": \d+ rows have more than maxLen = 3 items/.test(w)));
  const ids = readI32(join(dir, "train", "field_1.i32"));
  assert.equal(ids.length, 32 * 3);
  const expect = (s: string): number[] => {
    const items = s
      .split(",")
      .map((x) => x.trim())
      .filter((x) => x !== "")
      .slice(0, 3)
      .map((x) => id[x] ?? 0);
    const out = items.length ? items : [0];
    while (out.length < 3) out.push(-1);
    return out;
  };
  for (let r = 0; r < 32; r++) assert.deepEqual(Array.from(ids.subarray(3 * r, 3 * r + 3)), expect(tags[r % tags.length]!), `row ${r}`);
  const test = readI32(join(dir, "test", "field_1.i32"));
  assert.deepEqual(Array.from(test.subarray(test.length - 3)), [0, id.a, -1]);
  // batches: [size, maxLen] row-major
  const b = openPrepared(dir).split("train").iterate({ batchSize: 32, shuffle: false, seed: 0, epoch: 0 }).next().value!;
  assert.deepEqual(Array.from(b.fields[1]!), Array.from(ids));
});

// ---- the hash split -----------------------------------------------------------------------

/** The SQL block of data/README.md after the split-sql marker. */
function readmeSplitSql(): string {
  const text = readFileSync("data/README.md", "utf8");
  const m = /<!-- split-sql -->\s*```sql\n([\s\S]*?)```/.exec(text);
  assert.ok(m, "data/README.md has the split SQL");
  return m[1] as string;
}

test("the hash split reproduces with the documented SQL (by a key column, and by row position)", async () => {
  const d = join(root, "hash");
  mkdirSync(d, { recursive: true });
  const rng = new Rng(12);
  const lines = ["user_id,rid,item,y"];
  for (let i = 0; i < 500; i++) lines.push(`user${rng.int(60)},${i},i${rng.int(9)},${rng.next() < 0.4 ? 1 : 0}`);
  const log = join(d, "log.csv");
  writeLines(log, lines);
  const sql = readmeSplitSql();
  for (const by of ["user_id", null] as const) {
    const seed = 977;
    const spec = validateSpec({
      name: "hash",
      log: "log.csv",
      groupColumn: by ?? "rid",
      categorical: ["item"],
      tasks: [{ name: "y", kind: "column", column: "y" }],
      split: { kind: "fraction", train: 0.7, val: 0.15, test: 0.15, seed, ...(by ? { by } : {}) },
    });
    const { dir, manifest } = await prepareDataset(spec, { cacheDir, dataDir: d });
    const [t1, t2] = manifest.splitThresholds!;
    assert.equal(t1, Math.round(0.7 * 2 ** 32));
    assert.equal(t2, Math.round((0.7 + 0.15) * 2 ** 32));
    // the documented SQL, with this file, seed, key and thresholds
    const doc = sql
      .replace("'log.csv'", `'${log}'`)
      .replace("3435973837", String(t1))
      .replace("3865470566", String(t2))
      .replace("'42:'", `'${seed}:'`)
      .replace("CAST(user_id AS VARCHAR)", `CAST(${by ?? "rowid"} AS VARCHAR)`);
    assert.notEqual(doc, sql);
    const statements = doc.split(";").map((s) => s.trim()).filter(Boolean);
    assert.equal(statements.length, 2);
    const rows = await queryAll([statements[0] as string, `SELECT ${by ?? "rid"} AS k, split FROM (${statements[1]})`]);
    assert.equal(rows.length, 500);
    // group ids are 1..N in the order of the group values (all splits): map them back to keys
    const keys = [...new Set(rows.map((r) => (by ? String(r.k) : n(r.k))))].sort((a, b) => (typeof a === "number" ? a - (b as number) : String(a) < String(b) ? -1 : String(a) > String(b) ? 1 : 0));
    for (const s of ["train", "val", "test"] as const) {
      const want = rows.filter((r) => r.split === s).map((r) => (by ? String(r.k) : n(r.k)));
      const got = Array.from(readI32(join(dir, s, "group.i32")), (g) => keys[g - 1]);
      assert.equal(manifest.rows[s], want.length, `${by ?? "row position"}: ${s} rows`);
      assert.deepEqual([...got].sort(), [...want].sort(), `${by ?? "row position"}: ${s} keys`);
      assert.ok(want.length > 30);
    }
  }
});

test("an empty val split (fraction val 0) prepares; training refuses early stopping and runs with --patience 0", async () => {
  const d = join(root, "noval");
  mkdirSync(d, { recursive: true });
  const rng = new Rng(4);
  const lines = ["uid,item,tags,amount,click"];
  for (let i = 0; i < 200; i++) lines.push(`u${rng.int(9)},i${rng.int(13)},"${["a", "a,b", "c,b,a", ""][rng.int(4)]}",${rng.next() < 0.7 ? 0 : rng.int(100)},${rng.next() < 0.4 ? 1 : 0}`);
  writeLines(join(d, "log.csv"), lines);
  const spec = validateSpec({
    name: "noval",
    log: "log.csv",
    groupColumn: "uid",
    categorical: ["uid", "item", { name: "tags", separator: ",", maxLen: 3 }],
    numeric: ["amount"],
    dense: [{ name: "amount_log", column: "amount", log1p: true }],
    tasks: [{ name: "click", kind: "column", column: "click" }],
    split: { kind: "fraction", train: 0.8, val: 0, test: 0.2, seed: 3, by: "uid" },
  });
  const { dir, manifest } = await prepareDataset(spec, { cacheDir, dataDir: d });
  assert.equal(manifest.rows.val, 0);
  assert.ok(manifest.rows.train > 0 && manifest.rows.test > 0);
  const ds = openPrepared(dir);
  assert.equal([...ds.split("val").iterate({ batchSize: 8, shuffle: true, seed: 1, epoch: 0 })].length, 0);
  const opts = {
    dataset: "noval",
    cacheDir,
    model: "ple",
    modelOptions: { expertUnits: "4" },
    method: "ew",
    seed: 1,
    epochs: 2,
    batchSize: 32,
    lr: 0.01,
    l2: 0,
    embDim: 2,
    dropout: 0,
    scope: "shared" as const,
  };
  await assert.rejects(runTraining({ ...opts, patience: 2 }, ds), /val split is empty.*--patience 0/);
  const res = await runTraining({ ...opts, patience: 0 }, ds);
  assert.equal(res.epochsRun, 2);
  assert.ok(res.test.auc.every((x) => Number.isFinite(x)));
});

// ---- the UCI Census-Income spec --------------------------------------------------------------

/** Rows in the exact layout of census-income.data (42 values joined by ", "), varied from real rows. */
function uciRows(count: number, seed: number): { lines: string[]; income: number[]; never: number[] } {
  const rng = new Rng(seed);
  const templates = [
    "73, Not in universe, 0, 0, High school graduate, 0, Not in universe, Widowed, Not in universe or children, Not in universe, White, All other, Female, Not in universe, Not in universe, Not in labor force, 0, 0, 0, Nonfiler, Not in universe, Not in universe, Other Rel 18+ ever marr not in subfamily, Other relative of householder, 1700.09, ?, ?, ?, Not in universe under 1 year old, ?, 0, Not in universe, United-States, United-States, United-States, Native- Born in the United States, 0, Not in universe, 2, 0, 95, - 50000.",
    "58, Self-employed-not incorporated, 4, 34, Some college but no degree, 0, Not in universe, Divorced, Construction, Precision production craft & repair, White, All other, Male, Not in universe, Not in universe, Children or Armed Forces, 0, 0, 0, Head of household, South, Arkansas, Householder, Householder, 1053.55, MSA to MSA, Same county, Same county, No, Yes, 1, Not in universe, United-States, United-States, United-States, Native- Born in the United States, 0, Not in universe, 2, 52, 94, - 50000.",
    "38, Private, 6, 36, 1st 2nd 3rd or 4th grade, 0, Not in universe, Married-civilian spouse present, Manufacturing-durable goods, Machine operators assmblrs & inspctrs, White, Mexican (Mexicano), Female, Not in universe, Not in universe, Full-time schedules, 0, 0, 0, Joint one under 65 & one 65+, Not in universe, Not in universe, Spouse of householder, Spouse of householder, 1032.38, ?, ?, ?, Not in universe under 1 year old, ?, 4, Not in universe, Mexico, Mexico, Mexico, Foreign born- Not a citizen of U S , 0, Not in universe, 2, 12, 95, - 50000.",
    "2, Not in universe, 0, 0, Children, 0, Not in universe, Never married, Not in universe or children, Not in universe, White, Mexican-American, Male, Not in universe, Not in universe, Children or Armed Forces, 0, 0, 0, Nonfiler, Not in universe, Not in universe, Child <18 never marr not in subfamily, Child under 18 never married, 1601.75, ?, ?, ?, Not in universe under 1 year old, ?, 0, Both parents present, United-States, United-States, United-States, Native- Born in the United States, 0, Not in universe, 0, 0, 95, - 50000.",
  ];
  const lines: string[] = [];
  const income: number[] = [];
  const never: number[] = [];
  for (let i = 0; i < count; i++) {
    const v = (templates[i % templates.length] as string).split(", ");
    v[0] = String(16 + rng.int(70));
    v[5] = rng.next() < 0.9 ? "0" : String(500 + rng.int(3000));
    v[16] = rng.next() < 0.92 ? "0" : String(1000 + rng.int(20000));
    v[17] = rng.next() < 0.95 ? "0" : String(100 + rng.int(2000));
    v[18] = rng.next() < 0.85 ? "0" : String(10 + rng.int(5000));
    v[39] = rng.next() < 0.4 ? "0" : rng.next() < 0.6 ? "52" : String(1 + rng.int(51));
    const rich = rng.next() < 0.2;
    v[41] = rich ? "50000+." : "- 50000.";
    const nm = rng.next() < 0.35;
    v[7] = nm ? "Never married" : v[7] === "Never married" ? "Divorced" : (v[7] as string);
    lines.push(v.join(", "));
    income.push(rich ? 1 : 0);
    never.push(nm ? 1 : 0);
  }
  return { lines, income, never };
}

test("the bundled census-income spec reads the headerless UCI layout (', ' separators, '?' missing, trimmed labels)", async () => {
  const d = join(root, "uci");
  mkdirSync(d, { recursive: true });
  const tr = uciRows(400, 1);
  const te = uciRows(150, 2);
  writeLines(join(d, "census-income.data"), tr.lines);
  writeLines(join(d, "census-income.test"), te.lines);
  const { dir, manifest } = await prepareDataset("data/specs/census-income.json", { cacheDir, dataDir: d });
  assert.equal(manifest.rows.train + manifest.rows.val, 400);
  assert.equal(manifest.rows.test, 150);
  const rate = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
  assert.ok(Math.abs(manifest.labelRates.test.income! - rate(te.income)) < 1e-9);
  assert.ok(Math.abs(manifest.labelRates.test.marital! - rate(te.never)) < 1e-9);
  // zero-inflated amounts: the zero is a point mass; the dense log1p inputs are standardised
  for (const name of ["wage_per_hour_b", "capital_gains_b", "dividends_from_stocks_b"]) assert.deepEqual(manifest.fields[fieldIndex(manifest, name)]?.pointMasses?.[0], 0, name);
  assert.equal(manifest.dense?.length, 6);
  // trimmed values: "?" is NULL (id 0) in the migration columns, the "Not in universe" of class_of_worker has an id
  const msa = readI32(join(dir, "test", `field_${fieldIndex(manifest, "migration_code_change_in_msa")}.i32`));
  assert.equal(msa[0], 0);
  const year = manifest.fields[fieldIndex(manifest, "year")]!;
  assert.equal(year.vocabSize, 3);
  assert.ok(!manifest.warnings.some((w) => /carries no signal/.test(w)), manifest.warnings.join("\n"));
  // without trim, the labels keep their leading space and never equal '50000+.'
  const spec = JSON.parse(readFileSync("data/specs/census-income.json", "utf8")) as DatasetSpec;
  await assert.rejects(
    prepareDataset({ ...spec, csv: { ...spec.csv, trim: false } }, { cacheDir, dataDir: d }),
    (e: unknown) => e instanceof DataError && /label "income" .* is 0 in all/.test(e.message),
  );
});
