/** The controlled-conflict benchmark: its tables (hand-computed), the label-noise axis, config checks, and `mtlcraft conflict` end to end on a tiny synthetic set. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parse } from "parse5";
import { buildConflictTable, conflictToCsv, conflictToMarkdown, renderConflictReport, type ConflictPoint } from "../../src/report/conflict.ts";
import { checkConflictConfig, gradientStats, readConflictConfig } from "../../src/sweep/conflict.ts";
import type { RunResult } from "../../src/report/types.ts";
import { tempDir } from "../data/helpers.ts";

const close = (a: number | null | undefined, b: number, tol = 1e-10) => assert.ok(a !== null && a !== undefined && Math.abs(a - b) <= tol, `${a} vs ${b}`);

const points: ConflictPoint[] = [
  {
    cosine: 0.5,
    meanCosine: 0.5,
    runs: [
      { method: "single", label: "Single", seed: 1, avA: 0.69 },
      { method: "ew", label: "EW", seed: 1, avA: 0.7 },
      { method: "ew", label: "EW", seed: 2, avA: 0.72 },
      { method: "gradcraft", label: "GradCraft", seed: 2, avA: 0.735 },
      { method: "gradcraft", label: "GradCraft", seed: 1, avA: 0.71 },
    ],
  },
  { cosine: -0.5, meanCosine: -0.1, runs: [{ method: "gradcraft", label: "GradCraft", seed: 1, avA: 0.6 }] },
];

/** The HTML parser's error codes for a page (none for a well-formed one). */
function parseErrors(html: string): string[] {
  const errors: string[] = [];
  parse(html, { onParseError: (e) => errors.push(e.code) });
  return errors;
}

test("AV-A per cosine with 95 % t-intervals, and paired differences against EW and Single (hand-computed)", () => {
  const t = buildConflictTable(points);
  assert.deepEqual(t.columns.map((c) => c.method), ["single", "ew", "gradcraft"]);
  const ew = t.avA[0]![1]!;
  close(ew.mean, 0.71);
  // t(0.975, 1) · sd / √2 with sd = 0.0141421: half-width 0.1270620
  close(ew.lo, 0.71 - 0.12706204736174703);
  close(ew.hi, 0.71 + 0.12706204736174703);
  assert.equal(ew.text, "0.7100 ± 0.1271");
  assert.equal(t.avA[0]![0]!.text, "0.6900", "one seed: no interval");
  assert.equal(t.avA[1]![1], null, "EW did not run at -0.5");
  const [vsEw, vsSingle] = t.versus;
  assert.equal(vsEw!.reference, "ew");
  assert.equal(vsSingle!.reference, "single");
  // GradCraft − EW by seed: s1 .71 − .70, s2 .735 − .72 = [.01, .015]
  const g = vsEw!.cells[0]![vsEw!.columns.findIndex((c) => c.method === "gradcraft")]!;
  close(g.mean, 0.0125);
  close(g.lo, -0.019265511840436747);
  close(g.hi, 0.04426551184043677);
  assert.equal(g.sign, "spans");
  assert.equal(vsEw!.cells[0]![0]!.text, "-0.0100 [n/a]", "Single − EW on the one shared seed");
  assert.equal(vsEw!.cells[1]![1], null, "no EW runs at -0.5");
  assert.throws(() => buildConflictTable([{ cosine: 0, meanCosine: 0, runs: [points[0]!.runs[1]!, points[0]!.runs[1]!] }]), /method "ew" has seed 1 twice/);
  assert.throws(() => buildConflictTable([]), /no points/);
});

test("Markdown, CSV and the HTML page", () => {
  const t = buildConflictTable(points);
  const md = conflictToMarkdown(t).split("\n");
  assert.equal(md[2], "| C | mean pair cos | Single | EW | GradCraft |");
  assert.equal(md[4], "| +0.5 | 0.50 | 0.6900 | 0.7100 ± 0.1271 | 0.7225 ± 0.1588 |");
  assert.equal(md[5], "| -0.5 | -0.10 | - | - | 0.6000 |");
  assert.ok(md.includes("| C | Single | GradCraft |"), "vs EW table");
  assert.ok(md.includes("| +0.5 | -0.0100 [n/a] | +0.0125 [-0.0193, +0.0443] |"), md.join("\n"));
  const csv = conflictToCsv(t).trimEnd().split("\n");
  assert.equal(csv[0], "cosine,mean_pair_cosine,method,label,metric,mean,n,ci_low,ci_high");
  assert.ok(csv.includes("0.5,0.5,single,Single,AV-A,0.69,1,,"), csv.join("\n"));
  const line = csv.find((l) => l.startsWith("0.5,0.5,gradcraft,GradCraft,AV-A - ew,"))!.split(",");
  close(Number(line[5]), 0.0125);
  close(Number(line[7]), -0.019265511840436747);
  const html = renderConflictReport(t, { title: "C <test>", meta: { command: "x & y" } });
  assert.deepEqual(parseErrors(html), []);
  assert.equal((html.match(/<svg/g) ?? []).length, 3, "AV-A plot + one per reference");
  assert.ok(html.includes("C &lt;test&gt;") && html.includes("x &amp; y"));
  assert.ok(!/NaN|Infinity/.test(html.replace(/<td>[^<]*<\/td>/g, "")), "no NaN in the plots");
});

test("the label-noise axis: ρ in the tables, CSV and plots instead of C, numbers unchanged", () => {
  const axis = { kind: "noiseCosine" as const, weightCosine: 0.9, noise: 3 };
  const t = buildConflictTable(points, { axis });
  assert.deepEqual(buildConflictTable(points).axis, { kind: "cosine" }, "default axis");
  assert.deepEqual(t.axis, axis);
  assert.deepEqual(t.avA, buildConflictTable(points).avA);
  const md = conflictToMarkdown(t).split("\n");
  assert.match(md[0]!, /against the label-noise cosine ρ \(weight-vector cosine C = 0\.9, label-noise scale σ = 3; /);
  assert.equal(md[2], "| ρ | mean noise corr | Single | EW | GradCraft |");
  assert.equal(md[4], "| +0.5 | 0.50 | 0.6900 | 0.7100 ± 0.1271 | 0.7225 ± 0.1588 |");
  assert.ok(md.includes("| ρ | Single | GradCraft |"), "vs EW table");
  assert.ok(!md.some((l) => l.startsWith("| C ")), md.join("\n"));
  const csv = conflictToCsv(t).trimEnd().split("\n");
  assert.equal(csv[0], "noise_cosine,mean_noise_correlation,method,label,metric,mean,n,ci_low,ci_high");
  assert.deepEqual(csv.slice(1), conflictToCsv(buildConflictTable(points)).trimEnd().split("\n").slice(1));
  const html = renderConflictReport(t, { title: "noise" });
  assert.deepEqual(parseErrors(html), []);
  // both plots (AV-A and each difference) label their x axis with ρ
  assert.equal((html.match(/>label-noise cosine ρ<\/text>/g) ?? []).length, 3);
  assert.ok(!html.includes("cosine C between task weight vectors"), "no C axis left");
  assert.ok(html.includes("<h2>AV-A against the label-noise cosine</h2>"));
  assert.ok(html.includes("<th>ρ</th><th>mean noise corr</th>"));
  assert.ok(html.includes("weight-vector cosine C = 0.9, label-noise scale σ = 3"));
  assert.throws(() => buildConflictTable([{ cosine: 0, meanCosine: 0, runs: [points[0]!.runs[1]!, points[0]!.runs[1]!] }], { axis }), /noise cosine 0: method "ew" has seed 1 twice/);
});

test("gradient statistics: EW's runs, mean over each run's logged steps, then over runs", () => {
  const run = (method: string, diags: { cos: number[]; conflicts: number }[], norms = [1, 1, 1]) =>
    ({ method, tasks: ["a", "b", "c"], diagnostics: diags.map((d, step) => ({ step, losses: [], weights: null, norms, cosines: [1, d.cos[0], d.cos[1], d.cos[0], 1, d.cos[2], d.cos[1], d.cos[2], 1], conflicts: d.conflicts })) }) as unknown as RunResult;
  const results = [
    run("single", [{ cos: [0, 0, 0], conflicts: 0 }], [0, 0, 0]),
    run("pcgrad", [{ cos: [0.9, 0.9, 0.9], conflicts: 0 }]),
    // EW seed 1: steps with mean cosine (0.3 - 0.3 + 0.6)/3 = 0.2 and (-0.3)/3 = -0.1 -> 0.05; conflicts 1/3 and 2/3 -> 0.5
    run("ew", [{ cos: [0.3, -0.3, 0.6], conflicts: 1 }, { cos: [-0.3, 0, 0], conflicts: 2 }]),
    // EW seed 2: one step, mean cosine 0.15, no conflict
    run("ew", [{ cos: [0.15, 0.15, 0.15], conflicts: 0 }]),
  ];
  const g = gradientStats(results)!;
  assert.equal(g.method, "ew");
  close(g.cosine, (0.05 + 0.15) / 2);
  close(g.conflictRate, 0.25);
  // without EW: the first method with shared-parameter gradients (Single's norms are 0)
  assert.equal(gradientStats(results.filter((r) => r.method !== "ew"))!.method, "pcgrad");
  assert.equal(gradientStats([results[0]!]), null);
  const t = buildConflictTable([{ ...points[0]!, gradients: { method: "ew", cosine: 0.0123, conflictRate: 0.456 } }, points[1]!]);
  const md = conflictToMarkdown(t).split("\n");
  assert.equal(md[2], "| C | mean pair cos | grad cos | conflicts | Single | EW | GradCraft |");
  assert.equal(md[4], "| +0.5 | 0.50 | 0.012 | 46 % | 0.6900 | 0.7100 ± 0.1271 | 0.7225 ± 0.1588 |");
  assert.equal(md[5], "| -0.5 | -0.10 | - | - | - | - | 0.6000 |");
  assert.ok(conflictToCsv(t).includes("\n0.5,0.5,ew,,gradient cosine,0.0123,,,\n0.5,0.5,ew,,conflict rate,0.456,,,\n"));
});

test("conflict configs are checked: keys, cosines, generator options, keys the benchmark sets itself", () => {
  const ok = readConflictConfig("configs/conflict.json");
  assert.deepEqual(ok.cosines, [0.9, 0.5, 0, -0.5, -0.9]);
  assert.deepEqual(ok.synth?.rates, [0.5, 0.25, 0.15, 0.02, 0.005, 0.002]);
  const w = "c.json";
  const bad: [unknown, RegExp][] = [
    [{ cosines: [0.5], sweeps: {} }, /c\.json: unknown key "sweeps"; did you mean "sweep"\?/],
    [{ cosines: [] }, /cosines must be a non-empty list/],
    [{ cosines: [0.5, 1.2] }, /cosines\[1\] must be a number in \[-1, 1\], got 1\.2/],
    [{ cosines: [0.5, 0.5] }, /cosines lists a value twice/],
    [{ cosines: [0], synth: { hiden: 8 } }, /unknown key "hiden"; did you mean "hidden"\?/],
    [{ cosines: [0], synth: { hidden: 3 } }, /hidden must be at least tasks \+ 1 = 7/],
    [{ cosines: [0], sweep: { dataset: "kuairand" } }, /sweep\.dataset is set by the conflict benchmark/],
    [{ cosines: [0], out: "" }, /out must be a non-empty string/],
  ];
  for (const [x, re] of bad) assert.throws(() => checkConflictConfig(x, w), re, JSON.stringify(x));
});

test("conflict configs with noiseCosines: one weight cosine, label noise on, ρ values checked", () => {
  const ok = readConflictConfig("configs/conflict-noise.json");
  assert.deepEqual(ok.cosines, [0.9]);
  assert.deepEqual(ok.noiseCosines, [0.9, 0, -0.9]);
  assert.equal(ok.synth?.noise, 3);
  assert.equal(ok.out, "runs/conflict-noise");
  // the same generator and sweep as configs/conflict.json, plus the noise
  const base = readConflictConfig("configs/conflict.json");
  assert.deepEqual({ ...ok.synth, noise: undefined }, { ...base.synth, noise: undefined });
  assert.deepEqual(ok.sweep, base.sweep);
  const w = "c.json";
  const noisy = { seed: 1, noise: 3 };
  // a fixed noise cosine without the axis is a plain generator option
  checkConflictConfig({ cosines: [0.9, -0.9], synth: { noise: 2, noiseCosine: -0.5 } }, w);
  const bad: [unknown, RegExp][] = [
    [{ cosines: [0.9, 0.5], noiseCosines: [0.9, -0.9], synth: noisy }, /c\.json: noiseCosines sweeps the label-noise cosine at one weight cosine: cosines must list exactly one value, got 2 \(\[0\.9,0\.5\]\)/],
    [{ cosines: [0.9], noiseCosines: [0.9, -0.9] }, /noiseCosines needs synth\.noise > 0 \(the label-noise scale σ\), got undefined/],
    [{ cosines: [0.9], noiseCosines: [0.9, -0.9], synth: { noise: 0 } }, /noiseCosines needs synth\.noise > 0 \(the label-noise scale σ\), got 0/],
    [{ cosines: [0.9], noiseCosines: [0.9], synth: { ...noisy, noiseCosine: 0.5 } }, /synth\.noiseCosine is set per point by noiseCosines; remove it/],
    [{ cosines: [0.9], noiseCosines: [] , synth: noisy }, /noiseCosines must be a non-empty list of numbers in \[-1, 1\]/],
    [{ cosines: [0.9], noiseCosines: [0.5, -1.5], synth: noisy }, /noiseCosines\[1\] must be a number in \[-1, 1\], got -1\.5/],
    [{ cosines: [0.9], noiseCosines: [0.5, 0.5], synth: noisy }, /noiseCosines lists a value twice/],
    [{ cosines: [0.9], noiseCosine: [0.5], synth: noisy }, /c\.json: unknown key "noiseCosine"; did you mean "noiseCosines"\?/],
    [{ cosines: [0.9], synth: { noise: 3, noiseCosines: 0.5 } }, /c\.json: synth: unknown key "noiseCosines"; did you mean "noiseCosine"\?/],
    [{ cosines: [0.9], synth: { noise: -1 } }, /synth: noise must be a number in \[0, 10\]/],
    [{ cosines: [0.9], synth: { noiseCosine: -0.5 } }, /noiseCosine -0\.5 has no effect without label noise/],
  ];
  for (const [x, re] of bad) assert.throws(() => checkConflictConfig(x, w), re, JSON.stringify(x));
});

/**
 * Runs `mtlcraft conflict` on a tiny config (shared-bottom, 4 units, `steps` steps per job)
 * in a fresh folder; returns the process, the output folder and its conflict.md.
 */
function runConflict(
  name: string,
  c: { cosines: number[]; noiseCosines?: number[]; synth: Record<string, unknown>; methods: string[]; seeds: number; jobs: number; steps: number },
): { r: ReturnType<typeof spawnSync>; out: string; md: string } {
  const root = tempDir(name);
  const cfgPath = join(root, "conflict.json");
  const { cosines, noiseCosines, synth, methods, seeds, jobs, steps } = c;
  writeFileSync(
    cfgPath,
    JSON.stringify({
      cosines,
      ...(noiseCosines ? { noiseCosines } : {}),
      synth,
      sweep: {
        model: "shared-bottom",
        methods,
        seeds,
        jobs,
        modelOptions: { bottomUnits: "4" },
        train: { "max-steps": steps, "batch-size": 64, "emb-dim": 2, epochs: 1, patience: 0, "cache-dir": join(root, "cache") },
      },
      out: join(root, "out"),
    }),
  );
  const r = spawnSync(process.execPath, ["--import", "tsx", "src/cli.ts", "conflict", "--config", cfgPath], { encoding: "utf8", timeout: 300_000 });
  assert.equal(r.status, 0, String(r.stderr));
  const out = join(root, "out");
  return { r, out, md: readFileSync(join(out, "conflict.md"), "utf8") };
}

test("mtlcraft conflict: a sweep per cosine on the generated data, then the AV-A table, CSV and plot", () => {
  const { r, out, md } = runConflict("conflict", { cosines: [0.5, -0.5], synth: { rows: 600, users: 20, items: 10, rates: [0.5, 0.2], hidden: 3 }, methods: ["ew", "pcgrad"], seeds: 2, jobs: 2, steps: 3 });
  assert.match(md, /^\| C \| mean pair cos \| grad cos \| conflicts \| EW \| PCGrad \|$/m);
  assert.match(md, /^\| \+0\.5 \| 0\.50 \| -?0\.\d{3} \| \d+ % \| 0\.\d{4} ± 0\.\d{4} \| 0\.\d{4} ± 0\.\d{4} \|$/m);
  assert.match(md, /over the logged steps of ew:/);
  // two tasks at C = -0.5: the single pair has cosine -0.5
  assert.match(md, /^\| -0\.5 \| -0\.50 \| /m);
  assert.match(md, /^AV-A − EW, paired by seed/m);
  assert.match(String(r.stdout), /wall time \d+ s/);
  assert.match(readFileSync(join(out, "conflict.html"), "utf8"), /<svg/);
  assert.match(readFileSync(join(out, "conflict.csv"), "utf8"), /^-0\.5,-0\.50*\d?,pcgrad,PCGrad,AV-A - ew,/m);
  // each cosine is a normal bench output, with the paired differences
  for (const c of ["cos0.5", "cos-0.5"]) {
    assert.ok(existsSync(join(out, c, "report.html")), c);
    assert.match(readFileSync(join(out, c, "differences.csv"), "utf8"), /^pcgrad,PCGrad,ew,AV-A,/m);
    assert.match(readFileSync(join(out, c, "results.md"), "utf8"), /^\| Δ vs EW \| PCGrad \|$/m);
    assert.ok(existsSync(join(out, "data", c, "synth.json")));
  }
});

test("mtlcraft conflict with noiseCosines: a sweep per label-noise cosine at the one C, ρ on the axis", () => {
  const { out, md } = runConflict("conflict-noise", {
    cosines: [0.5], noiseCosines: [0.9, -0.9], synth: { rows: 600, users: 20, items: 10, rates: [0.5, 0.2], hidden: 3, noise: 3 }, methods: ["ew"], seeds: 1, jobs: 1, steps: 2,
  });
  assert.match(md, /against the label-noise cosine ρ \(weight-vector cosine C = 0\.5, label-noise scale σ = 3;/);
  assert.match(md, /^\| ρ \| mean noise corr \| grad cos \| conflicts \| EW \|$/m);
  // two tasks: the one pair's realised noise correlation is about ρ
  assert.match(md, /^\| \+0\.9 \| 0\.(8\d|9\d) \| /m);
  assert.match(md, /^\| -0\.9 \| -0\.(8\d|9\d) \| /m);
  assert.match(readFileSync(join(out, "conflict.csv"), "utf8"), /^noise_cosine,mean_noise_correlation,/);
  const html = readFileSync(join(out, "conflict.html"), "utf8");
  assert.match(html, />label-noise cosine ρ<\/text>/);
  assert.match(html, /<dt>noise cosines<\/dt><dd>0\.9, -0\.9<\/dd>/);
  for (const [tag, rho] of [["noisecos0.9", 0.9], ["noisecos-0.9", -0.9]] as const) {
    assert.ok(existsSync(join(out, tag, "report.html")), tag);
    const spec = JSON.parse(readFileSync(join(out, "data", tag, "synth.json"), "utf8")) as { name: string };
    assert.equal(spec.name, `synth-cos0.5-noise3-ncos${rho}-s1`);
  }
});
