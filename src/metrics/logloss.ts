/**
 * Mean binary cross entropy (log loss).
 *
 *   logloss = -(1/n) Σ [ y log p + (1 - y) log(1 - p) ],  p clipped to [eps, 1 - eps]
 *
 * Labels may be soft targets in [0, 1] (binary labels are the usual case).
 * Accumulation is in float64. Empty input returns NaN.
 */
import { type LabelArray, type ScoreArray, checkSameLength } from "./auc.ts";

export interface LoglossOptions {
  /** Probability clipping; default 1e-7 (must be in (0, 0.5)). */
  eps?: number;
}

function checkSoftLabels(fn: string, labels: LabelArray): void {
  for (let i = 0; i < labels.length; i++) {
    const v = labels[i]!;
    if (!(v >= 0 && v <= 1)) throw new Error(`${fn}: labels[${i}] = ${v} is outside [0, 1]`);
  }
}

/**
 * Log loss from probabilities.
 * @throws on length mismatch, labels outside [0,1], probabilities outside [0,1] or NaN (names the index), bad eps.
 */
export function logloss(labels: LabelArray, probs: ScoreArray, opts: LoglossOptions = {}): number {
  const eps = opts.eps ?? 1e-7;
  if (!(eps > 0 && eps < 0.5)) throw new Error(`logloss: opts.eps must be in (0, 0.5), got ${eps}`);
  checkSameLength("logloss", labels, probs, "probs");
  checkSoftLabels("logloss", labels);
  const n = labels.length;
  if (n === 0) return NaN;
  const hi = 1 - eps;
  let sum = 0;
  for (let i = 0; i < n; i++) {
    const raw = probs[i]!;
    if (!(raw >= 0 && raw <= 1)) throw new Error(`logloss: probs[${i}] = ${raw} is outside [0, 1]`);
    const p = raw < eps ? eps : raw > hi ? hi : raw;
    const y = labels[i]!;
    // Skip the zero-weight term so y ∈ {0,1} costs one log.
    if (y !== 0) sum -= y * Math.log(p);
    if (y !== 1) sum -= (1 - y) * Math.log1p(-p);
  }
  return sum / n;
}

/**
 * Log loss from logits z (p = sigmoid(z)), numerically stable for any finite z:
 *   per row  max(z, 0) - z·y + log1p(exp(-|z|)).
 * No clipping: the result is the exact cross entropy, finite for finite logits.
 * @throws on length mismatch, labels outside [0,1], or a non-finite logit (names the index).
 */
export function loglossFromLogits(labels: LabelArray, logits: ScoreArray): number {
  checkSameLength("loglossFromLogits", labels, logits, "logits");
  checkSoftLabels("loglossFromLogits", labels);
  const n = labels.length;
  if (n === 0) return NaN;
  let sum = 0;
  for (let i = 0; i < n; i++) {
    const z = logits[i]!;
    if (!Number.isFinite(z)) throw new Error(`loglossFromLogits: logits[${i}] = ${z} is not finite`);
    sum += (z > 0 ? z : 0) - z * labels[i]! + Math.log1p(Math.exp(-Math.abs(z)));
  }
  return sum / n;
}
