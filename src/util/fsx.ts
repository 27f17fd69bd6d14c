/**
 * Atomic file output: write to a temporary sibling, then rename, so no half-written file is ever visible.
 * A symlinked output is written through: the link's target is replaced (the temporary sibling lies
 * beside the target, so the rename stays on its file system) and the link is kept; an existing
 * target of another type (a device, FIFO or socket; a file where a folder goes) is never replaced.
 */
import { mkdirSync, renameSync, rmSync, writeFileSync, existsSync, openSync, writeSync, closeSync, fsyncSync, statSync, lstatSync } from "node:fs";
import { dirname, basename, join, resolve } from "node:path";
import { randomBytes } from "node:crypto";
import { assertReplaceableFile, fileTypeText, realTarget } from "./outpath.ts";

function tmpSibling(path: string): string {
  return join(dirname(path), `.${basename(path)}.tmp-${process.pid}-${randomBytes(4).toString("hex")}`);
}

/** Write a whole file atomically (temp file + rename). */
export function writeFileAtomic(path: string, data: string | Uint8Array): void {
  const target = realTarget(path);
  assertReplaceableFile(path, target);
  mkdirSync(dirname(target), { recursive: true });
  const tmp = tmpSibling(target);
  try {
    writeFileSync(tmp, data);
    renameSync(tmp, target);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
}

/** Write a directory atomically: `fill(tmpDir)` writes into a fresh temp dir which then replaces `dir`. */
export function writeDirAtomic(dir: string, fill: (tmpDir: string) => void): void {
  const target = realTarget(dir);
  assertReplaceableDir(dir, target);
  mkdirSync(dirname(target), { recursive: true });
  const tmp = tmpSibling(target);
  mkdirSync(tmp, { recursive: true });
  try {
    fill(tmp);
    if (existsSync(target)) {
      const old = tmpSibling(target);
      renameSync(target, old);
      renameSync(tmp, target);
      rmSync(old, { recursive: true, force: true });
    } else {
      renameSync(tmp, target);
    }
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
}

/** Throws unless an existing `target` (the real path of `dir`) is a folder. */
function assertReplaceableDir(dir: string, target: string): void {
  let st;
  try {
    st = lstatSync(target);
  } catch {
    return;
  }
  if (!st.isDirectory()) throw new Error(`${dir}${target !== resolve(dir) ? ` (${target})` : ""} is ${fileTypeText(st)}, not a folder; refusing to replace it`);
}

/**
 * Append-only line writer for JSONL logs that become visible only when complete:
 * lines go to a temp file, `commit()` renames it to the final path, `abort()` deletes it.
 */
export class AtomicLineWriter {
  private readonly tmp: string;
  private readonly target: string;
  private fd: number;
  constructor(readonly path: string) {
    this.target = realTarget(path);
    assertReplaceableFile(path, this.target);
    mkdirSync(dirname(this.target), { recursive: true });
    this.tmp = tmpSibling(this.target);
    this.fd = openSync(this.tmp, "w");
  }
  write(line: string): void {
    writeSync(this.fd, line.endsWith("\n") ? line : line + "\n");
  }
  commit(): void {
    fsyncSync(this.fd);
    closeSync(this.fd);
    this.fd = -1;
    renameSync(this.tmp, this.target);
  }
  abort(): void {
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = -1;
    rmSync(this.tmp, { force: true });
  }
}

/**
 * Fails fast, before any work, when `path` cannot be written: creates the folder
 * (`kind: "dir"`: `path` itself; `"file"`: its parent), writes and removes a probe
 * file there. The error names `what` (e.g. `--out`) and the path.
 */
export function checkWritable(path: string, kind: "file" | "dir", what: string): void {
  const dir = kind === "dir" ? path : dirname(path);
  try {
    if (kind === "file" && existsSync(path) && statSync(path).isDirectory()) throw new Error("it is a directory");
    if (kind === "file" && existsSync(path) && !statSync(path).isFile()) throw new Error(`it is ${fileTypeText(statSync(path))}`);
    mkdirSync(dir, { recursive: true });
    const probe = join(dir, `.mtlcraft-probe-${process.pid}-${randomBytes(4).toString("hex")}`);
    writeFileSync(probe, "");
    rmSync(probe, { force: true });
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    const why = err.code ? `${err.code}: ${err.message.replace(/^[A-Z]+: /, "")}` : err.message;
    throw new Error(`${what} ${path} is not writable (${why})`, { cause: e });
  }
}
