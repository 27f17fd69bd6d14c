/**
 * The open method registry (a user's own entry: registered, or passed as an object) and
 * every gradient method's pure Gramian form (weightsFromGram), which must give exactly the
 * coefficients `combine` gives on the full gradients.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  BUILTIN_METHODS, METHODS, createMethod, getMethod, methodNames, registerMethod, resolveMethodOptions, unregisterMethod,
} from "../../src/balance/registry.ts";
import { checkInput, checkTasks, expectNullState, finish, gramOf, withDefaults } from "../../src/balance/common.ts";
import { gramWeights, toGram } from "../../src/balance/gram.ts";
import { gramian } from "../../src/balance/linalg.ts";
import type { MethodEntry } from "../../src/balance/types.ts";
import { Rng } from "../../src/util/rng.ts";
import { mkInput, randomRows } from "./methodfixtures.ts";

/** A user's method, written only with the exported helpers: scale every task to the largest norm. */
const maxNorm: MethodEntry<{ power: number }> = {
  name: "maxnorm",
  label: "MaxNorm",
  kind: "gradient",
  summary: "task gradients scaled towards the largest norm, then averaged",
  defaults: { power: 1 },
  create(numTasks, options) {
    checkTasks("maxnorm", numTasks);
    const { power } = withDefaults("maxnorm", maxNorm.defaults, options);
    return {
      name: "maxnorm",
      kind: "gradient",
      numTasks,
      combine(input) {
        checkInput("maxnorm", numTasks, input);
        const G = gramOf(input);
        const norms = Array.from({ length: numTasks }, (_, i) => Math.sqrt(G[i * numTasks + i]!));
        const max = Math.max(...norms);
        return finish(input.grads, G, Float64Array.from(norms, (n) => (n > 0 ? (max / n) ** power : 1) / numTasks));
      },
      getState: () => null,
      setState: (s) => expectNullState("maxnorm", s),
    };
  },
};

test("a user's method: registered by name (then listed, created, options checked and coerced) or used as an object", () => {
  assert.throws(() => getMethod("maxnorm"), /unknown method "maxnorm"/);
  // as an object, without registering
  const m = createMethod(maxNorm, 2, { power: "2" });
  const out = m.combine(mkInput([[3, 0], [0, 1]]));
  assert.deepEqual(Array.from(out.coeffs), [0.5, 4.5]);
  registerMethod(maxNorm);
  registerMethod(maxNorm); // the same entry again: harmless
  try {
    assert.ok(methodNames().includes("maxnorm"));
    assert.equal(METHODS.get("maxnorm"), maxNorm as never);
    assert.equal(getMethod("MaxNorm").label, "MaxNorm");
    assert.deepEqual(resolveMethodOptions("maxnorm", { power: "3" }), { power: 3 });
    assert.throws(() => createMethod("maxnorm", 2, { pwer: 2 }), /unknown option "pwer".*did you mean "power"\?/);
    assert.throws(() => registerMethod({ ...maxNorm }), /already registered \(pass \{ replace: true \}/);
    assert.throws(() => getMethod({ ...maxNorm }), /another method of that name is registered/);
    registerMethod({ ...maxNorm, label: "MaxNorm2" }, { replace: true });
    assert.equal(getMethod("maxnorm").label, "MaxNorm2");
  } finally {
    assert.equal(unregisterMethod("maxnorm"), true);
  }
  assert.equal(methodNames().includes("maxnorm"), false);
});

test("registerMethod rejects malformed entries, built-in names and reserved words, naming the problem", () => {
  const cases: [unknown, RegExp][] = [
    [null, /must be an object/],
    [{ ...maxNorm, name: "Max Norm" }, /name must be lower-case letters/],
    [{ ...maxNorm, kind: "other" }, /kind must be one of loss-weighting, gradient/],
    [{ ...maxNorm, create: undefined }, /create\(numTasks, options\) must be a function/],
    [{ ...maxNorm, defaults: [] }, /defaults must be an object/],
    [{ ...maxNorm, name: "gradcraft" }, /"gradcraft" is a built-in method/],
    [{ ...maxNorm, name: "single" }, /"single" is reserved/],
    [{ ...maxNorm, name: "uc" }, /"uc" is reserved/],
  ];
  for (const [e, re] of cases) assert.throws(() => registerMethod(e as MethodEntry), re, JSON.stringify(e));
  assert.throws(() => unregisterMethod("ew"), /built-in/);
});

const GRADIENT = Object.values(BUILTIN_METHODS).filter((e) => e.kind === "gradient") as unknown as MethodEntry<Record<string, unknown>>[];

test("every gradient method's weightsFromGram gives combine's coefficients (rng, losses, state included) and declares linear-combination", () => {
  const T = 4;
  const rows = randomRows(T, 30, 7);
  rows[1] = rows[0]!.map((x) => -0.5 * x + 0.1); // a conflict
  const losses = [0.3, 0.9, 0.5, 1.2];
  // a method offering the Gramian form updates along Σ c_i g_i, so it declares "linear-combination"
  // (the converse need not hold: ExcessMTL's coefficients need per-coordinate gradient information)
  for (const e of GRADIENT.filter((x) => x.weightsFromGram)) {
    assert.ok((e.properties ?? []).includes("linear-combination"), `${e.name}: offers weightsFromGram but does not declare linear-combination`);
  }
  assert.equal(BUILTIN_METHODS.dbmtl.weightsFromGram, undefined);
  assert.ok(GRADIENT.filter((e) => e.weightsFromGram).length >= 9, "the built-in gradient methods with a Gramian form are checked");
  const opts: Record<string, Record<string, unknown>> = { mgda: { normalization: "loss+" }, nashmtl: { updateWeightsEvery: 2 } };
  for (const e of GRADIENT.filter((x) => x.weightsFromGram)) {
    const full = e.create(T, opts[e.name]);
    const rngA = new Rng(5);
    const rngB = new Rng(5);
    let state = undefined as unknown as ReturnType<typeof full.getState>;
    for (let step = 0; step < 3; step++) {
      const input = mkInput(rows, { losses, step, rng: rngA });
      const a = full.combine(input);
      const G = gramian(input.grads);
      const b = e.weightsFromGram!(G, opts[e.name], { losses, step, rng: rngB, ...(step > 0 ? { state } : {}) });
      assert.deepEqual(Array.from(b.coeffs), Array.from(a.coeffs), `${e.name} step ${step}`);
      assert.deepEqual(b.state, full.getState(), `${e.name} state after step ${step}`);
      assert.equal(b.diagnostics.conflicts, a.diagnostics.conflicts);
      state = b.state;
    }
  }
});

test("weightsFromGram: rows or flat input, never modified; methods drawing orders need ctx.rng; bad Gramians are named", () => {
  const rows = [[4, -1, 0], [-1, 2, 0.5], [0, 0.5, 1]];
  const flat = Float64Array.from(rows.flat());
  const copy = Float64Array.from(flat);
  const a = BUILTIN_METHODS.gradcraft.weightsFromGram!(rows, { tau: 0.3 });
  const b = BUILTIN_METHODS.gradcraft.weightsFromGram!(flat, { tau: 0.3 });
  assert.deepEqual(Array.from(a.coeffs), Array.from(b.coeffs));
  assert.deepEqual(flat, copy);
  assert.equal(a.state, null);
  assert.throws(() => BUILTIN_METHODS.pcgrad.weightsFromGram!(rows), /pcgrad: weightsFromGram needs ctx\.rng/);
  assert.equal(BUILTIN_METHODS.pcgrad.weightsFromGram!(rows, {}, { rng: new Rng(1) }).coeffs.length, 3);
  assert.throws(() => toGram([1, 2, 3]), /expected a T×T Gramian \(T² entries\), got 3/);
  assert.throws(() => toGram([[1, 0], [0]]), /row 1 has 1 entries/);
  assert.throws(() => toGram([-1]), /diagonal entry 0 is negative/);
  assert.throws(() => toGram([1, NaN, NaN, 1]), /entry \(0, 1\) is not finite/);
  assert.throws(() => BUILTIN_METHODS.gradcraft.weightsFromGram!(rows, { tua: 1 } as never), /unknown option "tua"/);
  // the generic form works for a user's entry too
  assert.deepEqual(Array.from(gramWeights(maxNorm, [[4, 0], [0, 1]]).coeffs), [0.5, 1]);
});
