/**
 * A typed builder for static-shape tensor graphs that serialise to ONNX
 * (src/graph/onnx.ts) and differentiate in reverse mode (src/graph/autodiff.ts).
 *
 * - Every op maps to exactly one ONNX node (opset 13, see onnx.ts) and computes
 *   its output shape at build time; a shape mismatch throws a `GraphShapeError`
 *   naming the layer (the `scope` stack, e.g. "ple/L0.t1.gate") and the shapes.
 * - Broadcasting of the elementwise ops follows numpy / ONNX multidirectional
 *   broadcasting.
 * - Tensors are handles ({id, shape, dtype}); the graph owns the node list in
 *   creation order, which is a topological order.
 * - Scalar and small constants become initializers, deduplicated by value.
 * - `memo` caches a tensor derived from the forward (e.g. a ReLU mask) so that
 *   every backward pass that needs it reuses one node.
 */
export type DType = "float32" | "float64" | "int64" | "bool";
export type FloatDType = "float32" | "float64";
export type FloatArray = Float32Array | Float64Array;

export interface Tensor {
  readonly id: number;
  readonly shape: readonly number[];
  readonly dtype: DType;
}

export type AttrValue = number | readonly number[];

export interface Node {
  readonly op: string;
  readonly inputs: readonly Tensor[];
  readonly outputs: readonly Tensor[];
  /** Integer attributes (every attribute this builder emits is INT or INTS). */
  readonly attrs: Readonly<Record<string, AttrValue>>;
  /** Layer scope at creation (for error messages and node names). */
  readonly layer: string;
}

export interface GraphInput {
  readonly name: string;
  readonly tensor: Tensor;
}

export interface Constant {
  readonly tensor: Tensor;
  readonly data: Float32Array | Float64Array | BigInt64Array;
}

export class GraphShapeError extends Error {
  override name = "GraphShapeError";
}

function sizeOf(shape: readonly number[]): number {
  let n = 1;
  for (const s of shape) n *= s;
  return n;
}

function fmt(shape: readonly number[]): string {
  return `[${shape.join(",")}]`;
}

function normAxis(axis: number, rank: number): number {
  return axis < 0 ? axis + rank : axis;
}

export class Graph {
  readonly nodes: Node[] = [];
  readonly inputs: GraphInput[] = [];
  readonly constants: Constant[] = [];
  private nextId = 0;
  private readonly scopes: string[] = [];
  private readonly constCache = new Map<string, Tensor>();
  private readonly memoCache = new Map<string, Tensor>();
  private readonly inputNames = new Set<string>();
  /** id -> the node producing it (absent for inputs and constants). */
  readonly producer = new Map<number, Node>();
  readonly constById = new Map<number, Constant>();
  readonly inputById = new Map<number, GraphInput>();

  /**
   * `dtype`: the floating dtype of this graph's activations and parameters.
   * `options.dynamicBatch`: the nominal batch size of a graph whose batch axis is to be
   * dynamic once serialised (the model export): every Reshape whose target starts with this
   * size writes -1 there instead, so the node infers the batch from its input. Pick a size no
   * other leading dimension can equal (see src/engine/export.ts), and give the serializer
   * symbolic dims for the batch axis of the inputs and outputs.
   */
  constructor(
    readonly dtype: FloatDType = "float32",
    readonly options: { readonly dynamicBatch?: number } = {},
  ) {
    const b = options.dynamicBatch;
    if (b !== undefined && !(Number.isInteger(b) && b >= 2)) throw new GraphShapeError(`graph: dynamicBatch must be an integer >= 2, got ${String(b)}`);
  }

  // ------------------------------------------------------------ bookkeeping

  get layer(): string {
    return this.scopes.join("/");
  }

  /** Run `fn` with `name` pushed on the layer scope (shape errors and node names carry it). */
  scope<R>(name: string, fn: () => R): R {
    this.scopes.push(name);
    try {
      return fn();
    } finally {
      this.scopes.pop();
    }
  }

  fail(op: string, msg: string): never {
    const where = this.layer ? `layer "${this.layer}"` : "the graph's top level";
    throw new GraphShapeError(`graph: ${op} in ${where}: ${msg}`);
  }

  private tensor(shape: readonly number[], dtype: DType): Tensor {
    for (const s of shape) {
      if (!Number.isInteger(s) || s < 0) this.fail("tensor", `invalid dimension ${s} in shape ${fmt(shape)}`);
    }
    return { id: this.nextId++, shape: [...shape], dtype };
  }

  /** Append a node with the given output shapes / dtypes. */
  node(op: string, inputs: readonly Tensor[], outs: readonly { shape: readonly number[]; dtype: DType }[], attrs: Record<string, AttrValue> = {}): Tensor[] {
    const outputs = outs.map((o) => this.tensor(o.shape, o.dtype));
    const n: Node = { op, inputs: [...inputs], outputs, attrs, layer: this.layer };
    this.nodes.push(n);
    for (const o of outputs) this.producer.set(o.id, n);
    return outputs;
  }

  private node1(op: string, inputs: readonly Tensor[], shape: readonly number[], dtype: DType, attrs: Record<string, AttrValue> = {}): Tensor {
    return this.node(op, inputs, [{ shape, dtype }], attrs)[0]!;
  }

  /** A named graph input (parameters, gathered embeddings, labels, noise). */
  input(name: string, shape: readonly number[], dtype: DType = this.dtype): Tensor {
    if (this.inputNames.has(name)) this.fail("input", `duplicate input name "${name}"`);
    if (!/^[A-Za-z0-9_.:/-]+$/.test(name)) this.fail("input", `input name "${name}" must use [A-Za-z0-9_.:/-]`);
    this.inputNames.add(name);
    const t = this.tensor(shape, dtype);
    const gi = { name, tensor: t };
    this.inputs.push(gi);
    this.inputById.set(t.id, gi);
    return t;
  }

  /** A constant initializer (deduplicated by dtype, shape and values). */
  constant(values: ArrayLike<number>, shape: readonly number[], dtype: DType = this.dtype): Tensor {
    if (sizeOf(shape) !== values.length) this.fail("constant", `${values.length} values for shape ${fmt(shape)}`);
    if (dtype === "bool") this.fail("constant", "bool constants are not supported");
    const key = `${dtype}|${shape.join(",")}|${Array.from(values).join(",")}`;
    const hit = values.length <= 64 ? this.constCache.get(key) : undefined;
    if (hit) return hit;
    const t = this.tensor(shape, dtype);
    const data = dtype === "int64" ? BigInt64Array.from(Array.from(values, (v) => BigInt(v))) : dtype === "float64" ? Float64Array.from(values) : Float32Array.from(values);
    const c = { tensor: t, data };
    this.constants.push(c);
    this.constById.set(t.id, c);
    if (values.length <= 64) this.constCache.set(key, t);
    return t;
  }

  scalar(v: number, dtype: DType = this.dtype): Tensor {
    return this.constant([v], [], dtype);
  }

  ints(v: readonly number[]): Tensor {
    return this.constant(v, [v.length], "int64");
  }

  /** Cache a derived tensor under `key` (forward-derived values reused by several backward passes). */
  memo(key: string, make: () => Tensor): Tensor {
    let t = this.memoCache.get(key);
    if (!t) {
      t = make();
      this.memoCache.set(key, t);
    }
    return t;
  }

  // ------------------------------------------------------------ shape helpers

  broadcastShape(op: string, a: readonly number[], b: readonly number[]): number[] {
    const r = Math.max(a.length, b.length);
    const out: number[] = [];
    for (let i = 0; i < r; i++) {
      const x = a[a.length - r + i] ?? 1;
      const y = b[b.length - r + i] ?? 1;
      if (x !== y && x !== 1 && y !== 1) this.fail(op, `shapes ${fmt(a)} and ${fmt(b)} do not broadcast (axis ${i}: ${x} vs ${y})`);
      out.push(x === 1 ? y : x);
    }
    return out;
  }

  private checkFloat(op: string, ...ts: Tensor[]): void {
    for (const t of ts) {
      if (t.dtype !== "float32" && t.dtype !== "float64") this.fail(op, `expects a float tensor, got ${t.dtype}`);
    }
    for (const t of ts) if (t.dtype !== ts[0]!.dtype) this.fail(op, `mixes ${ts[0]!.dtype} and ${t.dtype}`);
  }

  // ------------------------------------------------------------ elementwise

  private binary(op: string, a: Tensor, b: Tensor, outDtype?: DType): Tensor {
    if (a.dtype !== b.dtype) this.fail(op, `mixes ${a.dtype} ${fmt(a.shape)} and ${b.dtype} ${fmt(b.shape)}`);
    return this.node1(op, [a, b], this.broadcastShape(op, a.shape, b.shape), outDtype ?? a.dtype);
  }

  private num(a: Tensor, b: Tensor | number): Tensor {
    return typeof b === "number" ? this.scalar(b, a.dtype) : b;
  }

  add(a: Tensor, b: Tensor | number): Tensor {
    return this.binary("Add", a, this.num(a, b));
  }
  sub(a: Tensor, b: Tensor | number): Tensor {
    return this.binary("Sub", a, this.num(a, b));
  }
  mul(a: Tensor, b: Tensor | number): Tensor {
    return this.binary("Mul", a, this.num(a, b));
  }
  div(a: Tensor, b: Tensor | number): Tensor {
    return this.binary("Div", a, this.num(a, b));
  }
  /** Elementwise maximum of two tensors (ONNX Max, broadcasting). */
  max(a: Tensor, b: Tensor | number): Tensor {
    return this.binary("Max", a, this.num(a, b));
  }
  min(a: Tensor, b: Tensor | number): Tensor {
    return this.binary("Min", a, this.num(a, b));
  }
  pow(a: Tensor, b: Tensor | number): Tensor {
    return this.binary("Pow", a, this.num(a, b));
  }
  greater(a: Tensor, b: Tensor | number): Tensor {
    return this.binary("Greater", a, this.num(a, b), "bool");
  }
  less(a: Tensor, b: Tensor | number): Tensor {
    return this.binary("Less", a, this.num(a, b), "bool");
  }
  and(a: Tensor, b: Tensor): Tensor {
    if (a.dtype !== "bool" || b.dtype !== "bool") this.fail("And", `expects bool tensors, got ${a.dtype} and ${b.dtype}`);
    return this.binary("And", a, b, "bool");
  }
  where(cond: Tensor, a: Tensor | number, b: Tensor | number): Tensor {
    if (cond.dtype !== "bool") this.fail("Where", `condition must be bool, got ${cond.dtype}`);
    const ta = typeof a === "number" ? this.scalar(a, typeof b === "number" ? this.dtype : b.dtype) : a;
    const tb = typeof b === "number" ? this.scalar(b, ta.dtype) : b;
    if (ta.dtype !== tb.dtype) this.fail("Where", `branches mix ${ta.dtype} and ${tb.dtype}`);
    const shape = this.broadcastShape("Where", this.broadcastShape("Where", cond.shape, ta.shape), tb.shape);
    return this.node1("Where", [cond, ta, tb], shape, ta.dtype);
  }

  private unary(op: string, x: Tensor): Tensor {
    this.checkFloat(op, x);
    return this.node1(op, [x], x.shape, x.dtype);
  }
  relu(x: Tensor): Tensor {
    return this.unary("Relu", x);
  }
  sigmoid(x: Tensor): Tensor {
    return this.unary("Sigmoid", x);
  }
  tanh(x: Tensor): Tensor {
    return this.unary("Tanh", x);
  }
  exp(x: Tensor): Tensor {
    return this.unary("Exp", x);
  }
  log(x: Tensor): Tensor {
    return this.unary("Log", x);
  }
  neg(x: Tensor): Tensor {
    return this.unary("Neg", x);
  }
  abs(x: Tensor): Tensor {
    return this.unary("Abs", x);
  }
  /** sign(x) in {-1, 0, 1}, same dtype (ONNX Sign; its derivative is 0 almost everywhere). */
  sign(x: Tensor): Tensor {
    return this.unary("Sign", x);
  }
  sqrt(x: Tensor): Tensor {
    return this.unary("Sqrt", x);
  }
  identity(x: Tensor): Tensor {
    return this.node1("Identity", [x], x.shape, x.dtype);
  }
  /**
   * softplus(x) = log(1 + exp(x)). ORT's CPU provider has no float64 Softplus
   * kernel, so float64 graphs compose it stably as max(0, x) + log(1 + exp(min(x, -x)))
   * (min(x, -x) = -|x|). Written with Max/Min rather than Relu/Abs so that the
   * subgradient conventions (ties go to the first operand) add up to the true
   * derivative 0.5 at x = 0; Relu + Abs would give 0 there.
   */
  softplus(x: Tensor): Tensor {
    this.checkFloat("Softplus", x);
    if (x.dtype === "float32") return this.unary("Softplus", x);
    return this.add(this.max(this.scalar(0, x.dtype), x), this.log(this.add(this.exp(this.min(x, this.neg(x))), 1)));
  }
  /** Clip to [lo, hi] (opset 13: the bounds are scalar inputs). */
  clip(x: Tensor, lo: number, hi: number): Tensor {
    this.checkFloat("Clip", x);
    if (!(lo <= hi)) this.fail("Clip", `lower bound ${lo} > upper bound ${hi}`);
    return this.node1("Clip", [x, this.scalar(lo, x.dtype), this.scalar(hi, x.dtype)], x.shape, x.dtype);
  }
  /** n-ary sum of same-dtype tensors (broadcasting). */
  sum(xs: readonly Tensor[]): Tensor {
    if (xs.length === 0) this.fail("Sum", "needs at least one input");
    if (xs.length === 1) return xs[0]!;
    let shape: number[] = [...xs[0]!.shape];
    for (const x of xs.slice(1)) {
      if (x.dtype !== xs[0]!.dtype) this.fail("Sum", `mixes ${xs[0]!.dtype} and ${x.dtype}`);
      shape = this.broadcastShape("Sum", shape, x.shape);
    }
    return this.node1("Sum", xs, shape, xs[0]!.dtype);
  }

  // ------------------------------------------------------------ linear algebra

  /** 2-D matrix product a [n, k] @ b [k, m]. */
  matmul(a: Tensor, b: Tensor): Tensor {
    this.checkFloat("MatMul", a, b);
    if (a.shape.length !== 2 || b.shape.length !== 2) this.fail("MatMul", `expects 2-D operands, got ${fmt(a.shape)} and ${fmt(b.shape)}`);
    if (a.shape[1] !== b.shape[0]) this.fail("MatMul", `shapes ${fmt(a.shape)} and ${fmt(b.shape)} do not match (inner dims ${a.shape[1]} vs ${b.shape[0]})`);
    return this.node1("MatMul", [a, b], [a.shape[0]!, b.shape[1]!], a.dtype);
  }

  /** op(a) @ op(b) with optional transposes (ONNX Gemm without C, alpha = beta = 1). */
  gemm(a: Tensor, b: Tensor, transA = false, transB = false): Tensor {
    this.checkFloat("Gemm", a, b);
    if (a.shape.length !== 2 || b.shape.length !== 2) this.fail("Gemm", `expects 2-D operands, got ${fmt(a.shape)} and ${fmt(b.shape)}`);
    const [n, ka] = transA ? [a.shape[1]!, a.shape[0]!] : [a.shape[0]!, a.shape[1]!];
    const [kb, m] = transB ? [b.shape[1]!, b.shape[0]!] : [b.shape[0]!, b.shape[1]!];
    if (ka !== kb) this.fail("Gemm", `shapes ${fmt(a.shape)}${transA ? "ᵀ" : ""} and ${fmt(b.shape)}${transB ? "ᵀ" : ""} do not match (inner dims ${ka} vs ${kb})`);
    return this.node1("Gemm", [a, b], [n, m], a.dtype, { transA: transA ? 1 : 0, transB: transB ? 1 : 0 });
  }

  /** Softmax along `axis` (opset 13 semantics: one axis). */
  softmax(x: Tensor, axis = -1): Tensor {
    this.checkFloat("Softmax", x);
    const ax = normAxis(axis, x.shape.length);
    if (ax < 0 || ax >= x.shape.length) this.fail("Softmax", `axis ${axis} out of range for ${fmt(x.shape)}`);
    return this.node1("Softmax", [x], x.shape, x.dtype, { axis: ax });
  }

  // ------------------------------------------------------------ reductions

  private reduceShape(op: string, x: Tensor, axes: readonly number[], keepdims: boolean): { axes: number[]; shape: number[] } {
    const r = x.shape.length;
    const ax = [...new Set(axes.map((a) => normAxis(a, r)))].sort((p, q) => p - q);
    for (const a of ax) if (a < 0 || a >= r) this.fail(op, `axis out of range for ${fmt(x.shape)}: ${axes.join(",")}`);
    const shape: number[] = [];
    x.shape.forEach((s, i) => {
      if (!ax.includes(i)) shape.push(s);
      else if (keepdims) shape.push(1);
    });
    return { axes: ax, shape };
  }

  /** Sum over `axes` (opset 13: axes as an int64 input). */
  reduceSum(x: Tensor, axes: readonly number[], keepdims = false): Tensor {
    this.checkFloat("ReduceSum", x);
    const { axes: ax, shape } = this.reduceShape("ReduceSum", x, axes, keepdims);
    if (ax.length === 0) return x;
    return this.node1("ReduceSum", [x, this.ints(ax)], shape, x.dtype, { keepdims: keepdims ? 1 : 0 });
  }

  /** Mean over `axes` (opset 13: axes as an attribute). */
  reduceMean(x: Tensor, axes: readonly number[], keepdims = false): Tensor {
    this.checkFloat("ReduceMean", x);
    const { axes: ax, shape } = this.reduceShape("ReduceMean", x, axes, keepdims);
    if (ax.length === 0) return x;
    return this.node1("ReduceMean", [x], shape, x.dtype, { axes: ax, keepdims: keepdims ? 1 : 0 });
  }

  // ------------------------------------------------------------ shape ops

  /** Reshape to `shape` (static); with the `dynamicBatch` option a leading batch dimension is written as -1. */
  reshape(x: Tensor, shape: readonly number[]): Tensor {
    if (sizeOf(shape) !== sizeOf(x.shape)) this.fail("Reshape", `cannot reshape ${fmt(x.shape)} (${sizeOf(x.shape)} elements) to ${fmt(shape)}`);
    if (shape.length === x.shape.length && shape.every((s, i) => s === x.shape[i])) return x;
    const b = this.options.dynamicBatch;
    const target = b !== undefined && shape[0] === b ? [-1, ...shape.slice(1)] : shape;
    return this.node1("Reshape", [x, this.ints(target)], shape, x.dtype);
  }

  transpose(x: Tensor, perm: readonly number[]): Tensor {
    const r = x.shape.length;
    if (perm.length !== r || [...perm].sort((p, q) => p - q).some((p, i) => p !== i)) this.fail("Transpose", `perm [${perm.join(",")}] is not a permutation of rank ${r}`);
    return this.node1("Transpose", [x], perm.map((p) => x.shape[p]!), x.dtype, { perm: [...perm] });
  }

  unsqueeze(x: Tensor, axes: readonly number[]): Tensor {
    const r = x.shape.length + axes.length;
    const ax = axes.map((a) => normAxis(a, r)).sort((p, q) => p - q);
    if (new Set(ax).size !== ax.length || ax.some((a) => a < 0 || a >= r)) this.fail("Unsqueeze", `invalid axes [${axes.join(",")}] for ${fmt(x.shape)}`);
    const shape: number[] = [];
    let k = 0;
    for (let i = 0; i < r; i++) shape.push(ax.includes(i) ? 1 : x.shape[k++]!);
    return this.node1("Unsqueeze", [x, this.ints(ax)], shape, x.dtype);
  }

  squeeze(x: Tensor, axes: readonly number[]): Tensor {
    const r = x.shape.length;
    const ax = axes.map((a) => normAxis(a, r));
    for (const a of ax) if (x.shape[a] !== 1) this.fail("Squeeze", `axis ${a} of ${fmt(x.shape)} is not 1`);
    return this.node1("Squeeze", [x, this.ints(ax)], x.shape.filter((_, i) => !ax.includes(i)), x.dtype);
  }

  /** Broadcast x to `shape` (ONNX Expand). */
  expand(x: Tensor, shape: readonly number[]): Tensor {
    const out = this.broadcastShape("Expand", x.shape, shape);
    if (out.length !== shape.length || out.some((s, i) => s !== shape[i])) this.fail("Expand", `cannot expand ${fmt(x.shape)} to ${fmt(shape)}`);
    if (out.length === x.shape.length && out.every((s, i) => s === x.shape[i])) return x;
    return this.node1("Expand", [x, this.ints(shape)], shape, x.dtype);
  }

  concat(xs: readonly Tensor[], axis: number): Tensor {
    if (xs.length === 0) this.fail("Concat", "needs at least one input");
    if (xs.length === 1) return xs[0]!;
    const r = xs[0]!.shape.length;
    const ax = normAxis(axis, r);
    if (ax < 0 || ax >= r) this.fail("Concat", `axis ${axis} out of range for ${fmt(xs[0]!.shape)}`);
    let total = 0;
    for (const x of xs) {
      if (x.dtype !== xs[0]!.dtype) this.fail("Concat", `mixes ${xs[0]!.dtype} and ${x.dtype}`);
      if (x.shape.length !== r || x.shape.some((s, i) => i !== ax && s !== xs[0]!.shape[i])) {
        this.fail("Concat", `shapes ${xs.map((t) => fmt(t.shape)).join(", ")} differ outside axis ${ax}`);
      }
      total += x.shape[ax]!;
    }
    const shape = [...xs[0]!.shape];
    shape[ax] = total;
    return this.node1("Concat", xs, shape, xs[0]!.dtype, { axis: ax });
  }

  /** Split along `axis` into pieces of the given sizes (opset 13: sizes as an input). */
  split(x: Tensor, axis: number, sizes: readonly number[]): Tensor[] {
    const r = x.shape.length;
    const ax = normAxis(axis, r);
    if (ax < 0 || ax >= r) this.fail("Split", `axis ${axis} out of range for ${fmt(x.shape)}`);
    const total = sizes.reduce((p, q) => p + q, 0);
    if (total !== x.shape[ax] || sizes.some((s) => !Number.isInteger(s) || s < 1)) this.fail("Split", `sizes [${sizes.join(",")}] do not partition axis ${ax} of ${fmt(x.shape)}`);
    if (sizes.length === 1) return [x];
    const outs = sizes.map((s) => {
      const shape = [...x.shape];
      shape[ax] = s;
      return { shape, dtype: x.dtype };
    });
    return this.node("Split", [x, this.ints(sizes)], outs, { axis: ax });
  }

  /** Rows of `data` (axis 0) at int64 `indices` (any shape): output indices.shape ++ data.shape[1:]. */
  gather(data: Tensor, indices: Tensor): Tensor {
    if (indices.dtype !== "int64") this.fail("Gather", `indices must be int64, got ${indices.dtype}`);
    return this.node1("Gather", [data, indices], [...indices.shape, ...data.shape.slice(1)], data.dtype, { axis: 0 });
  }

  // ------------------------------------------------------------ composites used by the models

  /** x [.., in] @ W + b. */
  linear(x: Tensor, W: Tensor, b?: Tensor): Tensor {
    const y = this.matmul(x, W);
    return b ? this.add(y, b) : y;
  }

  /** Stable per-task mean BCE with logits: mean(softplus(z) - z*y). */
  bceWithLogits(z: Tensor, y: Tensor): Tensor {
    if (z.shape.length !== y.shape.length || z.shape.some((s, i) => s !== y.shape[i])) this.fail("bceWithLogits", `logits ${fmt(z.shape)} and labels ${fmt(y.shape)} differ`);
    const all = z.shape.map((_, i) => i);
    return this.reduceMean(this.sub(this.softplus(z), this.mul(z, y)), all, false);
  }
}

export function numel(t: Tensor): number {
  return sizeOf(t.shape);
}
