/**
 * `mtlcraft train --config run.json`: the `train` command's options in a JSON file.
 *
 * - Keys are the `train` flags without their dashes (`"batch-size": 1024`, `"method": "famo"`,
 *   `"tau": 0.2`), the same names as a bench config's `train` block; plus `"plugin"` (a path or a
 *   list: the repeatable `--plugin`), `"$schema"` and `"description"` (both ignored).
 *   schemas/train-config.schema.json is generated from this list (src/config/json-schema.ts).
 * - Values are JSON-typed and checked by the flags' own rules (src/config/train-options.ts:
 *   type, range, choices): `"batch-size": "32"` is refused, as `--batch-size 32x` is.
 *   `method-opt` / `model-opt` are objects (`{"expertUnits": [64, 32]}`) or, as in a bench
 *   config, `"k=v"` strings; they become the strings the flag would give.
 * - An unknown key is an error naming the file and the key, with a "did you mean" (and, for a
 *   key of a bench config such as `seeds`, a word that it belongs there).
 * - Relative paths in the file (`dataset` when it names a spec file, `source`, `cache-dir`,
 *   `out`, `checkpoint`, `plugin`) are resolved against the folder of the config file (its real
 *   folder, for a symlinked config), so a config works from any directory. The paths then get
 *   exactly the checks the same flags get (runTraining: an output never lands on an input,
 *   symlinks followed; a queue worker's data confinement): a config is no way around them.
 * - On the command line, a flag given explicitly wins over the file, even when its value equals
 *   the default; a flag left at its default does not (commander's value source tells them
 *   apart). `method-opt` / `model-opt` merge key by key (the command line's win), plugins add up.
 */
import { lstatSync, readFileSync, realpathSync, statSync } from "node:fs";
import { dirname, isAbsolute, resolve } from "node:path";
import { BUILTIN_DATASETS } from "../data/builtin.ts";
import { checkValue } from "./schema.ts";
import { SWEEP_KEYS } from "./sweep-config.ts";
import { TRAIN_FLAGS, trainFlag } from "./train-options.ts";
import { unknownKeyMessage } from "../util/suggest.ts";

/** Keys of a train config besides the train flags. */
export const TRAIN_CONFIG_EXTRA: Readonly<Record<string, string>> = {
  $schema: "JSON Schema of this file (ignored)",
  description: "free text (ignored)",
  plugin: "ES module(s) adding methods / architectures: a path or a list (the repeatable --plugin)",
};

/** Every key a train config may hold. */
export const TRAIN_CONFIG_KEYS: readonly string[] = ["$schema", "description", ...TRAIN_FLAGS, "plugin"];

/** Flags whose value is a path (resolved against the config's folder). `dataset` is handled apart (it may be a built-in name). */
export const TRAIN_PATH_FLAGS: readonly string[] = ["source", "cache-dir", "out", "checkpoint"];

/** The largest config file read (a config is a few hundred bytes; this refuses a mistaken multi-GB path before reading it). */
const MAX_CONFIG_BYTES = 1 << 20;

/** A validated config file: flag values (paths absolute) and plugin paths (absolute). */
export interface TrainConfig {
  /** How messages name the file (`--config run.json`). */
  where: string;
  /** The folder relative paths were resolved against (absolute). */
  dir: string;
  /** Values by flag name, typed and checked; method-opt / model-opt as string maps. */
  values: Record<string, unknown>;
  plugins: string[];
}

const isObj = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === "object" && !Array.isArray(v);

/** A value for a message: JSON, cut to 80 characters (a config may hold anything). */
function shown(v: unknown): string {
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
}

/** `method-opt` / `model-opt`: an object of scalars / number lists, a "k=v" string or a list of them -> the flag's string map. */
function checkMap(v: unknown, where: string): Record<string, string> {
  const out: Record<string, string> = {};
  if (isObj(v)) {
    for (const [k, x] of Object.entries(v)) {
      if (typeof x === "string" || typeof x === "number" || typeof x === "boolean") out[k] = String(x);
      else if (Array.isArray(x) && x.length > 0 && x.every((n) => typeof n === "number" && Number.isFinite(n))) out[k] = x.join(",");
      else throw new Error(`${where}.${k} must be a string, number, boolean or list of numbers, got ${shown(x)}`);
    }
    return out;
  }
  const list = Array.isArray(v) ? (v as unknown[]) : [v];
  for (const x of list) {
    const i = typeof x === "string" ? x.indexOf("=") : -1;
    if (i <= 0) throw new Error(`${where} must be an object of key: value, a "key=value" string or a list of them, got ${shown(v)}`);
    out[(x as string).slice(0, i)] = (x as string).slice(i + 1);
  }
  return out;
}

function nonEmptyString(v: unknown, where: string): string {
  if (typeof v !== "string" || v === "") throw new Error(`${where} must be a non-empty string, got ${shown(v)}`);
  return v;
}

/**
 * `dataset` from a config: a built-in name stays a name; `wechat:<dir>` gets its folder resolved;
 * anything else is a spec path resolved against `dir`, except a bare word (no separator, no
 * `.json`, nothing of that name there), which stays as written so that the data layer's
 * "unknown dataset ...; did you mean" names it.
 */
function configDataset(v: string, dir: string): string {
  if ((BUILTIN_DATASETS as readonly string[]).includes(v)) return v;
  if (v.startsWith("wechat:")) return `wechat:${resolve(dir, v.slice("wechat:".length))}`;
  const abs = resolve(dir, v);
  const bare = !v.includes("/") && !v.includes("\\") && !v.endsWith(".json") && !exists(abs);
  return bare ? v : abs;
}

function exists(p: string): boolean {
  try {
    lstatSync(p);
    return true;
  } catch {
    return false;
  }
}

/**
 * Validates a parsed config object and resolves its relative paths against `dir`. `where`
 * names the file in messages (`--config run.json`).
 */
export function checkTrainConfig(x: unknown, where: string, dir: string): TrainConfig {
  if (!isObj(x)) throw new Error(`${where}: a train config must be a JSON object of train options, got ${Array.isArray(x) ? "an array" : shown(x)}`);
  const values: Record<string, unknown> = {};
  let plugins: string[] = [];
  for (const [k, v] of Object.entries(x)) {
    const at = `${where}: ${k}`;
    if (k === "$schema" || k === "description") {
      if (typeof v !== "string") throw new Error(`${at} must be a string, got ${shown(v)}`);
      continue;
    }
    if (k === "plugin") {
      const list = typeof v === "string" ? [v] : v;
      if (!Array.isArray(list)) throw new Error(`${at} must be a path or a list of paths, got ${shown(v)}`);
      plugins = list.map((p, i) => resolve(dir, nonEmptyString(p, `${at}[${i}]`)));
      continue;
    }
    if (!TRAIN_FLAGS.includes(k)) {
      const bench = SWEEP_KEYS.includes(k) && !TRAIN_CONFIG_KEYS.includes(k) ? ` ("${k}" is a key of a bench config, bench --config; a train config takes the train command's flags)` : "";
      throw new Error(unknownKeyMessage(where, "train option", k, TRAIN_CONFIG_KEYS) + bench);
    }
    const f = trainFlag(k, where);
    if (f.type === "map") {
      values[k] = checkMap(v, at);
      continue;
    }
    if (v === null) throw new Error(`${at} must not be null (leave the key out for the default)`);
    const checked = checkValue(f, v, at);
    if (k === "dataset") values[k] = configDataset(nonEmptyString(checked, at), dir);
    else if (TRAIN_PATH_FLAGS.includes(k)) values[k] = resolve(dir, nonEmptyString(checked, at));
    else values[k] = checked;
  }
  return { where, dir, values, plugins };
}

/**
 * Reads `--config <path>`: a regular JSON file (at most 1 MiB), validated by checkTrainConfig
 * with its relative paths resolved against the file's folder. Messages name the file and key;
 * a syntax error gives the position, not the file's text.
 */
export function readTrainConfig(path: string, cwd = process.cwd()): TrainConfig {
  const where = `--config ${path}`;
  const abs = isAbsolute(path) ? path : resolve(cwd, path);
  let text: string;
  try {
    const st = statSync(abs);
    if (!st.isFile()) throw new Error("not a regular file");
    if (st.size > MAX_CONFIG_BYTES) throw new Error(`${st.size} bytes; a train config is at most ${MAX_CONFIG_BYTES} bytes`);
    text = readFileSync(abs, "utf8");
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw new Error(`${where}: ${err.code === "ENOENT" ? "no such file" : err.message}`, { cause: e });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    // V8 quotes the text around the error ('Unexpected token ..., "<text>" is not valid JSON'): keep the reason only
    let msg = (e as Error).message.replace(/, ".*is not valid JSON$/s, "");
    const at = /at position (\d+)/.exec(msg);
    if (at) {
      const before = text.slice(0, Number(at[1])).split("\n");
      msg += ` (line ${before.length}, column ${before.at(-1)!.length + 1})`;
    }
    throw new Error(`${where} is not valid JSON: ${msg}`, { cause: e });
  }
  // relative paths: from the folder the file really lies in (a symlinked config keeps its own paths)
  return checkTrainConfig(json, where, dirname(realpathSync(abs)));
}

/**
 * The value of one train flag: the command line's when it was given there (`explicit`), else
 * the config file's, else the command line's default (or undefined). Maps merge key by key,
 * the command line's keys winning.
 */
export function mergeTrainValue(flag: string, cliValue: unknown, explicit: boolean, config: TrainConfig | null): unknown {
  const fromFile = config?.values[flag];
  if (trainFlag(flag, "train").type === "map") {
    if (fromFile === undefined) return cliValue;
    return { ...(fromFile as Record<string, string>), ...((cliValue as Record<string, string> | undefined) ?? {}) };
  }
  if (explicit || fromFile === undefined) return cliValue;
  return fromFile;
}

