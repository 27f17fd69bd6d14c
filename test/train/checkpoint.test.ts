import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { loadCheckpoint, saveCheckpoint } from "../../src/train/checkpoint.ts";
import { tempDir } from "../data/helpers.ts";

test("checkpoint round trip keeps every tensor bit-for-bit and the JSON state", () => {
  const dir = join(tempDir("ck"), "a");
  const f32 = Float32Array.from({ length: 13 }, (_, i) => Math.fround(i * 0.1 - 0.3));
  const f64 = Float64Array.of(Math.PI, -0, 1e-300, 5);
  const i32 = Int32Array.of(-1, 2, 2147483647);
  saveCheckpoint(dir, { json: { loop: { step: 7, name: "x" } }, tensors: { model: { w: f32, v: f64 }, best: { ids: i32 } } });
  const ck = loadCheckpoint(dir)!;
  assert.deepEqual(ck.json, { loop: { step: 7, name: "x" } });
  assert.ok(ck.tensors.model!.w instanceof Float32Array);
  assert.deepEqual(Array.from(ck.tensors.model!.w!), Array.from(f32));
  assert.ok(Object.is(ck.tensors.model!.v![1], -0));
  assert.deepEqual(Array.from(ck.tensors.model!.v!), Array.from(f64));
  assert.deepEqual(Array.from(ck.tensors.best!.ids!), Array.from(i32));
  // overwrite replaces atomically; no temporary folders are left beside it
  saveCheckpoint(dir, { json: { loop: { step: 8 } }, tensors: { model: { w: f32 } } });
  assert.deepEqual(loadCheckpoint(dir)!.json, { loop: { step: 8 } });
  assert.deepEqual(readdirSync(join(dir, "..")), ["a"]);
});

test("missing checkpoint is null; a foreign or truncated one is a clear error", () => {
  const root = tempDir("ck2");
  assert.equal(loadCheckpoint(join(root, "none")), null);
  const dir = join(root, "b");
  saveCheckpoint(dir, { json: {}, tensors: { model: { w: new Float32Array(100) } } });
  writeFileSync(join(dir, "tensors.bin"), new Uint8Array(10));
  assert.throws(() => loadCheckpoint(dir), /tensor model\/w is truncated/);
  writeFileSync(join(dir, "state.json"), JSON.stringify({ format: "other", index: [], json: {} }));
  assert.throws(() => loadCheckpoint(dir), /unknown format/);
  assert.ok(existsSync(dir));
});
