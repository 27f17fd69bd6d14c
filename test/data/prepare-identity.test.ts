/**
 * prepare writes the same bytes as before the data layer was split into manifest / cache / duckdb /
 * sql / columns / prepare: every manifest and cache file of the bundled KuaiRand slice and of the
 * census-income spec (on a slice of the real census-income.test.gz) has the sha256 recorded in
 * test/fixtures/prepare-digests.json, which scripts/prepare-digests.ts wrote from the tree before
 * the split. The manifest is compared without `createdAt` and with the input paths cut to their
 * base names (see scripts/prepare-digests.ts); nothing else is excluded.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { DIGEST_FIXTURE, normaliseManifest, prepareDigests, type CacheDigest } from "../../scripts/prepare-digests.ts";
import { tempDir } from "./helpers.ts";

const want = JSON.parse(readFileSync(DIGEST_FIXTURE, "utf8")) as Record<string, CacheDigest>;
const t0 = Date.now();
const got = await prepareDigests(tempDir("identity"));
const seconds = (Date.now() - t0) / 1000;

for (const name of ["kuairand", "census-income"] as const) {
  test(`${name}: every manifest and cache file is byte-identical to the recorded pre-split prepare`, () => {
    const w = want[name]!;
    const g = got[name];
    assert.equal(g.folder, w.folder, "cache folder name (dataset hash)");
    assert.deepEqual(Object.keys(g.files).sort(), Object.keys(w.files).sort(), "the same files");
    const differ = Object.keys(w.files).filter((f) => g.files[f] !== w.files[f]);
    assert.deepEqual(differ, [], `files whose bytes differ: ${differ.join(", ")}`);
    // the fixture covers the whole cache: manifest, vocabularies, side tables and every split's column files
    for (const f of ["manifest.json", "vocab/field_0.json", "train/field_0.i32", "val/label_0.u8", "test/group.i32"]) assert.ok(f in w.files, f);
  });
}

test("the manifest normalisation only takes out createdAt and the input files' folders", () => {
  const m = { format: "mtlcraft-dataset", hash: "h", createdAt: "2026-12-08T01:00:00.000Z", inputs: [{ file: "/some/where/log.csv", bytes: 3, hash: "x", rows: 1 }], rows: { train: 1 } };
  const n = JSON.parse(normaliseManifest(JSON.stringify(m))) as typeof m;
  assert.deepEqual(n, { ...m, createdAt: "<excluded: time of the prepare>", inputs: [{ file: "log.csv", bytes: 3, hash: "x", rows: 1 }] });
  // any other change shows
  assert.notEqual(normaliseManifest(JSON.stringify(m)), normaliseManifest(JSON.stringify({ ...m, rows: { train: 2 } })));
  assert.ok(seconds < 300, `preparing both datasets took ${seconds} s`);
});
