/**
 * Step benchmark: PLE (GradCraft defaults: CGC, 1 shared + 1 per-task expert
 * 256-128-64, towers 32-16, embDim 16, dropout 0.2) with T = 6 tasks on real
 * shuffled batches of the bundled KuaiRand slice (29 fields), batch 2048 and
 * 4096. Reports ms/step and samples/s for
 *  - grads "sum":      one vjp with the all-ones cotangent (EW-style single sum),
 *  - grads "per-task": trunk vjp + per-task head vjps pulled back through the trunk (what balancing methods need),
 *  - trainStep:        per-task grads + flat vectors + EW combine + scatter + Adam,
 *  - trainStep GradCraft: the same with the GradCraft combination,
 * plus peak RSS. Run: `npx tsx -e 'import("./bench/step.ts").then(m => m.runStepBench())'`.
 */
import { initEngine, yieldToEngine } from "../src/grad/engine.ts";
import { createModel } from "../src/model/index.ts";
import { GradWorkspace, perTaskGrads } from "../src/grad/pertask.ts";
import { createAdam } from "../src/optim/adam.ts";
import { trainStep } from "../src/train/step.ts";
import { combine, diagnosticsFromGram, gramian } from "../src/balance/linalg.ts";
import type { BalancingMethod } from "../src/balance/types.ts";
import type { Batch } from "../src/data/types.ts";
import { loadDataset } from "../src/data/index.ts";
import { createMethod } from "../src/balance/registry.ts";
import { Rng } from "../src/util/rng.ts";

function ew(T: number): BalancingMethod {
  return {
    name: "ew-bench",
    kind: "loss-weighting",
    numTasks: T,
    combine(input) {
      const ones = new Float64Array(T).fill(1);
      return { direction: combine(input.grads, ones), coeffs: ones, taskScale: ones.slice(), diagnostics: diagnosticsFromGram(gramian(input.grads), T) };
    },
    getState: () => null,
    setState: () => {},
  };
}

export async function runStepBench(opts: { batches?: number[]; reps?: number; warmup?: number } = {}): Promise<void> {
  await initEngine();
  const T = 6;
  const reps = opts.reps ?? 5;
  const warmup = opts.warmup ?? 2;
  const data = await loadDataset("kuairand");
  const FIELDS = data.meta.fields;
  const model = createModel("ple", { fields: FIELDS, numTasks: T });
  const np = model.numParams();
  console.log(`\nStep bench: PLE on KuaiRand, T=${T}, ${FIELDS.length} fields, ${np.dense} dense + ${np.embedding} embedding params`);
  console.log("| batch | path | ms/step | samples/s | shared-vector d |\n|---:|---|---:|---:|---:|");
  const ws = new GradWorkspace(model);
  const opt = createAdam(model);
  const method = ew(T);
  const rng = new Rng(1);
  for (const B of opts.batches ?? [2048, 4096]) {
    const batches: Batch[] = [];
    for (const b of data.split("train").iterate({ batchSize: B, shuffle: true, seed: 1, epoch: 0 })) {
      batches.push(b);
      if (batches.length === 3) break;
    }
    const time = async (fn: (b: Batch, i: number) => number): Promise<{ ms: number; d: number }> => {
      let d = 0;
      for (let i = 0; i < warmup; i++) {
        fn(batches[i % 3]!, i);
        await yieldToEngine();
      }
      let total = 0;
      for (let i = 0; i < reps; i++) {
        const t0 = performance.now();
        d = fn(batches[i % 3]!, i);
        total += performance.now() - t0;
        await yieldToEngine();
      }
      return { ms: total / reps, d };
    };
    const row = (name: string, r: { ms: number; d: number }) =>
      console.log(`| ${B} | ${name} | ${r.ms.toFixed(0)} | ${((B * 1000) / r.ms).toFixed(0)} | ${r.d || "-"} |`);
    row("grads sum (EW single vjp)", await time((b, i) => (perTaskGrads(ws, b, { mode: "train", seed: i, cotangents: "sum" }), 0)));
    row("grads per-task (trunk + T heads)", await time((b, i) => (perTaskGrads(ws, b, { mode: "train", seed: i }), 0)));
    let step = 0;
    row("trainStep (per-task + EW + Adam)", await time((b) => trainStep(model, opt, method, b, { step: step++, epoch: 0, rng }).dim));
    const gc = createMethod("gradcraft", T);
    row("trainStep GradCraft", await time((b) => trainStep(model, opt, gc, b, { step: step++, epoch: 0, rng }).dim));
  }
  console.log(`peak RSS ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MB`);
}

if (import.meta.url === `file://${process.argv[1]}`) await runStepBench();
