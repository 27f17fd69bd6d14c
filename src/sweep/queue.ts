/**
 * Sweeps on a Redis-backed job queue (BullMQ): `bench --queue redis://HOST:PORT` enqueues
 * every job and waits for the results; `mtlcraft worker --queue ...` runs jobs on any number
 * of machines, each job in its own `train` process (the local runner's, src/sweep/runner.ts).
 *
 * - A queue job's id is a hash of the job's full configuration (without machine-local
 *   paths) and the dataset content hash, so enqueuing the same job twice is a no-op; a
 *   re-run bench finds finished jobs (their results stay in Redis) and runs nothing again.
 * - The job carries the dataset spec's content and its content hash: a worker prepares the
 *   data itself (its own cache, its own data folder) and refuses to run on other content.
 * - The result JSON comes back through the queue with its diagnostics summarised; the bench
 *   writes it into its output folder exactly as the local runner does.
 * - A worker that dies mid-job stops renewing the job's lock; another worker's stalled check
 *   puts the job back (after a backoff), up to `maxStalls` times. A job whose train process
 *   fails is retried with exponential backoff up to `attempts`. Then it fails with its error.
 * - The connection string and password never reach a log line, a result or a report
 *   (see redactUrl).
 * - A payload is untrusted input (anyone who can write to the Redis can add a job): it is
 *   checked against one strict schema (payload.ts), its options reach the job's `train` process
 *   only as `--key=value` arguments of known flags (runner.ts toArgs), the BullMQ id is never a
 *   path (jobWorkDir: a hash; removeInside: nothing outside the work folder is removed), the
 *   spec's files must lie inside the worker's data folder (prepare's confineTo), and what goes
 *   back into Redis never quotes a file's content (redis-message.ts).
 */
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, realpathSync, rmSync, statSync, writeFileSync } from "node:fs";
import { gunzipSync, gzipSync } from "node:zlib";
import { hostname } from "node:os";
import { isAbsolute, join, resolve } from "node:path";
import { createHash } from "node:crypto";
import { DelayedError, Queue, QueueEvents, UnrecoverableError, WaitingError, Worker, type Job as BullJob } from "bullmq";
import { DEFAULT_QUEUE_NAME, connectionOptions, plainTextWarning, redactMessage, redactUrl, type QueueConnection } from "./queue-url.ts";
import { checkPayload, LOCAL_OPTIONS, type DatasetPayload, type QueuePayload } from "./payload.ts";
import { payloadStrings, redisSafeMessage, scrubText } from "./redis-message.ts";
import { ackResult, lostJobAction, printable, publishResult, rawClient, RESULT_TTL_S, ResultKeeper, RUNNING_RENEW_MS, runningKey, whyMissing, workerName, ConnectionWatch, stopMessage, keptResult, RUNNING_TTL_S, type RawRedis } from "./reconcile.ts";
import { OutsideDataFolderError } from "../data/confine.ts";
import { jobProvenance, mtlcraftVersion, provenanceDiff, versionedQueueName } from "./provenance.ts";
import { readProvenance } from "../train/provenance.ts";
import { provenanceRefusal, SweepRefusals, watchRefusals } from "./refusal.ts";
import { cleanWorkDir, handBackOnSignal } from "./worker-hygiene.ts";
import { strictlyInside } from "../util/outpath.ts";
import type { DiagnosticsPoint, RunResult } from "../report/types.ts";
import { prepareDataset, DEFAULT_CACHE_DIR } from "../data/index.ts";
import { writeDirAtomic, writeFileAtomic } from "../util/fsx.ts";
import { modelArtifactPath } from "../train/artifact.ts";
import type { Job, OptionValue } from "./plan.ts";
import {
  canonical,
  killWorkers,
  pendingJobs,
  readResult,
  resultPath,
  runOne,
  sweepProgress,
  writeRecord,
} from "./runner.ts";

export { DEFAULT_QUEUE_NAME, QUEUE_URL_ENV, QUEUE_PASSWORD_ENV, redactUrl, redactArgs, connectionOptions, type QueueConnection } from "./queue-url.ts";
export { checkPayload, PayloadError, type DatasetPayload, type QueuePayload } from "./payload.ts";
/** Diagnostics points a queued result keeps (longer runs are averaged into this many buckets). */
export const QUEUE_DIAG_POINTS = 120;


/**
 * The queue job id: the job's method and seed (readable) and a hash of its full
 * configuration (without machine-local paths) plus the dataset content hash.
 */
export function queueJobId(job: Job, datasetHash: string): string {
  const options = Object.fromEntries(Object.entries(job.options).filter(([k]) => !LOCAL_OPTIONS.includes(k)));
  // the provenance is part of the identity: another version or resolved configuration is another job
  const p = jobProvenance(job);
  const h = createHash("sha256").update(canonical({ method: job.method, seed: job.seed, options })).update(`\n${datasetHash}\n${p.mtlcraft}\n${p.configHash}`).digest("hex");
  return `${job.method}-s${job.seed}-${h.slice(0, 20)}`;
}

/** What a worker returns. */
export interface QueueReturn {
  version: 1;
  result: RunResult;
  worker: string;
  /** The run's model artefact (`<id>.model`), packed under its own Redis key (expiring) rather than in the result. */
  model?: { key: string; bytes: number };
  /** When the result and model keys expire in Redis unless a bench collects them first (ISO time). */
  expiresAt?: string;
}

/** How long a model artefact waits in Redis for the bench to collect it (it is deleted once collected). */
export const MODEL_TTL_S = RESULT_TTL_S;

/** The Redis key of a queued job's model artefact. */
export function modelKey(queueName: string, qid: string): string {
  return `mtlcraft-model:${queueName}:${qid}`;
}

/** A flat folder (a model artefact) as one gzipped buffer: a JSON header line [[name, bytes], ...], then the files' bytes. */
export function packDir(dir: string): Buffer {
  const names = readdirSync(dir).filter((n) => statSync(join(dir, n)).isFile()).sort();
  const bodies = names.map((n) => readFileSync(join(dir, n)));
  const head = Buffer.from(JSON.stringify(names.map((n, i) => [n, bodies[i]!.length])) + "\n");
  return gzipSync(Buffer.concat([head, ...bodies]));
}

/** Writes a packDir buffer as the folder `dir` (atomically; file names checked). */
export function unpackDir(buf: Buffer, dir: string): void {
  const raw = gunzipSync(buf);
  const nl = raw.indexOf(10);
  if (nl < 0) throw new Error("model artefact: no header");
  const head = JSON.parse(raw.subarray(0, nl).toString("utf8")) as unknown;
  if (!Array.isArray(head)) throw new Error("model artefact: bad header");
  let pos = nl + 1;
  const files: [string, Buffer][] = [];
  for (const e of head) {
    const [name, bytes] = Array.isArray(e) ? (e as unknown[]) : [];
    if (typeof name !== "string" || !/^[\w][\w.-]*$/.test(name) || typeof bytes !== "number" || !Number.isInteger(bytes) || bytes < 0 || pos + bytes > raw.length) {
      throw new Error(`model artefact: bad entry ${JSON.stringify(e)}`);
    }
    files.push([name, raw.subarray(pos, pos + bytes)]);
    pos += bytes;
  }
  if (pos !== raw.length) throw new Error("model artefact: trailing bytes");
  writeDirAtomic(dir, (tmp) => {
    for (const [name, body] of files) writeFileSync(join(tmp, name), body);
  });
}

// ---------------------------------------------------------------------------------------------
// diagnostics summary

function meanOf(xs: readonly (number | null | undefined)[]): number {
  let s = 0;
  let n = 0;
  for (const x of xs) {
    if (typeof x === "number" && Number.isFinite(x)) {
      s += x;
      n++;
    }
  }
  return n ? s / n : NaN;
}

const round = (x: number): number => (Number.isFinite(x) ? Number(x.toPrecision(6)) : x);

/**
 * At most `maxPoints` diagnostics points: consecutive steps averaged in equal buckets
 * (step: the bucket's last step; every number the bucket mean, to 6 significant digits).
 * Averages over all steps (what the report's cosine heatmap shows) are kept up to rounding.
 */
export function summarizeDiagnostics(diag: readonly DiagnosticsPoint[], maxPoints = QUEUE_DIAG_POINTS): DiagnosticsPoint[] {
  const n = diag.length;
  const buckets = Math.min(n, Math.max(1, maxPoints));
  const out: DiagnosticsPoint[] = [];
  for (let b = 0; b < buckets; b++) {
    const part = diag.slice(Math.floor((b * n) / buckets), Math.floor(((b + 1) * n) / buckets));
    if (part.length === 0) continue;
    const vec = (pick: (d: DiagnosticsPoint) => readonly number[]): number[] => {
      const len = pick(part[0]!).length;
      return Array.from({ length: len }, (_, i) => round(meanOf(part.map((d) => pick(d)[i]))));
    };
    out.push({
      step: part[part.length - 1]!.step,
      losses: vec((d) => d.losses),
      weights: part.every((d) => d.weights) ? vec((d) => d.weights!) : null,
      ...(part.every((d) => Array.isArray(d.coeffs)) ? { coeffs: vec((d) => d.coeffs!) } : {}),
      norms: vec((d) => d.norms),
      cosines: vec((d) => d.cosines),
      conflicts: round(meanOf(part.map((d) => d.conflicts))),
    });
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// helpers

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(what)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/** A connection error handler that reports each distinct message once (redacted). */
function errorReporter(log: (m: string) => void, c: QueueConnection): (e: Error) => void {
  const seen = new Set<string>();
  return (e: Error) => {
    const msg = redactMessage(e.message, c);
    if (seen.has(msg)) return;
    seen.add(msg);
    log(`queue ${redactUrl(c.url)}: ${msg}`);
  };
}

const isObj = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === "object" && !Array.isArray(v);

// ---------------------------------------------------------------------------------------------
// the bench side: enqueue and collect

export interface EnqueueOptions extends QueueConnection {
  /** Attempts per job when its train process fails (default 3). */
  attempts?: number;
  /** Backoff before the first retry, doubled each time (default 10 s); also after a stall. */
  backoffMs?: number;
  /** How often job states are polled besides the event stream (default 5 s). */
  pollMs?: number;
}

export interface RunQueuedOptions {
  runsDir: string;
  datasetHash: string;
  dataset: DatasetPayload;
  interactive: boolean;
  log: (m: string) => void;
  queue: EnqueueOptions;
}

interface Progress {
  step?: number;
  total?: number;
  info?: string;
  worker?: string;
}

/**
 * Enqueues every job not yet finished in `runsDir`, waits for all of them (with the local
 * runner's progress display) and writes each result into `runsDir` as the local runner
 * does. Returns the results of all jobs (in input order); throws when any job failed.
 */
export async function runJobsQueued(jobs: Job[], opts: RunQueuedOptions): Promise<RunResult[]> {
  const runsDir = resolve(opts.runsDir);
  mkdirSync(runsDir, { recursive: true });
  const todo = pendingJobs(jobs, runsDir, opts.datasetHash, opts.log);
  if (todo.length > 0) await enqueueAndWait(todo, runsDir, opts);
  return jobs.map((j) => readResult(resultPath(runsDir, j)));
}

async function enqueueAndWait(todo: Job[], runsDir: string, opts: RunQueuedOptions): Promise<void> {
  const q = opts.queue;
  // one queue per mtlcraft version: workers of another version never see these jobs (provenance.ts)
  const name = versionedQueueName(q.name ?? DEFAULT_QUEUE_NAME, mtlcraftVersion());
  const connection = connectionOptions(q);
  const plain = plainTextWarning(q);
  if (plain) opts.log(plain);
  const where = `${redactUrl(q.url)} (queue "${name}")`;
  const onError = errorReporter(opts.log, q);
  const queue = new Queue(name, { connection });
  const events = new QueueEvents(name, { connection });
  queue.on("error", onError);
  events.on("error", onError);
  const byQid = new Map(todo.map((j) => [queueJobId(j, opts.datasetHash), j]));
  const pending = new Set(byQid.keys());
  const failures: string[] = [];
  let progress: ReturnType<typeof sweepProgress> | null = null;
  const updaters = new Map<string, (step: number, total: number, info: string) => void>();
  let allDone: () => void = () => {};
  const done = new Promise<void>((r) => (allDone = r));
  let poller: NodeJS.Timeout | undefined;
  let stopRefusals: () => void = () => {};
  const watch = new ConnectionWatch(opts.log, where, () => pending.size, q.pollMs ?? 5000);
  // Ctrl-C: says which jobs are still queued (workers go on) and which Redis lost; a re-run collects or enqueues them.
  let stopping = false;
  const onSignal = (sig: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    void stopMessage(queue, [...pending], watch.reachable, where)
      .then(opts.log, () => opts.log(`\nbench stopped: ${pending.size} job(s) pending on ${where}; run the same bench again to collect or enqueue them`))
      .finally(() => process.exit(sig === "SIGINT" ? 130 : 143));
  };
  const sigs: NodeJS.Signals[] = ["SIGINT", "SIGTERM", "SIGHUP"];

  const settling = new Set<string>();
  const finish = async (qid: string, ok: boolean, value: unknown): Promise<void> => {
    if (!pending.has(qid) || settling.has(qid)) return;
    settling.add(qid);
    const job = byQid.get(qid)!;
    if (ok) {
      try {
        await saveResult(runsDir, job, value, opts.datasetHash, await rawClient(queue), name, qid);
      } catch (e) {
        ok = false;
        value = (e as Error).message;
      }
    }
    if (!ok) {
      const why = String(value) === "job stalled more than allowable limit" ? "its worker died (stalled job) more often than allowed (worker --max-stalls)" : printable(value);
      failures.push(`${job.id}: ${why}`);
    }
    pending.delete(qid);
    updaters.delete(qid);
    progress?.end(job.id, ok);
    if (pending.size === 0) allDone();
  };
  // a pending job Redis does not know (restarted without persistence): its kept result, or enqueued again (reconcile.ts)
  const missingSince = new Map<string, number>();
  const lostSaid = new Set<string>();
  let enqueue: (qid: string, job: Job) => Promise<unknown> = async () => {};
  const lost = async (qid: string): Promise<void> => {
    const redis = await rawClient(queue);
    if (redis.status !== undefined && redis.status !== "ready") return;
    const since = missingSince.get(qid) ?? Date.now();
    missingSince.set(qid, since);
    const job = byQid.get(qid)!;
    const act = await lostJobAction(redis, name, qid, since);
    if (act.kind === "result") {
      opts.log(`${job.id}: no longer in Redis (restarted without persistence?), but its worker kept the result: collected`);
      await finish(qid, true, act.value);
      await queue.remove(qid).catch(() => 0); // a copy enqueued meanwhile is not run again
    } else if (act.kind === "running" && !lostSaid.has(qid)) {
      lostSaid.add(qid);
      opts.log(`${job.id}: no longer in Redis (restarted without persistence?), but worker ${act.by} still runs it; waiting for its result`);
    } else if (act.kind === "enqueue") {
      opts.log(`${job.id}: no longer in Redis (restarted without persistence?) and no worker kept a result; enqueued again`);
      missingSince.delete(qid);
      lostSaid.delete(qid);
      await enqueue(qid, job);
    }
  };
  const check = async (qid: string, retryFailed: boolean): Promise<void> => {
    const bj = await queue.getJob(qid);
    if (!pending.has(qid)) return;
    if (!bj) return lost(qid);
    missingSince.delete(qid);
    const state = await bj.getState();
    if (state === "completed") await finish(qid, true, bj.returnvalue);
    else if (state === "failed") {
      if (retryFailed) {
        opts.log(`${byQid.get(qid)!.id}: failed in an earlier run (${printable(bj.failedReason)}); retrying`);
        await bj.retry("failed", { resetAttemptsMade: true, resetAttemptsStarted: true });
      } else await finish(qid, false, bj.failedReason);
    }
  };

  try {
    await withTimeout(Promise.all([queue.waitUntilReady(), events.waitUntilReady()]), 15_000, `cannot reach Redis at ${where}`);
    watch.start(await rawClient(queue));
    stopRefusals = watchRefusals(await rawClient(queue), name, opts.datasetHash, opts.log, q.pollMs ?? 5000, () => queue.getWorkersCount());
    for (const s of sigs) process.on(s, onSignal);
    progress = sweepProgress(todo.length, opts.interactive, opts.log);
    events.on("active", ({ jobId }) => {
      if (pending.has(jobId)) updaters.set(jobId, progress!.start(byQid.get(jobId)!.id, "running"));
    });
    events.on("progress", ({ jobId, data }) => {
      if (!pending.has(jobId) || !isObj(data)) return;
      const p = data as Progress;
      if (!updaters.has(jobId)) updaters.set(jobId, progress!.start(byQid.get(jobId)!.id, "running"));
      updaters.get(jobId)!(Number(p.step) || 0, Number(p.total) || 1, printable(`${p.worker ? `${p.worker} ` : ""}${p.info ?? ""}`, 200));
    });
    events.on("stalled", ({ jobId }) => {
      if (pending.has(jobId)) opts.log(`${byQid.get(jobId)!.id}: its worker stopped (stalled job); it goes back to the queue unless it has stalled more often than the worker's --max-stalls allows (then it fails)`);
    });
    events.on("delayed", ({ jobId, delay }) => {
      if (!pending.has(jobId)) return;
      const id = byQid.get(jobId)!.id;
      void queue.getJob(jobId).then((bj) => {
        const why = bj?.failedReason ? `attempt ${bj.attemptsMade} failed: ${printable(bj.failedReason.split("\n")[0])}` : "waiting after a stall";
        opts.log(`${id}: ${why}; retrying at ${new Date(Number(delay)).toISOString().slice(11, 19)}`);
      }, onError);
    });
    events.on("completed", ({ jobId, returnvalue }) => void finish(jobId, true, returnvalue).catch(onError));
    events.on("failed", ({ jobId, failedReason }) => void finish(jobId, false, failedReason).catch(onError));

    const attempts = q.attempts ?? 3;
    const backoff = { type: "exponential", delay: q.backoffMs ?? 10_000 };
    enqueue = (qid, job) => queue.add(job.id, payloadOf(job), { jobId: qid, attempts, backoff, removeOnComplete: { age: 30 * 24 * 3600 }, removeOnFail: false });
    let added = 0;
    const payloadOf = (job: Job): QueuePayload => ({
      version: 1,
      job: { id: job.id, method: job.method, seed: job.seed, options: job.options },
      dataset: opts.dataset,
      provenance: jobProvenance(job),
    });
    // what a worker would refuse is refused here, before anything is enqueued
    for (const job of byQid.values()) checkPayload(payloadOf(job));
    for (const [qid, job] of byQid) {
      let before = await queue.getJob(qid);
      // finished, but its model artefact expired in Redis before a bench collected it: run it again
      const model = (before?.returnvalue as QueueReturn | undefined)?.model;
      if (before && model && (await before.getState()) === "completed" && !(await (await rawClient(queue)).exists(model.key))) {
        opts.log(`${job.id}: finished in the queue, but its model artefact ${await whyMissing(await rawClient(queue), name, qid, before.returnvalue)}; running it again`);
        await before.remove();
        before = undefined;
      }
      // same id, same configuration and data: a job already in the queue is not added twice
      if (!before) {
        await enqueue(qid, job);
        added++;
      }
    }
    opts.log(`queue ${where}: ${added} job(s) added, ${byQid.size - added} already there; waiting for workers (mtlcraft worker --queue ...)`);
    for (const qid of byQid.keys()) await check(qid, true);
    const pollMs = q.pollMs ?? 5000;
    // events can be missed (a reconnect, a trimmed stream): the states are polled as well
    const poll = async () => {
      for (const qid of [...pending]) await check(qid, false).catch(onError);
      if (pending.size > 0) poller = setTimeout(() => void poll(), pollMs);
    };
    if (pending.size > 0) poller = setTimeout(() => void poll(), pollMs);
    await done;
  } finally {
    clearTimeout(poller);
    watch.stop();
    stopRefusals();
    for (const s of sigs) process.removeListener(s, onSignal);
    progress?.stop();
    // bounded: closing a connection that never came up can wait on its reconnects
    await withTimeout(Promise.allSettled([events.close(), queue.close()]), 5000, "close").catch(() => {});
  }
  if (failures.length) throw new Error(`${failures.length} sweep job(s) failed:\n${failures.join("\n")}`);
}

/** Writes a result that came back through the queue: model artefact, diagnostics, result JSON, job record. */
async function saveResult(runsDir: string, job: Job, value: unknown, datasetHash: string, redis: RawRedis, queueName: string, qid: string): Promise<void> {
  if (!isObj(value) || value.version !== 1 || !isObj(value.result)) throw new Error("the worker returned no result");
  const ret = value as unknown as QueueReturn;
  const h = (ret.result.config as { datasetHash?: unknown } | undefined)?.datasetHash;
  if (h !== datasetHash) throw new Error(`the result was computed on other data (dataset hash ${String(h)}, expected ${datasetHash})`);
  // a table never mixes versions or resolved configurations (src/sweep/provenance.ts)
  const recorded = readProvenance((ret.result.config as { provenance?: unknown } | undefined)?.provenance);
  const diff = recorded ? provenanceDiff(recorded, jobProvenance(job)) : ["the result records no mtlcraft version or resolved configuration"];
  if (diff.length) throw new Error(`the result was computed by another mtlcraft version or resolved configuration (worker → this bench: ${diff.slice(0, 8).map((d) => printable(d, 200)).join("; ")}); not written`);
  const out = resultPath(runsDir, job);
  if (ret.model) {
    const buf = await redis.getBuffer(ret.model.key);
    if (!buf) throw new Error(`its model artefact (${printable(ret.model.key, 200)}) ${await whyMissing(redis, queueName, qid, ret)}`);
    unpackDir(buf, modelArtifactPath(out));
  }
  const diag = (ret.result.diagnostics ?? []).map((d) => JSON.stringify(d)).join("\n");
  writeFileAtomic(out.replace(/\.json$/, "") + ".diag.jsonl", diag + (diag ? "\n" : ""));
  writeFileAtomic(out, JSON.stringify({ ...ret.result, config: { ...ret.result.config, worker: ret.worker } }));
  writeRecord(runsDir, job, datasetHash);
  // on disk: acknowledged, and the result and model leave Redis
  await ackResult(redis, queueName, qid, ret.model?.key);
}

// ---------------------------------------------------------------------------------------------
// the worker

export interface QueueWorkerOptions extends QueueConnection {
  /** Jobs run at once, each in its own process (default 1). */
  concurrency?: number;
  /** Dataset cache (default `.cache/datasets` in the current directory). */
  cacheDir?: string;
  /**
   * The worker's data folder (default: the current directory): a queued spec reads files only
   * inside it (real paths). The enqueuer's folder is used when it lies inside it, else the folder itself.
   */
  dataDir?: string;
  /** Folder for running jobs' outputs and checkpoints (default `.cache/worker`). */
  workDir?: string;
  /** Plugin modules (methods / architectures) every job loads. */
  plugins?: string[];
  /** Job lock duration: a worker silent this long is taken as dead (default 30 s). */
  lockMs?: number;
  /** How often this worker checks for stalled jobs (default 30 s). */
  stalledMs?: number;
  /** Times a job may stall (its worker died) before it fails (default 2). */
  maxStalls?: number;
  /** A job running longer is ended (its process group) and fails as timed out; retried like any failure (default: no limit). */
  jobTimeoutS?: number;
  log?: (m: string) => void;
}

export interface QueueWorkerHandle {
  /** Stops taking jobs, hands the running ones back to the queue (attempts untouched), ends their processes and closes the connection. */
  close(): Promise<void>;
}

/** This worker's data has another content hash than the bench's: it refuses the sweep (refusal.ts). */
class DataMismatchError extends Error {}

/** A hash of everything a payload says about its dataset (DatasetCache's key and its spec file's name). */
function datasetKey(d: DatasetPayload): string {
  return createHash("sha256").update(canonical({ builtin: d.builtin ?? null, spec: d.spec, baseDir: d.baseDir, hash: d.hash })).digest("hex");
}

/**
 * Prepares (once per worker) the dataset of a payload and checks its content hash. A queued
 * spec is confined to the worker's data folder `dataRoot` (prepare's confineTo): every file it
 * names must lie inside it by real path. The enqueuer's folder (`baseDir`, from the payload) is
 * used only when it lies inside `dataRoot` too (a shared folder mounted at the same path).
 */
class DatasetCache {
  private readonly ready = new Map<string, Promise<{ dataset: string; source?: string }>>();
  private readonly realRoot: string;
  /** The real path of the data folder every queued spec is confined to. */
  get root(): string {
    return this.realRoot;
  }
  constructor(private readonly o: { cacheDir: string; dataRoot: string; explicitDataDir: boolean; log: (m: string) => void }) {
    this.realRoot = realpathSync(o.dataRoot);
  }

  /**
   * The prepared dataset of a payload, once per distinct payload dataset: keyed by everything the
   * payload says (spec, base folder, built-in name, hash), not by its hash alone, so a payload that
   * claims a known hash with another spec is prepared (and confined, and refused) on its own.
   */
  get(d: DatasetPayload): Promise<{ dataset: string; source?: string }> {
    const key = datasetKey(d);
    let p = this.ready.get(key);
    if (!p) {
      p = this.prepare(d);
      this.ready.set(key, p);
      p.catch(() => this.ready.delete(key)); // a failure is tried again with the next job
    }
    return p;
  }

  /** The payload's folder when it exists here inside the data folder, else the data folder. */
  private sourceFor(baseDir: string): string {
    if (!isAbsolute(baseDir) || !existsSync(baseDir)) return this.realRoot;
    const real = realpathSync(baseDir);
    return real === this.realRoot || strictlyInside(this.realRoot, real) ? real : this.realRoot;
  }

  private async prepare(d: DatasetPayload): Promise<{ dataset: string; source?: string }> {
    const { cacheDir } = this.o;
    let dataset: string;
    let source: string | undefined;
    // the bundled kuairand is the package's own spec and data: nothing of the payload is read
    if (d.builtin && !this.o.explicitDataDir) dataset = d.builtin;
    else {
      const name = typeof d.spec.name === "string" && /^[\w.-]+$/.test(d.spec.name) ? d.spec.name : "dataset";
      dataset = join(cacheDir, "queue-specs", `${name}-${datasetKey(d).slice(0, 16)}.json`);
      writeFileAtomic(dataset, JSON.stringify(d.spec, null, 2));
      source = this.sourceFor(d.baseDir);
    }
    const prep = await prepareDataset(dataset, { cacheDir, ...(source ? { dataDir: source, confineTo: this.realRoot } : {}), log: this.o.log });
    if (prep.manifest.hash !== d.hash) {
      throw new DataMismatchError(
        `dataset content hash differs: the bench enqueued ${d.hash}, this worker (${hostname()}) prepared ${prep.manifest.hash}` +
          ` from ${source ?? d.builtin}; give the worker the same data (--data-dir)`,
      );
    }
    return { dataset, ...(source ? { source } : {}) };
  }
}

/** The folder a queue job runs in under `workDir`: named by a hash of its BullMQ id, which is never used as a path. */
export function jobWorkDir(workDir: string, bullId: string): string {
  return join(workDir, `job-${createHash("sha256").update(bullId).digest("hex").slice(0, 24)}`);
}

/**
 * Removes `dir` (recursively) only when its real path lies strictly inside the real path of
 * `root`; throws otherwise (a job folder that is, or leads through a symlink to, anything
 * else is never removed). A missing `dir` is nothing to do.
 */
export function removeInside(root: string, dir: string): void {
  try {
    lstatSync(dir);
  } catch {
    return;
  }
  let real: string;
  try {
    real = realpathSync(dir);
  } catch {
    throw new Error(`refusing to remove ${dir}: a symbolic link that leads nowhere`);
  }
  if (!strictlyInside(realpathSync(root), real)) throw new Error(`refusing to remove ${dir}: it is not inside the work folder ${root}`);
  rmSync(dir, { recursive: true, force: true });
}

/**
 * Starts a worker on the queue: it takes jobs (up to `concurrency` at once), runs each as a
 * `train` process on its own prepared copy of the data, and returns the result through
 * the queue. Runs until closed (or the process ends).
 */
export async function runQueueWorker(o: QueueWorkerOptions): Promise<QueueWorkerHandle> {
  const log = o.log ?? ((m: string) => console.error(m));
  const name = versionedQueueName(o.name ?? DEFAULT_QUEUE_NAME, mtlcraftVersion());
  const connection = connectionOptions(o);
  const plain = plainTextWarning(o);
  if (plain) log(plain);
  const cwd = process.cwd();
  const cacheDir = resolve(o.cacheDir ?? DEFAULT_CACHE_DIR);
  const workDir = resolve(o.workDir ?? ".cache/worker");
  mkdirSync(workDir, { recursive: true });
  cleanWorkDir(workDir, (dir) => removeInside(workDir, dir), log);
  const plugins = (o.plugins ?? []).map((p) => resolve(cwd, p));
  const dataRoot = resolve(o.dataDir ?? cwd);
  if (!existsSync(dataRoot) || !statSync(dataRoot).isDirectory()) throw new Error(`worker --data-dir: ${dataRoot} is not a folder`);
  const datasets = new DatasetCache({ cacheDir, dataRoot, explicitDataDir: o.dataDir !== undefined, log });
  const host = hostname();
  const onError = errorReporter(log, o);

  // every processor call in flight (a job being run, refused or handed back): Ctrl-C waits for them
  let inFlight = 0;
  const processor = async (bj: BullJob, token?: string): Promise<QueueReturn> => {
    inFlight++;
    try {
      return await processJob(bj, token);
    } finally {
      inFlight--;
    }
  };
  const processJob = async (bj: BullJob, token?: string): Promise<QueueReturn> => {
    // what goes back into Redis (failedReason, progress) names file, row and column but never
    // quotes a file's content; the full message stays in this worker's log (redis-message.ts)
    const known = payloadStrings(bj.data);
    let data: QueuePayload;
    try {
      data = checkPayload(bj.data);
    } catch (e) {
      const msg = redisSafeMessage(e, known);
      log(`queue job ${JSON.stringify(String(bj.id).slice(0, 80))}: refused: ${(e as Error).message}`);
      // a bad payload never gets better: no retries
      throw new UnrecoverableError(`on ${host}: ${msg}`);
    }
    const id = data.job.id;
    // a sweep this worker cannot run (another version or resolved configuration, other data):
    // given back without using an attempt, and this worker stops taking its jobs (refusal.ts)
    let refusal = refusals.reasonFor(data.dataset.hash);
    if (refusal === null) {
      try {
        refusal = provenanceRefusal(data);
      } catch (e) {
        refusal = `cannot resolve the job's configuration here: ${(e as Error).message}`;
      }
    }
    if (refusal !== null) return refusals.giveBack(bj, token, data, refusal, worker, await rawClient(worker));
    if (stopping) {
      // handing its jobs back (Ctrl-C): this one too, at once
      if (token) await bj.moveToWait(token);
      throw new WaitingError();
    }
    // A job whose worker died comes back at once (BullMQ's stalled check): wait a backoff first.
    if (bj.stalledCounter > (data.stallsSeen ?? 0) && token) {
      const b = bj.opts.backoff;
      const base = (typeof b === "number" ? b : b?.delay) ?? 10_000;
      const wait = base * 2 ** (bj.stalledCounter - 1);
      log(`${id}: its previous worker died (stall ${bj.stalledCounter}); running it again in ${(wait / 1000).toFixed(1)} s`);
      await bj.updateData({ ...data, stallsSeen: bj.stalledCounter });
      await bj.moveToDelayed(Date.now() + wait, token);
      throw new DelayedError();
    }
    // a result a worker kept when Redis lost this job is returned, not computed again; a copy
    // enqueued again while the lost one still runs elsewhere waits for it (reconcile.ts)
    const redis = await rawClient(worker);
    const qid = String(bj.id);
    const kept = await keptResult(redis, name, qid, data.dataset.hash);
    if (kept) {
      log(`${id}: its result is already in Redis (kept when Redis lost the job); not run again`);
      return kept as unknown as QueueReturn;
    }
    const mark = `${workerName()} ${token ?? ""}`;
    const other = await redis.get(runningKey(name, qid));
    if (other !== null && other !== mark && token) {
      log(`${id}: worker ${printable(other.split(" ")[0], 100)} still runs it (Redis lost the job and it was enqueued again); checking again in ${(3 * RUNNING_RENEW_MS) / 1000} s`);
      await bj.moveToDelayed(Date.now() + 3 * RUNNING_RENEW_MS, token);
      throw new DelayedError();
    }
    await redis.set(runningKey(name, qid), mark, "EX", RUNNING_TTL_S);
    const renew = setInterval(() => void redis.set(runningKey(name, qid), mark, "EX", RUNNING_TTL_S).catch(onError), RUNNING_RENEW_MS);
    const t0 = Date.now();
    log(`${id}: started (attempt ${bj.attemptsMade + 1})`);
    // the BullMQ id (anyone's text) never becomes a path: the folder is named by its hash
    const dir = jobWorkDir(workDir, String(bj.id));
    if (token) active.set(qid, { bj, token });
    try {
      const ds = await datasets.get(data.dataset);
      const options: Record<string, OptionValue> = { ...data.job.options };
      for (const k of LOCAL_OPTIONS) delete options[k];
      options.dataset = ds.dataset;
      options["cache-dir"] = cacheDir;
      if (ds.source) options.source = ds.source;
      const job: Job = { id, method: data.job.method, seed: data.job.seed, options, point: {}, phase: "final" };
      let last = 0;
      // the train process checks the queued spec's paths again, inside the same data folder
      await runOne(job, dir, { cwd, plugins, exitWithParent: true, ...(ds.source ? { confineData: datasets.root } : {}), ...(o.jobTimeoutS ? { timeoutS: o.jobTimeoutS } : {}) }, (step, total, info) => {
        const now = Date.now();
        if (now - last < 1000 && step < total) return;
        last = now;
        bj.updateProgress({ step, total, info: scrubText(info, known, 200), worker: host } satisfies Progress).catch(onError);
      });
      const result = readResult(resultPath(dir, job));
      const got = (result.config as { datasetHash?: unknown }).datasetHash;
      if (got !== data.dataset.hash) {
        throw new Error(`dataset content hash differs: the bench enqueued ${data.dataset.hash}, this worker (${host}) trained on ${String(got)}`);
      }
      result.diagnostics = summarizeDiagnostics(result.diagnostics ?? []);
      // the model artefact goes under its own expiring key: the result stays small
      const modelDir = modelArtifactPath(resultPath(dir, job));
      const buf = existsSync(modelDir) ? packDir(modelDir) : undefined;
      const model: QueueReturn["model"] = buf ? { key: modelKey(name, qid), bytes: buf.length } : undefined;
      const ret: QueueReturn = { version: 1, result, worker: host, ...(model ? { model } : {}), expiresAt: new Date(Date.now() + MODEL_TTL_S * 1000).toISOString() };
      // published under its own keys before the job is reported complete, and kept here until a
      // bench acknowledges it: a Redis that forgets the job (or the result) gets it again (reconcile.ts)
      await publishResult(redis, name, qid, ret, buf);
      keeper.keep(qid, ret, buf);
      removeInside(workDir, dir);
      log(`${id}: finished in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
      refusals.ran();
      return ret;
    } catch (e) {
      // handed back (Ctrl-C): already waiting in the queue again; BullMQ must not move it
      if (stopping) throw new WaitingError();
      if (e instanceof DataMismatchError) {
        return await refusals.giveBack(bj, token, data, e.message, worker, redis);
      }
      log(`${id}: failed on ${host}: ${(e as Error).message}`);
      const msg = `on ${host}: ${redisSafeMessage(e, known)}`;
      // a spec path outside the data folder never gets better either
      throw e instanceof OutsideDataFolderError ? new UnrecoverableError(msg) : new Error(msg);
    } finally {
      active.delete(qid);
      clearInterval(renew);
      void redis.del(runningKey(name, qid)).catch(() => 0);
    }
  };
  const refusals = new SweepRefusals(name, log);
  const active = new Map<string, { bj: BullJob; token: string }>();
  let stopping = false;
  /** Ctrl-C / close: every running job back to the queue at once (waiting, attempts untouched), its train process ended. */
  const handBack = async (): Promise<void> => {
    stopping = true;
    await worker.pause(true).catch(onError); // takes no new job from now on
    const jobs = [...active.values()];
    if (jobs.length) log(`worker stopping: handing ${jobs.length} running job(s) back to the queue`);
    await Promise.all(jobs.map(({ bj, token }) => bj.moveToWait(token).catch(onError)));
    killWorkers("SIGTERM");
    const t0 = Date.now();
    while (inFlight > 0 && Date.now() - t0 < 5000) await new Promise((r) => setTimeout(r, 50));
  };
  const keeper = new ResultKeeper(name, log);
  const lostSaid = new Set<string>();

  const worker = new Worker(name, processor, {
    connection,
    concurrency: o.concurrency ?? 1,
    lockDuration: o.lockMs ?? 30_000,
    stalledInterval: o.stalledMs ?? 30_000,
    maxStalledCount: o.maxStalls ?? 2,
    autorun: false,
    name: workerName(),
  });
  worker.on("error", (e: Error) => {
    // Redis forgot a job this worker finished (restarted without persistence): the result is not lost
    const lostJob = /^Missing key for job (.{1,200}?)\. move/.exec(e.message);
    if (lostJob && lostSaid.has(lostJob[1]!)) return;
    if (lostJob) lostSaid.add(lostJob[1]!);
    if (lostJob) log(`job ${JSON.stringify(printable(lostJob[1], 80))}: Redis no longer knows it (restarted without persistence?); its result, if it finished, is kept for the bench under its own key`);
    else onError(e);
  });
  let sweeping = false;
  const keeperTimer = setInterval(() => {
    if (sweeping || keeper.size === 0) return;
    sweeping = true;
    void rawClient(worker)
      .then((r) => keeper.sweep(r))
      .catch(onError)
      .finally(() => (sweeping = false));
  }, RUNNING_RENEW_MS);
  keeperTimer.unref();
  worker.on("stalled", (jobId) => log(`job ${JSON.stringify(String(jobId).slice(0, 80))}: its worker stopped responding (stalled); back to the queue`));
  await withTimeout(worker.waitUntilReady(), 15_000, `cannot reach Redis at ${redactUrl(o.url)}`);
  let closed: Promise<void> | undefined;
  const close = (): Promise<void> =>
    (closed ??= (async () => {
      clearInterval(keeperTimer);
      refusals.stop();
      removeHandlers();
      await handBack();
      await worker.close(true);
    })());
  const removeHandlers = handBackOnSignal(close, log);
  void worker.run().catch(onError);
  log(`worker ${host}:${process.pid} on ${redactUrl(o.url)} (queue "${name}"), ${o.concurrency ?? 1} job(s) at a time; data cache ${cacheDir}`);
  return { close };
}
