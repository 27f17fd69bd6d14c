/**
 * mtlcraft library entry: data -> model -> per-task gradients -> balancing ->
 * optimiser -> metrics -> report. The CLI (src/cli.ts) is a thin layer over these.
 */
export type { BalanceInput, BalanceOutput, BalancingMethod, MethodEntry, JsonValue } from "./balance/types.ts";
export { METHODS, createMethod, getMethod, methodNames } from "./balance/registry.ts";
export { gramian, combine, dot, solveSPD, symEig, projectSimplex } from "./balance/linalg.ts";
export { alignMagnitudes, gradcraftStep } from "./balance/gradcraft.ts";
export type { Batch, DatasetMeta, FieldInfo, PreparedDataset, SplitReader, TaskInfo } from "./data/types.ts";
export { loadDataset, prepareDataset, openPrepared, inspectDataset, formatSummary } from "./data/index.ts";
export { configureEngine, engineOptions, cudaUnavailable, type Device, type EngineOptions } from "./engine/ort.ts";
export { programFor, buildProgramGraph, releasePrograms, type ProgramKind, type ProgramKey } from "./engine/programs.ts";
export { Graph, GraphShapeError, type Tensor, type DType } from "./graph/graph.ts";
export { grad, VJP_RULES } from "./graph/autodiff.ts";
export { serialize, ONNX_IR_VERSION, ONNX_OPSET } from "./graph/onnx.ts";
export { createModel, MODELS, MODEL_NAMES } from "./model/index.ts";
export { Adam, createAdam } from "./optim/adam.ts";
export { trainStep, predict } from "./train/step.ts";
export { runLoop } from "./train/trainer.ts";
export { runTraining, buildRun, type TrainOptions } from "./train/run.ts";
export { auc } from "./metrics/auc.ts";
export { gauc, gaucAll } from "./metrics/gauc.ts";
export { logloss, loglossFromLogits } from "./metrics/logloss.ts";
export { averageOverTasks, relativeImprovement } from "./metrics/summary.ts";
export { buildComparisonTable, toMarkdown, toCsv, toHtmlTable } from "./report/table.ts";
export { renderReport } from "./report/html.ts";
export type { RunResult } from "./report/types.ts";
export { runSweep } from "./sweep/sweep.ts";
export { Rng } from "./util/rng.ts";
