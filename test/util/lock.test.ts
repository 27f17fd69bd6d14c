import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { acquireLock, processAlive, readLockOwner } from "../../src/util/lock.ts";
import { tempDir } from "../data/helpers.ts";

/** The pid of a process that has exited. */
function deadPid(): number {
  const r = spawnSync(process.execPath, ["-e", "process.stdout.write(String(process.pid))"], { encoding: "utf8" });
  const pid = Number(r.stdout);
  assert.equal(processAlive(pid), false);
  return pid;
}

test("a lock holds the owner's pid, refuses a second taker while the owner lives, and is removed on release", async () => {
  const path = join(tempDir("lock"), "a", "job.lock");
  const own = acquireLock(path, "job A");
  assert.equal(readLockOwner(path)!.pid, process.pid);
  // held by this (live) process: a second acquire is refused, naming the pid
  assert.throws(() => acquireLock(path, "job A"), new RegExp(`job A is in use by process ${process.pid} .*lock file`));
  own.release();
  assert.equal(existsSync(path), false);
  own.release(); // idempotent

  // held by another live process
  const child = spawn(process.execPath, ["-e", "setTimeout(() => {}, 30000)"], { stdio: "ignore" });
  try {
    writeFileSync(path, JSON.stringify({ pid: child.pid, host: hostname(), since: "t" }));
    assert.throws(() => acquireLock(path, "job A"), new RegExp(`in use by process ${child.pid} since t`));
    assert.equal(readLockOwner(path)!.pid, child.pid, "a live owner's lock is left alone");
  } finally {
    child.kill("SIGKILL");
    await new Promise((r) => child.once("exit", r));
  }
  // the owner is dead now: the lock is stale and taken over
  const taken = acquireLock(path, "job A");
  assert.equal(readLockOwner(path)!.pid, process.pid);
  taken.release();
});

test("stale locks (dead pid, garbled content) are taken over; no temporary files are left", () => {
  const dir = tempDir("lock2");
  const path = join(dir, "x.lock");
  writeFileSync(path, JSON.stringify({ pid: deadPid(), host: hostname(), since: "old" }));
  const a = acquireLock(path, "x");
  assert.equal(JSON.parse(readFileSync(path, "utf8")).pid, process.pid);
  a.release();
  writeFileSync(path, "garbage");
  const b = acquireLock(path, "x");
  assert.equal(readLockOwner(path)!.pid, process.pid);
  b.release();
  assert.deepEqual(spawnSync("ls", ["-A", dir], { encoding: "utf8" }).stdout, "");
});
