/** WeChat 2021 layout (99-row sample) and the AliExpress / Ali-CCP / Census-Income fixture specs. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { copyFileSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { DataError, loadDataset, openPrepared, prepareDataset, wechatSpec, type Batch } from "../../src/data/index.ts";
import { SHARED, n, query, readI32, tempDir } from "./helpers.ts";

const root = tempDir("formats");
const cacheDir = join(root, "cache");
const WECHAT = `${SHARED}/wechat-2021-mini`;
const FIX = `${SHARED}/fixtures`;

function countLines(rows: number[]): number {
  return rows.reduce((a, b) => a + b, 0);
}

test("wechat sample: six tasks, every row kept, EV threshold is the train median of play", async () => {
  const { dir, manifest } = await prepareDataset(`wechat:${WECHAT}`, { cacheDir });
  assert.equal(manifest.name, "wechat-mini");
  assert.deepEqual(
    manifest.tasks.map((t) => t.name),
    ["ev", "lv", "cv", "like", "follow", "forward"],
  );
  assert.equal(countLines(Object.values(manifest.rows)), 99);
  for (const s of ["train", "val", "test"] as const) assert.ok(manifest.rows[s] > 0);
  // single-class labels in the 99-row sample only warn, and the warning is recorded
  assert.ok(manifest.warnings.some((w) => /follow/.test(w)));
  const ds = openPrepared(dir);
  const b = ds.split("train").iterate({ batchSize: 1000, shuffle: false, seed: 0, epoch: 0 }).next().value as Batch;
  const ev = b.labels[0]!;
  const pos = ev.reduce((a, x) => a + x, 0);
  assert.ok(pos > 0 && pos < b.size);
  const like = b.labels[3]!.reduce((a, x) => a + x, 0);
  assert.equal(like / b.size, manifest.labelRates.train.like);
  const all = await query(`SELECT sum("like") AS l FROM read_csv('${WECHAT}/user_action_mini.csv')`);
  const likes = Object.values(manifest.labelRates).reduce((a, r, i) => a + (r.like ?? 0) * Object.values(manifest.rows)[i]!, 0);
  assert.equal(Math.round(likes), n(all[0]?.l));
});

test("wechat: the official file names are accepted; default date split (1..12 / 13 / 14)", async () => {
  const d = join(root, "wechat-full");
  mkdirSync(d);
  copyFileSync(join(WECHAT, "user_action_mini.csv"), join(d, "user_action.csv"));
  copyFileSync(join(WECHAT, "feed_info_mini.csv"), join(d, "feed_info.csv"));
  const { spec } = wechatSpec(d);
  assert.equal(spec.name, "wechat");
  assert.deepEqual(spec.split, { kind: "date", column: "date_", train: [1, 12], val: [13, 13], test: [14, 14] });
  // the sample only has days 1..5, so the full-data split leaves val empty
  await assert.rejects(prepareDataset("wechat", { cacheDir, dataDir: d }), (e: unknown) => e instanceof DataError && /split "val" is empty/.test(e.message));
  const custom = wechatSpec(d, { split: { kind: "date", column: "date_", train: [1, 2], val: [3, 3], test: [4, 5] } });
  const r = await prepareDataset({ ...custom.spec, singleClassLabels: "warn" }, { cacheDir, dataDir: d });
  assert.deepEqual(r.manifest.rows, { train: 65, val: 27, test: 7 });
});

interface Fixture {
  spec: string;
  /** Spec file (default data/specs/<spec>.json). */
  specPath?: string;
  dir: string;
  files: { train: string; val?: string; test: string };
  tasks: string[];
}
const FIXTURES: Fixture[] = [
  { spec: "aliexpress", dir: "aliexpress", files: { train: "aliexpress_train_sample.csv", test: "aliexpress_test_sample.csv" }, tasks: ["click", "conversion"] },
  { spec: "ali-ccp", dir: "ali-ccp", files: { train: "ali_ccp_train_sample.csv", val: "ali_ccp_val_sample.csv", test: "ali_ccp_test_sample.csv" }, tasks: ["click", "purchase"] },
  {
    spec: "census-income",
    specPath: "test/fixtures/census-income-rechub.json",
    dir: "census-income",
    files: { train: "census_income_train_sample.csv", val: "census_income_val_sample.csv", test: "census_income_test_sample.csv" },
    tasks: ["income", "marital"],
  },
];

for (const fx of FIXTURES) {
  test(`fixture ${fx.spec}: per-split files, row counts, ids within vocab`, async () => {
    const dataDir = join(FIX, fx.dir);
    const count = async (f: string): Promise<number> => n((await query(`SELECT count(*) AS c FROM read_csv('${join(dataDir, f)}')`))[0]?.c);
    const ds = await loadDataset(fx.specPath ?? `data/specs/${fx.spec}.json`, { cacheDir, dataDir });
    const rows = ds.meta.rows;
    assert.deepEqual(
      ds.meta.tasks.map((t) => t.name),
      fx.tasks,
    );
    assert.equal(rows.test, await count(fx.files.test));
    if (fx.files.val) {
      assert.equal(rows.train, await count(fx.files.train));
      assert.equal(rows.val, await count(fx.files.val));
    } else {
      assert.equal(rows.train + rows.val, await count(fx.files.train));
      assert.ok(rows.val > 0 && rows.val < rows.train);
    }
    for (const s of ["train", "val", "test"] as const) {
      let seen = 0;
      for (const b of ds.split(s).iterate({ batchSize: 16, shuffle: true, seed: 1, epoch: 0 })) {
        seen += b.size;
        b.fields.forEach((f, i) => assert.ok(f.every((id) => id >= 0 && id < ds.meta.fields[i]!.vocabSize)));
        b.labels.forEach((l) => assert.ok(l.every((v) => v === 0 || v === 1)));
      }
      assert.equal(seen, rows[s]);
    }
  });
}

test("ali-ccp: test item ids (205) unseen in train map to 0", async () => {
  const dataDir = join(FIX, "ali-ccp");
  const { dir, manifest } = await prepareDataset("data/specs/ali-ccp.json", { cacheDir, dataDir });
  const fi = manifest.fields.findIndex((f) => f.name === "f205");
  const r = await query(
    `SELECT count(*) AS c FROM read_csv('${dataDir}/ali_ccp_test_sample.csv') WHERE "205" NOT IN (SELECT "205" FROM read_csv('${dataDir}/ali_ccp_train_sample.csv'))`,
  );
  const zeros = readI32(join(dir, "test", `field_${fi}.i32`)).filter((x) => x === 0).length;
  assert.ok(n(r[0]?.c) > 0);
  assert.equal(zeros, n(r[0]?.c));
});

test("Parquet log with a CSV side table and a fraction split by user", async () => {
  const d = join(root, "pq");
  mkdirSync(d);
  await query(
    `COPY (SELECT 'u' || (i % 13) AS uid, 'v' || (i % 17) AS vid, (i * 7919) % 100 AS watch, (i % 5 = 0)::INT AS liked FROM range(400) t(i)) TO '${join(d, "log.parquet")}' (FORMAT parquet)`,
  );
  await query(`COPY (SELECT 'v' || i AS vid, 'a' || (i % 4) AS author FROM range(17) t(i)) TO '${join(d, "items.csv")}' (HEADER)`);
  const { manifest } = await prepareDataset(
    {
      name: "pq",
      log: "log.parquet",
      joins: [{ path: "items.csv", on: "vid", columns: ["author"] }],
      userColumn: "uid",
      itemColumn: "vid",
      groupColumn: "uid",
      categorical: ["uid", "vid", "author"],
      tasks: [
        { name: "like", kind: "column", column: "liked" },
        { name: "lv", kind: "lv", watch: "watch" },
      ],
      split: { kind: "fraction", train: 0.6, val: 0.2, test: 0.2, seed: 9, by: "uid" },
    },
    { cacheDir, dataDir: d },
  );
  assert.equal(manifest.rows.train + manifest.rows.val + manifest.rows.test, 400);
  assert.equal(manifest.fields.find((f) => f.name === "author")?.vocabSize, 5);
  // split by user: the users of the three splits are disjoint and cover all 13
  assert.equal((manifest.users?.train ?? 0) + (manifest.users?.val ?? 0) + (manifest.users?.test ?? 0), 13);
});
