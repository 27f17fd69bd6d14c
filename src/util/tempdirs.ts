/**
 * The temporary files and folders of the running command (score's work folder and temporary
 * output, export's temporary model folder), so that none is left behind:
 *
 * - `registerTemp(path)` / `unregisterTemp(path)`: while any path is registered, SIGINT, SIGTERM
 *   and SIGHUP remove every registered path (synchronously, recursively) and exit with 128 + the
 *   signal's number (130, 143, 129), and any other exit (process.exit from elsewhere, an uncaught
 *   error) removes them too. With nothing registered the handlers are gone, so the signals behave
 *   as they would without this module; and when the program has its own listener for the signal
 *   (a server using the library), that listener decides whether and when to exit, and the paths
 *   are removed at exit. The command still removes its paths itself when it ends
 *   (its `finally`), then unregisters them.
 * - `removeStaleTemps(dir)`: what a killed command (SIGKILL, a crash, a power cut) left in `dir`,
 *   removed at the next start of score or export there. The names hold their owner's pid:
 *   `.mtlcraft-score-<pid>-XXXXXX` (score's work folder), `.<name>.tmp-<pid>-<8 hex>` (a
 *   temporary output: score, export, fsx.ts) and `.<name>.old-<pid>-<8 hex>` (an earlier export
 *   moved aside for the moment of the swap). An entry is stale when no process with that pid is
 *   alive (src/util/lock.ts `processAlive`; this process's own are never stale: it may run
 *   several commands at once). A stale `.old-` whose `<name>` is missing is the only copy left of
 *   that export (the owner died between the two renames of the swap): it is renamed back to
 *   `<name>`, not removed.
 *
 * Limits: pids are this machine's. On a folder shared by several machines (NFS) a live command of
 * another machine whose pid is free here would lose its temporary files; score and export there
 * should not run at the same time from several machines.
 */
import { lstatSync, readdirSync, renameSync, rmSync } from "node:fs";
import { join } from "node:path";
import { processAlive } from "./lock.ts";

const registered = new Set<string>();

/** Exit codes on a signal: 128 + its number, as a shell reports a process it killed. */
const EXIT_CODES = { SIGINT: 130, SIGTERM: 143, SIGHUP: 129 } as const;
type HandledSignal = keyof typeof EXIT_CODES;
const SIGNALS = Object.keys(EXIT_CODES) as HandledSignal[];

let installed = false;

/** Removes every registered path (never throws: an exit must go on). */
function removeAll(): void {
  for (const p of registered) {
    try {
      rmSync(p, { recursive: true, force: true });
    } catch {
      /* nothing more can be done while exiting */
    }
  }
  registered.clear();
}

function onSignal(sig: NodeJS.Signals): void {
  // An application that handles the signal itself (a server scoring with scoreRows) decides how
  // to stop: its in-flight work keeps its folders, and the "exit" listener removes them at exit.
  if (process.listenerCount(sig) > 1) return;
  removeAll();
  process.exit(EXIT_CODES[sig as HandledSignal] ?? 1);
}

function install(): void {
  if (installed) return;
  installed = true;
  for (const s of SIGNALS) process.on(s, onSignal);
  process.on("exit", removeAll);
}

function uninstall(): void {
  if (!installed) return;
  installed = false;
  for (const s of SIGNALS) process.removeListener(s, onSignal);
  process.removeListener("exit", removeAll);
}

/** Registers a temporary file or folder of the running command: removed on SIGINT/SIGTERM/SIGHUP or exit. */
export function registerTemp(path: string): void {
  registered.add(path);
  install();
}

/** Unregisters a path (after the command removed or renamed it); the last one removes the handlers. */
export function unregisterTemp(path: string): void {
  registered.delete(path);
  if (registered.size === 0) uninstall();
}

/** The registered paths (for tests). */
export function registeredTemps(): string[] {
  return [...registered];
}

const SCORE_WORK = /^\.mtlcraft-score-(\d+)-[A-Za-z0-9]{6}$/;
const TMP_OR_OLD = /^\.(.+)\.(tmp|old)-(\d+)-[0-9a-f]{8}$/;

function exists(path: string): boolean {
  try {
    lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * Removes the stale temporary entries of dead score/export commands in `dir` (see the module
 * comment); a stale `.<name>.old-*` folder whose `<name>` is missing is renamed back instead.
 * Returns the names removed or restored. Never throws: a folder that cannot be read or an entry
 * that another process removes first is skipped.
 */
export function removeStaleTemps(dir: string, log: (msg: string) => void = () => {}): string[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  const done: string[] = [];
  for (const name of names) {
    const w = SCORE_WORK.exec(name);
    const t = w ? null : TMP_OR_OLD.exec(name);
    const pid = Number(w ? w[1] : t ? t[3] : NaN);
    if (!(Number.isSafeInteger(pid) && pid > 0) || pid === process.pid || processAlive(pid)) continue;
    const path = join(dir, name);
    try {
      if (t && t[2] === "old" && !exists(join(dir, t[1]!)) && lstatSync(path).isDirectory()) {
        renameSync(path, join(dir, t[1]!));
        log(`restored ${join(dir, t[1]!)} from ${name} (an export stopped in the middle of replacing it)`);
      } else {
        rmSync(path, { recursive: true, force: true });
        log(`removed ${path} (left by process ${pid}, which is no longer running)`);
      }
      done.push(name);
    } catch {
      /* removed or restored by another process first */
    }
  }
  return done;
}
