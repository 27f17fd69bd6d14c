/**
 * Engine-free contract of a balancing method: T per-task gradients over the
 * shared parameters in, one update direction out. Everything here is plain
 * typed arrays so the math can be tested and changed without the autodiff engine.
 */
import type { Rng } from "../util/rng.ts";

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

export interface BalancingMethod {
  readonly name: string;
  readonly kind: MethodKind;
  readonly numTasks: number;
  /** Combine the task gradients of one step. Must never return NaN/Inf for finite input. */
  combine(input: BalanceInput): BalanceOutput;
  /** Gradient-free path for loss weighting (see LossWeighting). */
  readonly lossWeighting?: LossWeighting;
  /** Called once at the end of each epoch with that epoch's mean per-task training losses (DWA uses it). */
  endEpoch?(meanLosses: Float64Array): void;
  /** JSON-serialisable state for checkpoints (EMA targets, learned log-variances, loss history, ...). */
  getState(): JsonValue;
  setState(state: JsonValue): void;
}

/**
 * A guarantee a method declares in its registry entry. One cross-method test
 * (test/balance/properties.test.ts) checks every declaration of every registered
 * method, on a freshly created method's first steps, in the spirit of TorchJD's
 * aggregator property tests:
 * - "permutation-equivariant": permuting the tasks (gradients, losses) permutes the
 *   coefficients the same way, so the direction is unchanged. Declared only by
 *   methods that draw no random order.
 * - "non-conflicting": <direction, g_i> >= 0 for every task i (up to float tolerance).
 * - "scale-equivariant": scaling every gradient by c > 0 scales the direction by c.
 * - "scale-invariant": scaling every gradient by c > 0 leaves the direction unchanged.
 * - "linear-combination": direction = Σ_i coeffs_i g_i (it lies in the span of the task gradients).
 * - "deterministic": the same input gives the same output without drawing from rng.
 */
export type MethodProperty = "permutation-equivariant" | "non-conflicting" | "scale-equivariant" | "scale-invariant" | "linear-combination" | "deterministic";

export const METHOD_PROPERTIES: readonly MethodProperty[] = ["permutation-equivariant", "non-conflicting", "scale-equivariant", "scale-invariant", "linear-combination", "deterministic"];

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
