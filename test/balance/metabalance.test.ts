import { test } from "node:test";
import assert from "node:assert/strict";
import { metabalance, metabalanceFactor } from "../../src/balance/metabalance.ts";
import { createMethod } from "../../src/balance/registry.ts";
import { ew } from "../../src/balance/ew.ts";
import { createModel, MODEL_NAMES } from "../../src/model/index.ts";
import { createAdam } from "../../src/optim/adam.ts";
import { trainStep } from "../../src/train/step.ts";
import { Rng } from "../../src/util/rng.ts";
import { TINY_FIELDS, randomBatch } from "../grad/fixtures.ts";
import { assertClose, assertDirectionMatchesCoeffs, assertStateRoundTrip, assertWellFormed, mkInput, randomRows } from "./methodfixtures.ts";
import { propertyViolation } from "./property-checks.ts";
import { fixtureInput, loadFixture, near, sharedLayout, trainEveryArchitecture } from "./stateful-helpers.ts";

interface Expected {
  factors: number[][];
  direction: number[];
}

test("metabalance: directions match the float64 reference of Algorithm 2 (per tensor, strategies A/B/C) over several steps", () => {
  const cases = loadFixture<Expected>("metabalance");
  for (const c of cases) {
    const T = c.grads[0]!.length;
    const m = metabalance.create(T, c.options);
    c.expected.forEach((e, k) => {
      const out = m.combine(fixtureInput(c, k));
      near(out.direction, e.direction, 1e-5, `${c.name} step ${k} direction`);
      assert.deepEqual(Array.from(out.taskScale), new Array<number>(T).fill(1));
      if (e.factors[0]!.length === 1) near(out.coeffs, e.factors.map((r) => r[0]!), 1e-9, `${c.name} step ${k} coeffs (one tensor)`);
    });
  }
  // the per-tensor factors differ between tensors of one task (so a whole-vector rule would fail above)
  const f = cases[0]!.expected.at(-1)!.factors[1]!;
  assert.ok(Math.max(...f) - Math.min(...f) > 0.1);
});

test("metabalance: the factor rule r·m_tar/m_i + (1 − r) under each strategy", () => {
  assertClose([metabalanceFactor(1, 4, 0.7, "both")], [0.7 * 0.25 + 0.3], 1e-15, "C");
  assertClose([metabalanceFactor(1, 4, 0.7, "reduce")], [0.7 * 0.25 + 0.3], 1e-15, "A");
  assert.equal(metabalanceFactor(1, 4, 0.7, "enlarge"), 1);
  assertClose([metabalanceFactor(4, 1, 0.5, "enlarge")], [0.5 * 4 + 0.5], 1e-15, "B");
  assert.equal(metabalanceFactor(4, 1, 0.5, "reduce"), 1);
  assert.equal(metabalanceFactor(2, 2, 1, "both"), 1);
  assert.equal(metabalanceFactor(0, 2, 0.7, "both"), 1, "target without gradient there: untouched");
  assert.equal(metabalanceFactor(2, 0, 0.7, "both"), 1, "zero auxiliary gradient: untouched");
  // relax = 1: the auxiliary gradient takes the target's (moving) magnitude exactly
  const out = metabalance.create(2, { relax: 1, beta: 0 }).combine(mkInput([[3, 4], [0, 10]]));
  assertClose(out.direction, [3, 4 + 5], 1e-6, "direction");
  assertDirectionMatchesCoeffs(out, [[3, 4], [0, 10]], 1e-6);
});

test("metabalance: per-tensor scaling, the target may be any task; tensors where the target has no gradient are left alone", () => {
  const rows = [[1, 0, 0, 0], [0, 8, 0, 2], [0, 0, 3, 0]];
  const inp = mkInput(rows);
  inp.segments = Int32Array.of(0, 2, 4);
  // target 1, β = 0, r = 1: tensor 0 = [0,1]: m_tar = 8, task 0 norm 1 → ×8; tensor 1 = [2,3]: m_tar = 2, task 2 norm 3 → ×2/3
  const out = metabalance.create(3, { target: 1, beta: 0, relax: 1 }).combine(inp);
  assertClose(out.direction, [8, 8, 2, 2], 1e-6, "direction");
  assertWellFormed(out, 3, 4);
  // target 0 has no gradient on tensor 1: task 1's and task 2's parts there are unscaled
  const out0 = metabalance.create(3, { beta: 0, relax: 1 }).combine(inp);
  assertClose(out0.direction, [1, 1, 3, 2], 1e-6, "tensor 0: task 1 scaled to norm 1; tensor 1 untouched");
});

test("metabalance: declared properties hold (cross-method checker); it is not permutation-equivariant (the target is special)", () => {
  for (const p of metabalance.properties!) assert.equal(propertyViolation(metabalance as never, p), null, p);
  assert.notEqual(propertyViolation(metabalance as never, "permutation-equivariant"), null);
  assert.notEqual(propertyViolation(metabalance as never, "non-conflicting"), null);
  assert.equal(metabalance.weightsFromGram, undefined, "per tensor: not a function of the whole-vector Gramian");
});

test("metabalance: options and segments are validated, naming the option", () => {
  assert.throws(() => metabalance.create(3, { target: 3 }), /option target must be a task index from 0 to 2/);
  assert.throws(() => metabalance.create(3, { target: 0.5 }), /option target/);
  assert.throws(() => metabalance.create(2, { relax: 1.2 }), /option relax must be a finite number in \[0, 1\]/);
  assert.throws(() => metabalance.create(2, { beta: 1 }), /option beta must be < 1/);
  assert.throws(() => metabalance.create(2, { strategy: "C" as never }), /option strategy must be one of both, reduce, enlarge/);
  assert.throws(() => createMethod("metabalance", 2, { relax_factor: 0.7 }), /unknown option "relax_factor"/);
  assert.equal(createMethod("metabalance", 3, { target: "2" }).name, "metabalance", "CLI strings are coerced to the index");
  const m = metabalance.create(2);
  const inp = mkInput([[1, 2, 3], [3, 2, 1]]);
  inp.segments = Int32Array.of(0, 2);
  assert.throws(() => m.combine(inp), /must start at 0 and end at the gradient length 3/);
  inp.segments = Int32Array.of(0, 2, 1, 3);
  assert.throws(() => m.combine(inp), /non-decreasing/);
  inp.segments = Int32Array.of(0, 1, 3);
  m.combine(inp);
  inp.segments = Int32Array.of(0, 3);
  assert.throws(() => m.combine(inp), /1 parameter tensors this step, 2 before/);
});

test("metabalance: checkpoint round trip (state -> JSON -> new method) gives identical next steps; bad states are refused", () => {
  const steps = [0, 1, 2, 3, 4].map((k) => {
    const inp = mkInput(randomRows(3, 7 + k, 110 + k), { step: k });
    inp.segments = Int32Array.of(0, 3, 5, 7 + k);
    return inp;
  });
  assertStateRoundTrip(() => metabalance.create(3, { target: 2 }), steps.slice(0, 2), steps.slice(2));
  const m = metabalance.create(2);
  assert.throws(() => m.setState({ tensors: 2, norms: [1, 2, 3] }), /norms \(2 tasks x 2 tensors\) must be an array of 4 numbers/);
  assert.throws(() => m.setState({ tensors: 1, norms: [1, -2] }), /norms must be >= 0/);
  m.setState({ tensors: null, norms: null });
  assert.deepEqual(m.getState(), { tensors: null, norms: null });
});

test("metabalance: trains every architecture, one moving norm per shared tensor (dense parameters and embedding tables)", async () => {
  for (const { arch, method } of await trainEveryArchitecture("metabalance")) {
    const st = method.getState() as { tensors: number };
    const lay = sharedLayout(arch);
    assert.equal(st.tensors, lay.dense + lay.tables, `${arch}: tensors`);
  }
  // --grad-scope all: task-specific tensors are in the flat vector too; still finite and moving
  await trainEveryArchitecture("metabalance", { target: 1 }, { scope: "all", steps: 2 });
});

test("trainStep passes the tensor layout: one segment per shared dense parameter, then one per embedding table", async () => {
  for (const arch of MODEL_NAMES) {
    const model = createModel(arch, { fields: TINY_FIELDS, numTasks: 2 }, { embDim: 3, expertUnits: [4], bottomUnits: [4], towerUnits: [3], seed: 1 });
    const inner = ew.create(2);
    let seen: Int32Array | undefined;
    let dims: [number, number] = [0, 0];
    const spy = { ...inner, lossWeighting: undefined, combine: (inp: Parameters<typeof inner.combine>[0]) => ((seen = inp.segments), (dims = [inp.grads[0]!.length, inp.stableDim!]), inner.combine(inp)) };
    await trainStep(model, createAdam(model, { lr: 0.01 }), spy, randomBatch(TINY_FIELDS, 2, 11, 5), { step: 0, epoch: 0, rng: new Rng(1) });
    assert.ok(seen !== undefined, `${arch}: segments given`);
    const lens = Array.from(seen.subarray(1), (x, k) => x - seen![k]!);
    const shared = model.dense.filter((p) => p.group === "shared").map((p) => p.data.length);
    assert.deepEqual(lens.slice(0, shared.length), shared, `${arch}: dense tensors in order`);
    assert.equal(seen[shared.length], dims[1], `${arch}: dense part ends at stableDim`);
    assert.equal(seen.at(-1), dims[0], `${arch}: segments end at d`);
    for (const l of lens.slice(shared.length)) assert.equal(l % 3, 0, `${arch}: embedding segments are whole rows`);
    assert.equal(lens.length - shared.length, sharedLayout(arch).tables, `${arch}: one segment per shared table`);
  }
});
