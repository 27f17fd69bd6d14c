/**
 * Checkpoints: one directory with `state.json` (JSON state + tensor index),
 * `tensors.bin` (raw little-endian float32/float64/int32 data) and `checksums.json`
 * (sha256 of both, verified before anything is read), written to a temporary
 * directory and renamed into place, so a crash never leaves a torn checkpoint and
 * a corrupted one is refused naming the bad file.
 */
import { createHash } from "node:crypto";
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

const FORMAT = "mtlcraft-checkpoint-2";
const CHECKED_FILES = ["state.json", "tensors.bin"] as const;

function sha256(b: Uint8Array | string): string {
  return createHash("sha256").update(b).digest("hex");
}

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
  const state = JSON.stringify({ format: FORMAT, index, json: data.json });
  const sums = { format: FORMAT, sha256: { "state.json": sha256(state), "tensors.bin": sha256(buf) } };
  writeDirAtomic(dir, (tmp) => {
    writeFileSync(join(tmp, "tensors.bin"), buf);
    writeFileSync(join(tmp, "state.json"), state);
    writeFileSync(join(tmp, "checksums.json"), JSON.stringify(sums, null, 1));
  });
}

const START_OVER = "delete that folder to start over";

/** Reads and verifies the checksummed files of a checkpoint (throws naming the bad file). */
function readVerified(dir: string): Record<(typeof CHECKED_FILES)[number], Buffer> {
  const cp = join(dir, "checksums.json");
  if (!existsSync(cp)) {
    let old = "";
    try {
      old = (JSON.parse(readFileSync(join(dir, "state.json"), "utf8")) as { format?: unknown }).format === "mtlcraft-checkpoint-1" ? " (written by an older mtlcraft, without checksums)" : "";
    } catch {
      /* unreadable: reported as missing checksums below */
    }
    throw new Error(`checkpoint ${dir}: ${cp} is missing${old}; ${START_OVER}`);
  }
  let sums: { format?: unknown; sha256?: Record<string, unknown> };
  try {
    sums = JSON.parse(readFileSync(cp, "utf8")) as typeof sums;
  } catch (e) {
    throw new Error(`checkpoint ${dir}: ${cp} is corrupt (${(e as Error).message}); ${START_OVER}`, { cause: e });
  }
  if (sums.format !== FORMAT) throw new Error(`checkpoint ${dir}: unknown format ${String(sums.format)} in ${cp}; ${START_OVER}`);
  const out = {} as Record<(typeof CHECKED_FILES)[number], Buffer>;
  for (const f of CHECKED_FILES) {
    const p = join(dir, f);
    const want = sums.sha256?.[f];
    if (typeof want !== "string") throw new Error(`checkpoint ${dir}: ${cp} has no checksum for ${f}; ${START_OVER}`);
    if (!existsSync(p)) throw new Error(`checkpoint ${dir}: ${p} is missing; ${START_OVER}`);
    const b = readFileSync(p);
    const got = sha256(b);
    if (got !== want) {
      throw new Error(`checkpoint ${dir}: ${p} is corrupt (sha256 ${got.slice(0, 12)}… does not match the recorded ${want.slice(0, 12)}…); ${START_OVER}`);
    }
    out[f] = b;
  }
  return out;
}

/** Loads a checkpoint, or returns null when `dir` holds none. Throws on a corrupt one, naming the file. */
export function loadCheckpoint(dir: string): CheckpointData | null {
  const sp = join(dir, "state.json");
  if (!existsSync(sp)) return null;
  const files = readVerified(dir);
  const st = JSON.parse(files["state.json"].toString("utf8")) as { format: string; index: IndexEntry[]; json: Record<string, JsonValue> };
  if (st.format !== FORMAT) throw new Error(`checkpoint ${dir}: unknown format ${String(st.format)}`);
  const raw = files["tensors.bin"];
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

/**
 * What a checkpoint belongs to: the settings that shape the training trajectory
 * (dataset content hash, architecture and its options, method and its options,
 * seed, batch size, ...). Resuming under a different fingerprint is refused.
 */
export type Fingerprint = { [k: string]: JsonValue };

function flatten(v: JsonValue | undefined, prefix: string, out: Map<string, string>): void {
  if (v !== null && typeof v === "object" && !Array.isArray(v)) {
    for (const [k, x] of Object.entries(v)) flatten(x, prefix ? `${prefix}.${k}` : k, out);
  } else out.set(prefix, v === undefined ? "(unset)" : JSON.stringify(v));
}

/** Every key (dotted path) whose value differs, as `key: old → new`, sorted by key. */
export function fingerprintDiff(old: Fingerprint, now: Fingerprint): string[] {
  const a = new Map<string, string>();
  const b = new Map<string, string>();
  flatten(old, "", a);
  flatten(now, "", b);
  const keys = [...new Set([...a.keys(), ...b.keys()])].sort();
  return keys.filter((k) => a.get(k) !== b.get(k)).map((k) => `${k}: ${a.get(k) ?? "(unset)"} → ${b.get(k) ?? "(unset)"}`);
}

/**
 * Throws unless the checkpoint's recorded fingerprint equals `now`; the message lists
 * every differing key with its old and new value.
 */
export function checkFingerprint(dir: string, recorded: JsonValue | undefined, now: Fingerprint): void {
  if (recorded === undefined || recorded === null || typeof recorded !== "object" || Array.isArray(recorded)) {
    throw new Error(`checkpoint ${dir} records no run fingerprint, so it cannot be checked against this run; use another --checkpoint folder or ${START_OVER}`);
  }
  const diff = fingerprintDiff(recorded, now);
  if (diff.length) {
    throw new Error(
      `checkpoint ${dir} was written by a different run; refusing to resume. Differences (checkpoint → now):\n  ${diff.join("\n  ")}\n` +
        `Use another --checkpoint folder, or ${START_OVER}.`,
    );
  }
}

/** The fingerprint a checkpoint records, without loading its tensors (null when none or unreadable). */
export function peekFingerprint(dir: string): Fingerprint | null {
  try {
    const st = JSON.parse(readFileSync(join(dir, "state.json"), "utf8")) as { json?: { fingerprint?: JsonValue } };
    const f = st.json?.fingerprint;
    return f !== null && typeof f === "object" && !Array.isArray(f) ? f : null;
  } catch {
    return null;
  }
}
