/**
 * Checks of an exported model.onnx before onnxruntime opens it (src/deploy/model.ts).
 *
 * model.onnx is untrusted input (SECURITY.md). onnxruntime resolves a tensor stored as ONNX
 * "external data" (`data_location: EXTERNAL`, `external_data: [{key: "location", ...}]`) against
 * the model's folder, and for a model loaded from bytes, as `loadModel` does, against the current
 * directory: a crafted model could read any file (a secrets file, say) into its weights, and so
 * into its outputs, past checksums.json. mtlcraft never writes external data, so any tensor that
 * has it is refused, wherever it is: graph initializers, sparse initializers, tensors in node
 * attributes (Constant and others), subgraphs (If / Loop / Scan bodies), function bodies and
 * training-info graphs. Protobuf fields that onnx-proto (the ONNX 1.10 schema) does not know are
 * dropped when it decodes, and onnxruntime (a newer schema) might read tensors from them; so a
 * file that does not re-encode to its own length (it holds fields this reader cannot see) is
 * refused as well. mtlcraft's own models re-encode exactly.
 *
 * The graph's declared inputs and outputs are then checked against features.json: every field
 * input is int64 [batch] (or [batch, maxLen] for a multi-valued field), the dense input float32
 * [batch, D], every task output float32 [batch], and the graph has no other required input.
 */
import onnxProto from "onnx-proto";
import type { FeaturesFile } from "./features.ts";

const { onnx } = onnxProto;
type TensorProto = InstanceType<typeof onnx.TensorProto>;
type GraphProto = InstanceType<typeof onnx.GraphProto>;
type NodeProto = InstanceType<typeof onnx.NodeProto>;
type ValueInfoProto = InstanceType<typeof onnx.ValueInfoProto>;
type SparseTensorProto = InstanceType<typeof onnx.SparseTensorProto>;

const ELEM_NAMES: Record<number, string> = { 0: "undefined", 1: "float32", 2: "uint8", 3: "int8", 4: "uint16", 5: "int16", 6: "int32", 7: "int64", 8: "string", 9: "bool", 10: "float16", 11: "float64", 12: "uint32", 13: "uint64", 14: "complex64", 15: "complex128", 16: "bfloat16" };
const FLOAT32 = 1;
const INT64 = 7;

function toNum(x: number | { toNumber(): number } | null | undefined): number | null {
  if (x === null || x === undefined) return null;
  return typeof x === "number" ? x : x.toNumber();
}

/** Visits every tensor of the model (with where it is) and every graph. */
function walkTensors(model: InstanceType<typeof onnx.ModelProto>, visit: (t: TensorProto, where: string) => void): void {
  const sparse = (s: SparseTensorProto | null | undefined, where: string): void => {
    if (!s) return;
    if (s.values) visit(s.values as TensorProto, `${where} (values)`);
    if (s.indices) visit(s.indices as TensorProto, `${where} (indices)`);
  };
  const nodes = (ns: NodeProto[] | null | undefined, where: string): void => {
    for (const [i, n] of (ns ?? []).entries()) {
      const nw = `${where} node ${JSON.stringify(n.name || `#${i}`)} (${n.opType || "?"})`;
      for (const a of n.attribute ?? []) {
        const aw = `${nw} attribute ${JSON.stringify(a.name ?? "")}`;
        if (a.t) visit(a.t as TensorProto, aw);
        for (const t of a.tensors ?? []) visit(t as TensorProto, aw);
        sparse(a.sparseTensor as SparseTensorProto | null, aw);
        for (const s of a.sparseTensors ?? []) sparse(s as SparseTensorProto, aw);
        if (a.g) graph(a.g as GraphProto, `${aw} subgraph`);
        for (const g of a.graphs ?? []) graph(g as GraphProto, `${aw} subgraph`);
      }
    }
  };
  const graph = (g: GraphProto | null | undefined, where: string): void => {
    if (!g) return;
    for (const t of g.initializer ?? []) visit(t as TensorProto, `${where} initializer`);
    for (const s of g.sparseInitializer ?? []) sparse(s as SparseTensorProto, `${where} sparse initializer`);
    nodes(g.node as NodeProto[], where);
  };
  graph(model.graph as GraphProto, "graph");
  for (const f of model.functions ?? []) nodes(f.node as NodeProto[], `function ${JSON.stringify(f.name ?? "")}`);
  for (const [i, ti] of (model.trainingInfo ?? []).entries()) {
    graph(ti.initialization as GraphProto, `training info ${i} initialization`);
    graph(ti.algorithm as GraphProto, `training info ${i} algorithm`);
  }
}

function typeText(v: ValueInfoProto): string {
  const tt = v.type?.tensorType;
  if (!tt) return "not a tensor";
  const dims = (tt.shape?.dim ?? []).map((d) => (d.dimParam ? d.dimParam : d.dimValue !== null && d.dimValue !== undefined ? String(toNum(d.dimValue)) : "?"));
  return `${ELEM_NAMES[tt.elemType ?? 0] ?? `type ${tt.elemType}`} ${tt.shape ? `[${dims.join(", ")}]` : "(no shape)"}`;
}

/**
 * Whether `v` is a tensor of `elem` with the batch dimension first (symbolic) and then `rest`
 * (fixed sizes).
 */
function matches(v: ValueInfoProto, elem: number, rest: readonly number[]): boolean {
  const tt = v.type?.tensorType;
  if (!tt || tt.elemType !== elem || !tt.shape) return false;
  const dims = tt.shape.dim ?? [];
  if (dims.length !== 1 + rest.length) return false;
  const d0 = dims[0]!;
  if (!d0.dimParam && d0.dimValue !== null && d0.dimValue !== undefined) return false; // the batch dimension is dynamic
  return rest.every((n, k) => toNum(dims[k + 1]!.dimValue) === n && !dims[k + 1]!.dimParam);
}

/**
 * Refuses a model.onnx that holds external data anywhere, holds protobuf fields this reader does
 * not know, or whose inputs and outputs are not those features.json describes. `file` names
 * model.onnx in messages.
 */
export function checkOnnxModel(bytes: Uint8Array, file: string, features: FeaturesFile): void {
  let model: InstanceType<typeof onnx.ModelProto>;
  try {
    model = onnx.ModelProto.decode(bytes);
  } catch (e) {
    throw new Error(`${file} cannot be loaded: it is not an ONNX model (${(e as Error).message})`, { cause: e });
  }
  walkTensors(model, (t, where) => {
    const external = t.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL || (t.externalData?.length ?? 0) > 0;
    if (external) throw new Error(`${file}: tensor ${JSON.stringify(t.name ?? "")} (${where}) is stored as external data (a file outside model.onnx); mtlcraft models keep every tensor inside model.onnx, so this model is refused`);
  });
  const len = onnx.ModelProto.encode(model).len;
  if (len !== bytes.length) {
    throw new Error(`${file}: ${bytes.length - len} bytes of the file are protobuf fields mtlcraft's ONNX reader does not know (or encodings it does not write); a model not written by \`mtlcraft export\` is refused, since its unread parts could hold tensors read from outside the folder`);
  }
  const g = model.graph;
  if (!g) throw new Error(`${file} has no graph`);
  const inits = new Set((g.initializer ?? []).map((t) => t.name ?? ""));
  for (const s of g.sparseInitializer ?? []) inits.add(s.values?.name ?? "");
  const inputs = new Map<string, ValueInfoProto>();
  for (const v of g.input ?? []) inputs.set(v.name ?? "", v as ValueInfoProto);
  const outputs = new Map<string, ValueInfoProto>();
  for (const v of g.output ?? []) outputs.set(v.name ?? "", v as ValueInfoProto);
  const fed = new Set<string>();
  const want = (kind: string, name: string, map: Map<string, ValueInfoProto>, elem: number, rest: readonly number[], owner: string): void => {
    const expected = `${ELEM_NAMES[elem]} [batch${rest.map((n) => `, ${n}`).join("")}]`;
    const v = map.get(name);
    if (!v) throw new Error(`${file} has no ${kind} "${name}" (${owner} in features.json; expected ${expected})`);
    if (!matches(v, elem, rest)) throw new Error(`${file}: ${kind} "${name}" (${owner}) is ${typeText(v)}, expected ${expected} with a dynamic batch dimension`);
  };
  for (const f of features.fields) {
    want("input", f.input, inputs, INT64, f.multi ? [f.multi.maxLen] : [], `field "${f.name}"`);
    fed.add(f.input);
  }
  if (features.denseInput !== null && features.dense.length > 0) {
    want("input", features.denseInput, inputs, FLOAT32, [features.dense.length], `the ${features.dense.length} dense inputs`);
    fed.add(features.denseInput);
  }
  for (const name of inputs.keys()) {
    if (!fed.has(name) && !inits.has(name)) throw new Error(`${file} has an input "${name}" that features.json does not feed (inputs fed: ${[...fed].join(", ")})`);
  }
  for (const t of features.tasks) want("output", t.output, outputs, FLOAT32, [], `task "${t.name}"`);
}
