import { test } from "node:test";
import assert from "node:assert/strict";
import { nashmtl, nashSolve } from "../../src/balance/nashmtl.ts";
import { gramian } from "../../src/balance/linalg.ts";
import { DEGENERATE, assertClose, assertDirectionMatchesCoeffs, assertStateRoundTrip, assertWellFormed, lincomb, mkInput, randomRows, vnorm } from "./methodfixtures.ts";

const gramOfRows = (rows: number[][]) => gramian(rows.map((r) => Float32Array.from(r)));

test("nashmtl: orthogonal gradients pinned by hand: α_i = 1/‖g_i‖, then clipped to unit norm", () => {
  const rows = [[2, 0, 0], [0, 1, 0]];
  const raw = nashmtl.create(2, { maxNorm: 0 }).combine(mkInput(rows));
  assertClose(raw.coeffs, [0.5, 1], 1e-7, "unclipped α");
  assertClose(raw.direction, [1, 1, 0], 1e-7, "direction");
  const clipped = nashmtl.create(2).combine(mkInput(rows));
  assertClose(clipped.coeffs, [0.5 / Math.SQRT2, 1 / Math.SQRT2], 1e-7, "clipped α");
  assert.deepEqual(Array.from(clipped.taskScale), [1, 1]);
});

test("nashmtl: 2 tasks closed form α2/α1 = ‖g1‖/‖g2‖, α1 = 1/sqrt(G11 + G12·α2/α1)", () => {
  // g1 = [1, 0, 0], g2 = [1, 1, 0]: G11 = 1, G12 = 1, G22 = 2 ⇒ r = 1/√2, α1 = 1/sqrt(1 + 1/√2), α2 = r α1
  const rows = [[1, 0, 0], [1, 1, 0]];
  const r = 1 / Math.SQRT2;
  const a1 = 1 / Math.sqrt(1 + r);
  const out = nashmtl.create(2, { maxNorm: 0 }).combine(mkInput(rows));
  assertClose(out.coeffs, [a1, r * a1], 1e-7, "α");
  assertDirectionMatchesCoeffs(out, rows);
});

test("nashmtl: (G Gᵀ)α = 1/α with α > 0 on random problems; clipped direction has unit norm; permutation symmetric", () => {
  for (let trial = 0; trial < 12; trial++) {
    const T = 2 + (trial % 5);
    const rows = randomRows(T, 3 + T, 900 + trial).map((r) => r.map((x) => x * (trial + 1) * 10));
    const G = gramOfRows(rows);
    const a = nashSolve(G, T);
    for (let i = 0; i < T; i++) {
      assert.ok(a[i]! > 0, "α > 0");
      let Ga = 0;
      for (let j = 0; j < T; j++) Ga += G[i * T + j]! * a[j]!;
      assert.ok(Math.abs(Ga * a[i]! - 1) < 1e-6, `trial ${trial}: (Gα)_i α_i = ${Ga * a[i]!}`);
    }
    const out = nashmtl.create(T).combine(mkInput(rows));
    assert.ok(Math.abs(vnorm(lincomb(rows, out.coeffs)) - 1) < 1e-6, "‖d‖ = 1 after clipping (‖d‖² = T before)");
    const perm = Array.from({ length: T }, (_, i) => T - 1 - i);
    const ap = nashSolve(gramOfRows(perm.map((i) => rows[i]!)), T);
    assertClose(ap, perm.map((i) => a[i]!), 1e-8, "permutation");
  }
});

test("nashmtl: degenerate inputs stay finite and positive", () => {
  for (const [name, rows] of Object.entries(DEGENERATE)) {
    const T = rows.length;
    const out = nashmtl.create(T).combine(mkInput(rows));
    assertWellFormed(out, T, rows[0]!.length);
    assert.ok(out.coeffs.every((x) => x > 0), `${name}: α > 0`);
    assert.ok(vnorm(Array.from(out.direction)) <= 1 + 1e-5, `${name}: clipped`);
  }
  // zero row: the other two tasks still satisfy their Nash conditions.
  const z = DEGENERATE.zeroRow!;
  const a = nashSolve(gramOfRows(z), 3);
  const b = nashSolve(gramOfRows([z[0]!, z[2]!]), 2);
  assertClose([a[0]!, a[2]!], b, 1e-6, "zero row leaves the others unchanged");
});

test("nashmtl: updateWeightsEvery reuses α between updates; state round trip; validation", () => {
  const rowsA = randomRows(3, 5, 1);
  const rowsB = randomRows(3, 5, 2);
  const m = nashmtl.create(3, { updateWeightsEvery: 2, maxNorm: 0 });
  const a0 = m.combine(mkInput(rowsA, { step: 0 })).coeffs;
  const a1 = m.combine(mkInput(rowsB, { step: 1 })).coeffs;
  assertClose(a1, a0, 0, "reused on step 1");
  const a2 = m.combine(mkInput(rowsB, { step: 2 })).coeffs;
  assertClose(a2, nashSolve(gramOfRows(rowsB), 3), 1e-12, "recomputed on step 2");
  assertStateRoundTrip(
    () => nashmtl.create(3, { updateWeightsEvery: 3 }),
    [mkInput(rowsA, { step: 0 })],
    [mkInput(rowsB, { step: 1 }), mkInput(rowsB, { step: 2 }), mkInput(rowsA, { step: 3 })],
  );
  assert.throws(() => nashmtl.create(2, { maxNorm: -1 }), /nashmtl: option maxNorm/);
  assert.throws(() => nashmtl.create(2, { updateWeightsEvery: 0 }), /nashmtl: option updateWeightsEvery/);
  assert.throws(() => nashmtl.create(2, { updateWeightsEvery: 1.5 }), /integer/);
});
