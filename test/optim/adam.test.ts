import { test } from "node:test";
import assert from "node:assert/strict";
import { Adam } from "../../src/optim/adam.ts";

/** Reference Adam in float64 (the documented formula). */
function refAdam(w0: number, grads: number[], o: { lr: number; b1: number; b2: number; eps: number; wd: number }): number[] {
  let w = w0;
  let m = 0;
  let v = 0;
  const out: number[] = [];
  grads.forEach((g0, i) => {
    const t = i + 1;
    const g = g0 + o.wd * w;
    m = o.b1 * m + (1 - o.b1) * g;
    v = o.b2 * v + (1 - o.b2) * g * g;
    w -= (o.lr * (m / (1 - o.b1 ** t))) / (Math.sqrt(v / (1 - o.b2 ** t)) + o.eps);
    out.push(w);
  });
  return out;
}

test("adam: three dense steps match hand-pinned values", () => {
  const opt = new Adam([{ name: "w", size: 2 }], { lr: 0.1, weightDecay: 0 });
  const w = new Float64Array([1, -2]);
  const gs = [
    [0.5, -1],
    [0.25, 2],
    [-1, 0],
  ];
  for (const g of gs) {
    opt.beginStep();
    opt.dense(0, w, new Float64Array(g), true);
  }
  // Step 1 moves each coordinate by lr*sign(g) (bias-corrected m/sqrt(v) = ±1).
  // Step 2 for w0 by hand: m=0.07, v=0.00031225, m^=0.07/0.19=0.368421,
  // v^=0.00031225/0.001999=0.156203, w = 0.9 - 0.1*0.368421/0.395225 = 0.806782.
  const p0 = refAdam(1, [0.5, 0.25, -1], { lr: 0.1, b1: 0.9, b2: 0.999, eps: 1e-8, wd: 0 });
  const p1 = refAdam(-2, [-1, 2, 0], { lr: 0.1, b1: 0.9, b2: 0.999, eps: 1e-8, wd: 0 });
  assert.ok(Math.abs(p0[0]! - 0.9) < 1e-7, "first step is lr * sign(g)");
  assert.ok(Math.abs(p1[0]! - -1.9) < 1e-7);
  assert.ok(Math.abs(p0[1]! - 0.806782) < 1e-6, "hand-computed second step");
  // pinned third-step values
  assert.ok(Math.abs(w[0]! - 0.8274177) < 1e-6, `pinned w0 ${w[0]}`);
  assert.ok(Math.abs(w[1]! - -1.9649103) < 1e-6, `pinned w1 ${w[1]}`);
});

test("adam: coupled L2 applies only when decay is set", () => {
  const o = { lr: 1e-3, b1: 0.9, b2: 0.999, eps: 1e-8, wd: 0.5 };
  const a = new Adam([{ name: "w", size: 1 }, { name: "b", size: 1 }], { lr: o.lr, weightDecay: o.wd });
  const w = new Float32Array([2]);
  const b = new Float32Array([2]);
  const gs = [0.1, -0.3];
  for (const g of gs) {
    a.beginStep();
    a.dense(0, w, new Float32Array([g]), true);
    a.dense(1, b, new Float32Array([g]), false);
  }
  const ew = refAdam(2, gs, o);
  const eb = refAdam(2, gs, { ...o, wd: 0 });
  assert.ok(Math.abs(w[0]! - ew[1]!) < 1e-6);
  assert.ok(Math.abs(b[0]! - eb[1]!) < 1e-6);
  assert.notEqual(w[0], b[0]);
});

test("adam: lazy rows — rows not in the batch keep values and moments; global-step bias correction", () => {
  const dim = 2;
  const opt = new Adam([{ name: "emb", size: 4 * dim }], { lr: 0.01, weightDecay: 1e-5 });
  const w = new Float32Array([1, 1, 2, 2, 3, 3, 4, 4]);
  // step 1 touches rows 0 and 2; step 2 touches row 2 only
  opt.beginStep();
  opt.rows(0, w, dim, new Int32Array([2, 0]), 2, new Float32Array([0.5, -0.5, 0.1, 0.2]), true);
  const after1 = w.slice();
  assert.equal(w[2], 2);
  assert.equal(w[6], 4);
  opt.beginStep();
  opt.rows(0, w, dim, new Int32Array([2]), 1, new Float32Array([0.5, -0.5]), true);
  assert.equal(w[0], after1[0], "row 0 not in batch: untouched");
  assert.equal(w[1], after1[1]);
  assert.equal(w[2], 2, "row 1 never in a batch");
  const st = opt.getState();
  const o = { lr: 0.01, b1: 0.9, b2: 0.999, eps: 1e-8, wd: 1e-5 };
  const row2 = refAdam(3, [0.5, 0.5], o);
  assert.ok(Math.abs(w[4]! - row2[1]!) < 1e-6, `row 2 follows dense Adam: ${w[4]} vs ${row2[1]}`);
  // row 0 got one update at t=1 only; its moment stays at step-1 value (not decayed at step 2)
  assert.ok(Math.abs(st.tensors["m.emb"]![0]! - 0.1 * (0.1 + 1e-5 * 1)) < 1e-9);
});

test("adam: state round trip continues identically", () => {
  const mk = () => new Adam([{ name: "a", size: 3 }], { lr: 0.05 });
  const a = mk();
  const w = new Float32Array([0.1, 0.2, 0.3]);
  a.beginStep();
  a.dense(0, w, new Float32Array([1, -1, 0.5]), true);
  const st = a.getState();
  const b = mk();
  b.setState({ tensors: st.tensors, json: JSON.parse(JSON.stringify(st.json)) });
  const w2 = w.slice();
  a.beginStep();
  a.dense(0, w, new Float32Array([0.3, 0.3, -2]), true);
  b.beginStep();
  b.dense(0, w2, new Float32Array([0.3, 0.3, -2]), true);
  assert.deepEqual(Array.from(w2), Array.from(w));
  assert.equal(b.step, 2);
  assert.throws(() => b.setState({ tensors: {}, json: { step: 1 } }), /no tensor m\.a/);
  assert.throws(() => b.setState({ tensors: st.tensors, json: { step: -1 } }), /step/);
});
