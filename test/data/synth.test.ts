/** The controlled-conflict generator: exact weight-vector cosines, calibrated label rates, label noise, determinism, the normal prepare pipeline, training, and `mtlcraft synth`. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { Rng } from "../../src/util/rng.ts";
import {
  calibrateBias,
  correlationMatrix,
  cosineMatrix,
  generateSynth,
  labelNoise,
  orthonormal,
  resolveSynthOptions,
  synthCsv,
  synthName,
  synthSpec,
  taskWeights,
  writeSynthDataset,
} from "../../src/data/synth.ts";
import { loadDataset, prepareDataset } from "../../src/data/index.ts";
import { runTraining } from "../../src/train/run.ts";
import { tempDir } from "./helpers.ts";

const close = (a: number, b: number, tol: number, what = "") => assert.ok(Math.abs(a - b) <= tol, `${what} ${a} vs ${b} (tol ${tol})`);

/** The documented structure: C for every pair when C >= 0; for C < 0, C between tasks of different parity and |C| within a parity. */
const target = (C: number, i: number, j: number) => (i === j ? 1 : C >= 0 || (i + j) % 2 === 0 ? Math.abs(C) : C);

test("task weight vectors: unit norm and exactly the target cosines, from +1 to -1 (opposite directions included)", () => {
  for (const C of [1, 0.9, 0.5, 0, -0.3, -0.5, -0.9, -1]) {
    for (const [T, k] of [[6, 8], [2, 3], [5, 16]] as const) {
      const w = taskWeights(T, k, C, new Rng(11));
      assert.equal(w.length, T);
      for (const v of w) close(Math.hypot(...v), 1, 1e-12, "norm");
      const cos = cosineMatrix(w);
      for (let i = 0; i < T; i++) for (let j = 0; j < T; j++) close(cos[i]![j]!, target(C, i, j), 1e-12, `C=${C} T=${T} cos(${i},${j})`);
    }
  }
  // C = -1: t1 and t2 are exact opposites
  const w = taskWeights(2, 3, -1, new Rng(3));
  for (let d = 0; d < 3; d++) close(w[0]![d]!, -w[1]![d]!, 1e-15, "opposite");
  // the shared direction is orthogonal to each task's own one: at C = 0 all pairs are orthogonal
  const q = orthonormal(4, 4, new Rng(5));
  const G = cosineMatrix(q);
  for (let i = 0; i < 4; i++) for (let j = 0; j < 4; j++) close(G[i]![j]!, i === j ? 1 : 0, 1e-13, "orthonormal");
});

test("generated data: realised cosines and label rates match the targets (rates within 4 binomial sd)", () => {
  for (const C of [0.9, 0, -0.9]) {
    const d = generateSynth({ cosine: C, seed: 3 });
    assert.deepEqual(d.tasks, ["t1", "t2", "t3", "t4", "t5", "t6"]);
    assert.deepEqual(d.rates, [0.5, 0.25, 0.15, 0.02, 0.005, 0.002]);
    const cos = cosineMatrix(d.weights);
    for (let i = 0; i < 6; i++) for (let j = 0; j < 6; j++) close(cos[i]![j]!, target(C, i, j), 1e-12, `C=${C}`);
    // mean over the 15 pairs: C for C >= 0; (9 C + 6 |C|) / 15 = C / 5 for C < 0
    close(d.meanCosine, C >= 0 ? C : C / 5, 1e-12, "mean pair cosine");
    const N = d.userId.length;
    assert.equal(N, 60000);
    d.rates.forEach((r, t) => {
      const sd = Math.sqrt((r * (1 - r)) / N);
      const realised = d.labels[t]!.reduce((s, x) => s + x, 0) / N;
      assert.equal(realised, d.realisedRates[t]);
      close(realised, r, 4 * sd, `C=${C} rate of t${t + 1}`);
    });
  }
});

test("bias calibration solves mean σ(score + b) = rate", () => {
  const scores = Float64Array.from({ length: 5000 }, (_, i) => Math.sin(i) * 3);
  for (const rate of [0.5, 0.1, 0.002]) {
    const b = calibrateBias(scores, rate);
    let m = 0;
    for (const s of scores) m += 1 / (1 + Math.exp(-(s + b)));
    close(m / scores.length, rate, 1e-9, `rate ${rate}`);
  }
});

test("deterministic in the options; the seed changes the data; bad options name the option", () => {
  const o = { cosine: -0.5, seed: 4, rows: 2000, users: 50, items: 40 };
  const a = synthCsv(generateSynth(o));
  assert.equal(synthCsv(generateSynth(o)), a);
  assert.notEqual(synthCsv(generateSynth({ ...o, seed: 5 })), a);
  assert.equal(a.split("\n")[0], "user_id,item_id,user_group,item_cat,hour,t1,t2,t3,t4,t5,t6");
  assert.equal(a.trimEnd().split("\n").length, 2001);
  // cosine C and -C share rows and hidden features: odd tasks' labels are identical
  const p = generateSynth({ ...o, cosine: 0.5 });
  const m = generateSynth(o);
  assert.deepEqual(p.labels[0], m.labels[0]);
  assert.notDeepEqual(p.labels[1], m.labels[1]);
  assert.throws(() => resolveSynthOptions({ cosine: 1.5, seed: 1 }), /cosine must be a number in \[-1, 1\], got 1\.5/);
  assert.throws(() => resolveSynthOptions({ cosine: 0, seed: 1, hidden: 6 }), /hidden must be at least tasks \+ 1 = 7/);
  assert.throws(() => resolveSynthOptions({ cosine: 0, seed: 1, rates: [0.5, 0] }), /rates\[1\] must be in \(0, 1\), got 0/);
  assert.throws(() => resolveSynthOptions({ cosine: 0, seed: 1.5 }), /seed must be an integer/);
});

test("label-noise terms: variance σ² and corr(n_i, n_j) = s'_i s'_j |ρ| within sampling error; for ρ < 0 pairs of different parity negative", () => {
  const N = 20000;
  for (const rho of [1, 0.9, 0.5, 0, -0.5, -0.9, -1]) {
    const n = labelNoise(6, N, 3, rho, new Rng(17));
    assert.equal(n.length, 6);
    for (const x of n) {
      assert.equal(x.length, N);
      let v = 0;
      for (const e of x) v += e * e;
      // sd of the sample variance of N(0, 9): 9 · √(2 / N) ≈ 0.09
      close(v / N, 9, 4 * 9 * Math.sqrt(2 / N), `ρ=${rho} variance`);
    }
    const r = correlationMatrix(n);
    for (let i = 0; i < 6; i++) {
      for (let j = 0; j < 6; j++) {
        const want = target(rho, i, j);
        // sd of a sample correlation ≈ (1 − r²) / √N; + 1e-9 for the exact ±1 and diagonal
        close(r[i]![j]!, want, (4 * (1 - want * want)) / Math.sqrt(N) + 1e-9, `ρ=${rho} corr(n${i + 1}, n${j + 1})`);
        if (rho < 0 && i !== j) assert.equal(Math.sign(r[i]![j]!), (i + j) % 2 === 1 ? -1 : 1, `ρ=${rho}: sign of corr(n${i + 1}, n${j + 1})`);
      }
    }
  }
  assert.deepEqual(labelNoise(3, 50, 2, -0.5, new Rng(4)), labelNoise(3, 50, 2, -0.5, new Rng(4)), "deterministic in the stream");
});

test("label noise off is the generator before the knob, byte for byte (spec, CSV and metadata)", () => {
  const o = { cosine: -0.5, seed: 4, rows: 2000, users: 50, items: 40 };
  const sha = (f: string) => createHash("sha256").update(readFileSync(f)).digest("hex");
  // recorded from the generator as it was before `noise` / `noiseCosine` existed
  const before = {
    csv: "a93289e489294c38b7849822caedce8000e69cbfa022e83a125eb997fb08aee4",
    spec: "9518c9a69a417a249cd3603c41d67e0c6e9589cdc6f9b6946aa316713a88e141",
    meta: "49b140f188ca1077cfbcd243c8e675ad9640128d8b95b60a02023a94ff7046dd",
  };
  const dir = tempDir("synth-noise-off");
  for (const [i, opts] of [o, { ...o, noise: 0 }, { ...o, noise: 0, noiseCosine: 0 }].entries()) {
    const f = writeSynthDataset(join(dir, `v${i}`), opts);
    assert.deepEqual({ csv: sha(f.csv), spec: sha(f.spec), meta: sha(f.meta) }, before, JSON.stringify(opts));
    assert.equal(f.data.noiseCorrelations, null);
    assert.ok(!readFileSync(f.meta, "utf8").includes("noise"), "no noise keys in synth.meta.json");
  }
  assert.equal(synthName({ ...o, noise: 0 }), "synth-cos-0.5-s4");
});

test("label noise on: rates still calibrated, rows and weights as without noise, the injected noise correlated as asked, distinct names", () => {
  const base = { cosine: 0.9, seed: 3 };
  const plain = generateSynth(base);
  for (const rho of [0.9, -0.9]) {
    const d = generateSynth({ ...base, noise: 3, noiseCosine: rho });
    assert.deepEqual(d.userId, plain.userId, "the rows do not depend on the noise");
    assert.deepEqual(d.weights, plain.weights, "nor the weights");
    assert.notDeepEqual(d.labels[0], plain.labels[0], "the labels do");
    const N = d.userId.length;
    d.rates.forEach((r, t) => close(d.realisedRates[t]!, r, 4 * Math.sqrt((r * (1 - r)) / N), `ρ=${rho} rate of t${t + 1}`));
    for (let i = 0; i < 6; i++) {
      for (let j = 0; j < 6; j++) {
        const want = target(rho, i, j);
        close(d.noiseCorrelations![i]![j]!, want, (4 * (1 - want * want)) / Math.sqrt(N) + 1e-9, `ρ=${rho} corr(n${i + 1}, n${j + 1})`);
      }
    }
    // mean over the 15 pairs: ρ for ρ >= 0, ρ / 5 for ρ < 0
    close(d.meanNoiseCorrelation!, rho >= 0 ? rho : rho / 5, 0.02, "mean pair noise correlation");
    assert.equal(synthCsv(generateSynth({ ...base, rows: 500, noise: 3, noiseCosine: rho })), synthCsv(generateSynth({ ...base, rows: 500, noise: 3, noiseCosine: rho })), "deterministic");
  }
  const names = [{}, { noise: 3 }, { noise: 3, noiseCosine: 0.9 }, { noise: 3, noiseCosine: -0.9 }, { noise: 2, noiseCosine: -0.9 }].map((n) => synthName({ ...base, ...n }));
  assert.equal(new Set(names).size, names.length, names.join(" "));
  assert.equal(names[3], "synth-cos0.9-noise3-ncos-0.9-s3");
  const spec = synthSpec(generateSynth({ ...base, rows: 100, noise: 3, noiseCosine: -0.9 }));
  assert.equal(spec.name, "synth-cos0.9-noise3-ncos-0.9-s3");
  assert.match(spec.description, /label noise on the logits, scale 3, cosine -0\.9 between tasks of different parity/);
});

test("label-noise options are checked, naming the option", () => {
  const bad: [object, RegExp][] = [
    [{ noise: -1 }, /synth: noise must be a number in \[0, 10\] \(the label-noise scale σ; 0: none\), got -1/],
    [{ noise: 11 }, /synth: noise must be a number in \[0, 10\].*got 11/],
    [{ noise: Number.NaN }, /synth: noise must be a number.*got NaN/],
    [{ noise: "3" }, /synth: noise must be a number.*got 3/],
    [{ noise: 1, noiseCosine: 1.5 }, /synth: noiseCosine must be a number in \[-1, 1\], got 1\.5/],
    [{ noise: 1, noiseCosine: -1.01 }, /synth: noiseCosine must be a number in \[-1, 1\], got -1\.01/],
    [{ noiseCosine: 0.5 }, /synth: noiseCosine 0\.5 has no effect without label noise: set noise > 0/],
  ];
  for (const [x, re] of bad) assert.throws(() => resolveSynthOptions({ cosine: 0, seed: 1, ...x }), re, JSON.stringify(x));
  const ok = resolveSynthOptions({ cosine: 0, seed: 1, noise: 10, noiseCosine: -1 });
  assert.equal(ok.noise, 10);
  assert.equal(ok.noiseCosine, -1);
  assert.deepEqual([resolveSynthOptions({ cosine: 0, seed: 1 }).noise, resolveSynthOptions({ cosine: 0, seed: 1 }).noiseCosine], [0, 0]);
});

const root = tempDir("synth");

test("the written dataset goes through prepare: splits, fields and every label as generated", async () => {
  const f = writeSynthDataset(join(root, "data"), { cosine: -0.9, seed: 2, rows: 3000, users: 60, items: 40 });
  const spec = JSON.parse(readFileSync(f.spec, "utf8")) as { name: string; split: { kind: string } };
  assert.equal(spec.name, "synth-cos-0.9-s2");
  assert.equal(spec.split.kind, "fraction");
  const meta = JSON.parse(readFileSync(f.meta, "utf8")) as { cosines: number[][]; realisedRates: number[] };
  close(meta.cosines[0]![1]!, -0.9, 1e-12, "meta cosine");
  const cacheDir = join(root, "cache");
  const prep = await prepareDataset(f.spec, { cacheDir });
  const rows = prep.manifest.rows as Record<string, number>;
  assert.equal(rows.train! + rows.val! + rows.test!, 3000);
  assert.ok(rows.train! > 1800 && rows.val! > 300 && rows.test! > 300, JSON.stringify(rows));
  const ds = await loadDataset(f.spec, { cacheDir });
  assert.deepEqual(ds.meta.fields.map((x) => x.name), ["user_id", "item_id", "user_group", "item_cat", "hour"]);
  assert.deepEqual(ds.meta.tasks.map((t) => t.name), ["t1", "t2", "t3", "t4", "t5", "t6"]);
  const pos = new Array(6).fill(0);
  for (const s of ["train", "val", "test"] as const) {
    for (const b of ds.split(s).iterate({ batchSize: 512, shuffle: false, seed: 1, epoch: 0, dropLast: false })) {
      b.labels.forEach((l, t) => (pos[t] += l.reduce((a, x) => a + x, 0)));
    }
  }
  f.data.labels.forEach((l, t) => assert.equal(pos[t], l.reduce((a, x) => a + x, 0), `positives of t${t + 1}`));
  ds.close?.();
});

test("a tiny model learns the synthetic tasks", async () => {
  const f = writeSynthDataset(join(root, "learn"), { cosine: 0.5, seed: 1, rows: 8000, users: 80, items: 40, rates: [0.5, 0.3] , hidden: 4 });
  const r = await runTraining({
    dataset: f.spec,
    cacheDir: join(root, "cache"),
    model: "shared-bottom",
    method: "ew",
    epochs: 4,
    batchSize: 256,
    lr: 0.01,
    embDim: 4,
    modelOptions: { bottomUnits: "16", towerUnits: "8" },
    patience: 0,
    threads: 1,
  });
  assert.deepEqual(r.tasks, ["t1", "t2"]);
  // labels are a logistic function of user / item / context latents: far above chance once learnt
  for (const auc of r.test.auc) assert.ok(auc > 0.65, `test AUC ${r.test.auc.join(", ")}`);
});

test("mtlcraft synth writes the CSV, spec and metadata and prints the realised cosines and rates", () => {
  const out = join(root, "cli");
  const r = spawnSync(process.execPath, ["--import", "tsx", "src/cli.ts", "synth", "--out", out, "--cosine", "-0.5", "--seed", "2", "--rows", "500", "--users", "20", "--items", "10", "--rates", "0.5,0.1,0.01"], { encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /weight-vector cosine C=-0\.5 \(mean over pairs -0\.1667\)/);
  assert.match(r.stdout, /^t2 +0\.1000 +0\.\d{4} +-?\d+\.\d{3} +-0\.500$/m);
  assert.match(r.stdout, /^t3 +0\.0100 +0\.\d{4} +-?\d+\.\d{3} +0\.500$/m);
  for (const f of ["synth.csv", "synth.json", "synth.meta.json"]) assert.ok(existsSync(join(out, f)), f);
  const bad = spawnSync(process.execPath, ["--import", "tsx", "src/cli.ts", "synth", "--out", out, "--cosine", "-2"], { encoding: "utf8" });
  assert.notEqual(bad.status, 0);
  assert.match(bad.stderr, /--cosine must be >= -1, got -2/);
  const hidden = spawnSync(process.execPath, ["--import", "tsx", "src/cli.ts", "synth", "--out", out, "--cosine", "0", "--hidden", "3"], { encoding: "utf8" });
  assert.notEqual(hidden.status, 0);
  assert.match(hidden.stderr, /hidden must be at least tasks \+ 1 = 7/);
});

test("mtlcraft synth --noise --noise-cosine: noisy labels, the realised noise correlation printed, flags checked", () => {
  const out = join(root, "cli-noise");
  const cli = (...a: string[]) => spawnSync(process.execPath, ["--import", "tsx", "src/cli.ts", "synth", "--out", out, "--cosine", "0.9", "--rows", "2000", "--users", "20", "--items", "10", ...a], { encoding: "utf8" });
  const r = cli("--noise", "3", "--noise-cosine", "-0.9", "--seed", "1");
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^label noise σ=3, noise cosine ρ=-0\.9 \(realised correlation: mean over pairs -0\.\d{4}, t1–t2 -0\.\d{4}\)$/m);
  const spec = JSON.parse(readFileSync(join(out, "synth.json"), "utf8")) as { name: string };
  assert.equal(spec.name, "synth-cos0.9-noise3-ncos-0.9-s1");
  const meta = JSON.parse(readFileSync(join(out, "synth.meta.json"), "utf8")) as { options: { noise: number; noiseCosine: number }; noiseCorrelations: number[][] };
  assert.deepEqual([meta.options.noise, meta.options.noiseCosine], [3, -0.9]);
  assert.ok(meta.noiseCorrelations[0]![1]! < -0.8, String(meta.noiseCorrelations[0]![1]));
  const bad = cli("--noise", "3", "--noise-cosine", "2");
  assert.notEqual(bad.status, 0);
  assert.match(bad.stderr, /--noise-cosine must be <= 1, got 2/);
  const neg = cli("--noise", "-1");
  assert.notEqual(neg.status, 0);
  assert.match(neg.stderr, /--noise must be >= 0, got -1/);
  const without = cli("--noise-cosine", "-0.5");
  assert.notEqual(without.status, 0);
  assert.match(without.stderr, /noiseCosine -0\.5 has no effect without label noise: set noise > 0/);
});
