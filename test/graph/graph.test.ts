/**
 * Builder properties of src/graph/graph.ts: shape inference for every op
 * (checked against the shapes ORT actually produces), shape errors that name
 * the layer and the shapes, input-name rules, constant deduplication, scopes,
 * memo, and the no-op shortcuts.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { Graph, GraphShapeError, numel, type DType, type Tensor } from "../../src/graph/graph.ts";
import { VJP_RULES } from "../../src/graph/autodiff.ts";
import { fill, rng, runGraph, uniform } from "./helpers.ts";

interface ShapeCase {
  name: string;
  build: (g: Graph) => Tensor | Tensor[];
  shapes: number[][];
  dtype?: DType;
  /** The ONNX op of the (last) node built. */
  op: string;
  graphDtype?: "float32" | "float64";
}

const x = (g: Graph, name: string, shape: number[], dtype?: DType): Tensor => g.input(name, shape, dtype);

const SHAPES: ShapeCase[] = [
  { name: "Add [3,4]+[4]", build: (g) => g.add(x(g, "a", [3, 4]), x(g, "b", [4])), shapes: [[3, 4]], op: "Add" },
  { name: "Sub [3,1]-[1,4]", build: (g) => g.sub(x(g, "a", [3, 1]), x(g, "b", [1, 4])), shapes: [[3, 4]], op: "Sub" },
  { name: "Mul [2,1,4]*[3,1]", build: (g) => g.mul(x(g, "a", [2, 1, 4]), x(g, "b", [3, 1])), shapes: [[2, 3, 4]], op: "Mul" },
  { name: "Div [3,4]/scalar", build: (g) => g.div(x(g, "a", [3, 4]), 2), shapes: [[3, 4]], op: "Div" },
  { name: "Div []/[5]", build: (g) => g.div(x(g, "a", []), x(g, "b", [5])), shapes: [[5]], op: "Div" },
  { name: "Max [1]*[2,3]", build: (g) => g.max(x(g, "a", [1]), x(g, "b", [2, 3])), shapes: [[2, 3]], op: "Max" },
  { name: "Min [2,3]/[3]", build: (g) => g.min(x(g, "a", [2, 3]), x(g, "b", [3])), shapes: [[2, 3]], op: "Min" },
  { name: "Pow [4,1]^[1,2]", build: (g) => g.pow(x(g, "a", [4, 1]), x(g, "b", [1, 2])), shapes: [[4, 2]], op: "Pow" },
  { name: "Greater [3,4]>[4] is bool", build: (g) => g.greater(x(g, "a", [3, 4]), x(g, "b", [4])), shapes: [[3, 4]], dtype: "bool", op: "Greater" },
  { name: "Less [3,1]<scalar is bool", build: (g) => g.less(x(g, "a", [3, 1]), 0), shapes: [[3, 1]], dtype: "bool", op: "Less" },
  {
    name: "And [3,1]&[4] is bool",
    build: (g) => g.and(g.greater(x(g, "a", [3, 1]), 0), g.less(x(g, "b", [4]), 0)),
    shapes: [[3, 4]],
    dtype: "bool",
    op: "And",
  },
  {
    name: "Where cond [3,1], a [4], b []",
    build: (g) => g.where(g.greater(x(g, "c", [3, 1]), 0), x(g, "a", [4]), x(g, "b", [])),
    shapes: [[3, 4]],
    op: "Where",
  },
  { name: "Where with two numbers takes the graph dtype", build: (g) => g.where(g.greater(x(g, "c", [2, 2]), 0), 1, 0), shapes: [[2, 2]], op: "Where" },
  ...["relu", "sigmoid", "tanh", "exp", "log", "neg", "abs", "sqrt", "identity"].map(
    (f): ShapeCase => ({
      name: `${f} keeps the shape`,
      build: (g) => (g[f as "relu"] as (t: Tensor) => Tensor).call(g, x(g, "a", [2, 3, 1])),
      shapes: [[2, 3, 1]],
      op: f === "relu" ? "Relu" : f[0]!.toUpperCase() + f.slice(1),
    }),
  ),
  { name: "sign keeps the shape", build: (g) => g.sign(x(g, "a", [2, 3, 1])), shapes: [[2, 3, 1]], op: "Sign" },
  { name: "softplus float32 is one Softplus node", graphDtype: "float32", build: (g) => g.softplus(x(g, "a", [2, 3])), shapes: [[2, 3]], op: "Softplus" },
  { name: "softplus float64 is a composite", build: (g) => g.softplus(x(g, "a", [2, 3])), shapes: [[2, 3]], op: "Add" },
  { name: "Clip", build: (g) => g.clip(x(g, "a", [2, 3]), -1, 1), shapes: [[2, 3]], op: "Clip" },
  { name: "Sum [3,4],[4],[3,1]", build: (g) => g.sum([x(g, "a", [3, 4]), x(g, "b", [4]), x(g, "c", [3, 1])]), shapes: [[3, 4]], op: "Sum" },
  { name: "Sum [2,1],[1,5]", build: (g) => g.sum([x(g, "a", [2, 1]), x(g, "b", [1, 5])]), shapes: [[2, 5]], op: "Sum" },
  { name: "MatMul [3,4]@[4,2]", build: (g) => g.matmul(x(g, "a", [3, 4]), x(g, "b", [4, 2])), shapes: [[3, 2]], op: "MatMul" },
  { name: "Gemm [3,4]@[4,2]", build: (g) => g.gemm(x(g, "a", [3, 4]), x(g, "b", [4, 2])), shapes: [[3, 2]], op: "Gemm" },
  { name: "Gemm [4,3]ᵀ@[4,2]", build: (g) => g.gemm(x(g, "a", [4, 3]), x(g, "b", [4, 2]), true, false), shapes: [[3, 2]], op: "Gemm" },
  { name: "Gemm [3,4]@[2,4]ᵀ", build: (g) => g.gemm(x(g, "a", [3, 4]), x(g, "b", [2, 4]), false, true), shapes: [[3, 2]], op: "Gemm" },
  { name: "Gemm [4,3]ᵀ@[2,4]ᵀ", build: (g) => g.gemm(x(g, "a", [4, 3]), x(g, "b", [2, 4]), true, true), shapes: [[3, 2]], op: "Gemm" },
  { name: "Softmax axis -1", build: (g) => g.softmax(x(g, "a", [2, 3, 4]), -1), shapes: [[2, 3, 4]], op: "Softmax" },
  { name: "Softmax axis 1", build: (g) => g.softmax(x(g, "a", [2, 3, 4]), 1), shapes: [[2, 3, 4]], op: "Softmax" },
  { name: "ReduceSum [2,3,4] axes [1] keepdims 0", build: (g) => g.reduceSum(x(g, "a", [2, 3, 4]), [1]), shapes: [[2, 4]], op: "ReduceSum" },
  { name: "ReduceSum [2,3,4] axes [1] keepdims 1", build: (g) => g.reduceSum(x(g, "a", [2, 3, 4]), [1], true), shapes: [[2, 1, 4]], op: "ReduceSum" },
  { name: "ReduceSum [2,3,4] axes [0,-1] keepdims 0", build: (g) => g.reduceSum(x(g, "a", [2, 3, 4]), [0, -1]), shapes: [[3]], op: "ReduceSum" },
  { name: "ReduceSum [2,3,4] axes [2,0,2] keepdims 1", build: (g) => g.reduceSum(x(g, "a", [2, 3, 4]), [2, 0, 2], true), shapes: [[1, 3, 1]], op: "ReduceSum" },
  { name: "ReduceSum all axes keepdims 0 is a scalar", build: (g) => g.reduceSum(x(g, "a", [2, 3]), [0, 1]), shapes: [[]], op: "ReduceSum" },
  { name: "ReduceMean [2,3,4] axes [-2] keepdims 1", build: (g) => g.reduceMean(x(g, "a", [2, 3, 4]), [-2], true), shapes: [[2, 1, 4]], op: "ReduceMean" },
  { name: "ReduceMean [2,3,4] axes [0,2] keepdims 0", build: (g) => g.reduceMean(x(g, "a", [2, 3, 4]), [0, 2]), shapes: [[3]], op: "ReduceMean" },
  { name: "ReduceMean all axes keepdims 1", build: (g) => g.reduceMean(x(g, "a", [2, 3]), [0, 1], true), shapes: [[1, 1]], op: "ReduceMean" },
  { name: "Reshape [2,3,4] -> [4,6]", build: (g) => g.reshape(x(g, "a", [2, 3, 4]), [4, 6]), shapes: [[4, 6]], op: "Reshape" },
  { name: "Reshape [6] -> [1,2,1,3]", build: (g) => g.reshape(x(g, "a", [6]), [1, 2, 1, 3]), shapes: [[1, 2, 1, 3]], op: "Reshape" },
  { name: "Transpose [2,3,4] perm [2,0,1]", build: (g) => g.transpose(x(g, "a", [2, 3, 4]), [2, 0, 1]), shapes: [[4, 2, 3]], op: "Transpose" },
  { name: "Unsqueeze [3,4] axes [0,-1]", build: (g) => g.unsqueeze(x(g, "a", [3, 4]), [0, -1]), shapes: [[1, 3, 4, 1]], op: "Unsqueeze" },
  { name: "Unsqueeze [3,4] axes [1]", build: (g) => g.unsqueeze(x(g, "a", [3, 4]), [1]), shapes: [[3, 1, 4]], op: "Unsqueeze" },
  { name: "Unsqueeze [] axes [0]", build: (g) => g.unsqueeze(x(g, "a", []), [0]), shapes: [[1]], op: "Unsqueeze" },
  { name: "Squeeze [3,1,4,1] axes [1,-1]", build: (g) => g.squeeze(x(g, "a", [3, 1, 4, 1]), [1, -1]), shapes: [[3, 4]], op: "Squeeze" },
  { name: "Squeeze [1] axes [0] is a scalar", build: (g) => g.squeeze(x(g, "a", [1]), [0]), shapes: [[]], op: "Squeeze" },
  { name: "Expand [3,1] -> [2,3,4]", build: (g) => g.expand(x(g, "a", [3, 1]), [2, 3, 4]), shapes: [[2, 3, 4]], op: "Expand" },
  { name: "Expand [] -> [2,2]", build: (g) => g.expand(x(g, "a", []), [2, 2]), shapes: [[2, 2]], op: "Expand" },
  { name: "Concat axis 1: 3+1+2", build: (g) => g.concat([x(g, "a", [2, 3]), x(g, "b", [2, 1]), x(g, "c", [2, 2])], 1), shapes: [[2, 6]], op: "Concat" },
  { name: "Concat axis -3 of rank 3", build: (g) => g.concat([x(g, "a", [1, 2, 3]), x(g, "b", [4, 2, 3])], -3), shapes: [[5, 2, 3]], op: "Concat" },
  {
    name: "Split axis 1 [3,7] -> 2,4,1",
    build: (g) => g.split(x(g, "a", [3, 7]), 1, [2, 4, 1]),
    shapes: [
      [3, 2],
      [3, 4],
      [3, 1],
    ],
    op: "Split",
  },
  {
    name: "Split axis -3 [4,2,2] -> 3,1",
    build: (g) => g.split(x(g, "a", [4, 2, 2]), -3, [3, 1]),
    shapes: [
      [3, 2, 2],
      [1, 2, 2],
    ],
    op: "Split",
  },
  { name: "Gather [5,3] by int64 [2,4] -> [2,4,3]", build: (g) => g.gather(x(g, "E", [5, 3]), x(g, "i", [2, 4], "int64")), shapes: [[2, 4, 3]], op: "Gather" },
  { name: "Gather [5] by int64 [3] -> [3]", build: (g) => g.gather(x(g, "E", [5]), x(g, "i", [3], "int64")), shapes: [[3]], op: "Gather" },
  { name: "linear [3,4]@[4,2]+[2]", build: (g) => g.linear(x(g, "x", [3, 4]), x(g, "W", [4, 2]), x(g, "b", [2])), shapes: [[3, 2]], op: "Add" },
  { name: "bceWithLogits [4,2] is a scalar", build: (g) => g.bceWithLogits(x(g, "z", [4, 2]), x(g, "y", [4, 2])), shapes: [[]], op: "ReduceMean" },
];

for (const c of SHAPES) {
  test(`shape inference: ${c.name} (and ORT agrees)`, async () => {
    const gd = c.graphDtype ?? "float64";
    const g = new Graph(gd);
    const built = c.build(g);
    const outs = Array.isArray(built) ? built : [built];
    assert.deepEqual(
      outs.map((t) => [...t.shape]),
      c.shapes,
    );
    for (const t of outs) assert.equal(t.dtype, c.dtype ?? gd);
    assert.equal(g.nodes.at(-1)!.op, c.op);
    // the shapes ORT computes from the serialized model are the inferred ones
    const r = rng(5);
    const feeds: Record<string, number[]> = {};
    for (const gi of g.inputs) {
      const n = numel(gi.tensor);
      feeds[gi.name] = gi.tensor.dtype === "int64" ? Array.from({ length: n }, (_, i) => (i * 3) % 2) : fill(gi.tensor.shape, uniform(0.5, 2), r);
    }
    const res = await runGraph(
      g,
      outs.map((t, i) => ({ name: `o${i}`, tensor: t })),
      feeds,
    );
    outs.forEach((t, i) => assert.deepEqual(res[`o${i}`]!.dims, [...t.shape], `ORT's shape of output ${i}`));
  });
}

test("Gemm and reductions carry their attributes; Softmax / Concat / Split store the normalized axis", () => {
  const g = new Graph();
  const a = g.input("a", [4, 3]);
  const b = g.input("b", [2, 4]);
  g.gemm(a, b, true, true);
  assert.deepEqual(g.nodes.at(-1)!.attrs, { transA: 1, transB: 1 });
  g.gemm(g.input("c", [3, 4]), g.input("d", [4, 2]));
  assert.deepEqual(g.nodes.at(-1)!.attrs, { transA: 0, transB: 0 });
  const t = g.input("t", [2, 3, 4]);
  g.reduceMean(t, [-1, 0], true);
  assert.deepEqual(g.nodes.at(-1)!.attrs, { axes: [0, 2], keepdims: 1 });
  g.reduceSum(t, [-1], false);
  const rs = g.nodes.at(-1)!;
  assert.deepEqual(rs.attrs, { keepdims: 0 });
  assert.deepEqual(Array.from(g.constById.get(rs.inputs[1]!.id)!.data as BigInt64Array), [2n], "ReduceSum's axes are an int64 constant input");
  g.softmax(t, -2);
  assert.deepEqual(g.nodes.at(-1)!.attrs, { axis: 1 });
  g.concat([t, t], -1);
  assert.deepEqual(g.nodes.at(-1)!.attrs, { axis: 2 });
  g.split(t, -2, [1, 2]);
  const sp = g.nodes.at(-1)!;
  assert.deepEqual(sp.attrs, { axis: 1 });
  assert.deepEqual(Array.from(g.constById.get(sp.inputs[1]!.id)!.data as BigInt64Array), [1n, 2n]);
  g.transpose(t, [1, 2, 0]);
  assert.deepEqual(g.nodes.at(-1)!.attrs, { perm: [1, 2, 0] });
});

// ---------------------------------------------------------------- errors

test("a MatMul mismatch inside nested scopes names the layer and both shapes", () => {
  const g = new Graph();
  const h = g.input("h", [8, 4]);
  const W = g.input("W", [5, 2]);
  assert.throws(
    () => g.scope("ple", () => g.scope("L0.t1.gate", () => g.matmul(h, W))),
    (e: unknown) => {
      assert.ok(e instanceof GraphShapeError, "a GraphShapeError");
      assert.equal(e.name, "GraphShapeError");
      assert.match(e.message, /MatMul/);
      assert.match(e.message, /layer "ple\/L0\.t1\.gate"/);
      assert.ok(e.message.includes("[8,4]") && e.message.includes("[5,2]"), e.message);
      return true;
    },
  );
  assert.equal(g.layer, "", "the scope stack unwinds after the error");
  g.scope("ok", () => g.relu(h));
  assert.equal(g.nodes.at(-1)!.layer, "ok");
});

test("node.layer records the scope stack; errors at the top level say so", () => {
  const g = new Graph();
  const a = g.input("a", [2]);
  g.scope("m", () => g.scope("tower", () => g.relu(a)));
  assert.equal(g.nodes.at(-1)!.layer, "m/tower");
  g.relu(a);
  assert.equal(g.nodes.at(-1)!.layer, "");
  assert.throws(() => g.add(a, g.input("b", [3])), /top level/);
});

const ERRORS: [string, (g: Graph) => unknown, RegExp[]][] = [
  ["Add [3,4]+[5]", (g) => g.add(g.input("a", [3, 4]), g.input("b", [5])), [/Add/, /\[3,4\]/, /\[5\]/, /broadcast/]],
  ["Mul [2,3]*[3,2]", (g) => g.mul(g.input("a", [2, 3]), g.input("b", [3, 2])), [/Mul/, /\[2,3\]/, /\[3,2\]/]],
  ["Where branches [3] and [4]", (g) => g.where(g.greater(g.input("c", [3]), 0), g.input("a", [3]), g.input("b", [4])), [/Where/, /\[3\]/, /\[4\]/]],
  ["Sum [2],[3]", (g) => g.sum([g.input("a", [2]), g.input("b", [3])]), [/Sum/, /\[2\]/, /\[3\]/]],
  ["Expand [3] to [2,4]", (g) => g.expand(g.input("a", [3]), [2, 4]), [/Expand/, /\[3\]/, /\[2,4\]/]],
  ["Expand [2,3] to [3] (fewer dims)", (g) => g.expand(g.input("a", [2, 3]), [3]), [/Expand/, /\[2,3\]/]],
  ["Gemm transB mismatch", (g) => g.gemm(g.input("a", [3, 4]), g.input("b", [4, 2]), false, true), [/Gemm/, /\[3,4\]/, /\[4,2\]/]],
  ["MatMul of a 3-D operand", (g) => g.matmul(g.input("a", [2, 3, 4]), g.input("b", [4, 2])), [/MatMul/, /2-D/, /\[2,3,4\]/]],
  ["Concat outside the axis", (g) => g.concat([g.input("a", [2, 3]), g.input("b", [3, 3])], 1), [/Concat/, /\[2,3\]/, /\[3,3\]/]],
  ["Concat axis out of range", (g) => g.concat([g.input("a", [2, 3]), g.input("b", [2, 3])], 2), [/Concat/, /axis 2/]],
  ["Split sizes do not partition", (g) => g.split(g.input("a", [2, 6]), 1, [2, 3]), [/Split/, /\[2,3\]/, /\[2,6\]/]],
  ["Split size 0", (g) => g.split(g.input("a", [2, 6]), 1, [6, 0]), [/Split/]],
  ["Reshape element count", (g) => g.reshape(g.input("a", [2, 3]), [4, 2]), [/Reshape/, /\[2,3\]/, /\[4,2\]/]],
  ["Transpose perm", (g) => g.transpose(g.input("a", [2, 3]), [0, 0]), [/Transpose/, /perm/]],
  ["Squeeze a non-1 axis", (g) => g.squeeze(g.input("a", [2, 1]), [0]), [/Squeeze/, /\[2,1\]/]],
  ["Squeeze axis out of range", (g) => g.squeeze(g.input("a", [2, 1]), [2]), [/Squeeze/, /\[2,1\]/]],
  ["Unsqueeze duplicate axes", (g) => g.unsqueeze(g.input("a", [2]), [0, 0]), [/Unsqueeze/]],
  ["ReduceSum axis out of range", (g) => g.reduceSum(g.input("a", [2, 3]), [2]), [/ReduceSum/, /\[2,3\]/]],
  ["ReduceMean axis out of range", (g) => g.reduceMean(g.input("a", [2, 3]), [-3]), [/ReduceMean/, /\[2,3\]/]],
  ["Softmax axis out of range", (g) => g.softmax(g.input("a", [2, 3]), 2), [/Softmax/, /\[2,3\]/]],
  ["Clip bounds reversed", (g) => g.clip(g.input("a", [2]), 1, -1), [/Clip/]],
  ["mixed dtypes", (g) => g.add(g.input("a", [2], "float32"), g.input("b", [2], "float64")), [/Add/, /float32/, /float64/]],
  ["unary on int64", (g) => g.exp(g.input("a", [2], "int64")), [/Exp/, /int64/]],
  ["Where with a float condition", (g) => g.where(g.input("c", [2]), 1, 0), [/Where/, /bool/]],
  ["And of floats", (g) => g.and(g.input("a", [2]), g.input("b", [2])), [/And/, /bool/]],
  ["Gather by float indices", (g) => g.gather(g.input("E", [3, 2]), g.input("i", [2])), [/Gather/, /int64/]],
  ["bceWithLogits shape mismatch", (g) => g.bceWithLogits(g.input("z", [4, 1]), g.input("y", [4])), [/bceWithLogits/, /\[4,1\]/, /\[4\]/]],
  ["negative dimension", (g) => g.input("a", [2, -1]), [/invalid dimension -1/]],
  ["constant with the wrong number of values", (g) => g.constant([1, 2, 3], [2, 2]), [/constant/, /3 values/, /\[2,2\]/]],
  ["bool constant", (g) => g.constant([1], [1], "bool"), [/bool/]],
  ["empty Sum", (g) => g.sum([]), [/Sum/]],
  ["empty Concat", (g) => g.concat([], 0), [/Concat/]],
];

for (const [name, f, res] of ERRORS) {
  test(`shape error: ${name}`, () => {
    const g = new Graph("float64");
    assert.throws(
      () => g.scope("layerX", () => f(g)),
      (e: unknown) => {
        assert.ok(e instanceof GraphShapeError, `expected a GraphShapeError, got ${String(e)}`);
        assert.match(e.message, /layer "layerX"/);
        for (const re of res) assert.match(e.message, re);
        return true;
      },
    );
  });
}

test("broadcastShape follows numpy rules", () => {
  const g = new Graph();
  assert.deepEqual(g.broadcastShape("t", [3, 1, 5], [4, 1]), [3, 4, 5]);
  assert.deepEqual(g.broadcastShape("t", [], [2, 3]), [2, 3]);
  assert.deepEqual(g.broadcastShape("t", [1], [0]), [0]);
  assert.throws(() => g.broadcastShape("t", [2, 3], [3, 3]), /\[2,3\] and \[3,3\] do not broadcast \(axis 0: 2 vs 3\)/);
});

// ---------------------------------------------------------------- inputs, constants, memo, shortcuts

test("duplicate and malformed input names are rejected", () => {
  const g = new Graph();
  g.input("p0", [2]);
  assert.throws(() => g.input("p0", [3]), (e: unknown) => e instanceof GraphShapeError && /duplicate input name "p0"/.test(e.message));
  assert.throws(() => g.input("p0", [2], "int64"), /duplicate/);
  assert.throws(() => g.input("bad name", [2]), /must use/);
  assert.throws(() => g.input("", [2]), /must use/);
  assert.equal(g.inputs.length, 1);
  const y = g.input("g0.x1/t:2-a_b", [1]);
  assert.equal(g.inputById.get(y.id)!.name, "g0.x1/t:2-a_b");
});

test("constants are deduplicated by dtype, shape and values", () => {
  const g = new Graph("float64");
  const a = g.input("a", [2]);
  const s1 = g.scalar(1);
  assert.equal(g.scalar(1), s1);
  assert.equal(g.constant([1], []), s1);
  assert.notEqual(g.scalar(1, "float32"), s1, "dtype is part of the key");
  assert.notEqual(g.constant([1], [1]), s1, "shape is part of the key");
  assert.notEqual(g.scalar(2), s1);
  assert.equal(g.constants.length, 4);
  const v = g.constant([1, 2, 3, 4], [2, 2]);
  assert.equal(g.constant([1, 2, 3, 4], [2, 2]), v);
  assert.notEqual(g.constant([1, 2, 3, 4], [4]), v);
  assert.equal(g.ints([0, 1]), g.ints([0, 1]));
  assert.equal(g.ints([0, 1]).dtype, "int64");
  // number operands reuse one initializer
  const before = g.constants.length;
  g.add(a, 0.5);
  g.mul(a, 0.5);
  g.sub(g.relu(a), 0.5);
  assert.equal(g.constants.length, before + 1);
  // values are stored in the right typed array
  assert.ok(g.constById.get(s1.id)!.data instanceof Float64Array);
  assert.ok(g.constById.get(g.scalar(1, "float32").id)!.data instanceof Float32Array);
  assert.deepEqual(Array.from(g.constById.get(g.ints([3, -1]).id)!.data as BigInt64Array), [3n, -1n]);
  // large constants are not hashed (and not merged)
  const big = Array.from({ length: 100 }, (_, i) => i);
  assert.notEqual(g.constant(big, [100]), g.constant(big, [100]));
});

test("memo builds once per key", () => {
  const g = new Graph();
  const a = g.input("a", [2]);
  let calls = 0;
  const make = (): Tensor => {
    calls++;
    return g.relu(a);
  };
  const m1 = g.memo("k", make);
  const m2 = g.memo("k", make);
  assert.equal(m1, m2);
  assert.equal(calls, 1);
  assert.notEqual(g.memo("k2", make), m1);
  assert.equal(calls, 2);
});

test("no-op shapes build no node", () => {
  const g = new Graph();
  const a = g.input("a", [2, 3]);
  const n = g.nodes.length;
  assert.equal(g.reshape(a, [2, 3]), a);
  assert.equal(g.expand(a, [2, 3]), a);
  assert.equal(g.sum([a]), a);
  assert.equal(g.concat([a], 1), a);
  assert.deepEqual(g.split(a, 1, [3]), [a]);
  assert.equal(g.reduceSum(a, []), a);
  assert.equal(g.reduceMean(a, []), a);
  assert.equal(g.nodes.length, n);
});

test("nodes are in topological order, producers and ids are consistent", () => {
  const g = new Graph("float64");
  const x0 = g.input("x", [4, 3]);
  const W = g.input("W", [3, 2]);
  const h = g.scope("L0", () => g.relu(g.linear(x0, W, g.constant([0.1, -0.1], [2]))));
  const [p, q] = g.split(h, 1, [1, 1]);
  g.bceWithLogits(g.add(p!, q!), g.input("y", [4, 1]));
  const known = new Set<number>([...g.inputs.map((i) => i.tensor.id), ...g.constants.map((c) => c.tensor.id)]);
  const ids = new Set<number>(known);
  for (const n of g.nodes) {
    for (const t of n.inputs) assert.ok(known.has(t.id), `${n.op} reads t${t.id} before it is produced`);
    for (const o of n.outputs) {
      assert.ok(!ids.has(o.id), "tensor ids are unique");
      ids.add(o.id);
      known.add(o.id);
      assert.equal(g.producer.get(o.id), n);
    }
  }
  for (const gi of g.inputs) assert.equal(g.producer.get(gi.tensor.id), undefined);
});

test("every op with a vector-Jacobian rule (src/graph/autodiff.ts) has a shape-inference case above", () => {
  const seen = new Set<string>();
  for (const c of SHAPES) {
    const g = new Graph(c.graphDtype ?? "float64");
    c.build(g);
    for (const n of g.nodes) seen.add(n.op);
  }
  const missing = Object.keys(VJP_RULES).filter((op) => !seen.has(op));
  assert.deepEqual(missing, [], `ops without a shape case: ${missing.join(", ")}`);
});
