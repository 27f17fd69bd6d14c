/**
 * The model artefact: the best parameters of a finished run, kept beside its result.
 *
 * `train --out runs/x.json` (and so every bench job) writes `runs/x.model/` before the result:
 * a checkpoint-format folder (src/train/checkpoint.ts: `state.json`, `tensors.bin` and the sha256
 * `checksums.json`, written to a temporary folder and renamed into place) holding only the
 * parameters (float32, no optimiser state: about a third of a resumable checkpoint) and what
 * is needed to rebuild the model and find its data: the architecture and its options, the dataset
 * name and content hash, the fields, dense inputs and tasks, the run's configuration and its
 * validation and test metrics. `mtlcraft export` turns it into an ONNX model.
 *
 * `loadModelArtifact` also reads a training checkpoint folder (`--checkpoint`): its `best`
 * parameters (else its current ones) with the run fingerprint it records.
 */
import { existsSync, statSync } from "node:fs";
import type { JsonValue } from "../balance/types.ts";
import type { DatasetMeta, DenseInfo, FieldInfo } from "../data/types.ts";
import type { FloatDType } from "../graph/graph.ts";
import { createModel, getArchitecture } from "../model/registry.ts";
import type { Model } from "../model/model.ts";
import type { SplitMetrics } from "../report/types.ts";
import { loadCheckpoint, saveCheckpoint, type Fingerprint, type TensorMap } from "./checkpoint.ts";

export const MODEL_ARTIFACT_FORMAT = "mtlcraft-model-1";

export interface ModelArtifactInfo {
  format: typeof MODEL_ARTIFACT_FORMAT;
  /** Architecture name (`--model`). */
  architecture: string;
  /** Every architecture option the run used (its defaults, --model-opt, embDim, dropout). */
  modelOptions: Record<string, JsonValue>;
  dtype: FloatDType;
  dataset: {
    /** Dataset name (the manifest's). */
    name: string;
    /** Content hash of the prepared dataset the run trained on. */
    hash: string;
    /** The `dataset` option as given (a built-in name or a spec path), when known. */
    option?: string;
    cacheDir?: string;
    source?: string;
  };
  fields: FieldInfo[];
  dense: DenseInfo[];
  tasks: string[];
  method: string;
  methodLabel: string;
  seed: number;
  fingerprint: Fingerprint;
  /** The run's resolved options (the result's `config`). */
  config: Record<string, JsonValue>;
  /** Metrics of the kept parameters (absent for a checkpoint). */
  metrics?: { val: SplitMetrics; test: SplitMetrics; bestEpoch: number; steps: number };
}

export interface LoadedArtifact {
  /** Where it was read from (the .model folder or the checkpoint folder). */
  dir: string;
  kind: "model" | "checkpoint";
  /** Complete for a model artefact; a checkpoint knows only its fingerprint (fields, tasks and dense come from the dataset). */
  info: Partial<ModelArtifactInfo> & Pick<ModelArtifactInfo, "architecture" | "modelOptions" | "dataset" | "fingerprint">;
  params: TensorMap;
}

/** The artefact folder beside a result file: `runs/x.json` -> `runs/x.model`. */
export function modelArtifactPath(resultPath: string): string {
  return resultPath.replace(/\.json$/, "") + ".model";
}

/** Writes the artefact (atomically: temp folder + rename; sha256 checksums). */
export function saveModelArtifact(dir: string, info: ModelArtifactInfo, params: TensorMap): void {
  saveCheckpoint(dir, { json: { artifact: info as unknown as JsonValue }, tensors: { params } });
}

function isObj(x: unknown): x is Record<string, unknown> {
  return x !== null && typeof x === "object" && !Array.isArray(x);
}

/**
 * Reads a model artefact from a result file (its `.model` sibling), a `.model` folder, or a
 * training checkpoint folder. Checksums are verified; errors name the file.
 */
export function loadModelArtifact(path: string): LoadedArtifact {
  if (!existsSync(path)) throw new Error(`model source ${path} does not exist (give a result .json, its .model folder or a training checkpoint folder)`);
  let dir = path;
  if (statSync(path).isFile()) {
    if (!path.endsWith(".json")) throw new Error(`model source ${path} is a file but not a result .json`);
    dir = modelArtifactPath(path);
    if (!existsSync(dir)) {
      throw new Error(`result ${path} has no model artefact beside it (${dir} is missing): it was written by an older mtlcraft or the folder was removed; train again (or export its --checkpoint folder)`);
    }
  }
  let ck;
  try {
    ck = loadCheckpoint(dir);
  } catch (e) {
    throw new Error(`${(e as Error).message.replace(/; delete that folder to start over$/, "")}`, { cause: e });
  }
  if (!ck) throw new Error(`${dir} holds no model artefact or checkpoint (state.json is missing)`);
  const art = ck.json.artifact;
  if (isObj(art)) {
    if (art.format !== MODEL_ARTIFACT_FORMAT) throw new Error(`${dir}: unknown model artefact format ${String(art.format)}`);
    const params = ck.tensors.params;
    if (!params) throw new Error(`${dir}: the model artefact holds no parameters`);
    return { dir, kind: "model", info: art as unknown as ModelArtifactInfo, params };
  }
  const fp = ck.json.fingerprint;
  if (!isObj(fp) || typeof fp.model !== "string" || !isObj(fp.modelOptions) || typeof fp.dataset !== "string" || typeof fp.datasetHash !== "string") {
    throw new Error(`${dir}: the checkpoint records no run fingerprint (model, options, dataset), so the model cannot be rebuilt`);
  }
  let params = ck.tensors.best;
  if (!params) {
    params = {};
    for (const [k, v] of Object.entries(ck.tensors.model ?? {})) if (k.startsWith("param/")) params[k.slice(6)] = v;
  }
  return {
    dir,
    kind: "checkpoint",
    info: {
      architecture: fp.model,
      modelOptions: fp.modelOptions as Record<string, JsonValue>,
      dataset: { name: fp.dataset, hash: fp.datasetHash },
      fingerprint: fp as Fingerprint,
      ...(typeof fp.method === "string" ? { method: fp.method } : {}),
      ...(typeof fp.seed === "number" ? { seed: fp.seed } : {}),
    },
    params,
  };
}

/** Rebuilds the model of an artefact on its dataset's fields and sets the saved parameters. */
export function modelFromArtifact(art: LoadedArtifact, meta: Pick<DatasetMeta, "fields" | "dense" | "tasks">): Model {
  const entry = getArchitecture(art.info.architecture);
  const options = { ...art.info.modelOptions } as Record<string, unknown>;
  delete options.seed;
  const model = createModel(entry, { fields: meta.fields, numTasks: meta.tasks.length, dense: meta.dense }, options);
  try {
    model.setParams(art.params);
  } catch (e) {
    throw new Error(`${art.dir}: the saved parameters do not fit the ${art.info.architecture} model on this dataset: ${(e as Error).message}`, { cause: e });
  }
  return model;
}
