import { test } from "node:test";
import assert from "node:assert/strict";
import { alignMagnitudes, gradcraft, gradcraftStep } from "../../src/balance/gradcraft.ts";
import { pcgradRows } from "../../src/balance/pcgrad.ts";
import { gramian } from "../../src/balance/linalg.ts";
import { Rng } from "../../src/util/rng.ts";
import {
  allFinite, assertClose, assertVecClose, fromF32, gaussSolve, makeInput, randomGrads, toF32,
  vadd, vdot, vnorm, vscale, vsum, vzeros, type Vec,
} from "./surgery-helpers.ts";

/** Straightforward vector GradCraft (float64, Gaussian elimination), for well-conditioned inputs. */
function refGradCraft(g: Vec[], tau: number, eps: number): { direction: Vec; tilde: Vec[]; hat: Vec[] } {
  const T = g.length;
  const d = g[0]!.length;
  const norms = g.map(vnorm);
  const max = Math.max(...norms);
  const hat = g.map((gi, i) => (norms[i]! > 0 ? vadd(vscale(gi, (tau * max) / norms[i]!), gi, 1 - tau) : gi.slice()));
  const tilde = hat.map((hi, i) => {
    const C: number[] = [];
    for (let k = 0; k < T; k++) if (k !== i && vdot(hi, hat[k]!) < 0) C.push(k);
    if (C.length === 0) return hi.slice();
    const A = C.map((a) => C.map((b) => vdot(hat[a]!, hat[b]!)));
    const rhs = C.map((k) => -vdot(hat[k]!, hi) + eps * vnorm(hi) * vnorm(hat[k]!));
    const w = gaussSolve(A, rhs);
    return C.reduce((acc, k, a) => vadd(acc, hat[k]!, w[a]!), hi.slice());
  });
  return { direction: vscale(vsum(tilde, d), 1 / T), tilde, hat };
}

/** g̃_i as an explicit float64 vector from the coefficient rows over the raw g's. */
function rowVec(rows: Float64Array, i: number, g: Vec[]): Vec {
  const T = g.length;
  return g.reduce((acc, gk, k) => vadd(acc, gk, rows[i * T + k]!), vzeros(g[0]!.length));
}

test("alignMagnitudes: hand values, zero norm keeps scale 1, all-zero gives ones", () => {
  // norms [1,2,4], tau .5: s = [.5*4/1+.5, .5*4/2+.5, .5*4/4+.5] = [2.5, 1.5, 1]
  assert.deepEqual(Array.from(alignMagnitudes([1, 2, 4], 0.5)), [2.5, 1.5, 1]);
  assert.deepEqual(Array.from(alignMagnitudes([3, 0, 6], 0.2)), [0.2 * 2 + 0.8, 1, 0.2 + 0.8]);
  assert.deepEqual(Array.from(alignMagnitudes([0, 0], 0.1)), [1, 1]);
  assert.deepEqual(Array.from(alignMagnitudes([1, 5], 0)), [1, 1]);
});

test("alignMagnitudes: max/min aligned norm ratio ≤ 1/tau; tau=1 makes all nonzero norms the max", () => {
  const rng = new Rng(7);
  for (let trial = 0; trial < 50; trial++) {
    const T = 2 + rng.int(6);
    const norms = Array.from({ length: T }, () => Math.exp(20 * (rng.next() - 0.5)));
    if (trial % 5 === 0) norms[0] = 0;
    const nz = norms.filter((n) => n > 0);
    const max = Math.max(...nz);
    for (const tau of [0.01, 0.1, 0.5, 0.9]) {
      const s = alignMagnitudes(norms, tau);
      const aligned = norms.map((n, i) => n * s[i]!).filter((_, i) => norms[i]! > 0);
      const ratio = Math.max(...aligned) / Math.min(...aligned);
      assert.ok(ratio <= (1 / tau) * (1 + 1e-12), `ratio ${ratio} > 1/${tau}`);
      assert.ok(Math.max(...aligned) <= max * (1 + 1e-12), "aligned norm above the max");
      assert.ok(allFinite(s));
    }
    const s1 = alignMagnitudes(norms, 1);
    norms.forEach((n, i) => {
      if (n > 0) assertClose(n * s1[i]!, max, 1e-12 * max, `tau=1 norm ${i}`);
    });
  }
});

test("2x3 hand case: tau=0, eps=0 reduces to the two PCGrad projections, direction is their mean", () => {
  // g1=[1,0,0], g2=[-1,1,0], <g1,g2> = -1.
  // g̃1 = g1 - (-1/2) g2 = [.5,.5,0]; g̃2 = g2 - (-1/1) g1 = [0,1,0]; mean = [.25,.75,0]
  const out = gradcraft.create(2, { tau: 0, eps: 0 }).combine(makeInput([[1, 0, 0], [-1, 1, 0]]));
  assertVecClose(out.direction, [0.25, 0.75, 0], 1e-7, "direction");
  // coeffs: (1/2)[(1 + 1), (0.5 + 1)] = [1, 0.75]
  assertVecClose(out.coeffs, [1, 0.75], 1e-15, "coeffs");
  assert.deepEqual(Array.from(out.taskScale), [1, 1]);
  assert.equal(out.diagnostics.conflicts, 1);
});

test("2x3 hand case with alignment: tau=0.5, eps=0", () => {
  // g1=[1,0,0] (‖‖=1), g2=[0,-2,0]+... use g2=[-2,2,0] (‖‖=2√2). max = 2√2.
  // s1 = .5*2√2 + .5 = √2 + .5 ; s2 = 1.  ĝ1 = (√2+.5)[1,0,0], ĝ2 = [-2,2,0].
  // g̃1 = ĝ1 - (<ĝ1,ĝ2>/‖ĝ2‖²) ĝ2 = a[1,0,0] + (2a/8)[-2,2,0] = a[.5,.5,0], a = √2+.5
  // g̃2 = ĝ2 - (<ĝ2,ĝ1>/‖ĝ1‖²) ĝ1 = [-2,2,0] + (2/a)·a[1,0,0] = [0,2,0]
  const a = Math.SQRT2 + 0.5;
  const out = gradcraft.create(2, { tau: 0.5, eps: 0 }).combine(makeInput([[1, 0, 0], [-2, 2, 0]]));
  assertVecClose(out.direction, [a / 4, a / 4 + 1, 0], 1e-6, "direction");
});

test("3x4 and zero-row cases match the float64 vector reference (eps large enough to matter)", () => {
  const cases: Vec[][] = [
    [[1, 2, 0, -1], [-2, 0.5, 1, 1], [0.5, -3, 1, 0]],
    [[1, 2, 0, -1], [0, 0, 0, 0], [-0.5, -3, 1, 0]],
    [[3, -1, 2, 0], [-1, 0.25, -2, 1], [-2, 1, 1, 4]],
  ];
  for (const g of cases) {
    for (const [tau, eps] of [[0.1, 0.01], [0, 0.1], [0.7, 1e-10], [1, 0.05]] as const) {
      const ref = refGradCraft(g, tau, eps);
      const out = gradcraft.create(3, { tau, eps }).combine(makeInput(g));
      assertVecClose(out.direction, ref.direction, 1e-5 * Math.max(1, vnorm(ref.direction)), `tau=${tau} eps=${eps}`);
    }
  }
});

test("post-condition <g̃_i, ĝ_k> = eps‖ĝ_i‖‖ĝ_k‖ for all k in C_i, random T=2..6, d=50", () => {
  const rng = new Rng(2024);
  let multi = 0;
  let checked = 0;
  for (let trial = 0; trial < 60; trial++) {
    const T = 2 + (trial % 5);
    const g = randomGrads(rng, T, 50, 2);
    const G = gramian(toF32(g));
    for (const eps of [1e-10, 0.05]) {
      const tau = [0, 0.1, 0.5, 1][trial % 4]!;
      const st = gradcraftStep(G, T, tau, eps);
      const hat = g.map((gi, i) => vscale(gi, st.scales[i]!));
      for (let i = 0; i < T; i++) {
        const ti = rowVec(st.rows, i, g);
        let ci = 0;
        for (let k = 0; k < T; k++) {
          if (k === i || vdot(hat[i]!, hat[k]!) >= 0) continue;
          ci++;
          const target = eps * vnorm(hat[i]!) * vnorm(hat[k]!);
          const lhs = vdot(ti, hat[k]!);
          // 1e-6 relative to the target (eps=0.05) or to ‖g̃_i‖‖ĝ_k‖ (eps tiny)
          const scale = eps >= 0.01 ? target : vnorm(ti) * vnorm(hat[k]!);
          assertClose(lhs, target, 1e-6 * scale, `trial ${trial} i=${i} k=${k}`);
          checked++;
        }
        assert.equal(st.conflictSizes[i], ci, "conflict-set size");
        if (ci >= 2) multi++;
        if (ci === 0) assertVecClose(ti, hat[i]!, 1e-12 * vnorm(hat[i]!), "no conflict keeps ĝ_i");
      }
      // direction coefficients are the mean of the rows
      for (let k = 0; k < T; k++) {
        let s = 0;
        for (let i = 0; i < T; i++) s += st.rows[i * T + k]!;
        assertClose(st.coeffs[k]!, s / T, 1e-12 * Math.abs(s), "coeffs = mean of rows");
      }
    }
  }
  assert.ok(checked > 100 && multi > 20, `too few conflicts exercised (${checked}, multi ${multi})`);
});

test("random cases match the vector reference", () => {
  const rng = new Rng(99);
  for (let trial = 0; trial < 20; trial++) {
    const T = 2 + (trial % 5);
    const g = randomGrads(rng, T, 30, 1.5);
    const ref = refGradCraft(g, 0.1, 1e-3);
    const out = gradcraft.create(T, { eps: 1e-3 }).combine(makeInput(g));
    assertVecClose(out.direction, ref.direction, 1e-5 * vnorm(ref.direction), `trial ${trial}`);
  }
});

test("tau=0 with exactly one conflict equals the PCGrad projection for that task", () => {
  const rng = new Rng(5);
  for (let trial = 0; trial < 20; trial++) {
    // g0, g1 random in the first 10 coordinates with <g0,g1> < 0; g2 only in the other 10
    // coordinates, so it is orthogonal to both and conflicts with no one.
    let g = randomGrads(rng, 3, 20);
    for (let k = 10; k < 20; k++) {
      g[0]![k] = 0;
      g[1]![k] = 0;
    }
    for (let k = 0; k < 10; k++) g[2]![k] = 0;
    if (vdot(g[0]!, g[1]!) >= 0) g = [g[0]!, vscale(g[1]!, -1), g[2]!];
    const G = gramian(toF32(g));
    const pc = pcgradRows(G, 3, [Int32Array.from([1, 2]), Int32Array.from([0, 2]), Int32Array.from([0, 1])]);
    const gc = gradcraftStep(G, 3, 0, 0);
    assertVecClose(gc.rows, pc, 1e-12, `trial ${trial} rows`);
    // and with the default eps the difference is of order eps
    const gcEps = gradcraftStep(G, 3, 0, 1e-10);
    assertVecClose(gcEps.rows, pc, 1e-8, `trial ${trial} rows eps`);
  }
});

test("never NaN: colinear, opposite, duplicated conflicting rows, near-colinear, zero rows, all zero", () => {
  const base = [1, -2, 0.5, 3];
  const cases: { name: string; g: Vec[] }[] = [
    { name: "colinear", g: [base, vscale(base, 3)] },
    { name: "opposite", g: [base, vscale(base, -2)] },
    { name: "opposite x3", g: [base, vscale(base, -1), vscale(base, -0.5)] },
    { name: "duplicate conflicting rows", g: [[1, 0, 0, 0], [-1, 1, 0, 0], [-1, 1, 0, 0]] },
    { name: "dependent conflicting rows", g: [[1, 1, 1, 0], [-1, 0, 0, 0], [0, -1, 0, 0], [-1, -1, 0, 0]] },
    { name: "near-colinear conflicting rows", g: [[1, 0, 0, 0], [-1, 1, 0, 0], [-1, 1, 1e-6, 0]] },
    { name: "zero row", g: [base, [0, 0, 0, 0], vscale(base, -1)] },
    { name: "all zero", g: [[0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]] },
    { name: "single task", g: [base] },
  ];
  for (const { name, g } of cases) {
    for (const tau of [0, 0.1, 1]) {
      const T = g.length;
      const out = gradcraft.create(T, { tau }).combine(makeInput(g));
      assert.ok(allFinite(out.direction) && allFinite(out.coeffs), `${name} tau=${tau}: non-finite`);
      const st = gradcraftStep(gramian(toF32(g)), T, tau, 1e-10);
      const hat = g.map((gi, i) => vscale(gi, st.scales[i]!));
      // conflicts resolved up to a small tolerance even when rows were dropped as dependent
      for (let i = 0; i < T; i++) {
        const ti = rowVec(st.rows, i, g);
        for (let k = 0; k < T; k++) {
          if (k === i || vdot(hat[i]!, hat[k]!) >= 0) continue;
          assert.ok(vdot(ti, hat[k]!) >= -1e-6 * vnorm(ti) * vnorm(hat[k]!) - 1e-12, `${name}: conflict ${i},${k} left`);
        }
      }
    }
  }
  // opposite pair with tau=0: each projection removes everything -> direction ~ 0
  const opp = gradcraft.create(2, { tau: 0, eps: 0 }).combine(makeInput([base, vscale(base, -2)]));
  assertVecClose(opp.direction, [0, 0, 0, 0], 1e-6, "opposite");
  const zero = gradcraft.create(3).combine(makeInput([[0, 0], [0, 0], [0, 0]]));
  assert.deepEqual(Array.from(zero.direction), [0, 0]);
  // a zero task stays zero: with base and 0, direction = mean(ĝ_base, 0); s_base = 1 (base is the max)
  const z = gradcraft.create(2, { tau: 0.5 }).combine(makeInput([base, [0, 0, 0, 0]]));
  assertVecClose(z.direction, vscale(base, 0.5), 1e-6, "zero task");
});

test("permuting tasks permutes coeffs and leaves the direction unchanged", () => {
  const rng = new Rng(11);
  for (let trial = 0; trial < 10; trial++) {
    const T = 5;
    const g = randomGrads(rng, T, 40, 2);
    const perm = Array.from(rng.permutation(T));
    const gp = perm.map((p) => g[p]!);
    const a = gradcraft.create(T).combine(makeInput(g));
    const b = gradcraft.create(T).combine(makeInput(gp));
    perm.forEach((p, j) => assertClose(b.coeffs[j]!, a.coeffs[p]!, 1e-9 * (1 + Math.abs(a.coeffs[p]!)), `coeff ${j}`));
    const scale = Math.max(...Array.from(a.direction, Math.abs));
    assertVecClose(b.direction, a.direction, 1e-5 * scale, "direction");
  }
});

test("input.gram is used when given and gives the same result", () => {
  const g = randomGrads(new Rng(3), 4, 20);
  const input = makeInput(g);
  const a = gradcraft.create(4).combine(input);
  const b = gradcraft.create(4).combine({ ...input, gram: gramian(input.grads) });
  assert.deepEqual(Array.from(b.direction), Array.from(a.direction));
  // a deliberately different Gramian changes the coefficients (so it really is read)
  const G2 = gramian(input.grads).map((v, idx) => (idx % 5 === 0 ? v : -Math.abs(v)));
  const c = gradcraft.create(4).combine({ ...input, gram: G2 });
  assert.notDeepEqual(Array.from(c.coeffs), Array.from(a.coeffs));
});

test("large d (1e5) sanity: finite and equal to the vector reference", () => {
  const rng = new Rng(42);
  const g = randomGrads(rng, 4, 100_000, 1);
  // force some conflicts: flip task 3 towards -task 0
  g[3] = g[3]!.map((x, k) => Math.fround(x - 0.5 * g[0]![k]!));
  const out = gradcraft.create(4).combine(makeInput(g));
  assert.ok(allFinite(out.direction));
  assert.ok(out.diagnostics.conflicts >= 1);
  const ref = refGradCraft(fromF32(toF32(g)), 0.1, 1e-10);
  const err = vnorm(vadd(Array.from(out.direction), ref.direction, -1));
  assert.ok(err <= 1e-5 * vnorm(ref.direction), `relative error ${err / vnorm(ref.direction)}`);
});

test("options are validated once at construction", () => {
  assert.throws(() => gradcraft.create(2, { tau: -0.1 }), /gradcraft: option tau must be a finite number in \[0, 1\]/);
  assert.throws(() => gradcraft.create(2, { tau: 1.5 }), /option tau/);
  assert.throws(() => gradcraft.create(2, { tau: NaN }), /option tau/);
  assert.throws(() => gradcraft.create(2, { eps: -1e-3 }), /option eps must be a finite number >= 0/);
  assert.throws(() => gradcraft.create(2, { tua: 0.2 } as never), /unknown option "tua"/);
  assert.throws(() => gradcraft.create(0), /numTasks/);
  assert.throws(() => gradcraft.create(3).combine(makeInput([[1], [2]])), /built for 3 tasks/);
  const m = gradcraft.create(2);
  assert.equal(m.getState(), null);
  assert.equal(gradcraft.defaults.tau, 0.1);
  assert.equal(gradcraft.defaults.eps, 1e-10);
});
