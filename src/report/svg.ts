/**
 * Tiny, dependency-free SVG line charts for the pages without scripts (the conflict benchmark);
 * the sweep report draws its charts with Vega-Lite (charts.ts). Every function is
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
