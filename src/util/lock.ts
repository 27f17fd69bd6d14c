/**
 * Owner-pid lock files: a lock is a small JSON file {pid, host, since} created
 * atomically (hard link of a complete temp file, which fails if the lock exists).
 * A lock whose owner process is dead on this host (process.kill(pid, 0) throws ESRCH)
 * is stale and taken over; a live owner makes acquireLock throw, naming the pid.
 */
import { closeSync, linkSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, writeSync } from "node:fs";
import { dirname } from "node:path";
import { hostname } from "node:os";
import { randomBytes } from "node:crypto";

export interface LockOwner {
  pid: number;
  host: string;
  since: string;
}

export interface Lock {
  readonly path: string;
  /** Removes the lock if this process still owns it (idempotent). */
  release(): void;
}

/** Whether a process with this pid exists (EPERM: it exists but belongs to someone else). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

export function readLockOwner(path: string): LockOwner | null {
  try {
    const o = JSON.parse(readFileSync(path, "utf8")) as Partial<LockOwner>;
    if (typeof o.pid !== "number" || !Number.isInteger(o.pid) || o.pid <= 0) return null;
    return { pid: o.pid, host: typeof o.host === "string" ? o.host : "", since: typeof o.since === "string" ? o.since : "" };
  } catch {
    return null;
  }
}

function ownerAlive(o: LockOwner | null): boolean {
  if (o === null) return false; // unreadable or garbled: no owner can be proven, treat as stale
  if (o.host && o.host !== hostname()) return true; // cannot check another machine's processes
  return processAlive(o.pid);
}

/**
 * Takes the lock at `path` for this process, taking over a stale one. Throws when a
 * live process holds it; `what` names the locked thing in the message.
 */
export function acquireLock(path: string, what: string): Lock {
  mkdirSync(dirname(path), { recursive: true });
  const me: LockOwner = { pid: process.pid, host: hostname(), since: new Date().toISOString() };
  const tmp = `${path}.${process.pid}-${randomBytes(4).toString("hex")}.tmp`;
  const fd = openSync(tmp, "w");
  writeSync(fd, JSON.stringify(me) + "\n");
  closeSync(fd);
  try {
    for (let attempt = 0; attempt < 5; attempt++) {
      try {
        linkSync(tmp, path); // atomic: fails with EEXIST when the lock exists
        return held(path);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
      }
      const owner = readLockOwner(path);
      if (ownerAlive(owner)) {
        throw new Error(
          `${what} is in use by process ${owner!.pid}${owner!.host && owner!.host !== me.host ? ` on ${owner!.host}` : ""} since ${owner!.since} ` +
            `(lock file ${path}); wait for it to finish or stop it. The lock is taken over once that process has exited.`,
        );
      }
      // Stale: move it aside, and make sure what we moved is the stale lock we inspected.
      const aside = `${path}.stale-${process.pid}-${randomBytes(4).toString("hex")}`;
      try {
        renameSync(path, aside);
      } catch {
        continue; // another process took it over first; look again
      }
      const moved = readLockOwner(aside);
      if (moved !== null && owner !== null && (moved.pid !== owner.pid || moved.since !== owner.since)) {
        // a live lock created in between: put it back and look again
        try {
          linkSync(aside, path);
        } catch {
          /* someone holds it now anyway */
        }
      }
      rmSync(aside, { force: true });
    }
    throw new Error(`${what}: could not take the lock ${path} (it keeps changing owner)`);
  } finally {
    rmSync(tmp, { force: true });
  }
}

function held(path: string): Lock {
  let released = false;
  const release = () => {
    if (released) return;
    released = true;
    process.removeListener("exit", release);
    if (readLockOwner(path)?.pid === process.pid) rmSync(path, { force: true });
  };
  process.on("exit", release);
  return { path, release };
}
