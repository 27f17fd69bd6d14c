/** Atomic file output: write to a temporary sibling, then rename, so no half-written file is ever visible. */
import { mkdirSync, renameSync, rmSync, writeFileSync, existsSync, openSync, writeSync, closeSync, fsyncSync, statSync } from "node:fs";
import { dirname, basename, join } from "node:path";
import { randomBytes } from "node:crypto";

function tmpSibling(path: string): string {
  return join(dirname(path), `.${basename(path)}.tmp-${process.pid}-${randomBytes(4).toString("hex")}`);
}

/** Write a whole file atomically (temp file + rename). */
export function writeFileAtomic(path: string, data: string | Uint8Array): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = tmpSibling(path);
  try {
    writeFileSync(tmp, data);
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
}

/** Write a directory atomically: `fill(tmpDir)` writes into a fresh temp dir which then replaces `dir`. */
export function writeDirAtomic(dir: string, fill: (tmpDir: string) => void): void {
  mkdirSync(dirname(dir), { recursive: true });
  const tmp = tmpSibling(dir);
  mkdirSync(tmp, { recursive: true });
  try {
    fill(tmp);
    if (existsSync(dir)) {
      const old = tmpSibling(dir);
      renameSync(dir, old);
      renameSync(tmp, dir);
      rmSync(old, { recursive: true, force: true });
    } else {
      renameSync(tmp, dir);
    }
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
}

/**
 * Append-only line writer for JSONL logs that become visible only when complete:
 * lines go to a temp file, `commit()` renames it to the final path, `abort()` deletes it.
 */
export class AtomicLineWriter {
  private readonly tmp: string;
  private fd: number;
  constructor(readonly path: string) {
    mkdirSync(dirname(path), { recursive: true });
    this.tmp = tmpSibling(path);
    this.fd = openSync(this.tmp, "w");
  }
  write(line: string): void {
    writeSync(this.fd, line.endsWith("\n") ? line : line + "\n");
  }
  commit(): void {
    fsyncSync(this.fd);
    closeSync(this.fd);
    this.fd = -1;
    renameSync(this.tmp, this.path);
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
