/**
 * `single` — T fully independent single-task networks (the "Single" baseline of
 * multi-task papers, e.g. GradCraft, Bai et al. KDD'24, Table 2).
 *
 * Structure: for each task t, its own embedding tables (one per field, dim
 * `embDim`), its own bottom MLP (`bottomUnits`, ReLU, dropout) on the
 * concatenated embeddings, and its own tower (`towerUnits`, ReLU, dropout) ending
 * in a 1-unit logit. Nothing is shared, so every parameter has group t and the
 * "shared" gradient vector is empty: balancing methods only rescale tasks via
 * taskScale. (Per-task tables cost T x the embedding memory; this is the
 * simplest faithful "no sharing at all" baseline.)
 *
 * Hyperparameters (defaults): embDim 16, bottomUnits [256, 128, 64],
 * towerUnits [32, 16], dropout 0.2.
 */
import type { Architecture, ModelCommonOptions } from "./types.ts";
import { COMMON_DEFAULTS, EXPERT_UNITS, checkCommon, checkUnits, inputWidth, type ModelInput } from "./common.ts";
import { ParamBuilder, buildTables, buildTower, mlp, tower, type MlpSpec, type TowerSpec } from "./layers.ts";
import { Rng } from "../util/rng.ts";

export interface SingleOptions extends ModelCommonOptions {
  bottomUnits: number[];
}

export const defaults: Readonly<SingleOptions> = { ...COMMON_DEFAULTS, bottomUnits: [...EXPERT_UNITS] };

export function create(input: ModelInput, options: Partial<SingleOptions> = {}): Architecture {
  const o: SingleOptions = { ...defaults, ...options };
  checkCommon("single", input, o);
  checkUnits("single", "bottomUnits", o.bottomUnits);
  const T = input.numTasks;
  const rng = new Rng(o.seed);
  const tables = buildTables(input.fields, o.embDim, T, rng, o.dtype, o.embInitStd);
  const b = new ParamBuilder(rng, o.dtype);
  const D = inputWidth(input, o.embDim);
  const bottoms: MlpSpec[] = [];
  const towers: TowerSpec[] = [];
  for (let t = 0; t < T; t++) {
    bottoms.push(b.mlp(`t${t}.bottom`, D, o.bottomUnits, t));
    towers.push(buildTower(b, `t${t}.tower`, bottoms[t]!.outDim, o.towerUnits, t));
  }
  return {
    name: "single",
    numTasks: T,
    dense: b.dense,
    tables,
    representation: "none (nothing is shared)",
    trunk() {
      return [];
    },
    head(t, p, _feats, xs, ctx) {
      return tower(mlp(xs[t]!, p, bottoms[t]!, ctx), p, towers[t]!, ctx);
    },
  };
}
