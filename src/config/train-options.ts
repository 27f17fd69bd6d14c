/**
 * The schema of `train` options: every key of TrainOptions (src/train/run.ts) with its
 * command-line flag, type, range, default and description, in one place. `mtlcraft
 * train` builds its flags from it, runTraining validates against it, and `bench`
 * checks `--set` / `--grid` / config `train` keys against it.
 */
import type { TrainOptions } from "../train/run.ts";
import { checkKeys, checkValue, parseValue, SEED_LIMIT, type FieldSpec, type Scalar } from "./schema.ts";
import { unknownKeyMessage } from "../util/suggest.ts";

export interface TrainField extends FieldSpec {
  /** A command-line shortcut for `--method-opt <key>=v` (not a TrainOptions key). */
  readonly methodOption?: true;
}

export const TRAIN_OPTIONS: readonly TrainField[] = [
  { key: "dataset", flag: "dataset", arg: "<name>", type: "string", required: true, description: "kuairand, wechat or a spec .json" },
  { key: "source", flag: "source", arg: "<dir>", type: "string", description: "raw files directory (wechat)" },
  { key: "cacheDir", flag: "cache-dir", arg: "<dir>", type: "string", default: ".cache/datasets", description: "dataset cache root" },
  { key: "model", flag: "model", arg: "<arch>", type: "string", default: "ple", required: true, description: "architecture" },
  { key: "method", flag: "method", arg: "<name>", type: "string", default: "gradcraft", required: true, description: "balancing method (see `mtlcraft methods`)" },
  { key: "seed", flag: "seed", arg: "<n>", type: "int", min: 0, below: SEED_LIMIT, default: 1, required: true, description: "random seed (0 <= seed < 2^32)" },
  { key: "epochs", flag: "epochs", arg: "<n>", type: "int", min: 1, default: 10, required: true, description: "maximum epochs" },
  { key: "maxSteps", flag: "max-steps", arg: "<n>", type: "int", min: 0, default: 0, description: "stop after N steps (0 = no limit)" },
  { key: "batchSize", flag: "batch-size", arg: "<n>", type: "int", min: 1, default: 4096, required: true, description: "training batch size" },
  { key: "lr", flag: "lr", arg: "<x>", type: "number", min: 0, default: 5e-4, required: true, description: "Adam learning rate" },
  { key: "l2", flag: "l2", arg: "<x>", type: "number", min: 0, default: 1e-5, required: true, description: "L2 on weights and on embedding rows used" },
  { key: "embDim", flag: "emb-dim", arg: "<n>", type: "int", min: 1, default: 16, required: true, description: "embedding size" },
  { key: "dropout", flag: "dropout", arg: "<x>", type: "number", min: 0, max: 0.95, default: 0.2, required: true, description: "dropout rate (train mode only)" },
  { key: "scope", flag: "scope", arg: "<scope>", type: "choice", choices: ["shared", "shared-dense", "all"], default: "shared", required: true, description: "parameters the method balances" },
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
  { key: "progress", flag: "progress", arg: "<mode>", type: "choice", choices: ["bar", "json", "none"], default: "none", description: "progress display (the CLI's default is bar on a terminal)" },
  { key: "threads", flag: "threads", arg: "<n>", type: "int", min: 1, max: 1024, description: "engine (onnxruntime) intra-op threads (default: every core; bench: 1 per worker)" },
  { key: "device", flag: "device", arg: "<device>", type: "choice", choices: ["cpu", "cuda"], default: "cpu", description: "execution provider; cuda needs onnxruntime-node's CUDA binaries (see README)" },
];

const BY_KEY = new Map(TRAIN_OPTIONS.map((f) => [f.key, f]));
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

/**
 * Validates library TrainOptions: unknown keys (with a suggestion), missing required
 * keys, types and ranges (seeds in [0, 2^32)). Throws an Error naming the key.
 */
export function validateTrainOptions(o: TrainOptions): void {
  if (o === null || typeof o !== "object" || Array.isArray(o)) throw new Error("train options must be an object");
  checkKeys(o, TRAIN_KEYS, "train options", "option");
  for (const key of TRAIN_KEYS) {
    const f = BY_KEY.get(key)!;
    const v = (o as unknown as Record<string, unknown>)[key];
    if (v === undefined) {
      if (f.required) throw new Error(`train option ${key} is required`);
      continue;
    }
    checkValue(f, v, `train option ${key}`);
  }
}

/** Defaults of the TrainOptions keys that have one (for the CLI and a later JSON Schema). */
export function trainDefaults(): Partial<Record<string, Scalar>> {
  const out: Partial<Record<string, Scalar>> = {};
  for (const f of TRAIN_OPTIONS) if (f.default !== undefined && !f.methodOption) out[f.key] = f.default;
  return out;
}
