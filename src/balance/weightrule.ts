/**
 * Weight rules: the loss weights of a loss-aware weighting (FAMO, STCH) as a tiny
 * expression over this step's per-task losses, so one rule is both evaluated here
 * in float64 (the per-task path, `combine`) and compiled into the training program
 * (src/engine/programs.ts, kind "loss-aware"): there the losses and the weighted
 * backward run in one graph, the weights entering the backward as cotangents of
 * the losses (so they are constants of the backward: no gradient flows through
 * the rule).
 *
 * Every value is a vector of T entries (one per task); a constant is a scalar
 * broadcast to T. Ops:
 * - `losses`: this step's T losses; `param k`: the k-th T-vector of parameters
 *   the method hands over each step (its state: FAMO's softmax(ξ), STCH's λ, z*);
 * - elementwise `add sub mul div max exp log`;
 * - `softmax` over the tasks (max-shifted), `normalize` x / Σ_j x_j.
 * A rule is plain JSON, fixed for the method's lifetime (programs are cached by it).
 */

export type WeightExpr =
  | { readonly op: "losses" }
  | { readonly op: "param"; readonly index: number }
  | { readonly op: "const"; readonly value: number }
  | { readonly op: "add" | "sub" | "mul" | "div" | "max"; readonly a: WeightExpr; readonly b: WeightExpr }
  | { readonly op: "exp" | "log" | "softmax" | "normalize"; readonly a: WeightExpr };

/** Small constructors so rules read as formulas. */
export const W = {
  losses: (): WeightExpr => ({ op: "losses" }),
  param: (index: number): WeightExpr => ({ op: "param", index }),
  c: (value: number): WeightExpr => ({ op: "const", value }),
  add: (a: WeightExpr, b: WeightExpr): WeightExpr => ({ op: "add", a, b }),
  sub: (a: WeightExpr, b: WeightExpr): WeightExpr => ({ op: "sub", a, b }),
  mul: (a: WeightExpr, b: WeightExpr): WeightExpr => ({ op: "mul", a, b }),
  div: (a: WeightExpr, b: WeightExpr): WeightExpr => ({ op: "div", a, b }),
  max: (a: WeightExpr, b: WeightExpr): WeightExpr => ({ op: "max", a, b }),
  exp: (a: WeightExpr): WeightExpr => ({ op: "exp", a }),
  log: (a: WeightExpr): WeightExpr => ({ op: "log", a }),
  softmax: (a: WeightExpr): WeightExpr => ({ op: "softmax", a }),
  normalize: (a: WeightExpr): WeightExpr => ({ op: "normalize", a }),
};

const BINARY = new Set(["add", "sub", "mul", "div", "max"]);
const UNARY = new Set(["exp", "log", "softmax", "normalize"]);

/** Number of parameter vectors a rule reads (1 + its largest param index; 0 when none). Throws on a malformed rule. */
export function ruleParamCount(e: WeightExpr, where = "weight rule"): number {
  switch (e.op) {
    case "losses":
      return 0;
    case "param":
      if (!Number.isInteger(e.index) || e.index < 0) throw new Error(`${where}: param index must be an integer >= 0, got ${String(e.index)}`);
      return e.index + 1;
    case "const":
      if (typeof e.value !== "number" || !Number.isFinite(e.value)) throw new Error(`${where}: constant must be a finite number, got ${String(e.value)}`);
      return 0;
    default:
      if (BINARY.has(e.op)) {
        const b = e as { a: WeightExpr; b: WeightExpr };
        return Math.max(ruleParamCount(b.a, where), ruleParamCount(b.b, where));
      }
      if (UNARY.has(e.op)) return ruleParamCount((e as { a: WeightExpr }).a, where);
      throw new Error(`${where}: unknown op ${JSON.stringify((e as { op: unknown }).op)}`);
  }
}

/** Cache key of a rule (its canonical JSON). */
export function ruleSignature(e: WeightExpr): string {
  return JSON.stringify(e);
}

/**
 * Evaluate a rule in float64: the T weights for these losses and parameters.
 * Throws when a weight comes out non-finite (names the task), so a bad rule or
 * input never reaches the update.
 */
export function evalWeightRule(e: WeightExpr, losses: ArrayLike<number>, params: readonly ArrayLike<number>[]): Float64Array {
  const T = losses.length;
  const out = evalNode(e, losses, params, T);
  for (let i = 0; i < T; i++) if (!Number.isFinite(out[i]!)) throw new Error(`weight rule: weight of task ${i} is not finite (${out[i]})`);
  return out;
}

function evalNode(e: WeightExpr, losses: ArrayLike<number>, params: readonly ArrayLike<number>[], T: number): Float64Array {
  switch (e.op) {
    case "losses":
      return Float64Array.from(losses);
    case "param": {
      const p = params[e.index];
      if (!p || p.length !== T) throw new Error(`weight rule: parameter ${e.index} must have ${T} entries, got ${p ? p.length : "none"}`);
      return Float64Array.from(p);
    }
    case "const":
      return new Float64Array(T).fill(e.value);
    case "add":
    case "sub":
    case "mul":
    case "div":
    case "max": {
      const a = evalNode(e.a, losses, params, T);
      const b = evalNode(e.b, losses, params, T);
      for (let i = 0; i < T; i++) {
        const x = a[i]!;
        const y = b[i]!;
        a[i] = e.op === "add" ? x + y : e.op === "sub" ? x - y : e.op === "mul" ? x * y : e.op === "div" ? x / y : Math.max(x, y);
      }
      return a;
    }
    case "exp":
    case "log": {
      const a = evalNode(e.a, losses, params, T);
      for (let i = 0; i < T; i++) a[i] = e.op === "exp" ? Math.exp(a[i]!) : Math.log(a[i]!);
      return a;
    }
    case "softmax": {
      const a = evalNode(e.a, losses, params, T);
      let m = -Infinity;
      for (let i = 0; i < T; i++) m = Math.max(m, a[i]!);
      let s = 0;
      for (let i = 0; i < T; i++) {
        a[i] = Math.exp(a[i]! - m);
        s += a[i]!;
      }
      for (let i = 0; i < T; i++) a[i] = a[i]! / s;
      return a;
    }
    case "normalize": {
      const a = evalNode(e.a, losses, params, T);
      let s = 0;
      for (let i = 0; i < T; i++) s += a[i]!;
      for (let i = 0; i < T; i++) a[i] = a[i]! / s;
      return a;
    }
    default:
      throw new Error(`weight rule: unknown op ${JSON.stringify((e as { op: unknown }).op)}`);
  }
}
