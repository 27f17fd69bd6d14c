/**
 * Shared by the tests of the stateful gradient methods (excessmtl, moco, metabalance):
 * the committed float64 reference fixtures (scripts/gen-stateful-method-fixtures.py) and
 * a few training steps of a method on every architecture.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { createModel, MODEL_NAMES } from "../../src/model/index.ts";
import { createAdam } from "../../src/optim/adam.ts";
import { createMethod } from "../../src/balance/registry.ts";
import type { BalanceInput, BalancingMethod } from "../../src/balance/types.ts";
import { trainStep, type GradScope, type StepResult } from "../../src/train/step.ts";
import { Rng } from "../../src/util/rng.ts";
import { TINY_FIELDS, randomBatch } from "../grad/fixtures.ts";

export interface FixtureCase<E> {
  name: string;
  options: Record<string, unknown>;
  stableDim?: number | null;
  segments?: number[][] | null;
  losses?: number[][];
  grads: number[][][];
  expected: E[];
}

export function loadFixture<E>(method: string): FixtureCase<E>[] {
  const url = new URL(`../fixtures/balance/${method}.json`, import.meta.url);
  const j = JSON.parse(readFileSync(url, "utf8")) as { method: string; cases: FixtureCase<E>[] };
  assert.equal(j.method, method);
  assert.ok(j.cases.length > 0);
  return j.cases;
}

/** The BalanceInput of step k of a fixture case. */
export function fixtureInput(c: FixtureCase<unknown>, k: number): BalanceInput {
  const grads = c.grads[k]!.map((r) => Float32Array.from(r));
  const T = grads.length;
  const input: BalanceInput = {
    grads,
    losses: Float64Array.from(c.losses?.[k] ?? new Array<number>(T).fill(1)),
    step: k,
    epoch: 0,
    rng: new Rng(3),
  };
  if (c.stableDim !== undefined && c.stableDim !== null) input.stableDim = c.stableDim;
  if (c.segments !== undefined && c.segments !== null) input.segments = Int32Array.from(c.segments[k]!);
  return input;
}

/** Relative closeness with an absolute floor, per entry. */
export function near(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: number, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  let scale = 0;
  for (let i = 0; i < expected.length; i++) scale = Math.max(scale, Math.abs(expected[i]!));
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i]!;
    const e = expected[i]!;
    assert.ok(Math.abs(a - e) <= tol * Math.max(1e-3, scale), `${what}[${i}]: got ${a}, expected ${e} (tol ${tol} of ${scale})`);
  }
}

const T = 3;
const SMALL = { embDim: 3, expertUnits: [6, 4], bottomUnits: [6, 4], towerUnits: [4], seed: 5 };

/**
 * `steps` training steps of `name` on every architecture (batches of varying size, so the
 * embedding part of the flat vector changes length); checks finite losses, parameters and
 * direction, and that some parameter moved. Returns the method instances and step results.
 */
export async function trainEveryArchitecture(name: string, options: Record<string, unknown> = {}, opts: { scope?: GradScope; steps?: number } = {}): Promise<{ arch: string; method: BalancingMethod; results: StepResult[] }[]> {
  const out: { arch: string; method: BalancingMethod; results: StepResult[] }[] = [];
  for (const arch of MODEL_NAMES) {
    const model = createModel(arch, { fields: TINY_FIELDS, numTasks: T }, SMALL);
    const init = model.getParams();
    const opt = createAdam(model, { lr: 0.01 });
    const method = createMethod(name, T, options);
    const rng = new Rng(9);
    const results: StepResult[] = [];
    const sizes = [24, 9, 17, 30, 12];
    for (let s = 0; s < (opts.steps ?? 3); s++) {
      const info = { step: s, epoch: 0, rng, diagnostics: true, ...(opts.scope ? { scope: opts.scope } : {}) };
      const r = await trainStep(model, opt, method, randomBatch(TINY_FIELDS, T, sizes[s % sizes.length]!, 300 + s), info);
      for (const l of r.losses) assert.ok(Number.isFinite(l), `${name}/${arch}: loss ${l}`);
      assert.equal(r.balance.direction.length, r.dim, `${name}/${arch}: direction length`);
      for (const x of r.balance.direction) assert.ok(Number.isFinite(x), `${name}/${arch}: direction entry ${x}`);
      results.push(r);
    }
    let moved = false;
    for (const [k, v] of Object.entries(model.getParams())) {
      for (const x of v) assert.ok(Number.isFinite(x), `${name}/${arch}: ${k} is not finite`);
      if (!moved && v.some((x, i) => x !== init[k]![i])) moved = true;
    }
    assert.ok(moved, `${name}/${arch}: no parameter changed`);
    out.push({ arch, method, results });
  }
  return out;
}

/** Number of shared dense parameters (in scope "shared") and embedding tables of an architecture's tiny model. */
export function sharedLayout(arch: string): { dense: number; tables: number; stableDim: number } {
  const model = createModel(arch, { fields: TINY_FIELDS, numTasks: T }, SMALL);
  let dense = 0;
  let stableDim = 0;
  for (const p of model.dense) {
    if (p.group === "shared") {
      dense++;
      stableDim += p.data.length;
    }
  }
  let tables = 0;
  for (const set of model.tables) if (set[0]!.group === "shared") tables += set.length;
  return { dense, tables, stableDim };
}
