#!/usr/bin/env node
/**
 * mtlcraft command line: prepare / inspect datasets, train one model, run the
 * comparison sweep (`bench`), rebuild a report, list methods.
 */
import { Command, Option, InvalidArgumentError } from "commander";
import { readFileSync } from "node:fs";
import cliProgress from "cli-progress";
import { METHODS, getMethod, methodNames } from "./balance/registry.ts";
import { prepareDataset, inspectDataset, formatSummary } from "./data/index.ts";
import { runTraining, type TrainOptions } from "./train/run.ts";
import { ARCHITECTURES } from "./model/registry.ts";
import { expandMethods, type ParamValue, type SweepConfig } from "./sweep/plan.ts";
import { runSweep } from "./sweep/sweep.ts";

function num(name: string, opts: { int?: boolean; min?: number; max?: number } = {}) {
  return (v: string): number => {
    const n = Number(v);
    if (v.trim() === "" || !Number.isFinite(n)) throw new InvalidArgumentError(`${name} must be a number, got "${v}"`);
    if (opts.int && !Number.isInteger(n)) throw new InvalidArgumentError(`${name} must be an integer, got ${v}`);
    if (opts.min !== undefined && n < opts.min) throw new InvalidArgumentError(`${name} must be >= ${opts.min}, got ${v}`);
    if (opts.max !== undefined && n > opts.max) throw new InvalidArgumentError(`${name} must be <= ${opts.max}, got ${v}`);
    return n;
  };
}

function keyValue(v: string, prev: Record<string, string>): Record<string, string> {
  const i = v.indexOf("=");
  if (i <= 0) throw new InvalidArgumentError(`expected key=value, got "${v}"`);
  return { ...prev, [v.slice(0, i)]: v.slice(i + 1) };
}

// `mtlcraft methods | head` closes stdout early: that is not an error.
process.stdout.on("error", (e: NodeJS.ErrnoException) => {
  if (e.code === "EPIPE") process.exit(0);
  throw e;
});

const program = new Command();
program.name("mtlcraft").description("Multi-task recommendation training with gradient balancing").showHelpAfterError();

program
  .command("prepare")
  .description("encode a dataset (built-in name or spec file) into the cache")
  .argument("<dataset>", "kuairand, wechat (with --source DIR) or a spec .json")
  .option("--source <dir>", "directory with the raw files (wechat / overriding a spec's base dir)")
  .option("--cache-dir <dir>", "cache root", ".cache/datasets")
  .option("--force", "re-encode even when the cache is valid", false)
  .action(async (dataset: string, o: { source?: string; cacheDir: string; force: boolean }) => {
    const bar = process.stderr.isTTY ? new cliProgress.SingleBar({ format: " {bar} {percentage}% | {stage}" }, cliProgress.Presets.shades_grey) : null;
    let started = false;
    const res = await prepareDataset(dataset, {
      cacheDir: o.cacheDir,
      force: o.force,
      source: o.source,
      progress: (done: number, total: number, stage: string) => {
        if (!bar) return;
        if (!started) {
          bar.start(total, 0, { stage });
          started = true;
        }
        bar.setTotal(total);
        bar.update(done, { stage });
      },
      log: (m: string) => console.error(m),
    });
    bar?.stop();
    console.log(`prepared ${dataset} -> ${res.dir}`);
    console.log(formatSummary(res.manifest));
  });

program
  .command("inspect")
  .description("print rows, users, items and label rates per split")
  .argument("<dataset>", "kuairand, wechat (with --source DIR), a spec .json or a prepared cache dir")
  .option("--source <dir>", "directory with the raw files")
  .option("--cache-dir <dir>", "cache root", ".cache/datasets")
  .action(async (dataset: string, o: { source?: string; cacheDir: string }) => {
    console.log(await inspectDataset(dataset, { cacheDir: o.cacheDir, source: o.source }));
  });

program
  .command("methods")
  .description("list balancing methods with their defaults")
  .action(() => {
    for (const [name, e] of METHODS) {
      const d = Object.entries(e.defaults as Record<string, unknown>).map(([k, v]) => `${k}=${String(v)}`).join(" ");
      console.log(`${name.padEnd(12)} ${e.label.padEnd(12)} ${e.kind.padEnd(15)} ${d}\n${"".padEnd(13)}${e.summary}`);
    }
  });

program
  .command("train")
  .description("train one model with one balancing method and report test AUC/GAUC")
  .requiredOption("--dataset <name>", "kuairand, wechat or a spec .json")
  .option("--source <dir>", "raw files directory (wechat)")
  .option("--cache-dir <dir>", "dataset cache root", ".cache/datasets")
  .addOption(new Option("--model <arch>", "architecture").default("ple"))
  .option("--method <name>", "balancing method (see `mtlcraft methods`)", "gradcraft")
  .option("--seed <n>", "random seed", num("--seed", { int: true, min: 0 }), 1)
  .option("--epochs <n>", "maximum epochs", num("--epochs", { int: true, min: 1 }), 10)
  .option("--max-steps <n>", "stop after N steps (0 = no limit)", num("--max-steps", { int: true, min: 0 }), 0)
  .option("--batch-size <n>", "training batch size", num("--batch-size", { int: true, min: 1 }), 4096)
  .option("--lr <x>", "Adam learning rate", num("--lr", { min: 0 }), 5e-4)
  .option("--l2 <x>", "L2 on weights and on embedding rows used", num("--l2", { min: 0 }), 1e-5)
  .option("--emb-dim <n>", "embedding size", num("--emb-dim", { int: true, min: 1 }), 16)
  .option("--dropout <x>", "dropout rate (train mode only)", num("--dropout", { min: 0, max: 0.95 }), 0.2)
  .addOption(new Option("--scope <scope>", "parameters the method balances").choices(["shared", "shared-dense", "all"]).default("shared"))
  .option("--tau <x>", "magnitude alignment strength (gradcraft, pcgrad-plus)", num("--tau", { min: 0, max: 1 }))
  .option("--eps <x>", "GradCraft epsilon", num("--eps", { min: 0 }))
  .option("--method-opt <k=v>", "other method option (repeatable)", keyValue, {})
  .option("--model-opt <k=v>", "architecture option, e.g. levels=2 (repeatable)", keyValue, {})
  .option("--eval-every <n>", "validate every N steps (0 = every epoch)", num("--eval-every", { int: true, min: 0 }), 0)
  .option("--eval-batch-size <n>", "evaluation batch size", num("--eval-batch-size", { int: true, min: 1 }), 8192)
  .option("--patience <n>", "early stopping patience in evaluations (0 = off)", num("--patience", { int: true, min: 0 }), 2)
  .option("--min-delta <x>", "minimum mean validation AUC improvement", num("--min-delta", { min: 0 }), 1e-4)
  .option("--diag-every <n>", "record balancing diagnostics every N steps", num("--diag-every", { int: true, min: 1 }), 1)
  .option("--out <file>", "result JSON (diagnostics go beside it as .diag.jsonl)")
  .option("--checkpoint <dir>", "checkpoint directory; an existing checkpoint there is resumed")
  .option("--checkpoint-every <n>", "also checkpoint every N steps", num("--checkpoint-every", { int: true, min: 0 }), 0)
  .addOption(new Option("--progress <mode>", "progress display").choices(["bar", "json", "none"]).default(process.stderr.isTTY ? "bar" : "none"))
  .action(async (o: Record<string, unknown>) => {
    const methodOptions: Record<string, unknown> = { ...(o.methodOpt as Record<string, string>) };
    if (o.tau !== undefined) methodOptions.tau = o.tau;
    if (o.eps !== undefined) methodOptions.eps = o.eps;
    const opts: TrainOptions = {
      dataset: o.dataset as string,
      source: o.source as string | undefined,
      cacheDir: o.cacheDir as string,
      model: o.model as string,
      modelOptions: o.modelOpt as Record<string, string>,
      method: o.method as string,
      methodOptions,
      seed: o.seed as number,
      epochs: o.epochs as number,
      maxSteps: o.maxSteps as number,
      batchSize: o.batchSize as number,
      lr: o.lr as number,
      l2: o.l2 as number,
      embDim: o.embDim as number,
      dropout: o.dropout as number,
      scope: o.scope as TrainOptions["scope"],
      evalEvery: o.evalEvery as number,
      evalBatchSize: o.evalBatchSize as number,
      patience: o.patience as number,
      minDelta: o.minDelta as number,
      diagEvery: o.diagEvery as number,
      out: o.out as string | undefined,
      checkpoint: o.checkpoint as string | undefined,
      checkpointEvery: o.checkpointEvery as number,
      progress: o.progress as TrainOptions["progress"],
    };
    const res = await runTraining(opts);
    if (opts.progress !== "json") {
      console.log(`\n${res.methodLabel} on ${res.dataset} (${res.model}), seed ${res.seed}: best epoch ${res.bestEpoch + 1}, ${res.steps} steps, ${res.seconds.toFixed(1)} s`);
      console.log("| task | test AUC | test GAUC | logloss |\n|---|---:|---:|---:|");
      res.tasks.forEach((t, i) =>
        console.log(`| ${t} | ${res.test.auc[i]!.toFixed(4)} | ${res.test.gauc[i]!.toFixed(4)} | ${res.test.logloss[i]!.toFixed(4)} |`),
      );
      if (opts.out) console.log(`result: ${opts.out}`);
    }
  });

function parseGrid(v: string, prev: Record<string, ParamValue[]>): Record<string, ParamValue[]> {
  const i = v.indexOf("=");
  if (i <= 0) throw new InvalidArgumentError(`--grid expects key=v1,v2,..., got "${v}"`);
  const vals = v.slice(i + 1).split(",").map((s) => (s.trim() !== "" && Number.isFinite(Number(s)) ? Number(s) : s.trim()));
  return { ...prev, [v.slice(0, i)]: vals };
}

program
  .command("bench")
  .description("the paper's comparison table: every method x seeds (+ Single and LR baselines), in parallel workers")
  .option("--config <file>", "JSON sweep config (command-line options override it)")
  .option("--dataset <name>", "dataset", "kuairand")
  .option("--model <arch>", "architecture", "ple")
  .option("--methods <list>", "comma list, `paper` (Table 1) or `all`", "paper")
  .option("--seeds <n>", "number of seeds (1..n)", num("--seeds", { int: true, min: 1 }))
  .option("--jobs <n>", "parallel worker processes (default: core count)", num("--jobs", { int: true, min: 1 }))
  .option("--grid <k=v1,v2>", "grid over a train option, selected on validation (repeatable)", parseGrid, {})
  .option("--set <k=v>", "train option for every job, e.g. epochs=3 (repeatable)", keyValue, {})
  .option("--model-opt <k=v>", "architecture option for the multi-task model, e.g. expertUnits=128,64 (repeatable)", keyValue, {})
  .option("--out <dir>", "output folder", "runs/bench")
  .action(async (o: Record<string, unknown>, cmd: Command) => {
    const fromFile = o.config ? (JSON.parse(readFileSync(o.config as string, "utf8")) as Partial<SweepConfig> & { seeds?: number | number[] }) : {};
    const src = (k: string) => cmd.getOptionValueSource(k);
    const pick = <T>(k: string, fileVal: T | undefined, cliVal: T): T => (src(k) === "cli" || fileVal === undefined ? cliVal : fileVal);
    const seedsFile = typeof fromFile.seeds === "number" ? Array.from({ length: fromFile.seeds }, (_, i) => i + 1) : fromFile.seeds;
    const seeds = o.seeds !== undefined ? Array.from({ length: o.seeds as number }, (_, i) => i + 1) : (seedsFile ?? [1, 2, 3]);
    const methodsSpec = pick("methods", fromFile.methods, [o.methods as string]);
    const train: Record<string, ParamValue> = { ...(fromFile.train ?? {}) };
    for (const [k, v] of Object.entries(o.set as Record<string, string>)) train[k] = Number.isFinite(Number(v)) && v.trim() !== "" ? Number(v) : v;
    const cfg: SweepConfig = {
      dataset: pick("dataset", fromFile.dataset, o.dataset as string),
      model: pick("model", fromFile.model, o.model as string),
      methods: expandMethods(methodsSpec, methodNames()),
      seeds,
      train,
      grid: { ...(fromFile.grid ?? {}), ...(o.grid as Record<string, ParamValue[]>) },
      gridMethods: fromFile.gridMethods ?? { tau: ["gradcraft", "pcgrad-plus"], eps: ["gradcraft"] },
      modelOptions: { ...(fromFile.modelOptions ?? {}), ...(o.modelOpt as Record<string, string>) },
      // A linear model needs a larger step than the deep models (documented in the README).
      overrides: fromFile.overrides ?? { lr: { lr: 0.01 } },
      jobs: (o.jobs as number | undefined) ?? fromFile.jobs ?? (await import("node:os")).availableParallelism(),
      out: pick("out", fromFile.out, o.out as string),
    };
    if (!ARCHITECTURES.has(cfg.model)) throw new Error(`--model: unknown architecture "${cfg.model}"; choose one of ${[...ARCHITECTURES.keys()].join(", ")}`);
    const res = await runSweep(cfg, {
      interactive: Boolean(process.stderr.isTTY),
      log: (m) => console.error(m),
      labelOf: (m) => getMethod(m).label,
      command: process.argv.slice(2).join(" "),
    });
    console.log(`\n${res.markdown}\n`);
    console.log(`table: ${cfg.out}/results.md, ${cfg.out}/results.csv; report: ${res.htmlPath}`);
  });

program.parseAsync().catch((e: unknown) => {
  console.error(`mtlcraft: ${e instanceof Error ? e.message : String(e)}`);
  process.exit(1);
});
