/**
 * `mtlcraft/encoder`: turns raw row objects into the inputs of an exported model.onnx, in Node,
 * browsers and edge runtimes. This module imports nothing (no `node:` modules, no packages) and
 * uses plain typed arrays (BigInt64Array for int64), so it can be bundled or served as it is.
 *
 * ```js
 * import { createEncoder, toFeeds } from "mtlcraft/encoder";
 * const encoder = createEncoder(await (await fetch("features.json")).json());
 * const batch = encoder.encode([{ user_id: 12, video_id: 5239, tab: "3" }]);
 * const out = await session.run(toFeeds(batch, ort.Tensor));   // onnxruntime-web or -node
 * ```
 *
 * The encoding is `mtlcraft score`'s (src/data/encode.ts), value by value:
 *
 * - a value is missing when it is `null`, `undefined`, `NaN`, not an own property of the row, not
 *   a string / number / bigint / boolean / Date, or one of the spec's `csv.nullStrings`; with
 *   `csv.trim` text is trimmed (Unicode space separators, as DuckDB's `trim`) first;
 * - a categorical value is brought to the canonical key of its column type (`canonicalKey`) and
 *   looked up in the field's `ids`; anything else, missing included, is the OOV id 0. A value its
 *   type cannot hold as it is (4.6 or 0x2A for an integer column) is OOV, never rounded or parsed,
 *   and counted in `problems`;
 * - a multi-valued field splits the value's text on its separator, trims the items (spaces),
 *   drops empty ones, keeps the first maxLen, pads with -1; a missing value is the single id 0;
 * - a numeric field: missing or NaN -> 0, the j-th point mass -> j, else k + 1 + #{boundaries <= x};
 * - a dense input: (f(x) - mean) / std (f = ln(1 + x) with log1p), 0 when missing or not finite.
 *
 * What it does not do (score does): SQL expressions and side-table joins. A field or dense input
 * whose source is an expression takes its value from `options.derive[name](row)` (createEncoder
 * refuses a model with one and no `derive` function, quoting the expression); a column of a side
 * table (features.json `sides`) is read from the row itself: join your user and item features
 * into the row before encoding.
 *
 * features.json is untrusted: it is checked as far as this module reads it, vocabularies are held
 * in Maps (a key `__proto__` or `constructor` is an ordinary key), and row columns are read only
 * when they are own properties of the row.
 */

// ---- canonical keys ---------------------------------------------------------------------------

/** Integer column types and their ranges (as decimal text bounds). */
const INT_RANGES: Record<string, readonly [string, string]> = {
  TINYINT: ["-128", "127"],
  SMALLINT: ["-32768", "32767"],
  INTEGER: ["-2147483648", "2147483647"],
  BIGINT: ["-9223372036854775808", "9223372036854775807"],
  HUGEINT: ["-170141183460469231731687303715884105728", "170141183460469231731687303715884105727"],
  UTINYINT: ["0", "255"],
  USMALLINT: ["0", "65535"],
  UINTEGER: ["0", "4294967295"],
  UBIGINT: ["0", "18446744073709551615"],
  UHUGEINT: ["0", "340282366920938463463374607431768211455"],
};

/** What score's exact cast accepts as an integer (RE2's `\s` is [\t\n\f\r ]). */
const INT_TEXT = /^[\t\n\f\r ]*([+-]?)([0-9]+)(?:\.0*)?[\t\n\f\r ]*$/;
const WS = /^[ \t\n\v\f\r]+|[ \t\n\v\f\r]+$/g;
/** A decimal float as DuckDB casts text to DOUBLE / FLOAT (underscores between digits allowed). */
const FLOAT_TEXT = /^[+-]?(?:[0-9](?:_?[0-9])*(?:\.(?:[0-9](?:_?[0-9])*)?)?|\.[0-9](?:_?[0-9])*)(?:[eE][+-]?[0-9]+)?$/;
const SPECIAL_FLOAT = /^([+-]?)(inf|infinity|nan)$/i;
const DECIMAL_TEXT = /^([+-]?)([0-9]*)(?:\.([0-9]*))?(?:[eE]([+-]?[0-9]{1,9}))?$/;
const DECIMAL_TYPE = /^(?:DECIMAL|NUMERIC)\((\d+), ?(\d+)\)$/;
/** A date, or a date and time (`T` or a space between; seconds and up to 6 decimals optional; `Z` allowed), as DuckDB casts text to DATE / TIMESTAMP. */
const DATE_TIME = /^([0-9]{4})-([0-9]{1,2})-([0-9]{1,2})(?:[T ]([0-9]{1,2}):([0-9]{2})(?::([0-9]{2})(?:\.([0-9]{1,6}))?)?Z?)?$/;
const BOOL_WORDS: Record<string, string> = { t: "true", true: "true", y: "true", yes: "true", "1": "true", f: "false", false: "false", n: "false", no: "false", "0": "false" };

function inRange(sign: string, digits: string, type: string): boolean {
  const r = INT_RANGES[type];
  if (!r) return false;
  if (digits.length <= 15) {
    const v = sign === "-" ? -Number(digits) : Number(digits);
    return v >= Number(r[0]) && v <= Number(r[1]);
  }
  const v = BigInt(sign === "-" ? `-${digits}` : digits);
  return v >= BigInt(r[0]) && v <= BigInt(r[1]);
}

/** The double a text denotes as DuckDB's cast reads it, or null when it is no number. */
function parseDouble(text: string): number | null {
  const t = text.replace(WS, "");
  if (FLOAT_TEXT.test(t)) return Number(t.replace(/_/g, ""));
  const s = SPECIAL_FLOAT.exec(t);
  if (!s) return null;
  if (s[2]!.toLowerCase() === "nan") return NaN;
  return s[1] === "-" ? -Infinity : Infinity;
}

/** The shortest decimal that reads back as the same float32 (JavaScript's number form). */
function shortestFloat32(x: number): string {
  const f = Math.fround(x);
  if (!Number.isFinite(f)) return String(f);
  for (let p = 1; p <= 9; p++) {
    const s = Number(f.toPrecision(p));
    if (Math.fround(s) === f) return String(s);
  }
  return String(f);
}

/** Plain decimal text of a DECIMAL(p, s) value, trailing zeros dropped; null when the type cannot hold it exactly. */
function canonicalDecimal(text: string, p: number, s: number): string | null {
  const m = DECIMAL_TEXT.exec(text.replace(WS, ""));
  if (!m) return null;
  const int = m[2] ?? "";
  const frac = m[3] ?? "";
  if (int === "" && frac === "") return null;
  let digits = (int + frac).replace(/^0+/, "");
  let exp = Number(m[4] ?? "0") - frac.length; // value = digits * 10^exp
  if (digits === "") return "0";
  const tz = /0+$/.exec(digits);
  if (tz) {
    digits = digits.slice(0, -tz[0].length);
    exp += tz[0].length;
  }
  const fracDigits = exp < 0 ? -exp : 0;
  const intDigits = Math.max(digits.length + exp, 0);
  if (fracDigits > s || intDigits > p - s) return null;
  let out: string;
  if (exp >= 0) out = digits + "0".repeat(exp);
  else if (digits.length > fracDigits) out = `${digits.slice(0, digits.length - fracDigits)}.${digits.slice(digits.length - fracDigits)}`;
  else out = `0.${"0".repeat(fracDigits - digits.length)}${digits}`;
  return m[1] === "-" ? `-${out}` : out;
}

/**
 * The canonical key of `text` as a value of DuckDB column type `type`, or null when the type
 * cannot hold the text's value as it is. The keys of features.json `ids` are in this form
 * (`mtlcraft export` writes them so; older files are brought to it when read), so `9`, `"9"` and
 * `"9.0"` find the same id in an integer-valued column:
 *
 * - integer types (TINYINT ... UHUGEINT): decimal digits, `-` for negatives only, no leading
 *   zeros, no sign on 0. Text is accepted as score's exact cast accepts it: surrounding
 *   whitespace, a sign, leading zeros and a `.0…` fraction (`" +007.0 "` is `7`); not fractions,
 *   exponents, hex or out-of-range values;
 * - DOUBLE: JavaScript's `String(Number(v))`, the shortest text that reads back as the same
 *   double (`9`, `0.1`, `1e-7`, `1e+21`, `Infinity`, `NaN`; -0 is `0`); FLOAT: the same for the
 *   float32 value (the shortest text that reads back as the same float32). Text as DuckDB casts it
 *   (whitespace, `1_000`, `inf`, `nan`);
 * - DECIMAL(p, s) / NUMERIC(p, s): the exact value in plain decimal notation, trailing fractional
 *   zeros and a trailing point dropped (`9.50` is `9.5`, `9.0` is `9`, `-0.0` is `0`); never an
 *   exponent. A value with more than s decimals or p - s integer digits is refused;
 * - BOOLEAN: `true` or `false` (text: t, f, true, false, y, n, yes, no, 1, 0, any case);
 * - DATE: `YYYY-MM-DD`; TIMESTAMP: `YYYY-MM-DD HH:MM:SS`, then `.` and the fraction of a second
 *   without trailing zeros when it has one (DuckDB's text). Text `YYYY-M-D` (with surrounding
 *   whitespace for a DATE), optionally with a time (`T` or a space, `HH:MM[:SS[.ffffff]]`, a
 *   trailing `Z`) is accepted, so a JavaScript Date (its ISO text, UTC) finds its key; other
 *   offsets are not;
 * - VARCHAR and every other type (TIMESTAMP WITH TIME ZONE, TIME, INTERVAL, UUID, ...): the text
 *   as it is, as DuckDB writes the value.
 */
export function canonicalKey(type: string, text: string): string | null {
  if (type === "VARCHAR") return text;
  if (Object.hasOwn(INT_RANGES, type)) {
    const m = INT_TEXT.exec(text);
    if (!m) return null;
    const digits = m[2]!.replace(/^0+(?=[0-9])/, "");
    const sign = digits === "0" ? "" : m[1]!;
    if (!inRange(sign, digits, type)) return null;
    return sign === "-" ? `-${digits}` : digits;
  }
  if (type === "DOUBLE" || type === "FLOAT") {
    const x = parseDouble(text);
    if (x === null) return null;
    return type === "FLOAT" ? shortestFloat32(x) : String(x);
  }
  const dm = DECIMAL_TYPE.exec(type);
  if (dm) return canonicalDecimal(text, Number(dm[1]), Number(dm[2]));
  if (type === "BOOLEAN") {
    const lower = text.toLowerCase();
    return Object.hasOwn(BOOL_WORDS, lower) ? BOOL_WORDS[lower]! : null;
  }
  if (type === "DATE" || type === "TIMESTAMP") {
    const m = DATE_TIME.exec(type === "DATE" ? text.replace(WS, "") : text); // DuckDB trims whitespace for a DATE, not a TIMESTAMP
    if (!m) return null;
    const [mo, d, h, mi, sec] = [m[2], m[3], m[4] ?? "0", m[5] ?? "0", m[6] ?? "0"].map(Number) as [number, number, number, number, number];
    if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 59) return null;
    const date = `${m[1]}-${m[2]!.padStart(2, "0")}-${m[3]!.padStart(2, "0")}`;
    if (type === "DATE") return date;
    const frac = (m[7] ?? "").replace(/0+$/, "");
    return `${date} ${String(h).padStart(2, "0")}:${String(mi).padStart(2, "0")}:${String(sec).padStart(2, "0")}${frac ? `.${frac}` : ""}`;
  }
  return text;
}

/**
 * A field's vocabulary (features.json `ids`) with canonical keys, as a Map. Two keys with the same
 * canonical form are refused with an error naming both, as is a key its type cannot hold or an id
 * outside 1..vocabSize-1, so no value can silently take another's id.
 */
export function canonicalIds(field: string, type: string, ids: Record<string, unknown>, vocabSize?: number): Map<string, number> {
  const out = new Map<string, number>();
  const from = new Map<string, string>();
  for (const raw of Object.keys(ids)) {
    const id = ids[raw];
    if (typeof id !== "number" || !Number.isInteger(id) || id < 1 || (vocabSize !== undefined && id >= vocabSize)) throw new Error(`features.json: field "${field}" maps a value to an id outside 1..${(vocabSize ?? 2) - 1}`);
    const key = canonicalKey(type, raw);
    if (key === null) throw new Error(`features.json: field "${field}" has a vocabulary key ${quote(raw)} that is not a ${type} value`);
    const prev = from.get(key);
    if (prev !== undefined) throw new Error(`features.json: field "${field}" has the keys ${quote(prev)} and ${quote(raw)}, which are the same ${type} value (canonical key ${quote(key)}); they cannot have two ids`);
    from.set(key, raw);
    out.set(key, id);
  }
  return out;
}

/** A value for a message: JSON, cut to 40 characters. */
function quote(s: string): string {
  const j = JSON.stringify(s);
  return j.length > 42 ? `${j.slice(0, 40)}…"` : j;
}

// ---- features.json (the parts the encoder reads) ----------------------------------------------

/** The model inputs: int64 ids per field ([n] or [n, maxLen]) and float32 dense values ([n, D]). */
export type EncodedInput = { type: "int64"; data: BigInt64Array; dims: number[] } | { type: "float32"; data: Float32Array; dims: number[] };

export interface EncodedBatch {
  /** Rows encoded. */
  size: number;
  /** model.onnx's inputs by name (wrap them with `toFeeds`). */
  inputs: Record<string, EncodedInput>;
  /** The ids per field (features.json order): n ids, or n x maxLen with -1 padding for a multi-valued field. */
  ids: Int32Array[];
  /** Values the column type could not hold as they are (scored as missing), one line per column with a row count. */
  problems: string[];
}

export interface EncoderOptions {
  /**
   * Values of the fields and dense inputs whose source is a SQL expression, by field name:
   * `derive: { hour: (row) => Math.trunc(Number(row.hourmin) / 100) }` for `"expr": "hourmin // 100"`.
   * The result is encoded as a value of the field's type.
   */
  derive?: Record<string, (row: Record<string, unknown>) => unknown>;
}

export interface Encoder {
  /** The fields (features.json order) with their model input names. */
  readonly fields: readonly { name: string; input: string; kind: "categorical" | "numeric"; multi: number | null }[];
  /** The dense model input (float32 [n, D]), or null. */
  readonly denseInput: string | null;
  /** Encodes rows of raw log columns (plus the side tables' columns); see the module comment. */
  encode(rows: readonly Record<string, unknown>[]): EncodedBatch;
}

type Source = { column: string } | { expr: string };
type Getter = (row: Record<string, unknown>) => unknown;

interface CatPlan {
  kind: "categorical";
  get: Getter;
  expr: boolean;
  column: string;
  type: string;
  ids: Map<string, number>;
  multi: { separator: string; maxLen: number } | null;
  /** The column's type in the training log, for a multi-valued field over a typed column. */
  columnType: string | null;
}
interface NumPlan {
  kind: "numeric";
  get: Getter;
  expr: boolean;
  column: string;
  type: string;
  masses: number[];
  bounds: number[];
}
interface DensePlan {
  get: Getter;
  expr: boolean;
  column: string;
  type: string;
  log1p: boolean;
  mean: number;
  std: number;
}

class FeaturesError extends Error {
  constructor(at: string, msg: string) {
    super(`features.json: ${at} ${msg}`);
    this.name = "FeaturesError";
  }
}

const isObj = (x: unknown): x is Record<string, unknown> => typeof x === "object" && x !== null && !Array.isArray(x);
const own = (o: Record<string, unknown>, k: string): unknown => (Object.hasOwn(o, k) ? o[k] : undefined);

function need<T>(ok: boolean, at: string, what: string, x: unknown): T {
  if (!ok) throw new FeaturesError(at, `must be ${what}`);
  return x as T;
}
const str = (o: Record<string, unknown>, k: string, at: string): string => {
  const v = own(o, k);
  return need<string>(typeof v === "string", `${at}.${k}`, "a string", v);
};
const fin = (o: Record<string, unknown>, k: string, at: string): number => {
  const v = own(o, k);
  return need<number>(typeof v === "number" && Number.isFinite(v), `${at}.${k}`, "a finite number", v);
};
const numList = (o: Record<string, unknown>, k: string, at: string): number[] => {
  const v = own(o, k) ?? [];
  need(Array.isArray(v) && (v as unknown[]).every((x) => typeof x === "number" && Number.isFinite(x)), `${at}.${k}`, "a list of finite numbers", v);
  return [...(v as number[])];
};
const source = (o: Record<string, unknown>, at: string): Source => {
  const s = own(o, "source");
  if (!isObj(s)) throw new FeaturesError(`${at}.source`, "must be an object");
  const c = own(s, "column");
  const e = own(s, "expr");
  if (typeof c === "string" && e === undefined) return { column: c };
  if (typeof e === "string" && c === undefined) return { expr: e };
  throw new FeaturesError(`${at}.source`, 'must have exactly one of "column" and "expr" (a string)');
};

/** The text of a raw value as score loads rows (null when missing), before csv trimming and NULL strings. */
function rawText(v: unknown): string | null {
  switch (typeof v) {
    case "string":
      return v;
    case "number":
      return Number.isNaN(v) ? null : String(v);
    case "bigint":
    case "boolean":
      return String(v);
    case "object":
      return v instanceof Date && Number.isFinite(v.getTime()) ? v.toISOString() : null;
    default:
      return null;
  }
}

/** DuckDB's trim(): Unicode space separators (not tabs or newlines). */
const TRIM = /^\p{Zs}+|\p{Zs}+$/gu;

/**
 * Builds an encoder from a parsed features.json (untrusted: checked as far as it is read, see the
 * module comment). Throws when the file is not an mtlcraft features file, when a vocabulary has
 * two keys of the same value, or when a field is an expression without `options.derive`.
 */
export function createEncoder(features: unknown, options: EncoderOptions = {}): Encoder {
  if (!isObj(features)) throw new FeaturesError("the file", "must be an object");
  if (own(features, "format") !== "mtlcraft-features") throw new FeaturesError("format", 'must be "mtlcraft-features" (this is not an mtlcraft features file)');
  if (own(features, "version") !== 1) throw new FeaturesError("version", "must be 1 (this encoder reads version 1)");
  if (own(features, "oov") !== 0) throw new FeaturesError("oov", "must be 0");
  const spec = own(features, "spec");
  const csv = isObj(spec) && isObj(own(spec, "csv")) ? (own(spec, "csv") as Record<string, unknown>) : {};
  const trim = own(csv, "trim") === true;
  const nullList = own(csv, "nullStrings") ?? [""];
  need(Array.isArray(nullList) && (nullList as unknown[]).every((s) => typeof s === "string"), "spec.csv.nullStrings", "a list of strings", nullList);
  const nulls = new Set(nullList as string[]);
  const trimmedNulls = new Set((nullList as string[]).map((s) => s.replace(TRIM, "")));
  const columns = own(features, "columns");
  if (!isObj(columns)) throw new FeaturesError("columns", "must be an object");
  const colType = (c: string): string | null => {
    const t = own(columns, c);
    return typeof t === "string" ? t : null;
  };
  const derive = options.derive ?? {};
  const noDerive: string[] = [];
  const getter = (src: Source, name: string): Getter => {
    if ("column" in src) {
      const c = src.column;
      return (row) => (Object.hasOwn(row, c) ? row[c] : undefined);
    }
    const f = Object.hasOwn(derive, name) ? derive[name] : undefined;
    if (typeof f !== "function") {
      noDerive.push(`"${name}" (${JSON.stringify(src.expr)})`);
      return () => undefined;
    }
    return f;
  };
  const fieldsIn = own(features, "fields");
  if (!Array.isArray(fieldsIn) || fieldsIn.length === 0) throw new FeaturesError("fields", "must be a non-empty list");
  const plans: (CatPlan | NumPlan)[] = [];
  const fieldInfo: { name: string; input: string; kind: "categorical" | "numeric"; multi: number | null }[] = [];
  const inputs = new Set<string>();
  fieldsIn.forEach((f: unknown, i) => {
    const at = `fields[${i}]`;
    if (!isObj(f)) throw new FeaturesError(at, "must be an object");
    const name = str(f, "name", at);
    const input = str(f, "input", at);
    if (inputs.has(input)) throw new FeaturesError(`${at}.input`, "names an input twice");
    inputs.add(input);
    const kind = own(f, "kind");
    const src = source(f, at);
    const column = "column" in src ? src.column : `(expression of "${name}")`;
    const ctype = "column" in src ? colType(src.column) : null;
    const vocabSize = own(f, "vocabSize");
    need(typeof vocabSize === "number" && Number.isInteger(vocabSize) && vocabSize >= 1, `${at}.vocabSize`, "an integer >= 1", vocabSize);
    if (kind === "categorical") {
      const ids = own(f, "ids");
      if (!isObj(ids)) throw new FeaturesError(`${at}.ids`, "must be an object");
      const m = own(f, "multi");
      let multi: CatPlan["multi"] = null;
      if (m !== undefined) {
        if (!isObj(m)) throw new FeaturesError(`${at}.multi`, "must be an object");
        const maxLen = own(m, "maxLen");
        need(typeof maxLen === "number" && Number.isInteger(maxLen) && maxLen >= 1 && maxLen <= 65536, `${at}.multi.maxLen`, "an integer in 1..65536", maxLen);
        const separator = str(m, "separator", `${at}.multi`);
        if (separator === "") throw new FeaturesError(`${at}.multi.separator`, "must not be empty");
        multi = { separator, maxLen: maxLen as number };
      }
      const vt = own(f, "valueType") ?? "VARCHAR";
      need(typeof vt === "string", `${at}.valueType`, "a string", vt);
      const type = multi ? "VARCHAR" : (vt as string);
      plans.push({ kind: "categorical", get: getter(src, name), expr: !("column" in src), column, type, ids: canonicalIds(name, type, ids, vocabSize as number), multi, columnType: ctype });
      fieldInfo.push({ name, input, kind: "categorical", multi: multi ? multi.maxLen : null });
    } else if (kind === "numeric") {
      plans.push({ kind: "numeric", get: getter(src, name), expr: !("column" in src), column, type: ctype ?? "DOUBLE", masses: numList(f, "pointMasses", at), bounds: numList(f, "boundaries", at) });
      fieldInfo.push({ name, input, kind: "numeric", multi: null });
    } else throw new FeaturesError(`${at}.kind`, 'must be "categorical" or "numeric"');
  });
  const denseIn = own(features, "dense") ?? [];
  if (!Array.isArray(denseIn)) throw new FeaturesError("dense", "must be a list");
  const dense: DensePlan[] = denseIn.map((d: unknown, j) => {
    const at = `dense[${j}]`;
    if (!isObj(d)) throw new FeaturesError(at, "must be an object");
    const name = str(d, "name", at);
    const src = source(d, at);
    const std = fin(d, "std", at);
    if (std === 0) throw new FeaturesError(`${at}.std`, "must not be 0");
    return { get: getter(src, name), expr: !("column" in src), column: "column" in src ? src.column : `(expression of "${name}")`, type: ("column" in src ? colType(src.column) : null) ?? "DOUBLE", log1p: own(d, "log1p") === true, mean: fin(d, "mean", at), std };
  });
  const denseInputRaw = own(features, "denseInput") ?? null;
  need(denseInputRaw === null || typeof denseInputRaw === "string", "denseInput", "a string or null", denseInputRaw);
  const denseInput = dense.length > 0 ? (denseInputRaw as string | null) : null;
  if (dense.length > 0 && denseInput === null) throw new FeaturesError("denseInput", `is null, but ${dense.length} dense inputs are listed`);
  if (denseInput !== null && inputs.has(denseInput)) throw new FeaturesError("denseInput", "names a field's input");
  if (noDerive.length > 0) {
    throw new Error(
      `features.json: ${noDerive.length === 1 ? "field" : "fields"} ${noDerive.join(", ")} ${noDerive.length === 1 ? "is a SQL expression" : "are SQL expressions"} over the log's columns, which this encoder does not evaluate; ` +
        `give createEncoder(features, { derive: { <name>: (row) => value } }) a function computing each (as the expression does), or score with \`mtlcraft score\``,
    );
  }

  /** The text of a value after the spec's NULL strings and trimming; null when missing. */
  const text = (v: unknown): string | null => {
    const s = rawText(v);
    if (s === null || nulls.has(s)) return null;
    if (!trim) return s;
    const t = s.replace(TRIM, "");
    return trimmedNulls.has(t) ? null : t;
  };

  /** A number as score's `(value)::DOUBLE` of a column of type `type` reads it; null when missing or invalid (`bad` is told). */
  const number = (v: unknown, type: string, bad: () => void): number | null => {
    if (typeof v === "number" && (type === "DOUBLE" || type === "FLOAT")) return Number.isNaN(v) ? null : type === "FLOAT" ? Math.fround(v) : v;
    const s = text(v);
    if (s === null) return null;
    let x: number | null;
    if (Object.hasOwn(INT_RANGES, type) || DECIMAL_TYPE.test(type)) {
      const k = canonicalKey(type, s);
      x = k === null ? null : Number(k);
    } else {
      x = parseDouble(s);
      if (x !== null && type === "FLOAT") x = Math.fround(x);
    }
    if (x === null) bad();
    return x;
  };

  return {
    fields: fieldInfo,
    denseInput,
    encode(rows: readonly Record<string, unknown>[]): EncodedBatch {
      if (!Array.isArray(rows)) throw new TypeError("encode(rows): rows must be an array of objects");
      const n = rows.length;
      for (let r = 0; r < n; r++) {
        const row = rows[r];
        if (typeof row !== "object" || row === null || Array.isArray(row)) throw new TypeError(`encode(rows): row ${r} is not an object of column: value`);
      }
      const badCount = new Map<string, { n: number; first: number; what: string }>();
      const noteBad = (column: string, what: string, r: number): void => {
        const b = badCount.get(column);
        if (b) b.n++;
        else badCount.set(column, { n: 1, first: r, what });
      };
      // a column that no row has is an error (as score's "has no column"); a row without it is a missing value
      const present = (p: { expr: boolean; column: string }): void => {
        if (p.expr || n === 0) return;
        for (let r = 0; r < n; r++) if (Object.hasOwn(rows[r]!, p.column)) return;
        throw new Error(`encode(rows): no row has column "${p.column}", which the model needs`);
      };
      plans.forEach(present);
      dense.forEach(present);
      const ids: Int32Array[] = [];
      const out: Record<string, EncodedInput> = Object.create(null) as Record<string, EncodedInput>;
      plans.forEach((p, i) => {
        const info = fieldInfo[i]!;
        const L = p.kind === "categorical" && p.multi ? p.multi.maxLen : 1;
        const dst = new Int32Array(n * L);
        for (let r = 0; r < n; r++) {
          const v = p.get(rows[r]!);
          if (p.kind === "numeric") {
            const x = number(v, p.type, () => noteBad(p.column, `not a number of type ${p.type}`, r));
            let id: number;
            if (x === null || Number.isNaN(x)) id = 0;
            else {
              const k = p.masses.length;
              const mi = p.masses.indexOf(x);
              if (mi >= 0) id = mi + 1;
              else {
                let j = 0;
                while (j < p.bounds.length && !(x < p.bounds[j]!)) j++;
                id = k + j + 1;
              }
            }
            dst[r] = id;
          } else if (p.multi) {
            let s = text(v);
            // a typed column is cast to its training type first (score casts, then writes it as text)
            if (s !== null && p.columnType !== null && p.columnType !== "VARCHAR") {
              const k = canonicalKey(p.columnType, s);
              if (k === null) noteBad(p.column, `not a value of type ${p.columnType}`, r);
              s = k;
            }
            const base = r * L;
            dst.fill(-1, base, base + L);
            if (s === null) {
              dst[base] = 0;
              continue;
            }
            let k = 0;
            for (const item of s.split(p.multi.separator)) {
              const t = item.replace(TRIM, "");
              if (t === "") continue;
              dst[base + k] = p.ids.get(t) ?? 0;
              if (++k === L) break;
            }
            if (k === 0) dst[base] = 0;
          } else {
            const s = text(v);
            if (s === null) {
              dst[r] = 0;
              continue;
            }
            let key: string | null;
            if (typeof v === "number" && p.type === "DOUBLE") key = String(v);
            else key = canonicalKey(p.type, s);
            if (key === null) {
              noteBad(p.column, `not a value of type ${p.type}`, r);
              dst[r] = 0;
            } else dst[r] = p.ids.get(key) ?? 0;
          }
        }
        ids.push(dst);
        const big = new BigInt64Array(dst.length);
        for (let k = 0; k < dst.length; k++) big[k] = BigInt(dst[k]!);
        out[info.input] = { type: "int64", data: big, dims: L > 1 || info.multi !== null ? [n, L] : [n] };
      });
      if (denseInput !== null) {
        const D = dense.length;
        const x = new Float32Array(n * D);
        dense.forEach((d, j) => {
          for (let r = 0; r < n; r++) {
            const v = number(d.get(rows[r]!), d.type, () => noteBad(d.column, `not a number of type ${d.type}`, r));
            x[r * D + j] = v === null || !Number.isFinite(v) ? 0 : ((d.log1p ? Math.log(1 + v) : v) - d.mean) / d.std;
          }
        });
        out[denseInput] = { type: "float32", data: x, dims: [n, D] };
      }
      const problems = [...badCount].map(([c, b]) => `column "${c}": ${b.n} row${b.n === 1 ? " has" : "s have"} a value that is ${b.what}, first at row ${b.first} (0-based); encoded as missing`);
      return { size: n, inputs: out, ids, problems };
    },
  };
}

/**
 * The inputs of an encoded batch as onnxruntime tensors: `toFeeds(batch, ort.Tensor)` with
 * onnxruntime-node, -web or -react-native.
 */
export function toFeeds<T>(batch: Pick<EncodedBatch, "inputs">, Tensor: new (type: "int64" | "float32", data: BigInt64Array | Float32Array, dims: readonly number[]) => T): Record<string, T> {
  const feeds: Record<string, T> = {};
  for (const name of Object.keys(batch.inputs)) {
    const x = batch.inputs[name]!;
    Object.defineProperty(feeds, name, { value: new Tensor(x.type, x.data, x.dims), enumerable: true, writable: true, configurable: true });
  }
  return feeds;
}
