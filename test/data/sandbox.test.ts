/** Hostile spec expressions: parsed and allow-listed before use, never spliced as written; the DuckDB connection is locked down. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdirSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { DuckDBInstance } from "@duckdb/node-api";
import { compileExpr, DataError, openPrepared, prepareDataset, type Batch, type DatasetSpec } from "../../src/data/index.ts";
import { lockDown } from "../../src/data/duckdb.ts";
import { tempDir } from "./helpers.ts";

const root = tempDir("sandbox");
const HEADER = "user,item,day,like,watch,dur";
const ROWS: string[] = [];
for (let i = 0; i < 30; i++) ROWS.push(`u${i % 5},i${i % 7},${1 + (i % 3)},${i % 4 === 0 ? 1 : 0},${(i * 13) % 50},${20 + (i % 9)}`);
writeFileSync(join(root, "log.csv"), [HEADER, ...ROWS].join("\n") + "\n");
/** Where the attacks try to write (inside the data folder, which the DuckDB lockdown allows: only the allow-list stops it). */
const TARGET = join(root, "pwned.csv");

function spec(extra: Partial<DatasetSpec> = {}, sqlExpr = "watch > 25"): DatasetSpec {
  return {
    name: "sandbox",
    log: "log.csv",
    groupColumn: "user",
    categorical: ["user", "item"],
    tasks: [
      { name: "ev", kind: "ev", watch: "watch" },
      { name: "like", kind: "column", column: "like" },
      { name: "custom", kind: "sql", expr: sqlExpr },
    ],
    split: { kind: "date", column: "day", train: [1, 1], val: [2, 2], test: [3, 3] },
    ...extra,
  };
}

async function expectRejected(s: DatasetSpec, key: string, re: RegExp): Promise<void> {
  const cacheDir = join(root, `cache-${Math.random().toString(36).slice(2)}`);
  await assert.rejects(prepareDataset(s, { cacheDir, dataDir: root }), (e: unknown) => {
    assert.ok(e instanceof DataError, `expected DataError, got ${String(e)}`);
    assert.ok(e.message.includes(key), `message should name ${key}: ${e.message}`);
    assert.match(e.message, re);
    return true;
  });
  assert.equal(existsSync(TARGET), false, "the attack wrote a file");
  assert.deepEqual(existsSync(cacheDir) ? readdirSync(cacheDir) : [], [], "nothing may be left in the cache");
}

test("legit expressions still work, and labels / ids match the expression", async () => {
  const s = spec({ categorical: ["user", "item", { name: "pair", expr: "user || '-' || item" }], numeric: [{ name: "ratio", expr: "watch / dur", buckets: 4 }] }, "CASE WHEN watch > 25 THEN 1 ELSE 0 END -- a trailing comment");
  const { dir, manifest } = await prepareDataset(s, { cacheDir: join(root, "cache-ok"), dataDir: root });
  assert.deepEqual(
    manifest.fields.map((f) => f.name),
    ["user", "item", "pair", "ratio"],
  );
  // day 1 rows are the train split (i % 3 === 0); the custom label is watch > 25 on them, in log order
  const train = ROWS.map((l) => l.split(",")).filter((p) => p[2] === "1");
  const b = openPrepared(dir).split("train").iterate({ batchSize: 100, shuffle: false, seed: 0, epoch: 0 }).next().value as Batch;
  assert.equal(b.size, train.length);
  assert.deepEqual(
    Array.from(b.labels[2] as Float32Array),
    train.map((p) => (Number(p[4]) > 25 ? 1 : 0)),
  );
  // the pair field gets one id per distinct user-item value in train
  assert.equal(manifest.fields[2]?.vocabSize, new Set(train.map((p) => `${p[0]}-${p[1]}`)).size + 1);
  assert.equal(manifest.fields[3]?.boundaries?.length, 3);
  assert.equal(existsSync(TARGET), false);
});

test("statement injection: '1; COPY ... TO' is rejected naming the key", async () => {
  await expectRejected(spec({}, `1; COPY (SELECT 1) TO '${TARGET}'`), "$.tasks[2].expr", /not a valid SQL expression|one scalar expression/);
});

test("statement injection that breaks out of the surrounding query (wrote a file before) is rejected", async () => {
  // This text closed the generated query's parentheses and ran COPY as a second statement.
  const attack = `1)) AS t_9 FROM (SELECT rowid AS __rid, * FROM log)); COPY (SELECT 42 AS x) TO '${TARGET}'; SELECT * FROM (SELECT ((1`;
  await expectRejected(spec({}, attack), "$.tasks[2].expr", /invalid dataset spec/);
});

test("table functions, subqueries, getenv, unknown columns, aggregates and windows are rejected", async () => {
  const cases: [string, RegExp][] = [
    ["read_text('/etc/passwd')", /function read_text, which is not on the allow-list/],
    ["length(read_text('/etc/passwd')[1].content) > 0", /STRUCT_EXTRACT, which is not allowed/],
    ["(SELECT 1) = 1", /subquery/],
    ["EXISTS (SELECT * FROM read_csv('/etc/passwd'))", /subquery/],
    ["getenv('HOME') IS NOT NULL", /function getenv, which is not on the allow-list/],
    ["length(current_setting('allowed_directories')) > 0", /function current_setting/],
    ["nosuchcol > 1", /column "nosuchcol", which is not a column of the source \(columns: user, item, day, like, watch, dur\)/],
    ["sum(watch) > 0", /aggregate function sum/],
    ["count(*) > 0", /aggregate function count\(\*\)/],
    ["row_number() OVER () > 1", /window function/],
    ["list_transform([watch], x -> x + 1)[1] > 0", /list_transform|lambda/],
    ["log.watch > 1", /may only name columns directly/],
    ["watch > 1 FROM log WHERE 1 = 1 --", /one scalar expression|not a valid/],
    ["watch::mytype IS NULL", /casts to a type that is not allowed \(mytype/],
    ["random() > 0.5", /function random/],
  ];
  for (const [expr, re] of cases) await expectRejected(spec({}, expr), "$.tasks[2].expr", re);
});

test("field expressions are checked the same way and name their key", async () => {
  await expectRejected(spec({ categorical: ["user", "item", { name: "x", expr: "read_csv('/etc/passwd')" }] }), "$.categorical[2].expr", /read_csv/);
  await expectRejected(spec({ numeric: [{ name: "x", expr: "(SELECT max(watch) FROM log)" }] }), "$.numeric[0].expr", /subquery/);
  // type errors surface at bind time, still naming the key
  await expectRejected(spec({ numeric: [{ name: "x", expr: "lower(watch, 1, 2)" }] }), "$.numeric[0].expr", /cannot be evaluated/);
});

test("compileExpr re-emits the checked tree: comments and original spelling never reach SQL", async () => {
  const inst = await DuckDBInstance.create(":memory:");
  const conn = await inst.connect();
  try {
    const cols = ["watch", "dur", "Name"];
    assert.equal((await compileExpr(conn, "watch > 25 -- x", "$.k", cols)).sql, '("watch" > 25)');
    assert.equal((await compileExpr(conn, "name || 'it''s'", "$.k", cols)).sql, `("Name" || 'it''s')`);
    assert.equal((await compileExpr(conn, "CASE WHEN watch >= dur THEN -1.5 END", "$.k", cols)).sql, '(CASE WHEN ("watch" >= "dur") THEN (-1.5) ELSE NULL END)');
    assert.equal((await compileExpr(conn, "hour(watch::TIMESTAMP) /* c */ // 2", "$.k", cols)).sql, '(hour(CAST("watch" AS TIMESTAMP)) // 2)');
    assert.deepEqual((await compileExpr(conn, "coalesce(watch, dur) IN (1, 2)", "$.k", cols)).columns.sort(), ["dur", "watch"]);
  } finally {
    conn.closeSync();
    inst.closeSync();
  }
});

test("lockDown: no file access outside the allowed folders, no extensions, settings frozen", async () => {
  const inside = join(root, "inside");
  mkdirSync(inside, { recursive: true });
  writeFileSync(join(inside, "a.csv"), "x\n1\n");
  const inst = await DuckDBInstance.create(":memory:");
  const conn = await inst.connect();
  const q = async (sql: string): Promise<Record<string, unknown>[]> => (await conn.runAndReadAll(sql)).getRowObjectsJS() as Record<string, unknown>[];
  try {
    await lockDown(conn, [inside]);
    assert.equal(Number((await q(`SELECT count(*) AS n FROM read_csv('${inside}/a.csv')`))[0]?.n), 1);
    await assert.rejects(q("SELECT * FROM read_text('/etc/passwd')"), /Permission Error/);
    await assert.rejects(q(`SELECT * FROM read_csv('${join(root, "log.csv")}')`), /Permission Error/);
    await assert.rejects(q(`COPY (SELECT 1) TO '${join(root, "out.csv")}'`), /Permission Error/);
    await assert.rejects(q("SET enable_external_access = true"), /locked/);
    await assert.rejects(q("SET allowed_directories = ['/']"), /locked/);
    await assert.rejects(q("LOAD httpfs"), /disabled|Permission/);
    assert.equal(existsSync(join(root, "out.csv")), false);
    const s = (await q("SELECT current_setting('autoload_known_extensions') AS a, current_setting('autoinstall_known_extensions') AS b, current_setting('lock_configuration') AS c"))[0] ?? {};
    assert.deepEqual(s, { a: false, b: false, c: true });
  } finally {
    conn.closeSync();
    inst.closeSync();
  }
});
