/**
 * "Did you mean" suggestions for mistyped keys and names: edit distance
 * (Levenshtein plus adjacent swaps), ignoring case, `-` and `_`, so `expertunits`
 * finds `expertUnits` and `batchsize` finds `batch-size`.
 */

/**
 * Edit distance between a and b: insertions, deletions, substitutions and swaps of
 * two adjacent characters ("tua" → "tau" is 1), i.e. the optimal string alignment distance.
 */
export function levenshtein(a: string, b: string): number {
  if (a === b) return 0;
  if (a.length === 0) return b.length;
  if (b.length === 0) return a.length;
  const w = b.length + 1;
  const d = new Array<number>((a.length + 1) * w).fill(0);
  for (let i = 0; i <= a.length; i++) d[i * w] = i;
  for (let j = 0; j <= b.length; j++) d[j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(d[(i - 1) * w + j]! + 1, d[i * w + j - 1]! + 1, d[(i - 1) * w + j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, d[(i - 2) * w + j - 2]! + 1);
      d[i * w + j] = v;
    }
  }
  return d[a.length * w + b.length]!;
}

/**
 * The known names closest to `input` (case and `-`/`_` ignored), best first: at most
 * `max`, and only those within distance max(1, ⌊len/3⌋) — close enough to be a typo.
 */
export function closest(input: string, known: Iterable<string>, max = 1): string[] {
  const norm = (s: string) => s.toLowerCase().replace(/[-_]/g, "");
  const q = norm(input);
  const limit = Math.max(1, Math.floor(q.length / 3));
  const scored: { name: string; d: number }[] = [];
  for (const name of known) {
    const d = levenshtein(q, norm(name));
    if (d <= limit) scored.push({ name, d });
  }
  scored.sort((x, y) => x.d - y.d || x.name.localeCompare(y.name));
  return scored.slice(0, max).map((s) => s.name);
}

/** `; did you mean "x"?` or "" when nothing is close. */
export function didYouMean(input: string, known: Iterable<string>): string {
  const [best] = closest(input, known);
  return best === undefined ? "" : `; did you mean "${best}"?`;
}

/**
 * Message for an unknown key: `<where>: unknown <what> "<key>"; did you mean "<best>"?
 * (valid: a, b, c)`.
 */
export function unknownKeyMessage(where: string, what: string, key: string, known: readonly string[]): string {
  const list = known.length ? ` (valid: ${known.join(", ")})` : ` (it takes none)`;
  return `${where}: unknown ${what} "${key}"${didYouMean(key, known)}${list}`;
}
