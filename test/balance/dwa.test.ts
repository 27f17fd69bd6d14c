import { test } from "node:test";
import assert from "node:assert/strict";
import { dwa } from "../../src/balance/dwa.ts";
import { assertClose, assertDirectionMatchesCoeffs, assertStateRoundTrip, assertWellFormed, mkInput } from "./methodfixtures.ts";

const rows = [[1, 0, 2], [0, -1, 1], [3, 1, 0]];

test("dwa: weights are 1 until two epochs have been recorded", () => {
  const m = dwa.create(3);
  assertClose(m.combine(mkInput(rows, { epoch: 0 })).weights!, [1, 1, 1], 0);
  m.endEpoch!(Float64Array.from([1, 2, 3]));
  assertClose(m.combine(mkInput(rows, { epoch: 1 })).weights!, [1, 1, 1], 0);
});

test("dwa: weights follow K·softmax(r/T) on a hand-made loss history", () => {
  const m = dwa.create(3);
  m.endEpoch!(Float64Array.from([1, 2, 4]));
  m.endEpoch!(Float64Array.from([0.5, 2, 5]));
  // r = [0.5, 1, 1.25]; r/T = [0.25, 0.5, 0.625]
  const e = [Math.exp(0.25), Math.exp(0.5), Math.exp(0.625)];
  const s = e[0]! + e[1]! + e[2]!;
  const expected = e.map((x) => (3 * x) / s);
  const out = m.combine(mkInput(rows, { epoch: 2 }));
  assertClose(out.weights!, expected, 1e-14, "epoch-2 weights");
  assertClose(out.taskScale, expected, 1e-14, "taskScale");
  assert.ok(Math.abs(out.weights!.reduce((a, b) => a + b, 0) - 3) < 1e-12);
  assertDirectionMatchesCoeffs(out, rows);
  // A third epoch: only the last two epochs matter. r = [2/0.5, 1/2, 5/5] = [4, 0.5, 1]
  m.endEpoch!(Float64Array.from([2, 1, 5]));
  const e2 = [Math.exp(2), Math.exp(0.25), Math.exp(0.5)];
  const s2 = e2[0]! + e2[1]! + e2[2]!;
  assertClose(m.combine(mkInput(rows, { epoch: 3 })).weights!, e2.map((x) => (3 * x) / s2), 1e-14, "epoch-3 weights");
  // temperature option
  const m2 = dwa.create(2, { temperature: 1 });
  m2.endEpoch!(Float64Array.from([1, 1]));
  m2.endEpoch!(Float64Array.from([2, 1]));
  const w = m2.combine(mkInput([[1], [1]])).weights!;
  assertClose(w, [(2 * Math.E ** 2) / (Math.E ** 2 + Math.E), (2 * Math.E) / (Math.E ** 2 + Math.E)], 1e-14, "T=1");
});

test("dwa: zero previous loss is guarded, state round trip, validation", () => {
  const m = dwa.create(2);
  m.endEpoch!(Float64Array.from([0, 1]));
  m.endEpoch!(Float64Array.from([1, 1]));
  const out = m.combine(mkInput([[1, 2], [3, 4]]));
  assertWellFormed(out, 2, 2);
  assertClose(out.weights!, [1, 1], 1e-15, "r = 1 for a zero denominator");
  assertStateRoundTrip(
    () => dwa.create(3),
    [mkInput(rows)],
    [mkInput(rows, { epoch: 2 }), mkInput(rows, { epoch: 2, step: 5 })],
    (a) => {
      a.endEpoch!(Float64Array.from([1, 2, 3]));
      a.endEpoch!(Float64Array.from([0.9, 2.5, 1]));
    },
  );
  assert.throws(() => dwa.create(2, { temperature: 0 }), /dwa: option temperature/);
  assert.throws(() => dwa.create(2).endEpoch!(Float64Array.from([1])), /dwa: endEpoch expected 2/);
  assert.throws(() => dwa.create(2).setState({ history: [[1, 2], [3]] }), /history\[1\]/);
});
