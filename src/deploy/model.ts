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
 * `loadModel` verifies the checksums (a truncated or edited file is refused, naming it), reads
 * features.json and fusion.json, and opens model.onnx in an onnxruntime-node session.
 */
import { createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { Batch } from "../data/types.ts";
import { configureEngine, createSession, ort } from "../engine/ort.ts";
import { readFeatures, type FeaturesFile } from "./features.ts";
import { fusionFromJson, type Fusion } from "./fusion.ts";

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
  /** Probabilities per task (fresh Float32Arrays of length batch.size). */
  predict(batch: IdBatch): Promise<Float32Array[]>;
  close(): Promise<void>;
}

function sha256(b: Uint8Array): string {
  return createHash("sha256").update(b).digest("hex");
}

/** Reads and verifies the checksummed files of an export folder; returns their bytes. */
export function readVerified(dir: string): Map<string, Buffer> {
  if (!existsSync(dir)) throw new Error(`model folder ${dir} does not exist`);
  const cp = join(dir, CHECKSUMS);
  if (!existsSync(cp)) throw new Error(`${dir} is not an exported mtlcraft model: ${CHECKSUMS} is missing (export one with \`mtlcraft export <result.json> --out ${dir}\`)`);
  let sums: { format?: unknown; sha256?: Record<string, unknown> };
  try {
    sums = JSON.parse(readFileSync(cp, "utf8")) as typeof sums;
  } catch (e) {
    throw new Error(`model ${dir}: ${cp} is corrupt (${(e as Error).message}); export the model again`, { cause: e });
  }
  if (sums.format !== EXPORT_FORMAT || !sums.sha256 || typeof sums.sha256 !== "object") throw new Error(`model ${dir}: ${cp} is not an mtlcraft export checksum file (format ${JSON.stringify(sums.format)})`);
  const out = new Map<string, Buffer>();
  for (const need of ["model.onnx", "features.json"]) if (typeof sums.sha256[need] !== "string") throw new Error(`model ${dir}: ${cp} has no checksum for ${need}`);
  for (const [f, want] of Object.entries(sums.sha256)) {
    if (typeof want !== "string" || f.includes("/") || f.includes("\\") || f.startsWith(".")) throw new Error(`model ${dir}: ${cp} has a bad entry for ${JSON.stringify(f)}`);
    const p = join(dir, f);
    if (!existsSync(p)) throw new Error(`model ${dir}: ${p} is missing`);
    const b = readFileSync(p);
    const got = sha256(b);
    if (got !== want) throw new Error(`model ${dir}: ${p} is corrupt (sha256 ${got.slice(0, 12)}… does not match the recorded ${want.slice(0, 12)}…); export the model again`);
    out.set(f, b);
  }
  return out;
}

/** Reads DIR/fusion.json when present (null otherwise). */
export function readFusionFile(dir: string, tasks: readonly string[]): { fusion: Fusion; file: FusionFile } | null {
  const p = join(dir, FUSION_FILE);
  if (!existsSync(p)) return null;
  let x: FusionFile;
  try {
    x = JSON.parse(readFileSync(p, "utf8")) as FusionFile;
  } catch (e) {
    throw new Error(`model ${dir}: ${p} is not valid JSON (${(e as Error).message}); delete it or run \`mtlcraft fuse\` again`, { cause: e });
  }
  return { fusion: fusionFromJson(x, tasks, p), file: x };
}

/**
 * Loads an exported model folder: verifies its checksums, reads features.json (and fusion.json)
 * and opens model.onnx with onnxruntime-node. `threads`: intra-op threads of the session.
 */
export async function loadModel(dir: string, opts: { threads?: number } = {}): Promise<ScoringModel> {
  const files = readVerified(dir);
  const features = readFeatures(join(dir, "features.json"));
  const tasks = features.tasks.map((t) => t.name);
  const saved = readFusionFile(dir, tasks);
  if (opts.threads !== undefined) configureEngine({ threads: opts.threads });
  let session: ort.InferenceSession;
  try {
    session = await createSession(files.get("model.onnx")!);
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
    async predict(batch: IdBatch): Promise<Float32Array[]> {
      const n = batch.size;
      const feeds: Record<string, ort.Tensor> = {};
      features.fields.forEach((f, i) => {
        const L = f.multi?.maxLen ?? 1;
        const src = batch.fields[i]!;
        if (src.length < n * L) throw new Error(`scoring batch: field "${f.name}" has ${src.length} ids for ${n} rows${L > 1 ? ` x ${L}` : ""}`);
        const ids = new BigInt64Array(n * L);
        for (let k = 0; k < n * L; k++) ids[k] = BigInt(src[k]!);
        feeds[f.input] = new ort.Tensor("int64", ids, L > 1 ? [n, L] : [n]);
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
      return outputs.map((o) => Float32Array.from(res[o]!.data as Float32Array));
    },
    async close() {
      await session.release();
    },
  };
}
