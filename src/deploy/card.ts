/** The model card (README.md) of an exported model folder. */
import type { Manifest } from "../data/manifest.ts";
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
  const firstOut = tasks[0]!.output;
  const example = exampleRow(ft);
  const exprs = [...ft.fields, ...ft.dense].filter((f) => "expr" in f.source).map((f) => `${JSON.stringify(f.name)}: (row) => null /* TODO: ${("expr" in f.source ? f.source.expr : "").replace(/\*\//g, "* /")} */`);
  const derive = exprs.length ? `, { derive: { ${exprs.join(", ")} } }` : "";
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
    "`features.json` holds the whole encoding: per field the value → id map (`ids`, keyed by each value's canonical key for the field's `valueType`), the bucket boundaries of numeric fields, the dense inputs' mean and std, the training log's column types, the side tables (`side_<i>.parquet`, joined on the listed log column), the task names, the dataset hash and the training configuration.",
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
    `const rows = await scoreRows(model, ${JSON.stringify([example])});  // raw log columns -> [{ ...keys, p_<task>: ..., score: ... }]`,
    "await model.close();",
    "```",
    "",
    "Any JavaScript runtime (Node, browsers, edge workers) with `mtlcraft/encoder` (`npm install mtlcraft onnxruntime-node`): the same encoding with no dependency, turning raw rows into the model's inputs (plain typed arrays) for onnxruntime-node or onnxruntime-web:",
    "",
    "(`loadModel` and `mtlcraft score` check the folder before onnxruntime opens `model.onnx`: checksums, no tensor stored outside the file, inputs and outputs as `features.json` says, every output a probability. Loading `model.onnx` directly, as below, skips those checks: do it only with a folder you trust.)",
    "",
    "```js",
    'import * as ort from "onnxruntime-node";',
    'import { createEncoder, toFeeds } from "mtlcraft/encoder";',
    'import { readFileSync } from "node:fs";',
    'const features = JSON.parse(readFileSync("features.json", "utf8"));',
    `const encoder = createEncoder(features${derive});`,
    'const session = await ort.InferenceSession.create("model.onnx");',
    `const rows = ${JSON.stringify([example])};  // raw log rows${ft.sides.length ? " with the side tables' columns joined in" : ""}`,
    "const out = await session.run(toFeeds(encoder.encode(rows), ort.Tensor));",
    "console.log(JSON.stringify(Object.fromEntries(features.tasks.map((t) => [t.name, Array.from(out[t.output].data)]))));",
    "```",
    "",
    "Browser (`npm install onnxruntime-web mtlcraft`, or serve `mtlcraft/encoder`'s `dist/encoder.js` and onnxruntime-web's `dist/` files; the wasm backend):",
    "",
    "```js",
    'import * as ort from "onnxruntime-web";',
    'import { createEncoder, toFeeds } from "mtlcraft/encoder";',
    'const features = await (await fetch("features.json")).json();',
    `const encoder = createEncoder(features${derive});`,
    'const session = await ort.InferenceSession.create("model.onnx", { executionProviders: ["wasm"] });',
    `const out = await session.run(toFeeds(encoder.encode(${JSON.stringify([example])}), ort.Tensor));  // out[${JSON.stringify(firstOut)}].data`,
    "```",
    "",
    "Python (`pip install onnxruntime numpy`), with ids you encode yourself (`key` gives a value's canonical key, as `features.json` writes them):",
    "",
    "```python",
    "import json, math, re, numpy as np, onnxruntime as ort",
    "from decimal import Decimal",
    'features = json.load(open("features.json"))',
    'sess = ort.InferenceSession("model.onnx", providers=["CPUExecutionProvider"])',
    "",
    "def key(value, vtype):",
    '    """The canonical key of a value of a column of DuckDB type vtype (None: no such value)."""',
    '    if vtype == "BOOLEAN" and isinstance(value, bool):',
    '        return "true" if value else "false"',
    '    if "INT" in vtype:  # digits, an optional sign and .0 (not 4.6, 1e1 or 0x9)',
    '        m = re.fullmatch(r"[\\t\\n\\f\\r ]*([+-]?[0-9]+)(\\.0*)?[\\t\\n\\f\\r ]*", str(value))',
    "        return str(int(m.group(1))) if m else None",
    '    if not vtype.startswith(("DECIMAL", "NUMERIC", "DOUBLE", "FLOAT")):',
    "        return str(value)",
    "    try:",
    "        x = Decimal(str(value).strip())",
    "    except Exception:",
    "        return None",
    '    if vtype.startswith("DECIMAL"):',
    '        return format((x + 0).normalize(), "f") if x.is_finite() else None  # -0.0 is 0',
    "    f = float(x)  # DOUBLE: JavaScript's String(number)",
    '    if math.isnan(f): return "NaN"',
    '    if math.isinf(f): return "Infinity" if f > 0 else "-Infinity"',
    '    if f == 0: return "0"',
    "    sign, digits, exp = Decimal(repr(f)).normalize().as_tuple()",
    '    d, n = "".join(map(str, digits)), len(digits) + exp',
    '    s = d + "0" * (n - len(d)) if len(d) <= n <= 21 else d[:n] + "." + d[n:] if 0 < n <= 21 else "0." + "0" * -n + d if -6 < n <= 0 else d[0] + ("." + d[1:] if len(d) > 1 else "") + "e" + ("+" if n > 0 else "-") + str(abs(n - 1))',
    '    return "-" + s if sign else s',
    "",
    `rows = ${JSON.stringify([example])}`,
    "n = len(rows)",
    "feeds = {}",
    'for f in features["fields"]:',
    '    col = f["source"].get("column")',
    '    values = [row.get(col) for row in rows]  # expression fields (source "expr"): compute the value yourself',
    '    if f["kind"] == "numeric":',
    '        ids = [0 if v is None or v != v else f["pointMasses"].index(v) + 1 if v in f["pointMasses"] else len(f["pointMasses"]) + 1 + sum(b <= v for b in f["boundaries"]) for v in values]',
    '    elif f.get("multi"):',
    '        m = f["multi"]',
    '        items = [[t.strip(" ") for t in str(v).split(m["separator"]) if t.strip(" ")][: m["maxLen"]] if v is not None else [] for v in values]',
    '        ids = [[f["ids"].get(t, 0) for t in it] + [-1] * (m["maxLen"] - len(it)) if it else [0] + [-1] * (m["maxLen"] - 1) for it in items]',
    "    else:",
    '        ids = [0 if v is None else f["ids"].get(key(v, f.get("valueType", "VARCHAR")), 0) for v in values]',
    '    feeds[f["input"]] = np.array(ids, dtype=np.int64)',
    'if features["denseInput"]:',
    '    x = [[0.0 if row.get(d["source"].get("column")) is None else ((math.log1p(row[d["source"]["column"]]) if d["log1p"] else row[d["source"]["column"]]) - d["mean"]) / d["std"] for d in features["dense"]] for row in rows]',
    '    feeds[features["denseInput"]] = np.array(x, dtype=np.float32)',
    "probs = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, feeds)))",
    'print(json.dumps({t["name"]: probs[t["output"]].tolist() for t in features["tasks"]}))',
    "```",
    "",
    "A row is encoded as in `features.json` (what `mtlcraft/encoder` does): a categorical field looks the canonical key of its value up in `ids` (integers as plain digits, so `9`, `\"9\"` and `\"9.0\"` are one value of an integer column; DOUBLE values as JavaScript's `String(number)`; DECIMAL values in plain notation without trailing zeros; text as it is), the OOV id when absent; a multi-valued field splits the text on its separator, trims the items, drops empty ones, keeps the first `maxLen` and pads with -1; a numeric field gets 0 for a missing value, the point mass's position (1-based) for a point mass, else `k + 1 + #{boundaries <= x}` with k point masses. Fields taken from side tables need the side table's row of the join key (join it into the row); expressions are SQL over the log's columns (see `spec`): give the encoder a `derive` function per expression field. `mtlcraft score --with-ids` writes the ids it computed, to check an encoder of your own against.",
    "",
  ];
  return lines.filter((l, i) => !(l === "" && lines[i - 1] === "")).join("\n");
}

/** Integer-like DuckDB types, whose canonical keys are plain digits. */
const NUMERIC_TYPE = /^(U?(TINY|SMALL|BIG|HUGE)?INT(EGER)?|DOUBLE|FLOAT|DECIMAL\(.*\))$/;

/**
 * A row for the card's snippets: per column-sourced field its most frequent value (id 1; a number
 * where the column is numeric and the key reads back as the same number), the first bucket
 * boundary of a numeric field, 1 for a dense input.
 */
export function exampleRow(ft: Pick<FeaturesFile, "fields" | "dense">): Record<string, string | number> {
  const row: Record<string, string | number> = {};
  const put = (c: string, v: string | number): void => {
    if (!Object.hasOwn(row, c)) Object.defineProperty(row, c, { value: v, enumerable: true, writable: true, configurable: true });
  };
  for (const f of ft.fields) {
    if (!("column" in f.source)) continue;
    if (f.kind === "numeric") {
      put(f.source.column, f.boundaries?.[0] ?? f.pointMasses?.[0] ?? 0);
      continue;
    }
    const keys = Object.entries(f.ids ?? {}).sort((a, b) => a[1] - b[1]).map(([k]) => k);
    if (f.multi) {
      put(f.source.column, keys.slice(0, 2).join(f.multi.separator));
      continue;
    }
    const k = keys[0] ?? "";
    put(f.source.column, NUMERIC_TYPE.test(f.valueType ?? "") && Number.isFinite(Number(k)) && String(Number(k)) === k && (Number.isSafeInteger(Number(k)) || !/INT/.test(f.valueType ?? "")) ? Number(k) : k);
  }
  for (const d of ft.dense) if ("column" in d.source) put(d.source.column, 1);
  return row;
}
