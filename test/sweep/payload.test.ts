/** The queue payload schema (src/sweep/payload.ts): every key known, every option its exact type, no flag text. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { checkPayload, PayloadError } from "../../src/sweep/payload.ts";

const H = "a".repeat(64);
const spec = {
  name: "tiny",
  log: "log.csv",
  categorical: ["u", "i"],
  tasks: [{ name: "click", kind: "column", column: "click" }],
  split: { kind: "fraction", train: 0.6, val: 0.2, test: 0.2, seed: 1 },
};
const options = { dataset: "/a/tiny.json", "cache-dir": "/a/cache", model: "ple", method: "ew", seed: 1, epochs: 2, lr: 0.001, scope: "shared", "model-opt": ["a=1", "b=2"], "method-opt": "tau=0.5" };
const ok = { version: 1, job: { id: "ew-s1-abc", method: "ew", seed: 1, options }, dataset: { spec, baseDir: "/x", hash: H } };

const withOpt = (k: string, v: unknown) => ({ ...ok, job: { ...ok.job, options: { ...options, [k]: v } } });
const refused = (x: unknown, re: RegExp) =>
  assert.throws(() => checkPayload(x), (e: Error) => {
    assert.ok(e instanceof PayloadError, `${e.name}: ${e.message}`);
    assert.match(e.message, re);
    return true;
  });

test("a payload as bench writes it is accepted", () => {
  assert.equal(checkPayload(ok).job.options.lr, 0.001);
  assert.equal(checkPayload({ ...ok, stallsSeen: 1, dataset: { ...ok.dataset, builtin: "kuairand" } }).stallsSeen, 1);
});

test("unknown keys are refused at every level, with a suggestion", () => {
  refused({ ...ok, extra: 1 }, /payload: unknown key "extra"/);
  refused({ ...ok, job: { ...ok.job, optons: {} } }, /job: unknown key "optons"; did you mean "options"\?/);
  refused({ ...ok, dataset: { ...ok.dataset, hsh: H } }, /dataset: unknown key "hsh"; did you mean "hash"\?/);
  refused(withOpt("learning-rate", 1), /job\.options: unknown train option "learning-rate"/);
  refused(withOpt("batchsize", 8), /did you mean "batch-size"\?/);
  refused({ ...ok, dataset: { ...ok.dataset, spec: { ...spec, tasks: [{ name: "click", kind: "column", column: "click", colour: 1 }] } } }, /dataset\.spec\.tasks\[0\]/);
});

test("each option has the exact type of its train field: numbers are numbers, ints integers, choices their values; no booleans", () => {
  refused(withOpt("method", true), /job\.options\.method must be a string, got true/);
  refused(withOpt("lr", "0.001"), /job\.options\.lr must be a number, got "0\.001"/);
  refused(withOpt("epochs", 2.5), /job\.options\.epochs must be an integer/);
  refused(withOpt("epochs", 0), /job\.options\.epochs must be >= 1/);
  refused(withOpt("dropout", 2), /job\.options\.dropout must be <= 0\.95/);
  refused(withOpt("scope", "everything"), /job\.options\.scope must be one of shared, shared-dense, all/);
  refused(withOpt("patience", false), /job\.options\.patience must be an integer, got false/);
  refused(withOpt("epochs", [2]), /job\.options\.epochs must be an integer/);
  refused(withOpt("seed", 2), /job\.options\.seed \(2\) differs from job\.seed \(1\)/);
  refused(withOpt("model", "../x"), /job\.options\.model must be a name/);
  // options the worker sets itself
  for (const k of ["plugin", "out", "checkpoint", "threads", "progress"]) refused(withOpt(k, "x"), /is set by the worker/);
});

test("no value that is flag text: a leading '-', a '--' anywhere, a control character; map entries are key=value", () => {
  refused(withOpt("lr", "--plugin=/tmp/x.mjs"), /job\.options\.lr must be a number, got "--plugin=/);
  refused(withOpt("model", "-x"), /job\.options\.model must not start with "-"/);
  refused(withOpt("method", "ew --plugin x"), /job\.options\.method must not hold "--"/);
  refused(withOpt("model-opt", ["a=1", "--plugin=/tmp/x.mjs"]), /job\.options\.model-opt\[1\] must be "key=value"/);
  refused(withOpt("model-opt", ["a=--plugin"]), /job\.options\.model-opt\[0\] must not hold "--"/);
  refused(withOpt("method-opt", "tau=1\nx"), /job\.options\.method-opt holds a control character/);
  refused(withOpt("model-opt", []), /model-opt must be "key=value" or a list of 1 to 100/);
  refused(withOpt("model-opt", [1]), /model-opt\[0\] must be "key=value"/);
  refused(withOpt("dataset", "-x.json"), /job\.options\.dataset must not start with "-"/);
});

test("job id, method and seed are typed; the dataset names only a built-in a worker has, a SHA-256 and a valid spec", () => {
  refused({ ...ok, job: { ...ok.job, id: "../../x" } }, /bad job id/);
  refused({ ...ok, job: { ...ok.job, id: ".." } }, /bad job id/);
  refused({ ...ok, job: { ...ok.job, method: 1 } }, /job\.method must be a name/);
  refused({ ...ok, job: { ...ok.job, method: "--plugin" } }, /job\.method must be a name/);
  refused({ ...ok, job: { ...ok.job, seed: "1" } }, /job\.seed must be an integer in \[0, 2\^32\)/);
  refused({ ...ok, job: { ...ok.job, seed: 2 ** 32 } }, /job\.seed must be an integer/);
  refused({ ...ok, job: { ...ok.job, options: [] } }, /job\.options must be an object/);
  refused({ ...ok, dataset: { ...ok.dataset, builtin: "wechat:/etc" } }, /dataset\.builtin must be one of kuairand/);
  refused({ ...ok, dataset: { ...ok.dataset, hash: "ab".repeat(16) } }, /dataset\.hash must be 64 hex digits/);
  refused({ ...ok, dataset: { ...ok.dataset, baseDir: 7 } }, /dataset\.baseDir must be a string/);
  refused({ ...ok, dataset: { ...ok.dataset, spec: null } }, /dataset\.spec must be an object/);
  refused({ ...ok, dataset: { ...ok.dataset, spec: { ...spec, name: "../x" } } }, /dataset\.spec\.name/);
  refused({ ...ok, stallsSeen: -1 }, /stallsSeen must be a whole number/);
  refused({ ...ok, version: 2 }, /not an mtlcraft job/);
  refused("x", /not an mtlcraft job/);
  refused({ ...ok, job: { ...ok.job, options: { ...options, "method-opt": Array.from({ length: 101 }, (_, i) => `k${i}=1`) } } }, /1 to 100/);
});

test("messages quote at most a short piece of a value", () => {
  assert.throws(() => checkPayload(withOpt("model", `x${"y".repeat(5000)}`)), (e: Error) => e.message.length < 300);
});
