/**
 * Derived time features never depend on the machine's time zone or locale: every DuckDB
 * connection that prepares or encodes rows runs in the spec's `timezone` (default UTC) with the
 * Gregorian calendar. Prepares and scores run in child processes under other `TZ` / `LANG` values
 * and must give byte-identical caches and the same ids; a spec that names a zone gets that zone's
 * local hours (checked by hand) and another content hash; an unknown zone is refused naming
 * `$.timezone`.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { DuckDBInstance } from "@duckdb/node-api";
import { DataError } from "../../src/data/errors.ts";
import { encodeRows, openWorkDb } from "../../src/data/encode.ts";
import { lockDown } from "../../src/data/duckdb.ts";
import type { Manifest } from "../../src/data/manifest.ts";
import { prepareDataset } from "../../src/data/prepare.ts";
import { validateSpec, type DatasetSpec } from "../../src/data/spec.ts";
import { exportModel } from "../../src/deploy/export.ts";
import { loadModel } from "../../src/deploy/model.ts";
import { runTraining } from "../../src/train/run.ts";
import { readI32, tempDir } from "./helpers.ts";

const root = tempDir("timezone");
const NY = "America/New_York";
/** 2023-11-10 00:00:00 UTC (a Friday); row k is T0 + k * STEP seconds. */
const T0 = 1699574400;
const STEP = 4620;
const ROWS = 400;

/** Row k as written in log.csv: `stamp` is the same instant as `ts`, as a TIMESTAMPTZ literal in UTC. */
function rowOf(k: number): { user_id: number; ts: number; stamp: string; click: number } {
  const ts = T0 + k * STEP;
  const stamp = new Date(ts * 1000).toISOString().replace("T", " ").replace(".000Z", "+00");
  return { user_id: k % 7, ts, stamp, click: (k * 7919) % 13 < 5 ? 1 : 0 };
}

/**
 * A log whose time features all depend on the zone: fields hour/dow/year/day from expressions, a
 * task from an expression, and a date split on a TIMESTAMP WITH TIME ZONE column whose ranges
 * (text) are read in the session's zone.
 */
function writeData(dir: string, zone?: string): string {
  const lines = ["user_id,ts,stamp,click"];
  for (let k = 0; k < ROWS; k++) {
    const r = rowOf(k);
    lines.push(`${r.user_id},${r.ts},${r.stamp},${r.click}`);
  }
  writeFileSync(join(dir, "log.csv"), lines.join("\n") + "\n");
  const spec = {
    name: "tz",
    log: "log.csv",
    categorical: [
      "user_id",
      { name: "hour", expr: "hour(to_timestamp(ts))" },
      { name: "dow", expr: "dayofweek(to_timestamp(ts))" },
      { name: "year", expr: "year(to_timestamp(ts))" },
      { name: "day", expr: "strftime(stamp, '%Y-%m-%d')" },
    ],
    groupColumn: "user_id",
    tasks: [
      { name: "click", kind: "column", column: "click" },
      { name: "evening", kind: "sql", expr: "hour(to_timestamp(ts)) >= 12" },
    ],
    split: { kind: "date", column: "stamp", train: ["2023-11-10 00:00:00", "2023-11-19 23:59:59"], val: ["2023-11-20 00:00:00", "2023-11-24 23:59:59"], test: ["2023-11-25 00:00:00", "2023-12-02 23:59:59"] },
    ...(zone ? { timezone: zone } : {}),
  };
  const path = join(dir, "tz.json");
  writeFileSync(path, JSON.stringify(spec, null, 2));
  return path;
}

const srcUrl = (p: string): string => pathToFileURL(resolve("src", p)).href;

/** Runs `code` (an ES module body; `out(x)` prints its result) in a child process with `env` added. */
function child(code: string, env: Record<string, string>): unknown {
  const r = spawnSync(process.execPath, ["--import", "tsx", "--input-type=module", "-e", `const out = (x) => process.stdout.write("\\n@@" + JSON.stringify(x));\n${code}`], {
    encoding: "utf8",
    env: { ...process.env, ...env },
    timeout: 120_000,
  });
  assert.equal(r.status, 0, `child under ${JSON.stringify(env)} failed:\n${r.stderr}`);
  return JSON.parse(r.stdout.slice(r.stdout.lastIndexOf("\n@@") + 3));
}

/** Prepares `spec` in a child process under `env` into its own cache folder. */
function prepareIn(spec: string, cacheDir: string, env: Record<string, string>): { dir: string; manifest: Manifest } {
  return child(`const { prepareDataset } = await import(${JSON.stringify(srcUrl("data/prepare.ts"))});\nconst r = await prepareDataset(${JSON.stringify(spec)}, { cacheDir: ${JSON.stringify(cacheDir)} });\nout({ dir: r.dir, manifest: r.manifest });`, env) as { dir: string; manifest: Manifest };
}

/** The values (as text) of categorical field `i` of one split, decoded through the vocabulary. */
function values(dir: string, i: number, split: string): string[] {
  const vocab = (JSON.parse(readFileSync(join(dir, "vocab", `field_${i}.json`), "utf8")) as { values: string[] }).values;
  return [...readI32(join(dir, split, `field_${i}.i32`))].map((id) => (id === 0 ? "<oov>" : vocab[id - 1]!));
}

/** The hour, weekday (0 = Sunday) and date of an instant in `zone`, computed by Node (independently of DuckDB). */
function local(ts: number, zone: string): { hour: number; dow: number; day: string } {
  const parts = Object.fromEntries(
    new Intl.DateTimeFormat("en-US", { timeZone: zone, hourCycle: "h23", year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", weekday: "short" })
      .formatToParts(new Date(ts * 1000))
      .map((p) => [p.type, p.value]),
  );
  return { hour: Number(parts.hour), dow: ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"].indexOf(parts.weekday!), day: `${parts.year}-${parts.month}-${parts.day}` };
}

/** Every train row's hour, weekday and date as prepared equal Node's in `zone`; the rows are the ones whose local date is in the train range. */
function checkLocal(dir: string, zone: string): void {
  const want = [...Array(ROWS).keys()].map((k) => ({ k, ...local(rowOf(k).ts, zone) })).filter((r) => r.day >= "2023-11-10" && r.day <= "2023-11-19");
  assert.deepEqual(values(dir, 1, "train"), want.map((r) => String(r.hour)), `hours in ${zone}`);
  assert.deepEqual(values(dir, 2, "train"), want.map((r) => String(r.dow)), `weekdays in ${zone}`);
  assert.deepEqual(values(dir, 4, "train"), want.map((r) => r.day), `dates in ${zone}`);
  assert.deepEqual(new Set(values(dir, 3, "train")), new Set(["2023"]), "the Gregorian year");
}

const utcSpec = writeData(tempDir("tz-utc"));

test("time features are computed in UTC whatever the machine's TZ and locale: the same cache name, ids and files under TZ=UTC, America/New_York, Asia/Kolkata (LANG=th_TH)", () => {
  const envs: Record<string, string>[] = [{ TZ: "UTC" }, { TZ: NY }, { TZ: "Asia/Kolkata", LANG: "th_TH.UTF-8", LC_ALL: "th_TH.UTF-8" }];
  const got = envs.map((env, i) => prepareIn(utcSpec, join(root, `cache-utc-${i}`), env));
  const [a] = got;
  for (const [i, b] of got.entries()) {
    assert.equal(b.manifest.hash, a!.manifest.hash, `hash under ${JSON.stringify(envs[i])}`);
    assert.equal(b.manifest.timezone, "UTC");
    assert.deepEqual({ rows: b.manifest.rows, dropped: b.manifest.droppedRows, labels: b.manifest.labelRates, files: b.manifest.files }, { rows: a!.manifest.rows, dropped: a!.manifest.droppedRows, labels: a!.manifest.labelRates, files: a!.manifest.files }, `every cache file (CRC32) under ${JSON.stringify(envs[i])}`);
    checkLocal(b.dir, "UTC");
  }
  // by hand: row 0 (ts 1699574400, 2023-11-10 00:00:00 UTC, a Friday) is the first train row
  assert.equal(values(a!.dir, 1, "train")[0], "0");
  assert.equal(values(a!.dir, 2, "train")[0], "5");
  assert.equal(readFileSync(join(a!.dir, "train", "label_1.u8"))[0], 0, "row 0 is not in the evening in UTC");
});

test('a spec naming "timezone": "America/New_York" gets New York hours, weekdays and date ranges, under any machine TZ, and another content hash', async () => {
  const nySpec = writeData(tempDir("tz-ny"), NY);
  const utc = await prepareDataset(utcSpec, { cacheDir: join(root, "cache-main") });
  const ny = prepareIn(nySpec, join(root, "cache-ny-0"), { TZ: "Asia/Tokyo" });
  const ny2 = prepareIn(nySpec, join(root, "cache-ny-1"), { TZ: "UTC" });
  assert.notEqual(ny.manifest.hash, utc.manifest.hash);
  assert.notEqual(ny.dir.slice(-16), utc.dir.slice(-16), "another cache folder");
  assert.equal(ny.manifest.timezone, NY);
  assert.equal(ny2.manifest.hash, ny.manifest.hash);
  assert.deepEqual(ny2.manifest.files, ny.manifest.files);
  checkLocal(ny.dir, NY);
  // by hand: 2023-11-10 00:00 in New York (EST, UTC-5) is 05:00 UTC, so rows 0..3 (until 04:37 UTC)
  // fall on Nov 9 there and are dropped; row 4 (ts 1699592880, 05:08 UTC) is the first train row:
  // hour 0 in New York (5 in UTC), a Friday.
  assert.equal(utc.manifest.droppedRows, 0);
  assert.equal(ny.manifest.droppedRows, 4, "rows 0..3 are on Nov 9 in New York");
  assert.equal(values(ny.dir, 1, "train")[0], "0");
  assert.equal(values(ny.dir, 2, "train")[0], "5");
  assert.equal(values(utc.dir, 1, "train")[4], "5");
});

test("an unknown time zone is refused naming $.timezone, with a suggestion; so is a name that is not an IANA zone", async () => {
  const base = JSON.parse(readFileSync(utcSpec, "utf8")) as DatasetSpec;
  assert.throws(() => validateSpec({ ...base, timezone: "Asia/Shangai" }), (e: unknown) => e instanceof DataError && /^invalid dataset spec: \$\.timezone is not a known IANA time zone \(got "Asia\/Shangai"\); did you mean "Asia\/Shanghai"\?$/.test(e.message));
  assert.throws(() => validateSpec({ ...base, timezone: "Mars/Olympus" }), /\$\.timezone is not a known IANA time zone \(got "Mars\/Olympus"\)/);
  assert.throws(() => validateSpec({ ...base, timezone: "+05:00" }), /\$\.timezone must be an IANA time zone name such as "Asia\/Shanghai" \(got "\+05:00"\)/);
  assert.throws(() => validateSpec({ ...base, timezone: "UTC'; SET lock_configuration = false; --" }), /\$\.timezone must be an IANA time zone name/);
  assert.throws(() => validateSpec({ ...base, timezone: 5 }), /\$\.timezone must be an IANA time zone name/);
  assert.throws(() => validateSpec({ ...base, timeZone: "UTC" }), /\$\.timeZone is not a known key; did you mean "timezone"\?/);
  // one spelling per zone (else one zone would get two content hashes)
  assert.throws(() => validateSpec({ ...base, timezone: "asia/shanghai" }), /\$\.timezone must be spelt as the IANA database does: "Asia\/Shanghai" \(got "asia\/shanghai"\)/);
  assert.throws(() => validateSpec({ ...base, timezone: "utc" }), /\$\.timezone must be spelt as the IANA database does: "UTC"/);
  for (const z of ["UTC", "Asia/Shanghai", "US/Eastern", "Etc/GMT+5", "America/Argentina/Buenos_Aires"]) assert.equal(validateSpec({ ...base, timezone: z }).timezone, z);
  // past the spec check (a zone Node knows but this DuckDB would not): DuckDB's refusal names the key too
  const inst = await DuckDBInstance.create(":memory:");
  const conn = await inst.connect();
  try {
    await assert.rejects(lockDown(conn, [root], "Asia/Shangai"), (e: unknown) => e instanceof DataError && /\$\.timezone is not a time zone DuckDB knows \(got "Asia\/Shangai"\); did you mean "Asia\/Shanghai"\?/.test(e.message));
  } finally {
    conn.closeSync();
    inst.closeSync();
  }
});

test("lockDown sets the zone and the Gregorian calendar before it freezes the configuration: no later statement changes them", async () => {
  const inst = await DuckDBInstance.create(":memory:");
  const conn = await inst.connect();
  try {
    await lockDown(conn, [root], NY);
    const r = (await conn.runAndReadAll("SELECT current_setting('TimeZone') AS tz, current_setting('Calendar') AS cal, hour(to_timestamp(1700000000)) AS h")).getRowObjectsJS()[0]!;
    assert.deepEqual({ tz: r.tz, cal: r.cal, h: Number(r.h) }, { tz: NY, cal: "gregorian", h: 17 }, "2023-11-14 22:13:20 UTC is 17:13 in New York");
    await assert.rejects(conn.run("SET TimeZone = 'UTC'"), /configuration has been locked/);
    await assert.rejects(conn.run("SET Calendar = 'buddhist'"), /configuration has been locked/);
  } finally {
    conn.closeSync();
    inst.closeSync();
  }
});

test("a cache prepared before the zone was fixed is rebuilt when its features could depend on the zone, and reused when they cannot", async () => {
  const cacheDir = join(root, "cache-legacy");
  const a = await prepareDataset(utcSpec, { cacheDir });
  const strip = (dir: string): void => {
    const p = join(dir, "manifest.json");
    const m = JSON.parse(readFileSync(p, "utf8")) as Manifest;
    delete m.timezone;
    writeFileSync(p, JSON.stringify(m));
  };
  strip(a.dir);
  const logs: string[] = [];
  const b = await prepareDataset(utcSpec, { cacheDir, log: (m) => logs.push(m) });
  assert.equal(b.cached, false);
  assert.equal(b.dir, a.dir, "same hash, same folder");
  assert.ok(logs.some((m) => /was prepared before derived time features were fixed to UTC \(in the machine's time zone\); rebuilding it/.test(m)), logs.join("\n"));
  assert.equal(b.manifest.timezone, "UTC");
  const spec = JSON.parse(readFileSync(utcSpec, "utf8")) as DatasetSpec & Record<string, unknown>;
  const plainOf = (over: Partial<DatasetSpec>): DatasetSpec => ({ ...spec, categorical: ["user_id"], numeric: ["ts"], tasks: [spec.tasks[0]!], split: { kind: "fraction", train: 0.6, val: 0.2, test: 0.2, seed: 1 }, ...over });
  // no expression, but the log has a TIMESTAMP WITH TIME ZONE column (stamp): rebuilt
  const zonedSpec = join(resolve(utcSpec, ".."), "zoned.json");
  writeFileSync(zonedSpec, JSON.stringify(plainOf({ name: "zoned" })));
  const z = await prepareDataset(zonedSpec, { cacheDir });
  assert.equal(z.manifest.columns?.stamp, "TIMESTAMP WITH TIME ZONE");
  strip(z.dir);
  assert.equal((await prepareDataset(zonedSpec, { cacheDir })).cached, false);
  // plain columns only (no expression, no zone-aware column, no side table): nothing depends on the zone
  const plainDir = tempDir("tz-plain");
  writeFileSync(join(plainDir, "log.csv"), readFileSync(join(resolve(utcSpec, ".."), "log.csv"), "utf8").replace(/,[^,\n]+\+00,/g, ",").replace("user_id,ts,stamp,click", "user_id,ts,click"));
  writeFileSync(join(plainDir, "tz.json"), JSON.stringify(plainOf({})));
  const c = await prepareDataset(join(plainDir, "tz.json"), { cacheDir });
  strip(c.dir);
  const d = await prepareDataset(join(plainDir, "tz.json"), { cacheDir });
  assert.equal(d.cached, true);
});

test("a cache whose recorded zone differs from the spec's is rebuilt", async () => {
  const cacheDir = join(root, "cache-wrongzone");
  const a = await prepareDataset(utcSpec, { cacheDir });
  const p = join(a.dir, "manifest.json");
  writeFileSync(p, JSON.stringify({ ...(JSON.parse(readFileSync(p, "utf8")) as Manifest), timezone: NY }));
  const logs: string[] = [];
  const b = await prepareDataset(utcSpec, { cacheDir, log: (m) => logs.push(m) });
  assert.equal(b.cached, false);
  assert.ok(logs.some((m) => /was prepared in time zone America\/New_York, not UTC; rebuilding it/.test(m)), logs.join("\n"));
});

test("score encodes in the model spec's zone: rows scored under TZ=Asia/Tokyo get the ids prepare gave them (scoreRows and scoreFile); a work database in another zone is refused", { timeout: 300_000 }, async () => {
  const dir = tempDir("tz-score");
  const spec = writeData(dir, NY);
  const cacheDir = join(dir, "cache");
  const prepared = await prepareDataset(spec, { cacheDir });
  await runTraining({ dataset: spec, cacheDir, model: "shared-bottom", modelOptions: { bottomUnits: "4" }, method: "ew", seed: 1, epochs: 1, maxSteps: 2, batchSize: 32, embDim: 2, patience: 0, out: join(dir, "run.json") });
  const modelDir = join(dir, "model");
  await exportModel({ source: join(dir, "run.json"), out: modelDir, cacheDir });
  // the test split's raw rows: those whose New York date is in the test range
  const rows = [...Array(ROWS).keys()].map(rowOf).filter((r) => {
    const d = local(r.ts, NY).day;
    return d >= "2023-11-25" && d <= "2023-12-02";
  });
  assert.equal(rows.length, prepared.manifest.rows.test);
  const csv = join(dir, "rows.csv");
  writeFileSync(csv, ["user_id,ts,stamp,click", ...rows.map((r) => `${r.user_id},${r.ts},${r.stamp},${r.click}`)].join("\n") + "\n");
  const scored = child(
    `const { loadModel } = await import(${JSON.stringify(srcUrl("deploy/model.ts"))});
const { scoreRows, scoreFile } = await import(${JSON.stringify(srcUrl("deploy/score.ts"))});
const m = await loadModel(${JSON.stringify(modelDir)});
const r = await scoreRows(m, ${JSON.stringify(rows)}, { withIds: true });
await scoreFile(m, ${JSON.stringify(csv)}, ${JSON.stringify(join(dir, "scored.csv"))}, { withIds: true, keep: [] });
await m.close();
out(r);`,
    { TZ: "Asia/Tokyo" },
  ) as Record<string, unknown>[];
  const fileRows = readFileSync(join(dir, "scored.csv"), "utf8").trim().split("\n");
  const header = fileRows[0]!.split(",");
  for (const [i, name] of ["user_id", "hour", "dow", "year", "day"].entries()) {
    const want = [...readI32(join(prepared.dir, "test", `field_${i}.i32`))];
    assert.deepEqual(scored.map((r) => r[`id_${name}`]), want, `scoreRows ids of ${name}`);
    const col = header.indexOf(`id_${name}`);
    assert.deepEqual(fileRows.slice(1).map((l) => Number(l.split(",")[col])), want, `scoreFile ids of ${name}`);
  }
  // New York hours decoded (independently of the ids' equality above)
  assert.deepEqual(values(prepared.dir, 1, "test"), rows.map((r) => String(local(r.ts, NY).hour)));
  // encodeRows refuses a work database that is not in the model's zone
  const model = await loadModel(modelDir);
  const w = await openWorkDb(join(dir, "work-utc"), [modelDir]);
  try {
    await assert.rejects(encodeRows(w.db, model.features, { rows }, { dir: modelDir, keep: [] }), /rows of a model prepared in time zone America\/New_York encoded in a DuckDB database in UTC/);
  } finally {
    w.close();
    await model.close();
  }
});
