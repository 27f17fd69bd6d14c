/**
 * The repository's own install policy: `npm ci` here runs every dependency install script npm
 * would run except onnxruntime-node's (which downloads the CUDA provider and fails offline),
 * through package.json's `allowScripts` (npm >= 11), and npm prints no config warnings.
 * test/package/pack.test.ts checks the user's side (the README's CPU install, offline, scripts on).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";

const pkg = JSON.parse(readFileSync("package.json", "utf8")) as { allowScripts?: Record<string, boolean> };
const lock = JSON.parse(readFileSync("package-lock.json", "utf8")) as { packages: Record<string, { hasInstallScript?: boolean }> };

test("allowScripts reviews every locked package with an install script and denies onnxruntime-node's", () => {
  const withScripts = new Set<string>();
  for (const [path, e] of Object.entries(lock.packages)) if (path && e.hasInstallScript) withScripts.add(path.slice(path.lastIndexOf("node_modules/") + "node_modules/".length));
  assert.ok(withScripts.has("onnxruntime-node"));
  const policy = pkg.allowScripts ?? {};
  assert.deepEqual(Object.keys(policy).sort(), [...withScripts].sort(), "one name-only entry per package with install scripts (npm install-scripts approve --no-allow-scripts-pin <pkg>)");
  assert.equal(policy["onnxruntime-node"], false, "onnxruntime-node's post-install download is denied");
  for (const [name, allowed] of Object.entries(policy)) if (name !== "onnxruntime-node") assert.equal(allowed, true, name);
});

test("npm reads this project's .npmrc without warnings (no keys npm does not know)", () => {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!/^npm_/i.test(k)) env[k] = v;
  const r = spawnSync("npm", ["config", "list"], { encoding: "utf8", env, timeout: 60_000 });
  assert.equal(r.status, 0, r.stderr);
  assert.doesNotMatch(r.stderr, /project config/i);
});
