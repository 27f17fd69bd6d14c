/**
 * Serialization (src/graph/onnx.ts): the bytes decoded back with onnx-proto,
 * the pinned IR version and opset, pruning, Identity outputs, and numbers from
 * ORT for small hand-computed graphs.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import onnxProto from "onnx-proto";
import { Graph } from "../../src/graph/graph.ts";
import { ONNX_IR_VERSION, ONNX_OPSET, pruned, serialize } from "../../src/graph/onnx.ts";
import { createSession, ort } from "../../src/engine/ort.ts";
import { runGraph } from "./helpers.ts";

const { onnx } = onnxProto;

const decode = (bytes: Uint8Array) => onnx.ModelProto.decode(bytes);
/** The decoded graph (a GraphProto instance: its repeated fields are arrays). */
const graphOf = (bytes: Uint8Array): onnxProto.onnx.GraphProto => decode(bytes).graph as onnxProto.onnx.GraphProto;
const dimsOf = (vi: onnxProto.onnx.IValueInfoProto): (number | string)[] =>
  (vi.type!.tensorType!.shape!.dim ?? []).map((d) => (d.dimParam ? d.dimParam : Number(d.dimValue)));

/** x [2,2] -> relu(x @ W + b) -> mean over axis 1, with a dead branch and an unused input. */
function smallGraph(dtype: "float32" | "float64" = "float64") {
  const g = new Graph(dtype);
  const x = g.input("x", [2, 2]);
  const unused = g.input("unused", [3]);
  const deadIn = g.input("deadIn", [2, 2]);
  const W = g.constant([1, -1, 0.5, 2], [2, 2]);
  const b = g.constant([0.5, -10], [2]);
  const h = g.scope("L0", () => g.relu(g.linear(x, W, b)));
  const y = g.reduceMean(h, [1], true);
  // dead branch: reads x, a constant of its own and an input nothing live reads
  const dead = g.scope("dead", () => g.exp(g.mul(g.add(x, deadIn), g.constant([7, 8, 9, 10], [2, 2]))));
  return { g, x, unused, deadIn, W, b, h, y, dead };
}

test("the model declares IR version 7 and the default-domain opset 13", () => {
  assert.equal(ONNX_IR_VERSION, 7);
  assert.equal(ONNX_OPSET, 13);
  const { g, y } = smallGraph();
  const m = decode(serialize(g, [{ name: "y", tensor: y }], { name: "small", docString: "doc", metadata: { arch: "ple" } }).bytes);
  assert.equal(Number(m.irVersion), 7);
  assert.equal(m.opsetImport.length, 1);
  assert.equal(m.opsetImport[0]!.domain, "");
  assert.equal(Number(m.opsetImport[0]!.version), 13);
  assert.equal(m.producerName, "mtlcraft");
  assert.equal(m.graph!.name, "small");
  assert.equal(m.docString, "doc");
  assert.deepEqual(
    m.metadataProps.map((p) => [p.key, p.value]),
    [["arch", "ple"]],
  );
});

test("pruning drops the dead branch, unused inputs and unread initializers", async () => {
  const { g, y, W, b, dead } = smallGraph();
  const ser = serialize(g, [{ name: "y", tensor: y }]);
  const gp = graphOf(ser.bytes);
  assert.deepEqual(
    gp.node.map((n) => n.opType),
    ["MatMul", "Add", "Relu", "ReduceMean"],
  );
  assert.equal(ser.nodeCount, 4);
  assert.deepEqual(ser.inputs, ["x"]);
  assert.deepEqual(
    gp.input.map((i) => i.name),
    ["x"],
  );
  assert.deepEqual(ser.outputs, ["y"]);
  // only W and b are initializers (not the dead branch's constant)
  assert.equal(gp.initializer.length, 2);
  const byName = new Map(gp.initializer.map((t) => [t.name, t]));
  const read = (id: number): number[] => {
    const t = byName.get(`#${id}`);
    assert.ok(t, `initializer t${id}`);
    assert.equal(t.dataType, 11, "float64");
    const raw = t.rawData!;
    return Array.from(new Float64Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength)));
  };
  assert.deepEqual(read(W.id), [1, -1, 0.5, 2]);
  assert.deepEqual(byName.get(`#${W.id}`)!.dims!.map(Number), [2, 2]);
  assert.deepEqual(read(b.id), [0.5, -10]);
  // node names carry the layer scope, attributes keep their types
  assert.ok(gp.node[0]!.name!.startsWith("L0/MatMul"), gp.node[0]!.name!);
  const rm = gp.node[3]!;
  const attrs = new Map(rm.attribute!.map((a) => [a.name, a]));
  assert.equal(attrs.get("keepdims")!.type, onnx.AttributeProto.AttributeType.INT);
  assert.equal(Number(attrs.get("keepdims")!.i), 1);
  assert.equal(attrs.get("axes")!.type, onnx.AttributeProto.AttributeType.INTS);
  assert.deepEqual(attrs.get("axes")!.ints!.map(Number), [1]);
  // the graph output has its name, element type and static shape
  assert.equal(gp.output[0]!.name, "y");
  assert.equal(gp.output[0]!.type!.tensorType!.elemType, 11);
  assert.deepEqual(dimsOf(gp.output[0]!), [2, 1]);
  assert.deepEqual(dimsOf(gp.input[0]!), [2, 2]);
  // pruned() agrees, and asking for the dead branch too brings its input and constant back
  assert.deepEqual(
    pruned(g, [y]).map((n) => n.op),
    ["MatMul", "Add", "Relu", "ReduceMean"],
  );
  const both = serialize(g, [
    { name: "y", tensor: y },
    { name: "dead", tensor: dead },
  ]);
  assert.deepEqual(both.inputs, ["x", "deadIn"]);
  assert.equal(graphOf(both.bytes).initializer.length, 3);
  assert.equal(both.nodeCount, 7);
  // the pruned model runs with only the declared feed
  const s = await createSession(ser.bytes);
  try {
    const r = await s.run({ x: new ort.Tensor("float64", Float64Array.from([1, 2, 3, 4]), [2, 2]) });
    assert.deepEqual(Array.from(r.y!.data as Float64Array), [1.25, 2.75]);
  } finally {
    await s.release();
  }
});

test("a tiny hand-computed graph gives the expected numbers in ORT (float64 and float32)", async () => {
  // x @ W = [[2,3],[5,5]]; + b = [[2.5,-7],[5.5,-5]]; relu = [[2.5,0],[5.5,0]]; mean(axis 1) = [[1.25],[2.75]]
  for (const dtype of ["float64", "float32"] as const) {
    const { g, y, h } = smallGraph(dtype);
    const sm = g.softmax(g.constant([0, Math.log(3)], [1, 2]), -1); // [0.25, 0.75]
    const out = await runGraph(
      g,
      [
        { name: "y", tensor: y },
        { name: "h", tensor: h },
        { name: "sm", tensor: sm },
      ],
      { x: [1, 2, 3, 4] },
    );
    assert.deepEqual(out.y!.data, [1.25, 2.75], dtype);
    assert.deepEqual(out.y!.dims, [2, 1]);
    assert.deepEqual(out.h!.data, [2.5, 0, 5.5, 0], dtype);
    assert.ok(Math.abs(out.sm!.data[0]! - 0.25) < (dtype === "float64" ? 1e-15 : 1e-7), `${dtype}: softmax ${out.sm!.data.join(",")}`);
    assert.ok(Math.abs(out.sm!.data[1]! - 0.75) < (dtype === "float64" ? 1e-15 : 1e-7));
  }
});

test("an output that is a graph input, or is requested twice, gets an Identity node", async () => {
  const g = new Graph("float64");
  const a = g.input("a", [3]);
  const y = g.neg(a);
  const c = g.constant([4, 5, 6], [3]);
  const ser = serialize(g, [
    { name: "y", tensor: y },
    { name: "aOut", tensor: a },
    { name: "y2", tensor: y },
    { name: "cOut", tensor: c },
  ]);
  const gp = graphOf(ser.bytes);
  const ids = gp.node.filter((n) => n.opType === "Identity");
  assert.deepEqual(
    ids.map((n) => [n.input![0], n.output![0]]),
    [
      ["a", "aOut"],
      ["y", "y2"],
      [`#${c.id}`, "cOut"],
    ],
  );
  // the Neg node writes "y" directly: no Identity for the first request
  assert.deepEqual(gp.node.find((n) => n.opType === "Neg")!.output, ["y"]);
  assert.equal(ser.nodeCount, 4);
  assert.deepEqual(
    gp.output.map((o) => o.name),
    ["y", "aOut", "y2", "cOut"],
  );
  assert.deepEqual(ser.inputs, ["a"]);
  assert.deepEqual(
    gp.initializer.map((t) => t.name),
    [`#${c.id}`],
  );
  const s = await createSession(ser.bytes);
  try {
    const r = await s.run({ a: new ort.Tensor("float64", Float64Array.from([1, -2, 3]), [3]) });
    assert.deepEqual(Array.from(r.y!.data as Float64Array), [-1, 2, -3]);
    assert.deepEqual(Array.from(r.y2!.data as Float64Array), [-1, 2, -3]);
    assert.deepEqual(Array.from(r.aOut!.data as Float64Array), [1, -2, 3]);
    assert.deepEqual(Array.from(r.cOut!.data as Float64Array), [4, 5, 6]);
  } finally {
    await s.release();
  }
});

test("duplicate output names are rejected", () => {
  const g = new Graph();
  const a = g.input("a", [2]);
  assert.throws(
    () =>
      serialize(g, [
        { name: "o", tensor: g.relu(a) },
        { name: "o", tensor: g.exp(a) },
      ]),
    /duplicate output name "o"/,
  );
});

test("element types: float32 1, int64 7, bool 9, float64 11; symbolic dims", async () => {
  const g = new Graph("float32");
  const E = g.input("E", [4, 2]);
  const idx = g.input("idx", [3], "int64");
  const mask = g.input("mask", [3, 2], "bool");
  const d = g.input("d", [2], "float64");
  const rows = g.gather(E, idx);
  const y = g.where(mask, rows, 0);
  const z = g.neg(d);
  const ser = serialize(
    g,
    [
      { name: "y", tensor: y },
      { name: "z", tensor: z },
    ],
    { symbolicDims: { inputs: { idx: ["batch"] }, outputs: { y: ["batch", null] } } },
  );
  const gp = graphOf(ser.bytes);
  const et = new Map(gp.input.map((i) => [i.name, i.type!.tensorType!.elemType]));
  assert.deepEqual(Object.fromEntries(et), { E: 1, idx: 7, mask: 9, d: 11 });
  assert.deepEqual(dimsOf(gp.input.find((i) => i.name === "idx")!), ["batch"]);
  assert.deepEqual(dimsOf(gp.input.find((i) => i.name === "E")!), [4, 2]);
  assert.deepEqual(dimsOf(gp.output[0]!), ["batch", 2]);
  // int64 constants (Gather has none; Where's scalar 0 is float32): every initializer's type matches its data
  for (const t of gp.initializer) assert.equal(t.rawData!.byteLength, (t.dims!.map(Number).reduce((p, q) => p * q, 1) || 1) * (t.dataType === 1 ? 4 : 8));
  const out = await runGraph(
    g,
    [
      { name: "y", tensor: y },
      { name: "z", tensor: z },
    ],
    { E: [0, 1, 10, 11, 20, 21, 30, 31], idx: [3, 0, 2], mask: [1, 0, 1, 1, 0, 1], d: [1.5, -2] },
  );
  assert.deepEqual(out.y!.data, [30, 0, 0, 1, 0, 21]);
  assert.deepEqual(out.z!.data, [-1.5, 2]);
});

test("int64 initializers round-trip (Reshape / ReduceSum / Split inputs)", async () => {
  const g = new Graph("float64");
  const a = g.input("a", [2, 3]);
  const r = g.reshape(a, [3, 2]);
  const s = g.reduceSum(r, [0], false);
  const [p, q] = g.split(a, 1, [1, 2]);
  const gp = graphOf(
    serialize(g, [
      { name: "s", tensor: s },
      { name: "q", tensor: q! },
    ]).bytes,
  );
  const ints = gp.initializer
    .filter((t) => t.dataType === 7)
    .map((t) => {
      const raw = t.rawData!;
      return Array.from(new BigInt64Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength)), Number);
    });
  assert.deepEqual(ints, [[3, 2], [0], [1, 2]]);
  const out = await runGraph(
    g,
    [
      { name: "s", tensor: s },
      { name: "p", tensor: p! },
      { name: "q", tensor: q! },
    ],
    { a: [1, 2, 3, 4, 5, 6] },
  );
  // reshape [[1,2],[3,4],[5,6]] summed over rows = [9, 12]
  assert.deepEqual(out.s!.data, [9, 12]);
  assert.deepEqual(out.p!.data, [1, 4]);
  assert.deepEqual(out.q!.data, [2, 3, 5, 6]);
});
