import { test } from "node:test";
import assert from "node:assert/strict";
import { config, configCoeffs } from "../../src/balance/config.ts";
import { createMethod, getMethod } from "../../src/balance/registry.ts";
import { gramian } from "../../src/balance/linalg.ts";
import { DEGENERATE, assertClose, assertWellFormed, lincomb, mkInput, randomRows, vdot, vnorm } from "./methodfixtures.ts";
import { checkFixtures, trainEveryArchitecture } from "./gram-method-fixtures.ts";

const gramOfRows = (rows: number[][]) => gramian(rows.map((r) => Float32Array.from(r)));
const cos = (a: readonly number[], b: readonly number[]) => vdot(a, b) / (vnorm(a) * vnorm(b));

test("config: pinned against the official rule on explicit vectors (numpy lstsq of the unit gradients)", () => {
  // coefficients are unique only for linearly independent gradients; the direction always
  const n = checkFixtures("config", (c) => c.rank === c.T, { coeffs: 1e-9, direction: 1e-10 });
  assert.ok(n >= 14, `${n} coefficient comparisons`);
});

test("config: orthogonal gradients pinned by hand", () => {
  // u = e1, e2: b = (1, 1), g_u = (1, 1)/√2, length = (2 + 1)/√2 ⇒ d = (1.5, 1.5) = 0.75 g1 + 1.5 g2
  const out = config.create(2).combine(mkInput([[2, 0, 0], [0, 1, 0]]));
  assertClose(out.coeffs, [0.75, 1.5], 1e-12, "coeffs");
  assertClose(out.direction, [1.5, 1.5, 0], 1e-7, "direction");
  assert.deepEqual(Array.from(out.taskScale), [1, 1]);
});

test("config: independent gradients — equal cosine with every task (conflict-free), length = Σ projections; T = 2 is the bisector (ConFIG_update_double)", () => {
  for (let trial = 0; trial < 15; trial++) {
    const T = 2 + (trial % 5);
    const rows = randomRows(T, T + 2 + (trial % 3), 40 + trial).map((r, i) => r.map((x) => Math.fround(x * (1 + 3 * i))));
    const out = config.create(T).combine(mkInput(rows));
    const d = lincomb(rows, out.coeffs);
    const c0 = cos(d, rows[0]!);
    for (const g of rows) {
      assert.ok(Math.abs(cos(d, g) - c0) < 1e-9, `trial ${trial}: cosines ${rows.map((r) => cos(d, r))}`);
      assert.ok(vdot(d, g) > 0, `trial ${trial}: conflict`);
    }
    const len = rows.reduce((s, g) => s + vdot(g, d) / vnorm(d), 0);
    assert.ok(Math.abs(vnorm(d) - len) < 1e-9 * len, `trial ${trial}: ‖d‖ = ${vnorm(d)}, Σ g_iᵀ d/‖d‖ = ${len}`);
    if (T === 2) {
      const u = rows.map((r) => r.map((x) => x / vnorm(r)));
      const bis = u[0]!.map((x, k) => x + u[1]![k]!);
      assert.ok(Math.abs(cos(d, bis) - 1) < 1e-12, `trial ${trial}: not the bisector`);
    }
    // scale-equivariant (coefficients unchanged), permutation-equivariant
    const G = gramOfRows(rows);
    assertClose(configCoeffs(G.map((x) => x * 1e6), T).coeffs, out.coeffs, 1e-9, `trial ${trial}: scale`);
    const perm = Array.from({ length: T }, (_, i) => (i + 1) % T);
    assertClose(configCoeffs(gramOfRows(perm.map((i) => rows[i]!)), T).coeffs, perm.map((i) => out.coeffs[i]!), 1e-9, `trial ${trial}: permutation`);
  }
});

test("config: degenerate inputs — a zero gradient is ignored, opposite gradients give zero, dependent gradients may conflict (no non-conflict guarantee)", () => {
  for (const r of Object.values(DEGENERATE)) assertWellFormed(config.create(r.length).combine(mkInput(r)), r.length, r[0]!.length);
  const z = DEGENERATE.zeroRow!;
  const oz = config.create(3).combine(mkInput(z));
  const without = config.create(2).combine(mkInput([z[0]!, z[2]!]));
  assertClose([oz.coeffs[0]!, oz.coeffs[1]!, oz.coeffs[2]!], [without.coeffs[0]!, 0, without.coeffs[1]!], 1e-12, "zero gradient");
  assert.ok(vnorm(Array.from(config.create(2).combine(mkInput(DEGENERATE.opposite!)).direction)) === 0, "opposite");
  assertClose(config.create(2).combine(mkInput(DEGENERATE.allZero!)).coeffs, [0, 0], 0, "all zero");
  // colinear same-direction gradients: d = g1 + g2 (both project fully)
  assertClose(config.create(2).combine(mkInput(DEGENERATE.colinear!)).direction, [3, 6, -3], 1e-6, "colinear");
  // three gradients in a plane, two nearly opposite to the first: the least-squares b has u_1ᵀb = −1/3,
  // so d = (−1, 0) conflicts with g_1 — as the reference's lstsq does; hence no "non-conflicting" declaration
  const rows = [[1, 0], [-1, 0.1], [-1, -0.1]];
  const d = Array.from(config.create(3).combine(mkInput(rows)).direction);
  assertClose(d, [-1, 0], 1e-6, "dependent");
  assert.ok(vdot(d, rows[0]!) < 0);
  assert.ok(!(getMethod("config").properties ?? []).includes("non-conflicting"));
  assertClose(config.create(1).combine(mkInput([[3, 4]])).coeffs, [1], 1e-15, "one task: d = g");
});

test("config: no options; registry entry and alias", () => {
  assert.throws(() => config.create(2, { x: 1 } as never), /config: unknown option "x"; valid options are \(none\)/);
  assert.throws(() => createMethod("config", 2, { weights: "1,2" }), /method config: unknown option "weights"; it takes no options/);
  assert.equal(getMethod("ConFIG"), config as never);
  assert.equal(getMethod("conflictfree"), config as never);
});

test("config: trains every architecture", async () => {
  assert.ok((await trainEveryArchitecture("config")).length >= 4);
});
