#!/usr/bin/env node
/**
 * mtlcraft command line: prepare / inspect datasets, train one model, run the
 * comparison sweep (`bench`), rebuild a report, list methods.
 */
import { readFileSync } from "node:fs";
import { Command, Option, InvalidArgumentError } from "commander";
import cliProgress from "cli-progress";
import { METHODS, getMethod } from "./balance/registry.ts";
import { prepareDataset, inspectDataset, formatSummary } from "./data/index.ts";
import { runTraining, type TrainOptions } from "./train/run.ts";
import { ARCHITECTURES } from "./model/registry.ts";
import type { OptionValue, ParamValue } from "./sweep/plan.ts";
import { runSweep } from "./sweep/sweep.ts";
import { writeAcross } from "./report/across.ts";
import { TRAIN_OPTIONS, type TrainField } from "./config/train-options.ts";
import { parseValue } from "./config/schema.ts";
import { checkSeeds, parseGridValues, parseSet, readSweepFile, resolveSweepConfig, sweepDefault, type SweepFile } from "./config/sweep-config.ts";
import { mergeTrainValue, readTrainConfig } from "./config/train-config.ts";
import { checkOutput } from "./util/outpath.ts";
import { loadPlugins } from "./plugins.ts";
import { registerDeployCommands } from "./deploy/cli.ts";
import { registerEvaluateCommand } from "./deploy/evaluate-cli.ts";
import { describeSynth, SYNTH_MAX_NOISE, writeSynthDataset } from "./data/synth.ts";
import { readConflictConfig, runConflictBench } from "./sweep/conflict.ts";
import { parseShard, type Shard } from "./sweep/modes.ts";
import { DEFAULT_QUEUE_NAME, QUEUE_PASSWORD_ENV, QUEUE_URL_ENV, redactArgs } from "./sweep/queue-url.ts";

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

/** Repeatable option: collects every value in order. */
function collect(v: string, prev: string[] | undefined): string[] {
  return [...(prev ?? []), v];
}

const PLUGIN_HELP = "ES module adding methods / architectures (repeatable; see README, Use it as a library)";

/** The package's version (package.json sits one folder above src/cli.ts and dist/cli.js). */
function packageVersion(): string {
  return (JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version: string }).version;
}

function keyValue(v: string, prev: Record<string, string> | undefined): Record<string, string> {
  const i = v.indexOf("=");
  if (i <= 0) throw new InvalidArgumentError(`expected key=value, got "${v}"`);
  return { ...prev, [v.slice(0, i)]: v.slice(i + 1) };
}

/** Runs a schema check, turning its Error into commander's InvalidArgumentError. */
function cliCheck<T>(f: () => T): T {
  try {
    return f();
  } catch (e) {
    throw new InvalidArgumentError((e as Error).message);
  }
}

function fromSchema(field: TrainField, v: string, where: string): unknown {
  return cliCheck(() => parseValue(field, v, where));
}

// A reader that stops early (`mtlcraft methods | head`, `train ... | head`) closes stdout:
// that is not an error by itself. Nothing more goes to stdout, the command finishes its
// work (result files are written before anything is printed), and the exit status says
// whether the result was saved; train fails only when stdout was its sole output.
let stdoutClosed = false;
process.stdout.on("error", (e: NodeJS.ErrnoException) => {
  if (e.code === "EPIPE" || e.code === "ERR_STREAM_DESTROYED") {
    stdoutClosed = true;
    return;
  }
  throw e;
});

// A job run by `mtlcraft worker` has a pipe from the worker as stdin: when it closes (the
// worker died, even by SIGKILL), the job ends too. Unref'd: it never keeps the job alive.
if (process.env.MTLCRAFT_EXIT_WITH_PARENT === "1") {
  process.stdin.on("end", () => process.exit(129));
  process.stdin.on("error", () => process.exit(129));
  process.stdin.resume();
  (process.stdin as { unref?: () => void }).unref?.();
}

/** Waits until everything written to stdout has been handed over; false if the reader went away. */
function stdoutFlushed(): Promise<boolean> {
  if (stdoutClosed) return Promise.resolve(false);
  return new Promise((resolve) => process.stdout.write("", (err) => resolve(!err && !stdoutClosed)));
}

const program = new Command();
// A short hint, not the whole help: the error must stay the last thing printed (bench shows workers' last lines).
program
  .name("mtlcraft")
  .description("Multi-task recommendation training with gradient balancing")
  .version(packageVersion(), "-V, --version", "print the version")
  .showHelpAfterError("(add --help for usage)");

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
  .option("--plugin <module>", PLUGIN_HELP, collect, [])
  .action(async (o: { plugin: string[] }) => {
    await loadPlugins(o.plugin);
    for (const [name, e] of METHODS) {
      const d = Object.entries(e.defaults as Record<string, unknown>).map(([k, v]) => `${k}=${String(v)}`).join(" ");
      console.log(`${name.padEnd(12)} ${e.label.padEnd(12)} ${e.kind.padEnd(15)} ${d}\n${"".padEnd(13)}${e.summary}`);
    }
  });

program
  .command("models")
  .description("list architectures with their options")
  .option("--plugin <module>", PLUGIN_HELP, collect, [])
  .action(async (o: { plugin: string[] }) => {
    await loadPlugins(o.plugin);
    for (const [name, e] of ARCHITECTURES) {
      const d = Object.entries(e.defaults).map(([k, v]) => `${k}=${Array.isArray(v) ? v.join(",") : String(v)}`).join(" ");
      console.log(`${name.padEnd(14)}${e.summary}\n${"".padEnd(14)}${d}`);
    }
  });

const trainCmd = program.command("train").description("train one model with one balancing method and report test AUC/GAUC");
trainCmd.option("--plugin <module>", PLUGIN_HELP, collect, []);
trainCmd.option("--config <file>", "JSON file of these options, keyed by flag name (e.g. \"batch-size\": 1024); flags given here override it");
trainCmd.addHelpText(
  "after",
  "\n--config FILE: keys are the flags above without dashes (plus \"plugin\"), values JSON;\n" +
    "unknown keys are errors. Relative paths in the file (dataset, source, cache-dir,\n" +
    "out, checkpoint, plugin) are resolved against the file's folder. A flag typed on\n" +
    "the command line wins over the file, even at its default value; method-opt and\n" +
    "model-opt merge key by key. Schema: schemas/train-config.schema.json.",
);
/** Flags built from the train-option schema (src/config/train-options.ts): names, types, ranges and defaults live there. */
const trainFlags: { field: TrainField; attr: string }[] = [];
for (const f of TRAIN_OPTIONS) {
  if (!f.flag) continue;
  const opt = new Option(`--${f.flag} ${f.arg ?? "<value>"}`, f.description);
  if (f.type === "choice") opt.choices(f.choices!);
  else if (f.type === "map") opt.argParser(keyValue);
  else if (f.type !== "string") opt.argParser((v: string) => fromSchema(f, v, `--${f.flag}`));
  const def = f.key === "progress" ? (process.stderr.isTTY ? "bar" : "log") : f.default;
  if (def !== undefined && f.type !== "map") opt.default(def);
  // (--dataset is required, but may come from --config: checked in the action)
  trainCmd.addOption(opt);
  trainFlags.push({ field: f, attr: opt.attributeName() });
}
trainCmd.action(async (o: Record<string, unknown>, cmd: Command) => {
  const config = o.config ? readTrainConfig(o.config as string) : null;
  const opts: Record<string, unknown> = {};
  const methodOptions: Record<string, unknown> = {};
  for (const { field, attr } of trainFlags) {
    const v = mergeTrainValue(field.flag!, o[attr], cmd.getOptionValueSource(attr) === "cli", config);
    if (v === undefined) continue;
    if (field.methodOption) methodOptions[field.key] = v;
    else opts[field.key] = v;
  }
  if (opts.dataset === undefined) throw new Error("train: --dataset is required (on the command line or as \"dataset\" in --config)");
  opts.methodOptions = { ...(opts.methodOptions as Record<string, string>), ...methodOptions };
  await loadPlugins([...(config?.plugins ?? []), ...(o.plugin as string[])]);
  if (o.config) {
    // the config file is an input like the spec: no output of the run may replace it
    const cfgIn = [{ what: "--config", path: String(o.config) }];
    if (typeof opts.out === "string") {
      checkOutput("--out", opts.out, "file", cfgIn);
      checkOutput("the diagnostics of --out", `${opts.out.replace(/\.json$/, "")}.diag.jsonl`, "file", cfgIn);
    }
    if (typeof opts.checkpoint === "string") checkOutput("--checkpoint", opts.checkpoint, "checkpoint", cfgIn);
  }
  const res = await runTraining(opts as unknown as TrainOptions);
  // The result file is written (inside runTraining) before anything is printed, so a
  // closed stdout (`train ... | head`) can never lose a result that was saved.
  if (opts.progress !== "json") {
    console.log(`\n${res.methodLabel} on ${res.dataset} (${res.model}), seed ${res.seed}: best epoch ${res.bestEpoch + 1}, ${res.steps} steps, ${res.seconds.toFixed(1)} s`);
    console.log("| task | test AUC | test GAUC | logloss |\n|---|---:|---:|---:|");
    // an undefined metric (a one-class test split: see the warnings on stderr) reads n/a
    const f4 = (x: number | undefined) => (x !== undefined && Number.isFinite(x) ? x.toFixed(4) : "n/a");
    res.tasks.forEach((t, i) => console.log(`| ${t} | ${f4(res.test.auc[i])} | ${f4(res.test.gauc[i])} | ${f4(res.test.logloss[i])} |`));
    if (res.warnings?.length) console.log(`${res.warnings.length} warning${res.warnings.length === 1 ? "" : "s"} (printed above; kept in the result's "warnings")`);
    if (opts.out) console.log(`result: ${String(opts.out)}`);
  }
  if (!(await stdoutFlushed()) && !opts.out) {
    throw new Error("stdout was closed before the result was printed, and no --out file was given: the result is lost (use --out FILE)");
  }
});

function setOption(v: string, prev: Record<string, OptionValue>): Record<string, OptionValue> {
  const i = v.indexOf("=");
  if (i <= 0) throw new InvalidArgumentError(`--set expects key=value, got "${v}"`);
  const k = v.slice(0, i);
  return { ...prev, [k]: cliCheck(() => parseSet(k, v.slice(i + 1))) };
}

function gridOption(v: string, prev: Record<string, ParamValue[]>): Record<string, ParamValue[]> {
  const i = v.indexOf("=");
  if (i <= 0) throw new InvalidArgumentError(`--grid expects key=v1,v2,..., got "${v}"`);
  const k = v.slice(0, i);
  return { ...prev, [k]: cliCheck(() => parseGridValues(k, v.slice(i + 1))) };
}

program
  .command("bench")
  .description("the paper's comparison table: every method x seeds (+ Single and LR baselines), in parallel workers")
  .option("--config <file>", "JSON sweep config (command-line options override it)")
  .option("--dataset <name>", "dataset", sweepDefault<string>("dataset"))
  .option("--model <arch>", "architecture", sweepDefault<string>("model"))
  .option("--methods <list>", "comma list, `paper` (Table 1) or `all`", sweepDefault<string[]>("methods").join(","))
  .option("--seeds <n>", "number of seeds (1..n)", num("--seeds", { int: true, min: 1 }))
  .option("--jobs <n>", "parallel worker processes (default: core count)", num("--jobs", { int: true, min: 1 }))
  .option("--grid <k=v1,v2>", "grid over a train option, selected on validation (repeatable)", gridOption, {})
  .option("--set <k=v>", "train option for every job, e.g. epochs=3 (repeatable)", setOption, {})
  .option("--model-opt <k=v>", "architecture option for the multi-task model, e.g. expertUnits=128,64 (repeatable)", keyValue, {})
  .option("--out <dir>", "output folder", sweepDefault<string>("out"))
  .option("--plugin <module>", PLUGIN_HELP, collect, [])
  .option("--shard <i/n>", "run only the i-th of n deterministic partitions of the jobs (machines sharing --out)", (v: string) => cliCheck(() => parseShard(v)))
  .option("--report-only", "run nothing: the table and report from the results in --out (missing cells marked)", false)
  .option("--focus <method>", "the method the report draws strong beside EW (default: the best mean val AUC of its final runs)")
  .option("--across <dirs>", "with --report-only: a cross-dataset summary of these bench folders (comma list, one per dataset): mean ranks, Friedman/Nemenyi critical-difference diagram, each dataset's verdict; written to --out as summary.md/.csv/.html")
  .option("--queue [url]", `run the jobs on a Redis job queue served by \`mtlcraft worker\`: redis://HOST:PORT (without a URL: $${QUEUE_URL_ENV}; password also from $${QUEUE_PASSWORD_ENV})`)
  .option("--queue-name <name>", "queue name on that Redis", DEFAULT_QUEUE_NAME)
  .option("--attempts <n>", "queue: attempts per job when its train process fails", num("--attempts", { int: true, min: 1 }), 3)
  .option("--backoff-ms <ms>", "queue: wait before the first retry, doubled each time", num("--backoff-ms", { int: true, min: 0 }), 10_000)
  .action(async (o: Record<string, unknown>, cmd: Command) => {
    // Every key of the file, and of --set / --grid, is checked against the schemas
    // (src/config): unknown keys fail with a "did you mean", wrong types name the key.
    // Command-line values override the file's; resolveSweepConfig fills in the defaults
    // and loads the plugins (relative paths: from the current directory).
    const fromCli = (k: string) => cmd.getOptionValueSource(k) === "cli";
    if (o.across !== undefined) {
      if (!o.reportOnly) throw new Error("bench --across summarises finished bench folders: add --report-only");
      if (!fromCli("out")) throw new Error("bench --across: name the summary folder with --out");
      const dirs = String(o.across).split(",").map((d) => d.trim()).filter((d) => d !== "");
      const { markdown } = writeAcross(dirs, o.out as string);
      console.log(`\n${markdown}\n`);
      console.log(`summary: ${String(o.out)}/summary.md, summary.csv, summary.html`);
      return;
    }
    const file: SweepFile = o.config ? readSweepFile(o.config as string) : {};
    const merged: SweepFile = {
      ...file,
      ...(fromCli("dataset") ? { dataset: o.dataset as string } : {}),
      ...(fromCli("model") ? { model: o.model as string } : {}),
      ...(fromCli("methods") ? { methods: [o.methods as string] } : {}),
      ...(fromCli("out") ? { out: o.out as string } : {}),
      ...(o.seeds !== undefined ? { seeds: checkSeeds(o.seeds, "--seeds") } : {}),
      ...(o.jobs !== undefined ? { jobs: o.jobs as number } : {}),
      train: { ...(file.train ?? {}), ...(o.set as Record<string, OptionValue>) },
      grid: { ...(file.grid ?? {}), ...(o.grid as Record<string, ParamValue[]>) },
      modelOptions: { ...(file.modelOptions ?? {}), ...(o.modelOpt as Record<string, string>) },
      plugins: [...(file.plugins ?? []), ...(o.plugin as string[])],
    };
    const cfg = await resolveSweepConfig(merged, { where: o.config ? `--config ${String(o.config)}` : "bench" });
    const queueUrl = o.queue === true ? process.env[QUEUE_URL_ENV] : (o.queue as string | undefined);
    if (o.queue === true && !queueUrl) throw new Error(`bench --queue: no URL given and ${QUEUE_URL_ENV} is not set`);
    const password = process.env[QUEUE_PASSWORD_ENV];
    const res = await runSweep(cfg, {
      interactive: Boolean(process.stderr.isTTY),
      log: (m) => console.error(m),
      labelOf: (m) => getMethod(m).label,
      // the command line as shown in the report: any Redis password redacted
      command: redactArgs(process.argv.slice(2)).join(" "),
      ...(o.shard ? { shard: o.shard as Shard } : {}),
      ...(o.reportOnly ? { reportOnly: true } : {}),
      ...(o.focus !== undefined ? { focus: o.focus as string } : {}),
      ...(queueUrl
        ? { queue: { url: queueUrl, ...(password ? { password } : {}), name: o.queueName as string, attempts: o.attempts as number, backoffMs: o.backoffMs as number } }
        : {}),
    });
    // results.md / .csv / report.html are written (inside runSweep) before printing.
    console.log(`\n${res.markdown}\n`);
    console.log(`table: ${cfg.out}/results.md, ${cfg.out}/results.csv; report: ${res.htmlPath}`);
  });

program
  .command("worker")
  .description("run sweep jobs from a Redis job queue (bench --queue), each in its own process; any number of machines")
  .option("--queue [url]", `Redis URL, redis://HOST:PORT (default: $${QUEUE_URL_ENV}; password also from $${QUEUE_PASSWORD_ENV})`)
  .option("--queue-name <name>", "queue name on that Redis", DEFAULT_QUEUE_NAME)
  .option("--concurrency <n>", "jobs at once, each in its own process (default 1)", num("--concurrency", { int: true, min: 1 }), 1)
  .option("--cache-dir <dir>", "dataset cache", ".cache/datasets")
  .option("--data-dir <dir>", "folder with the dataset's input files; a queued spec reads nothing outside it (default: the current directory; the bench's folder when it lies inside)")
  .option("--work-dir <dir>", "running jobs' outputs and checkpoints", ".cache/worker")
  .option("--plugin <module>", PLUGIN_HELP, collect, [])
  .option("--lock-ms <ms>", "a job's lock: a worker silent this long is taken as dead", num("--lock-ms", { int: true, min: 100 }), 30_000)
  .option("--stall-check-ms <ms>", "how often to look for jobs of dead workers", num("--stall-check-ms", { int: true, min: 100 }), 30_000)
  .option("--max-stalls <n>", "times a job may lose its worker before it fails", num("--max-stalls", { int: true, min: 0 }), 2)
  .option("--job-timeout <s>", "a job running longer is ended and fails as timed out (retried like any failure, up to bench --attempts)", num("--job-timeout", { min: 1 }))
  .action(async (o: Record<string, unknown>) => {
    const url = typeof o.queue === "string" ? o.queue : process.env[QUEUE_URL_ENV];
    if (!url) throw new Error(`worker: give --queue redis://HOST:PORT (or set ${QUEUE_URL_ENV})`);
    const password = process.env[QUEUE_PASSWORD_ENV];
    // the jobs' processes never see the connection
    delete process.env[QUEUE_URL_ENV];
    delete process.env[QUEUE_PASSWORD_ENV];
    await loadPlugins(o.plugin as string[]);
    const { runQueueWorker } = await import("./sweep/modes.ts");
    await runQueueWorker({
      url,
      ...(password ? { password } : {}),
      name: o.queueName as string,
      concurrency: o.concurrency as number,
      cacheDir: o.cacheDir as string,
      ...(o.dataDir ? { dataDir: o.dataDir as string } : {}),
      workDir: o.workDir as string,
      plugins: o.plugin as string[],
      lockMs: o.lockMs as number,
      stalledMs: o.stallCheckMs as number,
      maxStalls: o.maxStalls as number,
      ...(o.jobTimeout !== undefined ? { jobTimeoutS: o.jobTimeout as number } : {}),
    });
    // runs until stopped (Ctrl-C / SIGTERM hand its running jobs back to the queue at once)
    await new Promise(() => {});
  });

program
  .command("status")
  .description("a queued sweep as Redis holds it (bench --queue): jobs by state, workers, time left; the bench need not be running")
  .option("--queue [url]", `Redis URL, redis://HOST:PORT (default: $${QUEUE_URL_ENV}; password also from $${QUEUE_PASSWORD_ENV})`)
  .option("--queue-name <name>", "queue name on that Redis", DEFAULT_QUEUE_NAME)
  .option("--json", "print one JSON object instead of text")
  .action(async (o: Record<string, unknown>) => {
    const url = typeof o.queue === "string" ? o.queue : process.env[QUEUE_URL_ENV];
    if (!url) throw new Error(`status: give --queue redis://HOST:PORT (or set ${QUEUE_URL_ENV})`);
    const password = process.env[QUEUE_PASSWORD_ENV];
    const { sweepStatus, formatStatus, statusWarning } = await import("./sweep/status.ts");
    const c = { url, ...(password ? { password } : {}), name: o.queueName as string };
    const warn = statusWarning(c);
    if (warn) console.error(warn);
    const s = await sweepStatus(c);
    console.log(o.json ? JSON.stringify(s, null, 2) : formatStatus(s));
  });

program
  .command("synth")
  .description("write a synthetic multi-task log with controlled task conflict (CSV + dataset spec; see README, Controlled conflict)")
  .requiredOption("--out <dir>", "folder for synth.csv, synth.json (the spec: use it as --dataset) and synth.meta.json")
  .requiredOption("--cosine <c>", "cosine between the tasks' weight vectors, in [-1, 1] (C < 0: tasks of different parity point apart)", num("--cosine", { min: -1, max: 1 }))
  .option("--seed <n>", "seed of everything random", num("--seed", { int: true, min: 0 }), 1)
  .option("--rows <n>", "rows", num("--rows", { int: true, min: 10 }))
  .option("--users <n>", "users", num("--users", { int: true, min: 1 }))
  .option("--items <n>", "items", num("--items", { int: true, min: 1 }))
  .option("--hidden <k>", "hidden feature dimensions (at least tasks + 1)", num("--hidden", { int: true, min: 2 }))
  .option("--rates <list>", "label rate per task, comma list (default 0.5,0.25,0.15,0.02,0.005,0.002)")
  .option("--signal <x>", "logit scale of the hidden score", num("--signal", { min: 0 }))
  .option("--noise <sigma>", "scale of an unobserved per-row label noise on the logits, in [0, 10] (default 0: none)", num("--noise", { min: 0, max: SYNTH_MAX_NOISE }))
  .option("--noise-cosine <rho>", "cosine between the tasks' label-noise terms, in [-1, 1] (default 0; rho < 0: tasks of different parity get opposite noise; needs --noise > 0)", num("--noise-cosine", { min: -1, max: 1 }))
  .action((o: { out: string; cosine: number; seed: number; rows?: number; users?: number; items?: number; hidden?: number; rates?: string; signal?: number; noise?: number; noiseCosine?: number }) => {
    const rates = o.rates?.split(",").map((x) => cliCheck(() => num("--rates")(x)));
    const f = writeSynthDataset(o.out, {
      cosine: o.cosine,
      seed: o.seed,
      ...(o.rows !== undefined ? { rows: o.rows } : {}),
      ...(o.users !== undefined ? { users: o.users } : {}),
      ...(o.items !== undefined ? { items: o.items } : {}),
      ...(o.hidden !== undefined ? { hidden: o.hidden } : {}),
      ...(rates ? { rates } : {}),
      ...(o.signal !== undefined ? { signal: o.signal } : {}),
      ...(o.noise !== undefined ? { noise: o.noise } : {}),
      ...(o.noiseCosine !== undefined ? { noiseCosine: o.noiseCosine } : {}),
    });
    console.log(describeSynth(f.data));
    console.log(`spec: ${f.spec} (train with --dataset ${f.spec}); log: ${f.csv}; generator details: ${f.meta}`);
  });

program
  .command("conflict")
  .description("the controlled-conflict benchmark: a bench sweep per cosine on synthetic tasks, AV-A against the cosine (table + plot)")
  .requiredOption("--config <file>", "conflict config (see configs/conflict.json)")
  .option("--out <dir>", "output folder (overrides the config's)")
  .option("--seeds <n>", "seeds per method and cosine (overrides the config's)", num("--seeds", { int: true, min: 1 }))
  .option("--jobs <n>", "parallel worker processes (overrides the config's)", num("--jobs", { int: true, min: 1 }))
  .action(async (o: { config: string; out?: string; seeds?: number; jobs?: number }) => {
    const cfg = readConflictConfig(o.config);
    if (o.out) cfg.out = o.out;
    if (o.seeds !== undefined || o.jobs !== undefined) {
      cfg.sweep = { ...(cfg.sweep ?? {}), ...(o.seeds !== undefined ? { seeds: checkSeeds(o.seeds, "--seeds") } : {}), ...(o.jobs !== undefined ? { jobs: o.jobs } : {}) };
    }
    const res = await runConflictBench(cfg, { interactive: Boolean(process.stderr.isTTY), command: process.argv.slice(2).join(" ") });
    console.log(`\n${res.markdown}`);
    console.log(`wall time ${res.seconds.toFixed(0)} s; table: ${cfg.out ?? "runs/conflict"}/conflict.md, conflict.csv; report: ${res.htmlPath}`);
  });

// export / score / fuse: from trained model to ranking (src/deploy)
registerDeployCommands(program);
// evaluate: a saved model on a labelled file (src/deploy/evaluate.ts)
registerEvaluateCommand(program);

program.parseAsync().catch((e: unknown) => {
  console.error(`mtlcraft: ${e instanceof Error ? e.message : String(e)}`);
  process.exit(1);
});
