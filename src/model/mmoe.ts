/**
 * `mmoe` — Multi-gate Mixture-of-Experts (Ma et al., "Modeling Task Relationships
 * in Multi-task Learning with Multi-gate Mixture-of-Experts", KDD'18).
 *
 * Structure: shared embedding tables -> concatenation x [B, F*dim];
 * `numExperts` shared expert MLPs (`expertUnits`, ReLU, dropout) on x; per task t
 * a softmax gate g_t = softmax(x W_t) over the experts (linear, no bias, as in
 * GradCraft's DeepCTR-based MMoE with gate_dnn_hidden_units = []); the task input
 * sum_k g_t[k] e_k feeds the task tower (`towerUnits`, ReLU, dropout) -> logit.
 * Experts are shared; gates and towers belong to their task.
 *
 * Hyperparameters (defaults): numExperts = numTasks + 1 (GradCraft main.py),
 * expertUnits [256, 128, 64], towerUnits [32, 16], embDim 16, dropout 0.2.
 */
import type { Architecture, ModelCommonOptions } from "./types.ts";
import { COMMON_DEFAULTS, EXPERT_UNITS, checkCommon, checkInt, checkUnits, inputWidth, type ModelInput } from "./common.ts";
import { ParamBuilder, buildTables, buildTower, linear, mixture, mlp, tower, type LinearSpec, type MlpSpec, type TowerSpec } from "./layers.ts";
import { Rng } from "../util/rng.ts";

export interface MmoeOptions extends ModelCommonOptions {
  /** 0 means numTasks + 1. */
  numExperts: number;
  expertUnits: number[];
}

export const defaults: Readonly<MmoeOptions> = { ...COMMON_DEFAULTS, numExperts: 0, expertUnits: [...EXPERT_UNITS] };

export function create(input: ModelInput, options: Partial<MmoeOptions> = {}): Architecture {
  const o: MmoeOptions = { ...defaults, ...options };
  checkCommon("mmoe", input, o);
  checkUnits("mmoe", "expertUnits", o.expertUnits);
  const T = input.numTasks;
  const K = o.numExperts === 0 ? T + 1 : checkInt("mmoe", "numExperts", o.numExperts, 1);
  const rng = new Rng(o.seed);
  const tables = buildTables(input.fields, o.embDim, 1, rng, o.dtype, o.embInitStd);
  const b = new ParamBuilder(rng, o.dtype);
  const D = inputWidth(input, o.embDim);
  const experts: MlpSpec[] = [];
  for (let k = 0; k < K; k++) experts.push(b.mlp(`expert${k}`, D, o.expertUnits, "shared"));
  const d = experts[0]!.outDim;
  const gates: LinearSpec[] = [];
  const towers: TowerSpec[] = [];
  for (let t = 0; t < T; t++) {
    gates.push(b.linear(`t${t}.gate`, D, K, t, false));
    towers.push(buildTower(b, `t${t}.tower`, d, o.towerUnits, t));
  }
  return {
    name: "mmoe",
    numTasks: T,
    dense: b.dense,
    tables,
    representation: "the numExperts shared experts' outputs, each [B, last expertUnits]",
    trunk(p, xs, ctx) {
      return experts.map((spec, k) => ctx.g.scope(`expert${k}`, () => mlp(xs[0]!, p, spec, ctx)));
    },
    head(t, p, feats, xs, ctx) {
      const mixed = ctx.g.scope("gate", () => mixture(linear(xs[0]!, p, gates[t]!, ctx), feats, ctx));
      return tower(mixed, p, towers[t]!, ctx);
    },
  };
}
