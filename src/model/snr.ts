/**
 * Shared implementation of `snr-trans` and `snr-aver` (Ma et al., "SNR:
 * Sub-Network Routing for Flexible Parameter Sharing in Multi-Task Learning",
 * AAAI'19). See the two option files for the documented structure.
 */
import type { Architecture, ModelCommonOptions } from "./types.ts";
import type { Tensor } from "../graph/graph.ts";
import { COMMON_DEFAULTS, EXPERT_UNITS, checkCommon, checkInt, checkNum, checkUnits, inputWidth, type ModelInput } from "./common.ts";
import {
  ParamBuilder,
  buildTables,
  buildTower,
  hardConcrete,
  l0Penalty,
  mlp,
  tower,
  type HardConcreteOptions,
  type MlpSpec,
  type TowerSpec,
} from "./layers.ts";
import { Rng } from "../util/rng.ts";

export interface SnrOptions extends ModelCommonOptions, HardConcreteOptions {
  /** Number of lower sub-networks; 0 means numTasks + 1 (same capacity as the MMoE default). */
  numExperts: number;
  expertUnits: number[];
  /** Weight of the expected-L0 penalty on the routing gates (default 1e-3). */
  l0Weight: number;
  /** Mean of the log-alpha init (Louizos et al.: log(1-p)-log(p) with drop rate p = 0.5 -> 0), std 0.01. */
  logAlphaInit: number;
}

export const SNR_DEFAULTS: Readonly<SnrOptions> = {
  ...COMMON_DEFAULTS,
  numExperts: 0,
  expertUnits: [...EXPERT_UNITS],
  beta: 0.9,
  gamma: -0.1,
  zeta: 1.1,
  l0Weight: 1e-3,
  logAlphaInit: 0,
};

export function createSnr(kind: "snr-trans" | "snr-aver", input: ModelInput, options: Partial<SnrOptions> = {}): Architecture {
  const o: SnrOptions = { ...SNR_DEFAULTS, ...options };
  checkCommon(kind, input, o);
  checkUnits(kind, "expertUnits", o.expertUnits);
  checkNum(kind, "beta", o.beta, 1e-3, 100);
  checkNum(kind, "gamma", o.gamma, -10, -1e-9);
  checkNum(kind, "zeta", o.zeta, 1 + 1e-9, 10);
  checkNum(kind, "l0Weight", o.l0Weight, 0, 1e3);
  checkNum(kind, "logAlphaInit", o.logAlphaInit, -20, 20);
  const T = input.numTasks;
  const K = o.numExperts === 0 ? T + 1 : checkInt(kind, "numExperts", o.numExperts, 1);
  const rng = new Rng(o.seed);
  const tables = buildTables(input.fields, o.embDim, 1, rng, o.dtype, o.embInitStd);
  const b = new ParamBuilder(rng, o.dtype);
  const D = inputWidth(input, o.embDim);
  const experts: MlpSpec[] = [];
  for (let k = 0; k < K; k++) experts.push(b.mlp(`subnet${k}`, D, o.expertUnits, "shared"));
  const d = experts[0]!.outDim;
  const logAlpha: number[] = [];
  const trans: number[][] = [];
  const towers: TowerSpec[] = [];
  for (let t = 0; t < T; t++) {
    logAlpha.push(b.add(`t${t}.logAlpha`, [K], t, false, (r) => o.logAlphaInit + 0.01 * r.normal()));
    if (kind === "snr-trans") {
      const row: number[] = [];
      const a = Math.sqrt(6 / (d + d));
      for (let k = 0; k < K; k++) row.push(b.add(`t${t}.trans${k}.W`, [d, d], t, true, (r) => (2 * r.next() - 1) * a));
      trans.push(row);
    }
    towers.push(buildTower(b, `t${t}.tower`, d, o.towerUnits, t));
  }
  const dense = b.dense;

  return {
    name: kind,
    numTasks: T,
    dense,
    tables,
    representation: "the numExperts sub-networks' outputs, each [B, last expertUnits]",
    trunk(p, xs, ctx) {
      return experts.map((spec, k) => ctx.g.scope(`subnet${k}`, () => mlp(xs[0]!, p, spec, ctx)));
    },
    head(t, p, feats, _xs, ctx) {
      const g = ctx.g;
      const z = g.reshape(hardConcrete(p[logAlpha[t]!]!, K, o, ctx), [1, K, 1]);
      const parts: Tensor[] = feats.map((h, k) => (kind === "snr-trans" ? g.matmul(h, p[trans[t]![k]!]!) : h));
      const stacked = g.concat(
        parts.map((h) => g.unsqueeze(h, [1])),
        1,
      ); // [B, K, d]
      const routed = g.reduceSum(g.mul(z, stacked), [1], false); // [B, d]
      return tower(routed, p, towers[t]!, ctx);
    },
    regularize(grads) {
      let v = 0;
      for (let t = 0; t < T; t++) v += l0Penalty(dense[logAlpha[t]!]!.data, o, o.l0Weight, grads[logAlpha[t]!] ?? null);
      return v;
    },
  };
}
