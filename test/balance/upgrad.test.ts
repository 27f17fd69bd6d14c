import { test } from "node:test";
import assert from "node:assert/strict";
import { upgrad, upgradCoeffs } from "../../src/balance/upgrad.ts";
import { mgda } from "../../src/balance/mgda.ts";
import { createMethod, getMethod } from "../../src/balance/registry.ts";
import { gramian } from "../../src/balance/linalg.ts";
import { DEGENERATE, assertClose, assertWellFormed, lincomb, mkInput, randomRows, vdot, vnorm } from "./methodfixtures.ts";
import { checkFixtures, trainEveryArchitecture } from "./gram-method-fixtures.ts";

const gramOfRows = (rows: number[][]) => gramian(rows.map((r) => Float32Array.from(r)));

/** Gaussian elimination with partial pivoting (naive, independent of src/); null if singular. */
function solveDense(M: number[][], b: number[]): number[] | null {
  const n = b.length;
  const a = M.map((r, i) => [...r, b[i]!]);
  for (let c = 0; c < n; c++) {
    let p = c;
    for (let r = c + 1; r < n; r++) if (Math.abs(a[r]![c]!) > Math.abs(a[p]![c]!)) p = r;
    if (Math.abs(a[p]![c]!) < 1e-12) return null;
    [a[c], a[p]] = [a[p]!, a[c]!];
    for (let r = c + 1; r < n; r++) {
      const f = a[r]![c]! / a[c]![c]!;
      for (let k = c; k <= n; k++) a[r]![k] = a[r]![k]! - f * a[c]![k]!;
    }
  }
  const x = new Array<number>(n).fill(0);
  for (let r = n - 1; r >= 0; r--) {
    let s = a[r]![n]!;
    for (let k = r + 1; k < n; k++) s -= a[r]![k]! * x[k]!;
    x[r] = s / a[r]![r]!;
  }
  return x;
}

/**
 * argmin_{v ≥ u} vᵀAv for a positive definite A by enumerating every active set: for each
 * subset F of free coordinates solve A_FF v_F = −A_F,B u_B with v_B = u_B and keep the KKT
 * point (v_F ≥ u_F, (Av)_B ≥ 0). Exponential, independent of the active-set solver.
 */
function projectBrute(A: number[][], u: number[]): number[] {
  const T = u.length;
  for (let mask = 0; mask < 1 << T; mask++) {
    const F = [...Array(T).keys()].filter((k) => (mask >> k) & 1);
    const B = [...Array(T).keys()].filter((k) => !((mask >> k) & 1));
    const rhs = F.map((i) => -B.reduce((s, j) => s + A[i]![j]! * u[j]!, 0));
    const vf = F.length ? solveDense(F.map((i) => F.map((j) => A[i]![j]!)), rhs) : [];
    if (vf === null) continue;
    const v = u.slice();
    F.forEach((i, a) => (v[i] = vf[a]!));
    if (F.some((i) => v[i]! < u[i]! - 1e-12)) continue;
    const Av = A.map((row) => row.reduce((s, x, j) => s + x * v[j]!, 0));
    if (B.some((i) => Av[i]! < -1e-12)) continue;
    return v;
  }
  throw new Error("no KKT point");
}

test("upgrad: pinned against scipy (nnls on a square-root factor, cross-checked by SLSQP): exact projection and TorchJD's regularised one", () => {
  // regEps = 0: weights unique only for linearly independent gradients; the direction always
  const n = checkFixtures("upgrad", (c, m) => c.rank === c.T || (m.options.regEps as number) > 0, { coeffs: 1e-9, direction: 1e-10 });
  assert.ok(n >= 30, `${n} coefficient comparisons`);
});

test("upgrad: equals the mean of the brute-force projections (every active set enumerated) on random, conflicting and rank-deficient problems", () => {
  for (let trial = 0; trial < 24; trial++) {
    const T = 2 + (trial % 5);
    const d = trial % 4 === 3 ? Math.max(1, T - 2) : T + 3; // every fourth problem has more tasks than dimensions
    const rows = randomRows(T, d, 700 + trial).map((r, i) => r.map((x) => x * (1 + i)));
    if (trial % 4 === 1) rows[1] = rows[0]!.map((x, k) => Math.fround(-0.8 * x + 0.1 * rows[1]![k]!)); // a near-opposite pair
    const G = gramOfRows(rows);
    let tr = 0;
    for (let i = 0; i < T; i++) tr += G[i * T + i]!;
    const regEps = trial % 4 === 3 ? 1e-6 : 0; // brute force needs a positive definite A
    const A = Array.from({ length: T }, (_, i) => Array.from({ length: T }, (_, j) => G[i * T + j]! / tr + (i === j ? regEps : 0)));
    const expected = new Array<number>(T).fill(0);
    for (let i = 0; i < T; i++) {
      const u = new Array<number>(T).fill(0);
      u[i] = 1 / T;
      projectBrute(A, u).forEach((x, k) => (expected[k] = expected[k]! + x));
    }
    const w = upgradCoeffs(G, T, regEps);
    assertClose(w, expected, 1e-8, `trial ${trial} (T=${T}, d=${d})`);
  }
});

test("upgrad: non-conflicting (also with more tasks than dimensions), w ≥ 1/T, scale-equivariant, permutation-equivariant", () => {
  for (let trial = 0; trial < 20; trial++) {
    const T = 2 + (trial % 5);
    const d = trial % 2 === 0 ? T + 2 : Math.max(1, T - 1);
    const rows = randomRows(T, d, 1100 + trial).map((r, i) => r.map((x) => Math.fround(x * 10 ** (((i * 3) % 5) - 2))));
    const out = upgrad.create(T).combine(mkInput(rows));
    assertWellFormed(out, T, d);
    const dir = lincomb(rows, out.coeffs);
    const mass = rows.reduce((s, r, i) => s + Math.abs(out.coeffs[i]!) * vnorm(r), 0);
    for (const [i, g] of rows.entries()) {
      assert.ok(out.coeffs[i]! >= 1 / T - 1e-15, `trial ${trial}: w_${i} = ${out.coeffs[i]} < 1/T`);
      assert.ok(vdot(dir, g) >= -1e-9 * mass * vnorm(g), `trial ${trial}: <d, g_${i}> = ${vdot(dir, g)}`);
    }
    const G = gramOfRows(rows);
    for (const c of [1e-4, 3, 1e5]) assertClose(upgradCoeffs(G.map((x) => x * c * c), T), out.coeffs, 1e-9, `trial ${trial}: scale ${c}`);
    if (d > T) {
      const perm = Array.from({ length: T }, (_, i) => T - 1 - i);
      assertClose(upgradCoeffs(gramOfRows(perm.map((i) => rows[i]!)), T), perm.map((i) => out.coeffs[i]!), 1e-9, `trial ${trial}: permutation`);
    }
  }
});

test("upgrad: closed forms — non-conflicting gradients give the mean; two conflicting gradients project onto each other's normal", () => {
  // no conflict: every g_i is already in the dual cone, so w = 1/T each
  assertClose(upgrad.create(3).combine(mkInput([[1, 0, 0], [1, 1, 0], [0, 1, 1]])).coeffs, [1 / 3, 1 / 3, 1 / 3], 1e-15, "mean");
  // g1 = (1, 0), g2 = (−1, 1): π(g1) = g1 + λ g2 with <π(g1), g2> = 0 ⇒ λ = 1/2; π(g2) = g2 + μ g1, μ = 1
  // d = ½(g1 + ½ g2) + ½(g2 + g1) ⇒ w = (1, 3/4)
  const out = upgrad.create(2).combine(mkInput([[1, 0], [-1, 1]]));
  assertClose(out.coeffs, [1, 0.75], 1e-12, "two conflicting");
  assertClose(out.direction, [0.25, 0.75], 1e-7, "direction");
  assert.deepEqual(Array.from(out.taskScale), [1, 1]);
  // T = 2: the dual-cone projections make UPGrad's direction conflict-free like MGDA's (sanity, not equality)
  const mg = mgda.create(2).combine(mkInput([[1, 0], [-1, 1]]));
  assert.ok(vdot(Array.from(mg.direction), [1, 0]) >= 0 && vdot(Array.from(out.direction), [-1, 1]) >= 0);
});

test("upgrad: TorchJD's options — regEps pulls towards the mean, normEps turns small Gramians into the mean; degenerate inputs", () => {
  const rows = [[1, 0], [-1, 1]];
  const reg = upgrad.create(2, { regEps: 1e-4 }).combine(mkInput(rows)).coeffs;
  assert.ok(reg[0]! < 1 && reg[0]! > 0.99 && reg[1]! < 0.75, `regEps: ${reg}`);
  const tiny = rows.map((r) => r.map((x) => x * 1e-3)); // tr G = 3e-6 < 1e-4
  assertClose(upgrad.create(2, { normEps: 1e-4 }).combine(mkInput(tiny)).coeffs, [0.5, 0.5], 0, "normEps");
  assertClose(upgrad.create(2).combine(mkInput(tiny)).coeffs, [1, 0.75], 1e-9, "scale-free by default");
  for (const [name, r] of Object.entries(DEGENERATE)) {
    const out = upgrad.create(r.length).combine(mkInput(r));
    assertWellFormed(out, r.length, r[0]!.length);
    for (const g of r) assert.ok(vdot(Array.from(out.direction), g) >= -1e-6, `${name}: conflict`);
  }
  assertClose(upgrad.create(3).combine(mkInput(DEGENERATE.zeroRow!)).coeffs.subarray(1, 2), [1 / 3], 0, "zero gradient keeps 1/T");
  assertClose(upgrad.create(2).combine(mkInput(DEGENERATE.allZero!)).coeffs, [0.5, 0.5], 0, "all zero");
  assert.ok(vnorm(Array.from(upgrad.create(2).combine(mkInput(DEGENERATE.opposite!)).direction)) < 1e-6, "opposite: zero direction");
});

test("upgrad: options validated with messages naming the option; registry entry", () => {
  assert.throws(() => upgrad.create(2, { regEps: -1e-4 }), /upgrad: option regEps must be a finite number in \[0, 1\]/);
  assert.throws(() => upgrad.create(2, { normEps: Number.POSITIVE_INFINITY }), /upgrad: option normEps/);
  assert.throws(() => upgrad.create(2, { reg_eps: 1 } as never), /upgrad: unknown option "reg_eps"; valid options are regEps, normEps/);
  assert.throws(() => createMethod("upgrad", 2, { regEps: "x" }), /option regEps must be a number/);
  assert.equal(getMethod("UPGrad"), upgrad as never);
});

test("upgrad: trains every architecture", async () => {
  assert.ok((await trainEveryArchitecture("upgrad")).length >= 4);
});
