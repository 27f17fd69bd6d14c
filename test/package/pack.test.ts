/**
 * The package as a user gets it: `npm pack` (which builds dist/), checked with publint and
 * @arethetypeswrong/cli, then installed offline from the tarball into a fresh temporary
 * project as the README's CPU install says: install scripts enabled (onnxruntime-node's
 * post-install step runs) under the README's setting, the dependencies from the npm cache that
 * `npm ci` filled, and every network request failing at once (`--offline`, proxies on a closed
 * loopback port), so that a download attempt is an error, not a hang. There: the library imported from a plain .mjs file under Node, a strict
 * TypeScript consumer (skipLibCheck: false), the README's library example run as written,
 * and the CLI run from a folder that is not the package root (`--version`, `methods`, a
 * 3-step `train`, a 1-job `bench` with a relative spec path and the README's plugin).
 * Nothing may be written inside the installed package.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync, type SpawnSyncReturns } from "node:child_process";
import { createHash } from "node:crypto";
import { createServer } from "node:net";
import { existsSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";
import { tempDir } from "../data/helpers.ts";
import { writeTinyDataset } from "../train/tiny-data.ts";

const REPO = process.cwd();
const pkg = JSON.parse(readFileSync("package.json", "utf8")) as {
  name: string;
  version: string;
  dependencies: Record<string, string>;
  devDependencies: Record<string, string>;
  license: string;
  bin: Record<string, string>;
  engines: Record<string, string>;
};

/**
 * The environment of child processes: no npm_* variables of a surrounding `npm test`, no
 * NODE_OPTIONS, and no ONNXRUNTIME_NODE_INSTALL* of the caller (only the README's setting counts).
 */
function cleanEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!/^npm_/i.test(k) && k !== "NODE_OPTIONS" && !/^ONNXRUNTIME_NODE_INSTALL/i.test(k)) env[k] = v;
  return env;
}

/** A loopback port nothing listens on (bound, then closed). */
function closedPort(): Promise<number> {
  return new Promise((res, rej) => {
    const srv = createServer().listen(0, "127.0.0.1", () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => res(port));
    });
    srv.on("error", rej);
  });
}

/**
 * The README's CPU install (the block marked `<!-- install: cpu -->`): `VAR=value ...
 * npm install mtlcraft`; returns its variables.
 */
function readmeInstallEnv(): Record<string, string> {
  const text = readFileSync(join(REPO, "README.md"), "utf8");
  const m = /<!-- install: cpu -->\n```\w*\n([^\n]*)\n```/.exec(text);
  assert.ok(m, "README.md has an install block marked <!-- install: cpu -->");
  const cmd = m[1]!.replace(/\s+#.*$/, "").trim();
  const parts = /^((?:[A-Z_][A-Z0-9_]*=\S+\s+)*)npm install mtlcraft$/.exec(cmd);
  assert.ok(parts, `the README's CPU install is "VAR=value ... npm install mtlcraft", got: ${cmd}`);
  return Object.fromEntries(parts[1]!.trim().split(/\s+/).filter(Boolean).map((a) => [a.slice(0, a.indexOf("=")), a.slice(a.indexOf("=") + 1)]));
}

function run(cmd: string, args: string[], cwd: string, timeout = 240_000, env: NodeJS.ProcessEnv = {}): SpawnSyncReturns<string> {
  const r = spawnSync(cmd, args, { cwd, encoding: "utf8", timeout, env: { ...cleanEnv(), ...env }, maxBuffer: 64 * 1024 * 1024 });
  if (r.error) throw r.error;
  return r;
}

function ok(r: SpawnSyncReturns<string>, what: string): string {
  assert.equal(r.status, 0, `${what} failed (${r.status}):\n${r.stdout.slice(-3000)}\n${r.stderr.slice(-3000)}`);
  return r.stdout;
}

/**
 * A lockfile for the temporary project: the tarball, plus every package its dependencies
 * need (and @types/node for the TypeScript consumer), copied from this repository's
 * lockfile, so `npm ci --offline` installs exactly those from the npm cache.
 */
function consumerLock(tgz: string, integrity: string): { manifest: object; lock: object } {
  const lock = JSON.parse(readFileSync(join(REPO, "package-lock.json"), "utf8")) as { packages: Record<string, Record<string, unknown>> };
  const pkgs = lock.packages;
  const find = (from: string, name: string): string | null => {
    let base = from;
    for (;;) {
      const p = `${base ? `${base}/` : ""}node_modules/${name}`;
      if (pkgs[p]) return p;
      if (!base) return null;
      const i = base.lastIndexOf("/node_modules/");
      base = i < 0 ? "" : base.slice(0, i);
    }
  };
  const out: Record<string, Record<string, unknown>> = {};
  const add = (from: string, deps: unknown, optional: boolean) => {
    for (const name of Object.keys((deps ?? {}) as object)) {
      const p = find(from, name);
      if (p === null) {
        if (optional) continue;
        throw new Error(`package-lock.json has no ${name} (needed by ${from || "mtlcraft"})`);
      }
      if (out[p]) continue;
      const e = { ...pkgs[p]! };
      delete e.dev;
      delete e.devOptional;
      delete e.peer;
      out[p] = e;
      add(p, e.dependencies, false);
      add(p, e.optionalDependencies, true);
    }
  };
  add("", pkg.dependencies, false);
  const typesNode = { "@types/node": pkg.devDependencies["@types/node"]! };
  const before = new Set(Object.keys(out));
  add("", typesNode, false);
  for (const p of Object.keys(out)) if (!before.has(p)) out[p]!.dev = true;
  const root = { name: "consumer", version: "1.0.0", dependencies: { [pkg.name]: `file:${tgz}` }, devDependencies: typesNode };
  return {
    manifest: { ...root, private: true, type: "module" },
    lock: {
      name: "consumer",
      version: "1.0.0",
      lockfileVersion: 3,
      requires: true,
      packages: {
        "": root,
        [`node_modules/${pkg.name}`]: { version: pkg.version, resolved: `file:${tgz}`, integrity, license: pkg.license, dependencies: pkg.dependencies, bin: pkg.bin, engines: pkg.engines },
        ...out,
      },
    },
  };
}

/** Every file under `dir` with its size and modification time (to prove nothing was written there). */
function snapshot(dir: string): Map<string, string> {
  const m = new Map<string, string>();
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      const st = statSync(p);
      if (st.isDirectory()) walk(p);
      else m.set(relative(dir, p), `${st.size}:${st.mtimeMs}`);
    }
  };
  walk(dir);
  return m;
}

/** The code blocks of the README marked `<!-- example: NAME -->`, by NAME. */
function readmeExamples(): Map<string, string> {
  const text = readFileSync(join(REPO, "README.md"), "utf8");
  const out = new Map<string, string>();
  for (const m of text.matchAll(/<!-- example: ([\w.-]+) -->\n```\w*\n([\s\S]*?)\n```/g)) out.set(m[1]!, m[2]! + "\n");
  return out;
}

test("npm pack -> publint, attw -> offline install, scripts enabled -> plain Node, strict TS, README example, CLI from any folder", { timeout: 600_000 }, async (t) => {
  const root = tempDir("pack");
  const closed = `http://127.0.0.1:${await closedPort()}`;

  // ---- pack (builds dist/ through `prepare`) and check the tarball ---------------------------
  const packed = JSON.parse(ok(run("npm", ["pack", "--json", "--pack-destination", root], REPO), "npm pack")) as {
    filename: string;
    files: { path: string }[];
  }[];
  const { filename } = packed[0]!;
  const files = packed[0]!.files.map((f) => f.path);
  for (const f of ["dist/index.js", "dist/index.d.ts", "dist/cli.js", "dist/encoder.js", "dist/encoder.d.ts", "schemas/sweep-config.schema.json", "schemas/dataset-spec.schema.json", "data/kuairand-pure/LICENSE", "LICENSE", "README.md"]) {
    assert.ok(files.includes(f), `${f} is in the tarball`);
  }
  const stray = files.filter((f) => /^(src|test|bench|scripts|docs|\.ci|node_modules)\//.test(f) || f.endsWith(".ts") && !f.endsWith(".d.ts"));
  assert.deepEqual(stray, [], "no sources, tests, reports or CI files in the tarball");
  const tgzPath = join(root, filename);
  ok(run(join(REPO, "node_modules/.bin/publint"), ["run", tgzPath, "--strict"], REPO), "publint");
  ok(run(join(REPO, "node_modules/.bin/attw"), [tgzPath, "--profile", "esm-only"], REPO), "attw (are the types wrong)");

  // ---- a fresh project, installed offline from the tarball ----------------------------------
  const proj = join(root, "consumer");
  mkdirSync(proj);
  writeFileSync(join(proj, filename), readFileSync(tgzPath));
  const integrity = `sha512-${createHash("sha512").update(readFileSync(tgzPath)).digest("base64")}`;
  const { manifest, lock } = consumerLock(filename, integrity);
  writeFileSync(join(proj, "package.json"), JSON.stringify(manifest, null, 2));
  writeFileSync(join(proj, "package-lock.json"), JSON.stringify(lock, null, 2));
  // the README's CPU install, install scripts enabled (npm's default), offline: any download is refused at once
  const offline = { HTTP_PROXY: closed, HTTPS_PROXY: closed, http_proxy: closed, https_proxy: closed, GLOBAL_AGENT_HTTP_PROXY: closed, GLOBAL_AGENT_HTTPS_PROXY: closed, NO_PROXY: "", no_proxy: "", GLOBAL_AGENT_NO_PROXY: "" };
  const documented = readmeInstallEnv();
  assert.deepEqual(documented, { ONNXRUNTIME_NODE_INSTALL: "skip" });
  const t0 = Date.now();
  const inst = run("npm", ["ci", "--offline", "--foreground-scripts", "--no-audit", "--no-fund"], proj, 240_000, { ...offline, ...documented });
  const installOut = `${inst.stdout}\n${inst.stderr}`;
  ok(inst, "npm ci --offline with install scripts (the README's CPU install, from the npm cache)");
  t.diagnostic(`offline install of the tarball, scripts enabled: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  assert.match(installOut, /> onnxruntime-node@[\d.]+ postinstall\n> node \.\/script\/install/, "onnxruntime-node's install script ran (scripts were not skipped)");
  assert.doesNotMatch(installOut, /Unknown (project|user|global|env|cli) config/, "no npm config warnings");
  assert.equal(existsSync(join(proj, "node_modules", "onnxruntime-node", "bin", "napi-v6", "linux", "x64", "libonnxruntime_providers_cuda.so")), false, "no CUDA provider fetched");
  const installed = join(proj, "node_modules", pkg.name);
  assert.equal((JSON.parse(readFileSync(join(installed, "package.json"), "utf8")) as { version: string }).version, pkg.version);
  const before = snapshot(installed);

  // ---- plain Node imports the library (no loader, no TypeScript) ------------------------------
  writeFileSync(
    join(proj, "plain.mjs"),
    `import * as m from "mtlcraft";
const want = ["runTraining", "buildRun", "runSweep", "createMethod", "registerMethod", "registerArchitecture", "gradcraft", "finish", "gramOf",
  "withDefaults", "definePlugin", "resolveTrainOptions", "TRAIN_DEFAULTS", "resolveSweepConfig", "validateSpec", "Rng", "loadDataset"];
const missing = want.filter((k) => m[k] === undefined);
console.log(JSON.stringify({ missing, at: import.meta.resolve("mtlcraft"), epochs: m.TRAIN_DEFAULTS.epochs, gram: typeof m.gradcraft.weightsFromGram }));
`,
  );
  const plain = JSON.parse(ok(run(process.execPath, ["plain.mjs"], proj), "node plain.mjs").trim()) as { missing: string[]; at: string; epochs: number; gram: string };
  assert.deepEqual(plain.missing, []);
  assert.match(plain.at, /\/node_modules\/mtlcraft\/dist\/index\.js$/);
  assert.equal(plain.epochs, 10);
  assert.equal(plain.gram, "function");
  // mtlcraft/encoder (package.json exports), dependency-free: 9, "9" and "9.0" are one integer key
  writeFileSync(join(proj, "encoder.mjs"), `import { canonicalKey, createEncoder } from "mtlcraft/encoder";\nconsole.log(JSON.stringify({ at: import.meta.resolve("mtlcraft/encoder"), keys: [9, "9", " 9.0 "].map((v) => canonicalKey("BIGINT", String(v))), create: typeof createEncoder }));\n`);
  const encoder = JSON.parse(ok(run(process.execPath, ["encoder.mjs"], proj), "node encoder.mjs").trim()) as { at: string; keys: string[]; create: string };
  assert.match(encoder.at, /\/node_modules\/mtlcraft\/dist\/encoder\.js$/);
  assert.deepEqual(encoder.keys, ["9", "9", "9"]);
  assert.equal(encoder.create, "function");

  // ---- a strict TypeScript consumer (skipLibCheck: false): the declarations are clean and precise ----
  writeFileSync(
    join(proj, "tsconfig.json"),
    JSON.stringify({
      compilerOptions: { target: "ES2022", lib: ["ES2022"], module: "NodeNext", moduleResolution: "NodeNext", strict: true, skipLibCheck: false, noEmit: true, types: ["node"] },
      files: ["consumer.ts"],
    }),
  );
  writeFileSync(
    join(proj, "consumer.ts"),
    `import { BUILTIN_METHODS, checkInput, checkTasks, expectNullState, finish, gradcraft, gramOf, registerMethod, runTraining, withDefaults, Rng,
  type GradCraftOptions, type MethodEntry, type RunResult, type TrainOptions, type SweepFile, type DatasetSpec, type ModelEntry } from "mtlcraft";

const tau: number = gradcraft.defaults.tau;
const opts: GradCraftOptions = { ...BUILTIN_METHODS.gradcraft.defaults, tau };
const w: Float64Array = gradcraft.weightsFromGram([[1, 0], [0, 1]], opts, { rng: new Rng(1) }).coeffs;
// @ts-expect-error DB-MTL has no Gramian form (its direction is an EMA of past gradients)
BUILTIN_METHODS.dbmtl.weightsFromGram([[1]]);
export const mine: MethodEntry<{ power: number }> = {
  name: "mine", label: "Mine", kind: "gradient", summary: "x", defaults: { power: 1 },
  create(numTasks, options) {
    checkTasks("mine", numTasks);
    const o = withDefaults("mine", mine.defaults, options);
    return {
      name: "mine", kind: "gradient", numTasks,
      combine(input) {
        checkInput("mine", numTasks, input);
        const G = gramOf(input);
        return finish(input.grads, G, new Float64Array(numTasks).fill(o.power));
      },
      getState: () => null,
      setState: (s) => expectNullState("mine", s),
    };
  },
};
registerMethod(mine);
const train: TrainOptions = { dataset: "kuairand", model: "ple", method: mine };
export const result: Promise<RunResult> = runTraining(train);
const sweep: SweepFile = { methods: ["ew", "mine"], seeds: [1], train: { epochs: 1 } };
const spec: DatasetSpec = { name: "d", log: "log.csv", categorical: ["u"], tasks: [{ name: "c", kind: "column", column: "c" }], split: { kind: "fraction", train: 0.8, val: 0.1, test: 0.1, seed: 1 } };
export const all = [w, sweep, spec];
export type M = ModelEntry;
// @ts-expect-error dataset is required
export const bad1 = runTraining({ model: "ple" });
// @ts-expect-error GradCraft has no option "tua"
export const bad2: Partial<GradCraftOptions> = { tua: 0.1 };
// @ts-expect-error scope is one of shared, shared-dense, all
export const bad3: TrainOptions = { dataset: "x", scope: "every" };
`,
  );
  ok(run(process.execPath, [join(REPO, "node_modules/typescript/bin/tsc"), "-p", "tsconfig.json"], proj), "tsc (strict, skipLibCheck: false)");

  // ---- the README's library example, exactly as written --------------------------------------
  const examples = readmeExamples();
  assert.deepEqual([...examples.keys()].sort(), ["example.mjs", "my-method.mjs"]);
  for (const [name, code] of examples) writeFileSync(join(proj, name), code);
  const ex = ok(run(process.execPath, ["example.mjs"], proj), "node example.mjs (README)");
  const line = (label: string) => ex.split("\n").find((l) => l.startsWith(label))!.slice(label.length).trim().split(" ").map(Number);
  assert.equal(line("direction:").length, 3);
  assert.deepEqual(line("from the Gramian:"), line("coefficients:"), "weightsFromGram gives combine's coefficients");
  assert.match(ex, /MaxNorm: 3 steps, test AUC ev \d\.\d{3}, lv/);
  const exResult = JSON.parse(readFileSync(join(proj, "runs", "maxnorm.json"), "utf8")) as { method: string; steps: number };
  assert.equal(exResult.method, "maxnorm");
  assert.ok(existsSync(join(proj, ".cache", "datasets")), "the default cache is in the working directory");

  // ---- the CLI, from a folder that is not the package root -----------------------------------
  const work = join(proj, "work");
  writeTinyDataset(join(work, "data"));
  // `npx mtlcraft ...` exactly; the environment forbids npx to fetch anything (it must find the installed bin)
  const cli = (...args: string[]) => run("npx", ["mtlcraft", ...args], work, 240_000, { npm_config_yes: "false", npm_config_offline: "true" });
  assert.equal(ok(cli("--version"), "mtlcraft --version").trim(), pkg.version);
  assert.match(ok(cli("methods"), "mtlcraft methods"), /^gradcraft\s+GradCraft\s+gradient\s+tau=0\.1 eps=1e-10/m);
  const small = ["--model", "shared-bottom", "--model-opt", "bottomUnits=4", "--emb-dim", "2", "--batch-size", "32", "--epochs", "1", "--patience", "0"];
  ok(cli("train", "--dataset", "data/tiny.json", "--method", "ew", "--max-steps", "3", ...small, "--out", "runs/train.json"), "mtlcraft train");
  assert.equal((JSON.parse(readFileSync(join(work, "runs", "train.json"), "utf8")) as { steps: number }).steps, 3);
  const sets = ["--set", "max-steps=3", "--set", "batch-size=32", "--set", "emb-dim=2", "--set", "epochs=1", "--set", "patience=0"];
  const b = cli("bench", "--dataset", "data/tiny.json", "--model", "shared-bottom", "--model-opt", "bottomUnits=4", "--methods", "maxnorm",
    "--plugin", "../my-method.mjs", "--seeds", "1", "--jobs", "1", ...sets, "--out", "runs/bench");
  ok(b, "mtlcraft bench (relative spec path, a plugin method)");
  assert.match(readFileSync(join(work, "runs", "bench", "results.md"), "utf8"), /^\| Metric \| MaxNorm \|$/m);
  // the workers used the cache bench prepared in the working directory: one encoding of the tiny data
  assert.deepEqual(readdirSync(join(work, ".cache", "datasets")).filter((d) => d.startsWith("tiny-")).length, 1);

  // ---- nothing was written inside the installed package ---------------------------------------
  assert.deepEqual([...snapshot(installed)].sort(), [...before].sort(), "the installed package is unchanged");
  assert.equal(existsSync(join(installed, ".cache")), false);
});
