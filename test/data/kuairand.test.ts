/** Real-data tests on the bundled KuaiRand-Pure slice (prepared once into a temp cache). */
import { test } from "node:test";
import assert from "node:assert/strict";
import { statSync } from "node:fs";
import { join } from "node:path";
import { formatSummary, openPrepared, prepareDataset, type Batch } from "../../src/data/index.ts";
import { after } from "node:test";
import { DuckDBInstance } from "@duckdb/node-api";
import { SHARED, n, readI32, readU8, tempDir } from "./helpers.ts";

const cacheDir = tempDir("kuairand");
const prepared = await prepareDataset("kuairand", { cacheDir });
const { dir, manifest } = prepared;
const LOGS = `['${SHARED}/kuairand-pure/log_standard_2022-04-25_to_04-30.csv.gz', '${SHARED}/kuairand-pure/log_standard_2022-05-01_to_05-08.csv.gz']`;
// Independent checks query the raw shared copy, loaded once.
const inst = await DuckDBInstance.create(":memory:");
const conn = await inst.connect();
await conn.run(`CREATE TABLE rawlog AS SELECT * FROM read_csv(${LOGS})`);
after(() => {
  conn.closeSync();
  inst.closeSync();
});
const LOG = "rawlog";
async function query(sql: string): Promise<Record<string, unknown>[]> {
  return (await conn.runAndReadAll(sql)).getRowObjectsJS() as Record<string, unknown>[];
}
const TRAIN = "date BETWEEN 20220425 AND 20220503";
const TEST = "date BETWEEN 20220506 AND 20220508";

test("row counts per split add up to the 94,784 + 133,545 log rows", async () => {
  const r = (await query(`SELECT count(*) FILTER (WHERE ${TRAIN}) AS tr, count(*) FILTER (WHERE date BETWEEN 20220504 AND 20220505) AS va, count(*) FILTER (WHERE ${TEST}) AS te FROM ${LOG}`))[0] ?? {};
  assert.deepEqual(manifest.rows, { train: n(r.tr), val: n(r.va), test: n(r.te) });
  assert.equal(manifest.rows.train + manifest.rows.val + manifest.rows.test, 94784 + 133545);
  assert.equal(manifest.droppedRows, 0);
  for (const s of ["train", "val", "test"] as const) {
    assert.equal(statSync(join(dir, s, "field_0.i32")).size, manifest.rows[s] * 4);
    assert.equal(statSync(join(dir, s, "label_0.u8")).size, manifest.rows[s]);
    assert.equal(statSync(join(dir, s, "group.i32")).size, manifest.rows[s] * 4);
  }
});

test("EV / LV thresholds are the train split's median and 75th percentile of play_time_ms", async () => {
  const r = (await query(`SELECT quantile_cont(play_time_ms, 0.5) AS m, quantile_cont(play_time_ms, 0.75) AS p FROM ${LOG} WHERE ${TRAIN}`))[0] ?? {};
  assert.equal(manifest.thresholds.ev, n(r.m));
  assert.equal(manifest.thresholds.lv, n(r.p));
  assert.deepEqual(
    manifest.tasks.map((t) => t.name),
    ["ev", "lv", "cv", "like", "follow", "forward"],
  );
});

test("label files match labels recomputed from the raw log (test split)", async () => {
  const ev = manifest.thresholds.ev ?? NaN;
  const r = (await query(`SELECT sum((play_time_ms > ${ev})::INT) AS ev, sum((play_time_ms >= duration_ms)::INT) AS cv, sum(is_like) AS lk, sum(is_follow) AS fo FROM ${LOG} WHERE ${TEST}`))[0] ?? {};
  const sum = (t: number): number => readU8(join(dir, "test", `label_${t}.u8`)).reduce((a, b) => a + b, 0);
  assert.equal(sum(0), n(r.ev));
  assert.equal(sum(2), n(r.cv));
  assert.equal(sum(3), n(r.lk));
  assert.equal(sum(4), n(r.fo));
});

test("label rates are in the expected ranges", () => {
  for (const s of ["train", "val", "test"] as const) {
    const lr = manifest.labelRates[s];
    assert.ok(Math.abs((lr.ev ?? 0) - 0.5) < 0.03, `${s} ev ${lr.ev}`);
    assert.ok(Math.abs((lr.lv ?? 0) - 0.25) < 0.03, `${s} lv ${lr.lv}`);
    assert.ok((lr.cv ?? 0) > 0.1 && (lr.cv ?? 0) < 0.25, `${s} cv ${lr.cv}`);
    assert.ok((lr.like ?? 0) > 0.01 && (lr.like ?? 0) < 0.03, `${s} like ${lr.like}`);
    assert.ok((lr.follow ?? 0) > 0.0005 && (lr.follow ?? 0) < 0.003, `${s} follow ${lr.follow}`);
    assert.ok((lr.forward ?? 0) > 0.0002 && (lr.forward ?? 0) < 0.002, `${s} forward ${lr.forward}`);
  }
  assert.ok(Math.abs((manifest.labelRates.train.ev ?? 0) - 0.5) < 1e-3, "train EV rate is ~0.5 by construction (ties at the median count as 0)");
});

test("vocabularies are fitted on train only; test ids unseen in train map to 0", async () => {
  const names = manifest.fields.map((f) => f.name);
  for (const col of ["user_id", "video_id"]) {
    const fi = names.indexOf(col);
    const r = (await query(
      `WITH tr AS (SELECT DISTINCT ${col} AS v FROM ${LOG} WHERE ${TRAIN}) SELECT (SELECT count(*) FROM tr) AS vocab, (SELECT count(*) FROM ${LOG} WHERE ${TEST} AND ${col} NOT IN (SELECT v FROM tr)) AS unseen`,
    ))[0] ?? {};
    assert.equal(manifest.fields[fi]?.vocabSize, n(r.vocab) + 1, col);
    const ids = readI32(join(dir, "test", `field_${fi}.i32`));
    let zeros = 0;
    for (const id of ids) if (id === 0) zeros++;
    assert.ok(n(r.unseen) > 0, "the slice has test ids unseen in train");
    assert.equal(zeros, n(r.unseen), `${col}: OOV count in test`);
    const trainIds = readI32(join(dir, "train", `field_${fi}.i32`));
    assert.equal(trainIds.indexOf(0), -1, `${col}: no OOV in train`);
  }
  for (const [i, f] of manifest.fields.entries()) {
    const ids = readI32(join(dir, "val", `field_${i}.i32`));
    let max = 0;
    for (const id of ids) if (id > max) max = id;
    assert.ok(max < f.vocabSize, `${f.name} ids < vocabSize`);
  }
});

test("numeric duration is bucketised on train quantiles; hour comes from hourmin", () => {
  const d = manifest.fields.find((f) => f.name === "duration_bucket");
  assert.ok(d && d.boundaries && d.boundaries.length >= 8 && d.boundaries.length <= 9);
  assert.equal(d.vocabSize, (d.boundaries?.length ?? 0) + 2);
  const hour = manifest.fields.find((f) => f.name === "hour");
  assert.equal(hour?.vocabSize, 25);
});

test("second prepare reuses the cache; force rebuilds", async () => {
  const before = statSync(join(dir, "manifest.json")).mtimeMs;
  const again = await prepareDataset("kuairand", { cacheDir });
  assert.equal(again.cached, true);
  assert.equal(again.dir, dir);
  assert.equal(statSync(join(dir, "manifest.json")).mtimeMs, before);
  assert.equal(prepared.cached, false);
});

test("formatSummary prints rows and label rates per split", () => {
  const text = formatSummary(manifest, dir);
  assert.match(text, /train\s+154071/);
  assert.match(text, /test\s+43268/);
  assert.match(text, /forward/);
});

function same(a: Batch, b: Batch): boolean {
  if (a.size !== b.size) return false;
  return a.fields.every((f, i) => Buffer.compare(Buffer.from(f.buffer), Buffer.from(b.fields[i]?.buffer ?? new ArrayBuffer(0))) === 0) &&
    a.labels.every((l, i) => Buffer.compare(Buffer.from(l.buffer), Buffer.from(b.labels[i]?.buffer ?? new ArrayBuffer(0))) === 0) &&
    Buffer.compare(Buffer.from(a.groups.buffer), Buffer.from(b.groups.buffer)) === 0;
}

test("shuffled batches: pure function of (seed, epoch); startBatch resumes exactly", () => {
  const ds = openPrepared(dir);
  const tr = ds.split("train");
  assert.equal(tr.numBatches(4096), Math.ceil(154071 / 4096));
  assert.equal(tr.numBatches(4096, true), Math.floor(154071 / 4096));
  const opts = { batchSize: 4096, shuffle: true, seed: 3, epoch: 1 };
  const all = [...tr.iterate(opts)];
  assert.equal(all.length, tr.numBatches(4096));
  assert.equal(all.reduce((a, b) => a + b.size, 0), 154071);
  assert.equal(all.at(-1)?.size, 154071 % 4096);
  const again = [...tr.iterate(opts)];
  assert.ok(all.every((b, i) => same(b, again[i] as Batch)));
  for (const k of [1, 7, 20, all.length - 1]) {
    const resumed = [...tr.iterate({ ...opts, startBatch: k })];
    assert.equal(resumed.length, all.length - k);
    assert.ok(resumed.every((b, i) => same(b, all[k + i] as Batch)), `resume at ${k}`);
  }
  const other = tr.iterate({ ...opts, epoch: 2 }).next().value as Batch;
  assert.ok(!same(other, all[0] as Batch), "another epoch gives another order");
  // Same multiset of labels per epoch, whatever the order.
  const pos = (bs: Batch[]): number => bs.reduce((a, b) => a + b.labels[0]!.reduce((x, y) => x + y, 0), 0);
  assert.equal(pos(all), pos([...tr.iterate({ ...opts, shuffle: false })]));
  assert.equal(pos(all), Math.round(manifest.labelRates.train.ev! * 154071));
});

test("unshuffled batches follow the file order", () => {
  const ds = openPrepared(dir);
  const te = ds.split("test");
  const b = te.iterate({ batchSize: 1000, shuffle: false, seed: 0, epoch: 0, startBatch: 2 }).next().value as Batch;
  const f0 = readI32(join(dir, "test", "field_0.i32"));
  assert.deepEqual(Array.from(b.fields[0]!), Array.from(f0.subarray(2000, 3000)));
  const g = readI32(join(dir, "test", "group.i32"));
  assert.deepEqual(Array.from(b.groups), Array.from(g.subarray(2000, 3000)));
  assert.ok(b.groups.every((x) => x >= 1 && x <= manifest.numGroups));
});

test("tag is multi-valued: items split on ',', vocabulary of train items, ids per row match the video's tag list", async () => {
  const fi = manifest.fields.findIndex((f) => f.name === "tag");
  const f = manifest.fields[fi]!;
  assert.deepEqual(f.multi, { maxLen: 3, pooling: "mean" });
  // independent vocabulary: items of the train rows' videos, most frequent first, ties by value
  await conn.run(`CREATE OR REPLACE TABLE vid AS SELECT video_id, tag FROM read_csv('${SHARED}/kuairand-pure/video_features_basic_pure.csv')`);
  await conn.run(
    `CREATE OR REPLACE TABLE tagvoc AS SELECT v, row_number() OVER (ORDER BY c DESC, v) AS id FROM (SELECT trim(item) AS v, count(*) AS c FROM (SELECT unnest(string_split(v.tag, ',')) AS item FROM ${LOG} l JOIN vid v ON l.video_id = v.video_id WHERE ${TRAIN}) GROUP BY 1)`,
  );
  const voc = new Map((await query(`SELECT v, id FROM tagvoc`)).map((r) => [String(r.v), n(r.id)]));
  assert.equal(f.vocabSize, voc.size + 1);
  assert.ok(voc.size >= 40 && voc.size <= 60, `${voc.size} tags`);
  // the first 3000 test rows in log order against the raw tag lists
  const rows = await query(`SELECT v.tag AS tag FROM ${LOG} l LEFT JOIN vid v ON l.video_id = v.video_id WHERE ${TEST} ORDER BY l.rowid LIMIT 3000`);
  const ids = readI32(join(dir, "test", `field_${fi}.i32`));
  assert.equal(ids.length, manifest.rows.test * 3);
  let multi = 0;
  rows.forEach((r, i) => {
    const want = r.tag === null || r.tag === undefined ? [0] : String(r.tag).split(",").map((t) => voc.get(t.trim()) ?? 0);
    if (want.length > 1) multi++;
    while (want.length < 3) want.push(-1);
    assert.deepEqual(Array.from(ids.subarray(i * 3, i * 3 + 3)), want, `test row ${i}`);
  });
  assert.ok(multi > 100, `${multi} rows with several tags`);
});
