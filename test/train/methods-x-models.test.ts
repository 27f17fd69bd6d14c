/** Every balancing method trains with every architecture: three steps each, no NaN anywhere. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { initEngine } from "../../src/grad/engine.ts";
import { createModel, MODEL_NAMES } from "../../src/model/index.ts";
import { createAdam } from "../../src/optim/adam.ts";
import { createMethod, methodNames } from "../../src/balance/registry.ts";
import { trainStep } from "../../src/train/step.ts";
import { Rng } from "../../src/util/rng.ts";
import { TINY_FIELDS, randomBatch } from "../grad/fixtures.ts";

const T = 3;
const SMALL = { embDim: 3, expertUnits: [6, 4], bottomUnits: [6, 4], towerUnits: [4], seed: 5 };

for (const arch of MODEL_NAMES) {
  test(`every method x ${arch}: 3 steps with varying batches, finite losses and parameters`, async () => {
    await initEngine();
    for (const name of methodNames()) {
      const model = createModel(arch, { fields: TINY_FIELDS, numTasks: T }, SMALL);
      const opt = createAdam(model, { lr: 0.01 });
      const method = createMethod(name, T);
      const rng = new Rng(9);
      const before = model.getParams();
      // batches of different sizes have different unique ids, so the flat vector length changes
      for (const [s, B] of [[0, 24], [1, 9], [2, 17]] as const) {
        const r = trainStep(model, opt, method, randomBatch(TINY_FIELDS, T, B, 100 + s), { step: s, epoch: 0, rng });
        for (const l of r.losses) assert.ok(Number.isFinite(l), `${name}/${arch}: loss ${l}`);
        assert.equal(r.balance.direction.length, r.dim, `${name}/${arch}: direction length`);
      }
      method.endEpoch?.(Float64Array.of(0.6, 0.5, 0.4));
      let moved = false;
      for (const [k, v] of Object.entries(model.getParams())) {
        for (const x of v) assert.ok(Number.isFinite(x), `${name}/${arch}: ${k} is not finite`);
        if (!moved && v.some((x, i) => x !== before[k]![i])) moved = true;
      }
      assert.ok(moved, `${name}/${arch}: no parameter changed`);
    }
  });
}
