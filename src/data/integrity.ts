/**
 * Input and cache integrity.
 *
 * - `scanCsv` streams a CSV or CSV.gz file once before DuckDB reads it: gzip streams are fully
 *   decompressed by node:zlib, which checks every member's CRC32 and ISIZE trailer and fails on a
 *   stream that stops early (also when the cut falls exactly on a line boundary: the deflate end
 *   block and the 8-byte trailer are then missing). The decompressed text is parsed as RFC 4180
 *   CSV (delimiter taken from the header: the most frequent of , TAB ; |; double-quote quoting
 *   with "" escapes; CR LF or LF line ends; blank lines skipped, as DuckDB does) to give clear
 *   errors for empty files, header-only files, ragged rows and unterminated quotes, and to count
 *   the data rows of each file.
 * - `verifyPrepared` checks a prepared cache folder against its manifest: every column file must
 *   have the size rows x width and the CRC32 recorded when it was written, labels must be 0/1 and
 *   ids must lie inside their vocabulary.
 */
import { closeSync, createReadStream, existsSync, openSync, readFileSync, readSync, statSync } from "node:fs";
import { join } from "node:path";
import { pipeline } from "node:stream/promises";
import { createGunzip, crc32 } from "node:zlib";
import { DataError } from "./errors.ts";
import type { Manifest } from "./prepare.ts";
import type { SplitName } from "./types.ts";

export interface CsvInfo {
  /** Header names, unquoted. */
  columns: string[];
  /** Field delimiter found in the header (',' when the header has a single column). */
  delimiter: string;
  /** Data rows (records after the header, blank lines not counted). */
  rows: number;
}

const DELIMS = [",", "\t", ";", "|"];
const QUOTE = 0x22;
const LF = 0x0a;
const CR = 0x0d;

function delimName(d: string): string {
  return d === "\t" ? "tab" : `'${d}'`;
}

export function isGzip(file: string): boolean {
  return file.toLowerCase().endsWith(".gz");
}

export function isParquet(file: string): boolean {
  return file.toLowerCase().endsWith(".parquet");
}

/** Splits one record's bytes into unquoted fields (used for the header only). */
function splitRecord(bytes: Uint8Array, delim: number): string[] {
  const out: string[] = [];
  let cur: number[] = [];
  let inQ = false;
  let atStart = true;
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i] as number;
    if (inQ) {
      if (b === QUOTE) {
        if (bytes[i + 1] === QUOTE) {
          cur.push(QUOTE);
          i++;
        } else inQ = false;
      } else cur.push(b);
    } else if (b === delim) {
      out.push(Buffer.from(cur).toString("utf8"));
      cur = [];
      atStart = true;
      continue;
    } else if (b === QUOTE && atStart) inQ = true;
    else cur.push(b);
    atStart = false;
  }
  out.push(Buffer.from(cur).toString("utf8"));
  return out;
}

/** Streaming RFC 4180 record scanner; the delimiter is fixed once the header is complete. */
class CsvScanner {
  private delim = -1;
  private header: number[] = [];
  private headerDone = false;
  private headerInQ = false;
  columns: string[] = [];
  delimiter = ",";
  rows = 0;
  private nCols = 0;
  // 0 field start, 1 unquoted, 2 quoted, 3 quote seen inside a quoted field
  private state = 0;
  private fields = 1;
  private recLen = 0;
  private line = 1;
  private recLine = 1;
  private snippet: number[] = [];
  private prevCR = false;
  private bomChecked = false;
  private bom: number[] = [];

  constructor(private readonly file: string) {}

  push(chunk: Uint8Array): void {
    let i = 0;
    if (!this.bomChecked) {
      while (i < chunk.length && this.bom.length < 3) this.bom.push(chunk[i++] as number);
      if (this.bom.length < 3) return;
      this.bomChecked = true;
      const isBom = this.bom[0] === 0xef && this.bom[1] === 0xbb && this.bom[2] === 0xbf;
      if (!isBom) this.bytes(Uint8Array.from(this.bom), 0);
    }
    this.bytes(chunk, i);
  }

  private bytes(chunk: Uint8Array, from: number): void {
    let i = from;
    while (!this.headerDone && i < chunk.length) {
      const b = chunk[i++] as number;
      if (this.prevCR && b === LF) {
        this.prevCR = false;
        continue;
      }
      this.prevCR = false;
      if (b === QUOTE) this.headerInQ = !this.headerInQ;
      if ((b === LF || b === CR) && !this.headerInQ) {
        this.prevCR = b === CR;
        this.line++;
        if (this.header.length === 0) continue; // blank lines before the header
        this.finishHeader();
        continue;
      }
      if (b === LF) this.line++;
      this.header.push(b);
      if (this.header.length > 16 << 20) throw new DataError(`${this.file}: the header line is longer than 16 MiB (is this a CSV file?)`, { file: this.file });
    }
    const d = this.delim;
    for (; i < chunk.length; i++) {
      const b = chunk[i] as number;
      if (this.prevCR) {
        this.prevCR = false;
        if (b === LF) continue;
      }
      if (this.state === 2) {
        if (b === QUOTE) this.state = 3;
        else if (b === LF) this.line++;
        this.keep(b);
        continue;
      }
      if (this.state === 3) {
        if (b === QUOTE) {
          this.state = 2;
          this.keep(b);
          continue;
        }
        this.state = 1; // closing quote; fall through for this byte
      }
      if (b === LF || b === CR) {
        this.prevCR = b === CR;
        this.endRecord();
        this.line++;
        this.recLine = this.line;
        continue;
      }
      this.keep(b);
      if (b === d) {
        this.fields++;
        this.state = 0;
      } else if (b === QUOTE && this.state === 0) this.state = 2;
      else this.state = 1;
    }
  }

  private keep(b: number): void {
    this.recLen++;
    if (this.snippet.length < 120) this.snippet.push(b);
  }

  private finishHeader(): void {
    const h = Uint8Array.from(this.header);
    const counts = DELIMS.map((c) => {
      const code = c.charCodeAt(0);
      let n = 0;
      let inQ = false;
      for (const b of h) {
        if (b === QUOTE) inQ = !inQ;
        else if (b === code && !inQ) n++;
      }
      return n;
    });
    let best = 0;
    for (let k = 1; k < DELIMS.length; k++) if ((counts[k] as number) > (counts[best] as number)) best = k;
    this.delimiter = DELIMS[best] as string;
    this.delim = (counts[best] as number) > 0 ? this.delimiter.charCodeAt(0) : -1;
    this.columns = splitRecord(h, this.delim);
    this.nCols = this.columns.length;
    this.headerDone = true;
    this.header = [];
    this.recLine = this.line;
  }

  private endRecord(): void {
    if (this.recLen > 0) {
      this.rows++;
      if (this.fields !== this.nCols) {
        const text = Buffer.from(this.snippet).toString("utf8") + (this.recLen > this.snippet.length ? "..." : "");
        throw new DataError(
          `${this.file}: ragged row ${this.rows} (line ${this.recLine}) has ${this.fields} fields but the header has ${this.nCols} (${delimName(this.delimiter)}-separated): ${JSON.stringify(text)}`,
          { file: this.file },
        );
      }
    }
    this.fields = 1;
    this.recLen = 0;
    this.state = 0;
    this.snippet = [];
  }

  end(): CsvInfo {
    if (!this.bomChecked && this.bom.length > 0) {
      this.bomChecked = true;
      this.bytes(Uint8Array.from(this.bom), 0);
    }
    if (!this.headerDone) {
      if (this.headerInQ) throw new DataError(`${this.file}: the header has an unterminated quote`, { file: this.file });
      if (this.header.length === 0) throw new DataError(`${this.file} is empty (no header, no rows)`, { file: this.file, rows: 0 });
      this.finishHeader();
    }
    if (this.state === 2) throw new DataError(`${this.file}: a quoted field opened in row ${this.rows + 1} (line ${this.recLine}) is never closed`, { file: this.file });
    this.endRecord();
    if (this.rows === 0) throw new DataError(`${this.file} has a header (${this.columns.join(", ")}) but no data rows`, { file: this.file, rows: 0 });
    return { columns: this.columns, delimiter: this.delimiter, rows: this.rows };
  }
}

function gzipError(file: string, e: unknown, produced: number): DataError {
  const err = e as { code?: string; message?: string };
  const msg = err.message ?? String(e);
  if (err.code === "Z_BUF_ERROR" || /unexpected end of file/i.test(msg)) {
    return new DataError(`truncated gzip: ${file} ends before the end of its compressed stream (${produced} bytes decompressed); the file is incomplete, copy or download it again`, { file });
  }
  if (/incorrect data check/i.test(msg)) return new DataError(`corrupt gzip: ${file} fails its CRC32 check (the data is damaged)`, { file });
  if (/incorrect length check/i.test(msg)) return new DataError(`corrupt gzip: ${file} fails its length (ISIZE) check (the data is damaged)`, { file });
  if (/incorrect header check/i.test(msg)) {
    return produced > 0
      ? new DataError(`corrupt gzip: ${file} has bytes after its gzip stream that are not gzip data`, { file })
      : new DataError(`${file} is not a gzip file (bad header) although its name ends in .gz`, { file });
  }
  return new DataError(`corrupt gzip: ${file}: ${msg}`, { file });
}

/**
 * Reads a CSV / CSV.gz file once: verifies the gzip stream, checks the CSV structure and counts
 * the data rows. Throws a DataError naming the file (and row) on any problem.
 */
export async function scanCsv(file: string): Promise<CsvInfo> {
  if (!existsSync(file)) throw new DataError(`input file not found: ${file}`, { file });
  if (statSync(file).size === 0) throw new DataError(`${file} is empty (0 bytes)`, { file, rows: 0 });
  const scanner = new CsvScanner(file);
  let produced = 0;
  // The scanner's own error is kept: pipeline may report the resulting abort of the gunzip stream instead.
  let scanError: unknown = null;
  const sink = async (src: AsyncIterable<Buffer>): Promise<void> => {
    for await (const chunk of src) {
      produced += chunk.length;
      try {
        scanner.push(chunk);
      } catch (e) {
        scanError = e;
        throw e;
      }
    }
  };
  const input = createReadStream(file, { highWaterMark: 1 << 20 });
  try {
    if (isGzip(file)) await pipeline(input, createGunzip({ chunkSize: 1 << 20 }), sink);
    else await pipeline(input, sink);
  } catch (e) {
    if (scanError !== null) throw scanError;
    if (e instanceof DataError) throw e;
    if (isGzip(file) && typeof (e as { code?: unknown }).code === "string" && String((e as { code: string }).code).startsWith("Z_")) throw gzipError(file, e, produced);
    throw new DataError(`reading ${file}: ${e instanceof Error ? e.message : String(e)}`, { file });
  }
  return scanner.end();
}

// ---- prepared cache ----------------------------------------------------------------------------

export interface CacheFile {
  bytes: number;
  crc32: number;
}

/** The column files of a prepared split: path relative to the dataset folder, element width, value bound. */
export function splitFiles(manifest: Pick<Manifest, "fields" | "tasks" | "numGroups">, split: SplitName): { rel: string; width: 1 | 4; max: number; what: string }[] {
  const out: { rel: string; width: 1 | 4; max: number; what: string }[] = [];
  manifest.fields.forEach((f, i) => out.push({ rel: `${split}/field_${i}.i32`, width: 4, max: f.vocabSize - 1, what: `ids of field "${f.name}" (vocabulary size ${f.vocabSize})` }));
  manifest.tasks.forEach((t, k) => out.push({ rel: `${split}/label_${k}.u8`, width: 1, max: 1, what: `labels of task "${t.name}" (must be 0 or 1)` }));
  out.push({ rel: `${split}/group.i32`, width: 4, max: manifest.numGroups, what: `group ids (0..${manifest.numGroups})` });
  return out;
}

export type VerifyMode = "full" | "size" | "none";

/**
 * Checks a prepared folder against its manifest. "size": every column file exists with
 * rows x width bytes. "full" (default) also recomputes each file's CRC32 against the manifest and
 * checks every value (labels 0/1, ids inside the vocabulary, group ids <= numGroups).
 */
export function verifyPrepared(dir: string, manifest: Manifest, mode: VerifyMode = "full"): void {
  if (mode === "none") return;
  const corrupt = (rel: string, msg: string): DataError =>
    new DataError(`prepared dataset ${dir} is corrupt: ${rel} ${msg}; delete the folder and prepare again`, { file: join(dir, rel) });
  const splits: SplitName[] = ["train", "val", "test"];
  const buf = new Uint8Array(new ArrayBuffer(1 << 20));
  for (const s of splits) {
    const rows = manifest.rows[s];
    for (const f of splitFiles(manifest, s)) {
      const path = join(dir, f.rel);
      if (!existsSync(path)) throw corrupt(f.rel, "is missing");
      const size = statSync(path).size;
      if (size !== rows * f.width) throw corrupt(f.rel, `has ${size} bytes, expected ${rows * f.width} (${rows} rows x ${f.width})`);
      const rec = manifest.files?.[f.rel];
      if (manifest.files && (!rec || rec.bytes !== size)) throw corrupt(f.rel, "does not match the manifest's file list");
      if (mode !== "full") continue;
      const fd = openSync(path, "r");
      let crc = 0;
      let pos = 0;
      try {
        while (pos < size) {
          const n = readSync(fd, buf, 0, Math.min(buf.length, size - pos), pos);
          if (n <= 0) throw corrupt(f.rel, `could not be read past byte ${pos}`);
          const part = buf.subarray(0, n);
          crc = crc32(part, crc);
          if (f.width === 1) {
            for (let r = 0; r < n; r++) if ((part[r] as number) > f.max) throw corrupt(f.rel, `row ${pos + r} holds ${part[r]}, outside the ${f.what}`);
          } else {
            const v = new Int32Array(buf.buffer, 0, n >> 2);
            for (let r = 0; r < v.length; r++) {
              const x = v[r] as number;
              if (x < 0 || x > f.max) throw corrupt(f.rel, `row ${(pos >> 2) + r} holds ${x}, outside the ${f.what}`);
            }
          }
          pos += n;
        }
      } finally {
        closeSync(fd);
      }
      if (rec && rec.crc32 !== crc) throw corrupt(f.rel, `fails its checksum (crc32 ${crc.toString(16)}, manifest ${rec.crc32.toString(16)}): the file changed after it was written`);
    }
  }
}

/** Reads manifest.json with clear errors for a missing or unreadable file. */
export function loadManifest(dir: string): Manifest {
  const p = join(dir, "manifest.json");
  if (!existsSync(p)) throw new DataError(`no prepared dataset in ${dir} (manifest.json missing)`, { file: p });
  let m: unknown;
  try {
    m = JSON.parse(readFileSync(p, "utf8"));
  } catch (e) {
    throw new DataError(`prepared dataset ${dir}: manifest.json is not valid JSON (${(e as Error).message}); delete the folder and prepare again`, { file: p });
  }
  const o = m as Partial<Manifest> | null;
  const okRows = (x: unknown): boolean => Number.isInteger(x) && (x as number) >= 0;
  if (
    !o ||
    o.format !== "mtlcraft-dataset" ||
    !Array.isArray(o.fields) ||
    !Array.isArray(o.tasks) ||
    !o.rows ||
    !okRows(o.rows.train) ||
    !okRows(o.rows.val) ||
    !okRows(o.rows.test) ||
    !okRows(o.numGroups) ||
    o.fields.some((f) => !f || !(Number.isInteger(f.vocabSize) && f.vocabSize >= 1))
  ) {
    throw new DataError(`prepared dataset ${dir}: manifest.json is not a valid mtlcraft dataset manifest; delete the folder and prepare again`, { file: p });
  }
  return o as Manifest;
}
