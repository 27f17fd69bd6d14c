import { test } from "node:test";
import assert from "node:assert/strict";
import { pcgradPlus, pcgradPlusCoeffs } from "../../src/balance/pcgrad-plus.ts";
import { drawOrders, pcgrad } from "../../src/balance/pcgrad.ts";
import { gramian } from "../../src/balance/linalg.ts";
import { Rng } from "../../src/util/rng.ts";
import { allFinite, assertVecClose, makeInput, randomGrads, toF32, vadd, vdot, vnorm, vscale, vsum, type Vec } from "./surgery-helpers.ts";

/** Vector PCGrad+: explicit magnitude alignment, then explicit projections. */
function refPCGradPlus(g: Vec[], tau: number, orders: readonly Int32Array[]): Vec {
  const norms = g.map(vnorm);
  const max = Math.max(...norms);
  const h = g.map((gi, i) => (norms[i]! > 0 ? vscale(gi, (tau * max) / norms[i]! + 1 - tau) : gi));
  const pc = h.map((hi, i) => {
    let v = hi.slice();
    for (const j of orders[i]!) {
      const c = vdot(v, h[j]!);
      if (c < 0) v = vadd(v, h[j]!, -c / vdot(h[j]!, h[j]!));
    }
    return v;
  });
  return vsum(pc, g[0]!.length);
}

test("2x3 hand case, tau = 0.5", () => {
  // g1=[1,0,0], g2=[-4,4,0] (‖‖=4√2 = max). s1 = .5*4√2 + .5 = a, s2 = 1.
  // ĝ1 = a[1,0,0]; ĝ2 = [-4,4,0]; <ĝ1,ĝ2> = -4a.
  // ĝ1^PC = a[1,0,0] + (4a/32)[-4,4,0] = a[.5,.5,0]; ĝ2^PC = [-4,4,0] + (4a/a²)·a[1,0,0] = [0,4,0]
  // sum = [a/2, a/2 + 4, 0]
  const a = 2 * Math.SQRT2 + 0.5;
  const out = pcgradPlus.create(2, { tau: 0.5 }).combine(makeInput([[1, 0, 0], [-4, 4, 0]]));
  assertVecClose(out.direction, [a / 2, a / 2 + 4, 0], 1e-6, "direction");
  assert.deepEqual(Array.from(out.taskScale), [1, 1]);
});

test("tau = 0 is exactly PCGrad (same seed)", () => {
  const rng = new Rng(4);
  for (let trial = 0; trial < 10; trial++) {
    const g = randomGrads(rng, 4, 9, 1);
    const a = pcgradPlus.create(4, { tau: 0 }).combine(makeInput(g, trial));
    const b = pcgrad.create(4).combine(makeInput(g, trial));
    assert.deepEqual(Array.from(a.coeffs), Array.from(b.coeffs));
  }
});

test("random T=3..5 match the vector reference with the same orders", () => {
  const rng = new Rng(12);
  for (let trial = 0; trial < 20; trial++) {
    const T = 3 + (trial % 3);
    const g = randomGrads(rng, T, 8, 2);
    const tau = [0.1, 0.5, 1][trial % 3]!;
    const ref = refPCGradPlus(g, tau, drawOrders(new Rng(trial), T));
    const out = pcgradPlus.create(T, { tau }).combine(makeInput(g, trial));
    assertVecClose(out.direction, ref, 1e-5 * Math.max(1, vnorm(ref)), `trial ${trial}`);
    const c = pcgradPlusCoeffs(gramian(toF32(g)), T, tau, drawOrders(new Rng(trial), T));
    assertVecClose(out.coeffs, c, 0, "coeffs helper");
  }
});

test("no NaN on zero / all-zero / opposite inputs; options validated", () => {
  for (const g of [[[1, 2], [0, 0]], [[0, 0], [0, 0]], [[1, 2], [-2, -4]]]) {
    const out = pcgradPlus.create(2).combine(makeInput(g));
    assert.ok(allFinite(out.direction) && allFinite(out.coeffs));
  }
  assert.throws(() => pcgradPlus.create(2, { tau: 2 }), /pcgrad-plus: option tau must be a finite number in \[0, 1\]/);
  assert.equal(pcgradPlus.defaults.tau, 0.1);
  assert.equal(pcgradPlus.label, "PCGrad+");
});
