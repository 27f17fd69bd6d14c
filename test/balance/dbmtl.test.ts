import { test } from "node:test";
import assert from "node:assert/strict";
import { dbmtl } from "../../src/balance/dbmtl.ts";
import { Rng } from "../../src/util/rng.ts";
import { DEGENERATE, assertClose, assertDirectionMatchesCoeffs, assertStateRoundTrip, assertWellFormed, mkInput, randomRows, vnorm } from "./methodfixtures.ts";

/** Straightforward float64 DB-MTL over explicit vectors, for comparison. */
function naiveDB(steps: { rows: number[][]; losses: number[] }[], beta = 0.9, sigma = 0): number[] {
  const T = steps[0]!.rows.length;
  const d = steps[0]!.rows[0]!.length;
  let ema = Array.from({ length: T }, () => new Array<number>(d).fill(0));
  let dir: number[] = [];
  steps.forEach(({ rows, losses }, idx) => {
    const b = beta / Math.pow(idx + 1, sigma);
    ema = ema.map((e, i) => e.map((x, k) => b * x + ((1 - b) * rows[i]![k]!) / (losses[i]! + 1e-8)));
    const n = ema.map((e) => vnorm(e));
    const mx = Math.max(...n);
    dir = new Array<number>(d).fill(0).map((_, k) => ema.reduce((s, e, i) => s + (mx / (n[i]! + 1e-8)) * e[k]!, 0));
  });
  return dir;
}

test("dbmtl: first step pinned by hand", () => {
  // β_1 = 0.9: ĝ1 = 0.1·[3, 0]/1 = [0.3, 0], ĝ2 = 0.1·[0, 1]/0.5 = [0, 0.2]; α = [1, 1.5] ⇒ d = [0.3, 0.3].
  const rows = [[3, 0], [0, 1]];
  const out = dbmtl.create(2).combine(mkInput(rows, { losses: [1, 0.5] }));
  assertClose(out.direction, [0.3, 0.3], 1e-6, "direction");
  assertDirectionMatchesCoeffs(out, rows, 1e-6); // no history yet: direction = Σ coeffs g
  assert.deepEqual(Array.from(out.taskScale), [1, 1]);
});

test("dbmtl: several steps match an independent float64 implementation; scaled EMA vectors share the max norm", () => {
  const steps = [0, 1, 2, 3, 4].map((s) => ({ rows: randomRows(3, 6, 70 + s), losses: [1 + s, 0.5, 2 / (s + 1)] }));
  const m = dbmtl.create(3, { betaSigma: 0.5 });
  let out = m.combine(mkInput(steps[0]!.rows, { losses: steps[0]!.losses }));
  for (let s = 1; s < steps.length; s++) out = m.combine(mkInput(steps[s]!.rows, { losses: steps[s]!.losses, step: s }));
  assertClose(out.direction, naiveDB(steps, 0.9, 0.5), 1e-5, "direction after 5 steps, β_t = 0.9/√t");
  const md = dbmtl.create(3);
  let od = md.combine(mkInput(steps[0]!.rows, { losses: steps[0]!.losses }));
  for (let s = 1; s < steps.length; s++) od = md.combine(mkInput(steps[s]!.rows, { losses: steps[s]!.losses, step: s }));
  assertClose(od.direction, naiveDB(steps), 1e-5, "direction after 5 steps, default plain EMA β = 0.9");
  assert.ok(Math.abs(od.direction[0]! - out.direction[0]!) > 1e-6, "σ changes the result");
  const ema = (md.getState() as { ema: number[][] }).ema;
  const n = ema.map((e) => vnorm(e));
  const mx = Math.max(...n);
  for (const x of n) assert.ok(Math.abs((mx / (x + 1e-8)) * x - mx) < 1e-6 * mx);
  // betaSigma = 0 is the plain EMA with constant β
  const m0 = dbmtl.create(3, { betaSigma: 0, beta: 0.5 });
  m0.combine(mkInput(steps[0]!.rows, { losses: steps[0]!.losses }));
  const o0 = m0.combine(mkInput(steps[1]!.rows, { losses: steps[1]!.losses, step: 1 }));
  assertClose(o0.direction, naiveDB(steps.slice(0, 2), 0.5, 0), 1e-5, "plain EMA");
});

test("dbmtl: permutation symmetric, finite on degenerate inputs and zero losses", () => {
  const rows = randomRows(3, 5, 3);
  const a = dbmtl.create(3).combine(mkInput(rows, { losses: [1, 2, 3] }));
  const perm = [1, 2, 0];
  const b = dbmtl.create(3).combine(mkInput(perm.map((i) => rows[i]!), { losses: perm.map((i) => [1, 2, 3][i]!) }));
  assertClose(b.direction, a.direction, 1e-6, "direction invariant under task permutation");
  assertClose(b.coeffs, perm.map((i) => a.coeffs[i]!), 1e-9, "coeffs permuted");
  for (const r of Object.values(DEGENERATE)) {
    const m = dbmtl.create(r.length);
    for (let s = 0; s < 3; s++) {
      const out = m.combine(mkInput(r, { losses: r.map(() => (s === 0 ? 0 : 0.3)), step: s }));
      assertWellFormed(out, r.length, r[0]!.length);
    }
  }
});

test("dbmtl: state round trip and validation", () => {
  const rows = randomRows(2, 4, 5);
  assertStateRoundTrip(
    () => dbmtl.create(2),
    [0, 1].map((s) => mkInput(rows, { losses: [1, 2 + s], step: s })),
    [2, 3, 4].map((s) => mkInput(randomRows(2, 4, s), { losses: [0.5, 1], step: s })),
  );
  assert.throws(() => dbmtl.create(2, { beta: 1.5 }), /dbmtl: option beta/);
  assert.throws(() => dbmtl.create(2, { betaSigma: -1 }), /dbmtl: option betaSigma/);
  const m = dbmtl.create(2);
  m.combine(mkInput([[1, 2], [3, 4]]));
  assert.throws(() => m.combine(mkInput([[1, 2, 3], [3, 4, 5]])), /dbmtl: the stable gradient length 3/);
  assert.throws(() => dbmtl.create(2).setState({ t: 1, ema: [[1, 2]] }), /ema must be an array of 2/);
});

test("dbmtl: with stableDim the EMA covers the stable prefix only and the varying tail uses the step's log-gradient", () => {
  const m = dbmtl.create(2);
  const L = Float64Array.of(0.5, 0.25);
  // step 1: d = 3 (prefix 2 + one embedding row), step 2: d = 4 (prefix 2 + two rows)
  const g1 = [Float32Array.of(1, 0, 2), Float32Array.of(0, 1, -1)];
  const g2 = [Float32Array.of(1, 1, 1, 0), Float32Array.of(0, 2, 0, 1)];
  m.combine({ grads: g1, losses: L, step: 0, epoch: 0, rng: new Rng(1), stableDim: 2 });
  const out = m.combine({ grads: g2, losses: L, step: 1, epoch: 0, rng: new Rng(1), stableDim: 2 });
  // independent float64 reference: beta 0.9, eps 1e-8
  const b = 0.9;
  const sc = [1 / (0.5 + 1e-8), 1 / (0.25 + 1e-8)];
  const ema = [0, 1].map((i) => [0, 1].map((p) => b * ((1 - b) * sc[i]! * g1[i]![p]!) + (1 - b) * sc[i]! * g2[i]![p]!));
  const full = [0, 1].map((i) => [...ema[i]!, sc[i]! * g2[i]![2]!, sc[i]! * g2[i]![3]!]);
  const norms = full.map((v) => Math.hypot(...v));
  const mx = Math.max(...norms);
  const expected = [0, 1, 2, 3].map((p) => full.reduce((acc, v, i) => acc + (mx / (norms[i]! + 1e-8)) * v[p]!, 0));
  assert.equal(out.direction.length, 4);
  for (let p = 0; p < 4; p++) assert.ok(Math.abs(out.direction[p]! - expected[p]!) <= 1e-5 * Math.abs(expected[p]!) + 1e-6, `entry ${p}: ${out.direction[p]} vs ${expected[p]}`);
  // the prefix length must stay the same between steps
  assert.throws(() => m.combine({ grads: g2, losses: L, step: 2, epoch: 0, rng: new Rng(1), stableDim: 3 }), /stable gradient length 3/);
});
