/** Shared helpers for the data-layer tests. */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after } from "node:test";
import { DuckDBInstance } from "@duckdb/node-api";

/** Real data beside the repo (CI clones the repo next to shared/). */
export const SHARED = "../shared/data";

/** A temporary folder removed after the test file. */
export function tempDir(prefix: string): string {
  const d = mkdtempSync(join(tmpdir(), `mtlcraft-${prefix}-`));
  after(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

export function readI32(path: string): Int32Array {
  const b = readFileSync(path);
  return new Int32Array(b.buffer, b.byteOffset, b.byteLength / 4);
}

export function readU8(path: string): Uint8Array {
  return new Uint8Array(readFileSync(path));
}

/** Runs one query on a fresh in-memory DuckDB and returns plain JS rows (independent checks). */
export async function query(sql: string): Promise<Record<string, unknown>[]> {
  const inst = await DuckDBInstance.create(":memory:");
  const conn = await inst.connect();
  try {
    return (await conn.runAndReadAll(sql)).getRowObjectsJS() as Record<string, unknown>[];
  } finally {
    conn.closeSync();
    inst.closeSync();
  }
}

export function n(x: unknown): number {
  return typeof x === "bigint" ? Number(x) : Number(x);
}
