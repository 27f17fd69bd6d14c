import { test } from "node:test";
import assert from "node:assert/strict";
import { ew } from "../../src/balance/ew.ts";
import { makeInput } from "./surgery-helpers.ts";

test("EW: direction is the plain sum, coefficients/weights/taskScale all 1", () => {
  // [1,2,0] + [-1,0,3] + [0.5,0.5,0.5] = [0.5, 2.5, 3.5]
  const out = ew.create(3).combine(makeInput([[1, 2, 0], [-1, 0, 3], [0.5, 0.5, 0.5]]));
  assert.deepEqual(Array.from(out.direction), [0.5, 2.5, 3.5]);
  assert.deepEqual(Array.from(out.coeffs), [1, 1, 1]);
  assert.deepEqual(Array.from(out.taskScale), [1, 1, 1]);
  assert.deepEqual(Array.from(out.weights ?? []), [1, 1, 1]);
  // <g1,g2> = -1 < 0 is the only conflicting pair
  assert.equal(out.diagnostics.conflicts, 1);
  assert.equal(ew.label, "EW");
  assert.equal(ew.kind, "loss-weighting");
});

test("EW: validation", () => {
  assert.throws(() => ew.create(2, { x: 1 } as never), /ew: unknown option "x"/);
  assert.throws(() => ew.create(2).combine(makeInput([[1]])), /built for 2 tasks but got 1/);
  const m = ew.create(2);
  assert.equal(m.getState(), null);
  assert.throws(() => m.setState({ a: 1 }), /stateless/);
});
