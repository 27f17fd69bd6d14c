/**
 * prepareDataset: reads CSV / CSV.gz / Parquet logs with DuckDB, derives labels, fits vocabularies,
 * bucket boundaries and thresholds on the training split, encodes every split and writes the cache
 * (layout: manifest.ts). This file is the pipeline; its parts live beside it: manifest.ts (the
 * manifest format and the dataset hash), cache.ts (cache and work folders), duckdb.ts (DuckDB
 * connection, lock-down and reading inputs), sql.ts (SQL builders shared with encode.ts) and
 * columns.ts (the column and vocabulary files).
 *
 * The work happens in a temporary folder `<cacheDir>/.tmp-*` (with an on-disk DuckDB database, so
 * memory stays bounded) that is renamed into place when complete and removed on failure.
 *
 * Group ids come from a dictionary over all splits (they are an evaluation key, not a feature, so
 * this leaks nothing); feature vocabularies are fitted on train only, ordered by descending train
 * frequency then value; ids 1..V, unseen or NULL -> 0.
 */
import { existsSync, mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import type { SplitName } from "./types.ts";
import { DataError } from "./errors.ts";
import { CONFINE_DATA_ENV, confineSpecPaths } from "./confine.ts";
import { denseDefs, fieldDefs, quoteIdent, quoteStr, specTimeZone, splitHashSql, splitThresholds, SPEC_DEFAULTS, type DatasetSpec, type FieldDef, type TaskSpec } from "./spec.ts";
import { resolveSpec } from "./builtin.ts";
import { compileExpr } from "./expr.ts";
import { isParquet, verifyPrepared } from "./integrity.ts";
import { abs, datasetHash, FORMAT_VERSION, listOf, SPLITS, specInputs, zoneStale, type CacheFile, type Manifest, type ManifestDense, type ManifestField, type ManifestSide, type ManifestTask } from "./manifest.ts";
import { DEFAULT_CACHE_DIR, hostTag, readManifest, removeStaleTemps } from "./cache.ts";
import { checkMemoryLimit, checkRowCount, checkThreads, cleanTable, Db, describe, HEADER_HINT, inspectInput, lockDown, looksLikeData, num, openInstance, readerSql, resolveCsv, type CsvResolved, type InputInfo } from "./duckdb.ts";
import { dbl, encodeSelect, featureSelect, lit, NUMERIC_TYPE, TIME_TYPE } from "./sql.ts";
import { columnLayout, fileRecord, writeSplit, writeVocab } from "./columns.ts";

export interface PrepareOptions {
  /** Cache root (default `.cache/datasets`). */
  cacheDir?: string;
  /** Rebuild even when a valid cache exists. */
  force?: boolean;
  /** Folder relative source paths are resolved against (overrides the spec's; the WeChat folder for `wechat`). */
  dataDir?: string;
  /** Alias of `dataDir` (the CLI's --source). */
  source?: string;
  /**
   * Every input path of the spec (log, joins, split files) and the base folder must lie inside
   * this folder by real path, else a DataError naming the spec key (see confine.ts): for specs
   * from untrusted places (queue jobs). Checked before any input file is opened. Without it,
   * the environment variable MTLCRAFT_CONFINE_DATA (set by a queue worker for the `train`
   * process it starts, so that process checks the same spec again) gives the folder.
   */
  confineTo?: string;
  progress?: (done: number, total: number, stage: string) => void;
  log?: (msg: string) => void;
  /** DuckDB worker threads (default: DuckDB's). */
  threads?: number;
  /** DuckDB memory limit, e.g. "4GB" (default: DuckDB's, 80% of RAM); beyond it DuckDB spills to the temp folder. */
  memoryLimit?: string;
  /**
   * How an existing cache is checked before it is reused (see verifyPrepared): "full" (default:
   * sizes, CRC32 of every column file, label and id ranges), "size", or "none". A cache that fails
   * is rebuilt.
   */
  verify?: "full" | "size" | "none";
}

export interface PrepareResult {
  dir: string;
  manifest: Manifest;
  /** True when an existing cache was reused. */
  cached: boolean;
}

export async function prepareDataset(specOrName: string | DatasetSpec, opts: PrepareOptions = {}): Promise<PrepareResult> {
  const dataDir = opts.dataDir ?? opts.source;
  const { spec, baseDir } = resolveSpec(specOrName, dataDir !== undefined ? { dataDir } : {});
  // a queue worker's train process gets the worker's data folder through the environment (see CONFINE_DATA_ENV)
  const confineTo = opts.confineTo ?? (process.env[CONFINE_DATA_ENV] || undefined);
  if (confineTo !== undefined) confineSpecPaths(spec, baseDir, confineTo, dataDir !== undefined ? "the data folder" : "spec.dataDir");
  const log = opts.log ?? (() => {});
  const cacheRoot = resolve(opts.cacheDir ?? DEFAULT_CACHE_DIR);
  const { hash, inputs } = datasetHash(spec, baseDir);
  const dir = join(cacheRoot, `${spec.name}-${hash.slice(0, 16)}`);
  if (!opts.force) {
    const m = readManifest(dir);
    const stale = m && m.hash === hash && m.version === FORMAT_VERSION ? zoneStale(m, spec) : null;
    if (stale) log(`warning: ${dir} ${stale}; rebuilding it`);
    else if (m && m.hash === hash && m.version === FORMAT_VERSION) {
      try {
        verifyPrepared(dir, m, opts.verify ?? "full");
        log(`using cached dataset ${dir}`);
        return { dir, manifest: m, cached: true };
      } catch (e) {
        if (!(e instanceof DataError)) throw e;
        log(`warning: ${e.message.replace(/; delete the folder and prepare again$/, "")}; rebuilding it`);
      }
    }
  }
  mkdirSync(cacheRoot, { recursive: true });
  removeStaleTemps(cacheRoot, log);
  const tmp = mkdtempSync(join(cacheRoot, `.tmp-${spec.name}.pid${process.pid}@${hostTag()}-`));
  try {
    const { manifest, fileRows } = await build(spec, baseDir, tmp, opts, log);
    manifest.hash = hash;
    manifest.inputs = inputs.map((i) => ({ ...i, ...(fileRows.has(i.file) ? { rows: fileRows.get(i.file) } : {}) }));
    writeFileSync(join(tmp, "manifest.json"), JSON.stringify(manifest, null, 2));
    if (existsSync(dir)) rmSync(dir, { recursive: true, force: true });
    try {
      renameSync(tmp, dir);
    } catch (e) {
      // Another process finished the same dataset first: keep its copy.
      const other = readManifest(dir);
      if (!other || other.hash !== hash) throw e;
      rmSync(tmp, { recursive: true, force: true });
      return { dir, manifest: other, cached: true };
    }
    return { dir, manifest, cached: false };
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
}

/**
 * A boolean SQL expression over the raw log's columns (checked by the spec's expression sandbox,
 * src/data/expr.ts; NULL counts as false) on every row of one split, in the prepared split's row
 * order, as 0/1. The raw inputs are read and split exactly as prepare reads and splits them (in a
 * temporary work folder of the cache, removed afterwards); only the rows of `split` are returned.
 * `what` names the expression in errors (e.g. "--objective target").
 */
export async function splitValues(specOrName: string | DatasetSpec, opts: PrepareOptions, split: SplitName, expr: string, what = "the expression"): Promise<Uint8Array> {
  const dataDir = opts.dataDir ?? opts.source;
  const { spec, baseDir } = resolveSpec(specOrName, dataDir !== undefined ? { dataDir } : {});
  const cacheRoot = resolve(opts.cacheDir ?? DEFAULT_CACHE_DIR);
  mkdirSync(cacheRoot, { recursive: true });
  const tmp = mkdtempSync(join(cacheRoot, `.tmp-${spec.name}.pid${process.pid}@${hostTag()}-`));
  const probe: Probe = { expr, key: what, split };
  try {
    await build(spec, baseDir, tmp, { ...opts, progress: () => {} }, () => {}, probe);
  } catch (e) {
    if (e instanceof DataError) throw new DataError(e.message.replace(/^invalid dataset spec: /, ""), { ...(e.file ? { file: e.file } : {}), ...(e.column ? { column: e.column } : {}) });
    throw e;
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  if (!probe.values) throw new Error(`internal: ${what} was not evaluated`);
  return probe.values;
}

interface LabelPlan {
  task: TaskSpec;
  /** Columns of `raw` feeding this label. */
  rawCols: string[];
}

/** An expression evaluated on one split's raw rows instead of a prepare (see splitValues). */
interface Probe {
  expr: string;
  key: string;
  split: SplitName;
  values?: Uint8Array;
}

async function build(spec: DatasetSpec, baseDir: string, tmp: string, opts: PrepareOptions, log: (m: string) => void, probe?: Probe): Promise<{ manifest: Manifest; fileRows: Map<string, number> }> {
  const progress = opts.progress ?? (() => {});
  const warnings: string[] = [];
  const warn = (m: string): void => {
    warnings.push(m);
    log(`warning: ${m}`);
  };
  const config: Record<string, string> = { temp_directory: join(tmp, "spill"), preserve_insertion_order: "true" };
  if (opts.threads) config.threads = String(checkThreads(opts.threads, "threads"));
  if (opts.memoryLimit) config.memory_limit = checkMemoryLimit(opts.memoryLimit, "memoryLimit");
  const instance = await openInstance(join(tmp, "work.duckdb"), config, { threads: "threads", memory_limit: "memoryLimit", temp_directory: "cacheDir (its work folder)" });
  const conn = await instance.connect();
  const db = new Db(conn);
  try {
    await lockDown(conn, [...specInputs(spec, baseDir).map((f) => dirname(f)), tmp], specTimeZone(spec));
    const fileRows = new Map<string, number>();
    const m = await buildWith(db, spec, baseDir, tmp, progress, log, warn, fileRows, probe);
    if (!m) return { manifest: null as unknown as Manifest, fileRows };
    m.warnings = warnings;
    return { manifest: m, fileRows };
  } finally {
    conn.closeSync();
    instance.closeSync();
    rmSync(join(tmp, "work.duckdb"), { force: true });
    rmSync(join(tmp, "work.duckdb.wal"), { force: true });
    rmSync(join(tmp, "spill"), { recursive: true, force: true });
  }
}

async function buildWith(
  db: Db,
  spec: DatasetSpec,
  baseDir: string,
  tmp: string,
  progress: (done: number, total: number, stage: string) => void,
  log: (m: string) => void,
  warn: (m: string) => void,
  fileRows: Map<string, number>,
  probe?: Probe,
): Promise<Manifest | null> {
  const STAGES = 6;
  progress(0, STAGES, "read");
  // ---- 0. every input is checked (gzip CRC/length, CSV structure, duplicate names) and counted before DuckDB reads it
  const info = new Map<string, InputInfo>();
  const logCsv = resolveCsv(spec.csv);
  const csvOf = new Map<string, CsvResolved>();
  for (const j of spec.joins ?? []) {
    const f = abs(baseDir, j.path);
    if (!csvOf.has(f)) csvOf.set(f, resolveCsv(j.csv));
  }
  for (const f of specInputs(spec, baseDir)) {
    if (info.has(f)) continue;
    const i = await inspectInput(db, f, csvOf.get(f) ?? logCsv);
    info.set(f, i);
    fileRows.set(f, i.rows);
    log(`read ${i.rows} rows from ${f}`);
  }
  // ---- 1. log table (insertion order kept: rowid is the row's position in the log)
  const colFile = new Map<string, string>();
  let logFiles: string[];
  if (spec.split.kind === "files") {
    const fsplit = spec.split;
    const per = SPLITS.map((s) => listOf(fsplit[s]).map((f) => abs(baseDir, f)));
    logFiles = per.flat();
    for (let s = 0; s < 3; s++) {
      const files = per[s] ?? [];
      if (files.length === 0) continue;
      const sel = `SELECT *, ${s}::UTINYINT AS __split FROM ${readerSql(files, info, logCsv)}`;
      const ctx = `reading ${files.join(", ")}`;
      if (s === 0) await db.run(`CREATE TABLE log AS ${sel}`, ctx);
      else await db.run(`INSERT INTO log BY NAME ${sel}`, ctx);
      checkRowCount(num((await db.rows(`SELECT count(*) AS n FROM log WHERE __split = ${s}`, "counting log rows"))[0]?.n), files, info);
    }
  } else {
    logFiles = listOf(spec.log).map((f) => abs(baseDir, f));
    await db.run(`CREATE TABLE log AS SELECT * FROM ${readerSql(logFiles, info, logCsv)}`, `reading ${logFiles.join(", ")}`);
  }
  const logDesc = logFiles.join(", ");
  await cleanTable(db, "log", logCsv, `trimming the values of ${logDesc}`);
  const schema = await describe(db, "log", "describing the log");
  for (const c of schema.keys()) colFile.set(c, logDesc);
  const logColumns = Object.fromEntries([...schema].filter(([c]) => c !== "__split"));
  const logRows = num((await db.rows(`SELECT count(*) AS n FROM log`, "counting log rows"))[0]?.n);
  if (spec.split.kind !== "files") checkRowCount(logRows, logFiles, info);
  log(`read ${logRows} log rows from ${logDesc}`);

  // ---- 2. side tables (each also saved as read, for encoding new rows later: side_<i>.parquet)
  const sides: ManifestSide[] = [];
  const joinSql: string[] = [];
  const selectSide: string[] = [];
  for (const [i, j] of (spec.joins ?? []).entries()) {
    const file = abs(baseDir, j.path);
    const left = typeof j.on === "string" ? j.on : j.on.left;
    const right = typeof j.on === "string" ? j.on : j.on.right;
    const sideCsv = csvOf.get(file) ?? resolveCsv(undefined);
    const sideHint = (): string => (sideCsv.header && !isParquet(file) && looksLikeData(info.get(file)?.columns ?? []) ? `; ${HEADER_HINT}` : "");
    const side = await describe(db, readerSql([file], info, sideCsv), `reading ${file}`);
    for (const c of [right, ...j.columns]) if (!side.has(c)) throw new DataError(`column "${c}" not found in ${file} (columns: ${[...side.keys()].join(", ")})${sideHint()}`, { file, column: c });
    if (!schema.has(left)) throw new DataError(`join key column "${left}" not found in ${logDesc}`, { file: logDesc, column: left });
    const cols = j.columns.map((c) => `${quoteIdent(c)} AS ${quoteIdent((j.prefix ?? "") + c)}`).join(", ");
    await db.run(`CREATE TABLE side_${i} AS SELECT ${quoteIdent(right)} AS __key, ${cols} FROM ${readerSql([file], info, sideCsv)}`, `reading ${file}`);
    checkRowCount(num((await db.rows(`SELECT count(*) AS n FROM side_${i}`, `counting the rows of ${file}`))[0]?.n), [file], info);
    await cleanTable(db, `side_${i}`, sideCsv, `trimming the values of ${file}`);
    const sideTypes = await describe(db, `side_${i}`, `reading ${file}`);
    const dup = num((await db.rows(`SELECT count(*) - count(DISTINCT __key) AS n FROM side_${i}`, `checking ${file}`))[0]?.n);
    if (dup > 0) throw new DataError(`side table ${file} has ${dup} rows with a duplicate key in column "${right}"`, { file, column: right, rows: dup });
    await db.run(`COPY side_${i} TO ${quoteStr(join(tmp, `side_${i}.parquet`))} (FORMAT parquet)`, `saving the side table ${file}`);
    sides.push({ file: `side_${i}.parquet`, on: left, columns: j.columns.map((c) => (j.prefix ?? "") + c) });
    for (const c of j.columns) {
      const out = (j.prefix ?? "") + c;
      if (schema.has(out)) throw new DataError(`column "${out}" of ${file} clashes with a column of the log ${colFile.get(out)}; set a prefix in the join`, { file, column: out });
      schema.set(out, sideTypes.get(out) ?? "VARCHAR");
      colFile.set(out, file);
      selectSide.push(`s${i}.${quoteIdent(out)}`);
    }
    joinSql.push(`LEFT JOIN side_${i} s${i} ON l.${quoteIdent(left)} = s${i}.__key`);
  }
  const srcSql = `(SELECT l.rowid AS __rid, l.*${selectSide.length ? ", " + selectSide.join(", ") : ""} FROM log l ${joinSql.join(" ")}) src`;
  progress(1, STAGES, "validate");

  // ---- 3. validate columns and types
  const logHint = logCsv.header && logFiles.some((f) => !isParquet(f) && looksLikeData(info.get(f)?.columns ?? [])) ? `; ${HEADER_HINT}` : "";
  const need = (c: string, what: string): void => {
    if (!schema.has(c)) {
      throw new DataError(`${what} column "${c}" not found in ${logDesc}${spec.joins?.length ? " or the joined tables" : ""} (columns: ${[...schema.keys()].join(", ")})${logHint}`, { file: logDesc, column: c });
    }
  };
  const numeric = (c: string, what: string): void => {
    need(c, what);
    const t = schema.get(c) ?? "";
    if (!NUMERIC_TYPE.test(t)) throw new DataError(`${what} column "${c}" in ${colFile.get(c)} has type ${t}, expected a number (check for non-numeric values)`, { file: colFile.get(c) ?? logDesc, column: c });
  };
  const fields = fieldDefs(spec);
  const denses = denseDefs(spec);
  for (const f of fields) {
    if (f.column !== undefined) {
      if (f.kind === "numeric") numeric(f.column, `numeric feature "${f.name}"`);
      else need(f.column, `feature "${f.name}"`);
    }
  }
  for (const d of denses) if (d.column !== undefined) numeric(d.column, `dense input "${d.name}"`);
  // Expressions are parsed by DuckDB, allow-listed and re-emitted (expr.ts); only that emitted SQL
  // reaches a query. Binding it once here makes type errors name the spec key.
  const userCols = [...schema.keys()].filter((c) => c !== "__split");
  const compiled = async (text: string, key: string): Promise<string> => {
    const c = await compileExpr(db.conn, text, key, userCols);
    await db.rows(`DESCRIBE SELECT ${c.sql} AS v FROM ${srcSql}`, `invalid dataset spec: ${key} cannot be evaluated on ${logDesc} (expression: ${JSON.stringify(text)})`);
    return c.sql;
  };
  for (const f of fields) if (f.expr !== undefined) f.sql = `(${await compiled(f.expr, `${f.key}.expr`)})`;
  for (const d of denses) if (d.expr !== undefined) d.sql = `(${await compiled(d.expr, `${d.key}.expr`)})`;
  const probeSql = probe ? await compiled(probe.expr, probe.key) : null;
  const taskSql = new Map<number, string>();
  for (const [k, t] of spec.tasks.entries()) if (t.kind === "sql") taskSql.set(k, await compiled(t.expr, `$.tasks[${k}].expr`));
  if (spec.groupColumn) need(spec.groupColumn, "group");
  if (spec.userColumn) need(spec.userColumn, "user");
  if (spec.itemColumn) need(spec.itemColumn, "item");
  if (spec.split.kind === "date") {
    const sp = spec.split;
    need(sp.column, "split date");
    // a range value the column's type cannot hold would fail inside DuckDB as a bare conversion error
    const t = schema.get(sp.column) ?? "";
    for (const s of ["train", "val", "test"] as const) {
      for (const [j, v] of sp[s].entries()) {
        const bad = NUMERIC_TYPE.test(t) ? !(typeof v === "number" || (typeof v === "string" && v.trim() !== "" && Number.isFinite(Number(v)))) : /^(DATE|TIMESTAMP)/i.test(t) ? typeof v !== "string" || Number.isNaN(Date.parse(v)) : false;
        if (bad) throw new DataError(`split.${s}[${j}] = ${JSON.stringify(String(v).slice(0, 40))} is not a value of the split column "${sp.column}" (type ${t} in ${colFile.get(sp.column) ?? logDesc}): give ${NUMERIC_TYPE.test(t) ? "numbers" : "dates such as \"2022-05-08\""}`, { file: colFile.get(sp.column) ?? logDesc, column: sp.column });
      }
    }
  }
  if (spec.split.kind === "time-fraction") {
    const c = spec.split.column;
    need(c, "split time");
    const t = schema.get(c) ?? "";
    if (!NUMERIC_TYPE.test(t) && !TIME_TYPE.test(t)) throw new DataError(`split time column "${c}" in ${colFile.get(c)} has type ${t}, expected a number, DATE or TIMESTAMP (check for values that are not times)`, { file: colFile.get(c) ?? logDesc, column: c });
  }
  if (spec.split.kind === "fraction" && spec.split.by) need(spec.split.by, "split");

  const watchCols = new Set<string>();
  const durCols = new Set<string>();
  for (const t of spec.tasks) {
    if (t.kind === "column") {
      need(t.column, `label "${t.name}"`);
      const ty = schema.get(t.column) ?? "";
      if (ty !== "BOOLEAN" && !NUMERIC_TYPE.test(ty)) throw new DataError(`label column "${t.column}" in ${colFile.get(t.column)} has type ${ty}, expected 0/1 numbers or booleans`, { file: colFile.get(t.column) ?? logDesc, column: t.column });
    } else if (t.kind === "ev" || t.kind === "lv" || t.kind === "quantile" || t.kind === "cv") {
      numeric(t.watch, `watch-time (task "${t.name}")`);
      watchCols.add(t.watch);
      if (t.kind === "cv") {
        numeric(t.duration, `duration (task "${t.name}")`);
        durCols.add(t.duration);
      }
    }
  }
  // One scan for every value check.
  const aggs: string[] = ["count(*) AS __n"];
  const wl = [...watchCols];
  const dl = [...durCols];
  const ll = spec.tasks.filter((t): t is Extract<TaskSpec, { kind: "column" }> => t.kind === "column");
  wl.forEach((c, i) => {
    const q = quoteIdent(c);
    aggs.push(`count(*) FILTER (WHERE ${q} IS NULL) AS w${i}_nul`, `count(*) FILTER (WHERE isnan(${q}::DOUBLE)) AS w${i}_nan`, `count(*) FILTER (WHERE ${q} < 0) AS w${i}_neg`);
  });
  dl.forEach((c, i) => {
    const q = quoteIdent(c);
    aggs.push(`count(*) FILTER (WHERE isnan(${q}::DOUBLE) OR ${q} < 0) AS d${i}_bad`, `count(*) FILTER (WHERE ${q} IS NULL) AS d${i}_nul`);
  });
  ll.forEach((t, i) => {
    const q = quoteIdent(t.column);
    aggs.push(`count(*) FILTER (WHERE ${q} IS NULL OR ${q}::DOUBLE NOT IN (0, 1)) AS l${i}_bad`);
  });
  const chk = (await db.rows(`SELECT ${aggs.join(", ")} FROM ${srcSql}`, `checking the values of ${logDesc}`))[0] ?? {};
  wl.forEach((c, i) => {
    const nul = num(chk[`w${i}_nul`]);
    const nan = num(chk[`w${i}_nan`]);
    const neg = num(chk[`w${i}_neg`]);
    const bad = nul + nan + neg;
    if (bad > 0) throw new DataError(`watch-time column "${c}" in ${colFile.get(c)} has ${bad} bad rows (${nul} missing, ${nan} NaN, ${neg} negative)`, { file: colFile.get(c) ?? logDesc, column: c, rows: bad });
  });
  dl.forEach((c, i) => {
    const bad = num(chk[`d${i}_bad`]);
    const nul = num(chk[`d${i}_nul`]);
    if (bad > 0) throw new DataError(`duration column "${c}" in ${colFile.get(c)} has ${bad} NaN or negative rows`, { file: colFile.get(c) ?? logDesc, column: c, rows: bad });
    if (nul > 0) warn(`duration column "${c}" (${colFile.get(c)}) is missing for ${nul} rows; their CV label is 0`);
  });
  ll.forEach((t, i) => {
    const bad = num(chk[`l${i}_bad`]);
    if (bad > 0) throw new DataError(`label column "${t.column}" in ${colFile.get(t.column)} has ${bad} rows that are not 0 or 1`, { file: colFile.get(t.column) ?? logDesc, column: t.column, rows: bad });
  });

  // ---- 4. raw table: split + evaluated features + label inputs
  // Hash splits (documented in data/README.md, reproducible in plain SQL): h = splitHashSql(key, seed),
  // train when h < t1, val when h < t2, else test. The key is the `by` column or the row position (__rid:
  // 0-based position in the log, or in the train files for a files split with valFraction).
  // Time-fraction splits: the boundaries are values of the time column found in SQL (see TIME_FRACTION_SPLIT in spec.ts).
  let splitExpr: string;
  let splitTh: [number, number] | undefined;
  let timeSplit: { n: number; k: Record<"val" | "test", number>; boundaries: { val: string | null; test: string | null } } | undefined;
  const sp = spec.split;
  if (sp.kind === "files") {
    if (sp.val !== undefined) splitExpr = "__split";
    else {
      splitTh = splitThresholds(1 - sp.valFraction!, sp.valFraction!);
      splitExpr = `CASE WHEN __split = 0 AND ${splitHashSql("__rid", sp.seed ?? 0)} >= ${splitTh[0]} THEN 1 ELSE __split END`;
    }
  } else if (sp.kind === "date") {
    const c = quoteIdent(sp.column);
    splitExpr = `CASE ${(["train", "val", "test"] as const).map((s, i) => `WHEN ${c} BETWEEN ${lit(sp[s][0])} AND ${lit(sp[s][1])} THEN ${i}`).join(" ")} END`;
  } else if (sp.kind === "time-fraction") {
    const c = quoteIdent(sp.column);
    const ctx = `finding the time-fraction split boundaries of "${sp.column}"`;
    // NaN and ±infinity (floating-point numbers, DATE and TIMESTAMP 'infinity') are no time: dropped like NULL
    const valid = /FLOAT|DOUBLE|REAL|DATE|TIMESTAMP/i.test(schema.get(sp.column) ?? "") ? `(${c} IS NOT NULL AND isfinite(${c}))` : `(${c} IS NOT NULL)`;
    const n = num((await db.rows(`SELECT count(*) FILTER (WHERE ${valid}) AS n FROM ${srcSql}`, ctx))[0]?.n);
    const k = { test: Math.round(n * sp.test), val: Math.round(n * sp.val) };
    // the value at 0-based position `off` of the valid values in ascending order (NULL past the end)
    const at = (off: number): string => `(SELECT ${c} FROM ${srcSql} WHERE ${valid} ORDER BY ${c} LIMIT 1 OFFSET ${Math.max(0, off)})`;
    await db.run(`CREATE TABLE __tsplit AS SELECT ${at(n - k.test - k.val)} AS tv, ${at(n - k.test)} AS tt`, ctx);
    const b = (await db.rows(`SELECT CAST(tv AS VARCHAR) AS v, CAST(tt AS VARCHAR) AS t FROM __tsplit`, ctx))[0] ?? {};
    timeSplit = { n, k, boundaries: { val: b.v == null ? null : String(b.v), test: b.t == null ? null : String(b.t) } };
    // a value equal to a boundary goes to the later split
    splitExpr = `CASE WHEN NOT ${valid} THEN NULL WHEN ${c} >= (SELECT tt FROM __tsplit) THEN 2 WHEN ${c} >= (SELECT tv FROM __tsplit) THEN 1 ELSE 0 END`;
  } else {
    splitTh = splitThresholds(sp.train, sp.val);
    const h = splitHashSql(sp.by ? quoteIdent(sp.by) : "__rid", sp.seed);
    splitExpr = `CASE WHEN ${h} < ${splitTh[0]} THEN 0 WHEN ${h} < ${splitTh[1]} THEN 1 ELSE 2 END`;
  }
  const sel: string[] = ["__rid", `(${splitExpr})::UTINYINT AS __split`, ...featureSelect(fields, denses)];
  const plans: LabelPlan[] = [];
  spec.tasks.forEach((t, k) => {
    switch (t.kind) {
      case "column":
        sel.push(`(${quoteIdent(t.column)})::UTINYINT AS t_${k}`);
        plans.push({ task: t, rawCols: [`t_${k}`] });
        break;
      case "sql":
        sel.push(`COALESCE((${taskSql.get(k) ?? "NULL"})::BOOLEAN, false)::UTINYINT AS t_${k}`);
        plans.push({ task: t, rawCols: [`t_${k}`] });
        break;
      case "cv":
        sel.push(`${quoteIdent(t.watch)}::DOUBLE AS w_${k}`, `${quoteIdent(t.duration)}::DOUBLE * ${t.durationScale ?? 1} AS d_${k}`);
        plans.push({ task: t, rawCols: [`w_${k}`, `d_${k}`] });
        break;
      default:
        sel.push(`${quoteIdent(t.watch)}::DOUBLE AS w_${k}`);
        plans.push({ task: t, rawCols: [`w_${k}`] });
    }
  });
  sel.push(spec.groupColumn ? `${quoteIdent(spec.groupColumn)} AS __g` : "1 AS __g");
  if (probeSql !== null) sel.push(`COALESCE((${probeSql})::BOOLEAN, false)::UTINYINT AS __probe`);
  if (spec.userColumn) sel.push(`${quoteIdent(spec.userColumn)} AS __u`);
  if (spec.itemColumn) sel.push(`${quoteIdent(spec.itemColumn)} AS __i`);
  await db.run(`CREATE TABLE raw AS SELECT * FROM (SELECT ${sel.join(", ")} FROM ${srcSql}) WHERE __split IS NOT NULL`, `evaluating features, labels and the split of ${logDesc}`);

  const counts = await db.rows(`SELECT __split AS s, count(*) AS n FROM raw GROUP BY 1`, "counting split rows");
  const rows: Record<SplitName, number> = { train: 0, val: 0, test: 0 };
  for (const r of counts) rows[SPLITS[num(r.s)] ?? "train"] = num(r.n);
  const kept = rows.train + rows.val + rows.test;
  const droppedRows = logRows - kept;
  if (droppedRows > 0) warn(`${droppedRows} log rows fall outside every split and are dropped`);
  for (const s of SPLITS) {
    // an empty val split is what a fraction split with val 0 asks for (training then runs without early stopping)
    if (rows[s] === 0 && !(s === "val" && sp.kind === "fraction" && sp.val === 0)) {
      const rule =
        sp.kind === "date"
          ? `${sp.column} in [${sp[s][0]}, ${sp[s][1]}]`
          : sp.kind === "files"
            ? sp[s] !== undefined
              ? `files ${listOf(sp[s]).join(", ")}`
              : `valFraction ${sp.valFraction} of the train files`
            : sp.kind === "time-fraction"
              ? `time-fraction by ${sp.column}: ${s === "train" ? `the rows before val and test` : `${s} ${sp[s]} of the ${timeSplit?.n ?? 0} rows with a ${sp.column} value = ${timeSplit?.k[s] ?? 0} rows`}`
              : `fraction ${sp[s]}`;
      throw new DataError(`split "${s}" is empty (rule: ${rule}) in ${logDesc}`, { file: logDesc, rows: 0, ...(sp.kind === "date" || sp.kind === "time-fraction" ? { column: sp.column } : {}) });
    }
  }
  if (probe) {
    const s = SPLITS.indexOf(probe.split);
    probe.values = Uint8Array.from(await db.rows(`SELECT __probe AS v FROM raw WHERE __split = ${s} ORDER BY __rid`, `evaluating ${probe.key}`), (r) => num(r.v));
    return null;
  }
  progress(2, STAGES, "fit");

  // ---- 5. thresholds (train only)
  const thresholds: Record<string, number> = {};
  const labelExpr: string[] = [];
  const mtasks: ManifestTask[] = [];
  for (const [k, p] of plans.entries()) {
    const t = p.task;
    if (t.kind === "ev" || t.kind === "lv" || t.kind === "quantile") {
      const q = t.kind === "ev" ? 0.5 : t.kind === "lv" ? 0.75 : t.q;
      const r = (await db.rows(`SELECT quantile_cont(w_${k}, ${q}) AS v FROM raw WHERE __split = 0`, `fitting the threshold of task "${t.name}"`))[0] ?? {};
      const thr = num(r.v);
      thresholds[t.name] = thr;
      labelExpr.push(`(w_${k} > ${thr})::UTINYINT`);
      mtasks.push({ name: t.name, kind: t.kind, threshold: thr });
    } else if (t.kind === "cv") {
      labelExpr.push(`COALESCE(w_${k} >= d_${k}, false)::UTINYINT`);
      mtasks.push({ name: t.name, kind: t.kind });
    } else {
      labelExpr.push(`t_${k}`);
      mtasks.push({ name: t.name, kind: t.kind });
    }
  }

  // ---- 6. label rates; single-class check on train
  const rateSel = labelExpr.map((e, k) => `avg(${e}) AS r_${k}`).join(", ");
  const rates = await db.rows(`SELECT __split AS s, ${rateSel} FROM raw GROUP BY 1`, "computing label rates");
  const labelRates = { train: {}, val: {}, test: {} } as Record<SplitName, Record<string, number>>;
  for (const r of rates) {
    const s = SPLITS[num(r.s)] ?? "train";
    spec.tasks.forEach((t, k) => (labelRates[s][t.name] = num(r[`r_${k}`])));
  }
  for (const t of spec.tasks) {
    const rate = labelRates.train[t.name] ?? 0;
    if (rate === 0 || rate === 1) {
      const col = t.kind === "column" ? t.column : t.kind === "sql" ? t.expr : t.watch;
      const msg = `label "${t.name}" (${col}) is ${rate === 0 ? "0" : "1"} in all ${rows.train} training rows of ${logDesc}`;
      if ((spec.singleClassLabels ?? "error") === "error") throw new DataError(msg, { file: logDesc, column: col, rows: rows.train });
      warn(msg);
    }
  }

  // ---- 7. vocabularies and buckets (train only)
  const minCount = spec.minCount ?? 1;
  const mfields: ManifestField[] = [];
  const collapseChecks: { i: number; name: string }[] = [];
  const rawTypes = await describe(db, "raw", "describing the features");
  mkdirSync(join(tmp, "vocab"), { recursive: true });
  const extraFiles: Record<string, CacheFile> = {};
  for (const [i, f] of fields.entries()) {
    if (f.kind === "categorical" && f.multi) {
      const L = f.multi.maxLen;
      const items = `list_slice(f_${i}, 1, ${L})`;
      await db.run(
        `CREATE TABLE voc_${i} AS SELECT v, (row_number() OVER (ORDER BY c DESC, v))::INTEGER AS id FROM (SELECT v, count(*) AS c FROM (SELECT unnest(${items}) AS v FROM raw WHERE __split = 0) GROUP BY 1 HAVING count(*) >= ${minCount})`,
        `fitting the vocabulary of "${f.name}"`,
      );
      const n = num((await db.rows(`SELECT count(*) AS n FROM voc_${i}`, "counting vocab"))[0]?.n);
      const cut = num((await db.rows(`SELECT count(*) AS n FROM raw WHERE len(f_${i}) > ${L}`, `checking the lists of "${f.name}"`))[0]?.n);
      if (cut > 0) warn(`multi-valued feature "${f.name}": ${cut} rows have more than maxLen = ${L} items; only the first ${L} are kept`);
      const vocab = { file: `vocab/field_${i}.json`, type: "VARCHAR" };
      extraFiles[vocab.file] = await writeVocab(db, join(tmp, vocab.file), i, f.name, vocab.type);
      mfields.push({ name: f.name, kind: "categorical", vocabSize: n + 1, multi: { maxLen: L, pooling: f.multi.pooling }, vocab });
    } else if (f.kind === "categorical") {
      await db.run(
        `CREATE TABLE voc_${i} AS SELECT v, (row_number() OVER (ORDER BY c DESC, v))::INTEGER AS id FROM (SELECT f_${i} AS v, count(*) AS c FROM raw WHERE __split = 0 AND f_${i} IS NOT NULL GROUP BY 1 HAVING count(*) >= ${minCount})`,
        `fitting the vocabulary of "${f.name}"`,
      );
      const n = num((await db.rows(`SELECT count(*) AS n FROM voc_${i}`, "counting vocab"))[0]?.n);
      const vocab = { file: `vocab/field_${i}.json`, type: rawTypes.get(`f_${i}`) ?? "VARCHAR" };
      extraFiles[vocab.file] = await writeVocab(db, join(tmp, vocab.file), i, f.name, vocab.type);
      mfields.push({ name: f.name, kind: "categorical", vocabSize: n + 1, vocab });
    } else {
      const { masses, bounds } = await fitBuckets(db, i, f);
      mfields.push({ name: f.name, kind: "numeric", vocabSize: masses.length + bounds.length + 2, boundaries: bounds, pointMasses: masses });
      collapseChecks.push({ i, name: f.name });
    }
  }
  const mdense: ManifestDense[] = [];
  for (const [j, d] of denses.entries()) {
    const x = `x_${j}`;
    if (d.log1p) {
      const bad = num((await db.rows(`SELECT count(*) AS n FROM raw WHERE ${x} <= -1`, `checking dense input "${d.name}"`))[0]?.n);
      if (bad > 0) throw new DataError(`dense input "${d.name}" (${d.column ?? d.expr}) has ${bad} values <= -1, where log1p is undefined`, { file: d.column ? (colFile.get(d.column) ?? logDesc) : logDesc, rows: bad, ...(d.column ? { column: d.column } : {}) });
    }
    const fx = d.log1p ? `ln(1 + ${x})` : x;
    const r = (await db.rows(`SELECT avg(${fx}) AS m, stddev_pop(${fx}) AS s, count(*) AS n FROM raw WHERE __split = 0 AND ${x} IS NOT NULL AND isfinite(${x})`, `fitting dense input "${d.name}"`))[0] ?? {};
    let mean = num(r.m);
    let std = num(r.s);
    if (num(r.n) === 0) {
      warn(`dense input "${d.name}" has no finite value in train; it is 0 everywhere`);
      mean = 0;
      std = 1;
    } else if (!(std > 0) || !Number.isFinite(std)) {
      warn(`dense input "${d.name}" is constant in train (${mean}); it is 0 everywhere`);
      std = 1;
    }
    mdense.push({ name: d.name, log1p: d.log1p, mean, std });
  }
  const { sel: encSel, join: encJoin } = encodeSelect(fields, mfields, mdense);
  for (const sd of sides) extraFiles[sd.file] = fileRecord(join(tmp, sd.file));
  await db.run(`CREATE TABLE grp AS SELECT v, (row_number() OVER (ORDER BY v))::INTEGER AS id FROM (SELECT DISTINCT __g AS v FROM raw WHERE __g IS NOT NULL)`, "building group ids");
  const numGroups = num((await db.rows(`SELECT count(*) AS n FROM grp`, "counting groups"))[0]?.n);
  let users: Record<SplitName, number> | null = null;
  let items: Record<SplitName, number> | null = null;
  if (spec.userColumn || spec.itemColumn) {
    const us = await db.rows(
      `SELECT __split AS s${spec.userColumn ? ", count(DISTINCT __u) AS u" : ""}${spec.itemColumn ? ", count(DISTINCT __i) AS i" : ""} FROM raw GROUP BY 1`,
      "counting users and items",
    );
    if (spec.userColumn) users = { train: 0, val: 0, test: 0 };
    if (spec.itemColumn) items = { train: 0, val: 0, test: 0 };
    for (const r of us) {
      const s = SPLITS[num(r.s)] ?? "train";
      if (users) users[s] = num(r.u);
      if (items) items[s] = num(r.i);
    }
  }
  progress(3, STAGES, "encode");

  // ---- 8. encode
  const labelSel = labelExpr.map((e, k) => `${e} AS l_${k}`);
  await db.run(
    `CREATE TABLE enc AS SELECT r.__rid, r.__split, ${[...encSel, ...labelSel].join(", ")}, COALESCE(g.id, 0)::INTEGER AS grp FROM raw r ${encJoin.join(" ")} LEFT JOIN grp g ON r.__g = g.v`,
    "encoding",
  );
  await db.run(`DROP TABLE raw`, "dropping raw");
  for (const { i, name } of collapseChecks) {
    const r = (await db.rows(`SELECT count(DISTINCT c_${i}) AS n FROM enc WHERE __split = 0 AND c_${i} <> 0`, `counting the buckets of "${name}"`))[0] ?? {};
    const used = num(r.n);
    if (used < 2) {
      const mf = mfields[i];
      const what = used === 0 ? "every training value is missing" : mf?.pointMasses?.length === 1 && mf.boundaries?.length === 0 ? `every non-missing training value is ${mf.pointMasses[0]}` : "all training values fall into one bucket";
      warn(`numeric feature "${name}" has ${used} bucket${used === 1 ? "" : "s"} in train (${what}); it carries no signal`);
    }
  }
  progress(4, STAGES, "write");

  // ---- 9. stream each split to column files
  let before = 0;
  const files: Record<string, CacheFile> = { ...extraFiles };
  for (const [s, name] of SPLITS.entries()) {
    const base = before;
    const written = await writeSplit(db, join(tmp, name), s, columnLayout(mfields, spec.tasks.length, mdense.length), rows[name], (done) => progress(4 + (2 * (base + done)) / kept, STAGES, `write ${name}`));
    for (const [f, rec] of Object.entries(written)) files[`${name}/${f}`] = rec;
    before += rows[name];
    log(`wrote ${rows[name]} ${name} rows`);
  }
  progress(STAGES, STAGES, "done");

  return {
    format: "mtlcraft-dataset",
    version: FORMAT_VERSION,
    name: spec.name,
    hash: "",
    createdAt: new Date().toISOString(),
    spec,
    inputs: [],
    files,
    fields: mfields,
    ...(mdense.length ? { dense: mdense } : {}),
    columns: logColumns,
    sides,
    tasks: mtasks,
    thresholds,
    groupColumn: spec.groupColumn ?? "",
    numGroups,
    rows,
    droppedRows,
    ...(splitTh ? { splitThresholds: splitTh } : {}),
    ...(timeSplit ? { splitBoundaries: timeSplit.boundaries } : {}),
    labelRates,
    users,
    items,
    warnings: [],
    timezone: specTimeZone(spec),
  };
}

/**
 * Buckets of numeric field i (train split only): the point masses (values holding at least
 * pointMass of the non-missing rows, ascending) and the quantile boundaries of the other values
 * (quantile_disc at 1/R .. (R-1)/R, R = max(2, buckets - #masses), duplicates removed).
 */
async function fitBuckets(db: Db, i: number, f: FieldDef): Promise<{ masses: number[]; bounds: number[] }> {
  const buckets = f.buckets ?? SPEC_DEFAULTS.buckets;
  const ctx = `fitting the buckets of "${f.name}"`;
  const ok = `__split = 0 AND f_${i} IS NOT NULL AND NOT isnan(f_${i})`;
  const n = num((await db.rows(`SELECT count(*) AS n FROM raw WHERE ${ok}`, ctx))[0]?.n);
  if (n === 0) return { masses: [], bounds: [] };
  const minRows = Math.max(1, Math.ceil((f.pointMass ?? 1 / buckets) * n - 1e-9));
  const masses = (await db.rows(`SELECT f_${i} AS v FROM raw WHERE ${ok} GROUP BY 1 HAVING count(*) >= ${minRows} ORDER BY 1`, ctx)).map((r) => num(r.v));
  const R = Math.max(2, buckets - masses.length);
  const qs: number[] = [];
  for (let j = 1; j < R; j++) qs.push(j / R);
  const rest = masses.length ? ` AND f_${i} NOT IN (${masses.map(dbl).join(", ")})` : "";
  const r = (await db.rows(`SELECT quantile_disc(f_${i}, [${qs.join(", ")}]) AS q FROM raw WHERE ${ok}${rest}`, ctx))[0] ?? {};
  const got = Array.isArray(r.q) ? (r.q as unknown[]).map(num).filter((x) => Number.isFinite(x)) : [];
  return { masses, bounds: [...new Set(got)].sort((a, c) => a - c) };
}
