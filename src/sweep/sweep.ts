/**
 * `bench`: the paper's comparison table for any dataset. Plans the jobs, runs the
 * grid selection (validation only) and the final seeds in parallel workers, then
 * writes results.md, results.csv, report.html, quality.json, selection.csv (with a grid) and sweep.json
 * into the output folder (results.md and report.html end with the quality bar, src/report/quality.ts,
 * and the grid selection, src/report/selection.ts).
 */
import { join, resolve } from "node:path";
import { hostname, cpus } from "node:os";
import type { RunResult } from "../report/types.ts";
import { buildVerdict, methodCosts, verdictToHtml, verdictToMarkdown } from "../report/verdict.ts";
import { buildComparisonTable, differencesToCsv, toCsv, toMarkdown, type MethodSummary } from "../report/table.ts";
import { didYouMean } from "../util/suggest.ts";
import { renderReport } from "../report/html.ts";
import { buildQualityBar, qualityToHtml, qualityToJson, qualityToMarkdown, type QualityBar } from "../report/quality.ts";
import { buildSelection, warnText, stillImproving, STILL_IMPROVING_WARNING, selectionToCsv, selectionToHtml, selectionToMarkdown, type MethodSelection, type SelectionPoint } from "../report/selection.ts";
import { resultPath } from "./runner.ts";
import { checkWritable, writeFileAtomic } from "../util/fsx.ts";
import { checkOutput } from "../util/outpath.ts";
import { meanFinite } from "../train/evaluate.ts";
import { finalJobs, selectionJobs, type Job, type ParamValue, type SweepConfig } from "./plan.ts";
import { checkMode, runPhase, sweepDataset, withMissing, type SweepMode } from "./modes.ts";
import { getMethod } from "../balance/registry.ts";
import { loadPlugins } from "../plugins.ts";

export interface SweepOutput {
  markdown: string;
  csv: string;
  htmlPath: string;
  chosen: Record<string, Record<string, ParamValue>>;
  /** The results present (all of them, unless a shard or --report-only found some missing). */
  results: RunResult[];
  /** Ids of the planned jobs without a result (other shards' jobs, or not run yet). */
  missing: string[];
  /** The quality bar written to results.md, report.html and quality.json. */
  quality: QualityBar;
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
      seeds: runs.map((r) => r.seed),
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
 * The runs' warnings (a task whose metric is undefined on a split: src/metrics/defined.ts; a run
 * still improving at its last epoch: stillImproving in src/report/selection.ts), one line per
 * distinct warning naming the runs that gave it (up to 4, else how many of them): every run of a
 * sweep usually shares its test split's warnings, and 50 copies of one line help nobody.
 */
export function runWarnings(results: readonly RunResult[], jobs: readonly Pick<Job, "id">[]): string[] {
  const byText = new Map<string, string[]>();
  results.forEach((r, i) => {
    // stored warnings, and the budget flag of every run (derived, so results written before it are covered too)
    for (const w of [...(r.warnings ?? []), ...(stillImproving(r) ? [STILL_IMPROVING_WARNING] : [])]) {
      const ids = byText.get(w) ?? [];
      ids.push(jobs[i]?.id ?? `#${i + 1}`);
      byText.set(w, ids);
    }
  });
  return [...byText].map(([w, ids]) => `warning: ${w} (${ids.length === results.length && ids.length > 1 ? `all ${ids.length} runs` : ids.length <= 4 ? ids.join(", ") : `${ids.length} of ${results.length} runs`})`);
}

/**
 * Runs a sweep (see resolveSweepConfig for a complete config with bench's defaults).
 * Options: `interactive` progress bars (default off), `log` (default: stderr), `labelOf`
 * (a method's column label; default: its registry label), `command` (shown in the report).
 */
export async function runSweep(
  cfg: SweepConfig,
  options: { interactive?: boolean; log?: (m: string) => void; labelOf?: (m: string) => string; command?: string; focus?: string } & SweepMode = {},
): Promise<SweepOutput> {
  const mode: SweepMode = { ...(options.shard ? { shard: options.shard } : {}), ...(options.reportOnly ? { reportOnly: true } : {}), ...(options.queue ? { queue: options.queue } : {}) };
  checkMode(mode);
  if (options.focus !== undefined && !cfg.methods.includes(options.focus)) {
    throw new Error(`--focus ${options.focus}: not one of this bench's methods (${cfg.methods.join(", ")})${didYouMean(options.focus, cfg.methods)}`);
  }
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
  checkOutput("bench --out", out, "folder"); // never into an export, checkpoint, artefact or prepared dataset, nor over a file
  checkWritable(out, "dir", "bench --out");
  checkWritable(runsDir, "dir", "bench --out");
  const t0 = Date.now();
  // Encode the dataset once here, so the parallel workers all find it cached (queue and
  // --report-only: its content hash only), with the workers' cache dir and source.
  const data = await sweepDataset(cfg, mode, opts.log);
  const phase = { runsDir, hash: data.hash, ...(data.payload ? { payload: data.payload } : {}), interactive: opts.interactive, log: opts.log };
  const sel = selectionJobs(cfg);
  const chosen: Record<string, Record<string, ParamValue>> = {};
  const incomplete = new Set<string>(); // methods whose grid selection lacks results (--report-only)
  let selection: MethodSelection[] = [];
  if (sel.length) {
    opts.log(`grid selection: ${sel.length} jobs (seed ${cfg.seeds[0]}, chosen by mean validation AUC)`);
    const res = await runPhase(sel, cfg, mode, phase);
    for (const j of sel.filter((_, i) => !res[i])) incomplete.add(j.method);
    if (incomplete.size && mode.shard) {
      throw new Error(
        `grid selection is not complete: ${res.filter((r) => !r).length} of ${sel.length} selection results are missing (other shards' jobs) for ${[...incomplete].join(", ")}; ` +
          `run this shard again once the other shards have finished their selection jobs (finished jobs are not run again)`,
      );
    }
    for (const m of incomplete) opts.log(`  ${m}: grid selection incomplete; its column is missing`);
    const points: SelectionPoint[] = [];
    sel.forEach((j, i) => {
      const r = res[i];
      if (incomplete.has(j.method) || !r) return;
      points.push({ method: j.method, label: LABELS[j.method] ?? opts.labelOf(j.method), point: j.point, valAuc: meanFinite(r.val.auc), bestEpoch: r.bestEpoch, epochsRun: r.epochsRun });
    });
    selection = buildSelection(points);
    for (const m of selection) {
      chosen[m.method] = m.chosen.point;
      const warn = m.edges.length > 0 || m.atLastEpoch ? `; check: ${warnText(m)}` : "";
      opts.log(`  ${m.method}: ${JSON.stringify(m.chosen.point)} (val mean AUC ${m.chosen.valAuc.toFixed(4)}${warn})`);
    }
  }
  const fin = finalJobs(cfg, chosen);
  opts.log(`final runs: ${fin.length} jobs (${cfg.methods.length} methods x ${cfg.seeds.length} seeds), ${mode.queue ? "through the queue" : mode.reportOnly ? "results collected" : `${cfg.jobs} in parallel`}`);
  const got = await runPhase(fin, cfg, mode, phase);
  // a method whose grid selection is incomplete (--report-only) has no final jobs yet
  const have = fin.map((j, i) => (incomplete.has(j.method) ? null : got[i] ?? null));
  const present = fin.filter((_, i) => have[i]);
  const results = have.filter((r): r is RunResult => r !== null);
  const missing = fin.filter((_, i) => !have[i]).map((j) => j.id);
  if (results.length === 0) throw new Error(`bench: no results yet in ${runsDir} (${fin.length} jobs planned)`);
  if (missing.length) opts.log(`${missing.length} of ${fin.length} jobs have no result yet: their cells are marked missing`);
  for (const line of runWarnings(results, present)) opts.log(line);
  const summaries = summarise(results, present, opts.labelOf);
  const planned = cfg.methods.includes("single") ? "single" : cfg.methods[0]!;
  // the table's own baseline must have results; the RI rows are missing without the planned one
  const baseline = summaries.some((x) => x.method === planned) ? planned : summaries[0]!.method;
  // Paired differences (95 % t-intervals over seeds) against Single and EW when they ran.
  const built = buildComparisonTable(summaries, { baseline, differences: ["single", "ew"] });
  const table = missing.length
    ? withMissing(
        built,
        cfg.methods.map((m) => ({ method: m, label: LABELS[m] ?? opts.labelOf(m), runs: cfg.seeds.length, present: present.filter((j) => j.method === m).length })),
        planned,
      )
    : built;
  const markdown = toMarkdown(table);
  // The quality bar (against LR, GradCraft's rank, diagnostics when it does not lead), from the final results present.
  const quality = buildQualityBar(summaries, {
    diagFiles: (m) => present.filter((j) => j.method === m).map((j) => resultPath(runsDir, j).replace(/\.json$/, ".diag.jsonl")),
    missing: missing.length,
  });
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
    ...(missing.length ? { results: `${results.length} of ${fin.length} jobs (missing: ${missing.join(", ")})` } : {}),
  };
  const verdict = buildVerdict(built, { costs: methodCosts(results) });
  const html = renderReport({
    title: `mtlcraft: ${cfg.model} on ${cfg.dataset}`,
    runs: results,
    verdictHtml: verdictToHtml(verdict),
    comparison: table,
    meta,
    differences: table.differences,
    qualityHtml: qualityToHtml(quality),
    selectionHtml: selectionToHtml(selection),
    ...(options.focus !== undefined && results.some((r) => r.method === options.focus) ? { focus: options.focus } : {}),
  });
  const selectionMd = selectionToMarkdown(selection);
  writeFileAtomic(join(out, "results.md"), verdictToMarkdown(verdict) + "\n" + markdown + "\n" + qualityToMarkdown(quality) + (selectionMd ? "\n" + selectionMd : ""));
  if (selection.length) writeFileAtomic(join(out, "selection.csv"), selectionToCsv(selection));
  writeFileAtomic(join(out, "results.csv"), csv);
  writeFileAtomic(join(out, "differences.csv"), differencesToCsv(table));
  const htmlPath = join(out, "report.html");
  writeFileAtomic(htmlPath, html);
  writeFileAtomic(join(out, "quality.json"), qualityToJson(quality));
  writeFileAtomic(join(out, "verdict.json"), JSON.stringify({ dataset: cfg.dataset, model: cfg.model, ...verdict }, null, 2) + "\n");
  writeFileAtomic(join(out, "sweep.json"), JSON.stringify({ config: cfg, chosen, jobs: fin.map((j) => j.id), meta }, null, 2));
  return { markdown, csv, htmlPath, chosen, results, missing, quality };
}
