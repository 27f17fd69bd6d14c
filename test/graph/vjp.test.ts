/**
 * Every op's vector-Jacobian rule (src/graph/autodiff.ts) against central
 * differences, in float64 graphs run by ORT's CPU provider.
 *
 * Each case builds f(inputs), contracts it to J = sum(f * C) with a fixed
 * random coefficient tensor C (so every output element matters), takes
 * grad(g, [J], inputs), serializes J and the gradients into one model, and
 * compares the analytic gradient with (J(x + h e_i) - J(x - h e_i)) / 2h from
 * the same session, h = 1e-6, |an - num| <= 1e-7 + 1e-6 |num| (all coordinates
 * of inputs up to 24 elements, 24 random ones of larger inputs).
 *
 * Inputs stay away from kinks and ties (Relu / Abs at 0, Max / Min ties, Clip
 * bounds) by construction. The float32 ONNX Softplus node has no float64 CPU
 * kernel: it is checked in a float32 graph with h = 1e-2 and
 * |an - num| <= 2e-4 + 1e-3 |num| (helpers.F32_TOL; the observed error is ~2e-5).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { Graph, GraphShapeError, type Tensor } from "../../src/graph/graph.ts";
import { grad, NO_GRADIENT_OPS, VJP_RULES } from "../../src/graph/autodiff.ts";
import { awayFrom, checkOp, contract, F32_TOL, fdCheck, fill, grid, rng, runGraph, signed, uniform, type InputSpec } from "./helpers.ts";

interface Case {
  name: string;
  dtype?: "float32" | "float64";
  inputs: InputSpec[];
  build: (g: Graph, xs: Tensor[]) => Tensor;
  ops: string[];
  tol?: typeof F32_TOL;
}

const U = uniform(-2, 2);
const inp = (name: string, shape: number[], gen = U, extra: Partial<InputSpec> = {}): InputSpec => ({ name, shape, gen, ...extra });
const pos = uniform(0.5, 2.5);
/** Fixed ±1-ish values for Where conditions (Greater on a constant). */
const COND_VALUES = [0.7, -0.3, 1.2, -1.1, -0.4, 0.9, 0.2, -0.8, 0.6, -0.5, -0.2, 1.4];

const CASES: Case[] = [
  // ---------------------------------------------------------------- binary, broadcasting
  { name: "Add [3,4]+[4]", inputs: [inp("a", [3, 4]), inp("b", [4])], build: (g, [a, b]) => g.add(a!, b!), ops: ["Add"] },
  { name: "Add [3,1]+[1,4]", inputs: [inp("a", [3, 1]), inp("b", [1, 4])], build: (g, [a, b]) => g.add(a!, b!), ops: ["Add"] },
  { name: "Add [2,1,4]+[3,1] (rank broadcast)", inputs: [inp("a", [2, 1, 4]), inp("b", [3, 1])], build: (g, [a, b]) => g.add(a!, b!), ops: ["Add"] },
  { name: "Add scalar input []", inputs: [inp("a", [3, 4]), inp("b", [])], build: (g, [a, b]) => g.add(a!, b!), ops: ["Add"] },
  { name: "Add number constant", inputs: [inp("a", [3, 4])], build: (g, [a]) => g.add(a!, 0.75), ops: ["Add"] },
  { name: "Add x+x (same tensor twice)", inputs: [inp("a", [3, 4])], build: (g, [a]) => g.add(a!, a!), ops: ["Add"] },
  { name: "Sub [3,4]-[4]", inputs: [inp("a", [3, 4]), inp("b", [4])], build: (g, [a, b]) => g.sub(a!, b!), ops: ["Sub"] },
  { name: "Sub [3,1]-[1,4]", inputs: [inp("a", [3, 1]), inp("b", [1, 4])], build: (g, [a, b]) => g.sub(a!, b!), ops: ["Sub"] },
  { name: "Sub [4]-[3,4] (first operand broadcast)", inputs: [inp("a", [4]), inp("b", [3, 4])], build: (g, [a, b]) => g.sub(a!, b!), ops: ["Sub"] },
  { name: "Sub scalar input []", inputs: [inp("a", []), inp("b", [3, 4])], build: (g, [a, b]) => g.sub(a!, b!), ops: ["Sub"] },
  { name: "Mul [3,4]*[4]", inputs: [inp("a", [3, 4]), inp("b", [4])], build: (g, [a, b]) => g.mul(a!, b!), ops: ["Mul"] },
  { name: "Mul [3,1]*[1,4]", inputs: [inp("a", [3, 1]), inp("b", [1, 4])], build: (g, [a, b]) => g.mul(a!, b!), ops: ["Mul"] },
  { name: "Mul scalar input []", inputs: [inp("a", [3, 4]), inp("b", [])], build: (g, [a, b]) => g.mul(a!, b!), ops: ["Mul"] },
  { name: "Mul x*x (same tensor twice)", inputs: [inp("a", [3, 4])], build: (g, [a]) => g.mul(a!, a!), ops: ["Mul"] },
  { name: "Div [3,4]/[4]", inputs: [inp("a", [3, 4]), inp("b", [4], signed(0.5, 2))], build: (g, [a, b]) => g.div(a!, b!), ops: ["Div"] },
  { name: "Div [3,1]/[1,4]", inputs: [inp("a", [3, 1]), inp("b", [1, 4], signed(0.5, 2))], build: (g, [a, b]) => g.div(a!, b!), ops: ["Div"] },
  { name: "Div [4]/[3,4] (numerator broadcast)", inputs: [inp("a", [4]), inp("b", [3, 4], signed(0.5, 2))], build: (g, [a, b]) => g.div(a!, b!), ops: ["Div"] },
  { name: "Div scalar input []", inputs: [inp("a", [3, 4]), inp("b", [], signed(0.5, 2))], build: (g, [a, b]) => g.div(a!, b!), ops: ["Div"] },
  { name: "Max [3,4],[4]", inputs: [inp("a", [3, 4], grid(0.05)), inp("b", [4], grid(0))], build: (g, [a, b]) => g.max(a!, b!), ops: ["Max"] },
  { name: "Max [3,1],[1,4]", inputs: [inp("a", [3, 1], grid(0)), inp("b", [1, 4], grid(0.05))], build: (g, [a, b]) => g.max(a!, b!), ops: ["Max"] },
  { name: "Max with a number", inputs: [inp("a", [3, 4], grid(0.05))], build: (g, [a]) => g.max(a!, 0.3), ops: ["Max"] },
  { name: "Min [3,4],[4]", inputs: [inp("a", [3, 4], grid(0.05)), inp("b", [4], grid(0))], build: (g, [a, b]) => g.min(a!, b!), ops: ["Min"] },
  { name: "Min [3,1],[1,4]", inputs: [inp("a", [3, 1], grid(0)), inp("b", [1, 4], grid(0.05))], build: (g, [a, b]) => g.min(a!, b!), ops: ["Min"] },
  { name: "Min with a number", inputs: [inp("a", [3, 4], grid(0.05))], build: (g, [a]) => g.min(a!, -0.2), ops: ["Min"] },
  { name: "Pow [3,4]^[4] (positive base)", inputs: [inp("a", [3, 4], pos), inp("b", [4], uniform(-1.5, 2.5))], build: (g, [a, b]) => g.pow(a!, b!), ops: ["Pow"] },
  { name: "Pow [3,1]^[1,4]", inputs: [inp("a", [3, 1], pos), inp("b", [1, 4], uniform(-1.5, 2.5))], build: (g, [a, b]) => g.pow(a!, b!), ops: ["Pow"] },
  { name: "Pow by a number", inputs: [inp("a", [3, 4], pos)], build: (g, [a]) => g.pow(a!, 1.7), ops: ["Pow"] },
  {
    name: "Where [3,4] cond from Greater on a constant, branches [3,4] and [4]",
    inputs: [inp("a", [3, 4]), inp("b", [4])],
    build: (g, [a, b]) => g.where(g.greater(g.constant(COND_VALUES, [3, 4]), 0), a!, b!),
    ops: ["Where", "Greater"],
  },
  {
    name: "Where cond [3,1], branches [1,4] and []",
    inputs: [inp("a", [1, 4]), inp("b", [])],
    build: (g, [a, b]) => g.where(g.greater(g.constant([0.5, -0.5, 0.25], [3, 1]), 0), a!, b!),
    ops: ["Where", "Greater"],
  },
  // ---------------------------------------------------------------- unary
  { name: "Relu", inputs: [inp("x", [3, 4], signed(0.05, 2))], build: (g, [x]) => g.relu(x!), ops: ["Relu"] },
  { name: "Sigmoid", inputs: [inp("x", [3, 4], uniform(-4, 4))], build: (g, [x]) => g.sigmoid(x!), ops: ["Sigmoid"] },
  { name: "Tanh", inputs: [inp("x", [3, 4], uniform(-3, 3))], build: (g, [x]) => g.tanh(x!), ops: ["Tanh"] },
  { name: "Exp", inputs: [inp("x", [3, 4])], build: (g, [x]) => g.exp(x!), ops: ["Exp"] },
  { name: "Log (positive inputs)", inputs: [inp("x", [3, 4], uniform(0.3, 4))], build: (g, [x]) => g.log(x!), ops: ["Log"] },
  { name: "Neg", inputs: [inp("x", [3, 4])], build: (g, [x]) => g.neg(x!), ops: ["Neg"] },
  { name: "Abs", inputs: [inp("x", [3, 4], signed(0.05, 2))], build: (g, [x]) => g.abs(x!), ops: ["Abs"] },
  { name: "Sqrt (positive inputs)", inputs: [inp("x", [3, 4], uniform(0.3, 4))], build: (g, [x]) => g.sqrt(x!), ops: ["Sqrt"] },
  {
    name: "Softplus float64 composite",
    inputs: [inp("x", [3, 4], uniform(-6, 6))],
    build: (g, [x]) => {
      const y = g.softplus(x!);
      assert.ok(!g.nodes.some((n) => n.op === "Softplus"), "a float64 graph must not emit an ONNX Softplus node (no double kernel)");
      return y;
    },
    ops: ["Exp", "Log"],
  },
  {
    // exact zeros: the composite's kinks (max(0,x), min(x,-x)) sit at 0, where the true derivative is 0.5
    name: "Softplus float64 composite at 0 and at ±30",
    inputs: [inp("x", [2, 4], U, { values: [0, 0, -30, 30, 1e-9, -1e-9, 0, 2] })],
    build: (g, [x]) => g.softplus(x!),
    ops: ["Exp", "Log"],
  },
  {
    name: "Softplus float32 ONNX node (looser tolerance)",
    dtype: "float32",
    inputs: [inp("x", [3, 4], uniform(-4, 4))],
    build: (g, [x]) => g.softplus(x!),
    ops: ["Softplus"],
    tol: F32_TOL,
  },
  { name: "Clip [-0.5, 0.7]", inputs: [inp("x", [4, 5], awayFrom(-1.5, 1.5, [-0.5, 0.7]))], build: (g, [x]) => g.clip(x!, -0.5, 0.7), ops: ["Clip"] },
  { name: "Identity", inputs: [inp("x", [3, 4])], build: (g, [x]) => g.identity(x!), ops: ["Identity"] },
  // ---------------------------------------------------------------- n-ary / linear algebra
  { name: "Sum [3,4],[4],[3,1]", inputs: [inp("a", [3, 4]), inp("b", [4]), inp("c", [3, 1])], build: (g, [a, b, c]) => g.sum([a!, b!, c!]), ops: ["Sum"] },
  { name: "Sum a,a,b (repeated operand)", inputs: [inp("a", [2, 3]), inp("b", [2, 3])], build: (g, [a, b]) => g.sum([a!, a!, b!]), ops: ["Sum"] },
  { name: "MatMul [3,4]@[4,2]", inputs: [inp("a", [3, 4]), inp("b", [4, 2])], build: (g, [a, b]) => g.matmul(a!, b!), ops: ["MatMul"] },
  { name: "MatMul x@x (square, same tensor)", inputs: [inp("a", [3, 3])], build: (g, [a]) => g.matmul(a!, a!), ops: ["MatMul"] },
  ...([
    [false, false],
    [false, true],
    [true, false],
    [true, true],
  ] as const).map(
    ([tA, tB]): Case => ({
      name: `Gemm transA=${Number(tA)} transB=${Number(tB)}`,
      inputs: [inp("a", tA ? [4, 3] : [3, 4]), inp("b", tB ? [2, 4] : [4, 2])],
      build: (g, [a, b]) => g.gemm(a!, b!, tA, tB),
      ops: ["Gemm"],
    }),
  ),
  { name: "Gemm transA=1 transB=1, square, same tensor", inputs: [inp("a", [3, 3])], build: (g, [a]) => g.gemm(a!, a!, true, true), ops: ["Gemm"] },
  { name: "Softmax axis -1 of [3,4]", inputs: [inp("x", [3, 4])], build: (g, [x]) => g.softmax(x!, -1), ops: ["Softmax"] },
  { name: "Softmax axis 1 of [2,3,4]", inputs: [inp("x", [2, 3, 4])], build: (g, [x]) => g.softmax(x!, 1), ops: ["Softmax"] },
  { name: "Softmax axis -1 of [2,3,4]", inputs: [inp("x", [2, 3, 4])], build: (g, [x]) => g.softmax(x!, -1), ops: ["Softmax"] },
  // ---------------------------------------------------------------- reductions
  ...(
    [
      [[1], false],
      [[1], true],
      [[0, 2], false],
      [[0, 2], true],
      [[-1], true],
      [[0, 1, 2], false],
      [[2, 0, 1], true],
    ] as const
  ).flatMap(([axes, keep]): Case[] => [
    {
      name: `ReduceSum axes [${axes.join(",")}] keepdims ${Number(keep)}`,
      inputs: [inp("x", [2, 3, 4])],
      build: (g, [x]) => g.reduceSum(x!, axes, keep),
      ops: ["ReduceSum"],
    },
    {
      name: `ReduceMean axes [${axes.join(",")}] keepdims ${Number(keep)}`,
      inputs: [inp("x", [2, 3, 4])],
      build: (g, [x]) => g.reduceMean(x!, axes, keep),
      ops: ["ReduceMean"],
    },
  ]),
  // ---------------------------------------------------------------- shape ops
  { name: "Reshape [2,3,4] -> [6,4]", inputs: [inp("x", [2, 3, 4])], build: (g, [x]) => g.reshape(x!, [6, 4]), ops: ["Reshape"] },
  { name: "Reshape [3,4] -> [2,1,6]", inputs: [inp("x", [3, 4])], build: (g, [x]) => g.reshape(x!, [2, 1, 6]), ops: ["Reshape"] },
  { name: "Transpose [2,3,4] perm [2,0,1]", inputs: [inp("x", [2, 3, 4])], build: (g, [x]) => g.transpose(x!, [2, 0, 1]), ops: ["Transpose"] },
  { name: "Transpose [3,4] perm [1,0]", inputs: [inp("x", [3, 4])], build: (g, [x]) => g.transpose(x!, [1, 0]), ops: ["Transpose"] },
  { name: "Unsqueeze [3,4] axes [0,-1]", inputs: [inp("x", [3, 4])], build: (g, [x]) => g.unsqueeze(x!, [0, -1]), ops: ["Unsqueeze"] },
  { name: "Squeeze [3,1,4,1] axes [1,-1]", inputs: [inp("x", [3, 1, 4, 1])], build: (g, [x]) => g.squeeze(x!, [1, -1]), ops: ["Squeeze"] },
  { name: "Expand [3,1] -> [2,3,4]", inputs: [inp("x", [3, 1])], build: (g, [x]) => g.expand(x!, [2, 3, 4]), ops: ["Expand"] },
  { name: "Expand [] -> [3,4]", inputs: [inp("x", [])], build: (g, [x]) => g.expand(x!, [3, 4]), ops: ["Expand"] },
  {
    name: "Concat axis 1 of [2,3],[2,1],[2,2]",
    inputs: [inp("a", [2, 3]), inp("b", [2, 1]), inp("c", [2, 2])],
    build: (g, [a, b, c]) => g.concat([a!, b!, c!], 1),
    ops: ["Concat"],
  },
  { name: "Concat axis 0 of x,x (same tensor twice)", inputs: [inp("a", [2, 3])], build: (g, [a]) => g.concat([a!, a!], 0), ops: ["Concat"] },
  {
    name: "Split axis 1 [3,5] -> 2,1,2 (all used)",
    inputs: [inp("x", [3, 5])],
    build: (g, [x]) => {
      const [p, q, r] = g.split(x!, 1, [2, 1, 2]);
      return g.concat([g.mul(p!, 2), g.exp(q!), g.neg(r!)], 1);
    },
    ops: ["Split"],
  },
  {
    name: "Split axis 1 [3,5] -> 2,1,2 (only outputs 0 and 2 used: zeros for the middle)",
    inputs: [inp("x", [3, 5])],
    build: (g, [x]) => {
      const [p, , r] = g.split(x!, 1, [2, 1, 2]);
      return g.mul(p!, r!);
    },
    ops: ["Split"],
  },
  {
    name: "Split axis 0 [4,3] -> 1,3 (only output 1 used)",
    inputs: [inp("x", [4, 3])],
    build: (g, [x]) => g.split(x!, 0, [1, 3])[1]!,
    ops: ["Split"],
  },
  {
    name: "Split axis -1 [2,6] -> 3,3 (only output 0 used, twice)",
    inputs: [inp("x", [2, 6])],
    build: (g, [x]) => {
      const [p] = g.split(x!, -1, [3, 3]);
      return g.add(p!, g.tanh(p!));
    },
    ops: ["Split"],
  },
  // ---------------------------------------------------------------- composites
  {
    name: "linear x@W+b",
    inputs: [inp("x", [3, 4]), inp("W", [4, 2]), inp("b", [2])],
    build: (g, [x, W, b]) => g.linear(x!, W!, b!),
    ops: ["MatMul", "Add"],
  },
  { name: "linear without bias", inputs: [inp("x", [3, 4]), inp("W", [4, 2])], build: (g, [x, W]) => g.linear(x!, W!), ops: ["MatMul"] },
  {
    name: "bceWithLogits (float64, logits and labels)",
    inputs: [inp("z", [4, 3], uniform(-5, 5)), inp("y", [4, 3], uniform(0, 1))],
    build: (g, [z, y]) => g.bceWithLogits(z!, y!),
    ops: ["ReduceMean"],
  },
  {
    name: "bceWithLogits with exactly-zero logits (dead ReLUs and zero biases give z = 0)",
    inputs: [inp("z", [4], U, { values: [0, 0, 0.5, -2] }), inp("y", [4], U, { values: [1, 0, 1, 0] })],
    build: (g, [z, y]) => g.bceWithLogits(z!, y!),
    ops: ["ReduceMean"],
  },
];

for (const c of CASES) {
  test(`VJP ${c.name}`, async () => {
    await checkOp(c);
  });
}

test("the table covers every op that has a differentiable VJP rule", () => {
  const seen = new Set<string>();
  for (const c of CASES) {
    const g = new Graph(c.dtype ?? "float64");
    const xs = c.inputs.map((s) => g.input(s.name, s.shape));
    c.build(g, xs);
    for (const n of g.nodes) seen.add(n.op);
  }
  const missing = Object.keys(VJP_RULES).filter((op) => !NO_GRADIENT_OPS.has(op) && !seen.has(op));
  assert.deepEqual(missing, [], `ops with a VJP rule but no finite-difference case: ${missing.join(", ")}`);
  // the ops listed as giving no gradient have a rule, and it returns no cotangent (Gather's refuses)
  for (const op of NO_GRADIENT_OPS) {
    assert.ok(VJP_RULES[op], `${op} is in NO_GRADIENT_OPS but has no rule`);
    if (op !== "Gather") assert.ok(VJP_RULES[op]!(new Graph(), undefined as never, undefined as never, [true, true]).every((c) => c === null), `${op} gives a cotangent`);
  }
});

test("bceWithLogits at z = 0: d/dz = (sigmoid(0) - y) / N = (0.5 - y) / N exactly", async () => {
  const g = new Graph("float64");
  const z = g.input("z", [4]);
  const y = g.input("y", [4]);
  const [dz] = grad(g, [g.bceWithLogits(z, y)], [z]);
  const out = await runGraph(g, [{ name: "dz", tensor: dz! }], { z: [0, 0, 0, 0], y: [1, 0, 0.25, 0.5] });
  assert.deepEqual(out.dz!.data, [-0.125, 0.125, 0.0625, 0]);
});

test("Gather has no VJP: grad through it throws a clear error; its int64 indices get no cotangent", async () => {
  assert.throws(() => VJP_RULES.Gather!(new Graph(), undefined as never, undefined as never, [true, false]), GraphShapeError);
  const g = new Graph("float64");
  const E = g.input("E", [5, 3]);
  const idx = g.input("idx", [4], "int64");
  const x = g.input("x", [4, 3]);
  const rows = g.scope("emb", () => g.gather(E, idx));
  const J = g.reduceSum(g.mul(rows, x), [0, 1]);
  assert.throws(
    () => grad(g, [J], [E]),
    (e: unknown) => e instanceof GraphShapeError && /Gather is not differentiable/.test(e.message) && /gathered input/.test(e.message),
  );
  // w.r.t. x and the int64 indices only: Gather is crossed through its indices, which are not differentiable
  const before = g.nodes.length;
  const [dx, didx] = grad(g, [J], [x, idx]);
  assert.equal(didx, null, "int64 indices must get no cotangent");
  assert.ok(dx);
  assert.ok(
    g.nodes.slice(before).every((n) => n.op !== "Gather"),
    "the backward must not touch Gather",
  );
  const Ev = Array.from({ length: 15 }, (_, i) => i / 10);
  const out = await runGraph(g, [{ name: "dx", tensor: dx }], { E: Ev, idx: [4, 0, 4, 2], x: Array(12).fill(1) });
  // d J / d x = the gathered rows
  assert.deepEqual(
    out.dx!.data,
    [4, 0, 4, 2].flatMap((r) => Ev.slice(3 * r, 3 * r + 3)),
  );
});

test("an op without a rule fails with the op and its layer named", () => {
  const g = new Graph("float64");
  const x = g.input("x", [3]);
  const [y] = g.scope("tower", () => g.node("Erf", [x], [{ shape: [3], dtype: "float64" }]));
  assert.throws(
    () => grad(g, [g.reduceSum(y!, [0])], [x]),
    (e: unknown) => e instanceof GraphShapeError && /no vector-Jacobian rule for op Erf/.test(e.message) && /tower/.test(e.message),
  );
});

test("Greater / Less / And and bool tensors get no cotangent; the float path through Where is still right", async () => {
  assert.deepEqual(VJP_RULES.Greater!(new Graph(), undefined as never, undefined as never, [true, true]), [null, null]);
  assert.deepEqual(VJP_RULES.Less!(new Graph(), undefined as never, undefined as never, [true, true]), [null, null]);
  assert.deepEqual(VJP_RULES.And!(new Graph(), undefined as never, undefined as never, [true, true]), [null, null]);
  const g = new Graph("float64");
  const x = g.input("x", [3, 4]);
  const gt = g.greater(x, -0.5);
  const lt = g.less(x, 0.8);
  const m = g.and(gt, lt);
  const out = g.where(m, g.mul(x, x), g.exp(x));
  const r = rng(7);
  const J = contract(g, out, r);
  const [dx, dgt, dlt, dm] = grad(g, [J], [x, gt, lt, m]);
  assert.equal(dgt, null);
  assert.equal(dlt, null);
  assert.equal(dm, null);
  assert.ok(dx);
  const xs = fill([3, 4], awayFrom(-2, 2, [-0.5, 0.8]), r);
  assert.ok(xs.some((v) => v > -0.5 && v < 0.8) && xs.some((v) => v < -0.5 || v > 0.8), "both branches are exercised");
  await fdCheck(g, [J], [x], [[dx]], { x: xs }, { h: 1e-6, atol: 1e-7, rtol: 1e-6 }, r, "Where(And(Greater, Less))");
});

test("grad returns null for an input the output does not depend on (and for a y that does not depend on wrt)", async () => {
  const g = new Graph("float64");
  const a = g.input("a", [2, 3]);
  const b = g.input("b", [2, 3]);
  const c = g.input("c", [3]);
  const J = g.reduceSum(g.mul(g.exp(a), c), [0, 1]);
  const [da, db, dc] = grad(g, [J], [a, b, c]);
  assert.ok(da);
  assert.ok(dc);
  assert.equal(db, null);
  const nodes = g.nodes.length;
  const K = g.reduceSum(b, [0, 1]);
  assert.deepEqual(grad(g, [K], [a, c]), [null, null]);
  assert.equal(g.nodes.length, nodes + 1, "a gradient that is null everywhere builds no nodes (only K's ReduceSum)");
  const r = rng(3);
  await fdCheck(g, [J], [a, b, c], [[da, db, dc]], { a: fill([2, 3], uniform(-1, 1), r), b: fill([2, 3], uniform(-1, 1), r), c: fill([3], uniform(-1, 1), r) }, { h: 1e-6, atol: 1e-7, rtol: 1e-6 }, r, "null gradient");
});

test("two grad calls on one graph share the forward: no forward node is duplicated, the ReLU mask is built once", async () => {
  const g = new Graph("float64");
  const x = g.input("x", [4, 3]);
  const W = g.input("W", [3, 5]);
  const V = g.input("V", [5, 2]);
  const pre = g.matmul(x, W);
  const h = g.relu(pre);
  // more memoised masks (Max, Abs, Clip), all with their kinks at pre = 0 or out of reach (|pre| <= 3)
  const k = g.mul(g.max(pre, g.mul(g.abs(pre), 0.5)), g.clip(pre, -5, 5));
  const z = g.add(h, k);
  const s = g.sigmoid(g.matmul(z, V));
  const r = rng(11);
  const J1 = contract(g, s, r);
  const J2 = g.reduceMean(g.mul(z, h), [0, 1]);
  const forward = [...g.nodes];
  const count = (op: string): number => g.nodes.filter((n) => n.op === op).length;
  const masksOfH = (): number => g.nodes.filter((n) => n.op === "Sign" && n.inputs[0]!.id === h.id).length;

  const g1 = grad(g, [J1], [x, W, V]);
  const afterFirst = g.nodes.length;
  assert.equal(masksOfH(), 1, "the first backward builds the ReLU mask");
  const g2 = grad(g, [J2], [x, W, V]);
  assert.equal(g2[2], null, "J2 does not read V");
  assert.deepEqual(g.nodes.slice(0, forward.length), forward, "forward nodes are kept as they were");
  assert.equal(count("Relu"), 1, "the forward Relu is not duplicated");
  assert.equal(count("MatMul"), 2, "the forward MatMuls are not duplicated (backward products are Gemm)");
  assert.equal(count("Sigmoid"), 1);
  assert.equal(masksOfH(), 1, "the memoised ReLU mask is created once for both backward passes");
  const mask = g.nodes.find((n) => n.op === "Sign" && n.inputs[0]!.id === h.id)!.outputs[0]!;
  const second = g.nodes.slice(afterFirst);
  assert.ok(
    second.some((n) => n.op === "Mul" && n.inputs.some((t) => t.id === mask.id)),
    "the second backward reuses the first one's mask",
  );
  assert.ok(!second.some((n) => n.op === "Relu" || n.op === "MatMul" || n.op === "Sigmoid" || n.op === "Max" || n.op === "Abs" || n.op === "Clip"));
  assert.deepEqual(
    second.filter((n) => n.op === "Greater" || n.op === "Less" || n.op === "And" || n.op === "Sign").map((n) => n.op),
    [],
    "every mask (Relu, Max, Abs, Clip) is memoised: the second backward builds none",
  );

  // both gradients, in one model, against central differences (pre-activations kept off the ReLU kink)
  const xs = fill([4, 3], uniform(-1, 1), r);
  const Ws = fill([3, 5], uniform(-1, 1), r);
  const Vs = fill([5, 2], uniform(-1, 1), r);
  const pv = await runGraph(g, [{ name: "pre", tensor: pre }], { x: xs, W: Ws });
  assert.ok(Math.min(...pv.pre!.data.map(Math.abs)) > 1e-3, "fixture: a pre-activation sits on the ReLU kink; change the seed");
  assert.ok(pv.pre!.data.some((v) => v < 0) && pv.pre!.data.some((v) => v > 0));
  await fdCheck(g, [J1, J2], [x, W, V], [g1, g2], { x: xs, W: Ws, V: Vs }, { h: 1e-6, atol: 1e-7, rtol: 1e-6 }, r, "shared forward");
});

test("explicit cotangents: grad(ys, wrt, cts) is the VJP with the given cotangent, and a wrong shape is rejected", async () => {
  const g = new Graph("float64");
  const x = g.input("x", [2, 3]);
  const c = g.input("c", [2, 3]);
  const y = g.mul(x, x);
  const [dx] = grad(g, [y], [x], [c]);
  const out = await runGraph(g, [{ name: "dx", tensor: dx! }], { x: [1, 2, 3, -1, -2, 0.5], c: [1, 1, 1, 2, 2, 2] });
  assert.deepEqual(out.dx!.data, [2, 4, 6, -4, -8, 2]);
  assert.throws(() => grad(g, [y], [x], [g.input("c2", [3])]), GraphShapeError);
  assert.throws(() => grad(g, [y], [x], []), /cotangents/);
});

test("rules build cotangents in the operand's dtype (a float32 tensor in a float64 graph)", async () => {
  const g = new Graph("float64");
  const a = g.input("a", [4], "float32");
  const J = g.reduceSum(g.mul(g.abs(a), g.relu(a)), [0]);
  const [da] = grad(g, [J], [a]);
  assert.equal(da!.dtype, "float32");
  const out = await runGraph(g, [{ name: "da", tensor: da! }], { a: [1.5, -2, 0.5, -0.25] });
  // J = sum(|a| relu(a)) = sum over a > 0 of a^2: dJ/da = 2a there, 0 elsewhere
  assert.deepEqual(out.da!.data, [3, 0, 1, 0]);
});

test("ReLU then a mask that needs no gradient (dropout): one Mul per backward pass, memoised mask ⊙ sign(y), values match finite differences", async () => {
  const g = new Graph("float64");
  const x = g.input("x", [4, 3]);
  const W = g.input("W", [3, 5]);
  const V = g.input("V", [5, 2]);
  const m = g.input("m", [4, 5]); // inverted-dropout mask: 0 or 1.25
  const m2 = g.input("m2", [4, 5]);
  const pre = g.matmul(x, W);
  const y = g.relu(pre);
  const d = g.mul(m, y); // mask on the left
  const y2 = g.relu(g.mul(pre, 0.5));
  const d2 = g.add(g.mul(y2, m2), g.mul(y2, y2)); // y2 has a second consumer: the fold must not drop its ReLU mask
  const s = g.sigmoid(g.matmul(g.add(d, d2), V));
  const r = rng(23);
  const J1 = contract(g, s, r);
  const J2 = g.reduceMean(g.mul(d, d), [0, 1]);
  const g1 = grad(g, [J1], [x, W, V]);
  const afterFirst = g.nodes.length;
  const g2 = grad(g, [J2], [x, W, V]);
  assert.equal(g2[2], null, "J2 does not read V");
  const second = g.nodes.slice(afterFirst);
  assert.equal(second.filter((n) => n.op === "Sign").length, 0, "the second backward reuses the memoised masks");
  const maskProducts = g.nodes.filter((n) => n.op === "Mul" && n.inputs.some((t) => t.id === m.id) && n.outputs[0]!.id !== d.id);
  assert.equal(maskProducts.length, 1, "m ⊙ sign(y) is built once for both backward passes");
  const mp = maskProducts[0]!.outputs[0]!;
  assert.equal(second.filter((n) => n.inputs.some((t) => t.id === mp.id)).length, 1, "J2's backward multiplies by the folded mask once");
  assert.ok(!second.some((n) => n.op === "Mul" && n.inputs.some((t) => t.id === m.id)), "J2's backward does not multiply by the raw mask");
  // values: against central differences, pre-activations off the kink, mask with zeros and 1.25
  const xs = fill([4, 3], uniform(-1, 1), r);
  const Ws = fill([3, 5], uniform(-1, 1), r);
  const Vs = fill([5, 2], uniform(-1, 1), r);
  const mask = (): number[] => fill([4, 5], (q) => (q() < 0.3 ? 0 : 1.25), r);
  const ms = mask();
  const m2s = mask();
  assert.ok(ms.includes(0) && ms.includes(1.25));
  const pv = await runGraph(g, [{ name: "pre", tensor: pre }], { x: xs, W: Ws });
  assert.ok(Math.min(...pv.pre!.data.map(Math.abs)) > 1e-3, "fixture: a pre-activation sits on the ReLU kink; change the seed");
  await fdCheck(g, [J1, J2], [x, W, V], [g1, g2], { x: xs, W: Ws, V: Vs, m: ms, m2: m2s }, { h: 1e-6, atol: 1e-7, rtol: 1e-6 }, r, "relu-mask fold");
});
