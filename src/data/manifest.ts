/**
 * What a prepared dataset is: the manifest format (`Manifest` and its parts, FORMAT_VERSION) and
 * the dataset's identity (its input files, the content hash of spec + inputs, and whether a cache
 * depends on the session's time zone).
 *
 * Cache layout (`<cacheDir>/<name>-<hash16>/`, written by prepare.ts):
 *   manifest.json                  see `Manifest`
 *   <split>/field_<i>.i32          int32 little-endian ids of field i of manifest.fields: one per row, or for a
 *                                  multi-valued field maxLen per row (row-major; the row's item ids first,
 *                                  then -1 padding; at least one id per row, 0 for a NULL or empty list)
 *   <split>/dense_<j>.f32          float32 little-endian standardised values of dense input j, one per row
 *   <split>/label_<t>.u8           uint8 0/1 labels (task t of manifest.tasks)
 *   <split>/group.i32              int32 group ids (GAUC); 1..numGroups, 0 when the group value is NULL
 *   vocab/field_<i>.json           vocabulary of categorical field i: values[k] (as text) has id k + 1
 *   side_<i>.parquet               side table i as read (key `__key`, then the joined columns)
 * Rows keep the log's order within each split.
 */
import { createHash } from "node:crypto";
import { closeSync, existsSync, openSync, readSync, statSync } from "node:fs";
import { basename, isAbsolute, resolve } from "node:path";
import type { SplitName } from "./types.ts";
import { DataError } from "./errors.ts";
import { specTimeZone, type DatasetSpec, type TaskSpec } from "./spec.ts";

/** Size and CRC32 of one file of a prepared cache (recorded in the manifest, checked when the cache is opened). */
export interface CacheFile {
  bytes: number;
  crc32: number;
}

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
  /** Time-fraction split: the time values (as DuckDB writes them as text) where val and test begin; null when that split is empty. */
  splitBoundaries?: { val: string | null; test: string | null };
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

export function listOf(x: string | string[] | undefined): string[] {
  return x === undefined ? [] : Array.isArray(x) ? x : [x];
}

export function abs(base: string, p: string): string {
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
