/** Broken input and broken caches: truncated / corrupt gzip, ragged or empty CSV, damaged cache files, overlapping splits, stale temp folders. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, truncateSync, utimesSync, writeFileSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { constants, crc32, deflateRawSync, gzipSync } from "node:zlib";
import { DataError, openPrepared, prepareDataset, validateSpec, type DatasetSpec } from "../../src/data/index.ts";
import { readI32, tempDir } from "./helpers.ts";

const root = tempDir("integrity");
const HEADER = "user,item,day,like,watch,dur";
const ROWS: string[] = [];
for (let i = 0; i < 30; i++) ROWS.push(`u${i % 5},i${i % 7},${1 + (i % 3)},${i % 4 === 0 ? 1 : 0},${(i * 13) % 50},${20 + (i % 9)}`);
const TEXT = [HEADER, ...ROWS].join("\n") + "\n";

function spec(log: string, extra: Partial<DatasetSpec> = {}): DatasetSpec {
  return {
    name: "integrity",
    log,
    groupColumn: "user",
    categorical: ["user", "item"],
    tasks: [
      { name: "ev", kind: "ev", watch: "watch" },
      { name: "like", kind: "column", column: "like" },
    ],
    split: { kind: "date", column: "day", train: [1, 1], val: [2, 2], test: [3, 3] },
    ...extra,
  };
}

async function expectDataError(s: DatasetSpec, re: RegExp, file?: RegExp): Promise<DataError> {
  const cacheDir = join(root, `cache-${Math.random().toString(36).slice(2)}`);
  let err: DataError | undefined;
  await assert.rejects(prepareDataset(s, { cacheDir, dataDir: root }), (e: unknown) => {
    assert.ok(e instanceof DataError, `expected DataError, got ${String(e)}`);
    assert.match(e.message, re);
    if (file) assert.match(e.file ?? "", file);
    err = e;
    return true;
  });
  assert.deepEqual(existsSync(cacheDir) ? readdirSync(cacheDir) : [], [], "nothing may be left in the cache");
  return err as DataError;
}

/** gzip member built by hand: header, raw deflate of each part (all but the last end on a full flush, i.e. a byte boundary), CRC32 + ISIZE trailer. */
function gzipParts(parts: string[]): { full: Buffer; cuts: number[] } {
  const head = Buffer.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3]);
  const bodies = parts.map((p, i) => deflateRawSync(Buffer.from(p), i < parts.length - 1 ? { finishFlush: constants.Z_FULL_FLUSH } : {}));
  const all = Buffer.from(parts.join(""));
  const trailer = Buffer.alloc(8);
  trailer.writeUInt32LE(crc32(all), 0);
  trailer.writeUInt32LE(all.length, 4);
  const cuts: number[] = [];
  let off = head.length;
  for (const b of bodies) cuts.push((off += b.length));
  return { full: Buffer.concat([head, ...bodies, trailer]), cuts };
}

// ---- gzip -----------------------------------------------------------------------------------

test("a whole hand-built gzip (control) prepares; rows per file are logged and kept in the manifest", async () => {
  const half = [HEADER, ...ROWS.slice(0, 15)].join("\n") + "\n";
  const rest = ROWS.slice(15).join("\n") + "\n";
  writeFileSync(join(root, "ok.csv.gz"), gzipParts([half, rest]).full);
  writeFileSync(join(root, "plain.csv"), TEXT);
  const logs: string[] = [];
  const r = await prepareDataset(spec("ok.csv.gz"), { cacheDir: join(root, "cache-ok"), dataDir: root, log: (m) => logs.push(m) });
  assert.equal(r.manifest.rows.train + r.manifest.rows.val + r.manifest.rows.test, 30);
  assert.deepEqual(
    r.manifest.inputs.map((i) => [i.file, i.rows]),
    [[join(root, "ok.csv.gz"), 30]],
  );
  assert.ok(logs.includes(`read 30 rows from ${join(root, "ok.csv.gz")}`), logs.join("\n"));
  // two log files, each counted on its own
  const two = await prepareDataset(spec("", { log: ["ok.csv.gz", "plain.csv"], singleClassLabels: "warn" }), { cacheDir: join(root, "cache-ok2"), dataDir: root });
  assert.deepEqual(
    two.manifest.inputs.map((i) => i.rows),
    [30, 30],
  );
});

test("a gzip truncated exactly at a line boundary is reported as truncated gzip", async () => {
  const half = [HEADER, ...ROWS.slice(0, 15)].join("\n") + "\n";
  const rest = ROWS.slice(15).join("\n") + "\n";
  const { full, cuts } = gzipParts([half, rest]);
  // cut right after the first part: the data so far decompresses to whole lines (header + 15 rows)
  writeFileSync(join(root, "cut-line.csv.gz"), full.subarray(0, cuts[0]));
  await expectDataError(spec("cut-line.csv.gz"), /^truncated gzip: .*cut-line\.csv\.gz ends before the end of its compressed stream/, /cut-line\.csv\.gz$/);
  // all data present, only the 8-byte CRC32/ISIZE trailer missing
  writeFileSync(join(root, "cut-trailer.csv.gz"), full.subarray(0, full.length - 8));
  await expectDataError(spec("cut-trailer.csv.gz"), /^truncated gzip: .*cut-trailer\.csv\.gz/);
  // cut in the middle of the deflate data
  const gz = gzipSync(TEXT);
  writeFileSync(join(root, "cut-mid.csv.gz"), gz.subarray(0, gz.length >> 1));
  await expectDataError(spec("cut-mid.csv.gz"), /^truncated gzip: .*cut-mid\.csv\.gz/);
  // a second member cut short
  writeFileSync(join(root, "cut-member.csv.gz"), Buffer.concat([gzipSync(TEXT), gzipSync(ROWS.join("\n") + "\n").subarray(0, 25)]));
  await expectDataError(spec("cut-member.csv.gz"), /^truncated gzip: .*cut-member\.csv\.gz/);
});

test("a gzip with a wrong CRC32 or length is reported as corrupt", async () => {
  const gz = gzipSync(TEXT);
  const badCrc = Buffer.from(gz);
  badCrc[badCrc.length - 8] = (badCrc[badCrc.length - 8] as number) ^ 0xff;
  writeFileSync(join(root, "crc.csv.gz"), badCrc);
  await expectDataError(spec("crc.csv.gz"), /corrupt gzip: .*crc\.csv\.gz fails its CRC32 check/, /crc\.csv\.gz$/);
  const badLen = Buffer.from(gz);
  badLen[badLen.length - 4] = (badLen[badLen.length - 4] as number) ^ 0x01;
  writeFileSync(join(root, "len.csv.gz"), badLen);
  await expectDataError(spec("len.csv.gz"), /corrupt gzip: .*len\.csv\.gz fails its length/);
  writeFileSync(join(root, "notgz.csv.gz"), TEXT);
  await expectDataError(spec("notgz.csv.gz"), /notgz\.csv\.gz is not a gzip file/);
});

// ---- CSV structure ---------------------------------------------------------------------------

test("a ragged row inside the sniffed sample is reported with its row and line", async () => {
  const rows = [...ROWS];
  rows[1] = "u1,i1,2,0,13"; // 5 fields
  writeFileSync(join(root, "ragged.csv"), [HEADER, ...rows].join("\n") + "\n");
  const e = await expectDataError(spec("ragged.csv"), /ragged\.csv: ragged row 2 \(line 3\) has 5 fields but the header has 6 \(','-separated\): "u1,i1,2,0,13"/, /ragged\.csv$/);
  assert.doesNotMatch(e.message, /not found/);
  const extra = [...ROWS];
  extra[0] = "u1,i1,1,0,13,20,surplus";
  writeFileSync(join(root, "extra.csv"), [HEADER, ...extra].join("\n") + "\n");
  await expectDataError(spec("extra.csv"), /extra\.csv: ragged row 1 \(line 2\) has 7 fields but the header has 6/);
});

test("a ragged row far past the sample, in a gzip with CRLF line ends and quoted fields, is found too", async () => {
  const lines = [HEADER];
  for (let i = 0; i < 30000; i++) lines.push(`u${i % 5},"i,${i % 7}",${1 + (i % 3)},${i % 4 === 0 ? 1 : 0},${(i * 13) % 50},${20 + (i % 9)}`);
  lines[25001] = `u1,"multi\r\nline ""quoted""",1,0,3`; // row 25001 spans lines 25002-25003 and has 5 fields
  writeFileSync(join(root, "late.csv.gz"), gzipSync(lines.join("\r\n") + "\r\n"));
  await expectDataError(spec("late.csv.gz"), /late\.csv\.gz: ragged row 25001 \(line 25002\) has 5 fields but the header has 6/);
});

test("quoted delimiters and newlines, CRLF and a BOM are fine (control): DuckDB reads the rows the scan counted", async () => {
  const lines = [HEADER, ...ROWS.map((l, i) => (i === 4 ? l.replace(/^u(\d)/, '"u$1, ""x""\r\ny"') : l))];
  writeFileSync(join(root, "quoted.csv"), "\ufeff" + lines.join("\r\n") + "\r\n\r\n");
  const r = await prepareDataset(spec("quoted.csv"), { cacheDir: join(root, "cache-quoted"), dataDir: root });
  assert.equal(r.manifest.inputs[0]?.rows, 30);
  assert.equal(r.manifest.rows.train + r.manifest.rows.val + r.manifest.rows.test, 30);
});

test("empty and header-only files, and an unterminated quote, say so", async () => {
  writeFileSync(join(root, "empty.csv"), "");
  await expectDataError(spec("empty.csv"), /empty\.csv is empty/, /empty\.csv$/);
  writeFileSync(join(root, "blank.csv"), "\n\n");
  await expectDataError(spec("blank.csv"), /blank\.csv is empty/);
  writeFileSync(join(root, "header.csv"), HEADER + "\n");
  await expectDataError(spec("header.csv"), /header\.csv has a header \(user, item, day, like, watch, dur\) but no data rows/, /header\.csv$/);
  writeFileSync(join(root, "header.csv.gz"), gzipSync(HEADER));
  await expectDataError(spec("header.csv.gz"), /header\.csv\.gz has a header .* but no data rows/);
  writeFileSync(join(root, "openquote.csv"), [HEADER, ...ROWS.slice(0, 5), 'u1,"i1,1,0,3,20', ...ROWS.slice(5)].join("\n") + "\n");
  await expectDataError(spec("openquote.csv"), /openquote\.csv: a quoted field opened in row 6 \(line 7\) is never closed/);
  // a side table is checked the same way
  writeFileSync(join(root, "log2.csv"), TEXT);
  writeFileSync(join(root, "items-empty.csv"), "item,author\n");
  await expectDataError(spec("log2.csv", { joins: [{ path: "items-empty.csv", on: "item", columns: ["author"] }] }), /items-empty\.csv has a header \(item, author\) but no data rows/);
});

// ---- cache verification ----------------------------------------------------------------------

test("a damaged cache is detected when opened (label 255, flipped id byte, truncated file) and rebuilt by prepare", async () => {
  writeFileSync(join(root, "cache-src.csv"), TEXT);
  const cacheDir = join(root, "cache-verify");
  const s = spec("cache-src.csv");
  const first = await prepareDataset(s, { cacheDir, dataDir: root });
  const dir = first.dir;
  // per split 2 field, 2 label and 1 group file; and the 2 fields' vocabularies
  assert.ok(first.manifest.files && Object.keys(first.manifest.files).length === 3 * (2 + 2 + 1) + 2);
  openPrepared(dir); // intact: opens

  // a label byte set to 255
  const label = join(dir, "train", "label_1.u8");
  const lb = readFileSync(label);
  const orig = Buffer.from(lb);
  lb[3] = 255;
  writeFileSync(label, lb);
  assert.throws(
    () => openPrepared(dir),
    (e: unknown) => e instanceof DataError && /is corrupt: train\/label_1\.u8 row 3 holds 255, outside the labels of task "like" \(must be 0 or 1\)/.test(e.message) && e.file === label,
  );
  // prepare notices too, and rebuilds instead of reusing
  const logs: string[] = [];
  const again = await prepareDataset(s, { cacheDir, dataDir: root, log: (m) => logs.push(m) });
  assert.equal(again.cached, false);
  assert.ok(logs.some((m) => /label_1\.u8 row 3 holds 255.*rebuilding/.test(m)), logs.join("\n"));
  assert.deepEqual(readFileSync(label), orig);
  openPrepared(dir);

  // one flipped bit in an id, still inside the vocabulary: only the checksum can see it
  const field = join(dir, "val", "field_0.i32");
  const ids = readI32(field);
  const row = ids.findIndex((x) => x === 1);
  assert.ok(row >= 0);
  const fb = readFileSync(field);
  fb[row * 4] = (fb[row * 4] as number) ^ 1; // id 1 -> 0 (the OOV id, valid)
  writeFileSync(field, fb);
  assert.throws(() => openPrepared(dir), /is corrupt: val\/field_0\.i32 fails its checksum/);
  // size-only verification does not read the data, so it cannot see it
  openPrepared(dir, { verify: "size" });
  assert.equal((await prepareDataset(s, { cacheDir, dataDir: root })).cached, false);

  // a truncated column file
  truncateSync(join(dir, "test", "group.i32"), 4);
  assert.throws(() => openPrepared(dir, { verify: "size" }), /test\/group\.i32 has 4 bytes, expected/);
  // an unreadable manifest
  writeFileSync(join(dir, "manifest.json"), "{ not json");
  assert.throws(() => openPrepared(dir), (e: unknown) => e instanceof DataError && /manifest\.json is not valid JSON/.test(e.message));
  assert.equal((await prepareDataset(s, { cacheDir, dataDir: root })).cached, false);
  assert.equal((await prepareDataset(s, { cacheDir, dataDir: root })).cached, true);
});

// ---- splits and temp folders -----------------------------------------------------------------

test("overlapping or reversed date ranges are rejected", () => {
  const base = spec("x.csv") as unknown as Record<string, unknown>;
  const split = (train: unknown, val: unknown, test: unknown): Record<string, unknown> => ({ ...base, split: { kind: "date", column: "day", train, val, test } });
  assert.throws(() => validateSpec(split([1, 5], [4, 6], [7, 8])), /\$\.split ranges train \[1, 5\] and val \[4, 6\] overlap on \[4, 5\]/);
  assert.throws(() => validateSpec(split([1, 5], [6, 7], [7, 9])), /val \[6, 7\] and test \[7, 9\] overlap on \[7, 7\]/);
  assert.throws(() => validateSpec(split([1, 9], [3, 3], [10, 10])), /train \[1, 9\] and val \[3, 3\] overlap/);
  assert.throws(() => validateSpec(split(["2022-04-25", "2022-05-03"], ["2022-05-03", "2022-05-05"], ["2022-05-06", "2022-05-08"])), /overlap on \["2022-05-03", "2022-05-03"\]/);
  assert.throws(() => validateSpec(split([5, 1], [6, 6], [7, 7])), /\$\.split\.train is reversed/);
  assert.throws(() => validateSpec(split([1, 1], [2, 2], [Infinity, 4])), /\$\.split\.test\[0\] must be a finite number/);
  assert.doesNotThrow(() => validateSpec(split([1, 5], [6, 6], [7, 9])));
  assert.doesNotThrow(() => validateSpec(split(["2022-04-25", "2022-05-03"], ["2022-05-04", "2022-05-05"], ["2022-05-06", "2022-05-08"])));
});

test("stale .tmp-* folders of dead processes are removed by the next prepare; live ones are kept", async () => {
  writeFileSync(join(root, "tmp-src.csv"), TEXT);
  const cacheDir = join(root, "cache-tmp");
  mkdirSync(cacheDir, { recursive: true });
  const host = hostname().replace(/[^A-Za-z0-9_.]/g, "_").slice(0, 64) || "host";
  const dead = spawnSync(process.execPath, ["-e", ""]).pid as number; // exited: its pid is free
  const names = {
    dead: `.tmp-integrity.pid${dead}@${host}-AbC123`,
    live: `.tmp-integrity.pid${process.pid}@${host}-XyZ789`,
    otherHost: `.tmp-integrity.pid${dead}@some.other.host-Qq1234`,
    legacyOld: ".tmp-integrity-old123",
    legacyNew: ".tmp-integrity-new123",
  };
  for (const n of Object.values(names)) {
    mkdirSync(join(cacheDir, n, "train"), { recursive: true });
    writeFileSync(join(cacheDir, n, "train", "field_0.i32"), "partial");
  }
  const old = new Date(Date.now() - 3 * 24 * 3600 * 1000);
  utimesSync(join(cacheDir, names.legacyOld), old, old);
  // the running prepare names its own work folder after its pid and host
  const seen: string[] = [];
  await prepareDataset(spec("tmp-src.csv"), {
    cacheDir,
    dataDir: root,
    progress: () => seen.push(...readdirSync(cacheDir).filter((n) => n.startsWith(".tmp-") && !Object.values(names).includes(n))),
  });
  assert.ok(seen.length > 0 && seen.every((n) => n.includes(`.pid${process.pid}@${host}-`)), seen.join(", "));
  const left = readdirSync(cacheDir).filter((n) => n.startsWith(".tmp-")).sort();
  assert.deepEqual(left, [names.legacyNew, names.live, names.otherHost].sort());
});
