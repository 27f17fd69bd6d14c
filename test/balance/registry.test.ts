/**
 * What every registered balancing method must satisfy (shape, finiteness, state, input checks).
 * Declared, per-method guarantees (symmetry, non-conflict, ...) are checked in properties.test.ts.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { BUILTIN_METHODS, METHODS, createMethod, getMethod, methodNames, resolveMethodOptions } from "../../src/balance/registry.ts";
import { Rng } from "../../src/util/rng.ts";

function randomGrads(rng: Rng, T: number, d: number): Float32Array[] {
  return Array.from({ length: T }, (_, i) => {
    const g = new Float32Array(d);
    const scale = 10 ** (i % 3 - 1);
    for (let k = 0; k < d; k++) g[k] = scale * rng.normal();
    return g;
  });
}

function input(grads: Float32Array[], seed = 3, step = 0) {
  const T = grads.length;
  return { grads, losses: Float64Array.from({ length: T }, (_, i) => 0.3 + 0.1 * i), step, epoch: 0, rng: new Rng(seed) };
}

test("every method returns finite output of the right shape on random and degenerate inputs", () => {
  const rng = new Rng(11);
  const d = 40;
  for (const name of methodNames()) {
    for (const T of [1, 2, 3, 6]) {
      const cases: Float32Array[][] = [randomGrads(rng, T, d)];
      const zero = randomGrads(rng, T, d);
      zero[0]!.fill(0);
      cases.push(zero);
      const colinear = randomGrads(rng, T, d);
      for (let i = 1; i < T; i++) for (let k = 0; k < d; k++) colinear[i]![k] = (i % 2 ? -2 : 3) * colinear[0]![k]!;
      cases.push(colinear);
      cases.push(Array.from({ length: T }, () => new Float32Array(d)));
      for (const grads of cases) {
        const m = createMethod(name, T);
        for (let step = 0; step < 3; step++) {
          const out = m.combine(input(grads, 5, step));
          assert.equal(out.direction.length, d, `${name} T=${T}: direction length`);
          assert.equal(out.coeffs.length, T, `${name}: coeffs length`);
          assert.equal(out.taskScale.length, T, `${name}: taskScale length`);
          assert.ok(out.direction.every(Number.isFinite), `${name} T=${T}: non-finite direction`);
          assert.ok(out.taskScale.every(Number.isFinite), `${name}: non-finite taskScale`);
          assert.equal(out.diagnostics.norms.length, T);
          assert.equal(out.diagnostics.cosines.length, T * T);
        }
      }
    }
  }
});

test("same seed, same output; state survives a JSON round trip", () => {
  const rng = new Rng(31);
  const T = 3;
  const grads = randomGrads(rng, T, 25);
  for (const name of methodNames()) {
    const a = createMethod(name, T);
    const b = createMethod(name, T);
    a.combine(input(grads, 9, 0));
    a.endEpoch?.(Float64Array.of(0.5, 0.4, 0.3));
    const saved = JSON.parse(JSON.stringify(a.getState()));
    b.setState(saved);
    const ra = a.combine(input(grads, 9, 1)).direction;
    const rb = b.combine(input(grads, 9, 1)).direction;
    assert.deepEqual(Array.from(ra), Array.from(rb), `${name}: restored state gives a different next step`);
  }
});

test("options are validated with messages naming the option", () => {
  assert.throws(() => createMethod("gradcraft", 3, { tau: 2 }), /tau/);
  assert.throws(() => createMethod("gradcraft", 3, { tua: 0.1 }), /unknown option "tua".*tau/);
  assert.throws(() => createMethod("gradcraft", 3, { tau: "abc" }), /tau must be a number/);
  assert.throws(() => getMethod("nope"), /unknown method "nope"; choose one of: ew/);
  assert.equal(getMethod("PCGrad+").name, "pcgrad-plus");
  assert.equal(getMethod("uc").name, "uw");
  // the registry holds exactly the built-in methods (user methods are registered by other tests and removed again)
  assert.deepEqual([...METHODS.keys()], (Object.values(BUILTIN_METHODS) as { name: string }[]).map((e) => e.name));
});

test("every method rejects non-finite or exploding gradients and non-finite losses, naming the task and position", () => {
  const T = 3;
  const d = 8;
  const bad: [string, number, RegExp][] = [
    ["NaN", Number.NaN, /gradient of task 1 is not finite at position 5 \(NaN\)/],
    ["Infinity", Number.POSITIVE_INFINITY, /gradient of task 1 is not finite at position 5 \(Infinity\)/],
    ["-Infinity", Number.NEGATIVE_INFINITY, /gradient of task 1 is not finite at position 5/],
    ["3e20", 3e20, /gradient of task 1 is exploding \(\|g\| > 1e\+18\) at position 5/],
    ["-1e30", -1e30, /gradient of task 1 is exploding .* at position 5/],
  ];
  for (const name of methodNames()) {
    for (const [label, v, re] of bad) {
      const grads = randomGrads(new Rng(2), T, d);
      grads[1]![5] = v;
      grads[2]![6] = v; // only the first bad position is reported
      assert.throws(() => createMethod(name, T).combine(input(grads)), re, `${name} with ${label}`);
    }
    const losses = input(randomGrads(new Rng(2), T, d));
    losses.losses[2] = Number.NaN;
    assert.throws(() => createMethod(name, T).combine(losses), /loss of task 2 is not finite \(NaN\)/, `${name} with a NaN loss`);
    // a large but healthy gradient (float32 ~1e15) is accepted
    const big = randomGrads(new Rng(2), T, d);
    big[0]![0] = 1e15;
    assert.doesNotThrow(() => createMethod(name, T).combine(input(big)), `${name} with 1e15`);
  }
});

test("unknown method names and options get a did-you-mean suggestion", () => {
  assert.throws(() => createMethod("gradcraft", 3, { tua: 0.1 }), /unknown option "tua".*did you mean "tau"\?/);
  assert.throws(() => createMethod("dbmtl", 3, { betasigma: 0.1 }), /did you mean "betaSigma"\?/);
  assert.throws(() => getMethod("gradcraf"), /unknown method "gradcraf".*did you mean "gradcraft"\?/);
  assert.throws(() => createMethod("gradcraft", 3, { zzzzzz: 1 }), (e: unknown) => !/did you mean/.test((e as Error).message));
});

test("prototype names are never options: __proto__, constructor and toString are unknown options", () => {
  for (const k of ["__proto__", "constructor", "toString", "hasOwnProperty"]) {
    const opts = JSON.parse(`{${JSON.stringify(k)}: "1"}`) as Record<string, unknown>;
    assert.equal(Object.keys(opts).length, 1, "the key is an own property, as JSON.parse and the CLI make it");
    assert.throws(() => resolveMethodOptions("gradcraft", opts), new RegExp(`method gradcraft: unknown option "${k}"`));
  }
});
