/** Score fusion: formulas, their parsing, the rank objective against src/metrics, and the weight search. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { auc } from "../../src/metrics/auc.ts";
import { gauc } from "../../src/metrics/gauc.ts";
import { describeFusion, fuseScores, fusionFromJson, parseFusion, parseObjective, RankObjective, searchFusion, type SplitScores } from "../../src/deploy/fusion.ts";
import { Rng } from "../../src/util/rng.ts";

const TASKS = ["ev", "like", "follow"];

test("parseFusion: kinds, weights (unlisted tasks get 0), and errors naming the problem", () => {
  assert.deepEqual(parseFusion("sum", TASKS), { kind: "sum", weights: [1, 1, 1] });
  assert.deepEqual(parseFusion("product:ev=2, follow=0.5", TASKS), { kind: "product", weights: [2, 0, 0.5] });
  assert.throws(() => parseFusion("summ", TASKS), /unknown fusion "summ".*did you mean "sum"/);
  assert.throws(() => parseFusion("sum:evv=1", TASKS), /unknown task "evv".*did you mean "ev"/);
  assert.throws(() => parseFusion("sum:ev=-1", TASKS), /must be a decimal number >= 0/);
  // weights are decimal numbers: hex, Infinity, signs and blanks are refused (fusion.json is as strict)
  for (const bad of ["0x10", "Infinity", "+1", "", "1e", "0b1"]) assert.throws(() => parseFusion(`sum:ev=${bad}`, TASKS), /must be a decimal number >= 0/, bad);
  assert.deepEqual(parseFusion("product:ev=2e-3,like=.5", TASKS).weights, [2e-3, 0.5, 0]);
  // weights so large that the scores would overflow to ±∞ (every row tied) are refused, not rescaled silently
  assert.throws(() => parseFusion("product:ev=1e308,like=1e308", TASKS), /add up to more than 1e\+300.*only their ratios matter: scale them down/);
  assert.throws(() => fusionFromJson({ kind: "sum", weights: { ev: 1e308, like: 1e308 } }, TASKS, "f.json"), /f\.json: the fusion weights add up to more than/);
  const top = parseFusion("product:ev=4e299,like=4e299", TASKS);
  const s = fuseScores(top, [Float32Array.of(0, 0.5), Float32Array.of(1e-30, 0.5), Float32Array.of(1, 1)], 2);
  assert.ok(Number.isFinite(s[0]!) && Number.isFinite(s[1]!) && s[0]! < s[1]!, "the largest weights allowed still rank the rows with finite scores");
  assert.throws(() => parseFusion("sum:ev=0", TASKS), /at least one fusion weight must be > 0/);
  assert.throws(() => parseFusion("sum:ev=1,ev=2", TASKS), /given twice/);
  assert.deepEqual(fusionFromJson({ kind: "sum", weights: { like: 1 } }, TASKS, "f.json"), { kind: "sum", weights: [0, 1, 0] });
  assert.throws(() => fusionFromJson({ kind: "max", weights: {} }, TASKS, "f.json"), /f\.json: expected/);
  assert.throws(() => parseObjective("gaucc", TASKS), /unknown objective "gaucc".*did you mean "gauc"/);
  assert.deepEqual(parseObjective("gauc", TASKS, "like=2"), { kind: "gauc", taskWeights: [0, 2, 0] });
  assert.deepEqual(parseObjective("target: play_time_ms > 3000", TASKS), { kind: "target", expr: "play_time_ms > 3000" });
  assert.equal(describeFusion({ kind: "product", weights: [0.5, 0, 0.25] }, TASKS), "ln(p_ev^0.5 · p_follow^0.25)");
});

test("fuseScores: weighted sum of probabilities and the log of the weighted product of powers (tasks with weight 0 left out, even at p = 0)", () => {
  const p = [Float32Array.of(0.5, 0.25), Float32Array.of(0.1, 0), Float32Array.of(0.8, 0.5)];
  const s = fuseScores({ kind: "sum", weights: [1, 2, 0.5] }, p, 2);
  assert.ok(Math.abs(s[0]! - (0.5 + 0.2 + 0.4)) < 1e-7 && Math.abs(s[1]! - (0.25 + 0 + 0.25)) < 1e-7);
  const q = fuseScores({ kind: "product", weights: [2, 0, 0.5] }, p, 2);
  assert.ok(Math.abs(q[0]! - Math.log(0.5 ** 2 * Math.sqrt(0.8))) < 1e-7, String(q[0]));
  assert.ok(Math.abs(q[1]! - Math.log(0.25 ** 2 * Math.sqrt(Math.fround(0.5)))) < 1e-7, String(q[1]));
  // p = 0 is clamped to P_MIN = 2^-149: finite, and below every positive float32 probability's score
  const z = fuseScores({ kind: "product", weights: [0, 1, 0] }, [p[0]!, Float32Array.of(2 ** -149, 0), p[2]!], 2);
  assert.equal(z[1], -149 * Math.LN2);
  assert.ok(Number.isFinite(z[1]!) && z[0]! === z[1]!, `p = 0 scores like the smallest subnormal: ${z[0]} ${z[1]}`);
});

test("product fusion ranks by Σ w ln p: weights 1e-300 and 2000 neither underflow nor tie every row (ranking equals float64 Σ w ln p)", () => {
  const rng = new Rng(19);
  const n = 500;
  const pa = Float32Array.from({ length: n }, () => 0.01 + 0.98 * rng.next());
  const pb = Float32Array.from({ length: n }, () => 0.01 + 0.98 * rng.next());
  pa[7] = 0; // ln 0 = -inf: clamped, still finite
  const order = (s: ArrayLike<number>): number[] => Array.from({ length: n }, (_, i) => i).sort((x, y) => s[y]! - s[x]! || x - y);
  for (const weights of [[2000, 0], [1e-300, 0], [2000, 1e-300], [1e-300, 2000], [3, 1500]]) {
    const got = fuseScores({ kind: "product", weights }, [pa, pb], n);
    // independently, in float64: the weighted sum of logs (the order of the product Π p^w)
    const want = Array.from({ length: n }, (_, i) => {
      let acc = 0;
      if (weights[0]! > 0) acc += weights[0]! * Math.log(pa[i] === 0 ? 2 ** -149 : pa[i]!);
      if (weights[1]! > 0) acc += weights[1]! * Math.log(pb[i]!);
      return acc;
    });
    assert.ok(got.every((x) => Number.isFinite(x)), `${weights}: every score finite`);
    assert.ok(new Set(got).size > n / 2, `${weights}: rows are not all tied (${new Set(got).size} distinct scores)`);
    assert.deepEqual(order(got), order(want), `${weights}: ranking`);
    // scaling all weights by a positive factor keeps the ranking
    assert.deepEqual(order(fuseScores({ kind: "product", weights: weights.map((w) => w * 1e-5) }, [pa, pb], n)), order(want), `${weights}: scaled`);
  }
});

test("RankObjective equals gauc (count weighting) and auc per label column, ties included", () => {
  const rng = new Rng(4);
  const n = 700;
  const groups = Int32Array.from({ length: n }, () => rng.int(40) * 3);
  const labels = [0.5, 0.2, 0.03].map((rate) => Float32Array.from({ length: n }, () => (rng.next() < rate ? 1 : 0)));
  // coarse scores: many ties, and one big group (> 24 rows: the sort path)
  for (let i = 0; i < 60; i++) groups[i] = 999;
  const s = Float64Array.from({ length: n }, () => Math.round(rng.next() * 20) / 20);
  const weights = [1, 2, 0.5];
  const g = labels.map((y) => gauc(y, s, groups).gauc);
  const want = (weights[0]! * g[0]! + weights[1]! * g[1]! + weights[2]! * g[2]!) / 3.5;
  assert.ok(Math.abs(new RankObjective(labels, weights, groups).value(s) - want) < 1e-12);
  const a = labels.map((y) => auc(y, s));
  assert.ok(Math.abs(new RankObjective(labels, [1, 1, 1], null).value(s) - (a[0]! + a[1]! + a[2]!) / 3) < 1e-12);
  // a column without any group holding both classes is left out; none at all gives NaN
  const none = new Float32Array(n);
  assert.ok(Math.abs(new RankObjective([labels[0]!, none], [1, 1], groups).value(s) - g[0]!) < 1e-12);
  assert.ok(Number.isNaN(new RankObjective([none], [1], groups).value(s)));
});

test("the search recovers planted fusion weights on validation data, deterministically", () => {
  // the target ranking is 3 p_a + p_b (p_c is noise): the chosen sum weights must put most weight on a, then b
  const rng = new Rng(11);
  const n = 3000;
  const probs = [0, 1, 2].map(() => Float32Array.from({ length: n }, () => 0.05 + 0.9 * rng.next()));
  const groups = Int32Array.from({ length: n }, () => rng.int(100));
  const y = Float32Array.from({ length: n }, (_, r) => (3 * probs[0]![r]! + probs[1]![r]! + 0.3 * rng.normal() > 2 ? 1 : 0));
  const d: SplitScores = { rows: n, probs, labels: [y, y, y], groups };
  const obj = parseObjective("gauc", ["a", "b", "c"], "a=1");
  const r = searchFusion(obj, d, { kinds: ["sum"], samples: 60, rounds: 3, seed: 1 });
  const [wa, wb, wc] = r.best.weights;
  assert.ok(wa! > wb! && wb! > wc!, `weights ${r.best.weights.join(", ")}`);
  assert.ok(Math.abs(wa! / wb! - 3) < 1.5, `ratio ${wa! / wb!}`);
  assert.ok(r.value > r.baseline.value, `${r.value} vs equal weights ${r.baseline.value}`);
  assert.ok(Math.abs(r.best.weights.reduce((p, q) => p + q, 0) - 1) < 1e-12, "normalised");
  const again = searchFusion(obj, d, { kinds: ["sum"], samples: 60, rounds: 3, seed: 1 });
  assert.deepEqual(again.best, r.best);
});
