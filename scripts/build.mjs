#!/usr/bin/env node
// `npm run build` (also run by `prepare`, so `npm ci` and `npm pack` build it): compiles src/
// to dist/ as ESM JavaScript with .d.ts declarations (tsconfig.build.json).
// - dist/ is removed first, so no file of a deleted source survives.
// - The sources import each other with `.ts` extensions; tsc rewrites them to `.js` in the
//   JavaScript (rewriteRelativeImportExtensions) but not in the declarations, so the
//   relative `.ts` specifiers of every .d.ts are rewritten to `.js` here.
// - dist/cli.js (the package's `bin`) is made executable.
// - dist/encoder.js (`mtlcraft/encoder`) and its .d.ts must exist and import nothing.
import { chmodSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const dist = join(root, "dist");
rmSync(dist, { recursive: true, force: true });

const tsc = createRequire(import.meta.url).resolve("typescript/bin/tsc");
const r = spawnSync(process.execPath, [tsc, "-p", join(root, "tsconfig.build.json")], { stdio: "inherit", cwd: root });
if (r.status !== 0) {
  console.error("build: tsc failed");
  process.exit(r.status ?? 1);
}

/** `from "./x.ts"`, `import("../y.ts")`, `import "./z.ts"` (relative only) -> `.js`. */
const SPECIFIER = /((?:\bfrom|\bimport)\s*\(?\s*["'])(\.{1,2}\/[^"']*?)\.ts(["'])/g;

/** One-line `import ... from "x";` statements of a declaration file. */
const IMPORT_LINE = /^import (type )?(\* as (\w+)|\{([^}]*)\}|(\w+)) from "[^"]+";\n/gm;

/**
 * Drops imports no declaration of the file uses any more. Members marked `@internal` are
 * stripped (stripInternal), but tsc keeps the imports they used: onnxruntime-node's types
 * (which need the DOM lib) would still be loaded by every consumer that type-checks its
 * libraries (skipLibCheck: false).
 */
function dropUnusedImports(text) {
  return text.replace(IMPORT_LINE, (line, _type, _clause, ns, named, def) => {
    const rest = text.replace(line, "");
    const names = ns ? [ns] : def ? [def] : named.split(",").map((s) => s.trim().replace(/^type\s+/, "").split(/\s+as\s+/).pop()).filter(Boolean);
    return names.some((n) => new RegExp(`\\b${n}\\b`).test(rest)) ? line : "";
  });
}

function walk(dir) {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p);
    else if (name.endsWith(".d.ts")) {
      const text = readFileSync(p, "utf8");
      const out = dropUnusedImports(text.replace(SPECIFIER, "$1$2.js$3"));
      if (out !== text) writeFileSync(p, out);
    }
  }
}
walk(dist);
chmodSync(join(dist, "cli.js"), 0o755);

// `mtlcraft/encoder` (package.json exports) runs in browsers and edge runtimes: it must be there,
// with its declarations, and import nothing (no `node:` module, no package, no other file).
for (const f of ["encoder.js", "encoder.d.ts"]) {
  const text = readFileSync(join(dist, f), "utf8");
  if (/^\s*import\b|\bimport\s*\(|\brequire\s*\(|^\s*export\s[^;]*\bfrom\s/m.test(text)) {
    console.error(`build: dist/${f} imports something; mtlcraft/encoder must stay dependency-free`);
    process.exit(1);
  }
}
