/** Reader semantics on a synthetic dataset with a unique id per row, and cache invalidation. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { openPrepared, prepareDataset, type Batch, type DatasetSpec } from "../../src/data/index.ts";
import { tempDir } from "./helpers.ts";

const root = tempDir("reader");
const cacheDir = join(root, "cache");
const ROWS = 5003;

function writeLog(file: string, rows: number, salt = 0): void {
  const lines = ["rid,user,day,clicked,watch"];
  for (let i = 0; i < rows; i++) lines.push(`r${i},u${i % 97},${1 + (i % 10)},${(i * 7 + salt) % 3 === 0 ? 1 : 0},${(i * 37) % 1000}`);
  writeFileSync(file, lines.join("\n") + "\n");
}
writeLog(join(root, "log.csv"), ROWS);
writeLog(join(root, "small.csv"), 50);

const spec: DatasetSpec = {
  name: "synthetic",
  groupColumn: "user",
  userColumn: "user",
  categorical: ["rid", "user"],
  tasks: [
    { name: "click", kind: "column", column: "clicked" },
    { name: "long", kind: "ev", watch: "watch" },
    { name: "custom", kind: "sql", expr: "watch % 2 = 0 AND clicked = 1" },
  ],
  split: { kind: "files", train: "log.csv", val: "small.csv", test: "small.csv" },
};
const res = await prepareDataset(spec, { cacheDir, dataDir: root });

test("every row is visited exactly once per epoch (shuffled, small blocks and windows)", () => {
  const ds = openPrepared(res.dir, { blockRows: 64, windowBlocks: 3 });
  const tr = ds.split("train");
  assert.equal(tr.rows, ROWS);
  for (const batchSize of [1, 100, 4096, 6000]) {
    const seen = new Uint8Array(ROWS + 1);
    let count = 0;
    for (const b of tr.iterate({ batchSize, shuffle: true, seed: 11, epoch: batchSize })) {
      for (const id of b.fields[0]!) seen[id] = (seen[id] ?? 0) + 1;
      count += b.size;
    }
    assert.equal(count, ROWS);
    assert.equal(seen[0], 0, "no OOV ids in train");
    for (let id = 1; id <= ROWS; id++) assert.equal(seen[id], 1, `row id ${id} seen once (batch ${batchSize})`);
  }
});

test("shuffle mixes across blocks and is not the file order", () => {
  const ds = openPrepared(res.dir, { blockRows: 64, windowBlocks: 3 });
  const first = ds.split("train").iterate({ batchSize: 500, shuffle: true, seed: 1, epoch: 0 }).next().value as Batch;
  const ids = Array.from(first.fields[0]!);
  const sorted = [...ids].sort((a, b) => a - b);
  assert.notDeepEqual(ids, sorted);
  // rows come from several windows' worth of blocks: the ids span far more than one block's range
  assert.ok(sorted[sorted.length - 1]! - sorted[0]! > 64 * 3, "spread beyond one window of consecutive blocks");
});

test("startBatch equals skipping, including across window boundaries; dropLast", () => {
  const ds = openPrepared(res.dir, { blockRows: 64, windowBlocks: 3 });
  const tr = ds.split("train");
  const opts = { batchSize: 77, shuffle: true, seed: 5, epoch: 3 };
  const all = [...tr.iterate(opts)].map((b) => Array.from(b.fields[0]!).join(","));
  for (const k of [0, 1, 2, 3, 10, 33, all.length - 1, all.length]) {
    const r = [...tr.iterate({ ...opts, startBatch: k })].map((b) => Array.from(b.fields[0]!).join(","));
    assert.deepEqual(r, all.slice(k), `startBatch ${k}`);
  }
  const dropped = [...tr.iterate({ ...opts, dropLast: true })];
  assert.equal(dropped.length, Math.floor(ROWS / 77));
  assert.ok(dropped.every((b) => b.size === 77));
  assert.throws(() => tr.iterate({ ...opts, startBatch: all.length + 1 }).next(), /startBatch/);
});

test("labels: raw column, EV above the train median, SQL expression", () => {
  const ds = openPrepared(res.dir);
  const b = ds.split("train").iterate({ batchSize: ROWS, shuffle: false, seed: 0, epoch: 0 }).next().value as Batch;
  const thr = res.manifest.thresholds.long ?? NaN;
  for (let i = 0; i < ROWS; i++) {
    const click = (i * 7) % 3 === 0 ? 1 : 0;
    const watch = (i * 37) % 1000;
    assert.equal(b.labels[0]![i], click);
    assert.equal(b.labels[1]![i], watch > thr ? 1 : 0);
    assert.equal(b.labels[2]![i], watch % 2 === 0 && click === 1 ? 1 : 0);
  }
  assert.ok(b.labels.every((l) => l instanceof Float32Array));
  assert.equal(ds.meta.groupColumn, "user");
  assert.equal(new Set(b.groups).size, 97);
});

test("changed input invalidates the cache; unchanged input reuses it", async () => {
  const again = await prepareDataset(spec, { cacheDir, dataDir: root });
  assert.equal(again.cached, true);
  writeLog(join(root, "log.csv"), ROWS, 1);
  const changed = await prepareDataset(spec, { cacheDir, dataDir: root });
  assert.equal(changed.cached, false);
  assert.notEqual(changed.dir, res.dir);
  assert.notEqual(changed.manifest.labelRates.train.click, res.manifest.labelRates.train.click);
  assert.ok(existsSync(join(changed.dir, "manifest.json")));
  const calls: [number, number, string][] = [];
  const forced = await prepareDataset(spec, { cacheDir, dataDir: root, force: true, progress: (d, t, s) => calls.push([d, t, s]) });
  assert.equal(forced.cached, false);
  assert.deepEqual(calls.at(-1), [calls.at(-1)?.[1], calls.at(-1)?.[1], "done"]);
  assert.ok(calls.every(([d], i) => i === 0 || d >= (calls[i - 1]?.[0] ?? 0)), "progress never goes back");
  assert.equal(forced.dir, changed.dir);
});
