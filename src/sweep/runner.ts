/**
 * Runs sweep jobs as parallel worker processes (each a single-threaded `train`),
 * with one overall progress display, skipping jobs whose result file exists.
 */
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmSync } from "node:fs";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import cliProgress from "cli-progress";
import type { RunResult } from "../report/types.ts";
import type { Job, OptionValue } from "./plan.ts";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const CLI = fileURLToPath(new URL("../cli.ts", import.meta.url));

export function resultPath(runsDir: string, job: Job): string {
  return join(runsDir, `${job.id}.json`);
}

export function readResult(path: string): RunResult {
  return JSON.parse(readFileSync(path, "utf8")) as RunResult;
}

function toArgs(options: Record<string, OptionValue>): string[] {
  const args: string[] = [];
  for (const [k, v] of Object.entries(options)) {
    if (Array.isArray(v)) {
      for (const x of v) args.push(`--${k}`, x);
    } else if (typeof v === "boolean") {
      if (v) args.push(`--${k}`);
      else args.push(`--no-${k}`);
    } else args.push(`--${k}`, String(v));
  }
  return args;
}

export interface RunJobsOptions {
  runsDir: string;
  jobs: number;
  /** Show a live multi-bar (TTY) or print one line per finished job. */
  interactive: boolean;
  log: (msg: string) => void;
}

/** Runs every job not yet finished; returns the results of all jobs (in input order). */
export async function runJobs(jobs: Job[], opts: RunJobsOptions): Promise<RunResult[]> {
  const runsDir = resolve(opts.runsDir);
  mkdirSync(runsDir, { recursive: true });
  const todo = jobs.filter((j) => !existsSync(resultPath(runsDir, j)));
  const skipped = jobs.length - todo.length;
  if (skipped > 0) opts.log(`${skipped} of ${jobs.length} jobs already finished; running ${todo.length}`);
  const multibar = opts.interactive
    ? new cliProgress.MultiBar(
        { format: " {bar} {percentage}% | {name} | {info}", hideCursor: true, clearOnComplete: false, barsize: 24 },
        cliProgress.Presets.shades_grey,
      )
    : null;
  const overall = multibar?.create(todo.length, 0, { name: "all jobs".padEnd(28), info: "" });
  let done = 0;
  const failures: string[] = [];
  let next = 0;
  const worker = async () => {
    while (next < todo.length) {
      const job = todo[next++]!;
      const bar = multibar?.create(1, 0, { name: job.id.padEnd(28).slice(0, 28), info: "starting" });
      try {
        await runOne(job, runsDir, (step, total, info) => {
          if (bar) {
            bar.setTotal(Math.max(1, total));
            bar.update(step, { info });
          }
        });
      } catch (e) {
        failures.push(`${job.id}: ${(e as Error).message}`);
      }
      done++;
      if (bar) multibar!.remove(bar);
      overall?.update(done, { info: `${done}/${todo.length} done` });
      if (!multibar) opts.log(`[${done}/${todo.length}] ${job.id} finished`);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(opts.jobs, todo.length)) }, worker));
  multibar?.stop();
  if (failures.length) throw new Error(`${failures.length} sweep job(s) failed:\n${failures.join("\n")}`);
  return jobs.map((j) => readResult(resultPath(runsDir, j)));
}

function runOne(job: Job, runsDir: string, onProgress: (step: number, total: number, info: string) => void): Promise<void> {
  const out = resultPath(runsDir, job);
  const ckpt = join(runsDir, "checkpoints", job.id);
  const args = [
    "--import",
    "tsx",
    CLI,
    "train",
    ...toArgs(job.options),
    "--out",
    out,
    "--checkpoint",
    ckpt,
    "--progress",
    "json",
  ];
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, args, {
      cwd: ROOT,
      env: { ...process.env, MTLCRAFT_THREADS: "1" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let buf = "";
    let err = "";
    child.stdout.setEncoding("utf8");
    child.stdout.on("data", (chunk: string) => {
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
    child.stderr.setEncoding("utf8");
    child.stderr.on("data", (c: string) => {
      err = (err + c).slice(-4000);
    });
    child.on("error", reject);
    child.on("close", (code) => {
      if (code === 0 && existsSync(out)) {
        rmSync(ckpt, { recursive: true, force: true }); // finished: the result file is the record
        resolvePromise();
      }
      else reject(new Error(`train exited with code ${code}${err ? `: ${err.trim().split("\n").slice(-5).join(" | ")}` : ""}`));
    });
  });
}
