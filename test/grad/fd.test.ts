/**
 * Finite-difference checks of the per-task gradients in float64, run by the
 * engine (ONNX Runtime's CPU provider computes every op of these graphs in
 * double precision, transcendental functions included).
 *
 * Every architecture, every task, the real per-task BCE losses and also a
 * linear objective J_t = sum_r c[t][r] z_t[r] (which checks the network without
 * the loss); two coordinates of every dense parameter (gates and SNR
 * log-alphas included) and of every embedding table's rows used by the batch
 * (the gradient w.r.t. the gathered input, coalesced per unique id). Train
 * mode uses a fixed dropout / gate-noise seed; h = 1e-5.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { createModel, MODEL_NAMES, type Model } from "../../src/model/index.ts";
import { GradWorkspace, lossesOnly, perTaskGrads, type LinearObjective } from "../../src/grad/pertask.ts";
import type { Mode } from "../../src/model/types.ts";
import { Rng } from "../../src/util/rng.ts";
import { TINY_FIELDS, TINY_OPTS, randomBatch } from "./fixtures.ts";

const T = 3;
const B = 7;
const H = 1e-5;

function linearObjective(seed: number): LinearObjective {
  const rng = new Rng(seed);
  const c: Float64Array[] = [];
  for (let t = 0; t < T; t++) c.push(Float64Array.from({ length: B }, () => 2 * rng.next() - 1));
  return { kind: "linear", c };
}

/**
 * Biases start at 0; with tiny layers a whole input row can be 0 (dead ReLUs +
 * dropout), putting a pre-activation exactly on the ReLU kink where central
 * differences see half the slope. Random biases move every unit off the kink.
 */
function makeModel(name: string, extra: Record<string, unknown> = {}): Model {
  const m = createModel(name, { fields: TINY_FIELDS, numTasks: T }, { ...TINY_OPTS, dtype: "float64", dropout: 0.2, embInitStd: 0.5, ...extra });
  const rng = new Rng(99);
  for (const p of m.dense) if (p.name.endsWith(".b")) for (let i = 0; i < p.data.length; i++) p.data[i] = 0.3 * rng.normal();
  return m;
}

async function check(model: Model, mode: Mode, loss: "bce" | "linear" = "bce"): Promise<{ probes: number; maxRel: number; nonzero: number }> {
  const ws = new GradWorkspace(model);
  const batch = randomBatch(TINY_FIELDS, T, B, 11);
  const seed = 1234;
  const obj = loss === "linear" ? linearObjective(77) : undefined;
  const g0 = await perTaskGrads(ws, batch, { mode, seed, objective: obj });
  // the result's arrays are views of the program's outputs: copy before the probes rerun the engine
  const g = { ...g0, dense: g0.dense.map((r) => r.map((a) => a?.slice() ?? null)), emb: g0.emb.map((r) => r.map((a) => a?.slice() ?? null)) };
  const rng = new Rng(5);
  let probes = 0;
  let maxRel = 0;
  let nonzero = 0;
  const probe = async (data: Float64Array, i: number, analytic: (t: number) => number, label: string): Promise<void> => {
    const old = data[i]!;
    data[i] = old + H;
    const lp = await lossesOnly(ws, batch, mode, seed, obj);
    data[i] = old - H;
    const lm = await lossesOnly(ws, batch, mode, seed, obj);
    data[i] = old;
    for (let t = 0; t < T; t++) {
      const num = (lp[t]! - lm[t]!) / (2 * H);
      const an = analytic(t);
      const err = Math.abs(num - an);
      maxRel = Math.max(maxRel, err / (1e-3 + Math.abs(num)));
      if (Math.abs(an) > 1e-6) nonzero++;
      assert.ok(err <= 1e-8 + 1e-5 * Math.abs(num), `${model.name} ${mode} ${loss} ${label} task ${t}: analytic ${an} vs numeric ${num}`);
      probes++;
    }
  };
  for (const [pi, p] of model.dense.entries()) {
    const data = p.data as Float64Array;
    for (let s = 0; s < 2; s++) {
      const i = rng.int(data.length);
      await probe(data, i, (t) => g.dense[t]![pi]?.[i] ?? 0, `${p.name}[${i}]`);
    }
  }
  // snapshot of the batch index (lossesOnly re-indexes the same batch: same values)
  const idx = { count: g.index.count.slice(), uniq: g.index.uniq.map((u) => u.slice()), rowOffset: g.index.rowOffset.slice() };
  for (const [s, set] of model.tables.entries()) {
    for (const [f, tab] of set.entries()) {
      for (let k = 0; k < 2; k++) {
        const slot = rng.int(idx.count[f]!);
        const id = idx.uniq[f]![slot]!;
        const c = rng.int(tab.dim);
        await probe(tab.data as Float64Array, id * tab.dim + c, (t) => g.emb[t]![s]?.[(idx.rowOffset[f]! + slot) * tab.dim + c] ?? 0, `${tab.name}[${id},${c}]`);
      }
    }
  }
  return { probes, maxRel, nonzero };
}

for (const name of MODEL_NAMES) {
  test(`finite differences (float64, train mode, fixed masks, BCE losses): ${name}`, async () => {
    const r = await check(makeModel(name), "train");
    assert.ok(r.probes >= 60, `only ${r.probes} probes`);
    assert.ok(r.nonzero >= 20, `only ${r.nonzero} non-zero analytic gradients: the check would be vacuous`);
  });
  test(`finite differences (float64, train mode, linear objective): ${name}`, async () => {
    const r = await check(makeModel(name), "train", "linear");
    assert.ok(r.nonzero >= 20, `only ${r.nonzero} non-zero analytic gradients: the check would be vacuous`);
  });
}

for (const name of MODEL_NAMES) {
  test(`finite differences (float64, eval mode): ${name}`, async () => {
    const r = await check(makeModel(name), "eval");
    assert.ok(r.nonzero >= 20);
  });
}

test("finite differences: ple with 2 levels and 2 shared experts (shared gate between levels)", async () => {
  const model = makeModel("ple", { levels: 2, numShared: 2 });
  assert.ok(model.dense.some((p) => p.name === "L0.shared.gate.W"), "level 0 has a shared gate");
  assert.ok(!model.dense.some((p) => p.name === "L1.shared.gate.W"), "the last level has no shared gate");
  const r = await check(model, "train");
  assert.ok(r.nonzero >= 20);
});

test("finite differences: ple with 3 levels (penultimate task gates are task-specific)", async () => {
  const model = makeModel("ple", { levels: 3, numSpecific: 2 });
  assert.equal(model.dense.find((p) => p.name === "L1.t2.gate.W")!.group, 2);
  assert.equal(model.dense.find((p) => p.name === "L0.t2.gate.W")!.group, "shared");
  assert.equal(model.dense.find((p) => p.name === "L1.t2.expert1.l0.W")!.group, "shared");
  const r = await check(model, "train");
  assert.ok(r.nonzero >= 20);
});

test("finite differences: embDim 4 (the coalescing loop unrolled by 4), mmoe and single, embedding rows included", async () => {
  for (const name of ["mmoe", "single"]) {
    const r = await check(makeModel(name, { embDim: 4 }), "train");
    assert.ok(r.probes >= 60 && r.nonzero >= 20, `${name}: ${r.probes} probes, ${r.nonzero} non-zero`);
  }
});
