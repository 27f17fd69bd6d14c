/**
 * The dataset spec's schema: one description of every key (its type, default, an example and what
 * it does) that drives both
 * - validation (`validateAgainst`, used by `validateSpec` in spec.ts): errors name the JSON path,
 *   unknown keys are rejected with a "did you mean" suggestion, cross-key rules (`check`) run
 *   where they belong; and
 * - the generated reference `docs/spec-reference.md` (`renderSpecReference`, written by
 *   `npm run docs:spec`; a test regenerates it and compares, so it cannot go stale).
 *
 * The TypeScript types of the same objects are in spec.ts.
 */
import { DataError } from "./errors.ts";
import { didYouMean } from "../util/suggest.ts";

export interface StringSchema {
  type: "string";
  /** Allowed values. */
  enum?: readonly string[];
  pattern?: RegExp;
  /** How `pattern` reads in messages and docs, e.g. "an identifier". */
  patternText?: string;
  /** Allow "" (default: a non-empty string is required). */
  allowEmpty?: boolean;
  /** Exact length in characters. */
  length?: number;
}

export interface NumberSchema {
  type: "number" | "integer";
  min?: number;
  max?: number;
  /** The lower bound itself is excluded. */
  minExclusive?: boolean;
}

export interface BooleanSchema {
  type: "boolean";
}

export interface ListSchema {
  type: "list";
  items: Schema;
  minItems?: number;
  maxItems?: number;
}

export interface Prop {
  schema: Schema;
  description: string;
  /** The key must be present. */
  required?: boolean;
  /** When the key is required only in some cases (checked by a `check` rule), e.g. "unless split.kind is \"files\"". */
  requiredWhen?: string;
  /** Default value (shown as JSON) ... */
  default?: unknown;
  /** ... or a default that is described rather than a constant. */
  defaultText?: string;
  /** An example value (every key has one; shown as JSON). */
  example: unknown;
}

export interface ObjectSchema {
  type: "object";
  /** Section title in the reference. */
  title: string;
  /** Anchor of the section (a-z, 0-9, '-'). */
  anchor: string;
  description: string;
  props: Record<string, Prop>;
  /** For a variant of a tagged union: the value of the tag key. */
  tagValue?: string;
  /** Rules across keys, enforced by `check` and listed in the reference. */
  rules?: readonly string[];
  check?: (o: Record<string, unknown>, path: string) => void;
}

/** One of several schemas, told apart by the JSON type of the value (string, number, list, object). */
export interface AnyOfSchema {
  type: "anyOf";
  options: readonly Schema[];
}

/** Objects told apart by the value of a tag key (`kind`). */
export interface TaggedSchema {
  type: "tagged";
  tag: string;
  variants: readonly ObjectSchema[];
}

export type Schema = StringSchema | NumberSchema | BooleanSchema | ListSchema | ObjectSchema | AnyOfSchema | TaggedSchema;

/** Throws the spec's DataError: `invalid dataset spec: <path> <message>`. */
export function specFail(path: string, msg: string): never {
  throw new DataError(`invalid dataset spec: ${path} ${msg}`);
}

function isObj(x: unknown): x is Record<string, unknown> {
  return typeof x === "object" && x !== null && !Array.isArray(x);
}

function jsKind(x: unknown): string {
  if (Array.isArray(x)) return "array";
  if (x === null) return "null";
  return typeof x;
}

function schemaKind(s: Schema): string {
  switch (s.type) {
    case "string":
      return "string";
    case "number":
    case "integer":
      return "number";
    case "boolean":
      return "boolean";
    case "list":
      return "array";
    default:
      return "object";
  }
}

function fmtNum(x: number): string {
  if (x === 2 ** 31) return "2^31";
  if (x === 2 ** 32) return "2^32";
  return String(x);
}

function numberRange(s: NumberSchema): string {
  const lo = s.min;
  const hi = s.max;
  if (lo === undefined && hi === undefined) return "";
  if (hi === undefined) return `${s.minExclusive ? ">" : ">="} ${fmtNum(lo!)}`;
  if (lo === undefined) return `<= ${fmtNum(hi)}`;
  return `in ${s.minExclusive ? "(" : "["}${fmtNum(lo)}, ${fmtNum(hi)}]`;
}

/** Type of a schema in words, for messages ("a non-empty string", "a number in [0, 1]"). */
export function typeWords(s: Schema): string {
  switch (s.type) {
    case "string":
      if (s.enum) return `one of ${s.enum.map((v) => JSON.stringify(v)).join(", ")}`;
      if (s.length !== undefined) return `a string of ${s.length} character${s.length === 1 ? "" : "s"}`;
      if (s.patternText) return s.patternText;
      return s.allowEmpty ? "a string" : "a non-empty string";
    case "number":
    case "integer": {
      const r = numberRange(s);
      if (s.type === "integer") return r ? `an integer ${r}` : "an integer";
      return r ? `a number ${r}` : "a finite number";
    }
    case "boolean":
      return "true or false";
    case "list":
      return s.minItems ? "a non-empty list" : "a list";
    case "object":
      return "an object";
    case "anyOf":
      return s.options.map(typeWords).join(" or ");
    case "tagged":
      return `an object with "${s.tag}" one of ${s.variants.map((v) => v.tagValue).join(", ")}`;
  }
}

/**
 * Validates `x` against `s`; throws a DataError naming the JSON path of the first problem.
 * `missing` marks a required key that is absent.
 */
export function validateAgainst(s: Schema, x: unknown, path: string, missing = false): void {
  const bad = (): never => specFail(path, `must be ${typeWords(s)}${missing ? " (it is missing)" : ""}`);
  switch (s.type) {
    case "string": {
      if (typeof x !== "string") return bad();
      if (s.enum) {
        if (!s.enum.includes(x)) specFail(path, `must be ${typeWords(s)} (got ${JSON.stringify(x)})${didYouMean(x, s.enum)}`);
        return;
      }
      if (s.length !== undefined && [...x].length !== s.length) specFail(path, `must be ${typeWords(s)} (got ${JSON.stringify(x)})`);
      if (!s.allowEmpty && x.length === 0) specFail(path, "must be a non-empty string");
      if (s.pattern && !s.pattern.test(x)) specFail(path, `must be ${s.patternText ?? `a string matching ${s.pattern.source}`} (got ${JSON.stringify(x)})`);
      return;
    }
    case "number":
    case "integer": {
      if (typeof x !== "number" || !Number.isFinite(x)) return bad();
      if (s.type === "integer" && !Number.isInteger(x)) return bad();
      if (s.min !== undefined && (x < s.min || (s.minExclusive && x === s.min))) return bad();
      if (s.max !== undefined && x > s.max) return bad();
      return;
    }
    case "boolean":
      if (typeof x !== "boolean") bad();
      return;
    case "list": {
      if (!Array.isArray(x)) return bad();
      if (s.minItems !== undefined && x.length < s.minItems) specFail(path, s.minItems === 1 ? "must not be an empty list" : `must have at least ${s.minItems} items`);
      if (s.maxItems !== undefined && x.length > s.maxItems) specFail(path, `must have at most ${s.maxItems} items`);
      x.forEach((v: unknown, i: number) => validateAgainst(s.items, v, `${path}[${i}]`));
      return;
    }
    case "object": {
      if (!isObj(x)) return bad();
      const known = Object.keys(s.props);
      for (const k of Object.keys(x)) {
        if (!known.includes(k)) specFail(`${path}.${k}`, `is not a known key${didYouMean(k, known)} (known: ${known.join(", ")})`);
      }
      for (const [k, p] of Object.entries(s.props)) {
        const v = x[k];
        if (v === undefined) {
          if (p.required) validateAgainst(p.schema, undefined, `${path}.${k}`, true);
          continue;
        }
        validateAgainst(p.schema, v, `${path}.${k}`);
      }
      s.check?.(x, path);
      return;
    }
    case "anyOf": {
      const k = jsKind(x);
      const opt = s.options.find((o) => schemaKind(o) === k);
      if (!opt) return bad();
      validateAgainst(opt, x, path);
      return;
    }
    case "tagged": {
      if (!isObj(x)) return bad();
      const tag = x[s.tag];
      const tags = s.variants.map((v) => v.tagValue as string);
      const v = s.variants.find((o) => o.tagValue === tag);
      if (!v) specFail(`${path}.${s.tag}`, `must be one of ${tags.join(", ")} (got ${JSON.stringify(tag)})${typeof tag === "string" ? didYouMean(tag, tags) : ""}`);
      validateAgainst(v, x, path);
      return;
    }
  }
}

// ---- reference rendering ----------------------------------------------------------------------

function esc(s: string): string {
  return s.replace(/\|/g, "\\|").replace(/\n/g, " ");
}

function code(v: unknown): string {
  return `\`${JSON.stringify(v)}\``;
}

/** Type of a schema for the reference table (markdown, links to object sections). */
function typeText(s: Schema): string {
  switch (s.type) {
    case "string":
      if (s.enum) return s.enum.map((v) => code(v)).join(" or ");
      if (s.length !== undefined) return `string (${s.length} char${s.length === 1 ? "" : "s"})`;
      if (s.patternText) return `string (${s.patternText})`;
      return "string";
    case "number":
    case "integer": {
      const r = numberRange(s);
      return r ? `${s.type} ${r}` : s.type;
    }
    case "boolean":
      return "boolean";
    case "list": {
      const it = typeText(s.items);
      return `${s.minItems ? "non-empty " : ""}list of ${s.items.type === "anyOf" ? `(${it})` : it}`;
    }
    case "object":
      return `object ([${s.title}](#${s.anchor}))`;
    case "anyOf":
      return s.options.map(typeText).join(" or ");
    case "tagged":
      return `object by \`${s.tag}\`: ${s.variants.map((v) => `[${code(v.tagValue)}](#${v.anchor})`).join(", ")}`;
  }
}

function collectObjects(s: Schema, out: ObjectSchema[]): void {
  switch (s.type) {
    case "object":
      if (out.includes(s)) return;
      out.push(s);
      for (const p of Object.values(s.props)) collectObjects(p.schema, out);
      return;
    case "list":
      collectObjects(s.items, out);
      return;
    case "anyOf":
      for (const o of s.options) collectObjects(o, out);
      return;
    case "tagged":
      for (const v of s.variants) collectObjects(v, out);
      return;
    default:
      return;
  }
}

function defaultCell(p: Prop): string {
  if (p.required) return "**required**";
  const parts: string[] = [];
  if (p.requiredWhen) parts.push(`required ${p.requiredWhen}`);
  if (p.defaultText !== undefined) parts.push(p.defaultText);
  else if (p.default !== undefined) parts.push(code(p.default));
  else if (!p.requiredWhen) parts.push("none");
  return parts.join("; ");
}

/** Markdown reference of a schema: one section per object with every key's type, default, description and an example. */
export function renderSchemaSections(root: ObjectSchema): string {
  const objects: ObjectSchema[] = [];
  collectObjects(root, objects);
  const out: string[] = [];
  for (const o of objects) {
    out.push(`<a id="${o.anchor}"></a>`, "", `## ${o.title}`, "", o.description, "");
    out.push("| key | type | default | description | example |", "|---|---|---|---|---|");
    for (const [k, p] of Object.entries(o.props)) {
      out.push(`| \`${k}\` | ${esc(typeText(p.schema))} | ${esc(defaultCell(p))} | ${esc(p.description)} | ${esc(code(p.example))} |`);
    }
    out.push("");
    if (o.rules?.length) {
      out.push("Rules:", "");
      for (const r of o.rules) out.push(`- ${r}`);
      out.push("");
    }
  }
  return out.join("\n");
}

/** Every object schema reachable from `root` (for tests: every key has an example that validates). */
export function objectSchemas(root: Schema): ObjectSchema[] {
  const out: ObjectSchema[] = [];
  collectObjects(root, out);
  return out;
}
