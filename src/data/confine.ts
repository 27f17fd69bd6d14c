/**
 * Confinement of a dataset spec's input paths to one folder (prepare's `confineTo` option).
 * A spec that came from elsewhere (a queue job: src/sweep/queue.ts) names files by relative or
 * absolute paths; each must resolve, by real path (symlinks followed, `..` collapsed), to a file
 * strictly inside the folder, or prepare stops before it opens, hashes or even tests the
 * existence of anything outside. Errors name the spec key (`spec.joins[0].path`) and the value
 * as the spec writes it, never where it leads or what the file holds.
 */
import { existsSync, lstatSync, realpathSync, statSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { DataError } from "./errors.ts";
import { strictlyInside } from "../util/outpath.ts";
import type { DatasetSpec } from "./spec.ts";

/**
 * The environment variable through which a queue worker confines the `train` process it starts
 * (prepareDataset reads it when its confineTo option is not given): the child prepares the
 * queued spec again, and checks its paths again, so a file swapped for a link between the
 * worker's check and the child's read is refused too.
 */
export const CONFINE_DATA_ENV = "MTLCRAFT_CONFINE_DATA";

const SPLITS = ["train", "val", "test"] as const;

/** A spec path outside the confining folder: its message holds the spec key and value only. */
export class OutsideDataFolderError extends DataError {
  constructor(message: string, file: string) {
    super(message, { file });
    this.name = "OutsideDataFolderError";
  }
}


/** Whether `path` is `root` or lies inside it. */
function insideOrAt(root: string, path: string): boolean {
  return path === root || strictlyInside(root, path);
}

/**
 * The real path of `path`: symlinks followed. For a path that does not exist yet, the real
 * path of its nearest existing ancestor with the rest appended. Null for a broken symlink.
 */
function realPathOf(path: string): string | null {
  let p = resolve(path);
  const rest: string[] = [];
  for (;;) {
    let linkOrFile = false;
    try {
      lstatSync(p);
      linkOrFile = true;
    } catch {
      /* does not exist */
    }
    if (linkOrFile) {
      try {
        return join(realpathSync(p), ...rest);
      } catch {
        return null; // a symlink that leads nowhere (or a loop)
      }
    }
    const up = dirname(p);
    if (up === p) return join(p, ...rest);
    rest.unshift(basename(p));
    p = up;
  }
}

const short = (v: string): string => JSON.stringify(v.length > 60 ? `${v.slice(0, 57)}...` : v);

/**
 * Throws a DataError unless every input path of `spec`, resolved against `baseDir`, lies by
 * real path inside `root`, and `baseDir` itself is `root` or inside it. `baseKey` names where
 * `baseDir` came from in messages (e.g. `spec.dataDir`).
 */
export function confineSpecPaths(spec: DatasetSpec, baseDir: string, root: string, baseKey: string): void {
  if (!existsSync(root) || !statSync(root).isDirectory()) throw new OutsideDataFolderError("the worker's data folder (--data-dir) is not a folder", "");
  const realRoot = realpathSync(root);
  const outside: (key: string, value: string, why: string) => never = (key, value, why) => {
    throw new OutsideDataFolderError(`${key} (${short(value)}) ${why}; a dataset from a queue may only read files inside the worker's data folder (--data-dir)`, basename(value));
  };
  const base = realPathOf(baseDir);
  if (base === null || !insideOrAt(realRoot, base)) outside(baseKey, baseDir, "is outside the data folder");
  const check = (key: string, value: unknown): void => {
    if (typeof value !== "string") return; // the schema (validateSpec) reports it
    // lexically first (no file outside is even looked at), then by real path (symlinks followed)
    const lexical = resolve(baseDir, value);
    if (!strictlyInside(resolve(root), lexical) && !strictlyInside(realRoot, lexical)) outside(key, value, "resolves outside the data folder");
    const real = realPathOf(lexical);
    if (real === null) outside(key, value, "is a symbolic link that leads nowhere");
    if (!strictlyInside(realRoot, real)) outside(key, value, "leads outside the data folder (through a symbolic link)");
  };
  const list = (key: string, v: unknown): void => {
    if (Array.isArray(v)) v.forEach((x, i) => check(`${key}[${i}]`, x));
    else check(key, v);
  };
  list("spec.log", spec.log);
  const split = spec.split as unknown as Record<string, unknown> | undefined;
  if (split && split.kind === "files") for (const s of SPLITS) list(`spec.split.${s}`, split[s]);
  (spec.joins ?? []).forEach((j, i) => check(`spec.joins[${i}].path`, (j as { path?: unknown }).path));
}
