/**
 * The training loop: epochs over shuffled train batches, one balanced step per batch,
 * validation every epoch (or every N steps), early stopping on mean validation AUC
 * with restore-best, final test metrics, checkpoints that resume bit-for-bit.
 */
import type { PreparedDataset } from "../data/types.ts";
import type { BalanceOutput, BalancingMethod, JsonValue } from "../balance/types.ts";
import type { DiagnosticsPoint, HistoryPoint, RunResult, SplitMetrics } from "../report/types.ts";
import { Rng, type RngState } from "../util/rng.ts";
import { evaluateSplit, meanFinite, type Predictor } from "./evaluate.ts";
import { yieldToEngine } from "../grad/engine.ts";
import { loadCheckpoint, saveCheckpoint, type TensorMap } from "./checkpoint.ts";

/** What the loop needs from a model + optimiser pair (see src/train/model-handle.ts). */
export interface TrainableModel extends Predictor {
  /** One optimisation step on a batch with the given balancing method. */
  step(batch: import("../data/types.ts").Batch, method: BalancingMethod, info: { step: number; epoch: number; rng: Rng }): {
    losses: Float64Array;
    balance: BalanceOutput;
  };
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
}

export interface LoopOutcome {
  completed: boolean;
  state: LoopState;
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
  const stepsPerEpoch = train.numBatches(cfg.batchSize, false);
  if (stepsPerEpoch === 0) throw new Error(`dataset ${data.meta.name}: the train split is empty`);
  const totalSteps = cfg.maxSteps > 0 ? Math.min(cfg.maxSteps, cfg.epochs * stepsPerEpoch) : cfg.epochs * stepsPerEpoch;

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
  if (cfg.checkpointDir) {
    const ck = loadCheckpoint(cfg.checkpointDir);
    if (ck) {
      st = ck.json.loop as unknown as LoopState;
      model.setState({ tensors: ck.tensors.model ?? {}, json: ck.json.model as JsonValue });
      method.setState(ck.json.method as JsonValue);
      bestParams = ck.tensors.best ?? null;
      cb.log?.(`resumed from ${cfg.checkpointDir} at step ${st.step} (epoch ${st.epoch}, batch ${st.batchInEpoch})`);
    }
  }
  const rng = Rng.fromState(st.rng);
  const t0 = Date.now() - st.seconds * 1000;
  let stepsThisProcess = 0;

  const checkpoint = () => {
    if (!cfg.checkpointDir) return;
    st.rng = rng.getState();
    st.seconds = (Date.now() - t0) / 1000;
    const ms = model.getState();
    saveCheckpoint(cfg.checkpointDir, {
      json: { loop: st as unknown as JsonValue, model: ms.json, method: method.getState() },
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
    st.history.push(point);
    st.lossSum = new Array(T).fill(0);
    st.lossCount = 0;
    cb.onEval?.(point);
    const score = meanFinite(point.valAuc);
    if (score > st.best + cfg.minDelta || st.bestEpoch < 0) {
      st.best = Math.max(score, st.best);
      st.bestEpoch = st.epoch;
      st.bestStep = st.step;
      st.badEvals = 0;
      bestParams = cloneTensors(model.getParams());
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
      const { losses, balance } = model.step(batch, method, { step: st.step, epoch: st.epoch, rng });
      // Let the engine free the step's intermediates (they are released only between macrotasks).
      await yieldToEngine();
      for (let t = 0; t < T; t++) st.lossSum[t]! += losses[t]!;
      st.lossCount++;
      if (st.step % Math.max(1, cfg.diagEvery) === 0) {
        const d = balance.diagnostics;
        st.diagnostics.push({
          step: st.step,
          losses: toArr(losses),
          weights: balance.weights ? toArr(balance.weights) : null,
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
        return { completed: false, state: st };
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
  const valM = await evaluateSplit(model, val, { batchSize: cfg.evalBatchSize, numTasks: T });
  const testM = await evaluateSplit(model, data.split("test"), { batchSize: cfg.evalBatchSize, numTasks: T });
  return { completed: true, state: st, val: valM, test: testM };
}

function cloneTensors(m: TensorMap): TensorMap {
  const out: TensorMap = {};
  for (const [k, v] of Object.entries(m)) out[k] = v.slice();
  return out;
}

/** Assemble the on-disk result of a finished run. */
export function toRunResult(
  base: Omit<RunResult, "bestEpoch" | "epochsRun" | "steps" | "seconds" | "val" | "test" | "history" | "diagnostics" | "version">,
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
  };
}
