/**
 * `lr` — logistic regression per task on the same categorical features: the
 * plain linear baseline the quality bar of the comparison table refers to.
 *
 * Structure: for each task t, its own 1-dimensional embedding table per field
 * (one weight per id, i.e. one-hot features), a weight per dense input and a bias:
 *   logit_t = b_t + Σ_f w_t,f[id_f] + Σ_j v_t,j x_j
 * (a multi-valued field contributes the mean or sum of its ids' weights; the
 * dense weights v_t [D, 1] exist only when the dataset has dense inputs and start
 * at N(0, embInitStd)).
 * Nothing is shared, so balancing methods only rescale tasks (taskScale); the
 * sweep trains it with EW. Weights start at N(0, embInitStd), L2 applies to the
 * rows used (as for every embedding). No dropout (there is no hidden layer).
 *
 * Hyperparameters (defaults): embInitStd 0.01. `embDim`, `towerUnits` and
 * `dropout` are ignored (fixed to 1, none and 0).
 */
import type { Architecture, ModelCommonOptions } from "./types.ts";
import type { Tensor } from "../graph/graph.ts";
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
  const F = input.fields.length;
  const Dd = input.dense?.length ?? 0;
  const dw: number[] = [];
  if (Dd > 0) for (let t = 0; t < T; t++) dw.push(b.add(`t${t}.dense.W`, [Dd, 1], t, true, (r) => o.embInitStd * r.normal()));
  return {
    name: "lr",
    numTasks: T,
    dense: b.dense,
    tables,
    representation: "none (nothing is shared)",
    trunk() {
      return [];
    },
    head(t, p, _feats, xs, ctx) {
      const g = ctx.g;
      const x = xs[t]!; // [B, F + D]: one weight per field, then the dense inputs
      if (Dd === 0) return g.add(g.reduceSum(x, [1], false), p[bias[t]!]!);
      const [e, d] = g.split(x, 1, [F, Dd]) as [Tensor, Tensor];
      const dense = g.reshape(g.matmul(d, p[dw[t]!]!), [ctx.batch]);
      return g.add(g.add(g.reduceSum(e, [1], false), dense), p[bias[t]!]!);
    },
  };
}
