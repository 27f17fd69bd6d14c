/**
 * The cache's files as prepare writes them: the column files of a split (`columnLayout`, streamed
 * from DuckDB by `writeSplit`), the vocabulary JSON of a categorical field (`writeVocab`), each
 * with its size and running CRC32 for the manifest (`fileRecord` for files DuckDB wrote itself).
 */
import { closeSync, mkdirSync, openSync, readFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import { crc32 } from "node:zlib";
import { Db, wrap } from "./duckdb.ts";
import { SPLITS, type CacheFile, type ManifestField } from "./manifest.ts";

/**
 * Writes the vocabulary of categorical field i (table voc_<i>) as JSON: `values[k]` is the value
 * with id k + 1, as DuckDB writes it as text (`CAST(v AS VARCHAR)`). Streamed; returns its size and CRC32.
 */
export async function writeVocab(db: Db, path: string, i: number, field: string, type: string): Promise<CacheFile> {
  const fd = openSync(path, "w");
  let crc = 0;
  let bytes = 0;
  const put = (text: string): void => {
    const b = Buffer.from(text, "utf8");
    let off = 0;
    while (off < b.length) off += writeSync(fd, b, off, b.length - off);
    crc = crc32(b, crc);
    bytes += b.length;
  };
  try {
    put(`{"field":${JSON.stringify(field)},"type":${JSON.stringify(type)},"values":[`);
    const res = await db.conn.stream(`SELECT CAST(v AS VARCHAR) AS t FROM voc_${i} ORDER BY id`);
    let first = true;
    while (true) {
      const chunk = await res.fetchChunk();
      if (!chunk || chunk.rowCount === 0) break;
      const col = chunk.getColumnVector(0);
      const parts: string[] = [];
      for (let r = 0; r < chunk.rowCount; r++) parts.push(JSON.stringify(String(col.getItem(r))));
      put((first ? "" : ",") + parts.join(","));
      first = false;
    }
    put("]}\n");
  } catch (e) {
    throw wrap(e, `writing the vocabulary of "${field}"`);
  } finally {
    closeSync(fd);
  }
  return { bytes, crc32: crc };
}

/** Size and CRC32 of a file written by DuckDB. */
export function fileRecord(path: string): CacheFile {
  const b = readFileSync(path);
  return { bytes: b.length, crc32: crc32(b) };
}

const WRITE_ROWS = 1 << 16;

type ColumnBuf = Int32Array | Uint8Array | Float32Array;

class ColumnWriter {
  private readonly fd: number;
  private n = 0;
  /** Running CRC32 and size of what was written (recorded in the manifest, checked on open). */
  crc = 0;
  bytes = 0;
  constructor(
    path: string,
    private readonly buf: ColumnBuf,
  ) {
    this.fd = openSync(path, "w");
  }
  push(v: number): void {
    this.buf[this.n++] = v;
    if (this.n === this.buf.length) this.flush();
  }
  flush(): void {
    if (this.n === 0) return;
    const bytes = new Uint8Array(this.buf.buffer, this.buf.byteOffset, this.n * this.buf.BYTES_PER_ELEMENT);
    let off = 0;
    while (off < bytes.length) off += writeSync(this.fd, bytes, off, bytes.length - off);
    this.crc = crc32(bytes, this.crc);
    this.bytes += bytes.length;
    this.n = 0;
  }
  close(): void {
    this.flush();
    closeSync(this.fd);
  }
}

/** One column file of a split: its name, element type and the `enc` columns it holds per row (in order). */
export interface ColumnFile {
  file: string;
  type: "i32" | "u8" | "f32";
  cols: string[];
}

export function columnLayout(fields: readonly ManifestField[], nTasks: number, nDense: number): ColumnFile[] {
  const out: ColumnFile[] = [];
  fields.forEach((f, i) => out.push({ file: `field_${i}.i32`, type: "i32", cols: f.multi ? Array.from({ length: f.multi.maxLen }, (_, k) => `c_${i}_${k}`) : [`c_${i}`] }));
  for (let k = 0; k < nTasks; k++) out.push({ file: `label_${k}.u8`, type: "u8", cols: [`l_${k}`] });
  out.push({ file: "group.i32", type: "i32", cols: ["grp"] });
  for (let j = 0; j < nDense; j++) out.push({ file: `dense_${j}.f32`, type: "f32", cols: [`d_${j}`] });
  return out;
}

export async function writeSplit(db: Db, dir: string, split: number, layout: readonly ColumnFile[], expected: number, onRows: (done: number) => void): Promise<Record<string, CacheFile>> {
  mkdirSync(dir, { recursive: true });
  const writers: ColumnWriter[] = [];
  const alloc = (t: ColumnFile["type"], n: number): ColumnBuf => (t === "u8" ? new Uint8Array(n) : t === "f32" ? new Float32Array(n) : new Int32Array(n));
  for (const c of layout) writers.push(new ColumnWriter(join(dir, c.file), alloc(c.type, WRITE_ROWS * c.cols.length)));
  const cols = layout.flatMap((c) => c.cols);
  const first: number[] = [];
  let at = 0;
  for (const c of layout) {
    first.push(at);
    at += c.cols.length;
  }
  let written = 0;
  try {
    const res = await db.conn.stream(`SELECT ${cols.join(", ")} FROM enc WHERE __split = ${split} ORDER BY __rid`);
    while (true) {
      const chunk = await res.fetchChunk();
      if (!chunk || chunk.rowCount === 0) break;
      const n = chunk.rowCount;
      layout.forEach((c, w) => {
        const wr = writers[w] as ColumnWriter;
        const vecs = c.cols.map((_, k) => chunk.getColumnVector((first[w] as number) + k));
        for (let r = 0; r < n; r++) for (const v of vecs) wr.push(v.getItem(r) as number);
      });
      written += n;
      if ((written & 0x3ffff) < n) onRows(written); // about every 256K rows
    }
  } catch (e) {
    throw wrap(e, `writing split ${SPLITS[split]}`);
  } finally {
    for (const w of writers) w.close();
  }
  if (written !== expected) throw new Error(`internal: wrote ${written} rows for split ${SPLITS[split]}, expected ${expected}`);
  return Object.fromEntries(writers.map((w, i) => [(layout[i] as ColumnFile).file, { bytes: w.bytes, crc32: w.crc }]));
}
