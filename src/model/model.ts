/**
 * `Model`: an architecture plus checkpoint access to its parameters and the
 * reusable per-step scratch (dropout mask buffers).
 */
import type { DenseInfo, FieldInfo } from "../data/types.ts";
import type { FloatArray, FloatDType } from "../graph/graph.ts";
import type { Architecture, DenseParam, EmbeddingTable } from "./types.ts";

/** A model = architecture + its input fields (and dense inputs), embedding size and dtype. */
export class Model {
  readonly dropout: number;
  readonly embDim: number;
  readonly dtype: FloatDType;
  /** Dense input columns, appended to every table set's input after the field embeddings. */
  readonly denseInputs: readonly DenseInfo[];
  constructor(
    readonly arch: Architecture,
    readonly fields: readonly FieldInfo[],
    opts: { dropout: number; embDim: number; dtype: FloatDType; dense?: readonly DenseInfo[] },
  ) {
    this.dropout = opts.dropout;
    this.embDim = opts.embDim;
    this.dtype = opts.dtype;
    this.denseInputs = opts.dense ?? [];
  }
  /** Width of each table set's input x [B, width]: fields.length * embDim + denseInputs.length (see inputWidth). */
  get inputWidth(): number {
    return this.fields.length * this.embDim + this.denseInputs.length;
  }
  get name(): string {
    return this.arch.name;
  }
  get numTasks(): number {
    return this.arch.numTasks;
  }
  get dense(): DenseParam[] {
    return this.arch.dense;
  }
  get tables(): EmbeddingTable[][] {
    return this.arch.tables;
  }
  /** Number of scalar parameters (dense, embedding). */
  numParams(): { dense: number; embedding: number } {
    let dn = 0;
    for (const p of this.dense) dn += p.data.length;
    let en = 0;
    for (const set of this.tables) for (const t of set) en += t.data.length;
    return { dense: dn, embedding: en };
  }
  /** Copies of every parameter by name (dense params and embedding tables). */
  getParams(): Record<string, FloatArray> {
    const out: Record<string, FloatArray> = {};
    for (const p of this.dense) out[p.name] = p.data.slice();
    for (const set of this.tables) for (const t of set) out[t.name] = t.data.slice();
    return out;
  }
  /** Overwrite every parameter from `getParams()` output; throws on a missing name or length mismatch. */
  setParams(src: Record<string, ArrayLike<number>>): void {
    const targets: { name: string; data: FloatArray }[] = [...this.dense];
    for (const set of this.tables) targets.push(...set);
    for (const p of targets) {
      const s = src[p.name];
      if (s === undefined) throw new Error(`model ${this.name}: checkpoint has no parameter ${p.name}`);
      if (s.length !== p.data.length) {
        throw new Error(`model ${this.name}: parameter ${p.name} has length ${s.length} in the checkpoint, expected ${p.data.length}`);
      }
    }
    for (const p of targets) p.data.set(src[p.name]!);
  }
}

