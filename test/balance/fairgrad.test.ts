import { test } from "node:test";
import assert from "node:assert/strict";
import { FAIRGRAD_RIDGE, fairgrad, fairgradCoeffs } from "../../src/balance/fairgrad.ts";
import { nashmtl } from "../../src/balance/nashmtl.ts";
import { createMethod, getMethod } from "../../src/balance/registry.ts";
import { gramian } from "../../src/balance/linalg.ts";
import { DEGENERATE, assertClose, assertWellFormed, lincomb, mkInput, randomRows, vdot, vnorm } from "./methodfixtures.ts";
import { checkFixtures, fixturesOf, trainEveryArchitecture } from "./gram-method-fixtures.ts";

const gramOfRows = (rows: number[][]) => gramian(rows.map((r) => Float32Array.from(r)));

test("fairgrad: pinned against scipy least_squares (float64 fixtures: random, correlated, spread norms, rank deficient, zero, identical, opposed; α = 0.5, 1, 2; with and without the clip)", () => {
  // the weights are unique (strictly convex problem), so they are compared everywhere
  const n = checkFixtures("fairgrad", () => true, { coeffs: 1e-6, direction: 1e-9 });
  assert.ok(n >= 90, `${n} coefficient comparisons`);
});

test("fairgrad: matches the literal reference call (least_squares with default tolerances, no ridge) to its stopping accuracy", () => {
  let n = 0;
  for (const { c, m } of fixturesOf("fairgrad")) {
    if (!m.reference) continue;
    const w = fairgrad.weightsFromGram(c.G, m.options).coeffs;
    assertClose(w, m.reference, 1e-4 * Math.max(...m.reference.map(Math.abs)), `${c.name} ${JSON.stringify(m.options)}`);
    n++;
  }
  assert.ok(n >= 20, `${n} reference comparisons`);
});

test("fairgrad: orthogonal gradients pinned by hand: w_i = ‖g_i‖^(-2α/(α+1)), then the clip", () => {
  // G = diag(4, 1): w_i G_ii = w_i^{-1/α} ⇒ w_i = G_ii^{-α/(α+1)}
  const rows = [[2, 0, 0], [0, 1, 0]];
  for (const alpha of [0.5, 1, 2, 5]) {
    const out = fairgrad.create(2, { alpha, maxNorm: 0 }).combine(mkInput(rows));
    const e = [4, 1].map((g) => Math.pow(g, -alpha / (alpha + 1)) / (1 + FAIRGRAD_RIDGE) ** (alpha / (alpha + 1)));
    assertClose(out.coeffs, e, 1e-12, `α = ${alpha}`);
    assert.deepEqual(Array.from(out.taskScale), [1, 1]);
  }
  // α = 1: w = (1/2, 1), d = (1, 1), ‖d‖ = √2 → clipped to norm 1
  const clipped = fairgrad.create(2).combine(mkInput(rows));
  assertClose(clipped.coeffs, [0.5 / Math.SQRT2, 1 / Math.SQRT2], 1e-8, "clipped");
  assert.ok(Math.abs(vnorm(Array.from(clipped.direction)) - 1) < 1e-6);
});

test("fairgrad: (G w)_i = w_i^(-1/α), every task improves, α = 1 equals Nash-MTL's condition; permutation symmetric", () => {
  for (let trial = 0; trial < 15; trial++) {
    const T = 2 + (trial % 5);
    const alpha = [0.5, 1, 2][trial % 3]!;
    const rows = randomRows(T, 4 + T, 300 + trial).map((r, i) => r.map((x) => Math.fround(x * 10 ** ((i % 3) - 1))));
    const G = gramOfRows(rows);
    const w = fairgradCoeffs(G, T, alpha, 0);
    for (let i = 0; i < T; i++) {
      assert.ok(w[i]! > 0, "w > 0");
      let Gw = 0;
      for (let j = 0; j < T; j++) Gw += G[i * T + j]! * w[j]!;
      const target = Math.pow(w[i]!, -1 / alpha);
      assert.ok(Math.abs(Gw - target) <= 1e-6 * target, `trial ${trial}: (Gw)_${i} = ${Gw}, w^(-1/α) = ${target}`);
      // non-conflicting: <d, g_i> > 0 from the explicit vectors
      const d = lincomb(rows, w);
      assert.ok(vdot(d, rows[i]!) > 0, `trial ${trial}: <d, g_${i}> > 0`);
    }
    if (alpha === 1) {
      // on gradients of one scale (Nash-MTL's ridge is relative to ‖G‖_F, ours to each task's norm)
      const G1 = gramOfRows(randomRows(T, 4 + T, 300 + trial));
      assertClose(fairgradCoeffs(G1, T, 1, 0), nashmtl.weightsFromGram(G1, { maxNorm: 0 }).coeffs, 1e-6, `trial ${trial}: Nash-MTL`);
    }
    const perm = Array.from({ length: T }, (_, i) => (i + 2) % T);
    const wp = fairgradCoeffs(gramOfRows(perm.map((i) => rows[i]!)), T, alpha, 0);
    assertClose(wp, perm.map((i) => w[i]!), 1e-9, `trial ${trial}: permutation`);
  }
});

test("fairgrad: scaling the gradients by c scales the unclipped direction by c^((1−α)/(1+α)) (α = 1: scale-invariant)", () => {
  const rows = randomRows(4, 9, 77);
  for (const alpha of [0.5, 1, 2]) {
    const G = gramOfRows(rows);
    const w = fairgradCoeffs(G, 4, alpha, 0);
    for (const c of [0.01, 7]) {
      const Gc = G.map((x) => x * c * c);
      const wc = fairgradCoeffs(Gc, 4, alpha, 0);
      // direction_c = Σ wc_i (c g_i) = c^((1−α)/(1+α)) Σ w_i g_i ⇔ wc = c^(−2α/(1+α)) w
      assertClose(wc, Array.from(w, (x) => x * c ** ((-2 * alpha) / (1 + alpha))), 1e-8, `α = ${alpha}, c = ${c}`);
    }
  }
});

test("fairgrad: degenerate inputs — zero gradient gets weight 0, opposite gradients cancel, all zero gives zero", () => {
  for (const [name, rows] of Object.entries(DEGENERATE)) {
    const out = fairgrad.create(rows.length).combine(mkInput(rows));
    assertWellFormed(out, rows.length, rows[0]!.length);
    // float32 rounding of the combination, relative to Σ|c_i|‖g_i‖ (opposite tasks get large cancelling weights)
    const mass = rows.reduce((acc, r, i) => acc + Math.abs(out.coeffs[i]!) * vnorm(r), 0);
    const want = lincomb(rows, out.coeffs);
    for (let k = 0; k < want.length; k++) assert.ok(Math.abs(out.direction[k]! - want[k]!) <= 1e-6 * mass + 1e-12, `${name}: direction vs Σ c g`);
    assert.ok(vnorm(Array.from(out.direction)) <= 1 + 1e-6, `${name}: clipped`);
  }
  const z = fairgrad.create(3).combine(mkInput(DEGENERATE.zeroRow!));
  assert.equal(z.coeffs[1], 0);
  assert.ok(z.coeffs[0]! > 0 && z.coeffs[2]! > 0);
  const opp = fairgrad.create(2, { maxNorm: 0 }).combine(mkInput(DEGENERATE.oppositeUnequal!));
  // g2 = −3 g1: the ridge's minimiser has 3 w2 = w1 up to ~1e-8, so d ≈ 0 relative to the weights
  assert.ok(vnorm(Array.from(opp.direction)) < 1e-6 * opp.coeffs[0]! * vnorm(DEGENERATE.oppositeUnequal![0]!), `opposite: ${opp.direction}`);
  assertClose(fairgrad.create(2).combine(mkInput(DEGENERATE.allZero!)).coeffs, [0, 0], 0, "all zero");
  // one task: w = ‖g‖^(-2α/(α+1)) (α = 1: the unit gradient)
  const one = fairgrad.create(1, { maxNorm: 0 }).combine(mkInput([[3, 4]]));
  assertClose(one.coeffs, [1 / 5 / Math.sqrt(1 + FAIRGRAD_RIDGE)], 1e-12, "one task");
});

test("fairgrad: options validated with messages naming the option; registry entry", () => {
  assert.throws(() => fairgrad.create(2, { alpha: 0 }), /fairgrad: option alpha must be a finite number in \[0.1, 100\]/);
  assert.throws(() => fairgrad.create(2, { alpha: Number.NaN }), /option alpha/);
  assert.throws(() => fairgrad.create(2, { maxNorm: -1 }), /fairgrad: option maxNorm must be a finite number >= 0/);
  assert.throws(() => fairgrad.create(2, { alfa: 2 } as never), /fairgrad: unknown option "alfa"; valid options are alpha, maxNorm/);
  assert.throws(() => createMethod("fairgrad", 2, { alpha: "two" }), /option alpha must be a number/);
  assert.equal(createMethod("fairgrad", 2, { alpha: "2" }).name, "fairgrad");
  assert.equal(getMethod("fairgrad"), fairgrad as never);
  assert.throws(() => fairgrad.create(2).setState({ w: [1] }), /stateless/);
});

test("fairgrad: trains every architecture", async () => {
  assert.ok((await trainEveryArchitecture("fairgrad")).length >= 4);
});
