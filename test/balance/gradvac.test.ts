import { test } from "node:test";
import assert from "node:assert/strict";
import { gradvac } from "../../src/balance/gradvac.ts";
import { drawOrders } from "../../src/balance/pcgrad.ts";
import { Rng } from "../../src/util/rng.ts";
import type { JsonValue } from "../../src/balance/types.ts";
import { allFinite, assertVecClose, makeInput, randomGrads, vadd, vdot, vnorm, vsum, type Vec } from "./surgery-helpers.ts";

/** Vector GradVac step (float64); phi[i][j] is updated in place. */
function refGradVac(g: Vec[], phi: number[][], beta: number, orders: readonly Int32Array[]): Vec {
  const pc = g.map((gi, i) => {
    let v = gi.slice();
    for (const j of orders[i]!) {
      const rho = vdot(v, g[j]!) / (vnorm(v) * vnorm(g[j]!));
      const t = phi[i]![j]!;
      if (rho < t) {
        const w = (vnorm(v) * (t * Math.sqrt(1 - rho * rho) - rho * Math.sqrt(1 - t * t))) / (vnorm(g[j]!) * Math.sqrt(1 - t * t));
        v = vadd(v, g[j]!, w);
      }
      phi[i]![j] = (1 - beta) * t + beta * rho;
    }
    return v;
  });
  return vsum(pc, g[0]!.length);
}

test("first step (targets 0) hand values equal PCGrad's, and EMA targets move by beta*cos", () => {
  // g1=[1,0], g2=[-1,1]: cos = -1/√2 < 0 = target.
  // task 1: w = ‖g1‖(0 - cos·1)/(‖g2‖·1) = (1/√2)/√2 = .5 -> [.5,.5]
  // task 2: w = ‖g2‖(-cos)/‖g1‖ = √2/√2 = 1 -> [0,1]; sum [.5,1.5]
  const m = gradvac.create(2);
  const out = m.combine(makeInput([[1, 0], [-1, 1]]));
  assertVecClose(out.direction, [0.5, 1.5], 1e-7, "direction");
  const st = m.getState() as { phi: number[] };
  const e = -0.01 / Math.SQRT2;
  assertVecClose(st.phi, [0, e, e, 0], 1e-15, "phi");
});

test("raises cos to a positive target: cos(g_i^PC, g_j) equals the target after the adjustment", () => {
  // 2 tasks, target 0.5 for both ordered pairs, orthogonal gradients (cos 0 < 0.5).
  const m = gradvac.create(2);
  m.setState({ phi: [0, 0.5, 0.5, 0] });
  const g = [[2, 0], [0, 3]];
  const out = m.combine(makeInput(g));
  // g1^PC = g1 + ‖g1‖(.5·1 - 0)/(‖g2‖·√.75) g2 = [2, 2·.5/√.75] -> cos with g2 = .5
  const p1 = [2, (2 * 0.5) / Math.sqrt(0.75)];
  const p2 = [(3 * 0.5) / Math.sqrt(0.75), 3];
  assert.ok(Math.abs(vdot(p1, g[1]!) / (vnorm(p1) * vnorm(g[1]!)) - 0.5) < 1e-12);
  assertVecClose(out.direction, vadd(p1, p2), 1e-6, "direction");
});

test("several steps match the vector reference (state evolves)", () => {
  const rng = new Rng(21);
  for (const T of [2, 3, 5]) {
    const m = gradvac.create(T, { beta: 0.3 });
    const phi = Array.from({ length: T }, () => new Array<number>(T).fill(0));
    for (let step = 0; step < 6; step++) {
      const g = randomGrads(rng, T, 10, 1);
      const seed = 1000 * T + step;
      const ref = refGradVac(g, phi, 0.3, drawOrders(new Rng(seed), T));
      const out = m.combine(makeInput(g, seed));
      assertVecClose(out.direction, ref, 1e-5 * Math.max(1, vnorm(ref)), `T=${T} step ${step}`);
      assertVecClose((m.getState() as { phi: number[] }).phi, phi.flat(), 1e-9, `T=${T} phi`);
    }
  }
});

test("state round-trip via getState/setState gives the identical next output", () => {
  const rng = new Rng(5);
  const a = gradvac.create(3);
  for (let step = 0; step < 4; step++) a.combine(makeInput(randomGrads(rng, 3, 8), step));
  const saved = JSON.parse(JSON.stringify(a.getState())) as JsonValue;
  const b = gradvac.create(3);
  b.setState(saved);
  const g = randomGrads(rng, 3, 8);
  const oa = a.combine(makeInput(g, 9));
  const ob = b.combine(makeInput(g, 9));
  assert.deepEqual(Array.from(ob.direction), Array.from(oa.direction));
  assert.deepEqual(b.getState(), a.getState());
  // and the state matters: a fresh instance gives a different result
  const c = gradvac.create(3, { beta: 0.01 });
  c.setState({ phi: new Array<number>(9).fill(0.9) });
  assert.notDeepEqual(Array.from(c.combine(makeInput(g, 9)).direction), Array.from(oa.direction));
});

test("never NaN: zero rows, all zero, colinear, opposite; a zero pair leaves its target unchanged", () => {
  const m = gradvac.create(2);
  m.setState({ phi: [0, 0.2, 0.2, 0] });
  for (const g of [[[1, 2], [0, 0]], [[0, 0], [0, 0]], [[1, 2], [2, 4]], [[1, 2], [-1, -2]]]) {
    const out = m.combine(makeInput(g));
    assert.ok(allFinite(out.direction) && allFinite(out.coeffs));
  }
  const z = gradvac.create(2);
  z.combine(makeInput([[1, 2], [0, 0]]));
  assert.deepEqual(z.getState(), { phi: [0, 0, 0, 0] });
});

test("options and setState validation", () => {
  assert.throws(() => gradvac.create(2, { beta: 0 }), /gradvac: option beta must be > 0/);
  assert.throws(() => gradvac.create(2, { beta: 1.5 }), /option beta must be a finite number in \[0, 1\]/);
  const m = gradvac.create(2);
  assert.throws(() => m.setState({ phi: [0, 0, 0] }), /setState expects \{ phi: number\[4\] \}/);
  assert.throws(() => m.setState(null), /setState expects/);
  assert.throws(() => m.setState({ phi: [0, 2, 0, 0] }), /in \[-1, 1\]/);
  assert.equal(gradvac.defaults.beta, 0.01);
});
