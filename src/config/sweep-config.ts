/**
 * The schema of a `bench` sweep config (the `--config` JSON file, and the
 * command-line values that override it): every key with its type, default and
 * description in one list, a strict parser (unknown keys with a "did you mean"
 * suggestion, wrong types naming the key), and the parsers of `--set` / `--grid`.
 * schemas/sweep-config.schema.json is generated from it (src/config/json-schema.ts).
 * Relative paths in a config (dataset, out, plugins, train.cache-dir, ...) are resolved
 * against the current directory, as on the command line.
 */
import { readFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { expandMethods, type OptionValue, type ParamValue, type SweepConfig } from "../sweep/plan.ts";
import { methodNames } from "../balance/registry.ts";
import { checkModelOptions as checkArchOptions, getArchitecture } from "../model/registry.ts";
import { parseModelOptions } from "../train/run.ts";
import { loadPlugins } from "../plugins.ts";
import { checkKeys, SEED_LIMIT } from "./schema.ts";
import { didYouMean } from "../util/suggest.ts";
import { checkJobValue, jobFlag, parseTrainFlag } from "./train-options.ts";

/** A sweep config as written in a file: every key optional, seeds as a count or a list. */
export interface SweepFile {
  $schema?: string;
  description?: string;
  dataset?: string;
  model?: string;
  methods?: string[];
  seeds?: number[];
  train?: Record<string, OptionValue>;
  grid?: Record<string, ParamValue[]>;
  gridMethods?: Record<string, string[]>;
  methodGrid?: Record<string, Record<string, ParamValue[]>>;
  modelOptions?: Record<string, string>;
  overrides?: Record<string, Record<string, OptionValue>>;
  jobs?: number;
  out?: string;
  plugins?: string[];
}

export interface SweepField {
  readonly key: keyof SweepFile;
  /** The `bench` flag that overrides it (without dashes), if any. */
  readonly flag?: string;
  readonly description: string;
  /** Default when neither the file nor the command line gives it (undefined = computed, see description). */
  readonly default?: unknown;
  /** JSON Schema fragment of the value. */
  readonly schema: Record<string, unknown>;
  /** Validates the value read from JSON and returns it normalised; `where` names the key. */
  readonly check: (v: unknown, where: string) => unknown;
}

const isObj = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === "object" && !Array.isArray(v);

function str(v: unknown, where: string): string {
  if (typeof v !== "string" || v.trim() === "") throw new Error(`${where} must be a non-empty string, got ${JSON.stringify(v)}`);
  return v;
}

function obj(v: unknown, where: string): Record<string, unknown> {
  if (!isObj(v)) throw new Error(`${where} must be an object, got ${JSON.stringify(v)}`);
  return v;
}

function strList(v: unknown, where: string): string[] {
  const list = typeof v === "string" ? [v] : v;
  if (!Array.isArray(list) || list.length === 0) throw new Error(`${where} must be a string or a non-empty list of strings, got ${JSON.stringify(v)}`);
  return list.map((x, i) => str(x, `${where}[${i}]`));
}

/** A seed: an integer in [0, 2^32) (larger seeds would alias smaller ones). */
export function checkSeed(v: unknown, where: string): number {
  if (typeof v !== "number" || !Number.isInteger(v) || v < 0 || v >= SEED_LIMIT) {
    throw new Error(`${where} must be an integer in [0, ${SEED_LIMIT}), got ${JSON.stringify(v)}`);
  }
  return v;
}

/** `seeds`: a count n (seeds 1..n) or a list of distinct seeds. */
export function checkSeeds(v: unknown, where: string): number[] {
  if (typeof v === "number") {
    if (!Number.isInteger(v) || v < 1 || v > 10000) throw new Error(`${where} must be a count in [1, 10000] or a list of seeds, got ${JSON.stringify(v)}`);
    return Array.from({ length: v }, (_, i) => i + 1);
  }
  if (!Array.isArray(v) || v.length === 0) throw new Error(`${where} must be a count or a non-empty list of seeds, got ${JSON.stringify(v)}`);
  const seeds = v.map((s, i) => checkSeed(s, `${where}[${i}]`));
  if (new Set(seeds).size !== seeds.length) throw new Error(`${where} lists a seed twice: ${JSON.stringify(v)}`);
  return seeds;
}

function checkTrain(v: unknown, where: string): Record<string, OptionValue> {
  const o = obj(v, where);
  const out: Record<string, OptionValue> = {};
  for (const [k, x] of Object.entries(o)) out[k] = checkJobValue(k, x, `${where}.${k}`);
  return out;
}

/** One grid value for `flag`: numbers for numeric options (ranges checked), strings for the others. */
function checkGridValue(flag: string, x: unknown, where: string): ParamValue {
  const f = jobFlag(flag, where);
  if (f.type === "map") throw new Error(`${where}: "${flag}" cannot be a grid key (grid keys are scalar train options)`);
  return checkJobValue(flag, x, where) as ParamValue;
}

function checkGrid(v: unknown, where: string): Record<string, ParamValue[]> {
  const o = obj(v, where);
  const out: Record<string, ParamValue[]> = {};
  for (const [k, vals] of Object.entries(o)) {
    jobFlag(k, where);
    if (!Array.isArray(vals) || vals.length === 0) throw new Error(`${where}.${k} must be a non-empty list of values, got ${JSON.stringify(vals)}`);
    out[k] = vals.map((x, i) => checkGridValue(k, x, `${where}.${k}[${i}]`));
  }
  return out;
}

function checkModelOptions(v: unknown, where: string): Record<string, string> {
  const o = obj(v, where);
  const out: Record<string, string> = {};
  for (const [k, x] of Object.entries(o)) {
    if (typeof x === "string" || typeof x === "number" || typeof x === "boolean") out[k] = String(x);
    else if (Array.isArray(x) && x.length > 0 && x.every((n) => typeof n === "number" && Number.isFinite(n))) out[k] = x.join(",");
    else throw new Error(`${where}.${k} must be a string, number, boolean or list of numbers, got ${JSON.stringify(x)}`);
  }
  return out;
}

export const SWEEP_CONFIG: readonly SweepField[] = [
  { key: "$schema", description: "JSON Schema of this file (ignored)", schema: { type: "string" }, check: str },
  { key: "description", description: "free text (ignored)", schema: { type: "string" }, check: (v, w) => (typeof v === "string" ? v : str(v, w)) },
  { key: "dataset", flag: "dataset", default: "kuairand", description: "dataset: built-in name or spec .json", schema: { type: "string" }, check: str },
  { key: "model", flag: "model", default: "ple", description: "architecture of the multi-task model", schema: { type: "string" }, check: str },
  {
    key: "methods",
    flag: "methods",
    default: ["paper"],
    description: "method names (comma lists allowed), `paper` (Table 1 + Single + LR) or `all`",
    schema: { oneOf: [{ type: "string" }, { type: "array", items: { type: "string" }, minItems: 1 }] },
    check: strList,
  },
  {
    key: "seeds",
    flag: "seeds",
    default: 3,
    description: "a count n (seeds 1..n) or a list of seeds in [0, 2^32)",
    schema: { oneOf: [{ type: "integer", minimum: 1 }, { type: "array", items: { type: "integer", minimum: 0, exclusiveMaximum: SEED_LIMIT }, minItems: 1 }] },
    check: checkSeeds,
  },
  {
    key: "train",
    flag: "set",
    default: {},
    description: "train options for every job, keyed by `train` flag names (e.g. batch-size)",
    schema: { type: "object" },
    check: checkTrain,
  },
  {
    key: "grid",
    flag: "grid",
    default: {},
    description: "grid over train options, tried on the first seed and selected by mean validation AUC",
    schema: { type: "object", additionalProperties: { type: "array", minItems: 1 } },
    check: checkGrid,
  },
  {
    key: "gridMethods",
    default: { tau: ["gradcraft", "pcgrad-plus"], eps: ["gradcraft"] },
    description: "grid keys that apply only to some methods",
    schema: { type: "object", additionalProperties: { type: "array", items: { type: "string" } } },
    check: (v, w) => {
      const o = obj(v, w);
      const out: Record<string, string[]> = {};
      for (const [k, x] of Object.entries(o)) {
        jobFlag(k, w);
        out[k] = strList(x, `${w}.${k}`);
      }
      return out;
    },
  },
  {
    key: "methodGrid",
    default: {},
    description: "per-method grid values replacing `grid`'s for that method, keyed by method name (e.g. {\"dbmtl\": {\"lr\": [1e-4, 5e-4]}})",
    schema: { type: "object", additionalProperties: { type: "object", additionalProperties: { type: "array", minItems: 1 } } },
    check: (v, w) => {
      const o = obj(v, w);
      const out: Record<string, Record<string, ParamValue[]>> = {};
      for (const [m, x] of Object.entries(o)) out[m] = checkGrid(x, `${w}.${m}`);
      return out;
    },
  },
  {
    key: "modelOptions",
    flag: "model-opt",
    default: {},
    description: "architecture options of the multi-task model (Single gets expertUnits as bottomUnits)",
    schema: { type: "object" },
    check: checkModelOptions,
  },
  {
    key: "overrides",
    default: { lr: { lr: 0.01 } },
    description: "per-method train options on top of `train` (the LR baseline's own learning rate by default)",
    schema: { type: "object", additionalProperties: { type: "object" } },
    check: (v, w) => {
      const o = obj(v, w);
      const out: Record<string, Record<string, OptionValue>> = {};
      for (const [m, x] of Object.entries(o)) out[m] = checkTrain(x, `${w}.${m}`);
      return out;
    },
  },
  {
    key: "jobs",
    flag: "jobs",
    description: "parallel worker processes (default: the number of cores)",
    schema: { type: "integer", minimum: 1 },
    check: (v, w) => {
      if (typeof v !== "number" || !Number.isInteger(v) || v < 1) throw new Error(`${w} must be an integer >= 1, got ${JSON.stringify(v)}`);
      return v;
    },
  },
  { key: "out", flag: "out", default: "runs/bench", description: "output folder", schema: { type: "string" }, check: str },
  {
    key: "plugins",
    flag: "plugin",
    default: [],
    description: "ES modules registering your own methods / architectures (paths relative to the current directory; see README, Use it as a library)",
    schema: { type: "array", items: { type: "string" } },
    check: (v, w) => (Array.isArray(v) && v.length === 0 ? [] : strList(v, w)),
  },
];

export const SWEEP_KEYS: readonly string[] = SWEEP_CONFIG.map((f) => f.key);

/** Validates a parsed sweep config object; `where` names its source (e.g. the file). */
export function checkSweepFile(x: unknown, where: string): SweepFile {
  if (!isObj(x)) throw new Error(`${where}: a sweep config must be a JSON object, got ${Array.isArray(x) ? "an array" : JSON.stringify(x)}`);
  checkKeys(x, SWEEP_KEYS, where, "key");
  const out: Record<string, unknown> = {};
  for (const f of SWEEP_CONFIG) {
    if (x[f.key] !== undefined) out[f.key] = f.check(x[f.key], `${where}: ${f.key}`);
  }
  return out as SweepFile;
}

/** Reads and validates a `--config` file. */
export function readSweepFile(path: string): SweepFile {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    throw new Error(`--config ${path}: ${(e as Error).message}`, { cause: e });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new Error(`--config ${path} is not valid JSON: ${(e as Error).message}`, { cause: e });
  }
  return checkSweepFile(json, `--config ${path}`);
}

/** `--set k=v`: k must be a train flag bench does not set itself; v is parsed to its type. */
export function parseSet(k: string, v: string): OptionValue {
  const where = `--set ${k}`;
  const f = jobFlag(k, "--set");
  if (f.type === "map") return checkJobValue(k, v, where);
  return parseTrainFlag(k, v, where);
}

/** `--grid k=v1,v2`: every value parsed to k's type. */
export function parseGridValues(k: string, raw: string): ParamValue[] {
  const f = jobFlag(k, "--grid");
  if (f.type === "map") throw new Error(`--grid: "${k}" cannot be a grid key (grid keys are scalar train options)`);
  const parts = raw.split(",").map((s) => s.trim());
  if (parts.some((s) => s === "")) throw new Error(`--grid ${k}: empty value in "${raw}"`);
  return parts.map((s) => parseTrainFlag(k, s, `--grid ${k}`));
}

/** The default of a sweep config key (a fresh copy). */
export function sweepDefault<T>(key: keyof SweepFile): T {
  return structuredClone(SWEEP_CONFIG.find((f) => f.key === key)!.default) as T;
}

/**
 * `methodGrid` names methods of the sweep, and never gives a method a key that
 * `gridMethods` reserves for other methods (that would silently widen a restriction).
 */
function checkMethodGrid(cfg: SweepConfig, where: string): void {
  for (const [m, keys] of Object.entries(cfg.methodGrid ?? {})) {
    if (!cfg.methods.includes(m)) {
      throw new Error(`${where}: methodGrid.${m}: "${m}" is not one of this sweep's methods (${cfg.methods.join(", ")})${didYouMean(m, cfg.methods)}`);
    }
    for (const k of Object.keys(keys)) {
      const only = cfg.gridMethods?.[k];
      if (only && !only.includes(m)) {
        throw new Error(`${where}: methodGrid.${m}.${k}: gridMethods gives "${k}" only to ${only.join(", ")}; add "${m}" there or remove this key`);
      }
    }
  }
}

/**
 * A complete SweepConfig from a (partial) sweep config: the object is validated like a
 * `--config` file (unknown keys with a suggestion, types naming the key), plugins are
 * loaded (paths relative to `cwd`, made absolute), every missing key gets the default
 * `bench` uses, `methods` are expanded (`paper`, `all`), and the model and its options
 * are checked. `bench` builds its configuration with this, so the defaults are the CLI's.
 */
export async function resolveSweepConfig(config: SweepFile, opts: { cwd?: string; where?: string } = {}): Promise<SweepConfig> {
  const f = checkSweepFile(config, opts.where ?? "sweep config");
  const plugins = await loadPlugins(f.plugins ?? [], opts.cwd);
  const cfg: SweepConfig = {
    dataset: f.dataset ?? sweepDefault<string>("dataset"),
    model: f.model ?? sweepDefault<string>("model"),
    methods: expandMethods(f.methods ?? sweepDefault<string[]>("methods"), methodNames()),
    seeds: f.seeds ?? checkSeeds(sweepDefault<number>("seeds"), "seeds"),
    train: f.train ?? {},
    grid: f.grid ?? {},
    gridMethods: f.gridMethods ?? sweepDefault("gridMethods"),
    methodGrid: f.methodGrid ?? {},
    modelOptions: f.modelOptions ?? {},
    // A linear model needs a larger step than the deep models (documented in the README).
    overrides: f.overrides ?? sweepDefault("overrides"),
    jobs: f.jobs ?? availableParallelism(),
    out: f.out ?? sweepDefault<string>("out"),
    plugins,
  };
  try {
    getArchitecture(cfg.model);
  } catch (e) {
    throw new Error(`--model: ${(e as Error).message}`, { cause: e });
  }
  checkArchOptions(cfg.model, parseModelOptions(cfg.modelOptions ?? {}), { strict: true });
  checkMethodGrid(cfg, opts.where ?? "sweep config");
  return cfg;
}
