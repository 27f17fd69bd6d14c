/**
 * `mtlcraft fuse`: choose score-fusion weights for an exported model on the validation split,
 * report their value on the test split, and save them into the model folder (fusion.json, which
 * `score` then uses by default). See src/deploy/fusion.ts for the formulas, objectives and search.
 *
 * Order of reads, which keeps the test split out of the choice: the model scores the validation
 * split (and a `target:` objective evaluates its expression on the validation rows), the search
 * runs on those values alone, the weights are fixed (`onSelected`), and only then is the test split
 * read, once, to report the chosen weights' value.
 *
 * fusion.json is saved with its sha256 added to checksums.json (loadModel refuses a fusion.json
 * that checksums.json does not cover, so a hand-placed or edited one is never used).
 */
import { loadDataset, type DatasetSpec } from "../data/index.ts";
import { splitValues } from "../data/prepare.ts";
import type { PreparedDataset } from "../data/types.ts";
import { datasetContentHash } from "../train/run.ts";
import { scoreSplit } from "./export.ts";
import { describeFusion, describeObjective, fuseScores, fusionToJson, objectiveValue, parseObjective, searchFusion, FUSION_KINDS, type Fusion, type FusionKind, type SearchResult, type SplitScores } from "./fusion.ts";
import { loadModel, saveFusionFile, type ScoringModel } from "./model.ts";

export interface FuseOptions {
  /** Dataset the model was trained on (name, spec path or spec); its content hash must be the model's. */
  dataset: string | DatasetSpec;
  cacheDir?: string;
  source?: string;
  /** `gauc` (default), `auc` or `target:<boolean SQL expression>`. */
  objective?: string;
  /** Task weights of the gauc / auc objectives, e.g. `ev=1,like=2` (default 1 each). */
  taskWeights?: string;
  /** Formulas searched: `auto` (both, the better on validation wins; default), `sum` or `product`. */
  fusion?: "auto" | FusionKind;
  /** Random simplex points tried per formula (default 200). */
  samples?: number;
  /** Coordinate refinement rounds (default 3). */
  rounds?: number;
  seed?: number;
  batchSize?: number;
  /** Write DIR/fusion.json (default true). */
  save?: boolean;
  log?: (msg: string) => void;
  /** The opened dataset (default: loadDataset(dataset)); tests pass an instrumented one. */
  data?: PreparedDataset;
  /** How a `target:` expression is evaluated on a split (default: splitValues on the raw inputs). */
  readTarget?: (split: "val" | "test", expr: string) => Promise<ArrayLike<number>>;
  /** Called once the weights are chosen, before the test split is read. */
  onSelected?: (search: SearchResult) => void;
}

export interface FuseResult {
  fusion: Fusion;
  formula: string;
  objective: string;
  val: number;
  test: number;
  baseline: { formula: string; val: number; test: number };
  perKind: { kind: FusionKind; weights: Record<string, number>; val: number }[];
  evaluations: number;
  /** Where the weights were saved (absent with save: false). */
  saved?: string;
}

async function splitScores(m: ScoringModel, data: PreparedDataset, split: "val" | "test", batchSize: number, target: ((s: "val" | "test") => Promise<ArrayLike<number>>) | null): Promise<SplitScores> {
  const s = await scoreSplit(m, data, split, batchSize);
  const out: SplitScores = { rows: s.rows, probs: s.probs, labels: s.labels, groups: s.groups };
  if (target) {
    const v = await target(split);
    if (v.length !== s.rows) throw new Error(`the target has ${v.length} values on the ${split} split, which has ${s.rows} rows`);
    out.target = Float32Array.from(v);
  }
  return out;
}

export async function fuseModel(model: string | ScoringModel, opts: FuseOptions): Promise<FuseResult> {
  const log = opts.log ?? (() => {});
  // the fusion.json there (if any) is not read: this replaces it
  const m = typeof model === "string" ? await loadModel(model, { ignoreFusion: true }) : model;
  try {
    const tasks = m.tasks;
    const objective = parseObjective(opts.objective ?? "gauc", tasks, opts.taskWeights);
    const kinds: readonly FusionKind[] = !opts.fusion || opts.fusion === "auto" ? FUSION_KINDS : [opts.fusion];
    if (opts.fusion && opts.fusion !== "auto" && !FUSION_KINDS.includes(opts.fusion)) throw new Error(`--fusion must be auto, sum or product for fuse, got "${String(opts.fusion)}"`);
    const samples = opts.samples ?? 200;
    const rounds = opts.rounds ?? 3;
    if (!(Number.isInteger(samples) && samples >= 0) || !(Number.isInteger(rounds) && rounds >= 0)) throw new Error("--samples and --rounds must be integers >= 0");
    const data = opts.data ?? (await loadDataset(opts.dataset, { cacheDir: opts.cacheDir, source: opts.source }));
    const hash = datasetContentHash(data);
    if (hash !== m.features.dataset.hash) {
      throw new Error(`the model was trained on dataset "${m.features.dataset.name}" with content hash ${m.features.dataset.hash.slice(0, 12)}…, but --dataset gives "${data.meta.name}" with hash ${hash.slice(0, 12)}…; fuse on the data the model was trained on`);
    }
    if (data.split("val").rows === 0) throw new Error(`dataset ${data.meta.name}: the val split is empty; fusion weights are chosen on validation data`);
    const batchSize = opts.batchSize ?? 4096;
    const target =
      objective.kind === "target"
        ? (s: "val" | "test") => (opts.readTarget ?? ((sp: "val" | "test", e: string) => splitValues(opts.dataset, { cacheDir: opts.cacheDir, source: opts.source }, sp, e, "--objective target")))(s, objective.expr)
        : null;
    // ---- validation only
    log(`scoring the val split (${data.split("val").rows} rows)`);
    const val = await splitScores(m, data, "val", batchSize, target);
    const search = searchFusion(objective, val, { kinds, samples, rounds, seed: opts.seed ?? 1 });
    if (!Number.isFinite(search.value)) throw new Error(`the objective (${describeObjective(objective, tasks)}) is undefined on the val split (no group has both classes?)`);
    opts.onSelected?.(search);
    const best = search.best;
    // ---- the weights are fixed: now the test split
    log(`scoring the test split (${data.split("test").rows} rows)`);
    const test = await splitScores(m, data, "test", batchSize, target);
    const testValue = objectiveValue(objective, test, fuseScores(best, test.probs, test.rows));
    const baseTest = objectiveValue(objective, test, fuseScores(search.baseline.fusion, test.probs, test.rows));
    const result: FuseResult = {
      fusion: best,
      formula: describeFusion(best, tasks),
      objective: describeObjective(objective, tasks),
      val: search.value,
      test: testValue,
      baseline: { formula: describeFusion(search.baseline.fusion, tasks), val: search.baseline.value, test: baseTest },
      perKind: search.perKind.map((p) => ({ kind: p.kind, weights: fusionToJson({ kind: p.kind, weights: p.weights }, tasks).weights, val: p.value })),
      evaluations: search.evaluations,
    };
    if (opts.save ?? true) {
      const file = {
        ...fusionToJson(best, tasks),
        formula: result.formula,
        objective: opts.objective ?? "gauc",
        objectiveText: result.objective,
        ...(objective.kind !== "target" ? { taskWeights: Object.fromEntries(tasks.map((t, i) => [t, objective.taskWeights[i]!])) } : {}),
        val: result.val,
        test: result.test,
        baseline: result.baseline,
        perKind: result.perKind,
        search: { samples, rounds, seed: opts.seed ?? 1, evaluations: search.evaluations, split: "val" },
        datasetHash: hash,
        createdAt: new Date().toISOString(),
      };
      // fusion.json and its checksum in checksums.json (each written to a temporary file, then renamed)
      result.saved = saveFusionFile(m.dir, JSON.stringify(file, (_k, v: unknown) => (typeof v === "number" && !Number.isFinite(v) ? null : v), 1) + "\n");
    }
    return result;
  } finally {
    if (typeof model === "string") await m.close();
  }
}
