/**
 * Input and cache integrity.
 *
 * - `scanCsv` streams a CSV or CSV.gz file once before DuckDB reads it: gzip streams are fully
 *   decompressed by node:zlib, which checks every member's CRC32 and ISIZE trailer and fails on a
 *   stream that stops early (also when the cut falls exactly on a line boundary: the deflate end
 *   block and the 8-byte trailer are then missing). The decompressed text is parsed as RFC 4180
 *   CSV (delimiter given, or taken from the first line: the most frequent of , TAB ; |; quoting
 *   with the given quote character, default ", doubled inside quotes; CR LF or LF line ends; blank
 *   lines skipped, as DuckDB does) to give clear errors for empty files, header-only files, ragged
 *   rows and unterminated quotes, and to count the data rows of each file. A file without a header
 *   row (`header: false`) has its column names given, and its first line is a data row.
 * - `verifyPrepared` checks a prepared cache folder against its manifest: every column file must
 *   have the size rows x width and the CRC32 recorded when it was written, labels must be 0/1,
 *   ids must lie inside their vocabulary (a multi-valued field's rows: a first id >= 0, then ids
 *   or -1 padding, padding only at the end) and dense values must be finite.
 */
import { closeSync, createReadStream, existsSync, openSync, readFileSync, readSync, statSync } from "node:fs";
import { join } from "node:path";
import { pipeline } from "node:stream/promises";
import { createGunzip, crc32 } from "node:zlib";
import { DataError } from "./errors.ts";
import type { Manifest, VocabFile } from "./prepare.ts";
import type { SplitName } from "./types.ts";

export interface CsvInfo {
  /** Header names, unquoted (the given names for a file without a header row). */
  columns: string[];
  /** Field delimiter: the given one, or the one found in the first line (',' when it has a single column). */
  delimiter: string;
  /** Data rows (records after the header, or every record without one; blank lines not counted). */
  rows: number;
}

/** How scanCsv reads a file (defaults: a header row, delimiter detected, double quotes). */
export interface CsvScanOptions {
  /** The first line is a header (default true). */
  header?: boolean;
  /** Column names of a file without a header (required when header is false). */
  columns?: readonly string[];
  /** One-byte delimiter (default: detected from the first line). */
  delimiter?: string;
  /** One-byte quote character (default '"'). */
  quote?: string;
}

const DELIMS = [",", "\t", ";", "|"];
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
function splitRecord(bytes: Uint8Array, delim: number, QUOTE: number): string[] {
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
  private readonly quote: number;
  private readonly hasHeader: boolean;
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

  constructor(
    private readonly file: string,
    private readonly opts: CsvScanOptions = {},
  ) {
    this.quote = (opts.quote ?? '"').charCodeAt(0);
    this.hasHeader = opts.header ?? true;
    if (!this.hasHeader && !opts.columns?.length) throw new Error("scanCsv: a file without a header needs its column names");
    for (const [k, v] of [
      ["delimiter", opts.delimiter],
      ["quote", opts.quote],
    ] as const) {
      if (v !== undefined && (v.length !== 1 || v.charCodeAt(0) > 0x7f)) throw new DataError(`${file}: the CSV ${k} must be one ASCII character, got ${JSON.stringify(v)}`, { file });
    }
  }

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
      if (b === this.quote) this.headerInQ = !this.headerInQ;
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
    this.records(chunk, i);
  }

  /** The record state machine over data bytes (after the header). */
  private records(chunk: Uint8Array, from: number): void {
    const d = this.delim;
    const QUOTE = this.quote;
    for (let i = from; i < chunk.length; i++) {
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
    const QUOTE = this.quote;
    if (this.opts.delimiter !== undefined) {
      this.delimiter = this.opts.delimiter;
      this.delim = this.delimiter.charCodeAt(0);
    } else {
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
    }
    this.headerDone = true;
    this.header = [];
    if (this.hasHeader) {
      this.columns = splitRecord(h, this.delim, QUOTE);
      this.nCols = this.columns.length;
      this.recLine = this.line;
      return;
    }
    // no header: the first line is the first data row; run it through the record scanner
    this.columns = [...(this.opts.columns ?? [])];
    this.nCols = this.columns.length;
    const after = this.line;
    this.line = 1;
    this.recLine = 1;
    this.records(h, 0);
    this.endRecord();
    this.line = after;
    this.recLine = after;
  }

  private endRecord(): void {
    if (this.recLen > 0) {
      this.rows++;
      if (this.fields !== this.nCols) {
        const text = Buffer.from(this.snippet).toString("utf8") + (this.recLen > this.snippet.length ? "..." : "");
        const want = this.hasHeader ? `the header has ${this.nCols}` : `csv.columns names ${this.nCols}`;
        throw new DataError(`${this.file}: ragged row ${this.rows} (line ${this.recLine}) has ${this.fields} fields but ${want} (${delimName(this.delimiter)}-separated): ${JSON.stringify(text)}`, {
          file: this.file,
        });
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
      if (this.headerInQ) throw new DataError(`${this.file}: the ${this.hasHeader ? "header" : "first line"} has an unterminated quote`, { file: this.file });
      if (this.header.length === 0) throw new DataError(`${this.file} is empty (no header, no rows)`, { file: this.file, rows: 0 });
      this.finishHeader();
    }
    if (this.state === 2) throw new DataError(`${this.file}: a quoted field opened in row ${this.rows + 1} (line ${this.recLine}) is never closed`, { file: this.file });
    this.endRecord();
    if (this.rows === 0) {
      if (!this.hasHeader) throw new DataError(`${this.file} has no data rows`, { file: this.file, rows: 0 });
      throw new DataError(`${this.file} has a header (${this.columns.join(", ")}) but no data rows`, { file: this.file, rows: 0 });
    }
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
export async function scanCsv(file: string, opts: CsvScanOptions = {}): Promise<CsvInfo> {
  if (!existsSync(file)) throw new DataError(`input file not found: ${file}`, { file });
  if (statSync(file).size === 0) throw new DataError(`${file} is empty (0 bytes)`, { file, rows: 0 });
  const scanner = new CsvScanner(file, opts);
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

/** One column file of a prepared split: path relative to the dataset folder, bytes per row, what it holds and its value bound. */
export interface SplitFile {
  rel: string;
  /** Bytes per row. */
  width: number;
  /** u8 labels, i32 ids (one per row), ids of a multi-valued field (`perRow` per row, -1 padded), f32 dense values. */
  type: "u8" | "i32" | "ids" | "f32";
  /** Largest valid value (u8, i32, ids). */
  max: number;
  /** Values per row (ids). */
  perRow: number;
  what: string;
}

/** The column files of a prepared split. */
export function splitFiles(manifest: Pick<Manifest, "fields" | "tasks" | "numGroups" | "dense">, split: SplitName): SplitFile[] {
  const out: SplitFile[] = [];
  manifest.fields.forEach((f, i) => {
    const L = f.multi?.maxLen ?? 1;
    out.push({
      rel: `${split}/field_${i}.i32`,
      width: 4 * L,
      type: f.multi ? "ids" : "i32",
      max: f.vocabSize - 1,
      perRow: L,
      what: f.multi ? `ids of multi-valued field "${f.name}" (vocabulary size ${f.vocabSize}, ${L} per row: ids first, then -1 padding)` : `ids of field "${f.name}" (vocabulary size ${f.vocabSize})`,
    });
  });
  manifest.tasks.forEach((t, k) => out.push({ rel: `${split}/label_${k}.u8`, width: 1, type: "u8", max: 1, perRow: 1, what: `labels of task "${t.name}" (must be 0 or 1)` }));
  out.push({ rel: `${split}/group.i32`, width: 4, type: "i32", max: manifest.numGroups, perRow: 1, what: `group ids (0..${manifest.numGroups})` });
  (manifest.dense ?? []).forEach((d, j) => out.push({ rel: `${split}/dense_${j}.f32`, width: 4, type: "f32", max: Infinity, perRow: 1, what: `values of dense input "${d.name}" (must be finite)` }));
  return out;
}

export type VerifyMode = "full" | "size" | "none";

/**
 * Checks a prepared folder against its manifest. "size": every column file exists with
 * rows x width bytes. "full" (default) also recomputes each file's CRC32 against the manifest and
 * checks every value (labels 0/1, ids inside the vocabulary, multi-valued rows well formed,
 * group ids <= numGroups, dense values finite).
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
      let padded = false;
      try {
        while (pos < size) {
          const n = readSync(fd, buf, 0, Math.min(buf.length, size - pos), pos);
          if (n <= 0) throw corrupt(f.rel, `could not be read past byte ${pos}`);
          const part = buf.subarray(0, n);
          crc = crc32(part, crc);
          if (f.type === "u8") {
            for (let r = 0; r < n; r++) if ((part[r] as number) > f.max) throw corrupt(f.rel, `row ${pos + r} holds ${part[r]}, outside the ${f.what}`);
          } else if (f.type === "f32") {
            const v = new Float32Array(buf.buffer, 0, n >> 2);
            for (let r = 0; r < v.length; r++) if (!Number.isFinite(v[r] as number)) throw corrupt(f.rel, `row ${(pos >> 2) + r} holds ${v[r]}, outside the ${f.what}`);
          } else {
            const v = new Int32Array(buf.buffer, 0, n >> 2);
            const L = f.perRow;
            for (let r = 0; r < v.length; r++) {
              const x = v[r] as number;
              const e = (pos >> 2) + r;
              const k = e % L;
              if (k === 0) padded = false;
              const where = f.type === "ids" ? `row ${Math.floor(e / L)} position ${k}` : `row ${e}`;
              if (x === -1 && f.type === "ids" && k > 0) padded = true;
              else if (x < 0 || x > f.max) throw corrupt(f.rel, `${where} holds ${x}, outside the ${f.what}`);
              else if (padded) throw corrupt(f.rel, `${where} holds ${x} after -1 padding, outside the ${f.what}`);
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
  // format 4: vocabulary files and saved side tables (what encoding new rows needs)
  const extra = new Map<string, string>();
  manifest.fields.forEach((f, i) => {
    if (f.vocab) extra.set(f.vocab.file, `vocabulary of field "${f.name}" (field ${i})`);
  });
  for (const sd of manifest.sides ?? []) extra.set(sd.file, `side table joined on "${sd.on}"`);
  for (const [rel, what] of extra) {
    const path = join(dir, rel);
    if (!existsSync(path)) throw corrupt(rel, `(the ${what}) is missing`);
    const rec = manifest.files?.[rel];
    const size = statSync(path).size;
    if (!rec || rec.bytes !== size) throw corrupt(rel, `(the ${what}) does not match the manifest's file list (${size} bytes, manifest ${rec ? rec.bytes : "none"})`);
    if (mode !== "full") continue;
    const b = readFileSync(path);
    const crc = crc32(b);
    if (rec.crc32 !== crc) throw corrupt(rel, `(the ${what}) fails its checksum (crc32 ${crc.toString(16)}, manifest ${rec.crc32.toString(16)}): the file changed after it was written`);
  }
  manifest.fields.forEach((f) => {
    if (!f.vocab || mode !== "full") return;
    let v: Partial<VocabFile>;
    try {
      v = JSON.parse(readFileSync(join(dir, f.vocab.file), "utf8")) as Partial<VocabFile>;
    } catch (e) {
      throw corrupt(f.vocab.file, `is not valid JSON (${(e as Error).message})`);
    }
    if (!Array.isArray(v.values) || v.values.length !== f.vocabSize - 1 || v.values.some((x) => typeof x !== "string")) {
      throw corrupt(f.vocab.file, `does not hold the ${f.vocabSize - 1} values of field "${f.name}" (vocabulary size ${f.vocabSize} with the OOV id 0)`);
    }
  });
}

/** Reads the vocabulary of a prepared categorical field: `values[k]` has id k + 1 (see ManifestField.vocab). */
export function readVocab(dir: string, field: Manifest["fields"][number]): VocabFile {
  if (!field.vocab) throw new DataError(`prepared dataset ${dir}: field "${field.name}" has no saved vocabulary (a cache written before format 4, or a numeric field); prepare the dataset again`);
  const p = join(dir, field.vocab.file);
  let v: Partial<VocabFile>;
  try {
    v = JSON.parse(readFileSync(p, "utf8")) as Partial<VocabFile>;
  } catch (e) {
    throw new DataError(`prepared dataset ${dir}: ${field.vocab.file} cannot be read (${(e as Error).message}); delete the folder and prepare again`, { file: p });
  }
  if (!Array.isArray(v.values) || v.values.length !== field.vocabSize - 1) throw new DataError(`prepared dataset ${dir}: ${field.vocab.file} does not hold the ${field.vocabSize - 1} values of field "${field.name}"; delete the folder and prepare again`, { file: p });
  return { field: field.name, type: field.vocab.type, values: v.values as string[] };
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
    o.fields.some((f) => !f || !(Number.isInteger(f.vocabSize) && f.vocabSize >= 1) || (f.multi !== undefined && !(Number.isInteger(f.multi.maxLen) && f.multi.maxLen >= 1))) ||
    (o.dense !== undefined && (!Array.isArray(o.dense) || o.dense.some((d) => !d || typeof d.name !== "string")))
  ) {
    throw new DataError(`prepared dataset ${dir}: manifest.json is not a valid mtlcraft dataset manifest; delete the folder and prepare again`, { file: p });
  }
  return o as Manifest;
}
