/**
 * `bench`: the paper's comparison table for any dataset. Plans the jobs, runs the
 * grid selection (validation only) and the final seeds in parallel workers, then
 * writes results.md, results.csv, report.html and sweep.json into the output folder.
 */
import { join, resolve } from "node:path";
import { hostname, cpus } from "node:os";
import type { RunResult } from "../report/types.ts";
import { buildComparisonTable, toCsv, toHtmlTable, toMarkdown, type MethodSummary } from "../report/table.ts";
import { renderReport } from "../report/html.ts";
import { checkWritable, writeFileAtomic } from "../util/fsx.ts";
import { meanFinite } from "../train/evaluate.ts";
import { finalJobs, selectionJobs, type Job, type ParamValue, type SweepConfig } from "./plan.ts";
import { runJobs } from "./runner.ts";
import { prepareDataset } from "../data/index.ts";
import { getMethod } from "../balance/registry.ts";
import { loadPlugins } from "../plugins.ts";

export interface SweepOutput {
  markdown: string;
  csv: string;
  htmlPath: string;
  chosen: Record<string, Record<string, ParamValue>>;
  results: RunResult[];
}

const LABELS: Record<string, string> = { single: "Single", lr: "LR" };

export function summarise(results: RunResult[], jobs: Job[], labelOf: (m: string) => string): MethodSummary[] {
  const byMethod = new Map<string, RunResult[]>();
  jobs.forEach((j, i) => {
    const r = results[i]!;
    const list = byMethod.get(j.method) ?? [];
    list.push(r);
    byMethod.set(j.method, list);
  });
  const out: MethodSummary[] = [];
  for (const [method, runs] of byMethod) {
    const tasks = runs[0]!.tasks;
    out.push({
      method,
      label: LABELS[method] ?? labelOf(method),
      perTask: tasks.map((task, t) => ({
        task,
        auc: runs.map((r) => r.test.auc[t] ?? NaN),
        gauc: runs.map((r) => r.test.gauc[t] ?? NaN),
      })),
    });
  }
  return out;
}

/**
 * Runs a sweep (see resolveSweepConfig for a complete config with bench's defaults).
 * Options: `interactive` progress bars (default off), `log` (default: stderr), `labelOf`
 * (a method's column label; default: its registry label), `command` (shown in the report).
 */
export async function runSweep(
  cfg: SweepConfig,
  options: { interactive?: boolean; log?: (m: string) => void; labelOf?: (m: string) => string; command?: string } = {},
): Promise<SweepOutput> {
  const opts = {
    interactive: options.interactive ?? false,
    log: options.log ?? ((m: string) => console.error(m)),
    labelOf: options.labelOf ?? ((m: string) => getMethod(m).label),
    command: options.command ?? "runSweep",
  };
  // Methods / architectures of plugins: registered here too (for the labels), and handed to every worker.
  await loadPlugins(cfg.plugins ?? []);
  const out = resolve(cfg.out);
  const runsDir = join(out, "runs");
  // fail at once, before preparing data or starting workers, when the output cannot be written
  checkWritable(out, "dir", "bench --out");
  checkWritable(runsDir, "dir", "bench --out");
  const t0 = Date.now();
  // Encode the dataset once here, so the parallel workers all find it cached.
  // (with the workers' cache dir and source, so its content hash is the one they train on)
  const str = (v: unknown) => (typeof v === "string" ? v : undefined);
  const prep = await prepareDataset(cfg.dataset, { cacheDir: str(cfg.train["cache-dir"]), source: str(cfg.train.source), log: opts.log });
  opts.log(`dataset ${cfg.dataset}: ${prep.manifest.rows ? JSON.stringify(prep.manifest.rows) : prep.dir}`);
  const sel = selectionJobs(cfg);
  const chosen: Record<string, Record<string, ParamValue>> = {};
  if (sel.length) {
    opts.log(`grid selection: ${sel.length} jobs (seed ${cfg.seeds[0]}, chosen by mean validation AUC)`);
    const res = await runJobs(sel, { runsDir, jobs: cfg.jobs, interactive: opts.interactive, log: opts.log, datasetHash: prep.manifest.hash, plugins: cfg.plugins ?? [] });
    const best = new Map<string, { score: number; point: Record<string, ParamValue> }>();
    sel.forEach((j, i) => {
      const score = meanFinite(res[i]!.val.auc);
      const b = best.get(j.method);
      if (!b || score > b.score) best.set(j.method, { score, point: j.point });
    });
    for (const [m, b] of best) {
      chosen[m] = b.point;
      opts.log(`  ${m}: ${JSON.stringify(b.point)} (val mean AUC ${b.score.toFixed(4)})`);
    }
  }
  const fin = finalJobs(cfg, chosen);
  opts.log(`final runs: ${fin.length} jobs (${cfg.methods.length} methods x ${cfg.seeds.length} seeds), ${cfg.jobs} in parallel`);
  const results = await runJobs(fin, { runsDir, jobs: cfg.jobs, interactive: opts.interactive, log: opts.log, datasetHash: prep.manifest.hash, plugins: cfg.plugins ?? [] });
  const summaries = summarise(results, fin, opts.labelOf);
  const baseline = cfg.methods.includes("single") ? "single" : cfg.methods[0]!;
  const table = buildComparisonTable(summaries, { baseline });
  const markdown = toMarkdown(table);
  const csv = toCsv(table);
  const meta: Record<string, string> = {
    command: opts.command,
    dataset: cfg.dataset,
    model: cfg.model,
    seeds: cfg.seeds.join(", "),
    "selected options": Object.keys(chosen).length ? JSON.stringify(chosen) : "none (no grid)",
    machine: `${hostname()} · ${cpus().length} cores · node ${process.version}`,
    "finished at": new Date().toISOString(),
    "wall time": `${((Date.now() - t0) / 1000).toFixed(0)} s`,
  };
  const html = renderReport({ title: `mtlcraft: ${cfg.model} on ${cfg.dataset}`, runs: results, tableHtml: toHtmlTable(table), meta });
  writeFileAtomic(join(out, "results.md"), markdown + "\n");
  writeFileAtomic(join(out, "results.csv"), csv);
  const htmlPath = join(out, "report.html");
  writeFileAtomic(htmlPath, html);
  writeFileAtomic(join(out, "sweep.json"), JSON.stringify({ config: cfg, chosen, jobs: fin.map((j) => j.id), meta }, null, 2));
  return { markdown, csv, htmlPath, chosen, results };
}
