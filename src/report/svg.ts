/**
 * Tiny, dependency-free SVG builders for the HTML report. Every function is
 * pure and returns a string. Text and attribute values are escaped; non-finite
 * numbers (NaN, ±Infinity, null from JSON) never reach an attribute: they break
 * a line into separate segments, and a chart without any finite value shows
 * "no data" instead of an axis range made of NaN.
 */

/** Escape text for HTML/SVG element content and double-quoted attribute values. */
export function esc(s: string): string {
  return s
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;")
    .replace(/'/g, "&#39;");
}

/** A finite number, or null for NaN / ±Infinity / null / undefined. */
export function finite(v: number | null | undefined): number | null {
  return typeof v === "number" && Number.isFinite(v) ? v : null;
}

/** Coordinate formatting: at most 2 decimals, no "-0". Callers pass finite numbers only. */
function c(v: number): string {
  const r = Math.round(v * 100) / 100;
  return Object.is(r, -0) ? "0" : String(r);
}

/** Human tick label: short, no float noise (0.30000000000000004 → 0.3). */
export function fmtTick(v: number): string {
  if (v === 0) return "0";
  const a = Math.abs(v);
  if (a >= 1e5 || a < 1e-3) {
    const [m, e] = v.toExponential(1).split("e");
    return `${m!.replace(/\.0$/, "")}e${Number(e)}`;
  }
  return String(Number(v.toPrecision(4)));
}

/** "Nice" linear ticks covering [lo, hi] (about `count` of them). */
export function niceTicks(lo: number, hi: number, count = 5): number[] {
  if (!(Number.isFinite(lo) && Number.isFinite(hi))) return [];
  if (hi < lo) [lo, hi] = [hi, lo];
  if (hi === lo) return [lo];
  // Among steps {1, 2, 5} × 10^k, pick the one whose tick count is closest to `count` (prefer more ticks).
  const want = Math.max(2, count);
  const base = 10 ** Math.floor(Math.log10((hi - lo) / want));
  let step = base;
  let best = Infinity;
  for (const s of [0.5, 1, 2, 5, 10, 20].map((k) => k * base)) {
    const n = Math.floor(hi / s + 1e-9) - Math.ceil(lo / s - 1e-9) + 1;
    const score = Math.abs(n - want) + (n < want ? 1 : 0);
    if (n >= 2 && score < best) {
      best = score;
      step = s;
    }
  }
  const out: number[] = [];
  const first = Math.ceil(lo / step - 1e-9) * step;
  for (let i = 0; first + i * step <= hi + step * 1e-9; i++) {
    const v = first + i * step;
    out.push(Math.abs(v) < step * 1e-9 ? 0 : Number(v.toPrecision(12))); // no -2.8e-17 for zero
  }
  return out;
}

/** Ticks for a log axis over [lo, hi] (both > 0): decades, plus 2 and 5 when the span is short. */
export function logTicks(lo: number, hi: number): number[] {
  if (!(lo > 0 && hi > 0 && Number.isFinite(lo) && Number.isFinite(hi))) return [];
  if (hi < lo) [lo, hi] = [hi, lo];
  const e0 = Math.floor(Math.log10(lo));
  const e1 = Math.ceil(Math.log10(hi));
  const decades = e1 - e0;
  const mults = decades <= 1 ? [1, 2, 5] : decades <= 3 ? [1, 3] : [1];
  const out: number[] = [];
  const every = Math.max(1, Math.ceil(decades / 8));
  for (let e = e0; e <= e1; e++) {
    if ((e - e0) % every !== 0) continue;
    for (const m of mults) {
      const v = Number((m * 10 ** e).toPrecision(12));
      if (v >= lo * (1 - 1e-9) && v <= hi * (1 + 1e-9)) out.push(v);
    }
  }
  if (out.length < 2) return niceTicks(lo, hi, 3).filter((v) => v > 0);
  return out;
}

export interface Series {
  name: string;
  color: string;
  /** [x, y]; a non-finite (or, on a log axis, non-positive) y makes a gap. */
  points: [number, number | null][];
  /** Optional shaded band [x, lo, hi] (e.g. min..max over seeds). */
  band?: [number, number | null, number | null][];
  dashed?: boolean;
}

export interface LineChartOptions {
  series: Series[];
  width?: number;
  height?: number;
  xLabel: string;
  yLabel: string;
  logY?: boolean;
  /** Force the y range (e.g. [0, 1] for rates); otherwise fitted to the data and bands. */
  yDomain?: [number, number];
  /** Title drawn inside the chart, top-left. */
  title?: string;
  /** Accessible description (the <title> of the <svg>). */
  label?: string;
  /** Base font size in viewBox units (default 11); raise it for charts shown scaled down. */
  fontSize?: number;
}

const FONT = `font-family="system-ui, -apple-system, 'Segoe UI', Roboto, Helvetica, Arial, sans-serif"`;

/** Split [x, y] points into runs of consecutive usable points. */
function segments<P>(pts: P[], ok: (p: P) => boolean): P[][] {
  const out: P[][] = [];
  let cur: P[] = [];
  for (const p of pts) {
    if (ok(p)) cur.push(p);
    else if (cur.length) {
      out.push(cur);
      cur = [];
    }
  }
  if (cur.length) out.push(cur);
  return out;
}

/** Multi-series line chart with optional log y and per-series min..max bands. */
export function lineChart(o: LineChartOptions): string {
  const W = o.width ?? 640;
  const H = o.height ?? 320;
  const fs = o.fontSize ?? 11;
  const m = { top: o.title ? 16 + fs * 1.2 : 14, right: 16, bottom: 22 + fs * 2, left: 30 + fs * 2.8 };
  const pw = W - m.left - m.right;
  const ph = H - m.top - m.bottom;
  const logY = o.logY === true;
  const usableY = (v: number | null | undefined): v is number => {
    const f = finite(v);
    return f !== null && (!logY || f > 0);
  };

  // Data extents.
  let x0 = Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity;
  const seeX = (x: number) => {
    if (Number.isFinite(x)) {
      x0 = Math.min(x0, x);
      x1 = Math.max(x1, x);
    }
  };
  const seeY = (y: number) => {
    y0 = Math.min(y0, y);
    y1 = Math.max(y1, y);
  };
  for (const s of o.series) {
    for (const [x, y] of s.points) {
      if (usableY(y) && Number.isFinite(x)) {
        seeX(x);
        seeY(y);
      }
    }
    for (const [x, lo, hi] of s.band ?? []) {
      if (!Number.isFinite(x)) continue;
      for (const v of [lo, hi]) {
        if (usableY(v)) {
          seeX(x);
          seeY(v);
        }
      }
    }
  }
  const hasData = Number.isFinite(x0) && Number.isFinite(y0);
  if (!hasData) {
    x0 = 0;
    x1 = 1;
    y0 = logY ? 1 : 0;
    y1 = logY ? 10 : 1;
  }
  if (o.yDomain && (!logY || (o.yDomain[0] > 0 && o.yDomain[1] > 0))) [y0, y1] = o.yDomain;
  if (x1 === x0) {
    x0 -= 0.5;
    x1 += 0.5;
  }
  if (y1 === y0) {
    if (logY) {
      y0 /= 2;
      y1 *= 2;
    } else {
      const d = Math.abs(y0) * 0.05 || 0.5;
      y0 -= d;
      y1 += d;
    }
  } else if (!o.yDomain) {
    if (logY) {
      const pad = (Math.log10(y1) - Math.log10(y0)) * 0.05;
      y0 = 10 ** (Math.log10(y0) - pad);
      y1 = 10 ** (Math.log10(y1) + pad);
    } else {
      const pad = (y1 - y0) * 0.06;
      y0 -= pad;
      y1 += pad;
    }
  }
  const ly0 = logY ? Math.log10(y0) : y0;
  const ly1 = logY ? Math.log10(y1) : y1;
  const sx = (x: number) => m.left + ((x - x0) / (x1 - x0)) * pw;
  const sy = (y: number) => m.top + ph - (((logY ? Math.log10(y) : y) - ly0) / (ly1 - ly0)) * ph;

  const parts: string[] = [];
  const label = o.label ?? o.title ?? `${o.yLabel} vs ${o.xLabel}`;
  parts.push(
    `<svg class="chart" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" ${FONT} font-size="${fs}">`,
    `<title>${esc(label)}</title>`,
    `<rect x="${m.left}" y="${m.top}" width="${c(pw)}" height="${c(ph)}" fill="#fff" stroke="#d0d4da"/>`,
  );
  if (o.title) parts.push(`<text x="${m.left}" y="${c(4 + fs * 1.3)}" font-size="${c(fs * 1.2)}" font-weight="600" fill="#1f2933">${esc(o.title)}</text>`);

  // Grid + ticks.
  const yt = logY ? logTicks(y0, y1) : niceTicks(y0, y1, Math.max(3, Math.round(ph / (4 * fs))));
  for (const t of yt) {
    const y = sy(t);
    if (!Number.isFinite(y) || y < m.top - 0.5 || y > m.top + ph + 0.5) continue;
    parts.push(
      `<line x1="${m.left}" x2="${c(m.left + pw)}" y1="${c(y)}" y2="${c(y)}" stroke="#eceff3"/>`,
      `<text x="${c(m.left - 6)}" y="${c(y + fs * 0.32)}" text-anchor="end" fill="#52606d">${esc(fmtTick(t))}</text>`,
    );
  }
  const xt = niceTicks(x0, x1, Math.max(2, Math.round(pw / (7 * fs))));
  for (const t of xt) {
    const x = sx(t);
    parts.push(
      `<line x1="${c(x)}" x2="${c(x)}" y1="${m.top}" y2="${c(m.top + ph)}" stroke="#f3f4f6"/>`,
      `<line x1="${c(x)}" x2="${c(x)}" y1="${c(m.top + ph)}" y2="${c(m.top + ph + 4)}" stroke="#9aa5b1"/>`,
      `<text x="${c(x)}" y="${c(m.top + ph + 6 + fs)}" text-anchor="middle" fill="#52606d">${esc(fmtTick(t))}</text>`,
    );
  }
  parts.push(
    `<text x="${c(m.left + pw / 2)}" y="${H - 8}" text-anchor="middle" fill="#323f4b">${esc(o.xLabel)}</text>`,
    `<text transform="translate(${c(fs * 1.2)} ${c(m.top + ph / 2)}) rotate(-90)" text-anchor="middle" fill="#323f4b">${esc(o.yLabel + (logY ? " (log scale)" : ""))}</text>`,
  );

  if (!hasData) {
    parts.push(`<text x="${c(m.left + pw / 2)}" y="${c(m.top + ph / 2)}" text-anchor="middle" fill="#9aa5b1" font-size="13">no data</text>`);
  }

  // Clip to the plot area so forced domains do not spill lines over the axes.
  const inX = (x: number) => Number.isFinite(x);
  const clampY = (y: number) => Math.min(m.top + ph, Math.max(m.top, sy(y)));

  // Bands first (under all lines).
  for (const s of o.series) {
    if (!s.band) continue;
    const segs = segments(s.band, ([x, lo, hi]) => inX(x) && usableY(lo) && usableY(hi));
    for (const seg of segs) {
      if (seg.length < 2) continue;
      const top = seg.map(([x, , hi]) => `${c(sx(x))},${c(clampY(hi!))}`);
      const bot = seg.map(([x, lo]) => `${c(sx(x))},${c(clampY(lo!))}`).reverse();
      parts.push(`<polygon points="${[...top, ...bot].join(" ")}" fill="${esc(s.color)}" fill-opacity="0.14" stroke="none"/>`);
    }
  }
  for (const s of o.series) {
    const segs = segments(s.points, ([x, y]) => inX(x) && usableY(y));
    const dash = s.dashed ? ` stroke-dasharray="6 4"` : "";
    const g: string[] = [];
    for (const seg of segs) {
      if (seg.length === 1) {
        const [x, y] = seg[0]!;
        g.push(`<circle cx="${c(sx(x))}" cy="${c(clampY(y!))}" r="2.5" fill="${esc(s.color)}"/>`);
      } else {
        const d = seg.map(([x, y], i) => `${i ? "L" : "M"}${c(sx(x))} ${c(clampY(y!))}`).join("");
        g.push(`<path d="${d}" fill="none" stroke="${esc(s.color)}" stroke-width="2" stroke-linejoin="round" stroke-linecap="round"${dash}/>`);
      }
    }
    if (g.length) parts.push(`<g class="series"><title>${esc(s.name)}</title>${g.join("")}</g>`);
  }
  parts.push(`</svg>`);
  return parts.join("");
}

/** Diverging colour for v in [-1, 1]: red (−1) → near-white (0) → blue (+1). */
export function divergingColor(v: number): string {
  const t = Math.max(-1, Math.min(1, v));
  const mid = [247, 247, 247];
  const neg = [178, 24, 43];
  const pos = [33, 102, 172];
  const end = t < 0 ? neg : pos;
  const a = Math.abs(t);
  const rgb = mid.map((m0, i) => Math.round(m0 + (end[i]! - m0) * a));
  return `#${rgb.map((x) => x.toString(16).padStart(2, "0")).join("")}`;
}

export interface HeatmapOptions {
  /** Row/column labels (a square matrix). */
  labels: string[];
  /** values[row][col], in [-1, 1]; null/NaN cells are drawn hatched-grey with "–". */
  values: (number | null)[][];
  title?: string;
  label?: string;
  cell?: number;
}

/** Square heatmap on the fixed diverging scale −1..1, values printed in cells, with a colour legend. */
export function heatmap(o: HeatmapOptions): string {
  const n = o.labels.length;
  const cell = o.cell ?? Math.max(36, Math.min(64, Math.floor(240 / Math.max(1, n))));
  const longest = Math.max(1, ...o.labels.map((l) => l.length));
  const labW = Math.min(120, 10 + longest * 6.5);
  const top = (o.title ? 30 : 10) + 18;
  const left = labW;
  const gridW = n * cell;
  const legendX = left + gridW + 24;
  const legendH = Math.max(120, gridW);
  const W = legendX + 60;
  const H = top + Math.max(gridW, legendH) + 16;
  const parts: string[] = [];
  parts.push(
    `<svg class="heatmap" viewBox="0 0 ${c(W)} ${c(H)}" width="${c(W)}" height="${c(H)}" role="img" ${FONT} font-size="11">`,
    `<title>${esc(o.label ?? o.title ?? "heatmap")}</title>`,
  );
  if (o.title) parts.push(`<text x="4" y="18" font-size="13" font-weight="600" fill="#1f2933">${esc(o.title)}</text>`);
  if (n === 0) {
    parts.push(`<text x="${c(W / 2)}" y="${c(H / 2)}" text-anchor="middle" fill="#9aa5b1">no data</text></svg>`);
    return parts.join("");
  }
  for (let j = 0; j < n; j++) {
    parts.push(
      `<text x="${c(left + j * cell + cell / 2)}" y="${top - 6}" text-anchor="middle" fill="#323f4b">${esc(trunc(o.labels[j]!, Math.floor(cell / 6.5)))}</text>`,
    );
  }
  for (let i = 0; i < n; i++) {
    const y = top + i * cell;
    parts.push(`<text x="${c(left - 6)}" y="${c(y + cell / 2 + 4)}" text-anchor="end" fill="#323f4b">${esc(trunc(o.labels[i]!, 18))}</text>`);
    for (let j = 0; j < n; j++) {
      const x = left + j * cell;
      const v = finite(o.values[i]?.[j]);
      const fill = v === null ? "#e4e7eb" : divergingColor(v);
      const txt = v === null ? "–" : v.toFixed(2);
      const ink = v !== null && Math.abs(v) > 0.62 ? "#fff" : "#1f2933";
      parts.push(
        `<rect x="${c(x)}" y="${c(y)}" width="${cell}" height="${cell}" fill="${fill}" stroke="#fff" stroke-width="1.5"/>`,
        `<text x="${c(x + cell / 2)}" y="${c(y + cell / 2 + 4)}" text-anchor="middle" fill="${ink}" font-size="${cell >= 44 ? 12 : 10}">${esc(txt)}</text>`,
      );
    }
  }
  // Legend: a vertical bar of discrete steps (no gradient ids, so many heatmaps can share a page).
  const steps = 40;
  const sh = legendH / steps;
  for (let k = 0; k < steps; k++) {
    const v = 1 - (2 * (k + 0.5)) / steps;
    parts.push(`<rect x="${c(legendX)}" y="${c(top + k * sh)}" width="14" height="${c(sh + 0.4)}" fill="${divergingColor(v)}"/>`);
  }
  parts.push(`<rect x="${c(legendX)}" y="${top}" width="14" height="${c(legendH)}" fill="none" stroke="#9aa5b1"/>`);
  for (const t of [1, 0.5, 0, -0.5, -1]) {
    const y = top + ((1 - t) / 2) * legendH;
    parts.push(
      `<line x1="${c(legendX + 14)}" x2="${c(legendX + 18)}" y1="${c(y)}" y2="${c(y)}" stroke="#9aa5b1"/>`,
      `<text x="${c(legendX + 21)}" y="${c(y + 3.5)}" fill="#52606d">${esc(fmtTick(t))}</text>`,
    );
  }
  parts.push(`<text x="${c(legendX - 2)}" y="${top - 6}" fill="#52606d">cos</text>`);
  parts.push(`</svg>`);
  return parts.join("");
}

function trunc(s: string, max: number): string {
  const m = Math.max(3, max);
  return s.length <= m ? s : `${s.slice(0, m - 1)}…`;
}

export interface IntervalRow {
  name: string;
  color: string;
  /** Point estimate; a non-finite value draws nothing but the label. */
  mean: number | null;
  /** Interval bounds; null (or non-finite) draws the point without a bar (e.g. one seed). */
  lo: number | null;
  hi: number | null;
}

export interface IntervalChartOptions {
  rows: IntervalRow[];
  xLabel: string;
  title?: string;
  label?: string;
  width?: number;
  /** Base font size in viewBox units (default 12). */
  fontSize?: number;
}

/**
 * Horizontal interval ("forest") plot: one row per entry, a dot at the estimate and a bar over
 * its interval, with a dashed vertical line at 0 (no difference). The x range always includes 0.
 */
export function intervalChart(o: IntervalChartOptions): string {
  const fs = o.fontSize ?? 12;
  const rowH = fs * 2;
  const longest = Math.max(4, ...o.rows.map((r) => r.name.length));
  const m = { top: o.title ? 18 + fs * 1.3 : 12, right: 18, bottom: 22 + fs * 2, left: Math.min(170, 14 + longest * fs * 0.6) };
  const W = o.width ?? 640;
  const ph = Math.max(1, o.rows.length) * rowH;
  const H = m.top + ph + m.bottom;
  const pw = W - m.left - m.right;
  let x0 = 0;
  let x1 = 0;
  for (const r of o.rows) {
    for (const v of [r.mean, r.lo, r.hi]) {
      const f = finite(v);
      if (f !== null) {
        x0 = Math.min(x0, f);
        x1 = Math.max(x1, f);
      }
    }
  }
  if (x1 === x0) {
    x0 -= 0.001;
    x1 += 0.001;
  }
  const pad = (x1 - x0) * 0.06;
  x0 -= pad;
  x1 += pad;
  const sx = (x: number) => m.left + ((x - x0) / (x1 - x0)) * pw;
  const parts: string[] = [
    `<svg class="chart" viewBox="0 0 ${W} ${c(H)}" width="${W}" height="${c(H)}" role="img" ${FONT} font-size="${fs}">`,
    `<title>${esc(o.label ?? o.title ?? o.xLabel)}</title>`,
    `<rect x="${c(m.left)}" y="${c(m.top)}" width="${c(pw)}" height="${c(ph)}" fill="#fff" stroke="#d0d4da"/>`,
  ];
  if (o.title) parts.push(`<text x="${c(m.left)}" y="${c(4 + fs * 1.3)}" font-size="${c(fs * 1.15)}" font-weight="600" fill="#1f2933">${esc(o.title)}</text>`);
  for (const t of niceTicks(x0, x1, Math.max(2, Math.round(pw / (7 * fs))))) {
    const x = sx(t);
    parts.push(
      `<line x1="${c(x)}" x2="${c(x)}" y1="${c(m.top)}" y2="${c(m.top + ph)}" stroke="#f0f2f5"/>`,
      `<text x="${c(x)}" y="${c(m.top + ph + 6 + fs)}" text-anchor="middle" fill="#52606d">${esc(fmtTick(t))}</text>`,
    );
  }
  parts.push(
    `<line x1="${c(sx(0))}" x2="${c(sx(0))}" y1="${c(m.top)}" y2="${c(m.top + ph)}" stroke="#52606d" stroke-dasharray="4 3"/>`,
    `<text x="${c(m.left + pw / 2)}" y="${c(H - 8)}" text-anchor="middle" fill="#323f4b">${esc(o.xLabel)}</text>`,
  );
  if (o.rows.length === 0) parts.push(`<text x="${c(m.left + pw / 2)}" y="${c(m.top + ph / 2 + 4)}" text-anchor="middle" fill="#9aa5b1">no data</text>`);
  o.rows.forEach((r, i) => {
    const y = m.top + (i + 0.5) * rowH;
    parts.push(`<text x="${c(m.left - 8)}" y="${c(y + fs * 0.35)}" text-anchor="end" fill="#323f4b">${esc(trunc(r.name, 24))}</text>`);
    const mean = finite(r.mean);
    const lo = finite(r.lo);
    const hi = finite(r.hi);
    const g: string[] = [];
    if (lo !== null && hi !== null) {
      g.push(
        `<line x1="${c(sx(lo))}" x2="${c(sx(hi))}" y1="${c(y)}" y2="${c(y)}" stroke="${esc(r.color)}" stroke-width="2.5" stroke-linecap="round"/>`,
        `<line x1="${c(sx(lo))}" x2="${c(sx(lo))}" y1="${c(y - fs * 0.4)}" y2="${c(y + fs * 0.4)}" stroke="${esc(r.color)}" stroke-width="1.5"/>`,
        `<line x1="${c(sx(hi))}" x2="${c(sx(hi))}" y1="${c(y - fs * 0.4)}" y2="${c(y + fs * 0.4)}" stroke="${esc(r.color)}" stroke-width="1.5"/>`,
      );
    }
    if (mean !== null) g.push(`<circle cx="${c(sx(mean))}" cy="${c(y)}" r="${c(fs * 0.33)}" fill="${esc(r.color)}"/>`);
    if (g.length) parts.push(`<g class="interval"><title>${esc(r.name)}</title>${g.join("")}</g>`);
  });
  parts.push(`</svg>`);
  return parts.join("");
}
