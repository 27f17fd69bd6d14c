/**
 * The charting library inlined into report.html: Vega 6, Vega-Lite 6 and vega-embed 7
 * (BSD-3-Clause), their minified UMD builds read from node_modules once per process.
 *
 * Why Vega-Lite rather than Observable Plot: the report needs legend-driven highlighting,
 * hover values and faceted small multiples; Vega-Lite declares all three in a JSON spec (data
 * and spec are plain JSON, so nothing but JSON is spliced into the page), where Plot would need
 * hand-written event code around each chart. The three builds come to about 0.8 MB.
 *
 * Each build is checked once: nothing in it may close the <script> element that holds it, and
 * the trailing source-map comment (a reference to a file that does not travel with the report)
 * is dropped.
 */
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";

/** Package → its minified UMD build, next to the package's entry point. */
const BUILDS: readonly [pkg: string, file: string][] = [
  ["vega", "vega.min.js"],
  ["vega-lite", "vega-lite.min.js"],
  ["vega-embed", "vega-embed.min.js"],
];

let cached: string | null = null;

/** One library build, made safe to inline: no `</script`, no `<!--`, no source-map reference. */
export function inlineScript(code: string, what: string): string {
  const body = code.replace(/\n\/\/# sourceMappingURL=\S*\s*$/, "\n");
  if (/<\/script|<!--/i.test(body)) throw new Error(`${what} contains "</script" or "<!--" and cannot be inlined into report.html`);
  return body;
}

/** The three builds as one string of <script> elements (cached). */
export function chartLibraryScripts(): string {
  if (cached !== null) return cached;
  const req = createRequire(import.meta.url);
  const parts = BUILDS.map(([pkg, file]) => {
    // The packages export only their entry point; the UMD build lies beside it in build/.
    const path = join(dirname(req.resolve(pkg)), file);
    let code: string;
    try {
      code = readFileSync(path, "utf8");
    } catch (e) {
      throw new Error(`report.html needs ${pkg}'s ${file} (looked at ${path}): reinstall mtlcraft's dependencies (npm ci). ${(e as Error).message}`, { cause: e });
    }
    return `<script>${inlineScript(code, `${pkg}/${file}`)}</script>`;
  });
  cached = parts.join("\n");
  return cached;
}
