/**
 * The exported model served to a browser: headless Chromium loads a page from a local HTTP server
 * (127.0.0.1, a fixed set of files), which imports `mtlcraft/encoder` (src/encoder.ts compiled
 * for the browser with the TypeScript compiler's transpileModule) and onnxruntime-web (its dist/
 * files, wasm backend, one thread: no cross-origin isolation needed), encodes raw rows with
 * features.json, runs model.onnx and POSTs the ids and probabilities back. They must equal
 * `score`'s on the same rows within 1e-5, and those of onnxruntime-node fed by the encoder in
 * Node; the page must log no console error, uncaught error or unhandled rejection. Everything is
 * time-bound: the test fails (Chromium killed) if the page never posts.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import ts from "typescript";
import * as ortNode from "onnxruntime-node";
import { createEncoder, toFeeds } from "../../src/encoder.ts";
import { loadModel } from "../../src/deploy/model.ts";
import { scoreRows } from "../../src/deploy/score.ts";
import { findChromium, INSTALL_HINT } from "../fixtures/report/chromium.ts";
import { tempDir } from "../data/helpers.ts";
import { hostileRows, typedModel } from "./typed-model.ts";

const PAGE = `<!doctype html>
<html><head><meta charset="utf-8"><link rel="icon" href="data:,"><title>mtlcraft encoder</title></head><body>
<script>
  const report = (kind, text) => fetch("/log", { method: "POST", body: JSON.stringify({ kind, text: String(text) }) });
  const error0 = console.error.bind(console);
  console.error = (...a) => { report("console.error", a.join(" ")); error0(...a); };
  addEventListener("error", (e) => report("error", e.message));
  addEventListener("unhandledrejection", (e) => report("unhandledrejection", e.reason && e.reason.stack || e.reason));
</script>
<script type="module">
  import * as ort from "/ort.wasm.min.mjs";
  import { createEncoder, toFeeds } from "/encoder.js";
  try {
    ort.env.wasm.numThreads = 1;
    ort.env.wasm.wasmPaths = "/";
    const features = await (await fetch("/features.json")).json();
    const rows = await (await fetch("/rows.json")).json();
    const encoder = createEncoder(features);
    const batch = encoder.encode(rows);
    const session = await ort.InferenceSession.create("/model.onnx", { executionProviders: ["wasm"] });
    const out = await session.run(toFeeds(batch, ort.Tensor));
    const probs = {};
    for (const t of features.tasks) probs[t.output] = Array.from(out[t.output].data);
    await fetch("/result", { method: "POST", body: JSON.stringify({ probs, ids: batch.ids.map((a) => Array.from(a)), isolated: self.crossOriginIsolated }) });
  } catch (e) {
    await report("failed", e && e.stack || e);
    await fetch("/result", { method: "POST", body: JSON.stringify({ failed: String(e && e.stack || e) }) });
  }
</script></body></html>`;

const TYPES: Record<string, string> = { ".html": "text/html; charset=utf-8", ".js": "text/javascript", ".mjs": "text/javascript", ".wasm": "application/wasm", ".json": "application/json", ".onnx": "application/octet-stream" };

interface PageResult {
  probs?: Record<string, number[]>;
  ids?: number[][];
  failed?: string;
  isolated?: boolean;
}

/**
 * Serves `files` (exact paths only) on 127.0.0.1, opens the page in headless Chromium and resolves
 * with what the page POSTs to /result and every error it POSTs to /log; rejects after `timeoutMs`.
 */
async function runPage(files: Map<string, Buffer | string>, timeoutMs: number): Promise<{ result: PageResult; logs: string[] }> {
  const bin = findChromium();
  assert.ok(bin, INSTALL_HINT);
  const logs: string[] = [];
  let done: (r: PageResult) => void = () => {};
  const posted = new Promise<PageResult>((res) => (done = res));
  const body = (req: IncomingMessage): Promise<string> =>
    new Promise((res, rej) => {
      let s = "";
      req.setEncoding("utf8");
      req.on("data", (d: string) => {
        s += d;
        if (s.length > 16 << 20) req.destroy(new Error("body too large"));
      });
      req.on("end", () => res(s));
      req.on("error", rej);
    });
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? "/").split("?")[0]!;
    if (req.method === "POST" && (path === "/result" || path === "/log")) {
      void body(req).then((s) => {
        res.writeHead(204).end();
        if (path === "/log") logs.push(s);
        else done(JSON.parse(s) as PageResult);
      });
      return;
    }
    const f = files.get(path === "/" ? "/index.html" : path);
    if (req.method !== "GET" || f === undefined) {
      res.writeHead(404).end();
      return;
    }
    const ext = /\.[a-z]+$/.exec(path)?.[0] ?? ".html";
    res.writeHead(200, { "content-type": TYPES[ext] ?? "application/octet-stream", "cache-control": "no-store" }).end(f);
  });
  await new Promise<void>((res) => server.listen(0, "127.0.0.1", res));
  const port = (server.address() as { port: number }).port;
  const profile = mkdtempSync(join(tmpdir(), "mtlcraft-chromium-"));
  const args = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--no-first-run", "--disable-sync", `--user-data-dir=${profile}`, `http://127.0.0.1:${port}/`];
  const child = spawn(bin, args, { detached: true, stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr.on("data", (d: Buffer) => {
    if (stderr.length < 20000) stderr += d.toString();
  });
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, rej) => {
    timer = setTimeout(() => rej(new Error(`Chromium posted no result within ${timeoutMs} ms; page logs: ${logs.join("\n")}\nChromium stderr (tail): ${stderr.slice(-3000)}`)), timeoutMs);
  });
  const exited = new Promise<never>((_, rej) => child.on("exit", (code, sig) => rej(new Error(`Chromium exited (${code ?? sig}) before the page posted; stderr (tail): ${stderr.slice(-3000)}`))));
  try {
    const result = await Promise.race([posted, timeout, exited]);
    // errors logged just before the result was posted are in flight: give them a moment
    await new Promise((r) => setTimeout(r, 300));
    return { result, logs };
  } finally {
    clearTimeout(timer);
    try {
      if (child.pid !== undefined) process.kill(-child.pid, "SIGKILL");
    } catch {
      /* already gone */
    }
    await new Promise<void>((res) => server.close(() => res()));
    server.closeAllConnections();
    rmSync(profile, { recursive: true, force: true });
  }
}

/** src/encoder.ts as browser JavaScript (types stripped; it imports nothing). */
function browserEncoder(): string {
  const src = readFileSync(new URL("../../src/encoder.ts", import.meta.url), "utf8");
  const out = ts.transpileModule(src, { compilerOptions: { target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.ESNext }, reportDiagnostics: true });
  assert.deepEqual(out.diagnostics ?? [], []);
  assert.doesNotMatch(out.outputText, /^\s*import\s|\brequire\(/m, "the encoder imports nothing");
  return out.outputText;
}

test("Chromium + onnxruntime-web (wasm, one thread) + mtlcraft/encoder give score's probabilities within 1e-5 and the Node encoder's ids, with no console error", { timeout: 300_000 }, async () => {
  const root = tempDir("browser");
  const { modelDir } = await typedModel(root);
  const rows = hostileRows().filter((r) => typeof r.user_id !== "bigint"); // JSON has no bigint
  const features = JSON.parse(readFileSync(join(modelDir, "features.json"), "utf8")) as { tasks: { output: string }[]; fields: unknown[] };
  const ortDist = dirname(createRequire(import.meta.url).resolve("onnxruntime-web")); // its dist/
  const files = new Map<string, Buffer | string>([
    ["/index.html", PAGE],
    ["/encoder.js", browserEncoder()],
    ["/features.json", readFileSync(join(modelDir, "features.json"))],
    ["/model.onnx", readFileSync(join(modelDir, "model.onnx"))],
    ["/rows.json", JSON.stringify(rows)],
  ]);
  for (const f of ["ort.wasm.min.mjs", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm"]) files.set(`/${f}`, readFileSync(join(ortDist, f)));
  const { result, logs } = await runPage(files, 90_000);
  assert.equal(result.failed, undefined, `the page failed: ${result.failed}`);
  assert.deepEqual(logs, [], "no console error, uncaught error or unhandled rejection on the page");
  assert.equal(result.isolated, false, "the page ran without cross-origin isolation");

  // the same rows through the encoder in Node (JSON round trip: what the page got), then onnxruntime-node
  const sent = JSON.parse(JSON.stringify(rows)) as Record<string, unknown>[];
  const b = createEncoder(features).encode(sent);
  assert.deepEqual(result.ids, b.ids.map((a) => Array.from(a)), "the page's ids are the Node encoder's");
  const session = await ortNode.InferenceSession.create(join(modelDir, "model.onnx"));
  const nodeOut = await session.run(toFeeds(b, ortNode.Tensor));
  await session.release();
  const m = await loadModel(modelDir);
  let scored: Record<string, unknown>[];
  try {
    scored = await scoreRows(m, sent, { log: () => {} });
  } finally {
    await m.close();
  }
  let maxScore = 0;
  let maxNode = 0;
  for (const t of features.tasks) {
    const page = result.probs![t.output]!;
    assert.equal(page.length, rows.length);
    const node = nodeOut[t.output]!.data as Float32Array;
    for (let r = 0; r < rows.length; r++) {
      assert.ok(page[r]! >= 0 && page[r]! <= 1, `page probability ${t.output}[${r}]`);
      maxScore = Math.max(maxScore, Math.abs(page[r]! - (scored[r]![t.output] as number)));
      maxNode = Math.max(maxNode, Math.abs(page[r]! - node[r]!));
    }
  }
  assert.ok(maxScore <= 1e-5, `max |p_chromium - p_score| = ${maxScore}`);
  assert.ok(maxNode <= 1e-5, `max |p_chromium - p_onnxruntime-node| = ${maxNode}`);
});

test("the browser harness fails, not hangs, when the page never posts", { timeout: 60_000 }, async () => {
  const files = new Map<string, Buffer | string>([["/index.html", "<!doctype html><title>silent</title>"]]);
  await assert.rejects(runPage(files, 4000), /Chromium posted no result within 4000 ms/);
});
