/**
 * Summary statistics for multi-task result tables (GradCraft, Table 1 layout).
 *
 *   AV = (1/T) Σ_t M_t
 *   RI = (1/T) Σ_t (M_t − M_t^single) / M_t^single      (a fraction; ×100 for percent)
 *
 * NaN inputs propagate (a NaN metric gives a NaN AV/RI) rather than throwing,
 * so a missing task result is visible in the table.
 */

function checkNonEmpty(fn: string, name: string, xs: ArrayLike<number>): void {
  if (xs.length === 0) throw new Error(`${fn}: ${name} is empty`);
}

/** Arithmetic mean. @throws on empty input. */
export function mean(values: ArrayLike<number>): number {
  checkNonEmpty("mean", "values", values);
  let s = 0;
  for (let i = 0; i < values.length; i++) s += values[i]!;
  return s / values.length;
}

/** Sample standard deviation (n − 1 denominator); 0 for a single value. @throws on empty input. */
export function sampleStd(values: ArrayLike<number>): number {
  checkNonEmpty("sampleStd", "values", values);
  const n = values.length;
  if (n === 1) return Number.isNaN(values[0]!) ? NaN : 0;
  const m = mean(values);
  let ss = 0;
  for (let i = 0; i < n; i++) {
    const d = values[i]! - m;
    ss += d * d;
  }
  return Math.sqrt(ss / (n - 1));
}

export interface MeanStd {
  mean: number;
  /** Sample std (n − 1); 0 when n = 1. */
  std: number;
  n: number;
}

/** Mean and sample std over seeds. @throws on empty input. */
export function meanStd(values: ArrayLike<number>): MeanStd {
  checkNonEmpty("meanStd", "values", values);
  return { mean: mean(values), std: sampleStd(values), n: values.length };
}

/** AV: mean of a per-task metric over tasks. @throws on empty input. */
export function averageOverTasks(perTask: ArrayLike<number>): number {
  checkNonEmpty("averageOverTasks", "perTask", perTask);
  return mean(perTask);
}

/**
 * RI: mean over tasks of the relative improvement over the single-task baseline,
 * as a fraction (0.012 = +1.2 %).
 * @throws on empty input, length mismatch, or a zero baseline metric (names the task index).
 */
export function relativeImprovement(perTask: ArrayLike<number>, single: ArrayLike<number>): number {
  checkNonEmpty("relativeImprovement", "perTask", perTask);
  if (perTask.length !== single.length) {
    throw new Error(`relativeImprovement: perTask has ${perTask.length} tasks but single has ${single.length}`);
  }
  let s = 0;
  for (let t = 0; t < perTask.length; t++) {
    const b = single[t]!;
    if (b === 0) throw new Error(`relativeImprovement: single[${t}] is 0 (relative improvement undefined)`);
    s += (perTask[t]! - b) / b;
  }
  return s / perTask.length;
}
