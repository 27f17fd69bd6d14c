/**
 * Across datasets: one summary of several bench outputs (one folder per dataset), as Demšar
 * (JMLR 2006) recommends for comparing many methods over several data sets: the methods are
 * ranked on each dataset by their mean AV-A over seeds, the Friedman test (with the Iman–Davenport
 * F) asks whether the mean ranks differ at all, and the Nemenyi critical difference says which
 * pairs do (src/metrics/multiple.ts). The summary also repeats each dataset's verdict
 * (verdict.json of its bench).
 *
 * Only methods that ran on every dataset enter the ranking (the Friedman test needs complete
 * blocks); the others are listed with the datasets they lack. The bench folders are read as
 * untrusted files: every value is checked and a bad one is named by file and line.
 */
import { existsSync, readFileSync, realpathSync } from "node:fs";
import { join, resolve } from "node:path";
import { plainText } from "../util/text.ts";
import { cdGroups, friedman, nemenyiCD, type FriedmanResult } from "../metrics/multiple.ts";
import { esc } from "./svg.ts";
import { mdEscape, csvField } from "./table.ts";
import { reportPage, REPORT_FOOTER } from "./html.ts";
import { checkWritable, writeFileAtomic } from "../util/fsx.ts";

export interface DatasetBlock {
  /** Bench folder it came from. */
  dir: string;
  dataset: string;
  model: string;
  /** Mean AV-A over seeds per method (method id → value), and the methods' labels. */
  avA: Map<string, number>;
  labels: Map<string, string>;
  /** The dataset's verdict sentences (empty when its bench wrote no verdict.json). */
  verdict: string[];
}

const MAX_FILE = 64 * 1024 * 1024;
/** A plain decimal number as the bench writes it (no hex, no Infinity). */
const DECIMAL = /^-?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i;

function readText(path: string): string {
  if (!existsSync(path)) throw new Error(`${path}: not found (is this a bench --out folder? run bench or bench --report-only there first)`);
  const buf = readFileSync(path);
  if (buf.length > MAX_FILE) throw new Error(`${path}: larger than ${MAX_FILE} bytes; not a bench output`);
  return buf.toString("utf8");
}

/** RFC 4180 fields of one CSV line (the bench's own CSV: quotes doubled, no line breaks in fields). */
function csvLine(line: string): string[] {
  const out: string[] = [];
  let i = 0;
  while (i <= line.length) {
    if (line[i] === '"') {
      let v = "";
      i++;
      while (i < line.length) {
        if (line[i] === '"' && line[i + 1] === '"') {
          v += '"';
          i += 2;
        } else if (line[i] === '"') {
          i++;
          break;
        } else v += line[i++];
      }
      out.push(v);
      i++; // the comma
    } else {
      const j = line.indexOf(",", i);
      const end = j < 0 ? line.length : j;
      out.push(line.slice(i, end));
      i = end + 1;
    }
    if (i > line.length) break;
  }
  return out;
}

/** Reads one bench output folder (results.csv, sweep.json, verdict.json when present). */
export function readBenchFolder(dir: string): DatasetBlock {
  const sweepPath = join(dir, "sweep.json");
  const sweepText = readText(sweepPath);
  let sweep: unknown;
  try {
    sweep = JSON.parse(sweepText);
  } catch (e) {
    throw new Error(`${sweepPath}: not valid JSON`, { cause: e });
  }
  const config = (sweep as { config?: { dataset?: unknown; model?: unknown } } | null)?.config;
  if (typeof config?.dataset !== "string" || typeof config.model !== "string") throw new Error(`${sweepPath}: config.dataset and config.model must be strings`);
  const csvPath = join(dir, "results.csv");
  const lines = readText(csvPath).split(/\r?\n/).filter((l) => l !== "");
  const head = "method,label,metric,unit,mean,std,n,mark";
  if (lines[0] !== head) throw new Error(`${csvPath}: line 1 must be the header ${head}`);
  const avA = new Map<string, number>();
  const labels = new Map<string, string>();
  lines.slice(1).forEach((l, k) => {
    const f = csvLine(l);
    if (f.length !== 8) throw new Error(`${csvPath}: line ${k + 2} has ${f.length} fields, expected 8`);
    const [method, label, metric, , mean] = f as [string, string, string, string, string];
    if (metric !== "AV-A" || mean === "") return;
    const v = DECIMAL.test(mean) ? Number(mean) : NaN;
    if (!(v >= 0 && v <= 1)) throw new Error(`${csvPath}: line ${k + 2}: AV-A of "${plainText(method, 100)}" is not a number in [0, 1]`);
    if (avA.has(method)) throw new Error(`${csvPath}: line ${k + 2}: method "${plainText(method, 100)}" appears twice`);
    avA.set(method, v);
    labels.set(method, plainText(label, 200));
  });
  if (avA.size === 0) throw new Error(`${csvPath}: no AV-A values`);
  let verdict: string[] = [];
  const vPath = join(dir, "verdict.json");
  if (existsSync(vPath)) {
    const vText = readText(vPath);
    let v: unknown;
    try {
      v = JSON.parse(vText);
    } catch (e) {
      throw new Error(`${vPath}: not valid JSON`, { cause: e });
    }
    const ls = (v as { lines?: unknown } | null)?.lines;
    if (!Array.isArray(ls) || !ls.every((x) => typeof (x as { text?: unknown })?.text === "string")) throw new Error(`${vPath}: lines must be a list of {kind, text}`);
    verdict = ls.map((x) => plainText((x as { text: string }).text, 2000));
  }
  return { dir, dataset: plainText(config.dataset, 200), model: plainText(config.model, 200), avA, labels, verdict };
}

export interface AcrossSummary {
  blocks: DatasetBlock[];
  /** Methods in every block, in first-seen order, with labels. */
  methods: { method: string; label: string }[];
  /** Methods left out, with the datasets they lack. */
  incomplete: { method: string; missing: string[] }[];
  friedman: FriedmanResult | null;
  cd: number | null;
  alpha: number;
  /** Groups of methods (indices into `methods`) whose mean ranks differ by less than CD. */
  groups: number[][];
}

/** The cross-dataset summary of bench folders (at least 2 datasets and 2 common methods for the tests). */
export function summariseAcross(blocks: DatasetBlock[], alpha = 0.05): AcrossSummary {
  if (blocks.length === 0) throw new Error("across: no bench folders given");
  const name = (b: DatasetBlock) => `${b.dataset} (${b.dir})`;
  const all: string[] = [];
  for (const b of blocks) for (const m of b.avA.keys()) if (!all.includes(m)) all.push(m);
  const common = all.filter((m) => blocks.every((b) => b.avA.has(m)));
  const incomplete = all.filter((m) => !common.includes(m)).map((m) => ({ method: m, missing: blocks.filter((b) => !b.avA.has(m)).map(name) }));
  const methods = common.map((m) => ({ method: m, label: blocks.find((b) => b.labels.has(m))!.labels.get(m)! }));
  let fr: FriedmanResult | null = null;
  let cd: number | null = null;
  let groups: number[][] = [];
  if (blocks.length >= 2 && common.length >= 2) {
    fr = friedman(blocks.map((b) => common.map((m) => b.avA.get(m)!)));
    cd = nemenyiCD(common.length, blocks.length, alpha);
    groups = cdGroups(fr.avgRanks, cd);
  }
  return { blocks, methods, incomplete, friedman: fr, cd, alpha, groups };
}

const f3 = (x: number) => x.toFixed(3);
const pText = (p: number) => (p < 0.001 ? p.toExponential(1) : p.toFixed(3));

function rankOrder(s: AcrossSummary): number[] {
  const r = s.friedman?.avgRanks ?? [];
  return s.methods.map((_, i) => i).sort((a, b) => (r[a] ?? 0) - (r[b] ?? 0) || a - b);
}

/** One sentence on what the ranks support. */
export function acrossSentence(s: AcrossSummary): string {
  if (!s.friedman || s.cd === null) {
    return s.blocks.length < 2 ? "One dataset only: mean ranks across datasets need at least two." : "Fewer than two methods ran on every dataset: nothing to rank.";
  }
  const f = s.friedman;
  const order = rankOrder(s);
  const best = order[0]!;
  const sig = f.pFF < s.alpha;
  const head = `Over ${f.N} datasets and ${f.k} methods, the Friedman test ${sig ? "finds" : "does not find"} a difference in mean ranks (Iman–Davenport F = ${f.ff === Infinity ? "∞, every dataset ranks the methods alike" : f.ff.toFixed(2)}, p = ${pText(f.pFF)}; χ²_F = ${f.chi2.toFixed(2)}).`;
  if (!sig) return `${head} The mean ranks are shown, but they do not separate the methods.`;
  const beaten = order.filter((j) => f.avgRanks[j]! - f.avgRanks[best]! > s.cd!);
  return `${head} ${s.methods[best]!.label} has the best mean rank (${f3(f.avgRanks[best]!)}); the Nemenyi critical difference at α = ${s.alpha} is ${f3(s.cd)}, so it ranks significantly better than ${beaten.length ? beaten.map((j) => s.methods[j]!.label).join(", ") : "no other method"}.`;
}

export function acrossToMarkdown(s: AcrossSummary): string {
  const out = [`# Across datasets`, "", acrossSentence(s), ""];
  if (s.friedman) {
    const f = s.friedman;
    out.push(`| Method | Mean rank | ${s.blocks.map((b) => `AV-A ${mdEscape(b.dataset)}`).join(" | ")} |`, `|---|---:|${s.blocks.map(() => "---:").join("|")}|`);
    for (const j of rankOrder(s)) out.push(`| ${mdEscape(s.methods[j]!.label)} | ${f3(f.avgRanks[j]!)} | ${s.blocks.map((b) => b.avA.get(s.methods[j]!.method)!.toFixed(4)).join(" | ")} |`);
    out.push("", `Rank 1 = best AV-A on a dataset (ties share the mean rank). Nemenyi CD (α = ${s.alpha}, k = ${f.k}, N = ${f.N}) = ${f3(s.cd!)}.`, "");
  }
  for (const m of s.incomplete) out.push(`- Left out of the ranking: ${mdEscape(m.method)} (no result on ${m.missing.map(mdEscape).join(", ")}).`);
  if (s.incomplete.length) out.push("");
  out.push("## Per-dataset verdicts", "");
  for (const b of s.blocks) {
    out.push(`### ${mdEscape(b.dataset)} (${mdEscape(b.model)}, ${mdEscape(b.dir)})`, "");
    out.push(...(b.verdict.length ? b.verdict.map((v) => `- ${mdEscape(v)}`) : ["- (no verdict.json: re-render that folder with bench --report-only)"]), "");
  }
  return out.join("\n");
}

export function acrossToCsv(s: AcrossSummary): string {
  const lines = [["method", "label", "mean_rank", ...s.blocks.map((b) => `av_a:${b.dataset}`)].map(csvField).join(",")];
  for (const j of rankOrder(s)) {
    const m = s.methods[j]!;
    lines.push([m.method, m.label, s.friedman ? String(s.friedman.avgRanks[j]) : "", ...s.blocks.map((b) => String(b.avA.get(m.method)))].map(csvField).join(","));
  }
  return lines.join("\n") + "\n";
}

/**
 * A critical-difference diagram (Demšar 2006, fig. 1): an axis of mean ranks 1..k (best on the
 * left), each method's tick with its label, a bar of length CD, and a thick line joining each
 * group of methods the test cannot separate.
 */
export function cdDiagram(s: AcrossSummary, width = 900): string {
  if (!s.friedman || s.cd === null) return "";
  const f = s.friedman;
  const k = f.k;
  const order = rankOrder(s);
  const half = Math.ceil(k / 2);
  const left = 150;
  const right = width - 150;
  const x = (r: number) => left + ((r - 1) / Math.max(1, k - 1)) * (right - left);
  const axisY = 60;
  const rowH = 18;
  const H = axisY + 30 + half * rowH + s.groups.length * 6 + 20;
  const p: string[] = [`<svg class="chart cd" viewBox="0 0 ${width} ${H}" width="${width}" height="${H}" role="img" font-family="system-ui, sans-serif" font-size="12">`, `<title>Critical-difference diagram</title>`];
  p.push(`<line x1="${left}" x2="${right}" y1="${axisY}" y2="${axisY}" stroke="#323f4b"/>`);
  for (let r = 1; r <= k; r++) p.push(`<line x1="${x(r).toFixed(1)}" x2="${x(r).toFixed(1)}" y1="${axisY - 5}" y2="${axisY}" stroke="#323f4b"/><text x="${x(r).toFixed(1)}" y="${axisY - 9}" text-anchor="middle" fill="#52606d">${r}</text>`);
  // CD bar
  p.push(`<line x1="${x(1).toFixed(1)}" x2="${x(1 + s.cd).toFixed(1)}" y1="20" y2="20" stroke="#c0392b" stroke-width="2"/><text x="${x(1).toFixed(1)}" y="14" fill="#c0392b">CD = ${f3(s.cd)}</text>`);
  order.forEach((j, i) => {
    const r = f.avgRanks[j]!;
    const onLeft = i < half;
    const row = onLeft ? i : order.length - 1 - i;
    const y = axisY + 30 + s.groups.length * 6 + row * rowH;
    const xe = onLeft ? left - 10 : right + 10;
    p.push(
      `<polyline points="${x(r).toFixed(1)},${axisY} ${x(r).toFixed(1)},${y} ${xe},${y}" fill="none" stroke="#7b8794"/>`,
      `<text x="${onLeft ? xe - 4 : xe + 4}" y="${y + 4}" text-anchor="${onLeft ? "end" : "start"}" fill="#1f2933">${esc(s.methods[j]!.label)} (${f3(r)})</text>`,
    );
  });
  s.groups.forEach((g, gi) => {
    const rs = g.map((j) => f.avgRanks[j]!);
    const y = axisY + 14 + gi * 6;
    p.push(`<line x1="${(x(Math.min(...rs)) - 3).toFixed(1)}" x2="${(x(Math.max(...rs)) + 3).toFixed(1)}" y1="${y}" y2="${y}" stroke="#1f2933" stroke-width="3"/>`);
  });
  p.push(`</svg>`);
  return p.join("");
}

export function acrossToHtml(s: AcrossSummary): string {
  const body: string[] = [`<header><h1>Across datasets</h1><p class="sub">${esc(s.blocks.map((b) => b.dataset).join(", "))}</p></header>`];
  body.push(`<section id="ranks"><h2>Mean ranks</h2><p>${esc(acrossSentence(s))}</p>`);
  const diagram = cdDiagram(s);
  if (diagram) body.push(`<figure>${diagram}<figcaption>Mean rank of each method over the datasets (1 = best AV-A). Methods joined by a thick line are not significantly different (Nemenyi, α = ${s.alpha}); the red bar is the critical difference.</figcaption></figure>`);
  if (s.incomplete.length) body.push(`<ul>${s.incomplete.map((m) => `<li>Left out of the ranking: ${esc(m.method)} (no result on ${esc(m.missing.join(", "))}).</li>`).join("")}</ul>`);
  body.push(`</section><section id="verdicts"><h2>Per-dataset verdicts</h2>`);
  for (const b of s.blocks) body.push(`<h3>${esc(b.dataset)} <small>(${esc(b.model)}, ${esc(b.dir)})</small></h3><ul>${(b.verdict.length ? b.verdict : ["(no verdict.json: re-render that folder with bench --report-only)"]).map((v) => `<li>${esc(v)}</li>`).join("")}</ul>`);
  body.push(`</section>`, REPORT_FOOTER);
  return reportPage("mtlcraft: across datasets", body);
}

/** Reads the bench folders, writes summary.md, summary.csv and summary.html into `out` (each by temp file and rename), and returns the summary. */
export function writeAcross(dirs: readonly string[], out: string, alpha = 0.05): { summary: AcrossSummary; markdown: string } {
  if (dirs.length < 2) throw new Error(`bench --across: give at least two bench folders (one per dataset), got ${dirs.length}`);
  const seen = new Map<string, string>();
  for (const d of dirs) {
    const real = existsSync(d) ? realpathSync(d) : resolve(d);
    const prev = seen.get(real);
    if (prev !== undefined) throw new Error(`bench --across: ${d} and ${prev} are the same folder; give each dataset's bench folder once`);
    seen.set(real, d);
  }
  const summary = summariseAcross(dirs.map(readBenchFolder), alpha);
  checkWritable(out, "dir", "bench --out");
  const markdown = acrossToMarkdown(summary);
  writeFileAtomic(join(out, "summary.md"), markdown);
  writeFileAtomic(join(out, "summary.csv"), acrossToCsv(summary));
  writeFileAtomic(join(out, "summary.html"), acrossToHtml(summary));
  return { summary, markdown };
}
