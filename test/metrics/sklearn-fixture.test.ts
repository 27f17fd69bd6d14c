// Compares our metrics against scikit-learn on real KuaiRand rows. The expected values were
// produced by scripts/gen-metric-fixtures.py and are committed; sklearn is not needed here.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { auc } from "../../src/metrics/auc.ts";
import { gauc, gaucAll } from "../../src/metrics/gauc.ts";
import { logloss, loglossFromLogits } from "../../src/metrics/logloss.ts";

interface AucCase {
  label: string;
  score: string;
  auc: number;
  gauc_count: number;
  gauc_uniform: number;
  gauc_positives: number;
  groups_used: number;
  groups_skipped: number;
  rows_used: number;
}
interface LoglossCase {
  label: string;
  "logloss_noise_eps1e-7": number;
  "logloss_noise_eps1e-3": number;
  logloss_sigmoid_logits: number;
}
interface Expected {
  rows: number;
  auc_gauc: AucCase[];
  logloss: LoglossCase[];
}

const dir = new URL("../fixtures/metrics/", import.meta.url);
const expected = JSON.parse(readFileSync(new URL("kuairand-expected.json", dir), "utf8")) as Expected;
const lines = readFileSync(new URL("kuairand-inputs.csv", dir), "utf8").trimEnd().split("\n");
const header = lines[0]!.split(",");
const n = lines.length - 1;
const cols = new Map<string, Float64Array>(header.map((h) => [h, new Float64Array(n)]));
for (let r = 0; r < n; r++) {
  const parts = lines[r + 1]!.split(",");
  for (let c = 0; c < header.length; c++) cols.get(header[c]!)![r] = Number(parts[c]);
}
const col = (name: string): Float64Array => {
  const v = cols.get(name);
  if (v === undefined) throw new Error(`fixture has no column ${name}`);
  return v;
};
const groups = Int32Array.from(col("user_id"));
const noise = Float32Array.from(col("noise")); // float32 values, as sklearn saw them
const scores: Record<string, Float32Array | Float64Array> = {
  play_time_ms: col("play_time_ms"),
  duration_ms: col("duration_ms"),
  neg_profile_stay_time: col("profile_stay_time").map((x) => -x),
  noise,
};
const labelOf = (name: string) => Float32Array.from(col(name));
const TOL = 1e-9;

test("fixture is the expected size and non-trivial", () => {
  assert.equal(n, expected.rows);
  assert.equal(expected.auc_gauc.length, 12);
  // ties really occur in the scores used (1,937 rows have play_time_ms = 0; noise has 101 levels)
  const zeros = col("play_time_ms").filter((x) => x === 0).length;
  assert.ok(zeros > 1000, `play_time_ms zeros: ${zeros}`);
  const levels = new Set(noise).size;
  assert.ok(levels <= 101, `noise levels: ${levels}`);
  // exact 0 and 1 probabilities occur, so the eps clipping is exercised
  assert.ok(noise.includes(0) && noise.includes(1), "noise should contain 0 and 1");
});

for (const c of expected.auc_gauc) {
  test(`sklearn agreement: ${c.label} vs ${c.score}`, () => {
    const y = labelOf(c.label);
    const s = scores[c.score];
    assert.ok(s !== undefined, `unknown score ${c.score}`);
    const a = auc(y, s);
    assert.ok(Math.abs(a - c.auc) < TOL, `auc ${a} vs sklearn ${c.auc}`);
    const all = gaucAll(y, s, groups);
    assert.ok(Math.abs(all.count - c.gauc_count) < TOL, `gauc(count) ${all.count} vs ${c.gauc_count}`);
    assert.ok(Math.abs(all.uniform - c.gauc_uniform) < TOL, `gauc(uniform) ${all.uniform} vs ${c.gauc_uniform}`);
    assert.ok(Math.abs(all.positives - c.gauc_positives) < TOL, `gauc(pos) ${all.positives} vs ${c.gauc_positives}`);
    assert.equal(all.groupsUsed, c.groups_used);
    assert.equal(all.groupsSkipped, c.groups_skipped);
    assert.equal(all.rowsUsed, c.rows_used);
    const d = gauc(y, s, groups);
    assert.equal(d.gauc, all.count);
    assert.equal(gauc(y, s, groups, { weighting: "uniform" }).gauc, all.uniform);
  });
}

test("sklearn agreement: log loss (probabilities with clipping, and logits)", () => {
  const logits = Float64Array.from(noise, (p) => (p - 0.5) * 8);
  for (const c of expected.logloss) {
    const y = labelOf(c.label);
    const a = logloss(y, noise);
    assert.ok(Math.abs(a - c["logloss_noise_eps1e-7"]) < TOL, `${c.label}: ${a} vs ${c["logloss_noise_eps1e-7"]}`);
    const b = logloss(y, noise, { eps: 1e-3 });
    assert.ok(Math.abs(b - c["logloss_noise_eps1e-3"]) < TOL, `${c.label}: ${b} vs ${c["logloss_noise_eps1e-3"]}`);
    const z = loglossFromLogits(y, logits);
    assert.ok(Math.abs(z - c.logloss_sigmoid_logits) < TOL, `${c.label}: ${z} vs ${c.logloss_sigmoid_logits}`);
  }
});
