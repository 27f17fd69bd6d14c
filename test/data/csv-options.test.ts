/**
 * The spec's CSV options (encoding, delimiters of several characters, quote and escape) and the
 * time-fraction split: hostile values are refused by the schema with the JSON path (and a
 * suggestion for a misspelt key or value), values that pass reach DuckDB only as quoted literals,
 * and DuckDB's reading errors come back as one DataError naming the file, the physical line, the
 * column and the value (cut to 200 characters). Engine options that DuckDB refuses are named.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { DuckDBInstance } from "@duckdb/node-api";
import { DataError, prepareDataset, scanCsv, validateSpec, type DatasetSpec } from "../../src/data/index.ts";
import { MAX_QUOTED_VALUE, openInstance, readerSql, resolveCsv, shortDuckDbMessage } from "../../src/data/duckdb.ts";
import { readVocab } from "../../src/data/integrity.ts";
import { tempDir } from "./helpers.ts";

const root = tempDir("csvopts");
const cacheDir = join(root, "cache");

const base = {
  name: "x",
  log: "log.csv",
  categorical: ["user"],
  tasks: [{ name: "click", kind: "column", column: "click" }],
  split: { kind: "fraction", train: 0.8, val: 0.1, test: 0.1, seed: 1 },
};
function bad(over: Record<string, unknown>, re: RegExp): void {
  assert.throws(() => validateSpec({ ...base, ...over }), (e: unknown) => e instanceof DataError && re.test(e.message), `${JSON.stringify(over)} should fail with ${re}`);
}

test("hostile csv options are refused with the key's JSON path", () => {
  bad({ csv: { encoding: "latin1" } }, /\$\.csv\.encoding must be one of "utf-8", "latin-1", "utf-16" \(got "latin1"\); did you mean "latin-1"\?/);
  bad({ csv: { encoding: "cp1252" } }, /\$\.csv\.encoding must be one of "utf-8", "latin-1", "utf-16" \(got "cp1252"\)/);
  bad({ csv: { encoding: "utf-8'; INSTALL httpfs; --" } }, /\$\.csv\.encoding must be one of/);
  bad({ csv: { delimiter: ":::::" } }, /\$\.csv\.delimiter must be 1 to 4 characters \(DuckDB reads delimiters of at most 4 bytes\); got 5/);
  bad({ csv: { delimiter: ":\n" } }, /\$\.csv\.delimiter must not be or hold a line break/);
  bad({ csv: { delimiter: "\r" } }, /\$\.csv\.delimiter must not be or hold a line break/);
  bad({ csv: { delimiter: ':"' } }, /\$\.csv\.delimiter must not hold the quote character "\\""/);
  bad({ csv: { delimiter: ";", quote: ";" } }, /\$\.csv uses ";" as both delimiter and quote/);
  bad({ csv: { delimiter: "\\|", escape: "\\" } }, /\$\.csv\.delimiter must not hold the escape character/);
  bad({ csv: { delimiter: "¦" } }, /\$\.csv\.delimiter must be printable ASCII \(or TAB\); got "¦"/);
  bad({ csv: { delimiter: "" } }, /\$\.csv\.delimiter must be a non-empty string/);
  bad({ csv: { quote: "''" } }, /\$\.csv\.quote must be a string of 1 character/);
  bad({ csv: { escape: "\\\\" } }, /\$\.csv\.escape must be a string of 1 character/);
  bad({ csv: { escape: "\n" } }, /\$\.csv\.escape must not be or hold a line break/);
  bad({ csv: { quote: "\t" } }, /\$\.csv\.quote must be printable ASCII; got "\\t"/);
  bad({ csv: { encodng: "latin-1" } }, /\$\.csv\.encodng is not a known key; did you mean "encoding"\?/);
  bad({ csv: { escpae: "\\" } }, /\$\.csv\.escpae is not a known key; did you mean "escape"\?/);
  bad({ csv: { delimeter: "::" } }, /\$\.csv\.delimeter is not a known key; did you mean "delimiter"\?/);
  // what is allowed
  for (const csv of [{ delimiter: "::" }, { delimiter: "\t" }, { delimiter: "';--" }, { quote: "'", escape: "\\" }, { encoding: "utf-16" }, { encoding: "latin-1" }]) assert.deepEqual(validateSpec({ ...base, csv }).csv, csv);
});

test("hostile time-fraction splits are refused with the key's JSON path", () => {
  const tf = (s: Record<string, unknown>): Record<string, unknown> => ({ split: { kind: "time-fraction", column: "ts", val: 0.1, test: 0.1, ...s } });
  bad(tf({ val: 0 }), /\$\.split\.val must be a number in \(0, 1\]/);
  bad(tf({ test: -0.1 }), /\$\.split\.test must be a number in \(0, 1\]/);
  bad(tf({ val: 0.5, test: 0.5 }), /\$\.split val \+ test must be below 1 so that train keeps some rows \(got 1\)/);
  bad(tf({ test: 1.5 }), /\$\.split\.test must be a number in \(0, 1\]/);
  bad(tf({ column: undefined }), /\$\.split\.column must be a non-empty string \(it is missing\)/);
  bad(tf({ coulmn: "ts" }), /\$\.split\.coulmn is not a known key; did you mean "column"\?/);
  bad(tf({ train: 0.8 }), /\$\.split\.train is not a known key/);
  bad({ split: { kind: "time-fractoin", column: "ts", val: 0.1, test: 0.1 } }, /\$\.split\.kind must be one of .*time-fraction.*did you mean "time-fraction"\?/);
  assert.equal(validateSpec({ ...base, ...tf({}) }).split.kind, "time-fraction");
});

test("option values reach DuckDB only as quoted literals: a delimiter with a single quote and SQL in it reads as a delimiter", async () => {
  // the delimiter is `';--` (legal: printable ASCII, no quote character): in SQL it must stay one string literal
  const d = "';--";
  const lines = ["user" + d + "click" + d + "note", ...Array.from({ length: 40 }, (_, i) => [`u${i % 7}`, String(i % 2), i === 3 ? '"a \';-- b"' : `n${i}`].join(d))];
  writeFileSync(join(root, "sqlish.csv"), lines.join("\n") + "\n");
  const spec = validateSpec({ ...base, name: "sqlish", log: "sqlish.csv", csv: { delimiter: d }, categorical: ["user", "note"] });
  const { dir, manifest } = await prepareDataset(spec, { cacheDir, dataDir: root });
  assert.equal(manifest.rows.train + manifest.rows.val + manifest.rows.test, 40);
  const notes = readVocab(dir, manifest.fields[1]!).values;
  assert.equal(notes.length, manifest.rows.train, "every note of train is one value");
  assert.ok(notes.every((v) => /^(n\d+|a ';-- b)$/.test(v)), notes.join(" | "));
  // a CsvResolved built by hand (not from a validated spec) is checked before any SQL is made of it
  const hand = { ...resolveCsv({}), encoding: "utf-8'); ATTACH 'x" as never };
  assert.throws(() => readerSql(["/data/a.csv"], new Map(), hand), (e: unknown) => e instanceof DataError && /csv\.encoding must be one of/.test(e.message));
  assert.throws(() => readerSql(["/data/a.csv"], new Map(), { ...resolveCsv({}), quote: "'; SELECT 1; --" }), /csv\.quote must be one printable ASCII character/);
  assert.throws(() => readerSql(["/data/a.csv"], new Map(), { ...resolveCsv({}), delimiter: "\n" }), /csv\.delimiter must be 1 to 4 printable ASCII characters or TAB/);
});

test("quote and escape: single-quoted values and backslash escapes are read as written", async () => {
  const lines = ["user,click,note"];
  for (let i = 0; i < 30; i++) lines.push(`u${i % 5},${i % 2},${i % 3 === 0 ? "'say \\'hi\\', then\ngo'" : `'plain, ${i % 3}'`}`);
  writeFileSync(join(root, "esc.csv"), lines.join("\n") + "\n");
  const info = await scanCsv(join(root, "esc.csv"), { quote: "'", escape: "\\" });
  assert.equal(info.rows, 30);
  const spec = validateSpec({ ...base, name: "esc", log: "esc.csv", csv: { quote: "'", escape: "\\" }, categorical: ["user", "note"] });
  const { dir, manifest } = await prepareDataset(spec, { cacheDir, dataDir: root });
  assert.equal(manifest.rows.train + manifest.rows.val + manifest.rows.test, 30);
  const notes = readVocab(dir, manifest.fields[1]!).values;
  assert.ok(notes.includes("say 'hi', then\ngo"), notes.join(" | "));
  assert.ok(notes.includes("plain, 1"), notes.join(" | "));
});

test("multi-character delimiters: '::' splits fields, a single ':' in a value does not", async () => {
  const lines = ["user::click::pair"];
  for (let i = 0; i < 30; i++) lines.push(`u${i % 4}::${i % 2}::k${i % 6}:v${i % 3}`);
  writeFileSync(join(root, "colons.dat"), lines.join("\n") + "\n");
  const info = await scanCsv(join(root, "colons.dat"), { delimiter: "::" });
  assert.deepEqual(info.columns, ["user", "click", "pair"]);
  const { dir, manifest } = await prepareDataset(validateSpec({ ...base, name: "colons", log: "colons.dat", csv: { delimiter: "::" }, categorical: ["user", "pair"] }), { cacheDir, dataDir: root });
  const pairs = readVocab(dir, manifest.fields[1]!).values;
  assert.ok(pairs.length >= 5 && pairs.every((v) => /^k\d:v\d$/.test(v)), pairs.join(" | "));
  // a ragged row names its line
  writeFileSync(join(root, "ragged.dat"), ["a::b", "1::2", "3::4::5"].join("\n") + "\n");
  await assert.rejects(scanCsv(join(root, "ragged.dat"), { delimiter: "::" }), (e: unknown) => e instanceof DataError && e.line === 3 && /ragged row 2 \(line 3\) has 3 fields/.test(e.message));
});

test("UTF-16: little-endian files prepare like their UTF-8 copy; big-endian and UTF-16 read as UTF-8 are refused by name", async () => {
  const text = ["user,click,city", ...Array.from({ length: 30 }, (_, i) => `u${i % 5},${i % 2},${["Zürich", "Kraków", "東京"][i % 3]}`)].join("\n") + "\n";
  writeFileSync(join(root, "u8.csv"), text);
  writeFileSync(join(root, "u16.csv"), Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(text, "utf16le")]));
  const be = Buffer.from(text, "utf16le");
  be.swap16();
  writeFileSync(join(root, "u16be.csv"), Buffer.concat([Buffer.from([0xfe, 0xff]), be]));
  const spec = (log: string, encoding?: "utf-16"): DatasetSpec => validateSpec({ ...base, name: `enc-${log.replace(".", "-")}`, log, categorical: ["user", "city"], ...(encoding ? { csv: { encoding } } : {}) });
  const a = await prepareDataset(spec("u8.csv"), { cacheDir, dataDir: root });
  const b = await prepareDataset(spec("u16.csv", "utf-16"), { cacheDir, dataDir: root });
  assert.deepEqual(b.manifest.rows, a.manifest.rows);
  assert.deepEqual(readVocab(b.dir, b.manifest.fields[1]!).values, readVocab(a.dir, a.manifest.fields[1]!).values);
  assert.ok(readVocab(b.dir, b.manifest.fields[1]!).values.includes("東京"), "the UTF-16 text is decoded");
  await assert.rejects(prepareDataset(spec("u16be.csv", "utf-16"), { cacheDir, dataDir: root }), /u16be\.csv is UTF-16 big-endian .*DuckDB reads UTF-16 little-endian only/);
  await assert.rejects(prepareDataset(spec("u16.csv"), { cacheDir, dataDir: root }), (e: unknown) => e instanceof DataError && /u16\.csv: line 1 is not valid UTF-8 \(byte 0xFF\).*UTF-16 byte-order mark: set csv\.encoding to "utf-16"/.test(e.message));
  // UTF-16 without a byte-order mark, read as UTF-8: the NUL bytes are named
  writeFileSync(join(root, "u16nobom.csv"), Buffer.from(text, "utf16le"));
  await assert.rejects(prepareDataset(spec("u16nobom.csv"), { cacheDir, dataDir: root }), /u16nobom\.csv: line 1 \(the header\) holds NUL bytes: if the file is UTF-16, set csv\.encoding to "utf-16"/);
  // a lone surrogate in a UTF-16 file names its line
  writeFileSync(join(root, "u16bad.csv"), Buffer.concat([Buffer.from("user,click,city\nu1,0,a\nu2,1,", "utf16le"), Buffer.from([0x00, 0xdc]), Buffer.from("\n", "utf16le")]));
  await assert.rejects(scanCsv(join(root, "u16bad.csv"), { encoding: "utf-16" }), (e: unknown) => e instanceof DataError && e.line === 3 && /line 3 is not valid UTF-16 little-endian \(a lone low surrogate 0xDC00\)/.test(e.message));
});

/** A log whose `watch` column holds integers in its first 30,000 rows (DuckDB's type sample) and then `bad` on a known line. */
function lateBadValue(name: string, bad: string, opts: { header?: boolean; multiline?: boolean } = {}): { file: string; line: number } {
  const header = opts.header ?? true;
  const lines: string[] = header ? ["user,click,watch"] : [];
  // a quoted value with two line breaks early on: DuckDB's own line numbers then fall 2 behind
  if (opts.multiline) lines.push('"u\n\nx",0,5');
  for (let i = 0; i < 30_000; i++) lines.push(`u${i % 9},${i % 2},${i % 97}`);
  lines.push(`u1,1,${bad}`);
  writeFileSync(join(root, name), lines.join("\n") + "\n");
  const physical = lines.join("\n").split("\n").length; // the bad value is on the last line
  return { file: join(root, name), line: physical };
}

async function readError(file: string, csv: DatasetSpec["csv"] = {}): Promise<DataError> {
  const spec = validateSpec({ ...base, name: "late", log: file, ...(csv && Object.keys(csv).length ? { csv } : {}), tasks: [{ name: "click", kind: "column", column: "click" }], categorical: ["user", "watch"] });
  try {
    await prepareDataset(spec, { cacheDir, dataDir: root });
  } catch (e) {
    assert.ok(e instanceof DataError, String(e));
    return e;
  }
  throw new Error("prepare did not fail");
}

test("a bad value past DuckDB's type sample names the file, its physical line, the column and the value", async () => {
  const a = lateBadValue("late.csv", "abc");
  const e = await readError(a.file);
  assert.equal(a.line, 30_002);
  assert.match(e.message, /late\.csv: line 30002, column "watch": the value "abc" is not a BIGINT/);
  assert.match(e.message, /csv\.nullStrings/);
  assert.equal(e.message.split("\n").length, 1, e.message);
  assert.deepEqual([e.file, e.column, e.line], [a.file, "watch", 30_002]);
  // without a header row: the same line numbering (line 1 is a data row)
  const b = lateBadValue("late-nohead.csv", "abc", { header: false });
  const eb = await readError(b.file, { header: false, columns: ["user", "click", "watch"] });
  assert.equal(eb.line, 30_001);
  assert.match(eb.message, /late-nohead\.csv: line 30001, column "watch"/);
  // a quoted value with two line breaks before it: DuckDB says line 30,003 (a record is one line to it), the file's line is 30,005
  const c = lateBadValue("late-multiline.csv", "abc", { multiline: true });
  const inst = await DuckDBInstance.create(":memory:");
  const conn = await inst.connect();
  try {
    await assert.rejects(conn.run(`CREATE TABLE t AS SELECT * FROM read_csv('${c.file}', header = true)`), /CSV Error on Line: 30003\n/);
  } finally {
    conn.closeSync();
    inst.closeSync();
  }
  const ec = await readError(c.file);
  assert.equal(c.line, 30_005);
  assert.equal(ec.line, 30_005, ec.message);
  assert.match(ec.message, /late-multiline\.csv: line 30005, column "watch"/);
});

test("a 50,000-character bad value is cut to 200 characters in the error", async () => {
  const big = "y".repeat(50_000);
  const a = lateBadValue("late-big.csv", big);
  const e = await readError(a.file);
  assert.match(e.message, new RegExp(`late-big\\.csv: line ${a.line}, column "watch": the value "y{${MAX_QUOTED_VALUE}}…" \\(50000 characters\\) is not a BIGINT`));
  assert.ok(e.message.length < 700, `${e.message.length} characters`);
});

test("DuckDB's option errors name the spec's key (real DuckDB messages)", async () => {
  const f = join(root, "opt.csv");
  writeFileSync(f, "a,b\n1,2\n");
  const inst = await DuckDBInstance.create(":memory:");
  const conn = await inst.connect();
  const msg = async (args: string): Promise<string> => {
    try {
      await conn.run(`SELECT * FROM read_csv('${f}', ${args})`);
    } catch (e) {
      return (e as Error).message;
    }
    throw new Error(`read_csv(${args}) did not fail`);
  };
  try {
    assert.equal(shortDuckDbMessage(await msg("encoding = 'cp1252'")), 'csv.encoding must be one of "utf-8", "latin-1", "utf-16" (the encodings DuckDB reads without an extension)');
    assert.equal(shortDuckDbMessage(await msg("delim = ':::::'")), "csv.delimiter must be at most 4 bytes (DuckDB's limit)");
    assert.equal(shortDuckDbMessage(await msg(`delim = ':"', quote = '"'`)), "csv.quote must not appear in csv.delimiter");
  } finally {
    conn.closeSync();
    inst.closeSync();
  }
});

test("engine options DuckDB refuses are named: threads and memoryLimit", async () => {
  const spec = validateSpec({ ...base, name: "threads", log: "esc.csv" });
  await assert.rejects(prepareDataset(spec, { cacheDir, dataDir: root, threads: -2 }), /threads must be a whole number of DuckDB worker threads from 1 to 4096; got -2/);
  await assert.rejects(prepareDataset(spec, { cacheDir, dataDir: root, threads: 1.5 }), /threads must be a whole number/);
  // DuckDB itself says only "Failed to set config": openInstance finds the setting and names its option
  await assert.rejects(openInstance(":memory:", { threads: "2", memory_limit: "lots" }, { memory_limit: "memoryLimit" }), /^Error: memoryLimit: DuckDB refuses the setting memory_limit = "lots"/);
  (await openInstance(":memory:", { threads: "2" })).closeSync();
});

test("a UTF-8 file read as utf-16 (one huge 'header') is refused with the header cut to 200 characters", async () => {
  const text = ["user,click,city", ...Array.from({ length: 2000 }, (_, i) => `u${i % 5},${i % 2},city${i % 7}`)].join("\n") + "\n";
  writeFileSync(join(root, "u8-as-16.csv"), text.length % 2 ? text + "\n" : text);
  const spec = validateSpec({ ...base, name: "u8-as-16", log: "u8-as-16.csv", categorical: ["user", "city"], csv: { encoding: "utf-16" } });
  await assert.rejects(prepareDataset(spec, { cacheDir, dataDir: root }), (e: unknown) => {
    const m = (e as Error).message;
    assert.ok(m.length < 1000, `message of ${m.length} characters`);
    assert.match(m, /u8-as-16\.csv/);
    return true;
  });
});

test("files that are not CSV text say so in one line (gzip named .csv, Parquet, ELF, binary noise); a row over DuckDB's 2,000,000-byte limit names its line and field", async () => {
  const rng = (n: number) => Uint8Array.from({ length: n }, (_, i) => (i * 2654435761) >>> 24);
  const cases: [string, Uint8Array, RegExp][] = [
    ["gz.csv", Uint8Array.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 0xff, 0xfe, 0x80]), /gz\.csv is not a CSV text file: it is gzip-compressed: name it \.csv\.gz/],
    ["pq.csv", Uint8Array.from([0x50, 0x41, 0x52, 0x31, 0x15, 0x04, 0xff, 0x80, 0x00]), /pq\.csv is not a CSV text file: it is a Parquet file/],
    ["elf.csv", Uint8Array.from([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0, 0, 0, 0xff, 0x80]), /elf\.csv is not a CSV text file: it is an executable/],
    ["noise.csv", rng(4096), /noise\.csv is not a CSV text file: it holds NUL bytes|noise\.csv is not a CSV text file: its first kilobyte/],
  ];
  for (const [name, bytes, re] of cases) {
    writeFileSync(join(root, name), bytes);
    const s = validateSpec({ ...base, name: `bin-${name.replace(".", "-")}`, log: name, categorical: ["user"] });
    await assert.rejects(prepareDataset(s, { cacheDir, dataDir: root }), (e: unknown) => {
      const m = (e as Error).message;
      assert.match(m, re);
      assert.ok(!m.includes("\n") && m.length < 400, `one short line: ${m.length} characters`);
      return true;
    });
  }
  const long = "user,click,city\n" + "u1,1,a\n".repeat(198) + `u2,0,${"x".repeat(2_100_000)}\n` + "u3,1,b\n";
  writeFileSync(join(root, "longrow.csv"), long);
  const s = validateSpec({ ...base, name: "longrow", log: "longrow.csv", categorical: ["user", "city"] });
  await assert.rejects(prepareDataset(s, { cacheDir, dataDir: root }), /longrow\.csv: the row at line 200 is longer than DuckDB's limit of 2,000,000 bytes per row \(in field 3 "city"\)/);
});

test("a date split whose range values the column's type cannot hold names the split key and the column, not a DuckDB conversion error", async () => {
  writeFileSync(join(root, "dsplit.csv"), "user,click,day\n" + Array.from({ length: 30 }, (_, i) => `u${i % 3},${i % 2},${i}`).join("\n") + "\n");
  const s = validateSpec({ ...base, name: "dsplit", log: "dsplit.csv", split: { kind: "date", column: "day", train: ["a", "b"], val: ["20", "24"], test: ["25", "29"] } });
  await assert.rejects(prepareDataset(s, { cacheDir, dataDir: root }), /split\.train\[0\] = "a" is not a value of the split column "day" \(type BIGINT in .*dsplit\.csv\): give numbers/);
  const ok = validateSpec({ ...base, name: "dsplit-ok", log: "dsplit.csv", split: { kind: "date", column: "day", train: ["0", "19"], val: ["20", "24"], test: ["25", "29"] } });
  const r = await prepareDataset(ok, { cacheDir, dataDir: root });
  assert.deepEqual(r.manifest.rows, { train: 20, val: 5, test: 5 });
});
