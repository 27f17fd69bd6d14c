/**
 * Method colours for the report: unique per method for any number of methods. The first 25
 * are hand-picked, distinct hues (Tableau 10 without its grey, then darker and more saturated
 * hues that differ from those); beyond them, hues step by the golden angle, skipping any
 * colour already taken. The single-task baseline keeps the grey BASELINE_COLOR.
 */

export const METHOD_PALETTE = [
  "#4e79a7", "#f28e2b", "#e15759", "#59a14f", "#b07aa1", "#76b7b2", "#edc948", "#9c755f", "#ff9da7",
  "#1f3a93", "#a0522d", "#2ca02c", "#8e44ad", "#17becf", "#bcbd22", "#d35400", "#0b6e4f",
  "#c2185b", "#5d4037", "#00838f", "#9e9d24", "#6a1b9a", "#ef6c00", "#283593", "#ad1457",
];
export const BASELINE_COLOR = "#6b7280";

function hslHex(h: number, s: number, l: number): string {
  const a = s * Math.min(l, 1 - l);
  const f = (n: number) => {
    const k = (n + h / 30) % 12;
    const v = l - a * Math.max(-1, Math.min(k - 3, 9 - k, 1));
    return Math.round(255 * v).toString(16).padStart(2, "0");
  };
  return `#${f(0)}${f(8)}${f(4)}`;
}

/** `n` distinct colours (none equal to BASELINE_COLOR), the first ones from METHOD_PALETTE. */
export function methodPalette(n: number): string[] {
  const out = METHOD_PALETTE.slice(0, n);
  const taken = new Set([...out, BASELINE_COLOR]);
  for (let k = 0; out.length < n; k++) {
    const c = hslHex((k * 137.508) % 360, 0.62, 0.32 + 0.16 * ((k >> 1) % 3) / 2);
    if (!taken.has(c)) {
      taken.add(c);
      out.push(c);
    }
  }
  return out;
}
