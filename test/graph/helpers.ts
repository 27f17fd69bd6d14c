/**
 * Shared helpers of the graph-layer tests: a seeded RNG, input generators that
 * keep values away from kinks, running a `Graph` in ORT's CPU provider, and a
 * central-difference checker of `grad` against the same ORT session.
 */
import assert from "node:assert/strict";
import { Graph, type DType, type FloatDType, type Tensor } from "../../src/graph/graph.ts";
import { grad } from "../../src/graph/autodiff.ts";
import { serialize, type GraphOutput } from "../../src/graph/onnx.ts";
import { configureEngine, createSession, ort } from "../../src/engine/ort.ts";

// The test machine's cores are shared: one intra-op thread is plenty for these tiny graphs.
configureEngine({ threads: 1, device: "cpu" });

export type Rng = () => number;

/** mulberry32: deterministic uniform [0, 1). */
export function rng(seed: number): Rng {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A stable seed from a string (FNV-1a). */
export function seedOf(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

export type Gen = (r: Rng) => number;

/** Uniform in [lo, hi). */
export const uniform =
  (lo: number, hi: number): Gen =>
  (r) =>
    lo + (hi - lo) * r();

/** Uniform in [lo, hi) but at least `margin` away from every point in `kinks`. */
export const awayFrom =
  (lo: number, hi: number, kinks: readonly number[], margin = 0.05): Gen =>
  (r) => {
    for (;;) {
      const v = lo + (hi - lo) * r();
      if (kinks.every((k) => Math.abs(v - k) >= margin)) return v;
    }
  };

/** A magnitude in [lo, hi) with a random sign (away from 0). */
export const signed =
  (lo: number, hi: number): Gen =>
  (r) =>
    (r() < 0.5 ? -1 : 1) * (lo + (hi - lo) * r());

/**
 * Values on the grid offset + 0.1 k, k in [-20, 20]: two generators with
 * offsets 0 and 0.05 never produce values closer than 0.05 (no Max/Min ties).
 */
export const grid =
  (offset: number): Gen =>
  (r) =>
    Math.floor(r() * 41 - 20) * 0.1 + offset;

export function numelOf(shape: readonly number[]): number {
  return shape.reduce((p, q) => p * q, 1);
}

export function fill(shape: readonly number[], gen: Gen, r: Rng): number[] {
  return Array.from({ length: numelOf(shape) }, () => gen(r));
}

export function ortTensor(dtype: DType, values: ArrayLike<number>, shape: readonly number[]): ort.Tensor {
  const dims = [...shape];
  switch (dtype) {
    case "float64":
      return new ort.Tensor("float64", Float64Array.from(values), dims);
    case "float32":
      return new ort.Tensor("float32", Float32Array.from(values), dims);
    case "int64":
      return new ort.Tensor("int64", BigInt64Array.from(Array.from(values, (v) => BigInt(v))), dims);
    case "bool":
      return new ort.Tensor("bool", Uint8Array.from(values, (v) => (v ? 1 : 0)), dims);
  }
}

/** Serialize `outputs`, run them once with `feeds` (by input name), return each output as numbers + dims. */
export async function runGraph(
  g: Graph,
  outputs: readonly GraphOutput[],
  feeds: Record<string, ArrayLike<number>>,
): Promise<Record<string, { data: number[]; dims: number[] }>> {
  const m = serialize(g, outputs);
  const s = await createSession(m.bytes);
  try {
    const f: Record<string, ort.Tensor> = {};
    for (const name of m.inputs) {
      const gi = g.inputs.find((i) => i.name === name)!;
      const v = feeds[name];
      assert.ok(v, `no feed for input ${name}`);
      f[name] = ortTensor(gi.tensor.dtype, v, gi.tensor.shape);
    }
    const r = await s.run(f);
    const out: Record<string, { data: number[]; dims: number[] }> = {};
    for (const o of outputs) {
      const t = r[o.name]!;
      out[o.name] = { data: Array.from(t.data as ArrayLike<number | bigint | boolean>, (v) => Number(v)), dims: [...t.dims] };
    }
    return out;
  } finally {
    await s.release();
  }
}

/** A fixed random coefficient tensor C and J = sum(out * C) (a scalar in which every output element matters). */
export function contract(g: Graph, out: Tensor, r: Rng): Tensor {
  const c = g.constant(fill(out.shape, uniform(-1, 1), r), out.shape, out.dtype);
  return g.reduceSum(
    g.mul(out, c),
    out.shape.map((_, i) => i),
    false,
  );
}

export interface Tolerance {
  /** Central-difference step. */
  h: number;
  atol: number;
  rtol: number;
}

export const F64_TOL: Tolerance = { h: 1e-6, atol: 1e-7, rtol: 1e-6 };
/** float32 (no double kernel): a larger step and a looser tolerance. */
export const F32_TOL: Tolerance = { h: 1e-2, atol: 2e-4, rtol: 1e-3 };

export interface FdReport {
  /** Per objective, per wrt input: the largest |numeric| gradient seen (to show the check was not vacuous). */
  maxAbsNum: number[][];
  checked: number;
}

/**
 * Check analytic gradients against central differences.
 *
 * `objectives[k]` is a scalar J_k with its gradients `grads[k][i]` w.r.t.
 * `wrt[i]` (from `grad`). Everything is serialized into one model and one
 * session, run once for the analytic values, then re-run with `wrt[i]`'s feed
 * perturbed by ±h at up to `maxCoords` random coordinates (all of them for
 * small inputs). A null gradient must be numerically zero.
 */
export async function fdCheck(
  g: Graph,
  objectives: readonly Tensor[],
  wrt: readonly Tensor[],
  grads: readonly (readonly (Tensor | null)[])[],
  feeds: Record<string, number[]>,
  tol: Tolerance,
  r: Rng,
  label: string,
  maxCoords = 24,
): Promise<FdReport> {
  const names = wrt.map((t) => g.inputById.get(t.id)?.name);
  names.forEach((n, i) => assert.ok(n, `${label}: wrt[${i}] is not a graph input`));
  const outs: GraphOutput[] = objectives.map((J, k) => ({ name: `J${k}`, tensor: J }));
  grads.forEach((gs, k) =>
    gs.forEach((t, i) => {
      if (t) {
        assert.deepEqual(t.shape, wrt[i]!.shape, `${label}: gradient shape of ${names[i]}`);
        assert.equal(t.dtype, wrt[i]!.dtype, `${label}: gradient dtype of ${names[i]}`);
        outs.push({ name: `d${k}_${names[i]!}`, tensor: t });
      }
    }),
  );
  const m = serialize(g, outs);
  const s = await createSession(m.bytes);
  const report: FdReport = { maxAbsNum: objectives.map(() => wrt.map(() => 0)), checked: 0 };
  try {
    const inputOf = new Map(g.inputs.map((gi) => [gi.name, gi.tensor]));
    const makeFeeds = (over?: { name: string; values: number[] }): Record<string, ort.Tensor> => {
      const f: Record<string, ort.Tensor> = {};
      for (const name of m.inputs) {
        const t = inputOf.get(name)!;
        const v = over && over.name === name ? over.values : feeds[name];
        assert.ok(v, `${label}: no feed for input ${name}`);
        f[name] = ortTensor(t.dtype, v, t.shape);
      }
      return f;
    };
    const base = await s.run(makeFeeds());
    for (let i = 0; i < wrt.length; i++) {
      const x = wrt[i]!;
      const name = names[i]!;
      if (!m.inputs.includes(name)) {
        // pruned away: no objective depends on it, so every gradient must be null
        grads.forEach((gs, k) => assert.equal(gs[i], null, `${label}: J${k} does not read ${name}, yet its gradient is not null`));
        continue;
      }
      const v0 = feeds[name]!;
      const n = v0.length;
      const coords = [...Array(n).keys()];
      for (let j = n - 1; j > 0; j--) {
        const q = Math.floor(r() * (j + 1));
        [coords[j], coords[q]] = [coords[q]!, coords[j]!];
      }
      const round = x.dtype === "float32" ? Math.fround : (v: number) => v;
      for (const c of coords.slice(0, Math.min(n, maxCoords))) {
        const vp = [...v0];
        const vm = [...v0];
        vp[c] = round(v0[c]! + tol.h);
        vm[c] = round(v0[c]! - tol.h);
        const rp = await s.run(makeFeeds({ name, values: vp }));
        const rm = await s.run(makeFeeds({ name, values: vm }));
        objectives.forEach((_, k) => {
          const jp = Number((rp[`J${k}`]!.data as FloatArrayLike)[0]);
          const jm = Number((rm[`J${k}`]!.data as FloatArrayLike)[0]);
          const num = (jp - jm) / (vp[c]! - vm[c]!);
          const gt = grads[k]![i];
          const an = gt ? Number((base[`d${k}_${name}`]!.data as FloatArrayLike)[c]) : 0;
          const err = Math.abs(an - num);
          const bound = tol.atol + tol.rtol * Math.abs(num);
          assert.ok(
            err <= bound,
            `${label}: d J${k} / d ${name}[${c}]: analytic ${an}${gt ? "" : " (null gradient)"} vs central difference ${num} (|diff| ${err.toExponential(2)} > ${bound.toExponential(2)})`,
          );
          report.maxAbsNum[k]![i] = Math.max(report.maxAbsNum[k]![i]!, Math.abs(num));
          report.checked++;
        });
      }
    }
  } finally {
    await s.release();
  }
  return report;
}

type FloatArrayLike = ArrayLike<number>;

export interface InputSpec {
  name: string;
  shape: number[];
  gen: Gen;
  dtype?: FloatDType;
  /** Exact values instead of `gen` (e.g. points where a subgradient convention matters). */
  values?: number[];
  /** Differentiate w.r.t. this input (default true). */
  diff?: boolean;
}

/** Build `inputs` in a fresh graph, J = sum(build(...) * C), grad, and check it by central differences. */
export async function checkOp(spec: {
  name: string;
  dtype?: FloatDType;
  inputs: readonly InputSpec[];
  build: (g: Graph, xs: Tensor[]) => Tensor;
  tol?: Tolerance;
  /** ONNX ops that must appear among the forward nodes (so the case tests what it says). */
  ops?: readonly string[];
}): Promise<FdReport> {
  const dtype = spec.dtype ?? "float64";
  const g = new Graph(dtype);
  const r = rng(seedOf(spec.name));
  const xs = spec.inputs.map((s) => g.input(s.name, s.shape, s.dtype ?? dtype));
  const out = spec.build(g, xs);
  const forwardOps = new Set(g.nodes.map((n) => n.op));
  for (const op of spec.ops ?? []) assert.ok(forwardOps.has(op), `${spec.name}: the forward graph has no ${op} node (ops: ${[...forwardOps].join(", ")})`);
  const J = contract(g, out, r);
  const wrt = xs.filter((_, i) => spec.inputs[i]!.diff !== false);
  const gs = grad(g, [J], wrt);
  gs.forEach((t, i) => assert.ok(t, `${spec.name}: no gradient for ${g.inputById.get(wrt[i]!.id)!.name}`));
  const feeds: Record<string, number[]> = {};
  spec.inputs.forEach((s) => {
    feeds[s.name] = s.values ? [...s.values] : fill(s.shape, s.gen, r);
    assert.equal(feeds[s.name]!.length, numelOf(s.shape), `${spec.name}: ${s.name} has the wrong number of values`);
  });
  const rep = await fdCheck(g, [J], wrt, [gs], feeds, spec.tol ?? (dtype === "float64" ? F64_TOL : F32_TOL), r, spec.name);
  // not vacuous: every differentiable input moves J
  rep.maxAbsNum[0]!.forEach((v, i) => assert.ok(v > 1e-3, `${spec.name}: J does not move with ${g.inputById.get(wrt[i]!.id)!.name} (max |dJ| ${v})`));
  return rep;
}
