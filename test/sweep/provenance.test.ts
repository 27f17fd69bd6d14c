/**
 * Provenance: the mtlcraft version and the fully resolved configuration in every result and job
 * record; a bench refuses an output folder whose results came from another version or resolved
 * configuration (listing what differs); the queue payload's provenance schema; `rediss://`;
 * a worker's dead job folders; --job-timeout on a train process.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, symlinkSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { mtlcraftVersion, provenanceDiff, provenanceOf, resolvedConfig, showValue } from "../../src/train/provenance.ts";
import { checkRunsProvenance, CONFLICTS_FILE, jobProvenance, jobTrainOptions, ProvenanceError, versionedQueueName } from "../../src/sweep/provenance.ts";
import { checkPayload } from "../../src/sweep/payload.ts";
import { connectionOptions } from "../../src/sweep/queue-url.ts";
import { jobWorkDir, removeInside } from "../../src/sweep/queue.ts";
import { cleanWorkDir } from "../../src/sweep/worker-hygiene.ts";
import { JobTimeoutError, runOne } from "../../src/sweep/runner.ts";
import { processAlive } from "../../src/util/lock.ts";
import type { Job } from "../../src/sweep/plan.ts";
import { tempDir } from "../data/helpers.ts";
import { writeTinyDataset } from "../train/tiny-data.ts";

const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string };

test("the version is the installed package's; the resolved configuration has every default and the method's and architecture's options", () => {
  assert.equal(mtlcraftVersion(), pkg.version);
  const c = resolvedConfig({ dataset: "kuairand" });
  assert.equal(c.l2, 1e-5);
  assert.equal(c.lr, 5e-4);
  assert.equal(c.batchSize, 4096);
  assert.equal(c.method, "gradcraft");
  assert.equal(c.model, "ple");
  assert.equal((c.methodOptions as Record<string, unknown>).tau, 0.1, "the method's default");
  assert.ok(Object.keys(c.modelOptions as object).length > 0, "the architecture's defaults");
  // where files are, threads and progress are not part of it
  for (const k of ["dataset", "cacheDir", "out", "checkpoint", "threads", "progress"]) assert.equal(k in c, false, k);
  assert.deepEqual(resolvedConfig({ dataset: "elsewhere", cacheDir: "/c", threads: 3, progress: "json" }), c);
  // an explicit value equal to the default resolves the same; another does not
  assert.equal(provenanceOf({ dataset: "kuairand", l2: 1e-5 }).configHash, provenanceOf({ dataset: "kuairand" }).configHash);
  assert.notEqual(provenanceOf({ dataset: "kuairand", l2: 1e-4 }).configHash, provenanceOf({ dataset: "kuairand" }).configHash);
  assert.throws(() => resolvedConfig({ dataset: "kuairand", method: "nope" }), /nope/);
});

test("differences are listed as a person reads them: mtlcraft first, then each key", () => {
  const a = provenanceOf({ dataset: "kuairand", l2: 1e-5 });
  const b = provenanceOf({ dataset: "kuairand", l2: 1e-4, methodOptions: { tau: 0.5 } });
  assert.deepEqual(provenanceDiff({ ...a, mtlcraft: "0.1.0" }, { ...b, mtlcraft: "0.2.0" }), ["mtlcraft 0.1.0 → 0.2.0", "l2: 1e-5 → 1e-4", "methodOptions.tau: 0.1 → 0.5"]);
  assert.deepEqual(provenanceDiff(a, a), []);
  assert.equal(showValue(0.00001), "1e-5");
  assert.equal(showValue(2.5e-7), "2.5e-7");
  assert.equal(showValue(0.1), "0.1");
});

test("a job's flags resolve as the train command resolves them (method-opt, tau, model-opt)", () => {
  const o = jobTrainOptions({ dataset: "d.json", model: "ple", method: "gradcraft", seed: 2, "batch-size": 64, "method-opt": ["eps=1e-8"], tau: 0.3, "model-opt": ["expertUnits=8,4"] });
  assert.deepEqual(o.methodOptions, { eps: "1e-8", tau: 0.3 });
  assert.deepEqual(o.modelOptions, { expertUnits: "8,4" });
  assert.equal(o.batchSize, 64);
  const p = jobProvenance({ options: { dataset: "d.json", method: "gradcraft", "method-opt": ["tau=0.3"] } });
  assert.equal(p.configHash, jobProvenance({ options: { dataset: "d.json", method: "gradcraft", tau: 0.3 } }).configHash);
  assert.equal(versionedQueueName("mtlcraft", "0.1.0"), "mtlcraft@0.1.0");
});

/** A runs folder with one finished result recording `provenance` (or none). */
function runsWith(job: Job, provenance: unknown, hash = "H"): string {
  const dir = tempDir("prov-runs");
  writeFileSync(join(dir, `${job.id}.json`), JSON.stringify({ config: { datasetHash: hash, ...(provenance === undefined ? {} : { provenance }) } }));
  return dir;
}

test("a runs folder with results of another version or resolved configuration is refused, naming the differences, the results and what to do", () => {
  const job: Job = { id: "ew-s1-x", method: "ew", seed: 1, options: { dataset: "d.json", model: "ple", method: "ew", seed: 1 }, point: {}, phase: "final" };
  const now = jobProvenance(job);
  // the same: accepted
  checkRunsProvenance([job], runsWith(job, now), "H");
  // results on other data are not this check's business (they are re-run)
  checkRunsProvenance([job], runsWith(job, { ...now, mtlcraft: "0.0.9" }, "OTHER"), "H");
  // another version with another default
  const old = { mtlcraft: "0.0.9", config: { ...now.config, l2: 1e-4 }, configHash: "0".repeat(64) };
  const dir = runsWith(job, old);
  assert.throws(
    () => checkRunsProvenance([job], dir, "H"),
    (e: Error) => {
      assert.ok(e instanceof ProvenanceError);
      assert.match(e.message, new RegExp(`mtlcraft 0\\.0\\.9 → ${pkg.version.replace(/\./g, "\\.")}; l2: 1e-4 → 1e-5 \\(1 result: ew-s1-x\\)`));
      assert.match(e.message, /delete those results/);
      assert.match(e.message, /another --out/);
      return true;
    },
  );
  assert.equal(readFileSync(join(dir, CONFLICTS_FILE), "utf8"), `${join(dir, "ew-s1-x.json")}\n`);
  assert.ok(existsSync(join(dir, "ew-s1-x.json")), "nothing is deleted without the user asking");
  // a result that records no provenance (written before it was recorded): refused too
  assert.throws(() => checkRunsProvenance([job], runsWith(job, undefined), "H"), /no version or resolved configuration recorded/);
});

test("bench: a local re-run over results of another version and default refuses with the listed differences; the same version reuses them", { timeout: 180_000 }, () => {
  const root = tempDir("prov-bench");
  const spec = writeTinyDataset(join(root, "data"), { seed: 1 });
  const out = join(root, "out");
  const args = ["--import", "tsx", "src/cli.ts", "bench", "--dataset", spec, "--model", "shared-bottom", "--methods", "ew", "--seeds", "1", "--out", out,
    "--model-opt", "bottomUnits=4", "--set", "max-steps=3", "--set", "batch-size=32", "--set", "emb-dim=2", "--set", "epochs=1", "--set", "patience=0",
    "--set", `cache-dir=${join(root, "cache")}`, "--jobs", "1"];
  const bench = () => spawnSync(process.execPath, args, { encoding: "utf8", timeout: 120_000 });
  const t0 = Date.now();
  const first = bench();
  assert.equal(first.status, 0, first.stderr);
  const runs = join(out, "runs");
  const result = readdirSync(runs).find((f) => /^ew-s1-\w+\.json$/.test(f))!;
  const r = JSON.parse(readFileSync(join(runs, result), "utf8")) as { config: { provenance: { mtlcraft: string; config: Record<string, unknown>; configHash: string } } };
  // the train process recorded what the bench expects: this version, the resolved configuration
  assert.equal(r.config.provenance.mtlcraft, pkg.version);
  assert.equal(r.config.provenance.config.l2, 1e-5);
  const rec = JSON.parse(readFileSync(join(runs, result.replace(/\.json$/, ".job.json")), "utf8")) as { provenance: { mtlcraft: string; configHash: string } };
  assert.deepEqual(rec.provenance, { mtlcraft: pkg.version, configHash: r.config.provenance.configHash });
  // the same version and configuration: reused, nothing runs again
  const again = bench();
  assert.equal(again.status, 0, again.stderr);
  assert.match(again.stderr, /1 of 1 jobs already finished; running 0/);
  // as if written by mtlcraft 0.0.9, whose l2 default was 1e-4
  r.config.provenance.mtlcraft = "0.0.9";
  r.config.provenance.config.l2 = 1e-4;
  writeFileSync(join(runs, result), JSON.stringify(r));
  const refused = bench();
  assert.notEqual(refused.status, 0);
  assert.match(refused.stderr, new RegExp(`mtlcraft 0\\.0\\.9 → ${pkg.version.replace(/\./g, "\\.")}; l2: 1e-4 → 1e-5 \\(1 result: ew-s1-`));
  assert.match(refused.stderr, /delete those results/);
  // nothing was run or deleted
  assert.equal(JSON.parse(readFileSync(join(runs, result), "utf8")).config.provenance.mtlcraft, "0.0.9");
  // --report-only refuses the same folder too
  const report = spawnSync(process.execPath, [...args, "--report-only"], { encoding: "utf8", timeout: 60_000 });
  assert.notEqual(report.status, 0);
  assert.match(report.stderr, /mtlcraft 0\.0\.9 →/);
  console.log(`# local provenance test: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
});

test("queue payload: provenance checked strictly (version, SHA-256, plain JSON configuration)", () => {
  const base = {
    version: 1,
    job: { id: "ew-s1-x", method: "ew", seed: 1, options: { dataset: "d.json", seed: 1 } },
    dataset: { spec: JSON.parse(readFileSync(writeTinyDataset(tempDir("prov-payload")), "utf8")) as unknown, baseDir: "/d", hash: "a".repeat(64) },
  };
  const p = jobProvenance({ options: base.job.options });
  const ok = (prov: unknown) => checkPayload({ ...base, provenance: prov });
  const msg = (prov: unknown): string => {
    try {
      ok(prov);
      return "";
    } catch (e) {
      return (e as Error).message;
    }
  };
  assert.equal(msg(p), "", "a bench's payload is accepted");
  assert.equal(msg(undefined), "", "and one without provenance (the worker refuses it, see refusal.ts)");
  assert.match(msg({ ...p, mtlcraft: "--plugin=x" }), /provenance\.mtlcraft must be a version/);
  assert.match(msg({ ...p, configHash: "xyz" }), /provenance\.configHash must be 64 hex digits/);
  assert.match(msg({ ...p, extra: 1 }), /provenance.*key.*extra/);
  assert.match(msg({ ...p, config: { a: "--plugin=/tmp/x.mjs" } }), /provenance\.config\.a must not/);
  assert.match(msg({ ...p, config: { a: { b: { c: { d: { e: { f: 1 } } } } } } }), /nested too deeply/);
});

test("rediss:// parses, and its TLS option reaches the connection (ioredis) options", async () => {
  const c = connectionOptions({ url: "rediss://:pw@queue.example.org:6380/2" });
  assert.deepEqual(c.tls, {});
  assert.equal(c.port, 6380);
  assert.equal(c.db, 2);
  assert.equal(connectionOptions({ url: "redis://127.0.0.1:6379" }).tls, undefined);
  // what BullMQ hands ioredis: a client built from these options (never connected) has TLS on
  const { Redis } = (await import("ioredis")) as unknown as { Redis: new (o: object) => { options: { tls?: object; host: string }; disconnect(): void } };
  const r = new Redis({ ...c, lazyConnect: true });
  assert.deepEqual(r.options.tls, {});
  assert.equal(r.options.host, "queue.example.org");
  r.disconnect();
});

test("a worker's dead job folders are removed at start; a held, a recent or a linked one is kept", () => {
  const work = tempDir("prov-work");
  const old = (Date.now() - 10 * 60_000) / 1000;
  const mk = (id: string, lockPid?: number): string => {
    const dir = jobWorkDir(work, id);
    mkdirSync(join(dir, "checkpoints", "x"), { recursive: true });
    writeFileSync(join(dir, "x.json.partial"), "{}");
    if (lockPid !== undefined) writeFileSync(join(dir, "checkpoints", "x.lock"), JSON.stringify({ pid: lockPid, host: "h", at: new Date().toISOString() }));
    for (const p of [join(dir, "checkpoints", "x"), join(dir, "checkpoints"), join(dir, "x.json.partial"), dir]) utimesSync(p, old, old);
    if (lockPid !== undefined) utimesSync(join(dir, "checkpoints", "x.lock"), old, old);
    return dir;
  };
  const dead = mk("dead");
  const deadLock = mk("dead-lock", 2 ** 22 + 12345); // a pid no process has
  const held = mk("held", process.pid);
  const recent = jobWorkDir(work, "recent");
  mkdirSync(recent);
  const outside = tempDir("prov-outside");
  const link = jobWorkDir(work, "link");
  symlinkSync(outside, link);
  const logs: string[] = [];
  const n = cleanWorkDir(work, (d) => removeInside(work, d), (m) => logs.push(m));
  assert.equal(n, 2, logs.join("\n"));
  assert.equal(existsSync(dead), false);
  assert.equal(existsSync(deadLock), false);
  assert.equal(existsSync(held), true, "a live process holds it");
  assert.equal(existsSync(recent), true, "too recent to be taken for dead");
  assert.equal(existsSync(outside), true, "a link is never followed");
  assert.match(logs.join("\n"), /removed 2 dead job folder/);
});

test("--job-timeout: a train process running longer is ended with its process group and reported as timed out", { timeout: 120_000 }, async () => {
  const root = tempDir("prov-timeout");
  const spec = writeTinyDataset(join(root, "data"), { seed: 1 });
  const job: Job = {
    id: "ew-s1-timeout", method: "ew", seed: 1, point: {}, phase: "final",
    options: { dataset: spec, model: "shared-bottom", method: "ew", seed: 1, "model-opt": ["bottomUnits=4"], "batch-size": 8, "emb-dim": 2, epochs: 100000, patience: 0, "cache-dir": join(root, "cache") },
  };
  const t0 = Date.now();
  let pid = 0;
  await assert.rejects(
    runOne(job, join(root, "runs"), { cwd: process.cwd(), plugins: [], exitWithParent: true, timeoutS: 8 }, () => {
      // the train process holds its result lock: its pid
      if (pid === 0) {
        try {
          pid = (JSON.parse(readFileSync(join(root, "runs", "ew-s1-timeout.json.lock"), "utf8")) as { pid: number }).pid;
        } catch {
          /* not yet */
        }
      }
    }),
    (e: Error) => e instanceof JobTimeoutError && /timed out after 8 s \(--job-timeout\)/.test(e.message),
  );
  const s = (Date.now() - t0) / 1000;
  assert.ok(s >= 8 && s < 20, `ended after ${s} s`);
  assert.ok(pid > 0, "the job ran (its lock was seen)");
  assert.equal(processAlive(pid), false, "its process is gone");
  console.log(`# timeout test: ended after ${s.toFixed(1)} s`);
});
