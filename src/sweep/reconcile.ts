/**
 * Queued sweeps that survive their Redis (src/sweep/queue.ts): lost jobs, kept results, acks.
 *
 * A Redis restarted without persistence (`appendonly no`, the default of many servers) comes
 * back empty: its jobs, their locks and any result not yet collected are gone. So:
 *
 * - A worker publishes each finished result under its own key (`mtlcraft-result:<queue>:<id>`,
 *   next to the model artefact's `mtlcraft-model:` key) *before* it reports the job complete,
 *   and keeps a copy in memory until a bench acknowledges it (`mtlcraft-ack:`). While it keeps
 *   one it checks every few seconds that the key is still there and publishes it again when it
 *   is not. When Redis no longer knows a job the worker finishes (`Missing key for job …
 *   moveToFinished`), the result is therefore not thrown away: the bench finds it under its key.
 * - While a worker runs a job it renews `mtlcraft-running:<queue>:<id>` (its host and process)
 *   every RUNNING_RENEW_MS, so after a restart the key is back within seconds.
 * - The bench reconciles every poll: a pending job that Redis does not know is collected from
 *   its result key when there is one; is left alone while a worker still says it runs it; and
 *   else, once it has been missing for LOST_GRACE_MS of connected time, is named in the log and
 *   enqueued again. A job whose result was kept is thus never run twice.
 * - The bench acknowledges a result once it has written it (and its model) to disk: the ack key
 *   records when (kept ACK_TTL_S), and the result and model keys are deleted. A later bench
 *   that finds a finished job without its model says whether it was collected (when) or expired
 *   (when), and runs it again.
 *
 * Everything read back from Redis is untrusted: it is parsed defensively and printed only
 * through `printable` (control characters replaced, length bounded).
 */
import { hostname } from "node:os";

/** How long a result and its model artefact wait in Redis for a bench to collect them. */
export const RESULT_TTL_S = 14 * 24 * 3600;
/** How long the record of a collected result stays (to tell a later bench when it was collected). */
export const ACK_TTL_S = 30 * 24 * 3600;
/** How often a worker renews the marker of a job it runs, and checks that its kept results are still in Redis. */
export const RUNNING_RENEW_MS = 2000;
/** A pending job missing from Redis this long (while connected) is enqueued again. */
export const LOST_GRACE_MS = 6000;
/** Bytes of results a worker keeps in memory for republishing (oldest dropped first beyond it). */
export const KEEP_MAX_BYTES = 256 * 1024 * 1024;

export const resultKey = (queue: string, qid: string): string => `mtlcraft-result:${queue}:${qid}`;
export const ackKey = (queue: string, qid: string): string => `mtlcraft-ack:${queue}:${qid}`;
export const runningKey = (queue: string, qid: string): string => `mtlcraft-running:${queue}:${qid}`;

/** The commands used on BullMQ's own connection (an ioredis client). */
export interface RawRedis {
  set(key: string, value: Buffer | string, mode: "EX", seconds: number): Promise<unknown>;
  get(key: string): Promise<string | null>;
  getBuffer(key: string): Promise<Buffer | null>;
  del(...keys: string[]): Promise<number>;
  exists(key: string): Promise<number>;
  status?: string;
}

export const rawClient = async (x: { client: Promise<unknown> }): Promise<RawRedis> => (await x.client) as RawRedis;

/** Text from Redis made safe for a terminal: control characters (escape sequences) shown as `?`, length bounded. */
export function printable(v: unknown, max = 2000): string {
  // eslint-disable-next-line no-control-regex
  const s = String(v).replace(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g, "?");
  return s.length > max ? `${s.slice(0, max - 3)}...` : s;
}

const isObj = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === "object" && !Array.isArray(v);

/** A timestamp from Redis as an ISO time, or null when it is not a plausible one. */
function isoOf(v: unknown): string | null {
  const t = typeof v === "number" ? v : typeof v === "string" ? Date.parse(v) : NaN;
  return Number.isFinite(t) && t > 0 && t < 8.64e15 ? new Date(t).toISOString() : null;
}

/** A JSON value read from Redis, or null (absent or not JSON). */
export function parseJson(s: string | null): unknown {
  if (s === null) return null;
  try {
    return JSON.parse(s) as unknown;
  } catch {
    return null;
  }
}

/** This process as named in a running marker and a worker's BullMQ client name. */
export function workerName(): string {
  return `${hostname().replace(/[^\w.-]/g, "_").slice(0, 64)}:${process.pid}`;
}

/** Publishes a finished job's result (and model) under their keys, each expiring after RESULT_TTL_S. */
export async function publishResult(redis: RawRedis, queue: string, qid: string, ret: { model?: { key: string } }, model: Buffer | undefined): Promise<void> {
  if (ret.model && model) await redis.set(ret.model.key, model, "EX", RESULT_TTL_S);
  await redis.set(resultKey(queue, qid), JSON.stringify(ret), "EX", RESULT_TTL_S);
}

/** The bench has written the result to disk: record when, and remove the result and its model from Redis. */
export async function ackResult(redis: RawRedis, queue: string, qid: string, modelKey: string | undefined): Promise<void> {
  await redis.set(ackKey(queue, qid), JSON.stringify({ at: new Date().toISOString(), by: workerName() }), "EX", ACK_TTL_S);
  await redis.del(resultKey(queue, qid), ...(modelKey ? [modelKey] : []));
}

/**
 * Why a finished job's model artefact (or result) is not in Redis, and what to do, for a message:
 * collected by a bench (when), expired (when), or lost (a restart without persistence, eviction).
 */
export async function whyMissing(redis: RawRedis, queue: string, qid: string, ret: unknown): Promise<string> {
  const ack = parseJson(await redis.get(ackKey(queue, qid)));
  const recover = "run the bench again: the job is enqueued again";
  if (isObj(ack) && isoOf(ack.at)) {
    return `was collected by a bench at ${isoOf(ack.at)} (${printable(ack.by, 80)}) and then removed from Redis; copy that bench's --out runs/ here, or ${recover}`;
  }
  const exp = isObj(ret) ? isoOf(ret.expiresAt) : null;
  if (exp && Date.parse(exp) <= Date.now()) return `expired at ${exp} (results wait ${RESULT_TTL_S / 86400} days in Redis for a bench); ${recover}`;
  return `is no longer in Redis (restarted without persistence, or evicted for memory)${exp ? `; it would have expired at ${exp}` : ""}; ${recover}`;
}

/** What the bench does about a pending job that Redis does not know. */
export type LostAction = { kind: "result"; value: unknown } | { kind: "running"; by: string } | { kind: "wait" } | { kind: "enqueue" };

/**
 * Decides for a pending job missing from Redis: its published result if there is one; wait while a
 * worker's running marker says it runs it, or while it has been missing less than `graceMs`; else enqueue it again.
 */
export async function lostJobAction(redis: RawRedis, queue: string, qid: string, missingSinceMs: number, graceMs = LOST_GRACE_MS): Promise<LostAction> {
  const kept = parseJson(await redis.get(resultKey(queue, qid)));
  if (isObj(kept)) return { kind: "result", value: kept };
  const by = await redis.get(runningKey(queue, qid));
  if (by !== null) return { kind: "running", by: printable(by.split(" ")[0], 100) };
  return Date.now() - missingSinceMs >= graceMs ? { kind: "enqueue" } : { kind: "wait" };
}

/**
 * A worker's results not yet acknowledged by a bench, kept in memory (at most KEEP_MAX_BYTES) and
 * published again whenever Redis lost them (checked every RUNNING_RENEW_MS by `sweep`).
 */
export class ResultKeeper {
  private readonly kept = new Map<string, { ret: { model?: { key: string } }; model?: Buffer; bytes: number; until: number }>();
  private bytes = 0;
  constructor(
    private readonly queue: string,
    private readonly log: (m: string) => void,
  ) {}

  get size(): number {
    return this.kept.size;
  }

  keep(qid: string, ret: { model?: { key: string } }, model: Buffer | undefined): void {
    this.drop(qid);
    const bytes = (model?.length ?? 0) + JSON.stringify(ret).length;
    this.kept.set(qid, { ret, ...(model ? { model } : {}), bytes, until: Date.now() + RESULT_TTL_S * 1000 });
    this.bytes += bytes;
    for (const [old] of this.kept) {
      if (this.bytes <= KEEP_MAX_BYTES || old === qid) break;
      this.log(`job ${JSON.stringify(printable(old, 80))}: no longer kept in this worker's memory (over ${KEEP_MAX_BYTES >> 20} MB of uncollected results); it stays in Redis`);
      this.drop(old);
    }
  }

  private drop(qid: string): void {
    const k = this.kept.get(qid);
    if (!k) return;
    this.bytes -= k.bytes;
    this.kept.delete(qid);
  }

  /** One round: forget what a bench acknowledged (or what expired); publish again what Redis lost. */
  async sweep(redis: RawRedis): Promise<void> {
    for (const [qid, k] of [...this.kept]) {
      if (Date.now() > k.until || (await redis.exists(ackKey(this.queue, qid)))) {
        this.drop(qid);
        continue;
      }
      if (!(await redis.exists(resultKey(this.queue, qid))) || (k.ret.model && !(await redis.exists(k.ret.model.key)))) {
        await publishResult(redis, this.queue, qid, k.ret, k.model);
        this.log(`job ${JSON.stringify(printable(qid, 80))}: its result was no longer in Redis (restarted without persistence?); published again for the bench`);
      }
    }
  }
}

const clock = (t: number): string => new Date(t).toISOString().slice(11, 19);

/**
 * The bench's view of its Redis connection: while it is not ready, one line per interval says
 * that it is retrying (never a silent wait); one line when it is back.
 */
export class ConnectionWatch {
  private timer: NodeJS.Timeout | undefined;
  private downSince: number | null = null;
  private client: RawRedis | null = null;
  constructor(
    private readonly log: (m: string) => void,
    private readonly where: string,
    private readonly pendingCount: () => number,
    private readonly everyMs: number,
  ) {}

  /** False while the connection is down (known from the last check or the client's state now). */
  get reachable(): boolean {
    return this.client === null || (this.downSince === null && (this.client.status === undefined || this.client.status === "ready"));
  }

  start(client: RawRedis): void {
    this.client = client;
    this.timer = setInterval(() => this.tick(), this.everyMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  tick(now = Date.now()): void {
    const ready = this.client?.status === undefined || this.client.status === "ready";
    if (!ready) {
      this.downSince ??= now;
      this.log(
        `queue ${this.where}: Redis unreachable since ${clock(this.downSince)} UTC; retrying (${this.pendingCount()} job(s) pending; ` +
          `the workers' results wait for the bench, and a Redis restarted without persistence has lost its jobs: they are enqueued again once it is back)`,
      );
    } else if (this.downSince !== null) {
      this.log(`queue ${this.where}: Redis reachable again after ${((now - this.downSince) / 1000).toFixed(0)} s; checking the pending jobs`);
      this.downSince = null;
    }
  }
}

/** The bench's last line on Ctrl-C: which pending jobs are still queued and which Redis no longer has (bounded: 2 s). */
export async function stopMessage(queue: { getJob(id: string): Promise<unknown> }, qids: readonly string[], reachable: boolean, where: string): Promise<string> {
  const rerun = "run the same bench again: it collects what the workers finished and enqueues again what Redis lost";
  if (!reachable) {
    return `\nbench stopped: Redis at ${where} is unreachable, so the ${qids.length} pending job(s) may still be queued or, if it restarted without persistence, gone; ${rerun}`;
  }
  let timer: NodeJS.Timeout | undefined;
  const found = await Promise.race([
    Promise.all(qids.map((q) => queue.getJob(q).then((j) => (j ? 1 : 0)))),
    new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error("no answer")), 2000))),
  ]).finally(() => clearTimeout(timer));
  const there = found.reduce<number>((a, b) => a + b, 0);
  const gone = qids.length - there;
  return (
    `\nbench stopped: ${there} job(s) stay in the queue ${where} (the workers go on)` +
    (gone ? `; ${gone} job(s) are no longer in Redis (restarted without persistence?)` : "") +
    `; ${rerun}`
  );
}

/**
 * A result a worker published for this job (its job was lost from Redis and enqueued again, or a
 * copy finished elsewhere): returned instead of running the job again, when it is whole (its
 * model still there) and computed on the job's data. Null otherwise.
 */
export async function keptResult(redis: RawRedis, queue: string, qid: string, datasetHash: string): Promise<Record<string, unknown> | null> {
  const v = parseJson(await redis.get(resultKey(queue, qid)));
  if (!isObj(v) || v.version !== 1 || !isObj(v.result)) return null;
  if (!isObj(v.result.config) || v.result.config.datasetHash !== datasetHash) return null;
  if (isObj(v.model) && (typeof v.model.key !== "string" || !(await redis.exists(v.model.key)))) return null;
  return v;
}

/** Seconds a running marker lives without renewal (a dead worker's marker is gone this long after it). */
export const RUNNING_TTL_S = (5 * RUNNING_RENEW_MS) / 1000;
