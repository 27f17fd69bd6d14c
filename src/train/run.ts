/**
 * `train`: one model, one balancing method, one seed, end to end — dataset,
 * model, optimiser, loop, result JSON and per-step diagnostics JSONL
 * (both written atomically), with a progress bar or JSON progress lines.
 */
import cliProgress from "cli-progress";
import type { BalancingMethod, JsonValue } from "../balance/types.ts";
import { createMethod, getMethod, resolveMethodOptions } from "../balance/registry.ts";
import type { Batch, PreparedDataset } from "../data/types.ts";
import { loadDataset } from "../data/index.ts";
import { configureEngine, type Device } from "../engine/ort.ts";
import { ARCHITECTURES, checkModelOptions, createModel } from "../model/registry.ts";
import type { Model } from "../model/model.ts";
import { createAdam, type Adam } from "../optim/adam.ts";
import type { RunResult } from "../report/types.ts";
import { checkWritable, writeFileAtomic } from "../util/fsx.ts";
import { acquireLock, type Lock } from "../util/lock.ts";
import { validateTrainOptions } from "../config/train-options.ts";
import { createHash } from "node:crypto";
import type { Rng } from "../util/rng.ts";
import { trainStep, predict, getTrainState, setTrainState, type GradScope } from "./step.ts";
import { runLoop, toRunResult, type LoopConfig, type TrainableModel } from "./trainer.ts";
import type { Fingerprint, TensorMap } from "./checkpoint.ts";

export interface TrainOptions {
  dataset: string;
  source?: string;
  cacheDir?: string;
  model: string;
  modelOptions?: Record<string, unknown>;
  method: string;
  methodOptions?: Record<string, unknown>;
  seed: number;
  epochs: number;
  maxSteps?: number;
  batchSize: number;
  lr: number;
  l2: number;
  embDim: number;
  dropout: number;
  scope: GradScope;
  evalEvery?: number;
  evalBatchSize?: number;
  patience?: number;
  minDelta?: number;
  diagEvery?: number;
  maxEvalRows?: number;
  out?: string;
  checkpoint?: string;
  checkpointEvery?: number;
  interruptAfter?: number;
  progress?: "bar" | "json" | "none";
  /** Engine intra-op threads (default: every core; `bench` runs 1 per worker). */
  threads?: number;
  /** Execution provider: "cpu" (default) or "cuda" (needs onnxruntime-node's CUDA binaries). */
  device?: Device;
}

/** Adapts model + optimiser to the loop's TrainableModel. */
export class ModelHandle implements TrainableModel {
  constructor(
    readonly model: Model,
    readonly optimizer: Adam,
    readonly scope: GradScope,
  ) {}
  async step(batch: Batch, method: BalancingMethod, info: { step: number; epoch: number; rng: Rng; diagnostics: boolean }) {
    const r = await trainStep(this.model, this.optimizer, method, batch, { ...info, scope: this.scope });
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
  const out: Record<string, unknown> = {};
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

/** Builds dataset, model, optimiser and method from options (validated here, once). */
export async function buildRun(o: TrainOptions, data?: PreparedDataset): Promise<Built> {
  validateTrainOptions(o);
  const modelOptions = parseModelOptions(o.modelOptions ?? {});
  for (const k of Object.keys(modelOptions)) {
    if (MODEL_KEYS_FROM_TRAIN[k]) throw new Error(`model option ${k} is set by the train option ${MODEL_KEYS_FROM_TRAIN[k]}, not --model-opt`);
  }
  if (ARCHITECTURES.has(o.model)) checkModelOptions(o.model, modelOptions, { strict: true });
  const methodOptions = resolveMethodOptions(o.method, o.methodOptions ?? {});
  configureEngine({ ...(o.threads !== undefined ? { threads: o.threads } : {}), ...(o.device !== undefined ? { device: o.device } : {}) });
  const ds = data ?? (await loadDataset(o.dataset, { cacheDir: o.cacheDir, source: o.source }));
  const T = ds.meta.tasks.length;
  const model = createModel(o.model, { fields: ds.meta.fields, numTasks: T }, {
    ...modelOptions,
    embDim: o.embDim,
    dropout: o.dropout,
    seed: o.seed,
  });
  const optimizer = createAdam(model, { lr: o.lr, weightDecay: o.l2 });
  const method = createMethod(o.method, T, o.methodOptions ?? {});
  const datasetHash = datasetContentHash(ds);
  const archOptions: Record<string, unknown> = { ...ARCHITECTURES.get(o.model)!.defaults, ...modelOptions, embDim: o.embDim, dropout: o.dropout };
  delete archOptions.seed;
  const fingerprint = JSON.parse(
    JSON.stringify({
      dataset: ds.meta.name,
      datasetHash,
      model: o.model,
      modelOptions: archOptions,
      method: getMethod(o.method).name,
      methodOptions,
      seed: o.seed,
      batchSize: o.batchSize,
      lr: o.lr,
      l2: o.l2,
      scope: o.scope,
    }),
  ) as Fingerprint;
  return { data: ds, model, handle: new ModelHandle(model, optimizer, o.scope), method, datasetHash, fingerprint };
}

/** Loop settings from options; pass the built run to have checkpoints carry (and check) its fingerprint. */
export function loopConfig(o: TrainOptions, built?: Pick<Built, "fingerprint">): LoopConfig {
  return {
    fingerprint: built?.fingerprint,
    epochs: o.epochs,
    batchSize: o.batchSize,
    evalBatchSize: o.evalBatchSize ?? 8192,
    evalEvery: o.evalEvery ?? 0,
    maxSteps: o.maxSteps ?? 0,
    patience: o.patience ?? 2,
    minDelta: o.minDelta ?? 1e-4,
    diagEvery: o.diagEvery ?? 10,
    maxEvalRows: o.maxEvalRows ?? 0,
    seed: o.seed,
    checkpointDir: o.checkpoint,
    checkpointEvery: o.checkpointEvery ?? 0,
    interruptAfter: o.interruptAfter,
  };
}

/**
 * Trains and writes the result. Before any work: options are validated, `out` and
 * `checkpoint` are checked writable, and a lock (owner pid) is taken on the
 * checkpoint (or, without one, on `out`) so two processes never train into the same
 * place; a lock left by a dead process is taken over.
 */
export async function runTraining(o: TrainOptions, data?: PreparedDataset): Promise<RunResult> {
  validateTrainOptions(o);
  if (o.out) checkWritable(o.out, "file", "--out");
  if (o.checkpoint) checkWritable(o.checkpoint, "dir", "--checkpoint");
  const lockOn = o.checkpoint ? `${o.checkpoint.replace(/[\\/]+$/, "")}.lock` : o.out ? `${o.out}.lock` : null;
  const lock: Lock | null = lockOn ? acquireLock(lockOn, o.checkpoint ? `checkpoint ${o.checkpoint}` : `result ${o.out}`) : null;
  try {
    return await train(o, data);
  } finally {
    lock?.release();
  }
}

async function train(o: TrainOptions, data?: PreparedDataset): Promise<RunResult> {
  const built = await buildRun(o, data);
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
  const out = await runLoop(built.data, handle, method, loopConfig(o, built), {
    onStep: ({ step, totalSteps, losses, epoch }) => {
      const speed = (step / Math.max(1e-3, (Date.now() - t0) / 1000)).toFixed(2);
      const loss = Array.from(losses, (l) => l.toFixed(3)).join(" ");
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
      const msg = `epoch ${p.epoch + 1} step ${p.step}: val AUC ${p.valAuc.map((x) => x.toFixed(4)).join(" ")}`;
      if (bar) bar.update({ info: msg });
      else if (mode === "json") process.stdout.write(JSON.stringify({ type: "eval", ...p }) + "\n");
    },
    log: (m) => console.error(m),
  }).finally(() => bar?.stop());
  if (!out.completed) throw new Error("training was interrupted (interruptAfter); resume with the same --checkpoint");
  const label = o.model === "single" ? "Single" : o.model === "lr" ? "LR" : getMethod(o.method).label;
  const result = toRunResult(
    {
      dataset: meta.name,
      model: o.model,
      method: o.model === "single" || o.model === "lr" ? o.model : getMethod(o.method).name,
      methodLabel: label,
      seed: o.seed,
      tasks: meta.tasks.map((t) => t.name),
      config: { ...o, params: model.numParams(), datasetHash: built.datasetHash, fingerprint: built.fingerprint } as unknown as Record<string, unknown>,
    },
    out,
  );
  if (o.out) {
    const diag = result.diagnostics.map((d) => JSON.stringify(d)).join("\n");
    writeFileAtomic(o.out.replace(/\.json$/, "") + ".diag.jsonl", diag + (diag ? "\n" : ""));
    writeFileAtomic(o.out, JSON.stringify(result, (_k, v: unknown) => (typeof v === "number" && !Number.isFinite(v) ? null : v)));
  }
  return result;
}
