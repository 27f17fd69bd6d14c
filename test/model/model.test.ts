import { test } from "node:test";
import assert from "node:assert/strict";
import { ARCHITECTURES, createModel, MODEL_NAMES, MODELS } from "../../src/model/index.ts";
import { BatchIndex } from "../../src/grad/pertask.ts";
import { fillDropoutMask } from "../../src/model/layers.ts";
import { Rng } from "../../src/util/rng.ts";
import { TINY_FIELDS, randomBatch } from "../grad/fixtures.ts";
import { parseModelOptions } from "../../src/train/run.ts";
import { checkModelOptions } from "../../src/model/registry.ts";

const KUAI = Array.from({ length: 15 }, (_, i) => ({ name: `f${i}`, vocabSize: i === 0 ? 1000 : 50 }));

test("registry lists the built-in architectures (with the single and LR baselines); unknown names and bad options are rejected with the option name", () => {
  assert.deepEqual([...MODEL_NAMES], MODELS.map((m) => m.name));
  assert.deepEqual([...ARCHITECTURES.keys()], [...MODEL_NAMES], "the registry holds exactly the built-in architectures");
  assert.equal(new Set(MODEL_NAMES).size, MODEL_NAMES.length, "names are unique");
  for (const base of ["single", "lr"]) assert.ok(MODEL_NAMES.includes(base), `the ${base} baseline (bench's reserved name) is an architecture`);
  for (const m of MODELS) assert.ok(m.summary.length > 0 && /^[a-z][a-z0-9_-]*$/.test(m.name), `${m.name}: name and summary`);
  assert.throws(() => createModel("nope", { fields: TINY_FIELDS, numTasks: 2 }), /unknown model "nope".*ple/);
  assert.throws(() => createModel("ple", { fields: TINY_FIELDS, numTasks: 2 }, { levels: 0 }), /ple: option levels/);
  assert.throws(() => createModel("mmoe", { fields: TINY_FIELDS, numTasks: 2 }, { expertUnits: [] }), /mmoe: option expertUnits/);
  assert.throws(() => createModel("snr-aver", { fields: TINY_FIELDS, numTasks: 2 }, { gamma: 0.5 }), /snr-aver: option gamma/);
  assert.throws(() => createModel("shared-bottom", { fields: TINY_FIELDS, numTasks: 2 }, { dropout: 1 }), /option dropout/);
});

test("default structures follow the documented GradCraft setup", () => {
  const T = 6;
  const mk = (n: string, o = {}) => createModel(n, { fields: KUAI, numTasks: T }, o);
  const ple = mk("ple");
  const names = ple.dense.map((p) => p.name);
  assert.ok(names.includes("L0.shared.expert0.l0.W") && !names.includes("L0.shared.expert1.l0.W"), "1 shared expert");
  assert.ok(names.includes("L0.t5.expert0.l2.W") && !names.includes("L0.t0.expert1.l0.W"), "1 expert per task, 3 layers");
  assert.ok(!names.some((n) => n.startsWith("L1.")), "levels = 1 (CGC)");
  const w0 = ple.dense.find((p) => p.name === "L0.shared.expert0.l0.W")!;
  assert.deepEqual(w0.shape, [15 * 16, 256]);
  assert.deepEqual(ple.dense.find((p) => p.name === "t0.tower.l1.W")!.shape, [32, 16]);
  assert.deepEqual(ple.dense.find((p) => p.name === "t0.tower.out.W")!.shape, [16, 1]);
  assert.equal(ple.dense.find((p) => p.name === "L0.t0.gate.W")!.group, 0);
  assert.ok(!names.includes("L0.t0.gate.b"), "gates have no bias");
  const mmoe = mk("mmoe");
  assert.ok(mmoe.dense.some((p) => p.name === "expert6.l0.W") && !mmoe.dense.some((p) => p.name === "expert7.l0.W"), "T+1 experts");
  const single = mk("single");
  assert.equal(single.tables.length, T, "per-task tables");
  assert.ok(single.dense.every((p) => p.group !== "shared") && single.tables.every((s, t) => s.every((tab) => tab.group === t)));
  const snr = mk("snr-trans");
  assert.deepEqual(snr.dense.find((p) => p.name === "t2.logAlpha")!.shape, [7]);
  assert.equal(snr.dense.find((p) => p.name === "t2.logAlpha")!.decay, false);
  assert.ok(snr.dense.some((p) => p.name === "t2.trans6.W"));
  assert.ok(!mk("snr-aver").dense.some((p) => p.name.includes("trans")));
  for (const n of MODEL_NAMES) {
    const m = mk(n);
    for (const p of m.dense) assert.equal(p.decay, !(p.name.endsWith(".b") || p.name.endsWith("logAlpha")), p.name);
    const emb = m.tables[0]![0]!;
    let s = 0;
    let s2 = 0;
    for (const x of emb.data) {
      s += x;
      s2 += x * x;
    }
    const sd = Math.sqrt(s2 / emb.data.length - (s / emb.data.length) ** 2);
    assert.ok(Math.abs(sd - 0.01) < 0.001, `${n}: embedding init std ${sd}`);
  }
});

test("initialisation is a pure function of the seed", () => {
  const a = createModel("mmoe", { fields: TINY_FIELDS, numTasks: 2 }, { seed: 5 }).getParams();
  const b = createModel("mmoe", { fields: TINY_FIELDS, numTasks: 2 }, { seed: 5 }).getParams();
  const c = createModel("mmoe", { fields: TINY_FIELDS, numTasks: 2 }, { seed: 6 }).getParams();
  assert.deepEqual(a, b);
  assert.notDeepEqual(a["expert0.l0.W"], c["expert0.l0.W"]);
});

test("BatchIndex: unique ids per field, remapping, reuse across batches, id range check", () => {
  const idx = new BatchIndex(TINY_FIELDS.map((f) => f.vocabSize));
  for (const seed of [1, 2]) {
    const b = randomBatch(TINY_FIELDS, 1, 40, seed);
    idx.index(b);
    let off = 0;
    TINY_FIELDS.forEach((_, f) => {
      const ids = b.fields[f]!;
      const u = new Set(ids);
      assert.equal(idx.count[f], u.size);
      assert.equal(idx.rowOffset[f], off);
      off += u.size;
      for (let r = 0; r < 40; r++) assert.equal(idx.uniq[f]![idx.remap[f]![r]!], ids[r]);
    });
    assert.equal(idx.totalRows, off);
  }
  const bad = randomBatch(TINY_FIELDS, 1, 4, 3);
  bad.fields[1]![2] = 9;
  assert.throws(() => idx.index(bad), /field 1 row 2: id 9 outside \[0, 9\)/);
});

test("dropout mask: inverted scaling and drop rate", () => {
  const m = new Float32Array(200001);
  fillDropoutMask(m, 0.2, new Rng(1));
  let zeros = 0;
  let sum = 0;
  for (const x of m) {
    if (x === 0) zeros++;
    else assert.ok(Math.abs(x - 1.25) < 1e-4);
    sum += x;
  }
  assert.ok(Math.abs(zeros / m.length - 0.2) < 0.005, `drop rate ${zeros / m.length}`);
  assert.ok(Math.abs(sum / m.length - 1) < 0.01, "mean 1 (inverted dropout)");
});

test("--model-opt keys named like prototype properties are unknown options, never a prototype or a train option", () => {
  for (const k of ["__proto__", "constructor", "toString"]) {
    const raw = JSON.parse(`{${JSON.stringify(k)}: "5"}`) as Record<string, unknown>;
    const parsed = parseModelOptions(raw);
    assert.deepEqual(Object.keys(parsed), [k], `${k} stays a key`);
    assert.throws(() => checkModelOptions("mmoe", parsed, { strict: true }), new RegExp(`model mmoe: unknown option "${k}"`));
  }
});
