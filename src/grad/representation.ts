/**
 * Balancing on the shared representation (`--balance-at representation`): the per-task
 * gradients handed to the balancing method are taken with respect to what the task-specific
 * parts of the model read from the shared computation, not with respect to the shared
 * parameters (Meta's MultiBalance; LibMTL's `rep_grad`).
 *
 * The representation of an architecture is what its `trunk` returns (Architecture.trunk, and
 * the architecture's `representation` line says what that is): Shared-Bottom's bottom output,
 * MMoE's expert outputs, SNR's sub-network outputs, PLE's shared experts' outputs at the last
 * level (with `levels` > 1: every tensor the last level reads from below, see src/model/ple.ts).
 * The trunk holds exactly the shared dense parameters, so every shared parameter's gradient
 * flows through the representation: the cut is exact, and Σ_t ∂L_t/∂θ = J_trunkᵀ Σ_t ∂L_t/∂z.
 *
 * Two programs per step (both compiled once per model, batch size and mode):
 * - "representation": the forward, then for each task t one backward of L_t down to the
 *   representation z (the heads' part of the graph only). The heads read the dense parameters
 *   and the gathered embeddings x through Identity views, so the same backward also gives each
 *   task's gradient w.r.t. its own parameters and the heads' direct use of x (MMoE/PLE gates,
 *   PLE's task experts read x) without walking into the trunk. Outputs: loss<t>, r<t>.<j>
 *   (∂L_t/∂z_j), g<t>.p<i> and g<t>.x<s> (head-side gradients; absent when zero).
 * - "representation-backward": the trunk's forward again (same seed, so the same dropout
 *   masks: the trunk's noise is the prefix of the full forward's) and one backward of
 *   Σ_j <c_j, z_j> with the combined cotangents c<j> as inputs; the heads' direct gradients
 *   w.r.t. shared x (inputs h<t>.x<s>: the first program's output buffers, fed without a copy)
 *   are added to the x gradient there, times taskScale (input ts [T]), so JS coalesces one
 *   x gradient per table set, as on the weighted-sum path. Outputs: b.p<i>, b.x<s>.
 *
 * Step (representationStep): per-task vectors = [∂L_t/∂z_0, ∂L_t/∂z_1, ...] flattened over the
 * batch (length Σ_j numel(z_j)); ∂L_t/∂z_j is the partial derivative through the heads (where
 * one representation tensor also feeds another inside the trunk, as PLE's level-0 experts feed
 * the last level's shared experts, the inner path is the trunk backward's); `method.combine`
 * gives the direction c; the trunk backward pushes c to the shared parameters and embeddings once. Task t's own parameters get
 * taskScale[t] · their gradient, as at `parameters`. What the heads read from x directly (the
 * gates of MMoE/PLE, PLE's task experts at the last level) is not part of the representation:
 * it reaches the shared embedding rows as Σ_t taskScale[t] · (head t's gradient w.r.t. x), the
 * way the method treats task t's own parameters (1 for the gradient-surgery methods, the loss
 * weights for the loss weightings); a shared dense parameter read by a head (none of the
 * built-in architectures does) likewise. Every loss weighting (EW, UW, DWA, RLW, ..., whose
 * direction is Σ_t w_t g_t with taskScale = w) therefore makes the same update as at
 * `parameters` (Σ_t w_t ∂L_t/∂θ), and its one-program steps without diagnostics agree with
 * its steps with them.
 *
 * The coordinates of the representation gradient are batch rows: they mean something else at
 * every step. The method gets `stableDim = 0` (no coordinate is stable), so methods with
 * per-coordinate history keep none over it (DB-MTL: the step's own log-gradient instead of the
 * EMA; MoCo: this step's gradient instead of the tracked y, λ is still tracked); ExcessMTL,
 * whose weights come only from per-coordinate accumulators, would be EW in disguise and is
 * refused (REPRESENTATION_REFUSALS). `segments` has one segment per representation tensor
 * (MetaBalance's per-tensor norms).
 */
import { grad } from "../graph/autodiff.ts";
import { Graph, type FloatArray, type Tensor } from "../graph/graph.ts";
import type { Batch } from "../data/types.ts";
import type { Model } from "../model/model.ts";
import { makeCtx } from "../model/layers.ts";
import { checkGradientOwnership, lossReach } from "../engine/ownership.ts";
import { ort } from "../engine/ort.ts";
import { programFor, registerProgramKind, type GradLayout, type ObjectiveKind, type ProgramKey } from "../engine/programs.ts";
import { coalesceInto, feedsOf, type BatchIndex, type GradWorkspace, type LinearObjective } from "./pertask.ts";
import type { Mode } from "../model/types.ts";

/** Where the balancing method's per-task gradients are taken (train option `balanceAt`, `--balance-at`). */
export type BalanceAt = "parameters" | "representation";
export const BALANCE_AT: readonly BalanceAt[] = ["parameters", "representation"];

/**
 * Methods that refuse `--balance-at representation`, with the reason. Checked once when a run
 * is set up (checkBalanceAt) and again by the step.
 */
export const REPRESENTATION_REFUSALS: Readonly<Record<string, string>> = {
  excessmtl:
    "its weights come only from per-coordinate accumulators of past squared gradients, and the representation's coordinates are batch rows that change meaning every step, so there would be nothing to accumulate and the weights would stay uniform (EW)",
};

/**
 * Throws when `method` cannot balance at `balanceAt`, naming the method, the option and what to
 * do; also when a parameter scope other than the default "shared" is asked for at the
 * representation (the scope picks parameters, and the representation replaces them).
 */
export function checkBalanceAt(method: string, balanceAt: BalanceAt | undefined, scope?: string): void {
  if (balanceAt === undefined || balanceAt === "parameters") return;
  if (balanceAt !== "representation") throw new Error(`balanceAt: unknown value "${String(balanceAt)}"; choose one of ${BALANCE_AT.join(", ")}`);
  if (scope !== undefined && scope !== "shared") {
    throw new Error(`--scope ${scope} (scope) has no effect with --balance-at representation: the method balances the shared representation, not a set of parameters. Leave --scope at shared, or use --balance-at parameters`);
  }
  const why = REPRESENTATION_REFUSALS[method];
  if (why !== undefined) {
    throw new Error(`method ${method} cannot run with --balance-at representation (balanceAt): ${why}. Use --balance-at parameters with ${method}, or another method`);
  }
}

/** Output names of the per-task program: representation gradient of task t, tensor j. */
const repName = (t: number, j: number): string => `r${t}.${j}`;

/** The representation program's layout: per task, the output name of each representation gradient (null: zero). */
export interface RepresentationLayout extends GradLayout {
  /** rep[t][j]: output name of ∂L_t/∂z_j, or null when task t does not read z_j. */
  rep: (string | null)[][];
  /** Shape of each representation tensor z_j. */
  shapes: number[][];
  /** Trunk backward only: direct[t][s], whether it takes head t's gradient w.r.t. shared x<s> as input h<t>.x<s>. */
  direct: boolean[][];
}

/**
 * The forward with the heads reading the representation, the parameters and x through Identity
 * views (zH, pH, xH), and the task losses.
 */
function forwardWithViews(model: Model, key: ProgramKey) {
  const g = new Graph(model.dtype);
  const B = key.batch;
  const T = model.numTasks;
  const arch = model.arch;
  const p = model.dense.map((q, i) => g.input(`p${i}`, q.shape));
  const xs = model.tables.map((_, s) => g.input(`x${s}`, [B, model.inputWidth]));
  const ctx = makeCtx(g, key.mode, B, model.dropout);
  const feats = g.scope(model.name, () => g.scope("trunk", () => arch.trunk(p, xs, ctx)));
  // Each gradient w.r.t. a view is the heads' part only: the partial derivative w.r.t. what the
  // heads read. (Without the views, a representation tensor that also feeds another one inside
  // the trunk, such as PLE's level-0 experts under the last level's shared experts, would get its
  // total derivative, and the trunk backward would count the inner path twice.)
  const zH = feats.map((t) => g.identity(t));
  const pH = p.map((t) => g.identity(t));
  const xH = xs.map((t) => g.identity(t));
  const logits: Tensor[] = [];
  for (let t = 0; t < T; t++) logits.push(g.scope(model.name, () => g.scope(`head${t}`, () => arch.head(t, pH, zH, xH, ctx))));
  const objective: ObjectiveKind = key.objective;
  const losses = logits.map((z, t) =>
    g.scope(`loss${t}`, () => {
      const y = g.input(`y${t}`, [B]);
      return objective === "linear" ? g.reduceSum(g.mul(z, y), [0], false) : g.bceWithLogits(z, y);
    }),
  );
  return { g, p, xs, ctx, feats, zH, pH, xH, losses };
}

/** direct[t][s]: whether head t reads x<s> of a shared embedding set itself (MMoE/PLE gates, PLE's task experts). */
function headReadsSharedX(model: Model, key: ProgramKey): boolean[][] {
  const f = forwardWithViews(model, key);
  return lossReach(f.g, f.losses, f.xH).map((row) => row.map((r, s) => r && (model.tables[s]![0]?.group ?? "shared") === "shared"));
}

function buildRepresentation(model: Model, key: ProgramKey): ReturnType<Parameters<typeof registerProgramKind>[1]> {
  const T = model.numTasks;
  const outputs: { name: string; tensor: Tensor }[] = [];
  if (key.kind === "representation-backward") {
    // the trunk's forward, then one backward of the combined cotangents c<j>; the heads' direct
    // gradients w.r.t. shared x (h<t>.x<s>, outputs of the representation program fed back without a
    // copy) join the x gradient here, scaled by taskScale (ts [T]): one coalescing in JS instead of T+1
    const direct = headReadsSharedX(model, key);
    const g = new Graph(model.dtype);
    const B = key.batch;
    const p = model.dense.map((q, i) => g.input(`p${i}`, q.shape));
    const xs = model.tables.map((_, s) => g.input(`x${s}`, [B, model.inputWidth]));
    const ctx = makeCtx(g, key.mode, B, model.dropout);
    const feats = g.scope(model.name, () => g.scope("trunk", () => model.arch.trunk(p, xs, ctx)));
    const layout: RepresentationLayout = { dense: [], x: [], rep: [], shapes: feats.map((z) => [...z.shape]), direct };
    const cts = feats.map((z, j) => g.input(`c${j}`, z.shape));
    const gs = feats.length === 0 ? [...p, ...xs].map(() => null) : grad(g, feats, [...p, ...xs], cts);
    const anyDirect = direct.some((row) => row.some(Boolean));
    const ts = anyDirect ? g.split(g.input("ts", [T]), 0, new Array<number>(T).fill(1)) : [];
    gs.forEach((gt, i) => {
      if (i < p.length) {
        if (gt) outputs.push({ name: `b.p${i}`, tensor: gt });
        return;
      }
      const s = i - p.length;
      const parts: Tensor[] = gt ? [gt] : [];
      for (let t = 0; t < T; t++) if (direct[t]![s]) parts.push(g.mul(g.input(`h${t}.x${s}`, [B, model.inputWidth]), ts[t]!));
      if (parts.length > 0) outputs.push({ name: `b.x${s}`, tensor: parts.length === 1 ? parts[0]! : g.scope("grad", () => g.sum(parts)) });
    });
    return { graph: g, outputs, noise: ctx.noise, layout };
  }
  const { g, p, xs, ctx, feats, zH, pH, xH, losses } = forwardWithViews(model, key);
  const layout: RepresentationLayout = { dense: [], x: [], rep: [], shapes: feats.map((z) => [...z.shape]), direct: [] };
  losses.forEach((l, t) => outputs.push({ name: `loss${t}`, tensor: l }));
  if (key.mode === "train") checkGradientOwnership(model, g, losses, p, xs);
  for (let t = 0; t < T; t++) {
    const gs = grad(g, [losses[t]!], [...zH, ...pH, ...xH]);
    const rep: (string | null)[] = [];
    const dense: (string | null)[] = [];
    const x: (string | null)[] = [];
    gs.forEach((gt, i) => {
      let name: string;
      if (i < feats.length) name = repName(t, i);
      else if (i < feats.length + p.length) name = `g${t}.p${i - feats.length}`;
      else name = `g${t}.x${i - feats.length - p.length}`;
      if (gt) outputs.push({ name, tensor: gt });
      (i < feats.length ? rep : i < feats.length + p.length ? dense : x).push(gt ? name : null);
    });
    layout.rep.push(rep);
    layout.dense.push(dense);
    layout.x.push(x);
  }
  return { graph: g, outputs, noise: ctx.noise, layout };
}

registerProgramKind("representation", buildRepresentation);
registerProgramKind("representation-backward", buildRepresentation);

function programKey(kind: "representation" | "representation-backward", B: number, mode: Mode, objective: LinearObjective | undefined): ProgramKey {
  return { kind, batch: B, mode, objective: objective ? "linear" : "bce" };
}

/** Per-task gradients at the representation (views of the program's output buffers, valid until it runs again). @internal (onnxruntime types: see engine/ort.ts) */
export interface RepresentationGrads {
  losses: Float64Array;
  /** rep[t][j]: ∂L_t/∂z_j flattened [numel(z_j)], null when zero. */
  rep: (FloatArray | null)[][];
  /** Length of each representation tensor. */
  sizes: number[];
  /** headDense[t][i]: task t's head-side gradient w.r.t. dense parameter i, null when zero. */
  headDense: (FloatArray | null)[][];
  /** headX[t][s]: task t's head-side gradient w.r.t. x<s> [B, width], null when zero. */
  headX: (FloatArray | null)[][];
  index: BatchIndex;
  /** The feeds of this run (parameters, x, labels), reused by the trunk backward. */
  feeds: Record<string, ort.Tensor>;
}

/** Runs the forward and the T backward passes down to the representation. @internal */
export async function representationGrads(ws: GradWorkspace, batch: Batch, opts: { mode: Mode; seed: number; objective?: LinearObjective }): Promise<RepresentationGrads> {
  const m = ws.model;
  const T = m.numTasks;
  const B = batch.size;
  if (B < 1) throw new Error("representationGrads: empty batch");
  const prog = await programFor(m, programKey("representation", B, opts.mode, opts.objective));
  const feeds = feedsOf(ws, batch, opts.objective, true);
  await prog.run(feeds, opts.seed);
  const layout = prog.layout as RepresentationLayout;
  const losses = new Float64Array(T);
  for (let t = 0; t < T; t++) losses[t] = prog.out[`loss${t}`]![0]!;
  const pick = (names: (string | null)[]): (FloatArray | null)[] => names.map((n) => (n ? prog.out[n]! : null));
  return {
    losses,
    rep: layout.rep.map(pick),
    sizes: layout.shapes.map((s) => s.reduce((a, b) => a * b, 1)),
    headDense: layout.dense.map(pick),
    headX: layout.x.map(pick),
    index: ws.index,
    feeds,
  };
}

/** Trunk backward of the combined cotangents `cts` (one per representation tensor, model dtype); views of the output buffers. @internal */
export async function trunkBackward(
  ws: GradWorkspace,
  B: number,
  mode: Mode,
  seed: number,
  feeds: Record<string, ort.Tensor>,
  cts: readonly FloatArray[],
  headX: readonly (readonly (FloatArray | null)[])[],
  taskScale: ArrayLike<number>,
  objective?: LinearObjective,
): Promise<{ dense: (FloatArray | null)[]; x: (FloatArray | null)[] }> {
  const m = ws.model;
  const T = m.numTasks;
  const prog = await programFor(m, programKey("representation-backward", B, mode, objective));
  const { shapes, direct } = prog.layout as RepresentationLayout;
  if (cts.length !== shapes.length) throw new Error(`trunkBackward: ${cts.length} cotangents for ${shapes.length} representation tensors`);
  const all: Record<string, ort.Tensor> = { ...feeds };
  cts.forEach((c, j) => {
    const shape = shapes[j]!;
    if (c.length !== numelOf(shape)) throw new Error(`trunkBackward: cotangent ${j} has ${c.length} values, representation tensor ${j} has ${numelOf(shape)}`);
    all[`c${j}`] = new ort.Tensor(c instanceof Float64Array ? "float64" : "float32", c, shape);
  });
  if (direct.some((row) => row.some(Boolean))) {
    const ts = ws.weightBuffer(T);
    for (let t = 0; t < T; t++) ts[t] = taskScale[t]!;
    all.ts = new ort.Tensor(ts instanceof Float64Array ? "float64" : "float32", ts, [T]);
    direct.forEach((row, t) =>
      row.forEach((d, s) => {
        if (!d) return;
        const h = headX[t]?.[s];
        if (!h) throw new Error(`trunkBackward: head ${t}'s gradient w.r.t. x${s} is missing`);
        all[`h${t}.x${s}`] = new ort.Tensor(h instanceof Float64Array ? "float64" : "float32", h, [B, m.inputWidth]);
      }),
    );
  }
  await prog.run(all, seed);
  return {
    dense: m.dense.map((_, i) => prog.out[`b.p${i}`] ?? null),
    x: m.tables.map((_, s) => prog.out[`b.x${s}`] ?? null),
  };
}

const numelOf = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);

/** Coalesces x's gradient [B, width] into unique rows, times `scale` (adds into `rows`). */
export function coalesceScaled(rows: FloatArray, g: FloatArray, scale: number, ws: GradWorkspace, tmp: FloatArray): void {
  const m = ws.model;
  if (scale === 1) {
    coalesceInto(rows, g, ws.index, m.fields, m.embDim, m.inputWidth);
    return;
  }
  const n = g.length;
  for (let k = 0; k < n; k++) tmp[k] = scale * g[k]!;
  coalesceInto(rows, tmp.subarray(0, n), ws.index, m.fields, m.embDim, m.inputWidth);
}
