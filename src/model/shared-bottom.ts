/**
 * `shared-bottom` — hard parameter sharing (Caruana, "Multitask Learning",
 * Machine Learning 1997; the Shared-Bottom baseline of MMoE/PLE/GradCraft).
 *
 * Structure: shared embedding tables (one per field) -> concatenation -> shared
 * bottom MLP (`bottomUnits`, ReLU, dropout) -> per-task tower (`towerUnits`,
 * ReLU, dropout) -> 1-unit logit.
 *
 * Hyperparameters (defaults, GradCraft main.py): embDim 16, bottomUnits
 * [256, 128, 64], towerUnits [32, 16], dropout 0.2.
 */
import type { Architecture, ModelCommonOptions } from "./types.ts";
import { COMMON_DEFAULTS, EXPERT_UNITS, checkCommon, checkUnits, inputWidth, type ModelInput } from "./common.ts";
import { ParamBuilder, buildTables, buildTower, mlp, tower, type TowerSpec } from "./layers.ts";
import { Rng } from "../util/rng.ts";

export interface SharedBottomOptions extends ModelCommonOptions {
  bottomUnits: number[];
}

export const defaults: Readonly<SharedBottomOptions> = { ...COMMON_DEFAULTS, bottomUnits: [...EXPERT_UNITS] };

export function create(input: ModelInput, options: Partial<SharedBottomOptions> = {}): Architecture {
  const o: SharedBottomOptions = { ...defaults, ...options };
  checkCommon("shared-bottom", input, o);
  checkUnits("shared-bottom", "bottomUnits", o.bottomUnits);
  const T = input.numTasks;
  const rng = new Rng(o.seed);
  const tables = buildTables(input.fields, o.embDim, 1, rng, o.dtype, o.embInitStd);
  const b = new ParamBuilder(rng, o.dtype);
  const D = inputWidth(input, o.embDim);
  const bottom = b.mlp("bottom", D, o.bottomUnits, "shared");
  const towers: TowerSpec[] = [];
  for (let t = 0; t < T; t++) towers.push(buildTower(b, `t${t}.tower`, bottom.outDim, o.towerUnits, t));
  return {
    name: "shared-bottom",
    numTasks: T,
    dense: b.dense,
    tables,
    representation: "the shared bottom MLP's output [B, last bottomUnits]",
    trunk(p, xs, ctx) {
      return [mlp(xs[0]!, p, bottom, ctx)];
    },
    head(t, p, feats, _xs, ctx) {
      return tower(feats[0]!, p, towers[t]!, ctx);
    },
  };
}
