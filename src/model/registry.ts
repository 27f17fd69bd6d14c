/**
 * Model registry: one entry per architecture file (single, lr, shared-bottom,
 * mmoe, ple, snr-trans, snr-aver), keyed by the option users type (`--model`).
 */
import type { FieldInfo } from "../data/types.ts";
import type { Architecture, ModelCommonOptions } from "./types.ts";
import { Model } from "./model.ts";
import * as single from "./single.ts";
import * as lr from "./lr.ts";
import * as sharedBottom from "./shared-bottom.ts";
import * as mmoe from "./mmoe.ts";
import * as ple from "./ple.ts";
import * as snrTrans from "./snr-trans.ts";
import * as snrAver from "./snr-aver.ts";
import type { ModelInput } from "./common.ts";
import { didYouMean } from "../util/suggest.ts";

export interface ModelEntry {
  readonly name: string;
  readonly summary: string;
  readonly defaults: Readonly<ModelCommonOptions & Record<string, unknown>>;
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

export const MODEL_NAMES: readonly string[] = MODELS.map((m) => m.name);

export const ARCHITECTURES: ReadonlyMap<string, ModelEntry> = new Map(MODELS.map((m) => [m.name, m]));

/**
 * Rejects option keys the architecture does not take, with a "did you mean"
 * suggestion (`expertunits` → `expertUnits`). strict: the key must be one of this
 * architecture's options (user input: `--model-opt`); not strict: one of any
 * architecture's (createModel accepts a shared option bag such as
 * {expertUnits, bottomUnits} for every architecture, and ignores the keys a given one does not use).
 */
export function checkModelOptions(name: string, options: object, opts: { strict: boolean }): void {
  const e = ARCHITECTURES.get(name);
  if (!e) throw new Error(`unknown model "${name}"; choose one of: ${MODEL_NAMES.join(", ")}${didYouMean(name, MODEL_NAMES)}`);
  const known = opts.strict ? Object.keys(e.defaults) : [...new Set(MODELS.flatMap((m) => Object.keys(m.defaults)))];
  for (const k of Object.keys(options)) {
    if (!known.includes(k)) {
      const own = Object.keys(e.defaults);
      throw new Error(`model ${name}: unknown option "${k}"${didYouMean(k, own.concat(known))} (options of ${name}: ${own.join(", ")})`);
    }
  }
}

/** Build a model by option name (`--model`). Options are merged over the architecture's defaults. */
export function createModel(
  name: string,
  input: { fields: readonly FieldInfo[]; numTasks: number },
  options: Partial<ModelCommonOptions> & Record<string, unknown> = {},
): Model {
  const e = ARCHITECTURES.get(name);
  if (!e) throw new Error(`unknown model "${name}"; choose one of: ${MODEL_NAMES.join(", ")}${didYouMean(name, MODEL_NAMES)}`);
  checkModelOptions(name, options, { strict: false });
  const arch = e.create(input, options);
  const o = { ...e.defaults, ...options };
  // The architecture decides its embedding size (lr fixes it to 1).
  const embDim = arch.tables[0]?.[0]?.dim ?? o.embDim;
  return new Model(arch, input.fields, { dropout: o.dropout, embDim, dtype: o.dtype });
}
