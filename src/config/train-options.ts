/**
 * The schema of `train` options: every key of TrainOptions with its command-line flag,
 * type, range, default and description, in one place. `mtlcraft train` builds its flags
 * from it (so the CLI's defaults are these), runTraining validates against it and fills
 * in the defaults (resolveTrainOptions), `bench` checks `--set` / `--grid` / config
 * `train` keys against it, and schemas/train-options.schema.json is generated from it.
 */
import type { MethodEntry } from "../balance/types.ts";
import { checkMethodEntry } from "../balance/registry.ts";
import type { DatasetSpec } from "../data/spec.ts";
import type { Device, MemoryMode } from "../engine/ort.ts";
import { checkModelEntry, type ModelEntry } from "../model/registry.ts";
import type { GradScope } from "../train/step.ts";
import type { BalanceAt } from "../grad/representation.ts";
import { checkKeys, checkValue, parseValue, SEED_LIMIT, type FieldSpec, type Scalar } from "./schema.ts";
import { unknownKeyMessage } from "../util/suggest.ts";

/**
 * Options of one training run (runTraining / buildRun). Only `dataset` is required; every
 * other key has the default the `train` command uses (see TRAIN_DEFAULTS and TRAIN_OPTIONS).
 * Relative paths are resolved against the current working directory.
 */
export interface TrainOptions {
  /** A built-in name (kuairand, wechat with `source`), a spec .json path, or a spec object. */
  dataset: string | DatasetSpec;
  /** Raw files directory (wechat; overrides a spec's dataDir). */
  source?: string;
  /** Dataset cache root (default `.cache/datasets`, in the current directory). */
  cacheDir?: string;
  /** Architecture: a registered name (default "ple") or an entry object (see registerArchitecture). */
  model?: string | ModelEntry;
  /** Architecture options (strings from the command line are parsed: "128,64" -> [128, 64]). */
  modelOptions?: Record<string, unknown>;
  /** Balancing method: a registered name or alias (default "gradcraft") or an entry object. */
  method?: string | MethodEntry;
  /** Method options (checked against the method's defaults; strings are coerced). */
  methodOptions?: Record<string, unknown>;
  /** Random seed, 0 <= seed < 2^32 (default 1). */
  seed?: number;
  /** Maximum epochs (default 10). */
  epochs?: number;
  /** Stop after this many steps, 0 = no limit (default 0). */
  maxSteps?: number;
  /** Training batch size (default 4096). */
  batchSize?: number;
  /** Adam learning rate (default 5e-4). */
  lr?: number;
  /** L2 on weights and on the embedding rows used (default 1e-5). */
  l2?: number;
  /** Embedding size (default 16). */
  embDim?: number;
  /** Dropout rate in train mode (default 0.2). */
  dropout?: number;
  /** Parameters the method balances (default "shared"). */
  scope?: GradScope;
  /**
   * Where the per-task gradients are taken and combined (default "parameters"): "representation"
   * balances the gradients w.r.t. the architecture's shared representation and back-propagates
   * the combined one through the trunk once (src/grad/representation.ts).
   */
  balanceAt?: BalanceAt;
  /** Validate every N steps, 0 = every epoch (default 0). */
  evalEvery?: number;
  /** Evaluation batch size (default 8192). */
  evalBatchSize?: number;
  /** Early-stopping patience in evaluations, 0 = off (default 2). */
  patience?: number;
  /** Minimum mean validation AUC improvement (default 1e-4). */
  minDelta?: number;
  /** Record balancing diagnostics every N steps (default 10). */
  diagEvery?: number;
  /** Cap on validation rows during training, 0 = all (default 0). */
  maxEvalRows?: number;
  /** Result JSON path (diagnostics go beside it as .diag.jsonl). */
  out?: string;
  /** Checkpoint directory; an existing checkpoint there is resumed. */
  checkpoint?: string;
  /** Also checkpoint every N steps (default 0). */
  checkpointEvery?: number;
  /** Stop after N steps in this process, as if interrupted (resume tests). */
  interruptAfter?: number;
  /** Progress display (default "none"; the CLI's default is "bar" on a terminal, else "log": a plain line at least every 30 s). */
  progress?: "bar" | "json" | "log" | "none";
  /** Engine intra-op threads (default: every core; `bench` runs 1 per worker). */
  threads?: number;
  /** Execution provider: "cpu" (default) or "cuda" (needs onnxruntime-node's CUDA binaries). */
  device?: Device;
  /** How the engine gets its buffers: "auto" (default), "arena" or "pattern" (see EngineOptions.memory). */
  memory?: MemoryMode;
}

/** The keys of TrainOptions that have a default. */
export type DefaultedTrainKey =
  | "cacheDir" | "model" | "method" | "seed" | "epochs" | "maxSteps" | "batchSize" | "lr" | "l2" | "embDim" | "dropout" | "scope" | "balanceAt"
  | "evalEvery" | "evalBatchSize" | "patience" | "minDelta" | "diagEvery" | "maxEvalRows" | "checkpointEvery" | "progress" | "device" | "memory";

/** TrainOptions with every default filled in (what resolveTrainOptions returns). */
export type ResolvedTrainOptions = TrainOptions & Required<Pick<TrainOptions, DefaultedTrainKey>>;

export interface TrainField extends FieldSpec {
  /** The TrainOptions key (or, for a method-option shortcut, the method option's name). */
  readonly key: keyof TrainOptions | "tau" | "eps";
  /** A command-line shortcut for `--method-opt <key>=v` (not a TrainOptions key). */
  readonly methodOption?: true;
}

export const TRAIN_OPTIONS: readonly TrainField[] = [
  { key: "dataset", flag: "dataset", arg: "<name>", type: "string", required: true, description: "kuairand, wechat or a spec .json (the library also takes a spec object)" },
  { key: "source", flag: "source", arg: "<dir>", type: "string", description: "raw files directory (wechat)" },
  { key: "cacheDir", flag: "cache-dir", arg: "<dir>", type: "string", default: ".cache/datasets", description: "dataset cache root" },
  { key: "model", flag: "model", arg: "<arch>", type: "string", default: "ple", required: true, description: "architecture (see `mtlcraft models`; the library also takes an entry object)" },
  { key: "method", flag: "method", arg: "<name>", type: "string", default: "gradcraft", required: true, description: "balancing method (see `mtlcraft methods`; the library also takes an entry object)" },
  { key: "seed", flag: "seed", arg: "<n>", type: "int", min: 0, below: SEED_LIMIT, default: 1, required: true, description: "random seed (0 <= seed < 2^32)" },
  { key: "epochs", flag: "epochs", arg: "<n>", type: "int", min: 1, default: 10, required: true, description: "maximum epochs" },
  { key: "maxSteps", flag: "max-steps", arg: "<n>", type: "int", min: 0, default: 0, description: "stop after N steps (0 = no limit)" },
  { key: "batchSize", flag: "batch-size", arg: "<n>", type: "int", min: 1, default: 4096, required: true, description: "training batch size" },
  { key: "lr", flag: "lr", arg: "<x>", type: "number", min: 0, default: 5e-4, required: true, description: "Adam learning rate" },
  { key: "l2", flag: "l2", arg: "<x>", type: "number", min: 0, default: 1e-5, required: true, description: "L2 on weights and on embedding rows used" },
  { key: "embDim", flag: "emb-dim", arg: "<n>", type: "int", min: 1, default: 16, required: true, description: "embedding size" },
  { key: "dropout", flag: "dropout", arg: "<x>", type: "number", min: 0, max: 0.95, default: 0.2, required: true, description: "dropout rate (train mode only)" },
  { key: "scope", flag: "scope", arg: "<scope>", type: "choice", choices: ["shared", "shared-dense", "all"], default: "shared", required: true, description: "parameters the method balances" },
  { key: "balanceAt", flag: "balance-at", arg: "<where>", type: "choice", choices: ["parameters", "representation"], default: "parameters", required: true, description: "where per-task gradients are balanced: the shared parameters, or the shared representation (one backward through the trunk)" },
  { key: "tau", flag: "tau", arg: "<x>", type: "number", min: 0, max: 1, methodOption: true, description: "magnitude alignment strength (gradcraft, pcgrad-plus)" },
  { key: "eps", flag: "eps", arg: "<x>", type: "number", min: 0, methodOption: true, description: "GradCraft epsilon" },
  { key: "methodOptions", flag: "method-opt", arg: "<k=v>", type: "map", description: "other method option (repeatable)" },
  { key: "modelOptions", flag: "model-opt", arg: "<k=v>", type: "map", description: "architecture option, e.g. levels=2 (repeatable)" },
  { key: "evalEvery", flag: "eval-every", arg: "<n>", type: "int", min: 0, default: 0, description: "validate every N steps (0 = every epoch)" },
  { key: "evalBatchSize", flag: "eval-batch-size", arg: "<n>", type: "int", min: 1, default: 8192, description: "evaluation batch size" },
  { key: "patience", flag: "patience", arg: "<n>", type: "int", min: 0, default: 2, description: "early stopping patience in evaluations (0 = off)" },
  { key: "minDelta", flag: "min-delta", arg: "<x>", type: "number", min: 0, default: 1e-4, description: "minimum mean validation AUC improvement" },
  { key: "diagEvery", flag: "diag-every", arg: "<n>", type: "int", min: 1, default: 10, description: "record balancing diagnostics every N steps (loss-weighting methods run one summed backward on the other steps)" },
  { key: "maxEvalRows", type: "int", min: 0, default: 0, description: "cap on validation rows during training (0 = all)" },
  { key: "out", flag: "out", arg: "<file>", type: "string", description: "result JSON (diagnostics go beside it as .diag.jsonl)" },
  { key: "checkpoint", flag: "checkpoint", arg: "<dir>", type: "string", description: "checkpoint directory; an existing checkpoint there is resumed" },
  { key: "checkpointEvery", flag: "checkpoint-every", arg: "<n>", type: "int", min: 0, default: 0, description: "also checkpoint every N steps" },
  { key: "interruptAfter", type: "int", min: 1, description: "stop after N steps in this process, as if interrupted (resume tests)" },
  { key: "progress", flag: "progress", arg: "<mode>", type: "choice", choices: ["bar", "json", "log", "none"], default: "none", description: "progress display: bar, json lines on stdout, log (a plain line on stderr at least every 30 s: step, epoch, rate, losses by task, ETA) or none (the CLI's default is bar on a terminal, else log)" },
  { key: "threads", flag: "threads", arg: "<n>", type: "int", min: 1, max: 1024, description: "engine (onnxruntime) intra-op threads (default: every core; bench: 1 per worker)" },
  { key: "device", flag: "device", arg: "<device>", type: "choice", choices: ["cpu", "cuda"], default: "cpu", description: "execution provider; cuda needs onnxruntime-node's CUDA binaries (see README)" },
  { key: "memory", flag: "memory", arg: "<mode>", type: "choice", choices: ["auto", "arena", "pattern"], default: "auto", description: "engine buffers: auto (arena for the step's main program), arena (fastest, most memory) or pattern (least memory)" },
];

const BY_KEY = new Map<string, TrainField>(TRAIN_OPTIONS.map((f) => [f.key, f]));
const BY_FLAG = new Map(TRAIN_OPTIONS.filter((f) => f.flag).map((f) => [f.flag!, f]));
/** TrainOptions keys (the library's option names). */
export const TRAIN_KEYS: readonly string[] = TRAIN_OPTIONS.filter((f) => !f.methodOption).map((f) => f.key);
/** `train` command-line flags without dashes. */
export const TRAIN_FLAGS: readonly string[] = [...BY_FLAG.keys()];

/**
 * Flags a `bench` sets for each job itself: they cannot be given through `--set`,
 * `--grid` or the config's `train` (where they would be silently overridden), with what to use instead.
 */
export const BENCH_CONTROLLED: Readonly<Record<string, string>> = {
  dataset: "the sweep's dataset (--dataset)",
  model: "the sweep's model (--model)",
  method: "--methods",
  seed: "--seeds",
  "model-opt": "--model-opt / modelOptions",
  out: "bench --out",
  checkpoint: "(bench keeps one checkpoint per job)",
  progress: "(bench shows its own progress)",
  threads: "(bench runs one engine thread per worker; use --jobs)",
};

/** The field of a `train` flag (without dashes), or an error with a suggestion. */
export function trainFlag(flag: string, where: string): TrainField {
  const f = BY_FLAG.get(flag);
  if (!f) throw new Error(unknownKeyMessage(where, "train option", flag, TRAIN_FLAGS));
  return f;
}

/** Flag for a bench job option: known, not controlled by bench itself. */
export function jobFlag(flag: string, where: string): TrainField {
  const f = trainFlag(flag, where);
  const instead = BENCH_CONTROLLED[flag];
  if (instead !== undefined) throw new Error(`${where}: "${flag}" is set by bench for every job; use ${instead}`);
  return f;
}

/** Parses the command-line string `s` for `flag` (numbers, booleans; checks ranges). */
export function parseTrainFlag(flag: string, s: string, where: string): Scalar {
  return parseValue(trainFlag(flag, where), s, where);
}

/**
 * Checks a typed value for a bench job flag from a JSON config (strict types; `k=v`
 * strings, or lists of them, for method-opt).
 */
export function checkJobValue(flag: string, v: unknown, where: string): Scalar | string[] {
  const f = jobFlag(flag, where);
  if (f.type === "map") {
    const list = Array.isArray(v) ? (v as unknown[]) : [v];
    for (const x of list) {
      if (typeof x !== "string" || x.indexOf("=") <= 0) throw new Error(`${where} must be "key=value" or a list of them, got ${JSON.stringify(v)}`);
    }
    return list as string[];
  }
  return checkValue(f, v, where) as Scalar;
}

const isPlainObject = (v: unknown): boolean => v !== null && typeof v === "object" && !Array.isArray(v);

/**
 * Validates library TrainOptions: unknown keys (with a suggestion), missing required
 * keys (only `dataset`: the others have defaults), types and ranges (seeds in [0, 2^32)).
 * `model` and `method` may be entry objects, `dataset` a spec object. Throws an Error
 * naming the key.
 */
export function validateTrainOptions(o: TrainOptions): void {
  if (o === null || typeof o !== "object" || Array.isArray(o)) throw new Error("train options must be an object");
  checkKeys(o, TRAIN_KEYS, "train options", "option");
  for (const key of TRAIN_KEYS) {
    const f = BY_KEY.get(key)!;
    const v = (o as unknown as Record<string, unknown>)[key];
    if (v === undefined) {
      if (f.required && f.default === undefined) throw new Error(`train option ${key} is required`);
      continue;
    }
    if (key === "method" && typeof v === "object") {
      checkMethodEntry(v);
      continue;
    }
    if (key === "model" && typeof v === "object") {
      checkModelEntry(v);
      continue;
    }
    if (key === "dataset" && isPlainObject(v)) continue; // a spec object: checked by the data layer (validateSpec)
    checkValue(f, v, `train option ${key}`);
  }
}

/** Defaults of the TrainOptions keys that have one (the CLI's defaults too). */
export function trainDefaults(): Partial<Record<string, Scalar>> {
  const out: Partial<Record<string, Scalar>> = {};
  for (const f of TRAIN_OPTIONS) if (f.default !== undefined && !f.methodOption) out[f.key] = f.default;
  return out;
}

/** The defaults of TrainOptions, typed (from TRAIN_OPTIONS; `progress` is the library's "none"). */
export const TRAIN_DEFAULTS: Readonly<Pick<ResolvedTrainOptions, DefaultedTrainKey>> = Object.freeze(trainDefaults() as unknown as Pick<ResolvedTrainOptions, DefaultedTrainKey>);

/** Validates `o` (see validateTrainOptions) and returns a copy with every default filled in. */
export function resolveTrainOptions(o: TrainOptions): ResolvedTrainOptions {
  validateTrainOptions(o);
  const out: Record<string, unknown> = { ...o };
  for (const [k, v] of Object.entries(TRAIN_DEFAULTS)) if (out[k] === undefined) out[k] = v;
  return out as unknown as ResolvedTrainOptions;
}
