/**
 * A queued sweep whose Redis restarts empty (no persistence) mid-sweep, on a loopback
 * redis-server of this file's own (redis.ts restartableRedis): the bench says it is retrying
 * while Redis is down, the sweep finishes, and no job whose result a worker kept runs twice.
 * Then the results are collected a second time: the same bench with every result on disk
 * needs nothing from Redis (it is stopped) and gives the same table.
 * Every wait is bounded (spawn timeouts, deadlines on polling loops).
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { tempDir } from "../data/helpers.ts";
import { writeTinyDataset } from "../train/tiny-data.ts";
import { restartableRedis, type RestartableRedis } from "./redis.ts";

let redis: RestartableRedis;
before(async () => {
  redis = await restartableRedis();
});
after(async () => {
  for (const w of [...workers, ...others]) await stopWorker(w);
  await redis?.stop();
});

const root = tempDir("queue-lost");
const spec = writeTinyDataset(join(root, "data"), { seed: 1 });

// three jobs (ew, seeds 1-3), long enough that one is mid-run when Redis restarts
function benchArgs(out: string, url: string, queue: string): string[] {
  return ["--import", "tsx", "src/cli.ts", "bench", "--dataset", spec, "--model", "shared-bottom", "--methods", "ew", "--seeds", "3",
    "--out", out, "--model-opt", "bottomUnits=4", "--set", "max-steps=3", "--set", "batch-size=32", "--set", "emb-dim=2",
    "--set", "epochs=120", "--set", "patience=0", "--set", `cache-dir=${join(root, "cache-bench")}`, "--queue", url, "--queue-name", queue];
}

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

interface Proc {
  child: ChildProcess;
  out: () => string;
  done: Promise<Run>;
}

/** Starts a node command; `done` resolves at its end (killed after `timeoutMs`). */
function start(args: string[], timeoutMs: number): Proc {
  const c = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  c.stdout!.on("data", (d: Buffer) => (stdout += d.toString()));
  c.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
  const timer = setTimeout(() => c.kill("SIGKILL"), timeoutMs);
  const done = new Promise<Run>((resolve) =>
    c.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    }),
  );
  return { child: c, out: () => stdout + stderr, done };
}

const workers: Proc[] = [];
const others: Proc[] = [];
function startWorker(url: string, queue: string, name: string): Proc {
  const dir = join(root, "workers", `${name}-${randomBytes(3).toString("hex")}`);
  const w = start(["--import", "tsx", "src/cli.ts", "worker", "--queue", url, "--queue-name", queue, "--work-dir", join(dir, "work"), "--cache-dir", join(dir, "cache"), "--data-dir", join(root, "data")], 600_000);
  workers.push(w);
  return w;
}

async function stopWorker(w: Proc): Promise<void> {
  if (w.child.exitCode !== null || w.child.signalCode !== null) return;
  w.child.kill("SIGTERM");
  const t0 = Date.now();
  while (w.child.exitCode === null && w.child.signalCode === null && Date.now() - t0 < 10_000) await new Promise((r) => setTimeout(r, 50));
  if (w.child.exitCode === null && w.child.signalCode === null) w.child.kill("SIGKILL");
}

async function until(what: string, ok: () => boolean, ms: number): Promise<void> {
  const t0 = Date.now();
  while (!ok()) {
    if (Date.now() - t0 > ms) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const count = (text: string, re: RegExp): number => (text.match(new RegExp(re.source, "gm")) ?? []).length;

test("the bench's Ctrl-C line says whether its jobs are still queued or gone with a restarted Redis", { timeout: 180_000 }, async () => {
  const q = `stop-${randomBytes(4).toString("hex")}`;
  const out = join(root, "stopped");
  // no worker: the jobs wait in the queue
  const a = start(benchArgs(out, redis.url, q), 90_000);
  others.push(a);
  await until("the bench to enqueue", () => /3 job\(s\) added, 0 already there/.test(a.out()), 60_000);
  a.child.kill("SIGINT");
  const ra = await a.done;
  assert.equal(ra.code, 130, ra.stderr);
  assert.match(ra.stderr, /bench stopped: 3 job\(s\) stay in the queue redis:\/\/127\.0\.0\.1:\d+ \(queue "stop-\w+@[^"]+"\) \(the workers go on\); run the same bench again/);
  assert.doesNotMatch(ra.stderr, /no longer in Redis/);
  // the same bench again, then Redis restarts empty under it (down longer than one 5 s check)
  const b = start(benchArgs(out, redis.url, q), 90_000);
  others.push(b);
  await until("the bench to find its jobs", () => /0 job\(s\) added, 3 already there/.test(b.out()), 60_000);
  await redis.restart(6000);
  await until("the bench to see Redis back", () => /Redis reachable again/.test(b.out()), 30_000);
  assert.match(b.out(), /Redis unreachable since \d\d:\d\d:\d\d UTC; retrying \(3 job\(s\) pending/);
  b.child.kill("SIGINT");
  const rb = await b.done;
  assert.equal(rb.code, 130, rb.stderr);
  assert.match(rb.stderr, /bench stopped: 0 job\(s\) stay in the queue .*; 3 job\(s\) are no longer in Redis \(restarted without persistence\?\); run the same bench again: it collects what the workers finished and enqueues again what Redis lost/);
});

test("Redis restarted empty mid-sweep: the bench says it retries, the sweep finishes, no kept result runs twice; a second bench needs no Redis", { timeout: 420_000 }, async () => {
  const q = `lost-${randomBytes(4).toString("hex")}`;
  const w = startWorker(redis.url, q, "a");
  await until("the worker to be ready", () => /^worker \S+ on /m.test(w.out()), 60_000);
  const out = join(root, "out");
  const bench = start(benchArgs(out, redis.url, q), 360_000);
  others.push(bench);
  // one job finished, the next one running: Redis goes down (everything in it lost) for 7 s
  await until("the first job to finish and the second to start", () => count(w.out(), /^ew-s\d-\w+: started/) === 2, 180_000);
  assert.equal(count(w.out(), /^ew-s\d-\w+: finished in/), 1, `the restart must come while the second job runs:\n${w.out()}`);
  await redis.restart(7000);
  const r = await bench.done;
  assert.equal(r.code, 0, `${r.stderr}\n--- worker:\n${w.out()}`);
  // never a silent wait: one line per poll while Redis was down, one when it was back
  assert.match(r.stderr, /Redis unreachable since \d\d:\d\d:\d\d UTC; retrying \(\d job\(s\) pending/);
  assert.match(r.stderr, /Redis reachable again after \d+ s/);
  // the running job's result was kept by its worker and collected; the waiting job was enqueued again
  assert.match(w.out(), /Redis no longer knows it \(restarted without persistence\?\); its result, if it finished, is kept/);
  assert.match(r.stderr, /ew-s\d-\w+: no longer in Redis \(restarted without persistence\?\), but its worker kept the result: collected/);
  assert.match(r.stderr, /ew-s3-\w+: no longer in Redis \(restarted without persistence\?\) and no worker kept a result; enqueued again/);
  // each job ran exactly once
  for (const s of [1, 2, 3]) assert.equal(count(w.out(), new RegExp(`^ew-s${s}-\\w+: started`)), 1, `ew-s${s} ran more than once:\n${w.out()}`);
  assert.equal(count(w.out(), /^ew-s\d-\w+: finished in/), 3);
  const table = readFileSync(join(out, "results.md"), "utf8");
  assert.match(table, /^\| Metric \| EW \|$/m);
  assert.doesNotMatch(table, /\(\d\/3\)|missing/, "every cell has its 3 runs");
  assert.equal(readdirSync(join(out, "runs")).filter((f) => f.endsWith(".model")).length, 3);

  // collected twice: Redis gone for good, the same bench again finds everything on disk
  await stopWorker(w);
  await redis.stop();
  const t0 = Date.now();
  const again = await start(benchArgs(out, redis.url, q), 120_000).done;
  assert.equal(again.code, 0, again.stderr);
  assert.match(again.stderr, /3 of 3 jobs already finished/);
  assert.doesNotMatch(again.stderr, /ECONNREFUSED|cannot reach Redis/);
  assert.equal(readFileSync(join(out, "results.md"), "utf8"), table, "the same table");
  console.log(`second bench (no Redis): ${((Date.now() - t0) / 1000).toFixed(1)} s`);
});
