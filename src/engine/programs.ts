/**
 * Models compiled into ONNX programs, cached per model (= architecture
 * configuration), program kind, batch size, mode and objective; each session is
 * created once and reused.
 *
 * Kinds:
 * - "per-task": one forward and T per-task backward passes in one graph.
 *   Outputs: loss<t>, and for each task t its gradient w.r.t. every dense
 *   parameter its loss depends on (shared ones and its own) and w.r.t. the
 *   gathered embedding input x<s> of every table set it reads.
 * - "weighted-sum": one backward of sum_t w_t L_t with w an input [T]. Outputs:
 *   loss<t> and the gradients of the weighted sum (EW, UW, DWA, RLW).
 * - "loss-aware": like "weighted-sum", but the weights are computed in the graph from
 *   this run's losses by the method's weight rule (key.rule, src/balance/weightrule.ts)
 *   with its parameters as inputs lw<k> [T]; they enter the backward as the losses'
 *   cotangents (constants: no gradient through the rule). Outputs: loss<t>, weights
 *   [T] and the gradients of sum_t w_t L_t (FAMO, STCH).
 * - "losses": the per-task losses only (finite differences, validation loss, FAMO's
 *   re-evaluation after the update).
 * - "eval": per-task logits z<t> [B] (no dropout, deterministic gates).
 *
 * Inputs: p<i> (dense parameter i, fed from the model's typed array without a
 * copy), x<s> [B, F*dim + D] (gathered embeddings of table set s, a multi-valued
 * field's pooled, then the D dense input columns), y<t> [B] (labels,
 * or the coefficients c_t of the linear objective sum_r c_t[r] z_t[r]), w [T]
 * (weighted-sum), noise.<k> (dropout masks / gate noise drawn per run from the
 * step's seed, in declaration order; see fillNoise in src/model/layers.ts).
 * Static shapes: a batch of another size (the last, smaller batch of an epoch)
 * compiles a second program.
 */
import { grad } from "../graph/autodiff.ts";
import { ruleParamCount, ruleSignature, type WeightExpr } from "../balance/weightrule.ts";
import { Graph, numel, type FloatArray, type FloatDType, type Tensor } from "../graph/graph.ts";
import { serialize } from "../graph/onnx.ts";
import type { Model } from "../model/model.ts";
import { fillNoise, forwardAll, makeCtx } from "../model/layers.ts";
import type { Mode, NoiseSpec } from "../model/types.ts";
import { createSession, ort } from "./ort.ts";
import { checkGradientOwnership } from "./ownership.ts";

export type ProgramKind = "per-task" | "weighted-sum" | "loss-aware" | "losses" | "eval" | ExtraProgramKind;
/** Program kinds built outside this file (registerProgramKind): src/grad/representation.ts. */
export type ExtraProgramKind = "representation" | "representation-backward";

type ProgramGraph = { graph: Graph; outputs: { name: string; tensor: Tensor }[]; noise: NoiseSpec[]; layout: GradLayout };
const EXTRA_KINDS = new Map<ProgramKind, (model: Model, key: ProgramKey) => ProgramGraph>();

/** Registers the graph builder of a program kind defined in another module (once per kind). */
export function registerProgramKind(kind: ExtraProgramKind, build: (model: Model, key: ProgramKey) => ProgramGraph): void {
  const had = EXTRA_KINDS.get(kind);
  if (had !== undefined && had !== build) throw new Error(`engine: program kind "${kind}" is already registered`);
  EXTRA_KINDS.set(kind, build);
}
/** "bce": mean BCE with logits against y<t>; "linear": sum_r y<t>[r] z_t[r] (tests). */
export type ObjectiveKind = "bce" | "linear";

export interface ProgramKey {
  kind: ProgramKind;
  batch: number;
  mode: Mode;
  objective: ObjectiveKind;
  /** The weight rule of a "loss-aware" program. */
  rule?: WeightExpr;
}

/** Compile a weight rule over the loss vector [T] (param k = lw<k> [T]) into graph ops. */
export function compileWeightRule(g: Graph, e: WeightExpr, losses: Tensor, params: readonly Tensor[]): Tensor {
  const rec = (x: WeightExpr): Tensor => {
    switch (x.op) {
      case "losses":
        return losses;
      case "param":
        return params[x.index]!;
      case "const":
        return g.expand(g.scalar(x.value), losses.shape);
      case "add":
        return g.add(rec(x.a), rec(x.b));
      case "sub":
        return g.sub(rec(x.a), rec(x.b));
      case "mul":
        return g.mul(rec(x.a), rec(x.b));
      case "div":
        return g.div(rec(x.a), rec(x.b));
      case "max":
        return g.max(rec(x.a), rec(x.b));
      case "exp":
        return g.exp(rec(x.a));
      case "log":
        return g.log(rec(x.a));
      case "softmax":
        return g.softmax(rec(x.a), 0);
      case "normalize": {
        const v = rec(x.a);
        return g.div(v, g.reduceSum(v, [0], true));
      }
    }
  };
  return rec(e);
}

/** Where each gradient lands: output names per task (or the single weighted sum, k = 0), null when zero by construction. */
export interface GradLayout {
  dense: (string | null)[][];
  x: (string | null)[][];
}

function alloc(dtype: FloatDType, n: number): FloatArray {
  return dtype === "float64" ? new Float64Array(n) : new Float32Array(n);
}

/**
 * Noise input buffers (dropout masks, gate noise) shared by the programs of one model, batch
 * size and mode whose noise inputs are the same: the per-task and the weighted-sum program
 * draw the same masks from a step's seed, so they need one set (62 MB for PLE at batch 4096).
 * `busy` while a run uses it; a program that finds it busy (overlapping runs) uses its own.
 * @internal
 */
export class NoiseBuffers {
  busy = false;
  readonly bufs: FloatArray[];
  constructor(
    readonly signature: string,
    dtype: FloatDType,
    noise: readonly NoiseSpec[],
  ) {
    this.bufs = noise.map((s) => alloc(dtype, s.n));
  }
  static signatureOf(dtype: FloatDType, batch: number, mode: Mode, noise: readonly NoiseSpec[]): string {
    return `${dtype}|${batch}|${mode}|${noise.map((s) => `${s.kind}:${s.n}:${s.rate}`).join(",")}`;
  }
}

export class Program {
  private own: NoiseBuffers | null = null;
  private readonly fetches: Record<string, ort.Tensor> = {};
  /** Output values (views of the pre-allocated fetch buffers: valid until the next run). */
  readonly out: Record<string, FloatArray> = {};

  /** @internal (onnxruntime types stay out of the package's declarations) */
  constructor(
    readonly key: ProgramKey,
    private readonly session: ort.InferenceSession,
    readonly inputNames: ReadonlySet<string>,
    outputs: readonly { name: string; tensor: Tensor }[],
    readonly noise: readonly NoiseSpec[],
    readonly layout: GradLayout,
    readonly nodeCount: number,
    private readonly dtype: FloatDType,
    private readonly shared: NoiseBuffers | null = null,
    /** Compiled without the ORT arena under memory "auto" (see programFor). */
    readonly occasional: boolean = false,
  ) {
    for (const o of outputs) {
      const buf = alloc(dtype, numel(o.tensor));
      this.out[o.name] = buf;
      this.fetches[o.name] = new ort.Tensor(dtype, buf, [...o.tensor.shape]);
    }
  }

  /** Run with the given feeds (noise inputs are drawn here from `seed`); results land in `out`. @internal */
  async run(feeds: Record<string, ort.Tensor>, seed: number): Promise<Record<string, FloatArray>> {
    const all: Record<string, ort.Tensor> = {};
    for (const [k, v] of Object.entries(feeds)) if (this.inputNames.has(k)) all[k] = v;
    let nb: NoiseBuffers | null = null;
    if (this.noise.length > 0) {
      nb = this.shared && !this.shared.busy ? this.shared : (this.own ??= new NoiseBuffers("", this.dtype, this.noise));
      fillNoise(this.noise, nb.bufs, seed);
      this.noise.forEach((s, k) => {
        if (this.inputNames.has(s.input)) all[s.input] = new ort.Tensor(this.dtype, nb!.bufs[k]!, s.kind === "dropout" ? [this.key.batch, s.n / this.key.batch] : [s.n]);
      });
    }
    for (const name of this.inputNames) if (!(name in all)) throw new Error(`engine: no feed for graph input "${name}" (${this.key.kind} program)`);
    if (nb) nb.busy = true;
    try {
      await this.session.run(all, this.fetches);
    } finally {
      if (nb) nb.busy = false;
    }
    return this.out;
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}

/** Build the graph of one program for a model (exported for tests and the bench's node counts). */
export function buildProgramGraph(model: Model, key: ProgramKey): ProgramGraph {
  const extra = EXTRA_KINDS.get(key.kind);
  if (extra) return extra(model, key);
  const g = new Graph(model.dtype);
  const B = key.batch;
  const T = model.numTasks;
  const width = model.inputWidth;
  const p = model.dense.map((q, i) => g.input(`p${i}`, q.shape));
  const xs = model.tables.map((_, s) => g.input(`x${s}`, [B, width]));
  const ctx = makeCtx(g, key.mode, B, model.dropout);
  const logits = g.scope(model.name, () => forwardAll(model.arch, p, xs, ctx));
  const outputs: { name: string; tensor: Tensor }[] = [];
  const layout: GradLayout = { dense: [], x: [] };
  if (key.kind === "eval") {
    logits.forEach((z, t) => outputs.push({ name: `z${t}`, tensor: z }));
    return { graph: g, outputs, noise: ctx.noise, layout };
  }
  const losses = logits.map((z, t) =>
    g.scope(`loss${t}`, () => {
      const y = g.input(`y${t}`, [B]);
      return key.objective === "linear" ? g.reduceSum(g.mul(z, y), [0], false) : g.bceWithLogits(z, y);
    }),
  );
  losses.forEach((l, t) => outputs.push({ name: `loss${t}`, tensor: l }));
  // build-time check: task-owned parameters get only their task's gradient, every parameter some
  if (key.mode === "train") checkGradientOwnership(model, g, losses, p, xs);
  if (key.kind === "losses") return { graph: g, outputs, noise: ctx.noise, layout };
  const wrt = [...p, ...xs];
  const emit = (k: number, gs: (Tensor | null)[]): void => {
    const dense: (string | null)[] = [];
    const x: (string | null)[] = [];
    gs.forEach((gt, i) => {
      const isX = i >= p.length;
      const name = gt ? (isX ? `g${k}.x${i - p.length}` : `g${k}.p${i}`) : null;
      if (gt && name) outputs.push({ name, tensor: gt });
      (isX ? x : dense).push(name);
    });
    layout.dense.push(dense);
    layout.x.push(x);
  };
  if (key.kind === "per-task") {
    for (let t = 0; t < T; t++) emit(t, grad(g, [losses[t]!], wrt));
  } else if (key.kind === "loss-aware") {
    if (!key.rule) throw new Error("engine: a loss-aware program needs its weight rule");
    const rule = key.rule;
    const params = Array.from({ length: ruleParamCount(rule) }, (_, k) => g.input(`lw${k}`, [T]));
    const w = g.scope("loss-weights", () =>
      compileWeightRule(
        g,
        rule,
        g.concat(
          losses.map((l) => g.reshape(l, [1])),
          0,
        ),
        params,
      ),
    );
    outputs.push({ name: "weights", tensor: w });
    // the weights are the losses' cotangents: values of the forward, never differentiated
    const cts = g.scope("loss-weights", () => g.split(w, 0, new Array<number>(T).fill(1)).map((c, t) => g.reshape(c, losses[t]!.shape)));
    emit(0, grad(g, losses, wrt, cts));
  } else {
    const w = g.input("w", [T]);
    const total = g.scope("weighted-sum", () =>
      g.reduceSum(
        g.mul(
          g.concat(
            losses.map((l) => g.unsqueeze(l, [0])),
            0,
          ),
          w,
        ),
        [0],
        false,
      ),
    );
    emit(0, grad(g, [total], wrt));
  }
  return { graph: g, outputs, noise: ctx.noise, layout };
}

/** A model's compiled programs by cache key, each with the ProgramKey it was built for. */
const cache = new WeakMap<Model, Map<string, { key: ProgramKey; program: Promise<Program> }>>();
const noisePools = new WeakMap<Model, Map<string, NoiseBuffers>>();

function sharedNoise(model: Model, key: ProgramKey, noise: readonly NoiseSpec[]): NoiseBuffers | null {
  if (noise.length === 0) return null;
  let m = noisePools.get(model);
  if (!m) {
    m = new Map();
    noisePools.set(model, m);
  }
  const sig = NoiseBuffers.signatureOf(model.dtype, key.batch, key.mode, noise);
  let nb = m.get(sig);
  if (!nb) {
    nb = new NoiseBuffers(sig, model.dtype, noise);
    m.set(sig, nb);
  }
  return nb;
}

/**
 * The compiled program for (model, key), created once. Under the engine's memory "auto" only
 * the training step's main program keeps an arena (see EngineOptions.memory); a program is
 * "occasional" (no arena) when the caller says so (`occasional`: the per-task program of a
 * loss-weighting method, run on diagnostics steps only), when it is an eval or losses program
 * (prediction and validation, between epochs), or when the model already has the same program
 * for a larger batch (an epoch's last, smaller batch). `everyStep` keeps the arena of a losses
 * program that runs on every training step (FAMO's afterStep re-evaluation). Decided when the
 * program is compiled.
 */
export function programFor(model: Model, key: ProgramKey, opts: { occasional?: boolean; everyStep?: boolean } = {}): Promise<Program> {
  let m = cache.get(model);
  if (!m) {
    m = new Map();
    cache.set(model, m);
  }
  const sig = key.rule ? ruleSignature(key.rule) : "";
  const k = `${key.kind}|${key.batch}|${key.mode}|${key.objective}|${sig}`;
  const hit = m.get(k);
  if (hit) return hit.program;
  const larger = [...m.values()].some(
    ({ key: o }) =>
      o.kind === key.kind && o.mode === key.mode && o.objective === key.objective && (o.rule ? ruleSignature(o.rule) : "") === sig && o.batch > key.batch,
  );
  const occasional = opts.occasional === true || key.kind === "eval" || (key.kind === "losses" && opts.everyStep !== true) || larger;
  const program = (async () => {
    const { graph, outputs, noise, layout } = buildProgramGraph(model, key);
    const ser = serialize(graph, outputs, { name: `${model.name}.${key.kind}` });
    const session = await createSession(ser.bytes, { occasional });
    return new Program(key, session, new Set(ser.inputs), outputs, noise, layout, ser.nodeCount, model.dtype, sharedNoise(model, key, noise), occasional);
  })();
  m.set(k, { key, program });
  program.catch(() => m.delete(k));
  return program;
}

/** Release every session compiled for a model (they are also freed with the model). */
export async function releasePrograms(model: Model): Promise<void> {
  const m = cache.get(model);
  if (!m) return;
  cache.delete(model);
  noisePools.delete(model);
  for (const { program } of m.values()) await (await program).release();
}
