/**
 * `mtlcraft status --queue URL`: a queued sweep as Redis holds it, read without the bench
 * (which need not be running): jobs by state (waiting, running on which worker with its
 * epoch, done, failed with its reason), the workers connected, and a rough estimate of the
 * time left. `--json` gives the same as one JSON object.
 *
 * Nothing read from Redis is trusted (anyone who can write to it can add a job or name a
 * worker): every name, worker and reason is printed through the queue's sanitisers
 * (redis-message.ts scrubText: quoted parts kept only when the job's own payload holds them;
 * reconcile.ts printable: control characters replaced) and bounded in length; numbers are
 * taken only when they are finite.
 */
import { Queue, type Job as BullJob } from "bullmq";
import { mtlcraftVersion, versionedQueueName } from "./provenance.ts";
import { connectionOptions, DEFAULT_QUEUE_NAME, plainTextWarning, redactMessage, redactUrl, type QueueConnection } from "./queue-url.ts";
import { payloadStrings, scrubText } from "./redis-message.ts";
import { printable } from "./reconcile.ts";

/** Most jobs listed per state (the counts are always complete). */
export const STATUS_MAX_LISTED = 500;
const NAME_MAX = 120;
const REASON_MAX = 300;

export interface RunningJob {
  job: string;
  worker: string | null;
  /** The epoch in progress (1-based), when the worker reported one. */
  epoch: number | null;
  /** Epochs the job trains at most, when its payload says. */
  epochs: number | null;
  step: number | null;
  total: number | null;
  /** Seconds since this attempt started. */
  runningS: number | null;
  attempt: number;
}

export interface FailedJob {
  job: string;
  attempts: number;
  reason: string;
}

export interface SweepStatus {
  queue: string;
  url: string;
  at: string;
  counts: { waiting: number; running: number; delayed: number; done: number; failed: number; total: number };
  running: RunningJob[];
  waiting: string[];
  delayed: string[];
  done: string[];
  failed: FailedJob[];
  workers: { name: string; idleS: number | null }[];
  /** Mean seconds per finished job (null before any finished). */
  meanJobS: number | null;
  /** Rough seconds left: the remaining jobs' expected time over the jobs running at once (null when unknown). */
  etaS: number | null;
}

const finite = (v: unknown): number | null => (typeof v === "number" && Number.isFinite(v) ? v : typeof v === "string" && v.trim() !== "" && Number.isFinite(Number(v)) ? Number(v) : null);
const isObj = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === "object" && !Array.isArray(v);

/** A job's name as printed: sanitised and bounded. */
function nameOf(bj: BullJob): string {
  return printable(scrubText(String(bj.name ?? bj.id ?? "?"), payloadStrings(bj.data), NAME_MAX), NAME_MAX);
}

function runningOf(bj: BullJob, now: number): RunningJob {
  const p = isObj(bj.progress) ? bj.progress : {};
  const info = typeof p.info === "string" ? p.info : "";
  const ep = /^ep (\d{1,6})\b/.exec(info);
  const opts = isObj(bj.data) && isObj(bj.data.job) && isObj(bj.data.job.options) ? bj.data.job.options : {};
  const epochs = finite(opts.epochs);
  const started = finite(bj.processedOn);
  return {
    job: nameOf(bj),
    worker: typeof p.worker === "string" ? printable(scrubText(p.worker, payloadStrings(bj.data), 100), 100) : null,
    epoch: ep ? Number(ep[1]) : null,
    epochs: epochs !== null && Number.isInteger(epochs) && epochs > 0 ? epochs : null,
    step: finite(p.step),
    total: finite(p.total),
    runningS: started !== null ? Math.max(0, (now - started) / 1000) : null,
    attempt: (finite(bj.attemptsMade) ?? 0) + 1,
  };
}

/** Reads the sweep's state from Redis (bounded: 15 s to connect). */
export async function sweepStatus(c: QueueConnection, now = Date.now()): Promise<SweepStatus> {
  // the bench's queue: one per mtlcraft version (src/sweep/provenance.ts)
  const name = versionedQueueName(c.name ?? DEFAULT_QUEUE_NAME, mtlcraftVersion());
  const queue = new Queue(name, { connection: connectionOptions(c) });
  let connErr: Error | null = null;
  queue.on("error", (e: Error) => (connErr ??= e));
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      queue.waitUntilReady(),
      new Promise<never>(
        (_, reject) => (timer = setTimeout(() => reject(new Error(`status: cannot reach Redis at ${redactUrl(c.url)}${connErr ? ` (${redactMessage(connErr.message, c)})` : ""}`)), 15_000)),
      ),
    ]).finally(() => clearTimeout(timer));
    const counts = await queue.getJobCounts("waiting", "prioritized", "paused", "active", "delayed", "completed", "failed", "waiting-children");
    const n = (k: string) => finite(counts[k]) ?? 0;
    const [active, waiting, delayed, completed, failed, clients] = await Promise.all([
      queue.getJobs(["active"], 0, STATUS_MAX_LISTED - 1),
      queue.getJobs(["waiting", "prioritized", "paused", "waiting-children"], 0, STATUS_MAX_LISTED - 1),
      queue.getJobs(["delayed"], 0, STATUS_MAX_LISTED - 1),
      queue.getJobs(["completed"], 0, STATUS_MAX_LISTED - 1),
      queue.getJobs(["failed"], 0, STATUS_MAX_LISTED - 1),
      queue.getWorkers(),
    ]);
    const running = active.filter(Boolean).map((bj) => runningOf(bj, now));
    const durations = completed
      .filter(Boolean)
      .map((bj) => (finite(bj.finishedOn) ?? NaN) - (finite(bj.processedOn) ?? NaN))
      .filter((d) => Number.isFinite(d) && d >= 0)
      .map((d) => d / 1000);
    const meanJobS = durations.length ? durations.reduce((a, b) => a + b, 0) / durations.length : null;
    // workers: one entry per BullMQ worker (its connections share one client name)
    const workers = new Map<string, number | null>();
    for (const cl of clients as Record<string, unknown>[]) {
      const raw = typeof cl.rawname === "string" ? cl.rawname : "";
      const at = raw.indexOf(":w:");
      const wname = printable(at >= 0 ? raw.slice(at + 3) : "(unnamed)", 100);
      const idle = finite(cl.idle);
      const prev = workers.get(wname);
      workers.set(wname, prev === undefined || prev === null ? idle : idle === null ? prev : Math.min(prev, idle));
    }
    const waitingN = n("waiting") + n("prioritized") + n("paused") + n("waiting-children");
    // time left: queued jobs at the mean duration; a running job at its own pace (elapsed / fraction done)
    let etaS: number | null = null;
    if (meanJobS !== null || running.some((r) => r.step && r.total)) {
      let work = (waitingN + n("delayed")) * (meanJobS ?? 0);
      for (const r of running) {
        const f = r.step !== null && r.total ? Math.min(1, r.step / r.total) : 0;
        work += f > 0 && r.runningS !== null ? (r.runningS * (1 - f)) / f : (meanJobS ?? 0);
      }
      const parallel = Math.max(1, running.length, workers.size);
      etaS = meanJobS === null && waitingN + n("delayed") > 0 ? null : work / parallel;
    }
    const total = waitingN + n("active") + n("delayed") + n("completed") + n("failed");
    return {
      queue: printable(name, NAME_MAX),
      url: redactUrl(c.url),
      at: new Date(now).toISOString(),
      counts: { waiting: waitingN, running: n("active"), delayed: n("delayed"), done: n("completed"), failed: n("failed"), total },
      running,
      waiting: waiting.filter(Boolean).map(nameOf),
      delayed: delayed.filter(Boolean).map(nameOf),
      done: completed.filter(Boolean).map(nameOf),
      failed: failed.filter(Boolean).map((bj) => ({
        job: nameOf(bj),
        attempts: finite(bj.attemptsMade) ?? 0,
        reason: printable(scrubText(String(bj.failedReason ?? ""), payloadStrings(bj.data), REASON_MAX), REASON_MAX),
      })),
      workers: [...workers].map(([wname, idleS]) => ({ name: wname, idleS })).sort((a, b) => a.name.localeCompare(b.name)),
      meanJobS,
      etaS,
    };
  } finally {
    await Promise.race([queue.close(), new Promise((r) => setTimeout(r, 5000).unref())]).catch(() => {});
  }
}

/** Seconds as `1h02m`, `3m05s` or `12s`. */
export function duration(s: number): string {
  const t = Math.round(s);
  if (t >= 3600) return `${Math.floor(t / 3600)}h${String(Math.floor((t % 3600) / 60)).padStart(2, "0")}m`;
  if (t >= 60) return `${Math.floor(t / 60)}m${String(t % 60).padStart(2, "0")}s`;
  return `${t}s`;
}

/** Names as one line: the first `max`, then how many more. */
function listed(names: readonly string[], count: number, max = 20): string {
  const shown = names.slice(0, max).join(", ");
  return count > Math.min(max, names.length) ? `${shown}, ... (${count - Math.min(max, names.length)} more)` : shown;
}

/** The status as text for a terminal. */
export function formatStatus(s: SweepStatus): string {
  const c = s.counts;
  const lines = [`queue "${s.queue}" on ${s.url} at ${s.at.slice(0, 19).replace("T", " ")} UTC`];
  if (c.total === 0) {
    lines.push("no jobs in this queue (is --queue-name the bench's?)");
  } else {
    lines.push(`jobs: ${c.waiting} waiting, ${c.running} running, ${c.delayed} waiting to retry, ${c.done} done, ${c.failed} failed (${c.total} in all)`);
  }
  if (s.running.length) {
    lines.push("running:");
    for (const r of s.running) {
      const parts = [
        r.epoch !== null ? `epoch ${r.epoch}${r.epochs !== null ? `/${r.epochs}` : ""}` : null,
        r.step !== null && r.total ? `step ${r.step}/${r.total} (${Math.round((100 * r.step) / r.total)}%)` : null,
        r.runningS !== null ? `for ${duration(r.runningS)}` : null,
        r.attempt > 1 ? `attempt ${r.attempt}` : null,
      ].filter(Boolean);
      lines.push(`  ${r.job} on ${r.worker ?? "(worker not known yet)"}${parts.length ? `: ${parts.join(", ")}` : ""}`);
    }
  }
  if (s.failed.length) {
    lines.push("failed:");
    for (const f of s.failed) lines.push(`  ${f.job} (${f.attempts} attempt(s)): ${f.reason}`);
  }
  if (c.waiting) lines.push(`waiting: ${listed(s.waiting, c.waiting)}`);
  if (c.delayed) lines.push(`waiting to retry: ${listed(s.delayed, c.delayed)}`);
  if (c.done) lines.push(`done: ${listed(s.done, c.done, 10)}`);
  lines.push(
    s.workers.length
      ? `workers connected: ${s.workers.length} (${s.workers.map((w) => `${w.name}${w.idleS !== null ? `, idle ${duration(w.idleS)}` : ""}`).join("; ")})`
      : "workers connected: none (start one: mtlcraft worker --queue ...)",
  );
  if (c.waiting + c.running + c.delayed > 0) {
    lines.push(
      s.etaS !== null
        ? `time left: about ${duration(s.etaS)} (${s.meanJobS !== null ? `a job takes ${duration(s.meanJobS)} on average` : "from the running jobs' progress"}; ${Math.max(1, s.running.length, s.workers.length)} at once)`
        : "time left: not known until a job has finished",
    );
  }
  return lines.join("\n");
}

/** Connection warnings as bench and worker give them (a plain redis:// to another machine). */
export function statusWarning(c: QueueConnection): string | null {
  return plainTextWarning(c);
}
