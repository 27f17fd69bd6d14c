/**
 * Build-time gradient ownership (src/engine/ownership.ts): a task's own parameters receive
 * only that task's gradient and every parameter receives some gradient, checked by graph
 * reachability when a training program is built. Broken architectures fail to compile,
 * naming the parameter and the task; every registered architecture compiles, and the
 * reachability agrees with what reverse-mode differentiation actually produces.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { buildProgramGraph, programFor, type ProgramKey } from "../../src/engine/programs.ts";
import { GradientOwnershipError, lossReach } from "../../src/engine/ownership.ts";
import { createModel, modelNames, type ModelEntry } from "../../src/model/registry.ts";
import { COMMON_DEFAULTS, checkCommon, type ModelInput } from "../../src/model/common.ts";
import { ParamBuilder, buildTables, buildTower, linear, mlp, tower } from "../../src/model/layers.ts";
import type { Architecture, ModelCommonOptions } from "../../src/model/types.ts";
import { Graph, type Tensor } from "../../src/graph/graph.ts";
import { grad } from "../../src/graph/autodiff.ts";
import { Rng } from "../../src/util/rng.ts";
import { TINY_FIELDS, TINY_OPTS } from "../grad/fixtures.ts";

const TRAIN: ProgramKey = { kind: "per-task", batch: 4, mode: "train", objective: "bce" };

type Flaw = "none" | "shared-column" | "skipped-stitch" | "borrowed-tables" | "unused-tower";

/**
 * A toy in the style of cross-stitch networks: shared tables -> one column per task, mixed by a
 * shared cross-stitch unit (so the columns are shared too: every task's loss reaches them) ->
 * per task, the stitch output plus the task's private column (owned by the task) -> its tower.
 * With `perTaskTables` the private columns read per-task embedding sets and the stitched part
 * is left out. `flaw` breaks it:
 * - "shared-column": task t > 0 also reads task 0's private column;
 * - "skipped-stitch": the stitch unit is built but the forward skips it;
 * - "borrowed-tables": task t's private column reads embedding set (t + 1) % T;
 * - "unused-tower": task T-1's tower gets an extra layer nobody reads.
 */
function toy(flaw: Flaw): ModelEntry {
  const name = `toy-${flaw}`;
  const perTaskTables = flaw === "borrowed-tables";
  return {
    name,
    summary: "test: columns joined by a cross-stitch unit, plus private task columns",
    defaults: {},
    create(input: ModelInput, options?: Record<string, unknown>): Architecture {
      const o = { ...COMMON_DEFAULTS, ...options } as ModelCommonOptions;
      checkCommon(name, input, o);
      const T = input.numTasks;
      const rng = new Rng(o.seed);
      const tables = buildTables(input.fields, o.embDim, perTaskTables ? T : 1, rng, o.dtype, o.embInitStd);
      const b = new ParamBuilder(rng, o.dtype);
      const D = input.fields.length * o.embDim;
      const cols = perTaskTables ? [] : Array.from({ length: T }, (_, k) => b.mlp(`col${k}`, D, [4], "shared"));
      const stitch = perTaskTables ? null : b.linear("stitch", 4 * T, 4 * T, "shared", false);
      const priv = Array.from({ length: T }, (_, t) => b.mlp(`t${t}.private`, D, [4], t));
      const towers = Array.from({ length: T }, (_, t) => buildTower(b, `t${t}.tower`, 4, o.towerUnits, t));
      if (flaw === "unused-tower") b.linear(`t${T - 1}.extra`, 4, 4, T - 1);
      return {
        name,
        numTasks: T,
        dense: b.dense,
        tables,
        trunk(p, xs, ctx) {
          if (stitch === null) return [];
          const c = cols.map((spec) => mlp(xs[0]!, p, spec, ctx));
          if (flaw === "skipped-stitch") return c;
          return ctx.g.split(linear(ctx.g.concat(c, 1), p, stitch, ctx), 1, c.map(() => 4));
        },
        head(t, p, feats, xs, ctx) {
          const g = ctx.g;
          const privateOf = (k: number): Tensor => mlp(xs[perTaskTables ? (flaw === "borrowed-tables" ? (k + 1) % T : k) : 0]!, p, priv[k]!, ctx);
          let h = privateOf(t);
          if (feats.length > 0) h = g.add(h, feats[t]!);
          if (flaw === "shared-column" && t > 0) h = g.add(h, privateOf(0));
          return tower(h, p, towers[t]!, ctx);
        },
      };
    },
  };
}

const mk = (e: ModelEntry | string, T = 3, extra: Record<string, unknown> = {}) => createModel(e, { fields: TINY_FIELDS, numTasks: T }, { ...TINY_OPTS, ...extra });

test("a correct architecture (task columns mixed by a shared cross-stitch unit) compiles", () => {
  assert.doesNotThrow(() => buildProgramGraph(mk(toy("none")), TRAIN));
});

test("a task-owned parameter read by another task's head fails to compile, naming the parameter and both tasks", async () => {
  const model = mk(toy("shared-column"));
  const re = /model toy-shared-column: parameter "t0\.private\.l0\.W" belongs to task 0 but task 1's loss reaches it.*Give it group "shared"/;
  for (const kind of ["per-task", "weighted-sum", "losses"] as const) {
    assert.throws(() => buildProgramGraph(model, { ...TRAIN, kind }), (e: unknown) => e instanceof GradientOwnershipError && re.test(e.message), kind);
  }
  await assert.rejects(programFor(model, TRAIN), re);
  // eval-mode programs (prediction, validation) need no gradients and are not checked
  assert.doesNotThrow(() => buildProgramGraph(model, { ...TRAIN, kind: "eval", mode: "eval" }));
});

test("a parameter no loss reaches (a skipped cross-stitch unit, an unused layer) fails to compile, naming it", () => {
  assert.throws(() => buildProgramGraph(mk(toy("skipped-stitch")), TRAIN), /model toy-skipped-stitch: parameter "stitch\.W" receives no gradient: no task's loss depends on it/);
  assert.throws(() => buildProgramGraph(mk(toy("unused-tower")), TRAIN), /parameter "t2\.extra\.W" receives no gradient/);
});

test("a task's embedding set read by another task fails to compile, naming the set's tables", () => {
  assert.throws(
    () => buildProgramGraph(mk(toy("borrowed-tables")), TRAIN),
    /embedding set 0 \("emb\.t0\.user", "emb\.t0\.item", "emb\.t0\.ctx"\) belongs to task 0 but task 2.s loss reaches it/,
  );
});

/** The graph inputs and losses of a built per-task program, by name. */
function parts(built: ReturnType<typeof buildProgramGraph>, dense: number, sets: number, T: number) {
  const byName = new Map(built.graph.inputs.map((gi) => [gi.name, gi.tensor]));
  const out = new Map(built.outputs.map((o) => [o.name, o.tensor]));
  return {
    wrt: [...Array.from({ length: dense }, (_, i) => byName.get(`p${i}`)!), ...Array.from({ length: sets }, (_, s) => byName.get(`x${s}`)!)],
    losses: Array.from({ length: T }, (_, t) => out.get(`loss${t}`)!),
  };
}

for (const name of modelNames()) {
  test(`${name}: compiles under the ownership check (1 and 3 tasks, dense inputs), and reachability = what autodiff differentiates`, () => {
    for (const T of [1, 3]) {
      for (const dense of [false, true]) {
        const model = createModel(name, { fields: TINY_FIELDS, numTasks: T, ...(dense ? { dense: [{ name: "d0" }, { name: "d1" }] as never } : {}) }, TINY_OPTS);
        buildProgramGraph(model, { ...TRAIN, kind: "weighted-sum" });
        const built = buildProgramGraph(model, TRAIN);
        const { wrt, losses } = parts(built, model.dense.length, model.tables.length, T);
        const reach = lossReach(built.graph, losses, wrt);
        for (let t = 0; t < T; t++) {
          const grads = [...built.layout.dense[t]!, ...built.layout.x[t]!];
          grads.forEach((g, i) => assert.equal(reach[t]![i], g !== null, `${name} T=${T} task ${t} input ${i}: reach ${reach[t]![i]}, autodiff ${g}`));
        }
      }
    }
  });
}

test("multi-level PLE variants compile (task gates between levels are task-owned)", () => {
  for (const extra of [{ levels: 2, numShared: 2 }, { levels: 3, numSpecific: 2 }]) assert.doesNotThrow(() => buildProgramGraph(mk("ple", 3, extra), TRAIN));
});

test("lossReach follows only edges that carry a gradient (not through Sign or comparisons), like grad()", () => {
  const g = new Graph("float64");
  const w = g.input("w", [3]);
  const v = g.input("v", [3]);
  const x = g.input("x", [3]);
  const viaSign = g.reduceSum(g.mul(x, g.sign(w)), [0]);
  const viaWhere = g.reduceSum(g.where(g.greater(v, 0), x, 0), [0]);
  const direct = g.reduceSum(g.mul(x, w), [0]);
  assert.deepEqual(lossReach(g, [viaSign, viaWhere, direct], [w, v, x]), [
    [false, false, true],
    [false, false, true],
    [true, false, true],
  ]);
  assert.deepEqual(grad(g, [viaSign], [w, v, x]).map((t) => t !== null), [false, false, true]);
  assert.deepEqual(grad(g, [viaWhere], [w, v, x]).map((t) => t !== null), [false, false, true]);
});
