/**
 * `ple` — Progressive Layered Extraction (Tang et al., "Progressive Layered
 * Extraction (PLE): A Novel Multi-Task Learning (MTL) Model for Personalized
 * Recommendations", RecSys'20). `levels` = 1 is CGC (Customized Gate Control).
 *
 * Structure: shared embedding tables -> concatenation x. Each level l has
 * `numShared` shared experts and `numSpecific` experts per task (MLPs
 * `expertUnits`, ReLU, dropout). Level 0 feeds x to every expert and gate; level
 * l > 0 feeds task t's experts and gate with task t's previous output and the
 * shared experts / shared gate with the previous shared output. Per-task gate:
 * softmax(in_t W) over [task t's experts, shared experts]. Shared gate (every
 * level except the last, whose shared output would be unused): softmax(in_s W)
 * over all experts of the level. Gates are linear without bias (GradCraft /
 * DeepCTR with gate_dnn_hidden_units = []). Task t's final output feeds its tower
 * (`towerUnits`, ReLU, dropout) -> logit. Groups (a parameter is task t's iff
 * only task t's loss depends on it): towers, the last level's task experts and
 * the task gates of the last two levels belong to their task; shared experts,
 * shared gates, task experts below the last level (they also feed the shared
 * gate) and task gates below the penultimate level are shared.
 *
 * Hyperparameters (defaults = GradCraft main.py): levels 1, numShared 1,
 * numSpecific 1, expertUnits [256, 128, 64], towerUnits [32, 16], embDim 16,
 * dropout 0.2.
 */
import type { Architecture, ForwardCtx, ModelCommonOptions } from "./types.ts";
import type { Tensor } from "../graph/graph.ts";
import { COMMON_DEFAULTS, EXPERT_UNITS, checkCommon, checkInt, checkUnits, inputWidth, type ModelInput } from "./common.ts";
import { ParamBuilder, buildTables, buildTower, linear, mixture, mlp, tower, type LinearSpec, type MlpSpec, type TowerSpec } from "./layers.ts";
import { Rng } from "../util/rng.ts";

export interface PleOptions extends ModelCommonOptions {
  levels: number;
  numShared: number;
  numSpecific: number;
  expertUnits: number[];
}

export const defaults: Readonly<PleOptions> = {
  ...COMMON_DEFAULTS,
  levels: 1,
  numShared: 1,
  numSpecific: 1,
  expertUnits: [...EXPERT_UNITS],
};

interface Level {
  specific: MlpSpec[][]; // [t][j]
  shared: MlpSpec[];
  taskGates: LinearSpec[];
  sharedGate: LinearSpec | null;
}

export function create(input: ModelInput, options: Partial<PleOptions> = {}): Architecture {
  const o: PleOptions = { ...defaults, ...options };
  checkCommon("ple", input, o);
  checkUnits("ple", "expertUnits", o.expertUnits);
  const L = checkInt("ple", "levels", o.levels, 1);
  const S = checkInt("ple", "numShared", o.numShared, 0);
  const P = checkInt("ple", "numSpecific", o.numSpecific, 0);
  if (S + P === 0) throw new Error("ple: numShared + numSpecific must be >= 1");
  const T = input.numTasks;
  const rng = new Rng(o.seed);
  const tables = buildTables(input.fields, o.embDim, 1, rng, o.dtype, o.embInitStd);
  const b = new ParamBuilder(rng, o.dtype);
  const D = inputWidth(input, o.embDim);
  const d = o.expertUnits[o.expertUnits.length - 1]!;
  const levels: Level[] = [];
  for (let l = 0; l < L; l++) {
    const inDim = l === 0 ? D : d;
    const specific: MlpSpec[][] = [];
    const taskGates: LinearSpec[] = [];
    for (let t = 0; t < T; t++) {
      const row: MlpSpec[] = [];
      // below the last level, task experts also feed the shared gate, hence every task: shared group
      for (let j = 0; j < P; j++) row.push(b.mlp(`L${l}.t${t}.expert${j}`, inDim, o.expertUnits, l === L - 1 ? t : "shared"));
      specific.push(row);
      // a task gate at level l feeds task t's inputs at level l+1: only task t depends on it when l+1 is the
      // last level (or l is); below that those inputs feed experts that also reach the shared gate
      taskGates.push(b.linear(`L${l}.t${t}.gate`, inDim, P + S, l >= L - 2 ? t : "shared", false));
    }
    const shared: MlpSpec[] = [];
    for (let j = 0; j < S; j++) shared.push(b.mlp(`L${l}.shared.expert${j}`, inDim, o.expertUnits, "shared"));
    const sharedGate = l < L - 1 ? b.linear(`L${l}.shared.gate`, inDim, T * P + S, "shared", false) : null;
    levels.push({ specific, shared, taskGates, sharedGate });
  }
  const towers: TowerSpec[] = [];
  for (let t = 0; t < T; t++) towers.push(buildTower(b, `t${t}.tower`, d, o.towerUnits, t));
  const lastShared = (input: Tensor, p: Tensor[], ctx: ForwardCtx): Tensor[] =>
    levels[L - 1]!.shared.map((spec, j) => ctx.g.scope(`L${L - 1}.shared.expert${j}`, () => mlp(input, p, spec, ctx)));

  return {
    name: "ple",
    numTasks: T,
    dense: b.dense,
    tables,
    representation:
      L === 1
        ? "the shared experts' outputs, each [B, last expertUnits]"
        : "what the last level reads from below: the last level's shared experts' outputs and the penultimate level's expert outputs (and, with levels > 2, the task inputs they were computed from)",
    /**
     * Levels 0..L-2 except the penultimate task gates, then the last level's
     * shared experts. Features: [the penultimate level's task inputs if L > 2],
     * its T*P task experts, its S shared experts, the last level's S shared experts.
     */
    trunk(p, xs, ctx) {
      const g = ctx.g;
      if (L === 1) return lastShared(xs[0]!, p, ctx);
      let taskIn: Tensor[] = new Array<Tensor>(T).fill(xs[0]!);
      let sharedIn: Tensor = xs[0]!;
      for (let l = 0; l < L - 1; l++) {
        const lv = levels[l]!;
        const specOut = lv.specific.map((row, t) => row.map((spec, j) => g.scope(`L${l}.t${t}.expert${j}`, () => mlp(taskIn[t]!, p, spec, ctx))));
        const sharedOut = lv.shared.map((spec, j) => g.scope(`L${l}.shared.expert${j}`, () => mlp(sharedIn, p, spec, ctx)));
        const ex = [...specOut.flat(), ...sharedOut];
        const prevTaskIn = taskIn;
        sharedIn = g.scope(`L${l}.shared.gate`, () => mixture(linear(sharedIn, p, lv.sharedGate!, ctx), ex, ctx));
        if (l === L - 2) return [...(L > 2 ? prevTaskIn : []), ...specOut.flat(), ...sharedOut, ...lastShared(sharedIn, p, ctx)];
        taskIn = specOut.map((row, t) => g.scope(`L${l}.t${t}.gate`, () => mixture(linear(prevTaskIn[t]!, p, lv.taskGates[t]!, ctx), [...row, ...sharedOut], ctx)));
      }
      throw new Error("ple: unreachable");
    },
    head(t, p, feats, xs, ctx) {
      const g = ctx.g;
      const lv = levels[L - 1]!;
      let input: Tensor;
      let shared: Tensor[];
      if (L === 1) {
        input = xs[0]!;
        shared = feats;
      } else {
        const g0 = L > 2 ? T : 0;
        const gateIn = L > 2 ? feats[t]! : xs[0]!;
        const own = feats.slice(g0 + t * P, g0 + (t + 1) * P);
        const sharedPen = feats.slice(g0 + T * P, g0 + T * P + S);
        shared = feats.slice(g0 + T * P + S);
        input = g.scope(`L${L - 2}.t${t}.gate`, () => mixture(linear(gateIn, p, levels[L - 2]!.taskGates[t]!, ctx), [...own, ...sharedPen], ctx));
      }
      const spec = lv.specific[t]!.map((s, j) => g.scope(`L${L - 1}.t${t}.expert${j}`, () => mlp(input, p, s, ctx)));
      const mixed = g.scope(`L${L - 1}.t${t}.gate`, () => mixture(linear(input, p, lv.taskGates[t]!, ctx), [...spec, ...shared], ctx));
      return g.scope(`t${t}.tower`, () => tower(mixed, p, towers[t]!, ctx));
    },
  };
}
