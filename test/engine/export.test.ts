/**
 * The inference graph of src/engine/export.ts on small in-memory models: every architecture,
 * with a multi-valued field (mean and sum pooling, -1 padding), a bucketised-like field and dense
 * inputs, run by onnxruntime-node at several batch sizes (the batch dimension is dynamic), against
 * the trainer's eval path (predictLogits, then the sigmoid), to 1e-5.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as ort from "onnxruntime-node";
import type { Batch, FieldInfo } from "../../src/data/types.ts";
import { exportGraph, nominalBatch } from "../../src/engine/export.ts";
import { Graph } from "../../src/graph/graph.ts";
import { GradWorkspace, predictLogits } from "../../src/grad/pertask.ts";
import { createModel, MODEL_NAMES } from "../../src/model/registry.ts";
import type { ModelEntry } from "../../src/model/registry.ts";
import { Rng } from "../../src/util/rng.ts";

const FIELDS: FieldInfo[] = [
  { name: "user", vocabSize: 9 },
  { name: "tags", vocabSize: 7, multi: { maxLen: 3, pooling: "mean" } },
  { name: "cats", vocabSize: 5, multi: { maxLen: 2, pooling: "sum" } },
  { name: "bucket", vocabSize: 4 },
];
const DENSE = [{ name: "price" }, { name: "age" }];

function batchOf(n: number, seed: number, withDense = true): Batch {
  const rng = new Rng(seed);
  const fields = FIELDS.map((f) => {
    const L = f.multi?.maxLen ?? 1;
    const ids = new Int32Array(n * L).fill(-1);
    for (let r = 0; r < n; r++) {
      const len = L === 1 ? 1 : 1 + rng.int(L);
      for (let k = 0; k < len; k++) ids[r * L + k] = rng.int(f.vocabSize);
    }
    return ids;
  });
  return {
    size: n,
    fields,
    ...(withDense ? { dense: DENSE.map(() => Float32Array.from({ length: n }, () => rng.normal())) } : {}),
    labels: [new Float32Array(n), new Float32Array(n)],
    groups: new Int32Array(n),
  };
}

async function run(session: ort.InferenceSession, names: string[], b: Batch, withDense: boolean): Promise<Float32Array[]> {
  const feeds: Record<string, ort.Tensor> = {};
  FIELDS.forEach((f, i) => {
    const L = f.multi?.maxLen ?? 1;
    feeds[f.name] = new ort.Tensor("int64", BigInt64Array.from(b.fields[i]!, (x) => BigInt(x)), L > 1 ? [b.size, L] : [b.size]);
  });
  if (withDense) {
    const x = new Float32Array(b.size * DENSE.length);
    for (let r = 0; r < b.size; r++) DENSE.forEach((_, j) => (x[r * DENSE.length + j] = b.dense![j]![r]!));
    feeds.dense = new ort.Tensor("float32", x, [b.size, DENSE.length]);
  }
  const out = await session.run(feeds);
  return names.map((o) => out[o]!.data as Float32Array);
}

/** Small sizes (a shared option bag: each architecture reads the options it takes); PLE also gets a second level. */
const SMALL: Record<string, Record<string, unknown>> = { ple: { expertUnits: [8, 4], levels: 2 } };

for (const arch of MODEL_NAMES) {
  for (const withDense of [true, false]) {
    test(`${arch}${withDense ? " with dense inputs" : ""}: model.onnx at batch 1, 5, 37 matches the trainer's eval probabilities to 1e-5`, async () => {
      const small = SMALL[arch] ?? { expertUnits: [8], bottomUnits: [8] };
      const model = createModel(arch, { fields: FIELDS, numTasks: 2, ...(withDense ? { dense: DENSE } : {}) }, { embDim: 3, embInitStd: 0.7, seed: 5, towerUnits: [4], ...small });
      const g = exportGraph(model, { fieldInputs: FIELDS.map((f) => f.name), denseInput: "dense", outputs: ["p_a", "p_b"] });
      assert.deepEqual(g.inputs, [...FIELDS.map((f) => f.name), ...(withDense ? ["dense"] : [])]);
      assert.ok(g.nominalBatch >= 10007);
      const session = await ort.InferenceSession.create(g.bytes);
      try {
        for (const n of [1, 5, 37]) {
          const b = batchOf(n, n * 7 + 1, withDense);
          const got = await run(session, ["p_a", "p_b"], b, withDense);
          const z = await predictLogits(new GradWorkspace(model), b);
          let max = 0;
          for (let t = 0; t < 2; t++) {
            assert.equal(got[t]!.length, n);
            for (let r = 0; r < n; r++) max = Math.max(max, Math.abs(got[t]![r]! - 1 / (1 + Math.exp(-z[t]![r]!))));
          }
          assert.ok(max <= 1e-5, `${arch} batch ${n}: max |Δp| = ${max}`);
          // the probabilities vary across rows (the check is not vacuous)
          assert.ok(new Set(Array.from(got[0]!)).size > Math.min(n, 3) - 1);
        }
      } finally {
        await session.release();
      }
    });
  }
}

test("padding: a multi-valued row [a, -1, -1] scores exactly like [a] alone, and mean pooling divides by the row's count", async () => {
  const fields: FieldInfo[] = [{ name: "tags", vocabSize: 5, multi: { maxLen: 3, pooling: "mean" } }];
  const model = createModel("lr", { fields, numTasks: 1 }, { embInitStd: 1, seed: 3 });
  const w = model.tables[0]![0]!.data;
  const bias = 0; // lr biases start at 0
  const g = exportGraph(model, { fieldInputs: ["tags"], denseInput: "dense", outputs: ["p"] });
  const session = await ort.InferenceSession.create(g.bytes);
  const ids = BigInt64Array.from([2n, -1n, -1n, 1n, 3n, -1n, 4n, 4n, 0n]);
  const out = (await session.run({ tags: new ort.Tensor("int64", ids, [3, 3]) })).p!.data as Float32Array;
  const sig = (x: number): number => 1 / (1 + Math.exp(-x));
  assert.ok(Math.abs(out[0]! - sig(w[2]! + bias)) < 1e-6);
  assert.ok(Math.abs(out[1]! - sig((w[1]! + w[3]!) / 2)) < 1e-6);
  assert.ok(Math.abs(out[2]! - sig((2 * w[4]! + w[0]!) / 3)) < 1e-6);
  await session.release();
});

test("Graph option dynamicBatch: a Reshape whose target starts with the nominal batch writes -1 there, others keep their sizes", () => {
  const g = new Graph("float32", { dynamicBatch: 10007 });
  const x = g.input("x", [10007, 6]);
  const y = g.reshape(x, [10007, 2, 3]);
  const z = g.reshape(g.input("w", [2, 3]), [3, 2]);
  assert.deepEqual(y.shape, [10007, 2, 3]);
  const targets = g.nodes.filter((n) => n.op === "Reshape").map((n) => Array.from(g.constById.get(n.inputs[1]!.id)!.data as BigInt64Array, Number));
  assert.deepEqual(targets, [
    [-1, 2, 3],
    [3, 2],
  ]);
  assert.ok(z);
  const plain = new Graph("float32");
  plain.reshape(plain.input("x", [10007, 6]), [10007, 2, 3]);
  assert.deepEqual(Array.from(plain.constants[0]!.data as BigInt64Array, Number), [10007, 2, 3]);
  assert.throws(() => new Graph("float32", { dynamicBatch: 1 }), /dynamicBatch must be an integer >= 2/);
});

test("an architecture whose graph pins the batch size in a shape constant is refused with a clear error", () => {
  const entry: ModelEntry = {
    name: "pinned",
    summary: "test",
    defaults: {},
    create(input) {
      return {
        name: "pinned",
        numTasks: input.numTasks,
        dense: [],
        tables: [input.fields.map((f, i) => ({ name: `emb.${f.name}`, field: i, vocab: f.vocabSize, dim: 2, group: "shared" as const, data: new Float32Array(f.vocabSize * 2) }))],
        trunk: () => [],
        head: (_t, _p, _f, xs, ctx) => ctx.g.reduceSum(ctx.g.expand(ctx.g.reduceSum(xs[0]!, [1], true), [ctx.batch, 3]), [1]),
      };
    },
  };
  const model = createModel(entry, { fields: [{ name: "u", vocabSize: 3 }], numTasks: 1 }, { embDim: 2 });
  assert.equal(nominalBatch(model), 10007);
  assert.throws(() => exportGraph(model, { fieldInputs: ["u"], denseInput: "dense", outputs: ["p"] }), /shape constant equal to the batch size \(10007\)/);
});
