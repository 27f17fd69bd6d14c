/**
 * `lr` — logistic regression per task on the same categorical features: the
 * plain linear baseline the quality bar of the comparison table refers to.
 *
 * Structure: for each task t, its own 1-dimensional embedding table per field
 * (one weight per id, i.e. one-hot features) and a bias:
 *   logit_t = b_t + Σ_f w_t,f[id_f].
 * Nothing is shared, so balancing methods only rescale tasks (taskScale); the
 * sweep trains it with EW. Weights start at N(0, embInitStd), L2 applies to the
 * rows used (as for every embedding). No dropout (there is no hidden layer).
 *
 * Hyperparameters (defaults): embInitStd 0.01. `embDim`, `towerUnits` and
 * `dropout` are ignored (fixed to 1, none and 0).
 */
import type { Architecture, ModelCommonOptions } from "./types.ts";
import { COMMON_DEFAULTS, checkCommon, type ModelInput } from "./common.ts";
import { ParamBuilder, buildTables } from "./layers.ts";
import { Rng } from "../util/rng.ts";

export type LrOptions = ModelCommonOptions;

export const defaults: Readonly<LrOptions> = { ...COMMON_DEFAULTS, embDim: 1, dropout: 0, towerUnits: [] };

export function create(input: ModelInput, options: Partial<LrOptions> = {}): Architecture {
  // embDim/dropout/towerUnits are fixed for a linear model whatever the caller passes.
  const o: LrOptions = { ...defaults, ...options, embDim: 1, dropout: 0, towerUnits: [] };
  checkCommon("lr", input, o);
  const T = input.numTasks;
  const rng = new Rng(o.seed);
  const tables = buildTables(input.fields, 1, T, rng, o.dtype, o.embInitStd);
  const b = new ParamBuilder(rng, o.dtype);
  const bias: number[] = [];
  for (let t = 0; t < T; t++) bias.push(b.add(`t${t}.out.b`, [1], t, false, () => 0));
  return {
    name: "lr",
    numTasks: T,
    dense: b.dense,
    tables,
    trunk() {
      return [];
    },
    head(t, p, _feats, xs, ctx) {
      const g = ctx.g;
      const x = xs[t]!; // [B, F] (one weight per field)
      return g.add(g.reduceSum(x, [1], false), p[bias[t]!]!);
    },
  };
}
