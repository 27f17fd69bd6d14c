/**
 * src/util/tempdirs.ts: registered temporary folders are removed on SIGINT/SIGTERM (exit 130/143)
 * and on exit; with nothing registered a signal kills as usual; the stale temporary entries of
 * dead processes are removed (an export moved aside whose folder is missing is restored), those of
 * live processes and of this process are kept.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { processAlive } from "../../src/util/lock.ts";
import { registeredTemps, registerTemp, removeStaleTemps, unregisterTemp } from "../../src/util/tempdirs.ts";
import { tempDir } from "../data/helpers.ts";

/** The pid of a process that has exited. */
function deadPid(): number {
  const pid = spawnSync("true").pid;
  assert.ok(pid > 0 && !processAlive(pid));
  return pid;
}

async function stopped(dir: string, sig: NodeJS.Signals, mode = ""): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  const child = spawn(process.execPath, ["--import", "tsx", join("test", "util", "tempdirs-child.ts"), dir, mode], { stdio: ["ignore", "pipe", "inherit"] });
  await new Promise<void>((resolve, reject) => {
    child.stdout.on("data", (b: Buffer) => (String(b).includes("ready") ? resolve() : undefined));
    child.once("exit", () => reject(new Error("the child exited before it was ready")));
  });
  child.kill(sig);
  return new Promise((resolve) => child.once("exit", (code, signal) => resolve({ code, signal })));
}

test("SIGTERM and SIGINT remove the registered folders and exit 143 and 130; with nothing registered the signal kills as usual; a program's own handler decides", async () => {
  const root = tempDir("tempdirs-sig");
  assert.deepEqual(await stopped(join(root, "a"), "SIGTERM"), { code: 143, signal: null });
  assert.equal(existsSync(join(root, "a")), false, "the registered folder was removed");
  assert.deepEqual(await stopped(join(root, "b"), "SIGINT"), { code: 130, signal: null });
  assert.equal(existsSync(join(root, "b")), false);
  // unregistered (the command removed or renamed it itself): left alone, and the handlers are gone
  assert.deepEqual(await stopped(join(root, "c"), "SIGTERM", "unregister"), { code: null, signal: "SIGTERM" });
  assert.equal(existsSync(join(root, "c", "work.bin")), true);
  // a program with its own SIGTERM handler decides when to exit; the folder is removed at its exit
  assert.deepEqual(await stopped(join(root, "d"), "SIGTERM", "app"), { code: 0, signal: null });
  assert.equal(existsSync(join(root, "d")), false);
});

test("register / unregister keep the set of paths; the last unregister removes the signal handlers", () => {
  const before = process.listenerCount("SIGTERM");
  registerTemp("/nonexistent/a");
  registerTemp("/nonexistent/b");
  assert.equal(process.listenerCount("SIGTERM"), before + 1);
  assert.deepEqual(registeredTemps().sort(), ["/nonexistent/a", "/nonexistent/b"]);
  unregisterTemp("/nonexistent/a");
  assert.equal(process.listenerCount("SIGTERM"), before + 1);
  unregisterTemp("/nonexistent/b");
  assert.equal(process.listenerCount("SIGTERM"), before);
  assert.deepEqual(registeredTemps(), []);
});

test("removeStaleTemps removes what dead processes left, restores an export moved aside whose folder is missing, keeps live ones", async () => {
  const dir = tempDir("tempdirs-stale");
  const dead = deadPid();
  const live = spawn("sleep", ["30"], { stdio: "ignore" });
  try {
    const mk = (name: string, file = "x"): void => {
      mkdirSync(join(dir, name));
      writeFileSync(join(dir, name, file), name);
    };
    mk(`.mtlcraft-score-${dead}-Ab12Cd`, "work.duckdb");
    writeFileSync(join(dir, `.scores.parquet.tmp-${dead}-0a1b2c3d`), "half written");
    mk(`.model.tmp-${dead}-0a1b2c3d`);
    mk("model", "new");
    mk(`.model.old-${dead}-deadbeef`); // the export finished its swap but not its cleanup: removed
    mk(`.lost.old-${dead}-0badf00d`, "only-copy"); // died between the renames: `lost` is missing, restored
    // kept: live owners (another process, this one), names that are not ours
    mk(`.mtlcraft-score-${live.pid}-Ab12Cd`);
    mk(`.mtlcraft-score-${process.pid}-Ab12Cd`);
    writeFileSync(join(dir, `.other.tmp-${live.pid}-0a1b2c3d`), "");
    writeFileSync(join(dir, `.notes.tmp-${dead}`), ""); // no random tag: not one of ours
    writeFileSync(join(dir, "scores.parquet"), "good");
    const logs: string[] = [];
    const done = removeStaleTemps(dir, (m) => logs.push(m));
    assert.deepEqual(done.sort(), [`.lost.old-${dead}-0badf00d`, `.model.old-${dead}-deadbeef`, `.model.tmp-${dead}-0a1b2c3d`, `.mtlcraft-score-${dead}-Ab12Cd`, `.scores.parquet.tmp-${dead}-0a1b2c3d`].sort());
    assert.deepEqual(readdirSync(dir).sort(), [`.mtlcraft-score-${live.pid}-Ab12Cd`, `.mtlcraft-score-${process.pid}-Ab12Cd`, `.notes.tmp-${dead}`, `.other.tmp-${live.pid}-0a1b2c3d`, "lost", "model", "scores.parquet"].sort());
    assert.equal(readFileSync(join(dir, "lost", "only-copy"), "utf8"), `.lost.old-${dead}-0badf00d`);
    assert.equal(readFileSync(join(dir, "model", "new"), "utf8"), "model");
    assert.ok(logs.some((m) => m.includes(`restored ${join(dir, "lost")}`)) && logs.some((m) => m.includes(`left by process ${dead}`)), logs.join("\n"));
    assert.deepEqual(removeStaleTemps(join(dir, "missing")), []);
  } finally {
    live.kill("SIGKILL");
    await new Promise((r) => live.once("exit", r));
  }
});
