/**
 * Build-time gradient ownership: which task's loss reaches which parameter, decided on the
 * graph before anything runs (a reachability walk, no numbers).
 *
 * Every parameter has an owner (`DenseParam.group`, `EmbeddingTable.group`): "shared", or the
 * index of the task whose tower, gate or experts it belongs to. The trainer scales a task-owned
 * parameter's gradient by that task's taskScale and never balances it, so two rules must hold,
 * and `checkGradientOwnership` enforces them when a training program is compiled:
 * 1. a parameter owned by task k is reached by task k's loss only (another task's head reading
 *    it would silently have its gradient dropped or mis-scaled);
 * 2. every parameter is reached by some task's loss (a layer that is built but skipped in the
 *    forward would silently never train).
 * An architecture breaking either fails to compile with a `GradientOwnershipError` naming the
 * parameter and the task.
 *
 * Reachability follows the edges reverse-mode differentiation (src/graph/autodiff.ts) follows:
 * float inputs of ops that pass a cotangent (not the comparisons, And, Sign or Gather:
 * NO_GRADIENT_OPS), so "reached" here is exactly "grad() returns a gradient tensor for it".
 */
import { NO_GRADIENT_OPS } from "../graph/autodiff.ts";
import type { Graph, Tensor } from "../graph/graph.ts";
import type { Model } from "../model/model.ts";

export class GradientOwnershipError extends Error {
  override name = "GradientOwnershipError";
}

/**
 * reach[t][i]: whether the backward pass of `losses[t]` reaches `wrt[i]` (one reverse walk
 * over the graph's nodes per loss; the node list is a topological order).
 */
export function lossReach(g: Graph, losses: readonly Tensor[], wrt: readonly Tensor[]): boolean[][] {
  const isFloat = (t: Tensor): boolean => t.dtype === "float32" || t.dtype === "float64";
  return losses.map((loss) => {
    const want = new Set<number>([loss.id]);
    for (let k = g.nodes.length - 1; k >= 0; k--) {
      const n = g.nodes[k]!;
      if (NO_GRADIENT_OPS.has(n.op) || !n.outputs.some((o) => want.has(o.id))) continue;
      for (const x of n.inputs) if (isFloat(x)) want.add(x.id);
    }
    return wrt.map((w) => want.has(w.id));
  });
}

/**
 * Checks the ownership rules above for a model's training graph: `p[i]` is the graph input of
 * `model.dense[i]`, `xs[s]` that of embedding set `model.tables[s]`, `losses[t]` task t's loss.
 * Throws a GradientOwnershipError naming the first offending parameter.
 */
export function checkGradientOwnership(model: Model, g: Graph, losses: readonly Tensor[], p: readonly Tensor[], xs: readonly Tensor[]): void {
  const reach = lossReach(g, losses, [...p, ...xs]);
  const T = losses.length;
  const owned: { what: string; group: "shared" | number }[] = [
    ...model.dense.map((d) => ({ what: `parameter "${d.name}"`, group: d.group })),
    ...model.tables.map((set, s) => ({
      what: `embedding set ${s} (${set.map((t) => `"${t.name}"`).join(", ") || "no tables"})`,
      group: set[0]?.group ?? ("shared" as const),
    })),
  ];
  owned.forEach(({ what, group }, i) => {
    const by: number[] = [];
    for (let t = 0; t < T; t++) if (reach[t]![i]) by.push(t);
    if (by.length === 0) {
      throw new GradientOwnershipError(
        `model ${model.name}: ${what} receives no gradient: no task's loss depends on it. Read it in the forward (trunk or head), or do not create it`,
      );
    }
    if (group !== "shared") {
      const other = by.find((t) => t !== group);
      if (other !== undefined) {
        throw new GradientOwnershipError(
          `model ${model.name}: ${what} belongs to task ${group} but task ${other}'s loss reaches it; ` +
            `a task's own parameters must receive only that task's gradient. Give it group "shared" if tasks share it, or stop task ${other}'s head from reading it`,
        );
      }
    }
  });
}
