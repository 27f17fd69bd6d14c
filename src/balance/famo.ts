/**
 * FAMO — Fast Adaptive Multitask Optimization.
 * Paper: B. Liu, Y. Feng, P. Stone, Q. Liu, "FAMO: Fast Adaptive Multitask
 * Optimization", NeurIPS 2023 (reference code: github.com/Cranial-XIX/FAMO).
 *
 * Update rule. Task logits ξ ∈ R^T (ξ = 0 at the start), z = softmax(ξ). At step t,
 * with ℓ_i = ℓ_i(θ_t) the task losses of the batch,
 *     c_t = (Σ_i z_i / ℓ_i)^(-1),    d_t = Σ_i c_t · z_i/ℓ_i · ∇ℓ_i(θ_t),
 * i.e. loss weights w_i = (z_i/ℓ_i) / Σ_j (z_j/ℓ_j) (they sum to 1; d_t is the
 * gradient of Σ_i z_i log ℓ_i scaled by c_t). The model's optimiser steps along d_t;
 * then, with the losses of the SAME batch at the new parameters θ_{t+1},
 *     δ_i = log ℓ_i(θ_t) − log ℓ_i(θ_{t+1}),
 *     ∇_ξ = J_z(ξ)^T δ = z ⊙ (δ − <z, δ>)          (J_z the softmax Jacobian)
 *     ξ ← Adam_β(ξ; ∇_ξ + γ ξ)       (the practical form: the paper's appendix
 *                                     algorithm and the reference code)
 * or, with `optimizer: "sgd"`, ξ ← ξ − β(∇_ξ + γ ξ) (the plain gradient step of the
 * paper's main algorithm).
 * Tasks whose log-loss fell more get a smaller logit.
 *
 * `update: "exact"` (default, the paper's rule): the ξ update uses the `afterStep`
 * hook: the trainer's step re-evaluates the batch at θ_{t+1} with a forward-only
 * program (the per-task losses, no backward) with the same dropout masks / gate noise
 * as the step, and passes the losses here. That extra forward pass is FAMO's cost over
 * EW (measured 1.30x EW's step, PLE T=6 batch 4096, see the report of #20).
 * `update: "next-batch"` (the one-step approximation, no extra pass, EW's cost): the
 * next step's own losses ℓ(θ_{t+1}) on batch t+1 stand for the re-evaluation, so
 * δ = log ℓ_t(θ_t) − log ℓ_{t+1}(θ_{t+1}) mixes the parameter change with the change of
 * batch; and since step t+1's weights are computed in its program before its losses are
 * known, ξ is updated after them: step t+1 still uses ξ_t, one step later than the
 * exact rule.
 *
 * Loss weights depend on this step's losses, so the method offers `lossAware`: the
 * rule w = normalize(z / (max(ℓ − minLoss, 0) + eps)) is compiled into the training
 * program (one graph run, EW's cost) on steps without diagnostics.
 *
 * Hyperparameters (defaults): lr = 0.025 (β, the learning rate of ξ), gamma = 0.001
 * (γ, the decay of ξ; Algorithm 2 and LibMTL), optimizer = "adam" (β1 0.9, β2 0.999,
 * eps 1e-8, PyTorch's Adam with weight_decay γ), minLoss = 0 (lower bound b subtracted
 * from every loss), eps = 1e-8 (added to ℓ − b before the log and the division),
 * update = "exact" ("next-batch": the one-step approximation above).
 *
 * Differences from the reference code (Cranial-XIX/FAMO, famo.py and
 * methods/weight_methods.py; LibMTL's FAMO is the same code):
 * - γ: the reference's default is 0.01 in famo.py, 1e-5 in weight_methods.py and
 *   0.001 in the NYUv2 run script and LibMTL (also, per TorchJD's review of its FAMO,
 *   in the paper's appendix algorithm); 0.001 here.
 * - The weights sum to 1 (EW's sum to T), as in the reference: at the same model
 *   learning rate the step is about T times smaller than EW's.
 * - The reference clips the shared parameters' gradient norm to max_norm = 1 after
 *   the backward; that is a training trick outside the weighting and is not done here.
 * - min_losses: the reference keeps a per-task tensor (zeros unless set_min_losses is
 *   called); here one scalar `minLoss` for every task, default 0. ℓ − b is clamped at
 *   0 before adding eps (the reference would take the log of a negative number when a
 *   loss falls below its bound).
 * - The normalisation constant c_t is the same (the reference's `c = (z/D).sum()`,
 *   detached, dividing Σ z log D); the weights here are exactly z_i/(c·D_i) with
 *   c = Σ z/D, applied as loss weights.
 * - The reference re-evaluates the batch in train mode, so a model with dropout would
 *   draw fresh masks; here the step's own masks are reused, so δ measures the parameter
 *   change only.
 * - LibMTL's trainer and the reference experiments re-evaluate the batch after
 *   optimizer.step() (the exact rule, as here); neither offers "next-batch".
 * State: ξ, the Adam moments of ξ, and the losses of the current step (until afterStep;
 * with "next-batch", until the next step).
 */
import type { BalanceInput, BalancingMethod, JsonValue, MethodEntry } from "./types.ts";
import { NonFiniteInputError, checkInput, checkRange, checkTasks, finish, gramOf, withDefaults } from "./common.ts";
import { adamFromJson, adamInit, adamStep, adamToJson, numArray, stateObject } from "./methodkit.ts";
import { W, evalWeightRule, type WeightExpr } from "./weightrule.ts";

export interface FAMOOptions {
  /** β: learning rate of the task logits ξ. */
  lr: number;
  /** γ: decay of ξ (Adam's weight_decay, or the γξ term of Algorithm 1). */
  gamma: number;
  /** "adam" (Algorithm 2 / reference code) or "sgd" (Algorithm 1). */
  optimizer: "adam" | "sgd";
  /** Lower bound b subtracted from every task loss. */
  minLoss: number;
  /** Added to ℓ − b before the division and the log. */
  eps: number;
  /** "exact": re-evaluate the batch after the update (afterStep); "next-batch": the next step's losses instead. */
  update: "exact" | "next-batch";
}

export const FAMO_DEFAULTS: Readonly<FAMOOptions> = Object.freeze({ lr: 0.025, gamma: 0.001, optimizer: "adam", minLoss: 0, eps: 1e-8, update: "exact" });

/** FAMO's loss weights w = normalize(z / (max(ℓ − b, 0) + eps)) as a weight rule; param 0 is z = softmax(ξ). */
export function famoRule(minLoss: number, eps: number): WeightExpr {
  const D = W.add(W.max(W.sub(W.losses(), W.c(minLoss)), W.c(0)), W.c(eps));
  return W.normalize(W.div(W.param(0), D));
}

/** softmax(ξ) in float64. */
export function softmax(x: ArrayLike<number>): Float64Array {
  let m = -Infinity;
  for (let i = 0; i < x.length; i++) m = Math.max(m, x[i]!);
  const out = Float64Array.from(x, (v) => Math.exp(v - m));
  let s = 0;
  for (const v of out) s += v;
  for (let i = 0; i < out.length; i++) out[i] = out[i]! / s;
  return out;
}

/** ∇_ξ <softmax(ξ), δ> = z ⊙ (δ − <z, δ>), δ_i = log D_i(prev) − log D_i(next), D = max(ℓ − b, 0) + eps. */
export function famoLogitGrad(xi: ArrayLike<number>, prev: ArrayLike<number>, next: ArrayLike<number>, minLoss: number, eps: number): Float64Array {
  const z = softmax(xi);
  const T = z.length;
  const delta = new Float64Array(T);
  let zd = 0;
  for (let i = 0; i < T; i++) {
    delta[i] = Math.log(Math.max(prev[i]! - minLoss, 0) + eps) - Math.log(Math.max(next[i]! - minLoss, 0) + eps);
    zd += z[i]! * delta[i]!;
  }
  for (let i = 0; i < T; i++) delta[i] = z[i]! * (delta[i]! - zd);
  return delta;
}

const OPTIMIZERS = ["adam", "sgd"];
const UPDATES = ["exact", "next-batch"];

export const famo: MethodEntry<FAMOOptions> = {
  name: "famo",
  label: "FAMO",
  kind: "loss-weighting",
  summary: "FAMO (Liu, Feng, Stone & Liu, NeurIPS 2023): w ∝ softmax(ξ)/ℓ, ξ learned from the log-loss decrease of each step",
  defaults: FAMO_DEFAULTS,
  properties: ["permutation-equivariant", "scale-equivariant", "linear-combination", "deterministic"],
  create(numTasks: number, options?: Partial<FAMOOptions>): BalancingMethod {
    checkTasks("famo", numTasks);
    const o = withDefaults("famo", FAMO_DEFAULTS, options);
    const lr = checkRange("famo", "lr", o.lr, 0, Infinity);
    const gamma = checkRange("famo", "gamma", o.gamma, 0, Infinity);
    const minLoss = checkRange("famo", "minLoss", o.minLoss, 0, Infinity);
    const eps = checkRange("famo", "eps", o.eps, 1e-30, 1);
    if (!OPTIMIZERS.includes(o.optimizer)) throw new Error(`famo: option optimizer must be "adam" or "sgd", got ${JSON.stringify(o.optimizer)}`);
    const useAdam = o.optimizer === "adam";
    if (!UPDATES.includes(o.update)) throw new Error(`famo: option update must be "exact" or "next-batch", got ${JSON.stringify(o.update)}`);
    const exact = o.update === "exact";
    const T = numTasks;
    const rule = famoRule(minLoss, eps);
    let xi: Float64Array = new Float64Array(T);
    let adam = adamInit(T);
    /** This step's losses (before the update), kept until afterStep. */
    let pending: Float64Array | null = null;

    /** ξ ← ξ − step(J^T δ + γξ), δ = log D(prev) − log D(next). */
    const updateLogits = (prev: Float64Array, next: Float64Array): void => {
      const g = famoLogitGrad(xi, prev, next, minLoss, eps);
      for (let i = 0; i < T; i++) g[i] = g[i]! + gamma * xi[i]!;
      if (useAdam) adamStep(xi, g, adam, lr);
      else for (let i = 0; i < T; i++) xi[i] = xi[i]! - lr * g[i]!;
    };
    // called after this step's weights were computed from ξ
    const remember = (losses: Float64Array): void => {
      for (let i = 0; i < T; i++) {
        const l = losses[i]!;
        if (!Number.isFinite(l)) throw new NonFiniteInputError(`famo: loss of task ${i} is not finite (${l})`, i, "loss", -1, l);
      }
      if (!exact && pending !== null) updateLogits(pending, losses);
      pending = Float64Array.from(losses);
    };

    const method: BalancingMethod = {
      name: "famo",
      kind: "loss-weighting",
      numTasks,
      combine(input: BalanceInput) {
        checkInput("famo", T, input);
        if (input.losses.length !== T) throw new Error(`famo: expected ${T} losses, got ${input.losses.length}`);
        const G = gramOf(input);
        const w = evalWeightRule(rule, input.losses, [softmax(xi)]);
        remember(input.losses);
        return finish(input.grads, G, Float64Array.from(w), { taskScale: Float64Array.from(w), weights: w });
      },
      lossAware: {
        rule,
        params: () => [softmax(xi)],
        observe: (losses) => remember(losses),
      },
      afterStep(newLosses: Float64Array) {
        if (newLosses.length !== T) throw new Error(`famo: afterStep expected ${T} losses, got ${newLosses.length}`);
        if (pending === null) throw new Error("famo: afterStep called before combine (or twice for one step)");
        for (let i = 0; i < T; i++) {
          const l = newLosses[i]!;
          if (!Number.isFinite(l)) throw new NonFiniteInputError(`famo: loss of task ${i} after the update is not finite (${l})`, i, "loss", -1, l);
        }
        updateLogits(pending, newLosses);
        pending = null;
      },
      getState(): JsonValue {
        return { xi: Array.from(xi), adam: adamToJson(adam), pending: pending ? Array.from(pending) : null };
      },
      setState(state: JsonValue) {
        const j = stateObject(state, "famo");
        const nxi = numArray(j.xi, T, "famo: setState: xi");
        const nadam = adamFromJson(j.adam, T, "famo");
        const np = j.pending === null || j.pending === undefined ? null : numArray(j.pending, T, "famo: setState: pending");
        xi = nxi;
        adam = nadam;
        pending = np;
      },
    };
    // "next-batch" has no afterStep: the trainer then runs no extra forward pass
    if (!exact) delete method.afterStep;
    return method;
  },
};
