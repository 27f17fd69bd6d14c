/**
 * Healthy sweeps on a real loopback Redis (redis.ts): workers that cannot run a sweep (another
 * mtlcraft version, the same version with another default, other data) next to a healthy one;
 * the sweep finishes on the healthy one with every job's attempts untouched. Also a timed-out
 * job, and Ctrl-C on a worker handing its job back at once. Every wait is bounded.
 *
 * "Another version" is a real other installation: a copy of src/ under a package.json of another
 * version (its l2 default changed too), sharing node_modules.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { cpSync, existsSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { randomBytes } from "node:crypto";
import { Queue } from "bullmq";
import { tempDir } from "../data/helpers.ts";
import { writeTinyDataset } from "../train/tiny-data.ts";
import { connectionOptions } from "../../src/sweep/queue-url.ts";
import { mtlcraftVersion, versionedQueueName } from "../../src/sweep/provenance.ts";
import { refusedKey, watchRefusals } from "../../src/sweep/refusal.ts";
import { testRedis, type TestRedis } from "./redis.ts";

let redis: TestRedis;
before(async () => {
  redis = await testRedis();
});
after(async () => {
  for (const p of procs) await stop(p);
  await redis?.stop();
});

const root = tempDir("queue-prov");
const data = join(root, "data");
const spec = writeTinyDataset(data, { seed: 1 });
const queueName = (t: string) => `test-${t}-${randomBytes(4).toString("hex")}`;

/** A copy of this checkout as another installation: `version`, and the l2 default 1e-4 (1e-5 here). */
function otherInstall(version: string): string {
  const dir = join(root, `install-${version}-${randomBytes(3).toString("hex")}`);
  cpSync(resolve("src"), join(dir, "src"), { recursive: true });
  const pkg = JSON.parse(readFileSync("package.json", "utf8")) as Record<string, unknown>;
  writeFileSync(join(dir, "package.json"), JSON.stringify({ ...pkg, version }));
  symlinkSync(resolve("node_modules"), join(dir, "node_modules"));
  const opts = join(dir, "src", "config", "train-options.ts");
  const text = readFileSync(opts, "utf8");
  const changed = text.replace(/(key: "l2",[^\n]*default: )1e-5/, "$11e-4");
  assert.notEqual(changed, text, "the copy's l2 default changed");
  writeFileSync(opts, changed);
  return dir;
}

interface Proc {
  child: ChildProcess;
  out: () => string;
  /** A worker's --work-dir. */
  workDir?: string;
}
const procs: Proc[] = [];

function start(args: string[]): Proc {
  const child = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (out += d.toString()));
  const p = { child, out: () => out };
  procs.push(p);
  return p;
}

function worker(queue: string, name: string, opts: { install?: string; dataDir?: string; extra?: string[] } = {}): Proc {
  const dir = join(root, "workers", `${name}-${randomBytes(3).toString("hex")}`);
  const cli = join(opts.install ?? resolve("."), "src", "cli.ts");
  const p = start(["--import", "tsx", cli, "worker", "--queue", redis.url, "--queue-name", queue, "--work-dir", join(dir, "work"), "--cache-dir", join(dir, "cache"),
    "--data-dir", opts.dataDir ?? data, ...(opts.extra ?? [])]);
  p.workDir = join(dir, "work");
  return p;
}

function bench(queue: string, out: string, ...extra: string[]): Proc {
  return start(["--import", "tsx", "src/cli.ts", "bench", "--dataset", spec, "--model", "shared-bottom", "--out", out, "--model-opt", "bottomUnits=4",
    "--set", "batch-size=32", "--set", "emb-dim=2", "--set", "patience=0", "--set", `cache-dir=${join(root, "cache-bench")}`,
    "--queue", redis.url, "--queue-name", queue, "--backoff-ms", "200", ...extra]);
}

async function stop(p: Proc): Promise<void> {
  if (p.child.exitCode !== null || p.child.signalCode !== null) return;
  p.child.kill("SIGKILL");
  const t0 = Date.now();
  while (p.child.exitCode === null && p.child.signalCode === null && Date.now() - t0 < 5000) await new Promise((r) => setTimeout(r, 50));
}

async function until(what: string, ok: () => boolean | Promise<boolean>, ms: number): Promise<void> {
  const t0 = Date.now();
  while (!(await ok())) {
    if (Date.now() - t0 > ms) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function exited(p: Proc): Promise<number | null> {
  return new Promise((r) => (p.child.exitCode !== null || p.child.signalCode !== null ? r(p.child.exitCode) : p.child.once("exit", (code) => r(code))));
}

const ready = (p: Proc) => /^worker \S+ on /m.test(p.out());

test("workers of another version, with another default and with other data, next to a healthy one: the sweep finishes there, attempts untouched", { timeout: 300_000 }, async () => {
  const t0 = Date.now();
  const q = queueName("healthy");
  const other = join(root, "other-data");
  writeTinyDataset(other, { seed: 7 }); // same file names, other rows
  const oldVersion = worker(q, "old", { install: otherInstall("0.0.9") });
  const otherDefaults = worker(q, "defaults", { install: otherInstall(mtlcraftVersion()) });
  const otherData = worker(q, "data", { dataDir: other });
  const bad = [oldVersion, otherDefaults, otherData];
  await until("the three workers to be ready", () => bad.every(ready), 90_000);
  const out = join(root, "healthy");
  const b = bench(q, out, "--methods", "single,ew,pcgrad", "--seeds", "1", "--set", "max-steps=3", "--set", "epochs=1", "--attempts", "2");
  // the refusing workers meet the jobs first (there is no healthy worker yet), then the healthy one starts
  await until("both same-version workers to refuse the sweep", () => /refusing the jobs of sweep/.test(otherDefaults.out()) && /refusing the jobs of sweep/.test(otherData.out()), 90_000);
  const healthy = worker(q, "healthy");
  const code = await exited(b);
  assert.equal(code, 0, `${b.out()}\n--- workers:\n${[...bad, healthy].map((w) => w.out()).join("\n---\n")}`);
  assert.match(readFileSync(join(out, "results.md"), "utf8"), /^\| Metric \| Single \| EW \| PCGrad \|$/m);
  // each refusal said once, with its reason, by the worker and by the bench
  assert.match(otherDefaults.out(), /resolved configuration differs from the bench's \(bench → this worker: l2: 1e-5 → 1e-4\)/);
  assert.equal((otherDefaults.out().match(/refusing the jobs of sweep/g) ?? []).length, 1);
  assert.match(otherData.out(), /dataset content hash differs/);
  assert.equal((otherData.out().match(/refusing the jobs of sweep/g) ?? []).length, 1);
  assert.match(b.out(), /worker \S+ refuses this sweep's jobs \(they wait for other workers, attempts untouched\): \S+: this worker's resolved configuration differs/);
  assert.match(b.out(), /worker \S+ refuses this sweep's jobs .*dataset content hash differs/);
  // the worker of another version serves its own queue: it never saw a job
  assert.doesNotMatch(oldVersion.out(), /started|refusing/);
  assert.match(oldVersion.out(), /queue "test-healthy-\w+@0\.0\.9"/);
  // every job ran on the healthy worker, once, and used exactly one attempt
  for (const w of bad) assert.doesNotMatch(w.out(), /finished in|failed on/);
  assert.doesNotMatch(otherDefaults.out(), /started \(attempt/, "refused before anything was prepared");
  assert.equal((healthy.out().match(/finished in/g) ?? []).length, 3);
  const queue = new Queue(versionedQueueName(q, mtlcraftVersion()), { connection: connectionOptions({ url: redis.url }) });
  try {
    const jobs = await queue.getJobs(["completed"]);
    assert.equal(jobs.length, 3);
    for (const j of jobs) assert.equal(j.attemptsMade, 1, `${j.name}: attempts made`);
  } finally {
    await queue.close();
  }
  for (const w of [...bad, healthy]) await stop(w);
  console.log(`# healthy-sweep test: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
});

test("--job-timeout: a job running longer is ended and reported as timed out (retried like any failure, here with --attempts 1)", { timeout: 180_000 }, async () => {
  const t0 = Date.now();
  const q = queueName("timeout");
  const w = worker(q, "slow", { extra: ["--job-timeout", "3"] });
  await until("the worker to be ready", () => ready(w), 60_000);
  const b = bench(q, join(root, "timeout"), "--methods", "ew", "--seeds", "1", "--set", "epochs=100000", "--attempts", "1");
  const code = await exited(b);
  assert.notEqual(code, 0);
  assert.match(b.out(), /1 sweep job\(s\) failed:\new-s1-\w+: on \S+: train timed out after 3 s \(--job-timeout\); its processes were ended/);
  assert.match(w.out(), /failed on \S+: train timed out after 3 s/);
  await stop(w);
  console.log(`# timeout test: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
});

test("Ctrl-C on a worker hands its running job back to the queue at once (attempts untouched), and it exits", { timeout: 180_000 }, async () => {
  const q = queueName("ctrlc");
  const w = worker(q, "stopped");
  await until("the worker to be ready", () => ready(w), 60_000);
  const b = bench(q, join(root, "ctrlc"), "--methods", "ew", "--seeds", "1", "--set", "epochs=100000");
  // this worker's own job folders (another test's worker may have left a lock behind)
  const work = (): string[] => (existsSync(w.workDir!) ? readdirSync(w.workDir!).map((j) => join(w.workDir!, j)) : []);
  // running: its train process holds the result's lock
  await until("the job to run", () => work().some((j) => existsSync(j) && readdirSync(j).some((f) => f.endsWith(".json.lock"))), 60_000);
  const queue = new Queue(versionedQueueName(q, mtlcraftVersion()), { connection: connectionOptions({ url: redis.url }) });
  try {
    assert.equal((await queue.getJobs(["active"])).length, 1);
    const t0 = Date.now();
    w.child.kill("SIGINT");
    await until("the job to wait in the queue again", async () => (await queue.getJobs(["waiting"])).length === 1, 20_000).catch(async (e: Error) => {
      const states = await Promise.all((await queue.getJobs()).map(async (j) => `${j.name}: ${await j.getState()}`));
      throw new Error(`${e.message}\n--- jobs: ${states.join(", ")}\n--- worker:\n${w.out()}`);
    });
    const handBackMs = Date.now() - t0;
    assert.equal(await exited(w), 130);
    const exitMs = Date.now() - t0;
    // after the worker is gone: still waiting (it took nothing more), no attempt used
    const [job] = await queue.getJobs(["waiting"]);
    assert.ok(job, `the job waits: ${(await Promise.all((await queue.getJobs()).map((j) => j.getState()))).join(", ")}`);
    assert.equal(job!.attemptsMade, 0, "no attempt used");
    assert.ok(handBackMs < 5000, `handed back after ${handBackMs} ms`);
    assert.match(w.out(), /handing 1 running job\(s\) back to the queue/);
    console.log(`# Ctrl-C: job waiting again after ${handBackMs} ms, worker exited after ${exitMs} ms`);
    // another worker takes it at once
    const next = worker(q, "next");
    await until("another worker to take it", () => /started \(attempt 1\)/.test(next.out()), 60_000);
    await stop(next);
  } finally {
    await queue.close();
    await stop(b);
  }
});

test("the bench's watch: each worker's refusal printed once (sanitised), and one line when no worker has been connected for a while", { timeout: 60_000 }, async () => {
  const q = versionedQueueName(queueName("watch"), mtlcraftVersion());
  const queue = new Queue(q, { connection: connectionOptions({ url: redis.url }) });
  const logs: string[] = [];
  try {
    await queue.waitUntilReady();
    const raw = (await queue.client) as unknown as { hset(k: string, f: string, v: string): Promise<unknown> };
    const hash = "b".repeat(64);
    await raw.hset(refusedKey(q, hash), "w1:1", "h1: dataset content hash differs \u001b[31m");
    const stopWatch = watchRefusals((await queue.client) as never, q, hash, (m) => logs.push(m), 100, () => queue.getWorkersCount(), 500);
    await until("the refusal and the no-worker line", () => logs.length >= 2, 10_000);
    await new Promise((r) => setTimeout(r, 600));
    stopWatch();
    assert.equal(logs.filter((l) => l.includes("refuses")).length, 1, logs.join("\n"));
    assert.match(logs.find((l) => l.includes("refuses"))!, /^worker w1:1 refuses this sweep's jobs \(they wait for other workers, attempts untouched\): h1: dataset content hash differs \?\[31m$/);
    assert.equal(logs.filter((l) => l.startsWith("no worker")).length, 1, "said once");
    assert.match(logs.find((l) => l.startsWith("no worker"))!, new RegExp(`^no worker has been connected to queue "${q.replace(/[.]/g, "\\.")}" for 1 s: start \`mtlcraft worker\` \\(mtlcraft ${mtlcraftVersion().replace(/\./g, "\\.")}, the same --queue-name\\); a worker of another mtlcraft version serves its own queue`));
  } finally {
    await queue.close();
  }
});
