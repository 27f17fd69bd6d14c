/**
 * Executable form of every MethodProperty (src/balance/types.ts): `propertyViolation(entry,
 * property)` runs a method on random and adversarial inputs (T = 2..6; conflicting
 * gradients, norms spread over six orders of magnitude, a zero gradient, a near-opposite
 * pair) for a fresh method's first step and over several steps (stateful methods carry
 * their state), through `combine` and, where the entry has it, `weightsFromGram`, and
 * returns the first violation found, described, or null when the property held everywhere.
 * Used by test/balance/properties.test.ts for every registered method.
 */
import type { BalanceOutput, JsonValue, MethodEntry, MethodProperty } from "../../src/balance/types.ts";
import { Rng } from "../../src/util/rng.ts";

type Entry = MethodEntry<Record<string, unknown>>;

/** One input sequence: `steps` gradient sets over the same T tasks, with their losses. */
interface Scenario {
  label: string;
  grads: Float32Array[][];
  losses: Float64Array[];
}

const D = 24;
export const TASK_COUNTS = [2, 3, 4, 5, 6] as const;
export const STEPS = 4;

function gaussian(rng: Rng, d: number, scale: number): Float32Array {
  const g = new Float32Array(d);
  for (let k = 0; k < d; k++) g[k] = scale * rng.normal();
  return g;
}

/** The adversarial and random gradient sets for T tasks: one Scenario each, STEPS steps long. */
export function scenarios(T: number, seed: number): Scenario[] {
  const rng = new Rng(seed);
  const losses = (): Float64Array => Float64Array.from({ length: T }, () => 0.2 + rng.next());
  const make = (label: string, one: (step: number) => Float32Array[]): Scenario => {
    const grads: Float32Array[][] = [];
    const ls: Float64Array[] = [];
    for (let s = 0; s < STEPS; s++) {
      grads.push(one(s));
      ls.push(losses());
    }
    return { label: `T=${T} ${label}`, grads, losses: ls };
  };
  return [
    make("random", () => Array.from({ length: T }, () => gaussian(rng, D, 1))),
    make("norms 1e-3..1e3", () => Array.from({ length: T }, (_, i) => gaussian(rng, D, 10 ** (((i * 6) / Math.max(1, T - 1)) - 3)))),
    make("conflicting", () => {
      // every task fights task 0: g_i = -a_i g_0 + small noise, with different norms
      const g0 = gaussian(rng, D, 1);
      return [g0, ...Array.from({ length: T - 1 }, (_, i) => {
        const n = gaussian(rng, D, 0.3);
        const a = 0.5 + i;
        for (let k = 0; k < D; k++) n[k] = n[k]! - a * g0[k]!;
        return n;
      })];
    }),
    make("near-opposite pair", () => {
      const gs = Array.from({ length: T }, () => gaussian(rng, D, 1));
      for (let k = 0; k < D; k++) gs[1]![k] = -1.01 * gs[0]![k]! + 1e-3 * rng.normal();
      return gs;
    }),
    make("a zero gradient", () => {
      const gs = Array.from({ length: T }, (_, i) => gaussian(rng, D, 1 + i));
      gs[T - 1]!.fill(0);
      return gs;
    }),
  ];
}

/** Run a fresh method over a scenario (transformed by `tf`), one output per step; the rng is shared across steps like the trainer's. */
function runCombine(entry: Entry, sc: Scenario, opts: { seed?: number; perm?: readonly number[]; scale?: number } = {}): { outs: BalanceOutput[]; rngUntouched: boolean[] } {
  const T = sc.grads[0]!.length;
  const m = entry.create(T);
  const rng = new Rng(opts.seed ?? 17);
  const outs: BalanceOutput[] = [];
  const rngUntouched: boolean[] = [];
  for (let s = 0; s < sc.grads.length; s++) {
    let grads = sc.grads[s]!;
    let losses = sc.losses[s]!;
    if (opts.perm) {
      grads = opts.perm.map((p) => grads[p]!);
      losses = Float64Array.from(opts.perm, (p) => losses[p]!);
    }
    if (opts.scale !== undefined) grads = grads.map((g) => Float32Array.from(g, (x) => x * opts.scale!));
    const before = JSON.stringify(rng.getState());
    outs.push(m.combine({ grads, losses, step: s, epoch: 0, rng }));
    rngUntouched.push(JSON.stringify(rng.getState()) === before);
  }
  return { outs, rngUntouched };
}

function gramOfRows(rows: readonly Float32Array[]): Float64Array {
  const T = rows.length;
  const G = new Float64Array(T * T);
  for (let i = 0; i < T; i++) {
    for (let j = i; j < T; j++) {
      let s = 0;
      for (let k = 0; k < rows[i]!.length; k++) s += rows[i]![k]! * rows[j]![k]!;
      G[i * T + j] = s;
      G[j * T + i] = s;
    }
  }
  return G;
}

/** weightsFromGram over a scenario (state carried across steps); the Gramian is computed here in float64. */
function runGram(entry: Entry, sc: Scenario, opts: { seed?: number; perm?: readonly number[]; scale?: number } = {}): { coeffs: Float64Array[]; grams: Float64Array[]; rngUntouched: boolean[] } {
  const rng = new Rng(opts.seed ?? 17);
  let state: JsonValue | undefined;
  const coeffs: Float64Array[] = [];
  const grams: Float64Array[] = [];
  const rngUntouched: boolean[] = [];
  for (let s = 0; s < sc.grads.length; s++) {
    let grads = sc.grads[s]!;
    let losses = sc.losses[s]!;
    if (opts.perm) {
      grads = opts.perm.map((p) => grads[p]!);
      losses = Float64Array.from(opts.perm, (p) => losses[p]!);
    }
    const c2 = (opts.scale ?? 1) ** 2;
    const G = gramOfRows(grads).map((x) => x * c2);
    const before = JSON.stringify(rng.getState());
    const r = entry.weightsFromGram!(G, undefined, { losses, step: s, epoch: 0, rng, ...(state !== undefined ? { state } : {}) });
    rngUntouched.push(JSON.stringify(rng.getState()) === before);
    state = r.state;
    coeffs.push(r.coeffs);
    grams.push(G);
  }
  return { coeffs, grams, rngUntouched };
}

function norm(a: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * a[i]!;
  return Math.sqrt(s);
}

/** ‖a - c·b‖ relative to max(‖a‖, ‖c·b‖), 0 when both are (near) zero. */
function relDiff(a: ArrayLike<number>, b: ArrayLike<number>, c = 1): number {
  let d = 0;
  for (let i = 0; i < a.length; i++) d += (a[i]! - c * b[i]!) ** 2;
  const scale = Math.max(norm(a), Math.abs(c) * norm(b));
  return scale < 1e-30 ? 0 : Math.sqrt(d) / scale;
}

/** Σ_i |c_i| ‖g_i‖: the size of Σ c_i g_i before cancellation (what float32 rounding is relative to). */
function combinedMass(grads: readonly Float32Array[], c: ArrayLike<number>): number {
  let m = 0;
  grads.forEach((g, i) => (m += Math.abs(c[i]!) * norm(g)));
  return m;
}

/** Relative tolerance of float32 directions (and of methods' iterative solvers, which stop at ~1e-6). */
const REL_TOL = 2e-4;
/** Scale factors: not powers of two, so float32 rounding is exercised too. */
const SCALES = [0.37, 5.3];

const PERMS: Record<number, number[]> = { 2: [1, 0], 3: [2, 0, 1], 4: [2, 0, 3, 1], 5: [4, 2, 0, 3, 1], 6: [5, 3, 1, 0, 4, 2] };

type Check = (entry: Entry, sc: Scenario, path: "combine" | "weightsFromGram") => string | null;

const at = (sc: Scenario, path: string, s: number): string => `${path}, ${sc.label}, step ${s}`;

const CHECKS: Record<MethodProperty, Check> = {
  "permutation-equivariant": (entry, sc, path) => {
    const T = sc.grads[0]!.length;
    const perm = PERMS[T]!;
    if (path === "combine") {
      const a = runCombine(entry, sc).outs;
      const b = runCombine(entry, sc, { perm }).outs;
      for (let s = 0; s < a.length; s++) {
        const e = relDiff(b[s]!.direction, a[s]!.direction);
        if (e > REL_TOL) return `${at(sc, path, s)}: permuting the tasks changed the direction by ${e.toExponential(2)} (relative)`;
        const permuted = Float64Array.from(perm, (p) => a[s]!.coeffs[p]!);
        const ec = relDiff(b[s]!.coeffs, permuted);
        if (ec > REL_TOL) return `${at(sc, path, s)}: coefficients not permuted with the tasks (off by ${ec.toExponential(2)})`;
      }
    } else {
      const a = runGram(entry, sc).coeffs;
      const b = runGram(entry, sc, { perm }).coeffs;
      for (let s = 0; s < a.length; s++) {
        const ec = relDiff(b[s]!, Float64Array.from(perm, (p) => a[s]![p]!));
        if (ec > REL_TOL) return `${at(sc, path, s)}: coefficients not permuted with the tasks (off by ${ec.toExponential(2)})`;
      }
    }
    return null;
  },
  "non-conflicting": (entry, sc, path) => noConflict(entry, sc, path),
  "non-conflicting-two-tasks": (entry, sc, path) => (sc.grads[0]!.length === 2 ? noConflict(entry, sc, path) : null),
  "scale-equivariant": (entry, sc, path) => scaleCheck(entry, sc, path, "equivariant"),
  "scale-invariant": (entry, sc, path) => scaleCheck(entry, sc, path, "invariant"),
  "linear-combination": (entry, sc, path) => {
    if (path === "weightsFromGram") return null; // coefficients are all the Gramian form returns
    const { outs } = runCombine(entry, sc);
    for (let s = 0; s < outs.length; s++) {
      const want = new Float64Array(D);
      sc.grads[s]!.forEach((g, i) => g.forEach((x, k) => (want[k] = want[k]! + outs[s]!.coeffs[i]! * x)));
      // float32 rounding bound: relative to Σ|c_i|‖g_i‖ (the direction itself may cancel to ~0)
      let d2 = 0;
      for (let k = 0; k < D; k++) d2 += (outs[s]!.direction[k]! - want[k]!) ** 2;
      const e = Math.sqrt(d2) / Math.max(1e-300, combinedMass(sc.grads[s]!, outs[s]!.coeffs));
      if (e > 1e-6) return `${at(sc, path, s)}: direction differs from Σ coeffs_i g_i by ${e.toExponential(2)} (relative)`;
    }
    return null;
  },
  deterministic: (entry, sc, path) => {
    const a = path === "combine" ? runCombine(entry, sc) : runGram(entry, sc);
    const b = path === "combine" ? runCombine(entry, sc, { seed: 99 }) : runGram(entry, sc, { seed: 99 });
    const ca = "outs" in a ? a.outs.map((o) => o.coeffs) : a.coeffs;
    const cb = "outs" in b ? b.outs.map((o) => o.coeffs) : b.coeffs;
    for (let s = 0; s < ca.length; s++) {
      if (!a.rngUntouched[s]) return `${at(sc, path, s)}: drew from the generator`;
      if (!ca[s]!.every((x, i) => x === cb[s]![i])) return `${at(sc, path, s)}: another generator seed gave other coefficients`;
      if ("outs" in a && "outs" in b && !a.outs[s]!.direction.every((x, k) => x === b.outs[s]!.direction[k])) return `${at(sc, path, s)}: another generator seed gave another direction`;
    }
    return null;
  },
};

/** <direction, g_i> >= 0 for every task i and step, up to rounding (see the tolerances below). */
function noConflict(entry: Entry, sc: Scenario, path: "combine" | "weightsFromGram"): string | null {
  if (path === "combine") {
    const { outs } = runCombine(entry, sc);
    for (let s = 0; s < outs.length; s++) {
      const dir = outs[s]!.direction;
      const mass = combinedMass(sc.grads[s]!, outs[s]!.coeffs);
      for (const [i, g] of sc.grads[s]!.entries()) {
        let dg = 0;
        for (let k = 0; k < g.length; k++) dg += dir[k]! * g[k]!;
        // float32 rounding and the solvers' stopping rules (MGDA's Frank-Wolfe stops at an L1 change
        // of 1e-5) act relative to Σ|c_j|‖g_j‖, not to ‖d‖, which may cancel to ~0
        const tol = (1e-5 * norm(dir) + 1e-5 * mass) * norm(g);
        if (dg < -tol) return `${at(sc, path, s)}: <direction, g_${i}> = ${dg.toExponential(3)} < 0 (cosine ${(dg / (norm(dir) * norm(g))).toExponential(2)})`;
      }
    }
  } else {
    const { coeffs, grams } = runGram(entry, sc);
    for (let s = 0; s < coeffs.length; s++) {
      const c = coeffs[s]!;
      const G = grams[s]!;
      const T = c.length;
      let cGc = 0;
      for (let i = 0; i < T; i++) for (let j = 0; j < T; j++) cGc += c[i]! * G[i * T + j]! * c[j]!;
      for (let i = 0; i < T; i++) {
        let gc = 0;
        for (let j = 0; j < T; j++) gc += G[i * T + j]! * c[j]!;
        let mass = 0;
        for (let j = 0; j < T; j++) mass += Math.abs(c[j]!) * Math.sqrt(G[j * T + j]!);
        const tol = 1e-5 * (Math.sqrt(Math.max(0, cGc)) + mass) * Math.sqrt(G[i * T + i]!);
        if (gc < -tol) return `${at(sc, path, s)}: <direction, g_${i}> = (G c)_${i} = ${gc.toExponential(3)} < 0`;
      }
    }
  }
  return null;
}

function scaleCheck(entry: Entry, sc: Scenario, path: "combine" | "weightsFromGram", kind: "equivariant" | "invariant"): string | null {
  for (const c of SCALES) {
    // the direction of the scaled input should be c·d (equivariant) or d (invariant); in the
    // Gramian form direction = Σ coeffs_i (c g_i), so the coefficients must be coeffs (resp. coeffs / c)
    if (path === "combine") {
      const a = runCombine(entry, sc).outs;
      const b = runCombine(entry, sc, { scale: c }).outs;
      for (let s = 0; s < a.length; s++) {
        const e = relDiff(b[s]!.direction, a[s]!.direction, kind === "equivariant" ? c : 1);
        if (e > REL_TOL) return `${at(sc, path, s)}: scaling every gradient by ${c} gave a direction ${e.toExponential(2)} (relative) away from ${kind === "equivariant" ? `${c}·d` : "d"}`;
      }
    } else {
      const a = runGram(entry, sc).coeffs;
      const b = runGram(entry, sc, { scale: c }).coeffs;
      for (let s = 0; s < a.length; s++) {
        const e = relDiff(b[s]!, a[s]!, kind === "equivariant" ? 1 : 1 / c);
        if (e > REL_TOL) return `${at(sc, path, s)}: scaling the Gramian by ${c}² moved the coefficients ${e.toExponential(2)} (relative) from ${kind === "equivariant" ? "c" : "c / scale"}`;
      }
    }
  }
  return null;
}

/** The first violation of `property` by `entry` over every scenario, T = 2..6 and both paths, or null. */
export function propertyViolation(entry: Entry, property: MethodProperty, seed = 1): string | null {
  const check = CHECKS[property];
  for (const T of TASK_COUNTS) {
    for (const sc of scenarios(T, seed * 100 + T)) {
      // step 0 is a fresh method's first step; later steps carry the method's state
      for (const path of ["combine", "weightsFromGram"] as const) {
        if (path === "weightsFromGram" && entry.weightsFromGram === undefined) continue;
        const v = check(entry, sc, path);
        if (v !== null) return v;
      }
    }
  }
  return null;
}
