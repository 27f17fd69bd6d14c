/**
 * Sweep planning: which training jobs a `bench` run needs (methods × seeds, the
 * single-task and logistic-regression baselines, and an optional hyper-parameter
 * grid selected on validation only), each with a stable id so a re-run skips
 * finished jobs.
 */
import { createHash } from "node:crypto";
import { didYouMean } from "../util/suggest.ts";

/** The methods of the GradCraft paper's Table 1, in its column order. */
export const PAPER_METHODS = [
  "ew", "uw", "dwa", "mgda", "pcgrad", "pcgrad-plus", "gradvac", "cagrad", "imtl", "dbmtl", "gradcraft",
] as const;

/** Baselines that are not balancing methods: separate single-task networks, and logistic regression. */
export const BASELINES = ["single", "lr"] as const;

export type ParamValue = string | number | boolean;
/** A job option: a scalar, or a list for repeatable flags (`--model-opt a=1 --model-opt b=2`). */
export type OptionValue = ParamValue | string[];

export interface SweepConfig {
  dataset: string;
  model: string;
  /** Method names; `single` and `lr` are the baselines. */
  methods: string[];
  seeds: number[];
  /** Options passed to every `train` job (epochs, batch-size, lr, ...), as CLI option names without dashes. */
  train: Record<string, OptionValue>;
  /**
   * Architecture options for the multi-task model (e.g. {expertUnits: "128,64"}).
   * The Single baseline gets `expertUnits` as its `bottomUnits`, so both have the same depth and width.
   */
  modelOptions?: Record<string, string>;
  /** Grid over options (e.g. {lr: [1e-3, 5e-4], tau: [0.1, 0.3]}): tried on the first seed, best by mean validation AUC. */
  grid: Record<string, ParamValue[]>;
  /** Grid keys that only apply to some methods (e.g. tau → gradcraft, pcgrad-plus). */
  gridMethods?: Record<string, string[]>;
  /**
   * Per-method grid values that replace `grid`'s for that method (e.g. a learning-rate
   * range extended in the direction where a first, coarser selection chose its edge).
   * A key here that `grid` lacks adds an axis for that method alone.
   */
  methodGrid?: Record<string, Record<string, ParamValue[]>>;
  /**
   * Per-method train options on top of `train` (e.g. the LR baseline's own learning
   * rate: a linear model needs a larger one than the deep models).
   */
  overrides?: Record<string, Record<string, OptionValue>>;
  jobs: number;
  out: string;
  /** Plugin modules (methods / architectures) every worker loads; absolute paths (see src/plugins.ts). */
  plugins?: string[];
}

export interface Job {
  id: string;
  method: string;
  seed: number;
  /** CLI options for `train` (without dashes). */
  options: Record<string, OptionValue>;
  /** The grid point this job evaluates ({} when no grid). */
  point: Record<string, ParamValue>;
  phase: "select" | "final";
}

export function jobId(method: string, seed: number, options: Record<string, OptionValue>): string {
  const keys = Object.keys(options).sort();
  const canon = JSON.stringify(keys.map((k) => [k, options[k]]));
  const h = createHash("sha256").update(`${method}|${seed}|${canon}`).digest("hex").slice(0, 10);
  return `${method}-s${seed}-${h}`;
}

/** All grid points applicable to `method` (cartesian product of its grid keys). */
export function gridPoints(cfg: SweepConfig, method: string): Record<string, ParamValue>[] {
  const own = cfg.methodGrid?.[method] ?? {};
  const keys = Object.keys(cfg.grid).filter((k) => {
    const only = cfg.gridMethods?.[k];
    return !only || only.includes(method);
  });
  for (const k of Object.keys(own)) if (!keys.includes(k)) keys.push(k);
  let pts: Record<string, ParamValue>[] = [{}];
  for (const k of keys) {
    const vals = own[k] ?? cfg.grid[k]!;
    if (vals.length === 0) throw new Error(`sweep: grid option ${k} has no values`);
    pts = pts.flatMap((p) => vals.map((v) => ({ ...p, [k]: v })));
  }
  return pts;
}

export function baseOptions(cfg: SweepConfig, method: string): Record<string, OptionValue> {
  const o: Record<string, OptionValue> = { dataset: cfg.dataset, ...cfg.train, ...(cfg.overrides?.[method] ?? {}) };
  const mo = cfg.modelOptions ?? {};
  if (method === "single" || method === "lr") {
    o.model = method;
    o.method = "ew";
    if (method === "single" && mo.expertUnits !== undefined) o["model-opt"] = [`bottomUnits=${mo.expertUnits}`];
  } else {
    o.model = cfg.model;
    o.method = method;
    const list = Object.entries(mo).map(([k, v]) => `${k}=${v}`);
    if (list.length) o["model-opt"] = list;
  }
  return o;
}

/** Selection-phase jobs (first seed, every grid point) for methods with more than one point. */
export function selectionJobs(cfg: SweepConfig): Job[] {
  const jobs: Job[] = [];
  const seed = cfg.seeds[0]!;
  for (const m of cfg.methods) {
    const pts = gridPoints(cfg, m);
    if (pts.length <= 1) continue;
    for (const p of pts) {
      const options = { ...baseOptions(cfg, m), ...p, seed };
      jobs.push({ id: jobId(m, seed, options), method: m, seed, options, point: p, phase: "select" });
    }
  }
  return jobs;
}

/** Final jobs for every method and seed, given the selected grid point per method. */
export function finalJobs(cfg: SweepConfig, chosen: Record<string, Record<string, ParamValue>>): Job[] {
  const jobs: Job[] = [];
  for (const m of cfg.methods) {
    const p = chosen[m] ?? gridPoints(cfg, m)[0] ?? {};
    for (const seed of cfg.seeds) {
      const options = { ...baseOptions(cfg, m), ...p, seed };
      jobs.push({ id: jobId(m, seed, options), method: m, seed, options, point: p, phase: "final" });
    }
  }
  return jobs;
}

/** Expand `all` / `paper` and validate names against the known list. */
export function expandMethods(spec: string[], known: readonly string[]): string[] {
  const out: string[] = [];
  const add = (m: string) => {
    if (!out.includes(m)) out.push(m);
  };
  for (const raw of spec.flatMap((s) => s.split(",")).map((s) => s.trim()).filter(Boolean)) {
    if (raw === "all") {
      BASELINES.forEach(add);
      known.forEach(add);
    } else if (raw === "paper") {
      add("single");
      add("lr");
      PAPER_METHODS.forEach(add);
    } else if ((BASELINES as readonly string[]).includes(raw) || known.includes(raw)) {
      add(raw);
    } else {
      const names = ["all", "paper", ...BASELINES, ...known];
      throw new Error(`--methods: unknown method "${raw}"; choose from ${names.join(", ")}${didYouMean(raw, names)}`);
    }
  }
  if (out.length === 0) throw new Error("--methods: no method given");
  return out;
}
