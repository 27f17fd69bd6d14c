/**
 * DuckDB for the data layer: the connection wrapper whose errors become DataErrors (`Db`, with
 * DuckDB's messages cut to what a user can act on), the lock-down of a fresh connection (file
 * access, extensions, time zone), the memory-limit option, and reading inputs: the pre-read of each
 * input, the read_csv / read_parquet call with the spec's CSV options, trimming, row-count checks.
 */
import { existsSync } from "node:fs";
import { sep } from "node:path";
import { DuckDBInstance, type DuckDBConnection } from "@duckdb/node-api";
import { DataError } from "./errors.ts";
import { csvLineOf, isParquet, scanCsv, type CsvInfo, type CsvScanOptions } from "./integrity.ts";
import { CSV_ENCODINGS, DEFAULT_TIMEZONE, MAX_DELIMITER_BYTES, quoteIdent, quoteStr, SPEC_DEFAULTS, type CsvEncoding, type CsvOptions } from "./spec.ts";
import { didYouMean } from "../util/suggest.ts";

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
  /** The escape character inside quotes (the quote itself: doubled quotes). */
  escape: string;
  encoding: CsvEncoding;
  nullStrings: string[];
  trim: boolean;
}

export function resolveCsv(o: CsvOptions | undefined): CsvResolved {
  return {
    header: o?.header ?? true,
    columns: o?.columns ?? null,
    delimiter: o?.delimiter ?? null,
    quote: o?.quote ?? SPEC_DEFAULTS.quote,
    escape: o?.escape ?? o?.quote ?? SPEC_DEFAULTS.quote,
    encoding: o?.encoding ?? SPEC_DEFAULTS.encoding,
    nullStrings: o?.nullStrings ?? SPEC_DEFAULTS.nullStrings,
    trim: o?.trim ?? false,
  };
}

/**
 * The DuckDB table function reading `files` (all Parquet, or all CSV read with the same options).
 * Every option is passed explicitly (header, delimiter as the scan found it, quote and escape,
 * the encoding when it is not UTF-8, NULL strings, and the names of a headerless file) so DuckDB's
 * sniffer only picks the types. Option values reach the SQL only as quoteStr literals, and
 * `checkCsvOptions` holds them to what the spec schema allows first (validated specs pass it;
 * this guards callers that build a CsvResolved themselves).
 */
export function readerSql(files: string[], info: Map<string, InputInfo>, csv: CsvResolved): string {
  const list = `[${files.map(quoteStr).join(", ")}]`;
  const pq = files.filter(isParquet);
  if (pq.length === files.length) return `read_parquet(${list}, union_by_name = true)`;
  if (pq.length > 0) throw new DataError(`cannot read Parquet and CSV files together: ${files.join(", ")}`, { file: pq[0] as string });
  checkCsvOptions(csv);
  const delims = new Set(files.map((f) => info.get(f)?.csv?.delimiter ?? ","));
  const args = [list, `header = ${csv.header}`, `quote = ${quoteStr(csv.quote)}`, `escape = ${quoteStr(csv.escape)}`, `nullstr = [${csv.nullStrings.map(quoteStr).join(", ")}]`];
  if (csv.encoding !== "utf-8") args.push(`encoding = ${quoteStr(csv.encoding)}`);
  if (delims.size === 1) args.push(`delim = ${quoteStr([...delims][0] as string)}`);
  if (csv.header) args.push("union_by_name = true");
  else args.push(`names = [${(csv.columns ?? []).map(quoteStr).join(", ")}]`);
  return `read_csv(${args.join(", ")})`;
}

/** Throws, naming the csv option, unless every option is one the spec allows (see CSV_SCHEMA in spec.ts). */
export function checkCsvOptions(csv: CsvResolved): void {
  const ascii = (v: string, max: number, tab: boolean): boolean => v.length >= 1 && v.length <= max && [...v].every((c) => (tab && c === "\t") || /^[\x20-\x7e]$/.test(c));
  if (!(CSV_ENCODINGS as readonly string[]).includes(csv.encoding)) throw new DataError(`csv.encoding must be one of ${CSV_ENCODINGS.map((e) => JSON.stringify(e)).join(", ")}; got ${JSON.stringify(String(csv.encoding).slice(0, 40))}`);
  if (csv.delimiter !== null && !ascii(csv.delimiter, MAX_DELIMITER_BYTES, true)) throw new DataError(`csv.delimiter must be 1 to ${MAX_DELIMITER_BYTES} printable ASCII characters or TAB; got ${JSON.stringify(csv.delimiter.slice(0, 40))}`);
  if (!ascii(csv.quote, 1, false)) throw new DataError(`csv.quote must be one printable ASCII character; got ${JSON.stringify(csv.quote.slice(0, 40))}`);
  if (!ascii(csv.escape, 1, false)) throw new DataError(`csv.escape must be one printable ASCII character; got ${JSON.stringify(csv.escape.slice(0, 40))}`);
  if (csv.delimiter !== null && (csv.delimiter.includes(csv.quote) || csv.delimiter.includes(csv.escape))) throw new DataError(`csv.delimiter ${JSON.stringify(csv.delimiter)} must not hold the quote or escape character`);
}

/** The options scanCsv reads a file with, from its resolved CSV options. */
export function scanOptions(csv: CsvResolved): CsvScanOptions {
  return { header: csv.header, ...(csv.columns ? { columns: csv.columns } : {}), ...(csv.delimiter ? { delimiter: csv.delimiter } : {}), quote: csv.quote, escape: csv.escape, encoding: csv.encoding };
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
    checkCsvOptions(csvOpts);
    csv = await scanCsv(file, scanOptions(csvOpts));
    db.csvInputs.set(file, csvOpts);
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

/**
 * A DuckDB connection whose errors become DataErrors naming what was being done; an error of
 * DuckDB's CSV reader names the file, its physical 1-based line, the column and the value (see
 * csvReadError).
 */
export class Db {
  /** The CSV inputs checked by inspectInput on this connection, with their options (to find the physical line of a DuckDB CSV error). */
  readonly csvInputs = new Map<string, CsvResolved>();

  constructor(readonly conn: DuckDBConnection) {}

  async run(sql: string, ctx: string): Promise<void> {
    try {
      await this.conn.run(sql);
    } catch (e) {
      throw await this.fail(e, ctx);
    }
  }

  async rows(sql: string, ctx: string): Promise<Record<string, unknown>[]> {
    try {
      return (await this.conn.runAndReadAll(sql)).getRowObjectsJS() as Record<string, unknown>[];
    } catch (e) {
      throw await this.fail(e, ctx);
    }
  }

  /** The error to throw for a failed statement: a CSV reading error at the file's physical line, else `wrap`. */
  async fail(e: unknown, ctx: string): Promise<Error> {
    if (e instanceof DataError) return e;
    const err = parseCsvError(e instanceof Error ? e.message : String(e));
    if (!err) return wrap(e, ctx);
    const opts = this.csvInputs.get(err.file);
    if (opts) {
      try {
        const line = await csvLineOf(err.file, scanOptions(opts), err.line);
        if (line !== null) err.line = line;
      } catch {
        // DuckDB's own line number then
      }
    }
    return csvReadError(err);
  }
}

/** Where and what DuckDB's CSV reader failed on (from its message). `line` is DuckDB's line (see csvLineOf). */
export interface CsvReadFailure {
  file: string;
  line: number;
  /** Conversion errors: the column, the value and the type DuckDB expected. */
  column?: string;
  value?: string;
  type?: string;
  /** A row with another number of fields. */
  fields?: { expected: number; found: number };
  /** The text is not in the encoding read. */
  encoding?: boolean;
  /** DuckDB's one-line description of other problems. */
  problem: string;
}

/** Parses a DuckDB "CSV Error on Line: N" message (null for any other message or one without its file). */
export function parseCsvError(msg: string): CsvReadFailure | null {
  const line = /CSV Error on Line: (\d+)/.exec(msg);
  const file = /^\s*file = (.+)$/m.exec(msg);
  if (!line || !file) return null;
  const out: CsvReadFailure = { file: (file[1] as string).trim(), line: Number(line[1]), problem: "" };
  const conv = /Error when converting column "([\s\S]*?)"\. Could not convert string "([\s\S]*?)" to '([^']+)'/.exec(msg);
  const cols = /Expected Number of Columns: (\d+) Found: (\d+)/.exec(msg);
  if (conv) [out.column, out.value, out.type] = [conv[1] as string, conv[2] as string, conv[3] as string];
  else if (cols) out.fields = { expected: Number(cols[1]), found: Number(cols[2]) };
  else if (/Invalid unicode|not utf-8 encoded/i.test(msg)) out.encoding = true;
  // DuckDB's description: the first line after "Original Line: ..." (which is the row itself, never repeated)
  const lines = msg.split("\n");
  const at = lines.findIndex((l) => l.startsWith("Original Line:"));
  const desc = lines.slice(at + 1).find((l) => l.trim() !== "" && !/^\s*(Possible|file =)/.test(l));
  out.problem = cutValue((desc ?? lines[0] ?? "").trim());
  return out;
}

function cutValue(v: string): string {
  return v.length > MAX_QUOTED_VALUE ? `${v.slice(0, MAX_QUOTED_VALUE)}… (${v.length} characters)` : v;
}

/** The DataError for a CSV reading failure: file, line, column, value (at most MAX_QUOTED_VALUE characters) and what to do. */
export function csvReadError(f: CsvReadFailure): DataError {
  const at = `${f.file}: line ${f.line}`;
  const where = { file: f.file, ...(f.column !== undefined ? { column: f.column } : {}), line: f.line };
  if (f.column !== undefined && f.value !== undefined) {
    const v = f.value.length > MAX_QUOTED_VALUE ? `"${f.value.slice(0, MAX_QUOTED_VALUE)}…" (${f.value.length} characters)` : JSON.stringify(f.value);
    return new DataError(
      `${at}, column "${f.column}": the value ${v} is not a ${f.type}: DuckDB took the column's type from a sample of the file's first rows, where every value is one. Fix the value, or add it to csv.nullStrings if it marks a missing value`,
      where,
    );
  }
  if (f.fields) return new DataError(`${at} has ${f.fields.found} fields, not ${f.fields.expected}; check csv.delimiter and csv.quote (see docs/spec-reference.md)`, where);
  if (f.encoding) return new DataError(`${at} is not valid UTF-8: set csv.encoding to the file's encoding ("latin-1" or "utf-16"; see docs/spec-reference.md)`, where);
  return new DataError(`${at}: ${f.problem}`, where);
}

export function wrap(e: unknown, ctx: string): Error {
  if (e instanceof DataError) return e;
  const msg = e instanceof Error ? e.message : String(e);
  const csv = parseCsvError(msg);
  if (csv) return csvReadError(csv);
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
    return "not a CSV file DuckDB can read with the spec's csv options (no consistent delimiter and quoting found): check that it is CSV text (CSV.gz and Parquet are told by their extension), the spec's csv options, and csv.encoding";
  }
  // option errors name the spec's key, not DuckDB's read_csv parameter
  if (/does not support the encoding/i.test(msg)) return `csv.encoding must be one of ${CSV_ENCODINGS.map((e) => JSON.stringify(e)).join(", ")} (the encodings DuckDB reads without an extension)`;
  if (/delimiter option cannot exceed/i.test(msg)) return `csv.delimiter must be at most ${MAX_DELIMITER_BYTES} bytes (DuckDB's limit)`;
  if (/QUOTE must not appear in the DELIMITER/i.test(msg)) return "csv.quote must not appear in csv.delimiter";
  if (/ESCAPE must not appear in the DELIMITER/i.test(msg)) return "csv.escape must not appear in csv.delimiter";
  if (/File is not utf-16 encoded/i.test(msg)) return 'the file is not valid UTF-16 little-endian text: check csv.encoding ("utf-16" is read little-endian)';
  let m = msg.split(/\n\s*Possible (?:fixes|solutions?):|\n\s*Possible Solution:|\n\s*LINE \d+:/i)[0]!;
  // "Original Line: ..." repeats a whole row of the file: dropped (a value is kept, cut below)
  m = m.replace(/^Original Line:.*$/gm, "");
  const cut = (q: string) => (s: string, body: string): string => (body.length > MAX_QUOTED_VALUE ? `${q}${body.slice(0, MAX_QUOTED_VALUE)}…${q} (${body.length} characters)` : s);
  m = m.replace(/'([^'\n]*)'/g, cut("'")).replace(/"([^"\n]*)"/g, cut('"'));
  const lines = m.trim().split("\n").map((l) => (l.length > 1000 ? `${l.slice(0, 1000)}…` : l));
  return (lines.length > 8 ? [...lines.slice(0, 8), "…"] : lines).join("\n");
}


export async function describe(db: Db, rel: string, ctx: string): Promise<Map<string, string>> {
  const rows = await db.rows(`DESCRIBE SELECT * FROM ${rel}`, ctx);
  return new Map(rows.map((r) => [String(r.column_name), String(r.column_type)]));
}

export function num(x: unknown): number {
  if (typeof x === "bigint") return Number(x);
  if (typeof x === "number") return x;
  if (x === null || x === undefined) return NaN;
  return Number(x);
}

/** A DuckDB memory limit as mtlcraft accepts it: a number and a byte unit (`512MB`, `2GB`, `1.5GiB`). */
const MEMORY_LIMIT = /^\s*\d+(\.\d+)?\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)\s*$/i;

/** Throws, naming the option, unless `v` is a whole number of DuckDB worker threads (1 to 4096). */
export function checkThreads(v: number, option = "threads"): number {
  if (!(Number.isInteger(v) && v >= 1 && v <= 4096)) throw new Error(`${option} must be a whole number of DuckDB worker threads from 1 to 4096; got ${JSON.stringify(v)}`);
  return v;
}

/**
 * Opens a DuckDB database with `config` (DuckDB setting -> value). DuckDB refuses a bad setting
 * with "Failed to set config" and no name; then each setting is tried alone so the error names the
 * one refused, by the option it came from (`names`: setting -> option, e.g. memory_limit -> "memoryLimit").
 */
export async function openInstance(path: string, config: Record<string, string>, names: Record<string, string> = {}): Promise<DuckDBInstance> {
  try {
    return await DuckDBInstance.create(path, config);
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    for (const [k, v] of Object.entries(config)) {
      try {
        (await DuckDBInstance.create(":memory:", { [k]: v })).closeSync();
      } catch (e2) {
        throw new Error(`${names[k] ?? k}: DuckDB refuses the setting ${k} = ${JSON.stringify(v.slice(0, 80))} (${shortDuckDbMessage(e2 instanceof Error ? e2.message : String(e2))})`, { cause: e2 });
      }
    }
    throw new Error(`could not open the DuckDB work database ${path} (settings: ${Object.keys(config).join(", ")}): ${shortDuckDbMessage(msg)}`, { cause: e });
  }
}

/** Throws, naming the option, unless `v` is a memory limit DuckDB takes (`512MB`, `2GB`, ...). */
export function checkMemoryLimit(v: string, option = "--memory-limit"): string {
  const m = MEMORY_LIMIT.exec(v);
  if (!m) throw new Error(`${option} must be a size with a unit, e.g. 512MB, 2GB or 1.5GiB; got ${JSON.stringify(v.slice(0, 40))}`);
  const unit = m[2]!.toUpperCase();
  const scale: Record<string, number> = { B: 1, KB: 1e3, MB: 1e6, GB: 1e9, TB: 1e12, KIB: 2 ** 10, MIB: 2 ** 20, GIB: 2 ** 30, TIB: 2 ** 40 };
  const bytes = Number(v.trim().slice(0, v.trim().length - m[2]!.length).trim()) * scale[unit]!;
  if (!(bytes >= MIN_MEMORY_LIMIT_BYTES)) throw new Error(`${option} must be at least 64MB (DuckDB needs that much to open its database and read a file); got ${JSON.stringify(v.trim().slice(0, 40))}`);
  return v.trim();
}

/** The smallest --memory-limit accepted: below it DuckDB fails while starting, with advice about its own settings. */
export const MIN_MEMORY_LIMIT_BYTES = 64e6;

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
