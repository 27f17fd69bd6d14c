/**
 * GradNorm — Gradient Normalization for adaptive loss balancing.
 * Paper: Z. Chen, V. Badrinarayanan, C.-Y. Lee, A. Rabinovich, "GradNorm: Gradient
 * Normalization for Adaptive Loss Balancing in Deep Multitask Networks", ICML 2018.
 *
 * Update rule, every call (the given gradients are the shared layer's gradients
 * of the *unweighted* task losses, so ‖∇_W w_i L_i‖ = w_i ‖g_i‖):
 *   G_W^i = w_i ‖g_i‖,  Ḡ_W = mean_i G_W^i,
 *   L̃_i = L_i / L_i(0),  r_i = L̃_i / mean_j L̃_j,
 *   target_i = Ḡ_W · r_i^α                                   (treated as a constant),
 *   L_grad(w) = Σ_i |G_W^i − target_i|,   ∂L_grad/∂w_i = sign(G_W^i − target_i) · ‖g_i‖.
 * The step's output uses the current w (direction = Σ w_i g_i, towers scaled by
 * w_i); then w takes one Adam step on ∂L_grad/∂w, is floored at `minWeight`, and is
 * renormalised to Σ_i w_i = T (the paper's renormalisation).
 *
 * Hyperparameters (defaults): alpha = 1.5 (restoring force), lr = 0.025 (Adam lr
 * for w; β1 = 0.9, β2 = 0.999, eps = 1e-8 — the learning rate commonly used for
 * GradNorm's weights), minWeight = 1e-3 (floor before renormalising so a weight can
 * never reach 0 or go negative).
 * L_i(0) = the losses passed to the first combine call (guarded below by 1e-12);
 * if mean L̃ ≤ 0 every r_i = 1.
 *
 * Differences from LibMTL's GradNorm: LibMTL parameterises w = T·softmax(θ),
 * trains θ with the model's optimiser, uses the mean epoch-0 losses as L(0) and
 * applies GradNorm only from epoch 1 (equal weights during epoch 0). Here w is
 * updated directly as in the paper, with its own Adam, from the first step.
 * State: w, L(0), Adam moments.
 */
import type { BalanceInput, BalancingMethod, JsonValue, MethodEntry } from "./types.ts";
import { checkInput, checkRange, checkTasks, finish, gramOf, withDefaults } from "./common.ts";
import { normsFromGram } from "./linalg.ts";
import { adamFromJson, adamInit, adamStep, adamToJson, numArray, stateObject } from "./methodkit.ts";

export interface GradNormOptions {
  /** Asymmetry α of the restoring force. */
  alpha: number;
  /** Adam learning rate for the loss weights. */
  lr: number;
  /** Floor applied to every weight before renormalising to Σw = T. */
  minWeight: number;
}

/** target_i = mean(w∘norms) · r_i^α with r from loss ratios (constant in the GradNorm loss). */
export function gradnormTarget(w: Float64Array, norms: Float64Array, losses: Float64Array, initial: Float64Array, alpha: number): Float64Array {
  const T = w.length;
  let gbar = 0;
  for (let i = 0; i < T; i++) gbar += (w[i]! * norms[i]!) / T;
  const ratio = new Float64Array(T);
  let mr = 0;
  for (let i = 0; i < T; i++) {
    ratio[i] = losses[i]! / Math.max(initial[i]!, 1e-12);
    mr += ratio[i]! / T;
  }
  const target = new Float64Array(T);
  for (let i = 0; i < T; i++) {
    const r = mr > 0 ? Math.max(ratio[i]!, 0) / mr : 1;
    target[i] = gbar * r ** alpha;
  }
  return target;
}

/** L_grad(w) = Σ |w_i ‖g_i‖ − target_i| for a fixed target. */
export function gradnormObjective(w: Float64Array, norms: Float64Array, target: Float64Array): number {
  let v = 0;
  for (let i = 0; i < w.length; i++) v += Math.abs(w[i]! * norms[i]! - target[i]!);
  return v;
}

/** ∂L_grad/∂w_i = sign(w_i ‖g_i‖ − target_i) ‖g_i‖ (target constant). */
export function gradnormGrad(w: Float64Array, norms: Float64Array, target: Float64Array): Float64Array {
  const g = new Float64Array(w.length);
  for (let i = 0; i < w.length; i++) g[i] = Math.sign(w[i]! * norms[i]! - target[i]!) * norms[i]!;
  return g;
}

export const gradnorm: MethodEntry<GradNormOptions> = {
  name: "gradnorm",
  label: "GradNorm",
  kind: "loss-weighting",
  summary: "GradNorm (Chen et al., ICML 2018): learn loss weights so weighted gradient norms track relative training rates",
  defaults: { alpha: 1.5, lr: 0.025, minWeight: 1e-3 },
  properties: ["permutation-equivariant", "scale-equivariant", "linear-combination", "deterministic"],
  create(numTasks: number, options?: Partial<GradNormOptions>): BalancingMethod {
    checkTasks("gradnorm", numTasks);
    const o = withDefaults("gradnorm", gradnorm.defaults, options);
    const alpha = checkRange("gradnorm", "alpha", o.alpha, 0, 100);
    const lr = checkRange("gradnorm", "lr", o.lr, 0, Infinity);
    const minWeight = checkRange("gradnorm", "minWeight", o.minWeight, 0, 1);
    const T = numTasks;
    let w: Float64Array = new Float64Array(T).fill(1);
    let initial: Float64Array | null = null;
    let adam = adamInit(T);
    return {
      name: "gradnorm",
      kind: "loss-weighting",
      numTasks,
      combine(input: BalanceInput) {
        checkInput("gradnorm", T, input);
        if (input.losses.length !== T) throw new Error(`gradnorm: expected ${T} losses, got ${input.losses.length}`);
        for (let i = 0; i < T; i++) {
          if (!Number.isFinite(input.losses[i]!)) throw new Error(`gradnorm: loss of task ${i} is not finite (${input.losses[i]})`);
        }
        const G = gramOf(input);
        if (initial === null) initial = Float64Array.from(input.losses);
        const used = Float64Array.from(w);
        const norms = normsFromGram(G, T);
        const target = gradnormTarget(w, norms, input.losses, initial, alpha);
        adamStep(w, gradnormGrad(w, norms, target), adam, lr);
        let s = 0;
        for (let i = 0; i < T; i++) {
          w[i] = Math.max(w[i]!, minWeight);
          s += w[i]!;
        }
        for (let i = 0; i < T; i++) w[i] = (T * w[i]!) / s;
        return finish(input.grads, G, Float64Array.from(used), { taskScale: Float64Array.from(used), weights: used });
      },
      getState(): JsonValue {
        return { w: Array.from(w), initial: initial === null ? null : Array.from(initial), adam: adamToJson(adam) };
      },
      setState(state: JsonValue) {
        const j = stateObject(state, "gradnorm");
        w = numArray(j.w, T, "gradnorm: setState: w");
        initial = j.initial === null || j.initial === undefined ? null : numArray(j.initial, T, "gradnorm: setState: initial");
        adam = adamFromJson(j.adam, T, "gradnorm");
      },
    };
  },
};
