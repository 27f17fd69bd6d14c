import { test } from "node:test";
import assert from "node:assert/strict";
import { drawOrders, pcgrad, pcgradRows } from "../../src/balance/pcgrad.ts";
import { gramian } from "../../src/balance/linalg.ts";
import { Rng } from "../../src/util/rng.ts";
import { allFinite, assertVecClose, makeInput, randomGrads, toF32, vadd, vdot, vnorm, vscale, vsum, type Vec } from "./surgery-helpers.ts";

/** Vector PCGrad with explicit orders (float64, projections against the original g_j). */
function refPCGrad(g: Vec[], orders: readonly Int32Array[]): Vec[] {
  return g.map((gi, i) => {
    let v = gi.slice();
    for (const j of orders[i]!) {
      const dj = vdot(g[j]!, g[j]!);
      const c = vdot(v, g[j]!);
      if (c < 0 && dj > 0) v = vadd(v, g[j]!, -c / dj);
    }
    return v;
  });
}

const orderOf = (seed: number, T: number): Int32Array[] => drawOrders(new Rng(seed), T);

test("drawOrders: a permutation of the other tasks for each i", () => {
  const orders = orderOf(3, 5);
  orders.forEach((o, i) => {
    assert.deepEqual([...o].sort((a, b) => a - b), [0, 1, 2, 3, 4].filter((k) => k !== i));
  });
  assert.deepEqual(orderOf(3, 1), [new Int32Array(0)]);
});

test("2 tasks: textbook hand values", () => {
  // g1=[1,0], g2=[-1,1], <g1,g2> = -1
  // g1^PC = g1 - (-1/2) g2 = [.5,.5]; g2^PC = g2 - (-1/1) g1 = [0,1]; sum = [.5, 1.5]
  const out = pcgrad.create(2).combine(makeInput([[1, 0], [-1, 1]]));
  assert.deepEqual(Array.from(out.direction), [0.5, 1.5]);
  // coeffs: g1: 1 (own) + 1 (from g2^PC); g2: 0.5 + 1
  assert.deepEqual(Array.from(out.coeffs), [2, 1.5]);
  assert.deepEqual(Array.from(out.taskScale), [1, 1]);
  // no conflict: plain sum
  const ok = pcgrad.create(2).combine(makeInput([[1, 0], [1, 1]]));
  assert.deepEqual(Array.from(ok.direction), [2, 1]);
});

test("2 tasks random: equals the textbook formula g_i - <g_i,g_j>/‖g_j‖² g_j and leaves <g_i^PC,g_j> ≥ 0", () => {
  const rng = new Rng(8);
  for (let trial = 0; trial < 20; trial++) {
    const g = randomGrads(rng, 2, 7, 1);
    const [a, b] = [g[0]!, g[1]!];
    const ab = vdot(a, b);
    const pa = ab < 0 ? vadd(a, b, -ab / vdot(b, b)) : a;
    const pb = ab < 0 ? vadd(b, a, -ab / vdot(a, a)) : b;
    const out = pcgrad.create(2).combine(makeInput(g, trial));
    assertVecClose(out.direction, vadd(pa, pb), 1e-5 * (vnorm(a) + vnorm(b)), `trial ${trial}`);
    const rows = pcgradRows(gramian(toF32(g)), 2, orderOf(trial, 2));
    const ra = vadd(vscale(a, rows[0]!), b, rows[1]!);
    const rb = vadd(vscale(a, rows[2]!), b, rows[3]!);
    assert.ok(vdot(ra, b) >= -1e-9 * vnorm(ra) * vnorm(b));
    assert.ok(vdot(rb, a) >= -1e-9 * vnorm(rb) * vnorm(a));
  }
});

test("T=3..6: matches the vector reference with the same orders; last applied projection leaves <g_i^PC,g_j> ≈ 0", () => {
  const rng = new Rng(31);
  let applied = 0;
  for (let trial = 0; trial < 40; trial++) {
    const T = 3 + (trial % 4);
    const g = randomGrads(rng, T, 6, 1);
    const seed = 100 + trial;
    const orders = orderOf(seed, T);
    const ref = refPCGrad(g, orders);
    const out = pcgrad.create(T).combine(makeInput(g, seed));
    const scale = g.reduce((s, v) => s + vnorm(v), 0);
    assertVecClose(out.direction, vsum(ref, 6), 1e-5 * scale, `trial ${trial}`);
    const rows = pcgradRows(gramian(toF32(g)), T, orders);
    for (let i = 0; i < T; i++) {
      const pi = g.reduce((acc, gk, k) => vadd(acc, gk, rows[i * T + k]!), new Array<number>(6).fill(0));
      assertVecClose(pi, ref[i]!, 1e-9 * scale, `row ${i}`);
      // find the last j in the order whose projection was applied (reference trace)
      let v = g[i]!.slice();
      let last = -1;
      for (const j of orders[i]!) {
        const c = vdot(v, g[j]!);
        if (c < 0) {
          v = vadd(v, g[j]!, -c / vdot(g[j]!, g[j]!));
          last = j;
        }
      }
      if (last >= 0) {
        applied++;
        assert.ok(vdot(pi, g[last]!) >= -1e-9 * vnorm(pi) * vnorm(g[last]!), `i=${i} j=${last}`);
      }
    }
  }
  assert.ok(applied > 30, `few projections exercised: ${applied}`);
});

test("order matters for T ≥ 3 and the result is deterministic given the seed", () => {
  // g0 conflicts with both g1 and g2; projecting in different orders gives different g0^PC.
  const g = [[1, 0, 0], [-1, 1, 0], [-1, 0, 1]];
  const o12 = refPCGrad(g, [Int32Array.from([1, 2]), Int32Array.from([0, 2]), Int32Array.from([0, 1])]);
  const o21 = refPCGrad(g, [Int32Array.from([2, 1]), Int32Array.from([0, 2]), Int32Array.from([0, 1])]);
  assert.notDeepEqual(o12[0], o21[0]);
  const seen = new Set<string>();
  for (let seed = 0; seed < 20; seed++) {
    const a = pcgrad.create(3).combine(makeInput(g, seed));
    const b = pcgrad.create(3).combine(makeInput(g, seed));
    assert.deepEqual(Array.from(a.direction), Array.from(b.direction));
    seen.add(Array.from(a.direction).join(","));
  }
  assert.ok(seen.size >= 2, "the random order never changed the result");
});

test("rng use: exactly T permutations of T-1 per step, data-independent", () => {
  const input = makeInput([[1, 0], [1, 1], [0, 1]], 77);
  pcgrad.create(3).combine(input);
  const ref = new Rng(77);
  for (let i = 0; i < 3; i++) ref.permutation(2);
  assert.deepEqual(input.rng.getState(), ref.getState());
});

test("never NaN: zero row, opposite, colinear, all zero", () => {
  const base = [1, -2, 0.5];
  const cases: Vec[][] = [
    [base, [0, 0, 0]],
    [base, vscale(base, -1)],
    [base, vscale(base, -3), vscale(base, 2)],
    [[0, 0, 0], [0, 0, 0]],
  ];
  for (const g of cases) {
    const out = pcgrad.create(g.length).combine(makeInput(g));
    assert.ok(allFinite(out.direction) && allFinite(out.coeffs));
  }
  // exact opposites project each other to zero
  const opp = pcgrad.create(2).combine(makeInput([base, vscale(base, -1)]));
  assertVecClose(opp.direction, [0, 0, 0], 1e-7, "opposite");
  // a zero task contributes nothing and is never projected against
  const z = pcgrad.create(2).combine(makeInput([base, [0, 0, 0]]));
  assertVecClose(z.direction, base, 1e-7, "zero row");
});

test("options/state validation", () => {
  assert.throws(() => pcgrad.create(2, { tau: 1 } as never), /pcgrad: unknown option "tau"/);
  assert.throws(() => pcgrad.create(1.5), /numTasks/);
  assert.equal(pcgrad.create(2).getState(), null);
});
