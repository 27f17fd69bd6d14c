/**
 * One balanced optimisation step, and eval-mode prediction.
 *
 * trainStep: forward + per-task gradients (the per-task program of
 * src/engine/programs.ts) -> T flat per-task vectors over the gradient scope ->
 * method.combine -> the combined direction is scattered back -> L0 (SNR)
 * penalty gradient -> Adam (L2 inside).
 *
 * Fast path: a method with `lossWeighting` (EW, UW, DWA, RLW) needs no per-task
 * gradients, so on steps without diagnostics (`info.diagnostics === false`) the
 * step runs the weighted-sum program (one backward of sum_t w_t L_t) and feeds
 * its gradient to Adam directly. The update is the same as combine's (see
 * LossWeighting in src/balance/types.ts); only the diagnostics are skipped.
 * A method with `lossAware` (FAMO, STCH: weights that depend on this step's
 * losses) runs the loss-aware program there instead: the weights are computed in
 * the graph from the losses of the same run by the method's weight rule and enter
 * the backward as constants (one graph run, EW's cost; see LossAwareWeighting).
 *
 * afterStep: a method with `afterStep` (FAMO) gets, after the update, the losses of
 * the same batch at the new parameters, from a forward-only ("losses") program run
 * with the step's seed (same dropout masks / gate noise), on both paths.
 *
 * Scopes (what the balancing method sees, per task, as one flat vector):
 * - "shared" (default): shared dense params, then the batch's unique rows of the
 *   shared embedding tables (field order, BatchIndex order within a field).
 * - "shared-dense": shared dense params only; shared embedding rows get the
 *   plain sum of the task gradients.
 * - "all": every dense param (task-specific ones are 0 in other tasks' vectors)
 *   then the unique rows of every embedding table set.
 * Outside the scope, a parameter owned by task t gets taskScale[t] * g_t.
 * SNR's L0 penalty and the L2 decay are applied to the parameters directly,
 * never through the balancing method. Flat vectors live in Float32Array
 * buffers reused across steps (grown to the largest batch seen); their length
 * varies with the batch's number of unique ids.
 */
import type { BalanceOutput, BalancingMethod, JsonValue } from "../balance/types.ts";
import { NonFiniteInputError } from "../balance/common.ts";
import type { Batch } from "../data/types.ts";
import type { Model } from "../model/index.ts";
import { GradWorkspace, lossesOnly, perTaskGrads, predictLogits, type PerTaskGrads } from "../grad/pertask.ts";
import type { FloatArray } from "../graph/graph.ts";
import type { Adam } from "../optim/adam.ts";
import { representationStep } from "./representation-step.ts";

export { GRAD_SCOPES, type GradScope, type StepInfo, type StepResult } from "./step-types.ts";
import { GRAD_SCOPES, type GradScope, type StepInfo, type StepResult } from "./step-types.ts";

interface StepState {
  ws: GradWorkspace;
  flats: Float32Array[];
  gdense: FloatArray[];
  grows: FloatArray[];
}

const states = new WeakMap<Model, StepState>();

function stateOf(model: Model): StepState {
  let s = states.get(model);
  if (!s) {
    const alloc = (n: number): FloatArray => (model.dtype === "float64" ? new Float64Array(n) : new Float32Array(n));
    s = { ws: new GradWorkspace(model), flats: [], gdense: model.dense.map((p) => alloc(p.data.length)), grows: [] };
    states.set(model, s);
  }
  return s;
}

/** The reusable gradient workspace of a model (shared by trainStep and predict). */
export function workspaceOf(model: Model): GradWorkspace {
  return stateOf(model).ws;
}

function inScopeDense(group: "shared" | number, scope: GradScope): boolean {
  return scope === "all" || group === "shared";
}

function inScopeSet(group: "shared" | number, scope: GradScope): boolean {
  return scope === "all" || (scope === "shared" && group === "shared");
}

/**
 * Refuse a non-finite or exploding update before it reaches the parameters
 * (1e18: far above any healthy gradient and below where Adam's float32 g²
 * overflows). Names the parameter and position.
 */
function checkUpdate(name: string, a: ArrayLike<number>): void {
  for (let i = 0; i < a.length; i++) {
    if (!(Math.abs(a[i]!) <= 1e18)) throw new Error(`update of ${name} is ${Number.isFinite(a[i]!) ? "exploding" : "not finite"} at position ${i} (${a[i]})`);
  }
}

function checkLosses(losses: Float64Array): void {
  for (let t = 0; t < losses.length; t++) {
    if (!Number.isFinite(losses[t]!)) throw new NonFiniteInputError(`loss of task ${t} is not finite (${losses[t]})`, t, "loss", -1, losses[t]!);
  }
}

function checkWeights(w: Float64Array, T: number): void {
  if (w.length !== T || !w.every((v) => Number.isFinite(v))) throw new Error(`trainStep: loss weights must be ${T} finite numbers, got [${Array.from(w).join(", ")}]`);
}

/** The method's afterStep hook: this batch's losses at the new parameters, with the step's masks. */
async function afterStep(method: BalancingMethod, st: StepState, batch: Batch, seed: number): Promise<void> {
  if (!method.afterStep) return;
  method.afterStep(await lossesOnly(st.ws, batch, "train", seed, undefined, true));
}

/**
 * Weighted-sum step: one backward of sum_t w_t L_t, straight into Adam. The weights are drawn
 * before the forward (lossWeighting) or computed in the program from its losses (lossAware).
 */
async function weightedStep(model: Model, optimizer: Adam, method: BalancingMethod, batch: Batch, info: StepInfo, st: StepState): Promise<StepResult> {
  const T = model.numTasks;
  // same rng order as the per-task path: the masks' seed first, then the method's draws (RLW)
  const seed = info.rng.nextU32();
  let g: PerTaskGrads;
  let w: Float64Array;
  const lw = method.lossWeighting;
  if (lw) {
    w = lw.weights({ step: info.step, epoch: info.epoch, rng: info.rng });
    checkWeights(w, T);
    g = await perTaskGrads(st.ws, batch, { mode: "train", seed, cotangents: "weighted", weights: w });
    checkLosses(g.losses);
    lw.observe?.(g.losses);
  } else {
    const la = method.lossAware!;
    const params = la.params({ step: info.step, epoch: info.epoch, rng: info.rng });
    g = await perTaskGrads(st.ws, batch, { mode: "train", seed, cotangents: "rule", rule: la.rule, ruleParams: params });
    checkLosses(g.losses);
    w = g.weights!;
    checkWeights(w, T);
    la.observe?.(g.losses, w);
  }
  const dense = model.dense;
  dense.forEach((p, i) => {
    const src = g.dense[0]![i];
    const gi = st.gdense[i]!;
    if (src) gi.set(src);
    else gi.fill(0);
  });
  const penalty = model.arch.regularize ? model.arch.regularize(st.gdense, "train") : 0;
  dense.forEach((p, i) => checkUpdate(p.name, st.gdense[i]!));
  model.tables.forEach((set, s) => {
    const rows = g.emb[0]![s];
    if (rows) checkUpdate(`embedding set ${s}`, rows);
  });
  optimizer.beginStep();
  dense.forEach((p, i) => optimizer.dense(i, p.data, st.gdense[i]!, p.decay));
  applyRows(model, optimizer, g, (s) => g.emb[0]![s] ?? null);
  await afterStep(method, st, batch, seed);
  const none = new Float64Array(0);
  const balance: BalanceOutput = {
    direction: new Float32Array(0),
    coeffs: Float64Array.from(w),
    taskScale: Float64Array.from(w),
    weights: Float64Array.from(w),
    diagnostics: { norms: none, cosines: none, conflicts: 0 },
  };
  return { losses: g.losses, balance, penalty, dim: 0 };
}

/** Lazy sparse Adam over the batch's unique rows of every table set. */
function applyRows(model: Model, optimizer: Adam, g: PerTaskGrads, rowsOf: (s: number) => FloatArray | null): void {
  const idx = g.index;
  const dim = model.embDim;
  let slot = model.dense.length;
  model.tables.forEach((set, s) => {
    const rows = rowsOf(s);
    set.forEach((tab, f) => {
      if (rows) {
        const off = idx.rowOffset[f]! * dim;
        const n = idx.count[f]!;
        optimizer.rows(slot, tab.data, dim, idx.uniq[f]!, n, rows.subarray(off, off + n * dim), true);
      }
      slot++;
    });
  });
}

export async function trainStep(model: Model, optimizer: Adam, method: BalancingMethod, batch: Batch, info: StepInfo): Promise<StepResult> {
  const scope = info.scope ?? "shared";
  if (!GRAD_SCOPES.includes(scope)) throw new Error(`trainStep: unknown gradient scope "${scope}"; choose one of ${GRAD_SCOPES.join(", ")}`);
  const T = model.numTasks;
  if (method.numTasks !== T) throw new Error(`trainStep: method ${method.name} is set up for ${method.numTasks} tasks, model has ${T}`);
  if (batch.size < 1) throw new Error("trainStep: empty batch");
  const st = stateOf(model);
  const oneProgram = method.lossWeighting !== undefined || method.lossAware !== undefined;
  if (info.diagnostics === false && oneProgram) return weightedStep(model, optimizer, method, batch, info, st);
  if (info.balanceAt !== undefined && info.balanceAt !== "parameters") return representationStep(model, optimizer, method, batch, info, st.ws);
  const seed = info.rng.nextU32();
  // a loss-weighting method runs the per-task program on its diagnostics steps only
  const g = await perTaskGrads(st.ws, batch, { mode: "train", seed, occasional: oneProgram });
  const idx = g.index;
  const dim = model.embDim;
  const rowLen = idx.totalRows * dim;
  const dense = model.dense;
  const sets = model.tables;

  // flat layout
  let d = 0;
  for (const p of dense) if (inScopeDense(p.group, scope)) d += p.data.length;
  for (const set of sets) if (inScopeSet(set[0]!.group, scope)) d += rowLen;
  for (let t = 0; t < T; t++) {
    let f = st.flats[t];
    if (!f || f.length < d) {
      f = new Float32Array(Math.max(d, Math.ceil((f?.length ?? 0) * 1.25)));
      st.flats[t] = f;
    }
    const v = f.subarray(0, d);
    let o = 0;
    dense.forEach((p, i) => {
      if (!inScopeDense(p.group, scope)) return;
      const src = g.dense[t]![i];
      if (src) v.set(src, o);
      else v.fill(0, o, o + p.data.length);
      o += p.data.length;
    });
    sets.forEach((set, s) => {
      if (!inScopeSet(set[0]!.group, scope)) return;
      const src = g.emb[t]![s];
      if (src) v.set(src, o);
      else v.fill(0, o, o + rowLen);
      o += rowLen;
    });
  }
  const grads = st.flats.slice(0, T).map((f) => f.subarray(0, d));
  let stableDim = 0;
  for (const p of dense) if (inScopeDense(p.group, scope)) stableDim += p.data.length;
  // tensor layout of the flat vector (per-tensor methods: MetaBalance): each dense param, then each table's rows
  const segments: number[] = [0];
  for (const p of dense) if (inScopeDense(p.group, scope)) segments.push(segments[segments.length - 1]! + p.data.length);
  for (const set of sets) if (inScopeSet(set[0]!.group, scope)) for (let f = 0; f < set.length; f++) segments.push(segments[segments.length - 1]! + idx.count[f]! * dim);
  const balance = method.combine({ grads, losses: g.losses, step: info.step, epoch: info.epoch, rng: info.rng, stableDim, segments: Int32Array.from(segments) });
  const dir = balance.direction;
  if (dir.length !== d) throw new Error(`trainStep: method ${method.name} returned a direction of length ${dir.length}, expected ${d}`);
  const scale = balance.taskScale;

  // scatter back: dense
  let o = 0;
  dense.forEach((p, i) => {
    const gi = st.gdense[i]!;
    const n = p.data.length;
    if (inScopeDense(p.group, scope)) {
      gi.set(dir.subarray(o, o + n));
      o += n;
    } else {
      const t = p.group as number;
      const src = g.dense[t]![i]!;
      const c = scale[t]!;
      for (let k = 0; k < n; k++) gi[k] = c * src[k]!;
    }
  });
  const penalty = model.arch.regularize ? model.arch.regularize(st.gdense, "train") : 0;

  // embedding rows of each table set: the direction's slice in scope, else the scaled task sum
  const rowsOf: FloatArray[] = sets.map((set, s) => {
    const group = set[0]!.group;
    if (inScopeSet(group, scope)) {
      const rows = dir.subarray(o, o + rowLen);
      o += rowLen;
      return rows;
    }
    let buf = st.grows[s];
    if (!buf || buf.length < rowLen) {
      buf = model.dtype === "float64" ? new Float64Array(rowLen) : new Float32Array(rowLen);
      st.grows[s] = buf;
    }
    const rows = buf.subarray(0, rowLen);
    rows.fill(0);
    for (let t = 0; t < T; t++) {
      const src = g.emb[t]![s];
      if (!src) continue;
      const c = group === "shared" ? 1 : scale[t]!;
      for (let k = 0; k < rowLen; k++) rows[k] = rows[k]! + c * src[k]!;
    }
    return rows;
  });
  // every value about to reach Adam, each checked once
  dense.forEach((p, i) => checkUpdate(p.name, st.gdense[i]!));
  rowsOf.forEach((rows, s) => checkUpdate(`embedding set ${s}`, rows));

  optimizer.beginStep();
  dense.forEach((p, i) => optimizer.dense(i, p.data, st.gdense[i]!, p.decay));
  applyRows(model, optimizer, g, (s) => rowsOf[s]!);
  await afterStep(method, st, batch, seed);
  return { losses: g.losses, balance, penalty, dim: d };
}

/** Per-task logits of a batch in eval mode (no dropout, deterministic gates). */
export function predict(model: Model, batch: Batch): Promise<Float32Array[]> {
  return predictLogits(stateOf(model).ws, batch);
}

/** Parameters + optimiser state for checkpoints: tensors "param/<name>", "adam/m.<name>", "adam/v.<name>"; json = Adam's. */
export function getTrainState(model: Model, optimizer: Adam): { tensors: Record<string, FloatArray>; json: JsonValue } {
  const tensors: Record<string, FloatArray> = {};
  for (const [k, v] of Object.entries(model.getParams())) tensors[`param/${k}`] = v;
  const o = optimizer.getState();
  for (const [k, v] of Object.entries(o.tensors)) tensors[`adam/${k}`] = v;
  return { tensors, json: o.json };
}

/** Inverse of getTrainState (validates every tensor before writing any). */
export function setTrainState(model: Model, optimizer: Adam, st: { tensors: Record<string, ArrayLike<number>>; json: JsonValue }): void {
  const params: Record<string, ArrayLike<number>> = {};
  const adam: Record<string, ArrayLike<number>> = {};
  for (const [k, v] of Object.entries(st.tensors)) {
    if (k.startsWith("param/")) params[k.slice(6)] = v;
    else if (k.startsWith("adam/")) adam[k.slice(5)] = v;
  }
  const saved = model.getParams();
  model.setParams(params);
  try {
    optimizer.setState({ tensors: adam, json: st.json });
  } catch (e) {
    model.setParams(saved);
    throw e;
  }
}
