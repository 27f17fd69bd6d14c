/**
 * `mtlcraft status --queue URL --json` on a queue holding a waiting, a running, a done and a
 * failed job (put in those states directly through BullMQ on the test Redis, no bench
 * running), and what it prints of hostile text from Redis.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { Queue, Worker } from "bullmq";
import { connectionOptions } from "../../src/sweep/queue-url.ts";
import { mtlcraftVersion, versionedQueueName } from "../../src/sweep/provenance.ts";
import { testRedis, type TestRedis } from "./redis.ts";
import type { SweepStatus } from "../../src/sweep/status.ts";

let redis: TestRedis;
before(async () => {
  redis = await testRedis();
});
after(async () => {
  await redis?.stop();
});

function cli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const c = spawn(process.execPath, ["--import", "tsx", "src/cli.ts", ...args], { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    c.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    c.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => c.kill("SIGKILL"), 60_000);
    c.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

const payload = (id: string) => ({ version: 1, job: { id, method: "ew", seed: 1, options: { epochs: 10 } }, dataset: { spec: {}, baseDir: "/", hash: "h" } });

test("status --json: jobs by state (waiting, running on its worker at its epoch, done, failed with its reason), workers, time left; hostile text sanitised", { timeout: 120_000 }, async () => {
  const name = `status-${randomBytes(4).toString("hex")}`;
  const connection = connectionOptions({ url: redis.url });
  // the queue a bench of this version fills for --queue-name `name`
  const queue = new Queue(versionedQueueName(name, mtlcraftVersion()), { connection });
  // a worker that takes jobs by hand (no processor): each job is put in the state the test needs
  const worker = new Worker(queue.name, null, { connection, name: "host-a:4242", autorun: false });
  try {
    await worker.waitUntilReady();
    const token = "tok";
    await queue.add("ew-s1-done", payload("ew-s1-done"), { jobId: "q1" });
    const j1 = (await worker.getNextJob(token))!;
    await new Promise((r) => setTimeout(r, 50));
    await j1.moveToCompleted({ version: 1 }, token, false);
    await queue.add("ew-s2-failed", payload("ew-s2-failed"), { jobId: "q2" });
    const j2 = (await worker.getNextJob(token))!;
    // a reason quoting a file's content (not in the payload) and a terminal escape sequence
    await j2.moveToFailed(new Error('on host-b: bad row "secret-row-content" \u001b[2Jcleared'), token, false);
    await queue.add("ew-s3-running", payload("ew-s3-running"), { jobId: "q3" });
    const j3 = (await worker.getNextJob(token))!;
    await j3.updateProgress({ step: 30, total: 100, info: "ep 3 loss 0.25", worker: "host-a" });
    await queue.add("ew-s4-waiting", payload("ew-s4-waiting"), { jobId: "q4" });

    const r = await cli(["status", "--queue", redis.url, "--queue-name", name, "--json"]);
    assert.equal(r.code, 0, r.stderr);
    const s = JSON.parse(r.stdout) as SweepStatus;
    assert.deepEqual(s.counts, { waiting: 1, running: 1, delayed: 0, done: 1, failed: 1, total: 4 });
    assert.deepEqual(s.waiting, ["ew-s4-waiting"]);
    assert.deepEqual(s.done, ["ew-s1-done"]);
    assert.equal(s.running.length, 1);
    assert.deepEqual({ ...s.running[0], runningS: null }, { job: "ew-s3-running", worker: "host-a", epoch: 3, epochs: 10, step: 30, total: 100, runningS: null, attempt: 1 });
    assert.ok(s.running[0]!.runningS !== null && s.running[0]!.runningS >= 0);
    assert.equal(s.failed.length, 1);
    assert.equal(s.failed[0]!.job, "ew-s2-failed");
    assert.match(s.failed[0]!.reason, /^on host-b: bad row "…" \?\[2Jcleared$/, "a quoted value not in the payload is not shown, nor the escape character");
    assert.ok(!r.stdout.includes("secret-row-content"));
    assert.deepEqual(s.workers.map((w) => w.name), ["host-a:4242"]);
    assert.ok(s.meanJobS !== null && s.meanJobS >= 0);
    assert.ok(s.etaS !== null && s.etaS >= 0);
    assert.equal(s.url, redis.url.replace(/\/$/, ""));

    const text = await cli(["status", "--queue", redis.url, "--queue-name", name]);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /jobs: 1 waiting, 1 running, 0 waiting to retry, 1 done, 1 failed \(4 in all\)/);
    assert.match(text.stdout, /^ {2}ew-s3-running on host-a: epoch 3\/10, step 30\/100 \(30%\), for (\d+m)?\d+s$/m);
    assert.match(text.stdout, /^ {2}ew-s2-failed \(\d attempt\(s\)\): on host-b: bad row "…"/m);
    assert.match(text.stdout, /workers connected: 1 \(host-a:4242, idle (\d+m)?\d+s\)/);
    assert.match(text.stdout, /time left: about (\d+[hm])?\d+[ms]/);
    assert.ok(!text.stdout.includes("\u001b"));

    const empty = await cli(["status", "--queue", redis.url, "--queue-name", `${name}-none`]);
    assert.equal(empty.code, 0, empty.stderr);
    assert.match(empty.stdout, /no jobs in this queue \(is --queue-name the bench's\?\)/);
  } finally {
    await worker.close(true);
    await queue.obliterate({ force: true }).catch(() => {});
    await queue.close();
  }
});
