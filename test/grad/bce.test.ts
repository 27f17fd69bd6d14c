/**
 * The BCE head, run by the engine in float64 (ONNX Runtime's CPU provider
 * computes log/exp in double precision):
 * - the loss equals the float64 JS formula on the model's own logits (~1e-12);
 * - the BCE gradient equals the chain rule through the network: the linear
 *   objective with c_t[r] = (sigmoid(z_t[r]) - y_t[r]) / B (eval and train mode);
 * - extreme logits give a finite loss and gradient (the graph's bceWithLogits);
 * - "sum" cotangents equal the sum of the per-task gradients, and "weighted"
 *   cotangents equal sum_t w_t * (per-task gradient), dense and embedding rows.
 *
 * perTaskGrads returns views of the program's output buffers (and of the
 * workspace's row buffers): results are copied before the next run.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { createModel, MODEL_NAMES, type Model } from "../../src/model/index.ts";
import { GradWorkspace, logitsOf, lossesOnly, perTaskGrads, type PerTaskGrads } from "../../src/grad/pertask.ts";
import type { Mode } from "../../src/model/types.ts";
import { Graph, type FloatArray, type FloatDType } from "../../src/graph/graph.ts";
import { grad } from "../../src/graph/autodiff.ts";
import { serialize } from "../../src/graph/onnx.ts";
import { createSession, ort } from "../../src/engine/ort.ts";
import { Rng } from "../../src/util/rng.ts";
import { TINY_FIELDS, TINY_OPTS, randomBatch } from "./fixtures.ts";

const T = 3;

type Grads = Pick<PerTaskGrads, "losses" | "dense" | "emb">;

/** Owned copy of a perTaskGrads result (its arrays are reused by the next run). */
function copy(g: PerTaskGrads): Grads {
  return { losses: g.losses.slice(), dense: g.dense.map((r) => r.map((a) => a?.slice() ?? null)), emb: g.emb.map((r) => r.map((a) => a?.slice() ?? null)) };
}

/** Random biases: no pre-activation sits on a ReLU kink (as the finite-difference test). */
function makeModel(name: string, extra: Record<string, unknown> = {}): Model {
  const m = createModel(name, { fields: TINY_FIELDS, numTasks: T }, { ...TINY_OPTS, dtype: "float64", embInitStd: 0.5, ...extra });
  const rng = new Rng(99);
  for (const p of m.dense) if (p.name.endsWith(".b")) for (let i = 0; i < p.data.length; i++) p.data[i] = 0.3 * rng.normal();
  return m;
}

for (const mode of ["eval", "train"] as Mode[]) {
  test(`BCE value and gradient match the float64 formula / chain rule (mmoe, ${mode} mode)`, async () => {
    const model = makeModel("mmoe", { dropout: 0.2 });
    const ws = new GradWorkspace(model);
    const batch = randomBatch(TINY_FIELDS, T, 9, 4);
    const seed = 17;
    const z = await logitsOf(ws, batch, mode, seed);
    assert.ok(z[0] instanceof Float64Array, "float64 logits");
    const loss = await lossesOnly(ws, batch, mode, seed);
    const coef: Float64Array[] = [];
    for (let t = 0; t < T; t++) {
      let s = 0;
      const c = new Float64Array(batch.size);
      for (let r = 0; r < batch.size; r++) {
        const zr = z[t]![r]!;
        const y = batch.labels[t]![r]!;
        s += Math.max(zr, 0) - zr * y + Math.log1p(Math.exp(-Math.abs(zr)));
        c[r] = (1 / (1 + Math.exp(-zr)) - y) / batch.size;
      }
      const want = s / batch.size;
      assert.ok(Math.abs(want - loss[t]!) <= 1e-12 * (1 + Math.abs(want)), `task ${t}: loss ${loss[t]} vs ${want}`);
      coef.push(c);
    }
    const gb = copy(await perTaskGrads(ws, batch, { mode, seed }));
    gb.losses.forEach((l, t) => assert.ok(Math.abs(l - loss[t]!) <= 1e-14, `task ${t}: perTaskGrads loss ${l} vs lossesOnly ${loss[t]}`));
    const gl = await perTaskGrads(ws, batch, { mode, seed, objective: { kind: "linear", c: coef } });
    let n = 0;
    let nonzero = 0;
    const cmp = (a: FloatArray | null, b: FloatArray | null, what: string): void => {
      assert.equal(a === null, b === null, `${what}: null pattern`);
      if (!a || !b) return;
      assert.equal(a.length, b.length, `${what}: length`);
      for (let k = 0; k < a.length; k++) {
        assert.ok(Math.abs(a[k]! - b[k]!) <= 1e-13 + 1e-10 * Math.abs(b[k]!), `${what}[${k}]: BCE ${a[k]} vs chain rule ${b[k]}`);
        n++;
        if (Math.abs(b[k]!) > 1e-6) nonzero++;
      }
    };
    for (let t = 0; t < T; t++) {
      model.dense.forEach((p, i) => cmp(gb.dense[t]![i] ?? null, gl.dense[t]![i] ?? null, `task ${t} ${p.name}`));
      model.tables.forEach((_, s) => cmp(gb.emb[t]![s] ?? null, gl.emb[t]![s] ?? null, `task ${t} table set ${s}`));
    }
    assert.ok(n > 100, `only ${n} gradient entries compared`);
    assert.ok(nonzero > 50, `only ${nonzero} non-zero gradient entries: the check would be vacuous`);
  });
}

for (const dtype of ["float32", "float64"] as FloatDType[]) {
  test(`BCE is finite for extreme logits (${dtype})`, async () => {
    const g = new Graph(dtype);
    const z = g.input("z", [5]);
    const y = g.input("y", [5]);
    const loss = g.bceWithLogits(z, y);
    const [dz] = grad(g, [loss], [z]);
    assert.ok(dz);
    const ser = serialize(g, [
      { name: "loss", tensor: loss },
      { name: "dz", tensor: dz },
    ]);
    const session = await createSession(ser.bytes);
    try {
      const arr = (v: number[]) => (dtype === "float64" ? Float64Array.from(v) : Float32Array.from(v));
      const out = await session.run({ z: new ort.Tensor(dtype, arr([-200, -30, 0, 30, 200]), [5]), y: new ort.Tensor(dtype, arr([1, 0, 1, 1, 0]), [5]) });
      const v = Number((out.loss!.data as FloatArray)[0]);
      const gz = Array.from(out.dz!.data as FloatArray);
      assert.ok(Number.isFinite(v) && v > 0, `loss ${v}`);
      // softplus(200) - 200 + softplus(-30) + ln 2 + softplus(30) - 30 + softplus(200), over 5
      const want = (200 + Math.log1p(Math.exp(-30)) + Math.log(2) + Math.log1p(Math.exp(-30)) + 200) / 5;
      assert.ok(Math.abs(v - want) <= (dtype === "float64" ? 1e-12 : 1e-4), `loss ${v} vs ${want}`);
      for (const x of gz) assert.ok(Number.isFinite(x), `grad ${gz.join(", ")}`);
      const wantG = [-0.2, 1 / (1 + Math.exp(30)) / 5, -0.1, -1 / (1 + Math.exp(30)) / 5, 0.2];
      gz.forEach((x, i) => assert.ok(Math.abs(x - wantG[i]!) <= (dtype === "float64" ? 1e-15 : 1e-7), `grad[${i}] ${x} vs ${wantG[i]}`));
    } finally {
      await session.release();
    }
  });
}

/** sum_t w_t * per[t] over a (possibly null) array per task; null when every task's is null. */
function weightedSum(per: Grads, w: readonly number[], pick: (g: Grads, t: number) => FloatArray | null): Float64Array | null {
  let out: Float64Array | null = null;
  for (let t = 0; t < T; t++) {
    const a = pick(per, t);
    if (!a) continue;
    out ??= new Float64Array(a.length);
    assert.equal(a.length, out.length);
    for (let k = 0; k < a.length; k++) out[k] = out[k]! + w[t]! * a[k]!;
  }
  return out;
}

function checkCombined(model: Model, per: Grads, combined: PerTaskGrads, w: readonly number[], label: string): number {
  assert.equal(combined.dense.length, 1, `${label}: one cotangent`);
  assert.equal(combined.emb.length, 1, `${label}: one cotangent`);
  combined.losses.forEach((l, t) => assert.ok(Math.abs(l - per.losses[t]!) <= 1e-14, `${label}: loss ${t} ${l} vs ${per.losses[t]}`));
  let n = 0;
  const cmp = (got: FloatArray | null, want: Float64Array | null, what: string): void => {
    assert.ok(want, `${label} ${what}: no task has a gradient`);
    assert.ok(got, `${label} ${what}: missing gradient`);
    assert.equal(got.length, want.length, `${label} ${what}: length`);
    for (let k = 0; k < want.length; k++) {
      assert.ok(Math.abs(got[k]! - want[k]!) <= 1e-12 * (1 + Math.abs(want[k]!)), `${label} ${what}[${k}]: ${got[k]} vs sum_t w_t g_t ${want[k]}`);
      if (want[k] !== 0) n++;
    }
  };
  model.dense.forEach((p, i) =>
    cmp(
      combined.dense[0]![i] ?? null,
      weightedSum(per, w, (g, t) => g.dense[t]![i] ?? null),
      p.name,
    ),
  );
  model.tables.forEach((_, s) =>
    cmp(
      combined.emb[0]![s] ?? null,
      weightedSum(per, w, (g, t) => g.emb[t]![s] ?? null),
      `table set ${s}`,
    ),
  );
  return n;
}

test("'sum' cotangent equals the sum of the per-task gradients (ple, train mode)", async () => {
  const model = makeModel("ple", { dropout: 0.2 });
  const ws = new GradWorkspace(model);
  const batch = randomBatch(TINY_FIELDS, T, 8, 6);
  const per = copy(await perTaskGrads(ws, batch, { mode: "train", seed: 3 }));
  const sum = await perTaskGrads(ws, batch, { mode: "train", seed: 3, cotangents: "sum" });
  const n = checkCombined(model, per, sum, [1, 1, 1], "sum");
  assert.ok(n > 100, `only ${n} non-zero entries compared`);
});

for (const name of MODEL_NAMES) {
  test(`'weighted' cotangent equals sum_t w_t * per-task gradient (float64, 1e-12): ${name}`, async () => {
    const model = makeModel(name, { dropout: 0.2 });
    const ws = new GradWorkspace(model);
    const batch = randomBatch(TINY_FIELDS, T, 8, 12);
    const w = [0.35, -1.7, 2.25];
    const per = copy(await perTaskGrads(ws, batch, { mode: "train", seed: 5 }));
    const weighted = await perTaskGrads(ws, batch, { mode: "train", seed: 5, cotangents: "weighted", weights: w });
    const n = checkCombined(model, per, weighted, w, `${name} weighted`);
    assert.ok(n > 20, `only ${n} non-zero entries compared`);
  });
}

test("'weighted' cotangent refuses missing or non-finite weights", async () => {
  const model = makeModel("mmoe");
  const ws = new GradWorkspace(model);
  const batch = randomBatch(TINY_FIELDS, T, 8, 12);
  await assert.rejects(perTaskGrads(ws, batch, { mode: "train", seed: 5, cotangents: "weighted" }), /weights\[0\]/);
  await assert.rejects(perTaskGrads(ws, batch, { mode: "train", seed: 5, cotangents: "weighted", weights: [1, NaN, 1] }), /weights\[1\]/);
});
