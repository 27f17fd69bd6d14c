import { test } from "node:test";
import assert from "node:assert/strict";
import { W, evalWeightRule, ruleParamCount, ruleSignature, type WeightExpr } from "../../src/balance/weightrule.ts";
import { compileWeightRule } from "../../src/engine/programs.ts";
import { Graph } from "../../src/graph/graph.ts";
import { runGraph } from "../graph/helpers.ts";
import { assertClose } from "./methodfixtures.ts";

const L = [0.5, 2, 0.25];
const P0 = [1, -1, 3];
const P1 = [0.2, 0.3, 0.5];

/** Every op once, with values written out by hand. */
const CASES: [string, WeightExpr, number[]][] = [
  ["losses", W.losses(), L],
  ["param", W.param(1), P1],
  ["const", W.c(4), [4, 4, 4]],
  ["add", W.add(W.losses(), W.param(0)), [1.5, 1, 3.25]],
  ["sub", W.sub(W.losses(), W.c(1)), [-0.5, 1, -0.75]],
  ["mul", W.mul(W.losses(), W.param(0)), [0.5, -2, 0.75]],
  ["div", W.div(W.param(1), W.losses()), [0.4, 0.15, 2]],
  ["max", W.max(W.param(0), W.c(0)), [1, 0, 3]],
  ["exp", W.exp(W.param(0)), [Math.E, 1 / Math.E, Math.exp(3)]],
  ["log", W.log(W.losses()), [Math.log(0.5), Math.log(2), Math.log(0.25)]],
  ["softmax", W.softmax(W.param(0)), [Math.E, 1 / Math.E, Math.exp(3)].map((x, _, a) => x / a.reduce((s, y) => s + y, 0))],
  ["normalize", W.normalize(W.param(1)), [0.2, 0.3, 0.5]],
  ["softmax of large values (max-shifted)", W.softmax(W.mul(W.losses(), W.c(1000))), [0, 1, 0]],
];

test("weight rules: every op evaluates to its hand-computed value in float64", () => {
  for (const [name, e, want] of CASES) assertClose(evalWeightRule(e, L, [P0, P1]), want, 1e-15, name);
});

test("weight rules: the compiled graph gives the float64 evaluation (float64 and float32 programs, every op)", async () => {
  for (const dtype of ["float64", "float32"] as const) {
    const g = new Graph(dtype);
    const l = g.input("l", [3]);
    const ps = [g.input("lw0", [3]), g.input("lw1", [3])];
    const outputs = CASES.map(([, e], k) => ({ name: `o${k}`, tensor: g.identity(compileWeightRule(g, e, l, ps)) }));
    const out = await runGraph(g, outputs, { l: L, lw0: P0, lw1: P1 });
    CASES.forEach(([name, e], k) => {
      assert.deepEqual(out[`o${k}`]!.dims, [3], `${name}: shape`);
      assertClose(out[`o${k}`]!.data, evalWeightRule(e, L, [P0, P1]), dtype === "float64" ? 1e-15 : 1e-6, `${dtype} ${name}`);
    });
  }
});

test("weight rules: parameter count, signature, malformed rules and non-finite weights", () => {
  assert.equal(ruleParamCount(W.losses()), 0);
  assert.equal(ruleParamCount(W.div(W.param(2), W.param(0))), 3);
  assert.notEqual(ruleSignature(W.c(1)), ruleSignature(W.c(2)));
  assert.throws(() => ruleParamCount({ op: "param", index: -1 }), /param index/);
  assert.throws(() => ruleParamCount({ op: "const", value: Number.NaN }), /constant must be a finite number/);
  assert.throws(() => ruleParamCount({ op: "pow" } as never), /unknown op "pow"/);
  assert.throws(() => evalWeightRule(W.param(0), L, []), /parameter 0 must have 3 entries/);
  assert.throws(() => evalWeightRule(W.param(0), L, [[1, 2]]), /parameter 0 must have 3 entries/);
  assert.throws(() => evalWeightRule(W.div(W.c(1), W.sub(W.losses(), W.c(0.5))), L, []), /weight of task 0 is not finite/);
});
