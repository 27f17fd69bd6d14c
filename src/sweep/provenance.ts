/**
 * Provenance in sweeps (src/train/provenance.ts records it in every result): a table never
 * mixes mtlcraft versions or resolved configurations.
 *
 * - Each job's provenance (version, resolved configuration, its hash) is computed by the bench
 *   from the job's options and written into the job record beside its result
 *   (`<id>.job.json`); the queue job id includes the version and the configuration hash.
 * - `bench` (local, shard, queue and --report-only) refuses an output folder holding finished
 *   results of another version or another resolved configuration (a default that changed), or
 *   results that record none (written before provenance was recorded): the message lists what
 *   differs (`mtlcraft 0.1.0 → 0.2.0`, `l2: 1e-5 → 1e-4`) and which results, and says what to
 *   do (delete those results, listed one per line in `<runs>/provenance-conflicts.txt`, or
 *   write to another --out). Nothing is deleted without the user asking.
 * - On the queue, every version has its own queue (`<name>@<version>`): a worker of another
 *   version, including one from before this check existed, never sees the jobs, so it can
 *   neither run them nor fail them. A worker of the same version whose resolved configuration
 *   differs (other defaults in a patched checkout) refuses the sweep without consuming an
 *   attempt (queue.ts).
 */
import { join } from "node:path";
import { existsSync, readFileSync } from "node:fs";
import { provenanceDiff, provenanceOf, readProvenance, type Provenance } from "../train/provenance.ts";
import { trainFlag, type TrainOptions } from "../config/train-options.ts";
import { writeFileAtomic } from "../util/fsx.ts";
import type { Job, OptionValue } from "./plan.ts";

export { mtlcraftVersion, provenanceDiff, type Provenance } from "../train/provenance.ts";

/** Train options (library keys) from a job's `train` flags (`batch-size`, `method-opt`, `tau`, ...). */
export function jobTrainOptions(options: Record<string, OptionValue>): TrainOptions {
  const o: Record<string, unknown> = {};
  const methodOptions: Record<string, unknown> = {};
  const pairs = (v: OptionValue): Record<string, string> => {
    const out: Record<string, string> = {};
    for (const x of Array.isArray(v) ? v : [v]) {
      const s = String(x);
      const i = s.indexOf("=");
      if (i <= 0) throw new Error(`job option: expected key=value, got ${JSON.stringify(s.slice(0, 60))}`);
      out[s.slice(0, i)] = s.slice(i + 1);
    }
    return out;
  };
  for (const [flag, v] of Object.entries(options)) {
    const f = trainFlag(flag, "job options");
    if (f.methodOption) methodOptions[f.key] = v;
    else if (f.type === "map") o[f.key] = pairs(v);
    else o[f.key] = v;
  }
  // the CLI's order: --method-opt first, then the shortcut flags (--tau, --eps) on top
  o.methodOptions = { ...(o.methodOptions as Record<string, unknown> | undefined), ...methodOptions };
  return o as unknown as TrainOptions;
}

/** The provenance a job's result must have: this installation's version and the job's resolved configuration. */
export function jobProvenance(job: Pick<Job, "options">): Provenance {
  return provenanceOf(jobTrainOptions(job.options));
}

/** A bench refused an output folder with results of other versions / configurations. */
export class ProvenanceError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ProvenanceError";
  }
}

/** The name of the conflict list a refusal writes into the runs folder. */
export const CONFLICTS_FILE = "provenance-conflicts.txt";

/**
 * Throws a ProvenanceError when a finished result of `jobs` in `runsDir` was computed by
 * another mtlcraft version or under another resolved configuration than this bench would
 * use now, or records none. Results on other data are not looked at here (they are re-run,
 * see runner.ts staleReason). The message groups the results by what differs.
 */
export function checkRunsProvenance(jobs: readonly Job[], runsDir: string, datasetHash: string): void {
  const groups = new Map<string, string[]>();
  const files: string[] = [];
  for (const job of jobs) {
    const rp = join(runsDir, `${job.id}.json`);
    if (!existsSync(rp)) continue;
    let recorded: Provenance | null;
    try {
      const r = JSON.parse(readFileSync(rp, "utf8")) as { config?: { provenance?: unknown; datasetHash?: unknown } };
      if (r.config?.datasetHash !== datasetHash) continue; // other data: re-run anyway
      recorded = readProvenance(r.config?.provenance);
    } catch {
      continue; // unreadable: staleReason re-runs it
    }
    let why: string;
    if (!recorded) why = "no version or resolved configuration recorded (written by an mtlcraft before provenance was recorded)";
    else {
      const diff = provenanceDiff(recorded, jobProvenance(job));
      if (diff.length === 0) continue;
      why = diff.join("; ");
    }
    const ids = groups.get(why) ?? [];
    ids.push(job.id);
    groups.set(why, ids);
    files.push(rp);
  }
  if (files.length === 0) return;
  const list = join(runsDir, CONFLICTS_FILE);
  writeFileAtomic(list, files.join("\n") + "\n");
  const lines = [...groups].map(([why, ids]) => `  ${why} (${ids.length} result${ids.length === 1 ? "" : "s"}: ${ids.slice(0, 4).join(", ")}${ids.length > 4 ? `, ... ${ids.length - 4} more` : ""})`);
  throw new ProvenanceError(
    `${runsDir} holds ${files.length} finished result(s) from another mtlcraft version or resolved configuration (result → this bench); a table never mixes them:\n` +
      `${lines.join("\n")}\n` +
      `To re-run them here, delete those results (each <id>.json with its .job.json, .diag.jsonl and .model beside it; the result files are listed in ${list}), ` +
      `e.g. \`sed 's/\\.json$//' ${list} | while read -r p; do rm -rf "$p".json "$p".job.json "$p".diag.jsonl "$p".model; done\`, then run the bench again; ` +
      `or keep them and write this run to another --out.`,
  );
}

/** The queue a sweep's jobs go to: one per mtlcraft version (`mtlcraft@0.1.0`), so a worker of another version never sees them. */
export function versionedQueueName(name: string, version: string): string {
  return `${name}@${version}`;
}
