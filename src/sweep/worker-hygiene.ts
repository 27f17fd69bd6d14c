/**
 * A queue worker's housekeeping (src/sweep/queue.ts):
 *
 * - At start it removes the dead job folders in its `--work-dir`: a `job-*` folder is dead when
 *   no live process holds a lock inside it (a job's `train` locks its result and checkpoint,
 *   src/train/run.ts and src/util/lock.ts) and nothing in it changed for DEAD_GRACE_MS (a job
 *   another worker on the same folder starts right now has not taken its lock yet). Removal goes
 *   through removeInside: nothing outside the work folder is ever removed.
 * - Ctrl-C (SIGINT), SIGTERM or SIGHUP hand the worker's running jobs back to the queue at once
 *   (BullMQ moveToWait: waiting again, attempts untouched, another worker takes them within
 *   seconds) instead of leaving them to the stalled-job check (lock time + stall check, about
 *   a minute by default); their train processes are ended, then the worker exits.
 */
import { existsSync, lstatSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { processAlive, readLockOwner } from "../util/lock.ts";
import { killWorkers } from "./runner.ts";

/** A job folder younger than this (newest change) is never taken for dead. */
export const DEAD_GRACE_MS = 60_000;

/** Whether a live process holds a lock under `dir` (locks sit at most 2 folders deep), and the newest change time in it. */
function inspect(dir: string, depth: number, acc: { live: boolean; newest: number }): void {
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch {
    return;
  }
  for (const name of entries) {
    const p = join(dir, name);
    let st;
    try {
      st = lstatSync(p);
    } catch {
      continue;
    }
    acc.newest = Math.max(acc.newest, st.mtimeMs);
    if (st.isSymbolicLink()) continue; // never followed
    if (st.isFile() && name.endsWith(".lock")) {
      const owner = readLockOwner(p);
      if (owner !== null && processAlive(owner.pid)) acc.live = true;
    } else if (st.isDirectory() && depth < 3) inspect(p, depth + 1, acc);
  }
}

/**
 * Removes the dead `job-*` folders of `workDir` (see above) with `remove` (queue.ts removeInside).
 * Returns how many were removed; a folder that cannot be removed is named in the log and left.
 */
export function cleanWorkDir(workDir: string, remove: (dir: string) => void, log: (m: string) => void, graceMs = DEAD_GRACE_MS): number {
  if (!existsSync(workDir)) return 0;
  let removed = 0;
  const now = Date.now();
  for (const name of readdirSync(workDir)) {
    if (!/^job-[0-9a-f]{24}$/.test(name)) continue;
    const dir = join(workDir, name);
    let st;
    try {
      st = lstatSync(dir);
    } catch {
      continue;
    }
    if (!st.isDirectory()) continue;
    const acc = { live: false, newest: statSync(dir).mtimeMs };
    inspect(dir, 1, acc);
    if (acc.live || now - acc.newest < graceMs) continue;
    try {
      remove(dir);
      removed++;
    } catch (e) {
      log(`worker --work-dir: cannot remove the dead job folder ${dir}: ${(e as Error).message}`);
    }
  }
  if (removed > 0) log(`worker --work-dir ${workDir}: removed ${removed} dead job folder(s) (no process held them)`);
  return removed;
}

/**
 * Signal handlers of a worker process: the first SIGINT / SIGTERM / SIGHUP runs `stop` (hand the
 * running jobs back, close), bounded by `boundMs`, then exits (130 / 143 / 129); the process's
 * exit ends every train process still running. Returns a function that removes the handlers.
 */
export function handBackOnSignal(stop: () => Promise<void>, log: (m: string) => void, boundMs = 10_000): () => void {
  let stopping = false;
  const onSignal = (sig: NodeJS.Signals) => {
    const code = sig === "SIGINT" ? 130 : sig === "SIGHUP" ? 129 : 143;
    if (stopping) {
      killWorkers("SIGKILL");
      process.exit(code);
    }
    stopping = true;
    const bound = setTimeout(() => {
      log(`worker: stopping took longer than ${boundMs / 1000} s; exiting`);
      process.exit(code);
    }, boundMs);
    bound.unref();
    void stop()
      .catch((e: unknown) => log(`worker: ${(e as Error).message}`))
      .finally(() => process.exit(code));
  };
  const onExit = () => killWorkers("SIGTERM");
  const sigs: NodeJS.Signals[] = ["SIGINT", "SIGTERM", "SIGHUP"];
  for (const s of sigs) process.on(s, onSignal);
  process.on("exit", onExit);
  return () => {
    for (const s of sigs) process.removeListener(s, onSignal);
    process.removeListener("exit", onExit);
  };
}
