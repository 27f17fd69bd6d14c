/**
 * `npm run bench`: timings only (never asserted in tests).
 *   npm run bench                 all sections
 *   npm run bench -- balance      only the balancing methods (T=6, d=1e6)
 *   npm run bench -- data         prepare time and batch throughput on KuaiRand
 *   npm run bench -- step         PLE T=6 trainStep (EW, GradCraft) against the PyTorch peer, threads
 *   npm run bench -- epoch        one KuaiRand epoch of PLE + GradCraft against the PyTorch peer
 *   npm run bench -- step-loss    PLE T=6 trainStep: EW against the loss-aware STCH and FAMO, alternated
 *   npm run bench -- step-balance-at  PLE T=6 trainStep: EW, GradCraft at parameters and at representation, alternated
 * `npm run bench` runs balance, data and step; epoch, step-loss and step-balance-at only when named.
 */
import { runBalanceBench } from "./balance.ts";
import { runDataBench } from "./data.ts";
import { runBalanceAtBench, runEpochBench, runLossAwareBench, runStepBench } from "./step.ts";

const sections: Record<string, () => Promise<void>> = { balance: () => runBalanceBench(), data: runDataBench, step: () => runStepBench(), epoch: runEpochBench, "step-loss": () => runLossAwareBench(), "step-balance-at": () => runBalanceAtBench() };
const wanted = process.argv.slice(2);
for (const w of wanted) if (!(w in sections)) throw new Error(`bench: unknown section "${w}"; choose from ${Object.keys(sections).join(", ")}`);
for (const [name, run] of Object.entries(sections)) {
  if (wanted.length ? !wanted.includes(name) : name === "epoch" || name === "step-loss" || name === "step-balance-at") continue;
  await run();
}
