/**
 * The training loop: epochs over shuffled train batches, one balanced step per batch,
 * validation every epoch (or every N steps), early stopping on mean validation AUC
 * with restore-best, final test metrics, checkpoints that resume bit-for-bit.
 *
 * Early stopping averages the val AUC over the tasks *defined* on val only (both classes among
 * the val rows evaluated; see src/metrics/defined.ts): a one-class task has no AUC, and averaging
 * its NaN in would freeze the score. Which tasks it uses is logged before the first step and
 * recorded in the result (`earlyStopping`); with none defined it is off (the last parameters are
 * kept) with a warning. Every task with an undefined val or test metric gets a warning naming
 * the task and the split, logged and recorded in the result (`warnings`).
 */
import type { PreparedDataset } from "../data/types.ts";
import type { BalanceOutput, BalancingMethod, JsonValue } from "../balance/types.ts";
import type { DiagnosticsPoint, HistoryPoint, RunResult, SplitMetrics } from "../report/types.ts";
import { Rng, type RngState } from "../util/rng.ts";
import { classCounts, evaluateSplit, type Predictor } from "./evaluate.ts";
import { meanAt, splitWarnings, undefinedWarning } from "../metrics/defined.ts";
import type { EarlyStoppingInfo } from "../report/types.ts";
import { checkFingerprint, loadCheckpoint, saveCheckpoint, type Fingerprint, type TensorMap } from "./checkpoint.ts";
import { MAX_ABS_GRAD, NonFiniteInputError } from "../balance/common.ts";

/**
 * Divergence policy. A step whose task loss is not finite, or above MAX_LOSS, stops
 * training with a DivergenceError naming the step, the task and the value (nothing
 * of that step is recorded, checkpointed or written as a result). The losses are
 * mean binary cross-entropies computed from logits: about 0.69 at initialisation and
 * roughly |logit| for a confidently wrong prediction, so a healthy model stays far
 * below 100 (sigmoid saturates in float32 beyond |logit| ≈ 17), while a mean above
 * 1e6 means logits of order 1e6: the weights have blown up. Non-finite or exploding
 * gradients are refused by the balancing methods (src/balance/common.ts checkInput,
 * |g| > 1e18) and reported the same way.
 */
export const MAX_LOSS = 1e6;

export class DivergenceError extends Error {
  constructor(
    message: string,
    readonly step: number,
    readonly task: string,
    readonly value: number,
  ) {
    super(message);
    this.name = "DivergenceError";
  }
}

/** What the loop needs from a model + optimiser pair (see src/train/model-handle.ts). */
export interface TrainableModel extends Predictor {
  /** One optimisation step on a batch with the given balancing method. */
  step(
    batch: import("../data/types.ts").Batch,
    method: BalancingMethod,
    info: { step: number; epoch: number; rng: Rng; diagnostics: boolean },
  ): Promise<{ losses: Float64Array; balance: BalanceOutput }>;
  /** Parameters only (for restore-best). */
  getParams(): TensorMap;
  setParams(p: TensorMap): void;
  /** Parameters and optimiser state (for checkpoints). */
  getState(): { tensors: TensorMap; json: JsonValue };
  setState(s: { tensors: TensorMap; json: JsonValue }): void;
}

export interface LoopConfig {
  epochs: number;
  batchSize: number;
  evalBatchSize: number;
  /** Evaluate every N steps; 0 = at the end of every epoch. */
  evalEvery: number;
  /** Stop after this many steps in total (0 = no limit). */
  maxSteps: number;
  /** Early stopping: evaluations without an improvement > minDelta of mean val AUC before stopping (0 = never stop early). */
  patience: number;
  minDelta: number;
  /** Record balancing diagnostics every N steps (≥1). */
  diagEvery: number;
  /** Cap rows used for validation (0 = all). */
  maxEvalRows: number;
  seed: number;
  /** Write a checkpoint here every `checkpointEvery` steps and at every evaluation. */
  checkpointDir?: string;
  checkpointEvery: number;
  /** Stop (as if interrupted) after this many steps in this process; for resume tests. */
  interruptAfter?: number;
  /**
   * What the run is (dataset hash, model, method, their options, seed, batch size...):
   * saved in checkpoints, and a checkpoint with a different one is refused on resume.
   */
  fingerprint?: Fingerprint;
  /** Divergence threshold on a task's mean loss (default MAX_LOSS). */
  maxLoss?: number;
}

export interface LoopCallbacks {
  onStep?(info: { step: number; epoch: number; totalSteps: number; losses: Float64Array }): void;
  onEval?(point: HistoryPoint): void;
  log?(msg: string): void;
}

interface LoopState {
  epoch: number;
  batchInEpoch: number;
  step: number;
  rng: RngState;
  best: number;
  bestEpoch: number;
  bestStep: number;
  badEvals: number;
  stopped: boolean;
  history: HistoryPoint[];
  diagnostics: DiagnosticsPoint[];
  lossSum: number[];
  lossCount: number;
  seconds: number;
  /** Seconds spent inside the training steps (forward, backward passes, balancing, optimiser), summed over resumes. */
  stepSeconds?: number;
}

export interface LoopOutcome {
  completed: boolean;
  state: LoopState;
  /** The tasks whose mean val AUC picks the best evaluation; enabled false when none is defined on val. */
  earlyStopping: EarlyStoppingInfo;
  /** Warnings of this run (undefined metrics: task and split), each also passed to `log`. */
  warnings: string[];
  test?: SplitMetrics;
  val?: SplitMetrics;
}

function toArr(a: ArrayLike<number>): number[] {
  return Array.from(a, (x) => (Number.isFinite(x) ? x : NaN));
}

/** Runs (or resumes) the loop. Returns completed=false when interrupted on purpose. */
export async function runLoop(
  data: PreparedDataset,
  model: TrainableModel,
  method: BalancingMethod,
  cfg: LoopConfig,
  cb: LoopCallbacks = {},
): Promise<LoopOutcome> {
  const T = data.meta.tasks.length;
  const train = data.split("train");
  const val = data.split("val");
  // an empty val split (a fraction split with val 0): no validation, no early stopping, the last parameters are kept
  const noVal = val.rows === 0;
  if (noVal && cfg.patience > 0) {
    throw new Error(`dataset ${data.meta.name}: the val split is empty, so early stopping (patience ${cfg.patience}) has nothing to watch; train with --patience 0`);
  }
  const stepsPerEpoch = train.numBatches(cfg.batchSize, false);
  if (stepsPerEpoch === 0) throw new Error(`dataset ${data.meta.name}: the train split is empty`);
  const totalSteps = cfg.maxSteps > 0 ? Math.min(cfg.maxSteps, cfg.epochs * stepsPerEpoch) : cfg.epochs * stepsPerEpoch;
  const taskNames = data.meta.tasks.map((t) => t.name);
  const warnings: string[] = [];
  const warn = (w: string) => {
    if (warnings.includes(w)) return;
    warnings.push(w);
    cb.log?.(`warning: ${w}`);
  };
  // Which tasks early stopping watches: those with both classes among the val rows evaluated (labels only, no model run).
  let esIdx: number[] = [];
  if (!noVal) {
    const cc = classCounts(val, T, cfg.evalBatchSize, cfg.maxEvalRows || undefined);
    taskNames.forEach((_, t) => {
      if (cc.positives[t]! > 0 && cc.positives[t]! < cc.rows) esIdx.push(t);
    });
    const rowsNote = cfg.maxEvalRows && cc.rows < val.rows ? ` (on the first ${cc.rows} val rows, those evaluated with --max-eval-rows)` : "";
    for (let t = 0; t < T; t++) {
      if (esIdx.includes(t)) continue;
      const onlyClass = cc.positives[t] === 0 ? 0 : 1;
      warn(undefinedWarning({ task: taskNames[t]!, split: "val", auc: true, gauc: true, onlyClass }) + rowsNote);
    }
    if (esIdx.length === 0) {
      warn(`early stopping is off: no task has both classes in the val split, so no val AUC is defined; the last parameters are kept${cfg.patience > 0 ? ` (--patience ${cfg.patience} ignored)` : ""}`);
    } else {
      const names = esIdx.map((t) => taskNames[t]).join(", ");
      cb.log?.(`early stopping watches the mean val AUC of ${esIdx.length === T ? `all ${T} tasks` : `${esIdx.length} of ${T} tasks`}: ${names}`);
    }
  }
  const esOff = noVal || esIdx.length === 0;
  if (esOff) esIdx = [];
  const earlyStopping: EarlyStoppingInfo = { tasks: esIdx.map((t) => taskNames[t]!), enabled: !esOff };

  let st: LoopState = {
    epoch: 0,
    batchInEpoch: 0,
    step: 0,
    rng: new Rng(cfg.seed ^ 0x5eed).getState(),
    best: -Infinity,
    bestEpoch: -1,
    bestStep: -1,
    badEvals: 0,
    stopped: false,
    history: [],
    diagnostics: [],
    lossSum: new Array(T).fill(0),
    lossCount: 0,
    seconds: 0,
  };
  let bestParams: TensorMap | null = null;
  /** Full-validation metrics of the best parameters, when this process computed them (saves re-evaluating). */
  let bestVal: Awaited<ReturnType<typeof evaluateSplit>> | null = null;
  if (cfg.checkpointDir) {
    const ck = loadCheckpoint(cfg.checkpointDir);
    if (ck) {
      if (cfg.fingerprint) checkFingerprint(cfg.checkpointDir, ck.json.fingerprint, cfg.fingerprint);
      st = ck.json.loop as unknown as LoopState;
      model.setState({ tensors: ck.tensors.model ?? {}, json: ck.json.model as JsonValue });
      method.setState(ck.json.method as JsonValue);
      bestParams = ck.tensors.best ?? null;
      cb.log?.(`resumed from ${cfg.checkpointDir} at step ${st.step} (epoch ${st.epoch + 1}, after its batch ${st.batchInEpoch})`);
    }
  }
  const rng = Rng.fromState(st.rng);
  const maxLoss = cfg.maxLoss ?? MAX_LOSS;
  const t0 = Date.now() - st.seconds * 1000;
  let stepsThisProcess = 0;

  const checkpoint = () => {
    if (!cfg.checkpointDir) return;
    st.rng = rng.getState();
    st.seconds = (Date.now() - t0) / 1000;
    const ms = model.getState();
    saveCheckpoint(cfg.checkpointDir, {
      json: { loop: st as unknown as JsonValue, model: ms.json, method: method.getState(), fingerprint: cfg.fingerprint ?? null },
      tensors: bestParams ? { model: ms.tensors, best: bestParams } : { model: ms.tensors },
    });
  };

  const evaluate = async (): Promise<void> => {
    const m = await evaluateSplit(model, val, { batchSize: cfg.evalBatchSize, numTasks: T, maxRows: cfg.maxEvalRows || undefined });
    const point: HistoryPoint = {
      epoch: st.epoch,
      step: st.step,
      trainLoss: st.lossSum.map((s) => (st.lossCount ? s / st.lossCount : NaN)),
      valAuc: toArr(m.auc),
      valGauc: toArr(m.gauc),
    };
    // the mean over the defined tasks only (NaN when early stopping is off)
    const score = esOff ? NaN : meanAt(point.valAuc, esIdx);
    if (Number.isFinite(score)) point.score = score;
    st.history.push(point);
    st.lossSum = new Array(T).fill(0);
    st.lossCount = 0;
    cb.onEval?.(point);
    if (esOff) {
      st.bestEpoch = st.epoch;
      st.bestStep = st.step;
    } else if (Number.isFinite(score) && (score > st.best + cfg.minDelta || st.bestEpoch < 0)) {
      st.best = Math.max(score, st.best);
      st.bestEpoch = st.epoch;
      st.bestStep = st.step;
      st.badEvals = 0;
      bestParams = cloneTensors(model.getParams());
      bestVal = cfg.maxEvalRows ? null : m;
    } else {
      st.badEvals++;
      if (cfg.patience > 0 && st.badEvals >= cfg.patience) st.stopped = true;
    }
  };

  while (!st.stopped && st.epoch < cfg.epochs && (cfg.maxSteps <= 0 || st.step < cfg.maxSteps)) {
    for (const batch of train.iterate({
      batchSize: cfg.batchSize,
      shuffle: true,
      seed: cfg.seed,
      epoch: st.epoch,
      startBatch: st.batchInEpoch,
      dropLast: false,
    })) {
      // Diagnostics steps run the per-task program; others may use the weighted-sum one (loss weighting).
      const diag = st.step % Math.max(1, cfg.diagEvery) === 0;
      const stepStart = performance.now();
      const { losses, balance } = await guardedStep(() => model.step(batch, method, { step: st.step, epoch: st.epoch, rng, diagnostics: diag }), st, taskNames, maxLoss);
      st.stepSeconds = (st.stepSeconds ?? 0) + (performance.now() - stepStart) / 1000;
      for (let t = 0; t < T; t++) st.lossSum[t]! += losses[t]!;
      st.lossCount++;
      if (diag) {
        const d = balance.diagnostics;
        st.diagnostics.push({
          step: st.step,
          losses: toArr(losses),
          weights: balance.weights ? toArr(balance.weights) : null,
          coeffs: toArr(balance.coeffs),
          norms: toArr(d.norms),
          cosines: toArr(d.cosines),
          conflicts: d.conflicts,
        });
      }
      st.step++;
      st.batchInEpoch++;
      stepsThisProcess++;
      cb.onStep?.({ step: st.step, epoch: st.epoch, totalSteps, losses });
      if (cfg.evalEvery > 0 && st.step % cfg.evalEvery === 0) await evaluate();
      const reachedMax = cfg.maxSteps > 0 && st.step >= cfg.maxSteps;
      if (cfg.checkpointDir && cfg.checkpointEvery > 0 && st.step % cfg.checkpointEvery === 0) checkpoint();
      if (cfg.interruptAfter !== undefined && stepsThisProcess >= cfg.interruptAfter) {
        checkpoint();
        return { completed: false, state: st, earlyStopping, warnings };
      }
      if (st.stopped || reachedMax) break;
    }
    const epochDone = st.batchInEpoch >= stepsPerEpoch;
    if (epochDone) {
      if (method.endEpoch) method.endEpoch(Float64Array.from(st.lossSum, (s) => (st.lossCount ? s / st.lossCount : 0)));
      if (cfg.evalEvery === 0) await evaluate();
      st.epoch++;
      st.batchInEpoch = 0;
    } else if (cfg.maxSteps > 0 && st.step >= cfg.maxSteps) {
      if (cfg.evalEvery === 0 || st.history.at(-1)?.step !== st.step) await evaluate();
      break;
    }
    checkpoint();
  }
  if (st.history.length === 0 || st.history.at(-1)!.step !== st.step) {
    if (!st.stopped) await evaluate();
  }
  if (bestParams) model.setParams(bestParams);
  st.seconds = (Date.now() - t0) / 1000;
  st.rng = rng.getState();
  // evaluation is deterministic: the best evaluation's full-validation metrics are those of the restored parameters
  const valM = bestParams && bestVal ? bestVal : await evaluateSplit(model, val, { batchSize: cfg.evalBatchSize, numTasks: T });
  const testM = await evaluateSplit(model, data.split("test"), { batchSize: cfg.evalBatchSize, numTasks: T });
  if (!noVal) for (const w of splitWarnings(taskNames, "val", valM)) warn(w);
  for (const w of splitWarnings(taskNames, "test", testM)) warn(w);
  return { completed: true, state: st, val: valM, test: testM, earlyStopping, warnings };
}

/**
 * Runs one step and applies the divergence policy (see MAX_LOSS): a balancing input
 * refused as non-finite/exploding, or a task loss that is not finite or above
 * `maxLoss`, becomes a DivergenceError naming the step (1-based, as in the
 * progress display), the epoch, the task and the value.
 */
async function guardedStep<R extends { losses: Float64Array }>(
  run: () => R | Promise<R>,
  st: { step: number; epoch: number },
  tasks: readonly string[],
  maxLoss: number,
): Promise<R> {
  const where = `training diverged at step ${st.step + 1} (epoch ${st.epoch + 1})`;
  let r: R;
  try {
    r = await run();
  } catch (e) {
    if (e instanceof NonFiniteInputError) {
      const task = tasks[e.task] ?? `#${e.task}`;
      const v = Number.isFinite(e.value) ? e.value.toExponential(3) : String(e.value);
      const what =
        e.what === "loss"
          ? `has loss ${v}`
          : Number.isFinite(e.value)
            ? `has an exploding gradient: entry ${e.position} = ${v} (|g| > ${MAX_ABS_GRAD.toExponential()})`
            : `has gradient entry ${e.position} = ${v}`;
      throw new DivergenceError(`${where}: task "${task}" ${what}; lower --lr or check the data`, st.step + 1, task, e.value);
    }
    // any other failure of the step: say where it happened, keep the original as the cause
    const msg = e instanceof Error ? e.message : String(e);
    throw new Error(`training stopped at step ${st.step + 1} (epoch ${st.epoch + 1}): ${msg}`, { cause: e });
  }
  for (let t = 0; t < r.losses.length; t++) {
    const l = r.losses[t]!;
    if (!Number.isFinite(l) || l > maxLoss) {
      const task = tasks[t] ?? `#${t}`;
      const why = Number.isFinite(l) ? `exploded to ${l.toExponential(3)} (> ${maxLoss.toExponential()})` : `is ${l}`;
      throw new DivergenceError(`${where}: task "${task}" loss ${why}; lower --lr or check the data`, st.step + 1, task, l);
    }
  }
  return r;
}

function cloneTensors(m: TensorMap): TensorMap {
  const out: TensorMap = {};
  for (const [k, v] of Object.entries(m)) out[k] = v.slice();
  return out;
}

/** Assemble the on-disk result of a finished run. */
export function toRunResult(
  base: Omit<RunResult, "bestEpoch" | "epochsRun" | "steps" | "seconds" | "val" | "test" | "history" | "diagnostics" | "version" | "warnings" | "earlyStopping" | "cost">,
  out: LoopOutcome,
): RunResult {
  if (!out.completed || !out.val || !out.test) throw new Error("toRunResult: the run did not complete");
  return {
    version: 1,
    ...base,
    bestEpoch: out.state.bestEpoch,
    epochsRun: out.state.epoch,
    steps: out.state.step,
    seconds: out.state.seconds,
    val: out.val,
    test: out.test,
    history: out.state.history,
    diagnostics: out.state.diagnostics,
    warnings: out.warnings,
    earlyStopping: out.earlyStopping,
    cost: {
      msPerStep: out.state.step > 0 ? (1000 * (out.state.stepSeconds ?? 0)) / out.state.step : NaN,
      peakRssMb: process.resourceUsage().maxRSS / 1024,
    },
  };
}
