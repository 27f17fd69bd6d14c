/**
 * Text read from files other people made (run results, bench folders) on its way to a terminal
 * or a Markdown file: control characters (C0, DEL, C1) and the line/paragraph separators U+2028
 * and U+2029 become "?", so no escape sequence can move the cursor, clear the screen or retitle
 * the window, and a label stays on one line. Bounded to `max` characters.
 */
export function plainText(v: unknown, max = 500): string {
  // eslint-disable-next-line no-control-regex
  const s = String(v).replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, "?");
  return s.length > max ? `${s.slice(0, max - 1)}…` : s;
}
