/** The `export`, `score` and `fuse` commands of the CLI (registered by src/cli.ts). */
import { InvalidArgumentError, type Command } from "commander";
import cliProgress from "cli-progress";
import { exportModel } from "./export.ts";
import { fuseModel } from "./fuse.ts";
import { describeFusion } from "./fusion.ts";
import { loadModel } from "./model.ts";
import { scoreFile } from "./score.ts";
import { checkMemoryLimit } from "../data/duckdb.ts";

function int(name: string, min: number) {
  return (v: string): number => {
    const n = Number(v);
    if (v.trim() === "" || !Number.isInteger(n) || n < min) throw new InvalidArgumentError(`${name} must be an integer >= ${min}, got "${v}"`);
    return n;
  };
}

function collect(v: string, prev: string[] | undefined): string[] {
  return [...(prev ?? []), v];
}

/** 4 decimals; "n/a" for an undefined metric (a task with one class on the split: NaN, or null from a result file). */
const f4 = (x: number | null | undefined): string => (typeof x === "number" && Number.isFinite(x) ? x.toFixed(4) : "n/a");

export function registerDeployCommands(program: Command): void {
  program
    .command("export")
    .description("write a trained model as ONNX (model.onnx), its feature encoding (features.json) and a model card")
    .argument("<source>", "a train/bench result .json (its .model folder beside it), a .model folder or a training --checkpoint folder")
    .requiredOption("--out <dir>", "output folder (missing, empty or an earlier export; replaced atomically)")
    .option("--cache-dir <dir>", "dataset cache root holding the prepared dataset (default: the run's, then .cache/datasets)")
    .option("--plugin <module>", "ES module adding architectures (repeatable)", collect, [])
    .action(async (source: string, o: { out: string; cacheDir?: string; plugin: string[] }) => {
      const r = await exportModel({ source, out: o.out, ...(o.cacheDir ? { cacheDir: o.cacheDir } : {}), plugins: o.plugin, log: (m) => console.error(m) });
      const tasks = r.tasks;
      console.log(`exported to ${r.dir}: model.onnx (inputs ${r.inputs.join(", ")}; outputs ${r.outputs.join(", ")}), features.json, README.md`);
      console.log(`model.onnx vs the trainer on the test split: max |Δp| ${r.maxDiff.toExponential(2)}`);
      console.log("| task | test AUC | test GAUC | logloss |\n|---|---:|---:|---:|");
      tasks.forEach((t, i) => console.log(`| ${t} | ${f4(r.test.auc[i]!)} | ${f4(r.test.gauc[i]!)} | ${f4(r.test.logloss[i]!)} |`));
    });

  program
    .command("score")
    .description("score raw log rows (CSV, CSV.gz or Parquet) with an exported model: per-task probabilities and the fused score")
    .requiredOption("--model <dir>", "exported model folder (mtlcraft export)")
    .requiredOption("--input <file>", "raw log rows with the dataset spec's log columns")
    .requiredOption("--out <file>", "output .parquet, .csv or .csv.gz (written atomically)")
    .option("--fusion <formula>", "sum (Σ w_t p_t) | product (score = Σ w_t ln p_t, the log of Π p_t^w_t: same order, no underflow), optionally with weights: sum:ev=1,like=0.5 (default: the model's fusion.json, else the equal-weights sum)")
    .option("--keep <columns>", "comma list of input columns to copy to the output (default: the user, item and group columns)")
    .option("--with-ids", "also write the ids the model was fed (id_<field>)", false)
    .option("--batch-size <n>", "rows per model run", int("--batch-size", 1), 4096)
    .option("--threads <n>", "onnxruntime intra-op threads", int("--threads", 1))
    .option("--memory-limit <size>", "DuckDB memory limit, e.g. 512MB or 2GB (default 1GB; beyond it DuckDB spills to a work folder beside --out)", (v: string) => {
      try {
        return checkMemoryLimit(v);
      } catch (e) {
        throw new InvalidArgumentError((e as Error).message);
      }
    })
    .action(async (o: { model: string; input: string; out: string; fusion?: string; keep?: string; withIds: boolean; batchSize: number; threads?: number; memoryLimit?: string }) => {
      // with --fusion, the folder's fusion.json is not used, hence not read
      const model = await loadModel(o.model, { ...(o.threads !== undefined ? { threads: o.threads } : {}), ignoreFusion: o.fusion !== undefined });
      const bar = process.stderr.isTTY ? new cliProgress.SingleBar({ format: " {bar} {percentage}% | {value}/{total} rows | {rate} rows/s", hideCursor: true }, cliProgress.Presets.shades_grey) : null;
      const t0 = Date.now();
      let started = false;
      try {
        const r = await scoreFile(model, o.input, o.out, {
          ...(o.fusion !== undefined ? { fusion: o.fusion } : {}),
          ...(o.keep !== undefined ? { keep: o.keep.split(",").map((s) => s.trim()).filter((s) => s !== "") } : {}),
          withIds: o.withIds,
          batchSize: o.batchSize,
          ...(o.memoryLimit ? { memoryLimit: o.memoryLimit } : {}),
          log: (m) => {
            bar?.stop();
            console.error(m);
          },
          progress: (done, total) => {
            if (!bar) return;
            const rate = Math.round(done / Math.max(1e-3, (Date.now() - t0) / 1000));
            if (!started) {
              bar.start(total, 0, { rate });
              started = true;
            }
            bar.update(done, { rate });
          },
        }).finally(() => bar?.stop());
        console.log(`scored ${r.rows} rows -> ${r.out}`);
        console.log(`score = ${describeFusion(r.fusion, model.tasks)} (${r.fusion.kind}${o.fusion === undefined ? `, ${model.fusionSource}` : ""})`);
        console.log(`columns: ${r.columns.join(", ")}`);
      } finally {
        await model.close();
      }
    });

  program
    .command("fuse")
    .description("choose score-fusion weights on the validation split, report their test value, save them into the model folder")
    .requiredOption("--model <dir>", "exported model folder (mtlcraft export)")
    .requiredOption("--dataset <name>", "the dataset the model was trained on: kuairand, wechat (with --source DIR) or a spec .json")
    .option("--source <dir>", "directory with the raw files")
    .option("--cache-dir <dir>", "cache root", ".cache/datasets")
    .option("--objective <objective>", "gauc (mean per-user GAUC over tasks), auc, or target:<boolean SQL expression over the log's columns>", "gauc")
    .option("--task-weights <w>", "weights of the tasks in the gauc / auc objective, e.g. ev=1,like=2 (default 1 each)")
    .option("--fusion <kind>", "formulas to search: auto (sum and product), sum or product", "auto")
    .option("--samples <n>", "random weight vectors tried per formula", int("--samples", 0), 200)
    .option("--rounds <n>", "coordinate refinement rounds", int("--rounds", 0), 3)
    .option("--seed <n>", "search seed", int("--seed", 0), 1)
    .option("--no-save", "do not write fusion.json")
    .action(async (o: { model: string; dataset: string; source?: string; cacheDir: string; objective: string; taskWeights?: string; fusion: string; samples: number; rounds: number; seed: number; save: boolean }) => {
      if (!["auto", "sum", "product"].includes(o.fusion)) throw new InvalidArgumentError(`--fusion must be auto, sum or product, got "${o.fusion}"`);
      const r = await fuseModel(o.model, {
        dataset: o.dataset,
        cacheDir: o.cacheDir,
        ...(o.source ? { source: o.source } : {}),
        objective: o.objective,
        ...(o.taskWeights !== undefined ? { taskWeights: o.taskWeights } : {}),
        fusion: o.fusion as "auto" | "sum" | "product",
        samples: o.samples,
        rounds: o.rounds,
        seed: o.seed,
        save: o.save,
        log: (m) => console.error(m),
      });
      console.log(`objective: ${r.objective}`);
      console.log(`chosen on val: score = ${r.formula} (${r.fusion.kind})`);
      console.log(`| fusion | val | test |\n|---|---:|---:|\n| chosen | ${f4(r.val)} | ${f4(r.test)} |\n| equal-weights sum | ${f4(r.baseline.val)} | ${f4(r.baseline.test)} |`);
      for (const p of r.perKind) console.log(`best ${p.kind} on val: ${f4(p.val)} (${Object.entries(p.weights).map(([t, w]) => `${t}=${w.toFixed(3)}`).join(", ")})`);
      if (r.saved) console.log(`weights saved to ${r.saved} (score uses them by default)`);
    });
}
