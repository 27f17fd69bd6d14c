/**
 * One training step balanced at the shared representation (`balanceAt: "representation"`,
 * `--balance-at representation`); see src/grad/representation.ts for the programs and what
 * each part of the model receives.
 *
 * Pipeline: forward + T backward passes down to the representation (one program run) ->
 * T flat vectors [∂L_t/∂z_0, ∂L_t/∂z_1, ...] -> method.combine (stableDim 0, one segment per
 * representation tensor) -> the direction, cut back into one cotangent per representation
 * tensor, runs the trunk backward once (second program run) -> shared dense parameters: the
 * trunk's gradient; task-owned ones: taskScale[t] · their task's gradient; shared embedding
 * rows: the trunk's x gradient plus Σ_t taskScale[t] · what head t reads from x directly (summed
 * in the trunk-backward program, coalesced once) -> SNR's L0 penalty -> Adam (L2 inside) ->
 * afterStep hook.
 */
import type { BalancingMethod } from "../balance/types.ts";
import { NonFiniteInputError } from "../balance/common.ts";
import type { Batch } from "../data/types.ts";
import type { FloatArray } from "../graph/graph.ts";
import type { Model } from "../model/index.ts";
import type { Adam } from "../optim/adam.ts";
import { lossesOnly, type GradWorkspace } from "../grad/pertask.ts";
import { checkBalanceAt, coalesceScaled, representationGrads, trunkBackward } from "../grad/representation.ts";
import type { StepInfo, StepResult } from "./step-types.ts";

interface RepState {
  flats: Float32Array[];
  cts: FloatArray[];
  gdense: FloatArray[];
  tmp: FloatArray;
}

const states = new WeakMap<GradWorkspace, RepState>();

function alloc(model: Model, n: number): FloatArray {
  return model.dtype === "float64" ? new Float64Array(n) : new Float32Array(n);
}

function stateOf(ws: GradWorkspace): RepState {
  let s = states.get(ws);
  if (!s) {
    const m = ws.model;
    s = { flats: [], cts: [], gdense: m.dense.map((p) => alloc(m, p.data.length)), tmp: alloc(m, 0) };
    states.set(ws, s);
  }
  return s;
}

/** Same guard as the parameter-level step: a non-finite or exploding update never reaches Adam. */
function checkUpdate(name: string, a: ArrayLike<number>): void {
  for (let i = 0; i < a.length; i++) {
    if (!(Math.abs(a[i]!) <= 1e18)) throw new Error(`update of ${name} is ${Number.isFinite(a[i]!) ? "exploding" : "not finite"} at position ${i} (${a[i]})`);
  }
}

function addInto(dst: FloatArray, src: FloatArray, c: number): void {
  const n = dst.length;
  if (c === 1) for (let k = 0; k < n; k++) dst[k] = dst[k]! + src[k]!;
  else for (let k = 0; k < n; k++) dst[k] = dst[k]! + c * src[k]!;
}

/** The step at the representation; `ws` is the model's gradient workspace (step.ts's). */
export async function representationStep(model: Model, optimizer: Adam, method: BalancingMethod, batch: Batch, info: StepInfo, ws: GradWorkspace): Promise<StepResult> {
  checkBalanceAt(method.name, info.balanceAt);
  const T = model.numTasks;
  const st = stateOf(ws);
  const seed = info.rng.nextU32();
  const B = batch.size;
  const r = await representationGrads(ws, batch, { mode: "train", seed });
  for (let t = 0; t < T; t++) {
    const l = r.losses[t]!;
    if (!Number.isFinite(l)) throw new NonFiniteInputError(`loss of task ${t} is not finite (${l})`, t, "loss", -1, l);
  }
  // flat per-task vectors over the representation
  const sizes = r.sizes;
  let d = 0;
  const segments: number[] = [0];
  for (const n of sizes) segments.push((d += n));
  for (let t = 0; t < T; t++) {
    let f = st.flats[t];
    if (!f || f.length < d) {
      f = new Float32Array(d);
      st.flats[t] = f;
    }
    const v = f.subarray(0, d);
    sizes.forEach((n, j) => {
      const src = r.rep[t]![j];
      if (src) v.set(src, segments[j]!);
      else v.fill(0, segments[j]!, segments[j]! + n);
    });
  }
  const grads = st.flats.slice(0, T).map((f) => f.subarray(0, d));
  const balance = method.combine({ grads, losses: r.losses, step: info.step, epoch: info.epoch, rng: info.rng, stableDim: 0, segments: Int32Array.from(segments) });
  const dir = balance.direction;
  if (dir.length !== d) throw new Error(`trainStep: method ${method.name} returned a direction of length ${dir.length}, expected ${d}`);
  checkUpdate("the representation's combined gradient", dir);
  const scale = balance.taskScale;

  // the combined cotangent, pushed back through the trunk once
  const cts: FloatArray[] = sizes.map((n, j) => {
    const part = dir.subarray(segments[j]!, segments[j]! + n);
    if (model.dtype === "float32") return part;
    let b = st.cts[j];
    if (!b || b.length !== n) st.cts[j] = b = alloc(model, n);
    b.set(part);
    return b;
  });
  // (no trunk and no shared table, as in single and lr: nothing to push back)
  const needTrunk = sizes.length > 0 || model.tables.some((set) => (set[0]?.group ?? "shared") === "shared");
  const trunk = needTrunk ? await trunkBackward(ws, B, "train", seed, r.feeds, cts, r.headX, scale) : { dense: model.dense.map(() => null), x: model.tables.map(() => null) };

  const dense = model.dense;
  dense.forEach((p, i) => {
    const gi = st.gdense[i]!;
    const fromTrunk = trunk.dense[i] ?? null;
    if (p.group === "shared") {
      if (fromTrunk) gi.set(fromTrunk);
      else gi.fill(0);
      for (let t = 0; t < T; t++) {
        const h = r.headDense[t]![i];
        if (h) addInto(gi, h, scale[t]!);
      }
      return;
    }
    if (fromTrunk) {
      throw new Error(`model ${model.name}: parameter "${p.name}" belongs to task ${p.group} but the trunk reads it; with --balance-at representation the trunk may read shared parameters only (move it into head ${p.group})`);
    }
    const t = p.group;
    const h = r.headDense[t]![i];
    const c = scale[t]!;
    if (h) for (let k = 0; k < gi.length; k++) gi[k] = c * h[k]!;
    else gi.fill(0);
  });
  const penalty = model.arch.regularize ? model.arch.regularize(st.gdense, "train") : 0;

  const width = model.inputWidth;
  if (st.tmp.length < B * width) st.tmp = alloc(model, B * width);
  const rowsOf: FloatArray[] = model.tables.map((set, s) => {
    const group = set[0]?.group ?? "shared";
    const rows = ws.rowBuffer(0, s);
    const fromTrunk = trunk.x[s] ?? null;
    if (group === "shared") {
      // the trunk backward's x gradient already holds Σ_t taskScale[t] · head t's direct gradient
      if (fromTrunk) coalesceScaled(rows, fromTrunk, 1, ws, st.tmp);
      return rows;
    }
    if (fromTrunk) throw new Error(`model ${model.name}: embedding set ${s} belongs to task ${group} but the trunk reads it; with --balance-at representation the trunk may read shared inputs only`);
    const h = r.headX[group]![s];
    if (h) coalesceScaled(rows, h, scale[group]!, ws, st.tmp);
    return rows;
  });
  dense.forEach((p, i) => checkUpdate(p.name, st.gdense[i]!));
  rowsOf.forEach((rows, s) => checkUpdate(`embedding set ${s}`, rows));

  optimizer.beginStep();
  dense.forEach((p, i) => optimizer.dense(i, p.data, st.gdense[i]!, p.decay));
  const idx = r.index;
  const dim = model.embDim;
  let slot = dense.length;
  model.tables.forEach((set, s) => {
    const rows = rowsOf[s]!;
    set.forEach((tab, f) => {
      const off = idx.rowOffset[f]! * dim;
      const n = idx.count[f]!;
      optimizer.rows(slot, tab.data, dim, idx.uniq[f]!, n, rows.subarray(off, off + n * dim), true);
      slot++;
    });
  });
  if (method.afterStep) method.afterStep(await lossesOnly(ws, batch, "train", seed, undefined, true));
  return { losses: r.losses, balance, penalty, dim: d };
}
