/**
 * Model registry: one entry per architecture file, keyed by the option users type
 * (`--model`). Adding a built-in architecture = one file + one line in MODELS below (its
 * import and entry); the tests, the CLI and the README table read the list from here.
 */
import type { DenseInfo, FieldInfo } from "../data/types.ts";
import type { Architecture, ModelCommonOptions } from "./types.ts";
import { Model } from "./model.ts";
import * as single from "./single.ts";
import * as lr from "./lr.ts";
import * as sharedBottom from "./shared-bottom.ts";
import * as mmoe from "./mmoe.ts";
import * as ple from "./ple.ts";
import * as snrTrans from "./snr-trans.ts";
import * as snrAver from "./snr-aver.ts";
import { COMMON_DEFAULTS, type ModelInput } from "./common.ts";
import { didYouMean } from "../util/suggest.ts";

/**
 * An architecture's registry entry. `defaults` lists every option it takes (the common
 * ones of COMMON_DEFAULTS it omits are filled in); `create` validates the options merged
 * over them and builds the Architecture (parameters + forward description).
 */
export interface ModelEntry {
  /** What users type after `--model` (lower-case letters, digits, '-', '_'). */
  readonly name: string;
  readonly summary: string;
  readonly defaults: Readonly<Partial<ModelCommonOptions> & Record<string, unknown>>;
  create(input: ModelInput, options?: Record<string, unknown>): Architecture;
}

const entry = (name: string, summary: string, m: { defaults: object; create: (i: ModelInput, o?: never) => Architecture }): ModelEntry => ({
  name,
  summary,
  defaults: m.defaults as ModelEntry["defaults"],
  create: (i, o) => m.create(i, o as never),
});

export const MODELS: readonly ModelEntry[] = [
  entry("single", "Independent single-task networks (no sharing)", single),
  entry("lr", "Logistic regression per task on the same features (baseline)", lr),
  entry("shared-bottom", "Hard parameter sharing, Caruana 1997", sharedBottom),
  entry("mmoe", "Multi-gate Mixture-of-Experts, Ma et al. KDD'18", mmoe),
  entry("ple", "Progressive Layered Extraction, Tang et al. RecSys'20", ple),
  entry("snr-trans", "Sub-Network Routing (transform), Ma et al. AAAI'19", snrTrans),
  entry("snr-aver", "Sub-Network Routing (average), Ma et al. AAAI'19", snrAver),
];

/** Names of the built-in architectures (see modelNames() for every registered one). */
export const MODEL_NAMES: readonly string[] = MODELS.map((m) => m.name);

const registry = new Map<string, ModelEntry>(MODELS.map((m) => [m.name, m]));

/** Every registered architecture by name: the built-in ones, then those added by registerArchitecture. */
export const ARCHITECTURES: ReadonlyMap<string, ModelEntry> = registry;

export function modelNames(): string[] {
  return [...registry.keys()];
}

const ARCH_NAME = /^[a-z][a-z0-9_-]*$/;

/** Checks that `e` has the shape of a ModelEntry; the message names what is wrong. */
export function checkModelEntry(e: unknown): asserts e is ModelEntry {
  const o = e as Record<string, unknown> | null;
  const where = `architecture entry${o !== null && typeof o === "object" && typeof o.name === "string" ? ` "${o.name}"` : ""}`;
  if (o === null || typeof o !== "object") throw new Error(`${where} must be an object with name, summary, defaults and create, got ${JSON.stringify(e)}`);
  if (typeof o.name !== "string" || !ARCH_NAME.test(o.name)) throw new Error(`${where}: name must be lower-case letters, digits, '-' or '_' (what users type after --model), got ${JSON.stringify(o.name)}`);
  if (typeof o.summary !== "string") throw new Error(`${where}: summary must be a string`);
  if (o.defaults === null || typeof o.defaults !== "object" || Array.isArray(o.defaults)) throw new Error(`${where}: defaults must be an object of option: default value`);
  if (typeof o.create !== "function") throw new Error(`${where}: create(input, options) must be a function returning an Architecture`);
}

/**
 * Adds an architecture, so `--model <name>`, bench and runTraining({ model: "<name>" })
 * find it. A taken name is an error (a built-in one always; a registered one unless `replace`).
 */
export function registerArchitecture(entry: ModelEntry, opts: { replace?: boolean } = {}): void {
  checkModelEntry(entry);
  const existing = registry.get(entry.name);
  if (existing !== undefined && existing !== entry) {
    if (MODEL_NAMES.includes(entry.name)) throw new Error(`registerArchitecture: "${entry.name}" is a built-in architecture; give yours another name`);
    if (!opts.replace) throw new Error(`registerArchitecture: an architecture named "${entry.name}" is already registered (pass { replace: true } to replace it)`);
  }
  registry.set(entry.name, entry);
}

/** Removes an architecture added by registerArchitecture. */
export function unregisterArchitecture(name: string): boolean {
  if (MODEL_NAMES.includes(name)) throw new Error(`unregisterArchitecture: "${name}" is a built-in architecture`);
  return registry.delete(name);
}

/**
 * The entry for a name, or the entry itself when given one (checked; an object may not
 * reuse the name of a different registered architecture).
 */
export function getArchitecture(name: string | ModelEntry): ModelEntry {
  if (typeof name !== "string") {
    checkModelEntry(name);
    const same = registry.get(name.name);
    if (same !== undefined && same !== name) throw new Error(`architecture "${name.name}": another architecture of that name is registered; give yours another name`);
    return name;
  }
  const e = registry.get(name);
  if (!e) {
    const names = modelNames();
    throw new Error(`unknown model "${name}"; choose one of: ${names.join(", ")}${didYouMean(name, names)}`);
  }
  return e;
}

/**
 * Rejects option keys the architecture does not take, with a "did you mean"
 * suggestion (`expertunits` → `expertUnits`). strict: the key must be one of this
 * architecture's options (user input: `--model-opt`); not strict: one of any
 * architecture's (createModel accepts a shared option bag such as
 * {expertUnits, bottomUnits} for every architecture, and ignores the keys a given one does not use).
 */
export function checkModelOptions(name: string | ModelEntry, options: object, opts: { strict: boolean }): void {
  const e = getArchitecture(name);
  const own = [...new Set([...Object.keys(COMMON_DEFAULTS), ...Object.keys(e.defaults)])];
  const known = opts.strict ? own : [...new Set([...own, ...[...registry.values()].flatMap((m) => Object.keys(m.defaults))])];
  for (const k of Object.keys(options)) {
    if (!known.includes(k)) {
      throw new Error(`model ${e.name}: unknown option "${k}"${didYouMean(k, own.concat(known))} (options of ${e.name}: ${own.join(", ")})`);
    }
  }
}

/** Build a model by option name (`--model`). Options are merged over the architecture's defaults. */
export function createModel(
  name: string | ModelEntry,
  input: { fields: readonly FieldInfo[]; numTasks: number; dense?: readonly DenseInfo[] },
  options: Partial<ModelCommonOptions> & Record<string, unknown> = {},
): Model {
  const e = getArchitecture(name);
  checkModelOptions(e, options, { strict: false });
  const arch = e.create(input, options);
  const o = { ...COMMON_DEFAULTS, ...e.defaults, ...options };
  // The architecture decides its embedding size (lr fixes it to 1).
  const embDim = arch.tables[0]?.[0]?.dim ?? o.embDim;
  return new Model(arch, input.fields, { dropout: o.dropout, embDim, dtype: o.dtype, ...(input.dense?.length ? { dense: input.dense } : {}) });
}
