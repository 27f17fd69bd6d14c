/**
 * The cache folder: where prepared datasets live (DEFAULT_CACHE_DIR), the manifest of an existing
 * cache, and the `.tmp-*` work folders of prepares (named by pid and host, so the ones a killed
 * prepare left behind can be found and removed).
 */
import { existsSync, readdirSync, rmSync, statSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { loadManifest } from "./integrity.ts";
import type { Manifest } from "./manifest.ts";

export const DEFAULT_CACHE_DIR = ".cache/datasets";

export function readManifest(dir: string): Manifest | null {
  if (!existsSync(join(dir, "manifest.json"))) return null;
  try {
    return loadManifest(dir);
  } catch {
    return null;
  }
}

/** Host name as it appears in temp folder names (no '-', so the name parses back). */
export function hostTag(): string {
  return hostname().replace(/[^A-Za-z0-9_.]/g, "_").slice(0, 64) || "host";
}

const TMP_RE = /\.pid(\d+)@([A-Za-z0-9_.]+)-[^-]+$/;
/** Temp folders of the old naming (no pid) are removed once they are this old. */
const LEGACY_TMP_AGE_MS = 24 * 3600 * 1000;

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    // EPERM: the process exists but belongs to someone else.
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

/**
 * Removes `.tmp-*` work folders left in `cacheRoot` by a prepare that was killed: the folder name
 * holds the pid and host of its owner (`.tmp-<name>.pid<pid>@<host>-XXXXXX`); it is removed when
 * that host is this one and no process with that pid is alive. Folders of the old naming (no pid)
 * are removed when untouched for a day. Returns the removed folder names.
 */
export function removeStaleTemps(cacheRoot: string, log: (m: string) => void = () => {}): string[] {
  if (!existsSync(cacheRoot)) return [];
  const removed: string[] = [];
  const host = hostTag();
  for (const name of readdirSync(cacheRoot)) {
    if (!name.startsWith(".tmp-")) continue;
    const path = join(cacheRoot, name);
    const m = TMP_RE.exec(name);
    let stale: boolean;
    if (m) stale = m[2] === host && !processAlive(Number(m[1]));
    else {
      try {
        stale = Date.now() - statSync(path).mtimeMs > LEGACY_TMP_AGE_MS;
      } catch {
        stale = false;
      }
    }
    if (!stale) continue;
    rmSync(path, { recursive: true, force: true });
    removed.push(name);
    log(`removed stale work folder ${path} (left by a prepare that did not finish)`);
  }
  return removed;
}
