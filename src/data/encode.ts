/**
 * Encoding new raw rows with a prepared dataset's saved encoding (what `mtlcraft score` and
 * `scoreRows` run), through the same DuckDB code path as prepare (src/data/prepare.ts):
 *
 * 1. the input is read like a log file (`inspectInput`: gzip and CSV structure checks, an empty
 *    file or a header without rows is an error; `readerSql` with the spec's CSV options), or, for
 *    rows given in memory, loaded as text columns. A CSV's kept columns and the columns that were
 *    text or integers in training are read as text (DuckDB's sniffer would turn `007` into 7, or
 *    read a column as DOUBLE for one `1e1`; so whether a value is an integer is decided on its
 *    text, the same whether the column is kept or not); with `csv.trim`
 *    text columns are trimmed and NULL strings become NULL (as `cleanTable` does, but without its
 *    type guess: step 2 gives each column its training type);
 * 2. every column the training log had is cast to the type it had then, exactly
 *    (`exactCast`): a value the type cannot hold as it is (a fraction like 42.7 or hex like 0x2A
 *    in an integer column, text in a numeric one, more decimals than a DECIMAL keeps) is never
 *    rounded or parsed as hex (as TRY_CAST would: 42.7 -> 43, 0x2A -> 42); it counts as missing,
 *    that is the OOV id 0, with a warning counting such rows per column. The kept columns are
 *    copied as read, never cast, so the output's keys are the input's;
 * 3. the saved side tables are joined as prepare joined them;
 * 4. the features are evaluated with `featureSelect` (spec expressions parsed, allow-listed and
 *    re-emitted by expr.ts; nothing of the user's text is spliced into SQL) and encoded with
 *    `encodeSelect` against the saved vocabularies (loaded with an appender, never as SQL text):
 *    unknown values get the OOV id 0, numeric fields the saved buckets, dense inputs the saved
 *    mean and std.
 *
 * The result is table `enc` (__rid: the input row's position, __k<j>: the kept columns as read, c_<i> or
 * c_<i>_<k>: field ids, d_<j>: dense values) in input order, in a DuckDB database on disk (the
 * caller's work folder), so memory does not grow with the input.
 */
import { mkdirSync } from "node:fs";
import { dirname, join, sep } from "node:path";
import { DuckDBInstance, type DuckDBConnection } from "@duckdb/node-api";
import { DataError } from "./errors.ts";
import { compileExpr } from "./expr.ts";
import { checkMemoryLimit, checkRowCount, Db, describe, inspectInput, lockDown, num, readerSql, resolveCsv, type CsvResolved } from "./duckdb.ts";
import { encodeSelect, featureSelect } from "./sql.ts";
import type { ManifestDense, ManifestField, ManifestSide } from "./manifest.ts";
import { DEFAULT_TIMEZONE, denseDefs, fieldDefs, quoteIdent, quoteStr, specTimeZone, type DatasetSpec } from "./spec.ts";

/** How one field is encoded (features.json `fields[i]`). */
export interface EncodedField {
  name: string;
  /** Name of the field's input in model.onnx. */
  input: string;
  kind: "categorical" | "numeric";
  /** Ids 0..vocabSize-1; 0 is the OOV id (unknown, missing or rare values). */
  vocabSize: number;
  /** Where the value comes from: a column of the log (or a joined side table), or a SQL expression over them. */
  source: { column: string } | { expr: string };
  /** Categorical: the DuckDB type of the values (a multi-valued field's items are VARCHAR). */
  valueType?: string;
  /** Categorical: raw value (as text, as DuckDB writes it) -> id. Anything else gets the OOV id 0. */
  ids?: Record<string, number>;
  /** Multi-valued: the list is split on `separator`, items trimmed, empty ones dropped, the first maxLen kept; ids padded with -1. */
  multi?: { separator: string; maxLen: number; pooling: "mean" | "sum"; padding: -1 };
  /** Numeric: NULL/NaN -> 0; the j-th point mass (1-based) -> j; else k + 1 + #{boundaries <= x}, k = #pointMasses. */
  pointMasses?: number[];
  boundaries?: number[];
}

/** A dense input (features.json `dense[j]`): (f(x) - mean) / std, f = ln(1 + x) with log1p; NULL, NaN, ±Inf -> 0. */
export interface EncodedDense {
  name: string;
  source: { column: string } | { expr: string };
  log1p: boolean;
  mean: number;
  std: number;
}

/** Everything the encoding of a raw row needs (the encoding part of features.json). */
export interface FeatureEncoding {
  /** The dataset spec (field definitions, CSV options, joins). */
  spec: DatasetSpec;
  /** The training log's columns and their DuckDB types; inputs are cast to them. */
  columns: Record<string, string>;
  fields: EncodedField[];
  dense: EncodedDense[];
  /** The side tables (files beside features.json), joined on `on` = `__key`. */
  sides: ManifestSide[];
  /** The id of unknown, missing and rare values. */
  oov: 0;
}

/** What is encoded: an input file (CSV, CSV.gz or Parquet with the raw log columns) or rows in memory. */
export type EncodeInput = { file: string } | { rows: readonly Record<string, unknown>[] };

export interface EncodeOptions {
  /** Folder of the side table files. */
  dir: string;
  /** Input columns copied to `enc` as __k0, __k1, ... (or a function choosing them from the input's columns). */
  keep: readonly string[] | ((inputColumns: readonly string[]) => readonly string[]);
  log?: (msg: string) => void;
}

export interface EncodeResult {
  rows: number;
  /** The kept columns (__k0, __k1, ... in `enc`). */
  keep: string[];
  /** Columns of the input, in order. */
  inputColumns: string[];
  warnings: string[];
}

/** DuckDB type names as DESCRIBE writes them (checked before a type from features.json reaches SQL). */
const TYPE_RE = /^[A-Z][A-Z0-9_]*( [A-Z][A-Z0-9_]*)*(\(\d+(, ?\d+)?\))?(\[\])*$/;

function checkType(t: string, where: string): string {
  if (!TYPE_RE.test(t)) throw new DataError(`${where}: "${t}" is not a DuckDB type name`);
  return t;
}

/**
 * Opens a DuckDB database in `workDir` (on disk, with its spill folder there) locked down to the
 * given folders, as prepare does. `timezone`: the zone the model's spec was prepared in
 * (`specTimeZone(features.spec)`, default UTC); encodeRows refuses a database in another zone, so
 * derived hour/weekday features get the ids prepare gave them on any machine. Close it with `close()`.
 */
export async function openWorkDb(workDir: string, allowedDirs: readonly string[], opts: { threads?: number; memoryLimit?: string; timezone?: string } = {}): Promise<{ db: Db; conn: DuckDBConnection; close(): void }> {
  mkdirSync(workDir, { recursive: true });
  const config: Record<string, string> = { temp_directory: join(workDir, "spill"), preserve_insertion_order: "true" };
  if (opts.threads) config.threads = String(opts.threads);
  if (opts.memoryLimit) config.memory_limit = checkMemoryLimit(opts.memoryLimit);
  const instance = await DuckDBInstance.create(join(workDir, "work.duckdb"), config);
  const conn = await instance.connect();
  try {
    await lockDown(conn, [...allowedDirs, workDir].map((d) => (d.endsWith(sep) ? d : d + sep)), opts.timezone ?? DEFAULT_TIMEZONE);
  } catch (e) {
    conn.closeSync();
    instance.closeSync();
    throw e;
  }
  return {
    db: new Db(conn),
    conn,
    close() {
      conn.closeSync();
      instance.closeSync();
    },
  };
}

function describeSource(src: { column: string } | { expr: string }): string {
  return "column" in src ? `column "${src.column}"` : `expression ${JSON.stringify(src.expr)}`;
}

/**
 * With `csv.trim`: every text column of `table` is trimmed and the spec's NULL strings become NULL,
 * as prepare's `cleanTable` does, but the columns stay text: their types come from training
 * (`exactCast`), and the kept columns must stay as written (`cleanTable` would turn a column of
 * integers into BIGINT: ` 007 ` -> 7).
 */
async function trimText(db: Db, table: string, csv: CsvResolved, ctx: string): Promise<void> {
  if (!csv.trim) return;
  const text = [...(await describe(db, table, ctx)).entries()].filter(([, t]) => t === "VARCHAR").map(([c]) => c);
  if (text.length === 0) return;
  const nulls = csv.nullStrings.map((v) => quoteStr(v.trim())).join(", ");
  const repl = text.map((c) => `CASE WHEN trim(${quoteIdent(c)}) IN (${nulls}) THEN NULL ELSE trim(${quoteIdent(c)}) END AS ${quoteIdent(c)}`);
  await db.run(`CREATE TABLE ${table}__trim AS SELECT * REPLACE (${repl.join(", ")}) FROM ${table}`, ctx);
  await db.run(`DROP TABLE ${table}`, ctx);
  await db.run(`ALTER TABLE ${table}__trim RENAME TO ${table}`, ctx);
}

const INTEGER_TYPES = new Set(["TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT", "UHUGEINT"]);
const NUMBER_TYPES = new Set([...INTEGER_TYPES, "FLOAT", "DOUBLE"]);
const isNumber = (t: string): boolean => NUMBER_TYPES.has(t) || t.startsWith("DECIMAL");

/**
 * SQL for column `q` (quoted, maybe qualified; of type `from` as read) as a value of its training type `to`, or NULL when
 * `to` cannot hold the value as it is. TRY_CAST alone rounds (TRY_CAST('42.7' AS BIGINT) = 43,
 * 42.7::DOUBLE too), parses hex and binary ('0x2A' -> 42, '0b101' -> 5) and drops decimals
 * (1.234 -> DECIMAL(10,2) 1.23); a row id so changed would silently score another user. So:
 * - integer types: text must be a decimal integer (optional sign, surrounding spaces, `.0`
 *   allowed: 42.0 is 42, but 4.6, 0x2A and 1e1 are not integers), a number must equal its cast
 *   (a DOUBLE 42.0 is 42; 42.7 is not), other types are read through their text;
 * - DECIMAL(p,s): the cast must equal the value (as DOUBLE for text);
 * - anything else: TRY_CAST (text that is no number is NULL for FLOAT and DOUBLE).
 */
function exactCast(q: string, from: string, to: string): string {
  const cast = (x: string): string => `TRY_CAST(${x} AS ${to})`;
  if (INTEGER_TYPES.has(to)) {
    if (isNumber(from)) return INTEGER_TYPES.has(from) ? cast(q) : `CASE WHEN ${cast(q)} = ${q} THEN ${cast(q)} END`;
    const text = from === "VARCHAR" ? q : `CAST(${q} AS VARCHAR)`;
    return `CASE WHEN regexp_full_match(${text}, '\\s*[+-]?[0-9]+(\\.0*)?\\s*') THEN ${cast(text)} END`;
  }
  if (to.startsWith("DECIMAL")) {
    const x = isNumber(from) ? q : `TRY_CAST(${q} AS DOUBLE)`;
    return `CASE WHEN ${cast(q)} = ${x} THEN ${cast(q)} END`;
  }
  return cast(q);
}

/** What values `exactCast` refuses, for the warning. */
function castProblem(to: string): string {
  if (INTEGER_TYPES.has(to)) return `not an integer (a fraction, hex, text or out of ${to}'s range)`;
  if (to.startsWith("DECIMAL")) return `not exactly a ${to} number (more decimals, text or out of range)`;
  if (to === "FLOAT" || to === "DOUBLE") return "not a number (text)";
  return `not readable as ${to}`;
}

/**
 * Loads the input as table `log` (in input order). `asText(columns)`: the columns of a CSV input
 * to read as text. Returns a description of the input for messages.
 */
async function loadInput(db: Db, input: EncodeInput, spec: DatasetSpec, asText: (columns: readonly string[]) => string[]): Promise<string> {
  const csv = resolveCsv(spec.csv);
  if ("file" in input) {
    const file = input.file;
    const info = await inspectInput(db, file, csv);
    let reader = readerSql([file], new Map([[file, info]]), csv);
    const text = asText(info.columns);
    if (reader.startsWith("read_csv(") && text.length > 0) {
      if (!reader.endsWith(")")) throw new Error(`internal: unexpected reader ${reader}`);
      reader = `${reader.slice(0, -1)}, types = {${text.map((c) => `${quoteStr(c)}: 'VARCHAR'`).join(", ")}})`;
    }
    await db.run(`CREATE TABLE log AS SELECT * FROM ${reader}`, `reading ${file}`);
    checkRowCount(num((await db.rows("SELECT count(*) AS n FROM log", `counting the rows of ${file}`))[0]?.n), [file], new Map([[file, info]]));
    await trimText(db, "log", csv, `trimming the values of ${file}`);
    return file;
  }
  const rows = input.rows;
  if (rows.length === 0) throw new DataError("no rows to score (the input is empty)", { rows: 0 });
  const cols: string[] = [];
  const seen = new Set<string>();
  for (const r of rows) {
    if (r === null || typeof r !== "object") throw new DataError(`rows to score must be objects of column: value, got ${JSON.stringify(r)}`);
    for (const k of Object.keys(r)) {
      if (!seen.has(k)) {
        seen.add(k);
        cols.push(k);
      }
    }
  }
  if (cols.length === 0) throw new DataError("the rows to score have no columns");
  await db.run(`CREATE TABLE log (${cols.map((c) => `${quoteIdent(c)} VARCHAR`).join(", ")})`, "loading the rows");
  const app = await db.conn.createAppender("log");
  const nulls = new Set(csv.nullStrings);
  try {
    for (const r of rows) {
      for (const c of cols) {
        const v = r[c];
        if (v === null || v === undefined || (typeof v === "number" && Number.isNaN(v))) app.appendNull();
        else {
          const s = v instanceof Date ? v.toISOString() : typeof v === "object" ? JSON.stringify(v) : String(v as string | number | bigint | boolean);
          if (nulls.has(s)) app.appendNull();
          else app.appendVarchar(s);
        }
      }
      app.endRow();
    }
    app.flushSync();
  } finally {
    app.closeSync();
  }
  await trimText(db, "log", csv, "trimming the values of the rows");
  return "the rows";
}

/**
 * Encodes the input into table `enc` of `db` (see the module comment). Errors name the file and
 * column: a column the model needs that the input lacks, a kept column that is missing, an empty input.
 */
export async function encodeRows(db: Db, enc: FeatureEncoding, input: EncodeInput, opts: EncodeOptions): Promise<EncodeResult> {
  const spec = enc.spec;
  const warnings: string[] = [];
  const warn = (m: string): void => {
    warnings.push(m);
    opts.log?.(`warning: ${m}`);
  };
  // Time features must be computed in the zone prepare used (openWorkDb's `timezone`), never the machine's.
  const zone = String((await db.rows("SELECT current_setting('TimeZone') AS tz", "reading the time zone"))[0]?.tz);
  if (zone.toLowerCase() !== specTimeZone(spec).toLowerCase()) throw new Error(`internal: rows of a model prepared in time zone ${specTimeZone(spec)} encoded in a DuckDB database in ${zone}; open it with openWorkDb(..., { timezone: specTimeZone(spec) })`);
  const keepOf = (cols: readonly string[]): string[] => [...(typeof opts.keep === "function" ? opts.keep(cols) : opts.keep)];
  // a CSV's kept columns and the columns that were text or integers in training are read as text (see the module comment)
  const asText = (cols: readonly string[]): string[] => cols.filter((c) => keepOf(cols).includes(c) || enc.columns[c] === "VARCHAR" || INTEGER_TYPES.has(enc.columns[c] ?? ""));
  const what = await loadInput(db, input, spec, asText);
  const file = "file" in input ? input.file : undefined;
  const where = file ? { file } : {};
  // ---- exact casts to the training log's types (applied in the source query below; kept columns are copied before)
  const types = await describe(db, "log", `describing ${what}`);
  const inputColumns = [...types.keys()];
  const casts: { c: string; from: string; t: string }[] = [];
  for (const [c, t0] of Object.entries(enc.columns)) {
    const t = checkType(t0, `features.json: the type of column "${c}"`);
    const from = types.get(c);
    if (from !== undefined && from !== t) casts.push({ c, from, t }); // `from` only chooses the SQL, never enters it
  }
  if (casts.length) {
    const probe = casts.flatMap(({ c, from, t }, k) => {
      const bad = `${quoteIdent(c)} IS NOT NULL AND (${exactCast(quoteIdent(c), from, t)}) IS NULL`;
      return [`count(*) FILTER (WHERE ${bad}) AS b${k}`, `min(rowid) FILTER (WHERE ${bad}) AS r${k}`];
    });
    const bad = (await db.rows(`SELECT ${probe.join(", ")} FROM log`, `checking the column types of ${what}`))[0] ?? {};
    casts.forEach(({ c, t }, k) => {
      const n = num(bad[`b${k}`]);
      if (n > 0) warn(`${what}: column "${c}": ${n} row${n === 1 ? " has" : "s have"} a value that is ${castProblem(t)}, first at data row ${num(bad[`r${k}`]) + 1} (${t} in training); scored as out-of-vocabulary (id 0, as missing)`);
    });
  }
  // ---- which columns the features need
  const sideOf = new Map<string, number>();
  enc.sides.forEach((sd, i) => sd.columns.forEach((c) => sideOf.set(c, i)));
  const trainingCols = [...Object.keys(enc.columns), ...sideOf.keys()];
  const available = [...inputColumns.filter((c) => !sideOf.has(c)), ...sideOf.keys()];
  const fields = fieldDefs(spec);
  const denses = denseDefs(spec);
  if (fields.length !== enc.fields.length || fields.some((f, i) => f.name !== enc.fields[i]!.name)) throw new DataError("features.json: its fields do not match its spec's");
  if (denses.length !== enc.dense.length || denses.some((d, i) => d.name !== enc.dense[i]!.name)) throw new DataError("features.json: its dense inputs do not match its spec's");
  const usedSides = new Set<number>();
  const need = (c: string, forWhat: string): void => {
    const s = sideOf.get(c);
    if (s !== undefined) {
      usedSides.add(s);
      const on = enc.sides[s]!.on;
      if (!types.has(on)) throw new DataError(`${what} has no column "${on}", which ${forWhat} needs (to join the side table with column "${c}"); columns: ${inputColumns.join(", ")}`, { ...where, column: on });
    } else if (!types.has(c)) {
      throw new DataError(`${what} has no column "${c}", which ${forWhat} needs; columns: ${inputColumns.join(", ")}`, { ...where, column: c });
    }
  };
  const compiled = async (text: string, key: string, forWhat: string): Promise<string> => {
    const used = await compileExpr(db.conn, text, key, trainingCols);
    for (const c of used.columns) need(c, forWhat);
    return `(${(await compileExpr(db.conn, text, key, available)).sql})`;
  };
  for (const f of fields) {
    const forWhat = `feature "${f.name}" (${f.column !== undefined ? `column "${f.column}"` : `expression ${JSON.stringify(f.expr)}`})`;
    if (f.column !== undefined) need(f.column, forWhat);
    else f.sql = await compiled(f.expr!, `${f.key}.expr`, forWhat);
  }
  for (const d of denses) {
    const forWhat = `dense input "${d.name}" (${describeSource(d.column !== undefined ? { column: d.column } : { expr: d.expr! })})`;
    if (d.column !== undefined) need(d.column, forWhat);
    else d.sql = await compiled(d.expr!, `${d.key}.expr`, forWhat);
  }
  const keep = keepOf(inputColumns);
  for (const k of keep) if (!types.has(k)) throw new DataError(`${what} has no column "${k}" to pass through; columns: ${inputColumns.join(", ")}`, { ...where, column: k });
  // ---- side tables, source, raw features
  const castOf = new Map(casts.map(({ c, from, t }) => [c, exactCast(`l.${quoteIdent(c)}`, from, t)]));
  const castSql = (c: string): string => castOf.get(c) ?? `l.${quoteIdent(c)}`;
  const joins: string[] = [];
  const sideSel: string[] = [];
  const clash: string[] = [];
  for (const i of [...usedSides].sort((a, b) => a - b)) {
    const sd = enc.sides[i]!;
    await db.run(`CREATE TABLE side_${i} AS SELECT * FROM read_parquet(${quoteStr(join(opts.dir, sd.file))})`, `reading the side table ${sd.file}`);
    for (const c of sd.columns) {
      sideSel.push(`s${i}.${quoteIdent(c)}`);
      if (types.has(c)) clash.push(c);
    }
    joins.push(`LEFT JOIN side_${i} s${i} ON ${castSql(sd.on)} = s${i}.__key`);
  }
  // the kept columns as read (never cast: the output's keys are the input's); the rest cast exactly
  const keepSel = keep.map((k, j) => `l.${quoteIdent(k)} AS __k${j}`);
  const replaced = casts.filter(({ c }) => !clash.includes(c)).map(({ c }) => `${castSql(c)} AS ${quoteIdent(c)}`);
  const lAll = `l.*${clash.length ? ` EXCLUDE (${clash.map(quoteIdent).join(", ")})` : ""}${replaced.length ? ` REPLACE (${replaced.join(", ")})` : ""}`;
  const srcSql = `(SELECT l.rowid AS __rid, ${[...keepSel, lAll, ...sideSel].join(", ")} FROM log l ${joins.join(" ")}) src`;
  const valueTypes = enc.fields.map((f) => (f.kind === "categorical" && !f.multi ? checkType(f.valueType ?? "VARCHAR", `features.json: the value type of field "${f.name}"`) : undefined));
  const keepCols = keep.map((_, j) => `__k${j}`);
  await db.run(`CREATE TABLE raw AS SELECT ${["__rid", ...keepCols, ...featureSelect(fields, denses, valueTypes)].join(", ")} FROM ${srcSql}`, `evaluating the features of ${what}`);
  // ---- saved vocabularies (loaded with an appender; cast to the field's type)
  for (const [i, f] of enc.fields.entries()) {
    if (f.kind !== "categorical") continue;
    await db.run(`CREATE TABLE voc_text_${i} (t VARCHAR, id INTEGER)`, "loading the vocabularies");
    const app = await db.conn.createAppender(`voc_text_${i}`);
    try {
      for (const [t, id] of Object.entries(f.ids ?? {})) {
        if (!(Number.isInteger(id) && id >= 1 && id < f.vocabSize)) throw new DataError(`features.json: field "${f.name}" maps ${JSON.stringify(t)} to id ${String(id)}, outside 1..${f.vocabSize - 1}`);
        app.appendVarchar(t);
        app.appendInteger(id);
        app.endRow();
      }
      app.flushSync();
    } finally {
      app.closeSync();
    }
    const t = f.multi ? "VARCHAR" : valueTypes[i]!;
    await db.run(`CREATE TABLE voc_${i} AS SELECT CAST(t AS ${t}) AS v, id FROM voc_text_${i}`, `features.json: the vocabulary of field "${f.name}" cannot be read as ${t}`);
  }
  const mfields: ManifestField[] = enc.fields.map((f) => ({
    name: f.name,
    kind: f.kind,
    vocabSize: f.vocabSize,
    ...(f.multi ? { multi: { maxLen: f.multi.maxLen, pooling: f.multi.pooling } } : {}),
    ...(f.kind === "numeric" ? { boundaries: f.boundaries ?? [], pointMasses: f.pointMasses ?? [] } : {}),
  }));
  const mdense: ManifestDense[] = enc.dense.map((d) => ({ name: d.name, log1p: d.log1p, mean: d.mean, std: d.std }));
  const { sel, join: encJoin } = encodeSelect(fields, mfields, mdense);
  await db.run(`CREATE TABLE enc AS SELECT ${["r.__rid", ...keepCols.map((k) => `r.${k}`), ...sel].join(", ")} FROM raw r ${encJoin.join(" ")} ORDER BY r.__rid`, `encoding ${what}`);
  const r = (await db.rows("SELECT count(*) AS n, min(__rid) AS lo, max(__rid) AS hi FROM enc", "counting the encoded rows"))[0] ?? {};
  const rows = num(r.n);
  if (rows === 0) throw new DataError(`${what} has no rows`, { ...where, rows: 0 });
  if (num(r.lo) !== 0 || num(r.hi) !== rows - 1) throw new Error(`internal: the encoded rows of ${what} are not numbered 0..${rows - 1}`);
  return { rows, keep, inputColumns, warnings };
}

/** The folders an encoding reads from: the input's folder and the side tables' folder. */
export function encodeDirs(input: EncodeInput, dir: string): string[] {
  return "file" in input ? [dirname(input.file), dir] : [dir];
}
