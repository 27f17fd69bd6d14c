/** A tiny exported model (test/train/tiny-data.ts's two-task dataset, shared-bottom, a few steps), for fast score tests. */
import { join } from "node:path";
import { exportModel } from "../../src/deploy/export.ts";
import { runTraining } from "../../src/train/run.ts";
import { writeTinyDataset } from "../train/tiny-data.ts";

/** Trains and exports the tiny model under `root`; returns the model folder and the dataset spec path. */
export async function tinyModel(root: string): Promise<{ modelDir: string; spec: string; cacheDir: string }> {
  const spec = writeTinyDataset(join(root, "data"), { seed: 1 });
  const cacheDir = join(root, "cache");
  const out = join(root, "run.json");
  await runTraining({
    dataset: spec,
    cacheDir,
    model: "shared-bottom",
    modelOptions: { bottomUnits: "4" },
    method: "ew",
    seed: 1,
    epochs: 1,
    maxSteps: 3,
    batchSize: 32,
    embDim: 2,
    patience: 0,
    out,
  });
  const modelDir = join(root, "model");
  await exportModel({ source: out, out: modelDir, cacheDir });
  return { modelDir, spec, cacheDir };
}
