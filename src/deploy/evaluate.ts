/**
 * Evaluating an exported model on a labelled file (`mtlcraft evaluate`, `evaluateFile`).
 *
 * The input (CSV, CSV.gz or Parquet with the raw log columns of the model's dataset spec, labels
 * included) is encoded exactly as `score` encodes it (src/data/encode.ts: features.json's
 * vocabularies, buckets and side tables); the model folder is loaded and checked by `loadModel`
 * (checksums, real paths, strict schemas, model.onnx's external data and signature), as for score.
 *
 * Labels come from the model's own task definitions: features.json holds the dataset spec
 * (`spec.tasks`: a 0/1 column, a watch-time threshold, complete view or a SQL condition) and the
 * thresholds fitted on the training split (`tasks[].threshold`), so each label is computed from
 * the input's raw columns as prepare computed it. `labels` (`--label task=column`) replaces a
 * task's definition by a 0/1 column of the input (labels computed elsewhere). Label values are
 * checked as prepare checks them: a label column must hold 0 or 1 (1.0, true and false too), a
 * watch time a number >= 0, a duration a number >= 0 (missing: CV label 0, with a warning); a bad
 * value is an error naming the file, the column, the first bad data row (1-based) and the count,
 * never the value. The rows are grouped for GAUC by the spec's group column (the one training
 * used), its values cast to their training type and numbered in sorted order as prepare numbers
 * them; a missing group value joins group 0, as in prepare.
 *
 * Scoring: the metrics are computed as the trainer computes its test metrics (src/train/evaluate.ts):
 * AUC and GAUC on the logits and the log loss from the logits (`loglossFromLogits`), so that on
 * the rows of the test split they reproduce the training run's numbers bit for bit. To get the
 * logits, the verified model.onnx is opened a second time with each task's probability output's
 * Sigmoid input added as an output (a model whose outputs are not Sigmoids, not written by
 * mtlcraft, is scored from its probabilities: `scoredFrom: "probabilities"`, log loss clipped at
 * 1e-7), in a session with ONNX Runtime's weight prepacking off: with prepacking, MLAS multiplies
 * constant weights by another kernel, whose float32 sums differ from the trainer's (weights fed as
 * inputs) in the last bit for about 40 % of the logits (measured on the tiny test model); without
 * it the logits are the trainer's, bit for bit (the test proves it). One limit: a multi-valued
 * field's mean or sum of embeddings is pooled in float32 inside model.onnx and in float64 by the
 * trainer, so for models with list features the logits can differ in their last bit (on the
 * KuaiRand test split, 43,268 rows, with its tag lists: AUC and GAUC still equal, log loss within 3e-14).
 * The calibration table is computed on the probabilities model.onnx serves (what a ranking
 * system reads), see src/metrics/calibration.ts.
 *
 * Memory: the encoded rows stay in DuckDB on disk (a work folder in the temporary directory,
 * removed at the end and on SIGINT/SIGTERM); JavaScript holds the scores, logits, labels and
 * groups of every row (what AUC needs): about 9·T + 4 bytes per row for T tasks.
 * Output: the result object; with `out` also a JSON file (`mtlcraft-evaluate` version 1), written
 * to a temporary sibling and renamed, after the output checks `score` makes (never the input,
 * never inside the model folder or another mtlcraft folder, only over a regular file; locked).
 */
import { existsSync, mkdtempSync, realpathSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import onnxProto from "onnx-proto";
import { DataError } from "../data/errors.ts";
import { encodeRows, openWorkDb } from "../data/encode.ts";
import { compileExpr } from "../data/expr.ts";
import { describe, num, type Db } from "../data/duckdb.ts";
import { quoteIdent, specTimeZone, type TaskSpec } from "../data/spec.ts";
import { engineOptions, ort } from "../engine/ort.ts";
import { auc } from "../metrics/auc.ts";
import { gauc } from "../metrics/gauc.ts";
import { logloss, loglossFromLogits } from "../metrics/logloss.ts";
import { calibration, type Binning, type CalibrationBin } from "../metrics/calibration.ts";
import { checkOutput } from "../util/outpath.ts";
import { acquireLock } from "../util/lock.ts";
import { writeFileAtomic } from "../util/fsx.ts";
import { registerTemp, unregisterTemp } from "../util/tempdirs.ts";
import { didYouMean } from "../util/suggest.ts";
import type { FeaturesFile } from "./features.ts";
import { loadModel, readVerified } from "./model.ts";
import { checkOnnxModel } from "./onnx-check.ts";

const { onnx } = onnxProto;

export const EVALUATE_FORMAT = "mtlcraft-evaluate";
export const EVALUATE_VERSION = 1;

export interface EvaluateOptions {
  /** JSON output file (written atomically); none: the result is only returned. */
  out?: string;
  /** task -> input column holding its 0/1 label, replacing the model's definition of that task. */
  labels?: Record<string, string>;
  /** Calibration bins (default 10) and binning (default "mass"; see src/metrics/calibration.ts). */
  bins?: number;
  binning?: Binning;
  /** Rows per model run (default: the training run's evaluation batch size, recorded in features.json, else 4096; see trainedEvalBatch). */
  batchSize?: number;
  /** onnxruntime intra-op threads (default: the engine's). */
  threads?: number;
  /** DuckDB memory limit while encoding (default "1GB"). */
  memoryLimit?: string;
  log?: (msg: string) => void;
}

export interface TaskEvaluation {
  task: string;
  /** Where the label came from: the model's definition (`column "click"`, `watch "play_ms" > 12000`, ...) or `--label column "x"`. */
  label: string;
  rows: number;
  positives: number;
  /** NaN (null in JSON) when undefined: one class only (AUC), no group with both classes (GAUC). */
  auc: number;
  gauc: number;
  gaucGroups: { used: number; skipped: number };
  logloss: number;
  calibration: { binning: Binning; bins: CalibrationBin[]; ece: number; mce: number; meanPred: number; rate: number };
}

export interface EvaluateResult {
  format: typeof EVALUATE_FORMAT;
  version: number;
  model: string;
  input: string;
  rows: number;
  /** Column the GAUC groups come from ("" when the spec has none: one group). */
  groupColumn: string;
  /** What AUC, GAUC and log loss were computed on (see the module comment). */
  scoredFrom: "logits" | "probabilities";
  /** The training run recorded in features.json (method, seed, architecture), for the reader. */
  trainedWith: { architecture: string; method?: string; methodLabel?: string; seed?: number };
  tasks: TaskEvaluation[];
  warnings: string[];
  /** The JSON file written, when `out` was given. */
  out?: string;
}

/** The row id and group columns of the label query (names no dataset uses). */
const RID = "mtlcraft.evaluate.rid";
const GRP = "mtlcraft.evaluate.group";

const INTEGER_TYPES = new Set(["TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT", "UHUGEINT"]);
/** DuckDB type names as DESCRIBE writes them (a type from features.json is checked before it reaches SQL). */
const TYPE_RE = /^[A-Z][A-Z0-9_]*( [A-Z][A-Z0-9_]*)*(\(\d+(, ?\d+)?\))?(\[\])*$/;

/** A value of column `q` as its training type `to`, or NULL when it is not one as it is (no rounding: 42.7 is no BIGINT). */
function strictCast(q: string, to: string | undefined): string {
  if (to === undefined) return q;
  if (!TYPE_RE.test(to)) throw new DataError(`features.json: "${to.slice(0, 40)}" is not a DuckDB type name`);
  const text = `CAST(${q} AS VARCHAR)`;
  if (INTEGER_TYPES.has(to)) return `CASE WHEN regexp_full_match(${text}, '\\s*[+-]?[0-9]+(\\.0*)?\\s*') THEN TRY_CAST(trim(${text}) AS DOUBLE)::${to} END`;
  return `TRY_CAST(${q} AS ${to})`;
}

/** A 0/1 label from a column as read: 0, 1 (1.0, +1, 001), true or false; anything else (missing too) NULL. */
function binarySql(q: string): string {
  const t = `lower(trim(CAST(${q} AS VARCHAR)))`;
  return `CASE WHEN regexp_full_match(${t}, '\\+?0*1(\\.0*)?|true') THEN 1 WHEN regexp_full_match(${t}, '[+-]?0+(\\.0*)?|false') THEN 0 END`;
}

/** What a checked label value problem reads as, and where: one aggregate per check. */
interface Check {
  column: string;
  /** SQL condition for a bad row (over `src`). */
  bad: string;
  what: string;
}

interface LabelPlan {
  /** The 0/1 label as SQL over the input's columns. */
  sql: string;
  checks: Check[];
  /** Input columns it reads. */
  columns: string[];
  /** Where the label comes from, in words (the output's `label`). */
  text: string;
  /** CV: missing durations give label 0 (a warning counts them). */
  nullDurations?: { column: string; sql: string };
}

/**
 * The label of task k as SQL over `src` (whose columns are the input's, cast to their training
 * types where a label reads them), and the value checks it needs.
 */
async function labelPlan(
  db: Db,
  t: TaskSpec,
  k: number,
  threshold: number | undefined,
  override: string | undefined,
  inputColumns: readonly string[],
  file: string,
): Promise<LabelPlan> {
  const need = (c: string, forWhat: string): string => {
    if (!inputColumns.includes(c)) throw new DataError(`${file} has no column "${c}", which ${forWhat} needs; columns: ${inputColumns.join(", ")}`, { file, column: c });
    return quoteIdent(c);
  };
  const numeric = (c: string, forWhat: string, nullOk: boolean): Check[] => {
    const q = need(c, forWhat);
    return [
      ...(nullOk ? [] : [{ column: c, bad: `${q} IS NULL`, what: "missing" }]),
      { column: c, bad: `${q} IS NOT NULL AND TRY_CAST(${q} AS DOUBLE) IS NULL`, what: "not a number" },
      { column: c, bad: `isnan(TRY_CAST(${q} AS DOUBLE))`, what: "NaN" },
      { column: c, bad: `TRY_CAST(${q} AS DOUBLE) < 0`, what: "negative" },
    ];
  };
  if (override !== undefined || t.kind === "column") {
    const c = override ?? (t as Extract<TaskSpec, { kind: "column" }>).column;
    const q = need(c, `the label of task "${t.name}"${override !== undefined ? " (--label)" : ""}`);
    return { sql: `(${binarySql(q)})`, checks: [{ column: c, bad: `(${binarySql(q)}) IS NULL`, what: "not 0 or 1 (nor true/false; missing included)" }], columns: [c], text: `${override !== undefined ? "--label " : ""}column "${c}"` };
  }
  if (t.kind === "ev" || t.kind === "lv" || t.kind === "quantile") {
    if (threshold === undefined || !Number.isFinite(threshold)) throw new DataError(`features.json: task "${t.name}" (${t.kind}) has no threshold; export the model again`);
    const checks = numeric(t.watch, `the watch time of task "${t.name}"`, false);
    return { sql: `(TRY_CAST(${quoteIdent(t.watch)} AS DOUBLE) > ${String(threshold)})::UTINYINT`, checks, columns: [t.watch], text: `watch "${t.watch}" > ${String(threshold)} (fitted on train)` };
  }
  if (t.kind === "cv") {
    const scale = t.durationScale ?? 1;
    const checks = [...numeric(t.watch, `the watch time of task "${t.name}"`, false), ...numeric(t.duration, `the duration of task "${t.name}"`, true)];
    const d = `TRY_CAST(${quoteIdent(t.duration)} AS DOUBLE) * ${String(scale)}`;
    return {
      sql: `COALESCE(TRY_CAST(${quoteIdent(t.watch)} AS DOUBLE) >= ${d}, false)::UTINYINT`,
      checks,
      columns: [t.watch, t.duration],
      text: `watch "${t.watch}" >= duration "${t.duration}"${scale !== 1 ? ` x ${String(scale)}` : ""}`,
      nullDurations: { column: t.duration, sql: `${quoteIdent(t.duration)} IS NULL` },
    };
  }
  // sql: the spec's expression, parsed, allow-listed and re-emitted as prepare does (expr.ts)
  const c = await compileExpr(db.conn, t.expr, `features.json spec.tasks[${k}].expr`, inputColumns);
  return { sql: `COALESCE((${c.sql})::BOOLEAN, false)::UTINYINT`, checks: [], columns: c.columns, text: `SQL condition of the spec` };
}

/** Adds each task output's Sigmoid input (its logit) as a graph output; null when a task output is not a plain Sigmoid. */
export function withLogitOutputs(bytes: Uint8Array, features: FeaturesFile): { bytes: Uint8Array; logits: string[] } | null {
  const model = onnx.ModelProto.decode(bytes);
  const g = model.graph;
  if (!g) return null;
  const inputs = new Set((g.input ?? []).map((v) => v.name ?? ""));
  const outputs = new Map((g.output ?? []).map((v) => [v.name ?? "", v]));
  const logits: string[] = [];
  for (const t of features.tasks) {
    const producers = (g.node ?? []).filter((n) => (n.output ?? []).includes(t.output));
    const n = producers[0];
    const info = outputs.get(t.output);
    if (producers.length !== 1 || !n || n.opType !== "Sigmoid" || (n.domain ?? "") !== "" || (n.input ?? []).length !== 1 || !info) return null;
    const z = n.input![0]!;
    if (z === "" || inputs.has(z)) return null;
    logits.push(z);
    if (!outputs.has(z)) {
      const v = onnx.ValueInfoProto.create({ name: z, type: info.type });
      g.output!.push(v);
      outputs.set(z, v);
    }
  }
  return { bytes: onnx.ModelProto.encode(model).finish(), logits };
}

/** Why a value is not a finite probability / logit (the value itself is not quoted). */
function checkBatch(dir: string, x: ort.Tensor | undefined, name: string, n: number, first: number, prob: boolean): Float32Array {
  if (!x || x.type !== "float32" || !(x.data instanceof Float32Array) || x.data.length !== n) throw new Error(`model ${dir}: model.onnx output "${name}" is not float32 [${n}] for a batch of ${n} rows`);
  const d = x.data;
  for (let r = 0; r < n; r++) {
    const v = d[r]!;
    if (prob ? !(v >= 0 && v <= 1) : !Number.isFinite(v)) throw new Error(`model ${dir}: model.onnx output "${name}" is ${prob ? "not a probability in [0, 1]" : "not finite"} at row ${first + r} (0-based, counted from the first row of the input)`);
  }
  return d;
}

/**
 * The evaluation batch size of the training run (features.json training.config.evalBatchSize), if
 * recorded: MLAS multiplies a batch of a few rows (the last one of a split) by other kernels than
 * a full one, so the float32 logits of those rows depend on where the batches end. Scoring in the
 * trainer's batches reproduces its numbers bit for bit (measured: at batch 1, 323 of 500 logits
 * differed from the trainer's at batch 128, in the last bit; at 97, 1 of 500).
 */
function trainedEvalBatch(features: FeaturesFile): number | undefined {
  const c = features.training.config;
  const b = c && typeof c === "object" && !Array.isArray(c) ? (c as Record<string, unknown>).evalBatchSize : undefined;
  return typeof b === "number" && Number.isInteger(b) && b >= 1 && b <= 1 << 24 ? b : undefined;
}

const finiteOrNull = (_k: string, v: unknown): unknown => (typeof v === "number" && !Number.isFinite(v) ? null : v);

/**
 * Evaluates an exported model (`modelDir`) on a labelled file (see the module comment): per-task
 * AUC, GAUC, log loss and a calibration table.
 */
export async function evaluateFile(modelDir: string, input: string, opts: EvaluateOptions = {}): Promise<EvaluateResult> {
  const inPath = resolve(input);
  if (!existsSync(inPath)) throw new DataError(`input file not found: ${inPath}`, { file: inPath });
  if (statSync(inPath).isDirectory()) throw new DataError(`--input ${inPath} is a folder; give a CSV, CSV.gz or Parquet file`, { file: inPath });
  // a symlinked --input is read through its link (the user named it): DuckDB is confined to the real file's folder
  const realIn = realpathSync(inPath);
  if (opts.batchSize !== undefined && !(Number.isInteger(opts.batchSize) && opts.batchSize >= 1)) throw new Error(`batch size must be an integer >= 1, got ${opts.batchSize}`);
  const bins = opts.bins ?? 10;
  if (!(Number.isInteger(bins) && bins >= 1 && bins <= 1000)) throw new Error(`--bins must be an integer in 1..1000, got ${bins}`);
  const binning = opts.binning ?? "mass";
  if (binning !== "mass" && binning !== "width") throw new Error(`--binning must be mass or width, got ${JSON.stringify(String(binning))}`);
  // output checks before any work (src/util/outpath.ts): never the input, never in the model folder
  const outInputs = [{ what: "--input", path: inPath }, { what: "--model", path: modelDir }];
  let target: string | null = null;
  if (opts.out !== undefined) {
    if (!opts.out.toLowerCase().endsWith(".json")) throw new Error(`--out ${opts.out}: the output must end in .json`);
    target = checkOutput("--out", resolve(opts.out), "file", outInputs);
  }
  const lock = target ? acquireLock(`${target}.lock`, `--out ${opts.out}`) : null;
  let work: string | null = null;
  let session: ort.InferenceSession | null = null;
  let wdb: Awaited<ReturnType<typeof openWorkDb>> | null = null;
  try {
    // every check of score's loadModel; its session is closed again: evaluate runs its own (logits, no prepacking)
    const m = await loadModel(modelDir, { ignoreFusion: true });
    await m.close();
    const features = m.features;
    const batchSize = opts.batchSize ?? trainedEvalBatch(features) ?? 4096;
    const tasks = features.tasks.map((t) => t.name);
    const spec = features.spec;
    if (spec.tasks.length !== tasks.length || spec.tasks.some((t, k) => t.name !== tasks[k])) throw new DataError(`model ${modelDir}: features.json's tasks (${tasks.join(", ")}) are not its spec's (${spec.tasks.map((t) => t.name).join(", ")})`);
    const overrides = opts.labels ?? {};
    for (const [t, c] of Object.entries(overrides)) {
      if (!tasks.includes(t)) throw new Error(`--label ${t}=…: the model has no task "${t}"${didYouMean(t, tasks)} (its tasks: ${tasks.join(", ")})`);
      if (c === "") throw new Error(`--label ${t}=: give the input column holding the 0/1 labels`);
    }
    const files = readVerified(modelDir, { ignoreFusion: true });
    const onnxBytes = files.get("model.onnx")!;
    checkOnnxModel(onnxBytes, join(modelDir, "model.onnx"), features);
    const rewritten = withLogitOutputs(onnxBytes, features);
    const eng = engineOptions();
    session = await ort.InferenceSession.create(rewritten?.bytes ?? onnxBytes, {
      intraOpNumThreads: opts.threads ?? eng.threads,
      interOpNumThreads: 1,
      executionMode: "sequential",
      graphOptimizationLevel: "all",
      executionProviders: ["cpu"],
      // the trainer feeds its weights as inputs, which MLAS never prepacks: see the module comment
      extra: { session: { disable_prepacking: "1" } },
    });

    work = mkdtempSync(join(tmpdir(), `mtlcraft-evaluate-${process.pid}-`));
    registerTemp(work);
    wdb = await openWorkDb(work, [dirname(realIn), m.dir], { memoryLimit: opts.memoryLimit ?? "1GB", timezone: specTimeZone(spec) });
    const db = wdb.db;
    const enc = await encodeRows(db, features, { file: realIn }, { dir: m.dir, keep: [], ...(opts.log ? { log: opts.log } : {}) });
    const warnings = [...enc.warnings];
    const warn = (msg: string): void => {
      warnings.push(msg);
      opts.log?.(`warning: ${msg}`);
    };
    const n = enc.rows;
    const inputColumns = enc.inputColumns;

    // ---- labels and groups, from table `log` (the input as read; rowid = the encoded rows' __rid)
    const plans: LabelPlan[] = [];
    for (const [k, t] of spec.tasks.entries()) plans.push(await labelPlan(db, t, k, features.tasks[k]!.threshold, overrides[t.name], inputColumns, inPath));
    const groupColumn = features.dataset.groupColumn || spec.groupColumn || "";
    if (groupColumn !== "" && !inputColumns.includes(groupColumn)) throw new DataError(`${inPath} has no column "${groupColumn}", the group column GAUC is computed over (the model's training grouped by it); columns: ${inputColumns.join(", ")}`, { file: inPath, column: groupColumn });
    // columns read by labels are cast to their training type (a SQL condition compares them as in training); label columns are checked as read
    const typed = new Set<string>();
    spec.tasks.forEach((t, k) => {
      if (overrides[t.name] === undefined && t.kind === "sql") for (const c of plans[k]!.columns) typed.add(c);
    });
    const types = await describe(db, "log", `describing ${inPath}`);
    const castChecks: Check[] = [];
    // only the columns the labels read, beside the row id and group (so no other input column can clash with those two names)
    const labelCols = [...new Set(plans.flatMap((p) => p.columns))];
    const clash = labelCols.find((c) => c === RID || c === GRP);
    if (clash !== undefined) throw new DataError(`${inPath}: a label reads a column named "${clash}", a name evaluate uses itself; rename that column`, { file: inPath, column: clash });
    const srcCols = labelCols.map((c) => {
      const q = `l.${quoteIdent(c)}`;
      const to = features.columns[c];
      if (!typed.has(c) || to === undefined || to === types.get(c)) return q;
      castChecks.push({ column: c, bad: `${q} IS NOT NULL AND (${strictCast(q, to)}) IS NULL`, what: `not a ${to} value as in training` });
      return `${strictCast(q, to)} AS ${quoteIdent(c)}`;
    });
    // value checks: one scan; each names the column, the count and the first data row (1-based)
    const checks = [...plans.flatMap((p) => p.checks), ...castChecks];
    if (checks.length) {
      const aggs = checks.flatMap((c, i) => [`count(*) FILTER (WHERE ${c.bad}) AS b${i}`, `min(rowid) FILTER (WHERE ${c.bad}) AS r${i}`]);
      const got = (await db.rows(`SELECT ${aggs.join(", ")} FROM log l`, `checking the label columns of ${inPath}`))[0] ?? {};
      checks.forEach((c, i) => {
        const bad = num(got[`b${i}`]);
        if (bad > 0) throw new DataError(`${inPath}: column "${c.column}" is ${c.what} in ${bad} row${bad === 1 ? "" : "s"}, first at data row ${num(got[`r${i}`]) + 1}; labels must be as the model's tasks define them`, { file: inPath, column: c.column, rows: bad });
      });
    }
    for (const p of plans) {
      if (!p.nullDurations) continue;
      const nul = num((await db.rows(`SELECT count(*) AS n FROM log WHERE ${p.nullDurations.sql}`, `checking ${inPath}`))[0]?.n);
      if (nul > 0) warn(`duration column "${p.nullDurations.column}" (${inPath}) is missing for ${nul} rows; their CV label is 0`);
    }
    const gTo = groupColumn ? features.columns[groupColumn] : undefined;
    const gq = groupColumn ? `l.${quoteIdent(groupColumn)}` : "";
    const gTyped = groupColumn ? (gTo !== undefined && gTo !== types.get(groupColumn) ? strictCast(gq, gTo) : gq) : "";
    // group ids in sorted value order, as prepare numbers them (so GAUC sums its groups in the same order); missing: group 0
    const grpSql = groupColumn ? `CASE WHEN ${gq} IS NULL THEN 0 ELSE (dense_rank() OVER (ORDER BY ${gTyped} NULLS LAST, CASE WHEN ${gTyped} IS NULL THEN CAST(${gq} AS VARCHAR) END NULLS FIRST))::INTEGER END` : "1";
    await db.run(
      `CREATE TABLE lab AS SELECT ${quoteIdent(RID)} AS __rid, ${plans.map((p, k) => `(${p.sql})::UTINYINT AS l_${k}`).join(", ")}, ${quoteIdent(GRP)} AS grp FROM (SELECT l.rowid AS ${quoteIdent(RID)}, ${grpSql} AS ${quoteIdent(GRP)}${srcCols.map((c) => `, ${c}`).join("")} FROM log l) src ORDER BY 1`,
      `computing the labels of ${inPath}`,
    );
    if (groupColumn && gTyped !== gq) {
      const bad = num((await db.rows(`SELECT count(*) AS n FROM log l WHERE ${gq} IS NOT NULL AND ${gTyped} IS NULL`, `checking the group column of ${inPath}`))[0]?.n);
      if (bad > 0) warn(`group column "${groupColumn}" (${inPath}): ${bad} values are not ${gTo} as in training; each is its own group, ordered after the others`);
    }

    // ---- scoring, one batch at a time (labels and groups read alongside)
    const T = tasks.length;
    const probs = Array.from({ length: T }, () => new Float32Array(n));
    const logits = rewritten ? Array.from({ length: T }, () => new Float32Array(n)) : null;
    const labels = Array.from({ length: T }, () => new Float32Array(n));
    const groups = new Int32Array(n);
    const cols: string[] = [];
    features.fields.forEach((f, i) => {
      if (f.multi) for (let k = 0; k < f.multi.maxLen; k++) cols.push(`e.c_${i}_${k}`);
      else cols.push(`e.c_${i}`);
    });
    features.dense.forEach((_, j) => cols.push(`e.d_${j}`));
    for (let k = 0; k < T; k++) cols.push(`b.l_${k}`);
    cols.push("b.grp");
    const D = features.dense.length;
    for (let start = 0; start < n; start += batchSize) {
      const bn = Math.min(batchSize, n - start);
      const ids = features.fields.map((f) => new BigInt64Array(bn * (f.multi?.maxLen ?? 1)));
      const dense = new Float32Array(bn * D);
      const res = await db.conn.stream(`SELECT ${cols.join(", ")} FROM enc e JOIN lab b ON e.__rid = b.__rid WHERE e.__rid >= ${start} AND e.__rid < ${start + bn} ORDER BY e.__rid`);
      let r0 = 0;
      while (true) {
        const chunk = await res.fetchChunk();
        if (!chunk || chunk.rowCount === 0) break;
        const cn = chunk.rowCount;
        let c = 0;
        features.fields.forEach((f, i) => {
          const L = f.multi?.maxLen ?? 1;
          const dst = ids[i]!;
          for (let k = 0; k < L; k++) {
            const v = chunk.getColumnVector(c++);
            for (let r = 0; r < cn; r++) dst[(r0 + r) * L + k] = BigInt(v.getItem(r) as number);
          }
        });
        for (let j = 0; j < D; j++) {
          const v = chunk.getColumnVector(c++);
          for (let r = 0; r < cn; r++) dense[(r0 + r) * D + j] = v.getItem(r) as number;
        }
        for (let k = 0; k < T; k++) {
          const v = chunk.getColumnVector(c++);
          const dst = labels[k]!;
          for (let r = 0; r < cn; r++) dst[start + r0 + r] = v.getItem(r) as number;
        }
        const gv = chunk.getColumnVector(c++);
        for (let r = 0; r < cn; r++) groups[start + r0 + r] = gv.getItem(r) as number;
        r0 += cn;
      }
      if (r0 !== bn) throw new Error(`internal: read ${r0} encoded rows for rows ${start}..${start + bn - 1}`);
      const feeds: Record<string, ort.Tensor> = {};
      features.fields.forEach((f, i) => (feeds[f.input] = new ort.Tensor("int64", ids[i]!, f.multi ? [bn, f.multi.maxLen] : [bn])));
      if (features.denseInput && D > 0) feeds[features.denseInput] = new ort.Tensor("float32", dense, [bn, D]);
      const out = await session.run(feeds);
      for (let k = 0; k < T; k++) {
        probs[k]!.set(checkBatch(modelDir, out[features.tasks[k]!.output], features.tasks[k]!.output, bn, start, true), start);
        if (logits && rewritten) logits[k]!.set(checkBatch(modelDir, out[rewritten.logits[k]!], `${rewritten.logits[k]!} (the logit of ${tasks[k]!})`, bn, start, false), start);
      }
    }
    wdb.close();
    wdb = null;

    // ---- metrics, as the trainer computes its test metrics (src/train/evaluate.ts)
    const perTask: TaskEvaluation[] = tasks.map((name, k) => {
      const y = labels[k]!;
      const s = logits ? logits[k]! : probs[k]!;
      let positives = 0;
      for (let r = 0; r < n; r++) positives += y[r]!;
      const g = gauc(y, s, groups);
      const cal = calibration(y, probs[k]!, { bins, binning });
      return {
        task: name,
        label: plans[k]!.text,
        rows: n,
        positives,
        auc: auc(y, s),
        gauc: g.gauc,
        gaucGroups: { used: g.groupsUsed, skipped: g.groupsSkipped },
        logloss: logits ? loglossFromLogits(y, s) : logloss(y, s),
        calibration: { binning: cal.binning, bins: cal.bins, ece: cal.ece, mce: cal.mce, meanPred: cal.meanPred, rate: cal.rate },
      };
    });
    for (const t of perTask) {
      if (t.positives === 0 || t.positives === n) warn(`task "${t.task}": every label is ${t.positives === 0 ? 0 : 1} in ${inPath}; its AUC and GAUC are undefined (n/a)`);
      else if (!Number.isFinite(t.gauc)) warn(`task "${t.task}": no group of "${groupColumn}" has both classes; its GAUC is undefined (n/a)`);
    }
    const tr = features.training;
    const result: EvaluateResult = {
      format: EVALUATE_FORMAT,
      version: EVALUATE_VERSION,
      model: resolve(modelDir),
      input: inPath,
      rows: n,
      groupColumn,
      scoredFrom: logits ? "logits" : "probabilities",
      trainedWith: {
        architecture: features.model.architecture,
        ...(typeof tr.method === "string" ? { method: tr.method } : {}),
        ...(typeof tr.methodLabel === "string" ? { methodLabel: tr.methodLabel } : {}),
        ...(typeof tr.seed === "number" ? { seed: tr.seed } : {}),
      },
      tasks: perTask,
      warnings,
    };
    if (!logits) warn("model.onnx's task outputs are not Sigmoids of logits (a model not written by mtlcraft export): AUC, GAUC and log loss are computed on its probabilities");
    if (target && opts.out !== undefined) {
      // checked again just before writing: --out may have been swapped for a link while this ran
      if (checkOutput("--out", resolve(opts.out), "file", outInputs) !== target) throw new Error(`--out ${opts.out} now leads elsewhere than when the evaluation started; nothing was written`);
      result.out = resolve(opts.out);
      writeFileAtomic(target, JSON.stringify(result, finiteOrNull, 1) + "\n");
    }
    return result;
  } finally {
    wdb?.close();
    await session?.release();
    if (work) {
      rmSync(work, { recursive: true, force: true });
      unregisterTemp(work);
    }
    lock?.release();
  }
}
