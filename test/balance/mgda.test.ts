import { test } from "node:test";
import assert from "node:assert/strict";
import { mgda, minNormElement, minNormFrom2 } from "../../src/balance/mgda.ts";
import { gramian } from "../../src/balance/linalg.ts";
import { Rng } from "../../src/util/rng.ts";
import { allFinite, assertClose, assertVecClose, gaussSolve, makeInput, randomGrads, toF32, vdot, vscale, type Vec } from "./surgery-helpers.ts";

/** Exact min-norm point of the convex hull by enumerating faces (KKT on each affine hull). */
function bruteMinNorm(g: Vec[]): number {
  const T = g.length;
  let best = Infinity;
  for (let mask = 1; mask < 1 << T; mask++) {
    const S = [...Array(T).keys()].filter((i) => mask & (1 << i));
    const n = S.length;
    const A = S.map((a) => [...S.map((b) => vdot(g[a]!, g[b]!)), 1]);
    A.push([...new Array<number>(n).fill(1), 0]);
    const x = gaussSolve(A, [...new Array<number>(n).fill(0), 1]);
    const alpha = x.slice(0, n);
    if (!alpha.every((v) => Number.isFinite(v) && v >= -1e-12)) continue;
    const d = S.reduce((acc, i, a) => acc.map((v, k) => v + alpha[a]! * g[i]![k]!), new Array<number>(g[0]!.length).fill(0));
    best = Math.min(best, vdot(d, d));
  }
  return best;
}

test("minNormFrom2: closed form and clipping", () => {
  // v1=[1,0], v2=[-1,1]: v11=1, v12=-1, v22=2; γ = (2+1)/(1+2+2) = .6, cost = 2 + .6(-1-2) = .2
  const r = minNormFrom2(1, -1, 2);
  assertClose(r.gamma, 0.6, 1e-15, "gamma");
  assertClose(r.cost, 0.2, 1e-15, "cost");
  assert.deepEqual(minNormFrom2(1, 2, 5), { gamma: 1, cost: 1 });
  assert.deepEqual(minNormFrom2(5, 2, 1), { gamma: 0, cost: 1 });
  assert.deepEqual(minNormFrom2(0, 0, 0), { gamma: 1, cost: 0 });
});

test("2 tasks: hand values for every normalization", () => {
  // none: g1=[1,0], g2=[-1,1] -> α=(.6,.4), d = [.2,.4]; <d,g1> = <d,g2> = ‖d‖² = .2
  const a = mgda.create(2).combine(makeInput([[1, 0], [-1, 1]]));
  assertVecClose(a.coeffs, [0.6, 0.4], 1e-15, "none coeffs");
  assertVecClose(a.direction, [0.2, 0.4], 1e-7, "none direction");
  // l2: g1=[3,0,4] (5), g2=[0,2,0] (2): unit vectors orthogonal -> α=(.5,.5), coeffs (.1,.25), d=[.3,.5,.4]
  const b = mgda.create(2, { normalization: "l2" }).combine(makeInput([[3, 0, 4], [0, 2, 0]]));
  assertVecClose(b.coeffs, [0.1, 0.25], 1e-15, "l2 coeffs");
  assertVecClose(b.direction, [0.3, 0.5, 0.4], 1e-7, "l2 direction");
  // loss: losses (2,4), g1=[1,0], g2=[0,1]: H = diag(1/4, 1/16): γ = (1/16)/(5/16) = .2 -> α=(.2,.8), coeffs (.1,.2)
  const c = mgda.create(2, { normalization: "loss" }).combine(makeInput([[1, 0], [0, 1]], 1, [2, 4]));
  assertVecClose(c.coeffs, [0.1, 0.2], 1e-15, "loss coeffs");
  // loss+: g1=[2,0] L=1 -> n=2; g2=[0,3] L=2 -> n=6; normalised [1,0], [0,.5]: H = diag(1, 1/4)
  // γ = (1/4)/(5/4) = .2 -> α=(.2,.8), coeffs (.2/2, .8/6) = (.1, 2/15), d = [.2, .4]
  const e = mgda.create(2, { normalization: "loss+" }).combine(makeInput([[2, 0], [0, 3]], 1, [1, 2]));
  assertVecClose(e.coeffs, [0.1, 2 / 15], 1e-15, "loss+ coeffs");
  assertVecClose(e.direction, [0.2, 0.4], 1e-7, "loss+ direction");
});

test("degenerate: colinear rows give the shorter one, a zero row gives a zero direction, no NaN", () => {
  const col = mgda.create(2).combine(makeInput([[1, 2, 3], [2, 4, 6]]));
  assertVecClose(col.direction, [1, 2, 3], 1e-7, "colinear");
  for (const normalization of ["none", "l2", "loss", "loss+"] as const) {
    const z = mgda.create(3, { normalization }).combine(makeInput([[1, 2], [0, 0], [-1, 3]], 1, [1, 0, 2]));
    assert.ok(allFinite(z.coeffs), normalization);
    assertVecClose(z.direction, [0, 0], 1e-7, `zero row ${normalization}`);
    const allz = mgda.create(2, { normalization }).combine(makeInput([[0, 0], [0, 0]], 1, [0, 0]));
    assert.deepEqual(Array.from(allz.direction), [0, 0]);
  }
  const opp = mgda.create(2).combine(makeInput([[1, 2], [-1, -2]]));
  assertVecClose(opp.direction, [0, 0], 1e-7, "opposite");
  assert.deepEqual(Array.from(mgda.create(1).combine(makeInput([[3, 4]])).coeffs), [1]);
});

test("T=3..6 random: alphas on the simplex, min-norm property, and optimal norm vs face enumeration", () => {
  const rng = new Rng(17);
  for (let trial = 0; trial < 40; trial++) {
    const T = 3 + (trial % 4);
    const g = randomGrads(rng, T, 8, 1);
    // bias half of the cases towards a shared direction so the min-norm point is nonzero
    if (trial % 2 === 0) g.forEach((gi) => gi.forEach((_, k) => (gi[k] = Math.fround(gi[k]! + (k === 0 ? 3 : 0)))));
    const G = gramian(toF32(g));
    const alpha = minNormElement(G, T);
    assert.ok(alpha.every((v) => v >= 0), "alpha >= 0");
    assertClose(alpha.reduce((s, v) => s + v, 0), 1, 1e-12, "sum alpha");
    const out = mgda.create(T).combine(makeInput(g));
    assertVecClose(out.coeffs, alpha, 0, "coeffs = alpha for normalization none");
    const d = Array.from(out.coeffs).reduce((acc, c, i) => acc.map((v, k) => v + c * g[i]![k]!), new Array<number>(8).fill(0));
    const dd = vdot(d, d);
    const scale = Math.max(...g.map((gi) => vdot(gi, gi)));
    for (let i = 0; i < T; i++) assert.ok(vdot(d, g[i]!) >= dd - 2e-3 * scale, `trial ${trial}: <d,g_${i}> < ‖d‖² - tol`);
    const best = bruteMinNorm(g);
    assert.ok(dd >= best - 1e-9 * scale, "below the exact minimum?!");
    assert.ok(dd <= best + 1e-3 * scale, `trial ${trial}: ‖d‖² ${dd} vs optimum ${best}`);
  }
});

test("l2 normalization: scaling a task's gradient does not change the direction", () => {
  const g = randomGrads(new Rng(2), 3, 6);
  const a = mgda.create(3, { normalization: "l2" }).combine(makeInput(g));
  const b = mgda.create(3, { normalization: "l2" }).combine(makeInput([vscale(g[0]!, 8), g[1]!, g[2]!]));
  assertVecClose(b.direction, a.direction, 1e-5, "direction");
});

test("options validated", () => {
  assert.throws(() => mgda.create(2, { normalization: "L2" as never }), /mgda: option normalization must be one of none, l2, loss, loss\+/);
  assert.throws(() => mgda.create(2, { norm: "l2" } as never), /unknown option "norm"/);
  assert.equal(mgda.defaults.normalization, "none");
  assert.throws(() => mgda.create(2, { normalization: "loss" }).combine({ ...makeInput([[1], [2]]), losses: new Float64Array(1) }), /needs 2 losses/);
});
