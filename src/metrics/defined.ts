/**
 * Undefined metrics: which tasks have an AUC / GAUC on a split, and what to tell the user
 * when one has not.
 *
 * A task whose labels on a split are all one class (all 0, or all 1) has no AUC there (auc.ts
 * returns NaN; sklearn raises), and no GAUC either (no group can hold both classes). A task
 * with both classes but no group holding both (gauc.ts skips one-class groups) has an AUC but
 * no GAUC. Such a value is *undefined*, not bad: averaging it in would turn AV-A / AV-G and the
 * early-stopping score into NaN (or, after a JSON round trip where NaN is written as null, count
 * it as 0). So every consumer averages over the tasks that are defined, says which ones it left
 * out, and shows the undefined cells as "n/a".
 */
import type { SplitMetrics } from "../report/types.ts";

/** A metric value that is defined: a finite number (NaN, ±Infinity, null and undefined are not). */
export function isDefined(x: number | null | undefined): x is number {
  return typeof x === "number" && Number.isFinite(x);
}

/** Mean of `xs` over the indices `idx` (all indices when omitted); NaN when `idx` is empty or a value there is undefined. */
export function meanAt(xs: readonly (number | null)[], idx?: readonly number[]): number {
  const at = idx ?? xs.map((_, i) => i);
  if (at.length === 0) return NaN;
  let s = 0;
  for (const i of at) {
    const x = xs[i];
    if (!isDefined(x)) return NaN;
    s += x;
  }
  return s / at.length;
}

/** One task whose AUC and/or GAUC is undefined on one split. */
export interface UndefinedMetric {
  task: string;
  split: "val" | "test";
  /** Both are undefined for a one-class (or empty) split; only `gauc` when no group holds both classes. */
  auc: boolean;
  gauc: boolean;
  /** The one class present ("all 0" / "all 1"), when the positives were counted; null otherwise. */
  onlyClass: 0 | 1 | null;
}

/** Tasks with an undefined AUC or GAUC on a split, from its metrics (positives/rows are used when recorded). */
export function undefinedMetrics(tasks: readonly string[], split: "val" | "test", m: SplitMetrics): UndefinedMetric[] {
  const out: UndefinedMetric[] = [];
  tasks.forEach((task, t) => {
    const auc = !isDefined(m.auc[t]);
    const gauc = auc || !isDefined(m.gauc[t]);
    if (!gauc) return;
    const pos = m.positives?.[t];
    const onlyClass = auc && m.rows !== undefined && m.rows > 0 && pos !== undefined ? (pos === 0 ? 0 : pos === m.rows ? 1 : null) : null;
    out.push({ task, split, auc, gauc, onlyClass });
  });
  return out;
}

/**
 * The warning for one undefined metric, naming the task, the split and what it is left out of:
 * on val, early stopping (the mean val AUC); on test, AV-A/AV-G and RI-A/RI-G.
 */
export function undefinedWarning(u: UndefinedMetric): string {
  const what = `task "${u.task}": `;
  if (u.auc) {
    const cls = u.onlyClass === null ? "" : ` (all ${u.onlyClass})`;
    const out = u.split === "val" ? "early stopping (the mean val AUC)" : "AV-A/AV-G and RI-A/RI-G";
    return `${what}the ${u.split} split has only one class${cls}: its ${u.split} AUC and GAUC are undefined; it is left out of ${out}`;
  }
  const out = u.split === "val" ? "early stopping uses the AUC, so it still counts there" : "it is left out of AV-G and RI-G";
  return `${what}no group of the ${u.split} split has both classes: its ${u.split} GAUC is undefined; ${out}`;
}

/** Warnings for every task with an undefined metric on a split ("the test split is empty" once for an empty split). */
export function splitWarnings(tasks: readonly string[], split: "val" | "test", m: SplitMetrics): string[] {
  if (m.rows === 0) return [`the ${split} split is empty: every task's ${split} AUC and GAUC are undefined`];
  return undefinedMetrics(tasks, split, m).map(undefinedWarning);
}
