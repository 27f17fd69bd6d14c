import { test } from "node:test";
import assert from "node:assert/strict";
import { uw, uwGrad, uwObjective } from "../../src/balance/uw.ts";
import { DEGENERATE, assertClose, assertDirectionMatchesCoeffs, assertStateRoundTrip, assertWellFormed, mkInput, randomRows } from "./methodfixtures.ts";

function sOf(state: unknown): number[] {
  return (state as { s: number[] }).s;
}

test("uw: initial weights are exp(-init) and towers get the same scale", () => {
  const rows = [[1, 0, 2], [0, -1, 1]];
  const out0 = uw.create(2).combine(mkInput(rows, { losses: [0.7, 1.3] }));
  assertClose(out0.weights!, [1, 1], 0, "weights at init 0");
  const out = uw.create(2, { init: 0.5 }).combine(mkInput(rows, { losses: [0.7, 1.3] }));
  const e = Math.exp(-0.5);
  assertClose(out.weights!, [e, e], 1e-15, "weights at init 0.5");
  assertClose(out.taskScale, [e, e], 1e-15, "taskScale");
  assertClose(out.coeffs, [e, e], 1e-15, "coeffs");
  assertDirectionMatchesCoeffs(out, rows);
});

test("uw: analytic gradient matches finite differences and a step moves s against it", () => {
  const s = Float64Array.from([0.3, -0.2, 0]);
  const L = Float64Array.from([2.0, 0.5, 1.0 + 1e-3]);
  const g = uwGrad(s, L);
  const h = 1e-6;
  for (let i = 0; i < 3; i++) {
    const sp = Float64Array.from(s);
    const sm = Float64Array.from(s);
    sp[i] = sp[i]! + h;
    sm[i] = sm[i]! - h;
    const fd = (uwObjective(sp, L) - uwObjective(sm, L)) / (2 * h);
    assert.ok(Math.abs(fd - g[i]!) < 1e-6, `fd ${fd} vs analytic ${g[i]}`);
  }
  // One method step from s = 0 with lr 0.01: first Adam step moves each s_i by ≈ -lr·sign(∂L/∂s_i).
  const lr = 0.01;
  const m = uw.create(3, { lr });
  m.combine(mkInput([[1, 0], [0, 1], [1, 1]], { losses: Array.from(L) }));
  const s1 = sOf(m.getState());
  const g0 = uwGrad(new Float64Array(3), L);
  for (let i = 0; i < 3; i++) {
    assert.equal(Math.sign(s1[i]!), -Math.sign(g0[i]!), `task ${i} moves against the gradient`);
    assert.ok(Math.abs(Math.abs(s1[i]!) - lr) < 1e-4 * lr, `|Δs| ≈ lr on the first Adam step (up to Adam eps), got ${s1[i]}`);
  }
  assert.ok(uwObjective(Float64Array.from(s1), L) < uwObjective(new Float64Array(3), L));
  // The next call uses the updated s.
  const out = m.combine(mkInput([[1, 0], [0, 1], [1, 1]], { losses: Array.from(L), step: 1 }));
  assertClose(out.weights!, s1.map((x) => Math.exp(-x)), 1e-15, "weights after one step");
});

test("uw: with constant losses the weights converge to the stationary point exp(-s_i) = 1/L_i", () => {
  const m = uw.create(2, { lr: 0.02 });
  const L = [4, 0.25];
  const rows = [[1, 0], [0, 1]];
  let w: Float64Array = new Float64Array(2);
  for (let step = 0; step < 4000; step++) w = m.combine(mkInput(rows, { losses: L, step })).weights!;
  assertClose(w, [0.25, 4], 0.02, "converged weights");
});

test("uw: state round trip, degenerate inputs, option validation", () => {
  const rows = randomRows(3, 6, 5);
  const make = () => uw.create(3, { lr: 0.05 });
  const before = [0, 1, 2].map((step) => mkInput(rows, { losses: [1 + step, 0.5, 2], step }));
  const after = [3, 4, 5].map((step) => mkInput(rows, { losses: [0.3, 1 + step, 2], step }));
  assertStateRoundTrip(make, before, after);
  for (const [name, r] of Object.entries(DEGENERATE)) {
    const out = uw.create(r.length).combine(mkInput(r, { losses: r.map(() => 0) }));
    assertWellFormed(out, r.length, r[0]!.length);
    assert.ok(out.weights!.every((x) => x > 0), name);
  }
  assert.throws(() => uw.create(2, { lr: -1 }), /uw: option lr/);
  assert.throws(() => uw.create(2, { init: Number.NaN }), /uw: option init/);
  assert.throws(() => uw.create(2, { lR: 1 } as never), /unknown option "lR"/);
  assert.throws(() => uw.create(2).setState({ s: [1] }), /uw: setState: s/);
  assert.throws(() => uw.create(2).combine(mkInput([[1], [2]], { losses: [1, Number.NaN] })), /not finite/);
});
