/**
 * What a queue worker writes into Redis about a job (its failedReason, its progress text):
 * anyone who can read the Redis reads it, so it names file, row, line and column but never
 * quotes the content of a file the worker read. A worker's full messages stay in its own log.
 *
 * - A data error (DataError, from preparing the dataset on the worker) is rebuilt from its
 *   structured fields: the kind of problem from a fixed list, the file's name, row and line
 *   numbers, and the column when the job's own spec names it. Its text (which may quote a row,
 *   a header or DuckDB's "Original Line") is never sent.
 * - The worker's own refusals (PayloadError, a spec path outside the data folder) are built from
 *   the payload alone and pass as they are.
 * - Any other text (a train process's error line, a progress line) keeps a quoted value only
 *   when it equals a whole key or string value of the payload (an option, a method, a spec
 *   column: what the sender wrote itself); every other quoted part is replaced by "…", and
 *   anything after DuckDB's context markers is cut. (The worker prepares the data before it
 *   starts a train process, so a train process reads no input file that could fail there.)
 * Every message is one bounded string (at most MAX_REDIS_MESSAGE characters).
 */
import { basename } from "node:path";
import { DataError } from "../data/errors.ts";
import { OutsideDataFolderError } from "../data/confine.ts";
import { PayloadError } from "./payload.ts";

/** Longest message a worker stores in Redis. */
export const MAX_REDIS_MESSAGE = 600;

/** Kinds of data error, by the wording of the data layer's messages (first match). */
const DATA_KINDS: readonly [RegExp, string][] = [
  [/ragged row/i, "a row with the wrong number of fields"],
  [/unterminated quote|never closed/i, "an unterminated quote"],
  [/gzip/i, "a damaged or truncated gzip file"],
  [/parquet/i, "an unreadable Parquet file"],
  [/input file not found|spec file not found|folder not found/i, "a file that does not exist"],
  [/column .* not found|not found in/i, "a column that does not exist"],
  [/is empty|no data rows|no rows/i, "no data rows"],
  [/convert|cast|type/i, "a value of the wrong type"],
  [/delimiter|quot/i, "a delimiter or quoting problem"],
  [/split/i, "a split problem"],
];

/** Cuts a message to `max` characters on one line. */
function bounded(s: string, max = MAX_REDIS_MESSAGE): string {
  const one = s.replace(/\s*\n\s*/g, " | ");
  return one.length > max ? `${one.slice(0, max - 3)}...` : one;
}

/** Every key and string value in a payload (the words a message may quote back). */
export function payloadStrings(x: unknown, out = new Set<string>()): Set<string> {
  if (typeof x === "string") out.add(x);
  else if (Array.isArray(x)) for (const v of x) payloadStrings(v, out);
  else if (x !== null && typeof x === "object") {
    for (const [k, v] of Object.entries(x)) {
      out.add(k);
      payloadStrings(v, out);
    }
  }
  return out;
}

/** A data error told by its structured fields only (see the file comment). */
export function dataErrorSummary(e: DataError, known: ReadonlySet<string>): string {
  // numbers are taken from the data layer's own wording, before any DuckDB context
  const head = e.message.split(/Original Line|\n/i)[0] ?? "";
  const kind = DATA_KINDS.find(([re]) => re.test(head))?.[1] ?? "bad input";
  const parts: string[] = [];
  if (e.file) {
    const names = e.file.split(", ").map((f) => basename(f)).filter((f) => /^[\w.-]{1,100}$/.test(f));
    if (names.length) parts.push(`file ${names.slice(0, 5).join(", ")}`);
  }
  const row = /\brow (\d{1,15})\b/i.exec(head);
  if (row) parts.push(`row ${row[1]}`);
  const line = /\bline (\d{1,15})\b/i.exec(head);
  if (line) parts.push(`line ${line[1]}`);
  if (e.column && known.has(e.column)) parts.push(`column ${JSON.stringify(e.column)}`);
  if (e.rows !== undefined && Number.isInteger(e.rows)) parts.push(`${e.rows} row(s) affected`);
  return `data error: ${kind}${parts.length ? ` (${parts.join(", ")})` : ""}; the worker's log has the full message`;
}

/**
 * Free text safe for Redis: quoted parts ("...", '...', `...`) kept only when they equal a
 * string of the payload, DuckDB's context (from "Original Line" / "LINE n:" on) cut, length bounded.
 */
export function scrubText(text: string, known: ReadonlySet<string>, max = MAX_REDIS_MESSAGE): string {
  const cut = text.split(/Original Line|\bLINE \d+:|Candidate|Possible fixes/i)[0] ?? "";
  const kept = cut.replace(/"(?:[^"\\\n]|\\.)*"|'[^'\n]*'|`[^`\n]*`/g, (q) => (known.has(q.slice(1, -1)) ? q : `${q[0]}…${q[0]}`));
  return bounded(kept, max);
}

/** The message stored in Redis for an error of a job; `known`: payloadStrings of its payload. */
export function redisSafeMessage(e: unknown, known: ReadonlySet<string>): string {
  if (e instanceof PayloadError || e instanceof OutsideDataFolderError) return bounded(e.message);
  if (e instanceof DataError) return bounded(dataErrorSummary(e, known));
  const msg = e instanceof Error ? e.message : String(e);
  return scrubText(msg, known);
}
