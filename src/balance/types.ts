/**
 * Engine-free contract of a balancing method: T per-task gradients over the
 * shared parameters in, one update direction out. Everything here is plain
 * typed arrays so the math can be tested and changed without the autodiff engine.
 */
import type { Rng } from "../util/rng.ts";
import type { WeightExpr } from "./weightrule.ts";

export type JsonValue = null | boolean | number | string | JsonValue[] | { [k: string]: JsonValue };

export interface BalanceInput {
  /** T task gradients over the shared parameters, each of length d (never mutated). */
  grads: readonly Float32Array[];
  /** T task losses at this step (the un-weighted per-task losses). */
  losses: Float64Array;
  /** Global optimisation step, starting at 0. */
  step: number;
  /** Epoch index, starting at 0. */
  epoch: number;
  /** Seeded generator owned by the trainer (checkpointed with it). */
  rng: Rng;
  /**
   * Optional precomputed Gramian (T*T row-major, float64) of `grads`. Methods
   * must accept it to avoid recomputing the T^2 dot products; computed if absent.
   */
  gram?: Float64Array;
  /**
   * Length of the prefix of every gradient whose layout is the same at every step
   * (the shared dense parameters). Entries after it (this batch's embedding rows)
   * refer to different parameters from step to step, so methods that keep
   * per-coordinate history (DB-MTL's EMA) must only keep it over the prefix.
   * Undefined = the whole vector is stable.
   */
  stableDim?: number;
  /**
   * Optional layout of the flat vector as consecutive parameter tensors: tensor k
   * covers [segments[k], segments[k+1]) (length n+1, segments[0] = 0, last = d,
   * non-decreasing). The trainer gives one per shared dense parameter, then one per
   * embedding table (this batch's rows of it). The count and order of the tensors are
   * the same at every step; the lengths of the embedding ones vary with the batch.
   * Used by per-tensor methods (MetaBalance); undefined = the whole vector is one tensor.
   */
  segments?: Int32Array;
}

export interface BalanceDiagnostics {
  /** ‖g_i‖ of the raw task gradients. */
  norms: Float64Array;
  /** Pairwise cosine similarities of the raw gradients, T*T row-major (diagonal 1, or 0 for a zero gradient). */
  cosines: Float64Array;
  /** Number of unordered task pairs with <g_i, g_j> < 0. */
  conflicts: number;
}

export interface BalanceOutput {
  /** Combined update direction over the shared parameters (length d). The optimiser descends along it. */
  direction: Float32Array;
  /** direction = Σ_i coeffs[i] * g_i (every method here yields such a linear combination). */
  coeffs: Float64Array;
  /**
   * Scale applied to task i's gradient on its task-specific parameters (towers,
   * gates, task experts). Loss-weighting methods return their loss weights;
   * gradient-surgery methods return 1 for every task.
   */
  taskScale: Float64Array;
  /** Loss weights, for loss-weighting methods (undefined otherwise). */
  weights?: Float64Array;
  diagnostics: BalanceDiagnostics;
}

export type MethodKind = "loss-weighting" | "gradient";

/**
 * Offered by loss-weighting methods whose weights do not depend on this step's
 * gradients (EW, UW, DWA, RLW). The trainer then runs ONE backward pass of
 * sum_t w_t L_t instead of T per-task passes on steps that record no
 * diagnostics. Contract: `combine(input)` equals `w = weights(info)`, then
 * `observe(input.losses)`, then direction = sum_t w_t g_t with taskScale = w, so
 * both paths give the same update and the same state.
 */
export interface LossWeighting {
  /** This step's loss weights, drawn before the forward pass (may consume `rng`). */
  weights(info: { step: number; epoch: number; rng: Rng }): Float64Array;
  /** This step's per-task losses, after the forward pass (UW's log-variance update). */
  observe?(losses: Float64Array): void;
}

/**
 * Offered by loss-weighting methods whose weights depend on THIS step's losses
 * (FAMO, STCH): w = rule(losses; params), the rule a tiny expression (see
 * src/balance/weightrule.ts) that the engine compiles into the training program,
 * so on steps without diagnostics the losses and the weighted backward run as one
 * graph (the weights enter the backward as constants). Contract: `combine(input)`
 * equals `p = params(info)`, `w = evalWeightRule(rule, input.losses, p)`, then
 * `observe(input.losses, w)`, then direction = Σ_t w_t g_t with taskScale = w, so
 * both paths give the same update (up to the program's float precision) and the
 * same state.
 */
export interface LossAwareWeighting {
  /** The weight rule; fixed for the method's lifetime (programs are compiled once per rule). */
  readonly rule: WeightExpr;
  /** This step's rule parameters (T-vectors), taken before the forward pass. */
  params(info: { step: number; epoch: number; rng: Rng }): Float64Array[];
  /** This step's losses and the weights the rule gave them (FAMO keeps the losses for afterStep). */
  observe?(losses: Float64Array, weights: Float64Array): void;
}

export interface BalancingMethod {
  readonly name: string;
  readonly kind: MethodKind;
  readonly numTasks: number;
  /** Combine the task gradients of one step. Must never return NaN/Inf for finite input. */
  combine(input: BalanceInput): BalanceOutput;
  /** Gradient-free path for loss weighting (see LossWeighting). */
  readonly lossWeighting?: LossWeighting;
  /** One-program path for weights that depend on this step's losses (see LossAwareWeighting). */
  readonly lossAware?: LossAwareWeighting;
  /**
   * When present, the trainer's step calls it after the parameter update with the
   * per-task losses of the SAME batch at the NEW parameters (same dropout masks),
   * from an extra forward-only run (FAMO's exact ξ update). Called on every step, on
   * both paths.
   */
  afterStep?(newLosses: Float64Array): void;
  /** Called once at the end of each epoch with that epoch's mean per-task training losses (DWA uses it). */
  endEpoch?(meanLosses: Float64Array): void;
  /** JSON-serialisable state for checkpoints (EMA targets, learned log-variances, loss history, ...). */
  getState(): JsonValue;
  setState(state: JsonValue): void;
}

/**
 * A guarantee a method declares in its registry entry (`properties`). One cross-method test
 * (test/balance/properties.test.ts, checks in test/balance/property-checks.ts) checks every
 * declaration of every registered method, in the spirit of TorchJD's aggregator property
 * tests: T = 2..6 tasks; random, conflicting, near-opposite, zero and widely differently
 * scaled gradients; a fresh method's first step and four steps with its state carried; through
 * `combine` and, where present, `weightsFromGram`. Declare only what holds on all of that; a
 * property not declared is not checked (and not promised).
 * - "permutation-equivariant": permuting the tasks (gradients, losses) permutes the
 *   coefficients the same way, so the direction is unchanged. Not for methods that draw a
 *   random order or random weights.
 * - "non-conflicting": <direction, g_i> >= 0 for every task i, for any number of tasks (up to
 *   1e-5 of Σ_j |c_j| ‖g_j‖ ‖g_i‖: float32 rounding and solver stopping rules).
 * - "non-conflicting-two-tasks": the same, guaranteed only for T = 2 (PCGrad's and GradCraft's
 *   projections can create a new conflict with a third task). Implied by "non-conflicting":
 *   declare it only when that does not hold.
 * - "scale-equivariant": scaling every gradient by c > 0 scales the direction by c
 *   (relative error <= 2e-4).
 * - "scale-invariant": scaling every gradient by c > 0 leaves the direction unchanged.
 * - "linear-combination": direction = Σ_i coeffs_i g_i (up to float32 rounding), so `coeffs`
 *   describes the update exactly.
 * - "deterministic": the same input gives the same output, and `rng` is never drawn from.
 */
export type MethodProperty =
  | "permutation-equivariant"
  | "non-conflicting"
  | "non-conflicting-two-tasks"
  | "scale-equivariant"
  | "scale-invariant"
  | "linear-combination"
  | "deterministic";

export const METHOD_PROPERTIES: readonly MethodProperty[] = [
  "permutation-equivariant",
  "non-conflicting",
  "non-conflicting-two-tasks",
  "scale-equivariant",
  "scale-invariant",
  "linear-combination",
  "deterministic",
];

/** Typed registry entry: one per method file. */
export interface MethodEntry<O extends object = object> {
  /** Option users type: `--method <name>`. */
  readonly name: string;
  /** Name in the paper's table (e.g. "UC" for uncertainty weighting). */
  readonly label: string;
  readonly kind: MethodKind;
  /** One line: paper, venue. */
  readonly summary: string;
  readonly defaults: Readonly<O>;
  /** Guarantees this method makes (see MethodProperty); checked for every method by one test. */
  readonly properties?: readonly MethodProperty[];
  /** Validate options (throw an Error saying which option and what to do) and build the method. */
  create(numTasks: number, options?: Partial<O>): BalancingMethod;
  /**
   * Pure form of one step for a caller that already has the T×T Gramian (from another
   * framework, say): the coefficients c with direction = Σ_i c_i g_i, without any
   * d-long vector. Offered by every gradient method whose direction is such a
   * combination (all but DB-MTL, whose direction is an EMA of past gradients). Stateful
   * methods (GradVac, Nash-MTL) take their state in `ctx.state` and return the next one;
   * the inputs are never modified.
   */
  weightsFromGram?(gram: GramInput, options?: Partial<O>, ctx?: GramContext): GramWeights;
}

/** The entry of a gradient method that has the Gramian form (weightsFromGram always present). */
export type GramMethodEntry<O extends object = object> = MethodEntry<O> & { weightsFromGram: NonNullable<MethodEntry<O>["weightsFromGram"]> };

/** A T×T Gramian G_ij = <g_i, g_j>: flat row-major (length T²) or as rows. */
export type GramInput = Float64Array | readonly number[] | readonly (readonly number[])[];

/** What a step needs besides the Gramian (all optional; defaults below). */
export interface GramContext {
  /** Per-task losses (MGDA with normalization "loss" / "loss+" needs them). Default: ones. */
  losses?: ArrayLike<number>;
  /**
   * Generator for methods that draw random orders (PCGrad, PCGrad+, GradVac). Required by
   * them: a call without it throws, rather than silently reusing one fixed order.
   */
  rng?: Rng;
  /** Global step (Nash-MTL re-solves every `updateWeightsEvery` steps). Default 0. */
  step?: number;
  /** Epoch. Default 0. */
  epoch?: number;
  /** The method's state (from a previous call's `state`, or getState()); default: its initial state. */
  state?: JsonValue;
}

export interface GramWeights {
  /** direction = Σ_i coeffs[i] g_i. */
  coeffs: Float64Array;
  /** The method's state after this step (null for stateless methods): pass it back as ctx.state. */
  state: JsonValue;
  diagnostics: BalanceDiagnostics;
}
