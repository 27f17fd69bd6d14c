/**
 * Dataset spec: what to read, which columns become fields, how labels are derived and how
 * rows are split. A spec is a plain JSON object (a `.json` file, or the same object in code),
 * checked by `validateSpec` (hand-written schema check: every error names the JSON path).
 *
 * Paths in `log`, `joins[].path` and `split.train|val|test` (per-split files) are resolved
 * against, in order: the `dataDir` prepare option, the spec's own `dataDir` (itself relative to
 * the spec file), the spec file's folder, the current directory.
 *
 * Numeric columns are bucketised: quantile boundaries (`quantile_disc` at 1/B .. (B-1)/B,
 * duplicates removed) are fitted on the training split; a value x gets id 1 + #{boundaries <= x},
 * and NULL/NaN gets id 0. The bucket becomes an ordinary categorical field.
 */
import { DataError } from "./errors.ts";

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

export interface NumericRef extends ColumnRef {
  /** Number of quantile buckets (default 10). */
  buckets?: number;
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
  /** Random split by fractions, deterministic from `seed`; `by` keeps all rows of one value together. */
  | { kind: "fraction"; train: number; val: number; test: number; seed: number; by?: string }
  /**
   * Pre-split data: one file (or list) per split. Without `val` files, a `valFraction` of the
   * train files' rows (chosen by a hash of the row position and `seed`) becomes the val split.
   */
  | { kind: "files"; train: string | string[]; val?: string | string[]; test: string | string[]; valFraction?: number; seed?: number };

export interface DatasetSpec {
  name: string;
  /** Folder that relative source paths are resolved against (relative to the spec file). */
  dataDir?: string;
  /** Interaction log file(s). Not used when split.kind is "files". */
  log?: string | string[];
  joins?: JoinSpec[];
  userColumn?: string;
  itemColumn?: string;
  /** Column grouping rows for GAUC (usually the user id). Absent: one group for all rows. */
  groupColumn?: string;
  categorical: (string | ColumnRef)[];
  numeric?: (string | NumericRef)[];
  tasks: TaskSpec[];
  split: SplitSpec;
  /** Ids seen fewer than this many times in train map to OOV 0 (default 1). */
  minCount?: number;
  /** What to do when a label has a single class in train: "error" (default) or "warn". */
  singleClassLabels?: "error" | "warn";
}

const NAME_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;

function fail(path: string, msg: string): never {
  throw new DataError(`invalid dataset spec: ${path} ${msg}`);
}

function isObj(x: unknown): x is Record<string, unknown> {
  return typeof x === "object" && x !== null && !Array.isArray(x);
}

function str(x: unknown, path: string): string {
  if (typeof x !== "string" || x.length === 0) fail(path, "must be a non-empty string");
  return x;
}

function strOrList(x: unknown, path: string): void {
  if (Array.isArray(x)) {
    if (x.length === 0) fail(path, "must not be an empty list");
    x.forEach((v, i) => str(v, `${path}[${i}]`));
  } else str(x, path);
}

function num(x: unknown, path: string, min: number, max: number): number {
  if (typeof x !== "number" || !Number.isFinite(x) || x < min || x > max) fail(path, `must be a number in [${min}, ${max}]`);
  return x;
}

function onlyKeys(o: Record<string, unknown>, keys: string[], path: string): void {
  for (const k of Object.keys(o)) if (!keys.includes(k)) fail(`${path}.${k}`, `is not a known key (known: ${keys.join(", ")})`);
}

function columnRef(x: unknown, path: string, numeric: boolean): void {
  if (typeof x === "string") return void str(x, path);
  if (!isObj(x)) fail(path, "must be a column name or {name, column?, expr?}");
  onlyKeys(x, numeric ? ["name", "column", "expr", "buckets"] : ["name", "column", "expr"], path);
  str(x.name, `${path}.name`);
  if (x.column !== undefined) str(x.column, `${path}.column`);
  if (x.expr !== undefined) str(x.expr, `${path}.expr`);
  if (x.column !== undefined && x.expr !== undefined) fail(path, "has both column and expr");
  if (x.buckets !== undefined) num(x.buckets, `${path}.buckets`, 2, 1000);
}

function range(x: unknown, path: string): void {
  if (!Array.isArray(x) || x.length !== 2) fail(path, "must be [from, to]");
  for (let i = 0; i < 2; i++) {
    const v: unknown = x[i];
    if (typeof v === "number" ? !Number.isFinite(v) : typeof v !== "string" || v.length === 0) fail(`${path}[${i}]`, "must be a finite number or a date string");
  }
  if (typeof x[0] !== typeof x[1]) fail(path, "mixes a number and a string");
  if (x[0] > x[1]) fail(path, `is reversed (from ${JSON.stringify(x[0])} is after to ${JSON.stringify(x[1])})`);
}

/**
 * Date split ranges must not overlap: a row in two ranges would silently go to the first. Numbers
 * compare as numbers, strings as text (ISO dates and timestamps order correctly as text).
 */
function disjointRanges(s: Record<string, unknown>): void {
  const names = ["train", "val", "test"] as const;
  for (let a = 0; a < 3; a++) {
    for (let b = a + 1; b < 3; b++) {
      const ra = s[names[a] as string] as [number | string, number | string];
      const rb = s[names[b] as string] as [number | string, number | string];
      if (typeof ra[0] !== typeof rb[0]) fail("$.split", `mixes number and string ranges (${names[a]} and ${names[b]})`);
      if (ra[0] <= rb[1] && rb[0] <= ra[1]) {
        const lo = ra[0] > rb[0] ? ra[0] : rb[0];
        const hi = ra[1] < rb[1] ? ra[1] : rb[1];
        fail("$.split", `ranges ${names[a]} [${JSON.stringify(ra[0])}, ${JSON.stringify(ra[1])}] and ${names[b]} [${JSON.stringify(rb[0])}, ${JSON.stringify(rb[1])}] overlap on [${JSON.stringify(lo)}, ${JSON.stringify(hi)}]; each row must belong to one split`);
      }
    }
  }
}

/** Checks `x` against the spec schema; throws DataError naming the offending JSON path. */
export function validateSpec(x: unknown): DatasetSpec {
  if (!isObj(x)) fail("$", "must be an object");
  onlyKeys(
    x,
    ["$schema", "description", "name", "dataDir", "log", "joins", "userColumn", "itemColumn", "groupColumn", "categorical", "numeric", "tasks", "split", "minCount", "singleClassLabels"],
    "$",
  );
  const name = str(x.name, "$.name");
  if (!/^[A-Za-z0-9_.-]+$/.test(name)) fail("$.name", "may only contain letters, digits, '_', '.', '-'");
  if (x.dataDir !== undefined) str(x.dataDir, "$.dataDir");
  if (x.log !== undefined) strOrList(x.log, "$.log");
  if (x.joins !== undefined) {
    if (!Array.isArray(x.joins)) fail("$.joins", "must be a list");
    x.joins.forEach((j: unknown, i: number) => {
      const p = `$.joins[${i}]`;
      if (!isObj(j)) fail(p, "must be an object");
      onlyKeys(j, ["path", "on", "columns", "prefix"], p);
      str(j.path, `${p}.path`);
      if (isObj(j.on)) {
        str(j.on.left, `${p}.on.left`);
        str(j.on.right, `${p}.on.right`);
      } else str(j.on, `${p}.on`);
      if (!Array.isArray(j.columns) || j.columns.length === 0) fail(`${p}.columns`, "must be a non-empty list");
      j.columns.forEach((c: unknown, k: number) => str(c, `${p}.columns[${k}]`));
      if (j.prefix !== undefined && typeof j.prefix !== "string") fail(`${p}.prefix`, "must be a string");
    });
  }
  if (x.userColumn !== undefined) str(x.userColumn, "$.userColumn");
  if (x.itemColumn !== undefined) str(x.itemColumn, "$.itemColumn");
  if (x.groupColumn !== undefined) str(x.groupColumn, "$.groupColumn");
  if (!Array.isArray(x.categorical)) fail("$.categorical", "must be a list");
  x.categorical.forEach((c: unknown, i: number) => columnRef(c, `$.categorical[${i}]`, false));
  if (x.numeric !== undefined) {
    if (!Array.isArray(x.numeric)) fail("$.numeric", "must be a list");
    x.numeric.forEach((c: unknown, i: number) => columnRef(c, `$.numeric[${i}]`, true));
  }
  if (!Array.isArray(x.tasks) || x.tasks.length === 0) fail("$.tasks", "must be a non-empty list");
  x.tasks.forEach((t: unknown, i: number) => {
    const p = `$.tasks[${i}]`;
    if (!isObj(t)) fail(p, "must be an object");
    const tn = str(t.name, `${p}.name`);
    if (!NAME_RE.test(tn)) fail(`${p}.name`, "must be an identifier");
    switch (t.kind) {
      case "column":
        onlyKeys(t, ["name", "kind", "column"], p);
        str(t.column, `${p}.column`);
        break;
      case "ev":
      case "lv":
        onlyKeys(t, ["name", "kind", "watch"], p);
        str(t.watch, `${p}.watch`);
        break;
      case "quantile":
        onlyKeys(t, ["name", "kind", "watch", "q"], p);
        str(t.watch, `${p}.watch`);
        num(t.q, `${p}.q`, 0, 1);
        break;
      case "cv":
        onlyKeys(t, ["name", "kind", "watch", "duration", "durationScale"], p);
        str(t.watch, `${p}.watch`);
        str(t.duration, `${p}.duration`);
        if (t.durationScale !== undefined) num(t.durationScale, `${p}.durationScale`, 1e-12, 1e12);
        break;
      case "sql":
        onlyKeys(t, ["name", "kind", "expr"], p);
        str(t.expr, `${p}.expr`);
        break;
      default:
        fail(`${p}.kind`, `must be one of column, ev, lv, quantile, cv, sql (got ${JSON.stringify(t.kind)})`);
    }
  });
  const s = x.split;
  if (!isObj(s)) fail("$.split", "must be an object");
  switch (s.kind) {
    case "date":
      onlyKeys(s, ["kind", "column", "train", "val", "test"], "$.split");
      str(s.column, "$.split.column");
      for (const k of ["train", "val", "test"]) range(s[k], `$.split.${k}`);
      disjointRanges(s);
      break;
    case "fraction": {
      onlyKeys(s, ["kind", "train", "val", "test", "seed", "by"], "$.split");
      const tot = num(s.train, "$.split.train", 0, 1) + num(s.val, "$.split.val", 0, 1) + num(s.test, "$.split.test", 0, 1);
      if (Math.abs(tot - 1) > 1e-9) fail("$.split", `fractions must sum to 1 (got ${tot})`);
      num(s.seed, "$.split.seed", 0, 2 ** 31);
      if (s.by !== undefined) str(s.by, "$.split.by");
      break;
    }
    case "files":
      onlyKeys(s, ["kind", "train", "val", "test", "valFraction", "seed"], "$.split");
      for (const k of ["train", "test"]) strOrList(s[k], `$.split.${k}`);
      if (s.val !== undefined) {
        strOrList(s.val, "$.split.val");
        if (s.valFraction !== undefined) fail("$.split", "has both val files and valFraction");
      } else if (s.valFraction === undefined) fail("$.split", "needs val files or a valFraction of the train files");
      else num(s.valFraction, "$.split.valFraction", 1e-9, 1 - 1e-9);
      if (s.seed !== undefined) num(s.seed, "$.split.seed", 0, 2 ** 31);
      if (x.log !== undefined) fail("$.log", "must be absent when split.kind is \"files\" (the split lists the files)");
      break;
    default:
      fail("$.split.kind", `must be one of date, fraction, files (got ${JSON.stringify(s.kind)})`);
  }
  if (s.kind !== "files" && x.log === undefined) fail("$.log", "is required unless split.kind is \"files\"");
  if (x.minCount !== undefined) num(x.minCount, "$.minCount", 1, 1e9);
  if (x.singleClassLabels !== undefined && x.singleClassLabels !== "error" && x.singleClassLabels !== "warn") fail("$.singleClassLabels", "must be \"error\" or \"warn\"");

  const spec = x as unknown as DatasetSpec;
  const seen = new Set<string>();
  for (const f of [...spec.categorical, ...(spec.numeric ?? [])]) {
    const n = typeof f === "string" ? f : f.name;
    if (seen.has(n)) fail("$", `declares the field "${n}" twice`);
    seen.add(n);
  }
  const tseen = new Set<string>();
  for (const t of spec.tasks) {
    if (tseen.has(t.name)) fail("$.tasks", `declares the task "${t.name}" twice`);
    tseen.add(t.name);
  }
  if (seen.size === 0) fail("$", "declares no feature fields (categorical/numeric)");
  return spec;
}

/** Normalised field description. */
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
}

export function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

export function quoteStr(s: string): string {
  return `'${s.replace(/'/g, "''")}'`;
}

export function fieldDefs(spec: DatasetSpec): FieldDef[] {
  const out: FieldDef[] = [];
  const add = (f: string | NumericRef, kind: FieldDef["kind"], key: string): void => {
    if (typeof f === "string") out.push({ name: f, kind, sql: quoteIdent(f), column: f, key, ...(kind === "numeric" ? { buckets: 10 } : {}) });
    else {
      const col = f.expr === undefined ? (f.column ?? f.name) : undefined;
      out.push({
        name: f.name,
        kind,
        sql: col !== undefined ? quoteIdent(col) : "",
        key,
        ...(col !== undefined ? { column: col } : { expr: f.expr }),
        ...(kind === "numeric" ? { buckets: f.buckets ?? 10 } : {}),
      });
    }
  };
  spec.categorical.forEach((f, i) => add(f, "categorical", `$.categorical[${i}]`));
  (spec.numeric ?? []).forEach((f, i) => add(f, "numeric", `$.numeric[${i}]`));
  return out;
}
