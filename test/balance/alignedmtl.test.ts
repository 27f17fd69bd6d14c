import { test } from "node:test";
import assert from "node:assert/strict";
import { alignedBasis, alignedCoeffs, alignedmtl } from "../../src/balance/alignedmtl.ts";
import { gramian } from "../../src/balance/linalg.ts";
import { DEGENERATE, assertClose, assertDirectionMatchesCoeffs, assertWellFormed, mkInput, randomRows, vdot } from "./methodfixtures.ts";

const gramOfRows = (rows: number[][]) => gramian(rows.map((r) => Float32Array.from(r)));

/** Gramian of the aligned gradients B·[g_1; …; g_T], computed from explicit vectors in float64. */
function alignedGram(B: Float64Array, rows: number[][]): number[][] {
  const T = rows.length;
  const aligned = Array.from({ length: T }, (_, i) => rows[0]!.map((_, k) => rows.reduce((s, r, j) => s + B[i * T + j]! * r[k]!, 0)));
  return aligned.map((a) => aligned.map((b) => vdot(a, b)));
}

test("alignedmtl: orthogonal gradients pinned by hand", () => {
  // M = diag(4, 1): λ_min = 1, B = diag(1/2, 1), α = [0.5, 1], d = [1, 1].
  const out = alignedmtl.create(2).combine(mkInput([[2, 0], [0, 1]]));
  assertClose(out.coeffs, [0.5, 1], 1e-12, "α");
  assertClose(out.direction, [1, 1], 1e-7, "direction");
  assert.deepEqual(Array.from(out.taskScale), [1, 1]);
});

test("alignedmtl: non-orthogonal 2×2 pinned through the closed-form 2×2 matrix square root", () => {
  // g1 = [1, 0], g2 = [1, 1]: M = [[1, 1], [1, 2]], det 1, trace 3 ⇒ √M = (M + I)/√5, M^{-1/2} = [[3, −1], [−1, 2]]/√5,
  // λ_min = (3 − √5)/2, B = √λ_min M^{-1/2}, α = B·1 = √λ_min [2, 1]/√5.
  const rows = [[1, 0], [1, 1]];
  const lmin = (3 - Math.sqrt(5)) / 2;
  const expected = [2, 1].map((x) => (Math.sqrt(lmin) * x) / Math.sqrt(5));
  const out = alignedmtl.create(2).combine(mkInput(rows));
  assertClose(out.coeffs, expected, 1e-10, "α");
  assertDirectionMatchesCoeffs(out, rows);
});

test("alignedmtl: colinear gradients keep rank 1 (pinned): α = v(vᵀ1), d = 3 g1", () => {
  const rows = [[1, 0, 0], [2, 0, 0]];
  const { rank } = alignedBasis(gramOfRows(rows), 2);
  assert.equal(rank, 1);
  const out = alignedmtl.create(2).combine(mkInput(rows));
  assertClose(out.coeffs, [0.6, 1.2], 1e-10, "α");
  assertClose(out.direction, [3, 0, 0], 1e-6, "direction");
});

test("alignedmtl: aligned gradients have equal singular values σ on the kept subspace (condition number 1)", () => {
  for (let trial = 0; trial < 10; trial++) {
    const T = 2 + (trial % 4);
    const rows = randomRows(T, 7, 40 + trial);
    const deficient = trial % 3 === 2 && T >= 3;
    if (deficient) rows[T - 1] = rows[0]!.map((x, k) => Math.fround(0.5 * x - rows[1]![k]!)); // rank deficient (up to float32 rounding)
    const G = gramOfRows(rows);
    for (const scale of ["min", "median", "rmse"] as const) {
      const { B, rank } = alignedBasis(G, T, scale);
      assert.equal(rank, deficient ? T - 1 : T);
      const Ga = alignedGram(B, rows);
      // Ga = σ² P with P an orthogonal projector of rank r ⇔ Ga² = σ² Ga and trace = r σ².
      let tr = 0;
      for (let i = 0; i < T; i++) tr += Ga[i]![i]!;
      const s2 = tr / rank;
      let maxAbs = 0;
      for (let i = 0; i < T; i++) {
        for (let j = 0; j < T; j++) {
          const sq = Ga[i]!.reduce((s, x, k) => s + x * Ga[k]![j]!, 0);
          maxAbs = Math.max(maxAbs, Math.abs(sq - s2 * Ga[i]![j]!));
        }
      }
      assert.ok(maxAbs < 1e-8 * s2 * s2, `trial ${trial} ${scale}: Ga² − σ²Ga = ${maxAbs}`);
      const a = alignedCoeffs(G, T, scale);
      for (let j = 0; j < T; j++) assert.ok(Math.abs(a[j]! - Array.from({ length: T }, (_, i) => B[i * T + j]!).reduce((x, y) => x + y, 0)) < 1e-12);
    }
  }
});

test("alignedmtl: σ² per scale mode on a diagonal problem; permutation symmetry; degenerate inputs; validation", () => {
  // Orthogonal with norms² 9, 4, 1: λ = 9, 4, 1 ⇒ min σ² = 1, median σ² = 4, rmse σ² = 14/3; α_i = σ/‖g_i‖.
  const rows = [[3, 0, 0], [0, 2, 0], [0, 0, 1]];
  for (const [scale, s2] of [["min", 1], ["median", 4], ["rmse", 14 / 3]] as const) {
    const out = alignedmtl.create(3, { scale }).combine(mkInput(rows));
    assertClose(out.coeffs, [3, 2, 1].map((n) => Math.sqrt(s2) / n), 1e-10, scale);
  }
  const r = randomRows(4, 6, 8);
  const a = alignedCoeffs(gramOfRows(r), 4);
  const perm = [3, 1, 0, 2];
  assertClose(alignedCoeffs(gramOfRows(perm.map((i) => r[i]!)), 4), perm.map((i) => a[i]!), 1e-9, "permutation");
  for (const rowsD of Object.values(DEGENERATE)) {
    const out = alignedmtl.create(rowsD.length).combine(mkInput(rowsD));
    assertWellFormed(out, rowsD.length, rowsD[0]!.length);
    assertDirectionMatchesCoeffs(out, rowsD);
  }
  assertClose(alignedmtl.create(2).combine(mkInput(DEGENERATE.allZero!)).coeffs, [0, 0], 0, "all zero");
  assert.throws(() => alignedmtl.create(2, { scale: "max" as never }), /alignedmtl: option scale/);
});
