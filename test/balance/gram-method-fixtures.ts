/**
 * Shared by the tests of FairGrad, UPGrad, ConFIG and PE-LTR: the float64 fixtures of
 * scripts/gen-gram-method-fixtures.py (test/fixtures/balance/gram-methods.json) and a short
 * training run of a method on every registered architecture.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { createModel } from "../../src/model/index.ts";
import { modelNames } from "../../src/model/registry.ts";
import { createAdam } from "../../src/optim/adam.ts";
import { createMethod, getMethod } from "../../src/balance/registry.ts";
import { trainStep } from "../../src/train/step.ts";
import { Rng } from "../../src/util/rng.ts";
import { TINY_FIELDS, learnableBatch } from "../grad/fixtures.ts";
import { mkInput } from "./methodfixtures.ts";

export interface FixtureMethod {
  method: string;
  options: Record<string, unknown>;
  coeffs: number[];
  direction: number[];
  /** FairGrad: the literal reference call (least_squares, default tolerances, no ridge), where the problem is non-degenerate. */
  reference?: number[] | null;
  /** PE-LTR: the relaxed stage-1 solution ω̂ (without c). */
  relaxed?: number[];
}

export interface FixtureCase {
  name: string;
  T: number;
  /** Rank of the gradient matrix J. */
  rank: number;
  /** Gradients (rows, float32-representable). */
  J: number[][];
  /** Gramian J Jᵀ in float64. */
  G: number[][];
  methods: Record<string, FixtureMethod>;
}

const PATH = fileURLToPath(new URL("../fixtures/balance/gram-methods.json", import.meta.url));

export function loadGramFixtures(): FixtureCase[] {
  return (JSON.parse(readFileSync(PATH, "utf8")) as { cases: FixtureCase[] }).cases;
}

/** (case, key, fixture) for every fixture entry of `method`. */
export function fixturesOf(method: string): { c: FixtureCase; key: string; m: FixtureMethod }[] {
  const out: { c: FixtureCase; key: string; m: FixtureMethod }[] = [];
  for (const c of loadGramFixtures()) for (const [key, m] of Object.entries(c.methods)) if (m.method === method) out.push({ c, key, m });
  assert.ok(out.length >= 10, `only ${out.length} fixtures for ${method}`);
  return out;
}

/** Σ_i c_i J_i in float64. */
export function directionOf(J: readonly (readonly number[])[], c: ArrayLike<number>): number[] {
  const d = new Array<number>(J[0]!.length).fill(0);
  J.forEach((row, i) => row.forEach((x, k) => (d[k] = d[k]! + c[i]! * x)));
  return d;
}

const norm = (a: readonly number[]): number => Math.sqrt(a.reduce((s, x) => s + x * x, 0));

/**
 * The method's coefficients (through weightsFromGram on the fixture's Gramian AND through
 * combine on the float32 gradients) against the fixture: the direction always (relative to
 * ‖d‖ + max|c|·Σ‖g_i‖, the size of the combination before cancellation), the coefficients
 * where `uniqueCoeffs` says they are unique (relative to max|c|).
 */
export function checkFixtures(method: string, uniqueCoeffs: (c: FixtureCase, m: FixtureMethod) => boolean, tol: { coeffs: number; direction: number }): number {
  const entry = getMethod(method);
  let compared = 0;
  for (const { c, key, m } of fixturesOf(method)) {
    const label = `${method} / ${c.name} / ${key}`;
    const fromGram = entry.weightsFromGram!(c.G, m.options).coeffs;
    const fromCombine = entry.create(c.T, m.options).combine(mkInput(c.J)).coeffs;
    for (const [path, coeffs] of [["weightsFromGram", fromGram], ["combine", fromCombine]] as const) {
      const d = directionOf(c.J, coeffs);
      const maxC = Math.max(...m.coeffs.map(Math.abs), ...Array.from(coeffs, Math.abs));
      const scale = norm(m.direction) + maxC * c.J.reduce((s, r) => s + norm(r), 0);
      const err = norm(d.map((x, k) => x - m.direction[k]!));
      assert.ok(err <= tol.direction * scale, `${label} (${path}): direction off by ${err.toExponential(2)} (scale ${scale.toExponential(2)})`);
      if (uniqueCoeffs(c, m)) {
        for (let i = 0; i < c.T; i++) {
          assert.ok(Math.abs(coeffs[i]! - m.coeffs[i]!) <= tol.coeffs * Math.max(maxC, 1e-300), `${label} (${path}): coefficient ${i} = ${coeffs[i]}, expected ${m.coeffs[i]}`);
        }
        compared++;
      }
    }
  }
  return compared;
}

const SMALL = { embDim: 3, expertUnits: [6, 4], bottomUnits: [6, 4], towerUnits: [4], seed: 5 };

/**
 * Two training steps of `method` (default options) on every registered architecture (3 tasks,
 * a tiny learnable batch): finite losses and parameters, a direction over the shared
 * parameters, and some parameter moved. Returns the architectures trained.
 */
export async function trainEveryArchitecture(method: string): Promise<string[]> {
  const T = 3;
  const archs = modelNames();
  for (const arch of archs) {
    const model = createModel(arch, { fields: TINY_FIELDS, numTasks: T }, SMALL);
    const init = model.getParams();
    const opt = createAdam(model, { lr: 0.01 });
    const m = createMethod(method, T);
    const rng = new Rng(3);
    for (const [s, B] of [[0, 20], [1, 13]] as const) {
      const r = await trainStep(model, opt, m, learnableBatch(TINY_FIELDS, T, B, 40 + s), { step: s, epoch: 0, rng, diagnostics: true });
      for (const l of r.losses) assert.ok(Number.isFinite(l), `${method}/${arch}: loss ${l}`);
      assert.equal(r.balance.direction.length, r.dim, `${method}/${arch}: direction length`);
      for (const x of r.balance.coeffs) assert.ok(Number.isFinite(x), `${method}/${arch}: coefficient ${x}`);
    }
    let moved = false;
    for (const [k, v] of Object.entries(model.getParams())) {
      for (const x of v) assert.ok(Number.isFinite(x), `${method}/${arch}: ${k} is not finite`);
      if (!moved && v.some((x, i) => x !== init[k]![i])) moved = true;
    }
    assert.ok(moved, `${method}/${arch}: no parameter changed`);
  }
  return archs;
}
