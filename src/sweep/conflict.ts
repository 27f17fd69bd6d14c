/**
 * `mtlcraft conflict`: the controlled-conflict benchmark. For every cosine C of the config,
 * generates the synthetic dataset (src/data/synth.ts) into `<out>/data/cos<C>/`, runs a
 * normal `bench` sweep on it into `<out>/cos<C>/` (same jobs, workers, grid selection and
 * reuse of finished jobs), then writes `<out>/conflict.md`, `conflict.csv` and
 * `conflict.html`: each method's AV-A against C, with 95 % t-intervals over seeds and the
 * paired differences against EW and Single.
 *
 * Second axis: with `noiseCosines` (and `synth.noise` > 0), the benchmark sweeps the
 * label-noise cosine ρ over that list at the config's one weight cosine C instead (data in
 * `<out>/data/noisecos<ρ>/`, sweeps in `<out>/noisecos<ρ>/`), and the tables and plots have ρ
 * on the x axis.
 *
 * Config file (JSON): { cosines: number[], noiseCosines?: number[], synth?: generator options
 * but `cosine` (and `noiseCosine` with noiseCosines), sweep?: a bench sweep config without
 * `dataset` and `out`, out?: folder }.
 */
import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { cpus, hostname } from "node:os";
import type { RunResult } from "../report/types.ts";
import { buildConflictTable, conflictToCsv, conflictToMarkdown, renderConflictReport, type ConflictPoint, type ConflictTable } from "../report/conflict.ts";
import { resolveSynthOptions, writeSynthDataset, type SynthOptions } from "../data/synth.ts";
import { checkKeys } from "../config/schema.ts";
import { resolveSweepConfig, type SweepFile } from "../config/sweep-config.ts";
import { checkWritable, writeFileAtomic } from "../util/fsx.ts";
import { checkOutput } from "../util/outpath.ts";
import { getMethod } from "../balance/registry.ts";
import { runSweep } from "./sweep.ts";
import { meanFinite } from "../train/evaluate.ts";

export interface ConflictConfig {
  $schema?: string;
  description?: string;
  /** Cosines C between the tasks' weight vectors, each in [−1, 1], distinct (exactly one with `noiseCosines`). */
  cosines: number[];
  /**
   * Label-noise cosines ρ, each in [−1, 1], distinct: when set, the benchmark sweeps ρ at the
   * one weight cosine of `cosines` (needs `synth.noise` > 0; `synth.noiseCosine` unset).
   */
  noiseCosines?: number[];
  /** Generator options (all but `cosine`); `seed` defaults to 1. */
  synth?: Omit<SynthOptions, "cosine" | "seed"> & { seed?: number };
  /** The sweep run at every cosine: a bench config without `dataset` and `out`. */
  sweep?: Omit<SweepFile, "dataset" | "out">;
  /** Output folder (default runs/conflict). */
  out?: string;
}

const KEYS = ["$schema", "description", "cosines", "noiseCosines", "synth", "sweep", "out"];
const SYNTH_KEYS = ["seed", "rows", "users", "items", "hidden", "rates", "signal", "noise", "noiseCosine"];

const isObj = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === "object" && !Array.isArray(v);

/** Validates a conflict config (unknown keys with a suggestion, value ranges naming the key). */
export function checkConflictConfig(x: unknown, where: string): ConflictConfig {
  if (!isObj(x)) throw new Error(`${where}: a conflict config must be a JSON object`);
  checkKeys(x, KEYS, where, "key");
  const c = x.cosines;
  if (!Array.isArray(c) || c.length === 0) throw new Error(`${where}: cosines must be a non-empty list of numbers in [-1, 1]`);
  c.forEach((v, i) => {
    if (typeof v !== "number" || !Number.isFinite(v) || v < -1 || v > 1) throw new Error(`${where}: cosines[${i}] must be a number in [-1, 1], got ${JSON.stringify(v)}`);
  });
  if (new Set(c).size !== c.length) throw new Error(`${where}: cosines lists a value twice: ${JSON.stringify(c)}`);
  const nc = x.noiseCosines;
  if (nc !== undefined) {
    if (!Array.isArray(nc) || nc.length === 0) throw new Error(`${where}: noiseCosines must be a non-empty list of numbers in [-1, 1]`);
    nc.forEach((v, i) => {
      if (typeof v !== "number" || !Number.isFinite(v) || v < -1 || v > 1) throw new Error(`${where}: noiseCosines[${i}] must be a number in [-1, 1], got ${JSON.stringify(v)}`);
    });
    if (new Set(nc).size !== nc.length) throw new Error(`${where}: noiseCosines lists a value twice: ${JSON.stringify(nc)}`);
    if (c.length !== 1) throw new Error(`${where}: noiseCosines sweeps the label-noise cosine at one weight cosine: cosines must list exactly one value, got ${c.length} (${JSON.stringify(c)})`);
  }
  if (x.synth !== undefined && !isObj(x.synth)) throw new Error(`${where}: synth must be an object`);
  const synth = (x.synth ?? {}) as Partial<SynthOptions> & Record<string, unknown>;
  if (x.synth !== undefined) checkKeys(synth, SYNTH_KEYS, `${where}: synth`, "key");
  if (nc !== undefined) {
    if (!(typeof synth.noise === "number" && synth.noise > 0)) throw new Error(`${where}: noiseCosines needs synth.noise > 0 (the label-noise scale σ), got ${JSON.stringify(synth.noise)}`);
    if (synth.noiseCosine !== undefined) throw new Error(`${where}: synth.noiseCosine is set per point by noiseCosines; remove it`);
  }
  // the generator's own checks, at the first cosine (and the first noise cosine)
  if (x.synth !== undefined) resolveSynthOptions({ ...synth, seed: synth.seed ?? 1, cosine: c[0] as number, ...(nc !== undefined ? { noiseCosine: nc[0] as number } : {}) });
  if (x.sweep !== undefined) {
    if (!isObj(x.sweep)) throw new Error(`${where}: sweep must be an object`);
    for (const k of ["dataset", "out"]) if (k in x.sweep) throw new Error(`${where}: sweep.${k} is set by the conflict benchmark (the synthetic dataset per cosine, and <out>/cos<C>)`);
  }
  if (x.out !== undefined && (typeof x.out !== "string" || x.out.trim() === "")) throw new Error(`${where}: out must be a non-empty string`);
  return x as unknown as ConflictConfig;
}

/** Reads and validates a conflict config file. */
export function readConflictConfig(path: string): ConflictConfig {
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(path, "utf8"));
  } catch (e) {
    throw new Error(`--config ${path}: ${(e as Error).message}`, { cause: e });
  }
  return checkConflictConfig(json, `--config ${path}`);
}

/**
 * AV-A of a run: the mean test AUC over its tasks whose AUC is defined (a one-class task has
 * NaN, or null once read back from its result file, which must count neither as NaN nor as 0:
 * src/metrics/defined.ts); NaN when no task has one.
 */
export function avA(r: RunResult): number {
  return meanFinite(r.test.auc);
}

/**
 * Mean pairwise task-gradient cosine and conflict rate on the shared parameters, over the
 * logged steps of one method's runs (each run weighted equally): EW's when it ran, else the
 * first method with shared-parameter gradients; null when none has diagnostics.
 */
export function gradientStats(results: RunResult[]): { method: string; cosine: number; conflictRate: number } | null {
  const has = (r: RunResult) => r.diagnostics.some((d) => d.norms.some((n) => n !== 0));
  const method = results.some((r) => r.method === "ew" && has(r)) ? "ew" : results.find(has)?.method;
  if (method === undefined) return null;
  let cos = 0;
  let rate = 0;
  let n = 0;
  for (const r of results.filter((x) => x.method === method && has(x))) {
    const T = r.tasks.length;
    const pairs = (T * (T - 1)) / 2;
    let c = 0;
    let k = 0;
    for (const d of r.diagnostics) {
      let s = 0;
      for (let i = 0; i < T; i++) for (let j = i + 1; j < T; j++) s += d.cosines[i * T + j]!;
      c += s / pairs;
      k += d.conflicts / pairs;
    }
    cos += c / r.diagnostics.length;
    rate += k / r.diagnostics.length;
    n++;
  }
  return { method, cosine: cos / n, conflictRate: rate / n };
}

export interface ConflictOutput {
  table: ConflictTable;
  markdown: string;
  htmlPath: string;
  seconds: number;
}

/** Runs the benchmark (see the file comment). */
export async function runConflictBench(
  config: ConflictConfig,
  options: { interactive?: boolean; log?: (m: string) => void; command?: string; cwd?: string } = {},
): Promise<ConflictOutput> {
  const log = options.log ?? ((m: string) => console.error(m));
  const cfg = checkConflictConfig(config, "conflict config");
  const out = resolve(options.cwd ?? ".", cfg.out ?? "runs/conflict");
  checkOutput("conflict --out", out, "folder"); // never into an export, checkpoint, artefact or prepared dataset, nor over a file
  checkWritable(out, "dir", "conflict --out");
  const t0 = Date.now();
  const points: ConflictPoint[] = [];
  let trainSeconds = 0;
  const labelOf = (m: string) => (m === "single" ? "Single" : m === "lr" ? "LR" : getMethod(m).label);
  // the points: one per weight cosine C, or on the label-noise axis one per ρ at the one C
  const noiseAxis = cfg.noiseCosines !== undefined;
  const steps = noiseAxis
    ? cfg.noiseCosines!.map((rho) => ({ x: rho, tag: `noisecos${rho}`, synth: { seed: 1, ...(cfg.synth ?? {}), cosine: cfg.cosines[0]!, noiseCosine: rho } }))
    : cfg.cosines.map((cosine) => ({ x: cosine, tag: `cos${cosine}`, synth: { seed: 1, ...(cfg.synth ?? {}), cosine } }));
  for (const { x, tag, synth } of steps) {
    const files = writeSynthDataset(join(out, "data", tag), synth);
    const rates = `realised rates ${files.data.realisedRates.map((r) => r.toFixed(4)).join(" ")}`;
    log(
      noiseAxis
        ? `\n== ρ = ${x} (C = ${synth.cosine}): ${files.spec} (mean pair noise correlation ${files.data.meanNoiseCorrelation!.toFixed(3)}, ${rates})`
        : `\n== C = ${x}: ${files.spec} (mean pair cosine ${files.data.meanCosine.toFixed(3)}, ${rates})`,
    );
    const sweep = await resolveSweepConfig({ ...(cfg.sweep ?? {}), dataset: files.spec, out: join(out, tag) }, { where: "conflict config: sweep", cwd: options.cwd });
    const res = await runSweep(sweep, { interactive: options.interactive, log, labelOf, command: options.command ?? "runConflictBench" });
    const gradients = gradientStats(res.results);
    trainSeconds += res.results.reduce((a, r) => a + r.seconds, 0);
    points.push({
      cosine: x,
      meanCosine: noiseAxis ? files.data.meanNoiseCorrelation! : files.data.meanCosine,
      runs: res.results.map((r) => ({ method: r.method, label: r.methodLabel, seed: r.seed, avA: avA(r) })),
      ...(gradients ? { gradients } : {}),
    });
  }
  const table = buildConflictTable(points, noiseAxis ? { axis: { kind: "noiseCosine", weightCosine: cfg.cosines[0]!, noise: cfg.synth!.noise! } } : {});
  const markdown = conflictToMarkdown(table);
  const seconds = (Date.now() - t0) / 1000;
  const meta: Record<string, string> = {
    command: options.command ?? "runConflictBench",
    cosines: cfg.cosines.join(", "),
    ...(noiseAxis ? { "noise cosines": cfg.noiseCosines!.join(", ") } : {}),
    generator: JSON.stringify({ seed: 1, ...(cfg.synth ?? {}) }),
    sweep: JSON.stringify(cfg.sweep ?? {}),
    machine: `${hostname()} · ${cpus().length} cores · node ${process.version}`,
    "finished at": new Date().toISOString(),
    "wall time (this invocation; finished jobs are reused)": `${seconds.toFixed(0)} s`,
    "training time (sum over runs, one core each)": `${trainSeconds.toFixed(0)} s`,
  };
  writeFileAtomic(join(out, "conflict.md"), markdown);
  writeFileAtomic(join(out, "conflict.csv"), conflictToCsv(table));
  const htmlPath = join(out, "conflict.html");
  writeFileAtomic(htmlPath, renderConflictReport(table, { title: "mtlcraft: controlled task conflict", meta }));
  return { table, markdown, htmlPath, seconds };
}
