/**
 * Render a sample report from synthetic runs and screenshot it with headless Chromium.
 *
 *   npx tsx scripts/render-report.ts [out-dir] [--width 1400] [--height 2400] [--methods paper|N]
 *
 * --methods paper: the 13 methods of the paper sweep (5 seeds, 5 tasks, 20 epochs); N: N synthetic
 * methods (Single, EW, then others). Both record costs and effective weights.
 * Writes <out-dir>/report.html, <out-dir>/report.png (the top of the page) and one
 * <out-dir>/report-<section>.png per section (default out-dir: runs/report-sample).
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { resolve, join } from "node:path";
import { renderReport } from "../src/report/html.ts";
import { buildComparisonTable } from "../src/report/table.ts";
import { manyMethods, PAPER_METHODS, syntheticRuns, summariesOf } from "../test/fixtures/report/runs.ts";
import { decodePng, findChromium, INSTALL_HINT } from "../test/fixtures/report/chromium.ts";
import { Page } from "../test/fixtures/report/cdp.ts";

const argv = process.argv.slice(2);
const flag = (name: string, dflt: number) => {
  const i = argv.indexOf(name);
  if (i < 0) return dflt;
  const v = Number(argv[i + 1]);
  argv.splice(i, 2);
  if (!Number.isFinite(v) || v <= 0) throw new Error(`${name} expects a positive number`);
  return v;
};
const mi = argv.indexOf("--methods");
const methodsArg = mi >= 0 ? argv.splice(mi, 2)[1] : undefined;
const width = flag("--width", 1400);
const height = flag("--height", 2400);
const outDir = resolve(argv[0] ?? "runs/report-sample");
mkdirSync(outDir, { recursive: true });

const runs =
  methodsArg === undefined
    ? syntheticRuns()
    : syntheticRuns({
        methods: methodsArg === "paper" ? PAPER_METHODS : manyMethods(Number(methodsArg)),
        seeds: [1, 2, 3, 4, 5],
        tasks: ["long_view", "like", "follow", "comment", "forward"],
        epochs: 20,
        stepsPerEpoch: 300,
        diagEvery: 10,
        cost: true,
      });
const table = buildComparisonTable(summariesOf(runs), { baseline: "single", differences: ["single", "ew"] });
const html = renderReport({
  title: "Sample sweep — kuairand-1k / MMoE",
  runs,
  comparison: table,
  differences: table.differences,
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
// Drawn in Chromium over the DevTools protocol (the charts render after load): the top of the
// page, then one PNG per section, at --width.
const page = await Page.open(htmlPath, { width, height: 1000, timeoutMs: 60000 });
try {
  await page.eval("window.mtlcraftReport.ready");
  const png = await page.screenshot({ x: 0, y: 0, width, height });
  writeFileSync(pngPath, png);
  const img = decodePng(png);
  console.log(`wrote ${pngPath} (${img.width}x${img.height})`);
  const info = await page.eval<{ scrollWidth: number; sections: { id: string; y: number; h: number }[] }>(
    `({ scrollWidth: document.documentElement.scrollWidth, sections: [...document.querySelectorAll("section[id]")].map((s) => { const r = s.getBoundingClientRect(); return { id: s.id, y: r.top + scrollY, h: r.height }; }) })`,
  );
  for (const sec of info.sections) {
    const file = join(outDir, `report-${sec.id}.png`);
    writeFileSync(file, await page.screenshot({ x: 0, y: Math.max(0, sec.y - 4), width, height: Math.min(sec.h + 8, 4000) }));
    console.log(`wrote ${file}`);
  }
  console.log(`page width ${info.scrollWidth} px at a ${width} px window; console errors: ${page.errors.length ? page.errors.join("; ") : "none"}`);
} finally {
  page.close();
}
