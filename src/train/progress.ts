/**
 * Training progress as people and log files read it (`train --progress bar|log`):
 *
 * - `lossText`: the losses by task name ("click 0.512 like 0.301"), for the progress bar and the
 *   plain lines;
 * - `LogProgress`: plain lines for a log file or a pipe (the CLI's default when stderr is not a
 *   terminal). A line is written at the first step, whenever `intervalMs` (30 s) has passed since
 *   the last line (checked after each step), at each new epoch, and at each evaluation (val AUC by
 *   task), so a log never stays silent for long while training runs:
 *
 *     step 120/900 (13%) | epoch 1/4 | 2.31 steps/s | loss click 0.512 like 0.301 | ETA 5m38s
 *     epoch 1 step 225: val AUC click 0.7021 like 0.6513
 *
 *   The clock is injectable (`now`), so tests need not wait 30 s.
 *
 * Epochs: what a person reads counts them from 1 (the first epoch is "epoch 1"), here, in the bar,
 * in the CLI's summary and in the report. The stored JSON (a result's `history[].epoch` and
 * `bestEpoch`, a checkpoint's state, `--progress json`'s eval lines) keeps the 0-based epoch index
 * it always had, so that files written before stay readable: add 1 to show it.
 */

/** "click 0.512 like 0.301": the losses with their task names (3 decimals; "n/a" for a non-finite one). */
export function lossText(tasks: readonly string[], losses: ArrayLike<number>): string {
  const parts: string[] = [];
  for (let t = 0; t < losses.length; t++) {
    const l = losses[t]!;
    parts.push(`${tasks[t] ?? `task${t}`} ${Number.isFinite(l) ? l.toFixed(3) : "n/a"}`);
  }
  return parts.join(" ");
}

/** A duration for people: 45s, 5m38s, 2h07m. */
export function durationText(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return "?";
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
}

export interface LogProgressOptions {
  tasks: readonly string[];
  /** Epoch limit of the run (shown as "epoch 2/4"); absent or 0: not shown. */
  epochs?: number;
  /** Longest silence between lines while steps arrive (default 30 000 ms). */
  intervalMs?: number;
  /** Milliseconds now (default Date.now). */
  now?: () => number;
  /** Where a line goes (default: stderr). */
  write?: (line: string) => void;
}

/** Plain progress lines (see the module comment). */
export class LogProgress {
  readonly intervalMs: number;
  private readonly now: () => number;
  private readonly write: (line: string) => void;
  private readonly t0: number;
  private last = -Infinity;
  private lastEpoch = -1;
  /** Steps done when this process started (a resumed run): the rate counts this process's steps only. */
  private firstStep: number | null = null;

  constructor(private readonly o: LogProgressOptions) {
    this.intervalMs = o.intervalMs ?? 30_000;
    if (!(this.intervalMs > 0)) throw new Error(`progress: intervalMs must be > 0, got ${this.intervalMs}`);
    this.now = o.now ?? Date.now;
    this.write = o.write ?? ((l) => process.stderr.write(`${l}\n`));
    this.t0 = this.now();
  }

  /** After each step (`epoch` 0-based, as the trainer counts it); writes a line when one is due. */
  step(info: { step: number; totalSteps: number; epoch: number; losses: ArrayLike<number> }): void {
    const t = this.now();
    this.firstStep ??= info.step - 1;
    if (t - this.last < this.intervalMs && info.epoch === this.lastEpoch) return;
    this.last = t;
    this.lastEpoch = info.epoch;
    const secs = (t - this.t0) / 1000;
    const done = info.step - this.firstStep;
    const rate = secs > 0 ? done / secs : NaN;
    const left = info.totalSteps - info.step;
    const pct = info.totalSteps > 0 ? ` (${Math.floor((100 * info.step) / info.totalSteps)}%)` : "";
    const epochs = this.o.epochs ? `/${this.o.epochs}` : "";
    const eta = Number.isFinite(rate) && rate > 0 ? durationText(left / rate) : "?";
    this.write(`step ${info.step}/${info.totalSteps}${pct} | epoch ${info.epoch + 1}${epochs} | ${Number.isFinite(rate) ? rate.toFixed(2) : "?"} steps/s | loss ${lossText(this.o.tasks, info.losses)} | ETA ${eta}`);
  }

  /** After each evaluation (`epoch` 0-based): val AUC by task, always written. */
  eval(point: { epoch: number; step: number; valAuc: readonly number[] }): void {
    this.last = this.now();
    const auc = point.valAuc.map((a, t) => `${this.o.tasks[t] ?? `task${t}`} ${Number.isFinite(a) ? a.toFixed(4) : "n/a"}`).join(" ");
    this.write(`epoch ${point.epoch + 1} step ${point.step}: val AUC ${auc}`);
  }
}
