/**
 * A MovieLens-1M-style log as a new user brings it: `::`-separated, Latin-1, no header rows, a
 * multi-valued genre field (`Action|Comedy`) in a side table, and a time-fraction split. The spec
 * uses only keys of docs/spec-reference.md; it prepares, trains a few steps, and the splits hold
 * the fractions of the rows by time.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { DuckDBInstance } from "@duckdb/node-api";
import { DataError, openPrepared, prepareDataset, validateSpec, type DatasetSpec } from "../../src/data/index.ts";
import { readVocab } from "../../src/data/integrity.ts";
import { runTraining } from "../../src/train/run.ts";
import { Rng } from "../../src/util/rng.ts";
import { readI32, readU8, tempDir } from "./helpers.ts";

const root = tempDir("movielens");
const cacheDir = join(root, "cache");
const TITLES = ["Amélie (2001)", "Léon (1994)", "Ça tourne à Manhattan (1993)", "Toy Story (1995)", "Das Boot (1981)", "Crouching Tiger (2000)", "Heat (1995)", "Señorita (1998)"];
const GENRES = ["Comedy|Romance", "Action|Crime|Drama|Thriller", "Comedy", "Animation|Children's|Comedy", "Action|Drama|War", "Action|Romance", "Action|Crime|Thriller", "Drama"];
const N = 1000;
const T0 = 978_300_000;

// ratings.dat: UserID::MovieID::Rating::Timestamp, every timestamp distinct, rows not in time order
const rng = new Rng(7);
const ratings: { user: number; movie: number; rating: number; ts: number }[] = [];
for (let i = 0; i < N; i++) ratings.push({ user: 1 + rng.int(40), movie: 1 + rng.int(TITLES.length), rating: 1 + rng.int(5), ts: T0 + ((i * 7919) % N) * 13 });
writeFileSync(join(root, "ratings.dat"), Buffer.from(ratings.map((r) => `${r.user}::${r.movie}::${r.rating}::${r.ts}`).join("\n") + "\n", "latin1"));
writeFileSync(join(root, "movies.dat"), Buffer.from(TITLES.map((t, i) => `${i + 1}::${t}::${GENRES[i]}`).join("\n") + "\n", "latin1"));

const DAT = (columns: string[]): DatasetSpec["csv"] => ({ header: false, columns, delimiter: "::", encoding: "latin-1" });
const spec: DatasetSpec = {
  name: "ml-latin1",
  log: "ratings.dat",
  csv: DAT(["user_id", "movie_id", "rating", "timestamp"]),
  joins: [{ path: "movies.dat", on: "movie_id", columns: ["title", "genres"], csv: DAT(["movie_id", "title", "genres"]) }],
  groupColumn: "user_id",
  categorical: ["user_id", "movie_id", "title", { name: "genre", column: "genres", separator: "|", maxLen: 4 }],
  tasks: [
    { name: "liked", kind: "sql", expr: "rating >= 4" },
    { name: "loved", kind: "sql", expr: "rating = 5" },
  ],
  split: { kind: "time-fraction", column: "timestamp", val: 0.1, test: 0.2 },
};

/** Every key of an object (nested, lists included) with its parent's name, e.g. "csv.encoding". */
function keys(x: unknown, out: Set<string> = new Set()): Set<string> {
  if (Array.isArray(x)) for (const v of x) keys(v, out);
  else if (x && typeof x === "object") {
    for (const [k, v] of Object.entries(x)) {
      out.add(k);
      keys(v, out);
    }
  }
  return out;
}

test("a ::-separated Latin-1 MovieLens log with a multi-valued genre field and a time-fraction split prepares and trains", async () => {
  // only documented keys: each appears as `key` in a table row of the generated reference
  const reference = readFileSync("docs/spec-reference.md", "utf8");
  for (const k of keys(spec)) assert.ok(reference.includes(`| \`${k}\` |`), `key ${k} is not in docs/spec-reference.md`);
  validateSpec(JSON.parse(JSON.stringify(spec)));

  const { dir, manifest } = await prepareDataset(spec, { cacheDir, dataDir: root });
  // time-fraction: distinct timestamps, so exactly round(n * share) rows in val and test
  assert.deepEqual(manifest.rows, { train: N - 100 - 200, val: 100, test: 200 });
  assert.equal(manifest.droppedRows, 0);
  const sorted = ratings.map((r) => r.ts).sort((a, b) => a - b);
  assert.deepEqual(manifest.splitBoundaries, { val: String(sorted[N - 300]), test: String(sorted[N - 200]) });
  // every test row is later than every val row, which is later than every train row: labels follow the rows by time
  const liked = (s: "train" | "val" | "test"): number => readU8(join(dir, s, "label_0.u8")).reduce((a, b) => a + b, 0);
  const byTime = (lo: number, hi: number): number => ratings.filter((r) => r.ts >= lo && r.ts < hi && r.rating >= 4).length;
  assert.equal(liked("test"), byTime(sorted[N - 200]!, Infinity));
  assert.equal(liked("val"), byTime(sorted[N - 300]!, sorted[N - 200]!));
  assert.equal(liked("train"), byTime(-Infinity, sorted[N - 300]!));

  // Latin-1 text decoded: the titles are the Unicode strings, the genres split on '|'
  const title = manifest.fields.findIndex((f) => f.name === "title");
  const titles = readVocab(dir, manifest.fields[title]!).values;
  assert.ok(titles.includes("Amélie (2001)") && titles.includes("Ça tourne à Manhattan (1993)"), titles.join(", "));
  const genre = manifest.fields.findIndex((f) => f.name === "genre");
  assert.deepEqual(manifest.fields[genre]!.multi, { maxLen: 4, pooling: "mean" });
  const items = readVocab(dir, manifest.fields[genre]!).values;
  assert.deepEqual([...items].sort(), [...new Set(GENRES.flatMap((g) => g.split("|")))].sort());
  // a row of "Amélie" (Comedy|Romance) holds two genre ids, then -1 padding
  const ids = readI32(join(dir, "train", `field_${genre}.i32`));
  const amelieRow = ratings.filter((r) => r.ts < sorted[N - 300]!).findIndex((r) => r.movie === 1);
  const row = Array.from(ids.subarray(amelieRow * 4, amelieRow * 4 + 4));
  assert.deepEqual(row.map((id) => (id > 0 ? items[id - 1] : id)).sort(), ["Comedy", "Romance", -1, -1].sort());

  const res = await runTraining(
    { dataset: "ml-latin1", cacheDir, model: "shared-bottom", modelOptions: { bottomUnits: "4" }, method: "ew", seed: 1, epochs: 1, maxSteps: 3, batchSize: 64, lr: 0.01, l2: 0, embDim: 2, dropout: 0, patience: 0, scope: "shared" as const },
    openPrepared(dir),
  );
  assert.ok(res.test.auc.every((x) => Number.isFinite(x)), JSON.stringify(res.test));
});

test("a Latin-1 file read without csv.encoding fails at once, naming the file, the line and csv.encoding", async () => {
  // 30,000 ASCII lines, then "Señorita" on line 30,001: past DuckDB's type sample, where DuckDB itself reads the byte as garbage
  const lines = Array.from({ length: 30_000 }, (_, i) => `${i + 1}::Film ${i}::Drama`);
  lines.push("30001::Señorita (1998)::Drama");
  writeFileSync(join(root, "late-latin1.dat"), Buffer.from(lines.join("\n") + "\n", "latin1"));
  const s: DatasetSpec = {
    name: "ml-utf8",
    log: "late-latin1.dat",
    csv: { header: false, columns: ["movie_id", "title", "genres"], delimiter: "::" },
    categorical: ["title"],
    tasks: [{ name: "x", kind: "sql", expr: "movie_id % 2 = 0" }],
    split: { kind: "time-fraction", column: "movie_id", val: 0.25, test: 0.25 },
  };
  await assert.rejects(prepareDataset(s, { cacheDir, dataDir: root }), (e: unknown) => {
    assert.ok(e instanceof DataError, String(e));
    assert.match(e.message, /late-latin1\.dat: line 30001 is not valid UTF-8 \(byte 0xF1\).*set csv\.encoding to "latin-1"/);
    assert.doesNotMatch(e.message, /ignore_errors|encoding ?=/, "no DuckDB option the spec does not offer");
    assert.equal(e.line, 30001);
    return true;
  });
  // with the encoding it prepares, and the title is decoded
  const ok = await prepareDataset({ ...s, csv: { ...s.csv, encoding: "latin-1" } }, { cacheDir, dataDir: root });
  assert.equal(ok.manifest.rows.test, 7500);
  // n = 30,001 distinct ids, k_test = round(7500.25) = 7500: test starts at the value at position 22,501
  assert.equal(ok.manifest.splitBoundaries?.test, "22502");
});

test("time-fraction: a different share is a different dataset (hash), and rows sharing a boundary time go to the later split", async () => {
  const a = await prepareDataset(spec, { cacheDir, dataDir: root });
  const b = await prepareDataset({ ...spec, split: { kind: "time-fraction", column: "timestamp", val: 0.1, test: 0.25 } }, { cacheDir, dataDir: root });
  assert.notEqual(a.manifest.hash, b.manifest.hash);
  assert.equal(b.manifest.rows.test, 250);
  // ties: 10 rows at each of 100 timestamps; test = 0.15 of 1000 = 150 rows would cut timestamp 85 in two: all 10 of its rows go to test
  const tied = Array.from({ length: N }, (_, i) => `${1 + (i % 40)}::${1 + (i % TITLES.length)}::${1 + (i % 5)}::${T0 + Math.floor(i / 10)}`);
  writeFileSync(join(root, "tied.dat"), tied.join("\n") + "\n");
  const t = await prepareDataset({ ...spec, name: "ml-tied", log: "tied.dat", split: { kind: "time-fraction", column: "timestamp", val: 0.1, test: 0.155 } }, { cacheDir, dataDir: root });
  // k_test = round(155) = 155: the value at position 845 is T0 + 84, whose 10 rows (840..849) all go to test: 160 rows
  assert.equal(t.manifest.rows.test, 160);
  assert.equal(t.manifest.splitBoundaries?.test, String(T0 + 84));
  // k_val = 100: the value at position 745 is T0 + 74 (rows 740..749 in val): val holds 740..839
  assert.equal(t.manifest.rows.val, 100);
  assert.equal(t.manifest.rows.train, 740);
});

test("the time-fraction SQL of data/README.md gives the prepared split", async () => {
  const m = /<!-- time-split-sql -->\s*```sql\n([\s\S]*?)```/.exec(readFileSync("data/README.md", "utf8"));
  assert.ok(m, "data/README.md has the time-fraction SQL");
  // the README's example is n = 1000, val 0.1, test 0.1
  const { dir, manifest } = await prepareDataset({ ...spec, name: "ml-readme", split: { kind: "time-fraction", column: "timestamp", val: 0.1, test: 0.1 } }, { cacheDir, dataDir: root });
  const inst = await DuckDBInstance.create(":memory:");
  const conn = await inst.connect();
  try {
    await conn.run(`CREATE TABLE log AS SELECT * FROM read_csv('${join(root, "ratings.dat")}', delim = '::', header = false, names = ['user_id', 'movie_id', 'rating', 'ts'], encoding = 'latin-1')`);
    const rows = (await conn.runAndReadAll(`SELECT split, count(*) AS n, sum((rating >= 4)::INT) AS liked FROM (${m[1]!.trim().replace(/;\s*$/, "")}) GROUP BY 1`)).getRowObjectsJS();
    const got = Object.fromEntries(rows.map((r) => [String(r.split), { n: Number(r.n), liked: Number(r.liked) }]));
    for (const s of ["train", "val", "test"] as const) {
      assert.equal(got[s]?.n, manifest.rows[s], s);
      assert.equal(got[s]?.liked, readU8(join(dir, s, "label_0.u8")).reduce((a, b) => a + b, 0), s);
    }
  } finally {
    conn.closeSync();
    inst.closeSync();
  }
});

test("time-fraction: NaN and infinite times are no times: dropped like NULL, never a split of their own", async () => {
  const dir = tempDir("tf-nan");
  // 100 rows with DOUBLE times 1..100, every 10th NaN, one +inf and one -inf
  const rows = Array.from({ length: 100 }, (_, i) => `${i % 7},${i % 3},${i % 2},${i % 10 === 9 ? "nan" : i === 4 ? "inf" : i === 5 ? "-inf" : String(i + 1)}`);
  writeFileSync(join(dir, "log.csv"), "user_id,item_id,click,ts\n" + rows.join("\n") + "\n");
  const s: DatasetSpec = {
    name: "tf-nan",
    log: "log.csv",
    categorical: ["user_id", "item_id"],
    groupColumn: "user_id",
    tasks: [{ name: "click", kind: "column", column: "click" }],
    split: { kind: "time-fraction", column: "ts", val: 0.1, test: 0.1 },
  } as unknown as DatasetSpec;
  const r = await prepareDataset(s, { cacheDir: join(dir, "cache"), dataDir: dir });
  // 88 finite times: test = round(8.8) = 9 rows, val 9 rows, train the other 70; 12 rows dropped
  assert.equal(r.manifest.rows.test, 9);
  assert.equal(r.manifest.rows.val, 9);
  assert.equal(r.manifest.rows.train, 70);
  assert.equal(r.manifest.droppedRows, 12);
  assert.ok(!/nan|inf/i.test(String(r.manifest.splitBoundaries?.test)), `test boundary ${r.manifest.splitBoundaries?.test}`);
});
