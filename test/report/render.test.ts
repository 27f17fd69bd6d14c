import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { renderReport, methodColors } from "../../src/report/html.ts";
import { syntheticRuns, sampleTableHtml } from "../fixtures/report/runs.ts";
import { colorHistogram, decodePng, findChromium, INSTALL_HINT, PNG_SIGNATURE, screenshot } from "../fixtures/report/chromium.ts";

const WIDTH = 1280;
const HEIGHT = 2400;

test("report renders in headless Chromium to a non-blank screenshot", { timeout: 30000 }, async () => {
  const chromium = findChromium();
  if (chromium === null) assert.fail(INSTALL_HINT);

  const dir = mkdtempSync(join(tmpdir(), "mtlcraft-render-"));
  try {
    const runs = syntheticRuns();
    const html = renderReport({ title: "Render test", runs, tableHtml: sampleTableHtml(runs), meta: { command: "render.test.ts" } });
    const htmlPath = join(dir, "report.html");
    const pngPath = join(dir, "shot.png");
    writeFileSync(htmlPath, html);

    const r = await screenshot(htmlPath, pngPath, { width: WIDTH, height: HEIGHT, timeoutMs: 20000, chromium });
    assert.equal(r.timedOut, false, `chromium timed out:\n${r.stderr}`);
    assert.ok(existsSync(pngPath), `no screenshot written (exit ${r.code}, signal ${r.signal}):\n${r.stderr}`);

    const buf = readFileSync(pngPath);
    assert.ok(buf.subarray(0, 8).equals(PNG_SIGNATURE), "PNG signature");
    assert.equal(buf.toString("latin1", 12, 16), "IHDR", "IHDR is the first chunk");
    assert.equal(buf.readUInt32BE(16), WIDTH, "IHDR width");
    assert.equal(buf.readUInt32BE(20), HEIGHT, "IHDR height");

    const img = decodePng(buf);
    const hist = colorHistogram(img);
    const total = img.width * img.height;
    const [, topCount] = [...hist.entries()].reduce((a, b) => (b[1] > a[1] ? b : a));
    assert.ok(hist.size > 200, `only ${hist.size} distinct colours: blank or broken page`);
    assert.ok(topCount / total < 0.95, `one colour covers ${((100 * topCount) / total).toFixed(1)}% of the page`);
    // Text rendered: the body ink colour is present in quantity.
    assert.ok((hist.get("#1f2933") ?? 0) > 1000, "dark text pixels");
    // Every method's colour shows up (legend swatches and curves are drawn in it).
    for (const [method, color] of methodColors(runs)) {
      assert.ok((hist.get(color) ?? 0) > 200, `method ${method}: colour ${color} has ${hist.get(color) ?? 0} pixels`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
