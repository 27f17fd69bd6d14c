/**
 * Output paths must never destroy good data: the one place where every command that writes
 * (`train --out/--checkpoint`, `export --out`, `score --out`, `bench --out`) checks, before any
 * work, what its output would replace.
 *
 * Paths are compared as real paths (symlinks followed; for a path that does not exist yet, the
 * real path of its nearest existing ancestor plus the rest), so a symlink or a `..` detour cannot
 * make an output land on an input. `checkOutput` refuses:
 * - an output that is an input (same real path, or the same file through a hard link), lies
 *   inside an input folder, or (a folder output, which is replaced as a whole) contains an input;
 * - an output inside an mtlcraft folder: an exported model, a checkpoint, a run's model artefact
 *   (`<result>.model`) or a prepared dataset;
 * - replacing something of another kind: a file output replaces only a regular file, an export
 *   only an export (or an empty folder), a checkpoint only a checkpoint, an artefact only an
 *   artefact; devices, FIFOs and sockets are never replaced.
 * Each message names the option (`--out`, `--checkpoint`), the path as given, and why.
 *
 * The writers (src/util/fsx.ts) write through a symlinked output: the link's target is replaced
 * (its temporary sibling created beside the target), the link itself is kept.
 */
import { lstatSync, readdirSync, readFileSync, readlinkSync, realpathSync, statSync, type Stats } from "node:fs";
import { basename, dirname, isAbsolute, join, relative, resolve, sep } from "node:path";

/** An mtlcraft folder, recognised by its own files (see folderKind). */
export type FolderKind = "export" | "checkpoint" | "artifact" | "dataset";

/** What an output is: a plain file, one kind of mtlcraft folder, or a folder written into (bench). */
export type OutputKind = "file" | "export" | "checkpoint" | "artifact" | "folder";

/** Something a command reads: `what` names it in messages (`--input`, `the source`). */
export interface InputPath {
  what: string;
  path: string;
}

const KIND_TEXT: Record<FolderKind, string> = {
  export: "an exported mtlcraft model",
  checkpoint: "a training checkpoint",
  artifact: "a run's model artefact",
  dataset: "a prepared dataset",
};

/** What an mtlcraft folder is called in messages. */
export function folderKindText(k: FolderKind): string {
  return KIND_TEXT[k];
}

function lstatOrNull(p: string): Stats | null {
  try {
    return lstatSync(p);
  } catch {
    return null;
  }
}

/**
 * The real path `path` refers to: symlinks followed (a dangling link: the path it points at);
 * for a missing path, the real path of its nearest existing ancestor plus the rest.
 */
export function realTarget(path: string): string {
  let p = resolve(path);
  for (let hops = 0; hops < 40; hops++) {
    try {
      return realpathSync(p);
    } catch {
      /* missing, or a dangling link somewhere */
    }
    const st = lstatOrNull(p);
    if (st?.isSymbolicLink()) {
      // a dangling link: where it points (relative to the real folder it lies in)
      const to = readlinkSync(p);
      p = isAbsolute(to) ? to : join(realTarget(dirname(p)), to);
      continue;
    }
    const parent = dirname(p);
    if (parent === p) return p;
    return join(realTarget(parent), basename(p));
  }
  throw new Error(`${path}: too many levels of symbolic links`);
}

/** What a non-regular, non-folder file is, for messages. */
export function fileTypeText(st: Stats): string {
  if (st.isFIFO()) return "a FIFO (named pipe)";
  if (st.isCharacterDevice()) return "a character device";
  if (st.isBlockDevice()) return "a block device";
  if (st.isSocket()) return "a socket";
  if (st.isSymbolicLink()) return "a symbolic link";
  if (st.isDirectory()) return "a folder";
  return "a regular file";
}

function readJson(p: string): Record<string, unknown> | null {
  try {
    const st = statSync(p);
    if (!st.isFile() || st.size > 256 * 1024 * 1024) return null;
    const v = JSON.parse(readFileSync(p, "utf8")) as unknown;
    return v !== null && typeof v === "object" && !Array.isArray(v) ? (v as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

function formatOf(p: string): string | null {
  const st = lstatOrNull(p);
  if (!st) return null;
  const f = readJson(p)?.format;
  return typeof f === "string" ? f : null;
}

/**
 * Which mtlcraft folder `dir` is, by its own files, or null for anything else:
 * - export: `checksums.json` of format mtlcraft-export-* (src/deploy/model.ts);
 * - checkpoint / artifact: `checksums.json` or `state.json` of format mtlcraft-checkpoint-*
 *   (src/train/checkpoint.ts); an artefact's state records `json.artifact` (src/train/artifact.ts);
 * - dataset: `manifest.json` of format mtlcraft-dataset (src/data/manifest.ts).
 */
export function folderKind(dir: string): FolderKind | null {
  const st = lstatOrNull(dir);
  if (!st) return null;
  if (st.isSymbolicLink()) return folderKind(realTarget(dir));
  if (!st.isDirectory()) return null;
  const sums = formatOf(join(dir, "checksums.json"));
  if (sums?.startsWith("mtlcraft-export-")) return "export";
  const stateFile = join(dir, "state.json");
  const state = lstatOrNull(stateFile) ? readJson(stateFile) : null;
  const stateFormat = typeof state?.format === "string" ? state.format : null;
  if (sums?.startsWith("mtlcraft-checkpoint-") || stateFormat?.startsWith("mtlcraft-checkpoint-")) {
    const json = state?.json;
    const art = json !== null && typeof json === "object" && !Array.isArray(json) ? (json as Record<string, unknown>).artifact : undefined;
    return art !== undefined ? "artifact" : "checkpoint";
  }
  if (formatOf(join(dir, "manifest.json")) === "mtlcraft-dataset") return "dataset";
  return null;
}

/** Whether `path` lies strictly inside `root` (both absolute and already real paths): the one containment test of every confinement. */
export function strictlyInside(root: string, path: string): boolean {
  const rel = relative(root, path);
  return rel !== "" && rel !== ".." && !rel.startsWith(`..${sep}`) && !isAbsolute(rel);
}

function within(child: string, parent: string): boolean {
  return strictlyInside(parent, child);
}

function sameFile(a: string, b: string): boolean {
  try {
    const x = statSync(a);
    const y = statSync(b);
    return x.dev === y.dev && x.ino === y.ino;
  } catch {
    return false;
  }
}

function isEmptyDir(dir: string): boolean {
  try {
    return statSync(dir).isDirectory() && readdirSync(dir).length === 0;
  } catch {
    return false;
  }
}

/**
 * The mtlcraft folder (export, checkpoint, artefact, prepared dataset) that `real` lies inside,
 * if any: the nearest one among its ancestors.
 */
export function enclosingFolder(real: string): { dir: string; kind: FolderKind } | null {
  for (let d = dirname(real); ; d = dirname(d)) {
    const k = folderKind(d);
    if (k) return { dir: d, kind: k };
    if (dirname(d) === d) return null;
  }
}

/**
 * Checks that the output `path` (named `what` in messages: `--out`, `--checkpoint`) may be
 * written as `kind` (see the module comment), given the paths the command reads. Throws an
 * Error naming the option, the path and why; returns the real path to write (a symlinked
 * output is written through: its target is replaced, the link kept).
 */
export function checkOutput(what: string, path: string, kind: OutputKind, inputs: readonly InputPath[] = []): string {
  const real = realTarget(path);
  const shown = `${what} ${path}${real !== resolve(path) ? ` (${real})` : ""}`;
  const st = lstatOrNull(real);
  if (st) {
    if (!st.isFile() && !st.isDirectory()) throw new Error(`${shown} is ${fileTypeText(st)}, not a regular file; refusing to replace it`);
    if (kind === "file") {
      if (st.isDirectory()) {
        const k = folderKind(real);
        throw new Error(`${shown} is ${k ? folderKindText(k) : "a folder"}; give a file path`);
      }
    } else {
      if (!st.isDirectory()) throw new Error(`${shown} is a file; give a folder`);
      const k = folderKind(real);
      if (kind === "folder") {
        if (k) throw new Error(`${shown} is ${folderKindText(k)}; refusing to write into it`);
      } else if (k !== kind && !isEmptyDir(real)) {
        const want = folderKindText(kind);
        throw new Error(
          k
            ? `${shown} exists and is ${folderKindText(k)}, not ${want}; refusing to replace it (${want} replaces only ${want} or an empty folder)`
            : `${shown} exists and is a folder that is not ${want} (nor empty); refusing to replace it`,
        );
      }
    }
  }
  const enc = enclosingFolder(real);
  if (enc) throw new Error(`${shown} lies inside ${folderKindText(enc.kind)} (${enc.dir}); refusing to write there`);
  for (const inp of inputs) {
    const r = realTarget(inp.path);
    if (r === real || sameFile(r, real)) throw new Error(`${shown} is ${inp.what} ${inp.path}; an output must not replace an input`);
    if (within(real, r)) throw new Error(`${shown} lies inside ${inp.what} ${inp.path}; an output must not be written into an input`);
    if (kind !== "file" && kind !== "folder" && within(r, real)) throw new Error(`${shown} contains ${inp.what} ${inp.path}; replacing it would delete an input`);
  }
  return real;
}

/**
 * Fails fast when an existing `path` is not a regular file (a device, FIFO, socket or folder):
 * the writers replace only regular files.
 */
export function assertReplaceableFile(path: string, real: string): void {
  const st = lstatOrNull(real);
  if (st && !st.isFile()) throw new Error(`${path}${real !== resolve(path) ? ` (${real})` : ""} is ${fileTypeText(st)}, not a regular file; refusing to replace it`);
}
