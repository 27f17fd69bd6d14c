/**
 * Input and cache integrity.
 *
 * - `scanCsv` streams a CSV or CSV.gz file once before DuckDB reads it: gzip streams are fully
 *   decompressed by node:zlib, which checks every member's CRC32 and ISIZE trailer and fails on a
 *   stream that stops early (also when the cut falls exactly on a line boundary: the deflate end
 *   block and the 8-byte trailer are then missing). The text is checked against its encoding
 *   (UTF-8 by default: a Latin-1 file fails here, naming its first bad line; UTF-16 little-endian
 *   is transcoded to UTF-8 first; Latin-1 is read byte by byte), then parsed as RFC 4180 CSV
 *   (delimiter of 1 to 4 bytes given, or taken from the first line: the most frequent of , TAB ; |;
 *   quoting with the given quote character, default ", doubled inside quotes unless an escape
 *   character is given; CR LF or LF line ends; blank lines skipped, as DuckDB does) to give clear
 *   errors for empty files, header-only files, ragged rows and unterminated quotes, and to count the
 *   data rows of each file. A file without a header row (`header: false`) has its column names
 *   given, and its first line is a data row. `csvLineOf` turns DuckDB's CSV line numbers (which
 *   count a quoted value's line breaks as none) into the file's physical 1-based line.
 * - `verifyPrepared` checks a prepared cache folder against its manifest: every column file must
 *   have the size rows x width and the CRC32 recorded when it was written, labels must be 0/1,
 *   ids must lie inside their vocabulary (a multi-valued field's rows: a first id >= 0, then ids
 *   or -1 padding, padding only at the end) and dense values must be finite.
 */
import { isUtf8 } from "node:buffer";
import { closeSync, createReadStream, existsSync, openSync, readFileSync, readSync, statSync } from "node:fs";
import { join } from "node:path";
import { pipeline } from "node:stream/promises";
import { createGunzip, crc32 } from "node:zlib";
import { DataError } from "./errors.ts";
import type { Manifest, VocabFile } from "./manifest.ts";
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
  /** Delimiter of 1 to 4 ASCII characters (default: detected from the first line). */
  delimiter?: string;
  /** One-byte quote character (default '"'). */
  quote?: string;
  /** One-byte escape character inside quotes (default: the quote, i.e. doubled quotes). */
  escape?: string;
  /** Text encoding (default "utf-8"); see CsvEncoding. */
  encoding?: "utf-8" | "latin-1" | "utf-16";
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

/** Whether `delim` (non-empty) occurs in `bytes` at `i`. */
function delimAt(bytes: Uint8Array, i: number, delim: Uint8Array): boolean {
  if (delim.length === 0 || i + delim.length > bytes.length) return false;
  for (let k = 0; k < delim.length; k++) if (bytes[i + k] !== delim[k]) return false;
  return true;
}

/** Splits one record's bytes into unquoted fields (used for the header only); ESC < 0: doubled quotes. */
function splitRecord(bytes: Uint8Array, delim: Uint8Array, QUOTE: number, ESC: number, text: BufferEncoding): string[] {
  const out: string[] = [];
  let cur: number[] = [];
  let inQ = false;
  let atStart = true;
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i] as number;
    if (inQ) {
      if (b === ESC && i + 1 < bytes.length) cur.push(bytes[++i] as number);
      else if (b === QUOTE) {
        if (bytes[i + 1] === QUOTE) {
          cur.push(QUOTE);
          i++;
        } else inQ = false;
      } else cur.push(b);
    } else if (delimAt(bytes, i, delim)) {
      out.push(Buffer.from(cur).toString(text));
      cur = [];
      atStart = true;
      i += delim.length - 1;
      continue;
    } else if (b === QUOTE && atStart) inQ = true;
    else cur.push(b);
    atStart = false;
  }
  out.push(Buffer.from(cur).toString(text));
  return out;
}

/** KMP failure function of a delimiter (longest proper prefix that is also a suffix, per prefix length). */
function failure(p: Uint8Array): Int32Array {
  const f = new Int32Array(p.length);
  for (let i = 1, k = 0; i < p.length; i++) {
    while (k > 0 && p[i] !== p[k]) k = f[k - 1] as number;
    if (p[i] === p[k]) k++;
    f[i] = k;
  }
  return f;
}

/** Thrown inside the scanner to stop reading once `stopAtLine` is reached (see csvLineOf). */
class Stop {
  constructor(readonly line: number) {}
}

/** Streaming RFC 4180 record scanner; the delimiter is fixed once the header is complete. */
class CsvScanner {
  /** Delimiter bytes (empty: a single-column file, nothing splits). */
  private delim: Uint8Array = new Uint8Array(0);
  private delimFail: Int32Array = new Int32Array(0);
  /** Bytes of the delimiter matched so far (multi-byte delimiters). */
  private dm = 0;
  private readonly quote: number;
  /** Escape byte inside quotes; -1 when it is the quote itself (doubled quotes). */
  private readonly escape: number;
  private readonly text: BufferEncoding;
  private headerEsc = false;
  private headerLine = 1;
  /** Line ends outside quotes so far: DuckDB's line numbers count these (see csvLineOf). */
  private logical = 0;
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
  /** The 1-based physical line of the next byte. */
  get currentLine(): number {
    return this.line;
  }
  private recLine = 1;
  private snippet: number[] = [];
  private prevCR = false;
  private bomChecked = false;
  private bom: number[] = [];

  constructor(
    private readonly file: string,
    private readonly opts: CsvScanOptions = {},
    /** Stop (throw Stop) when DuckDB's line `stopAtLine` begins (see csvLineOf). */
    private readonly stopAtLine = 0,
  ) {
    this.quote = (opts.quote ?? '"').charCodeAt(0);
    this.escape = opts.escape === undefined || opts.escape === (opts.quote ?? '"') ? -1 : opts.escape.charCodeAt(0);
    this.text = opts.encoding === "latin-1" ? "latin1" : "utf8";
    this.hasHeader = opts.header ?? true;
    if (!this.hasHeader && !opts.columns?.length) throw new Error("scanCsv: a file without a header needs its column names");
    for (const [k, v] of [
      ["delimiter", opts.delimiter],
      ["quote", opts.quote],
      ["escape", opts.escape],
    ] as const) {
      const max = k === "delimiter" ? 4 : 1;
      if (v !== undefined && (v.length < 1 || v.length > max || ![...v].every((c) => c.charCodeAt(0) > 0 && c.charCodeAt(0) < 0x80) || /[\r\n]/.test(v))) {
        throw new DataError(`${file}: the CSV ${k} must be ${max === 1 ? "one ASCII character" : `1 to ${max} ASCII characters`} (no line break), got ${JSON.stringify(v.slice(0, 40))}`, { file });
      }
    }
  }

  /** A line end outside quotes: DuckDB's next line begins. */
  private lineEnd(): void {
    this.logical++;
    if (this.stopAtLine > 0 && this.logical + 1 >= this.stopAtLine) throw new Stop(this.line);
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
      if (this.headerEsc) this.headerEsc = false;
      else if (this.headerInQ && b === this.escape) this.headerEsc = true;
      else if (b === this.quote) this.headerInQ = !this.headerInQ;
      if ((b === LF || b === CR) && !this.headerInQ) {
        this.prevCR = b === CR;
        this.line++;
        this.lineEnd();
        if (this.header.length === 0) continue; // blank lines before the header
        this.finishHeader();
        continue;
      }
      if (b === LF) this.line++;
      if (this.header.length === 0) this.headerLine = this.line;
      this.header.push(b);
      if (this.header.length > 16 << 20) throw new DataError(`${this.file}: the header line is longer than 16 MiB (is this a CSV file?)`, { file: this.file });
    }
    this.records(chunk, i);
  }

  /** The record state machine over data bytes (after the header). */
  private records(chunk: Uint8Array, from: number): void {
    const delim = this.delim;
    const dl = delim.length;
    const d = dl === 1 ? (delim[0] as number) : -1;
    const fail = this.delimFail;
    const QUOTE = this.quote;
    const ESC = this.escape;
    for (let i = from; i < chunk.length; i++) {
      const b = chunk[i] as number;
      if (this.prevCR) {
        this.prevCR = false;
        if (b === LF) continue;
      }
      if (this.state === 2) {
        if (b === QUOTE) this.state = 3;
        else if (b === ESC) this.state = 4;
        else if (b === LF) this.line++;
        this.keep(b);
        continue;
      }
      if (this.state === 4) {
        // the character after an escape inside quotes is literal
        if (b === LF) this.line++;
        this.state = 2;
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
        this.lineEnd();
        continue;
      }
      this.keep(b);
      if (dl <= 1) {
        if (b === d) {
          this.fields++;
          this.state = 0;
        } else if (b === QUOTE && this.state === 0) this.state = 2;
        else this.state = 1;
        continue;
      }
      // a delimiter of several bytes (e.g. "::"): matched across chunks, leftmost first (KMP)
      let m = this.dm;
      while (m > 0 && b !== delim[m]) m = fail[m - 1] as number;
      if (b === delim[m]) m++;
      if (m === dl) {
        this.fields++;
        this.state = 0;
        m = 0;
      } else if (m === 0 && b === QUOTE && this.state === 0) this.state = 2;
      else this.state = 1;
      this.dm = m;
    }
  }

  private keep(b: number): void {
    if (++this.recLen > DUCKDB_MAX_LINE_BYTES) {
      const col = this.columns[this.fields - 1];
      throw new DataError(
        `${this.file}: the row at line ${this.recLine} is longer than DuckDB's limit of ${DUCKDB_MAX_LINE_BYTES.toLocaleString("en")} bytes per row (in field ${this.fields}${col === undefined ? "" : ` "${col.slice(0, 100)}"`}): shorten that field or drop it from the log`,
        { file: this.file, line: this.recLine, ...(col === undefined ? {} : { column: col }) },
      );
    }
    if (this.snippet.length < 120) this.snippet.push(b);
  }

  private finishHeader(): void {
    const h = Uint8Array.from(this.header);
    const QUOTE = this.quote;
    if (h.includes(0) && this.opts.encoding !== "utf-16") {
      throw new DataError(`${this.file}: line ${this.headerLine} (the ${this.hasHeader ? "header" : "first line"}) holds NUL bytes: if the file is UTF-16, set csv.encoding to "utf-16" (see docs/spec-reference.md)`, { file: this.file, line: this.headerLine });
    }
    if (this.opts.delimiter !== undefined) {
      this.delimiter = this.opts.delimiter;
      this.delim = Uint8Array.from(Buffer.from(this.delimiter, "latin1"));
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
      this.delim = (counts[best] as number) > 0 ? Uint8Array.of(this.delimiter.charCodeAt(0)) : new Uint8Array(0);
    }
    this.delimFail = failure(this.delim);
    this.headerDone = true;
    this.header = [];
    if (this.hasHeader) {
      this.columns = splitRecord(h, this.delim, QUOTE, this.escape, this.text);
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
        const text = Buffer.from(this.snippet).toString(this.text) + (this.recLen > this.snippet.length ? "..." : "");
        const want = this.hasHeader ? `the header has ${this.nCols}` : `csv.columns names ${this.nCols}`;
        throw new DataError(`${this.file}: ragged row ${this.rows} (line ${this.recLine}) has ${this.fields} fields but ${want} (${delimName(this.delimiter)}-separated): ${JSON.stringify(text)}`, {
          file: this.file,
          line: this.recLine,
        });
      }
    }
    this.fields = 1;
    this.recLen = 0;
    this.state = 0;
    this.dm = 0;
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
      // the header as read (cut: a file read in the wrong encoding can be one huge "header")
      const head = this.columns.join(", ");
      throw new DataError(`${this.file} has a header (${head.length > 200 ? `${head.slice(0, 200)}… (${head.length} characters: is csv.encoding right?)` : head}) but no data rows`, { file: this.file, rows: 0 });
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

/** Length of `b` without a UTF-8 sequence cut off at its end (that part is carried to the next chunk). */
function completeUtf8(b: Uint8Array): number {
  for (let i = b.length - 1; i >= Math.max(0, b.length - 3); i--) {
    const c = b[i] as number;
    if ((c & 0xc0) === 0x80) continue; // continuation byte: look further back
    const need = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 1;
    return b.length - i < need ? i : b.length;
  }
  return b.length;
}

/** Offset of the first byte of `b` that is not part of a valid UTF-8 sequence (b.length when none). */
function firstInvalidUtf8(b: Uint8Array): number {
  let i = 0;
  while (i < b.length) {
    const c = b[i] as number;
    let n: number;
    let min: number;
    if (c < 0x80) {
      i++;
      continue;
    } else if (c >= 0xc2 && c <= 0xdf) [n, min] = [1, 0x80];
    else if (c >= 0xe0 && c <= 0xef) [n, min] = [2, 0x800];
    else if (c >= 0xf0 && c <= 0xf4) [n, min] = [3, 0x10000];
    else return i;
    let cp = c & (0x3f >> n);
    for (let k = 1; k <= n; k++) {
      const x = b[i + k];
      if (x === undefined || (x & 0xc0) !== 0x80) return i;
      cp = (cp << 6) | (x & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return i;
    i += n + 1;
  }
  return b.length;
}

/** DuckDB's read_csv refuses a row longer than this (its default max_line_size, which the spec does not change). */
export const DUCKDB_MAX_LINE_BYTES = 2_000_000;

/** What a file that is not text looks like, from its first bytes (null: it may be text). */
export function binaryKind(b: Uint8Array): string | null {
  const starts = (...m: number[]) => m.every((x, i) => b[i] === x);
  if (starts(0x1f, 0x8b)) return "it is gzip-compressed: name it .csv.gz";
  if (starts(0x50, 0x4b, 0x03, 0x04)) return "it is a ZIP archive: unpack it first";
  if (starts(0x50, 0x41, 0x52, 0x31)) return "it is a Parquet file: name it .parquet";
  if (starts(0x7f, 0x45, 0x4c, 0x46)) return "it is an executable (ELF)";
  const n = Math.min(b.length, 1024);
  let ctl = 0;
  for (let i = 0; i < n; i++) {
    const x = b[i]!;
    if (x === 0) return "it holds NUL bytes in its first kilobyte: binary data (or UTF-16 without a byte-order mark: then set csv.encoding to \"utf-16\")";
    if (x < 0x20 && x !== 9 && x !== 10 && x !== 13) ctl++;
  }
  return n >= 64 && ctl > n / 10 ? "its first kilobyte is mostly control characters: binary data" : null;
}

const ENCODING_HINT = 'set csv.encoding to "latin-1" (ISO-8859-1, e.g. MovieLens .dat files) or "utf-16", whichever the file is written in (see docs/spec-reference.md)';

/**
 * The text layer between the (decompressed) bytes and the scanner: UTF-8 is validated (chunk
 * boundaries inside a character are carried over), UTF-16 LE is validated and transcoded to UTF-8,
 * Latin-1 passes as it is (every byte is a character). A byte that does not belong throws,
 * naming the file and the scanner's current line (the bytes before it are scanned first).
 */
function textLayer(file: string, encoding: NonNullable<CsvScanOptions["encoding"]>, scanner: CsvScanner): { push(chunk: Uint8Array): void; end(): void } {
  if (encoding === "latin-1") return { push: (c) => scanner.push(c), end: () => {} };
  if (encoding === "utf-8") {
    let carry: Uint8Array | null = null;
    // the file's first kilobyte: what a file that is not text looks like (binaryKind)
    const head: number[] = [];
    const bad = (b: Uint8Array, at: number): DataError => {
      scanner.push(b.subarray(0, at));
      const byte = b[at];
      const bom16 = scanner.currentLine === 1 && at === 0 && (byte === 0xff || byte === 0xfe);
      const binary = scanner.currentLine === 1 && !bom16 ? binaryKind(head.length ? Uint8Array.from(head) : b) : null;
      if (binary !== null) return new DataError(`${file} is not a CSV text file: ${binary}`, { file, line: 1 });
      return new DataError(
        `${file}: line ${scanner.currentLine} is not valid UTF-8 (${byte === undefined ? "the file ends inside a character" : `byte 0x${byte.toString(16).toUpperCase().padStart(2, "0")}`}); the file is in another encoding: ${bom16 ? 'it starts with a UTF-16 byte-order mark: set csv.encoding to "utf-16"' : ENCODING_HINT}`,
        { file, line: scanner.currentLine },
      );
    };
    return {
      push(chunk) {
        for (let i = 0; i < chunk.length && head.length < 1024; i++) head.push(chunk[i]!);
        const b: Uint8Array = carry ? Buffer.concat([carry, chunk]) : chunk;
        const cut = completeUtf8(b);
        const body = b.subarray(0, cut);
        if (!isUtf8(body)) throw bad(body, firstInvalidUtf8(body));
        scanner.push(body);
        carry = cut < b.length ? Uint8Array.from(b.subarray(cut)) : null;
      },
      end() {
        if (carry) throw bad(carry, carry.length);
      },
    };
  }
  // UTF-16 little-endian (DuckDB's "utf-16"): code units checked for lone surrogates, then transcoded to UTF-8
  let carry: Uint8Array | null = null;
  let first = true;
  const bad = (units: Uint8Array, at: number, what: string): DataError => {
    scanner.push(Buffer.from(Buffer.from(units.buffer, units.byteOffset, at).toString("utf16le"), "utf8"));
    return new DataError(`${file}: line ${scanner.currentLine} is not valid UTF-16 little-endian (${what}); check csv.encoding (see docs/spec-reference.md)`, { file, line: scanner.currentLine });
  };
  return {
    push(chunk) {
      const b: Uint8Array = carry ? Buffer.concat([carry, chunk]) : chunk;
      if (first && b.length >= 2) {
        first = false;
        if (b[0] === 0xfe && b[1] === 0xff) throw new DataError(`${file} is UTF-16 big-endian (it starts with the byte-order mark FE FF); DuckDB reads UTF-16 little-endian only: convert the file to UTF-16LE or UTF-8 (e.g. iconv -f UTF-16BE -t UTF-8)`, { file });
      } else if (first) {
        carry = Uint8Array.from(b);
        return;
      }
      let n = b.length & ~1;
      // a high surrogate at the end waits for its pair
      if (n >= 2) {
        const last = (b[n - 2] as number) | ((b[n - 1] as number) << 8);
        if (last >= 0xd800 && last <= 0xdbff) n -= 2;
      }
      const units = Uint8Array.from(b.subarray(0, n));
      for (let i = 0; i < n; i += 2) {
        const u = (units[i] as number) | ((units[i + 1] as number) << 8);
        if (u >= 0xd800 && u <= 0xdbff) {
          const v = (units[i + 2] as number) | ((units[i + 3] as number) << 8);
          if (!(v >= 0xdc00 && v <= 0xdfff)) throw bad(units, i, `a high surrogate 0x${u.toString(16).toUpperCase()} without its pair`);
          i += 2;
        } else if (u >= 0xdc00 && u <= 0xdfff) throw bad(units, i, `a lone low surrogate 0x${u.toString(16).toUpperCase()}`);
      }
      scanner.push(Buffer.from(Buffer.from(units.buffer, units.byteOffset, n).toString("utf16le"), "utf8"));
      carry = n < b.length ? Uint8Array.from(b.subarray(n)) : null;
    },
    end() {
      if (carry && carry.length > 0) throw bad(carry, 0, carry.length % 2 === 1 ? "the file ends inside a code unit (an odd number of bytes)" : "the file ends inside a surrogate pair");
    },
  };
}

/** Streams `file` (gunzipped when .gz) through `consume`; errors become DataErrors naming the file (the consumer's own errors are kept). */
async function streamFile(file: string, consume: (chunk: Uint8Array) => void): Promise<void> {
  let produced = 0;
  // The consumer's own error is kept: pipeline may report the resulting abort of the gunzip stream instead.
  let scanError: unknown = null;
  const sink = async (src: AsyncIterable<Buffer>): Promise<void> => {
    for await (const chunk of src) {
      produced += chunk.length;
      try {
        consume(chunk);
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
}

/**
 * Reads a CSV / CSV.gz file once: verifies the gzip stream, checks the text against its encoding
 * and the CSV structure, and counts the data rows. Throws a DataError naming the file (and line) on
 * any problem.
 */
export async function scanCsv(file: string, opts: CsvScanOptions = {}): Promise<CsvInfo> {
  if (!existsSync(file)) throw new DataError(`input file not found: ${file}`, { file });
  if (statSync(file).size === 0) throw new DataError(`${file} is empty (0 bytes)`, { file, rows: 0 });
  const scanner = new CsvScanner(file, opts);
  const text = textLayer(file, opts.encoding ?? "utf-8", scanner);
  await streamFile(file, (c) => text.push(c));
  text.end();
  return scanner.end();
}

/**
 * The physical 1-based line of `file` at which DuckDB's CSV line `duckLine` begins. DuckDB counts
 * a line break inside a quoted value as no line, so after a multi-line value its numbers fall
 * behind the file's; this reads the file again (as scanCsv does) up to that line. Null when the
 * file cannot be read that far.
 */
export async function csvLineOf(file: string, opts: CsvScanOptions, duckLine: number): Promise<number | null> {
  if (!(Number.isInteger(duckLine) && duckLine >= 1)) return null;
  if (duckLine === 1) return 1;
  const scanner = new CsvScanner(file, opts, duckLine);
  const text = textLayer(file, opts.encoding ?? "utf-8", scanner);
  try {
    await streamFile(file, (c) => text.push(c));
  } catch (e) {
    if (e instanceof Stop) return e.line;
    return null;
  }
  return null;
}

// ---- prepared cache ----------------------------------------------------------------------------

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
