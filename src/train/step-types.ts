/**
 * The types a training step takes and returns, in their own module so that the step pipeline
 * (step.ts) and the representation step (representation-step.ts) both use them without
 * importing each other.
 */
import type { BalanceOutput } from "../balance/types.ts";
import type { BalanceAt } from "../grad/representation.ts";
import type { Rng } from "../util/rng.ts";

export type GradScope = "shared" | "shared-dense" | "all";
export const GRAD_SCOPES: readonly GradScope[] = ["shared", "shared-dense", "all"];

export interface StepInfo {
  step: number;
  epoch: number;
  /** Trainer's generator: one draw per step seeds the dropout masks / gate noise; also passed to the method. */
  rng: Rng;
  scope?: GradScope;
  /**
   * Whether this step must compute per-task gradients and diagnostics (default
   * true). When false and the method offers `lossWeighting` (or `lossAware`), the
   * weighted-sum (or loss-aware) program runs instead.
   */
  diagnostics?: boolean;
  /**
   * Where the method balances (default "parameters"): "representation" takes the per-task
   * gradients at the architecture's shared representation and pushes the combined one back
   * through the trunk (src/train/representation-step.ts). Loss-weighting steps without
   * diagnostics keep the one-program path (the same update: their combination is linear).
   */
  balanceAt?: BalanceAt;
}

export interface StepResult {
  /** Per-task mean BCE losses of the batch (train mode, before the update). */
  losses: Float64Array;
  balance: BalanceOutput;
  /** Value of the direct penalty (SNR expected-L0 term), 0 for other models. */
  penalty: number;
  /** Length of the flat per-task vectors given to the method. */
  dim: number;
}
