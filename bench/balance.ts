/** Micro-benchmark: every balancing method at T=6, d=1e6 (ms per combine step). */
import { METHODS } from "../src/balance/registry.ts";
import { gramian } from "../src/balance/linalg.ts";
import { Rng } from "../src/util/rng.ts";

export async function runBalanceBench(opts: { T?: number; d?: number; reps?: number } = {}): Promise<void> {
  const T = opts.T ?? 6;
  const d = opts.d ?? 1_000_000;
  const reps = opts.reps ?? 10;
  const rng = new Rng(7);
  // Correlated task gradients with some conflicts: shared component + task noise.
  const base = new Float32Array(d);
  for (let k = 0; k < d; k++) base[k] = rng.normal();
  const grads = Array.from({ length: T }, (_, i) => {
    const g = new Float32Array(d);
    const sgn = i % 3 === 2 ? -0.5 : 1;
    const scale = 10 ** (i - 3);
    for (let k = 0; k < d; k++) g[k] = scale * (sgn * base[k]! + rng.normal());
    return g;
  });
  const losses = Float64Array.from({ length: T }, (_, i) => 0.7 - 0.05 * i);
  let t = performance.now();
  for (let r = 0; r < reps; r++) gramian(grads);
  const gramMs = (performance.now() - t) / reps;
  console.log(`\nBalancing methods, T=${T}, d=${d.toExponential(0)}, ${reps} steps each (ms/step, Gramian alone ${gramMs.toFixed(1)} ms)`);
  console.log("| method | kind | ms/step |\n|---|---|---:|");
  for (const [name, entry] of METHODS) {
    const m = entry.create(T);
    const r0 = new Rng(1);
    m.combine({ grads, losses, step: 0, epoch: 0, rng: r0 }); // warm-up
    t = performance.now();
    for (let r = 0; r < reps; r++) m.combine({ grads, losses, step: r + 1, epoch: 0, rng: r0 });
    console.log(`| ${name} | ${entry.kind} | ${((performance.now() - t) / reps).toFixed(1)} |`);
  }
}
