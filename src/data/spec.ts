/**
 * Dataset spec: what to read (and how to parse it), which columns become fields, how labels are
 * derived and how rows are split. A spec is a plain JSON object (a `.json` file, or the same object
 * in code), checked by `validateSpec` against `SPEC_SCHEMA` (spec-schema.ts): every error names
 * the JSON path, unknown keys get a "did you mean". The same schema generates the reference
 * `docs/spec-reference.md` (every key with its type, default and an example; `npm run docs:spec`).
 *
 * Paths in `log`, `joins[].path` and `split.train|val|test` (per-split files) are resolved
 * against, in order: the `dataDir` prepare option, the spec's own `dataDir` (itself relative to
 * the spec file), the spec file's folder, the current directory. With prepare's `confineTo` (a
 * queue worker's data folder) each must lie inside that folder by real path (confine.ts).
 */
import { specFail, validateAgainst, type ObjectSchema, type Prop, type Schema } from "./spec-schema.ts";
import { didYouMean } from "../util/suggest.ts";

/** How CSV / CSV.gz inputs are parsed (see CSV_SCHEMA for the defaults). */
export interface CsvOptions {
  /** The first line is a header row of column names (default true). */
  header?: boolean;
  /** Column names, in file order; required when `header` is false. */
  columns?: string[];
  /** Field delimiter of 1 to 4 ASCII characters, e.g. `::` (default: detected from the first line among `,` TAB `;` `|`). */
  delimiter?: string;
  /** One-character quote (default `"`); a quote inside a quoted value is written twice unless `escape` says otherwise. */
  quote?: string;
  /** One character that makes the next character inside a quoted value literal (default: the quote, i.e. doubled quotes). */
  escape?: string;
  /** Text encoding of the file (default "utf-8"). */
  encoding?: CsvEncoding;
  /** Values read as NULL (default [""]: an empty field). */
  nullStrings?: string[];
  /** Remove leading and trailing spaces from every text value (default false: they are kept). */
  trim?: boolean;
}

/** The text encodings DuckDB's CSV reader knows without an extension (UTF-16 is read little-endian). */
export const CSV_ENCODINGS = ["utf-8", "latin-1", "utf-16"] as const;
export type CsvEncoding = (typeof CSV_ENCODINGS)[number];

/** Longest CSV delimiter, in bytes (DuckDB: "The delimiter option cannot exceed a size of 4 bytes"). */
export const MAX_DELIMITER_BYTES = 4;

export interface ColumnRef {
  /** Field name (as it appears in DatasetMeta.fields). */
  name: string;
  /** Source column; defaults to `name`. */
  column?: string;
  /**
   * A scalar SQL expression over the (joined) source columns, used instead of `column`. Parsed and
   * checked against an allow-list before use (see expr.ts and data/README.md): columns, constants,
   * operators, CASE, CAST and allow-listed scalar functions only.
   */
  expr?: string;
}

export interface CategoricalRef extends ColumnRef {
  /** Makes the field multi-valued: the value is a list of items separated by this string. */
  separator?: string;
  /** Items kept per row (the first maxLen; default 16). Multi-valued fields only. */
  maxLen?: number;
  /** How the items' embeddings are combined (default "mean"). Multi-valued fields only. */
  pooling?: "mean" | "sum";
}

export interface NumericRef extends ColumnRef {
  /** Number of quantile buckets (default 10). */
  buckets?: number;
  /** A value holding at least this share of the training rows gets its own bucket (default 1/buckets). */
  pointMass?: number;
}

export interface DenseRef extends ColumnRef {
  /** Standardise log(1 + x) instead of x (default false). */
  log1p?: boolean;
}

export interface JoinSpec {
  /** Side table file (CSV, CSV.gz or Parquet). */
  path: string;
  /** Join key: same name in log and side table, or {left: log column, right: side column}. */
  on: string | { left: string; right: string };
  /** Side-table columns to bring in (must not clash with log columns unless `prefix` is set). */
  columns: string[];
  /** Prefix added to the brought-in column names. */
  prefix?: string;
  /** How the side table is parsed when it is a CSV file (default: the CSV defaults). */
  csv?: CsvOptions;
}

export type TaskSpec =
  /** A raw binary column (values 0/1 or boolean). */
  | { name: string; kind: "column"; column: string }
  /** EV: watch time above the training split's median (GradCraft). */
  | { name: string; kind: "ev"; watch: string }
  /** LV: watch time above the training split's 75th percentile (GradCraft). */
  | { name: string; kind: "lv"; watch: string }
  /** Watch time above the training split's q-quantile. */
  | { name: string; kind: "quantile"; watch: string; q: number }
  /** CV: watch time >= item duration (GradCraft). `durationScale` multiplies the duration (e.g. 1000 for s -> ms). */
  | { name: string; kind: "cv"; watch: string; duration: string; durationScale?: number }
  /** A scalar SQL boolean expression over the source columns (NULL counts as 0); same rules as ColumnRef.expr. */
  | { name: string; kind: "sql"; expr: string };

export type SplitSpec =
  /** Inclusive ranges of a date column (integers like 20220425, day numbers, or DATE strings). */
  | { kind: "date"; column: string; train: [number | string, number | string]; val: [number | string, number | string]; test: [number | string, number | string] }
  /** Split by fractions with a documented hash of `by` (or of the row position), deterministic from `seed` (see splitHashSql). */
  | { kind: "fraction"; train: number; val: number; test: number; seed: number; by?: string }
  /**
   * Pre-split data: one file (or list) per split. Without `val` files, a `valFraction` of the
   * train files' rows (chosen by the same hash of the row position and `seed`) becomes the val split.
   */
  | { kind: "files"; train: string | string[]; val?: string | string[]; test: string | string[]; valFraction?: number; seed?: number }
  /**
   * The last `test` share of the rows by `column` (a time or number column) is the test split, the
   * `val` share before it the val split, the rest train; rows sharing a boundary value go to the
   * later split (see TIME_FRACTION_SPLIT).
   */
  | { kind: "time-fraction"; column: string; val: number; test: number };

export interface DatasetSpec {
  name: string;
  /** Folder that relative source paths are resolved against (relative to the spec file). */
  dataDir?: string;
  /** Interaction log file(s). Not used when split.kind is "files". */
  log?: string | string[];
  /** How the log's (and per-split files') CSV inputs are parsed. */
  csv?: CsvOptions;
  joins?: JoinSpec[];
  userColumn?: string;
  itemColumn?: string;
  /** Column grouping rows for GAUC (usually the user id). Absent: one group for all rows. */
  groupColumn?: string;
  categorical: (string | CategoricalRef)[];
  numeric?: (string | NumericRef)[];
  /** Numeric columns given to the models as standardised values (not embedded). */
  dense?: (string | DenseRef)[];
  tasks: TaskSpec[];
  split: SplitSpec;
  /** Ids seen fewer than this many times in train map to OOV 0 (default 1). */
  minCount?: number;
  /** What to do when a label has a single class in train: "error" (default) or "warn". */
  singleClassLabels?: "error" | "warn";
  /**
   * IANA time zone in which DuckDB evaluates the spec's SQL (hour(), dayofweek(), strftime(), casts
   * between TIMESTAMP and TIMESTAMPTZ ...) when preparing and when scoring; default "UTC", never the
   * machine's zone. See `specTimeZone`.
   */
  timezone?: string;
}

/** The zone a spec's derived time features are computed in when it names none. */
export const DEFAULT_TIMEZONE = "UTC";

/**
 * The time zone every DuckDB connection that prepares or encodes rows of `spec` runs in (set by
 * `lockDown`): the spec's `timezone`, else UTC, so derived hour/weekday features and the ids they
 * get never depend on the machine's `TZ` (which the dataset hash does not see).
 */
export function specTimeZone(spec: Pick<DatasetSpec, "timezone">): string {
  return spec.timezone ?? DEFAULT_TIMEZONE;
}

/** A time zone name as IANA writes them ("UTC", "Asia/Shanghai", "America/Argentina/Buenos_Aires", "Etc/GMT+5"). */
const TIMEZONE_RE = /^[A-Za-z][A-Za-z0-9_+-]*(\/[A-Za-z0-9_+-]+){0,2}$/;

/** Whether the IANA time zone database (as Node's ICU has it) knows `name` (aliases included). */
function knownTimeZone(name: string): boolean {
  try {
    new Intl.DateTimeFormat("en-US", { timeZone: name });
    return true;
  } catch {
    return false;
  }
}

/** The canonical zone names, for "did you mean" (Node's list lacks "UTC" itself). */
function timeZoneNames(): string[] {
  return [DEFAULT_TIMEZONE, ...Intl.supportedValuesOf("timeZone")];
}

/** Defaults of the spec keys that code reads (also the defaults the reference shows). */
export const SPEC_DEFAULTS = {
  maxLen: 16,
  pooling: "mean" as const,
  buckets: 10,
  quote: '"',
  encoding: "utf-8" as CsvEncoding,
  nullStrings: [""] as string[],
};

// ---- schema ---------------------------------------------------------------------------------

const NAME_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;

const str = (): Schema => ({ type: "string" });
const strList = (): Schema => ({ type: "list", items: str(), minItems: 1 });
const strOrList = (): Schema => ({ type: "anyOf", options: [str(), strList()] });

function columnProps(what: string): Record<string, Prop> {
  return {
    name: { schema: str(), required: true, description: `Name of the ${what} (unique among all fields).`, example: "hour" },
    column: { schema: str(), description: "Source column (after joins).", defaultText: "`name`", example: "hourmin" },
    expr: {
      schema: str(),
      description: "A scalar SQL expression over the source columns, used instead of `column`; parsed and checked against an allow-list (see data/README.md, Expressions).",
      defaultText: "none",
      example: "hourmin // 100",
    },
  };
}

const exclusiveColumnExpr = (o: Record<string, unknown>, path: string): void => {
  if (o.column !== undefined && o.expr !== undefined) specFail(path, "has both column and expr");
};

const CSV_SCHEMA: ObjectSchema = {
  type: "object",
  title: "CSV options",
  anchor: "csv",
  description:
    "How CSV and CSV.gz files are parsed (`$.csv` for the log and per-split files, `$.joins[i].csv` for a side table; Parquet files ignore it). " +
    "Every key is optional; `{}` is the default behaviour.",
  props: {
    header: { schema: { type: "boolean" }, default: true, description: "The first line holds the column names. With `false` every line is a data row and `columns` names them.", example: false },
    columns: {
      schema: strList(),
      requiredWhen: "when `header` is false",
      defaultText: "the header's names",
      description: "Column names in file order, for a file without a header row (every row must have exactly this many fields).",
      example: ["age", "workclass", "income"],
    },
    delimiter: {
      schema: { type: "string" },
      defaultText: "detected: the most frequent of `,` TAB `;` `|` outside quotes in the first line (`,` when none occurs)",
      description: `Field delimiter: 1 to ${MAX_DELIMITER_BYTES} ASCII characters (DuckDB's limit is ${MAX_DELIMITER_BYTES} bytes), e.g. \`"::"\` for MovieLens \`.dat\` files; TAB is \`"\\t"\`. A delimiter of more than one character is never detected: set it.`,
      example: "::",
    },
    quote: { schema: { type: "string", length: 1 }, default: SPEC_DEFAULTS.quote, description: "Quote character (one ASCII character); a quote inside a quoted value is written twice unless `escape` is set.", example: "'" },
    escape: {
      schema: { type: "string", length: 1 },
      defaultText: "the quote (a quote inside quotes is written twice)",
      description: "Escape character (one ASCII character) inside quoted values: the character after it is taken literally, e.g. `\"\\\\\"` for `\"say \\\"hi\\\"\"`.",
      example: "\\",
    },
    encoding: {
      schema: { type: "string", enum: CSV_ENCODINGS },
      default: SPEC_DEFAULTS.encoding,
      description:
        "Text encoding of the file: `utf-8`, `latin-1` (ISO-8859-1, e.g. the MovieLens 1M `.dat` files) or `utf-16` (little-endian, with or without a byte-order mark). " +
        "The file is checked before it is read: a file that is not valid in its encoding (e.g. Latin-1 text read as UTF-8) fails at once, naming the file and line.",
      example: "latin-1",
    },
    nullStrings: {
      schema: { type: "list", items: { type: "string", allowEmpty: true } },
      default: SPEC_DEFAULTS.nullStrings,
      description: "Values read as NULL (compared after trimming when `trim` is on). The list replaces the default: include `\"\"` to keep empty fields NULL.",
      example: ["", "?", "NA"],
    },
    trim: {
      schema: { type: "boolean" },
      default: false,
      description:
        "Remove leading and trailing spaces from text values (and compare `nullStrings` after trimming). Off by default: `a, b` gives the value `\" b\"`. " +
        "Text columns whose trimmed values are all integers (or all numbers) become INTEGER (DOUBLE) columns. Header names are used as written.",
      example: true,
    },
  },
  rules: [
    "`columns` is required when `header` is false and not allowed otherwise; its names must be distinct.",
    `\`delimiter\`, \`quote\` and \`escape\` are printable ASCII (TAB allowed in \`delimiter\`), never a line break; \`delimiter\` is 1 to ${MAX_DELIMITER_BYTES} characters and holds neither the quote nor the escape character.`,
  ],
  check(o, path) {
    if (o.header === false && o.columns === undefined) specFail(`${path}.columns`, "is required when header is false (the names of the columns, in file order)");
    if (o.header !== false && o.columns !== undefined) specFail(`${path}.columns`, "is only allowed with header: false (a file with a header row names its columns)");
    if (Array.isArray(o.columns)) {
      const seen = new Set<string>();
      for (const c of o.columns as string[]) {
        if (seen.has(c)) specFail(`${path}.columns`, `names the column "${c}" twice`);
        seen.add(c);
      }
    }
    const d = o.delimiter as string | undefined;
    const q = (o.quote as string | undefined) ?? SPEC_DEFAULTS.quote;
    const esc = o.escape as string | undefined;
    for (const [k, v] of [
      ["delimiter", d],
      ["quote", o.quote as string | undefined],
      ["escape", esc],
    ] as const) {
      if (v === undefined) continue;
      if (/[\r\n]/.test(v)) specFail(`${path}.${k}`, "must not be or hold a line break");
      for (const ch of v) {
        if (!(ch === "\t" && k === "delimiter") && !/^[\x20-\x7e]$/.test(ch)) specFail(`${path}.${k}`, `must be printable ASCII${k === "delimiter" ? " (or TAB)" : ""}; got ${JSON.stringify(v)} (the character ${JSON.stringify(ch)})`);
      }
    }
    if (d !== undefined && (d.length < 1 || d.length > MAX_DELIMITER_BYTES)) specFail(`${path}.delimiter`, `must be 1 to ${MAX_DELIMITER_BYTES} characters (DuckDB reads delimiters of at most ${MAX_DELIMITER_BYTES} bytes); got ${d.length}: ${JSON.stringify(d.slice(0, 40))}`);
    if (d !== undefined && d === q) specFail(path, `uses ${JSON.stringify(d)} as both delimiter and quote`);
    if (d !== undefined && d.includes(q)) specFail(`${path}.delimiter`, `must not hold the quote character ${JSON.stringify(q)} (got ${JSON.stringify(d)})`);
    if (d !== undefined && esc !== undefined && d.includes(esc)) specFail(`${path}.delimiter`, `must not hold the escape character ${JSON.stringify(esc)} (got ${JSON.stringify(d)})`);
  },
};

const CATEGORICAL_SCHEMA: ObjectSchema = {
  type: "object",
  title: "Categorical field",
  anchor: "categorical",
  description:
    "An entry of `$.categorical` (a plain string is `{ \"name\": s }`). Each distinct training value gets an id 1..V (most frequent first, ties by value); values unseen in train, seen fewer than `minCount` times, or NULL map to 0. " +
    "With `separator` the field is multi-valued: the value is split into items (each trimmed of spaces; empty items dropped), the first `maxLen` items are kept, each item gets an id as above (counted per item), and the model sees the `pooling` of the items' embeddings; a NULL or empty list is the single id 0.",
  props: {
    ...columnProps("field"),
    separator: { schema: str(), defaultText: "none (single-valued)", description: "Item separator of a multi-valued field.", example: "," },
    maxLen: {
      schema: { type: "integer", min: 1, max: 256 },
      default: SPEC_DEFAULTS.maxLen,
      description: "Items kept per row (the first `maxLen`; longer lists are cut and the prepare warns with the count).",
      example: 4,
    },
    pooling: { schema: { type: "string", enum: ["mean", "sum"] }, default: SPEC_DEFAULTS.pooling, description: "Combination of the items' embeddings.", example: "sum" },
  },
  rules: ["`column` and `expr` exclude each other.", "`maxLen` and `pooling` need `separator`."],
  check(o, path) {
    exclusiveColumnExpr(o, path);
    for (const k of ["maxLen", "pooling"]) if (o[k] !== undefined && o.separator === undefined) specFail(`${path}.${k}`, "only applies to a multi-valued field (set separator)");
  },
};

const NUMERIC_SCHEMA: ObjectSchema = {
  type: "object",
  title: "Numeric (bucketised) field",
  anchor: "numeric",
  description:
    "An entry of `$.numeric` (a plain string is `{ \"name\": s }`): a number cut into buckets fitted on the training split, then embedded like a categorical field. " +
    "Point masses first: every value holding at least `pointMass` of the non-missing training rows (such as the 0 of a mostly-zero column) gets a bucket of its own (ids 1..k in value order). " +
    "The other values are cut at the quantiles `quantile_disc` at 1/R .. (R-1)/R of the training rows that are not point masses, R = max(2, buckets - k), duplicates removed: " +
    "x gets id k + 1 + #{boundaries <= x}. NULL and NaN get id 0. A field whose training rows fall into fewer than 2 buckets carries no signal: the prepare warns.",
  props: {
    ...columnProps("field"),
    buckets: { schema: { type: "integer", min: 2, max: 1000 }, default: SPEC_DEFAULTS.buckets, description: "Number of buckets (point masses included).", example: 20 },
    pointMass: {
      schema: { type: "number", min: 0, max: 1, minExclusive: true },
      defaultText: "1 / `buckets`",
      description: "Share of the non-missing training rows from which one value gets its own bucket; 1 turns point masses off (unless one value fills every row).",
      example: 0.05,
    },
  },
  rules: ["`column` and `expr` exclude each other."],
  check: exclusiveColumnExpr,
};

const DENSE_SCHEMA: ObjectSchema = {
  type: "object",
  title: "Dense numeric input",
  anchor: "dense",
  description:
    "An entry of `$.dense` (a plain string is `{ \"name\": s }`): a number given to the models as a standardised input column next to the embeddings: (f(x) - mean) / std with f = log(1 + x) when `log1p` is on, else x; " +
    "mean and std (population) are fitted on the training split only and saved in the manifest (`dense`). NULL, NaN and infinite values become 0 (the training mean). A constant column (std 0) uses std 1 and the prepare warns.",
  props: {
    ...columnProps("input"),
    log1p: { schema: { type: "boolean" }, default: false, description: "Standardise log(1 + x) (for heavy-tailed counts and amounts; values <= -1 are an error).", example: true },
  },
  rules: ["`column` and `expr` exclude each other."],
  check: exclusiveColumnExpr,
};

const JOIN_ON_SCHEMA: ObjectSchema = {
  type: "object",
  title: "Join key pair",
  anchor: "join-on",
  description: "`$.joins[i].on` when the key column has different names in the log and the side table.",
  props: {
    left: { schema: str(), required: true, description: "Key column of the log.", example: "video_id" },
    right: { schema: str(), required: true, description: "Key column of the side table.", example: "id" },
  },
};

const JOIN_SCHEMA: ObjectSchema = {
  type: "object",
  title: "Side table",
  anchor: "joins",
  description: "An entry of `$.joins`: a table LEFT JOINed to the log on a key (the key must be unique in the side table); its `columns` become source columns.",
  props: {
    path: { schema: str(), required: true, description: "Side table file (CSV, CSV.gz or Parquet).", example: "items.parquet" },
    on: { schema: { type: "anyOf", options: [str(), JOIN_ON_SCHEMA] }, required: true, description: "Join key: one name for both, or `{left, right}`.", example: "item_id" },
    columns: { schema: strList(), required: true, description: "Side-table columns brought in.", example: ["author", "length"] },
    prefix: { schema: { type: "string", allowEmpty: true }, default: "", description: "Prefix added to the brought-in column names (to avoid clashes with log columns).", example: "item_" },
    csv: { schema: CSV_SCHEMA, defaultText: "`{}` (the CSV defaults; `$.csv` does not apply here)", description: "How this side table is parsed when it is a CSV file.", example: { trim: true } },
  },
};

const taskName = (): Prop => ({ schema: { type: "string", pattern: NAME_RE, patternText: "an identifier" }, required: true, description: "Task name (an identifier, unique).", example: "click" });
const kindProp = (v: string): Prop => ({ schema: { type: "string", enum: [v] }, required: true, description: "Task kind.", example: v });

function task(kind: string, title: string, description: string, props: Record<string, Prop>): ObjectSchema {
  return { type: "object", title: `Task \`${kind}\``, anchor: `task-${kind}`, tagValue: kind, description: `${title}. ${description}`, props: { name: taskName(), kind: kindProp(kind), ...props } };
}

const watch: Prop = { schema: str(), required: true, description: "Watch-time column (a number >= 0; missing, NaN or negative values are an error).", example: "play_time_ms" };

const TASK_SCHEMA: Schema = {
  type: "tagged",
  tag: "kind",
  variants: [
    task("column", "A binary column", "Values 0/1 or booleans; anything else is an error.", { column: { schema: str(), required: true, description: "Label column.", example: "is_like" } }),
    task("ev", "Effective view", "1 when watch time is strictly above the training split's median (threshold saved in the manifest).", { watch }),
    task("lv", "Long view", "1 when watch time is strictly above the training split's 75th percentile.", { watch }),
    task("quantile", "Watch-time quantile", "1 when watch time is strictly above the training split's q-quantile.", {
      watch,
      q: { schema: { type: "number", min: 0, max: 1 }, required: true, description: "Quantile.", example: 0.9 },
    }),
    task("cv", "Complete view", "1 when watch >= duration * durationScale; a missing duration gives 0 (the prepare warns with the count).", {
      watch,
      duration: { schema: str(), required: true, description: "Duration column.", example: "duration_ms" },
      durationScale: { schema: { type: "number", min: 1e-12, max: 1e12 }, default: 1, description: "Multiplies the duration (1000 when duration is in seconds and watch time in ms).", example: 1000 },
    }),
    task("sql", "SQL condition", "A boolean expression over the source columns (same sandbox as field expressions); NULL counts as 0.", {
      expr: { schema: str(), required: true, description: "Boolean SQL expression.", example: "clicked = 1 AND watch_ms > 30000" },
    }),
  ],
};

const range = (example: unknown): Prop => ({
  schema: { type: "list", items: { type: "anyOf", options: [{ type: "number" }, str()] }, minItems: 2, maxItems: 2 },
  required: true,
  description: "Inclusive range [from, to] (numbers, or date strings compared as text; from <= to).",
  example,
});

const seedProp = (required: boolean): Prop => ({ schema: { type: "integer", min: 0, max: 2 ** 31 }, ...(required ? { required: true } : { default: 0 }), description: "Seed of the split hash.", example: 42 });

const SPLIT_NAMES = ["train", "val", "test"] as const;

const DATE_SPLIT: ObjectSchema = {
  type: "object",
  title: "Split `date`",
  anchor: "split-date",
  tagValue: "date",
  description: "Rows go to the split whose inclusive range holds their date column; rows outside every range are dropped (counted in the manifest as `droppedRows`).",
  props: {
    kind: { schema: { type: "string", enum: ["date"] }, required: true, description: "Split kind.", example: "date" },
    column: { schema: str(), required: true, description: "Date column (integers like 20220425, day numbers, or dates).", example: "date" },
    train: range([20220425, 20220503]),
    val: range([20220504, 20220505]),
    test: range([20220506, 20220508]),
  },
  rules: ["Each range has from <= to, and the three ranges must not overlap.", "All ranges are numbers or all are strings."],
  check(s) {
    for (const k of SPLIT_NAMES) {
      const x = s[k] as [number | string, number | string];
      if (typeof x[0] !== typeof x[1]) specFail(`$.split.${k}`, "mixes a number and a string");
      if (x[0] > x[1]) specFail(`$.split.${k}`, `is reversed (from ${JSON.stringify(x[0])} is after to ${JSON.stringify(x[1])})`);
    }
    disjointRanges(s);
  },
};

const FRACTION_SPLIT: ObjectSchema = {
  type: "object",
  title: "Split `fraction`",
  anchor: "split-fraction",
  tagValue: "fraction",
  description:
    "Rows are assigned by a documented hash of a key (the `by` column, or the row's 0-based position in the log) that plain SQL reproduces: " +
    "h = the first 8 hex digits of md5(`<seed>:<key as text>`) as an integer in [0, 2^32); train when h < round(train * 2^32), val when h < round((train + val) * 2^32), else test. " +
    "See data/README.md (Splits) for the SQL; the manifest records the two thresholds (`split`).",
  props: {
    kind: { schema: { type: "string", enum: ["fraction"] }, required: true, description: "Split kind.", example: "fraction" },
    train: { schema: { type: "number", min: 0, max: 1 }, required: true, description: "Share of the keys in train.", example: 0.8 },
    val: { schema: { type: "number", min: 0, max: 1 }, required: true, description: "Share in val; 0 leaves the val split empty (then train without early stopping: `--patience 0`).", example: 0.1 },
    test: { schema: { type: "number", min: 0, max: 1 }, required: true, description: "Share in test.", example: 0.1 },
    seed: seedProp(true),
    by: { schema: str(), defaultText: "the row position", description: "Key column: all rows with one value go to one split (e.g. the user id, so no user appears in two splits).", example: "user_id" },
  },
  rules: ["train + val + test = 1."],
  check(s) {
    const tot = (s.train as number) + (s.val as number) + (s.test as number);
    if (Math.abs(tot - 1) > 1e-9) specFail("$.split", `fractions must sum to 1 (got ${tot})`);
  },
};

const FILES_SPLIT: ObjectSchema = {
  type: "object",
  title: "Split `files`",
  anchor: "split-files",
  tagValue: "files",
  description:
    "Pre-split data: one file (or list) per split, read with `$.csv`. Without `val` files, `valFraction` of the train files' rows become the val split, by the hash of the `fraction` split with the key = the row's 0-based position in the train files.",
  props: {
    kind: { schema: { type: "string", enum: ["files"] }, required: true, description: "Split kind.", example: "files" },
    train: { schema: strOrList(), required: true, description: "Training file(s).", example: "train.csv" },
    val: { schema: strOrList(), requiredWhen: "unless `valFraction` is set", description: "Validation file(s).", example: "val.csv" },
    test: { schema: strOrList(), required: true, description: "Test file(s).", example: ["test-1.csv", "test-2.csv"] },
    valFraction: { schema: { type: "number", min: 1e-9, max: 1 - 1e-9 }, requiredWhen: "unless `val` is set", description: "Share of the train files' rows that become val.", example: 0.1 },
    seed: seedProp(false),
  },
  rules: ["Exactly one of `val` and `valFraction`.", "`$.log` must be absent (the split lists the files)."],
  check(s) {
    if (s.val !== undefined && s.valFraction !== undefined) specFail("$.split", "has both val files and valFraction");
    if (s.val === undefined && s.valFraction === undefined) specFail("$.split", "needs val files or a valFraction of the train files");
  },
};

const TIME_FRACTION_SPLIT: ObjectSchema = {
  type: "object",
  title: "Split `time-fraction`",
  anchor: "split-time-fraction",
  tagValue: "time-fraction",
  description:
    "The last rows by time are the test split and the rows just before them the val split, computed in SQL: with n the number of rows whose `column` is not NULL, " +
    "k_test = round(n * test) and k_val = round(n * val), and the rows ordered by `column` ascending, test holds every row whose value is >= the value at 0-based position n - k_test, " +
    "val every other row whose value is >= the value at position n - k_test - k_val, train the rest. " +
    "Ties: all rows that share a boundary value go to the later split (no time value is in two splits), so with ties at a boundary the later split is larger than its share; with distinct values the splits hold exactly k_test and k_val rows. " +
    "The result depends only on the values, not on the order of the rows in the file. Rows whose value is NULL are in no split (dropped, counted in the manifest as `droppedRows`). " +
    "The manifest records where val and test start (`splitBoundaries`).",
  props: {
    kind: { schema: { type: "string", enum: ["time-fraction"] }, required: true, description: "Split kind.", example: "time-fraction" },
    column: { schema: str(), required: true, description: "Time column: a number (e.g. Unix seconds), DATE or TIMESTAMP column of the log or a joined table.", example: "timestamp" },
    val: { schema: { type: "number", min: 0, max: 1, minExclusive: true }, required: true, description: "Share of the rows in val (the rows just before test).", example: 0.1 },
    test: { schema: { type: "number", min: 0, max: 1, minExclusive: true }, required: true, description: "Share of the rows in test (the last ones).", example: 0.1 },
  },
  rules: ["0 < val, 0 < test and val + test < 1."],
  check(s) {
    const tot = (s.val as number) + (s.test as number);
    if (!(tot < 1)) specFail("$.split", `val + test must be below 1 so that train keeps some rows (got ${tot})`);
  },
};

function disjointRanges(s: Record<string, unknown>): void {
  for (let a = 0; a < 3; a++) {
    for (let b = a + 1; b < 3; b++) {
      const na = SPLIT_NAMES[a] as string;
      const nb = SPLIT_NAMES[b] as string;
      const ra = s[na] as [number | string, number | string];
      const rb = s[nb] as [number | string, number | string];
      if (typeof ra[0] !== typeof rb[0]) specFail("$.split", `mixes number and string ranges (${na} and ${nb})`);
      if (ra[0] <= rb[1] && rb[0] <= ra[1]) {
        const lo = ra[0] > rb[0] ? ra[0] : rb[0];
        const hi = ra[1] < rb[1] ? ra[1] : rb[1];
        specFail(
          "$.split",
          `ranges ${na} [${JSON.stringify(ra[0])}, ${JSON.stringify(ra[1])}] and ${nb} [${JSON.stringify(rb[0])}, ${JSON.stringify(rb[1])}] overlap on [${JSON.stringify(lo)}, ${JSON.stringify(hi)}]; each row must belong to one split`,
        );
      }
    }
  }
}

const fieldList = (o: ObjectSchema): Schema => ({ type: "list", items: { type: "anyOf", options: [str(), o] } });

/** The dataset spec's schema (root object `$`). */
export const SPEC_SCHEMA: ObjectSchema = {
  type: "object",
  title: "Dataset spec (`$`)",
  anchor: "spec",
  description: "The top-level object of a spec file.",
  props: {
    $schema: { schema: str(), defaultText: "none", description: "Ignored (lets editors attach a JSON Schema).", example: "./spec.schema.json" },
    description: { schema: { type: "string", allowEmpty: true }, defaultText: "none", description: "Free text, ignored.", example: "My logs, 2024-01" },
    name: {
      schema: { type: "string", pattern: /^[A-Za-z0-9_.-]+$/, patternText: "letters, digits, '_', '.', '-'" },
      required: true,
      description: "Dataset name (the cache folder is `<name>-<hash>`).",
      example: "mydata",
    },
    dataDir: { schema: str(), defaultText: "the spec file's folder", description: "Folder relative input paths are resolved against (itself relative to the spec file; the `--source` option overrides it).", example: "raw" },
    log: { schema: strOrList(), requiredWhen: "unless `split.kind` is `\"files\"`", description: "Interaction log file(s): CSV, CSV.gz or Parquet, read as one table in the order listed.", example: ["log-1.csv.gz", "log-2.csv.gz"] },
    csv: { schema: CSV_SCHEMA, defaultText: "`{}` (header row, delimiter detected, `\"` quotes, empty = NULL, spaces kept)", description: "How the log's (and per-split files') CSV inputs are parsed.", example: { header: false, columns: ["user", "item", "clicked"], trim: true } },
    joins: { schema: { type: "list", items: JOIN_SCHEMA }, default: [], description: "Side tables joined to the log.", example: [{ path: "items.csv", on: "item_id", columns: ["author"] }] },
    userColumn: { schema: str(), defaultText: "none", description: "User column (only counted per split in the manifest).", example: "user_id" },
    itemColumn: { schema: str(), defaultText: "none", description: "Item column (only counted per split in the manifest).", example: "item_id" },
    groupColumn: { schema: str(), defaultText: "none: one group", description: "Column grouping rows for GAUC (usually the user id); group ids come from all splits (an evaluation key, not a feature).", example: "user_id" },
    categorical: { schema: fieldList(CATEGORICAL_SCHEMA), required: true, description: "Categorical fields, single- or multi-valued (a string is a column name).", example: ["user_id", { name: "tags", column: "tag", separator: ",", maxLen: 4 }] },
    numeric: { schema: fieldList(NUMERIC_SCHEMA), default: [], description: "Bucketised numeric fields (a string is a column name).", example: [{ name: "length_b", column: "length", buckets: 10 }] },
    dense: { schema: fieldList(DENSE_SCHEMA), default: [], description: "Standardised numeric inputs (a string is a column name).", example: [{ name: "income_z", column: "income", log1p: true }] },
    tasks: { schema: { type: "list", items: TASK_SCHEMA, minItems: 1 }, required: true, description: "Binary tasks (labels).", example: [{ name: "click", kind: "column", column: "clicked" }] },
    split: { schema: { type: "tagged", tag: "kind", variants: [DATE_SPLIT, FRACTION_SPLIT, FILES_SPLIT, TIME_FRACTION_SPLIT] }, required: true, description: "How rows are split into train / val / test.", example: { kind: "fraction", train: 0.8, val: 0.1, test: 0.1, seed: 1, by: "user_id" } },
    minCount: { schema: { type: "integer", min: 1, max: 1e9 }, default: 1, description: "Categorical values (and items) seen fewer times than this in train map to id 0.", example: 5 },
    singleClassLabels: { schema: { type: "string", enum: ["error", "warn"] }, default: "error", description: "What a label that is all 0 or all 1 in train does.", example: "warn" },
    timezone: {
      schema: { type: "string", pattern: TIMEZONE_RE, patternText: 'an IANA time zone name such as "Asia/Shanghai"' },
      default: DEFAULT_TIMEZONE,
      description:
        "Time zone in which every SQL expression of the spec (field, dense and task `expr`, date-split ranges, casts) is evaluated, when preparing and when scoring: `hour(to_timestamp(ts))`, `dayofweek(...)`, `strftime(...)` and casts between TIMESTAMP and TIMESTAMPTZ give the local time of this zone (the calendar is always Gregorian). " +
        "Without the key they give UTC, whatever the machine's zone (`TZ`) or locale. The zone is part of the dataset's content hash (another zone is another cache folder; a spec without the key keeps the hash it had before the key existed).",
      example: "Asia/Shanghai",
    },
  },
  rules: [
    "`log` is required unless `split.kind` is `\"files\"`, and must be absent then.",
    "Field names (categorical, numeric and dense together) and task names are unique; at least one categorical or numeric field.",
    "`timezone` must be a zone of the IANA time zone database (aliases such as `\"US/Eastern\"` included).",
  ],
  check(x) {
    const split = x.split as { kind: string };
    if (split.kind === "files" && x.log !== undefined) specFail("$.log", 'must be absent when split.kind is "files" (the split lists the files)');
    if (split.kind !== "files" && x.log === undefined) specFail("$.log", 'is required unless split.kind is "files"');
    const spec = x as unknown as DatasetSpec;
    const seen = new Set<string>();
    for (const f of [...spec.categorical, ...(spec.numeric ?? []), ...(spec.dense ?? [])]) {
      const n = typeof f === "string" ? f : f.name;
      if (seen.has(n)) specFail("$", `declares the field "${n}" twice`);
      seen.add(n);
    }
    const tseen = new Set<string>();
    for (const t of spec.tasks) {
      if (tseen.has(t.name)) specFail("$.tasks", `declares the task "${t.name}" twice`);
      tseen.add(t.name);
    }
    if (spec.categorical.length + (spec.numeric?.length ?? 0) === 0) specFail("$", "declares no feature fields (categorical/numeric)");
    if (typeof spec.timezone === "string" && knownTimeZone(spec.timezone)) {
      // one spelling per zone, so one zone never gets two content hashes ("asia/shanghai" and "Asia/Shanghai")
      const canon = new Intl.DateTimeFormat("en-US", { timeZone: spec.timezone }).resolvedOptions().timeZone;
      if (canon !== spec.timezone && canon.toLowerCase() === spec.timezone.toLowerCase()) specFail("$.timezone", `must be spelt as the IANA database does: ${JSON.stringify(canon)} (got ${JSON.stringify(spec.timezone)})`);
    }
    if (typeof spec.timezone === "string" && !knownTimeZone(spec.timezone)) specFail("$.timezone", `is not a known IANA time zone (got ${JSON.stringify(spec.timezone)})${didYouMean(spec.timezone, timeZoneNames())}`);
  },
};

/** Checks `x` against the spec schema; throws DataError naming the offending JSON path. */
export function validateSpec(x: unknown): DatasetSpec {
  validateAgainst(SPEC_SCHEMA, x, "$");
  return x as DatasetSpec;
}

// ---- normalised fields -----------------------------------------------------------------------

/** Normalised field description (an embedding field: categorical, multi-valued or bucketised numeric). */
export interface FieldDef {
  name: string;
  kind: "categorical" | "numeric";
  /** SQL of a plain column (quoted); for an `expr` field it is empty until the expression is checked and compiled. */
  sql: string;
  /** Source column when the field is a plain column. */
  column?: string;
  /** The user's expression (unchecked text; never spliced into SQL, see expr.ts). */
  expr?: string;
  /** Spec key of the field, e.g. `$.categorical[3]`. */
  key: string;
  buckets?: number;
  /** Point-mass share (numeric fields). */
  pointMass?: number;
  /** Multi-valued categorical field. */
  multi?: { separator: string; maxLen: number; pooling: "mean" | "sum" };
}

/** Normalised dense input. */
export interface DenseDef {
  name: string;
  sql: string;
  column?: string;
  expr?: string;
  key: string;
  log1p: boolean;
}

export function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

export function quoteStr(s: string): string {
  return `'${s.replace(/'/g, "''")}'`;
}

function source(f: string | ColumnRef): { name: string; sql: string; column?: string; expr?: string } {
  if (typeof f === "string") return { name: f, sql: quoteIdent(f), column: f };
  const col = f.expr === undefined ? (f.column ?? f.name) : undefined;
  return col !== undefined ? { name: f.name, sql: quoteIdent(col), column: col } : { name: f.name, sql: "", expr: f.expr };
}

/** The embedding fields in order: categorical (single- and multi-valued), then numeric. */
export function fieldDefs(spec: DatasetSpec): FieldDef[] {
  const out: FieldDef[] = [];
  spec.categorical.forEach((f, i) => {
    const d: FieldDef = { ...source(f), kind: "categorical", key: `$.categorical[${i}]` };
    if (typeof f !== "string" && f.separator !== undefined) d.multi = { separator: f.separator, maxLen: f.maxLen ?? SPEC_DEFAULTS.maxLen, pooling: f.pooling ?? SPEC_DEFAULTS.pooling };
    out.push(d);
  });
  (spec.numeric ?? []).forEach((f, i) => {
    const buckets = (typeof f === "string" ? undefined : f.buckets) ?? SPEC_DEFAULTS.buckets;
    const pointMass = (typeof f === "string" ? undefined : f.pointMass) ?? 1 / buckets;
    out.push({ ...source(f), kind: "numeric", key: `$.numeric[${i}]`, buckets, pointMass });
  });
  return out;
}

/** The dense inputs in order. */
export function denseDefs(spec: DatasetSpec): DenseDef[] {
  return (spec.dense ?? []).map((f, i) => ({ ...source(f), key: `$.dense[${i}]`, log1p: typeof f === "string" ? false : (f.log1p ?? false) }));
}

/**
 * SQL (DuckDB) of the split hash of a key expression: the first 8 hex digits of
 * md5('<seed>:' || key as text) as an integer in [0, 2^32). A NULL key hashes as ''.
 * The split is train when h < t1, val when h < t2, else test (see splitThresholds).
 */
export function splitHashSql(keySql: string, seed: number): string {
  return `('0x' || left(md5(${quoteStr(`${seed}:`)} || COALESCE(CAST(${keySql} AS VARCHAR), '')), 8))::UBIGINT`;
}

/** The two thresholds of the hash split: [round(train * 2^32), round((train + val) * 2^32)], clamped to [0, 2^32]. */
export function splitThresholds(train: number, val: number): [number, number] {
  const clamp = (x: number): number => Math.min(2 ** 32, Math.max(0, Math.round(x * 2 ** 32)));
  return [clamp(train), clamp(train + val)];
}
