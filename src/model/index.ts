/** Public surface of the model layer. */
export type { Architecture, DenseParam, EmbeddingTable, ModelCommonOptions, ParamGroup, Mode, ForwardCtx } from "./types.ts";
export { Model } from "./model.ts";
export { ARCHITECTURES, MODELS, MODEL_NAMES, createModel, type ModelEntry } from "./registry.ts";
