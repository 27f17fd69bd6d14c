/**
 * mtlcraft library entry: data -> model -> per-task gradients -> balancing ->
 * optimiser -> metrics -> report. The CLI (src/cli.ts) is a thin layer over these.
 */
export type {
  BalanceInput, BalanceOutput, BalanceDiagnostics, BalancingMethod, MethodEntry, GramMethodEntry, MethodKind, LossWeighting, JsonValue, GramInput, GramContext,
  GramWeights,
} from "./balance/types.ts";
export {
  METHODS, BUILTIN_METHODS, createMethod, getMethod, methodNames, registerMethod, unregisterMethod, checkMethodEntry, resolveMethodOptions, type AnyMethodEntry,
} from "./balance/registry.ts";
export { gramian, combine, dot, solveSPD, symEig, projectSimplex, normsFromGram, diagnosticsFromGram } from "./balance/linalg.ts";
export { alignMagnitudes, gradcraftStep } from "./balance/gradcraft.ts";
export type { Batch, DatasetMeta, FieldInfo, PreparedDataset, SplitReader, TaskInfo } from "./data/types.ts";
export { loadDataset, prepareDataset, openPrepared, inspectDataset, formatSummary } from "./data/index.ts";
export { configureEngine, engineOptions, cudaUnavailable, MEMORY_MODES, type Device, type EngineOptions, type MemoryMode } from "./engine/ort.ts";
export { programFor, buildProgramGraph, releasePrograms, type ProgramKind, type ProgramKey } from "./engine/programs.ts";
export { Graph, GraphShapeError, type Tensor, type DType } from "./graph/graph.ts";
export { grad, VJP_RULES } from "./graph/autodiff.ts";
export { serialize, ONNX_IR_VERSION, ONNX_OPSET } from "./graph/onnx.ts";
export { createModel, MODELS, MODEL_NAMES } from "./model/index.ts";
export { Adam, createAdam } from "./optim/adam.ts";
export { trainStep, predict } from "./train/step.ts";
export { runLoop } from "./train/trainer.ts";
export { runTraining, buildRun, type TrainOptions, type ResolvedTrainOptions } from "./train/run.ts";
export { auc } from "./metrics/auc.ts";
export { gauc, gaucAll } from "./metrics/gauc.ts";
export { logloss, loglossFromLogits } from "./metrics/logloss.ts";
export { calibration, BINNINGS, type Binning, type CalibrationBin, type CalibrationOptions, type CalibrationResult } from "./metrics/calibration.ts";
export { averageOverTasks, relativeImprovement } from "./metrics/summary.ts";
export { buildComparisonTable, toMarkdown, toCsv, toHtmlTable } from "./report/table.ts";
export { differencesToMarkdown, differencesToCsv, differencesToHtml, type DifferenceTable, type DiffCell } from "./report/table.ts";
export { pairedDifference, meanInterval, studentTQuantile, type PairedInterval } from "./metrics/ci.ts";
export { generateSynth, writeSynthDataset, synthSpec, taskWeights, SYNTH_DEFAULTS, type SynthOptions, type SynthData } from "./data/synth.ts";
export { runConflictBench, readConflictConfig, type ConflictConfig } from "./sweep/conflict.ts";
export { buildConflictTable, conflictToMarkdown, conflictToCsv, renderConflictReport, type ConflictTable } from "./report/conflict.ts";
export { renderReport } from "./report/html.ts";
export type { RunResult } from "./report/types.ts";
export { runSweep, type SweepOutput } from "./sweep/sweep.ts";
export { parseShard, shardJobs, runQueueWorker, type Shard, type SweepMode } from "./sweep/modes.ts";
export { redactUrl, connectionOptions, type QueueConnection } from "./sweep/queue-url.ts";
export type { EnqueueOptions, QueueWorkerOptions, QueueWorkerHandle } from "./sweep/queue.ts";
export { Rng } from "./util/rng.ts";

// ---- writing your own balancing method -------------------------------------------------------
// The built-in entries, each typed with its options (e.g. gradcraft: MethodEntry<GradCraftOptions>);
// every gradient method but DB-MTL also has weightsFromGram (coefficients from a Gramian alone).
export { ew, type EWOptions } from "./balance/ew.ts";
export { uw, type UWOptions } from "./balance/uw.ts";
export { dwa, type DWAOptions } from "./balance/dwa.ts";
export { gradnorm, type GradNormOptions } from "./balance/gradnorm.ts";
export { rlw, type RLWOptions } from "./balance/rlw.ts";
export { mgda, type MGDAOptions, type MgdaNormalization } from "./balance/mgda.ts";
export { pcgrad, type PCGradOptions } from "./balance/pcgrad.ts";
export { pcgradPlus, type PCGradPlusOptions } from "./balance/pcgrad-plus.ts";
export { gradvac, type GradVacOptions } from "./balance/gradvac.ts";
export { cagrad, type CAGradOptions } from "./balance/cagrad.ts";
export { imtl, type IMTLOptions } from "./balance/imtl.ts";
export { dbmtl, type DBMTLOptions } from "./balance/dbmtl.ts";
export { nashmtl, type NashMTLOptions } from "./balance/nashmtl.ts";
export { alignedmtl, type AlignedMTLOptions } from "./balance/alignedmtl.ts";
export { gradcraft, type GradCraftOptions, GRADCRAFT_DEFAULTS } from "./balance/gradcraft.ts";
export { famo, type FAMOOptions, FAMO_DEFAULTS } from "./balance/famo.ts";
export { stch, type STCHOptions, STCH_DEFAULTS } from "./balance/stch.ts";
// Loss-aware weightings (weights from this step's losses, compiled into the training program).
export type { LossAwareWeighting } from "./balance/types.ts";
export { W, evalWeightRule, type WeightExpr } from "./balance/weightrule.ts";
// Helpers a method needs: Gramian lookup, output assembly (finish), option and input checks, state helpers.
export {
  gramOf, finish, withDefaults, checkRange, checkTasks, checkInput, expectNullState, independentSubset, NonFiniteInputError, MAX_ABS_GRAD,
} from "./balance/common.ts";
export { adamInit, adamStep, adamToJson, adamFromJson, numArray, stateObject, type AdamState } from "./balance/methodkit.ts";
export { gramWeights, toGram } from "./balance/gram.ts";

// ---- writing your own architecture --------------------------------------------------------------
export {
  ARCHITECTURES, registerArchitecture, unregisterArchitecture, getArchitecture, checkModelEntry, checkModelOptions, modelNames, type ModelEntry,
} from "./model/registry.ts";
export type { Architecture, DenseParam, EmbeddingTable, ModelCommonOptions, ParamGroup, Mode, ForwardCtx, NoiseSpec } from "./model/types.ts";
export { Model } from "./model/model.ts";
export { COMMON_DEFAULTS, EXPERT_UNITS, checkCommon, checkUnits, checkInt, checkNum, inputWidth, type ModelInput } from "./model/common.ts";
export { ParamBuilder, buildTables, buildTower, linear, mlp, tower, mixture, type LinearSpec, type MlpSpec, type TowerSpec } from "./model/layers.ts";

// ---- plugins (methods / architectures for the CLI and bench workers) -----------------------------
export { definePlugin, registerPlugin, loadPlugins, type MtlcraftPlugin } from "./plugins.ts";

// ---- option schemas: types, defaults, validation, JSON Schemas -----------------------------------
export { TRAIN_OPTIONS, TRAIN_DEFAULTS, resolveTrainOptions, validateTrainOptions, type TrainField } from "./config/train-options.ts";
export { SWEEP_CONFIG, resolveSweepConfig, checkSweepFile, readSweepFile, type SweepFile } from "./config/sweep-config.ts";
export { PAPER_METHODS, BASELINES, expandMethods, type SweepConfig, type Job, type OptionValue, type ParamValue } from "./sweep/plan.ts";
export { trainOptionsJsonSchema, sweepConfigJsonSchema, datasetSpecJsonSchema, type JsonSchema } from "./config/json-schema.ts";
export { validateSpec, DataError, BUILTIN_DATASETS, DEFAULT_CACHE_DIR, type DatasetSpec, type TaskSpec, type SplitSpec, type Manifest } from "./data/index.ts";

// ---- from trained model to ranking: model artefacts, ONNX export, scoring raw logs, score fusion ---
export { loadModelArtifact, modelFromArtifact, modelArtifactPath, saveModelArtifact, type ModelArtifactInfo, type LoadedArtifact } from "./train/artifact.ts";
export { exportModel, EXPORT_TOLERANCE, type ExportOptions, type ExportResult } from "./deploy/export.ts";
export { loadModel, type ScoringModel, type IdBatch, type FusionFile } from "./deploy/model.ts";
export { scoreFile, scoreRows, type ScoreOptions, type ScoreFileResult, type ScoredRow } from "./deploy/score.ts";
export { fuseModel, type FuseOptions, type FuseResult } from "./deploy/fuse.ts";
export { evaluateFile, EVALUATE_FORMAT, EVALUATE_VERSION, type EvaluateOptions, type EvaluateResult, type TaskEvaluation } from "./deploy/evaluate.ts";
export { parseFusion, fuseScores, describeFusion, parseObjective, searchFusion, RankObjective, FUSION_KINDS, type Fusion, type FusionKind, type ObjectiveSpec } from "./deploy/fusion.ts";
export type { FeaturesFile, FeaturesTask } from "./deploy/features.ts";
export type { FeatureEncoding, EncodedField, EncodedDense } from "./data/encode.ts";
