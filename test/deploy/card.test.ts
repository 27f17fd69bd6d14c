/**
 * The model card's code snippets are code users copy: the Python one must compile
 * (`python3 -m py_compile`), and the onnxruntime-node one must run as written in the model folder
 * (only its package specifier is resolved to this checkout's onnxruntime-node) and print the
 * first task's probability.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { tempDir } from "../data/helpers.ts";
import { tinyModel } from "./tiny-model.ts";

/** The fenced code blocks of `lang` in a Markdown text, in order. */
function blocks(md: string, lang: string): string[] {
  const out: string[] = [];
  const re = new RegExp("```" + lang + "\\n([\\s\\S]*?)```", "g");
  for (let m = re.exec(md); m; m = re.exec(md)) out.push(m[1]!);
  return out;
}

test("model card: the Python snippet compiles and the onnxruntime-node snippet runs in the folder, printing probabilities", async () => {
  const root = tempDir("card");
  const { modelDir } = await tinyModel(root);
  const card = readFileSync(join(modelDir, "README.md"), "utf8");

  const py = blocks(card, "python");
  assert.equal(py.length, 1, "one Python snippet");
  const pyFile = join(root, "snippet.py");
  writeFileSync(pyFile, py[0]!);
  const c = spawnSync("python3", ["-m", "py_compile", pyFile], { encoding: "utf8" });
  assert.equal(c.status, 0, `the card's Python snippet does not compile:\n${c.stderr}`);

  const js = blocks(card, "js").find((b) => b.includes('from "onnxruntime-node"'));
  assert.ok(js, "the card has an onnxruntime-node snippet");
  const ortUrl = import.meta.resolve("onnxruntime-node");
  const script = js.replace('from "onnxruntime-node"', `from ${JSON.stringify(ortUrl)}`);
  assert.notEqual(script, js, "the import was resolved");
  writeFileSync(join(modelDir, "snippet.mjs"), script);
  const r = spawnSync(process.execPath, ["snippet.mjs"], { cwd: modelDir, encoding: "utf8", env: { ...process.env, ORT_DISABLE_TELEMETRY: "1" } });
  assert.equal(r.status, 0, `the card's onnxruntime-node snippet failed:\n${r.stderr}`);
  // console.log of a Float32Array: `Float32Array(1) [ 0.49 ]`
  const inside = /Float32Array\(1\) \[([^\]]*)\]/.exec(r.stdout);
  assert.ok(inside, `it printed no Float32Array of one row: ${r.stdout}`);
  const nums = inside[1]!.split(",").map((x) => Number(x.trim()));
  assert.equal(nums.length, 1);
  for (const p of nums) assert.ok(p >= 0 && p <= 1, `printed ${p}, not a probability`);
});
