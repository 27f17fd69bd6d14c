/**
 * On-disk result of one training run (`train` writes it as JSON; `bench` collects many).
 * Plain JSON data so reports can be rebuilt from files alone.
 */
export interface SplitMetrics {
  /** Per task, in `tasks` order. NaN is written as null in JSON when a split has one class only. */
  auc: number[];
  gauc: number[];
  logloss: number[];
  gaucGroups: { used: number; skipped: number }[];
}

export interface HistoryPoint {
  epoch: number;
  step: number;
  /** Mean training loss per task since the previous point. */
  trainLoss: number[];
  valAuc: number[];
  valGauc: number[];
}

/** Per-step diagnostics from the balancing method (subsampled every `diagEvery` steps). */
export interface DiagnosticsPoint {
  step: number;
  losses: number[];
  /** Loss weights (loss-weighting methods) or null. */
  weights: number[] | null;
  /** Raw per-task gradient norms over the shared parameters. */
  norms: number[];
  /** Pairwise cosines, T*T row-major. */
  cosines: number[];
  /** Conflicting task pairs (<g_i, g_j> < 0). */
  conflicts: number;
}

export interface RunResult {
  version: 1;
  dataset: string;
  model: string;
  /** Method option name (`gradcraft`), or `single` for the single-task baseline. */
  method: string;
  /** Name as in the paper's table (`GradCraft`, `UC`, `Single`). */
  methodLabel: string;
  seed: number;
  tasks: string[];
  config: Record<string, unknown>;
  bestEpoch: number;
  epochsRun: number;
  steps: number;
  seconds: number;
  val: SplitMetrics;
  test: SplitMetrics;
  history: HistoryPoint[];
  diagnostics: DiagnosticsPoint[];
}
