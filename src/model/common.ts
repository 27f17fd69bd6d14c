/**
 * Defaults and option validation shared by the architecture files.
 */
import type { DenseInfo, FieldInfo } from "../data/types.ts";
import type { ModelCommonOptions } from "./types.ts";

/** Defaults mirroring GradCraft's setup (Bai et al., KDD'24, main.py). */
export const COMMON_DEFAULTS: Readonly<ModelCommonOptions> = {
  embDim: 16,
  embInitStd: 0.01,
  dropout: 0.2,
  towerUnits: [32, 16],
  seed: 2024,
  dtype: "float32",
};

/** Expert / bottom MLP units (GradCraft: 256-128-64). */
export const EXPERT_UNITS: readonly number[] = [256, 128, 64];

export interface ModelInput {
  fields: readonly FieldInfo[];
  numTasks: number;
  /** Dense input columns (DatasetMeta.dense); absent or empty: none. */
  dense?: readonly DenseInfo[];
}

/**
 * Width of a table set's model input x [B, width]: one embedding of `embDim` per field (a
 * multi-valued field's pooled embedding counts as one), in field order, then one column per dense
 * input. Every architecture's first layers take this width.
 */
export function inputWidth(input: Pick<ModelInput, "fields" | "dense">, embDim: number): number {
  return input.fields.length * embDim + (input.dense?.length ?? 0);
}

export function checkUnits(model: string, option: string, v: unknown): number[] {
  if (!Array.isArray(v) || v.length === 0 || !v.every((u) => Number.isInteger(u) && u >= 1)) {
    throw new Error(`${model}: option ${option} must be a non-empty list of positive integers, got ${JSON.stringify(v)}`);
  }
  return v as number[];
}

export function checkInt(model: string, option: string, v: unknown, lo: number): number {
  if (typeof v !== "number" || !Number.isInteger(v) || v < lo) {
    throw new Error(`${model}: option ${option} must be an integer >= ${lo}, got ${String(v)}`);
  }
  return v;
}

export function checkNum(model: string, option: string, v: unknown, lo: number, hi: number): number {
  if (typeof v !== "number" || !Number.isFinite(v) || v < lo || v > hi) {
    throw new Error(`${model}: option ${option} must be a number in [${lo}, ${hi}], got ${String(v)}`);
  }
  return v;
}

export function checkCommon(model: string, input: ModelInput, o: ModelCommonOptions): void {
  checkInt(model, "embDim", o.embDim, 1);
  checkNum(model, "dropout", o.dropout, 0, 0.95);
  checkNum(model, "embInitStd", o.embInitStd, 0, 10);
  if (!(Array.isArray(o.towerUnits) && o.towerUnits.every((u) => Number.isInteger(u) && u >= 1))) {
    throw new Error(`${model}: option towerUnits must be a list of positive integers, got ${JSON.stringify(o.towerUnits)}`);
  }
  if (o.dtype !== "float32" && o.dtype !== "float64") throw new Error(`${model}: option dtype must be float32 or float64`);
  checkInt(model, "numTasks", input.numTasks, 1);
  if (input.fields.length === 0) throw new Error(`${model}: the dataset has no categorical fields`);
}
