/**
 * Built-in datasets and spec resolution.
 *
 * - `kuairand`: the bundled KuaiRand-Pure slice (data/kuairand-pure, spec data/specs/kuairand.json).
 * - `wechat`: the 2021 WeChat Big Data Challenge layout in a folder the user points at
 *   (`wechat:<dir>` or name `wechat` + the `dataDir` option). Accepts `user_action.csv` /
 *   `feed_info.csv` (a full official copy, unchanged) or the `*_mini.csv` sample names.
 *   Default split for the full data: date_ 1..12 train, 13 val, 14 test (the official
 *   preliminary data spans days 1..14). For the `_mini` sample (99 rows, 4 days, and feed ids
 *   that do not occur in its feed_info) the split is by fraction 0.6/0.2/0.2 (seed 42) and
 *   single-class labels only warn.
 * - otherwise a path to a spec JSON file.
 */
import { existsSync, readFileSync, statSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { DataError } from "./errors.ts";
import { validateSpec, type DatasetSpec, type SplitSpec } from "./spec.ts";
import { didYouMean } from "../util/suggest.ts";

/** The repository's bundled data folder (data/). */
export function bundledDataDir(): string {
  return fileURLToPath(new URL("../../data/", import.meta.url));
}

export const BUILTIN_DATASETS = ["kuairand", "wechat"] as const;

export interface ResolvedSpec {
  spec: DatasetSpec;
  /** Folder relative source paths are resolved against. */
  baseDir: string;
}

/** Reads and validates a spec JSON file. */
export function loadSpecFile(path: string): DatasetSpec {
  if (!existsSync(path)) throw new DataError(`dataset spec file not found: ${path}`, { file: path });
  let obj: unknown;
  try {
    obj = JSON.parse(readFileSync(path, "utf8"));
  } catch (e) {
    throw new DataError(`dataset spec file ${path} is not valid JSON: ${(e as Error).message}`, { file: path });
  }
  try {
    return validateSpec(obj);
  } catch (e) {
    if (e instanceof DataError) throw new DataError(`${path}: ${e.message}`, { file: path });
    throw e;
  }
}

export function kuairandSpec(): ResolvedSpec {
  const file = join(bundledDataDir(), "specs", "kuairand.json");
  const spec = loadSpecFile(file);
  return { spec, baseDir: resolve(dirname(file), spec.dataDir ?? ".") };
}

function pick(dir: string, names: string[]): string {
  for (const n of names) if (existsSync(join(dir, n))) return n;
  throw new DataError(`WeChat data folder ${dir} has none of: ${names.join(", ")}`, { file: join(dir, names[0] ?? "") });
}

export interface WechatOptions {
  split?: SplitSpec;
}

/** Spec for the WeChat 2021 layout in `dir` (official column names; play/stay in ms, videoplayseconds in s). */
export function wechatSpec(dir: string, opts: WechatOptions = {}): ResolvedSpec {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new DataError(`WeChat data folder not found: ${dir}`, { file: dir });
  const actions = pick(dir, ["user_action.csv", "user_action_mini.csv", "user_action.parquet"]);
  const feeds = pick(dir, ["feed_info.csv", "feed_info_mini.csv", "feed_info.parquet"]);
  const mini = actions.includes("_mini");
  const split: SplitSpec =
    opts.split ??
    (mini ? { kind: "fraction", train: 0.6, val: 0.2, test: 0.2, seed: 42 } : { kind: "date", column: "date_", train: [1, 12], val: [13, 13], test: [14, 14] });
  const spec: DatasetSpec = {
    name: mini ? "wechat-mini" : "wechat",
    log: actions,
    joins: [{ path: feeds, on: "feedid", columns: ["authorid", "videoplayseconds", "bgm_song_id", "bgm_singer_id"] }],
    userColumn: "userid",
    itemColumn: "feedid",
    groupColumn: "userid",
    categorical: ["userid", "feedid", "authorid", "device", "bgm_song_id", "bgm_singer_id"],
    numeric: [{ name: "videoplayseconds_bucket", column: "videoplayseconds", buckets: 10 }],
    tasks: [
      { name: "ev", kind: "ev", watch: "play" },
      { name: "lv", kind: "lv", watch: "play" },
      { name: "cv", kind: "cv", watch: "play", duration: "videoplayseconds", durationScale: 1000 },
      { name: "like", kind: "column", column: "like" },
      { name: "follow", kind: "column", column: "follow" },
      { name: "forward", kind: "column", column: "forward" },
    ],
    split,
    ...(mini ? { singleClassLabels: "warn" as const } : {}),
  };
  return { spec: validateSpec(spec), baseDir: resolve(dir) };
}

/**
 * Resolves a dataset argument: a spec object, a built-in name (`kuairand`, `wechat` with
 * `dataDir`, `wechat:<dir>`), or a path to a spec JSON file.
 */
export function resolveSpec(target: string | DatasetSpec, opts: { dataDir?: string } = {}): ResolvedSpec {
  if (typeof target !== "string") {
    const spec = validateSpec(target);
    return { spec, baseDir: resolve(opts.dataDir ?? spec.dataDir ?? ".") };
  }
  if (target === "kuairand") {
    const r = kuairandSpec();
    return opts.dataDir ? { spec: r.spec, baseDir: resolve(opts.dataDir) } : r;
  }
  if (target === "wechat" || target.startsWith("wechat:")) {
    const dir = target === "wechat" ? opts.dataDir : target.slice("wechat:".length);
    if (!dir) throw new DataError("the wechat dataset needs a data folder: use wechat:<dir> or the dataDir option");
    return wechatSpec(dir);
  }
  if (existsSync(target) && statSync(target).isFile()) {
    const spec = loadSpecFile(target);
    const base = opts.dataDir ? resolve(opts.dataDir) : resolve(dirname(target), spec.dataDir ?? ".");
    return { spec, baseDir: base };
  }
  throw new DataError(`unknown dataset "${target}": not a built-in (${BUILTIN_DATASETS.join(", ")}) and no such spec file${didYouMean(target, BUILTIN_DATASETS)}`, { file: target });
}
