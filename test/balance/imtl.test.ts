import { test } from "node:test";
import assert from "node:assert/strict";
import { imtl, imtlCoeffs } from "../../src/balance/imtl.ts";
import { gramian } from "../../src/balance/linalg.ts";
import { DEGENERATE, assertClose, assertDirectionMatchesCoeffs, assertWellFormed, lincomb, mkInput, randomRows, vdot, vnorm } from "./methodfixtures.ts";

/** <d, g_i/‖g_i‖> for every i, in float64 from explicit vectors. */
function projections(rows: number[][], coeffs: ArrayLike<number>): number[] {
  const d = lincomb(rows, coeffs);
  return rows.map((r) => vdot(d, r) / vnorm(r));
}

test("imtl: 2 tasks × 3 dims pinned by hand", () => {
  // u1 = e1, u2 = e2; α2 = <g1, u1−u2>/<g1−g2, u1−u2> = 3/4, α1 = 1/4; d = [0.75, 0.75, 0].
  const rows = [[3, 0, 0], [0, 1, 0]];
  const out = imtl.create(2).combine(mkInput(rows));
  assertClose(out.coeffs, [0.25, 0.75], 1e-12, "coeffs");
  assertClose(out.direction, [0.75, 0.75, 0], 1e-7, "direction");
  assert.deepEqual(Array.from(out.taskScale), [1, 1]);
});

test("imtl: 3 tasks × 4 dims match Cramer's rule on the equal-projection system", () => {
  const rows = [[1, 2, 0, -1], [0, -1, 3, 1], [2, 0, 1, 1]];
  const u = rows.map((r) => r.map((x) => x / vnorm(r)));
  // unknowns α: Σα = 1, <Σα g, u1 − u2> = 0, <Σα g, u1 − u3> = 0
  const A = [
    [1, 1, 1],
    rows.map((g) => vdot(g, u[0]!) - vdot(g, u[1]!)),
    rows.map((g) => vdot(g, u[0]!) - vdot(g, u[2]!)),
  ];
  const b = [1, 0, 0];
  const det3 = (m: number[][]) =>
    m[0]![0]! * (m[1]![1]! * m[2]![2]! - m[1]![2]! * m[2]![1]!) -
    m[0]![1]! * (m[1]![0]! * m[2]![2]! - m[1]![2]! * m[2]![0]!) +
    m[0]![2]! * (m[1]![0]! * m[2]![1]! - m[1]![1]! * m[2]![0]!);
  const D = det3(A);
  const expected = [0, 1, 2].map((k) => det3(A.map((row, i) => row.map((x, j) => (j === k ? b[i]! : x)))) / D);
  const out = imtl.create(3).combine(mkInput(rows));
  assertClose(out.coeffs, expected, 1e-9, "coeffs");
  assertDirectionMatchesCoeffs(out, rows);
});

test("imtl: equal projections onto every unit task gradient and Σα = 1 for independent gradients; permutation symmetric", () => {
  for (let trial = 0; trial < 10; trial++) {
    const T = 2 + (trial % 5);
    const rows = randomRows(T, 20, 500 + trial);
    const { coeffs, fallback } = imtlCoeffs(gramian(rows.map((r) => Float32Array.from(r))), T);
    assert.equal(fallback, false);
    assert.ok(Math.abs(coeffs.reduce((a, b) => a + b, 0) - 1) < 1e-10);
    const p = projections(rows, coeffs);
    for (const x of p) assert.ok(Math.abs(x - p[0]!) < 1e-8 * Math.max(1, Math.abs(p[0]!)), `projections ${p}`);
    const perm = Array.from({ length: T }, (_, i) => (i + 1) % T);
    const cp = imtlCoeffs(gramian(perm.map((i) => Float32Array.from(rows[i]!))), T).coeffs;
    assertClose(cp, perm.map((i) => coeffs[i]!), 1e-9, "permutation");
  }
});

test("imtl: degenerate inputs — zero row excluded, colinear falls back to equal weights, opposite cancels", () => {
  const z = DEGENERATE.zeroRow!;
  const oz = imtl.create(3).combine(mkInput(z));
  assertWellFormed(oz, 3, 3);
  assert.equal(oz.coeffs[1], 0);
  const pz = projections([z[0]!, z[2]!], [oz.coeffs[0]!, oz.coeffs[2]!]);
  assert.ok(Math.abs(pz[0]! - pz[1]!) < 1e-9 && Math.abs(oz.coeffs[0]! + oz.coeffs[2]! - 1) < 1e-12);
  const col = imtlCoeffs(gramian(DEGENERATE.colinear!.map((r) => Float32Array.from(r))), 2);
  assert.equal(col.fallback, true);
  assertClose(col.coeffs, [0.5, 0.5], 0, "colinear fallback");
  const opp = imtl.create(2).combine(mkInput(DEGENERATE.oppositeUnequal!));
  // g2 = −3 g1: α2 = <g1, 2u>/<4 g1, 2u> = 1/4, α1 = 3/4 ⇒ d = 0.
  assertClose(opp.coeffs, [0.75, 0.25], 1e-9, "opposite");
  assert.ok(Math.hypot(...opp.direction) < 1e-6);
  for (const rows of Object.values(DEGENERATE)) {
    const out = imtl.create(rows.length).combine(mkInput(rows));
    assertWellFormed(out, rows.length, rows[0]!.length);
    assertDirectionMatchesCoeffs(out, rows);
  }
  assertClose(imtl.create(1).combine(mkInput([[1, 2]])).coeffs, [1], 0, "single task");
  // More tasks than dimensions: D Uᵀ singular ⇒ equal weights.
  const wide = imtlCoeffs(gramian(randomRows(4, 2, 3).map((r) => Float32Array.from(r))), 4);
  assert.equal(wide.fallback, true);
  assert.throws(() => imtl.create(2, { x: 1 } as never), /imtl: unknown option "x"/);
});
