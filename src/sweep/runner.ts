/**
 * Runs sweep jobs as parallel worker processes (each a single-threaded `train`),
 * with one overall progress display. A finished job is reused only when its record
 * (`<id>.job.json`: dataset content hash + full job options) and its result's
 * dataset hash equal the current ones; otherwise it is run again. Workers run in
 * their own process groups, killed with the sweep (SIGINT/SIGTERM/SIGHUP or exit; after a
 * SIGKILL of the sweep each exits when its stdin pipe from the sweep closes);
 * each holds a lock on its checkpoint (src/train/run.ts), so a re-run never races a
 * leftover worker. A failed job reports the worker's own error message.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmSync } from "node:fs";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import cliProgress from "cli-progress";
import type { RunResult } from "../report/types.ts";
import type { Job, OptionValue } from "./plan.ts";
import { writeFileAtomic } from "../util/fsx.ts";
import { plainText } from "../util/text.ts";
import { processAlive, readLockOwner } from "../util/lock.ts";
import { realTarget } from "../util/outpath.ts";
import { peekFingerprint } from "../train/checkpoint.ts";
import { modelArtifactPath } from "../train/artifact.ts";
import { BUILTIN_DATASETS, DEFAULT_CACHE_DIR } from "../data/index.ts";
import { trainFlag } from "../config/train-options.ts";
import { CONFINE_DATA_ENV } from "../data/confine.ts";
import { checkRunsProvenance, jobProvenance } from "./provenance.ts";

// Workers run the CLI next to this module: the compiled dist/cli.js with plain node in the
// package (never source through a loader); only a source checkout run through tsx
// (`npm start`, the tests) starts src/cli.ts with the same loader.
const FROM_SOURCE = import.meta.url.endsWith(".ts");
const CLI = fileURLToPath(new URL(FROM_SOURCE ? "../cli.ts" : "../cli.js", import.meta.url));
const LOADER: string[] = FROM_SOURCE ? ["--import", import.meta.resolve("tsx")] : [];

/** A job id: it names the job's result file and checkpoint folder, so never a path. */
const JOB_ID = /^\w[\w.-]*$/;

/** Train flags whose values are paths (the parent resolves them; workers get absolute paths). */
const PATH_FLAGS = ["cache-dir", "source", "out", "checkpoint"];

/**
 * The job's options with every path made absolute against `cwd` (the parent's working
 * directory): path flags, a spec-file dataset (a built-in name stays as it is; `wechat:<dir>`
 * gets an absolute dir) and, when the job gives none, the default dataset cache, so a worker
 * uses the very cache the parent prepared.
 */
export function absoluteJobOptions(options: Record<string, OptionValue>, cwd: string): Record<string, OptionValue> {
  const o: Record<string, OptionValue> = { ...options };
  for (const k of PATH_FLAGS) if (typeof o[k] === "string") o[k] = resolve(cwd, o[k]);
  if (o["cache-dir"] === undefined) o["cache-dir"] = resolve(cwd, DEFAULT_CACHE_DIR);
  const ds = o.dataset;
  if (typeof ds === "string") {
    if (ds.startsWith("wechat:")) o.dataset = `wechat:${resolve(cwd, ds.slice("wechat:".length))}`;
    else if (!(BUILTIN_DATASETS as readonly string[]).includes(ds)) o.dataset = resolve(cwd, ds);
  }
  return o;
}

export function resultPath(runsDir: string, job: Job): string {
  return join(runsDir, `${job.id}.json`);
}

export function readResult(path: string): RunResult {
  const r = JSON.parse(readFileSync(path, "utf8")) as RunResult;
  // its names reach the terminal and results.md: no control characters (src/util/text.ts)
  if (r !== null && typeof r === "object") {
    for (const k of ["dataset", "model", "method", "methodLabel"] as const) if (typeof r[k] === "string") (r as unknown as Record<string, string>)[k] = plainText(r[k]);
    if (Array.isArray(r.tasks)) r.tasks = r.tasks.map((t) => plainText(t));
    if (Array.isArray(r.warnings)) r.warnings = r.warnings.map((w) => plainText(w, 2000));
  }
  return r;
}

/** What a finished job was run on, written beside its result: the key for reuse. */
export interface JobRecord {
  id: string;
  method: string;
  seed: number;
  options: Record<string, OptionValue>;
  datasetHash: string;
  /** The mtlcraft version and resolved configuration hash the result must have (src/sweep/provenance.ts). */
  provenance: { mtlcraft: string; configHash: string };
}

export function recordPath(runsDir: string, job: Job): string {
  return join(runsDir, `${job.id}.job.json`);
}

function checkpointDir(runsDir: string, job: Job): string {
  return join(runsDir, "checkpoints", job.id);
}

/** JSON with object keys sorted at every level (so key order never matters). */
export function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(",")}]`;
  if (v !== null && typeof v === "object") {
    const o = v as Record<string, unknown>;
    return `{${Object.keys(o).sort().map((k) => `${JSON.stringify(k)}:${canonical(o[k])}`).join(",")}}`;
  }
  return JSON.stringify(v);
}

function recordOf(job: Job, datasetHash: string): JobRecord {
  const p = jobProvenance(job);
  return { id: job.id, method: job.method, seed: job.seed, options: job.options, datasetHash, provenance: { mtlcraft: p.mtlcraft, configHash: p.configHash } };
}

/**
 * Whether the finished result of `job` can be reused: its record must exist and equal
 * the job's full configuration and the current dataset content hash, and the result's
 * own recorded dataset hash must match too. Returns null when reusable, else the reason.
 */
export function staleReason(runsDir: string, job: Job, datasetHash: string): string | null {
  const rp = resultPath(runsDir, job);
  if (!existsSync(rp)) return "not run yet";
  if (!existsSync(modelArtifactPath(rp))) return "no model artefact beside the result (written by an older mtlcraft)";
  let rec: JobRecord;
  try {
    rec = JSON.parse(readFileSync(recordPath(runsDir, job), "utf8")) as JobRecord;
  } catch {
    return "no job record (dataset and configuration unknown)";
  }
  if (rec.datasetHash !== datasetHash) return `dataset changed (${String(rec.datasetHash).slice(0, 12)}… → ${datasetHash.slice(0, 12)}…)`;
  // the provenance is checked against the result's own (checkRunsProvenance, before any reuse)
  const { provenance: _want, ...want } = recordOf(job, datasetHash);
  const { provenance: _had, ...had } = rec;
  if (canonical(want) !== canonical(had)) return "job configuration changed";
  try {
    const h = (readResult(rp).config as { datasetHash?: unknown } | undefined)?.datasetHash;
    if (h !== datasetHash) return "result was computed on other data";
  } catch {
    return "result file unreadable";
  }
  return null;
}

/** Whether a live process (a leftover worker) holds the checkpoint of this job. */
function checkpointBusy(ckpt: string): boolean {
  const owner = readLockOwner(`${realTarget(ckpt)}.lock`); // train locks the real path (src/train/run.ts)
  return owner !== null && processAlive(owner.pid);
}

/**
 * The worker's own error from its stderr: the last `mtlcraft:` / `error:` line and
 * the lines continuing it (up to a blank line or a usage text), else the last lines.
 */
export function workerError(stderr: string): string {
  const lines = stderr.split("\n").map((l) => l.trimEnd());
  let from = -1;
  for (let i = lines.length - 1; i >= 0; i--) {
    if (/^(mtlcraft: |error: )/.test(lines[i]!)) {
      from = i;
      break;
    }
  }
  if (from < 0) return lines.filter((l) => l !== "").slice(-5).join("\n    ");
  const out: string[] = [];
  for (let i = from; i < lines.length && out.length < 20; i++) {
    const l = lines[i]!;
    if (l === "" || l === "(add --help for usage)" || /^Usage:/.test(l)) break;
    out.push(l);
  }
  return out.join("\n    ");
}

/** A job's train process ran longer than its --job-timeout and was ended. */
export class JobTimeoutError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "JobTimeoutError";
  }
}

/** Live worker processes of this sweep (each the leader of its own process group). */
const live = new Set<ChildProcess>();

export function killWorkers(signal: NodeJS.Signals): void {
  for (const c of live) {
    try {
      if (c.pid !== undefined) process.kill(-c.pid, signal); // the whole group
    } catch {
      /* already gone */
    }
  }
}

/** While jobs run: a signal to the sweep (Ctrl-C, kill) or its exit also ends every worker. */
export function installKillHandlers(): () => void {
  const onSignal = (sig: NodeJS.Signals) => {
    killWorkers("SIGTERM");
    process.exit(sig === "SIGINT" ? 130 : sig === "SIGHUP" ? 129 : 143);
  };
  const onExit = () => killWorkers("SIGTERM");
  const sigs: NodeJS.Signals[] = ["SIGINT", "SIGTERM", "SIGHUP"];
  for (const s of sigs) process.on(s, onSignal);
  process.on("exit", onExit);
  return () => {
    for (const s of sigs) process.removeListener(s, onSignal);
    process.removeListener("exit", onExit);
  };
}

/**
 * A job's options as `train` arguments, each a single `--key=value` argument, so a value can
 * never be read as a flag of its own (`--lr=--plugin=x` is a learning rate of "--plugin=x",
 * refused by train's number parser) nor swallow the next one. Every key must be a train flag;
 * a list only for a key=value (map) option, one `--key=entry` each; a boolean only for a boolean
 * field (`--key` / `--no-key`: the one form commander has for it; no train field is boolean).
 */
export function toArgs(options: Record<string, OptionValue>): string[] {
  const args: string[] = [];
  for (const [k, v] of Object.entries(options)) {
    const f = trainFlag(k, "job options");
    if (Array.isArray(v)) {
      if (f.type !== "map") throw new Error(`job option ${k}: a list is only for key=value options`);
      for (const x of v) args.push(`--${k}=${x}`);
    } else if (typeof v === "boolean") {
      if (f.type !== "boolean") throw new Error(`job option ${k} is not a true/false option (got ${v})`);
      args.push(v ? `--${k}` : `--no-${k}`);
    } else args.push(`--${k}=${String(v)}`);
  }
  return args;
}

export interface RunJobsOptions {
  runsDir: string;
  jobs: number;
  /** Show a live multi-bar (TTY) or print one line per finished job. */
  interactive: boolean;
  log: (msg: string) => void;
  /** Content hash of the prepared dataset: finished jobs on other data are run again. */
  datasetHash: string;
  /** Folder relative paths of the jobs are resolved against (default: the current directory); workers run there. */
  cwd?: string;
  /** Plugin modules every worker loads (`--plugin`), resolved against cwd. */
  plugins?: readonly string[];
}

/**
 * The jobs of `jobs` that must run: every one whose finished result cannot be reused
 * (see staleReason). Stale results, and checkpoints written on other data, are removed.
 */
export function pendingJobs(jobs: Job[], runsDir: string, datasetHash: string, log: (m: string) => void): Job[] {
  checkRunsProvenance(jobs, runsDir, datasetHash); // results of another version or configuration: refused, never mixed
  const todo: Job[] = [];
  for (const j of jobs) {
    const why = staleReason(runsDir, j, datasetHash);
    if (why === null) continue;
    todo.push(j);
    if (existsSync(resultPath(runsDir, j))) {
      log(`${j.id}: finished before, running again: ${why}`);
      for (const p of [resultPath(runsDir, j), recordPath(runsDir, j), resultPath(runsDir, j).replace(/\.json$/, ".diag.jsonl"), modelArtifactPath(resultPath(runsDir, j))]) rmSync(p, { recursive: true, force: true });
    }
    // A checkpoint of an interrupted run on other data cannot be resumed: drop it (unless a live worker holds it).
    const ck = checkpointDir(runsDir, j);
    const fp = peekFingerprint(ck);
    if (fp && fp.datasetHash !== datasetHash && !checkpointBusy(ck)) {
      log(`${j.id}: discarding its checkpoint, written on other data`);
      rmSync(ck, { recursive: true, force: true });
    }
  }
  const skipped = jobs.length - todo.length;
  if (skipped > 0) log(`${skipped} of ${jobs.length} jobs already finished; running ${todo.length}`);
  return todo;
}

/** Writes the record of a finished job (its key for reuse) beside its result. */
export function writeRecord(runsDir: string, job: Job, datasetHash: string): void {
  writeFileAtomic(recordPath(runsDir, job), JSON.stringify(recordOf(job, datasetHash), null, 1));
}

/** The sweep's progress display: one bar per running job and an overall bar (TTY), else one line per finished job. */
export interface SweepProgress {
  /** A job started: returns its progress callback (step, total, info). */
  start(id: string, info?: string): (step: number, total: number, info: string) => void;
  /** A job ended (finished or failed). */
  end(id: string, ok: boolean): void;
  stop(): void;
}

export function sweepProgress(total: number, interactive: boolean, log: (m: string) => void): SweepProgress {
  const multibar = interactive
    ? new cliProgress.MultiBar(
        { format: " {bar} {percentage}% | {name} | {info}", hideCursor: true, clearOnComplete: false, barsize: 24 },
        cliProgress.Presets.shades_grey,
      )
    : null;
  const overall = multibar?.create(total, 0, { name: "all jobs".padEnd(28), info: "" });
  const bars = new Map<string, cliProgress.SingleBar>();
  let done = 0;
  return {
    start(id, info = "starting") {
      const old = bars.get(id);
      if (old) multibar!.remove(old);
      const bar = multibar?.create(1, 0, { name: id.padEnd(28).slice(0, 28), info });
      if (bar) bars.set(id, bar);
      return (step, tot, inf) => {
        if (bar) {
          bar.setTotal(Math.max(1, tot));
          bar.update(step, { info: inf });
        }
      };
    },
    end(id, ok) {
      done++;
      const bar = bars.get(id);
      if (bar) multibar!.remove(bar);
      bars.delete(id);
      overall?.update(done, { info: `${done}/${total} done` });
      if (!multibar) log(`[${done}/${total}] ${id} ${ok ? "finished" : "failed"}`);
    },
    stop() {
      multibar?.stop();
    },
  };
}

/** Runs every job not yet finished; returns the results of all jobs (in input order). */
export async function runJobs(jobs: Job[], opts: RunJobsOptions): Promise<RunResult[]> {
  const runsDir = resolve(opts.runsDir);
  mkdirSync(runsDir, { recursive: true });
  const todo = pendingJobs(jobs, runsDir, opts.datasetHash, opts.log);
  const cwd = resolve(opts.cwd ?? process.cwd());
  const plugins = (opts.plugins ?? []).map((p) => resolve(cwd, p));
  const removeHandlers = installKillHandlers();
  const progress = sweepProgress(todo.length, opts.interactive, opts.log);
  const failures: string[] = [];
  let next = 0;
  const worker = async () => {
    while (next < todo.length) {
      const job = todo[next++]!;
      const onProgress = progress.start(job.id);
      let ok = true;
      try {
        await runOne(job, runsDir, { cwd, plugins, exitWithParent: true }, onProgress);
        writeRecord(runsDir, job, opts.datasetHash);
      } catch (e) {
        ok = false;
        failures.push(`${job.id}: ${(e as Error).message}`);
      }
      progress.end(job.id, ok);
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.max(1, Math.min(opts.jobs, todo.length)) }, worker));
  } finally {
    removeHandlers();
    progress.stop();
  }
  if (failures.length) throw new Error(`${failures.length} sweep job(s) failed:\n${failures.join("\n")}`);
  return jobs.map((j) => readResult(resultPath(runsDir, j)));
}

/**
 * Runs one job as a `train` worker process writing `<runsDir>/<id>.json`. With
 * `exitWithParent` (the local sweep and the queue worker) its stdin is a pipe from this
 * process, and it exits when that closes: a job never outlives a sweep or a worker killed with
 * SIGKILL (its checkpoint stays, so a re-run resumes it).
 */
export function runOne(
  job: Job,
  runsDir: string,
  where: { cwd: string; plugins: readonly string[]; exitWithParent?: boolean; confineData?: string; timeoutS?: number },
  onProgress: (step: number, total: number, info: string) => void,
): Promise<void> {
  // the id names the job's files: a plain name, never a path (queue ids are checked before, see payload.ts)
  if (!JOB_ID.test(job.id)) return Promise.reject(new Error(`bad job id ${JSON.stringify(job.id.slice(0, 60))}`));
  const out = resultPath(runsDir, job);
  const ckpt = checkpointDir(runsDir, job);
  let jobArgs: string[];
  try {
    jobArgs = toArgs(absoluteJobOptions(job.options, where.cwd));
  } catch (e) {
    return Promise.reject(e as Error);
  }
  const args = [
    ...LOADER,
    CLI,
    "train",
    ...jobArgs,
    ...where.plugins.map((p) => `--plugin=${p}`),
    `--out=${out}`,
    `--checkpoint=${ckpt}`,
    "--progress=json",
    // one engine thread per worker; the sweep runs as many workers as cores
    "--threads=1",
  ];
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, args, {
      cwd: where.cwd,
      env: {
        ...process.env,
        MTLCRAFT_THREADS: "1",
        ...(where.exitWithParent ? { MTLCRAFT_EXIT_WITH_PARENT: "1" } : {}),
        ...(where.confineData !== undefined ? { [CONFINE_DATA_ENV]: where.confineData } : {}),
      },
      stdio: [where.exitWithParent ? "pipe" : "ignore", "pipe", "pipe"],
      // its own process group, so the sweep can end it (and anything it starts) as one
      detached: true,
    });
    live.add(child);
    // --job-timeout: the job's whole process group is ended (SIGTERM, then SIGKILL after 5 s)
    let timedOut = false;
    let killTimer: NodeJS.Timeout | undefined;
    const timeout = where.timeoutS
      ? setTimeout(() => {
          timedOut = true;
          const kill = (sig: NodeJS.Signals) => {
            try {
              if (child.pid !== undefined) process.kill(-child.pid, sig);
            } catch {
              /* already gone */
            }
          };
          kill("SIGTERM");
          killTimer = setTimeout(() => kill("SIGKILL"), 5000);
          killTimer.unref();
        }, where.timeoutS * 1000)
      : undefined;
    timeout?.unref();
    let buf = "";
    let err = "";
    child.stdout!.setEncoding("utf8");
    child.stdout!.on("data", (chunk: string) => {
      buf += chunk;
      let nl: number;
      while ((nl = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (!line.startsWith("{")) continue;
        try {
          const ev = JSON.parse(line) as { type: string; step?: number; total?: number; info?: string };
          if (ev.type === "progress") onProgress(ev.step ?? 0, ev.total ?? 1, ev.info ?? "");
        } catch {
          /* not a progress line */
        }
      }
    });
    child.stderr!.setEncoding("utf8");
    child.stderr!.on("data", (c: string) => {
      err = (err + c).slice(-20000);
    });
    child.on("error", (e) => {
      live.delete(child);
      reject(e);
    });
    child.on("close", (code, signal) => {
      live.delete(child);
      clearTimeout(timeout);
      clearTimeout(killTimer);
      if (timedOut) {
        reject(new JobTimeoutError(`train timed out after ${where.timeoutS} s (--job-timeout); its processes were ended`));
        return;
      }
      if (code === 0 && existsSync(out)) {
        rmSync(ckpt, { recursive: true, force: true }); // finished: the result file is the record
        resolvePromise();
        return;
      }
      const log = out.replace(/\.json$/, ".stderr.log");
      try {
        writeFileAtomic(log, err);
      } catch {
        /* the message below still carries the error */
      }
      const how = signal ? `was killed by ${signal}` : code === 0 ? "exited without writing its result" : `exited with code ${code}`;
      reject(new Error(`train ${how}${err.trim() ? `:\n    ${workerError(err)}` : ""}\n    (worker output: ${log})`));
    });
  });
}
