/**
 * Reverse-mode differentiation over a `Graph`: one vector-Jacobian rule per op
 * that emits graph nodes, and `grad(ys, wrt, cotangents)`.
 *
 * `grad` only visits nodes that are both ancestors of `ys` and descendants of
 * `wrt`, so a task loss's backward never runs through other tasks' towers, and
 * several `grad` calls on one graph share its forward (every rule reads the
 * forward tensors it needs; values derived from them, such as ReLU masks, are
 * memoised on the graph and built once).
 *
 * Conventions: non-differentiable inputs (int64 indices, bool conditions,
 * shape/axes constants) get no cotangent. Subgradients at kinks: ReLU and Abs
 * use 0 at 0; Max/Min send the cotangent to the first operand on ties; Clip
 * passes it strictly inside (lo, hi).
 */
import { Graph, GraphShapeError, type Node, type Tensor } from "./graph.ts";

export type VjpRule = (g: Graph, n: Node, ct: Tensor, need: readonly boolean[]) => (Tensor | null)[];

/** Sum `grad` (shape of the broadcast result) down to `shape`. */
export function unbroadcast(g: Graph, grad: Tensor, shape: readonly number[]): Tensor {
  const gs = grad.shape;
  if (gs.length === shape.length && gs.every((s, i) => s === shape[i])) return grad;
  const lead = gs.length - shape.length;
  const axes: number[] = [];
  for (let i = 0; i < gs.length; i++) {
    if (i < lead || (shape[i - lead] === 1 && gs[i] !== 1)) axes.push(i);
  }
  const r = g.reduceSum(grad, axes, true);
  return g.reshape(r, shape);
}

function constInts(g: Graph, t: Tensor, op: string): number[] {
  const c = g.constById.get(t.id);
  if (!c) throw new GraphShapeError(`graph: cannot differentiate ${op}: its axes/sizes input is not a constant`);
  return Array.from(c.data as BigInt64Array, (v) => Number(v));
}

const zeroLike = (g: Graph, t: Tensor): Tensor => g.expand(g.scalar(0, t.dtype), t.shape);

const mask = (g: Graph, kind: string, x: Tensor, make: () => Tensor): Tensor => g.memo(`${kind}:${x.id}`, make);

const elementwise = (f: (g: Graph, n: Node, ct: Tensor) => Tensor): VjpRule => (g, n, ct) => [f(g, n, ct)];

/**
 * Ops through which no cotangent flows: comparisons and And (bool outputs), Sign (piecewise
 * constant) and Gather (its rule refuses: gather embedding rows outside the graph). Their rules
 * return null for every input (Gather's throws). The build-time gradient-ownership check
 * (src/engine/ownership.ts) does not follow them, and the VJP test skips them.
 */
export const NO_GRADIENT_OPS: ReadonlySet<string> = new Set(["Greater", "Less", "And", "Sign", "Gather"]);

export const VJP_RULES: Readonly<Record<string, VjpRule>> = {
  Add: (g, n, ct, need) => [need[0] ? unbroadcast(g, ct, n.inputs[0]!.shape) : null, need[1] ? unbroadcast(g, ct, n.inputs[1]!.shape) : null],
  Sub: (g, n, ct, need) => [need[0] ? unbroadcast(g, ct, n.inputs[0]!.shape) : null, need[1] ? unbroadcast(g, g.neg(ct), n.inputs[1]!.shape) : null],
  Mul: (g, n, ct, need) => {
    const [a, b] = n.inputs as [Tensor, Tensor];
    return [need[0] ? unbroadcast(g, g.mul(ct, b), a.shape) : null, need[1] ? unbroadcast(g, g.mul(ct, a), b.shape) : null];
  },
  Div: (g, n, ct, need) => {
    const [a, b] = n.inputs as [Tensor, Tensor];
    const y = n.outputs[0]!;
    return [need[0] ? unbroadcast(g, g.div(ct, b), a.shape) : null, need[1] ? unbroadcast(g, g.neg(g.mul(ct, g.div(y, b))), b.shape) : null];
  },
  Pow: (g, n, ct, need) => {
    const [a, b] = n.inputs as [Tensor, Tensor];
    const y = n.outputs[0]!;
    return [
      need[0] ? unbroadcast(g, g.mul(ct, g.mul(b, g.pow(a, g.sub(b, 1)))), a.shape) : null,
      need[1] ? unbroadcast(g, g.mul(ct, g.mul(y, g.log(a))), b.shape) : null,
    ];
  },
  Max: (g, n, ct, need) => {
    const [a, b] = n.inputs as [Tensor, Tensor];
    const bWins = mask(g, "max", n.outputs[0]!, () => g.greater(b, a));
    return [need[0] ? unbroadcast(g, g.where(bWins, 0, ct), a.shape) : null, need[1] ? unbroadcast(g, g.where(bWins, ct, 0), b.shape) : null];
  },
  Min: (g, n, ct, need) => {
    const [a, b] = n.inputs as [Tensor, Tensor];
    const bWins = mask(g, "min", n.outputs[0]!, () => g.less(b, a));
    return [need[0] ? unbroadcast(g, g.where(bWins, 0, ct), a.shape) : null, need[1] ? unbroadcast(g, g.where(bWins, ct, 0), b.shape) : null];
  },
  Where: (g, n, ct, need) => {
    const [c, a, b] = n.inputs as [Tensor, Tensor, Tensor];
    return [null, need[1] ? unbroadcast(g, g.where(c, ct, 0), a.shape) : null, need[2] ? unbroadcast(g, g.where(c, 0, ct), b.shape) : null];
  },
  Greater: () => [null, null],
  // piecewise constant: zero derivative almost everywhere (no cotangent, like the comparisons)
  Sign: () => [null],
  Less: () => [null, null],
  And: () => [null, null],
  // ReLU: ct ⊙ sign(y) with y = relu(x) >= 0, so sign(y) is the 0/1 mask [x > 0] as a float tensor,
  // memoised: each backward pass then costs one Mul (ORT's float Mul is ~1.5x faster than Where)
  Relu: elementwise((g, n, ct) => g.mul(ct, mask(g, "relu", n.outputs[0]!, () => g.sign(n.outputs[0]!)))),
  Sigmoid: elementwise((g, n, ct) => {
    const y = n.outputs[0]!;
    return g.mul(ct, g.memo(`dsigmoid:${y.id}`, () => g.mul(y, g.sub(g.scalar(1, y.dtype), y))));
  }),
  Tanh: elementwise((g, n, ct) => {
    const y = n.outputs[0]!;
    return g.mul(ct, g.memo(`dtanh:${y.id}`, () => g.sub(g.scalar(1, y.dtype), g.mul(y, y))));
  }),
  Exp: elementwise((g, n, ct) => g.mul(ct, n.outputs[0]!)),
  Log: elementwise((g, n, ct) => g.div(ct, n.inputs[0]!)),
  Neg: elementwise((g, _n, ct) => g.neg(ct)),
  Abs: elementwise((g, n, ct) => {
    const x = n.inputs[0]!;
    const sign = g.memo(`sign:${x.id}`, () => g.sign(x));
    return g.mul(ct, sign);
  }),
  Sqrt: elementwise((g, n, ct) => g.div(ct, g.mul(n.outputs[0]!, 2))),
  Softplus: elementwise((g, n, ct) => g.mul(ct, g.memo(`dsoftplus:${n.inputs[0]!.id}`, () => g.sigmoid(n.inputs[0]!)))),
  Identity: elementwise((_g, _n, ct) => ct),
  Clip: (g, n, ct) => {
    const [x, lo, hi] = n.inputs as [Tensor, Tensor, Tensor];
    const inside = mask(g, "clip", n.outputs[0]!, () => g.and(g.greater(x, lo), g.less(x, hi)));
    return [g.where(inside, ct, 0), null, null];
  },
  Sum: (g, n, ct, need) => n.inputs.map((x, i) => (need[i] ? unbroadcast(g, ct, x.shape) : null)),
  MatMul: (g, n, ct, need) => {
    const [a, b] = n.inputs as [Tensor, Tensor];
    return [need[0] ? g.gemm(ct, b, false, true) : null, need[1] ? g.gemm(a, ct, true, false) : null];
  },
  Gemm: (g, n, ct, need) => {
    const [a, b] = n.inputs as [Tensor, Tensor];
    const tA = n.attrs.transA === 1;
    const tB = n.attrs.transB === 1;
    // y = op(A) op(B): dA = ct op(B)^T (transposed back when transA), dB = op(A)^T ct (likewise)
    const dA = !need[0] ? null : !tA ? g.gemm(ct, b, false, !tB) : g.gemm(b, ct, tB, true);
    const dB = !need[1] ? null : !tB ? g.gemm(a, ct, !tA, false) : g.gemm(ct, a, true, tA);
    return [dA, dB];
  },
  Softmax: elementwise((g, n, ct) => {
    const y = n.outputs[0]!;
    const axis = n.attrs.axis as number;
    return g.mul(y, g.sub(ct, g.reduceSum(g.mul(ct, y), [axis], true)));
  }),
  ReduceSum: (g, n, ct) => {
    const x = n.inputs[0]!;
    const axes = constInts(g, n.inputs[1]!, "ReduceSum");
    const kept = x.shape.map((s, i) => (axes.includes(i) ? 1 : s));
    return [g.expand(g.reshape(ct, kept), x.shape), null];
  },
  ReduceMean: elementwise((g, n, ct) => {
    const x = n.inputs[0]!;
    const axes = n.attrs.axes as readonly number[];
    let count = 1;
    for (const a of axes) count *= x.shape[a]!;
    const kept = x.shape.map((s, i) => (axes.includes(i) ? 1 : s));
    return g.expand(g.mul(g.reshape(ct, kept), 1 / count), x.shape);
  }),
  Reshape: (g, n, ct) => [g.reshape(ct, n.inputs[0]!.shape), null],
  Unsqueeze: (g, n, ct) => [g.reshape(ct, n.inputs[0]!.shape), null],
  Squeeze: (g, n, ct) => [g.reshape(ct, n.inputs[0]!.shape), null],
  Expand: (g, n, ct) => [unbroadcast(g, ct, n.inputs[0]!.shape), null],
  Transpose: elementwise((g, n, ct) => {
    const perm = n.attrs.perm as readonly number[];
    const inv = new Array<number>(perm.length);
    perm.forEach((p, i) => (inv[p] = i));
    return g.transpose(ct, inv);
  }),
  Concat: (g, n, ct, need) => {
    const axis = n.attrs.axis as number;
    const parts = g.split(ct, axis, n.inputs.map((x) => x.shape[axis]!));
    return parts.map((p, i) => (need[i] ? p : null));
  },
  Gather: () => {
    throw new GraphShapeError(
      "graph: Gather is not differentiable in this builder (opset 13 has no scatter-add); gather embedding rows outside the graph and differentiate w.r.t. the gathered input",
    );
  },
};

/** Split is the one multi-output op: its rule sees every output's cotangent. */
function splitVjp(g: Graph, n: Node, cts: (Tensor | null)[]): Tensor {
  const axis = n.attrs.axis as number;
  return g.concat(
    n.outputs.map((o, i) => cts[i] ?? zeroLike(g, o)),
    axis,
  );
}

/**
 * Reverse-mode gradient of `ys` (with cotangents `cts`, default ones) w.r.t.
 * `wrt`. Returns one tensor per `wrt` entry, or null where `ys` does not depend
 * on it.
 */
/**
 * For a Mul node y ⊙ m (either order) where y is a Relu output that needs a cotangent and m
 * needs none and has y's shape (no broadcast): the index of y among the Mul's inputs, else -1.
 */
function reluMaskFold(n: Node, need: readonly boolean[], producer: ReadonlyMap<number, Node>): number {
  for (const i of [0, 1]) {
    const y = n.inputs[i]!;
    const m = n.inputs[1 - i]!;
    if (!need[i] || need[1 - i]) continue;
    if (producer.get(y.id)?.op !== "Relu") continue;
    if (m.dtype !== y.dtype || m.shape.length !== y.shape.length || m.shape.some((s, k) => s !== y.shape[k])) continue;
    if (n.outputs[0]!.shape.some((s, k) => s !== y.shape[k])) continue;
    return i;
  }
  return -1;
}

export function grad(g: Graph, ys: readonly Tensor[], wrt: readonly Tensor[], cts?: readonly Tensor[]): (Tensor | null)[] {
  if (cts && cts.length !== ys.length) throw new GraphShapeError(`graph: grad got ${cts.length} cotangents for ${ys.length} outputs`);
  // descendants of wrt (tensors whose value depends on some wrt entry)
  const live = new Set<number>(wrt.map((t) => t.id));
  for (const n of g.nodes) {
    if (n.inputs.some((x) => live.has(x.id))) for (const o of n.outputs) live.add(o.id);
  }
  // ancestors of ys among live nodes
  const want = new Set<number>(ys.map((y) => y.id));
  const active: Node[] = [];
  for (let i = g.nodes.length - 1; i >= 0; i--) {
    const n = g.nodes[i]!;
    if (!n.outputs.some((o) => want.has(o.id))) continue;
    if (!n.outputs.some((o) => live.has(o.id))) continue;
    active.push(n);
    for (const x of n.inputs) if (live.has(x.id)) want.add(x.id);
  }
  // Peephole: ReLU followed by a multiplicative mask that needs no gradient (dropout: y = relu(x), d = y ⊙ m).
  // The Mul's cotangent for y is ct ⊙ (m ⊙ sign(y)), with m ⊙ sign(y) memoised (built once, shared by
  // every backward pass), and the ReLU passes it on unchanged when every contribution to its output's
  // cotangent was built that way ("signed": already zero where y = 0). Each backward pass then pays one
  // Mul per masked ReLU layer instead of two; the values are identical (m ⊙ sign(y) is exact).
  const signed = new Set<number>();
  const acc = new Map<number, Tensor[]>();
  const push = (t: Tensor, c: Tensor): void => {
    if (c.shape.length !== t.shape.length || c.shape.some((s, i) => s !== t.shape[i])) {
      throw new GraphShapeError(`graph: cotangent shape [${c.shape.join(",")}] does not match tensor shape [${t.shape.join(",")}]`);
    }
    const l = acc.get(t.id);
    if (l) l.push(c);
    else acc.set(t.id, [c]);
  };
  ys.forEach((y, i) => {
    if (!live.has(y.id)) return;
    push(y, cts ? cts[i]! : g.expand(g.scalar(1, y.dtype), y.shape));
  });
  const total = (t: Tensor): Tensor | null => {
    const l = acc.get(t.id);
    if (!l || l.length === 0) return null;
    if (l.length === 1) return l[0]!;
    const s = g.scope("grad", () => g.sum(l));
    if (l.every((c) => signed.has(c.id))) signed.add(s.id);
    acc.set(t.id, [s]);
    return s;
  };
  // `active` is in reverse topological order
  for (const n of active) {
    const outCts = n.outputs.map(total);
    if (outCts.every((c) => c === null)) continue;
    const need = n.inputs.map((x) => live.has(x.id) && (x.dtype === "float32" || x.dtype === "float64"));
    if (!need.some(Boolean)) continue;
    let inCts: (Tensor | null)[];
    const folded = n.op === "Mul" ? reluMaskFold(n, need, g.producer) : -1;
    if (n.op === "Split") inCts = [need[0] ? splitVjp(g, n, outCts) : null, null];
    else if (folded >= 0) {
      const y = n.inputs[folded]!;
      const m = n.inputs[1 - folded]!;
      const c = g.scope(n.layer ? `${n.layer}/grad` : "grad", () => g.mul(outCts[0]!, g.memo(`relu-mask:${y.id}:${m.id}`, () => g.mul(m, mask(g, "relu", y, () => g.sign(y))))));
      signed.add(c.id);
      inCts = folded === 0 ? [c, null] : [null, c];
    } else if (n.op === "Relu" && signed.has(outCts[0]!.id)) inCts = [outCts[0]!];
    else {
      const rule = VJP_RULES[n.op];
      if (!rule) throw new GraphShapeError(`graph: no vector-Jacobian rule for op ${n.op} (layer "${n.layer}")`);
      inCts = g.scope(n.layer ? `${n.layer}/grad` : "grad", () => rule(g, n, outCts[0]!, need));
    }
    n.inputs.forEach((x, i) => {
      const c = inCts[i];
      if (c && need[i]) push(x, c);
    });
  }
  return wrt.map(total);
}
