/**
 * A synthetic multi-task log with controlled task conflict (`mtlcraft synth`, and the
 * `conflict` benchmark): binary tasks whose labels come from logistic models on shared
 * hidden features, with task weight vectors at a chosen cosine, written as a CSV plus a
 * dataset spec so it goes through the same DuckDB preparation as real logs.
 *
 * Rows. Each row is (user, item, hour) with the user's group and the item's category:
 * users, items and hours uniform; group = one of 20 drawn per user, category = one of 30
 * drawn per item (fixed for the dataset). CSV columns: user_id, item_id, user_group,
 * item_cat, hour, t1..tT (0/1).
 *
 * Hidden features (k = `hidden` dimensions). Every user has latent vectors a_u and p_u,
 * every item b_i and q_i, every group, category and hour one vector (e_g, f_c, h_h), all
 * N(0, I_k). A row's hidden feature vector is
 *   z = (a_u + b_i + ½e_g + ½f_c + ½h_h + p_u ⊙ q_i) / √3.75
 * (unit variance per coordinate; the p ⊙ q term is a user × item interaction).
 *
 * Task weight vectors (unit norm). From one orthonormal set u, v_1..v_T (Gram–Schmidt on
 * seeded Gaussian vectors; needs k ≥ T + 1):
 *   w_t = √|C| · s_t · u + √(1 − |C|) · v_t,
 * s_t = +1 for C ≥ 0; for C < 0, s_t = +1 for odd t (t1, t3, ...) and −1 for even t. So
 * cos(w_i, w_j) = s_i s_j |C| exactly: for C ≥ 0 every pair has cosine C; for C < 0 every
 * pair of different parity (t1–t2, t1–t4, t2–t3, ...) has cosine C and pairs of the same
 * parity have |C| (pairwise cosine C for all pairs is impossible below −1/(T−1)). C = −1
 * makes t1 and t2 exact opposites.
 *
 * Labels. logit_t = signal · ⟨w_t, z⟩ + n_t + b_t, label ~ Bernoulli(σ(logit_t)); b_t is
 * solved (bisection) so that the mean of σ(logit_t) over the generated rows (noise included)
 * equals the target rate r_t, so the realised rate is r_t up to binomial noise. Default rates
 * 0.5, 0.25, 0.15, 0.02, 0.005, 0.002 follow KuaiRand's ev, lv, cv, like, follow, forward
 * (0.5 .. 0.001).
 *
 * Label noise (`noise` σ ≥ 0, default 0; `noiseCosine` ρ in [−1, 1], default 0). An
 * unobserved per-row logit term: per row, ε_0, ε_1..ε_T ~ N(0, 1) (their own seeded stream) and
 *   n_t = σ · (√|ρ| · s'_t · ε_0 + √(1 − |ρ|) · ε_t),
 * with s'_t built like the weights' s_t (all +1 for ρ ≥ 0; for ρ < 0, +1 for odd t and −1
 * for even t). So Var n_t = σ² and corr(n_i, n_j) = s'_i s'_j |ρ|: ρ for every pair when
 * ρ ≥ 0; for ρ < 0, ρ between tasks of different parity and |ρ| within a parity. With σ = 0
 * (the default) n_t = 0, no noise is drawn and the output is byte for byte the generator
 * without this knob (same dataset name, spec, CSV and metadata, hence the same content hash).
 * Why: the weight cosine C alone does not create gradient conflict on the shared parameters
 * (measured mean pairwise task-gradient cosine 0.004 to 0.03 at every C, README "Controlled
 * task conflict"): ⟨w_t, z⟩ is a function of the inputs, so each task's own tower can absorb
 * the sign of its weight vector. n_t is not a function of the inputs, so no tower can absorb
 * it: the tasks' residuals are correlated as the n_t are, and for ρ < 0 tasks of different
 * parity get opposing gradients on the shared parameters (with C = +0.9, σ = 3 and ρ = −1,
 * EW's measured gradient cosine of t1–t2 went from +0.07 to −0.10, of t2–t3 from +0.11 to
 * −0.06, while t1–t3 went from +0.03 to +0.14).
 *
 * Everything is a function of the options (seed included): the same options give the same
 * bytes, hence the same dataset content hash and reusable caches and bench jobs.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { Rng } from "../util/rng.ts";
import type { DatasetSpec } from "./spec.ts";
import { writeFileAtomic } from "../util/fsx.ts";

export interface SynthOptions {
  /** Cosine C between task weight vectors, in [−1, 1] (see the file comment for C < 0). */
  cosine: number;
  /** Seed of everything random (latents, weights, rows, labels, split). */
  seed: number;
  /** Number of rows (default 60000). */
  rows?: number;
  /** Number of users (default 1000). */
  users?: number;
  /** Number of items (default 500). */
  items?: number;
  /** Hidden feature dimensions k, at least tasks + 1 (default 8). */
  hidden?: number;
  /** Label rate per task, in (0, 1); one task per entry (default 0.5, 0.25, 0.15, 0.02, 0.005, 0.002). */
  rates?: number[];
  /** Logit scale: logit = signal · ⟨w_t, z⟩ + n_t + b_t (default 2). */
  signal?: number;
  /** Scale σ of the unobserved per-row label noise n_t, in [0, 10] (default 0: none; see the file comment). */
  noise?: number;
  /** Cosine ρ between the tasks' label-noise terms, in [−1, 1] (default 0; ρ < 0 as C < 0). Needs noise > 0. */
  noiseCosine?: number;
}

export const SYNTH_DEFAULTS = Object.freeze({
  rows: 60000,
  users: 1000,
  items: 500,
  hidden: 8,
  rates: Object.freeze([0.5, 0.25, 0.15, 0.02, 0.005, 0.002]) as readonly number[],
  signal: 2,
  noise: 0,
  noiseCosine: 0,
});

/** Largest label-noise scale σ: beyond it the calibrated biases can leave their search range. */
export const SYNTH_MAX_NOISE = 10;

const GROUPS = 20;
const CATEGORIES = 30;
const HOURS = 24;
/** Train / val / test fractions of the spec's split. */
export const SYNTH_SPLIT = Object.freeze({ train: 0.7, val: 0.15, test: 0.15 });

export type ResolvedSynthOptions = Required<Omit<SynthOptions, "rates">> & { rates: number[] };

function checkInt(name: string, v: number, lo: number, hi: number): number {
  if (!Number.isInteger(v) || v < lo || v > hi) throw new Error(`synth: ${name} must be an integer in [${lo}, ${hi}], got ${v}`);
  return v;
}

/** Options with defaults, validated (errors name the option). */
export function resolveSynthOptions(o: SynthOptions): ResolvedSynthOptions {
  if (typeof o.cosine !== "number" || !Number.isFinite(o.cosine) || o.cosine < -1 || o.cosine > 1) {
    throw new Error(`synth: cosine must be a number in [-1, 1], got ${String(o.cosine)}`);
  }
  const rates = [...(o.rates ?? SYNTH_DEFAULTS.rates)];
  if (rates.length < 2 || rates.length > 32) throw new Error(`synth: rates must list 2 to 32 tasks, got ${rates.length}`);
  rates.forEach((r, i) => {
    if (typeof r !== "number" || !(r > 0 && r < 1)) throw new Error(`synth: rates[${i}] must be in (0, 1), got ${String(r)}`);
  });
  const hidden = checkInt("hidden", o.hidden ?? SYNTH_DEFAULTS.hidden, 2, 1024);
  if (hidden < rates.length + 1) throw new Error(`synth: hidden must be at least tasks + 1 = ${rates.length + 1} (one shared and one own direction per task), got ${hidden}`);
  const signal = o.signal ?? SYNTH_DEFAULTS.signal;
  if (typeof signal !== "number" || !(signal > 0) || !Number.isFinite(signal)) throw new Error(`synth: signal must be a positive number, got ${String(signal)}`);
  const noise = o.noise ?? SYNTH_DEFAULTS.noise;
  if (typeof noise !== "number" || !Number.isFinite(noise) || noise < 0 || noise > SYNTH_MAX_NOISE) {
    throw new Error(`synth: noise must be a number in [0, ${SYNTH_MAX_NOISE}] (the label-noise scale σ; 0: none), got ${String(noise)}`);
  }
  const noiseCosine = o.noiseCosine ?? SYNTH_DEFAULTS.noiseCosine;
  if (typeof noiseCosine !== "number" || !Number.isFinite(noiseCosine) || noiseCosine < -1 || noiseCosine > 1) {
    throw new Error(`synth: noiseCosine must be a number in [-1, 1], got ${String(noiseCosine)}`);
  }
  if (noise === 0 && noiseCosine !== 0) throw new Error(`synth: noiseCosine ${noiseCosine} has no effect without label noise: set noise > 0`);
  return {
    cosine: o.cosine,
    seed: checkInt("seed", o.seed, 0, 2 ** 32 - 1),
    rows: checkInt("rows", o.rows ?? SYNTH_DEFAULTS.rows, 10, 50_000_000),
    users: checkInt("users", o.users ?? SYNTH_DEFAULTS.users, 1, 10_000_000),
    items: checkInt("items", o.items ?? SYNTH_DEFAULTS.items, 1, 10_000_000),
    hidden,
    rates,
    signal,
    noise,
    noiseCosine,
  };
}

const dot = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
};

/** `count` orthonormal vectors in R^k (Gram–Schmidt, twice, on Gaussian draws). */
export function orthonormal(count: number, k: number, rng: Rng): Float64Array[] {
  if (count > k) throw new Error(`orthonormal: ${count} vectors do not fit in ${k} dimensions`);
  const out: Float64Array[] = [];
  while (out.length < count) {
    const v = Float64Array.from({ length: k }, () => rng.normal());
    for (let pass = 0; pass < 2; pass++) {
      for (const b of out) {
        const p = dot(v, b);
        for (let i = 0; i < k; i++) v[i]! -= p * b[i]!;
      }
    }
    const n = Math.sqrt(dot(v, v));
    if (n < 1e-6) continue; // (practically never) a draw in the span: draw again
    for (let i = 0; i < k; i++) v[i]! /= n;
    out.push(v);
  }
  return out;
}

/** The signs s_1..s_T of the shared direction for cosine c: all +1 for c ≥ 0; for c < 0, +1 for t1, t3, ... and −1 for t2, t4, .... */
export function taskSigns(tasks: number, cosine: number): number[] {
  return Array.from({ length: tasks }, (_, t) => (cosine < 0 && t % 2 === 1 ? -1 : 1));
}

/** The task weight vectors w_1..w_T (unit norm) for cosine C: see the file comment. */
export function taskWeights(tasks: number, k: number, cosine: number, rng: Rng): Float64Array[] {
  const [u, ...v] = orthonormal(tasks + 1, k, rng);
  const a = Math.sqrt(Math.abs(cosine));
  const b = Math.sqrt(1 - Math.abs(cosine));
  const signs = taskSigns(tasks, cosine);
  return v.map((vt, t) => {
    const s = signs[t]!;
    return Float64Array.from({ length: k }, (_, i) => s * a * u![i]! + b * vt[i]!);
  });
}

/**
 * The label-noise terms n_t[row] = σ · (√|ρ| · s'_t · ε_0 + √(1 − |ρ|) · ε_t) for `rows` rows
 * (see the file comment): per row, ε_0 then ε_1..ε_T are drawn from `rng` in that order.
 * corr(n_i, n_j) = s'_i s'_j |ρ|, with s'_t = taskSigns(tasks, ρ).
 */
export function labelNoise(tasks: number, rows: number, sigma: number, rho: number, rng: Rng): Float64Array[] {
  const signs = taskSigns(tasks, rho);
  const a = sigma * Math.sqrt(Math.abs(rho));
  const b = sigma * Math.sqrt(1 - Math.abs(rho));
  const out = Array.from({ length: tasks }, () => new Float64Array(rows));
  for (let r = 0; r < rows; r++) {
    const shared = rng.normal();
    for (let t = 0; t < tasks; t++) out[t]![r] = a * signs[t]! * shared + b * rng.normal();
  }
  return out;
}

/** Pairwise Pearson correlations of equally long series, as rows. */
export function correlationMatrix(x: readonly ArrayLike<number>[]): number[][] {
  const centred = x.map((v) => {
    let m = 0;
    for (let i = 0; i < v.length; i++) m += v[i]!;
    m /= v.length;
    return Float64Array.from({ length: v.length }, (_, i) => v[i]! - m);
  });
  return cosineMatrix(centred);
}

/** Pairwise cosines of vectors, as rows. */
export function cosineMatrix(w: readonly ArrayLike<number>[]): number[][] {
  return w.map((a) => w.map((b) => dot(a, b) / Math.sqrt(dot(a, a) * dot(b, b))));
}

const sigmoid = (x: number) => (x >= 0 ? 1 / (1 + Math.exp(-x)) : Math.exp(x) / (1 + Math.exp(x)));

/** The bias b with mean_r σ(scores[r] + b) = rate (bisection; the mean is increasing in b). */
export function calibrateBias(scores: Float64Array, rate: number): number {
  let lo = -60;
  let hi = 60;
  const meanAt = (b: number) => {
    let s = 0;
    for (let r = 0; r < scores.length; r++) s += sigmoid(scores[r]! + b);
    return s / scores.length;
  };
  for (let it = 0; it < 100; it++) {
    const mid = (lo + hi) / 2;
    if (meanAt(mid) < rate) lo = mid;
    else hi = mid;
  }
  return (lo + hi) / 2;
}

export interface SynthData {
  options: ResolvedSynthOptions;
  tasks: string[];
  /** Feature columns, one value per row. */
  userId: Int32Array;
  itemId: Int32Array;
  userGroup: Int32Array;
  itemCat: Int32Array;
  hour: Int32Array;
  /** labels[t][row] in {0, 1}. */
  labels: Uint8Array[];
  /** Task weight vectors (unit norm) and their pairwise cosines. */
  weights: number[][];
  cosines: number[][];
  /** Mean of the off-diagonal cosines. */
  meanCosine: number;
  /** Realised pairwise correlations of the label-noise terms n_t over the rows; null without noise. */
  noiseCorrelations: number[][] | null;
  /** Mean of their off-diagonal entries; null without noise. */
  meanNoiseCorrelation: number | null;
  biases: number[];
  /** Target and realised label rates per task. */
  rates: number[];
  realisedRates: number[];
}

/** Generates the rows, hidden features and labels (all in memory). */
export function generateSynth(opts: SynthOptions): SynthData {
  const o = resolveSynthOptions(opts);
  const T = o.rates.length;
  const k = o.hidden;
  // Separate streams, so e.g. more rows do not change the weights or the latents.
  const rngW = new Rng(o.seed * 7 + 1);
  const rngL = new Rng(o.seed * 7 + 2);
  const rngR = new Rng(o.seed * 7 + 3);
  const rngY = new Rng(o.seed * 7 + 4);
  // Drawn only with noise, so that noise 0 leaves every other stream and the output as before.
  const noise = o.noise > 0 ? labelNoise(T, o.rows, o.noise, o.noiseCosine, new Rng(o.seed * 7 + 5)) : null;
  const weights = taskWeights(T, k, o.cosine, rngW);
  const table = (n: number) => Float64Array.from({ length: n * k }, () => rngL.normal());
  const A = table(o.users), P = table(o.users), B = table(o.items), Q = table(o.items);
  const E = table(GROUPS), F = table(CATEGORIES), H = table(HOURS);
  const groupOf = Int32Array.from({ length: o.users }, () => rngL.int(GROUPS));
  const catOf = Int32Array.from({ length: o.items }, () => rngL.int(CATEGORIES));
  const N = o.rows;
  const userId = new Int32Array(N), itemId = new Int32Array(N), userGroup = new Int32Array(N), itemCat = new Int32Array(N), hour = new Int32Array(N);
  const scores = Array.from({ length: T }, () => new Float64Array(N));
  const z = new Float64Array(k);
  const norm = 1 / Math.sqrt(3.75);
  for (let r = 0; r < N; r++) {
    const u = rngR.int(o.users), i = rngR.int(o.items), h = rngR.int(HOURS);
    const g = groupOf[u]!, c = catOf[i]!;
    userId[r] = u;
    itemId[r] = i;
    userGroup[r] = g;
    itemCat[r] = c;
    hour[r] = h;
    for (let d = 0; d < k; d++) {
      z[d] = norm * (A[u * k + d]! + B[i * k + d]! + 0.5 * (E[g * k + d]! + F[c * k + d]! + H[h * k + d]!) + P[u * k + d]! * Q[i * k + d]!);
    }
    for (let t = 0; t < T; t++) scores[t]![r] = o.signal * dot(weights[t]!, z);
  }
  if (noise) for (let t = 0; t < T; t++) for (let r = 0; r < N; r++) scores[t]![r]! += noise[t]![r]!;
  const biases = o.rates.map((rate, t) => calibrateBias(scores[t]!, rate));
  const labels = Array.from({ length: T }, () => new Uint8Array(N));
  for (let r = 0; r < N; r++) {
    for (let t = 0; t < T; t++) labels[t]![r] = rngY.next() < sigmoid(scores[t]![r]! + biases[t]!) ? 1 : 0;
  }
  const cosines = cosineMatrix(weights);
  const offMean = (m: number[][]) => {
    let off = 0;
    for (let a = 0; a < T; a++) for (let b = a + 1; b < T; b++) off += m[a]![b]!;
    return off / ((T * (T - 1)) / 2);
  };
  const noiseCorrelations = noise ? correlationMatrix(noise) : null;
  return {
    options: o,
    tasks: Array.from({ length: T }, (_, t) => `t${t + 1}`),
    userId,
    itemId,
    userGroup,
    itemCat,
    hour,
    labels,
    weights: weights.map((w) => Array.from(w)),
    cosines,
    meanCosine: offMean(cosines),
    noiseCorrelations,
    meanNoiseCorrelation: noiseCorrelations ? offMean(noiseCorrelations) : null,
    biases,
    rates: o.rates,
    realisedRates: labels.map((l) => l.reduce((s, x) => s + x, 0) / N),
  };
}

/**
 * A filesystem-safe dataset name for the options, e.g. `synth-cos-0.5-s1`, or with label noise
 * `synth-cos0.9-noise3-ncos-0.9-s1` (noise 0: the name without it, as before the knob existed).
 */
export function synthName(o: Pick<SynthOptions, "cosine" | "seed" | "noise" | "noiseCosine">): string {
  const noise = o.noise ?? 0;
  return `synth-cos${o.cosine}${noise > 0 ? `-noise${noise}-ncos${o.noiseCosine ?? 0}` : ""}-s${o.seed}`;
}

/** The dataset spec for a generated log file `log` (relative to the spec's folder). */
export function synthSpec(data: SynthData, log = "synth.csv"): DatasetSpec & { description: string } {
  const o = data.options;
  return {
    name: synthName(o),
    description:
      `mtlcraft synth: ${data.tasks.length} logistic tasks on shared hidden features (k=${o.hidden}), weight-vector cosine ${o.cosine}` +
      `${o.cosine < 0 ? " between tasks of different parity (|C| within a parity)" : ""}; rates ${o.rates.join(", ")}; ` +
      `${o.rows} rows, ${o.users} users, ${o.items} items, signal ${o.signal}, seed ${o.seed}` +
      (o.noise > 0
        ? `; unobserved per-row label noise on the logits, scale ${o.noise}, cosine ${o.noiseCosine} between tasks${o.noiseCosine < 0 ? " of different parity (|cosine| within a parity)" : ""}`
        : ""),
    log,
    userColumn: "user_id",
    itemColumn: "item_id",
    groupColumn: "user_id",
    categorical: ["user_id", "item_id", "user_group", "item_cat", "hour"],
    tasks: data.tasks.map((t) => ({ name: t, kind: "column" as const, column: t })),
    split: { kind: "fraction", ...SYNTH_SPLIT, seed: o.seed },
  };
}

/** The log as CSV text (header row, then one line per row). */
export function synthCsv(data: SynthData): string {
  const T = data.tasks.length;
  const lines = [["user_id", "item_id", "user_group", "item_cat", "hour", ...data.tasks].join(",")];
  for (let r = 0; r < data.userId.length; r++) {
    let line = `${data.userId[r]},${data.itemId[r]},${data.userGroup[r]},${data.itemCat[r]},${data.hour[r]}`;
    for (let t = 0; t < T; t++) line += data.labels[t]![r] ? ",1" : ",0";
    lines.push(line);
  }
  return lines.join("\n") + "\n";
}

export interface SynthFiles {
  /** The spec file (`<dir>/synth.json`): pass it as the dataset. */
  spec: string;
  csv: string;
  /** What was generated: weights, cosines, biases, target and realised rates (`<dir>/synth.meta.json`). */
  meta: string;
  data: SynthData;
}

/** Generates the dataset and writes `<dir>/synth.csv`, `synth.json` (spec) and `synth.meta.json`. */
export function writeSynthDataset(dir: string, opts: SynthOptions): SynthFiles {
  const data = generateSynth(opts);
  const root = resolve(dir);
  mkdirSync(root, { recursive: true });
  const csv = join(root, "synth.csv");
  const spec = join(root, "synth.json");
  const meta = join(root, "synth.meta.json");
  writeFileAtomic(csv, synthCsv(data));
  writeFileAtomic(spec, JSON.stringify(synthSpec(data), null, 2) + "\n");
  const { options, tasks, weights, cosines, meanCosine, noiseCorrelations, meanNoiseCorrelation, biases, rates, realisedRates } = data;
  // Without noise the file is as before the noise knob (no noise keys at all).
  const metaJson =
    options.noise > 0
      ? { options, tasks, weights, cosines, meanCosine, noiseCorrelations, meanNoiseCorrelation, biases, rates, realisedRates }
      : { options: Object.fromEntries(Object.entries(options).filter(([k]) => k !== "noise" && k !== "noiseCosine")), tasks, weights, cosines, meanCosine, biases, rates, realisedRates };
  writeFileSync(meta, JSON.stringify(metaJson, null, 2) + "\n");
  return { spec, csv, meta, data };
}

/** A short text summary (CLI output). */
export function describeSynth(data: SynthData): string {
  const o = data.options;
  const f = (x: number, d = 4) => x.toFixed(d);
  const lines = [
    `${o.rows} rows, ${o.users} users, ${o.items} items, k=${o.hidden}, signal ${o.signal}, seed ${o.seed}`,
    `weight-vector cosine C=${o.cosine} (mean over pairs ${f(data.meanCosine)})`,
    ...(o.noise > 0
      ? [`label noise σ=${o.noise}, noise cosine ρ=${o.noiseCosine} (realised correlation: mean over pairs ${f(data.meanNoiseCorrelation!)}, t1–t2 ${f(data.noiseCorrelations![0]![1]!)})`]
      : []),
    `task   target rate  realised  bias     cos with t1`,
    ...data.tasks.map((t, i) => `${t.padEnd(6)} ${f(data.rates[i]!).padStart(11)}  ${f(data.realisedRates[i]!).padStart(8)}  ${f(data.biases[i]!, 3).padStart(7)}  ${f(data.cosines[0]![i]!, 3).padStart(6)}`),
  ];
  return lines.join("\n");
}
