import { test } from "node:test";
import assert from "node:assert/strict";
import { parseMinWeights, peltr, peltrWeights } from "../../src/balance/peltr.ts";
import { createMethod, getMethod, resolveMethodOptions } from "../../src/balance/registry.ts";
import { gramian } from "../../src/balance/linalg.ts";
import { DEGENERATE, assertClose, assertDirectionMatchesCoeffs, assertWellFormed, mkInput, randomRows } from "./methodfixtures.ts";
import { checkFixtures, fixturesOf, trainEveryArchitecture } from "./gram-method-fixtures.ts";

const gramOfRows = (rows: number[][]) => gramian(rows.map((r) => Float32Array.from(r)));

test("peltr: pinned against the PE-LTR solver in numpy/scipy (relaxed KKT solution, SLSQP projection as TorchEasyRec), with and without minimum weights", () => {
  // the relaxed solution is the minimum-norm one and the projection is unique: compared everywhere
  const n = checkFixtures("peltr", () => true, { coeffs: 1e-9, direction: 1e-10 });
  assert.ok(n >= 40, `${n} coefficient comparisons`);
  for (const { c, key, m } of fixturesOf("peltr")) {
    const cw = Float64Array.from(m.options.minWeights as number[]);
    const { relaxed } = peltrWeights(Float64Array.from(c.G.flat()), c.T, cw);
    const scale = Math.max(1, ...m.relaxed!.map(Math.abs));
    assertClose(Array.from(relaxed, (x, i) => x - cw[i]!), m.relaxed!, 1e-9 * scale, `${c.name} ${key}: relaxed ω̂`);
  }
});

test("peltr: weights sum to 1 and respect the minimum weights; without active bounds they are the affine min-norm point", () => {
  for (let trial = 0; trial < 20; trial++) {
    const T = 2 + (trial % 5);
    const rows = randomRows(T, T + 3, 60 + trial);
    const G = gramOfRows(rows);
    const c = Float64Array.from({ length: T }, (_, i) => (trial % 2) * (0.05 + 0.02 * i));
    const { weights, relaxed } = peltrWeights(G, T, c);
    let s = 0;
    for (let i = 0; i < T; i++) {
      s += weights[i]!;
      assert.ok(weights[i]! >= c[i]! - 1e-15, `trial ${trial}: w_${i} = ${weights[i]} < c_${i} = ${c[i]}`);
    }
    assert.ok(Math.abs(s - 1) < 1e-12, `trial ${trial}: Σw = ${s}`);
    // the relaxed solution is stationary on the affine set: (G ω)_i equal for all i
    const Gw = Array.from({ length: T }, (_, i) => relaxed.reduce((acc, x, j) => acc + G[i * T + j]! * x, 0));
    for (const x of Gw) assert.ok(Math.abs(x - Gw[0]!) < 1e-9 * Math.max(...Gw.map(Math.abs)), `trial ${trial}: Gω̂ ${Gw}`);
    assert.ok(Math.abs(relaxed.reduce((a, b) => a + b, 0) - 1) < 1e-12);
    if (relaxed.every((x, i) => x >= c[i]!)) assertClose(weights, relaxed, 1e-12, `trial ${trial}: feasible relaxed solution kept`);
    // scale-invariant weights, permutation-equivariant (equal minimum weights)
    assertClose(peltrWeights(G.map((x) => x * 1e-8), T, c).weights, weights, 1e-9, `trial ${trial}: scale`);
    if (trial % 2 === 0) {
      const perm = Array.from({ length: T }, (_, i) => T - 1 - i);
      assertClose(peltrWeights(gramOfRows(perm.map((i) => rows[i]!)), T, c).weights, perm.map((i) => weights[i]!), 1e-9, `trial ${trial}: permutation`);
    }
  }
});

test("peltr: two orthogonal gradients pinned by hand, and the projection step with a minimum weight", () => {
  // ‖ω1 (2,0) + ω2 (0,1)‖² = 4ω1² + ω2² on ω1 + ω2 = 1 ⇒ ω = (1/5, 4/5)
  const rows = [[2, 0], [0, 1]];
  const out = peltr.create(2).combine(mkInput(rows));
  assertClose(out.coeffs, [0.2, 0.8], 1e-12, "no minimum");
  assertClose(out.taskScale, [0.2, 0.8], 1e-12, "towers weighted");
  assertClose(out.weights!, [0.2, 0.8], 1e-12, "reported weights");
  assertDirectionMatchesCoeffs(out, rows);
  // c = (0.3, 0): relaxed ω̂ = ω − c = (−0.1, 0.8), projected onto {≥ 0, Σ = 0.7}: (0, 0.7) ⇒ ω = (0.3, 0.7)
  assertClose(peltr.create(2, { minWeights: [0.3, 0] }).combine(mkInput(rows)).coeffs, [0.3, 0.7], 1e-12, "c = (0.3, 0)");
  // Σc = 1 fixes ω = c
  assertClose(peltr.create(2, { minWeights: [0.4, 0.6] }).combine(mkInput(rows)).coeffs, [0.4, 0.6], 1e-15, "Σc = 1");
  // a scalar applies to every task
  assertClose(peltr.create(2, { minWeights: 0.45 }).combine(mkInput(rows)).coeffs, [0.45, 0.55], 1e-12, "scalar c");
});

test("peltr: degenerate inputs — identical gradients share equally (where (MᵀM)⁻¹ is singular), opposite ones balance, zero gradient takes all", () => {
  for (const r of Object.values(DEGENERATE)) {
    const out = peltr.create(r.length).combine(mkInput(r));
    assertWellFormed(out, r.length, r[0]!.length);
    assertDirectionMatchesCoeffs(out, r);
  }
  assertClose(peltr.create(2).combine(mkInput([[1, 2], [1, 2]])).coeffs, [0.5, 0.5], 1e-12, "identical");
  assertClose(peltr.create(2).combine(mkInput(DEGENERATE.oppositeUnequal!)).coeffs, [0.75, 0.25], 1e-12, "opposite: d = 0");
  assertClose(peltr.create(3).combine(mkInput(DEGENERATE.zeroRow!)).coeffs, [0, 1, 0], 1e-12, "zero gradient: min norm 0");
  assertClose(peltr.create(2).combine(mkInput(DEGENERATE.allZero!)).coeffs, [0.5, 0.5], 1e-12, "all zero");
  assertClose(peltr.create(1, { minWeights: 0.2 }).combine(mkInput([[1, 1]])).coeffs, [1], 1e-15, "one task");
});

test("peltr: minWeights validated (≥ 0, Σ ≤ 1, one or T values; numbers, lists or comma-separated strings) with messages naming the option", () => {
  assertClose(parseMinWeights("0.1, 0.2,0.3", 3), [0.1, 0.2, 0.3], 0, "string list");
  assertClose(parseMinWeights("0.1", 3), [0.1, 0.1, 0.1], 0, "string scalar");
  assertClose(parseMinWeights([0.5], 2), [0.5, 0.5], 0, "one-element list");
  assert.throws(() => parseMinWeights(-0.1, 2), /peltr: option minWeights: the value must be a finite number >= 0, got -0.1/);
  assert.throws(() => parseMinWeights("0.1,x", 2), /peltr: option minWeights: entry 1 must be a finite number >= 0, got null/);
  assert.throws(() => parseMinWeights([0.1, 0.2], 3), /peltr: option minWeights has 2 values; give one number for every task or exactly 3/);
  assert.throws(() => parseMinWeights([0.6, 0.6], 2), /peltr: option minWeights: the minimum weights sum to 1.2 over 2 tasks; their sum must be <= 1/);
  assert.throws(() => parseMinWeights(0.4, 3), /sum to 1.2/);
  assert.throws(() => parseMinWeights("", 2), /empty string/);
  assert.throws(() => parseMinWeights({ a: 1 }, 2), /must be a number or a list of 2 numbers/);
  assert.throws(() => peltr.create(2, { minWeight: 0.1 } as never), /peltr: unknown option "minWeight"/);
  // through the registry, as from the command line (strings) and from a JSON config (numbers, lists)
  const cli = createMethod("pe-ltr", 3, { minWeights: "0.5,0.2,0.1" });
  assert.equal(cli.name, "peltr");
  assertClose(cli.combine(mkInput([[1, 0, 0], [0, 1, 0], [0, 0, 1]])).coeffs, [0.5, 0.25, 0.25], 1e-12, "cli list (c_1 binds)");
  assert.equal(createMethod("peltr", 2, { minWeights: [0.1, 0.2] }).name, "peltr");
  assert.deepEqual(resolveMethodOptions("peltr", {}), { minWeights: "0" });
  assert.equal(getMethod("PE-LTR"), peltr as never);
});

test("peltr: trains every architecture", async () => {
  assert.ok((await trainEveryArchitecture("peltr")).length >= 4);
});
