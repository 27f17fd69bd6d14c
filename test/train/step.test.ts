import { test } from "node:test";
import assert from "node:assert/strict";
import { createModel, MODEL_NAMES } from "../../src/model/index.ts";
import { createAdam } from "../../src/optim/adam.ts";
import { getTrainState, predict, setTrainState, trainStep, workspaceOf, type GradScope } from "../../src/train/step.ts";
import { lossesOnly } from "../../src/grad/pertask.ts";
import { Rng } from "../../src/util/rng.ts";
import { TINY_FIELDS, learnableBatch, randomBatch } from "../grad/fixtures.ts";
import { localEW } from "./ew-local.ts";

const T = 3;
const SMALL = { embDim: 4, expertUnits: [16, 8], bottomUnits: [16, 8], towerUnits: [8], seed: 3 };

test("trainStep reduces the loss on a learnable synthetic problem (ple, EW)", async () => {
  const model = createModel("ple", { fields: TINY_FIELDS, numTasks: T }, { ...SMALL, dropout: 0 });
  const opt = createAdam(model, { lr: 0.02 });
  const method = localEW(T);
  const rng = new Rng(1);
  const batch = learnableBatch(TINY_FIELDS, T, 64, 2);
  const first = await trainStep(model, opt, method, batch, { step: 0, epoch: 0, rng });
  let last = first;
  for (let s = 1; s < 60; s++) last = await trainStep(model, opt, method, batch, { step: s, epoch: 0, rng });
  const m0 = first.losses.reduce((a, b) => a + b, 0) / T;
  const m1 = last.losses.reduce((a, b) => a + b, 0) / T;
  assert.ok(m1 < 0.7 * m0, `mean loss ${m0} -> ${m1}`);
});

for (const name of MODEL_NAMES) {
  test(`every architecture runs a step without NaN in every scope: ${name}`, async () => {
    for (const scope of ["shared", "shared-dense", "all"] as GradScope[]) {
      const model = createModel(name, { fields: TINY_FIELDS, numTasks: T }, SMALL);
      const before = model.getParams();
      const opt = createAdam(model);
      const rng = new Rng(4);
      const r = await trainStep(model, opt, localEW(T), randomBatch(TINY_FIELDS, T, 32, 5), { step: 0, epoch: 0, rng, scope });
      for (const l of r.losses) assert.ok(Number.isFinite(l) && l > 0, `${name}/${scope}: loss ${l}`);
      for (const x of r.balance.direction) assert.ok(Number.isFinite(x));
      const after = model.getParams();
      let changed = 0;
      for (const [k, v] of Object.entries(after)) {
        for (const x of v) assert.ok(Number.isFinite(x), `${name}/${scope}: ${k} has NaN`);
        if (v.some((x, i) => x !== before[k]![i])) changed++;
      }
      assert.ok(changed > Object.keys(after).length / 2, `${name}/${scope}: only ${changed} tensors moved`);
      if (name === "single" && scope !== "all") assert.equal(r.dim, 0, "single shares nothing");
      if (name !== "single" && scope === "shared-dense") {
        const dn = model.dense.filter((p) => p.group === "shared").reduce((a, p) => a + p.data.length, 0);
        assert.equal(r.dim, dn);
      }
      if (name.startsWith("snr")) assert.ok(r.penalty > 0, "SNR L0 penalty is applied");
    }
  });
}

test("task-specific params follow taskScale; scope 'shared' puts unique embedding rows in the vector", async () => {
  const batch = randomBatch(TINY_FIELDS, T, 16, 8);
  const run = async (scale: number[]) => {
    const model = createModel("shared-bottom", { fields: TINY_FIELDS, numTasks: T }, { ...SMALL, dropout: 0 });
    const opt = createAdam(model, { lr: 0.01, weightDecay: 0 });
    const r = await trainStep(model, opt, localEW(T, scale), batch, { step: 0, epoch: 0, rng: new Rng(1) });
    return { model, r };
  };
  const a = await run([1, 1, 1]);
  const b = await run([1, 0, 1]);
  const tower1 = (m: typeof a.model) => m.dense.find((p) => p.name === "t1.tower.l0.W")!.data;
  const init = createModel("shared-bottom", { fields: TINY_FIELDS, numTasks: T }, { ...SMALL, dropout: 0 });
  assert.notDeepEqual(Array.from(tower1(a.model)), Array.from(tower1(init)), "scale 1 moves task 1's tower");
  assert.deepEqual(Array.from(tower1(b.model)), Array.from(tower1(init)), "scale 0 freezes task 1's tower");
  const idx = workspaceOf(a.model).index;
  const dn = a.model.dense.filter((p) => p.group === "shared").reduce((s, p) => s + p.data.length, 0);
  assert.equal(a.r.dim, dn + idx.totalRows * SMALL.embDim);
  let uniq = 0;
  for (const f of batch.fields) uniq += new Set(f).size;
  assert.equal(idx.totalRows, uniq);
});

test("predict is deterministic (no dropout in eval); a step after predict uses dropout again", async () => {
  const model = createModel("mmoe", { fields: TINY_FIELDS, numTasks: T }, { ...SMALL, dropout: 0.5 });
  const batch = randomBatch(TINY_FIELDS, T, 32, 9);
  const p1 = await predict(model, batch);
  const p2 = await predict(model, batch);
  assert.equal(p1.length, T);
  for (let t = 0; t < T; t++) assert.deepEqual(Array.from(p1[t]!), Array.from(p2[t]!));
  const ws = workspaceOf(model);
  const evalLoss = await lossesOnly(ws, batch, "eval", 0);
  // the step draws its mask seed as rng.nextU32(): reproduce it on a copy of the generator
  const rng = new Rng(42);
  const seed = Rng.fromState(rng.getState()).nextU32();
  const trainLoss = await lossesOnly(ws, batch, "train", seed);
  const r = await trainStep(model, createAdam(model), localEW(T), batch, { step: 0, epoch: 0, rng });
  assert.deepEqual(Array.from(r.losses), Array.from(trainLoss), "step losses are the train-mode (dropout) losses");
  assert.notDeepEqual(Array.from(r.losses), Array.from(evalLoss), "dropout was active in the step");
  const p3 = await predict(model, batch);
  assert.notDeepEqual(Array.from(p3[0]!), Array.from(p1[0]!), "the step changed the model");
  assert.deepEqual(Array.from((await predict(model, batch))[0]!), Array.from(p3[0]!));
});

test("getParams / setParams round trip restores predictions", async () => {
  const model = createModel("snr-trans", { fields: TINY_FIELDS, numTasks: T }, SMALL);
  const batch = randomBatch(TINY_FIELDS, T, 16, 10);
  const saved = model.getParams();
  const before = await predict(model, batch);
  await trainStep(model, createAdam(model, { lr: 0.05 }), localEW(T), batch, { step: 0, epoch: 0, rng: new Rng(2) });
  assert.notDeepEqual(Array.from((await predict(model, batch))[1]!), Array.from(before[1]!));
  model.setParams(saved);
  assert.deepEqual(Array.from((await predict(model, batch))[1]!), Array.from(before[1]!));
  assert.throws(() => model.setParams({}), /no parameter/);
});

test("getTrainState / setTrainState resume bit-for-bit", async () => {
  const mk = () => createModel("ple", { fields: TINY_FIELDS, numTasks: T }, SMALL);
  const batches = [1, 2, 3].map((s) => randomBatch(TINY_FIELDS, T, 24, s));
  const a = mk();
  const oa = createAdam(a);
  const ra = new Rng(7);
  await trainStep(a, oa, localEW(T), batches[0]!, { step: 0, epoch: 0, rng: ra });
  const st = getTrainState(a, oa);
  const rngState = ra.getState();
  const b = mk();
  const ob = createAdam(b);
  setTrainState(b, ob, st);
  const rb = Rng.fromState(rngState);
  for (let s = 1; s < 3; s++) {
    await trainStep(a, oa, localEW(T), batches[s]!, { step: s, epoch: 0, rng: ra });
    await trainStep(b, ob, localEW(T), batches[s]!, { step: s, epoch: 0, rng: rb });
  }
  const pa = a.getParams();
  const pb = b.getParams();
  for (const k of Object.keys(pa)) assert.deepEqual(Array.from(pb[k]!), Array.from(pa[k]!), k);
  assert.equal(ob.step, 3);
  assert.throws(() => setTrainState(b, ob, { tensors: st.tensors, json: null }), /step/);
  assert.deepEqual(Array.from(b.getParams()["t0.tower.out.W"]!), Array.from(pb["t0.tower.out.W"]!), "failed restore leaves params unchanged");
});
