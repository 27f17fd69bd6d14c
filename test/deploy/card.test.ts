/**
 * The model card's code snippets are code users copy, run here in an exported folder (a model
 * with integer, DOUBLE, DECIMAL, text, multi-valued, numeric and dense inputs):
 * - the onnxruntime-node snippet, which encodes its example row with `mtlcraft/encoder`, runs as
 *   written (only its package specifiers are resolved to this checkout: onnxruntime-node, and
 *   src/encoder.ts compiled to JavaScript) and prints `score`'s probabilities for that row;
 * - the browser snippet is valid JavaScript (`node --check`);
 * - the Python snippet compiles (`python3 -m py_compile`) always; where Python's onnxruntime is
 *   installed it runs and prints score's probabilities; where it is not (the test's name says
 *   which), its encoding is still run, with a recording stand-in for onnxruntime that saves the
 *   feeds, and must give the encoder's ids.
 */
import { before, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import ts from "typescript";
import { createEncoder } from "../../src/encoder.ts";
import { loadModel } from "../../src/deploy/model.ts";
import { scoreRows } from "../../src/deploy/score.ts";
import { tempDir } from "../data/helpers.ts";
import { typedModel } from "./typed-model.ts";

/** The fenced code blocks of `lang` in a Markdown text, in order. */
function blocks(md: string, lang: string): string[] {
  const out: string[] = [];
  const re = new RegExp("```" + lang + "\\n([\\s\\S]*?)```", "g");
  for (let m = re.exec(md); m; m = re.exec(md)) out.push(m[1]!);
  return out;
}

const PY_ORT = spawnSync("python3", ["-c", "import onnxruntime, numpy"], { encoding: "utf8" }).status === 0;

const root = tempDir("card");
let modelDir = "";
let card = "";
let features: { fields: { name: string; multi?: { maxLen: number } }[]; tasks: { name: string; output: string }[] };

before(async () => {
  ({ modelDir } = await typedModel(root));
  card = readFileSync(join(modelDir, "README.md"), "utf8");
  features = JSON.parse(readFileSync(join(modelDir, "features.json"), "utf8")) as typeof features;
});

/** score's probabilities per task name for `rows`. */
async function scored(rows: Record<string, unknown>[]): Promise<Record<string, number[]>> {
  const m = await loadModel(modelDir);
  try {
    const out = await scoreRows(m, rows, { log: () => {} });
    return Object.fromEntries(features.tasks.map((t) => [t.name, out.map((o) => o[t.output] as number)]));
  } finally {
    await m.close();
  }
}

function close(got: Record<string, number[]>, want: Record<string, number[]>, tol: number, what: string): void {
  assert.deepEqual(Object.keys(got).sort(), Object.keys(want).sort(), `${what}: the tasks`);
  for (const [t, w] of Object.entries(want)) {
    assert.equal(got[t]!.length, w.length);
    w.forEach((p, r) => assert.ok(Math.abs(got[t]![r]! - p) <= tol, `${what}: task ${t} row ${r}: ${got[t]![r]} vs score's ${p}`));
  }
}

test("model card: the onnxruntime-node snippet (mtlcraft/encoder) runs in the folder and prints score's probabilities for its example row; the browser snippet is valid JavaScript", async () => {
  const js = blocks(card, "js").find((b) => b.includes('from "onnxruntime-node"'));
  assert.ok(js, "the card has an onnxruntime-node snippet");
  assert.ok(js.includes('from "mtlcraft/encoder"'), "it encodes with mtlcraft/encoder");
  const rowsText = /^const rows = (\[.*\]);/m.exec(js);
  assert.ok(rowsText, "the snippet has its example rows");
  const rows = JSON.parse(rowsText[1]!) as Record<string, unknown>[];
  assert.ok(features.fields.every((f) => f.name === "amount_b" || Object.keys(rows[0]!).length >= 5), "the example row has the columns");
  // mtlcraft/encoder: src/encoder.ts as JavaScript, beside the snippet
  const lib = join(root, "lib");
  mkdirSync(lib, { recursive: true });
  const encJs = join(lib, "encoder.mjs");
  writeFileSync(encJs, ts.transpileModule(readFileSync(new URL("../../src/encoder.ts", import.meta.url), "utf8"), { compilerOptions: { target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.ESNext } }).outputText);
  const script = js.replace('from "onnxruntime-node"', `from ${JSON.stringify(import.meta.resolve("onnxruntime-node"))}`).replace('from "mtlcraft/encoder"', `from ${JSON.stringify(pathToFileURL(encJs).href)}`);
  assert.ok(!script.includes('"onnxruntime-node"') && !script.includes('"mtlcraft/encoder"'), "both imports were resolved");
  writeFileSync(join(modelDir, "snippet.mjs"), script);
  const r = spawnSync(process.execPath, ["snippet.mjs"], { cwd: modelDir, encoding: "utf8", env: { ...process.env, ORT_DISABLE_TELEMETRY: "1" } });
  assert.equal(r.status, 0, `the card's onnxruntime-node snippet failed:\n${r.stderr}`);
  const printed = JSON.parse(r.stdout.trim()) as Record<string, number[]>;
  close(printed, await scored(rows), 1e-6, "onnxruntime-node snippet");

  const web = blocks(card, "js").find((b) => b.includes('from "onnxruntime-web"'));
  assert.ok(web && web.includes('from "mtlcraft/encoder"'), "the browser snippet uses mtlcraft/encoder");
  writeFileSync(join(root, "web.mjs"), web);
  const c = spawnSync(process.execPath, ["--check", join(root, "web.mjs")], { encoding: "utf8" });
  assert.equal(c.status, 0, `the browser snippet is not valid JavaScript:\n${c.stderr}`);
});

test(
  PY_ORT
    ? "model card: the Python snippet compiles and runs with Python's onnxruntime, printing score's probabilities"
    : "model card: the Python snippet compiles; Python's onnxruntime is not installed here, so it runs with a recording stand-in for onnxruntime and its feeds must be the encoder's ids",
  async () => {
    const py = blocks(card, "python");
    assert.equal(py.length, 1, "one Python snippet");
    const pyFile = join(modelDir, "snippet.py");
    writeFileSync(pyFile, py[0]!);
    const c = spawnSync("python3", ["-m", "py_compile", pyFile], { encoding: "utf8" });
    assert.equal(c.status, 0, `the card's Python snippet does not compile:\n${c.stderr}`);
    const rows = JSON.parse(/^rows = (\[.*\])$/m.exec(py[0]!)![1]!) as Record<string, unknown>[];
    if (PY_ORT) {
      const r = spawnSync("python3", ["snippet.py"], { cwd: modelDir, encoding: "utf8" });
      assert.equal(r.status, 0, `the Python snippet failed:\n${r.stderr}`);
      close(JSON.parse(r.stdout.trim()) as Record<string, number[]>, await scored(rows), 1e-5, "Python snippet");
      return;
    }
    // the stand-in: InferenceSession saves the feeds it is given (as lists) and returns zeros per output
    const stand = join(root, "standin");
    mkdirSync(stand, { recursive: true });
    writeFileSync(
      join(stand, "onnxruntime.py"),
      [
        "import json",
        "class _Out:",
        "    def __init__(self, name): self.name = name",
        "class InferenceSession:",
        "    def __init__(self, path, providers=None):",
        "        self.outputs = [t['output'] for t in json.load(open('features.json'))['tasks']]",
        "    def get_outputs(self): return [_Out(n) for n in self.outputs]",
        "    def run(self, names, feeds):",
        "        json.dump({k: v.tolist() for k, v in feeds.items()}, open('feeds.json', 'w'))",
        "        import numpy as np",
        "        n = len(next(iter(feeds.values())))",
        "        return [np.zeros(n, dtype=np.float32) for _ in self.outputs]",
        "",
      ].join("\n"),
    );
    const r = spawnSync("python3", ["snippet.py"], { cwd: modelDir, encoding: "utf8", env: { ...process.env, PYTHONPATH: stand } });
    assert.equal(r.status, 0, `the Python snippet failed with the stand-in:\n${r.stderr}`);
    const feeds = JSON.parse(readFileSync(join(modelDir, "feeds.json"), "utf8")) as Record<string, unknown>;
    const b = createEncoder(JSON.parse(readFileSync(join(modelDir, "features.json"), "utf8"))).encode(rows);
    for (const [name, x] of Object.entries(b.inputs)) {
      const want = x.type === "int64" ? Array.from(x.data, Number) : Array.from(x.data);
      const got = (feeds[name] as unknown[]).flat(2) as number[];
      if (x.type === "int64") assert.deepEqual(got, want, `input ${name}`);
      else want.forEach((w, k) => assert.ok(Math.abs(got[k]! - w) <= 1e-6, `input ${name}[${k}]`));
    }
    assert.deepEqual(Object.keys(feeds).sort(), Object.keys(b.inputs).sort());
  },
);
