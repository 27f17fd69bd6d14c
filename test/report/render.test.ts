/**
 * The report in headless Chromium (over the DevTools protocol through a pipe): it draws, it fits
 * 1400 px with 25 methods, it logs no error, the method legend toggles a series, the tables sort,
 * hover shows values; and the file stays under 3 MB with the paper's 13 methods and with 25.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { renderReport, methodColors } from "../../src/report/html.ts";
import { buildComparisonTable } from "../../src/report/table.ts";
import type { RunResult } from "../../src/report/types.ts";
import { manyMethods, PAPER_METHODS, syntheticRuns, sampleTableHtml, summariesOf } from "../fixtures/report/runs.ts";
import { colorHistogram, decodePng, findChromium, INSTALL_HINT, PNG_SIGNATURE } from "../fixtures/report/chromium.ts";
import { Page } from "../fixtures/report/cdp.ts";

const MAX_BYTES = 3 * 1024 * 1024;

/** Runs shaped like the paper sweep: 5 seeds, 5 tasks, 20 epochs, a diagnostic every 10 of 300 steps per epoch, costs. */
function paperLike(methods: typeof PAPER_METHODS): RunResult[] {
  return syntheticRuns({ methods, seeds: [1, 2, 3, 4, 5], tasks: ["long_view", "like", "follow", "comment", "forward"], epochs: 20, stepsPerEpoch: 300, diagEvery: 10, cost: true });
}

function fullReport(runs: RunResult[], title: string): string {
  const table = buildComparisonTable(summariesOf(runs), { baseline: "single", differences: ["single", "ew"] });
  return renderReport({ title, runs, comparison: table, differences: table.differences, meta: { command: "render.test.ts" } });
}

async function withPage<T>(html: string, width: number, fn: (p: Page) => Promise<T>): Promise<T> {
  if (findChromium() === null) assert.fail(INSTALL_HINT);
  const dir = mkdtempSync(join(tmpdir(), "mtlcraft-render-"));
  const path = join(dir, "report.html");
  writeFileSync(path, html);
  const page = await Page.open(path, { width, height: 1000, timeoutMs: 30000 });
  try {
    const views = await page.eval<number>("window.mtlcraftReport.ready");
    assert.ok(views > 0, "charts drawn");
    return await fn(page);
  } finally {
    page.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Page-level checks: no horizontal overflow, every table fits its box, every chart drew an <svg>. */
const LAYOUT = `(() => {
  const wraps = [...document.querySelectorAll("#table .table-wrap, #differences .table-wrap")];
  return {
    scrollWidth: document.documentElement.scrollWidth,
    innerWidth: window.innerWidth,
    tableOverflow: wraps.filter((w) => w.scrollWidth > w.clientWidth + 1).length,
    tables: wraps.length,
    charts: document.querySelectorAll("[data-spec]").length,
    drawn: document.querySelectorAll("[data-spec] svg.marks").length,
    legendColors: [...document.querySelectorAll("#auc .mlegend button")].map((b) => getComputedStyle(b.querySelector(".sw")).borderTopColor),
  };
})()`;

interface Layout {
  scrollWidth: number;
  innerWidth: number;
  tableOverflow: number;
  tables: number;
  charts: number;
  drawn: number;
  legendColors: string[];
}

test("report renders in headless Chromium to a non-blank screenshot, the focus method's colour drawn", { timeout: 60000 }, async () => {
  const runs = syntheticRuns();
  const html = renderReport({ title: "Render test", runs, tableHtml: sampleTableHtml(runs), meta: { command: "render.test.ts" } });
  await withPage(html, 1280, async (page) => {
    const buf = await page.screenshot({ x: 0, y: 0, width: 1280, height: 2400 });
    assert.ok(buf.subarray(0, 8).equals(PNG_SIGNATURE), "PNG signature");
    const img = decodePng(buf);
    assert.equal(img.width, 1280);
    assert.equal(img.height, 2400);
    const hist = colorHistogram(img);
    const total = img.width * img.height;
    const [, topCount] = [...hist.entries()].reduce((a, b) => (b[1] > a[1] ? b : a));
    assert.ok(hist.size > 200, `only ${hist.size} distinct colours: blank or broken page`);
    assert.ok(topCount / total < 0.95, `one colour covers ${((100 * topCount) / total).toFixed(1)}% of the page`);
    assert.ok((hist.get("#1f2933") ?? 0) > 1000, "dark text pixels");
    // Every method's colour shows (legend swatches); the focus method's (GradCraft) also in its strong lines.
    const colors = methodColors(runs);
    for (const [method, color] of colors) assert.ok((hist.get(color) ?? 0) > 40, `method ${method}: colour ${color} has ${hist.get(color) ?? 0} pixels`);
    assert.ok((hist.get(colors.get("gradcraft")!) ?? 0) > 1000, "the focus method is drawn strong");
    assert.deepEqual(page.errors, []);
  });
});

test("25 methods at 1400 px: no horizontal overflow, tables fit, unique legend colours, no console error; toggles, sorting and hover work", { timeout: 120000 }, async () => {
  const runs = syntheticRuns({ methods: manyMethods(25), seeds: [1, 2, 3], tasks: ["long_view", "like", "follow", "comment", "forward"], epochs: 10, stepsPerEpoch: 100, diagEvery: 10, cost: true });
  const html = fullReport(runs, "25 methods");
  assert.ok(html.length < MAX_BYTES, `${html.length} bytes`);
  await withPage(html, 1400, async (page) => {
    const l = await page.eval<Layout>(LAYOUT);
    assert.equal(l.innerWidth, 1400);
    assert.ok(l.scrollWidth <= 1400, `page is ${l.scrollWidth} px wide`);
    assert.ok(l.tables >= 3, "comparison + two difference tables");
    assert.equal(l.tableOverflow, 0, "no table scrolls sideways");
    assert.equal(l.drawn, l.charts, "every chart drew its svg");
    assert.equal(l.legendColors.length, 25);
    assert.equal(new Set(l.legendColors).size, 25, `legend colours: ${l.legendColors.join(" ")}`);

    // Toggle: a muted method's line in the first AUC chart becomes strong on a click of its legend entry, and muted again.
    const label = "Method 7 with a longer name";
    const color = methodColors(runs).get("method-7")!;
    const opacity = `(() => {
      const paths = [...document.querySelector("#auc [data-spec]").querySelectorAll(".mark-line path")].filter((p) => p.getAttribute("stroke") === ${JSON.stringify(color)});
      return paths.length === 1 ? Number(paths[0].getAttribute("stroke-opacity") ?? 1) : -paths.length;
    })()`;
    const button = `(() => {
      const b = [...document.querySelectorAll("#auc .mlegend button")].find((x) => x.getAttribute("data-m") === ${JSON.stringify(label)});
      b.scrollIntoView({ block: "center" });
      const r = b.getBoundingClientRect();
      return { x: r.left + r.width / 2, y: r.top + r.height / 2, pressed: b.getAttribute("aria-pressed") };
    })()`;
    const waitFor = async (want: number) => {
      for (let i = 0; i < 50; i++) {
        if ((await page.eval<number>(opacity)) === want) return;
        await page.eval("new Promise((r) => setTimeout(r, 100))");
      }
      assert.fail(`stroke-opacity of ${label} never became ${want} (is ${await page.eval<number>(opacity)})`);
    };
    assert.equal(await page.eval<number>(opacity), 0.2, "muted at first");
    let b = await page.eval<{ x: number; y: number; pressed: string }>(button);
    assert.equal(b.pressed, "false");
    await page.click(b.x, b.y);
    await waitFor(1);
    b = await page.eval<{ x: number; y: number; pressed: string }>(button);
    assert.equal(b.pressed, "true");
    await page.click(b.x, b.y);
    await waitFor(0.2);

    // Sorting: a click on the AV-A header puts the best AV-A first, a second click the worst.
    const sortBy = `(() => {
      const t = document.querySelector("#table table.sortable");
      const th = [...t.querySelectorAll("thead th")].find((h) => h.textContent === "AV-A");
      th.scrollIntoView({ block: "center" });
      const r = th.getBoundingClientRect();
      return { x: r.left + r.width / 2, y: r.top + r.height / 2 };
    })()`;
    const firstRow = `document.querySelector("#table table.sortable tbody tr th").textContent`;
    const ava = new Map(runs.map((r) => [r.methodLabel, 0]));
    for (const r of runs) ava.set(r.methodLabel, ava.get(r.methodLabel)! + r.test.auc.reduce((a, x) => a + x, 0) / r.test.auc.length);
    const ranked = [...ava.entries()].sort((a, x) => x[1] - a[1]).map(([k]) => k);
    let at = await page.eval<{ x: number; y: number }>(sortBy);
    await page.click(at.x, at.y);
    assert.equal(await page.eval<string>(firstRow), ranked[0]);
    at = await page.eval<{ x: number; y: number }>(sortBy);
    await page.click(at.x, at.y);
    assert.equal(await page.eval<string>(firstRow), ranked.at(-1));

    // Hover: a point of the focus method shows a tooltip naming it and its value.
    const point = `(() => {
      const pts = [...document.querySelectorAll("#cost [data-spec] .mark-symbol path")];
      const p = pts[0];
      p.scrollIntoView({ block: "center" });
      const r = p.getBoundingClientRect();
      return { x: r.left + r.width / 2, y: r.top + r.height / 2, n: pts.length };
    })()`;
    const pt = await page.eval<{ x: number; y: number; n: number }>(point);
    assert.equal(pt.n, 25, "a point per method with a cost");
    await page.send("Input.dispatchMouseEvent", { type: "mouseMoved", x: pt.x, y: pt.y });
    let tip = "";
    for (let i = 0; i < 30 && !tip.includes("AV-A"); i++) {
      await page.eval("new Promise((r) => setTimeout(r, 100))");
      tip = await page.eval<string>(`(() => { const t = document.getElementById("vg-tooltip-element"); return t && t.classList.contains("visible") ? t.textContent : ""; })()`);
    }
    assert.match(tip, /Single/, `tooltip: ${tip}`);
    assert.match(tip, /AV-A\s*0\.\d{4}/);
    assert.deepEqual(page.errors, [], "no console error or exception");
  });
});

test("the paper's 13 methods at 1400 px: no overflow, every chart drawn, no console error, under 3 MB", { timeout: 120000 }, async () => {
  const html = fullReport(paperLike(PAPER_METHODS), "paper");
  assert.ok(html.length < MAX_BYTES, `${html.length} bytes`);
  await withPage(html, 1400, async (page) => {
    const l = await page.eval<Layout>(LAYOUT);
    assert.ok(l.scrollWidth <= 1400, `page is ${l.scrollWidth} px wide`);
    assert.equal(l.tableOverflow, 0, "no table scrolls sideways");
    assert.equal(l.drawn, l.charts);
    assert.equal(new Set(l.legendColors).size, 13);
    assert.deepEqual(page.errors, []);
  });
});

test("25 methods shaped like the paper sweep stay under 3 MB", () => {
  const html = fullReport(paperLike(manyMethods(25)), "25");
  assert.ok(html.length < MAX_BYTES, `${html.length} bytes`);
});
