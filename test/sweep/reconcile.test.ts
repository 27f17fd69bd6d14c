/**
 * The lost-job logic of src/sweep/reconcile.ts on an in-memory stand-in for Redis (the real
 * Redis restart is in queue-lost.test.ts): what the bench does about a job Redis forgot, what a
 * worker republishes, what a missing model says, and the bench's Ctrl-C and retry lines.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  ackKey,
  ackResult,
  ConnectionWatch,
  keptResult,
  lostJobAction,
  publishResult,
  ResultKeeper,
  resultKey,
  runningKey,
  stopMessage,
  whyMissing,
  type RawRedis,
} from "../../src/sweep/reconcile.ts";

/** Keys and values only (TTL ignored): what the logic reads and writes. */
class FakeRedis implements RawRedis {
  readonly data = new Map<string, Buffer | string>();
  status = "ready";
  async set(key: string, value: Buffer | string): Promise<unknown> {
    this.data.set(key, value);
    return "OK";
  }
  async get(key: string): Promise<string | null> {
    const v = this.data.get(key);
    return v === undefined ? null : v.toString();
  }
  async getBuffer(key: string): Promise<Buffer | null> {
    const v = this.data.get(key);
    return v === undefined ? null : Buffer.from(v);
  }
  async del(...keys: string[]): Promise<number> {
    let n = 0;
    for (const k of keys) n += this.data.delete(k) ? 1 : 0;
    return n;
  }
  async exists(key: string): Promise<number> {
    return this.data.has(key) ? 1 : 0;
  }
}

const Q = "sweep";
const ret = (hash = "h1") => ({ version: 1, result: { config: { datasetHash: hash }, metrics: {} }, worker: "w", model: { key: "mtlcraft-model:sweep:j1" }, expiresAt: "2030-01-01T00:00:00.000Z" });

test("a job Redis forgot: its kept result is collected; a running one is waited for; else it is enqueued again only after the grace period", async () => {
  const r = new FakeRedis();
  const now = Date.now();
  assert.deepEqual(await lostJobAction(r, Q, "j1", now, 6000), { kind: "wait" });
  assert.deepEqual(await lostJobAction(r, Q, "j1", now - 6000, 6000), { kind: "enqueue" });
  await r.set(runningKey(Q, "j1"), "hostA:12 token");
  assert.deepEqual(await lostJobAction(r, Q, "j1", now - 60_000, 6000), { kind: "running", by: "hostA:12" });
  await publishResult(r, Q, "j1", ret(), Buffer.from("model"));
  const act = await lostJobAction(r, Q, "j1", now, 6000);
  assert.equal(act.kind, "result");
  assert.deepEqual((act as { value: unknown }).value, ret());
  assert.equal((await r.getBuffer("mtlcraft-model:sweep:j1"))!.toString(), "model");
});

test("a worker returns a kept result only when it is whole and computed on the job's data", async () => {
  const r = new FakeRedis();
  assert.equal(await keptResult(r, Q, "j1", "h1"), null);
  await publishResult(r, Q, "j1", ret(), Buffer.from("model"));
  assert.deepEqual(await keptResult(r, Q, "j1", "h1"), ret());
  assert.equal(await keptResult(r, Q, "j1", "other-data"), null, "other data: run it");
  await r.del("mtlcraft-model:sweep:j1");
  assert.equal(await keptResult(r, Q, "j1", "h1"), null, "its model is gone: run it");
  await r.set(resultKey(Q, "j2"), "{not json");
  assert.equal(await keptResult(r, Q, "j2", "h1"), null);
});

test("a worker publishes a kept result again when Redis lost it, and forgets it once a bench acknowledged it", async () => {
  const r = new FakeRedis();
  const lines: string[] = [];
  const keeper = new ResultKeeper(Q, (m) => lines.push(m));
  await publishResult(r, Q, "j1", ret(), Buffer.from("model"));
  keeper.keep("j1", ret(), Buffer.from("model"));
  await keeper.sweep(r);
  assert.equal(lines.length, 0, "still there: nothing to do");
  r.data.clear(); // Redis restarted empty
  await keeper.sweep(r);
  assert.match(lines[0]!, /its result was no longer in Redis \(restarted without persistence\?\); published again/);
  assert.deepEqual(JSON.parse((await r.get(resultKey(Q, "j1")))!), ret());
  assert.equal((await r.get("mtlcraft-model:sweep:j1"))!, "model");
  // the bench wrote it to disk and acknowledged it: removed from Redis, and the worker forgets it
  await ackResult(r, Q, "j1", "mtlcraft-model:sweep:j1");
  assert.equal(await r.exists(resultKey(Q, "j1")), 0);
  assert.equal(await r.exists("mtlcraft-model:sweep:j1"), 0);
  await keeper.sweep(r);
  assert.equal(keeper.size, 0);
  assert.equal(await r.exists(resultKey(Q, "j1")), 0, "an acknowledged result is not published again");
});

test("a finished job without its model says whether it was collected (when) or expired (when), and how to recover", async () => {
  const r = new FakeRedis();
  await ackResult(r, Q, "j1", undefined);
  const at = JSON.parse((await r.get(ackKey(Q, "j1")))!).at as string;
  assert.match(await whyMissing(r, Q, "j1", ret()), new RegExp(`was collected by a bench at ${at.replace(/\./g, "\\.")} .*run the bench again: the job is enqueued again`));
  const expired = { ...ret(), expiresAt: "2020-01-02T03:04:05.000Z" };
  assert.match(await whyMissing(r, Q, "j2", expired), /expired at 2020-01-02T03:04:05\.000Z \(results wait 14 days in Redis for a bench\); run the bench again: the job is enqueued again/);
  assert.match(await whyMissing(r, Q, "j3", ret()), /is no longer in Redis \(restarted without persistence, or evicted for memory\); it would have expired at 2030-01-01/);
  // what Redis holds is not trusted: a control sequence in the ack is not printed
  await r.set(ackKey(Q, "j4"), JSON.stringify({ at: "2026-01-01T00:00:00Z", by: "\u001b[2Jevil" }));
  assert.ok(!(await whyMissing(r, Q, "j4", ret())).includes("\u001b"));
});

test("the bench's Ctrl-C line tells which jobs are still queued and which Redis lost; unreachable, it says it cannot tell", async () => {
  const queue = { getJob: async (id: string) => (id === "a" || id === "b" ? { id } : undefined) };
  const m = await stopMessage(queue, ["a", "b", "c"], true, "redis://h:1 (queue \"q\")");
  assert.match(m, /2 job\(s\) stay in the queue redis:\/\/h:1 \(queue "q"\) \(the workers go on\); 1 job\(s\) are no longer in Redis \(restarted without persistence\?\)/);
  assert.doesNotMatch(await stopMessage(queue, ["a"], true, "x"), /no longer in Redis/);
  assert.match(await stopMessage(queue, ["a", "c"], false, "x"), /unreachable, so the 2 pending job\(s\) may still be queued or, if it restarted without persistence, gone/);
  const hung = { getJob: () => new Promise<never>(() => {}) };
  await assert.rejects(stopMessage(hung, ["a"], true, "x"), /no answer/, "bounded: a Redis that does not answer");
});

test("while Redis is unreachable the bench says once per interval that it retries, and when it is back", () => {
  const lines: string[] = [];
  const client = new FakeRedis();
  const w = new ConnectionWatch((m) => lines.push(m), "redis://h:1", () => 3, 5000);
  w.start(client);
  w.stop();
  w.tick(1000);
  assert.equal(lines.length, 0);
  assert.equal(w.reachable, true);
  client.status = "reconnecting";
  w.tick(Date.UTC(2026, 0, 1, 10, 0, 0));
  w.tick(Date.UTC(2026, 0, 1, 10, 0, 5));
  assert.equal(lines.length, 2);
  assert.match(lines[1]!, /Redis unreachable since 10:00:00 UTC; retrying \(3 job\(s\) pending/);
  assert.equal(w.reachable, false);
  client.status = "ready";
  w.tick(Date.UTC(2026, 0, 1, 10, 0, 12));
  assert.match(lines[2]!, /Redis reachable again after 12 s/);
  assert.equal(w.reachable, true);
});
