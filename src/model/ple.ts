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
import type { JArray } from "../grad/engine.ts";
import { COMMON_DEFAULTS, EXPERT_UNITS, checkCommon, checkInt, checkUnits, type ModelInput } from "./common.ts";
import { ParamBuilder, buildTables, buildTower, disposeAll, dup, linear, mixture, mlp, tower, type LinearSpec, type MlpSpec, type TowerSpec } from "./layers.ts";
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
  const D = input.fields.length * o.embDim;
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
  const lastShared = (inputs: JArray[], p: JArray[], ctx: ForwardCtx): JArray[] =>
    levels[L - 1]!.shared.map((spec, j) => mlp(inputs[j]!, p, spec, ctx));

  return {
    name: "ple",
    numTasks: T,
    dense: b.dense,
    tables,
    headUsesX: L <= 2,
    trunk(p, xs, ctx) {
      const B = ctx.batch;
      if (L === 1) return lastShared(dup(xs[0]!, S), p, ctx);
      const x0 = dup(xs[0]!, T + 1);
      let taskIn: JArray[] = x0.slice(0, T);
      let sharedIn: JArray = x0[T]!;
      for (let l = 0; l < L - 1; l++) {
        const lv = levels[l]!;
        const penultimate = l === L - 2;
        // uses: task input t -> P experts + its gate; shared input -> S experts + the shared gate
        const tIn = taskIn.map((a) => dup(a, P + 1));
        const sIn = dup(sharedIn, S + 1);
        const specOut = lv.specific.map((row, t) => row.map((spec, j) => mlp(tIn[t]![j]!, p, spec, ctx)));
        const sharedOut = lv.shared.map((spec, j) => mlp(sIn[j]!, p, spec, ctx));
        // uses: specOut[t][j] -> task gate t + shared gate; sharedOut[j] -> T task gates + shared gate
        const spec2 = specOut.map((row) => row.map((a) => dup(a, 2)));
        const shared2 = sharedOut.map((a) => dup(a, T + 1));
        const ex = [...spec2.flatMap((row) => row.map((h) => h[1]!)), ...shared2.map((h) => h[T]!)];
        sharedIn = mixture(linear(sIn[S]!, p, lv.sharedGate!), ex, B);
        if (penultimate) {
          // the penultimate task gates are task t's (computed in head t). Hand over, each array once (the
          // engine's vjp cannot return an input, or one array twice, as outputs): the gate inputs (unless
          // they are x itself, L = 2: heads read x), the task experts, the shared experts, the last-level
          // shared experts.
          const feats: JArray[] = [];
          for (let t = 0; t < T; t++) {
            if (L > 2) feats.push(tIn[t]![P]!);
            else tIn[t]![P]!.dispose();
          }
          for (let t = 0; t < T; t++) feats.push(...spec2[t]!.map((h) => h[0]!));
          shared2.forEach((h) => {
            feats.push(h[0]!);
            disposeAll(h.slice(1, T));
          });
          return [...feats, ...lastShared(dup(sharedIn, S), p, ctx)];
        }
        const nextTask: JArray[] = [];
        for (let t = 0; t < T; t++) {
          const exT = [...spec2[t]!.map((h) => h[0]!), ...shared2.map((h) => h[t]!)];
          nextTask.push(mixture(linear(tIn[t]![P]!, p, lv.taskGates[t]!), exT, B));
        }
        taskIn = nextTask;
      }
      throw new Error("ple: unreachable");
    },
    head(t, p, feats, xs, ctx) {
      const lv = levels[L - 1]!;
      let input: JArray;
      let shared: JArray[];
      if (L === 1) {
        input = xs[0]!;
        shared = feats;
      } else {
        // feats: [T gate inputs if L > 2], T*P penultimate task experts, S penultimate shared experts, S last-level shared experts
        const g0 = L > 2 ? T : 0;
        let gateIn: JArray;
        if (L > 2) {
          disposeAll(xs);
          gateIn = feats[t]!;
        } else {
          gateIn = xs[0]!;
        }
        const own = feats.slice(g0 + t * P, g0 + (t + 1) * P);
        const sharedPen = feats.slice(g0 + T * P, g0 + T * P + S);
        shared = feats.slice(g0 + T * P + S);
        disposeAll(feats.filter((_, i) => i < g0 + T * P && i !== (L > 2 ? t : -1) && !(i >= g0 + t * P && i < g0 + (t + 1) * P)));
        input = mixture(linear(gateIn, p, levels[L - 2]!.taskGates[t]!), [...own, ...sharedPen], ctx.batch);
      }
      const tIn = dup(input, P + 1);
      const spec = lv.specific[t]!.map((s, j) => mlp(tIn[j]!, p, s, ctx));
      const mixed = mixture(linear(tIn[P]!, p, lv.taskGates[t]!), [...spec, ...shared], ctx.batch);
      return tower(mixed, p, towers[t]!, ctx);
    },
  };
}
