/**
 * The one schema of a queue job's payload (what `bench --queue` puts into Redis and
 * `mtlcraft worker` takes out). Anyone who can write to the Redis can write a payload, so a
 * worker treats it as untrusted input: every key at every level is known (an unknown one is an
 * error with a did-you-mean), every train option has the exact type of its field in the train
 * option schema (src/config/train-options.ts: an int is an integer in range, a choice one of its
 * values, a string a string; a boolean only where the field is boolean, and no train field is),
 * no string starts with `-` or holds flag text (`--`), and the dataset spec passes validateSpec.
 * Options the worker sets itself (outputs, plugins, threads) are refused. Errors name the key
 * (`job.options.lr`, `dataset.spec.log`), never more than a short quote of the value.
 */
import { DataError } from "../data/errors.ts";
import { validateSpec, type DatasetSpec } from "../data/spec.ts";
import { BENCH_CONTROLLED, trainFlag, type TrainField } from "../config/train-options.ts";
import { checkValue, SEED_LIMIT } from "../config/schema.ts";
import { unknownKeyMessage } from "../util/suggest.ts";
import type { OptionValue } from "./plan.ts";

/** The dataset a queued job trains on: the spec's content, and the content hash recorded at enqueue time. */
export interface DatasetPayload {
  /** A built-in dataset name (`kuairand`: every worker has the bundled data), else absent. */
  builtin?: string;
  spec: DatasetSpec;
  /** Where the enqueuer read the input files (a worker uses it only when it lies inside its own data folder). */
  baseDir: string;
  hash: string;
}

/** What a queue job carries. */
export interface QueuePayload {
  version: 1;
  job: { id: string; method: string; seed: number; options: Record<string, OptionValue> };
  dataset: DatasetPayload;
  /** Stalls already waited out with a backoff (set by workers). */
  stallsSeen?: number;
  /**
   * The enqueuing bench's mtlcraft version and the job's resolved configuration (defaults
   * included) with its hash (src/train/provenance.ts): a worker whose own differ refuses the sweep.
   */
  provenance?: { mtlcraft: string; configHash: string; config: Record<string, unknown> };
}

/** A payload the worker refuses: its message names the key and is safe to store in Redis. */
export class PayloadError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "PayloadError";
  }
}

const PAYLOAD_KEYS = ["version", "job", "dataset", "stallsSeen", "provenance"];
const PROVENANCE_KEYS = ["mtlcraft", "configHash", "config"];
/** Longest resolved configuration (JSON characters). */
const MAX_CONFIG_CHARS = 1 << 16;
const JOB_KEYS = ["id", "method", "seed", "options"];
const DATASET_KEYS = ["builtin", "spec", "baseDir", "hash"];
/** Built-in datasets a payload may name: only those a worker has without any folder. */
const PAYLOAD_BUILTINS = ["kuairand"];
/** Train options that name files on the enqueuing machine: checked as strings, then replaced by the worker's own. */
export const LOCAL_OPTIONS = ["dataset", "cache-dir", "source"];
/** Bench's own per-job keys (train flags that `--set` cannot give but a job carries). */
const JOB_OWN = ["dataset", "model", "method", "seed", "model-opt"];
/** A job id, method or model name: a word character, then word characters, '.' and '-'. */
const NAME = /^\w[\w.-]{0,199}$/;
/** A map option's entry: `key=value`, the key an identifier. */
const MAP_ENTRY = /^[A-Za-z_][\w.]{0,99}=/;
/** Longest payload accepted (JSON characters): a spec and a few options are a few KiB. */
const MAX_PAYLOAD_CHARS = 1 << 20;
/** Longest string value. */
const MAX_STRING = 4096;

const isObj = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === "object" && !Array.isArray(v);

/** A short, single-line quote of a value for a message (long values are cut). */
export function quoteValue(v: unknown): string {
  let s: string;
  try {
    s = JSON.stringify(v) ?? String(v);
  } catch {
    s = String(v);
  }
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

function fail(msg: string): never {
  throw new PayloadError(`queue payload: ${msg}`);
}

function keys(o: Record<string, unknown>, known: readonly string[], where: string): void {
  for (const k of Object.keys(o)) if (!known.includes(k)) fail(unknownKeyMessage(where, "key", k.slice(0, 60), known));
}

/**
 * Checks a string value: no flag text (a leading `-`, or `--` anywhere), no control
 * characters, bounded length. `allowDashes` for paths the worker replaces anyway.
 */
export function checkPlainString(v: string, where: string, allowDashes = false): void {
  if (v.length > MAX_STRING) fail(`${where} is longer than ${MAX_STRING} characters`);
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(v)) fail(`${where} holds a control character`);
  if (v.startsWith("-")) fail(`${where} must not start with "-" (flag text), got ${quoteValue(v)}`);
  if (!allowDashes && v.includes("--")) fail(`${where} must not hold "--" (flag text), got ${quoteValue(v)}`);
}

/** Checks one train option of a queued job against its field in the train option schema. */
function checkOption(flag: string, v: unknown, at: string): void {
  const where = `${at}: job.options.${flag.slice(0, 60)}`;
  if (!JOB_OWN.includes(flag) && (BENCH_CONTROLLED[flag] !== undefined || flag === "plugin")) fail(`${where}: option "${flag}" is set by the worker`);
  let f: TrainField;
  try {
    f = trainFlag(flag.slice(0, 60), `${at}: job.options`);
  } catch (e) {
    fail((e as Error).message);
  }
  if (f.type === "map") {
    const list = Array.isArray(v) ? v : [v];
    if (list.length === 0 || list.length > 100) fail(`${where} must be "key=value" or a list of 1 to 100 of them, got ${quoteValue(v)}`);
    list.forEach((x, i) => {
      const at = Array.isArray(v) ? `${where}[${i}]` : where;
      if (typeof x !== "string" || !MAP_ENTRY.test(x)) fail(`${at} must be "key=value" (key: letters, digits, '_', '.'), got ${quoteValue(x)}`);
      checkPlainString(x, at);
    });
    return;
  }
  // exact types: an int is an integer in range, a choice one of its values, a string a string;
  // a boolean only for a boolean field (commander would read a bare `--flag` for it)
  try {
    checkValue(f, v, where);
  } catch (e) {
    fail((e as Error).message.replace(/, got .*$/s, `, got ${quoteValue(v)}`));
  }
  if (typeof v === "string") checkPlainString(v, where, LOCAL_OPTIONS.includes(flag));
  if ((flag === "model" || flag === "method") && !NAME.test(v as string)) fail(`${where} must be a name (letters, digits, '_', '.', '-'), got ${quoteValue(v)}`);
}

/** The payload's provenance: a version, a SHA-256, and a configuration of plain JSON (nothing in it is run or used as a path). */
function checkProvenance(p: unknown): void {
  if (!isObj(p)) fail(`provenance must be an object, got ${quoteValue(p)}`);
  keys(p, PROVENANCE_KEYS, "provenance");
  if (typeof p.mtlcraft !== "string" || !/^\w[\w.+-]{0,63}$/.test(p.mtlcraft)) fail(`provenance.mtlcraft must be a version (e.g. 0.1.0), got ${quoteValue(p.mtlcraft)}`);
  if (typeof p.configHash !== "string" || !/^[0-9a-f]{64}$/.test(p.configHash)) fail(`provenance.configHash must be 64 hex digits (a SHA-256), got ${quoteValue(p.configHash)}`);
  if (!isObj(p.config)) fail(`provenance.config must be an object, got ${quoteValue(p.config)}`);
  if (JSON.stringify(p.config).length > MAX_CONFIG_CHARS) fail(`provenance.config is larger than ${MAX_CONFIG_CHARS} characters`);
  const walk = (v: unknown, at: string, depth: number): void => {
    if (depth > 4) fail(`${at} is nested too deeply`);
    if (typeof v === "string") checkPlainString(v, at);
    else if (Array.isArray(v)) v.forEach((x, i) => walk(x, `${at}[${i}]`, depth + 1));
    else if (isObj(v)) for (const [k, x] of Object.entries(v)) walk(x, `${at}.${k.slice(0, 60)}`, depth + 1);
    else if (!(v === null || typeof v === "boolean" || (typeof v === "number" && Number.isFinite(v)))) fail(`${at} must be plain JSON, got ${quoteValue(v)}`);
  };
  walk(p.config, "provenance.config", 0);
}

/**
 * Checks a queued payload against the schema and returns it typed; throws a PayloadError
 * naming the first bad key.
 */
export function checkPayload(x: unknown): QueuePayload {
  if (!isObj(x) || x.version !== 1) fail("not an mtlcraft job (payload version 1 expected)");
  let size: number;
  try {
    size = JSON.stringify(x).length;
  } catch {
    fail("not plain JSON");
  }
  if (size > MAX_PAYLOAD_CHARS) fail(`larger than ${MAX_PAYLOAD_CHARS} characters`);
  keys(x, PAYLOAD_KEYS, "payload");
  if (x.stallsSeen !== undefined && !(Number.isInteger(x.stallsSeen) && (x.stallsSeen as number) >= 0)) fail(`stallsSeen must be a whole number >= 0, got ${quoteValue(x.stallsSeen)}`);

  if (x.provenance !== undefined) checkProvenance(x.provenance);
  if (!isObj(x.job)) fail(`job must be an object, got ${quoteValue(x.job)}`);
  const j = x.job;
  keys(j, JOB_KEYS, "job");
  if (typeof j.id !== "string" || !NAME.test(j.id)) fail(`bad job id ${quoteValue(j.id)} (job.id: letters, digits, '_', '.', '-', starting with a letter or digit)`);
  const at = `job ${j.id}`;
  if (typeof j.method !== "string" || !NAME.test(j.method)) fail(`${at}: job.method must be a name (letters, digits, '_', '.', '-'), got ${quoteValue(j.method)}`);
  if (typeof j.seed !== "number" || !Number.isInteger(j.seed) || j.seed < 0 || j.seed >= SEED_LIMIT) fail(`${at}: job.seed must be an integer in [0, 2^32), got ${quoteValue(j.seed)}`);
  if (!isObj(j.options)) fail(`${at}: job.options must be an object, got ${quoteValue(j.options)}`);
  for (const [k, v] of Object.entries(j.options)) checkOption(k, v, at);
  if (j.options.seed !== undefined && j.options.seed !== j.seed) fail(`${at}: job.options.seed (${quoteValue(j.options.seed)}) differs from job.seed (${j.seed})`);

  if (!isObj(x.dataset)) fail(`${at}: dataset must be an object, got ${quoteValue(x.dataset)}`);
  const d = x.dataset;
  keys(d, DATASET_KEYS, "dataset");
  if (d.builtin !== undefined && (typeof d.builtin !== "string" || !PAYLOAD_BUILTINS.includes(d.builtin))) {
    fail(`${at}: dataset.builtin must be one of ${PAYLOAD_BUILTINS.join(", ")}, got ${quoteValue(d.builtin)}`);
  }
  if (typeof d.hash !== "string" || !/^[0-9a-f]{64}$/.test(d.hash)) fail(`${at}: dataset.hash must be 64 hex digits (a SHA-256), got ${quoteValue(d.hash)}`);
  if (typeof d.baseDir !== "string") fail(`${at}: dataset.baseDir must be a string, got ${quoteValue(d.baseDir)}`);
  checkPlainString(d.baseDir, `${at}: dataset.baseDir`, true);
  if (!isObj(d.spec)) fail(`${at}: dataset.spec must be an object, got ${quoteValue(d.spec)}`);
  try {
    validateSpec(d.spec);
  } catch (e) {
    if (!(e instanceof DataError)) throw e;
    fail(`${at}: ${e.message.replace(/^invalid dataset spec: \$/, "invalid dataset.spec: dataset.spec")}`);
  }
  return x as unknown as QueuePayload;
}
