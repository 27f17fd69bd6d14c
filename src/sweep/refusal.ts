/**
 * Healthy sweeps: a worker that cannot run a sweep's jobs (its data has another content hash,
 * its resolved configuration differs from the bench's, or the payload comes from another
 * mtlcraft version) refuses the sweep rather than failing its jobs:
 *
 * - the job goes back to the queue (BullMQ's moveToDelayed with a short delay: its attempts
 *   are untouched, so a worker that cannot run it never uses them up);
 * - the worker says why once, records the refusal in Redis (`mtlcraft-refused:<queue>:<sweep>`,
 *   a hash of worker -> reason the bench prints once per worker), and from then on gives every
 *   job of that sweep back at once without preparing anything;
 * - after giving a job back it pauses its own fetching for a while (5 s, doubling to 60 s while
 *   it only meets refused jobs), so the healthy workers take the sweep's jobs; a paused worker
 *   takes other queues' jobs again when the pause ends.
 *
 * A sweep is identified by its dataset content hash (all of a bench's jobs share it). When no
 * worker can run the sweep, the bench keeps waiting, but says so: every refusing worker is named
 * in its log with its reason, and `mtlcraft status` shows the jobs waiting.
 */
import { DelayedError, type Job as BullJob, type Worker } from "bullmq";
import { hostname } from "node:os";
import type { QueuePayload } from "./payload.ts";
import { jobProvenance, mtlcraftVersion, provenanceDiff } from "./provenance.ts";
import { printable, workerName, type RawRedis } from "./reconcile.ts";

/** The raw client's hash commands (ioredis has them; RawRedis names only what reconcile.ts uses). */
type HashRedis = RawRedis & {
  hset(key: string, field: string, value: string): Promise<unknown>;
  hgetall(key: string): Promise<Record<string, string>>;
  expire(key: string, seconds: number): Promise<unknown>;
};

/** How long a given-back job waits before any worker may take it again. */
export const RELEASE_DELAY_MS = 1000;
/** A refusing worker's first pause (doubled while it only meets refused jobs, up to REFUSE_PAUSE_MAX_MS). */
export const REFUSE_PAUSE_MS = 5000;
export const REFUSE_PAUSE_MAX_MS = 60_000;
/** How long a refusal record stays in Redis. */
export const REFUSED_TTL_S = 7 * 24 * 3600;

/** The Redis key of a sweep's refusals (worker -> reason). */
export function refusedKey(queue: string, datasetHash: string): string {
  return `mtlcraft-refused:${queue}:${datasetHash}`;
}

/** Why this worker cannot run a payload's jobs from the bench's provenance alone (null: it can). */
export function provenanceRefusal(data: QueuePayload): string | null {
  const mine = mtlcraftVersion();
  const p = data.provenance;
  if (!p) return `the job records no mtlcraft version (this worker runs mtlcraft ${mine}); enqueue it with a bench of mtlcraft ${mine}`;
  if (p.mtlcraft !== mine) return `the bench runs mtlcraft ${printable(p.mtlcraft, 64)}, this worker mtlcraft ${mine}; run workers of the bench's version`;
  const own = jobProvenance(data.job);
  if (own.configHash === p.configHash) return null;
  const diff = provenanceDiff({ mtlcraft: p.mtlcraft, config: p.config }, own).map((d) => printable(d, 200));
  return `this worker's resolved configuration differs from the bench's (bench → this worker: ${diff.slice(0, 8).join("; ") || "configuration hash differs"}); run workers with the bench's mtlcraft build`;
}

/** A worker's refused sweeps, with its pause after each given-back job. */
export class SweepRefusals {
  private readonly refused = new Map<string, string>();
  private pauseMs = REFUSE_PAUSE_MS;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly queue: string,
    private readonly log: (m: string) => void,
  ) {}

  /** The reason a sweep was refused before (null: not refused). */
  reasonFor(datasetHash: string): string | null {
    return this.refused.get(datasetHash) ?? null;
  }

  /** A job ran here: the pause starts short again next time. */
  ran(): void {
    this.pauseMs = REFUSE_PAUSE_MS;
  }

  /**
   * Refuses the job's sweep (said once, recorded in Redis), gives the job back without using an
   * attempt and pauses this worker's fetching. Always throws (DelayedError, as BullMQ expects).
   */
  async giveBack(bj: BullJob, token: string | undefined, data: QueuePayload, reason: string, worker: Worker, raw: RawRedis): Promise<never> {
    const redis = raw as HashRedis;
    const sweep = data.dataset.hash;
    if (!this.refused.has(sweep)) {
      this.refused.set(sweep, reason);
      this.log(`refusing the jobs of sweep ${sweep.slice(0, 12)}… (job ${data.job.id} and the rest): ${reason}; they go back to the queue for other workers, with their attempts untouched`);
      await redis
        .hset(refusedKey(this.queue, sweep), workerName(), `${hostname()}: ${reason}`.slice(0, 1000))
        .then(() => redis.expire(refusedKey(this.queue, sweep), REFUSED_TTL_S))
        .catch(() => 0);
    }
    if (!token) throw new Error(`on ${hostname()}: ${reason}`); // cannot happen with a running worker (BullMQ passes its token)
    await bj.moveToDelayed(Date.now() + RELEASE_DELAY_MS, token);
    this.pause(worker);
    throw new DelayedError();
  }

  private pause(worker: Worker): void {
    if (this.timer) return;
    const ms = this.pauseMs;
    this.pauseMs = Math.min(REFUSE_PAUSE_MAX_MS, this.pauseMs * 2);
    void worker.pause(true).catch(() => {});
    this.timer = setTimeout(() => {
      this.timer = undefined;
      worker.resume();
    }, ms);
    this.timer.unref();
  }

  stop(): void {
    clearTimeout(this.timer);
  }
}

/**
 * The bench's side: every `pollMs`, the refusals recorded for this sweep, each worker's printed
 * once (sanitised: Redis content is untrusted); and, with `workers` (the number of workers on the
 * queue), one line when no worker has been connected for `idleMs` (a worker of another version
 * serves its own queue, so it would wait in silence). Returns a function that stops the watch.
 */
export function watchRefusals(
  raw: RawRedis,
  queue: string,
  datasetHash: string,
  log: (m: string) => void,
  pollMs: number,
  workers?: () => Promise<number>,
  idleMs = 30_000,
): () => void {
  let noWorkerSince = Date.now();
  let saidNoWorker = false;
  const checkWorkers = async (): Promise<void> => {
    if (!workers) return;
    if ((await workers()) > 0) {
      noWorkerSince = Date.now();
      saidNoWorker = false;
    } else if (!saidNoWorker && Date.now() - noWorkerSince >= idleMs) {
      saidNoWorker = true;
      log(`no worker has been connected to queue "${printable(queue, 200)}" for ${Math.round(idleMs / 1000)} s: start \`mtlcraft worker\` (mtlcraft ${mtlcraftVersion()}, the same --queue-name); a worker of another mtlcraft version serves its own queue and never takes these jobs`);
    }
  };
  const redis = raw as HashRedis;
  const said = new Set<string>();
  let busy = false;
  const timer = setInterval(() => {
    if (busy) return;
    busy = true;
    void redis
      .hgetall(refusedKey(queue, datasetHash))
      .then((all) => {
        for (const [w, why] of Object.entries(all ?? {})) {
          const line = `worker ${printable(w, 100)} refuses this sweep's jobs (they wait for other workers, attempts untouched): ${printable(why, 600)}`;
          if (said.has(line)) continue;
          said.add(line);
          log(line);
        }
      })
      .then(checkWorkers)
      .catch(() => 0)
      .finally(() => (busy = false));
  }, pollMs);
  timer.unref();
  return () => clearInterval(timer);
}
