/**
 * A small typed schema for configuration keys: one list of fields per kind of
 * configuration (train options in ./train-options.ts, the sweep config in
 * ./sweep-config.ts) holding each key's name, command-line flag, type, range,
 * default and description. The CLI builds its options from these lists, the
 * library validates against them, and a JSON Schema can be generated from them.
 */
import { unknownKeyMessage } from "../util/suggest.ts";

export type FieldType = "int" | "number" | "string" | "boolean" | "choice" | "map";

export type Scalar = string | number | boolean;

export interface FieldSpec {
  /** Property name in the options object (camelCase). */
  readonly key: string;
  /** Command-line flag without the dashes (kebab-case); absent = library only. */
  readonly flag?: string;
  readonly type: FieldType;
  readonly description: string;
  /** Placeholder in `--help` (e.g. `<n>`). */
  readonly arg?: string;
  readonly default?: Scalar;
  readonly required?: boolean;
  /** Inclusive bounds (int, number). */
  readonly min?: number;
  readonly max?: number;
  /** Exclusive upper bound (int, number), e.g. 2^32 for seeds. */
  readonly below?: number;
  readonly choices?: readonly string[];
}

/** Seeds are 32-bit: larger values would alias smaller ones (the generators take seed mod 2^32). */
export const SEED_LIMIT = 2 ** 32;

function describe(v: unknown): string {
  return typeof v === "string" ? `"${v}"` : Array.isArray(v) ? JSON.stringify(v) : String(v);
}

/** Checks a number against the field's type and bounds; `where` names the key in messages. */
function checkNumber(f: FieldSpec, n: number, where: string, raw: unknown): number {
  if (!Number.isFinite(n)) throw new Error(`${where} must be a number, got ${describe(raw)}`);
  if (f.type === "int" && !Number.isInteger(n)) throw new Error(`${where} must be an integer, got ${describe(raw)}`);
  if (f.min !== undefined && n < f.min) throw new Error(`${where} must be >= ${f.min}, got ${describe(raw)}`);
  if (f.max !== undefined && n > f.max) throw new Error(`${where} must be <= ${f.max}, got ${describe(raw)}`);
  if (f.below !== undefined && n >= f.below) throw new Error(`${where} must be < ${f.below}, got ${describe(raw)}`);
  return n;
}

/**
 * Validates an already typed value (library options, JSON config), without coercing
 * strings; throws an Error naming `where` and the expected type.
 */
export function checkValue(f: FieldSpec, v: unknown, where: string): unknown {
  switch (f.type) {
    case "int":
    case "number":
      if (typeof v !== "number") throw new Error(`${where} must be a${f.type === "int" ? "n integer" : " number"}, got ${describe(v)}`);
      return checkNumber(f, v, where, v);
    case "string":
      if (typeof v !== "string") throw new Error(`${where} must be a string, got ${describe(v)}`);
      return v;
    case "boolean":
      if (typeof v !== "boolean") throw new Error(`${where} must be true or false, got ${describe(v)}`);
      return v;
    case "choice":
      if (typeof v !== "string" || !f.choices!.includes(v)) throw new Error(`${where} must be one of ${f.choices!.join(", ")}, got ${describe(v)}`);
      return v;
    case "map":
      if (v === null || typeof v !== "object" || Array.isArray(v)) throw new Error(`${where} must be an object of key: value, got ${describe(v)}`);
      return v;
  }
}

/** Parses a command-line string into the field's type (numbers, booleans), then checks it. */
export function parseValue(f: FieldSpec, s: string, where: string): Scalar {
  switch (f.type) {
    case "int":
    case "number": {
      if (s.trim() === "") throw new Error(`${where} must be a number, got "${s}"`);
      return checkNumber(f, Number(s), where, s);
    }
    case "boolean":
      if (s === "true" || s === "1") return true;
      if (s === "false" || s === "0") return false;
      throw new Error(`${where} must be true or false, got "${s}"`);
    case "map":
      throw new Error(`${where} takes key=value`);
    default:
      return checkValue(f, s, where) as string;
  }
}

/** Throws for keys of `obj` not in `fields`, with a "did you mean" suggestion. */
export function checkKeys(obj: object, known: readonly string[], where: string, what: string): void {
  for (const k of Object.keys(obj)) {
    if (!known.includes(k)) throw new Error(unknownKeyMessage(where, what, k, known));
  }
}

/** A JSON Schema (draft 2020-12) fragment for one field. */
export function fieldJsonSchema(f: FieldSpec): Record<string, unknown> {
  const s: Record<string, unknown> = { description: f.description };
  if (f.type === "int") s.type = "integer";
  else if (f.type === "number") s.type = "number";
  else if (f.type === "string") s.type = "string";
  else if (f.type === "boolean") s.type = "boolean";
  else if (f.type === "choice") s.enum = [...f.choices!];
  else s.type = "object";
  if (f.min !== undefined) s.minimum = f.min;
  if (f.max !== undefined) s.maximum = f.max;
  if (f.below !== undefined) s.exclusiveMaximum = f.below;
  if (f.default !== undefined) s.default = f.default;
  return s;
}
