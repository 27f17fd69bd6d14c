/**
 * `npm run bench`: timings only (never asserted in tests).
 *   npm run bench                 all sections
 *   npm run bench -- balance      only the balancing methods (T=6, d=1e6)
 *   npm run bench -- data         prepare time and batch throughput on KuaiRand
 *   npm run bench -- step         PLE T=6 step time and samples/s, EW vs per-task gradients
 */
import { runBalanceBench } from "./balance.ts";
import { runDataBench } from "./data.ts";
import { runStepBench } from "./step.ts";

const sections: Record<string, () => Promise<void>> = { balance: () => runBalanceBench(), data: runDataBench, step: runStepBench };
const wanted = process.argv.slice(2);
for (const w of wanted) if (!(w in sections)) throw new Error(`bench: unknown section "${w}"; choose from ${Object.keys(sections).join(", ")}`);
for (const [name, run] of Object.entries(sections)) {
  if (wanted.length && !wanted.includes(name)) continue;
  await run();
}
