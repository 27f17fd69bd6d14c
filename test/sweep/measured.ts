/**
 * results.md states measured costs (ms per step, ratios to EW's time per step), which differ from
 * run to run; tests that compare two runs' tables compare them without those measurements.
 */
export function withoutMeasuredCost(md: string): string {
  return md.replace(/^- Cost per training step .*$/m, "").replace(/, at \d+\.\d+x [^']+'s time per step/g, "");
}
