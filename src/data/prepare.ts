/**
 * prepareDataset: reads CSV / CSV.gz / Parquet logs with DuckDB, derives labels, fits vocabularies,
 * bucket boundaries and thresholds on the training split, encodes every split and writes the cache.
 *
 * Cache layout (`<cacheDir>/<name>-<hash16>/`):
 *   manifest.json                  see `Manifest`
 *   <split>/field_<i>.i32          int32 little-endian ids of field i of manifest.fields: one per row, or for a
 *                                  multi-valued field maxLen per row (row-major; the row's item ids first,
 *                                  then -1 padding; at least one id per row, 0 for a NULL or empty list)
 *   <split>/dense_<j>.f32          float32 little-endian standardised values of dense input j, one per row
 *   <split>/label_<t>.u8           uint8 0/1 labels (task t of manifest.tasks)
 *   <split>/group.i32              int32 group ids (GAUC); 1..numGroups, 0 when the group value is NULL
 *   vocab/field_<i>.json           vocabulary of categorical field i: values[k] (as text) has id k + 1
 *   side_<i>.parquet               side table i as read (key `__key`, then the joined columns)
 * Rows keep the log's order within each split. The work happens in a temporary folder
 * `<cacheDir>/.tmp-*` (with an on-disk DuckDB database, so memory stays bounded) that is renamed
 * into place when complete and removed on failure.
 *
 * Group ids come from a dictionary over all splits (they are an evaluation key, not a feature, so
 * this leaks nothing); feature vocabularies are fitted on train only, ordered by descending train
 * frequency then value; ids 1..V, unseen or NULL -> 0.
 */
import { createHash } from "node:crypto";
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, readSync, renameSync, rmSync, statSync, writeFileSync, writeSync } from "node:fs";
import { hostname } from "node:os";
import { basename, dirname, isAbsolute, join, resolve, sep } from "node:path";
import { crc32 } from "node:zlib";
import { DuckDBInstance, type DuckDBConnection } from "@duckdb/node-api";
import type { SplitName } from "./types.ts";
import { DataError } from "./errors.ts";
import { CONFINE_DATA_ENV, confineSpecPaths } from "./confine.ts";
import { DEFAULT_TIMEZONE, denseDefs, fieldDefs, quoteIdent, quoteStr, specTimeZone, splitHashSql, splitThresholds, SPEC_DEFAULTS, type CsvOptions, type DatasetSpec, type DenseDef, type FieldDef, type TaskSpec } from "./spec.ts";
import { resolveSpec } from "./builtin.ts";
import { compileExpr } from "./expr.ts";
import { isParquet, loadManifest, scanCsv, verifyPrepared, type CacheFile, type CsvInfo } from "./integrity.ts";
import { didYouMean } from "../util/suggest.ts";

/**
 * 2: manifest gains per-file checksums (`files`) and per-input row counts.
 * 3: multi-valued fields, dense inputs, point-mass buckets, the md5 split hash, CSV options.
 * 4: the raw value -> id map of every categorical field (`vocab/field_<i>.json`, the field's
 *    `vocab`), the side tables as read (`side_<i>.parquet`, `sides`) and the log's column types
 *    (`columns`), so new raw rows can be encoded exactly as prepare encoded them (src/data/encode.ts).
 */
export const FORMAT_VERSION = 4;
export const SPLITS: readonly SplitName[] = ["train", "val", "test"];

export interface ManifestField {
  name: string;
  kind: "categorical" | "numeric";
  vocabSize: number;
  /** Quantile bucket boundaries of the values that are not point masses (numeric fields). */
  boundaries?: number[];
  /** Values with a bucket of their own, ids 1..k in this order (numeric fields). */
  pointMasses?: number[];
  /** Multi-valued field: ids per row (the file holds maxLen ids per row, -1 padded) and their pooling. */
  multi?: { maxLen: number; pooling: "mean" | "sum" };
  /**
   * Categorical fields (format 4): the vocabulary file (`vocab/field_<i>.json`: `values[k]` is the
   * value, as DuckDB writes it as text, that has id k + 1) and the DuckDB type of the field's
   * values (a multi-valued field's items are VARCHAR).
   */
  vocab?: { file: string; type: string };
}

/** A side table as prepare read it (after trimming): the join key as `__key`, then the joined columns under their output names. */
export interface ManifestSide {
  file: string;
  /** Log column joined on `__key`. */
  on: string;
  /** Output names of the joined columns. */
  columns: string[];
}

/** One vocabulary file (see ManifestField.vocab). */
export interface VocabFile {
  field: string;
  type: string;
  values: string[];
}

/** A dense input: stored as (f(x) - mean) / std with f = log1p or the identity; statistics fitted on train. */
export interface ManifestDense {
  name: string;
  log1p: boolean;
  mean: number;
  std: number;
}

export interface ManifestTask {
  name: string;
  kind: TaskSpec["kind"];
  /** Watch-time threshold fitted on train (ev / lv / quantile tasks). */
  threshold?: number;
}

export interface Manifest {
  format: "mtlcraft-dataset";
  version: number;
  name: string;
  hash: string;
  createdAt: string;
  spec: DatasetSpec;
  /** Input files with their size, content hash and the number of data rows read from each. */
  inputs: { file: string; bytes: number; hash: string; rows?: number }[];
  /** Every column file (path relative to the folder) with its size and CRC32, checked when the cache is opened. */
  files?: Record<string, CacheFile>;
  fields: ManifestField[];
  /** Dense inputs (absent in caches without any). */
  dense?: ManifestDense[];
  /** The log's columns and their DuckDB types, as read (format 4; new rows are cast to them). */
  columns?: Record<string, string>;
  /** The side tables as read (format 4). */
  sides?: ManifestSide[];
  tasks: ManifestTask[];
  thresholds: Record<string, number>;
  groupColumn: string;
  numGroups: number;
  rows: Record<SplitName, number>;
  /** Log rows outside every split (e.g. dates outside the ranges). */
  droppedRows: number;
  /** Hash split (fraction, or files with valFraction): train when h < t1, val when h < t2 (see splitHashSql). */
  splitThresholds?: [number, number];
  labelRates: Record<SplitName, Record<string, number>>;
  users: Record<SplitName, number> | null;
  items: Record<SplitName, number> | null;
  warnings: string[];
  /**
   * The time zone the spec's SQL was evaluated in (`specTimeZone(spec)`: the spec's `timezone`,
   * else UTC). Absent in caches prepared before it was fixed (in the machine's zone); see zoneStale.
   */
  timezone?: string;
}

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

export const DEFAULT_CACHE_DIR = ".cache/datasets";
/** Files larger than this are fingerprinted by size + first/last 4 MiB instead of hashed whole. */
const FULL_HASH_LIMIT = 512 * 1024 * 1024;

function hashFile(path: string): string {
  const h = createHash("sha256");
  const size = statSync(path).size;
  const fd = openSync(path, "r");
  try {
    const buf = Buffer.allocUnsafe(1 << 20);
    const region = (start: number, len: number): void => {
      let pos = start;
      const end = start + len;
      while (pos < end) {
        const n = readSync(fd, buf, 0, Math.min(buf.length, end - pos), pos);
        if (n <= 0) break;
        h.update(buf.subarray(0, n));
        pos += n;
      }
    };
    if (size <= FULL_HASH_LIMIT) region(0, size);
    else {
      h.update(`size:${size}`);
      region(0, 4 << 20);
      region(size - (4 << 20), 4 << 20);
    }
  } finally {
    closeSync(fd);
  }
  return h.digest("hex");
}

function listOf(x: string | string[] | undefined): string[] {
  return x === undefined ? [] : Array.isArray(x) ? x : [x];
}

function abs(base: string, p: string): string {
  return isAbsolute(p) ? p : resolve(base, p);
}

/** Every input file of a spec, resolved. */
export function specInputs(spec: DatasetSpec, baseDir: string): string[] {
  const files = [...listOf(spec.log)];
  if (spec.split.kind === "files") for (const s of SPLITS) files.push(...listOf(spec.split[s]));
  for (const j of spec.joins ?? []) files.push(j.path);
  return files.map((f) => abs(baseDir, f));
}

function stableStringify(x: unknown): string {
  if (Array.isArray(x)) return `[${x.map(stableStringify).join(",")}]`;
  if (x && typeof x === "object") {
    const o = x as Record<string, unknown>;
    return `{${Object.keys(o)
      .filter((k) => o[k] !== undefined && k !== "dataDir" && k !== "description" && k !== "$schema")
      .sort()
      .map((k) => `${JSON.stringify(k)}:${stableStringify(o[k])}`)
      .join(",")}}`;
  }
  return JSON.stringify(x);
}

/**
 * Content hash of spec + input files (paths enter only through the spec as written). The spec's
 * `timezone` enters with the spec when it is set; without it the SQL runs in UTC (see
 * specTimeZone), so the hash of a spec without the key is the one it had before the key existed.
 */
export function datasetHash(spec: DatasetSpec, baseDir: string): { hash: string; inputs: Manifest["inputs"] } {
  const inputs: Manifest["inputs"] = [];
  for (const f of specInputs(spec, baseDir)) {
    if (!existsSync(f)) throw new DataError(`input file not found: ${f}`, { file: f });
    inputs.push({ file: f, bytes: statSync(f).size, hash: hashFile(f) });
  }
  const h = createHash("sha256");
  h.update(`mtlcraft-dataset v${FORMAT_VERSION}\n`);
  h.update(stableStringify(spec));
  for (const i of inputs) h.update(`\n${basename(i.file)}:${i.bytes}:${i.hash}`);
  return { hash: h.digest("hex"), inputs };
}

/** Column types whose values DuckDB turns into text, dates or hours in the session's time zone. */
const ZONED_TYPE = /TIME ZONE|TIMESTAMPTZ|TIMETZ/i;

/**
 * Whether what a spec derives could depend on the session's time zone: a field, dense or task
 * expression, a zone-aware log column (by its DuckDB type in `columns`) or a side table (whose
 * column types are not recorded). Caches and exported models made before the zone was fixed are
 * trusted only when this is false.
 */
export function zoneDependent(spec: DatasetSpec, columns: Readonly<Record<string, string>>): boolean {
  const exprs = [...spec.categorical, ...(spec.numeric ?? []), ...(spec.dense ?? [])].some((f) => typeof f !== "string" && f.expr !== undefined) || spec.tasks.some((t) => t.kind === "sql");
  const zoned = Object.values(columns).some((t) => ZONED_TYPE.test(t));
  return exprs || zoned || (spec.joins ?? []).length > 0;
}

/**
 * Why a cache with the right hash cannot be reused because of its time zone, or null. The zone is
 * in the hash only when the spec names one (so specs without `timezone` keep their hash and
 * cache); a cache prepared before the zone was fixed (no `timezone` in its manifest) was computed
 * in its machine's zone, so it is reused only when nothing in it can depend on a zone: no field,
 * dense or task expression, no zone-aware log column and no side table (whose types the manifest
 * does not record). Otherwise it is rebuilt, in UTC, under the same hash.
 */
export function zoneStale(m: Manifest, spec: DatasetSpec): string | null {
  const want = specTimeZone(spec);
  if (m.timezone !== undefined) return m.timezone === want ? null : `was prepared in time zone ${m.timezone}, not ${want}`;
  if (!zoneDependent(spec, m.columns ?? {})) return null;
  return `was prepared before derived time features were fixed to ${want} (in the machine's time zone)`;
}

function readManifest(dir: string): Manifest | null {
  if (!existsSync(join(dir, "manifest.json"))) return null;
  try {
    return loadManifest(dir);
  } catch {
    return null;
  }
}

/** Host name as it appears in temp folder names (no '-', so the name parses back). */
function hostTag(): string {
  return hostname().replace(/[^A-Za-z0-9_.]/g, "_").slice(0, 64) || "host";
}

const TMP_RE = /\.pid(\d+)@([A-Za-z0-9_.]+)-[^-]+$/;
/** Temp folders of the old naming (no pid) are removed once they are this old. */
const LEGACY_TMP_AGE_MS = 24 * 3600 * 1000;

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    // EPERM: the process exists but belongs to someone else.
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

/**
 * Removes `.tmp-*` work folders left in `cacheRoot` by a prepare that was killed: the folder name
 * holds the pid and host of its owner (`.tmp-<name>.pid<pid>@<host>-XXXXXX`); it is removed when
 * that host is this one and no process with that pid is alive. Folders of the old naming (no pid)
 * are removed when untouched for a day. Returns the removed folder names.
 */
export function removeStaleTemps(cacheRoot: string, log: (m: string) => void = () => {}): string[] {
  if (!existsSync(cacheRoot)) return [];
  const removed: string[] = [];
  const host = hostTag();
  for (const name of readdirSync(cacheRoot)) {
    if (!name.startsWith(".tmp-")) continue;
    const path = join(cacheRoot, name);
    const m = TMP_RE.exec(name);
    let stale: boolean;
    if (m) stale = m[2] === host && !processAlive(Number(m[1]));
    else {
      try {
        stale = Date.now() - statSync(path).mtimeMs > LEGACY_TMP_AGE_MS;
      } catch {
        stale = false;
      }
    }
    if (!stale) continue;
    rmSync(path, { recursive: true, force: true });
    removed.push(name);
    log(`removed stale work folder ${path} (left by a prepare that did not finish)`);
  }
  return removed;
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

// ---------------------------------------------------------------------------------------------

export const NUMERIC_TYPE = /^(TINYINT|SMALLINT|INTEGER|BIGINT|HUGEINT|UTINYINT|USMALLINT|UINTEGER|UBIGINT|UHUGEINT|FLOAT|DOUBLE|DECIMAL.*)$/;

/** What the pre-read of one input found (CSV structure, or the Parquet schema) and its row count. */
export interface InputInfo {
  file: string;
  columns: string[];
  rows: number;
  csv: CsvInfo | null;
}

/** CSV options as given, with their defaults filled in (the delimiter stays open: the scan detects it). */
export interface CsvResolved {
  header: boolean;
  columns: string[] | null;
  delimiter: string | null;
  quote: string;
  nullStrings: string[];
  trim: boolean;
}

export function resolveCsv(o: CsvOptions | undefined): CsvResolved {
  return {
    header: o?.header ?? true,
    columns: o?.columns ?? null,
    delimiter: o?.delimiter ?? null,
    quote: o?.quote ?? SPEC_DEFAULTS.quote,
    nullStrings: o?.nullStrings ?? SPEC_DEFAULTS.nullStrings,
    trim: o?.trim ?? false,
  };
}

/**
 * The DuckDB table function reading `files` (all Parquet, or all CSV read with the same options).
 * Every option is passed explicitly (header, delimiter as the scan found it, quote and escape,
 * NULL strings, and the names of a headerless file) so DuckDB's sniffer only picks the types.
 */
export function readerSql(files: string[], info: Map<string, InputInfo>, csv: CsvResolved): string {
  const list = `[${files.map(quoteStr).join(", ")}]`;
  const pq = files.filter(isParquet);
  if (pq.length === files.length) return `read_parquet(${list}, union_by_name = true)`;
  if (pq.length > 0) throw new DataError(`cannot read Parquet and CSV files together: ${files.join(", ")}`, { file: pq[0] as string });
  const delims = new Set(files.map((f) => info.get(f)?.csv?.delimiter ?? ","));
  const args = [list, `header = ${csv.header}`, `quote = ${quoteStr(csv.quote)}`, `escape = ${quoteStr(csv.quote)}`, `nullstr = [${csv.nullStrings.map(quoteStr).join(", ")}]`];
  if (delims.size === 1) args.push(`delim = ${quoteStr([...delims][0] as string)}`);
  if (csv.header) args.push("union_by_name = true");
  else args.push(`names = [${(csv.columns ?? []).map(quoteStr).join(", ")}]`);
  return `read_csv(${args.join(", ")})`;
}

/** Said after an error that a headerless file read as if it had a header would cause. */
export const HEADER_HINT = "if the file has no header row, set csv.header to false and name the columns in csv.columns (see docs/spec-reference.md)";

/** Whether header names look like a data row (numbers, or text with leading spaces). */
export function looksLikeData(columns: readonly string[]): boolean {
  return columns.some((c) => /^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$/.test(c) || /^\s/.test(c));
}

/** Checks one input before DuckDB reads it: gzip integrity, CSV structure, duplicate column names, row count. */
export async function inspectInput(db: Db, file: string, csvOpts: CsvResolved): Promise<InputInfo> {
  if (!existsSync(file)) throw new DataError(`input file not found: ${file}`, { file });
  let columns: string[];
  let rows: number;
  let csv: CsvInfo | null = null;
  if (isParquet(file)) {
    columns = (await db.rows(`SELECT name FROM parquet_schema(${quoteStr(file)}) WHERE num_children IS NULL OR num_children = 0`, `reading the schema of ${file}`)).map((r) => String(r.name));
    rows = num((await db.rows(`SELECT sum(num_rows) AS n FROM parquet_file_metadata(${quoteStr(file)})`, `reading the metadata of ${file}`))[0]?.n);
    if (!(rows > 0)) throw new DataError(`${file} has no rows`, { file, rows: 0 });
  } else {
    csv = await scanCsv(file, { header: csvOpts.header, ...(csvOpts.columns ? { columns: csvOpts.columns } : {}), ...(csvOpts.delimiter ? { delimiter: csvOpts.delimiter } : {}), quote: csvOpts.quote });
    columns = csv.columns;
    rows = csv.rows;
  }
  const seen = new Set<string>();
  for (const n of columns) {
    if (seen.has(n)) {
      const hint = csv && csvOpts.header ? ` (${HEADER_HINT})` : "";
      throw new DataError(`file ${file} has the column name "${n}" more than once${hint}`, { file, column: n });
    }
    seen.add(n);
  }
  return { file, columns, rows, csv };
}

/**
 * With `trim`: every text column of `table` is trimmed and compared with the NULL strings, then a
 * text column whose remaining values all parse as integers (or numbers) becomes BIGINT (DOUBLE).
 * The table is rebuilt in the same row order (insertion order is preserved).
 */
export async function cleanTable(db: Db, table: string, csv: CsvResolved, ctx: string): Promise<void> {
  if (!csv.trim) return;
  const types = await describe(db, table, ctx);
  const text = [...types.entries()].filter(([c, t]) => t === "VARCHAR" && c !== "__split").map(([c]) => c);
  if (text.length === 0) return;
  const nulls = csv.nullStrings.map((v) => quoteStr(v.trim()));
  const cleaned = (c: string): string => `CASE WHEN trim(${quoteIdent(c)}) IN (${nulls.join(", ")}) THEN NULL ELSE trim(${quoteIdent(c)}) END`;
  const probe = text.flatMap((c, i) => [
    // integers only when written as integers: DuckDB's TRY_CAST('38.14' AS BIGINT) rounds to 38
    `count(*) FILTER (WHERE v${i} IS NOT NULL AND (TRY_CAST(v${i} AS BIGINT) IS NULL OR NOT regexp_full_match(v${i}, '[+-]?[0-9]+'))) AS i${i}`,
    `count(*) FILTER (WHERE v${i} IS NOT NULL AND TRY_CAST(v${i} AS DOUBLE) IS NULL) AS d${i}`,
    `count(v${i}) AS n${i}`,
  ]);
  const inner = text.map((c, i) => `${cleaned(c)} AS v${i}`).join(", ");
  const r = (await db.rows(`SELECT ${probe.join(", ")} FROM (SELECT ${inner} FROM ${table})`, ctx))[0] ?? {};
  const repl = text.map((c, i) => {
    const ty = num(r[`n${i}`]) === 0 ? "VARCHAR" : num(r[`i${i}`]) === 0 ? "BIGINT" : num(r[`d${i}`]) === 0 ? "DOUBLE" : "VARCHAR";
    return `${ty === "VARCHAR" ? cleaned(c) : `CAST(${cleaned(c)} AS ${ty})`} AS ${quoteIdent(c)}`;
  });
  await db.run(`CREATE TABLE ${table}__clean AS SELECT * REPLACE (${repl.join(", ")}) FROM ${table}`, ctx);
  await db.run(`DROP TABLE ${table}`, ctx);
  await db.run(`ALTER TABLE ${table}__clean RENAME TO ${table}`, ctx);
}

/** DuckDB must read exactly the rows the pre-read counted; a difference means it parsed the file differently. */
export function checkRowCount(got: number, files: string[], info: Map<string, InputInfo>): void {
  const want = files.reduce((a, f) => a + (info.get(f)?.rows ?? 0), 0);
  if (got !== want) {
    throw new DataError(
      `DuckDB read ${got} rows from ${files.join(", ")} but the file${files.length > 1 ? "s hold" : " holds"} ${want} data rows; check the delimiter and quoting (CSV must use double quotes, "" inside quotes)`,
      { file: files.join(", "), rows: Math.abs(got - want) },
    );
  }
}

/** A DuckDB connection whose errors become DataErrors naming what was being done. */
export class Db {
  constructor(readonly conn: DuckDBConnection) {}

  async run(sql: string, ctx: string): Promise<void> {
    try {
      await this.conn.run(sql);
    } catch (e) {
      throw wrap(e, ctx);
    }
  }

  async rows(sql: string, ctx: string): Promise<Record<string, unknown>[]> {
    try {
      return (await this.conn.runAndReadAll(sql)).getRowObjectsJS() as Record<string, unknown>[];
    } catch (e) {
      throw wrap(e, ctx);
    }
  }
}

function wrap(e: unknown, ctx: string): Error {
  if (e instanceof DataError) return e;
  const msg = e instanceof Error ? e.message : String(e);
  return new DataError(`${ctx}: ${shortDuckDbMessage(msg)}`);
}

/** Longest quoted value a DuckDB message keeps (a 50 MB field is not printed whole). */
export const MAX_QUOTED_VALUE = 200;

/**
 * DuckDB's message cut to what a user can act on: a file its CSV sniffer cannot read is said in
 * one line; DuckDB's "Possible fixes" (its read_csv options, which the spec names otherwise) and the
 * echoed SQL ("LINE 1: ...") are dropped; a quoted value is cut to MAX_QUOTED_VALUE characters; at
 * most 8 lines of 1,000 characters remain.
 */
export function shortDuckDbMessage(msg: string): string {
  if (/Error when sniffing file|not possible to automatically detect the CSV parsing dialect/i.test(msg)) {
    return "not a CSV file DuckDB can read with the spec's csv options (no consistent delimiter and quoting found): check that it is CSV text (CSV.gz and Parquet are told by their extension), the spec's csv options, and that it is UTF-8";
  }
  let m = msg.split(/\n\s*Possible fixes:|\n\s*LINE \d+:/)[0]!;
  const cut = (q: string) => (s: string, body: string): string => (body.length > MAX_QUOTED_VALUE ? `${q}${body.slice(0, MAX_QUOTED_VALUE)}…${q} (${body.length} characters)` : s);
  m = m.replace(/'([^'\n]*)'/g, cut("'")).replace(/"([^"\n]*)"/g, cut('"'));
  const lines = m.trim().split("\n").map((l) => (l.length > 1000 ? `${l.slice(0, 1000)}…` : l));
  return (lines.length > 8 ? [...lines.slice(0, 8), "…"] : lines).join("\n");
}


export async function describe(db: Db, rel: string, ctx: string): Promise<Map<string, string>> {
  const rows = await db.rows(`DESCRIBE SELECT * FROM ${rel}`, ctx);
  return new Map(rows.map((r) => [String(r.column_name), String(r.column_type)]));
}

function lit(v: number | string): string {
  return typeof v === "number" ? String(v) : quoteStr(v);
}

export function num(x: unknown): number {
  if (typeof x === "bigint") return Number(x);
  if (typeof x === "number") return x;
  if (x === null || x === undefined) return NaN;
  return Number(x);
}

interface LabelPlan {
  task: TaskSpec;
  /** Columns of `raw` feeding this label. */
  rawCols: string[];
}

/** A DuckDB memory limit as mtlcraft accepts it: a number and a byte unit (`512MB`, `2GB`, `1.5GiB`). */
const MEMORY_LIMIT = /^\s*\d+(\.\d+)?\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)\s*$/i;

/** Throws, naming the option, unless `v` is a memory limit DuckDB takes (`512MB`, `2GB`, ...). */
export function checkMemoryLimit(v: string, option = "--memory-limit"): string {
  if (!MEMORY_LIMIT.test(v)) throw new Error(`${option} must be a size with a unit, e.g. 512MB, 2GB or 1.5GiB; got ${JSON.stringify(v.slice(0, 40))}`);
  return v.trim();
}

/**
 * Locks a fresh connection down before it touches any input: its time zone is `timeZone` (see
 * setTimeZone), file access only inside the input files' folders and the work folder, no other
 * external access (network, ATTACH elsewhere), no extension install or auto-load, then the
 * configuration is frozen so no later statement can undo it. (These settings fail as instance
 * options on this DuckDB version but work as statements.)
 */
export async function lockDown(conn: DuckDBConnection, dirs: string[], timeZone: string = DEFAULT_TIMEZONE): Promise<void> {
  const allowed = [...new Set(dirs.map((d) => (d.endsWith(sep) ? d : d + sep)))];
  const run = async (sql: string): Promise<void> => {
    try {
      await conn.run(sql);
    } catch (e) {
      throw new Error(`internal: could not lock the DuckDB connection down (${sql}): ${e instanceof Error ? e.message : String(e)}`, { cause: e });
    }
  };
  for (const sql of [`SET allowed_directories = [${allowed.map(quoteStr).join(", ")}]`, "SET enable_external_access = false", "SET autoinstall_known_extensions = false", "SET autoload_known_extensions = false"]) await run(sql);
  // after the extension settings: the zone needs ICU, which is built in (nothing may be loaded for it)
  await setTimeZone(conn, timeZone);
  await run("SET lock_configuration = true");
}

/**
 * Sets the connection's TimeZone to `zone` (a spec's `timezone`, default UTC) and its calendar to
 * Gregorian. DuckDB otherwise takes both from the machine (`TZ`, `/etc/localtime`, the locale: under
 * `LANG=th_TH.UTF-8` `year()` says 2566), so `hour(to_timestamp(ts))`, `strftime`, casts to
 * TIMESTAMPTZ and the ids they get would differ between machines under one dataset hash. ICU is
 * built into @duckdb/node-api (no extension is loaded for this).
 */
async function setTimeZone(conn: DuckDBConnection, zone: string): Promise<void> {
  try {
    await conn.run(`SET TimeZone = ${quoteStr(zone)}`);
  } catch (e) {
    if (zone === DEFAULT_TIMEZONE) throw new Error(`internal: could not set the DuckDB time zone to ${zone}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
    let names: string[] = [];
    try {
      names = (await conn.runAndReadAll("SELECT name FROM pg_timezone_names()")).getRowObjectsJS().map((r) => String(r.name));
    } catch {
      // no suggestion then
    }
    throw new DataError(`invalid dataset spec: $.timezone is not a time zone DuckDB knows (got ${JSON.stringify(zone)})${didYouMean(zone, names)}`);
  }
  let got: string;
  try {
    await conn.run("SET Calendar = 'gregorian'");
    got = String((await conn.runAndReadAll("SELECT current_setting('TimeZone') AS tz")).getRowObjectsJS()[0]?.tz);
  } catch (e) {
    throw new Error(`internal: could not set the DuckDB calendar: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
  }
  if (got.toLowerCase() !== zone.toLowerCase()) throw new Error(`internal: DuckDB's time zone is ${got} after setting it to ${zone}`);
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
  if (opts.threads) config.threads = String(opts.threads);
  if (opts.memoryLimit) config.memory_limit = checkMemoryLimit(opts.memoryLimit, "memoryLimit");
  const instance = await DuckDBInstance.create(join(tmp, "work.duckdb"), config);
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
  if (spec.split.kind === "date") need(spec.split.column, "split date");
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
  let splitExpr: string;
  let splitTh: [number, number] | undefined;
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
      const rule = sp.kind === "date" ? `${sp.column} in [${sp[s][0]}, ${sp[s][1]}]` : sp.kind === "files" ? (sp[s] !== undefined ? `files ${listOf(sp[s]).join(", ")}` : `valFraction ${sp.valFraction} of the train files`) : `fraction ${sp[s]}`;
      throw new DataError(`split "${s}" is empty (rule: ${rule}) in ${logDesc}`, { file: logDesc, rows: 0, ...(sp.kind === "date" ? { column: sp.column } : {}) });
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
    labelRates,
    users,
    items,
    warnings: [],
    timezone: specTimeZone(spec),
  };
}

/** A double as an exact SQL literal (a string cast: decimal literals could round differently). */
export function dbl(x: number): string {
  return `'${String(x)}'::DOUBLE`;
}

/**
 * The raw feature columns of the `raw` table, shared by prepare and the encoding of new rows
 * (encode.ts): f_<i> per field (a numeric field's value as DOUBLE; a multi-valued field's list of
 * items: the text split on the separator, each trimmed, empty ones dropped, NULL for a NULL value;
 * otherwise the value, cast with TRY_CAST to `valueTypes[i]` when given) and x_<j> per dense input
 * (DOUBLE). `sql` of every field must be set (plain columns, or compiled expressions).
 */
export function featureSelect(fields: readonly FieldDef[], denses: readonly DenseDef[], valueTypes?: readonly (string | undefined)[]): string[] {
  const sel: string[] = [];
  fields.forEach((f, i) => {
    if (f.kind === "numeric") sel.push(`(${f.sql})::DOUBLE AS f_${i}`);
    else if (f.multi) {
      // items: split on the separator, trimmed, empty ones dropped (a NULL value gives NULL: the single id 0)
      sel.push(`list_filter(list_transform(string_split(CAST(${f.sql} AS VARCHAR), ${quoteStr(f.multi.separator)}), lambda x: trim(x)), lambda x: x <> '') AS f_${i}`);
    } else {
      const t = valueTypes?.[i];
      sel.push(t === undefined ? `${f.sql} AS f_${i}` : `TRY_CAST(${f.sql} AS ${t}) AS f_${i}`);
    }
  });
  denses.forEach((d, j) => sel.push(`(${d.sql})::DOUBLE AS x_${j}`));
  return sel;
}

/**
 * The encoding of the `raw` table's features (see featureSelect), shared by prepare and the
 * encoding of new rows (encode.ts): table `voc_<i>` (v, id) must hold the vocabulary of every
 * categorical field i. Returns the select items (c_<i>, or c_<i>_<k> for the k-th item of a
 * multi-valued field, and d_<j>) over `raw r` with the joins they need (all plain joins, so DuckDB
 * can spill them to disk: memory stays bounded whatever the number of rows).
 *
 * - categorical: the vocabulary's id of the value, 0 for a NULL or unknown value;
 * - multi-valued: the ids of the first maxLen items in order (unknown items: 0), then -1 padding;
 *   a NULL or empty list is the single id 0;
 * - numeric: 0 for NULL/NaN; point mass j (1-based) -> j; else k + 1 + #{boundaries <= x};
 * - dense: (f(x) - mean) / std (f = ln(1 + x) with log1p), 0 for NULL, NaN or ±Inf.
 */
export function encodeSelect(fields: readonly FieldDef[], mfields: readonly ManifestField[], mdense: readonly ManifestDense[]): { sel: string[]; join: string[] } {
  const sel: string[] = [];
  const joins: string[] = [];
  for (const [i, f] of fields.entries()) {
    const mf = mfields[i]!;
    if (f.kind === "categorical" && f.multi) {
      const L = mf.multi?.maxLen ?? f.multi.maxLen;
      // item k (1-based) of the row's first L items: its id (unknown: 0); past the end: -1 padding, and a NULL or
      // empty list is the single id 0. One join per position (hash joins spill to disk; a list aggregate would not).
      for (let k = 0; k < L; k++) {
        joins.push(`LEFT JOIN voc_${i} m${i}_${k} ON r.f_${i}[${k + 1}] = m${i}_${k}.v`);
        sel.push(`(CASE WHEN len(r.f_${i}) > ${k} THEN COALESCE(m${i}_${k}.id, 0) ELSE ${k === 0 ? 0 : -1} END)::INTEGER AS c_${i}_${k}`);
      }
    } else if (f.kind === "categorical") {
      sel.push(`COALESCE(v${i}.id, 0)::INTEGER AS c_${i}`);
      joins.push(`LEFT JOIN voc_${i} v${i} ON r.f_${i} = v${i}.v`);
    } else {
      const masses = mf.pointMasses ?? [];
      const bounds = mf.boundaries ?? [];
      const whenMass = masses.map((x, j) => `WHEN r.f_${i} = ${dbl(x)} THEN ${j + 1}`).join(" ");
      const k = masses.length;
      const cases = bounds.map((x, j) => `WHEN r.f_${i} < ${dbl(x)} THEN ${k + j + 1}`).join(" ");
      sel.push(`(CASE WHEN r.f_${i} IS NULL OR isnan(r.f_${i}) THEN 0 ${whenMass} ${cases} ELSE ${k + bounds.length + 1} END)::INTEGER AS c_${i}`);
    }
  }
  mdense.forEach((d, j) => {
    const x = `x_${j}`;
    const fr = d.log1p ? `ln(1 + r.${x})` : `r.${x}`;
    sel.push(`(CASE WHEN r.${x} IS NULL OR NOT isfinite(r.${x}) THEN 0 ELSE (${fr} - ${dbl(d.mean)}) / ${dbl(d.std)} END)::FLOAT AS d_${j}`);
  });
  return { sel, join: joins };
}

/**
 * Writes the vocabulary of categorical field i (table voc_<i>) as JSON: `values[k]` is the value
 * with id k + 1, as DuckDB writes it as text (`CAST(v AS VARCHAR)`). Streamed; returns its size and CRC32.
 */
async function writeVocab(db: Db, path: string, i: number, field: string, type: string): Promise<CacheFile> {
  const fd = openSync(path, "w");
  let crc = 0;
  let bytes = 0;
  const put = (text: string): void => {
    const b = Buffer.from(text, "utf8");
    let off = 0;
    while (off < b.length) off += writeSync(fd, b, off, b.length - off);
    crc = crc32(b, crc);
    bytes += b.length;
  };
  try {
    put(`{"field":${JSON.stringify(field)},"type":${JSON.stringify(type)},"values":[`);
    const res = await db.conn.stream(`SELECT CAST(v AS VARCHAR) AS t FROM voc_${i} ORDER BY id`);
    let first = true;
    while (true) {
      const chunk = await res.fetchChunk();
      if (!chunk || chunk.rowCount === 0) break;
      const col = chunk.getColumnVector(0);
      const parts: string[] = [];
      for (let r = 0; r < chunk.rowCount; r++) parts.push(JSON.stringify(String(col.getItem(r))));
      put((first ? "" : ",") + parts.join(","));
      first = false;
    }
    put("]}\n");
  } catch (e) {
    throw wrap(e, `writing the vocabulary of "${field}"`);
  } finally {
    closeSync(fd);
  }
  return { bytes, crc32: crc };
}

/** Size and CRC32 of a file written by DuckDB. */
function fileRecord(path: string): CacheFile {
  const b = readFileSync(path);
  return { bytes: b.length, crc32: crc32(b) };
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

const WRITE_ROWS = 1 << 16;

type ColumnBuf = Int32Array | Uint8Array | Float32Array;

class ColumnWriter {
  private readonly fd: number;
  private n = 0;
  /** Running CRC32 and size of what was written (recorded in the manifest, checked on open). */
  crc = 0;
  bytes = 0;
  constructor(
    path: string,
    private readonly buf: ColumnBuf,
  ) {
    this.fd = openSync(path, "w");
  }
  push(v: number): void {
    this.buf[this.n++] = v;
    if (this.n === this.buf.length) this.flush();
  }
  flush(): void {
    if (this.n === 0) return;
    const bytes = new Uint8Array(this.buf.buffer, this.buf.byteOffset, this.n * this.buf.BYTES_PER_ELEMENT);
    let off = 0;
    while (off < bytes.length) off += writeSync(this.fd, bytes, off, bytes.length - off);
    this.crc = crc32(bytes, this.crc);
    this.bytes += bytes.length;
    this.n = 0;
  }
  close(): void {
    this.flush();
    closeSync(this.fd);
  }
}

/** One column file of a split: its name, element type and the `enc` columns it holds per row (in order). */
interface ColumnFile {
  file: string;
  type: "i32" | "u8" | "f32";
  cols: string[];
}

function columnLayout(fields: readonly ManifestField[], nTasks: number, nDense: number): ColumnFile[] {
  const out: ColumnFile[] = [];
  fields.forEach((f, i) => out.push({ file: `field_${i}.i32`, type: "i32", cols: f.multi ? Array.from({ length: f.multi.maxLen }, (_, k) => `c_${i}_${k}`) : [`c_${i}`] }));
  for (let k = 0; k < nTasks; k++) out.push({ file: `label_${k}.u8`, type: "u8", cols: [`l_${k}`] });
  out.push({ file: "group.i32", type: "i32", cols: ["grp"] });
  for (let j = 0; j < nDense; j++) out.push({ file: `dense_${j}.f32`, type: "f32", cols: [`d_${j}`] });
  return out;
}

async function writeSplit(db: Db, dir: string, split: number, layout: readonly ColumnFile[], expected: number, onRows: (done: number) => void): Promise<Record<string, CacheFile>> {
  mkdirSync(dir, { recursive: true });
  const writers: ColumnWriter[] = [];
  const alloc = (t: ColumnFile["type"], n: number): ColumnBuf => (t === "u8" ? new Uint8Array(n) : t === "f32" ? new Float32Array(n) : new Int32Array(n));
  for (const c of layout) writers.push(new ColumnWriter(join(dir, c.file), alloc(c.type, WRITE_ROWS * c.cols.length)));
  const cols = layout.flatMap((c) => c.cols);
  const first: number[] = [];
  let at = 0;
  for (const c of layout) {
    first.push(at);
    at += c.cols.length;
  }
  let written = 0;
  try {
    const res = await db.conn.stream(`SELECT ${cols.join(", ")} FROM enc WHERE __split = ${split} ORDER BY __rid`);
    while (true) {
      const chunk = await res.fetchChunk();
      if (!chunk || chunk.rowCount === 0) break;
      const n = chunk.rowCount;
      layout.forEach((c, w) => {
        const wr = writers[w] as ColumnWriter;
        const vecs = c.cols.map((_, k) => chunk.getColumnVector((first[w] as number) + k));
        for (let r = 0; r < n; r++) for (const v of vecs) wr.push(v.getItem(r) as number);
      });
      written += n;
      if ((written & 0x3ffff) < n) onRows(written); // about every 256K rows
    }
  } catch (e) {
    throw wrap(e, `writing split ${SPLITS[split]}`);
  } finally {
    for (const w of writers) w.close();
  }
  if (written !== expected) throw new Error(`internal: wrote ${written} rows for split ${SPLITS[split]}, expected ${expected}`);
  return Object.fromEntries(writers.map((w, i) => [(layout[i] as ColumnFile).file, { bytes: w.bytes, crc32: w.crc }]));
}
