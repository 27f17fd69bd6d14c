/** Tiny local equal-weighting method for the step tests (src/balance/ew.ts is another helper's). */
import type { BalancingMethod } from "../../src/balance/types.ts";
import { combine, diagnosticsFromGram, gramian } from "../../src/balance/linalg.ts";

export function localEW(T: number, taskScale?: number[]): BalancingMethod {
  return {
    name: "ew-local",
    kind: "loss-weighting",
    numTasks: T,
    combine(input) {
      const ones = new Float64Array(T).fill(1);
      const G = gramian(input.grads);
      return {
        direction: combine(input.grads, ones),
        coeffs: ones,
        taskScale: taskScale ? Float64Array.from(taskScale) : ones.slice(),
        diagnostics: diagnosticsFromGram(G, T),
      };
    },
    getState: () => null,
    setState: () => {},
  };
}
