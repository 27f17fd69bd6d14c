/**
 * `bench --queue` with `mtlcraft worker` processes on a loopback Redis (see redis.ts): the
 * same table as the local runner, resume from the queue, a worker killed with SIGKILL
 * mid-job, a worker with other data, and no connection secret in any output.
 * Every wait is bounded (spawn timeouts, deadlines on polling loops).
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { tempDir } from "../data/helpers.ts";
import { writeTinyDataset } from "../train/tiny-data.ts";
import { processAlive } from "../../src/util/lock.ts";
import { testRedis, type TestRedis } from "./redis.ts";
import { Queue } from "bullmq";
import { connectionOptions } from "../../src/sweep/queue-url.ts";
import { mtlcraftVersion, versionedQueueName } from "../../src/sweep/provenance.ts";
import { withoutMeasuredCost } from "./measured.ts";

let redis: TestRedis;
before(async () => {
  redis = await testRedis();
});
after(async () => {
  for (const w of workers) await stopWorker(w);
  await redis?.stop();
});

const root = tempDir("queue");
const spec = writeTinyDataset(join(root, "data"), { seed: 1 });
const SECRET = "not-a-real-secret-7d1f";

/** The URL with a password when the test Redis has none (ioredis warns and goes on): it must never leak. */
function urlWithPassword(): string {
  const u = new URL(redis.url);
  if (!u.password) u.password = SECRET;
  return u.toString().replace(/\/$/, "");
}

function benchArgs(out: string, cache: string, ...extra: string[]): string[] {
  return ["--import", "tsx", "src/cli.ts", "bench", "--dataset", spec, "--model", "shared-bottom", "--methods", "single,ew,pcgrad", "--seeds", "2",
    "--out", out, "--model-opt", "bottomUnits=4", "--set", "max-steps=3", "--set", "batch-size=32", "--set", "emb-dim=2",
    "--set", "epochs=1", "--set", "patience=0", "--set", `cache-dir=${cache}`, ...extra];
}

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a command to its end (killed after `timeoutMs`). */
function run(args: string[], timeoutMs: number, env: NodeJS.ProcessEnv = process.env): Promise<Run> {
  return new Promise((resolve) => {
    const c = spawn(process.execPath, args, { env, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    c.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    c.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => c.kill("SIGKILL"), timeoutMs);
    c.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

interface WorkerProc {
  child: ChildProcess;
  log: () => string;
  workDir: string;
}
const workers: WorkerProc[] = [];

function startWorker(queue: string, name: string, ...extra: string[]): WorkerProc {
  const dir = join(root, "workers", `${name}-${randomBytes(3).toString("hex")}`);
  const child = spawn(
    process.execPath,
    // the data folder: a queued spec reads files only inside it (a later --data-dir in `extra` wins)
    ["--import", "tsx", "src/cli.ts", "worker", "--queue-name", queue, "--work-dir", join(dir, "work"), "--cache-dir", join(dir, "cache"), "--data-dir", join(root, "data"), ...extra],
    // the URL and password from the environment: as a deployment would pass them
    { env: { ...process.env, MTLCRAFT_QUEUE_URL: urlWithPassword(), MTLCRAFT_REDIS_PASSWORD: new URL(urlWithPassword()).password }, stdio: ["ignore", "pipe", "pipe"] },
  );
  let log = "";
  child.stdout!.on("data", (d: Buffer) => (log += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (log += d.toString()));
  const w = { child, log: () => log, workDir: join(dir, "work") };
  workers.push(w);
  return w;
}

async function stopWorker(w: WorkerProc): Promise<void> {
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

const queueName = (t: string) => `test-${t}-${randomBytes(4).toString("hex")}`;

/** Every file under `dir` (recursively) with its text. */
function allText(dir: string): string {
  let s = "";
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    s += e.isDirectory() ? allText(p) : readFileSync(p, "utf8");
  }
  return s;
}

test("a bench through the queue with 2 worker processes gives the local runner's table; a re-run takes the results from the queue", { timeout: 240_000 }, async () => {
  const local = join(root, "local");
  const l = await run(benchArgs(local, join(root, "cache-local"), "--jobs", "2"), 120_000);
  assert.equal(l.code, 0, l.stderr);

  const q = queueName("same");
  const ws = [startWorker(q, "a"), startWorker(q, "b")];
  await until("both workers to be ready", () => ws.every((w) => /^worker \S+ on /m.test(w.log())), 60_000);
  const out = join(root, "queued");
  const r = await run(benchArgs(out, join(root, "cache-bench"), "--queue", urlWithPassword(), "--queue-name", q), 150_000);
  assert.equal(r.code, 0, `${r.stderr}\n--- workers:\n${ws.map((w) => w.log()).join("\n")}`);
  assert.match(r.stderr, /6 job\(s\) added, 0 already there/);
  assert.match(r.stderr, /\[6\/6\] \S+ finished/, "the local runner's progress lines");
  // the same table as the local runner's, but for the measured cost per step
  assert.equal(withoutMeasuredCost(readFileSync(join(out, "results.md"), "utf8")), withoutMeasuredCost(readFileSync(join(local, "results.md"), "utf8")), "same table as the local runner");
  assert.equal(readFileSync(join(out, "results.csv"), "utf8"), readFileSync(join(local, "results.csv"), "utf8"));
  // the results were written as the local runner writes them: result, record, diagnostics
  const runs = readdirSync(join(out, "runs"));
  assert.equal(runs.filter((f) => f.endsWith(".job.json")).length, 6);
  assert.equal(runs.filter((f) => f.endsWith(".diag.jsonl")).length, 6);
  // both workers took jobs, each in its own train process
  for (const w of ws) assert.match(w.log(), /finished in/, w.log());
  // the connection's password is in no output, result or report
  for (const text of [r.stdout, r.stderr, allText(out), ...ws.map((w) => w.log())]) assert.ok(!text.includes(SECRET), "the password leaked");
  assert.match(readFileSync(join(out, "sweep.json"), "utf8"), /--queue redis:\/\/:\*\*\*@127\.0\.0\.1:\d+/);

  // each result brought its model artefact (packed under its own Redis key, deleted once collected)
  assert.equal(runs.filter((f) => f.endsWith(".model")).length, 6);

  // resume: a bench stopped (SIGKILL) after enqueuing 3 more jobs; the workers finish them;
  // the same bench run again, with no worker left, collects them and runs nothing again
  const more = spawn(process.execPath, benchArgs(out, join(root, "cache-bench"), "--seeds", "3", "--queue", urlWithPassword(), "--queue-name", q), { stdio: ["ignore", "ignore", "pipe"] });
  let moreErr = "";
  more.stderr.on("data", (d: Buffer) => (moreErr += d.toString()));
  await until("the second bench to enqueue", () => /3 job\(s\) added/.test(moreErr), 60_000);
  more.kill("SIGKILL");
  const finished = () => ws.reduce((n, w) => n + (w.log().match(/finished in/g) ?? []).length, 0);
  await until("the workers to finish the 3 new jobs", () => finished() === 9, 120_000);
  for (const w of ws) await stopWorker(w);
  const r2 = await run(benchArgs(out, join(root, "cache-bench"), "--seeds", "3", "--queue", urlWithPassword(), "--queue-name", q), 60_000);
  assert.equal(r2.code, 0, r2.stderr);
  assert.match(r2.stderr, /(6|7|8) of 9 jobs already finished/);
  assert.match(r2.stderr, /0 job\(s\) added, \d already there/);
  assert.match(readFileSync(join(out, "results.md"), "utf8"), /^\| click AUC \| [^|]+ ± [^|]+ \|/m);
  assert.equal(finished(), 9, "no job ran twice");
  assert.equal(readdirSync(join(out, "runs")).filter((f) => f.endsWith(".model")).length, 9);
});

test("kill -9 of a worker mid-job: the job is detected as stalled, retried on the other worker, and the sweep completes", { timeout: 240_000 }, async () => {
  const q = queueName("kill");
  // short locks and stall checks, so the dead worker is noticed in seconds
  const fast = ["--lock-ms", "1500", "--stall-check-ms", "500"];
  const a = startWorker(q, "a", ...fast);
  const out = join(root, "killed");
  // one long job (many epochs of the tiny data)
  const bench = run(
    benchArgs(out, join(root, "cache-bench"), "--methods", "ew", "--seeds", "1", "--set", "epochs=60", "--queue", redis.url, "--queue-name", q, "--backoff-ms", "200"),
    180_000,
  );
  // the job's train process holds a lock in the worker's work dir: it runs now
  const lockOf = (w: WorkerProc): string | null => {
    if (!existsSync(w.workDir)) return null;
    for (const job of readdirSync(w.workDir)) {
      const ck = join(w.workDir, job, "checkpoints");
      const lock = existsSync(ck) ? readdirSync(ck).find((f) => f.endsWith(".lock")) : undefined;
      if (lock) return join(ck, lock);
    }
    return null;
  };
  await until("the job to start on worker a", () => lockOf(a) !== null, 60_000);
  const trainPid = (JSON.parse(readFileSync(lockOf(a)!, "utf8")) as { pid: number }).pid;
  assert.ok(processAlive(trainPid));
  const b = startWorker(q, "b", ...fast);
  a.child.kill("SIGKILL");
  // the job's own process ends with its worker (its stdin pipe closes)
  await until("the killed worker's train process to exit", () => !processAlive(trainPid), 15_000);
  const r = await bench;
  assert.equal(r.code, 0, `${r.stderr}\n--- worker b:\n${b.log()}`);
  assert.match(r.stderr, /its worker stopped \(stalled job\); it goes back to the queue/);
  assert.match(b.log(), /its previous worker died \(stall 1\); running it again in 0\.2 s/);
  assert.match(b.log(), /finished in/);
  assert.match(readFileSync(join(out, "results.md"), "utf8"), /^\| Metric \| EW \|$/m);
});

test("a worker whose data differs from the enqueued content hash refuses the sweep, naming both hashes, and gives its jobs back with their attempts untouched; the bench says so", { timeout: 120_000 }, async () => {
  const q = queueName("hash");
  const other = join(root, "other-data");
  writeTinyDataset(other, { seed: 7 }); // same file names, other rows
  const w = startWorker(q, "other", "--data-dir", other);
  const out = join(root, "hash");
  // `--queue` without a URL: from the environment
  const env = { ...process.env, MTLCRAFT_QUEUE_URL: redis.url };
  const bench = spawn(process.execPath, benchArgs(out, join(root, "cache-bench"), "--methods", "ew", "--seeds", "1", "--queue", "--queue-name", q, "--attempts", "2", "--backoff-ms", "200"), { env, stdio: ["ignore", "ignore", "pipe"] });
  let err = "";
  bench.stderr.on("data", (d: Buffer) => (err += d.toString()));
  try {
    // no silent wait: the bench names the refusing worker and its reason (both hashes)
    await until("the bench to report the refusal", () => /refuses this sweep's jobs/.test(err), 90_000);
    assert.match(err, /worker \S+ refuses this sweep's jobs \(they wait for other workers, attempts untouched\): \S+: dataset content hash differs: the bench enqueued ([0-9a-f]{64}), this worker \(\S+\) prepared ([0-9a-f]{64}) from /);
    const [, want, got] = /enqueued ([0-9a-f]{64}), this worker \(\S+\) prepared ([0-9a-f]{64})/.exec(err)!;
    assert.notEqual(want, got);
    assert.match(w.log(), /refusing the jobs of sweep \w+… \(job ew-s1-\w+ and the rest\): dataset content hash differs/);
    // the job is given back, never failed: its attempts are untouched
    const queue = new Queue(versionedQueueName(q, mtlcraftVersion()), { connection: connectionOptions({ url: redis.url }) });
    try {
      const [job] = await queue.getJobs(["waiting", "delayed", "active"]);
      assert.ok(job, "the job is still in the queue");
      assert.equal(job.attemptsMade, 0);
      assert.equal((await queue.getJobs(["failed"])).length, 0);
    } finally {
      await queue.close();
    }
    assert.doesNotMatch(w.log(), /failed on/);
    assert.equal((w.log().match(/refusing the jobs of sweep/g) ?? []).length, 1, "said once");
    assert.equal(existsSync(join(out, "results.md")), false);
  } finally {
    bench.kill("SIGKILL");
  }
});
