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
 * Labels. logit_t = signal · ⟨w_t, z⟩ + b_t, label ~ Bernoulli(σ(logit_t)); b_t is solved
 * (bisection) so that the mean of σ(logit_t) over the generated rows equals the target rate
 * r_t, so the realised rate is r_t up to binomial noise. Default rates 0.5, 0.25, 0.15, 0.02,
 * 0.005, 0.002 follow KuaiRand's ev, lv, cv, like, follow, forward (0.5 .. 0.001).
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
  /** Logit scale: logit = signal · ⟨w_t, z⟩ + b_t (default 2). */
  signal?: number;
}

export const SYNTH_DEFAULTS = Object.freeze({
  rows: 60000,
  users: 1000,
  items: 500,
  hidden: 8,
  rates: Object.freeze([0.5, 0.25, 0.15, 0.02, 0.005, 0.002]) as readonly number[],
  signal: 2,
});

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
  return {
    cosine: o.cosine,
    seed: checkInt("seed", o.seed, 0, 2 ** 32 - 1),
    rows: checkInt("rows", o.rows ?? SYNTH_DEFAULTS.rows, 10, 50_000_000),
    users: checkInt("users", o.users ?? SYNTH_DEFAULTS.users, 1, 10_000_000),
    items: checkInt("items", o.items ?? SYNTH_DEFAULTS.items, 1, 10_000_000),
    hidden,
    rates,
    signal,
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

/** The task weight vectors w_1..w_T (unit norm) for cosine C: see the file comment. */
export function taskWeights(tasks: number, k: number, cosine: number, rng: Rng): Float64Array[] {
  const [u, ...v] = orthonormal(tasks + 1, k, rng);
  const a = Math.sqrt(Math.abs(cosine));
  const b = Math.sqrt(1 - Math.abs(cosine));
  return v.map((vt, t) => {
    const s = cosine < 0 && t % 2 === 1 ? -1 : 1;
    return Float64Array.from({ length: k }, (_, i) => s * a * u![i]! + b * vt[i]!);
  });
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
  const biases = o.rates.map((rate, t) => calibrateBias(scores[t]!, rate));
  const labels = Array.from({ length: T }, () => new Uint8Array(N));
  for (let r = 0; r < N; r++) {
    for (let t = 0; t < T; t++) labels[t]![r] = rngY.next() < sigmoid(scores[t]![r]! + biases[t]!) ? 1 : 0;
  }
  const cosines = cosineMatrix(weights);
  let off = 0;
  for (let a = 0; a < T; a++) for (let b = a + 1; b < T; b++) off += cosines[a]![b]!;
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
    meanCosine: off / ((T * (T - 1)) / 2),
    biases,
    rates: o.rates,
    realisedRates: labels.map((l) => l.reduce((s, x) => s + x, 0) / N),
  };
}

/** A filesystem-safe dataset name for the options, e.g. `synth-cos-0.5-s1`. */
export function synthName(o: Pick<SynthOptions, "cosine" | "seed">): string {
  return `synth-cos${o.cosine}-s${o.seed}`;
}

/** The dataset spec for a generated log file `log` (relative to the spec's folder). */
export function synthSpec(data: SynthData, log = "synth.csv"): DatasetSpec & { description: string } {
  const o = data.options;
  return {
    name: synthName(o),
    description:
      `mtlcraft synth: ${data.tasks.length} logistic tasks on shared hidden features (k=${o.hidden}), weight-vector cosine ${o.cosine}` +
      `${o.cosine < 0 ? " between tasks of different parity (|C| within a parity)" : ""}; rates ${o.rates.join(", ")}; ` +
      `${o.rows} rows, ${o.users} users, ${o.items} items, signal ${o.signal}, seed ${o.seed}`,
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
  const { options, tasks, weights, cosines, meanCosine, biases, rates, realisedRates } = data;
  writeFileSync(meta, JSON.stringify({ options, tasks, weights, cosines, meanCosine, biases, rates, realisedRates }, null, 2) + "\n");
  return { spec, csv, meta, data };
}

/** A short text summary (CLI output). */
export function describeSynth(data: SynthData): string {
  const o = data.options;
  const f = (x: number, d = 4) => x.toFixed(d);
  const lines = [
    `${o.rows} rows, ${o.users} users, ${o.items} items, k=${o.hidden}, signal ${o.signal}, seed ${o.seed}`,
    `weight-vector cosine C=${o.cosine} (mean over pairs ${f(data.meanCosine)})`,
    `task   target rate  realised  bias     cos with t1`,
    ...data.tasks.map((t, i) => `${t.padEnd(6)} ${f(data.rates[i]!).padStart(11)}  ${f(data.realisedRates[i]!).padStart(8)}  ${f(data.biases[i]!, 3).padStart(7)}  ${f(data.cosines[0]![i]!, 3).padStart(6)}`),
  ];
  return lines.join("\n");
}
