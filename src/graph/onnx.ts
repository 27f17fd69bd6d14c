/**
 * Serialisation of a `Graph` to an ONNX ModelProto with `onnx-proto` (protobufjs
 * static module of the ONNX v1.10 schema, pinned 8.0.1).
 *
 * Pinned: IR version 7 and the default-domain opset 13. Opset 13 is the newest
 * set whose semantics this builder emits (ReduceSum/Squeeze/Unsqueeze/Split take
 * their axes or sizes as int64 inputs, ReduceMean as an attribute) and the one
 * whose float64 CPU kernels were verified in onnxruntime-node 1.30 (Softplus has
 * none: float64 graphs compose it, see graph.ts).
 *
 * Only nodes that contribute to the requested outputs are emitted (pruning), and
 * only the inputs and constants those nodes read are declared.
 */
import onnxProto from "onnx-proto";
import type { DType, Graph, Node, Tensor } from "./graph.ts";

const { onnx } = onnxProto;

export const ONNX_IR_VERSION = 7;
export const ONNX_OPSET = 13;

const ELEM: Record<DType, number> = { float32: 1, int64: 7, bool: 9, float64: 11 };

export interface GraphOutput {
  name: string;
  tensor: Tensor;
}

export interface SerializedModel {
  bytes: Uint8Array;
  /** Names of the graph inputs the pruned model declares (feed exactly these). */
  inputs: string[];
  outputs: string[];
  /** Number of nodes after pruning. */
  nodeCount: number;
}

export interface SerializeOptions {
  name?: string;
  docString?: string;
  /** Dimension names: a graph input/output dimension equal to a key's size... is not rewritten; see `symbolicDims`. */
  symbolicDims?: { inputs: Record<string, (string | null)[]>; outputs: Record<string, (string | null)[]> };
  metadata?: Record<string, string>;
}

function valueInfo(name: string, t: Tensor, sym?: (string | null)[]) {
  return {
    name,
    type: {
      tensorType: {
        elemType: ELEM[t.dtype],
        shape: { dim: t.shape.map((d, i) => (sym?.[i] ? { dimParam: sym[i]! } : { dimValue: d })) },
      },
    },
  };
}

function attribute(name: string, v: number | readonly number[]) {
  const AT = onnx.AttributeProto.AttributeType;
  if (typeof v === "number") return { name, type: AT.INT, i: v };
  return { name, type: AT.INTS, ints: [...v] };
}

/** Nodes that the outputs depend on, in graph (topological) order. */
export function pruned(g: Graph, outputs: readonly Tensor[]): Node[] {
  const want = new Set<number>(outputs.map((t) => t.id));
  const keep = new Set<Node>();
  for (let i = g.nodes.length - 1; i >= 0; i--) {
    const n = g.nodes[i]!;
    if (!n.outputs.some((o) => want.has(o.id))) continue;
    keep.add(n);
    for (const x of n.inputs) want.add(x.id);
  }
  return g.nodes.filter((n) => keep.has(n));
}

export function serialize(g: Graph, outputs: readonly GraphOutput[], opts: SerializeOptions = {}): SerializedModel {
  const names = new Set<string>();
  for (const o of outputs) {
    if (names.has(o.name)) throw new Error(`graph: duplicate output name "${o.name}"`);
    if (o.name.startsWith("#") || o.name === "") throw new Error(`graph: output name "${o.name}" must be non-empty and must not start with "#" (reserved for internal tensors)`);
    names.add(o.name);
  }
  const nodes = pruned(
    g,
    outputs.map((o) => o.tensor),
  );
  // tensor id -> serialized name: inputs keep theirs; an output produced by a node takes the output's name
  const nameOf = new Map<number, string>();
  for (const gi of g.inputs) nameOf.set(gi.tensor.id, gi.name);
  const extra: { opType: string; input: string[]; output: string[]; name: string }[] = [];
  const producedBy = new Set<number>();
  for (const n of nodes) for (const o of n.outputs) producedBy.add(o.id);
  const renamed = new Set<number>();
  for (const o of outputs) {
    const id = o.tensor.id;
    if (producedBy.has(id) && !renamed.has(id)) {
      nameOf.set(id, o.name);
      renamed.add(id);
    }
  }
  // internal tensors are "#<id>": "#" is not allowed in input names (graph.ts) nor in output names (checked above), so no clash
  const tname = (t: Tensor): string => nameOf.get(t.id) ?? `#${t.id}`;
  for (const o of outputs) {
    if (tname(o.tensor) !== o.name) extra.push({ opType: "Identity", input: [tname(o.tensor)], output: [o.name], name: `out/${o.name}` });
  }
  const used = new Set<number>();
  for (const n of nodes) for (const x of n.inputs) used.add(x.id);
  for (const o of outputs) used.add(o.tensor.id);
  const inputs = g.inputs.filter((gi) => used.has(gi.tensor.id));
  const inits = g.constants.filter((c) => used.has(c.tensor.id));
  const nodeProtos = nodes.map((n, i) => ({
    opType: n.op,
    input: n.inputs.map(tname),
    output: n.outputs.map(tname),
    name: `${n.layer ? n.layer + "/" : ""}${n.op}_${i}`,
    attribute: Object.entries(n.attrs).map(([k, v]) => attribute(k, v)),
  }));
  const model = onnx.ModelProto.create({
    irVersion: ONNX_IR_VERSION,
    producerName: "mtlcraft",
    opsetImport: [{ domain: "", version: ONNX_OPSET }],
    docString: opts.docString ?? "",
    metadataProps: Object.entries(opts.metadata ?? {}).map(([key, value]) => ({ key, value })),
    graph: {
      name: opts.name ?? "mtlcraft",
      node: [...nodeProtos, ...extra],
      input: inputs.map((gi) => valueInfo(gi.name, gi.tensor, opts.symbolicDims?.inputs[gi.name])),
      output: outputs.map((o) => valueInfo(o.name, o.tensor, opts.symbolicDims?.outputs[o.name])),
      initializer: inits.map((c) => ({
        name: tname(c.tensor),
        dims: [...c.tensor.shape],
        dataType: ELEM[c.tensor.dtype],
        rawData: new Uint8Array(c.data.buffer, c.data.byteOffset, c.data.byteLength),
      })),
    },
  });
  const bytes = onnx.ModelProto.encode(model).finish();
  return { bytes, inputs: inputs.map((gi) => gi.name), outputs: outputs.map((o) => o.name), nodeCount: nodes.length + extra.length };
}
