/**
 * The BCE head: value equals the float64 formula on the predicted logits (to
 * the engine's log accuracy), the
 * gradient equals the chain rule through the network (linear objective with
 * c_r = (sigmoid(z_r) - y_r) / B), extreme logits stay finite, and "sum"
 * cotangents equal the sum of the per-task gradients.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { initEngine, jax, type JArray } from "../../src/grad/engine.ts";
import { createModel } from "../../src/model/index.ts";
import { GradWorkspace, bceWithLogits, lossesOnly, perTaskGrads, predictLogits } from "../../src/grad/pertask.ts";
import { TINY_FIELDS, TINY_OPTS, randomBatch } from "./fixtures.ts";

const T = 3;

test("BCE value and gradient match the float64 formula / chain rule", async () => {
  await initEngine();
  const model = createModel("mmoe", { fields: TINY_FIELDS, numTasks: T }, { ...TINY_OPTS, dtype: "float64", embInitStd: 0.5, dropout: 0 });
  const ws = new GradWorkspace(model);
  const batch = randomBatch(TINY_FIELDS, T, 9, 4);
  const z = predictLogits(ws, batch);
  const loss = lossesOnly(ws, batch, "eval", 0);
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
    // the engine's log is a fast approximation (measured abs error up to ~7e-6 on [1, 2])
    assert.ok(Math.abs(s / batch.size - loss[t]!) < 2e-5, `task ${t}: ${loss[t]} vs ${s / batch.size}`);
    coef.push(c);
  }
  const gb = perTaskGrads(ws, batch, { mode: "eval", seed: 0 });
  const gl = perTaskGrads(ws, batch, {
    mode: "eval",
    seed: 0,
    objective: (zz: JArray, t: number) => zz.mul(jax().numpy.array(coef[t]!, { dtype: jax().numpy.float64 })).sum(),
  });
  let n = 0;
  for (let t = 0; t < T; t++) {
    model.dense.forEach((_, i) => {
      const a = gb.dense[t]![i];
      const b = gl.dense[t]![i];
      assert.equal(a === null, b === null);
      if (!a || !b) return;
      for (let k = 0; k < a.length; k++) {
        assert.ok(Math.abs(a[k]! - b[k]!) <= 1e-7 + 1e-5 * Math.abs(b[k]!), `task ${t} param ${i}[${k}]: ${a[k]} vs ${b[k]}`);
        n++;
      }
    });
  }
  assert.ok(n > 100);
});

test("BCE is finite for extreme logits", async () => {
  const { numpy: np, vjp } = await initEngine();
  const z = np.array(new Float32Array([-200, -30, 0, 30, 200]));
  const y = new Float32Array([1, 0, 1, 1, 0]);
  const [out, fn] = vjp((a: JArray) => bceWithLogits(a, np.array(y)), [z]);
  const v = out.dataSync()[0]!;
  const g = (fn(np.array(1)) as unknown as JArray[])[0]!.dataSync();
  fn.dispose();
  assert.ok(Number.isFinite(v) && v > 0, `loss ${v}`);
  assert.ok(Math.abs(v - (200 + 0 + Math.log(2) + 0 + 200) / 5) < 1e-3, `loss ${v}`);
  for (const x of g) assert.ok(Number.isFinite(x));
  assert.ok(Math.abs(g[0]! - -0.2) < 1e-6 && Math.abs(g[4]! - 0.2) < 1e-6, `grad ${Array.from(g)}`);
});

test("'sum' cotangent equals the sum of the per-task gradients", async () => {
  await initEngine();
  const model = createModel("ple", { fields: TINY_FIELDS, numTasks: T }, { ...TINY_OPTS, dtype: "float64" });
  const ws = new GradWorkspace(model);
  const batch = randomBatch(TINY_FIELDS, T, 8, 6);
  const per = perTaskGrads(ws, batch, { mode: "train", seed: 3 });
  const embPer = per.emb.map((row) => row.map((a) => (a ? a.slice() : null)));
  const sum = perTaskGrads(ws, batch, { mode: "train", seed: 3, cotangents: "sum" });
  assert.equal(sum.dense.length, 1);
  model.dense.forEach((p, i) => {
    const s = sum.dense[0]![i]!;
    for (let k = 0; k < p.data.length; k++) {
      let e = 0;
      for (let t = 0; t < T; t++) e += per.dense[t]![i]?.[k] ?? 0;
      assert.ok(Math.abs(s[k]! - e) <= 1e-12 + 1e-9 * Math.abs(e));
    }
  });
  const se = sum.emb[0]![0]!;
  for (let k = 0; k < se.length; k++) {
    let e = 0;
    for (let t = 0; t < T; t++) e += embPer[t]![0]![k]!;
    assert.ok(Math.abs(se[k]! - e) <= 1e-12 + 1e-9 * Math.abs(e));
  }
});

test("trunk/head split gradients equal the single-vjp (stacked losses, e_t cotangents) gradients", async () => {
  await initEngine();
  for (const name of ["single", "shared-bottom", "mmoe", "ple", "snr-trans", "snr-aver"]) {
    for (const extra of name === "ple" ? [{}, { levels: 2 }, { levels: 3, numShared: 2 }] : [{}]) {
      const model = createModel(name, { fields: TINY_FIELDS, numTasks: T }, { ...TINY_OPTS, dtype: "float64", ...extra });
      const ws = new GradWorkspace(model);
      const batch = randomBatch(TINY_FIELDS, T, 8, 12);
      const a = perTaskGrads(ws, batch, { mode: "train", seed: 5 });
      const aEmb = a.emb.map((row) => row.map((x) => (x ? x.slice() : null)));
      const b = perTaskGrads(ws, batch, { mode: "train", seed: 5, cotangents: "per-task-stacked" });
      const label = `${name} ${JSON.stringify(extra)}`;
      for (let t = 0; t < T; t++) {
        assert.ok(Math.abs(a.losses[t]! - b.losses[t]!) < 1e-12, `${label}: loss`);
        model.dense.forEach((p, i) => {
          const x = a.dense[t]![i] ?? null;
          const y = b.dense[t]![i] ?? null;
          assert.equal(x === null, y === null, `${label}: ${p.name} null pattern`);
          if (x && y) for (let k = 0; k < x.length; k++) assert.ok(Math.abs(x[k]! - y[k]!) <= 1e-12 + 1e-9 * Math.abs(y[k]!), `${label}: ${p.name}[${k}] task ${t}`);
        });
        b.emb[t]!.forEach((y, s) => {
          const x = aEmb[t]![s] ?? null;
          assert.equal(x === null, y === null, `${label}: emb null pattern`);
          if (x && y) for (let k = 0; k < x.length; k++) assert.ok(Math.abs(x[k]! - y[k]!) <= 1e-12 + 1e-9 * Math.abs(y[k]!), `${label}: emb[${s}][${k}] task ${t}`);
        });
      }
    }
  }
});
