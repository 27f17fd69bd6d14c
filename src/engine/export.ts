/**
 * The self-contained inference graph of a trained model (what `mtlcraft export` writes as
 * model.onnx): the eval forward (no dropout, deterministic gates) with every parameter and
 * embedding table as an initializer and the embedding lookups inside the graph.
 *
 * Inputs (dynamic batch dimension "batch"):
 * - one int64 tensor per field: [batch] ids, or [batch, maxLen] for a multi-valued field (the row's
 *   ids, then -1 padding; every row has at least one id, 0 for an empty list);
 * - `dense` [batch, D] float32 (the standardised dense inputs), only when the dataset has any.
 * Outputs: one float32 [batch] probability per task (sigmoid of the logit).
 *
 * Lookups: Gather(table, ids) per field. A multi-valued field's table gets one extra all-zero row
 * at the end, and ONNX Gather reads index -1 as the last row, so padding contributes nothing;
 * mean pooling divides the sum by the row's count of ids, itself a Gather of a [V + 1] vector of
 * ones (0 in the padding row) summed over the row, floored at 1.
 *
 * Dynamic batch: the graph builder is static-shape, so the graph is built at a nominal batch size
 * B0 that no other dimension of the model can equal (a prime above twice the largest one, at
 * least 10007); the graph's Reshapes write -1 for a leading B0 (Graph option `dynamicBatch`) and
 * the inputs and outputs declare the symbolic dimension "batch". Any other int64 constant holding
 * B0 would pin the batch, so the export refuses one.
 */
import { Graph, type Tensor } from "../graph/graph.ts";
import { serialize, type GraphOutput } from "../graph/onnx.ts";
import { forwardAll, makeCtx } from "../model/layers.ts";
import type { Model } from "../model/model.ts";

export interface ExportGraphOptions {
  /** ONNX input name of each field (model.fields order). */
  fieldInputs: readonly string[];
  /** ONNX input name of the dense inputs (used when the model has any). */
  denseInput: string;
  /** ONNX output name of each task's probability. */
  outputs: readonly string[];
  docString?: string;
  metadata?: Record<string, string>;
}

export interface ExportedGraph {
  bytes: Uint8Array;
  /** Input names in order (fields, then dense). */
  inputs: string[];
  outputs: string[];
  /** The nominal batch size the graph was built at (see the module comment). */
  nominalBatch: number;
  nodeCount: number;
}

/** Name of the symbolic batch dimension of the exported graph. */
export const BATCH_DIM = "batch";

function isPrime(n: number): boolean {
  if (n < 2) return false;
  for (let d = 2; d * d <= n; d++) if (n % d === 0) return false;
  return true;
}

/** A batch size no dimension of the model can equal: the first prime >= max(10007, 2 * largest dimension + 1). */
export function nominalBatch(model: Model): number {
  let m = Math.max(model.inputWidth, model.numTasks, model.embDim, model.denseInputs.length);
  for (const q of model.dense) for (const d of q.shape) m = Math.max(m, d);
  for (const set of model.tables) for (const t of set) m = Math.max(m, t.vocab + 1, t.dim);
  for (const f of model.fields) m = Math.max(m, f.vocabSize + 1, f.multi?.maxLen ?? 1);
  let b = Math.max(10007, 2 * m + 1);
  while (!isPrime(b)) b++;
  return b;
}

/** Builds and serialises the inference graph of `model` (current parameters). */
export function exportGraph(model: Model, opts: ExportGraphOptions): ExportedGraph {
  const F = model.fields.length;
  const T = model.numTasks;
  const D = model.denseInputs.length;
  if (opts.fieldInputs.length !== F) throw new Error(`export: ${opts.fieldInputs.length} input names for ${F} fields`);
  if (opts.outputs.length !== T) throw new Error(`export: ${opts.outputs.length} output names for ${T} tasks`);
  const B = nominalBatch(model);
  const g = new Graph(model.dtype, { dynamicBatch: B });
  const dim = model.embDim;
  const p = model.dense.map((q) => g.constant(q.data, q.shape));
  const ids = model.fields.map((f, i) => g.input(opts.fieldInputs[i]!, f.multi ? [B, f.multi.maxLen] : [B], "int64"));
  const dense = D > 0 ? g.input(opts.denseInput, [B, D], model.dtype) : null;
  const counts = new Map<number, Tensor>();
  const xs = model.tables.map((set, s) =>
    g.scope(`input${s}`, () => {
      const parts = model.fields.map((f, i) =>
        g.scope(`emb.${f.name}`, () => {
          const tab = set[i]!;
          if (tab.dim !== dim) throw new Error(`export: table ${tab.name} has dim ${tab.dim}, the model's embDim is ${dim}`);
          if (!f.multi) return g.gather(g.constant(tab.data, [tab.vocab, dim]), ids[i]!);
          // an extra all-zero last row: Gather reads the -1 padding as that row
          const padded = model.dtype === "float64" ? new Float64Array((tab.vocab + 1) * dim) : new Float32Array((tab.vocab + 1) * dim);
          padded.set(tab.data);
          const sum = g.reduceSum(g.gather(g.constant(padded, [tab.vocab + 1, dim]), ids[i]!), [1], false); // [B, dim]
          if (f.multi.pooling === "sum") return sum;
          let n = counts.get(i);
          if (!n) {
            const ones = new Float32Array(tab.vocab + 1).fill(1);
            ones[tab.vocab] = 0;
            n = g.max(g.reduceSum(g.gather(g.constant(ones, [tab.vocab + 1]), ids[i]!), [1], true), 1); // [B, 1]
            counts.set(i, n);
          }
          return g.div(sum, n);
        }),
      );
      return g.concat(dense ? [...parts, dense] : parts, 1);
    }),
  );
  const ctx = makeCtx(g, "eval", B, model.dropout);
  const logits = g.scope(model.name, () => forwardAll(model.arch, p, xs, ctx));
  if (ctx.noise.length > 0) throw new Error(`export: the ${model.name} forward draws random inputs in eval mode; it cannot be exported as a deterministic graph`);
  const outs: GraphOutput[] = logits.map((z, t) => ({ name: opts.outputs[t]!, tensor: g.scope(`prob${t}`, () => g.sigmoid(z)) }));
  for (const o of outs) if (o.tensor.shape.length !== 1 || o.tensor.shape[0] !== B) throw new Error(`export: task output ${o.name} has shape [${o.tensor.shape.join(",")}], expected [batch]`);
  // a shape constant holding the nominal batch (other than the Reshape targets, which say -1) would pin the batch size
  for (const c of g.constants) {
    if (c.tensor.dtype === "int64" && Array.from(c.data as BigInt64Array).some((v) => v === BigInt(B))) {
      throw new Error(`export: the ${model.name} graph has a shape constant equal to the batch size (${B}); its batch dimension cannot be made dynamic`);
    }
  }
  const inputs = [...opts.fieldInputs, ...(dense ? [opts.denseInput] : [])];
  const sym: Record<string, (string | null)[]> = {};
  model.fields.forEach((f, i) => (sym[opts.fieldInputs[i]!] = f.multi ? [BATCH_DIM, null] : [BATCH_DIM]));
  if (dense) sym[opts.denseInput] = [BATCH_DIM, null];
  const ser = serialize(g, outs, {
    name: `mtlcraft.${model.name}`,
    ...(opts.docString !== undefined ? { docString: opts.docString } : {}),
    ...(opts.metadata ? { metadata: opts.metadata } : {}),
    symbolicDims: { inputs: sym, outputs: Object.fromEntries(outs.map((o) => [o.name, [BATCH_DIM]])) },
  });
  const missing = inputs.filter((n) => !ser.inputs.includes(n));
  if (missing.length) throw new Error(`export: the ${model.name} graph does not read the input(s) ${missing.join(", ")}`);
  return { bytes: ser.bytes, inputs, outputs: ser.outputs, nominalBatch: B, nodeCount: ser.nodeCount };
}
