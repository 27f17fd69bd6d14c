/**
 * Render a sample report from synthetic runs and screenshot it with headless Chromium.
 *
 *   npx tsx scripts/render-report.ts [out-dir] [--width 1280] [--height 2400]
 *
 * Writes <out-dir>/report.html and <out-dir>/report.png (default out-dir: runs/report-sample).
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { resolve, join } from "node:path";
import { renderReport } from "../src/report/html.ts";
import { buildComparisonTable, toHtmlTable } from "../src/report/table.ts";
import { syntheticRuns, summariesOf } from "../test/fixtures/report/runs.ts";
import { decodePng, screenshot, findChromium, INSTALL_HINT } from "../test/fixtures/report/chromium.ts";

const argv = process.argv.slice(2);
const flag = (name: string, dflt: number) => {
  const i = argv.indexOf(name);
  if (i < 0) return dflt;
  const v = Number(argv[i + 1]);
  argv.splice(i, 2);
  if (!Number.isFinite(v) || v <= 0) throw new Error(`${name} expects a positive number`);
  return v;
};
const width = flag("--width", 1280);
const height = flag("--height", 2400);
const outDir = resolve(argv[0] ?? "runs/report-sample");
mkdirSync(outDir, { recursive: true });

const runs = syntheticRuns();
const html = renderReport({
  title: "Sample sweep — kuairand-1k / MMoE",
  runs,
  tableHtml: toHtmlTable(buildComparisonTable(summariesOf(runs), { baseline: "single" })),
  meta: {
    command: "npx tsx scripts/render-report.ts",
    date: new Date().toISOString(),
    machine: `${process.platform} ${process.arch}, node ${process.version}`,
  },
});
const htmlPath = join(outDir, "report.html");
const pngPath = join(outDir, "report.png");
writeFileSync(htmlPath, html);
console.log(`wrote ${htmlPath} (${html.length} bytes)`);

if (!findChromium()) {
  console.error(INSTALL_HINT);
  process.exit(1);
}
const r = await screenshot(htmlPath, pngPath, { width, height, timeoutMs: 30000 });
if (r.timedOut || r.code !== 0) {
  console.error(`chromium failed (code ${r.code}, signal ${r.signal}, timedOut ${r.timedOut}):\n${r.stderr}`);
  process.exit(1);
}
const img = decodePng(readFileSync(pngPath));
console.log(`wrote ${pngPath} (${img.width}x${img.height})`);
