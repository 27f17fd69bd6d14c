/** The queue backend's pure parts: job ids, connection URLs and their redaction, payload checks, diagnostics summaries, job folders. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { checkPayload, jobWorkDir, packDir, queueJobId, removeInside, summarizeDiagnostics, unpackDir } from "../../src/sweep/queue.ts";
import { tempDir } from "../data/helpers.ts";
import { connectionOptions, redactArgs, redactUrl } from "../../src/sweep/queue-url.ts";
import type { Job } from "../../src/sweep/plan.ts";
import type { DiagnosticsPoint } from "../../src/report/types.ts";

const job: Job = { id: "ew-s1-abc", method: "ew", seed: 1, options: { dataset: "/a/tiny.json", "cache-dir": "/a/cache", epochs: 2, "model-opt": ["x=1"], seed: 1 }, point: {}, phase: "final" };
const H = "a".repeat(64);

test("queue job ids: a hash of the full configuration and the dataset content hash, not of local paths", () => {
  const id = queueJobId(job, H);
  assert.match(id, /^ew-s1-[0-9a-f]{20}$/);
  assert.doesNotMatch(id, /:/, "BullMQ ids cannot contain ':'");
  assert.equal(queueJobId({ ...job, options: { ...job.options, dataset: "/elsewhere/tiny.json", "cache-dir": "/b" } }, H), id, "paths of the enqueuing machine do not matter");
  assert.equal(queueJobId({ ...job, options: { seed: 1, "model-opt": ["x=1"], epochs: 2, dataset: "d" } }, H), id, "key order does not matter");
  assert.notEqual(queueJobId(job, "b".repeat(64)), id, "other data, another job");
  assert.notEqual(queueJobId({ ...job, options: { ...job.options, epochs: 3 } }, H), id);
  assert.notEqual(queueJobId({ ...job, options: { ...job.options, "model-opt": ["x=2"] } }, H), id);
  assert.notEqual(queueJobId({ ...job, seed: 2, options: { ...job.options, seed: 2 } }, H), id);
});

test("connection URLs: parsed to connection options; passwords redacted in every message", () => {
  assert.deepEqual(connectionOptions({ url: "redis://127.0.0.1:6380" }), { host: "127.0.0.1", port: 6380, connectTimeout: 10_000 });
  assert.deepEqual(connectionOptions({ url: "redis://u:p%40ss@h:1/2" }), { host: "h", port: 1, username: "u", password: "p@ss", db: 2, connectTimeout: 10_000 });
  assert.equal((connectionOptions({ url: "redis://:inurl@h:1", password: "fromenv" }) as { password: string }).password, "fromenv");
  assert.ok("tls" in connectionOptions({ url: "rediss://h" }));
  for (const bad of ["http://h:1", "h:6379", "redis://h:1/x"]) assert.throws(() => connectionOptions({ url: bad }), /--queue/);
  assert.throws(() => connectionOptions({ url: "http://:topsecret@h" }), (e: Error) => !e.message.includes("topsecret"));
  assert.equal(redactUrl("redis://:topsecret@10.0.0.5:6379"), "redis://:***@10.0.0.5:6379");
  assert.equal(redactUrl("redis://admin:topsecret@h:1/0"), "redis://***:***@h:1/0");
  assert.equal(redactUrl("redis://h:1"), "redis://h:1");
  assert.ok(!redactUrl("redis://:top secret@h:1").includes("top"));
  assert.deepEqual(redactArgs(["bench", "--queue", "redis://:topsecret@h:1", "--out", "x"]), ["bench", "--queue", "redis://:***@h:1", "--out", "x"]);
  assert.deepEqual(redactArgs(["--queue=rediss://u:pw@h:1"]), ["--queue=rediss://***:***@h:1"]);
});

test("a worker accepts only mtlcraft jobs with plain train options (no plugins, outputs or threads from the queue)", () => {
  const spec = { name: "tiny", log: "log.csv", categorical: ["u"], tasks: [{ name: "click", kind: "column", column: "click" }], split: { kind: "fraction", train: 0.6, val: 0.2, test: 0.2, seed: 1 } };
  const ok = { version: 1, job: { id: "ew-s1-abc", method: "ew", seed: 1, options: { dataset: "d", model: "ple", method: "ew", seed: 1, epochs: 2, "model-opt": ["a=1"] } }, dataset: { spec, baseDir: "/x", hash: H } };
  assert.equal(checkPayload(ok).job.id, "ew-s1-abc");
  const withOpt = (k: string, v: unknown) => ({ ...ok, job: { ...ok.job, options: { ...ok.job.options, [k]: v } } });
  assert.throws(() => checkPayload(withOpt("plugin", "/tmp/x.mjs")), /set by the worker/);
  assert.throws(() => checkPayload(withOpt("out", "/etc/x")), /set by the worker/);
  assert.throws(() => checkPayload(withOpt("threads", 8)), /set by the worker/);
  assert.throws(() => checkPayload(withOpt("bogus", 1)), /unknown train option|bogus/);
  assert.throws(() => checkPayload(withOpt("epochs", { x: 1 })), /job\.options\.epochs must be an integer/);
  assert.throws(() => checkPayload({ ...ok, job: { ...ok.job, id: "../../x" } }), /bad job id/);
  assert.throws(() => checkPayload({ ...ok, version: 2 }), /not an mtlcraft job/);
  assert.throws(() => checkPayload({ ...ok, dataset: { ...ok.dataset, hash: "zz" } }), /dataset\.hash must be 64 hex digits/);
});

test("diagnostics are summarised into at most N bucket means; the all-steps means are kept", () => {
  const T = 2;
  const diag: DiagnosticsPoint[] = Array.from({ length: 1000 }, (_, i) => ({
    step: (i + 1) * 10,
    losses: [1 / (i + 1), 2],
    weights: [0.5, 0.5],
    norms: [i, 2 * i],
    cosines: [1, Math.sin(i), Math.sin(i), 1],
    conflicts: i % 2,
  }));
  const s = summarizeDiagnostics(diag, 100);
  assert.equal(s.length, 100);
  assert.equal(s[0]!.step, 100);
  assert.equal(s[99]!.step, 10_000);
  assert.deepEqual(s[0]!.norms, [4.5, 9]);
  assert.equal(s[0]!.conflicts, 0.5);
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  assert.ok(Math.abs(mean(s.map((d) => d.cosines[1]!)) - mean(diag.map((d) => d.cosines[1]!))) < 1e-6);
  assert.equal(s[0]!.cosines.length, T * T);
  assert.ok(JSON.stringify(s).length < JSON.stringify(diag).length / 5);
  // short runs are kept as they are; weights stay null for gradient methods
  const short = diag.slice(0, 5).map((d) => ({ ...d, weights: null }));
  assert.deepEqual(summarizeDiagnostics(short, 100).map((d) => d.step), [10, 20, 30, 40, 50]);
  assert.equal(summarizeDiagnostics(short, 100)[0]!.weights, null);
  assert.deepEqual(summarizeDiagnostics([], 100), []);
});

test("a model artefact folder travels as one gzipped buffer and is rebuilt byte for byte; bad names are refused", () => {
  const src = join(tempDir("pack"), "x.model");
  mkdirSync(src);
  writeFileSync(join(src, "state.json"), '{"a":1}');
  writeFileSync(join(src, "tensors.bin"), Buffer.from(Float32Array.from({ length: 1000 }, (_, i) => Math.sin(i)).buffer));
  writeFileSync(join(src, "empty"), "");
  const buf = packDir(src);
  const dst = join(tempDir("unpack"), "y.model");
  unpackDir(buf, dst);
  assert.deepEqual(readdirSync(dst).sort(), ["empty", "state.json", "tensors.bin"]);
  for (const f of readdirSync(src)) assert.deepEqual(readFileSync(join(dst, f)), readFileSync(join(src, f)), f);
  const evil = gzipSync(Buffer.concat([Buffer.from(JSON.stringify([["../escape", 1]]) + "\n"), Buffer.from("x")]));
  assert.throws(() => unpackDir(evil, join(tempDir("evil"), "z.model")), /bad entry/);
  const short = gzipSync(Buffer.concat([Buffer.from(JSON.stringify([["a", 10]]) + "\n"), Buffer.from("x")]));
  assert.throws(() => unpackDir(short, join(tempDir("short"), "z.model")), /bad entry/);
});

test("a queue job's folder is named by a hash of its BullMQ id; a folder is removed only when its real path lies inside the work folder", () => {
  const root = tempDir("workdir");
  const work = join(root, "work");
  mkdirSync(work);
  for (const id of ["../../victim", "/etc", "..", "a/../../b", "x"]) {
    const d = jobWorkDir(work, id);
    assert.match(d, /\/work\/job-[0-9a-f]{24}$/, id);
  }
  assert.notEqual(jobWorkDir(work, "a"), jobWorkDir(work, "b"));
  // removed: a folder inside
  const inside = join(work, "job-1");
  mkdirSync(join(inside, "deep"), { recursive: true });
  removeInside(work, inside);
  assert.equal(existsSync(inside), false);
  removeInside(work, join(work, "missing")); // nothing to do
  // refused: the work folder itself, anything outside, and a link inside that leads outside
  const victim = join(root, "victim");
  mkdirSync(victim);
  writeFileSync(join(victim, "keep.txt"), "x");
  assert.throws(() => removeInside(work, work), /not inside the work folder/);
  assert.throws(() => removeInside(work, join(work, "..", "victim")), /not inside the work folder/);
  symlinkSync(victim, join(work, "job-link"));
  assert.throws(() => removeInside(work, join(work, "job-link")), /not inside the work folder/);
  symlinkSync(join(root, "gone"), join(work, "job-dangling"));
  assert.throws(() => removeInside(work, join(work, "job-dangling")), /leads nowhere/);
  assert.equal(readFileSync(join(victim, "keep.txt"), "utf8"), "x");
});
