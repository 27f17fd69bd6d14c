/** The model card (README.md) of an exported model folder. */
import type { Manifest } from "../data/prepare.ts";
import type { SplitMetrics } from "../report/types.ts";
import type { LoadedArtifact } from "../train/artifact.ts";
import type { FeaturesFile } from "./features.ts";

/** 4 decimals; "n/a" for an undefined metric (a task with one class on the split: NaN, or null from a result file). */
const f4 = (x: number | null | undefined): string => (typeof x === "number" && Number.isFinite(x) ? x.toFixed(4) : "n/a");

export function modelCard(o: { features: FeaturesFile; manifest: Manifest; art: LoadedArtifact; test: SplitMetrics; graph: { nodes: number; bytes: number }; maxDiff: number }): string {
  const { features: ft, manifest: m, art, test } = o;
  const info = art.info;
  const tasks = ft.tasks;
  const recorded = info.metrics?.test;
  const fieldsTable = ft.fields
    .map((f) => {
      const src = "column" in f.source ? `column \`${f.source.column}\`` : `\`${f.source.expr}\``;
      const enc = f.kind === "numeric" ? `${(f.pointMasses ?? []).length} point masses + ${(f.boundaries ?? []).length + 1} quantile buckets` : f.multi ? `multi-valued (split on \`${f.multi.separator}\`, up to ${f.multi.maxLen}, ${f.multi.pooling} pooling)` : `categorical (${f.valueType})`;
      return `| \`${f.input}\` | ${src} | ${enc} | ${f.vocabSize} | ${f.multi ? `[batch, ${f.multi.maxLen}]` : "[batch]"} |`;
    })
    .join("\n");
  const firstIn = ft.fields[0]!;
  const firstOut = tasks[0]!.output;
  const plain = ft.fields.find((f) => f.kind === "categorical" && !f.multi && "column" in f.source);
  const lines = [
    `# ${m.name}: ${info.architecture} multi-task model (${tasks.map((t) => t.name).join(", ")})`,
    "",
    `Exported by mtlcraft on ${new Date().toISOString().slice(0, 10)} from ${art.kind === "model" ? "the model artefact" : "the training checkpoint"} \`${art.dir}\`.`,
    "",
    "## Data",
    "",
    `- Dataset **${m.name}**, content hash \`${m.hash}\` (spec + input files; \`features.json\` → \`dataset.hash\`).`,
    `- Rows: train ${m.rows.train}, val ${m.rows.val}, test ${m.rows.test}${m.droppedRows ? ` (${m.droppedRows} log rows outside every split)` : ""}.`,
    `- Split: ${JSON.stringify(m.spec.split)}.`,
    `- Group column (GAUC): \`${m.groupColumn || "(none)"}\`.`,
    `- Tasks: ${tasks.map((t) => `\`${t.name}\` (${t.kind}${t.threshold !== undefined ? `, threshold ${t.threshold}` : ""}; positive rate in train ${f4(m.labelRates.train[t.name])})`).join(", ")}.`,
    "",
    "## Model",
    "",
    `- Architecture \`${info.architecture}\`, options \`${JSON.stringify(info.modelOptions)}\`.`,
    ...(info.method !== undefined ? [`- Trained with \`${info.method}\`${info.seed !== undefined ? `, seed ${info.seed}` : ""}${info.metrics ? `, ${info.metrics.steps} steps, best epoch ${info.metrics.bestEpoch + 1} (parameters of the best validation mean AUC)` : ""}.`] : []),
    `- \`model.onnx\`: ONNX opset ${ft.model.opset}, ${o.graph.nodes} nodes, ${(o.graph.bytes / 1e6).toFixed(2)} MB (embedding tables and weights are initializers). Checked against the trainer's eval path on the test split: max |Δp| = ${o.maxDiff.toExponential(2)}.`,
    "",
    "## Test metrics",
    "",
    `Computed from \`model.onnx\` on the test split (${m.rows.test} rows)${recorded ? "; the run's own figures in brackets" : ""}.`,
    "",
    "| task | AUC | GAUC | logloss |",
    "|---|---:|---:|---:|",
    ...tasks.map((t, i) => `| ${t.name} | ${f4(test.auc[i])}${recorded ? ` (${f4(recorded.auc[i])})` : ""} | ${f4(test.gauc[i])}${recorded ? ` (${f4(recorded.gauc[i])})` : ""} | ${f4(test.logloss[i])} |`),
    "",
    "## Inputs and outputs",
    "",
    `Inputs are int64 ids, one tensor per field, with a dynamic batch dimension \`${ft.model.batchDim}\`. A multi-valued field is \`[batch, maxLen]\`: the row's ids, then -1 padding (at least one id; an empty list is the single id 0). Unknown, missing and rare values get the OOV id ${ft.oov}.${ft.denseInput ? ` The dense inputs are \`${ft.denseInput}\`, float32 [batch, ${ft.dense.length}], each standardised as in \`features.json\` → \`dense\`.` : ""}`,
    "",
    "| input | source | encoding | ids | shape |",
    "|---|---|---|---:|---|",
    fieldsTable,
    "",
    `Outputs: ${tasks.map((t) => `\`${t.output}\``).join(", ")}: the probability of each task, float32 [batch].`,
    "",
    "`features.json` holds the whole encoding: per field the raw value → id map (`ids`, values as text), the bucket boundaries of numeric fields, the dense inputs' mean and std, the training log's column types, the side tables (`side_<i>.parquet`, joined on the listed log column), the task names, the dataset hash and the training configuration.",
    "",
    "## Scoring raw logs",
    "",
    "```bash",
    "npx mtlcraft score --model . --input new-log.csv.gz --out scores.parquet   # CSV, CSV.gz or Parquet in; Parquet or CSV out",
    "npx mtlcraft fuse --model . --dataset " + (typeof info.dataset.option === "string" ? info.dataset.option : m.name) + " --objective gauc   # fusion weights chosen on validation, saved in fusion.json",
    "```",
    "",
    "## Loading the model",
    "",
    "Node.js, with the encoding done for you (the same DuckDB code path as `mtlcraft prepare`):",
    "",
    "```js",
    'import { loadModel, scoreRows } from "mtlcraft";',
    'const model = await loadModel("path/to/this/folder");',
    "const rows = await scoreRows(model, [{ /* raw log columns */ }]);  // [{ ...keys, p_<task>: ..., score: ... }]",
    "await model.close();",
    "```",
    "",
    "onnxruntime-node, with ids you encoded yourself:",
    "",
    "(`loadModel` and `mtlcraft score` check the folder before onnxruntime opens `model.onnx`: checksums, no tensor stored outside the file, inputs and outputs as `features.json` says, every output a probability. Loading `model.onnx` directly, as below, skips those checks: do it only with a folder you trust.)",
    "",
    "```js",
    'import * as ort from "onnxruntime-node";',
    'import { readFileSync } from "node:fs";',
    'const features = JSON.parse(readFileSync("features.json", "utf8"));',
    'const session = await ort.InferenceSession.create("model.onnx");',
    plain ? `const id = (field, value) => (Object.hasOwn(field.ids, String(value)) ? field.ids[String(value)] : features.oov);` : "",
    "const feeds = {};",
    "for (const f of features.fields) {",
    "  const shape = f.multi ? [1, f.multi.maxLen] : [1];",
    "  feeds[f.input] = new ort.Tensor(\"int64\", new BigInt64Array(shape.reduce((a, b) => a * b)), shape);  // fill with the row's ids (multi: -1 padded)",
    "}",
    ft.denseInput ? `feeds[${JSON.stringify(ft.denseInput)}] = new ort.Tensor("float32", new Float32Array(${ft.dense.length}), [1, ${ft.dense.length}]);` : "",
    "const out = await session.run(feeds);",
    `console.log(out[${JSON.stringify(firstOut)}].data);  // probability of ${tasks[0]!.name}`,
    "```",
    "",
    "Python (`pip install onnxruntime numpy`):",
    "",
    "```python",
    "import json, numpy as np, onnxruntime as ort",
    'features = json.load(open("features.json"))',
    'sess = ort.InferenceSession("model.onnx", providers=["CPUExecutionProvider"])',
    "n = 2  # rows",
    "feeds = {}",
    'for f in features["fields"]:',
    '    shape = (n, f["multi"]["maxLen"]) if f.get("multi") else (n,)',
    '    feeds[f["input"]] = np.zeros(shape, dtype=np.int64)  # ids: f["ids"].get(str(value), features["oov"])',
    ...(ft.denseInput ? [`feeds[${JSON.stringify(ft.denseInput)}] = np.zeros((n, ${ft.dense.length}), dtype=np.float32)`] : []),
    "probs = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, feeds)))",
    `print(probs[${JSON.stringify(firstOut)}])`,
    "```",
    "",
    "Browser (`npm install onnxruntime-web`; the wasm backend):",
    "",
    "```js",
    'import * as ort from "onnxruntime-web";',
    'const features = await (await fetch("features.json")).json();',
    'const session = await ort.InferenceSession.create("model.onnx", { executionProviders: ["wasm"] });',
    `const feeds = { ${JSON.stringify(firstIn.input)}: new ort.Tensor("int64", BigInt64Array.from([0n]), [1]) /* , ... one per field */ };`,
    `const out = await session.run(feeds);  // out[${JSON.stringify(firstOut)}].data`,
    "```",
    "",
    "A row is encoded as in `features.json`: for a categorical field look its value up in `ids` (as text; use `Object.hasOwn`, and the OOV id when absent); a multi-valued field splits the text on its separator, trims the items, drops empty ones, keeps the first `maxLen` and pads with -1; a numeric field gets 0 for a missing value, the point mass's position (1-based) for a point mass, else `k + 1 + #{boundaries <= x}` with k point masses. Fields taken from side tables need the side table's row of the join key; expressions are SQL over the log's columns (see `spec`). `mtlcraft score --with-ids` writes the ids it computed, to check an encoder of your own against.",
    "",
  ];
  return lines.filter((l, i) => !(l === "" && lines[i - 1] === "")).join("\n");
}
