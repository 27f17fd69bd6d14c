/**
 * Queue payloads are untrusted input (issue #19, class 2): jobs written straight into a real
 * Redis (as anyone with access to it could), served by a real `mtlcraft worker` process.
 * Each hostile input is made here, in a temporary folder: a BullMQ id that traverses out of the
 * work folder, options that try to become flags (a plugin module that would leave a marker),
 * spec paths outside the data folder (`..` and a symlink), a ragged CSV whose first line is a
 * fake private key (it must appear nowhere in Redis), and a `?password=` URL (never printed).
 */
import { jobProvenance, mtlcraftVersion, versionedQueueName } from "../../src/sweep/provenance.ts";
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { Queue } from "bullmq";
import { tempDir } from "../data/helpers.ts";
import { writeTinyDataset } from "../train/tiny-data.ts";
import { testRedis, type TestRedis } from "./redis.ts";
import { connectionOptions } from "../../src/sweep/queue-url.ts";
import { datasetHash, type DatasetSpec } from "../../src/data/index.ts";

const root = tempDir("queue-hostile");
const dataDir = join(root, "data");
const specPath = writeTinyDataset(dataDir, { seed: 3 });
const spec = JSON.parse(readFileSync(specPath, "utf8")) as DatasetSpec;
const workDir = join(root, "w", "work");
const QUEUE = `hostile-${randomBytes(4).toString("hex")}`;
/** A password given as `?password=` on the worker's command line: it must never be printed. */
const URL_SECRET = `qs-${randomBytes(6).toString("hex")}`;

let redis: TestRedis;
let queue: Queue;
let worker: ChildProcess | undefined;
let workerLog = "";

async function until(what: string, ok: () => boolean | Promise<boolean>, ms: number): Promise<void> {
  const t0 = Date.now();
  while (!(await ok())) {
    if (Date.now() - t0 > ms) throw new Error(`timed out after ${ms} ms waiting for ${what}\n--- worker:\n${workerLog}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

before(async () => {
  redis = await testRedis();
  // the queue of this mtlcraft version (workers of another version serve their own: src/sweep/provenance.ts)
  queue = new Queue(versionedQueueName(QUEUE, mtlcraftVersion()), { connection: connectionOptions({ url: redis.url }) });
  await queue.waitUntilReady();
  // the worker: its URL (with a `?password=`) on the command line, its own data folder
  worker = spawn(
    process.execPath,
    ["--import", "tsx", "src/cli.ts", "worker", "--queue", `${redis.url}/?password=${URL_SECRET}`, "--queue-name", QUEUE,
      "--work-dir", workDir, "--cache-dir", join(root, "w", "cache"), "--data-dir", dataDir],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  worker.stdout!.on("data", (d: Buffer) => (workerLog += d.toString()));
  worker.stderr!.on("data", (d: Buffer) => (workerLog += d.toString()));
  await until("the worker to be ready", () => /^worker \S+ on /m.test(workerLog), 60_000);
});

after(async () => {
  if (worker && worker.exitCode === null && worker.signalCode === null) {
    worker.kill("SIGTERM");
    const t0 = Date.now();
    while (worker.exitCode === null && worker.signalCode === null && Date.now() - t0 < 10_000) await new Promise((r) => setTimeout(r, 50));
    if (worker.exitCode === null && worker.signalCode === null) worker.kill("SIGKILL");
  }
  await queue?.close();
  await redis?.stop();
});

/** A valid payload for the tiny dataset (3 steps of a small model), with `over` merged into the job's options. */
function payload(id: string, over: Record<string, unknown> = {}, ds: Partial<{ spec: unknown; hash: string }> = {}): Record<string, unknown> {
  const { hash } = datasetHash(spec, dataDir);
  const options = { dataset: specPath, model: "shared-bottom", method: "ew", seed: 1, "model-opt": ["bottomUnits=4"], "max-steps": 3, "batch-size": 32, "emb-dim": 2, epochs: 1, patience: 0 };
  return {
    version: 1,
    job: { id, method: "ew", seed: 1, options: { ...options, ...over } },
    dataset: { spec: ds.spec ?? spec, baseDir: dataDir, hash: ds.hash ?? hash },
    // what a bench of this version records (of the valid options: the hostile ones are refused by the schema first)
    provenance: jobProvenance({ options }),
  };
}

/** Adds a job (one attempt) and waits until it has completed or failed. */
async function runJob(bullId: string, data: Record<string, unknown>): Promise<{ state: string; failedReason: string; returnvalue: unknown }> {
  await queue.add("hostile", data, { jobId: bullId, attempts: 1, removeOnFail: false, removeOnComplete: false });
  let state = "";
  await until(`job ${bullId} to finish`, async () => {
    state = await queue.getJobState(bullId);
    return state === "completed" || state === "failed";
  }, 90_000);
  const j = (await queue.getJob(bullId))!;
  return { state, failedReason: j.failedReason ?? "", returnvalue: j.returnvalue };
}

/** Every value of every key in the Redis (strings, hashes, lists, sets, sorted sets, streams) as text. */
async function everythingInRedis(): Promise<string> {
  const c = (await queue.client) as unknown as {
    scan(cursor: string, ...args: (string | number)[]): Promise<[string, string[]]>;
    type(k: string): Promise<string>;
    getBuffer(k: string): Promise<Buffer | null>;
    hgetall(k: string): Promise<Record<string, string>>;
    lrange(k: string, a: number, b: number): Promise<string[]>;
    smembers(k: string): Promise<string[]>;
    zrange(k: string, a: number, b: number): Promise<string[]>;
    xrange(k: string, a: string, b: string): Promise<[string, string[]][]>;
  };
  let out = "";
  let cursor = "0";
  let n = 0;
  do {
    const [next, keys] = await c.scan(cursor, "COUNT", 500);
    cursor = next;
    for (const k of keys) {
      n++;
      out += `\n${k}\n`;
      const t = await c.type(k);
      if (t === "string") out += (await c.getBuffer(k))?.toString("latin1") ?? "";
      else if (t === "hash") out += JSON.stringify(await c.hgetall(k));
      else if (t === "list") out += (await c.lrange(k, 0, -1)).join("\n");
      else if (t === "set") out += (await c.smembers(k)).join("\n");
      else if (t === "zset") out += (await c.zrange(k, 0, -1)).join("\n");
      else if (t === "stream") out += JSON.stringify(await c.xrange(k, "-", "+"));
      else throw new Error(`key ${k}: type ${t} not read`);
    }
  } while (cursor !== "0");
  assert.ok(n > 0, "Redis holds the queue's keys");
  return out;
}

/** Every path under `dir`, relative. */
function tree(dir: string, pre = ""): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const rel = pre ? `${pre}/${e.name}` : e.name;
    out.push(rel);
    if (e.isDirectory()) out.push(...tree(join(dir, e.name), rel));
  }
  return out;
}

test("a job whose BullMQ id is ../../victim runs in a hashed folder inside the work folder; the folder victim beside it survives", { timeout: 120_000 }, async () => {
  // join(workDir, "../../victim") is root/victim: a folder that must not be touched
  const victim = join(root, "victim");
  mkdirSync(victim, { recursive: true });
  writeFileSync(join(victim, "keep.txt"), "precious");
  const outside = tree(root).filter((p) => !p.startsWith("w/"));
  const r = await runJob("../../victim", payload("ew-s1-victim"));
  assert.equal(r.state, "completed", r.failedReason);
  assert.equal(readFileSync(join(victim, "keep.txt"), "utf8"), "precious");
  assert.deepEqual(readdirSync(victim), ["keep.txt"], "nothing was written into the victim folder");
  assert.deepEqual(tree(root).filter((p) => !p.startsWith("w/")), outside, "no path outside the worker's folders changed");
  // the job ran (and was cleaned up) under the work folder, in a folder named by a hash
  assert.ok(!existsSync(join(workDir, "..", "victim")));
  assert.deepEqual(readdirSync(workDir).filter((n) => !/^job-[0-9a-f]{24}$/.test(n)), []);
  assert.equal((r.returnvalue as { version?: number }).version, 1);
});

test("options that try to become flags ({method: true, lr: \"--plugin=<file>\"}) fail the job naming the option; the plugin never runs", { timeout: 120_000 }, async () => {
  const marker = join(root, "MARKER");
  const plugin = join(root, "evil-plugin.mjs");
  writeFileSync(plugin, `import { writeFileSync } from "node:fs";\nwriteFileSync(${JSON.stringify(marker)}, "top-level code ran");\n`);
  const a = await runJob("inject-a", payload("ew-s1-inject-a", { method: true, lr: `--plugin=${plugin}` }));
  assert.equal(a.state, "failed");
  assert.match(a.failedReason, /job\.options\.method must be a string, got true/);
  const b = await runJob("inject-b", payload("ew-s1-inject-b", { lr: `--plugin=${plugin}` }));
  assert.equal(b.state, "failed");
  assert.match(b.failedReason, /job\.options\.lr must be a number, got "--plugin=/);
  const c = await runJob("inject-c", payload("ew-s1-inject-c", { "model-opt": ["bottomUnits=4", `--plugin=${plugin}`] }));
  assert.equal(c.state, "failed");
  assert.match(c.failedReason, /job\.options\.model-opt\[1\] must be "key=value"/);
  assert.equal(existsSync(marker), false, "the plugin's top-level code ran");
});

test("a queued spec that names a file outside the worker's data folder (.. or a symlink) fails naming the spec key", { timeout: 120_000 }, async () => {
  // (each with its own dataset hash: a worker reuses a dataset it already prepared under the same hash)
  const outsideCsv = join(root, "outside.csv");
  writeFileSync(outsideCsv, readFileSync(join(dataDir, "log.csv")));
  const up = await runJob("confine-up", payload("ew-s1-confine-up", {}, { spec: { ...spec, log: "../outside.csv" }, hash: "1".repeat(64) }));
  assert.equal(up.state, "failed");
  assert.match(up.failedReason, /spec\.log \("\.\.\/outside\.csv"\) resolves outside the data folder/);
  // a symlink inside the data folder that leads out of it
  symlinkSync(outsideCsv, join(dataDir, "items-link.csv"));
  const joined = { ...spec, joins: [{ path: "items-link.csv", on: "item_id", columns: ["like"] }] };
  const link = await runJob("confine-link", payload("ew-s1-confine-link", {}, { spec: joined, hash: "2".repeat(64) }));
  assert.equal(link.state, "failed");
  assert.match(link.failedReason, /spec\.joins\[0\]\.path \("items-link\.csv"\) leads outside the data folder \(through a symbolic link\)/);
  const abs = await runJob("confine-abs", payload("ew-s1-confine-abs", {}, { spec: { ...spec, log: [outsideCsv] }, hash: "3".repeat(64) }));
  assert.equal(abs.state, "failed");
  assert.match(abs.failedReason, /spec\.log\[0\] \(.*outside\.csv"\) resolves outside the data folder/);
  assert.doesNotMatch(workerLog, /prepared .* from .*outside/, "the outside file was never prepared");
  // the hash of a dataset this worker already prepared (the victim test's job), claimed by another spec: checked on its own
  const reuse = await runJob("confine-reuse", payload("ew-s1-confine-reuse", {}, { spec: { ...spec, log: "../outside.csv" } }));
  assert.equal(reuse.state, "failed", "a known hash let another spec through");
  assert.match(reuse.failedReason, /spec\.log \("\.\.\/outside\.csv"\) resolves outside the data folder/);
});

test("a ragged CSV whose first line is a private key: the job fails naming file, row and line, and the key is nowhere in Redis", { timeout: 120_000 }, async () => {
  const keyLine = `-----BEGIN OPENSSH PRIVATE KEY-----,b3BlbnNzaC1rZXktdjEAAAAA${randomBytes(8).toString("hex")}`;
  const secret = keyLine.split(",")[1]!;
  writeFileSync(join(dataDir, "ragged.csv"), `${keyLine}\n1,2,0,1\n3,4,1,0\n`);
  const ragged = { ...spec, name: "ragged", log: "ragged.csv", csv: { header: false, columns: ["user_id", "item_id", "click", "like"] } };
  const r = await runJob("ragged", payload("ew-s1-ragged", {}, { spec: ragged, hash: "e".repeat(64) }));
  assert.equal(r.state, "failed");
  // Redis has none of the line; the worker's own log (on its machine) has the full message
  const all = await everythingInRedis();
  assert.ok(all.includes("ragged.csv"), "the scan reads the job's failedReason");
  assert.equal(all.includes(secret), false, "the private key's first line reached Redis");
  assert.equal(all.includes("BEGIN OPENSSH"), false, "the private key's first line reached Redis");
  assert.match(r.failedReason, /data error: a row with the wrong number of fields \(file ragged\.csv, row 1, line 1\)/);
  assert.match(workerLog, /ragged row 1 \(line 1\)/);
});

test("a worker given redis://host:port/?password=... prints the URL with the query hidden, never the password", () => {
  assert.match(workerLog, /^worker \S+ on redis:\/\/[\w.[\]:-]+:\d+\?\*\*\* \(queue "hostile-/m);
  assert.equal(workerLog.includes(URL_SECRET), false, "the ?password= value was printed");
});
