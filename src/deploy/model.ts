/**
 * An exported model folder (`mtlcraft export --out DIR`) loaded for scoring:
 *
 *   DIR/model.onnx       the inference graph (src/engine/export.ts)
 *   DIR/features.json    the encoding of raw rows (src/deploy/features.ts)
 *   DIR/side_<i>.parquet the side tables the encoding joins
 *   DIR/README.md        the model card
 *   DIR/checksums.json   sha256 of every file above but the card, verified by loadModel
 *   DIR/fusion.json      fusion weights saved by `mtlcraft fuse` (optional)
 *
 * `loadModel` treats the folder as untrusted input (SECURITY.md): it verifies the checksums (a
 * truncated or edited file is refused, naming it; fusion.json must be covered too), refuses files
 * that are links leading out of the folder, validates features.json and fusion.json strictly
 * (src/deploy/model-schema.ts), refuses side tables that are not plain, checksummed files of the
 * folder, checks model.onnx before onnxruntime sees it (no external data, inputs and outputs as
 * features.json says: src/deploy/onnx-check.ts), and checks every output of every batch (float32,
 * one value per row, finite and in [0, 1]). Everything is parsed from the verified bytes, never
 * read again from disk.
 */
import { createHash, randomBytes } from "node:crypto";
import { existsSync, lstatSync, readFileSync, realpathSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { strictlyInside } from "../util/outpath.ts";
import type { Batch } from "../data/types.ts";
import { configureEngine, createSession, ort } from "../engine/ort.ts";
import { readFeatures, type FeaturesFile } from "./features.ts";
import { fusionFromJson, type Fusion } from "./fusion.ts";
import { FUSION_SCHEMA, validateFile } from "./model-schema.ts";
import { checkOnnxModel } from "./onnx-check.ts";
import { specTimeZone } from "../data/spec.ts";
import { zoneDependent } from "../data/manifest.ts";

export const EXPORT_FORMAT = "mtlcraft-export-1";
export const CHECKSUMS = "checksums.json";
export const FUSION_FILE = "fusion.json";

/** What `fuse` saves in DIR/fusion.json. */
export interface FusionFile {
  kind: Fusion["kind"];
  weights: Record<string, number>;
  objective?: string;
  val?: number;
  test?: number;
  [k: string]: unknown;
}

/** The inputs of one scoring batch: ids per field (as in a prepared Batch: n ids, or n x maxLen with -1 padding) and dense values per input. */
export type IdBatch = Pick<Batch, "size" | "fields" | "dense">;

export interface ScoringModel {
  dir: string;
  features: FeaturesFile;
  /** Task names, in output order. */
  tasks: string[];
  /** The fusion of fusion.json, or the equal-weights sum. */
  fusion: Fusion;
  fusionSource: "fusion.json" | "default";
  /**
   * Probabilities per task (fresh Float32Arrays of length batch.size), each checked: float32, one
   * per row, finite and in [0, 1], else an error naming the output and the row (`firstRow`: the
   * input row of the batch's first row, for the message; default: rows counted within the batch).
   */
  predict(batch: IdBatch, firstRow?: number): Promise<Float32Array[]>;
  close(): Promise<void>;
}

function sha256(b: Uint8Array): string {
  return createHash("sha256").update(b).digest("hex");
}

/**
 * The real path of file `f` of the model folder (real path `root`): it must be a regular file
 * whose real path, links followed, lies inside the folder. A link to a file outside is refused.
 */
function confined(dir: string, root: string, f: string): string {
  const p = join(dir, f);
  let real: string;
  try {
    real = realpathSync(p);
  } catch {
    throw new Error(`model ${dir}: ${p} is missing${lstatSync(p, { throwIfNoEntry: false })?.isSymbolicLink() ? " (a link to nothing)" : ""}`);
  }
  if (!strictlyInside(root, real)) throw new Error(`model ${dir}: ${f} is a link to a file outside the model folder; a model folder may only use its own files`);
  if (!statSync(real).isFile()) throw new Error(`model ${dir}: ${f} is not a regular file`);
  return real;
}

/** Parses and checks DIR/checksums.json (confined to the folder). */
function readSums(dir: string, root: string): { format: string; sha256: Record<string, string> } {
  const cp = join(dir, CHECKSUMS);
  if (!existsSync(cp)) throw new Error(`${dir} is not an exported mtlcraft model: ${CHECKSUMS} is missing (export one with \`mtlcraft export <result.json> --out ${dir}\`)`);
  let sums: { format?: unknown; sha256?: Record<string, unknown> };
  try {
    sums = JSON.parse(readFileSync(confined(dir, root, CHECKSUMS), "utf8")) as typeof sums;
  } catch (e) {
    if (e instanceof SyntaxError) throw new Error(`model ${dir}: ${cp} is corrupt (${e.message}); export the model again`, { cause: e });
    throw e;
  }
  if (!sums || sums.format !== EXPORT_FORMAT || !sums.sha256 || typeof sums.sha256 !== "object" || Array.isArray(sums.sha256)) throw new Error(`model ${dir}: ${cp} is not an mtlcraft export checksum file`);
  for (const k of Object.keys(sums)) if (k !== "format" && k !== "sha256") throw new Error(`model ${dir}: ${cp} has an unknown key ${JSON.stringify(k)}`);
  for (const [f, want] of Object.entries(sums.sha256)) {
    if (typeof want !== "string" || !/^[0-9a-f]{64}$/.test(want) || f.includes("/") || f.includes("\\") || f.startsWith(".") || f === "" || f === CHECKSUMS) throw new Error(`model ${dir}: ${cp} has a bad entry for ${JSON.stringify(f)}`);
  }
  return sums as { format: string; sha256: Record<string, string> };
}

/** The real path of a model folder (an error when it is missing or not a folder). */
function folderRoot(dir: string): string {
  if (!existsSync(dir)) throw new Error(`model folder ${dir} does not exist`);
  const root = realpathSync(dir);
  if (!statSync(root).isDirectory()) throw new Error(`model ${dir} is not a folder`);
  return root;
}

/**
 * Reads and verifies the checksummed files of an export folder; returns their bytes. Every file
 * must be a regular file inside the folder (links out are refused), and fusion.json, when
 * present, must be among them.
 */
/** What to do about a fusion.json that cannot be used (fuse ignores the old one and replaces it). */
const REDO_FUSION = "delete fusion.json, or run `mtlcraft fuse` again (it replaces the file), or give `--fusion` to score without it";

export function readVerified(dir: string, opts: { ignoreFusion?: boolean } = {}): Map<string, Buffer> {
  const root = folderRoot(dir);
  const sums = readSums(dir, root);
  const cp = join(dir, CHECKSUMS);
  const out = new Map<string, Buffer>();
  for (const need of ["model.onnx", "features.json"]) if (typeof sums.sha256[need] !== "string") throw new Error(`model ${dir}: ${cp} has no checksum for ${need}`);
  for (const [f, want] of Object.entries(sums.sha256)) {
    if (opts.ignoreFusion && f === FUSION_FILE) continue;
    const p = join(dir, f);
    const b = readFileSync(confined(dir, root, f));
    const got = sha256(b);
    const again = f === FUSION_FILE ? REDO_FUSION : "export the model again";
    if (got !== want) throw new Error(`model ${dir}: ${p} is corrupt (sha256 ${got.slice(0, 12)}… does not match the recorded ${want.slice(0, 12)}…); ${again}`);
    out.set(f, b);
  }
  if (!opts.ignoreFusion && !out.has(FUSION_FILE) && lstatSync(join(dir, FUSION_FILE), { throwIfNoEntry: false })) {
    throw new Error(`model ${dir}: ${FUSION_FILE} is not covered by ${CHECKSUMS} (it was not saved by this version of \`mtlcraft fuse\`, or was put there by hand); ${REDO_FUSION}`);
  }
  return out;
}

/**
 * Reads DIR/fusion.json when present (null otherwise): from the verified bytes `files` (default:
 * `readVerified(dir)`), validated strictly (FUSION_SCHEMA: weights are JSON numbers >= 0).
 */
export function readFusionFile(dir: string, tasks: readonly string[], files: Map<string, Buffer> = readVerified(dir)): { fusion: Fusion; file: FusionFile } | null {
  const b = files.get(FUSION_FILE);
  if (!b) return null;
  const p = join(dir, FUSION_FILE);
  let x: FusionFile;
  try {
    x = JSON.parse(b.toString("utf8")) as FusionFile;
  } catch (e) {
    throw new Error(`model ${dir}: ${p} is not valid JSON (${(e as Error).message}); delete it or run \`mtlcraft fuse\` again`, { cause: e });
  }
  validateFile(FUSION_SCHEMA, x, p);
  return { fusion: fusionFromJson(x, tasks, p), file: x };
}

/**
 * Saves fusion.json (`text`) into the model folder and records its sha256 in checksums.json, so
 * that loadModel accepts it: both are written to temporary files first, then renamed into place
 * (fusion.json first: a crash between the renames leaves a fusion.json that loadModel refuses,
 * asking to run `mtlcraft fuse` again, never one it would use unchecked).
 */
export function saveFusionFile(dir: string, text: string): string {
  const root = folderRoot(dir);
  const sums = readSums(dir, root);
  const bytes = Buffer.from(text, "utf8");
  const next = { format: sums.format, sha256: { ...sums.sha256, [FUSION_FILE]: sha256(bytes) } };
  const tag = `${process.pid}-${randomBytes(4).toString("hex")}`;
  const path = join(dir, FUSION_FILE);
  const tmpF = join(dir, `.${FUSION_FILE}.tmp-${tag}`);
  const tmpC = join(dir, `.${CHECKSUMS}.tmp-${tag}`);
  try {
    writeFileSync(tmpF, bytes, { flag: "wx" });
    writeFileSync(tmpC, JSON.stringify(next, null, 1), { flag: "wx" });
    renameSync(tmpF, path);
    renameSync(tmpC, join(dir, CHECKSUMS));
  } finally {
    rmSync(tmpF, { force: true });
    rmSync(tmpC, { force: true });
  }
  return path;
}

/** Why a probability is not one (the value itself is not quoted). */
function notProbability(v: number): string {
  if (Number.isNaN(v)) return "NaN";
  if (!Number.isFinite(v)) return "infinite";
  return v > 1 ? "greater than 1" : "less than 0";
}

/**
 * Checks one output of a batch of `n` rows (float32, n values, each finite and in [0, 1]) and
 * returns a copy. One pass over the typed array; `firstRow` numbers the rows in messages.
 */
function checkedOutput(dir: string, x: ort.Tensor | undefined, name: string, n: number, firstRow: number | undefined): Float32Array {
  if (!x) throw new Error(`model ${dir}: model.onnx gave no output "${name}"`);
  if (x.type !== "float32" || !(x.data instanceof Float32Array)) throw new Error(`model ${dir}: model.onnx output "${name}" is ${x.type}, expected float32 probabilities`);
  const d = x.data;
  if (x.dims.length !== 1 || d.length !== n) throw new Error(`model ${dir}: model.onnx output "${name}" has shape [${x.dims.join(", ")}] for a batch of ${n} rows, expected [${n}]`);
  for (let r = 0; r < n; r++) {
    const v = d[r]!;
    if (!(v >= 0 && v <= 1)) {
      const row = firstRow === undefined ? `row ${r} of the batch (0-based)` : `row ${firstRow + r} (0-based, counted from the first row of the input)`;
      throw new Error(`model ${dir}: model.onnx output "${name}" is ${notProbability(v)} at ${row}; a probability must be finite and in [0, 1]`);
    }
  }
  return d.slice();
}

/**
 * The time zone `score` will encode in is the one the model was trained in: features.json's
 * `timezone` must be the spec's (UTC when it names none). An export made before the zone was fixed
 * has no `timezone`; its derived features were computed in its machine's zone, which the folder
 * does not record, so one whose features could depend on a zone (zoneDependent) is refused rather
 * than scored with other ids than training used.
 */
function checkZone(dir: string, features: FeaturesFile): void {
  const want = specTimeZone(features.spec);
  if (features.timezone !== undefined) {
    if (features.timezone !== want) throw new Error(`model ${dir}: features.json says its features were computed in time zone ${JSON.stringify(features.timezone)}, but its spec's zone is ${JSON.stringify(want)}; export the model again`);
    return;
  }
  if (zoneDependent(features.spec, features.columns)) {
    throw new Error(
      `model ${dir} was exported by an mtlcraft that computed derived features (expressions, side tables, zoned timestamps) in the machine's time zone, which the folder does not record; ` +
        `scoring it in ${want} could feed other ids than training did. Retrain and export it with this version (if the machine that prepared its data ran in UTC, exporting it again is enough)`,
    );
  }
}

/**
 * Loads an exported model folder: verifies its checksums and real paths, reads features.json
 * (and fusion.json) strictly, checks the side tables and model.onnx (onnx-check.ts), then opens
 * model.onnx with onnxruntime-node from the verified bytes. `threads`: intra-op threads of the
 * session; `ignoreFusion`: fusion.json is neither read nor checked (fuse replaces it; score with
 * `--fusion` does not use it).
 */
export async function loadModel(dir: string, opts: { threads?: number; ignoreFusion?: boolean } = {}): Promise<ScoringModel> {
  const files = readVerified(dir, opts.ignoreFusion ? { ignoreFusion: true } : {});
  const features = readFeatures(join(dir, "features.json"), files.get("features.json")!);
  const tasks = features.tasks.map((t) => t.name);
  const saved = readFusionFile(dir, tasks, files);
  // side tables: plain names (the schema), checksummed, hence regular files inside the folder (readVerified)
  for (const [i, sd] of features.sides.entries()) {
    if (!files.has(sd.file)) throw new Error(`model ${dir}: features.json sides[${i}].file names ${JSON.stringify(sd.file)}, which ${CHECKSUMS} does not list; a side table must be a checksummed file of the model folder`);
  }
  checkZone(dir, features);
  const onnxBytes = files.get("model.onnx")!;
  checkOnnxModel(onnxBytes, join(dir, "model.onnx"), features);
  if (opts.threads !== undefined) configureEngine({ threads: opts.threads });
  let session: ort.InferenceSession;
  try {
    session = await createSession(onnxBytes);
  } catch (e) {
    throw new Error(`model ${dir}: model.onnx cannot be loaded by onnxruntime: ${(e as Error).message}`, { cause: e });
  }
  const fieldInputs = features.fields.map((f) => f.input);
  const names = new Set(session.inputNames);
  for (const n of [...fieldInputs, ...(features.denseInput ? [features.denseInput] : [])]) {
    if (!names.has(n)) throw new Error(`model ${dir}: model.onnx has no input "${n}" that features.json names`);
  }
  const outputs = features.tasks.map((t) => t.output);
  for (const o of outputs) if (!session.outputNames.includes(o)) throw new Error(`model ${dir}: model.onnx has no output "${o}" that features.json names`);
  const D = features.dense.length;
  return {
    dir,
    features,
    tasks,
    fusion: saved?.fusion ?? { kind: "sum", weights: tasks.map(() => 1 / tasks.length) },
    fusionSource: saved ? "fusion.json" : "default",
    async predict(batch: IdBatch, firstRow?: number): Promise<Float32Array[]> {
      const n = batch.size;
      const feeds: Record<string, ort.Tensor> = {};
      features.fields.forEach((f, i) => {
        const L = f.multi?.maxLen ?? 1;
        const src = batch.fields[i]!;
        if (src.length < n * L) throw new Error(`scoring batch: field "${f.name}" has ${src.length} ids for ${n} rows${L > 1 ? ` x ${L}` : ""}`);
        const ids = new BigInt64Array(n * L);
        for (let k = 0; k < n * L; k++) ids[k] = BigInt(src[k]!);
        feeds[f.input] = new ort.Tensor("int64", ids, f.multi ? [n, L] : [n]);
      });
      if (features.denseInput && D > 0) {
        const x = new Float32Array(n * D);
        for (let j = 0; j < D; j++) {
          const v = batch.dense?.[j];
          if (!v || v.length < n) throw new Error(`scoring batch: dense input ${j} has ${v?.length ?? 0} values for ${n} rows`);
          for (let r = 0; r < n; r++) x[r * D + j] = v[r]!;
        }
        feeds[features.denseInput] = new ort.Tensor("float32", x, [n, D]);
      }
      const res = await session.run(feeds);
      return outputs.map((o) => checkedOutput(dir, res[o], o, n, firstRow));
    },
    async close() {
      await session.release();
    },
  };
}
