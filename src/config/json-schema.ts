/**
 * JSON Schemas (draft-07, what editors support best) generated from the option schemas,
 * one per options object:
 * - schemas/train-options.schema.json  TrainOptions (runTraining's options as JSON)
 * - schemas/train-config.schema.json   a `train --config` file (the train flags as keys)
 * - schemas/sweep-config.schema.json   a `bench --config` file (configs/*.json)
 * - schemas/dataset-spec.schema.json   a dataset spec (data/specs/*.json), from the data
 *                                      layer's SPEC_SCHEMA (src/data/spec.ts)
 * A config or spec file names its schema with "$schema" (a path relative to the file, e.g.
 * "./node_modules/mtlcraft/schemas/sweep-config.schema.json"), and editors then complete
 * and check its keys. `npm run schemas` rewrites the files; a test fails when they are stale.
 */
import { SPEC_SCHEMA } from "../data/spec.ts";
import type { ObjectSchema, Schema } from "../data/spec-schema.ts";
import { fieldJsonSchema } from "./schema.ts";
import { SWEEP_CONFIG } from "./sweep-config.ts";
import { TRAIN_CONFIG_EXTRA } from "./train-config.ts";
import { BENCH_CONTROLLED, TRAIN_OPTIONS, type TrainField } from "./train-options.ts";

export type JsonSchema = Record<string, unknown>;

const DRAFT = "http://json-schema.org/draft-07/schema#";

/** The schema files: name -> generator (the names used under schemas/). */
export const SCHEMA_FILES: Readonly<Record<string, () => JsonSchema>> = {
  "train-options.schema.json": trainOptionsJsonSchema,
  "train-config.schema.json": trainConfigJsonSchema,
  "sweep-config.schema.json": sweepConfigJsonSchema,
  "dataset-spec.schema.json": datasetSpecJsonSchema,
};

/** Value schema of a `map` field (modelOptions / methodOptions): option name -> value. */
const MAP_VALUES = { oneOf: [{ type: "string" }, { type: "number" }, { type: "boolean" }, { type: "array", items: { type: "number" } }] };

function trainField(f: TrainField): JsonSchema {
  const s = fieldJsonSchema(f);
  if (f.type === "map") s.additionalProperties = MAP_VALUES;
  return s;
}

/** TrainOptions: camelCase keys, only `dataset` required (the rest have the CLI's defaults). */
export function trainOptionsJsonSchema(): JsonSchema {
  const properties: Record<string, JsonSchema> = { $schema: { type: "string", description: "JSON Schema of this file (ignored)" } };
  const required: string[] = [];
  for (const f of TRAIN_OPTIONS) {
    if (f.methodOption) continue;
    properties[f.key] = trainField(f);
    if (f.required && f.default === undefined) required.push(f.key);
  }
  return {
    $schema: DRAFT,
    title: "mtlcraft train options",
    description: "Options of runTraining (the `train` command's flags, in camelCase). Relative paths are resolved against the current directory.",
    type: "object",
    properties,
    required,
    additionalProperties: false,
  };
}

/** A `train --config` file: the train flags as keys (JSON-typed), plus plugin, $schema and description; every key optional. */
export function trainConfigJsonSchema(): JsonSchema {
  const properties: Record<string, JsonSchema> = {
    $schema: { type: "string", description: TRAIN_CONFIG_EXTRA.$schema },
    description: { type: "string", description: TRAIN_CONFIG_EXTRA.description },
  };
  for (const f of TRAIN_OPTIONS) {
    if (!f.flag) continue;
    if (f.type === "map") {
      const kv = { type: "string", pattern: "^[^=]+=" };
      properties[f.flag] = { description: f.description, oneOf: [{ type: "object", additionalProperties: MAP_VALUES }, kv, { type: "array", items: kv }] };
    } else properties[f.flag] = fieldJsonSchema(f);
  }
  properties.plugin = { description: TRAIN_CONFIG_EXTRA.plugin, oneOf: [{ type: "string", minLength: 1 }, { type: "array", items: { type: "string", minLength: 1 } }] };
  return {
    $schema: DRAFT,
    title: "mtlcraft train config",
    description:
      "A `mtlcraft train --config` file: the train command's flags without dashes (command-line flags override it). Relative paths (dataset, source, cache-dir, out, checkpoint, plugin) are resolved against the file's folder.",
    type: "object",
    properties,
    additionalProperties: false,
  };
}

/** Options of a bench job (`train` / `overrides` of a sweep config): `train` flag names, without what bench sets itself. */
function jobOptionsSchema(description: string): JsonSchema {
  const properties: Record<string, JsonSchema> = {};
  for (const f of TRAIN_OPTIONS) {
    if (!f.flag || BENCH_CONTROLLED[f.flag] !== undefined) continue;
    const s = fieldJsonSchema(f);
    if (f.type === "map") {
      // --method-opt k=v: a "k=v" string or a list of them
      const kv = { type: "string", pattern: "^[^=]+=" };
      properties[f.flag] = { description: f.description, oneOf: [kv, { type: "array", items: kv }] };
    } else properties[f.flag] = s;
  }
  return { type: "object", description, properties, additionalProperties: false };
}

function gridSchema(description: string): JsonSchema {
  const properties: Record<string, JsonSchema> = {};
  for (const f of TRAIN_OPTIONS) {
    if (!f.flag || f.type === "map" || BENCH_CONTROLLED[f.flag] !== undefined) continue;
    properties[f.flag] = { description: `values of ${f.flag} to try: ${f.description}`, type: "array", minItems: 1, items: fieldJsonSchema(f) };
  }
  return { type: "object", description, properties, additionalProperties: false };
}

/** A `bench --config` file. */
export function sweepConfigJsonSchema(): JsonSchema {
  const properties: Record<string, JsonSchema> = {};
  for (const f of SWEEP_CONFIG) {
    let s: JsonSchema = { ...f.schema };
    if (f.key === "train") s = jobOptionsSchema(f.description);
    else if (f.key === "grid") s = gridSchema(f.description);
    else if (f.key === "overrides") s = { type: "object", additionalProperties: jobOptionsSchema("train options of this method") };
    s.description = f.flag ? `${f.description} (command line: --${f.flag})` : f.description;
    if (f.default !== undefined) s.default = f.default;
    properties[f.key] = s;
  }
  return {
    $schema: DRAFT,
    title: "mtlcraft sweep config",
    description: "A `mtlcraft bench --config` file: every key optional (command-line options override it). Relative paths are resolved against the current directory.",
    type: "object",
    properties,
    additionalProperties: false,
  };
}

// ---- the dataset spec, from the data layer's schema ------------------------------------------

function specNode(s: Schema, defs: Record<string, JsonSchema>): JsonSchema {
  switch (s.type) {
    case "string": {
      const out: JsonSchema = { type: "string" };
      if (s.enum) out.enum = [...s.enum];
      else if (s.length !== undefined) {
        out.minLength = s.length;
        out.maxLength = s.length;
      } else if (!s.allowEmpty) out.minLength = 1;
      if (s.pattern) out.pattern = s.pattern.source;
      return out;
    }
    case "number":
    case "integer": {
      const out: JsonSchema = { type: s.type };
      if (s.min !== undefined) out[s.minExclusive ? "exclusiveMinimum" : "minimum"] = s.min;
      if (s.max !== undefined) out.maximum = s.max;
      return out;
    }
    case "boolean":
      return { type: "boolean" };
    case "list": {
      const out: JsonSchema = { type: "array", items: specNode(s.items, defs) };
      if (s.minItems !== undefined) out.minItems = s.minItems;
      if (s.maxItems !== undefined) out.maxItems = s.maxItems;
      return out;
    }
    case "object":
      return specObject(s, defs);
    case "anyOf":
      return { anyOf: s.options.map((o) => specNode(o, defs)) };
    case "tagged":
      return { oneOf: s.variants.map((v) => specObject(v, defs)) };
    default:
      return {};
  }
}

/** An object schema, as a definition (by its anchor) referenced with $ref. */
function specObject(o: ObjectSchema, defs: Record<string, JsonSchema>, inline = false): JsonSchema {
  const build = (): JsonSchema => {
    const properties: Record<string, JsonSchema> = {};
    const required: string[] = [];
    for (const [k, p] of Object.entries(o.props)) {
      const s: JsonSchema = { ...specNode(p.schema, defs), description: p.description };
      if (p.default !== undefined) s.default = p.default;
      if (p.example !== undefined) s.examples = [p.example];
      properties[k] = s;
      if (p.required) required.push(k);
    }
    const out: JsonSchema = { type: "object", title: o.title.replace(/`/g, ""), description: o.description, properties, additionalProperties: false };
    if (required.length) out.required = required;
    return out;
  };
  if (inline) return build();
  if (defs[o.anchor] === undefined) {
    defs[o.anchor] = {}; // placeholder against cycles
    defs[o.anchor] = build();
  }
  return { $ref: `#/definitions/${o.anchor}` };
}

/** A dataset spec file. */
export function datasetSpecJsonSchema(): JsonSchema {
  const defs: Record<string, JsonSchema> = {};
  const root = specObject(SPEC_SCHEMA, defs, true);
  return {
    $schema: DRAFT,
    ...root,
    title: "mtlcraft dataset spec",
    description: "A dataset spec (see data/README.md): what to read, which columns become fields, how labels are derived and how rows are split. Paths are relative to the spec file (or its dataDir).",
    definitions: Object.fromEntries(Object.entries(defs).sort(([a], [b]) => a.localeCompare(b))),
  };
}

/** The text of a schema file (stable: 2-space JSON and a final newline). */
export function schemaText(name: string): string {
  const gen = SCHEMA_FILES[name];
  if (!gen) throw new Error(`no schema file ${name}; known: ${Object.keys(SCHEMA_FILES).join(", ")}`);
  return JSON.stringify(gen(), null, 2) + "\n";
}
