import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdirSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { checkWritable } from "../../src/util/fsx.ts";
import { tempDir } from "../data/helpers.ts";

test("checkWritable creates the folder, leaves no probe behind, and names the path when it cannot write", () => {
  const root = tempDir("fsx");
  checkWritable(join(root, "a", "b", "r.json"), "file", "--out");
  assert.deepEqual(readdirSync(join(root, "a", "b")), [], "folder created, probe removed");
  checkWritable(join(root, "ck"), "dir", "--checkpoint");
  assert.deepEqual(readdirSync(join(root, "ck")), []);
  // a path below a regular file can never be created (also when running as root)
  writeFileSync(join(root, "file"), "x");
  assert.throws(() => checkWritable(join(root, "file", "r.json"), "file", "--out"), new RegExp(`--out ${root}/file/r\\.json is not writable \\((EEXIST|ENOTDIR)`));
  assert.throws(() => checkWritable(join(root, "file", "ck"), "dir", "--checkpoint"), /--checkpoint .*file\/ck is not writable/);
  // an existing folder is not a result file
  mkdirSync(join(root, "d.json"));
  assert.throws(() => checkWritable(join(root, "d.json"), "file", "--out"), /is not writable \(it is a directory\)/);
  assert.equal(existsSync(join(root, "file", "r.json")), false);
});
