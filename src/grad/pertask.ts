/**
 * Forward + per-task gradients, run by the engine (src/engine/programs.ts).
 *
 * Loss: per-task mean BCE with logits, mean(softplus(z) - z*y) (stable form).
 * The graphs differentiate w.r.t. the dense params and the gathered embedding
 * input x [B, F*dim] of each table set, never w.r.t. the tables; x's gradient
 * rows are then coalesced per unique id of the batch (scatter-add in JS over
 * the BatchIndex remapping, no Map), so no work is dense over a table.
 *
 * Cotangents: "per-task" (default) runs the per-task program (one forward, T
 * backward passes in one graph); "sum" and "weighted" run the weighted-sum
 * program (one backward of sum_t w_t L_t; "sum" has w = 1), for methods that
 * need no per-task gradients.
 *
 * Dropout masks / gate noise are graph inputs drawn from `new Rng(seed)` in the
 * order the forward declared them (trunk, then heads 0..T-1), so every program
 * run with the same seed sees the same masks.
 */
import type { Batch } from "../data/types.ts";
import type { Model } from "../model/index.ts";
import type { Mode } from "../model/types.ts";
import type { FloatArray } from "../graph/graph.ts";
import { ort } from "../engine/ort.ts";
import { programFor, type ObjectiveKind, type Program, type ProgramKey, type ProgramKind } from "../engine/programs.ts";
import { ruleParamCount, type WeightExpr } from "../balance/weightrule.ts";

/**
 * Unique ids of a batch per field, and the position -> unique-slot remapping. Buffers reused
 * across batches. A multi-valued field (perRow[f] = maxLen > 1) has maxLen positions per row
 * (Batch.fields layout: the row's ids, then -1 padding): its unique ids are those of every item
 * of the batch, and padding positions map to slot -1, so gradients reach only the rows used.
 */
export class BatchIndex {
  /** uniq[f].subarray(0, count[f]) are the distinct ids of field f in first-seen order. */
  readonly uniq: Int32Array[] = [];
  /** remap[f][r * perRow[f] + k] = slot of item k of row r in uniq[f] (-1 for padding). */
  readonly remap: Int32Array[] = [];
  /** len[f][r] = number of ids of row r (1 for a single-valued field). */
  readonly len: Int32Array[] = [];
  readonly count: Int32Array;
  /** rowOffset[f] = sum of count[f'] for f' < f; rowOffset[F] = total unique rows. */
  readonly rowOffset: Int32Array;
  /** Ids per row of each field (1, or maxLen of a multi-valued field). */
  readonly perRow: readonly number[];
  size = 0;
  private readonly slot: Int32Array[] = [];

  constructor(
    readonly vocab: readonly number[],
    perRow?: readonly number[],
  ) {
    const F = vocab.length;
    this.perRow = perRow ?? vocab.map(() => 1);
    if (this.perRow.length !== F || !this.perRow.every((L) => Number.isInteger(L) && L >= 1)) throw new Error(`BatchIndex: perRow must hold ${F} integers >= 1`);
    this.count = new Int32Array(F);
    this.rowOffset = new Int32Array(F + 1);
    for (let f = 0; f < F; f++) {
      this.slot.push(new Int32Array(vocab[f]!).fill(-1));
      this.uniq.push(new Int32Array(0));
      this.remap.push(new Int32Array(0));
      this.len.push(new Int32Array(0));
    }
  }

  get totalRows(): number {
    return this.rowOffset[this.vocab.length]!;
  }

  index(batch: Batch): void {
    const F = this.vocab.length;
    const B = batch.size;
    if (batch.fields.length !== F) throw new Error(`batch has ${batch.fields.length} fields, model expects ${F}`);
    this.size = B;
    let off = 0;
    for (let f = 0; f < F; f++) {
      const L = this.perRow[f]!;
      if (this.remap[f]!.length < B * L) this.remap[f] = new Int32Array(B * L);
      if (this.uniq[f]!.length < B * L) this.uniq[f] = new Int32Array(B * L);
      if (this.len[f]!.length < B) this.len[f] = new Int32Array(B);
      const ids = batch.fields[f]!;
      if (ids.length < B * L) throw new Error(`batch field ${f} has ${ids.length} ids for batch size ${B}${L > 1 ? ` x ${L} per row` : ""}`);
      const slot = this.slot[f]!;
      const uniq = this.uniq[f]!;
      const remap = this.remap[f]!;
      const len = this.len[f]!;
      const V = this.vocab[f]!;
      let n = 0;
      try {
        for (let r = 0; r < B; r++) {
          let k = 0;
          for (; k < L; k++) {
            const id = ids[r * L + k]!;
            if (id === -1 && k > 0) break;
            if (!(id >= 0 && id < V)) throw new Error(`batch field ${f} row ${r}${L > 1 ? ` item ${k}` : ""}: id ${id} outside [0, ${V})`);
            let s = slot[id]!;
            if (s < 0) {
              s = n++;
              slot[id] = s;
              uniq[s] = id;
            }
            remap[r * L + k] = s;
          }
          len[r] = k;
          for (let j = k; j < L; j++) {
            if (ids[r * L + j] !== -1) throw new Error(`batch field ${f} row ${r}: id ${ids[r * L + j]} after -1 padding (padding must end the row)`);
            remap[r * L + j] = -1;
          }
        }
      } finally {
        for (let i = 0; i < n; i++) slot[uniq[i]!] = -1;
      }
      this.count[f] = n;
      this.rowOffset[f] = off;
      off += n;
    }
    this.rowOffset[F] = off;
  }
}

export interface PerTaskGrads {
  /** Per-task losses (index t): mean BCE, or the linear objective's value. */
  losses: Float64Array;
  /** The weights the program computed ("rule" cotangents only). */
  weights?: Float64Array;
  /**
   * dense[k][i]: gradient of cotangent k's loss w.r.t. dense param i; null when
   * zero by construction (param owned by another task). k = task index, or the
   * single weighted sum in "sum" / "weighted" mode. Views of the program's
   * output buffers: valid until the same program runs again.
   */
  dense: (FloatArray | null)[][];
  /**
   * emb[k][s]: gradient w.r.t. the unique embedding rows of table set s,
   * flat [totalRows, dim] in BatchIndex order (field f's rows start at
   * rowOffset[f]); null when zero by construction. Views into reused buffers:
   * valid until the next call with the same workspace.
   */
  emb: (FloatArray | null)[][];
  index: BatchIndex;
}

/** Reusable per-model scratch: batch index, gathered inputs, coalesced row gradients. */
export class GradWorkspace {
  readonly index: BatchIndex;
  private xbuf: FloatArray[] = [];
  private poolAcc = new Float64Array(0);
  private ybuf: FloatArray[] = [];
  private ebuf: FloatArray[][] = [];
  private cbuf: FloatArray[] = [];
  private wbuf: FloatArray | null = null;
  private rbuf: FloatArray[] = [];
  constructor(readonly model: Model) {
    this.index = new BatchIndex(
      model.fields.map((f) => f.vocabSize),
      model.fields.map((f) => f.multi?.maxLen ?? 1),
    );
  }

  private alloc(n: number): FloatArray {
    return this.model.dtype === "float64" ? new Float64Array(n) : new Float32Array(n);
  }

  /**
   * Index the batch and build every table set's x [B, F*dim + D] (reused buffers): field f's
   * embedding at columns f*dim .. (f+1)*dim (a multi-valued field: the mean or sum of its items'
   * rows), then the D dense input values.
   */
  prepare(batch: Batch): FloatArray[] {
    const m = this.model;
    const idx = this.index;
    idx.index(batch);
    const B = batch.size;
    const F = m.fields.length;
    const dim = m.embDim;
    const D = m.denseInputs.length;
    const width = m.inputWidth;
    if (D > 0 && (batch.dense?.length ?? 0) !== D) throw new Error(`batch has ${batch.dense?.length ?? 0} dense columns, model expects ${D}`);
    const sets = m.tables;
    const xs: FloatArray[] = [];
    for (let s = 0; s < sets.length; s++) {
      let buf = this.xbuf[s];
      if (!buf || buf.length < B * width) {
        buf = this.alloc(B * width);
        this.xbuf[s] = buf;
      }
      const x = buf.subarray(0, B * width);
      for (let f = 0; f < F; f++) {
        const tab = sets[s]![f]!.data;
        const ids = batch.fields[f]!;
        const multi = m.fields[f]!.multi;
        if (!multi) {
          for (let r = 0; r < B; r++) {
            const src = ids[r]! * dim;
            const dst = r * width + f * dim;
            for (let k = 0; k < dim; k++) x[dst + k] = tab[src + k]!;
          }
          continue;
        }
        const L = multi.maxLen;
        const len = idx.len[f]!;
        // row-major accumulation (each id's row read contiguously) in float64, in the same order
        // j = 0..n-1 as a per-coordinate sum, so the pooled values are bit-identical to it
        const acc = this.poolAcc.length >= dim ? this.poolAcc : (this.poolAcc = new Float64Array(dim));
        for (let r = 0; r < B; r++) {
          const dst = r * width + f * dim;
          const n = len[r]!;
          const c = multi.pooling === "mean" ? 1 / n : 1;
          acc.fill(0, 0, dim);
          for (let j = 0; j < n; j++) {
            const src = ids[r * L + j]! * dim;
            for (let k = 0; k < dim; k++) acc[k]! += tab[src + k]!;
          }
          for (let k = 0; k < dim; k++) x[dst + k] = c * acc[k]!;
        }
      }
      for (let j = 0; j < D; j++) {
        const v = batch.dense![j]!;
        if (v.length < B) throw new Error(`batch dense column ${j} has ${v.length} values for batch size ${B}`);
        const col = F * dim + j;
        for (let r = 0; r < B; r++) x[r * width + col] = v[r]!;
      }
      xs.push(x);
    }
    return xs;
  }

  labels(batch: Batch): FloatArray[] {
    const T = this.model.numTasks;
    if (batch.labels.length !== T) throw new Error(`batch has ${batch.labels.length} label columns, model has ${T} tasks`);
    if (this.model.dtype === "float32") return batch.labels.map((y) => y.subarray(0, batch.size));
    const out: FloatArray[] = [];
    for (let t = 0; t < T; t++) {
      let b = this.ybuf[t];
      if (!b || b.length < batch.size) {
        b = this.alloc(batch.size);
        this.ybuf[t] = b;
      }
      const v = b.subarray(0, batch.size);
      v.set(batch.labels[t]!.subarray(0, batch.size));
      out.push(v);
    }
    return out;
  }

  /** Zeroed row-gradient buffer for (cotangent k, set s), sized totalRows*dim. */
  /** The linear objective's coefficients in the model's dtype (copied into reused buffers). */
  coefficients(c: readonly FloatArray[], B: number): FloatArray[] {
    const T = this.model.numTasks;
    if (c.length !== T) throw new Error(`objective: ${c.length} coefficient rows for ${T} tasks`);
    return c.map((row, t) => {
      if (row.length !== B) throw new Error(`objective: coefficient row ${t} has ${row.length} values for batch size ${B}`);
      let b = this.cbuf[t];
      if (!b || b.length < B) {
        b = this.alloc(B);
        this.cbuf[t] = b;
      }
      const v = b.subarray(0, B);
      v.set(row);
      return v;
    });
  }

  /** Reused buffer of weight-rule parameter k (loss-aware program). */
  ruleBuffer(k: number, T: number): FloatArray {
    let b = this.rbuf[k];
    if (!b || b.length !== T) {
      b = this.alloc(T);
      this.rbuf[k] = b;
    }
    return b;
  }

  /** Reused task-weight buffer of the weighted-sum program. */
  weightBuffer(T: number): FloatArray {
    if (!this.wbuf || this.wbuf.length !== T) this.wbuf = this.alloc(T);
    return this.wbuf;
  }

  rowBuffer(k: number, s: number): FloatArray {
    const n = this.index.totalRows * this.model.embDim;
    const row = (this.ebuf[k] ??= []);
    let b = row[s];
    if (!b || b.length < n) {
      b = this.alloc(Math.max(n, 1024));
      row[s] = b;
    }
    const v = b.subarray(0, n);
    v.fill(0);
    return v;
  }
}

/**
 * Linear per-task objective J_t = sum_r c[t][r] z_t[r] replacing the BCE losses
 * (tests: checks the network's gradients independently of the loss).
 */
export interface LinearObjective {
  kind: "linear";
  c: readonly FloatArray[];
}

export interface PerTaskOptions {
  mode: Mode;
  /** Seed of this step's dropout masks / gate noise (same seed -> same masks). */
  seed: number;
  /**
   * "per-task" (default), "sum" (w = 1), "weighted" (w = `weights`) or "rule" (w computed in
   * the program from this run's losses by `rule` with `ruleParams`: the loss-aware program).
   */
  cotangents?: "per-task" | "sum" | "weighted" | "rule";
  /** Task weights of the "weighted" cotangent. */
  weights?: ArrayLike<number>;
  /** Weight rule of the "rule" cotangent (src/balance/weightrule.ts). */
  rule?: WeightExpr;
  /** The rule's parameter vectors (each of T entries). */
  ruleParams?: readonly ArrayLike<number>[];
  /** Replace the BCE losses (tests). */
  objective?: LinearObjective;
  /**
   * This program runs only now and then (the diagnostics steps of a loss-weighting method):
   * under the engine's memory "auto" its session keeps no arena (see EngineOptions.memory).
   * Read when the program is first compiled.
   */
  occasional?: boolean;
}

function wrap(a: FloatArray, dims: number[]): ort.Tensor {
  return new ort.Tensor(a instanceof Float64Array ? "float64" : "float32", a, dims);
}

/** Feeds shared by every program: parameters, gathered inputs, labels (or objective coefficients). @internal (onnxruntime types: see engine/ort.ts) */
export function feedsOf(ws: GradWorkspace, batch: Batch, objective: LinearObjective | undefined, withLabels: boolean): Record<string, ort.Tensor> {
  const m = ws.model;
  const B = batch.size;
  const feeds: Record<string, ort.Tensor> = {};
  m.dense.forEach((q, i) => (feeds[`p${i}`] = wrap(q.data, q.shape)));
  const width = m.inputWidth;
  ws.prepare(batch).forEach((x, s) => (feeds[`x${s}`] = wrap(x, [B, width])));
  if (withLabels) {
    const ys = objective ? ws.coefficients(objective.c, B) : ws.labels(batch);
    ys.forEach((y, t) => (feeds[`y${t}`] = wrap(y, [B])));
  }
  return feeds;
}

function key(kind: ProgramKind, B: number, mode: Mode, objective: LinearObjective | undefined, rule?: WeightExpr): ProgramKey {
  const o: ObjectiveKind = objective ? "linear" : "bce";
  return rule ? { kind, batch: B, mode, objective: o, rule } : { kind, batch: B, mode, objective: o };
}

/**
 * Add x's gradient [B, width] into the unique-row buffer (coalescing repeated ids). A
 * multi-valued field's slot gradient goes to every id of the row's list (times 1/len for mean
 * pooling); padding gets nothing. The dense columns (after F*dim) have no rows and are skipped.
 */
export function coalesceInto(rows: FloatArray, g: FloatArray, idx: BatchIndex, fields: Model["fields"], dim: number, width: number): void {
  const B = idx.size;
  const F = fields.length;
  for (let fi = 0; fi < F; fi++) {
    const remap = idx.remap[fi]!;
    const base = idx.rowOffset[fi]!;
    const multi = fields[fi]!.multi;
    if (!multi) {
      if ((dim & 3) === 0) {
        // unrolled by 4 (embedding sizes are usually multiples of 4): ~1.4x faster in V8
        for (let r = 0; r < B; r++) {
          let d = (base + remap[r]!) * dim;
          let s = r * width + fi * dim;
          const end = s + dim;
          for (; s < end; s += 4, d += 4) {
            rows[d] = rows[d]! + g[s]!;
            rows[d + 1] = rows[d + 1]! + g[s + 1]!;
            rows[d + 2] = rows[d + 2]! + g[s + 2]!;
            rows[d + 3] = rows[d + 3]! + g[s + 3]!;
          }
        }
      } else {
        for (let r = 0; r < B; r++) {
          const dst = (base + remap[r]!) * dim;
          const src = r * width + fi * dim;
          for (let c = 0; c < dim; c++) rows[dst + c] = rows[dst + c]! + g[src + c]!;
        }
      }
      continue;
    }
    const L = multi.maxLen;
    const len = idx.len[fi]!;
    for (let r = 0; r < B; r++) {
      const n = len[r]!;
      const scale = multi.pooling === "mean" ? 1 / n : 1;
      const src = r * width + fi * dim;
      for (let j = 0; j < n; j++) {
        const dst = (base + remap[r * L + j]!) * dim;
        for (let c = 0; c < dim; c++) rows[dst + c] = rows[dst + c]! + scale * g[src + c]!;
      }
    }
  }
}

function readLosses(prog: Program, T: number): Float64Array {
  const out = new Float64Array(T);
  for (let t = 0; t < T; t++) out[t] = prog.out[`loss${t}`]![0]!;
  return out;
}

/**
 * Per-task (or weighted-sum) gradients w.r.t. the dense params and the batch's
 * unique embedding rows.
 */
export async function perTaskGrads(ws: GradWorkspace, batch: Batch, opts: PerTaskOptions): Promise<PerTaskGrads> {
  const m = ws.model;
  const T = m.numTasks;
  const B = batch.size;
  if (B < 1) throw new Error("perTaskGrads: empty batch");
  const mode = opts.cotangents ?? "per-task";
  const kind: ProgramKind = mode === "per-task" ? "per-task" : mode === "rule" ? "loss-aware" : "weighted-sum";
  if (kind === "loss-aware" && !opts.rule) throw new Error('perTaskGrads: "rule" cotangents need the weight rule');
  const prog = await programFor(m, key(kind, B, opts.mode, opts.objective, kind === "loss-aware" ? opts.rule : undefined), { occasional: opts.occasional === true });
  const feeds = feedsOf(ws, batch, opts.objective, true);
  if (kind === "loss-aware") {
    const P = ruleParamCount(opts.rule!);
    for (let k = 0; k < P; k++) {
      const src = opts.ruleParams?.[k];
      if (!src || src.length !== T) throw new Error(`perTaskGrads: weight-rule parameter ${k} must have ${T} entries, got ${src ? src.length : "none"}`);
      const buf = ws.ruleBuffer(k, T);
      for (let t = 0; t < T; t++) {
        const v = Number(src[t]);
        if (!Number.isFinite(v)) throw new Error(`perTaskGrads: weight-rule parameter ${k}[${t}] is ${String(src[t])}; it must be finite`);
        buf[t] = v;
      }
      feeds[`lw${k}`] = wrap(buf, [T]);
    }
  }
  if (kind === "weighted-sum") {
    const w = ws.weightBuffer(T);
    for (let t = 0; t < T; t++) {
      const v = mode === "sum" ? 1 : Number(opts.weights?.[t]);
      if (!Number.isFinite(v)) throw new Error(`perTaskGrads: weights[${t}] is ${String(opts.weights?.[t])}; "weighted" needs ${T} finite task weights`);
      w[t] = v;
    }
    feeds.w = wrap(w, [T]);
  }
  await prog.run(feeds, opts.seed);
  const losses = readLosses(prog, T);
  const idx = ws.index;
  const dim = m.embDim;
  const K = kind === "per-task" ? T : 1;
  const weights = kind === "loss-aware" ? Float64Array.from(prog.out.weights!) : undefined;
  const dense: (FloatArray | null)[][] = [];
  const emb: (FloatArray | null)[][] = [];
  for (let k = 0; k < K; k++) {
    dense.push(prog.layout.dense[k]!.map((name) => (name ? prog.out[name]! : null)));
    emb.push(
      prog.layout.x[k]!.map((name, s) => {
        if (!name) return null;
        const rows = ws.rowBuffer(k, s);
        coalesceInto(rows, prog.out[name]!, idx, m.fields, dim, m.inputWidth);
        return rows;
      }),
    );
  }
  return weights ? { losses, weights, dense, emb, index: idx } : { losses, dense, emb, index: idx };
}

/**
 * Per-task losses only (no gradients), e.g. for finite differences, or FAMO's re-evaluation
 * after each step (`everyStep`: the program keeps its arena under memory "auto").
 */
export async function lossesOnly(ws: GradWorkspace, batch: Batch, mode: Mode, seed: number, objective?: LinearObjective, everyStep = false): Promise<Float64Array> {
  const prog = await programFor(ws.model, key("losses", batch.size, mode, objective), { everyStep });
  await prog.run(feedsOf(ws, batch, objective, true), seed);
  return readLosses(prog, ws.model.numTasks);
}

/** Runs the eval program; its per-task logits, views valid until it runs again. */
async function runEval(ws: GradWorkspace, batch: Batch, mode: Mode, seed: number): Promise<FloatArray[]> {
  const prog = await programFor(ws.model, key("eval", batch.size, mode, undefined));
  await prog.run(feedsOf(ws, batch, undefined, false), seed);
  return Array.from({ length: ws.model.numTasks }, (_, t) => prog.out[`z${t}`]!);
}

/** Per-task logits in eval mode (no dropout, deterministic gates), as Float32Arrays of length B (fresh arrays). */
export async function predictLogits(ws: GradWorkspace, batch: Batch): Promise<Float32Array[]> {
  return (await runEval(ws, batch, "eval", 0)).map((z) => Float32Array.from(z));
}

/** Per-task logits in the model's dtype (eval mode, or train mode with the masks of `seed`), fresh arrays. */
export async function logitsOf(ws: GradWorkspace, batch: Batch, mode: Mode = "eval", seed = 0): Promise<FloatArray[]> {
  return (await runEval(ws, batch, mode, seed)).map((z) => z.slice());
}
