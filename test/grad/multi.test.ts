/**
 * Multi-valued fields (mean / sum pooling of their items' embeddings) and dense input columns,
 * on the JS side of the engine: GradWorkspace.prepare builds x = [field embeddings (pooled for a
 * multi-valued field), dense values], and the coalescing of x's gradient sends a pooled slot's
 * gradient to every id of the row's list (times 1/len for mean) and skips the dense columns.
 *
 * Checks: x and the logits against hand computations; float64 finite differences of the
 * per-task gradients w.r.t. the embedding rows used (multi-valued tables included, with repeated
 * ids inside a row) and the dense parameters (the first layer's weights on the dense columns
 * included); only the ids used get gradient rows.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import type { Batch, DenseInfo, FieldInfo } from "../../src/data/types.ts";
import { createModel, MODEL_NAMES, type Model } from "../../src/model/index.ts";
import { BatchIndex, GradWorkspace, logitsOf, lossesOnly, perTaskGrads } from "../../src/grad/pertask.ts";
import { Rng } from "../../src/util/rng.ts";
import { TINY_OPTS } from "./fixtures.ts";

const T = 2;
const B = 6;
const H = 1e-5;

const FIELDS: FieldInfo[] = [
  { name: "user", vocabSize: 5 },
  { name: "tags", vocabSize: 7, multi: { maxLen: 3, pooling: "mean" } },
  { name: "ctx", vocabSize: 3 },
  { name: "cats", vocabSize: 4, multi: { maxLen: 2, pooling: "sum" } },
];
const DENSE: DenseInfo[] = [{ name: "age_z" }, { name: "income_z" }];

/** A batch with multi-valued rows of 1..maxLen ids (ids may repeat within a row), -1 padded, and dense values. */
function multiBatch(seed: number): Batch {
  const rng = new Rng(seed);
  const fields = FIELDS.map((f) => {
    const L = f.multi?.maxLen ?? 1;
    const a = new Int32Array(B * L).fill(-1);
    for (let r = 0; r < B; r++) {
      const n = L === 1 ? 1 : 1 + rng.int(L);
      for (let k = 0; k < n; k++) a[r * L + k] = rng.int(f.vocabSize);
    }
    return a;
  });
  // a repeated id inside one row, and a row using one item only
  fields[1]!.set([4, 4, 2], 0);
  fields[1]!.set([6, -1, -1], 3);
  const labels = Array.from({ length: T }, () => Float32Array.from({ length: B }, () => (rng.next() < 0.5 ? 1 : 0)));
  const dense = DENSE.map(() => Float32Array.from({ length: B }, () => rng.normal()));
  return { size: B, fields, labels, groups: new Int32Array(B), dense };
}

function makeModel(name: string): Model {
  const m = createModel(name, { fields: FIELDS, numTasks: T, dense: DENSE }, { ...TINY_OPTS, dtype: "float64", dropout: 0.2, embInitStd: 0.5 });
  const rng = new Rng(99);
  for (const p of m.dense) if (p.name.endsWith(".b")) for (let i = 0; i < p.data.length; i++) p.data[i] = 0.3 * rng.normal();
  return m;
}

/** The ids of row r of field f (padding dropped). */
function items(b: Batch, f: number, r: number): number[] {
  const L = FIELDS[f]!.multi?.maxLen ?? 1;
  const out: number[] = [];
  for (let k = 0; k < L; k++) {
    const id = b.fields[f]![r * L + k]!;
    if (id < 0) break;
    out.push(id);
  }
  return out;
}

test("multi-valued fields and dense inputs: x is the pooled embeddings then the dense values (hand computation)", () => {
  const model = makeModel("shared-bottom");
  const dim = model.embDim;
  assert.equal(model.inputWidth, FIELDS.length * dim + DENSE.length);
  const b = multiBatch(3);
  const ws = new GradWorkspace(model);
  const [x] = ws.prepare(b);
  const W = model.inputWidth;
  for (let r = 0; r < B; r++) {
    FIELDS.forEach((f, fi) => {
      const tab = model.tables[0]![fi]!.data;
      const ids = items(b, fi, r);
      for (let c = 0; c < dim; c++) {
        let want = 0;
        for (const id of ids) want += tab[id * dim + c]!;
        if (f.multi?.pooling === "mean") want /= ids.length;
        assert.ok(Math.abs(x![r * W + fi * dim + c]! - want) < 1e-12, `row ${r} field ${f.name} coordinate ${c}`);
      }
    });
    DENSE.forEach((_, j) => assert.equal(x![r * W + FIELDS.length * dim + j], b.dense![j]![r]));
  }
  // row 0 of "tags" is [4, 4, 2]: the mean counts id 4 twice
  const tab = model.tables[0]![1]!.data;
  assert.ok(Math.abs(x![dim]! - (2 * tab[4 * dim]! + tab[2 * dim]!) / 3) < 1e-12);
});

test("multi-valued fields and dense inputs: lr logits match b + sum of weights + pooled weights + v . dense", async () => {
  const model = makeModel("lr");
  const b = multiBatch(4);
  const z = await logitsOf(new GradWorkspace(model), b, "eval");
  for (let t = 0; t < T; t++) {
    const bias = model.dense.find((p) => p.name === `t${t}.out.b`)!.data[0]!;
    const v = model.dense.find((p) => p.name === `t${t}.dense.W`)!.data;
    for (let r = 0; r < B; r++) {
      let want = bias;
      FIELDS.forEach((f, fi) => {
        const w = model.tables[t]![fi]!.data;
        const ids = items(b, fi, r);
        let s = 0;
        for (const id of ids) s += w[id]!;
        want += f.multi?.pooling === "mean" ? s / ids.length : s;
      });
      DENSE.forEach((_, j) => (want += v[j]! * b.dense![j]![r]!));
      assert.ok(Math.abs(z[t]![r]! - want) < 1e-10, `task ${t} row ${r}: ${z[t]![r]} vs ${want}`);
    }
  }
});

test("BatchIndex: a multi-valued field's unique rows are exactly the ids used (padding excluded); bad padding is refused", () => {
  const b = multiBatch(5);
  const idx = new BatchIndex(
    FIELDS.map((f) => f.vocabSize),
    FIELDS.map((f) => f.multi?.maxLen ?? 1),
  );
  idx.index(b);
  FIELDS.forEach((_, fi) => {
    const used = new Set<number>();
    for (let r = 0; r < B; r++) for (const id of items(b, fi, r)) used.add(id);
    const uniq = [...idx.uniq[fi]!.subarray(0, idx.count[fi]!)].sort((a, c) => a - c);
    assert.deepEqual(uniq, [...used].sort((a, c) => a - c));
  });
  const bad = multiBatch(5);
  bad.fields[1]!.set([1, -1, 3], 0);
  assert.throws(() => idx.index(bad), /after -1 padding/);
  const empty = multiBatch(5);
  empty.fields[1]!.set([-1, -1, -1], 0);
  assert.throws(() => idx.index(empty), /outside \[0, 7\)/);
  // the index is still usable after a refused batch
  idx.index(b);
  assert.equal(idx.count[1], new Set(Array.from({ length: B }, (_, r) => items(b, 1, r)).flat()).size);
});

async function fdCheck(name: string): Promise<{ probes: number; nonzero: number }> {
  const model = makeModel(name);
  const ws = new GradWorkspace(model);
  const batch = multiBatch(11);
  const mode = "train";
  const seed = 1234;
  const g0 = await perTaskGrads(ws, batch, { mode, seed });
  const g = { dense: g0.dense.map((r) => r.map((a) => a?.slice() ?? null)), emb: g0.emb.map((r) => r.map((a) => a?.slice() ?? null)) };
  const idx = { count: g0.index.count.slice(), uniq: g0.index.uniq.map((u) => u.slice()), rowOffset: g0.index.rowOffset.slice() };
  let probes = 0;
  let nonzero = 0;
  const probe = async (data: Float64Array, i: number, analytic: (t: number) => number, label: string): Promise<void> => {
    const old = data[i]!;
    data[i] = old + H;
    const lp = await lossesOnly(ws, batch, mode, seed);
    data[i] = old - H;
    const lm = await lossesOnly(ws, batch, mode, seed);
    data[i] = old;
    for (let t = 0; t < T; t++) {
      const num = (lp[t]! - lm[t]!) / (2 * H);
      const an = analytic(t);
      if (Math.abs(an) > 1e-7) nonzero++;
      assert.ok(Math.abs(num - an) <= 1e-8 + 1e-5 * Math.abs(num), `${name} ${label} task ${t}: analytic ${an} vs numeric ${num}`);
      probes++;
    }
  };
  // every used row (all coordinates) of the multi-valued tables, two used rows of the others
  const rng = new Rng(5);
  for (const [s, set] of model.tables.entries()) {
    for (const [f, tab] of set.entries()) {
      const slots = FIELDS[f]!.multi ? Array.from({ length: idx.count[f]! }, (_, k) => k) : [rng.int(idx.count[f]!), rng.int(idx.count[f]!)];
      for (const slot of slots) {
        const id = idx.uniq[f]![slot]!;
        for (let c = 0; c < tab.dim; c++) {
          await probe(tab.data as Float64Array, id * tab.dim + c, (t) => g.emb[t]![s]?.[(idx.rowOffset[f]! + slot) * tab.dim + c] ?? 0, `${tab.name}[${id},${c}]`);
        }
      }
      // an id of a multi-valued field the batch does not use: no gradient row, and none numerically
      if (FIELDS[f]!.multi) {
        const used = new Set(idx.uniq[f]!.subarray(0, idx.count[f]!));
        const unused = Array.from({ length: tab.vocab }, (_, k) => k).find((k) => !used.has(k));
        if (unused !== undefined) await probe(tab.data as Float64Array, unused * tab.dim, () => 0, `${tab.name}[${unused},0] (unused)`);
      }
    }
  }
  // dense parameters: two coordinates each, plus every weight of the first layer's rows that read the dense columns
  const W = model.inputWidth;
  const D0 = FIELDS.length * model.embDim;
  for (const [pi, p] of model.dense.entries()) {
    const data = p.data as Float64Array;
    const at = [rng.int(data.length), rng.int(data.length)];
    if (p.shape.length === 2 && p.shape[0] === W) for (let j = D0; j < W; j++) at.push(j * p.shape[1]!);
    if (p.name.endsWith(".dense.W")) for (let j = 0; j < data.length; j++) at.push(j);
    for (const i of at) await probe(data, i, (t) => g.dense[t]![pi]?.[i] ?? 0, `${p.name}[${i}]`);
  }
  return { probes, nonzero };
}

for (const name of MODEL_NAMES) {
  test(`finite differences with multi-valued fields and dense inputs (float64, train mode): ${name}`, async () => {
    const r = await fdCheck(name);
    assert.ok(r.nonzero >= 20, `only ${r.nonzero} non-zero analytic gradients: the check would be vacuous`);
  });
}
