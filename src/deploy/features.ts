/**
 * features.json: everything needed to turn a raw log row into the inputs of model.onnx, and to
 * read its outputs. Written by `mtlcraft export`, read by `loadModel`.
 *
 * - `fields[i]`: the field's ONNX input, its source (log column, side-table column or SQL
 *   expression), and its encoding: categorical `ids` (the canonical key of a value of the field's
 *   `valueType` -> id, `canonicalKey` in src/encoder.ts: `9` for an integer or a DOUBLE 9.0,
 *   `9.5` for a DECIMAL 9.50; everything else, including NULL, gets `oov` = 0), multi-valued lists (`multi`: separator, maxLen, -1 padding),
 *   numeric buckets (`pointMasses`, `boundaries`); `dense[j]` the mean and std of a dense input.
 * - `columns`: the training log's columns and their DuckDB types; `sides`: the side tables saved
 *   beside it (side_<i>.parquet) and the log column each is joined on.
 * - `tasks`: task names with their output names; `keys`: the columns `score` passes through.
 * - `dataset`: name, content hash, rows and label rates per split; `spec`: the dataset spec;
 *   `training`: the run's configuration (architecture, options, method, seed, ...).
 */
import { readFileSync } from "node:fs";
import { DataError } from "../data/errors.ts";
import type { FeatureEncoding } from "../data/encode.ts";
import type { Manifest } from "../data/manifest.ts";
import type { SplitName } from "../data/types.ts";
import { FEATURES_SCHEMA, validateFile } from "./model-schema.ts";
import { canonicalKey } from "../encoder.ts";

export const FEATURES_FORMAT = "mtlcraft-features";
export const FEATURES_VERSION = 1;

export interface FeaturesTask {
  name: string;
  /** The model.onnx output holding the task's probability (float32 [batch]). */
  output: string;
  kind: string;
  /** Watch-time threshold of ev / lv / quantile tasks (fitted on train). */
  threshold?: number;
}

export interface FeaturesFile extends FeatureEncoding {
  format: typeof FEATURES_FORMAT;
  version: number;
  dataset: {
    name: string;
    /** Content hash of spec + input files of the prepared dataset the model was trained on. */
    hash: string;
    rows: Record<SplitName, number>;
    labelRates: Record<SplitName, Record<string, number>>;
    groupColumn: string;
  };
  /** The model.onnx input of the dense inputs (float32 [batch, D]), or null when there are none. */
  denseInput: string | null;
  /**
   * The time zone derived features were computed in (the spec's `timezone`, else UTC); written by
   * every export since the zone was fixed. Absent in older exports, whose zone was the exporting
   * machine's: loadModel refuses those whose features could depend on it (zoneDependent).
   */
  timezone?: string;
  tasks: FeaturesTask[];
  /** Columns `score` copies to its output by default (user, item and group columns). */
  keys: string[];
  model: {
    architecture: string;
    options: Record<string, unknown>;
    opset: number;
    /** Symbolic name of the batch dimension. */
    batchDim: string;
    inputs: string[];
    outputs: string[];
  };
  /** The training run: method, seed, steps, best epoch, its options and fingerprint. */
  training: Record<string, unknown>;
}

const NAME_OK = /^[A-Za-z0-9_.:/-]+$/;

/** Distinct ONNX-safe names: `prefix + name` with other characters replaced by '_' (then _2, _3, ... on a clash). */
export function onnxNames(names: readonly string[], prefix = "", taken: Set<string> = new Set()): string[] {
  return names.map((n) => {
    let base = `${prefix}${n}`.replace(/[^A-Za-z0-9_.:/-]/g, "_");
    if (!NAME_OK.test(base)) base = `${prefix}x`;
    let out = base;
    for (let k = 2; taken.has(out); k++) out = `${base}_${k}`;
    taken.add(out);
    return out;
  });
}

/** The encoding part of features.json from a prepared dataset's manifest and vocabularies. */
export function encodingOf(manifest: Manifest, vocab: (i: number) => { type: string; values: string[] }, fieldInputs: readonly string[]): FeatureEncoding {
  const spec = manifest.spec;
  const srcOf = (f: string | { name: string; column?: string; expr?: string }): { column: string } | { expr: string } =>
    typeof f === "string" ? { column: f } : f.expr !== undefined ? { expr: f.expr } : { column: f.column ?? f.name };
  const specFields = [...spec.categorical.map((f) => ({ f, sep: typeof f === "string" ? undefined : f.separator })), ...(spec.numeric ?? []).map((f) => ({ f, sep: undefined }))];
  if (specFields.length !== manifest.fields.length) throw new DataError(`prepared dataset ${manifest.name}: its manifest lists ${manifest.fields.length} fields, its spec ${specFields.length}`);
  return {
    spec,
    columns: { ...(manifest.columns ?? {}) },
    fields: manifest.fields.map((mf, i) => {
      const sf = specFields[i]!;
      const base = { name: mf.name, input: fieldInputs[i]!, kind: mf.kind, vocabSize: mf.vocabSize, source: srcOf(sf.f) };
      if (mf.kind === "numeric") return { ...base, pointMasses: [...(mf.pointMasses ?? [])], boundaries: [...(mf.boundaries ?? [])] };
      const v = vocab(i);
      const ids = canonicalVocab(`prepared dataset ${manifest.name}`, mf.name, mf.multi ? "VARCHAR" : v.type, v.values.map((t, k) => [t, k + 1] as const), { source: base.source });
      return {
        ...base,
        valueType: v.type,
        ids,
        ...(mf.multi ? { multi: { separator: sf.sep ?? ",", maxLen: mf.multi.maxLen, pooling: mf.multi.pooling, padding: -1 as const } } : {}),
      };
    }),
    dense: (manifest.dense ?? []).map((d, j) => ({ name: d.name, source: srcOf((spec.dense ?? [])[j] ?? d.name), log1p: d.log1p, mean: d.mean, std: d.std })),
    sides: (manifest.sides ?? []).map((s) => ({ ...s, columns: [...s.columns] })),
    oov: 0,
  };
}

/**
 * Reads and checks features.json strictly (FEATURES_SCHEMA in model-schema.ts: every key known,
 * exact JSON types; errors name the file and the key). `bytes`: its verified content (loadModel),
 * else the file is read.
 */
export function readFeatures(path: string, bytes?: Uint8Array): FeaturesFile {
  let f: unknown;
  try {
    f = JSON.parse(Buffer.from(bytes ?? readFileSync(path)).toString("utf8"));
  } catch (e) {
    throw new DataError(`${path} is not valid JSON (${(e as Error).message})`, { file: path });
  }
  const x = f as Partial<FeaturesFile> | null;
  // the format and version first, so an old or foreign file gets that message rather than a key's
  if (!x || typeof x !== "object" || Array.isArray(x)) throw new DataError(`${path} is not an mtlcraft features file: not an object`, { file: path });
  if (x.format !== FEATURES_FORMAT) throw new DataError(`${path} is not an mtlcraft features file: its format is not "${FEATURES_FORMAT}"`, { file: path });
  if (x.version !== FEATURES_VERSION) throw new DataError(`${path}: version ${typeof x.version === "number" ? x.version : "(not a number)"} is not supported (this mtlcraft reads version ${FEATURES_VERSION})`, { file: path });
  validateFile(FEATURES_SCHEMA, f, path);
  const ff = f as FeaturesFile;
  // keys of an older export ("9.0" for a DOUBLE 9) are brought to the canonical form (the same values, so the same ids)
  for (const field of ff.fields) {
    if (field.kind !== "categorical" || !field.ids) continue;
    field.ids = canonicalVocab(path, field.name, field.multi ? "VARCHAR" : (field.valueType ?? "VARCHAR"), Object.entries(field.ids), { file: path, source: field.source, redo: "export the model again" });
  }
  return ff;
}

/**
 * A vocabulary (raw text -> id pairs, as DuckDB wrote the values of type `type`) keyed by the
 * canonical key of each value (`canonicalKey` in src/encoder.ts, the form features.json keys have
 * and every encoder looks values up in). Two values with the same canonical key (a DOUBLE's 0.0
 * and -0.0) would have to share an id, so they are refused with an error naming the field and
 * both values; so is a value that is not of the type. `where` names the file or dataset in
 * messages, `o.source` the field's source (its column is named), `o.file` is the DataError's
 * file, `o.redo` what to do about it.
 */
export function canonicalVocab(where: string, field: string, type: string, pairs: readonly (readonly [string, number])[], o: { file?: string; source?: { column: string } | { expr: string }; redo?: string } = {}): Record<string, number> {
  const what = `field "${field}"${o.source && "column" in o.source ? ` (column "${o.source.column}", ${type})` : ` (${type})`}`;
  const redo = o.redo ?? "map one of the values to the other in the spec (an `expr` field) and prepare the dataset again";
  const ctx = o.file !== undefined ? { file: o.file } : {};
  const ids = Object.create(null) as Record<string, number>;
  const from = new Map<string, string>();
  for (const [t, id] of pairs) {
    const key = canonicalKey(type, t);
    if (key === null) throw new DataError(`${where}: ${what} has a vocabulary value ${cut(t)} that is not a ${type} value; ${redo}`, ctx);
    const prev = from.get(key);
    if (prev !== undefined) {
      throw new DataError(`${where}: ${what} has the vocabulary values ${cut(prev)} and ${cut(t)}, which are the same ${type} value (canonical key ${cut(key)}): an encoder could not tell them apart; ${redo}`, ctx);
    }
    from.set(key, t);
    ids[key] = id;
  }
  return ids;
}

/** A value for a message: JSON, cut to 40 characters. */
function cut(s: string): string {
  const j = JSON.stringify(s);
  return j.length > 42 ? `${j.slice(0, 40)}…"` : j;
}
