import { test } from "node:test";
import assert from "node:assert/strict";
import { gradnorm, gradnormGrad, gradnormObjective, gradnormTarget } from "../../src/balance/gradnorm.ts";
import { DEGENERATE, assertClose, assertDirectionMatchesCoeffs, assertStateRoundTrip, assertWellFormed, mkInput, randomRows } from "./methodfixtures.ts";

function wOf(m: { getState(): unknown }): number[] {
  return (m.getState() as { w: number[] }).w;
}

test("gradnorm: analytic gradient of L_grad matches finite differences (target held constant)", () => {
  const w = Float64Array.from([0.8, 1.3, 0.9]);
  const norms = Float64Array.from([2, 0.5, 1.5]);
  const losses = Float64Array.from([0.4, 0.9, 0.2]);
  const initial = Float64Array.from([1, 1, 0.5]);
  const target = gradnormTarget(w, norms, losses, initial, 1.5);
  // independent target: Ḡ = (1.6 + 0.65 + 1.35)/3 = 1.2; L̃ = [0.4, 0.9, 0.4], mean 17/30
  const rt = [0.4, 0.9, 0.4].map((x) => x / (1.7 / 3));
  assertClose(target, rt.map((r) => 1.2 * r ** 1.5), 1e-12, "target");
  const g = gradnormGrad(w, norms, target);
  const h = 1e-7;
  for (let i = 0; i < 3; i++) {
    const wp = Float64Array.from(w);
    const wm = Float64Array.from(w);
    wp[i] = wp[i]! + h;
    wm[i] = wm[i]! - h;
    const fd = (gradnormObjective(wp, norms, target) - gradnormObjective(wm, norms, target)) / (2 * h);
    assert.ok(Math.abs(fd - g[i]!) < 1e-6, `task ${i}: fd ${fd} vs analytic ${g[i]}`);
  }
});

test("gradnorm: one step (pinned by hand) moves weights against the gradient and lowers L_grad", () => {
  // ‖g1‖ = 1, ‖g2‖ = 3, losses at their initial values ⇒ r = 1, target = Ḡ = 2.
  // ∂L/∂w = [sign(1-2)·1, sign(3-2)·3] = [-1, 3]; first Adam step = ∓lr ⇒ w = [1.025, 0.975], Σ = 2 already.
  const rows = [[1, 0], [0, 3]];
  const m = gradnorm.create(2);
  const out = m.combine(mkInput(rows, { losses: [0.7, 0.2] }));
  assertClose(out.weights!, [1, 1], 0, "first-step weights");
  assertDirectionMatchesCoeffs(out, rows);
  const w1 = wOf(m);
  assertClose(w1, [1.025, 0.975], 1e-9, "updated weights");
  const norms = Float64Array.from([1, 3]);
  const obj = (w: number[]) => {
    const W = Float64Array.from(w);
    return gradnormObjective(W, norms, gradnormTarget(W, norms, Float64Array.from([0.7, 0.2]), Float64Array.from([0.7, 0.2]), 1.5));
  };
  assert.ok(Math.abs(obj([1, 1]) - 2) < 1e-12);
  assert.ok(Math.abs(obj(w1) - 1.9) < 1e-9, `L_grad after = ${obj(w1)}`);
  const out2 = m.combine(mkInput(rows, { losses: [0.7, 0.2], step: 1 }));
  assertClose(out2.weights!, w1, 0, "second call uses the updated weights");
  assertClose(out2.taskScale, w1, 0, "taskScale = weights");
});

test("gradnorm: converges to equal weighted norms when training rates are equal; slower tasks gain weight", () => {
  const rows = [[1, 0], [0, 3]];
  const m = gradnorm.create(2);
  let w: Float64Array = new Float64Array(2);
  for (let step = 0; step < 600; step++) w = m.combine(mkInput(rows, { losses: [1, 1], step })).weights!;
  assertClose(w, [1.5, 0.5], 0.05, "w ∝ 1/‖g‖");
  // task 0's loss falls slower relative to its start (ratio 1 vs 0.25) ⇒ r_0 > r_1 ⇒ w_0 grows.
  const m2 = gradnorm.create(2);
  m2.combine(mkInput([[1, 0], [0, 1]], { losses: [1, 1] }));
  const before = wOf(m2);
  m2.combine(mkInput([[1, 0], [0, 1]], { losses: [1, 0.25], step: 1 }));
  const after = wOf(m2);
  assert.ok(after[0]! > before[0]! && after[1]! < before[1]!, `${before} -> ${after}`);
  assert.ok(Math.abs(after[0]! + after[1]! - 2) < 1e-12);
});

test("gradnorm: weights stay positive and sum to T; degenerate inputs; state round trip; validation", () => {
  const m = gradnorm.create(2, { lr: 0.5 });
  for (let step = 0; step < 50; step++) {
    m.combine(mkInput([[1, 0], [0, 100]], { losses: [1, 1], step }));
    const w = wOf(m);
    assert.ok(w.every((x) => x > 0), `positive ${w}`);
    assert.ok(Math.abs(w[0]! + w[1]! - 2) < 1e-12);
  }
  for (const [name, r] of Object.entries(DEGENERATE)) {
    const mm = gradnorm.create(r.length);
    for (let step = 0; step < 3; step++) {
      const out = mm.combine(mkInput(r, { losses: r.map(() => 0), step }));
      assertWellFormed(out, r.length, r[0]!.length);
      assert.ok(wOf(mm).every((x) => Number.isFinite(x) && x > 0), name);
    }
  }
  const rows = randomRows(3, 5, 11);
  assertStateRoundTrip(
    () => gradnorm.create(3),
    [0, 1, 2].map((step) => mkInput(rows, { losses: [1, 2, 3 - step], step })),
    [3, 4, 5].map((step) => mkInput(rows, { losses: [0.5, 2, 1], step })),
  );
  assert.throws(() => gradnorm.create(2, { alpha: -1 }), /gradnorm: option alpha/);
  assert.throws(() => gradnorm.create(2, { lr: Number.POSITIVE_INFINITY }), /gradnorm: option lr/);
  assert.throws(() => gradnorm.create(2).setState({ w: [1, 1], initial: [1], adam: { m: [0, 0], v: [0, 0], t: 0 } }), /initial/);
});
