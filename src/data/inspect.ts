/** Printable summaries of prepared datasets (for the `inspect` / `prepare` CLI commands). */
import { existsSync, statSync } from "node:fs";
import { join } from "node:path";
import type { SplitName } from "./types.ts";
import type { DatasetSpec } from "./spec.ts";
import { prepareDataset, type PrepareOptions } from "./prepare.ts";
import { SPLITS, type Manifest } from "./manifest.ts";
import { readManifestFile } from "./reader.ts";

export interface SplitSummary {
  split: SplitName;
  rows: number;
  users: number | null;
  items: number | null;
  labelRates: Record<string, number>;
}

export interface DatasetSummary {
  name: string;
  dir: string;
  hash: string;
  fields: { name: string; vocabSize: number; multi?: { maxLen: number; pooling: "mean" | "sum" } }[];
  /** Dense inputs with their train statistics. */
  dense: { name: string; log1p: boolean; mean: number; std: number }[];
  tasks: string[];
  thresholds: Record<string, number>;
  groupColumn: string;
  numGroups: number;
  droppedRows: number;
  splits: SplitSummary[];
  warnings: string[];
}

export function summarize(manifest: Manifest, dir = ""): DatasetSummary {
  return {
    name: manifest.name,
    dir,
    hash: manifest.hash,
    fields: manifest.fields.map((f) => ({ name: f.name, vocabSize: f.vocabSize, ...(f.multi ? { multi: { ...f.multi } } : {}) })),
    dense: (manifest.dense ?? []).map((d) => ({ ...d })),
    tasks: manifest.tasks.map((t) => t.name),
    thresholds: { ...manifest.thresholds },
    groupColumn: manifest.groupColumn,
    numGroups: manifest.numGroups,
    droppedRows: manifest.droppedRows,
    splits: SPLITS.map((s) => ({
      split: s,
      rows: manifest.rows[s],
      users: manifest.users ? manifest.users[s] : null,
      items: manifest.items ? manifest.items[s] : null,
      labelRates: { ...manifest.labelRates[s] },
    })),
    warnings: [...(manifest.warnings ?? [])],
  };
}

/**
 * Structured summary of a dataset: `target` is a prepared folder (with manifest.json), a built-in
 * name, a spec file or a spec object (prepared first, reusing the cache).
 */
export async function summarizeDataset(target: string | DatasetSpec, opts: PrepareOptions = {}): Promise<DatasetSummary> {
  if (typeof target === "string" && existsSync(target) && statSync(target).isDirectory() && existsSync(join(target, "manifest.json"))) {
    return summarize(readManifestFile(target), target);
  }
  const { dir, manifest } = await prepareDataset(target, opts);
  return summarize(manifest, dir);
}

/** Printable summary (see formatSummary) of a prepared folder, built-in name, spec file or spec object. */
export async function inspectDataset(target: string | DatasetSpec, opts: PrepareOptions = {}): Promise<string> {
  return formatSummary(await summarizeDataset(target, opts));
}

function pad(s: string, n: number, left = false): string {
  return left ? s.padStart(n) : s.padEnd(n);
}

/** Plain-text table: rows, users, items and label rates per split, plus fields and thresholds. */
export function formatSummary(summaryOrManifest: DatasetSummary | Manifest, dir = ""): string {
  const s = "splits" in summaryOrManifest ? summaryOrManifest : summarize(summaryOrManifest, dir);
  const lines: string[] = [];
  lines.push(`dataset ${s.name}${s.dir ? `  (${s.dir})` : ""}`);
  lines.push(`fields (${s.fields.length}): ${s.fields.map((f) => `${f.name}[${f.vocabSize}${f.multi ? `; up to ${f.multi.maxLen}, ${f.multi.pooling}` : ""}]`).join(" ")}`);
  if (s.dense?.length) lines.push(`dense inputs (${s.dense.length}): ${s.dense.map((d) => `${d.name}${d.log1p ? " (log1p)" : ""} mean ${d.mean.toPrecision(4)} std ${d.std.toPrecision(4)}`).join(", ")}`);
  const th = Object.entries(s.thresholds);
  if (th.length) lines.push(`thresholds (train): ${th.map(([k, v]) => `${k} > ${v}`).join(", ")}`);
  const groups = s.groupColumn ? `group column ${s.groupColumn}: ${s.numGroups} groups` : "no group column (GAUC over one group)";
  lines.push(`${groups}${s.droppedRows ? `; ${s.droppedRows} log rows outside every split dropped` : ""}`);
  const head = [pad("split", 6), pad("rows", 10, true), pad("users", 8, true), pad("items", 8, true), ...s.tasks.map((t) => pad(t, 8, true))];
  lines.push(head.join(" "));
  for (const sp of s.splits) {
    lines.push(
      [
        pad(sp.split, 6),
        pad(String(sp.rows), 10, true),
        pad(sp.users === null ? "-" : String(sp.users), 8, true),
        pad(sp.items === null ? "-" : String(sp.items), 8, true),
        ...s.tasks.map((t) => pad((sp.labelRates[t] ?? NaN).toFixed(4), 8, true)),
      ].join(" "),
    );
  }
  for (const w of s.warnings) lines.push(`warning: ${w}`);
  return lines.join("\n");
}
