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
  /** Positive labels per task and rows evaluated (absent in older results): tell "all 0" from "all 1" in warnings. */
  positives?: number[];
  rows?: number;
}

export interface HistoryPoint {
  epoch: number;
  step: number;
  /** Mean training loss per task since the previous point. */
  trainLoss: number[];
  valAuc: number[];
  valGauc: number[];
  /**
   * The early-stopping score of this evaluation: the mean val AUC over the tasks defined on val
   * (RunResult.earlyStopping.tasks); absent in older results and when no task is defined.
   */
  score?: number;
}

/** What picked the best evaluation (restore-best) and, with patience > 0, stopped training early. */
export interface EarlyStoppingInfo {
  /** Tasks whose val AUCs are averaged into the score: those with both classes on the val rows evaluated. */
  tasks: string[];
  /** False when no task is defined on val (or val is empty): nothing is selected, the last parameters are kept. */
  enabled: boolean;
}

/** Per-step diagnostics from the balancing method (subsampled every `diagEvery` steps). */
export interface DiagnosticsPoint {
  step: number;
  losses: number[];
  /** Loss weights (loss-weighting methods) or null. */
  weights: number[] | null;
  /**
   * Effective task weights: the coefficients c with direction = Σ_i c_i g_i over the shared
   * parameters (BalanceOutput.coeffs), for every method. Absent in results written before they
   * were logged.
   */
  coeffs?: number[];
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
  /**
   * Warnings about the run, one sentence each (e.g. a task whose AUC is undefined on a split,
   * naming the task and the split). Absent in results written before warnings were recorded.
   */
  warnings?: string[];
  /** The tasks early stopping watched (absent in older results: there it was every task with a finite val AUC). */
  earlyStopping?: EarlyStoppingInfo;
  /** What the run cost (absent in results written before it was recorded). */
  cost?: RunCost;
}

/** The cost of one training run, measured by the trainer. */
export interface RunCost {
  /**
   * Mean wall milliseconds of one training step (forward, the backward pass or passes,
   * balancing, optimiser), over every step of the run (diagnostics steps included), without
   * evaluation. Timed on whatever machine ran the job: compare methods of one sweep on one machine.
   */
  msPerStep: number;
  /**
   * Peak resident set of the process (MiB) when the run ended. A bench job is its own process,
   * so this is the job's peak; a run inside a longer-lived process reports that process's peak.
   */
  peakRssMb: number;
}
