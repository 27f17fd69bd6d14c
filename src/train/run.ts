/**
 * `train`: one model, one balancing method, one seed, end to end — dataset,
 * model, optimiser, loop, result JSON and per-step diagnostics JSONL
 * (both written atomically), with a progress bar or JSON progress lines.
 */
import cliProgress from "cli-progress";
import type { BalancingMethod, JsonValue } from "../balance/types.ts";
import { createMethod, getMethod, resolveMethodOptions } from "../balance/registry.ts";
import { provenanceOf } from "./provenance.ts";
import type { Batch, PreparedDataset } from "../data/types.ts";
import { loadDataset, resolveSpec } from "../data/index.ts";
import { specInputs } from "../data/manifest.ts";
import { configureEngine } from "../engine/ort.ts";
import { LogProgress, lossText } from "./progress.ts";
import { STILL_IMPROVING_WARNING, stillImproving } from "../report/selection.ts";
import { checkModelOptions, createModel, getArchitecture } from "../model/registry.ts";
import type { Model } from "../model/model.ts";
import { createAdam, type Adam } from "../optim/adam.ts";
import type { RunResult } from "../report/types.ts";
import { checkWritable, writeFileAtomic } from "../util/fsx.ts";
import { acquireLock, type Lock } from "../util/lock.ts";
import { checkOutput, type InputPath } from "../util/outpath.ts";
import { existsSync, mkdirSync } from "node:fs";
import { resolveTrainOptions, type ResolvedTrainOptions, type TrainOptions } from "../config/train-options.ts";
import { createHash } from "node:crypto";
import { dirname, resolve as resolvePath } from "node:path";
import type { Rng } from "../util/rng.ts";
import { trainStep, predict, getTrainState, setTrainState, type GradScope } from "./step.ts";
import { checkBalanceAt, type BalanceAt } from "../grad/representation.ts";
import { runLoop, toRunResult, type LoopConfig, type TrainableModel } from "./trainer.ts";
import type { Fingerprint, TensorMap } from "./checkpoint.ts";
import { MODEL_ARTIFACT_FORMAT, modelArtifactPath, saveModelArtifact, type ModelArtifactInfo } from "./artifact.ts";

export type { TrainOptions, ResolvedTrainOptions } from "../config/train-options.ts";

/** Adapts model + optimiser to the loop's TrainableModel. */
export class ModelHandle implements TrainableModel {
  constructor(
    readonly model: Model,
    readonly optimizer: Adam,
    readonly scope: GradScope,
    readonly balanceAt: BalanceAt = "parameters",
  ) {}
  async step(batch: Batch, method: BalancingMethod, info: { step: number; epoch: number; rng: Rng; diagnostics: boolean }) {
    const r = await trainStep(this.model, this.optimizer, method, batch, { ...info, scope: this.scope, balanceAt: this.balanceAt });
    return { losses: r.losses, balance: r.balance };
  }
  predict(batch: Batch): Promise<Float32Array[]> {
    return predict(this.model, batch);
  }
  getParams(): TensorMap {
    return this.model.getParams();
  }
  setParams(p: TensorMap): void {
    this.model.setParams(p);
  }
  getState(): { tensors: TensorMap; json: JsonValue } {
    return getTrainState(this.model, this.optimizer);
  }
  setState(s: { tensors: TensorMap; json: JsonValue }): void {
    setTrainState(this.model, this.optimizer, s);
  }
}

/** Coerce CLI strings ("2", "256,128", "true") for model options. */
export function parseModelOptions(raw: Record<string, unknown>): Record<string, unknown> {
  // no prototype: a key "__proto__" stays a key (and is refused as unknown), never a prototype
  const out = Object.create(null) as Record<string, unknown>;
  for (const [k, v] of Object.entries(raw)) {
    if (typeof v !== "string") {
      out[k] = v;
      continue;
    }
    if (v === "true" || v === "false") out[k] = v === "true";
    else if (v.includes(",") || k.toLowerCase().endsWith("units")) out[k] = v.split(",").filter((s) => s.trim() !== "").map(Number);
    else if (Number.isFinite(Number(v)) && v.trim() !== "") out[k] = Number(v);
    else out[k] = v;
  }
  return out;
}

export interface Built {
  data: PreparedDataset;
  model: Model;
  handle: ModelHandle;
  method: BalancingMethod;
  /** Content hash of the prepared dataset (see datasetContentHash). */
  datasetHash: string;
  /** What this run is; checkpoints record it and refuse to resume under another. */
  fingerprint: Fingerprint;
}

/** Model options that have their own train option (`--model-opt embDim=8` would be silently overridden). */
const MODEL_KEYS_FROM_TRAIN: Record<string, string> = { embDim: "--emb-dim (embDim)", dropout: "--dropout (dropout)", seed: "--seed (seed)" };

/**
 * Content hash of a prepared dataset: the manifest's hash of spec + input files when
 * the dataset was opened from the cache (loadDataset / openPrepared), else a hash of
 * its metadata (in-memory datasets).
 */
export function datasetContentHash(ds: PreparedDataset): string {
  const withManifest = ds as PreparedDataset & { manifest?: { hash?: unknown } };
  const meta = ds.meta as unknown as { contentHash?: unknown; hash?: unknown };
  for (const h of [withManifest.manifest?.hash, meta.contentHash, meta.hash]) if (typeof h === "string" && h !== "") return h;
  return `meta-sha256:${createHash("sha256").update(JSON.stringify(ds.meta)).digest("hex")}`;
}

/** Builds dataset, model, optimiser and method from options (validated and defaulted here, once). */
export async function buildRun(options: TrainOptions, data?: PreparedDataset): Promise<Built> {
  const o = resolveTrainOptions(options);
  const arch = getArchitecture(o.model);
  const methodEntry = getMethod(o.method);
  const modelOptions = parseModelOptions(o.modelOptions ?? {});
  for (const k of Object.keys(modelOptions)) {
    if (Object.hasOwn(MODEL_KEYS_FROM_TRAIN, k)) throw new Error(`model option ${k} is set by the train option ${MODEL_KEYS_FROM_TRAIN[k]}, not --model-opt`);
  }
  checkModelOptions(arch, modelOptions, { strict: true });
  const methodOptions = resolveMethodOptions(methodEntry, o.methodOptions ?? {});
  checkBalanceAt(methodEntry.name, o.balanceAt, o.scope);
  configureEngine({ ...(o.threads !== undefined ? { threads: o.threads } : {}), ...(o.device !== undefined ? { device: o.device } : {}), ...(o.memory !== undefined ? { memory: o.memory } : {}) });
  const ds = data ?? (await loadDataset(o.dataset, { cacheDir: o.cacheDir, source: o.source }));
  const T = ds.meta.tasks.length;
  const model = createModel(arch, { fields: ds.meta.fields, numTasks: T, dense: ds.meta.dense }, {
    ...modelOptions,
    embDim: o.embDim,
    dropout: o.dropout,
    seed: o.seed,
  });
  const optimizer = createAdam(model, { lr: o.lr, weightDecay: o.l2 });
  const method = createMethod(methodEntry, T, o.methodOptions ?? {});
  const datasetHash = datasetContentHash(ds);
  const archOptions: Record<string, unknown> = { ...arch.defaults, ...modelOptions, embDim: o.embDim, dropout: o.dropout };
  delete archOptions.seed;
  const fingerprint = JSON.parse(
    JSON.stringify({
      dataset: ds.meta.name,
      datasetHash,
      model: arch.name,
      modelOptions: archOptions,
      method: methodEntry.name,
      methodOptions,
      seed: o.seed,
      batchSize: o.batchSize,
      lr: o.lr,
      l2: o.l2,
      scope: o.scope,
      // only when not the default, so checkpoints written before the option existed still resume
      ...(o.balanceAt !== "parameters" ? { balanceAt: o.balanceAt } : {}),
    }),
  ) as Fingerprint;
  return { data: ds, model, handle: new ModelHandle(model, optimizer, o.scope, o.balanceAt), method, datasetHash, fingerprint };
}

/** Loop settings from options (defaults filled in); pass the built run to have checkpoints carry (and check) its fingerprint. */
export function loopConfig(options: TrainOptions, built?: Pick<Built, "fingerprint">): LoopConfig {
  const o = resolveTrainOptions(options);
  return {
    fingerprint: built?.fingerprint,
    epochs: o.epochs,
    batchSize: o.batchSize,
    evalBatchSize: o.evalBatchSize,
    evalEvery: o.evalEvery,
    maxSteps: o.maxSteps,
    patience: o.patience,
    minDelta: o.minDelta,
    diagEvery: o.diagEvery,
    maxEvalRows: o.maxEvalRows,
    seed: o.seed,
    checkpointDir: o.checkpoint,
    checkpointEvery: o.checkpointEvery,
    interruptAfter: o.interruptAfter,
  };
}

/**
 * Checks what `out` (the result, its `.diag.jsonl` and its `.model` artefact) and `checkpoint`
 * would replace (src/util/outpath.ts): never an input (the spec, --source, the dataset's input
 * files once known, each other), nothing inside an export, checkpoint, artefact or prepared
 * dataset, a result only over a regular file, an artefact only over an artefact, a checkpoint only
 * over a checkpoint. Returns the real paths (a symlinked output is written through).
 */
export function checkTrainOutputs(o: Pick<ResolvedTrainOptions, "out" | "checkpoint" | "dataset" | "source">, dataInputs: readonly InputPath[] = []): { out?: string; checkpoint?: string } {
  const inputs: InputPath[] = [...dataInputs, ...specFiles(o)];
  if (typeof o.dataset === "string" && existsSync(o.dataset)) inputs.push({ what: "--dataset", path: o.dataset });
  if (o.source !== undefined) inputs.push({ what: "--source", path: o.source });
  const res: { out?: string; checkpoint?: string } = {};
  if (o.checkpoint) {
    const outs: InputPath[] = o.out ? [{ what: "--out", path: o.out }, { what: "the model artefact of --out", path: modelArtifactPath(o.out) }] : [];
    res.checkpoint = checkOutput("--checkpoint", o.checkpoint, "checkpoint", [...inputs, ...outs]);
  }
  if (o.out) {
    const ck: InputPath[] = o.checkpoint ? [{ what: "--checkpoint", path: o.checkpoint }] : [];
    res.out = checkOutput("--out", o.out, "file", [...inputs, ...ck]);
    checkOutput("the model artefact of --out", modelArtifactPath(o.out), "artifact", [...inputs, ...ck]);
    checkOutput("the diagnostics of --out", diagPath(o.out), "file", [...inputs, ...ck]);
  }
  return res;
}

/**
 * The input files the dataset spec names, resolved as prepare resolves them (known before any
 * work, whether or not a cache of the same content exists elsewhere: a cache found by content
 * hash records the paths of the copy it was built from, not this spec's). Empty when the spec
 * cannot be resolved: loading the dataset then fails with its own message.
 */
function specFiles(o: Pick<ResolvedTrainOptions, "dataset" | "source">): InputPath[] {
  try {
    const { spec, baseDir } = resolveSpec(o.dataset, o.source !== undefined ? { dataDir: o.source } : {});
    return specInputs(spec, baseDir).map((f) => ({ what: "the dataset input", path: f }));
  } catch {
    return [];
  }
}

/** Makes the parent folder of `path`; when it cannot, checkWritable says why, naming `what` and `path`. */
function ensureParent(path: string, what: string): void {
  try {
    mkdirSync(dirname(path), { recursive: true });
  } catch {
    checkWritable(path, "dir", what);
  }
}

/** The per-step diagnostics beside a result: `runs/x.json` -> `runs/x.diag.jsonl`. */
function diagPath(out: string): string {
  return out.replace(/\.json$/, "") + ".diag.jsonl";
}

/**
 * Trains and writes the result. Before any work: options are validated, `out` and
 * `checkpoint` are checked (checkTrainOutputs) and writable, and a lock (owner pid) is
 * taken on each of them (`<real path>.lock`), so two processes never train into the same
 * result or checkpoint; a lock left by a dead process is taken over.
 */
export async function runTraining(options: TrainOptions, data?: PreparedDataset): Promise<RunResult> {
  const o = resolveTrainOptions(options);
  const real = checkTrainOutputs(o);
  if (real.out) checkWritable(real.out, "file", "--out");
  // the checkpoint folder itself is made after its lock (a run refused for a busy output leaves nothing); its parent now
  if (real.checkpoint) ensureParent(real.checkpoint, "--checkpoint");
  const locks: Lock[] = [];
  try {
    if (real.out) locks.push(acquireLock(`${real.out}.lock`, `--out ${o.out}`));
    if (real.checkpoint) locks.push(acquireLock(`${real.checkpoint}.lock`, `checkpoint ${o.checkpoint}`));
    if (real.checkpoint) checkWritable(real.checkpoint, "dir", "--checkpoint");
    return await train(o, data);
  } finally {
    for (const l of locks.reverse()) l.release();
  }
}

async function train(o: ResolvedTrainOptions, data?: PreparedDataset): Promise<RunResult> {
  const built = await buildRun(o, data);
  checkTrainOutputs(o, datasetInputs(built.data)); // the dataset's own files are known now
  const { model, handle, method } = built;
  const meta = built.data.meta;
  const mode = o.progress ?? "none";
  const bar =
    mode === "bar"
      ? new cliProgress.SingleBar(
          { format: " {bar} {percentage}% | step {value}/{total} | {speed} steps/s | loss {loss} | {info}", hideCursor: true },
          cliProgress.Presets.shades_grey,
        )
      : null;
  const t0 = Date.now();
  let started = false;
  const held: string[] = [];
  const taskNames = meta.tasks.map((t) => t.name);
  // without a terminal: a plain line at least every 30 s (src/train/progress.ts)
  const lines = mode === "log" ? new LogProgress({ tasks: taskNames, epochs: o.epochs }) : null;
  const out = await runLoop(built.data, handle, method, loopConfig(o, built), {
    onStep: ({ step, totalSteps, losses, epoch }) => {
      if (lines) return lines.step({ step, totalSteps, epoch, losses });
      const speed = (step / Math.max(1e-3, (Date.now() - t0) / 1000)).toFixed(2);
      const loss = lossText(taskNames, losses);
      if (bar) {
        if (!started) {
          bar.start(totalSteps, 0, { speed, loss, info: "" });
          started = true;
        }
        bar.update(step, { speed, loss, info: `epoch ${epoch + 1}` });
      } else if (mode === "json") {
        process.stdout.write(JSON.stringify({ type: "progress", step, total: totalSteps, info: `ep ${epoch + 1} loss ${loss}` }) + "\n");
      }
    },
    onEval: (p) => {
      const msg = `epoch ${p.epoch + 1} step ${p.step}: val AUC ${p.valAuc.map((x) => (Number.isFinite(x) ? x.toFixed(4) : "n/a")).join(" ")}`;
      if (bar) bar.update({ info: msg });
      else if (lines) lines.eval(p);
      else if (mode === "json") process.stdout.write(JSON.stringify({ type: "eval", ...p }) + "\n");
    },
    // while the progress bar is drawn, messages (the test split's warnings) wait until it stops
    log: (m) => (bar && started ? held.push(m) : console.error(m)),
  }).finally(() => {
    bar?.stop();
    for (const m of held) console.error(m);
  });
  if (!out.completed) throw new Error("training was interrupted (interruptAfter); resume with the same --checkpoint");
  const modelName = built.fingerprint.model as string;
  const methodEntry = getMethod(o.method);
  const label = modelName === "single" ? "Single" : modelName === "lr" ? "LR" : methodEntry.label;
  const result = toRunResult(
    {
      dataset: meta.name,
      model: modelName,
      method: modelName === "single" || modelName === "lr" ? modelName : methodEntry.name,
      methodLabel: label,
      seed: o.seed,
      tasks: meta.tasks.map((t) => t.name),
      config: { ...o, dataset: typeof o.dataset === "string" ? o.dataset : o.dataset.name, model: modelName, method: methodEntry.name, params: model.numParams(), datasetHash: built.datasetHash, fingerprint: built.fingerprint, provenance: provenanceOf(o) } as unknown as Record<string, unknown>,
    },
    out,
  );
  if (o.out) {
    // the best parameters first (the model artefact, beside the result), then the result: a result never lacks its model
    saveModelArtifact(modelArtifactPath(o.out), artifactInfo(result, built, o), model.getParams());
    const diag = result.diagnostics.map((d) => JSON.stringify(d)).join("\n");
    writeFileAtomic(diagPath(o.out), diag + (diag ? "\n" : ""));
    writeFileAtomic(o.out, JSON.stringify(result, (_k, v: unknown) => (typeof v === "number" && !Number.isFinite(v) ? null : v)));
  }
  // the budget flag of every run (bench lists it among the runs' warnings); epochs counted from 1
  if ((mode === "bar" || mode === "log") && stillImproving(result)) console.error(`note: best epoch ${result.bestEpoch + 1} of ${result.epochsRun}: ${STILL_IMPROVING_WARNING}`);
  return result;
}

/** The files a prepared dataset was built from and its folder (inputs no output may replace). */
function datasetInputs(ds: PreparedDataset): InputPath[] {
  const d = ds as PreparedDataset & { dir?: unknown; manifest?: { inputs?: { file?: unknown }[] } };
  const files = (d.manifest?.inputs ?? []).map((i) => i.file).filter((f): f is string => typeof f === "string");
  return [...files.map((f) => ({ what: "the dataset input", path: f })), ...(typeof d.dir === "string" ? [{ what: "the prepared dataset", path: d.dir }] : [])];
}

/** What the model artefact records about a finished run (see src/train/artifact.ts). */
function artifactInfo(result: RunResult, built: Built, o: ResolvedTrainOptions): ModelArtifactInfo {
  const fp = built.fingerprint;
  const finite = (v: unknown): unknown => (typeof v === "number" && !Number.isFinite(v) ? null : v);
  const json = <T>(x: T): T => JSON.parse(JSON.stringify(x, (_k, v: unknown) => finite(v))) as T;
  return {
    format: MODEL_ARTIFACT_FORMAT,
    architecture: fp.model as string,
    modelOptions: fp.modelOptions as ModelArtifactInfo["modelOptions"],
    dtype: built.model.dtype,
    dataset: {
      name: built.data.meta.name,
      hash: built.datasetHash,
      ...(typeof o.dataset === "string" ? { option: o.dataset } : {}),
      ...(o.cacheDir !== undefined ? { cacheDir: resolvePath(o.cacheDir) } : {}),
      ...(o.source !== undefined ? { source: resolvePath(o.source) } : {}),
    },
    fields: json(built.data.meta.fields),
    dense: json(built.data.meta.dense ?? []),
    tasks: [...result.tasks],
    method: result.method,
    methodLabel: result.methodLabel,
    seed: result.seed,
    fingerprint: fp,
    config: json(result.config) as ModelArtifactInfo["config"],
    metrics: json({ val: result.val, test: result.test, bestEpoch: result.bestEpoch, steps: result.steps }),
  };
}
