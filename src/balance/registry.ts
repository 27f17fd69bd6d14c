/**
 * Typed registry of balancing methods: `--method <name>` looks the entry up here.
 * Adding a built-in method = one file exporting a MethodEntry + one line below. The
 * registry is open: `registerMethod(entry)` adds a user's own method (from code, or from
 * a plugin module given to the CLI with `--plugin`), which `train`, `bench` and the
 * report then treat like a built-in one.
 */
import { METHOD_PROPERTIES, type BalancingMethod, type MethodEntry, type MethodProperty } from "./types.ts";
import { didYouMean } from "../util/suggest.ts";
import { ew } from "./ew.ts";
import { uw } from "./uw.ts";
import { dwa } from "./dwa.ts";
import { gradnorm } from "./gradnorm.ts";
import { rlw } from "./rlw.ts";
import { mgda } from "./mgda.ts";
import { pcgrad } from "./pcgrad.ts";
import { pcgradPlus } from "./pcgrad-plus.ts";
import { gradvac } from "./gradvac.ts";
import { cagrad } from "./cagrad.ts";
import { imtl } from "./imtl.ts";
import { dbmtl } from "./dbmtl.ts";
import { nashmtl } from "./nashmtl.ts";
import { alignedmtl } from "./alignedmtl.ts";
import { gradcraft } from "./gradcraft.ts";
import { famo } from "./famo.ts";
import { stch } from "./stch.ts";
import { excessmtl } from "./excessmtl.ts";
import { moco } from "./moco.ts";
import { metabalance } from "./metabalance.ts";
import { fairgrad } from "./fairgrad.ts";
import { upgrad } from "./upgrad.ts";
import { config } from "./config.ts";
import { peltr } from "./peltr.ts";

/** The built-in methods, each with its own option type (e.g. `BUILTIN_METHODS.gradcraft.defaults.tau`). */
export const BUILTIN_METHODS = { ew, uw, dwa, gradnorm, rlw, mgda, pcgrad, pcgradPlus, gradvac, cagrad, imtl, dbmtl, nashmtl, alignedmtl, gradcraft, famo, stch, excessmtl, moco, metabalance, fairgrad, upgrad, config, peltr } as const;

/** A registry entry with its option type erased (what the registry stores). */
export type AnyMethodEntry = MethodEntry<Record<string, unknown>>;

// Each entry keeps its own option type; the registry only needs the common shape.
const registry = new Map<string, AnyMethodEntry>(Object.values(BUILTIN_METHODS).map((e) => [e.name, e as unknown as AnyMethodEntry]));

/** Every registered method by name: the built-in ones, then those added by registerMethod. */
export const METHODS: ReadonlyMap<string, AnyMethodEntry> = registry;

/** Accepted spellings besides the canonical names. */
const ALIASES: Record<string, string> = {
  uc: "uw",
  uncertainty: "uw",
  "pcgrad+": "pcgrad-plus",
  pcgradplus: "pcgrad-plus",
  "db-mtl": "dbmtl",
  "nash-mtl": "nashmtl",
  "aligned-mtl": "alignedmtl",
  "excess-mtl": "excessmtl",
  "meta-balance": "metabalance",
  "pe-ltr": "peltr",
  conflictfree: "config",
};

export function methodNames(): string[] {
  return [...METHODS.keys()];
}

const METHOD_NAME = /^[a-z][a-z0-9_-]*$/;
const KINDS = ["loss-weighting", "gradient"];
/** Names the CLI and bench reserve (baselines, method-list keywords). */
const RESERVED = ["single", "lr", "all", "paper"];

/** Checks that `e` has the shape of a MethodEntry; the message names what is wrong. */
export function checkMethodEntry(e: unknown): asserts e is AnyMethodEntry {
  const where = `method entry${e !== null && typeof e === "object" && typeof (e as { name?: unknown }).name === "string" ? ` "${(e as { name: string }).name}"` : ""}`;
  if (e === null || typeof e !== "object") throw new Error(`${where} must be an object with name, label, kind, summary, defaults and create, got ${JSON.stringify(e)}`);
  const o = e as Record<string, unknown>;
  if (typeof o.name !== "string" || !METHOD_NAME.test(o.name)) {
    throw new Error(`${where}: name must be lower-case letters, digits, '-' or '_' (what users type after --method), got ${JSON.stringify(o.name)}`);
  }
  for (const k of ["label", "summary"]) if (typeof o[k] !== "string" || o[k] === "") throw new Error(`${where}: ${k} must be a non-empty string`);
  if (!KINDS.includes(o.kind as string)) throw new Error(`${where}: kind must be one of ${KINDS.join(", ")}, got ${JSON.stringify(o.kind)}`);
  if (o.defaults === null || typeof o.defaults !== "object" || Array.isArray(o.defaults)) throw new Error(`${where}: defaults must be an object of option: default value ({} when it takes none)`);
  if (typeof o.create !== "function") throw new Error(`${where}: create(numTasks, options) must be a function returning a BalancingMethod`);
  if (o.weightsFromGram !== undefined && typeof o.weightsFromGram !== "function") throw new Error(`${where}: weightsFromGram must be a function when given`);
  if (o.properties !== undefined) {
    if (!Array.isArray(o.properties)) throw new Error(`${where}: properties must be an array of ${METHOD_PROPERTIES.join(", ")} (or omitted)`);
    for (const p of o.properties as unknown[]) {
      if (!METHOD_PROPERTIES.includes(p as MethodProperty)) {
        throw new Error(`${where}: unknown property ${JSON.stringify(p)}; properties are ${METHOD_PROPERTIES.join(", ")}${typeof p === "string" ? didYouMean(p, METHOD_PROPERTIES) : ""}`);
      }
    }
  }
}

/**
 * Adds a method to the registry, so `--method <name>`, `bench --methods`, the report and
 * runTraining({ method: "<name>" }) find it. A name already taken (or an alias such as
 * `uc`, or a reserved word: single, lr, all, paper) is an error unless `replace` is set
 * (replacing a built-in is allowed only for a registered, non-built-in name).
 */
export function registerMethod<O extends object>(entry: MethodEntry<O>, opts: { replace?: boolean } = {}): void {
  checkMethodEntry(entry);
  const name = entry.name;
  if (RESERVED.includes(name) || ALIASES[name] !== undefined) throw new Error(`registerMethod: "${name}" is reserved (a baseline, keyword or alias); choose another name`);
  const builtin = (Object.values(BUILTIN_METHODS) as { name: string }[]).some((b) => b.name === name);
  const existing = registry.get(name);
  if (existing !== undefined && existing !== (entry as unknown as AnyMethodEntry)) {
    if (builtin) throw new Error(`registerMethod: "${name}" is a built-in method; give yours another name`);
    if (!opts.replace) throw new Error(`registerMethod: a method named "${name}" is already registered (pass { replace: true } to replace it)`);
  }
  registry.set(name, entry as unknown as AnyMethodEntry);
}

/** Removes a method added by registerMethod (built-in methods cannot be removed). */
export function unregisterMethod(name: string): boolean {
  if ((Object.values(BUILTIN_METHODS) as { name: string }[]).some((b) => b.name === name)) throw new Error(`unregisterMethod: "${name}" is a built-in method`);
  return registry.delete(name);
}

/** The entry for a name (or alias), or the entry itself when given one (checked, not registered). */
export function getMethod(name: string | MethodEntry): AnyMethodEntry {
  if (typeof name !== "string") {
    checkMethodEntry(name);
    const same = registry.get(name.name);
    if (same !== undefined && same !== name) throw new Error(`method "${name.name}": another method of that name is registered; give yours another name`);
    return name;
  }
  const key = ALIASES[name.toLowerCase()] ?? name.toLowerCase();
  const e = METHODS.get(key);
  if (!e) throw new Error(`unknown method "${name}"; choose one of: ${methodNames().join(", ")}${didYouMean(name, [...methodNames(), ...Object.keys(ALIASES)])}`);
  return e;
}

/**
 * Build a method from a name and loosely typed options (e.g. from the CLI): unknown
 * option names are rejected with the list of valid ones; values are coerced to the
 * type of the default.
 */
export function createMethod(name: string | MethodEntry, numTasks: number, options: Record<string, unknown> = {}): BalancingMethod {
  return getMethod(name).create(numTasks, typedOptions(name, options));
}

/** The options a method runs with: its defaults, overridden by the (validated, coerced) given ones. */
export function resolveMethodOptions(name: string | MethodEntry, options: Record<string, unknown> = {}): Record<string, unknown> {
  return { ...(getMethod(name).defaults as Record<string, unknown>), ...typedOptions(name, options) };
}

function typedOptions(name: string | MethodEntry, options: Record<string, unknown>): Record<string, unknown> {
  const e = getMethod(name);
  const defaults = e.defaults as Record<string, unknown>;
  const typed: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(options)) {
    if (v === undefined) continue;
    if (!Object.hasOwn(defaults, k)) {
      const valid = Object.keys(defaults);
      throw new Error(
        `method ${e.name}: unknown option "${k}"; ${valid.length ? `valid options: ${valid.join(", ")}` : "it takes no options"}${didYouMean(k, valid)}`,
      );
    }
    typed[k] = coerce(e.name, k, v, defaults[k]);
  }
  return typed;
}

function coerce(method: string, key: string, v: unknown, def: unknown): unknown {
  if (typeof def === "number" && typeof v === "string") {
    const n = Number(v);
    if (v.trim() === "" || !Number.isFinite(n)) throw new Error(`method ${method}: option ${key} must be a number, got "${v}"`);
    return n;
  }
  if (typeof def === "boolean" && typeof v === "string") {
    if (v === "true" || v === "1") return true;
    if (v === "false" || v === "0") return false;
    throw new Error(`method ${method}: option ${key} must be true or false, got "${v}"`);
  }
  return v;
}
