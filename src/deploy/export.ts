/**
 * `mtlcraft export <result.json | .model folder | checkpoint> --out DIR`: the trained model as a
 * self-contained ONNX model with its feature encoding and a model card (see src/deploy/model.ts
 * for the folder's layout).
 *
 * Steps: load the model artefact (its sha256 checksums verified); find the prepared dataset it was
 * trained on by content hash in the cache (fully verified); rebuild the model and set the saved
 * parameters; build the inference graph (src/engine/export.ts); write model.onnx, features.json
 * (vocabularies from the cache) and the side tables into a temporary folder; load that folder as
 * `loadModel` does and score the whole test split with it: the first batch must match the
 * trainer's eval path (predictLogits, then the sigmoid) within 1e-5, and the test metrics go into
 * the model card; then the folder replaces DIR. DIR may be missing, empty or an earlier export,
 * nothing else. SIGINT/SIGTERM remove the temporary folder (src/util/tempdirs.ts); what a killed
 * export left beside DIR is removed (or, for an earlier export moved aside, restored) by the next
 * export or score there.
 */
import { createHash, randomBytes } from "node:crypto";
import { copyFileSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { DEFAULT_CACHE_DIR } from "../data/cache.ts";
import type { Manifest } from "../data/manifest.ts";
import { loadManifest, readVocab } from "../data/integrity.ts";
import { openPrepared } from "../data/reader.ts";
import type { PreparedDataset } from "../data/types.ts";
import { DataError } from "../data/errors.ts";
import { specTimeZone } from "../data/spec.ts";
import { exportGraph, BATCH_DIM } from "../engine/export.ts";
import { ONNX_OPSET } from "../graph/onnx.ts";
import { GradWorkspace, predictLogits } from "../grad/pertask.ts";
import { auc } from "../metrics/auc.ts";
import { gauc } from "../metrics/gauc.ts";
import { logloss } from "../metrics/logloss.ts";
import { loadPlugins } from "../plugins.ts";
import type { SplitMetrics } from "../report/types.ts";
import { loadModelArtifact, modelArtifactPath, modelFromArtifact, type LoadedArtifact } from "../train/artifact.ts";
import { checkOutput, type InputPath } from "../util/outpath.ts";
import { acquireLock } from "../util/lock.ts";
import { registerTemp, removeStaleTemps, unregisterTemp } from "../util/tempdirs.ts";
import { encodingOf, FEATURES_FORMAT, FEATURES_VERSION, onnxNames, type FeaturesFile } from "./features.ts";
import { CHECKSUMS, EXPORT_FORMAT, loadModel, type ScoringModel } from "./model.ts";
import { modelCard } from "./card.ts";

export interface ExportOptions {
  /** A result .json (its .model sibling), a .model folder or a training checkpoint folder. */
  source: string;
  out: string;
  /** Cache root(s) to look for the dataset in (default: the run's, then .cache/datasets). */
  cacheDir?: string;
  /** Plugin modules (for architectures of plugins). */
  plugins?: readonly string[];
  /** Scoring batch size of the check on the test split (default 4096). */
  batchSize?: number;
  log?: (msg: string) => void;
}

export interface ExportResult {
  dir: string;
  /** Metrics of model.onnx on the test split. */
  test: SplitMetrics;
  /** Largest |p_onnx - p_trainer| on the first test batch. */
  maxDiff: number;
  inputs: string[];
  outputs: string[];
  tasks: string[];
}

/** Largest difference between model.onnx and the trainer's eval probabilities an export accepts. */
export const EXPORT_TOLERANCE = 1e-5;

/** The prepared dataset of an artefact: `<cacheRoot>/<name>-<hash16>` with that content hash. */
export function findPrepared(art: Pick<LoadedArtifact, "info">, cacheDirs: readonly string[]): { dir: string; manifest: Manifest } {
  const { name, hash } = art.info.dataset;
  const tried: string[] = [];
  for (const root of cacheDirs) {
    const dir = join(resolve(root), `${name}-${hash.slice(0, 16)}`);
    tried.push(dir);
    if (!existsSync(join(dir, "manifest.json"))) continue;
    const m = loadManifest(dir);
    if (m.hash === hash) return { dir, manifest: m };
  }
  const how = art.info.dataset.option ? `\`mtlcraft prepare ${art.info.dataset.option}${art.info.dataset.source ? ` --source ${art.info.dataset.source}` : ""} --cache-dir <dir>\`` : "`mtlcraft prepare <dataset> --cache-dir <dir>`";
  throw new DataError(
    `the prepared dataset "${name}" the model was trained on (content hash ${hash.slice(0, 12)}…) is not in ${tried.join(" or ")}; prepare it again with ${how} (unchanged inputs give the same hash) or point --cache-dir at it; a model trained on a cache written before mtlcraft kept the vocabularies (dataset format < 4) cannot be exported: train it again`,
  );
}

function sha256(b: Uint8Array): string {
  return createHash("sha256").update(b).digest("hex");
}

function sigmoid(z: number): number {
  return 1 / (1 + Math.exp(-z));
}

/** Scores a split with an exported model: per-task probabilities, labels and groups (all rows, in order). */
export async function scoreSplit(m: ScoringModel, data: PreparedDataset, split: "train" | "val" | "test", batchSize: number, onBatch?: (batch: import("../data/types.ts").Batch, probs: Float32Array[]) => void | Promise<void>): Promise<{ probs: Float32Array[]; labels: Float32Array[]; groups: Int32Array; rows: number }> {
  const reader = data.split(split);
  const n = reader.rows;
  const T = m.tasks.length;
  const probs = Array.from({ length: T }, () => new Float32Array(n));
  const labels = Array.from({ length: T }, () => new Float32Array(n));
  const groups = new Int32Array(n);
  let off = 0;
  for (const batch of reader.iterate({ batchSize, shuffle: false, seed: 0, epoch: 0 })) {
    const p = await m.predict(batch, off);
    for (let t = 0; t < T; t++) {
      probs[t]!.set(p[t]!, off);
      labels[t]!.set(batch.labels[t]!.subarray(0, batch.size), off);
    }
    groups.set(batch.groups.subarray(0, batch.size), off);
    await onBatch?.(batch, p);
    off += batch.size;
  }
  return { probs, labels, groups, rows: off };
}

/** AUC, GAUC and logloss per task from probabilities. */
export function metricsOf(probs: readonly Float32Array[], labels: readonly Float32Array[], groups: Int32Array): SplitMetrics {
  const out: SplitMetrics = { auc: [], gauc: [], logloss: [], gaucGroups: [] };
  probs.forEach((p, t) => {
    const y = labels[t]!;
    out.auc.push(auc(y, p));
    const g = gauc(y, p, groups);
    out.gauc.push(g.gauc);
    out.gaucGroups.push({ used: g.groupsUsed, skipped: g.groupsSkipped });
    out.logloss.push(logloss(y, p));
  });
  return out;
}

/**
 * Whether `dir` may be replaced by an export (src/util/outpath.ts): missing, empty, or an earlier
 * export (never a checkpoint, an artefact, a file or a device); not an input nor inside or around
 * one (the source, its artefact, the prepared dataset); not inside an mtlcraft folder. Returns the
 * real folder to replace: a symlinked --out is written through, the link kept.
 */
function checkOut(dir: string, inputs: readonly InputPath[]): string {
  return checkOutput("--out", dir, "export", inputs);
}

export async function exportModel(opts: ExportOptions): Promise<ExportResult> {
  const log = opts.log ?? (() => {});
  const out = resolve(opts.out);
  const inputs: InputPath[] = [{ what: "the source", path: opts.source }, ...(opts.source.endsWith(".json") ? [{ what: "the model artefact of the source", path: modelArtifactPath(opts.source) }] : []), ...(opts.plugins ?? []).filter((p) => existsSync(p)).map((p) => ({ what: "--plugin", path: p }))];
  checkOut(out, inputs);
  await loadPlugins(opts.plugins ?? []);
  const art = loadModelArtifact(opts.source);
  const roots = [...(opts.cacheDir ? [opts.cacheDir] : []), ...(art.info.dataset.cacheDir ? [art.info.dataset.cacheDir] : []), DEFAULT_CACHE_DIR];
  const { dir: dataDir, manifest } = findPrepared(art, [...new Set(roots.map((r) => resolve(r)))]);
  const finalInputs: InputPath[] = [...inputs, { what: "the source", path: art.dir }, { what: "the prepared dataset", path: dataDir }];
  const target = checkOut(out, finalInputs);
  log(`dataset ${manifest.name}: ${dataDir}`);
  if (!manifest.columns || manifest.fields.some((f) => f.kind === "categorical" && !f.vocab)) {
    throw new DataError(`prepared dataset ${dataDir} was written by an older mtlcraft (format ${manifest.version}) and has no saved vocabularies; delete it, prepare the dataset again and retrain`, { file: dataDir });
  }
  const data = openPrepared(dataDir, { verify: "full" });
  const meta = data.meta;
  const taskNames = meta.tasks.map((t) => t.name);
  if (art.info.tasks && art.info.tasks.join(",") !== taskNames.join(",")) throw new Error(`${art.dir}: the model's tasks (${art.info.tasks.join(", ")}) are not the dataset's (${taskNames.join(", ")})`);
  const model = modelFromArtifact(art, meta);
  const taken = new Set<string>();
  const fieldInputs = onnxNames(meta.fields.map((f) => f.name), "", taken);
  const denseInput = onnxNames(["dense"], "", taken)[0]!;
  const outputs = onnxNames(taskNames, "p_", taken);
  const graph = exportGraph(model, {
    fieldInputs,
    denseInput,
    outputs,
    docString: `mtlcraft ${art.info.architecture} on ${manifest.name} (dataset ${manifest.hash.slice(0, 16)}): per-task probabilities`,
    metadata: { dataset: manifest.name, datasetHash: manifest.hash, tasks: taskNames.join(","), architecture: art.info.architecture },
  });
  log(`model.onnx: ${graph.nodeCount} nodes, ${(graph.bytes.length / 1e6).toFixed(1)} MB`);
  const encoding = encodingOf(manifest, (i) => readVocab(dataDir, manifest.fields[i]!), fieldInputs);
  const info = art.info;
  const features: FeaturesFile = {
    format: FEATURES_FORMAT,
    version: FEATURES_VERSION,
    dataset: { name: manifest.name, hash: manifest.hash, rows: manifest.rows, labelRates: manifest.labelRates, groupColumn: manifest.groupColumn },
    ...encoding,
    denseInput: meta.dense?.length ? denseInput : null,
    timezone: specTimeZone(manifest.spec),
    tasks: manifest.tasks.map((t, i) => ({ name: t.name, output: outputs[i]!, kind: t.kind, ...(t.threshold !== undefined ? { threshold: t.threshold } : {}) })),
    keys: [...new Set([manifest.spec.userColumn, manifest.spec.itemColumn, manifest.spec.groupColumn].filter((c): c is string => typeof c === "string" && c !== ""))],
    model: { architecture: info.architecture, options: info.modelOptions, opset: ONNX_OPSET, batchDim: BATCH_DIM, inputs: graph.inputs, outputs: graph.outputs },
    training: {
      source: art.kind,
      ...(info.method !== undefined ? { method: info.method } : {}),
      ...(info.methodLabel !== undefined ? { methodLabel: info.methodLabel } : {}),
      ...(info.seed !== undefined ? { seed: info.seed } : {}),
      ...(info.metrics ? { steps: info.metrics.steps, bestEpoch: info.metrics.bestEpoch, test: info.metrics.test, val: info.metrics.val } : {}),
      fingerprint: info.fingerprint,
      ...(info.config ? { config: info.config } : {}),
    },
  };
  // ---- write into a temporary sibling, check it as a user would load it, then rename into place
  mkdirSync(dirname(target), { recursive: true });
  // what a killed export or score left here goes first; ours is removed on SIGINT/SIGTERM (src/util/tempdirs.ts)
  removeStaleTemps(dirname(target), log);
  // one writer at a time (another export or a score into the same place fails fast, naming this pid)
  const lock = acquireLock(`${target}.lock`, `--out ${opts.out}`);
  const tmp = join(dirname(target), `.${basename(target)}.tmp-${process.pid}-${randomBytes(4).toString("hex")}`);
  registerTemp(tmp);
  let m: ScoringModel | null = null;
  try {
    mkdirSync(tmp);
    const files: Record<string, Uint8Array> = { "model.onnx": graph.bytes, "features.json": Buffer.from(JSON.stringify(features)) };
    for (const [f, b] of Object.entries(files)) writeFileSync(join(tmp, f), b);
    for (const sd of manifest.sides ?? []) {
      copyFileSync(join(dataDir, sd.file), join(tmp, sd.file));
      files[sd.file] = readFileSync(join(tmp, sd.file));
    }
    const sums = { format: EXPORT_FORMAT, sha256: Object.fromEntries(Object.entries(files).map(([f, b]) => [f, sha256(b)])) };
    writeFileSync(join(tmp, CHECKSUMS), JSON.stringify(sums, null, 1));
    m = await loadModel(tmp);
    const ws = new GradWorkspace(model);
    let maxDiff = 0;
    let first = true;
    const scored = await scoreSplit(m, data, "test", opts.batchSize ?? 4096, async (batch, probs) => {
      if (!first) return;
      first = false;
      const z = await predictLogits(ws, batch);
      for (let t = 0; t < probs.length; t++) for (let r = 0; r < batch.size; r++) maxDiff = Math.max(maxDiff, Math.abs(probs[t]![r]! - sigmoid(z[t]![r]!)));
    });
    if (!(maxDiff <= EXPORT_TOLERANCE)) throw new Error(`export: model.onnx disagrees with the trainer's eval probabilities on the test split (max |difference| ${maxDiff.toExponential(2)} > ${EXPORT_TOLERANCE}); nothing was written`);
    const test = metricsOf(scored.probs, scored.labels, scored.groups);
    writeFileSync(join(tmp, "README.md"), modelCard({ features, manifest, art, test, graph: { nodes: graph.nodeCount, bytes: graph.bytes.length }, maxDiff }));
    await m.close();
    m = null;
    // checked again just before the rename: --out may have been swapped for a link while this ran
    if (checkOut(out, finalInputs) !== target) throw new Error(`--out ${opts.out} now leads elsewhere than when the export started; nothing was written`);
    if (existsSync(target)) {
      const old = join(dirname(target), `.${basename(target)}.old-${process.pid}-${randomBytes(4).toString("hex")}`);
      renameSync(target, old);
      try {
        renameSync(tmp, target);
      } catch (e) {
        renameSync(old, target); // put the earlier export back
        throw e;
      }
      rmSync(old, { recursive: true, force: true });
    } else renameSync(tmp, target);
    return { dir: out, test, maxDiff, inputs: graph.inputs, outputs: graph.outputs, tasks: taskNames };
  } catch (e) {
    if (m) await m.close().catch(() => {});
    rmSync(tmp, { recursive: true, force: true });
    throw e;
  } finally {
    unregisterTemp(tmp);
    lock.release();
  }
}
