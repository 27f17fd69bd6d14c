/** Public API of the data layer. */
import type { PreparedDataset } from "./types.ts";
import type { DatasetSpec } from "./spec.ts";
import { prepareDataset, type PrepareOptions } from "./prepare.ts";
import { openPrepared, type ReaderOptions } from "./reader.ts";

export * from "./types.ts";
export { DataError } from "./errors.ts";
export {
  validateSpec,
  SPEC_SCHEMA,
  splitHashSql,
  splitThresholds,
  type DatasetSpec,
  type TaskSpec,
  type SplitSpec,
  type JoinSpec,
  type ColumnRef,
  type CategoricalRef,
  type NumericRef,
  type DenseRef,
  type CsvOptions,
} from "./spec.ts";
export { renderSpecReference, SPEC_REFERENCE_PATH } from "./spec-reference.ts";
export { BUILTIN_DATASETS, bundledDataDir, kuairandSpec, wechatSpec, resolveSpec, loadSpecFile } from "./builtin.ts";
export { prepareDataset, type PrepareOptions, type PrepareResult } from "./prepare.ts";
export { datasetHash, type Manifest } from "./manifest.ts";
export { removeStaleTemps, DEFAULT_CACHE_DIR } from "./cache.ts";
export { openPrepared, mixSeed, type ReaderOptions } from "./reader.ts";
export { verifyPrepared, scanCsv, type VerifyMode, type CsvInfo, type CsvScanOptions } from "./integrity.ts";
export { compileExpr, ALLOWED_FUNCTIONS } from "./expr.ts";
export { inspectDataset, summarizeDataset, formatSummary, summarize, type DatasetSummary, type SplitSummary } from "./inspect.ts";

/** Prepares (or reuses the cached) dataset, then opens it (prepare already verified or just wrote the folder, so opening checks sizes only). */
export async function loadDataset(nameOrSpec: string | DatasetSpec, opts: PrepareOptions & ReaderOptions = {}): Promise<PreparedDataset> {
  const { dir } = await prepareDataset(nameOrSpec, opts);
  return openPrepared(dir, { ...opts, verify: opts.verify === "none" ? "none" : "size" });
}
