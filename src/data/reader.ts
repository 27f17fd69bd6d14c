/**
 * Streams mini-batches from a prepared dataset folder (see manifest.ts for the layout).
 *
 * Memory is independent of the split size: rows are read in blocks of `blockRows` rows with
 * fs.readSync into a window buffer of `windowBlocks` blocks.
 * Shuffled order: a random permutation of the blocks (seeded by (seed, epoch)), cut into
 * consecutive windows of `windowBlocks` blocks; the rows of each window are permuted with a
 * generator seeded by (seed, epoch, window). Batches are cut from that row stream, so the order
 * is a pure function of (seed, epoch, blockRows, windowBlocks) and `startBatch` seeks straight to
 * the right window without reading the skipped rows. Unshuffled order is the file order.
 *
 * Each yielded Batch owns freshly allocated arrays (no buffer reuse), so callers may keep them.
 *
 * Opening verifies the folder (integrity.ts verifyPrepared): by default every column file's size,
 * CRC32 (recorded in the manifest when it was written) and value ranges, so a damaged or edited
 * cache fails at open with an error naming the file and row instead of training on bad data.
 */
import { closeSync, openSync, readSync } from "node:fs";
import { endianness } from "node:os";
import { join } from "node:path";
import { Rng } from "../util/rng.ts";
import { DataError } from "./errors.ts";
import { loadManifest, verifyPrepared, type VerifyMode } from "./integrity.ts";
import type { Manifest } from "./manifest.ts";
import type { Batch, DatasetMeta, FieldInfo, IterateOptions, PreparedDataset, SplitName, SplitReader } from "./types.ts";

export interface ReaderOptions {
  /** Rows per disk block (default 4096). */
  blockRows?: number;
  /** Blocks per shuffle window (default 8). */
  windowBlocks?: number;
  /** Integrity check at open: "full" (default: sizes, CRC32, label/id ranges), "size" or "none". */
  verify?: VerifyMode;
}

/** Deterministic 32-bit mix of a few integers (murmur3 finaliser on a running combination). */
export function mixSeed(...xs: number[]): number {
  let h = 0x9e3779b9;
  for (const x of xs) {
    h = Math.imul(h ^ (x >>> 0), 0x85ebca6b) >>> 0;
    h = (h ^ (h >>> 13)) >>> 0;
    h = Math.imul(h, 0xc2b2ae35) >>> 0;
    h = (h ^ (h >>> 16)) >>> 0;
  }
  return h;
}

function readFully(fd: number, dst: Int32Array | Uint8Array | Float32Array, dstOffsetElems: number, elems: number, fileOffsetElems: number): void {
  const bpe = dst.BYTES_PER_ELEMENT;
  const view = new Uint8Array(dst.buffer, dst.byteOffset + dstOffsetElems * bpe, elems * bpe);
  let done = 0;
  const pos = fileOffsetElems * bpe;
  while (done < view.length) {
    const n = readSync(fd, view, done, view.length - done, pos + done);
    if (n <= 0) throw new DataError(`prepared dataset file is truncated (fd ${fd}) at byte ${pos + done}`);
    done += n;
  }
}

class PreparedSplit implements SplitReader {
  private readonly blockRows: number;
  private readonly windowBlocks: number;

  constructor(
    private readonly dir: string,
    readonly rows: number,
    private readonly fields: readonly FieldInfo[],
    private readonly nTasks: number,
    private readonly nDense: number,
    opts: ReaderOptions,
  ) {
    this.blockRows = opts.blockRows ?? 4096;
    this.windowBlocks = opts.windowBlocks ?? 8;
    if (!(this.blockRows >= 1 && this.windowBlocks >= 1)) throw new Error("blockRows and windowBlocks must be >= 1");
  }

  numBatches(batchSize: number, dropLast = false): number {
    if (!(batchSize >= 1)) throw new Error(`batchSize must be >= 1, got ${batchSize}`);
    return dropLast ? Math.floor(this.rows / batchSize) : Math.ceil(this.rows / batchSize);
  }

  *iterate(opts: IterateOptions): Generator<Batch> {
    const bs = opts.batchSize;
    const nb = this.numBatches(bs, opts.dropLast ?? false);
    const start = opts.startBatch ?? 0;
    if (!Number.isInteger(start) || start < 0 || start > nb) throw new Error(`startBatch must be an integer in [0, ${nb}], got ${start}`);
    if (start === nb) return;
    const B = this.blockRows;
    const K = this.windowBlocks;
    const rows = this.rows;
    const nBlocks = Math.ceil(rows / B);
    const blockOrder = opts.shuffle ? new Rng(mixSeed(opts.seed, opts.epoch, 0x5eed)).permutation(nBlocks) : identity(nBlocks);
    const nWindows = Math.ceil(nBlocks / K);
    const blockLen = (b: number): number => (b === nBlocks - 1 ? rows - b * B : B);
    const windowLen = (w: number): number => {
      let n = 0;
      for (let j = w * K; j < Math.min(nBlocks, (w + 1) * K); j++) n += blockLen(blockOrder[j] as number);
      return n;
    };

    const nF = this.fields.length;
    const nD = this.nDense;
    /** ids per row of each field (maxLen for a multi-valued field). */
    const per = this.fields.map((f) => f.multi?.maxLen ?? 1);
    const fds: number[] = [];
    try {
      for (let f = 0; f < nF; f++) fds.push(openSync(join(this.dir, `field_${f}.i32`), "r"));
      for (let t = 0; t < this.nTasks; t++) fds.push(openSync(join(this.dir, `label_${t}.u8`), "r"));
      fds.push(openSync(join(this.dir, "group.i32"), "r"));
      for (let j = 0; j < nD; j++) fds.push(openSync(join(this.dir, `dense_${j}.f32`), "r"));
      const gFd = fds[nF + this.nTasks] as number;

      const cap = K * B;
      const wf = per.map((L) => new Int32Array(cap * L));
      const wl = Array.from({ length: this.nTasks }, () => new Uint8Array(cap));
      const wg = new Int32Array(cap);
      const wd = Array.from({ length: nD }, () => new Float32Array(cap));
      let perm: Int32Array = new Int32Array(0);
      let winRows = 0;

      const load = (w: number): void => {
        let off = 0;
        for (let j = w * K; j < Math.min(nBlocks, (w + 1) * K); j++) {
          const b = blockOrder[j] as number;
          const len = blockLen(b);
          for (let f = 0; f < nF; f++) {
            const L = per[f] as number;
            readFully(fds[f] as number, wf[f] as Int32Array, off * L, len * L, b * B * L);
          }
          for (let t = 0; t < this.nTasks; t++) readFully(fds[nF + t] as number, wl[t] as Uint8Array, off, len, b * B);
          readFully(gFd, wg, off, len, b * B);
          for (let j = 0; j < nD; j++) readFully(fds[nF + this.nTasks + 1 + j] as number, wd[j] as Float32Array, off, len, b * B);
          off += len;
        }
        winRows = off;
        perm = opts.shuffle ? new Rng(mixSeed(opts.seed, opts.epoch, w + 1)).permutation(off) : identity(off);
      };

      // Seek: window containing row start*bs.
      let skip = start * bs;
      let w = 0;
      while (w < nWindows) {
        const n = windowLen(w);
        if (skip < n) break;
        skip -= n;
        w++;
      }
      load(w);
      let pos = skip;

      for (let b = start; b < nb; b++) {
        const size = Math.min(bs, rows - b * bs);
        const fields = per.map((L) => new Int32Array(size * L));
        const labels = Array.from({ length: this.nTasks }, () => new Float32Array(size));
        const groups = new Int32Array(size);
        const dense = Array.from({ length: nD }, () => new Float32Array(size));
        let o = 0;
        while (o < size) {
          if (pos === winRows) {
            w++;
            load(w);
            pos = 0;
          }
          const take = Math.min(size - o, winRows - pos);
          for (let f = 0; f < nF; f++) {
            const L = per[f] as number;
            if (L === 1) gatherI32(fields[f] as Int32Array, o, wf[f] as Int32Array, perm, pos, take);
            else gatherRows(fields[f] as Int32Array, o, wf[f] as Int32Array, perm, pos, take, L);
          }
          for (let t = 0; t < this.nTasks; t++) gatherU8(labels[t] as Float32Array, o, wl[t] as Uint8Array, perm, pos, take);
          gatherI32(groups, o, wg, perm, pos, take);
          for (let j = 0; j < nD; j++) gatherF32(dense[j] as Float32Array, o, wd[j] as Float32Array, perm, pos, take);
          o += take;
          pos += take;
        }
        yield nD > 0 ? { size, fields, labels, groups, dense } : { size, fields, labels, groups };
      }
    } finally {
      for (const fd of fds) closeSync(fd);
    }
  }
}

function gatherI32(dst: Int32Array, o: number, src: Int32Array, perm: Int32Array, pos: number, n: number): void {
  for (let r = 0; r < n; r++) dst[o + r] = src[perm[pos + r] as number] as number;
}

/** Rows of L values each (multi-valued field ids). */
function gatherRows(dst: Int32Array, o: number, src: Int32Array, perm: Int32Array, pos: number, n: number, L: number): void {
  for (let r = 0; r < n; r++) {
    const s = (perm[pos + r] as number) * L;
    const d = (o + r) * L;
    for (let k = 0; k < L; k++) dst[d + k] = src[s + k] as number;
  }
}

function gatherF32(dst: Float32Array, o: number, src: Float32Array, perm: Int32Array, pos: number, n: number): void {
  for (let r = 0; r < n; r++) dst[o + r] = src[perm[pos + r] as number] as number;
}

function gatherU8(dst: Float32Array, o: number, src: Uint8Array, perm: Int32Array, pos: number, n: number): void {
  for (let r = 0; r < n; r++) dst[o + r] = src[perm[pos + r] as number] as number;
}

function identity(n: number): Int32Array {
  const p = new Int32Array(n);
  for (let i = 0; i < n; i++) p[i] = i;
  return p;
}

export function readManifestFile(dir: string): Manifest {
  return loadManifest(dir);
}

/** Opens a prepared dataset folder (the `dir` returned by prepareDataset). */
export function openPrepared(dir: string, opts: ReaderOptions = {}): PreparedDataset & { manifest: Manifest; dir: string } {
  if (endianness() !== "LE") throw new Error("prepared datasets are little-endian; this host is big-endian");
  const manifest = readManifestFile(dir);
  verifyPrepared(dir, manifest, opts.verify ?? "full");
  const meta: DatasetMeta = {
    name: manifest.name,
    fields: manifest.fields.map((f) => (f.multi ? { name: f.name, vocabSize: f.vocabSize, multi: { ...f.multi } } : { name: f.name, vocabSize: f.vocabSize })),
    ...(manifest.dense?.length ? { dense: manifest.dense.map((d) => ({ name: d.name })) } : {}),
    tasks: manifest.tasks.map((t) => ({ name: t.name })),
    groupColumn: manifest.groupColumn,
    rows: { ...manifest.rows },
  };
  const splits = new Map<SplitName, PreparedSplit>();
  return {
    meta,
    manifest,
    dir,
    split(name: SplitName): SplitReader {
      let s = splits.get(name);
      if (!s) {
        s = new PreparedSplit(join(dir, name), manifest.rows[name], meta.fields, meta.tasks.length, meta.dense?.length ?? 0, opts);
        splits.set(name, s);
      }
      return s;
    },
  };
}
