/** prepare's `confineTo`: a spec from a queue reads files only inside one folder, by real path (src/data/confine.ts). */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { CONFINE_DATA_ENV, confineSpecPaths, OutsideDataFolderError } from "../../src/data/confine.ts";
import { prepareDataset, type DatasetSpec } from "../../src/data/index.ts";
import { tempDir } from "./helpers.ts";
import { writeTinyDataset } from "../train/tiny-data.ts";

const root = tempDir("confine");
const data = join(root, "data");
const specFile = writeTinyDataset(data, { seed: 2 });
const spec = JSON.parse(readFileSync(specFile, "utf8")) as DatasetSpec;
writeFileSync(join(root, "outside.csv"), readFileSync(join(data, "log.csv")));
mkdirSync(join(data, "sub"));
writeFileSync(join(data, "sub", "items.csv"), "item_id,cat\n1,a\n");
symlinkSync(join(root, "outside.csv"), join(data, "link.csv"));
symlinkSync(root, join(data, "up")); // a folder link out
symlinkSync(join(data, "sub", "items.csv"), join(data, "inner-link.csv")); // a link that stays inside
symlinkSync(join(root, "nowhere.csv"), join(data, "dangling.csv"));

const refused = (s: DatasetSpec, re: RegExp, base = data) =>
  assert.throws(() => confineSpecPaths(s, base, data, "spec.dataDir"), (e: Error) => {
    assert.ok(e instanceof OutsideDataFolderError, `${e.name}: ${e.message}`);
    assert.match(e.message, re);
    // only the spec's own text is quoted: never where a link leads
    if (!JSON.stringify(s).includes("outside.csv")) assert.ok(!e.message.includes("outside.csv"), e.message);
    return true;
  });

test("paths inside the data folder (also through a link that stays inside, or not yet existing) are accepted", () => {
  confineSpecPaths(spec, data, data, "spec.dataDir");
  confineSpecPaths({ ...spec, log: ["log.csv", "inner-link.csv", "./sub/../log.csv"], joins: [{ path: "sub/items.csv", on: "item_id", columns: ["cat"] }] } as DatasetSpec, data, data, "spec.dataDir");
  confineSpecPaths({ ...spec, log: "missing.csv" }, data, data, "spec.dataDir"); // prepare says "not found" later
  confineSpecPaths(spec, join(data, "sub"), data, "spec.dataDir");
});

test("a path outside by '..', by an absolute path, through a file or folder symlink, or a broken link is refused naming the spec key", () => {
  refused({ ...spec, log: "../outside.csv" }, /^spec\.log \("\.\.\/outside\.csv"\) resolves outside the data folder/);
  refused({ ...spec, log: ["log.csv", join(root, "outside.csv")] }, /^spec\.log\[1\] \(".*outside\.csv"\) resolves outside/);
  refused({ ...spec, log: "/etc/passwd" }, /^spec\.log \("\/etc\/passwd"\) resolves outside/);
  refused({ ...spec, joins: [{ path: "link.csv", on: "item_id", columns: ["cat"] }] } as DatasetSpec, /^spec\.joins\[0\]\.path \("link\.csv"\) leads outside the data folder \(through a symbolic link\)/);
  refused({ ...spec, log: "up/outside.csv" }, /^spec\.log \("up\/outside\.csv"\) leads outside/);
  refused({ ...spec, log: "dangling.csv" }, /^spec\.log \("dangling\.csv"\) is a symbolic link that leads nowhere/);
  refused({ ...spec, split: { kind: "files", train: "log.csv", test: "../outside.csv", valFraction: 0.2, seed: 1 } } as DatasetSpec, /^spec\.split\.test \("\.\.\/outside\.csv"\)/);
  // the data folder itself may not be left by the base folder either
  refused(spec, /^spec\.dataDir \(".*"\) is outside the data folder/, root);
});

test("prepareDataset with confineTo refuses before reading anything; without it the same spec prepares", async () => {
  const outsideSpec = join(data, "outside.json");
  writeFileSync(outsideSpec, JSON.stringify({ ...spec, log: "../outside.csv" }));
  const cacheDir = join(root, "cache");
  await assert.rejects(prepareDataset(outsideSpec, { cacheDir, dataDir: data, confineTo: data }), /spec\.log \("\.\.\/outside\.csv"\) resolves outside the data folder/);
  const ok = await prepareDataset(outsideSpec, { cacheDir, dataDir: data });
  assert.ok(ok.manifest.hash.length === 64, "the guard is what refused it");
  const inside = await prepareDataset(specFile, { cacheDir, dataDir: data, confineTo: data });
  assert.equal(inside.manifest.hash.length, 64);
});

test("a queue worker's train process is confined through MTLCRAFT_CONFINE_DATA: the same refusal without the option", async () => {
  const outsideSpec = join(data, "outside-env.json");
  writeFileSync(outsideSpec, JSON.stringify({ ...spec, log: "../outside.csv" }));
  const cacheDir = join(root, "cache-env");
  const before = process.env[CONFINE_DATA_ENV];
  process.env[CONFINE_DATA_ENV] = data;
  try {
    await assert.rejects(prepareDataset(outsideSpec, { cacheDir, dataDir: data }), /spec\.log \("\.\.\/outside\.csv"\) resolves outside the data folder/);
    const inside = await prepareDataset(specFile, { cacheDir, dataDir: data });
    assert.equal(inside.manifest.hash.length, 64);
  } finally {
    if (before === undefined) delete process.env[CONFINE_DATA_ENV];
    else process.env[CONFINE_DATA_ENV] = before;
  }
});
