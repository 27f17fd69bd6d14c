import { test } from "node:test";
import assert from "node:assert/strict";
import { cagrad, cagradCoeffs, cagradObjective } from "../../src/balance/cagrad.ts";
import { gramian } from "../../src/balance/linalg.ts";
import { Rng } from "../../src/util/rng.ts";
import { DEGENERATE, assertClose, assertDirectionMatchesCoeffs, assertWellFormed, lincomb, mkInput, randomRows, vdot, vnorm } from "./methodfixtures.ts";

/** Naive CAGrad over explicit vectors: F(w) = <g_w, g0> + c‖g0‖‖g_w‖ and d = (g0 + c‖g0‖/‖g_w‖ g_w)/(1+c²). */
function naiveF(rows: number[][], c: number, w: number[]): number {
  const g0 = lincomb(rows, rows.map(() => 1 / rows.length));
  const gw = lincomb(rows, w);
  return vdot(gw, g0) + c * vnorm(g0) * vnorm(gw);
}
function naiveDirection(rows: number[][], c: number, w: number[], factor: number): number[] {
  const g0 = lincomb(rows, rows.map(() => 1 / rows.length));
  const gw = lincomb(rows, w);
  const lam = (c * vnorm(g0)) / vnorm(gw);
  return g0.map((x, k) => (x + lam * gw[k]!) / factor);
}
/** Golden-section search of t ↦ naiveF(rows, c, [t, 1−t]) on [0, 1]. */
function golden2(rows: number[][], c: number): number {
  let lo = 0;
  let hi = 1;
  const r = (Math.sqrt(5) - 1) / 2;
  for (let i = 0; i < 200; i++) {
    const a = hi - r * (hi - lo);
    const b = lo + r * (hi - lo);
    if (naiveF(rows, c, [a, 1 - a]) < naiveF(rows, c, [b, 1 - b])) hi = b;
    else lo = a;
  }
  return (lo + hi) / 2;
}

test("cagrad: 2 tasks × 3 dims match an independent golden-section solution (interior and vertex optima)", () => {
  for (const [rows, interior] of [
    [[[1, 0, 0], [0.5, 1, 0]], true],
    [[[2, 0, 0], [-1, 1, 0]], false],
  ] as [number[][], boolean][]) {
    const t = golden2(rows, 0.5);
    if (interior) assert.ok(t > 0.5 && t < 0.99, `interior optimum expected, t = ${t}`);
    else assert.ok(t < 1e-6, `optimum on the vertex w = (0, 1) expected, t = ${t}`);
    const expected = naiveDirection(rows, 0.5, [t, 1 - t], 1 + 0.25);
    const out = cagrad.create(2).combine(mkInput(rows));
    assertClose(out.direction, expected, 1e-5, "direction");
    assertDirectionMatchesCoeffs(out, rows);
    assertWellFormed(out, 2, 3);
    assert.deepEqual(Array.from(out.taskScale), [1, 1]);
  }
});

test("cagrad: 3 tasks × 4 dims matches an independent grid search over the simplex", () => {
  const rows = [[1, 0.5, 0, -1], [-0.5, 1, 0.25, 0], [0.25, -1, 1, 0.5]];
  const c = 0.5;
  let best = [1 / 3, 1 / 3, 1 / 3];
  let fb = naiveF(rows, c, best);
  const search = (center: number[], radius: number, h: number) => {
    for (let a = Math.max(0, center[0]! - radius); a <= Math.min(1, center[0]! + radius) + 1e-12; a += h) {
      for (let b = Math.max(0, center[1]! - radius); b <= Math.min(1 - a, center[1]! + radius) + 1e-12; b += h) {
        const w = [a, b, Math.max(0, 1 - a - b)];
        const f = naiveF(rows, c, w);
        if (f < fb) {
          fb = f;
          best = w;
        }
      }
    }
  };
  search([0.5, 0.5], 0.5, 0.002);
  search(best, 0.004, 0.00002);
  const { coeffs, w } = cagradCoeffs(gramian(rows.map((r) => Float32Array.from(r))), 3, c, 1);
  assert.ok(naiveF(rows, c, Array.from(w)) <= fb + 1e-9, `solver objective ${naiveF(rows, c, Array.from(w))} vs grid ${fb}`);
  assertClose(lincomb(rows, coeffs), naiveDirection(rows, c, best, 1.25), 2e-3, "direction vs grid optimum");
  const out = cagrad.create(3).combine(mkInput(rows));
  assertClose(out.coeffs, coeffs, 1e-12, "method coeffs");
});

test("cagrad: solver objective ≤ every vertex and ≤ random simplex points", () => {
  const rng = new Rng(123);
  for (let trial = 0; trial < 20; trial++) {
    const T = 2 + (trial % 5);
    const rows = randomRows(T, 8, 1000 + trial);
    if (trial % 3 === 0) rows[1] = rows[0]!.map((x) => -0.8 * x); // add a strong conflict
    const G = gramian(rows.map((r) => Float32Array.from(r)));
    let s = 0;
    for (let i = 0; i < T; i++) s += G[i * T + i]! / T;
    const A = G.map((x) => x / s);
    let mean = 0;
    for (const x of A) mean += x / (T * T);
    const cphi = 0.5 * Math.sqrt(mean + 1e-8) + 1e-8;
    const { w } = cagradCoeffs(G, T, 0.5, 1);
    assert.ok(Math.abs(w.reduce((a, b) => a + b, 0) - 1) < 1e-12 && w.every((x) => x >= 0), "w on simplex");
    const f = cagradObjective(A, T, cphi, w);
    for (let v = 0; v < T; v++) {
      const e = new Float64Array(T);
      e[v] = 1;
      assert.ok(f <= cagradObjective(A, T, cphi, e) + 1e-12, `trial ${trial}: worse than vertex ${v}`);
    }
    for (let k = 0; k < 200; k++) {
      const x = Array.from({ length: T }, () => -Math.log(1 - rng.next()));
      const sum = x.reduce((a, b) => a + b, 0);
      assert.ok(f <= cagradObjective(A, T, cphi, x.map((y) => y / sum)) + 1e-10, `trial ${trial}: worse than a random point`);
    }
  }
});

test("cagrad: rescale modes, c = 0 gives the mean gradient, scale invariance, permutation symmetry", () => {
  const rows = randomRows(3, 6, 77);
  const d1 = cagrad.create(3, { rescale: 1 }).combine(mkInput(rows)).coeffs;
  const d0 = cagrad.create(3, { rescale: 0 }).combine(mkInput(rows)).coeffs;
  const d2 = cagrad.create(3, { rescale: 2 }).combine(mkInput(rows)).coeffs;
  assertClose(d1, Array.from(d0, (x) => x / 1.25), 1e-12, "rescale 1");
  assertClose(d2, Array.from(d0, (x) => x / 1.5), 1e-12, "rescale 2");
  const mean = cagrad.create(3, { c: 0 }).combine(mkInput(rows));
  assertClose(mean.coeffs, [1 / 3, 1 / 3, 1 / 3], 1e-7, "c = 0");
  const scaled = cagrad.create(3).combine(mkInput(rows.map((r) => r.map((x) => x * 1024))));
  assertClose(scaled.coeffs, d1, 1e-7, "scale invariance");
  const perm = [2, 0, 1];
  const p = cagrad.create(3).combine(mkInput(perm.map((i) => rows[i]!)));
  assertClose(p.coeffs, perm.map((i) => d1[i]!), 1e-6, "permutation");
});

test("cagrad: finite on degenerate inputs; option validation", () => {
  for (const [name, rows] of Object.entries(DEGENERATE)) {
    const out = cagrad.create(rows.length).combine(mkInput(rows));
    assertWellFormed(out, rows.length, rows[0]!.length);
    if (name !== "opposite") assertDirectionMatchesCoeffs(out, rows, 1e-4);
  }
  // opposite equal gradients: g0 = 0, any combination that keeps the mean is fine; the direction must be ~0.
  const opp = cagrad.create(2).combine(mkInput(DEGENERATE.opposite!));
  assert.ok(Math.hypot(...opp.direction) < 1e-3);
  assert.throws(() => cagrad.create(2, { rescale: 3 as never }), /cagrad: option rescale/);
  assert.throws(() => cagrad.create(2, { c: -0.1 }), /cagrad: option c/);
  assert.throws(() => cagrad.create(2, { iters: 1.5 }), /cagrad: option iters/);
  assert.throws(() => cagrad.create(2).setState({ w: [1] }), /cagrad: this method is stateless/);
});
