import { test } from "node:test";
import assert from "node:assert/strict";
import { rlw } from "../../src/balance/rlw.ts";
import { Rng } from "../../src/util/rng.ts";
import { DEGENERATE, assertClose, assertDirectionMatchesCoeffs, assertWellFormed, mkInput, randomRows } from "./methodfixtures.ts";

test("rlw: weights are softmax of T standard normals drawn from input.rng (independent recomputation)", () => {
  const rows = randomRows(4, 7, 3);
  const out = rlw.create(4).combine(mkInput(rows, { rng: new Rng(42) }));
  const r = new Rng(42);
  const z = [r.normal(), r.normal(), r.normal(), r.normal()];
  const e = z.map((x) => Math.exp(x));
  const s = e.reduce((a, b) => a + b, 0);
  const expected = e.map((x) => x / s);
  assertClose(out.weights!, expected, 1e-12, "weights");
  assertClose(out.coeffs, expected, 1e-12, "coeffs");
  assertClose(out.taskScale, expected, 1e-12, "taskScale");
  assertWellFormed(out, 4, 7);
  assertDirectionMatchesCoeffs(out, rows);
});

test("rlw: weights lie on the simplex, are reproducible from the seed and change between steps", () => {
  const rows = randomRows(3, 5, 9);
  const m = rlw.create(3);
  const rngA = new Rng(7);
  const rngB = new Rng(7);
  let prev: number[] | null = null;
  for (let step = 0; step < 20; step++) {
    const a = m.combine(mkInput(rows, { step, rng: rngA })).weights!;
    const b = rlw.create(3).combine(mkInput(rows, { step, rng: rngB })).weights!;
    assert.deepEqual(Array.from(a), Array.from(b));
    assert.ok(Math.abs(a.reduce((x, y) => x + y, 0) - 1) < 1e-12);
    for (const w of a) assert.ok(w > 0 && w < 1);
    if (prev !== null) assert.notDeepEqual(Array.from(a), prev);
    prev = Array.from(a);
  }
});

test("rlw: finite on degenerate gradients, kind and options", () => {
  for (const [name, rows] of Object.entries(DEGENERATE)) {
    const out = rlw.create(rows.length).combine(mkInput(rows));
    assertWellFormed(out, rows.length, rows[0]!.length);
    assertDirectionMatchesCoeffs(out, rows);
    assert.ok(out.weights !== undefined, name);
  }
  assert.equal(rlw.kind, "loss-weighting");
  assert.throws(() => rlw.create(2, { foo: 1 } as never), /rlw: unknown option "foo"/);
  assert.throws(() => rlw.create(0), /numTasks/);
});
