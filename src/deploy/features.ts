/**
 * features.json: everything needed to turn a raw log row into the inputs of model.onnx, and to
 * read its outputs. Written by `mtlcraft export`, read by `loadModel`.
 *
 * - `fields[i]`: the field's ONNX input, its source (log column, side-table column or SQL
 *   expression), and its encoding: categorical `ids` (raw value as text -> id; everything else,
 *   including NULL, gets `oov` = 0), multi-valued lists (`multi`: separator, maxLen, -1 padding),
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
import type { Manifest } from "../data/prepare.ts";
import type { SplitName } from "../data/types.ts";
import { FEATURES_SCHEMA, validateFile } from "./model-schema.ts";

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
      const ids: Record<string, number> = {};
      v.values.forEach((t, k) => (ids[t] = k + 1));
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
  return f as FeaturesFile;
}
