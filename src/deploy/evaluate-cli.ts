/**
 * The `evaluate` command (registered by src/cli.ts) and the text forms of an evaluation:
 * `formatEvaluation` (the readable table: one row per task, then each task's reliability table)
 * and `evaluationReportTable` (the bench report's comparison-table layout, src/report/table.ts,
 * with the model as its one column).
 */
import { InvalidArgumentError, type Command } from "commander";
import { checkMemoryLimit } from "../data/duckdb.ts";
import { buildComparisonTable, toMarkdown } from "../report/table.ts";
import { evaluateFile, type EvaluateResult } from "./evaluate.ts";

/** 4 decimals; "n/a" for an undefined metric. */
const f4 = (x: number | null | undefined): string => (typeof x === "number" && Number.isFinite(x) ? x.toFixed(4) : "n/a");

function int(name: string, min: number, max = Infinity) {
  return (v: string): number => {
    const n = Number(v);
    if (v.trim() === "" || !Number.isInteger(n) || n < min || n > max) throw new InvalidArgumentError(`${name} must be an integer in ${min}..${max === Infinity ? "" : max}, got "${v}"`);
    return n;
  };
}

function labelOption(v: string, prev: Record<string, string> | undefined): Record<string, string> {
  const i = v.indexOf("=");
  if (i <= 0) throw new InvalidArgumentError(`--label expects task=column, got "${v}"`);
  const task = v.slice(0, i);
  if (prev && Object.hasOwn(prev, task)) throw new InvalidArgumentError(`--label ${task}=… is given twice`);
  return { ...prev, [task]: v.slice(i + 1) };
}

/** The readable table: per-task metrics, then each task's reliability bins. */
export function formatEvaluation(r: EvaluateResult): string {
  const who = [r.trainedWith.methodLabel ?? r.trainedWith.method, r.trainedWith.architecture, r.trainedWith.seed !== undefined ? `seed ${r.trainedWith.seed}` : undefined].filter((x) => x !== undefined).join(", ");
  const lines = [
    `${r.rows} rows of ${r.input}`,
    `model ${r.model} (${who}); AUC, GAUC and log loss from its ${r.scoredFrom}; GAUC grouped by ${r.groupColumn ? `"${r.groupColumn}"` : "nothing (one group)"}`,
    "",
    "| task | label | positives | AUC | GAUC | groups used | log loss | ECE | mean p | rate |",
    "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ...r.tasks.map((t) => `| ${t.task} | ${t.label.replace(/\|/g, "\\|")} | ${t.positives} | ${f4(t.auc)} | ${f4(t.gauc)} | ${t.gaucGroups.used} | ${f4(t.logloss)} | ${f4(t.calibration.ece)} | ${f4(t.calibration.meanPred)} | ${f4(t.calibration.rate)} |`),
  ];
  for (const t of r.tasks) {
    const c = t.calibration;
    lines.push("", `calibration of ${t.task} (${c.bins.length} ${c.binning === "mass" ? "equal-mass" : "equal-width"} bins; ECE ${f4(c.ece)}, MCE ${f4(c.mce)}):`, "| bin | predictions | rows | mean p | rate |", "|---:|---|---:|---:|---:|");
    c.bins.forEach((b, k) => lines.push(`| ${k + 1} | ${c.binning === "mass" ? `${f4(b.lo)}..${f4(b.hi)}` : `[${b.lo.toFixed(2)}, ${b.hi.toFixed(2)}${k === c.bins.length - 1 ? "]" : ")"}`} | ${b.count} | ${f4(b.meanPred)} | ${f4(b.rate)} |`));
  }
  return lines.join("\n");
}

/** The report's comparison-table layout (rows "<task> AUC", "<task> GAUC", AV-A, AV-G) with the model as its one column. */
export function evaluationReportTable(r: EvaluateResult): string {
  const method = r.trainedWith.method ?? "model";
  const table = buildComparisonTable([{ method, label: r.trainedWith.methodLabel ?? method, perTask: r.tasks.map((t) => ({ task: t.task, auc: [t.auc], gauc: [t.gauc] })) }], { baseline: method, split: "the input" });
  // a single column: its RI against itself is no information
  table.rows = table.rows.filter((row) => row.unit !== "%");
  // nothing to rank against: no best / second marks
  for (const row of table.rows) for (const c of row.cells) if (c) c.mark = null;
  return toMarkdown(table);
}

export function registerEvaluateCommand(program: Command): void {
  program
    .command("evaluate")
    .description("evaluate an exported model on a labelled CSV, CSV.gz or Parquet file: per-task AUC, GAUC, log loss and calibration (reliability bins, ECE)")
    .requiredOption("--model <dir>", "exported model folder (mtlcraft export)")
    .requiredOption("--input <file>", "raw log rows with the dataset spec's log columns and the columns its tasks' labels are computed from")
    .option("--out <file>", "also write the evaluation as JSON (.json; written atomically)")
    .option("--format <format>", "stdout: table (per-task metrics and calibration tables), report (the bench report's table layout) or json", "table")
    .option("--label <task=column>", "take task's 0/1 labels from this input column instead of the model's task definition (repeatable)", labelOption)
    .option("--bins <n>", "calibration bins", int("--bins", 1, 1000), 10)
    .option("--binning <kind>", "calibration bins of equal mass (each about rows/bins predictions; for rare events) or equal width on [0, 1]", "mass")
    .option("--batch-size <n>", "rows per model run (default: the evaluation batch size the model was trained with, else 4096: the logits of a batch's rows can differ in their last bit with the batch size)", int("--batch-size", 1))
    .option("--threads <n>", "onnxruntime intra-op threads", int("--threads", 1))
    .option("--memory-limit <size>", "DuckDB memory limit while encoding, e.g. 512MB or 2GB (default 1GB)", (v: string) => {
      try {
        return checkMemoryLimit(v);
      } catch (e) {
        throw new InvalidArgumentError((e as Error).message);
      }
    })
    .addHelpText(
      "after",
      `
Labels are computed from the input as the model's dataset spec defines its tasks (recorded in
features.json, with the thresholds fitted on the training split); --label task=column replaces
one task's definition. AUC, GAUC (grouped by the spec's group column) and log loss are computed
on the model's logits, as training computes its test metrics: on the rows of the test split they
are the training run's numbers. ECE: sum over bins of (rows in bin / rows) x |rate - mean p|.

Example:
  mtlcraft evaluate --model runs/model --input test-rows.csv.gz --out eval.json`,
    )
    .action(async (o: { model: string; input: string; out?: string; format: string; label?: Record<string, string>; bins: number; binning: string; batchSize?: number; threads?: number; memoryLimit?: string }) => {
      if (!["table", "report", "json"].includes(o.format)) throw new InvalidArgumentError(`--format must be table, report or json, got "${o.format}"`);
      if (o.binning !== "mass" && o.binning !== "width") throw new InvalidArgumentError(`--binning must be mass or width, got "${o.binning}"`);
      const r = await evaluateFile(o.model, o.input, {
        ...(o.out !== undefined ? { out: o.out } : {}),
        ...(o.label ? { labels: o.label } : {}),
        bins: o.bins,
        binning: o.binning,
        ...(o.batchSize !== undefined ? { batchSize: o.batchSize } : {}),
        ...(o.threads !== undefined ? { threads: o.threads } : {}),
        ...(o.memoryLimit ? { memoryLimit: o.memoryLimit } : {}),
        log: (m) => console.error(m),
      });
      if (o.format === "json") console.log(JSON.stringify(r, (_k, v: unknown) => (typeof v === "number" && !Number.isFinite(v) ? null : v), 1));
      else console.log(o.format === "report" ? evaluationReportTable(r) : formatEvaluation(r));
      if (r.out && o.format !== "json") console.log(`\nwritten: ${r.out}`);
    });
}
