/**
 * Checkpoints: one directory with `state.json` (JSON state + tensor index) and
 * `tensors.bin` (raw little-endian float32/float64/int32 data), written to a
 * temporary directory and renamed into place, so a crash never leaves a torn checkpoint.
 */
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { JsonValue } from "../balance/types.ts";
import { writeDirAtomic } from "../util/fsx.ts";

export type Tensor = Float32Array | Float64Array | Int32Array;
export type TensorMap = Record<string, Tensor>;

export interface CheckpointData {
  json: Record<string, JsonValue>;
  /** Named groups of tensors (e.g. `model`, `best`). */
  tensors: Record<string, TensorMap>;
}

interface IndexEntry {
  group: string;
  name: string;
  dtype: "float32" | "float64" | "int32";
  offset: number;
  length: number;
}

const FORMAT = "mtlcraft-checkpoint-1";

function dtypeOf(t: Tensor): IndexEntry["dtype"] {
  if (t instanceof Float32Array) return "float32";
  if (t instanceof Float64Array) return "float64";
  return "int32";
}

export function saveCheckpoint(dir: string, data: CheckpointData): void {
  const index: IndexEntry[] = [];
  let size = 0;
  for (const [group, m] of Object.entries(data.tensors)) {
    for (const [name, t] of Object.entries(m)) {
      size = Math.ceil(size / 8) * 8;
      index.push({ group, name, dtype: dtypeOf(t), offset: size, length: t.length });
      size += t.byteLength;
    }
  }
  const buf = new Uint8Array(size);
  let i = 0;
  for (const m of Object.values(data.tensors)) {
    for (const t of Object.values(m)) {
      const e = index[i++]!;
      buf.set(new Uint8Array(t.buffer, t.byteOffset, t.byteLength), e.offset);
    }
  }
  writeDirAtomic(dir, (tmp) => {
    writeFileSync(join(tmp, "tensors.bin"), buf);
    writeFileSync(join(tmp, "state.json"), JSON.stringify({ format: FORMAT, index, json: data.json }));
  });
}

/** Loads a checkpoint, or returns null when `dir` holds none. Throws on a corrupt one. */
export function loadCheckpoint(dir: string): CheckpointData | null {
  const sp = join(dir, "state.json");
  if (!existsSync(sp)) return null;
  const st = JSON.parse(readFileSync(sp, "utf8")) as { format: string; index: IndexEntry[]; json: Record<string, JsonValue> };
  if (st.format !== FORMAT) throw new Error(`checkpoint ${dir}: unknown format ${String(st.format)}`);
  const raw = readFileSync(join(dir, "tensors.bin"));
  const tensors: Record<string, TensorMap> = {};
  for (const e of st.index) {
    const byteLen = e.length * (e.dtype === "float64" ? 8 : 4);
    if (e.offset + byteLen > raw.length) throw new Error(`checkpoint ${dir}: tensor ${e.group}/${e.name} is truncated`);
    const copy = new Uint8Array(raw.subarray(e.offset, e.offset + byteLen)).buffer; // aligned copy
    const t: Tensor =
      e.dtype === "float32" ? new Float32Array(copy) : e.dtype === "float64" ? new Float64Array(copy) : new Int32Array(copy);
    if (t.length !== e.length) throw new Error(`checkpoint ${dir}: tensor ${e.group}/${e.name} is truncated`);
    (tensors[e.group] ??= {})[e.name] = t;
  }
  return { json: st.json, tensors };
}
