/**
 * How `bench` runs its jobs besides all of them here: one shard of the job list
 * (`--shard i/n`, several machines sharing an output folder), none (`--report-only`: the
 * table and report from whatever results exist), or through a Redis job queue
 * (`--queue`, see queue.ts). Also the table with missing cells for incomplete sweeps.
 */
import { resolve } from "node:path";
import type { RunResult } from "../report/types.ts";
import type { ComparisonTable, TableCell } from "../report/table.ts";
import { BUILTIN_DATASETS, datasetHash, prepareDataset, resolveSpec } from "../data/index.ts";
import type { Job, SweepConfig } from "./plan.ts";
import { readResult, resultPath, runJobs, staleReason } from "./runner.ts";
import { checkRunsProvenance } from "./provenance.ts";
import type { DatasetPayload, EnqueueOptions, QueueWorkerHandle, QueueWorkerOptions } from "./queue.ts";

/** The i-th (1-based) of n partitions. */
export interface Shard {
  index: number;
  count: number;
}

/** Parses `i/n` (1 <= i <= n). */
export function parseShard(s: string): Shard {
  const m = /^\s*(\d+)\s*\/\s*(\d+)\s*$/.exec(s);
  if (!m) throw new Error(`--shard must be i/n (e.g. 2/3), got "${s}"`);
  const index = Number(m[1]);
  const count = Number(m[2]);
  if (count < 1 || index < 1 || index > count) throw new Error(`--shard ${s}: need 1 <= i <= n`);
  return { index, count };
}

/**
 * The jobs of shard i/n: every n-th job of the list starting at the i-th (round robin, so
 * each shard gets a mix of methods). The job list is the same for the same config, hence
 * the partition too; the shards of 1..n together are exactly the list.
 */
export function shardJobs<T>(jobs: readonly T[], shard: Shard): T[] {
  return jobs.filter((_, k) => k % shard.count === shard.index - 1);
}

/** The run mode of a sweep (absent: every job here, in parallel workers). */
export interface SweepMode {
  shard?: Shard;
  reportOnly?: boolean;
  queue?: EnqueueOptions;
}

export function checkMode(mode: SweepMode): void {
  const on = [mode.shard && "--shard", mode.reportOnly && "--report-only", mode.queue && "--queue"].filter(Boolean);
  if (on.length > 1) throw new Error(`bench: ${on.join(" and ")} cannot be combined`);
}

/**
 * The dataset's content hash (and for the queue, what a worker needs to prepare it). Run
 * here, the data is encoded once so the parallel workers all find it cached; with the
 * queue (workers prepare their own) or --report-only, only the input files are hashed.
 */
export async function sweepDataset(cfg: SweepConfig, mode: SweepMode, log: (m: string) => void): Promise<{ hash: string; payload?: DatasetPayload }> {
  const str = (v: unknown) => (typeof v === "string" ? v : undefined);
  const cacheDir = str(cfg.train["cache-dir"]);
  const source = str(cfg.train.source);
  if (!mode.queue && !mode.reportOnly) {
    const prep = await prepareDataset(cfg.dataset, { cacheDir, source, log });
    log(`dataset ${cfg.dataset}: ${prep.manifest.rows ? JSON.stringify(prep.manifest.rows) : prep.dir}`);
    return { hash: prep.manifest.hash };
  }
  const { spec, baseDir } = resolveSpec(cfg.dataset, source !== undefined ? { dataDir: source } : {});
  const { hash } = datasetHash(spec, baseDir);
  log(`dataset ${cfg.dataset}: content hash ${hash.slice(0, 16)}…`);
  if (!mode.queue) return { hash };
  const builtin = (BUILTIN_DATASETS as readonly string[]).includes(cfg.dataset) && source === undefined ? cfg.dataset : undefined;
  return { hash, payload: { ...(builtin ? { builtin } : {}), spec, baseDir: resolve(baseDir), hash } };
}

/** The results of `jobs` that exist and are current (null where missing or stale). */
export function availableResults(jobs: readonly Job[], runsDir: string, hash: string): (RunResult | null)[] {
  checkRunsProvenance(jobs, runsDir, hash); // never a table of mixed versions or configurations
  return jobs.map((j) => (staleReason(runsDir, j, hash) === null ? readResult(resultPath(runsDir, j)) : null));
}

export interface PhaseContext {
  runsDir: string;
  hash: string;
  payload?: DatasetPayload;
  interactive: boolean;
  log: (m: string) => void;
}

/** Runs (or, with --report-only, only collects) one phase's jobs; null for results still missing. */
export async function runPhase(jobs: Job[], cfg: SweepConfig, mode: SweepMode, c: PhaseContext): Promise<(RunResult | null)[]> {
  if (mode.reportOnly) return availableResults(jobs, c.runsDir, c.hash);
  if (mode.queue) {
    const { runJobsQueued } = await import("./queue.ts");
    return runJobsQueued(jobs, { runsDir: c.runsDir, datasetHash: c.hash, dataset: c.payload!, interactive: c.interactive, log: c.log, queue: mode.queue });
  }
  const local = { runsDir: c.runsDir, jobs: cfg.jobs, interactive: c.interactive, log: c.log, datasetHash: c.hash, plugins: cfg.plugins ?? [] };
  if (!mode.shard) return runJobs(jobs, local);
  const mine = shardJobs(jobs, mode.shard);
  c.log(`shard ${mode.shard.index}/${mode.shard.count}: ${mine.length} of ${jobs.length} jobs`);
  await runJobs(mine, local);
  return availableResults(jobs, c.runsDir, c.hash);
}

const MISSING: TableCell = { mean: NaN, std: null, n: 0, mark: null, text: "missing" };

/**
 * The table of an incomplete sweep: a column for every planned method in order, "missing"
 * in every cell of a method without results (and in the RI rows when the baseline has
 * none), and "(k/n)" after the cells of a method with k of its n planned runs. `table` is
 * built from the methods that have results.
 */
export function withMissing(table: ComparisonTable, planned: { method: string; label: string; runs: number; present: number }[], baseline: string): ComparisonTable {
  const at = new Map(table.columns.map((c, i) => [c.method, i]));
  const noBase = !at.has(baseline);
  return {
    ...table,
    baseline,
    columns: planned.map((p) => ({ method: p.method, label: p.label })),
    rows: table.rows.map((r) => ({
      ...r,
      cells: planned.map((p) => {
        const i = at.get(p.method);
        if (i === undefined || (noBase && r.unit === "%")) return { ...MISSING };
        const cell = r.cells[i] ?? null;
        if (cell === null) return p.method === baseline ? null : { ...MISSING };
        return p.present < p.runs ? { ...cell, text: `${cell.text} (${p.present}/${p.runs})` } : cell;
      }),
    })),
  };
}

/**
 * Starts a queue worker (`mtlcraft worker`, see queue.ts): BullMQ is loaded only here, so
 * importing the package does not load it.
 */
export async function runQueueWorker(o: QueueWorkerOptions): Promise<QueueWorkerHandle> {
  const q = await import("./queue.ts");
  return q.runQueueWorker(o);
}
