/**
 * Continuity with the previous engine (@jax-js/jax 0.1.25): the fixture
 * test/fixtures/continuity/jaxjs-0.1.25.json was recorded by
 * scripts/record-continuity.ts (commit a2eb90b, before that engine was removed)
 * for every architecture, a fixed float64 model, batch and seed. The ONNX
 * engine must reproduce, to 1e-5 relative:
 * - eval-mode and train-mode (same dropout masks / gate noise) logits;
 * - the losses (against `lossesFromLogits`: the old engine's own log was a
 *   fast approximation accurate to ~1e-5 absolute, see the fixture's notes);
 * - every per-task gradient norm, per dense parameter and per embedding table
 *   set (against `gradNormsExactCotangent`, whose loss derivative was exact),
 *   and the weighted-sum ("sum") path's norms.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { createModel } from "../../src/model/index.ts";
import { GradWorkspace, logitsOf, perTaskGrads, type PerTaskGrads } from "../../src/grad/pertask.ts";
import type { Batch, FieldInfo } from "../../src/data/types.ts";
import type { FloatArray } from "../../src/graph/graph.ts";
import { Rng } from "../../src/util/rng.ts";

interface Norms {
  dense: Record<string, number | null>;
  emb: (number | null)[];
  total: number;
}
interface ModeRec {
  seed: number | string;
  lossesFromLogits: number[];
  logits: number[][];
  gradNormsExactCotangent: Norms[];
}
interface Case {
  name: string;
  model: string;
  options: Record<string, unknown>;
  eval: ModeRec;
  train: ModeRec;
  sumTrain: { seed: number | string; gradNormsExactCotangent: Norms };
}
const fx = JSON.parse(readFileSync(new URL("../fixtures/continuity/jaxjs-0.1.25.json", import.meta.url), "utf8")) as {
  numTasks: number;
  fields: FieldInfo[];
  batch: { size: number; fields: number[][]; labels: number[][]; groups: number[] };
  cases: Case[];
};

const batch: Batch = {
  size: fx.batch.size,
  fields: fx.batch.fields.map((f) => Int32Array.from(f)),
  labels: fx.batch.labels.map((y) => Float32Array.from(y)),
  groups: Int32Array.from(fx.batch.groups),
};

const REL = 1e-5;
function close(a: number, b: number, what: string, abs = 1e-12): void {
  assert.ok(Number.isFinite(a), `${what}: ${a} is not finite`);
  assert.ok(Math.abs(a - b) <= REL * Math.abs(b) + abs, `${what}: ${a} vs fixture ${b} (rel ${(Math.abs(a - b) / Math.abs(b)).toExponential(2)})`);
}
const norm = (a: FloatArray | null): number | null => {
  if (!a) return null;
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * a[i]!;
  return Math.sqrt(s);
};

/** The old engine's exact-cotangent gradient: dL_t/dz = (sigmoid(z) - y)/B fed as a linear objective. */
function exactCoefficients(logits: FloatArray[]): Float64Array[] {
  const B = batch.size;
  return logits.map((z, t) => Float64Array.from(z, (v, r) => (1 / (1 + Math.exp(-v)) - batch.labels[t]![r]!) / B));
}

function compareNorms(model: ReturnType<typeof createModel>, g: PerTaskGrads, k: number, want: Norms, what: string): number {
  let checked = 0;
  let total = 0;
  model.dense.forEach((p, i) => {
    const got = norm(g.dense[k]![i] ?? null);
    const exp = want.dense[p.name];
    assert.ok(exp !== undefined, `${what}: fixture lacks ${p.name}`);
    if (exp === null) assert.equal(got, null, `${what} ${p.name}: expected no gradient (other task's parameter)`);
    else {
      close(got ?? 0, exp, `${what} ${p.name}`, 1e-11);
      checked++;
      total += (got ?? 0) ** 2;
    }
  });
  want.emb.forEach((exp, s) => {
    const got = norm(g.emb[k]![s] ?? null);
    if (exp === null) assert.equal(got, null, `${what} table set ${s}: expected no gradient`);
    else {
      close(got ?? 0, exp, `${what} table set ${s}`, 1e-11);
      checked++;
      total += (got ?? 0) ** 2;
    }
  });
  close(Math.sqrt(total), want.total, `${what} total`);
  return checked;
}

for (const c of fx.cases) {
  test(`continuity with the @jax-js/jax engine: ${c.name}`, async () => {
    const model = createModel(c.model, { fields: fx.fields, numTasks: fx.numTasks }, c.options as never);
    // as the recording script: biases redrawn off 0 (no pre-activation on a ReLU kink)
    const rng = new Rng(99);
    for (const p of model.dense) if (p.name.endsWith(".b")) for (let i = 0; i < p.data.length; i++) p.data[i] = 0.3 * rng.normal();
    const ws = new GradWorkspace(model);
    let probes = 0;
    for (const rec of [c.eval, c.train]) {
      const mode = rec === c.eval ? "eval" : "train";
      const seed = Number(rec.seed);
      const z = await logitsOf(ws, batch, mode, seed);
      z.forEach((zt, t) => zt.forEach((v, r) => close(v, rec.logits[t]![r]!, `${mode} logit [${t}][${r}]`, 1e-12)));
      const plain = await perTaskGrads(ws, batch, { mode, seed });
      plain.losses.forEach((l, t) => close(l, rec.lossesFromLogits[t]!, `${mode} loss ${t}`));
      const g = await perTaskGrads(ws, batch, { mode, seed, objective: { kind: "linear", c: exactCoefficients(z) } });
      for (let t = 0; t < fx.numTasks; t++) probes += compareNorms(model, g, t, rec.gradNormsExactCotangent[t]!, `${mode} task ${t}`);
    }
    const zt = await logitsOf(ws, batch, "train", Number(c.sumTrain.seed));
    const gs = await perTaskGrads(ws, batch, { mode: "train", seed: Number(c.sumTrain.seed), cotangents: "sum", objective: { kind: "linear", c: exactCoefficients(zt) } });
    probes += compareNorms(model, gs, 0, c.sumTrain.gradNormsExactCotangent, "sum path");
    assert.ok(probes >= 10, `only ${probes} gradient norms compared`);
  });
}
