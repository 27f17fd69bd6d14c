/** Bad input: each case throws a DataError naming file / column / rows, and leaves nothing in the cache. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { DataError, prepareDataset, validateSpec, type DatasetSpec } from "../../src/data/index.ts";
import { checkMemoryLimit, shortDuckDbMessage } from "../../src/data/duckdb.ts";
import { tempDir } from "./helpers.ts";

const root = tempDir("errors");
const HEADER = "user,item,day,like,watch,dur";

function csv(name: string, lines: string[]): string {
  const p = join(root, name);
  writeFileSync(p, lines.join("\n") + "\n");
  return p;
}

function goodRows(): string[] {
  const out: string[] = [];
  for (let i = 0; i < 30; i++) out.push(`u${i % 5},i${i % 7},${1 + (i % 3)},${i % 4 === 0 ? 1 : 0},${(i * 13) % 50},${20 + (i % 9)}`);
  return out;
}

function spec(log: string, extra: Partial<DatasetSpec> = {}): DatasetSpec {
  return {
    name: "bad",
    log,
    groupColumn: "user",
    categorical: ["user", "item"],
    tasks: [
      { name: "ev", kind: "ev", watch: "watch" },
      { name: "cv", kind: "cv", watch: "watch", duration: "dur" },
      { name: "like", kind: "column", column: "like" },
    ],
    split: { kind: "date", column: "day", train: [1, 1], val: [2, 2], test: [3, 3] },
    ...extra,
  };
}

async function expectDataError(s: DatasetSpec, re: RegExp, where: { file?: RegExp; column?: string; rows?: number } = {}): Promise<void> {
  const cacheDir = join(root, `cache-${Math.random().toString(36).slice(2)}`);
  await assert.rejects(prepareDataset(s, { cacheDir, dataDir: root }), (e: unknown) => {
    assert.ok(e instanceof DataError, `expected DataError, got ${String(e)}`);
    assert.match(e.message, re);
    if (where.file) assert.match(e.file ?? "", where.file);
    if (where.column !== undefined) assert.equal(e.column, where.column);
    if (where.rows !== undefined) assert.equal(e.rows, where.rows);
    return true;
  });
  // nothing half written: the cache root holds no temp or final folder
  assert.deepEqual(existsSync(cacheDir) ? readdirSync(cacheDir) : [], []);
}

test("a good file prepares (control case)", async () => {
  csv("good.csv", [HEADER, ...goodRows()]);
  const r = await prepareDataset(spec("good.csv"), { cacheDir: join(root, "cache-good"), dataDir: root });
  assert.equal(r.manifest.rows.train + r.manifest.rows.val + r.manifest.rows.test, 30);
});

test("missing file", async () => {
  await expectDataError(spec("nope.csv"), /not found: .*nope\.csv/, { file: /nope\.csv$/ });
});

test("missing column", async () => {
  csv("nolike.csv", ["user,item,day,watch,dur", ...goodRows().map((l) => l.split(",").filter((_, i) => i !== 3).join(","))]);
  await expectDataError(spec("nolike.csv"), /column "like" not found in .*nolike\.csv/, { column: "like", file: /nolike\.csv/ });
});

test("wrong type: non-numeric watch time", async () => {
  const rows = goodRows();
  rows[3] = "u1,i1,1,0,abc,20";
  csv("strwatch.csv", [HEADER, ...rows]);
  await expectDataError(spec("strwatch.csv"), /"watch" in .*strwatch\.csv has type VARCHAR, expected a number/, { column: "watch" });
});

test("NaN and negative watch time, with the number of rows", async () => {
  const rows = goodRows();
  rows[0] = "u1,i1,1,0,-3.5,20";
  rows[1] = "u1,i1,2,0,nan,20";
  rows[2] = "u1,i1,3,0,-1,20";
  csv("negwatch.csv", [HEADER, ...rows]);
  await expectDataError(spec("negwatch.csv"), /"watch" in .*negwatch\.csv has 3 bad rows \(0 missing, 1 NaN, 2 negative\)/, { column: "watch", rows: 3 });
  const miss = goodRows();
  miss[4] = "u1,i1,1,0,,20";
  csv("misswatch.csv", [HEADER, ...miss]);
  await expectDataError(spec("misswatch.csv"), /1 bad rows \(1 missing/, { rows: 1 });
});

test("negative duration", async () => {
  const rows = goodRows();
  rows[5] = "u1,i1,1,0,3,-20";
  csv("negdur.csv", [HEADER, ...rows]);
  await expectDataError(spec("negdur.csv"), /duration column "dur" .* has 1 NaN or negative rows/, { column: "dur", rows: 1 });
});

test("empty split", async () => {
  csv("good2.csv", [HEADER, ...goodRows()]);
  await expectDataError(spec("good2.csv", { split: { kind: "date", column: "day", train: [1, 1], val: [2, 2], test: [9, 9] } }), /split "test" is empty \(rule: day in \[9, 9\]\)/, {
    column: "day",
    rows: 0,
  });
});

test("label with a single class in train", async () => {
  const rows = goodRows().map((l) => {
    const p = l.split(",");
    if (p[2] === "1") p[3] = "0";
    return p.join(",");
  });
  csv("onelabel.csv", [HEADER, ...rows]);
  await expectDataError(spec("onelabel.csv"), /label "like" \(like\) is 0 in all 10 training rows/, { column: "like", rows: 10 });
});

test("label values other than 0/1", async () => {
  const rows = goodRows();
  rows[0] = "u1,i1,1,2,3,20";
  rows[1] = "u1,i1,1,7,3,20";
  csv("badlabel.csv", [HEADER, ...rows]);
  await expectDataError(spec("badlabel.csv"), /label column "like" .* has 2 rows that are not 0 or 1/, { column: "like", rows: 2 });
});

test("duplicate column names", async () => {
  csv("dup.csv", ["user,item,day,like,watch,dur,item", ...goodRows().map((l) => `${l},x`)]);
  await expectDataError(spec("dup.csv"), /dup\.csv has the column name "item" more than once/, { column: "item" });
});

test("side table: missing column and duplicate keys", async () => {
  csv("good3.csv", [HEADER, ...goodRows()]);
  csv("items.csv", ["item,author", "i0,a", "i1,b", "i1,c"]);
  await expectDataError(spec("good3.csv", { joins: [{ path: "items.csv", on: "item", columns: ["genre"] }] }), /column "genre" not found in .*items\.csv/, { column: "genre" });
  await expectDataError(spec("good3.csv", { joins: [{ path: "items.csv", on: "item", columns: ["author"] }] }), /items\.csv has 1 rows with a duplicate key in column "item"/, { rows: 1 });
});

test("bad SQL expression is reported as a DataError", async () => {
  csv("good4.csv", [HEADER, ...goodRows()]);
  await expectDataError(spec("good4.csv", { tasks: [{ name: "x", kind: "sql", expr: "nosuchcol > 1" }] }), /nosuchcol/);
});

test("spec validation names the JSON path", () => {
  assert.throws(() => validateSpec({ name: "x" }), (e: unknown) => e instanceof DataError && /\$\.categorical must be a list/.test(e.message));
  const base = spec("good.csv") as unknown as Record<string, unknown>;
  assert.throws(() => validateSpec({ ...base, tasks: [{ name: "a", kind: "weird" }] }), /\$\.tasks\[0\]\.kind must be one of/);
  assert.throws(() => validateSpec({ ...base, split: { kind: "fraction", train: 0.5, val: 0.2, test: 0.2, seed: 1 } }), /fractions must sum to 1/);
  assert.throws(() => validateSpec({ ...base, categorical: ["user", "user"] }), /declares the field "user" twice/);
  assert.throws(() => validateSpec({ ...base, extra: 1 }), /\$\.extra is not a known key/);
  assert.equal(validateSpec(base).name, "bad");
});

test("an unknown dataset name suggests the built-in it resembles; a bad memory limit names its option", async () => {
  await assert.rejects(prepareDataset("kuairnd", { cacheDir: join(root, "cache-name") }), (e: Error) => e instanceof DataError && /unknown dataset "kuairnd".*did you mean "kuairand"\?/.test(e.message));
  assert.throws(() => checkMemoryLimit("abc"), /--memory-limit must be a size with a unit, e\.g\. 512MB/);
  assert.throws(() => checkMemoryLimit("2 GB; DROP"), /--memory-limit must be a size/);
  assert.equal(checkMemoryLimit("2GB"), "2GB");
  assert.equal(checkMemoryLimit(" 1.5GiB "), "1.5GiB");
  // too small for DuckDB to start: refused naming the option, not DuckDB's advice about its own settings
  assert.throws(() => checkMemoryLimit("1KB"), /--memory-limit must be at least 64MB .*got "1KB"/);
  assert.throws(() => checkMemoryLimit("0.05GB"), /at least 64MB/);
  assert.equal(checkMemoryLimit("64MB"), "64MB");
  assert.equal(checkMemoryLimit("0.5GiB"), "0.5GiB");
  const cacheDir = join(root, "cache-mem");
  await assert.rejects(prepareDataset(spec(csv("mem.csv", [HEADER, ...goodRows()])), { cacheDir, memoryLimit: "lots" }), /memoryLimit must be a size with a unit/);
  assert.ok(!existsSync(cacheDir) || readdirSync(cacheDir).every((n) => !n.startsWith("errors")), "nothing prepared");
});

test("a file that is not CSV is said in one line; DuckDB's long messages are cut (no 'Possible fixes', no echoed SQL, quoted values at 200 characters)", async () => {
  const notCsv = join(root, "notcsv.csv");
  writeFileSync(notCsv, '{\n  "name": "x",\n  "lockfileVersion": 3,\n  "requires": true,\n  "packages": {\n    "": {\n      "a": "b", "c": [1, 2, {"d": "e"}]\n    }\n  }\n}\n'.repeat(20));
  await assert.rejects(prepareDataset(spec(notCsv), { cacheDir: join(root, "cache-notcsv") }), (e: Error) => {
    assert.ok(e instanceof DataError);
    assert.match(e.message, /notcsv\.csv: not a CSV file DuckDB can read with the spec's csv options/);
    assert.equal(e.message.split("\n").length, 1, e.message);
    return true;
  });
  const big = "x".repeat(50_000);
  const raw = `Conversion Error: Could not convert string '${big}' to INT64\n\nPossible fixes:\n* Enable ignore errors (ignore_errors=true)\n\nLINE 1: CREATE TABLE log AS SELECT * FROM read_csv(['/data/log.csv'])`;
  const short = shortDuckDbMessage(raw);
  assert.ok(short.length < 400, `${short.length} characters`);
  assert.match(short, /^Conversion Error: Could not convert string 'x{200}…' \(50000 characters\) to INT64$/);
  assert.equal(shortDuckDbMessage("Binder Error: column \"watch\" not found"), 'Binder Error: column "watch" not found', "short messages pass as they are");
});
