/**
 * Provenance of a training run: the mtlcraft version that ran it and its fully resolved
 * configuration (every train option that shapes the result, the architecture's and the
 * method's options, defaults included), with a hash of that configuration. `runTraining`
 * records it in the result (`config.provenance`); `bench` computes the same from a job's
 * options before running it (src/sweep/provenance.ts), so a table never mixes versions or
 * resolved configurations (a default that changed between versions shows up by name).
 *
 * Left out of the configuration: where things are (dataset path, cache, source, outputs,
 * checkpoint), how progress is shown, engine threads and test-only switches: none of them
 * changes a result. The dataset's content is checked on its own (its content hash).
 */
import { createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { getMethod, resolveMethodOptions } from "../balance/registry.ts";
import { getArchitecture } from "../model/registry.ts";
import { resolveTrainOptions, TRAIN_KEYS, type TrainOptions } from "../config/train-options.ts";

/** A resolved configuration: plain JSON, keys sorted. */
export type ResolvedConfig = Record<string, unknown>;

/** What a result records about what produced it. */
export interface Provenance {
  /** The mtlcraft version (package.json) of the process that trained. */
  mtlcraft: string;
  /** The resolved configuration (defaults included). */
  config: ResolvedConfig;
  /** SHA-256 of the canonical JSON of `config`. */
  configHash: string;
}

let version: string | undefined;

/**
 * The installed mtlcraft's version, read once: the nearest package.json named "mtlcraft" above
 * this module (src/train/ in a checkout, dist/... in the package), whatever the layout.
 */
export function mtlcraftVersion(): string {
  if (version !== undefined) return version;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 8; i++) {
    const p = join(dir, "package.json");
    if (existsSync(p)) {
      try {
        const pkg = JSON.parse(readFileSync(p, "utf8")) as { name?: unknown; version?: unknown };
        if (pkg.name === "mtlcraft" && typeof pkg.version === "string" && pkg.version !== "") return (version = pkg.version);
      } catch {
        /* not this one */
      }
    }
    const up = dirname(dir);
    if (up === dir) break;
    dir = up;
  }
  throw new Error(`cannot find mtlcraft's package.json above ${fileURLToPath(import.meta.url)} (a broken install?)`);
}

/** JSON with object keys sorted at every level. */
export function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(",")}]`;
  if (v !== null && typeof v === "object") {
    const o = v as Record<string, unknown>;
    return `{${Object.keys(o).filter((k) => o[k] !== undefined).sort().map((k) => `${JSON.stringify(k)}:${canonicalJson(o[k])}`).join(",")}}`;
  }
  return JSON.stringify(v ?? null);
}

/**
 * Train options that never change a result: where files are, how progress is shown, engine
 * threads and buffers, checkpoint cadence (a resumed run is bit-identical), the resume test
 * switch. Every other train option (a new one included) is part of the configuration.
 */
const NOT_RESULT_KEYS = new Set(["dataset", "source", "cacheDir", "out", "checkpoint", "checkpointEvery", "interruptAfter", "progress", "threads", "memory", "modelOptions", "methodOptions"]);

/** Architecture options as the train command reads them: the same coercion as run.ts parseModelOptions (kept apart so the bench loads no engine). */
function parseModelOption(k: string, v: unknown): unknown {
  if (typeof v !== "string") return v;
  if (v === "true" || v === "false") return v === "true";
  if (v.includes(",") || k.toLowerCase().endsWith("units")) return v.split(",").filter((s) => s.trim() !== "").map(Number);
  if (Number.isFinite(Number(v)) && v.trim() !== "") return Number(v);
  return v;
}

/**
 * The resolved configuration of a run: its result-shaping train options with defaults filled
 * in, the architecture's options (its defaults, then the given ones) and the method's options
 * (resolved by the method's own defaults). Throws, naming the option, on invalid options.
 */
export function resolvedConfig(options: TrainOptions): ResolvedConfig {
  const o = resolveTrainOptions(options);
  const arch = getArchitecture(o.model);
  const entry = getMethod(o.method);
  const modelOptions: Record<string, unknown> = { ...arch.defaults };
  for (const [k, v] of Object.entries(o.modelOptions ?? {})) modelOptions[k] = parseModelOption(k, v);
  delete modelOptions.seed;
  delete modelOptions.embDim;
  delete modelOptions.dropout;
  const out: Record<string, unknown> = {};
  for (const k of TRAIN_KEYS) if (!NOT_RESULT_KEYS.has(k)) out[k] = (o as unknown as Record<string, unknown>)[k];
  out.model = arch.name;
  out.method = entry.name;
  out.modelOptions = modelOptions;
  out.methodOptions = resolveMethodOptions(entry, o.methodOptions ?? {});
  return JSON.parse(canonicalJson(out)) as ResolvedConfig;
}

/** The provenance of a run with these options, by this installation. */
export function provenanceOf(options: TrainOptions): Provenance {
  const config = resolvedConfig(options);
  return { mtlcraft: mtlcraftVersion(), config, configHash: createHash("sha256").update(canonicalJson(config)).digest("hex") };
}

/** A value as a person reads it in a difference: 1e-5 rather than 0.00001. */
export function showValue(v: unknown): string {
  if (typeof v === "number") return v !== 0 && Math.abs(v) < 1e-3 ? v.toExponential().replace(/\.?0+e/, "e").replace("e+", "e") : String(v);
  if (typeof v === "string") return v;
  if (v === undefined) return "(unset)";
  if (Array.isArray(v)) return v.map(showValue).join(",");
  return JSON.stringify(v);
}

function flatten(v: unknown, prefix: string, out: Map<string, string>): void {
  if (v !== null && typeof v === "object" && !Array.isArray(v)) {
    for (const [k, x] of Object.entries(v)) flatten(x, prefix ? `${prefix}.${k}` : k, out);
  } else out.set(prefix, showValue(v));
}

/**
 * What differs from `old` to `now`: `mtlcraft 0.1.0 → 0.2.0` first, then every configuration
 * key (dotted, sorted) as `l2: 1e-5 → 1e-4`. Empty when both are the same.
 */
export function provenanceDiff(old: Pick<Provenance, "mtlcraft" | "config">, now: Pick<Provenance, "mtlcraft" | "config">): string[] {
  const out: string[] = [];
  if (old.mtlcraft !== now.mtlcraft) out.push(`mtlcraft ${old.mtlcraft} → ${now.mtlcraft}`);
  const a = new Map<string, string>();
  const b = new Map<string, string>();
  flatten(old.config, "", a);
  flatten(now.config, "", b);
  for (const k of [...new Set([...a.keys(), ...b.keys()])].sort()) {
    if (a.get(k) !== b.get(k)) out.push(`${k}: ${a.get(k) ?? "(unset)"} → ${b.get(k) ?? "(unset)"}`);
  }
  return out;
}

/** A recorded provenance read back from a file (untrusted): the object, or null when absent or malformed. */
export function readProvenance(x: unknown): Provenance | null {
  if (x === null || typeof x !== "object" || Array.isArray(x)) return null;
  const p = x as Record<string, unknown>;
  if (typeof p.mtlcraft !== "string" || typeof p.configHash !== "string" || p.config === null || typeof p.config !== "object" || Array.isArray(p.config)) return null;
  return { mtlcraft: p.mtlcraft, config: p.config as ResolvedConfig, configHash: p.configHash };
}
