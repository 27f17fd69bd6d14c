/**
 * Typed registry of balancing methods: `--method <name>` looks the entry up here.
 * Adding a method = one file exporting a MethodEntry + one line below.
 */
import type { BalancingMethod, MethodEntry } from "./types.ts";
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

// Each entry keeps its own option type; the registry only needs the common shape.
const entries = [ew, uw, dwa, gradnorm, rlw, mgda, pcgrad, pcgradPlus, gradvac, cagrad, imtl, dbmtl, nashmtl, alignedmtl, gradcraft] as unknown as MethodEntry<Record<string, unknown>>[];

export const METHODS: ReadonlyMap<string, MethodEntry<Record<string, unknown>>> = new Map(entries.map((e) => [e.name, e]));

/** Accepted spellings besides the canonical names. */
const ALIASES: Record<string, string> = {
  uc: "uw",
  uncertainty: "uw",
  "pcgrad+": "pcgrad-plus",
  pcgradplus: "pcgrad-plus",
  "db-mtl": "dbmtl",
  "nash-mtl": "nashmtl",
  "aligned-mtl": "alignedmtl",
};

export function methodNames(): string[] {
  return [...METHODS.keys()];
}

export function getMethod(name: string): MethodEntry<Record<string, unknown>> {
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
export function createMethod(name: string, numTasks: number, options: Record<string, unknown> = {}): BalancingMethod {
  return getMethod(name).create(numTasks, typedOptions(name, options));
}

/** The options a method runs with: its defaults, overridden by the (validated, coerced) given ones. */
export function resolveMethodOptions(name: string, options: Record<string, unknown> = {}): Record<string, unknown> {
  return { ...(getMethod(name).defaults as Record<string, unknown>), ...typedOptions(name, options) };
}

function typedOptions(name: string, options: Record<string, unknown>): Record<string, unknown> {
  const e = getMethod(name);
  const defaults = e.defaults as Record<string, unknown>;
  const typed: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(options)) {
    if (v === undefined) continue;
    if (!(k in defaults)) {
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
