/**
 * Scoring raw logs with an exported model (`mtlcraft score`, `scoreFile`, `scoreRows`).
 *
 * The input (CSV, CSV.gz or Parquet with the raw log columns of the dataset spec) is encoded by
 * src/data/encode.ts (prepare's code path, the saved vocabularies, OOV for unknown values) into a
 * DuckDB database on disk in a work folder beside the output; the encoded rows are read back in
 * batches of `batchSize` rows, scored by model.onnx in onnxruntime-node, fused, and appended to a
 * DuckDB table; the output (Parquet, or CSV / CSV.gz, by the extension of `out`) is written with
 * COPY to a temporary file beside it and renamed into place. JavaScript holds one batch at a time
 * and DuckDB stays under its memory limit (DEFAULT_SCORE_MEMORY, spilling to disk beyond it), so
 * memory does not grow with the input's size. On any error nothing is left: the work folder and the temporary
 * output are removed, and an existing `out` is untouched; on SIGINT/SIGTERM too (src/util/tempdirs.ts:
 * removed, then exit 130/143), and what a killed score (SIGKILL) left is removed by the next score
 * or export in that folder.
 *
 * Output columns: the kept columns (default: the spec's user, item and group columns present in
 * the input; `keep` to choose), `p_<task>` per task (float32 probabilities; the names of
 * model.onnx's outputs), `score` (the fused score, float64) and with `withIds` the ids the model
 * was fed (`id_<field>`; a list for a multi-valued field), in input order.
 */
import { mkdirSync, mkdtempSync, existsSync, renameSync, rmSync, statSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { tmpdir } from "node:os";
import { basename, dirname, join, resolve } from "node:path";
import { DataError } from "../data/errors.ts";
import { encodeRows, openWorkDb, type EncodeInput } from "../data/encode.ts";
import { quoteIdent, quoteStr, specTimeZone } from "../data/spec.ts";
import type { Db } from "../data/duckdb.ts";
import { fuseScores, parseFusion, type Fusion } from "./fusion.ts";
import { loadModel, type ScoringModel } from "./model.ts";
import { checkOutput } from "../util/outpath.ts";
import { acquireLock } from "../util/lock.ts";
import { registerTemp, removeStaleTemps, unregisterTemp } from "../util/tempdirs.ts";

export interface ScoreOptions {
  /** `sum`, `product`, `sum:ev=1,like=0.5`, ... (default: the model's fusion.json, else the equal-weights sum). */
  fusion?: string;
  /** Input columns copied to the output (default: the spec's user, item and group columns present in the input). */
  keep?: readonly string[];
  /** Rows per model run (default 4096). */
  batchSize?: number;
  /** Also write the ids the model was fed (`id_<field>`). */
  withIds?: boolean;
  /** Called after every batch with the rows scored so far and the total. */
  progress?: (done: number, total: number) => void;
  log?: (msg: string) => void;
  /** DuckDB memory limit of the encoding and the output (default "1GB"; beyond it DuckDB spills to the work folder). */
  memoryLimit?: string;
}

export interface ScoreFileResult {
  out: string;
  rows: number;
  fusion: Fusion;
  /** Output columns in order. */
  columns: string[];
  warnings: string[];
}

type OutFormat = "parquet" | "csv" | "csv.gz";

/**
 * DuckDB's memory limit while scoring a file: the encoded rows, the joins, the scores and the
 * sorted output spill to the work folder beyond it, so the process stays near this plus the
 * model's session and one batch (about 0.6 GB of RSS for 1.3 million KuaiRand rows), whatever
 * the input's size.
 */
export const DEFAULT_SCORE_MEMORY = "1GB";

function outFormat(path: string): OutFormat {
  const p = path.toLowerCase();
  if (p.endsWith(".parquet")) return "parquet";
  if (p.endsWith(".csv.gz")) return "csv.gz";
  if (p.endsWith(".csv")) return "csv";
  throw new Error(`--out ${path}: the output must end in .parquet, .csv or .csv.gz`);
}

function defaultKeep(m: ScoringModel): (cols: readonly string[]) => string[] {
  return (cols) => m.features.keys.filter((k) => cols.includes(k));
}

/** The batch loop: reads `enc` in ranges of __rid, scores, fuses, hands each batch to `sink`. */
async function scoreEncoded(
  db: Db,
  m: ScoringModel,
  rows: number,
  fusion: Fusion,
  batchSize: number,
  sink: (start: number, n: number, probs: Float32Array[], score: Float64Array) => void | Promise<void>,
  progress?: (done: number, total: number) => void,
): Promise<void> {
  const ft = m.features;
  const cols: string[] = [];
  ft.fields.forEach((f, i) => {
    if (f.multi) for (let k = 0; k < f.multi.maxLen; k++) cols.push(`c_${i}_${k}`);
    else cols.push(`c_${i}`);
  });
  ft.dense.forEach((_, j) => cols.push(`d_${j}`));
  const fused = new Float64Array(batchSize);
  for (let start = 0; start < rows; start += batchSize) {
    const n = Math.min(batchSize, rows - start);
    const fields = ft.fields.map((f) => new Int32Array(n * (f.multi?.maxLen ?? 1)));
    const dense = ft.dense.map(() => new Float32Array(n));
    const res = await db.conn.stream(`SELECT ${cols.join(", ")} FROM enc WHERE __rid >= ${start} AND __rid < ${start + n} ORDER BY __rid`);
    let r0 = 0;
    while (true) {
      const chunk = await res.fetchChunk();
      if (!chunk || chunk.rowCount === 0) break;
      const cn = chunk.rowCount;
      let c = 0;
      ft.fields.forEach((f, i) => {
        const L = f.multi?.maxLen ?? 1;
        const dst = fields[i]!;
        for (let k = 0; k < L; k++) {
          const v = chunk.getColumnVector(c++);
          for (let r = 0; r < cn; r++) dst[(r0 + r) * L + k] = v.getItem(r) as number;
        }
      });
      ft.dense.forEach((_, j) => {
        const v = chunk.getColumnVector(c++);
        const dst = dense[j]!;
        for (let r = 0; r < cn; r++) dst[r0 + r] = v.getItem(r) as number;
      });
      r0 += cn;
    }
    if (r0 !== n) throw new Error(`internal: read ${r0} encoded rows for rows ${start}..${start + n - 1}`);
    const probs = await m.predict({ size: n, fields, ...(dense.length ? { dense } : {}) }, start);
    const s = fuseScores(fusion, probs, n, fused);
    await sink(start, n, probs, s);
    progress?.(start + n, rows);
  }
}

/**
 * Scores an input file into `out` (see the module comment). `model` is an exported model folder
 * or a loaded model.
 */
export async function scoreFile(model: string | ScoringModel, input: string, out: string, opts: ScoreOptions = {}): Promise<ScoreFileResult> {
  const inPath = resolve(input);
  const outPath = resolve(out);
  const fmt = outFormat(outPath);
  if (!existsSync(inPath)) throw new DataError(`input file not found: ${inPath}`, { file: inPath });
  if (statSync(inPath).isDirectory()) throw new DataError(`--input ${inPath} is a folder; give a CSV, CSV.gz or Parquet file`, { file: inPath });
  // Output checks (src/util/outpath.ts), before any work: never the input (real paths, hard links),
  // never inside the model folder or any other mtlcraft folder, only over a regular file (no folder,
  // device or FIFO). `target` is the real file: a symlinked --out is written through, the link kept.
  const outInputs = [{ what: "--input", path: inPath }, { what: "--model", path: typeof model === "string" ? model : model.dir }];
  const target = checkOutput("--out", outPath, "file", outInputs);
  // one writer at a time (another score or an export into the same place fails fast, naming this pid)
  const lock = acquireLock(`${target}.lock`, `--out ${out}`);
  const batchSize = opts.batchSize ?? 4096;
  let m: ScoringModel | undefined;
  let fusion: Fusion;
  try {
    if (!(Number.isInteger(batchSize) && batchSize >= 1)) throw new Error(`batch size must be an integer >= 1, got ${batchSize}`);
    m = typeof model === "string" ? await loadModel(model, { ignoreFusion: opts.fusion !== undefined }) : model;
    fusion = opts.fusion !== undefined ? parseFusion(opts.fusion, m.tasks) : m.fusion;
  } catch (e) {
    if (typeof model === "string") await m?.close();
    lock.release();
    throw e;
  }
  mkdirSync(dirname(target), { recursive: true });
  // what a killed score or export left here goes first; ours are removed on SIGINT/SIGTERM (src/util/tempdirs.ts)
  removeStaleTemps(dirname(target), opts.log);
  const work = mkdtempSync(join(dirname(target), `.mtlcraft-score-${process.pid}-`));
  registerTemp(work);
  const tmpOut = join(dirname(target), `.${basename(target)}.tmp-${process.pid}-${randomBytes(4).toString("hex")}`);
  registerTemp(tmpOut);
  let wdb: Awaited<ReturnType<typeof openWorkDb>> | null = null;
  try {
    wdb = await openWorkDb(work, [dirname(inPath), m.dir, dirname(target)], { memoryLimit: opts.memoryLimit ?? DEFAULT_SCORE_MEMORY, timezone: specTimeZone(m.features.spec) });
    const db = wdb.db;
    const enc = await encodeRows(db, m.features, { file: inPath }, { dir: m.dir, keep: opts.keep ?? defaultKeep(m), ...(opts.log ? { log: opts.log } : {}) });
    const probCols = m.features.tasks.map((t) => t.output);
    const idCols = opts.withIds ? m.features.fields.map((f) => `id_${f.name}`) : [];
    const columns = [...enc.keep, ...probCols, "score", ...idCols];
    const dup = columns.find((c, i) => columns.indexOf(c) !== i);
    if (dup !== undefined) throw new Error(`output column "${dup}" would appear twice (a kept column clashes with a score column); choose other --keep columns`);
    await db.run(`CREATE TABLE scores (__rid BIGINT, ${probCols.map((c) => `${quoteIdent(c)} FLOAT`).join(", ")}, score DOUBLE)`, "creating the score table");
    const app = await db.conn.createAppender("scores");
    try {
      await scoreEncoded(
        db,
        m,
        enc.rows,
        fusion,
        batchSize,
        (start, n, probs, s) => {
          for (let r = 0; r < n; r++) {
            app.appendBigInt(BigInt(start + r));
            for (const p of probs) app.appendFloat(p[r]!);
            app.appendDouble(s[r]!);
            app.endRow();
          }
          app.flushSync();
        },
        opts.progress,
      );
    } finally {
      app.closeSync();
    }
    const sel = [
      ...enc.keep.map((k, j) => `e.__k${j} AS ${quoteIdent(k)}`),
      ...probCols.map((c) => `s.${quoteIdent(c)}`),
      "s.score",
      ...(opts.withIds
        ? m.features.fields.map((f, i) =>
            f.multi
              ? `list_filter([${Array.from({ length: f.multi.maxLen }, (_, k) => `e.c_${i}_${k}`).join(", ")}], lambda x: x <> -1) AS ${quoteIdent(`id_${f.name}`)}`
              : `e.c_${i} AS ${quoteIdent(`id_${f.name}`)}`,
          )
        : []),
    ];
    const how = fmt === "parquet" ? "FORMAT parquet" : `FORMAT csv, HEADER true${fmt === "csv.gz" ? ", COMPRESSION gzip" : ""}`;
    await db.run(`COPY (SELECT ${sel.join(", ")} FROM enc e JOIN scores s ON e.__rid = s.__rid ORDER BY e.__rid) TO ${quoteStr(tmpOut)} (${how})`, `writing ${outPath}`);
    wdb.close();
    wdb = null;
    // checked again just before the rename: --out may have been swapped for a link while this ran
    if (checkOutput("--out", outPath, "file", outInputs) !== target) throw new Error(`--out ${outPath} now leads elsewhere than when scoring started; nothing was written`);
    renameSync(tmpOut, target);
    return { out: outPath, rows: enc.rows, fusion, columns, warnings: enc.warnings };
  } finally {
    wdb?.close();
    rmSync(tmpOut, { force: true });
    rmSync(work, { recursive: true, force: true });
    unregisterTemp(tmpOut);
    unregisterTemp(work);
    lock.release();
    if (typeof model === "string") await m.close();
  }
}

/** One scored row: the kept columns of the input row, `p_<task>` per task and the fused `score`. */
export type ScoredRow = Record<string, unknown> & { score: number };

/**
 * Scores rows given in memory (objects of raw log column: value; numbers, strings, booleans,
 * null), with the same encoding as `scoreFile`. Returns one object per row, in order: the kept
 * columns (default: the spec's user, item and group columns the rows have), `p_<task>` and `score`.
 */
export async function scoreRows(model: ScoringModel, rows: readonly Record<string, unknown>[], opts: Pick<ScoreOptions, "fusion" | "keep" | "batchSize" | "log" | "withIds"> = {}): Promise<ScoredRow[]> {
  const fusion = opts.fusion !== undefined ? parseFusion(opts.fusion, model.tasks) : model.fusion;
  const work = mkdtempSync(join(tmpdir(), `mtlcraft-score-${process.pid}-`));
  registerTemp(work);
  let wdb: Awaited<ReturnType<typeof openWorkDb>> | null = null;
  try {
    wdb = await openWorkDb(work, [model.dir], { timezone: specTimeZone(model.features.spec) });
    const input: EncodeInput = { rows };
    const enc = await encodeRows(wdb.db, model.features, input, { dir: model.dir, keep: opts.keep ?? defaultKeep(model), ...(opts.log ? { log: opts.log } : {}) });
    const outs = model.features.tasks.map((t) => t.output);
    const result: ScoredRow[] = new Array<ScoredRow>(enc.rows);
    const ids = opts.withIds ? await wdb.db.rows(`SELECT * EXCLUDE (__rid) FROM enc ORDER BY __rid`, "reading the ids") : null;
    await scoreEncoded(wdb.db, model, enc.rows, fusion, opts.batchSize ?? 4096, (start, n, probs, s) => {
      for (let r = 0; r < n; r++) {
        const src = rows[start + r]!;
        const o: Record<string, unknown> = {};
        for (const k of enc.keep) o[k] = src[k];
        outs.forEach((name, t) => (o[name] = probs[t]![r]!));
        o.score = s[r]!;
        if (ids) {
          const row = ids[start + r]!;
          model.features.fields.forEach((f, i) => {
            o[`id_${f.name}`] = f.multi ? Array.from({ length: f.multi.maxLen }, (_, k) => Number(row[`c_${i}_${k}`])).filter((x) => x !== -1) : Number(row[`c_${i}`]);
          });
        }
        result[start + r] = o as ScoredRow;
      }
    });
    return result;
  } finally {
    wdb?.close();
    rmSync(work, { recursive: true, force: true });
    unregisterTemp(work);
  }
}
