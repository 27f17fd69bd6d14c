import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { checkFingerprint, fingerprintDiff, loadCheckpoint, saveCheckpoint } from "../../src/train/checkpoint.ts";
import { tempDir } from "../data/helpers.ts";

const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

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
  assert.throws(() => loadCheckpoint(dir), new RegExp(`${esc(join(dir, "tensors.bin"))} is corrupt \\(sha256`));
  writeFileSync(join(dir, "checksums.json"), JSON.stringify({ format: "other", sha256: {} }));
  assert.throws(() => loadCheckpoint(dir), /unknown format other/);
  rmSync(join(dir, "checksums.json"));
  writeFileSync(join(dir, "state.json"), JSON.stringify({ format: "mtlcraft-checkpoint-1", index: [], json: {} }));
  assert.throws(() => loadCheckpoint(dir), /checksums\.json is missing \(written by an older mtlcraft, without checksums\); delete that folder/);
  assert.ok(existsSync(dir));
});

test("a flipped byte in tensors.bin or state.json is refused, naming the file", () => {
  const root = tempDir("ck3");
  const tensors = { model: { w: Float32Array.from({ length: 64 }, (_, i) => i / 7) } };
  for (const file of ["tensors.bin", "state.json"]) {
    const dir = join(root, file);
    saveCheckpoint(dir, { json: { loop: { step: 12, seed: 3 } }, tensors });
    assert.ok(loadCheckpoint(dir), "intact checkpoint loads");
    const p = join(dir, file);
    const b = readFileSync(p);
    // a byte inside the data: for state.json a digit of the step (still valid JSON, so only the checksum can tell)
    const at = file === "state.json" ? b.indexOf("12") : 101;
    b[at] = file === "state.json" ? "3".charCodeAt(0) : b[at]! ^ 0x01;
    writeFileSync(p, b);
    assert.throws(() => loadCheckpoint(dir), new RegExp(`checkpoint ${esc(dir)}: ${esc(p)} is corrupt \\(sha256 [0-9a-f]{12}… does not match the recorded [0-9a-f]{12}…\\); delete that folder to start over`));
  }
});

test("fingerprint diff lists every differing key, nested keys dotted, old → new", () => {
  const a = { datasetHash: "h1", model: "ple", modelOptions: { expertUnits: [64, 32], levels: 1 }, seed: 1, batchSize: 2048 };
  const b = { datasetHash: "h2", model: "ple", modelOptions: { expertUnits: [64, 32], levels: 2 }, seed: 1, batchSize: 1024, lr: 0.1 };
  assert.deepEqual(fingerprintDiff(a, b), ['batchSize: 2048 → 1024', 'datasetHash: "h1" → "h2"', "lr: (unset) → 0.1", "modelOptions.levels: 1 → 2"]);
  assert.deepEqual(fingerprintDiff(a, structuredClone(a)), []);
  assert.doesNotThrow(() => checkFingerprint("d", a, structuredClone(a)));
  assert.throws(() => checkFingerprint("d", a, b), /checkpoint d was written by a different run.*\n {2}batchSize: 2048 → 1024\n {2}datasetHash/s);
  assert.throws(() => checkFingerprint("d", null, b), /records no run fingerprint/);
});
