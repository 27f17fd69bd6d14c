/**
 * Strict schemas of the JSON files of an exported model folder (features.json, fusion.json).
 *
 * A model folder is untrusted input (SECURITY.md): it may be downloaded or shared, and whoever
 * made it may have edited it (and recomputed checksums.json). So every key of these files must be
 * known (an unknown key is an error with a "did you mean"), and every value has its exact JSON
 * type: `true`, `[5]` or `"0x10"` are not numbers, even where JavaScript would convert them.
 *
 * The validator is a small combinator set rather than the dataset spec's schema
 * (src/data/spec-schema.ts), because these files need maps with free keys (vocabularies, label
 * rates, fusion weights), `null` for undefined metrics, and messages that name the model file
 * instead of "invalid dataset spec". The dataset spec embedded in features.json is validated by
 * the spec's own schema (`validateSpec`). Messages name the file and the JSON path of the
 * offending key, and the JSON type of a wrong value, never the value itself (file content is not
 * quoted into messages).
 */
import { DataError } from "../data/errors.ts";
import { validateSpec } from "../data/spec.ts";
import { didYouMean } from "../util/suggest.ts";

/** A check of one JSON value; `at` is its JSON path (e.g. `fields[3].multi`). */
export type Check = (x: unknown, at: string, fail: Fail) => void;
export type Fail = (at: string, msg: string) => never;

/** The JSON type of a value in words (for messages; the value itself is never quoted). */
export function jsonKind(x: unknown): string {
  if (x === null) return "null";
  if (Array.isArray(x)) return "an array";
  if (typeof x === "object") return "an object";
  if (typeof x === "string") return "a string";
  if (typeof x === "number") return Number.isFinite(x) ? "a number" : "a non-finite number";
  if (typeof x === "boolean") return "a boolean";
  return typeof x;
}

function isObj(x: unknown): x is Record<string, unknown> {
  return typeof x === "object" && x !== null && !Array.isArray(x);
}

/** `a.b`, or `a["odd key"]` for keys that are not identifiers. */
export function keyPath(at: string, k: string): string {
  const seg = /^[A-Za-z_$][A-Za-z0-9_$]*$/.test(k) ? `.${k}` : `[${JSON.stringify(k)}]`;
  return at === "" ? (seg.startsWith(".") ? seg.slice(1) : seg) : at + seg;
}

export const str =
  (o: { allowEmpty?: boolean; pattern?: RegExp; patternText?: string } = {}): Check =>
  (x, at, fail) => {
    if (typeof x !== "string") return fail(at, `must be a string, got ${jsonKind(x)}`);
    if (!o.allowEmpty && x === "") return fail(at, "must be a non-empty string");
    if (o.pattern && !o.pattern.test(x)) return fail(at, `must be ${o.patternText ?? `a string matching ${o.pattern.source}`}`);
  };

export const num =
  (o: { min?: number; integer?: boolean } = {}): Check =>
  (x, at, fail) => {
    const what = `${o.integer ? "an integer" : "a JSON number"}${o.min !== undefined ? ` >= ${o.min}` : ""}`;
    if (typeof x !== "number" || !Number.isFinite(x)) return fail(at, `must be ${what}, got ${jsonKind(x)}`);
    if ((o.integer && !Number.isInteger(x)) || (o.min !== undefined && x < o.min)) return fail(at, `must be ${what}`);
  };

export const int = (min?: number): Check => num({ integer: true, ...(min !== undefined ? { min } : {}) });

export const bool: Check = (x, at, fail) => {
  if (typeof x !== "boolean") return fail(at, `must be true or false, got ${jsonKind(x)}`);
};

export const oneOf =
  (values: readonly (string | number)[]): Check =>
  (x, at, fail) => {
    if (!values.includes(x as string | number)) return fail(at, `must be one of ${values.map((v) => JSON.stringify(v)).join(", ")}${typeof x === "string" ? didYouMean(x, values.map(String)) : `, got ${jsonKind(x)}`}`);
  };

export const nullable =
  (c: Check): Check =>
  (x, at, fail) => {
    if (x !== null) c(x, at, fail);
  };

/** Any JSON value (informational parts that scoring never reads, e.g. the training configuration). */
export const anyJson: Check = (x, at, fail) => {
  if (x === undefined || typeof x === "function" || typeof x === "bigint" || typeof x === "symbol") return fail(at, "must be a JSON value");
};

/** An object with free keys (informational maps). */
export const anyObject: Check = (x, at, fail) => {
  if (!isObj(x)) return fail(at, `must be an object, got ${jsonKind(x)}`);
};

export const list =
  (item: Check, o: { minItems?: number } = {}): Check =>
  (x, at, fail) => {
    if (!Array.isArray(x)) return fail(at, `must be an array, got ${jsonKind(x)}`);
    if (o.minItems !== undefined && x.length < o.minItems) return fail(at, `must have at least ${o.minItems} item${o.minItems === 1 ? "" : "s"}`);
    for (let i = 0; i < x.length; i++) item(x[i], `${at}[${i}]`, fail);
  };

/** An object whose keys are free (names, raw values) and whose values all pass `value`. */
export const record =
  (value: Check): Check =>
  (x, at, fail) => {
    if (!isObj(x)) return fail(at, `must be an object, got ${jsonKind(x)}`);
    for (const k of Object.keys(x)) value(x[k], keyPath(at, k), fail);
  };

export interface Prop {
  check: Check;
  optional?: boolean;
}

/** An object with exactly these keys (optional ones may be absent); `rule` checks across keys. */
export const obj =
  (props: Record<string, Check | Prop>, rule?: (o: Record<string, unknown>, at: string, fail: Fail) => void): Check =>
  (x, at, fail) => {
    if (!isObj(x)) return fail(at, `must be an object, got ${jsonKind(x)}`);
    const known = Object.keys(props);
    for (const k of Object.keys(x)) {
      if (!Object.hasOwn(props, k)) return fail(keyPath(at, k), `is not a known key${didYouMean(k, known)} (known: ${known.join(", ")})`);
    }
    for (const [k, p] of Object.entries(props)) {
      const { check, optional } = typeof p === "function" ? { check: p, optional: false } : p;
      if (x[k] === undefined) {
        if (!optional) return fail(keyPath(at, k), "is missing");
        continue;
      }
      check(x[k], keyPath(at, k), fail);
    }
    rule?.(x, at, fail);
  };

export const opt = (check: Check): Prop => ({ check, optional: true });

/** Validates `x` (the parsed content of `file`); throws a DataError `<file>: <path> <message>`. */
export function validateFile(check: Check, x: unknown, file: string): void {
  const fail: Fail = (at, msg) => {
    throw new DataError(`${file}: ${at === "" ? "the file" : at} ${msg}`, { file });
  };
  check(x, "", fail);
}

// ---- features.json ---------------------------------------------------------------------------

/** A plain file name inside the model folder: no separators, no `..`, not hidden. */
export const PLAIN_FILE = /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/;

export function isPlainFileName(f: string): boolean {
  return PLAIN_FILE.test(f) && !f.includes("..");
}

const plainFile: Check = (x, at, fail) => {
  str()(x, at, fail);
  if (!isPlainFileName(x as string)) return fail(at, "must be a plain file name inside the model folder (letters, digits, '_', '.', '-'; no path separators, no '..', not hidden)");
};

const source = obj({ column: opt(str()), expr: opt(str()) }, (o, at, fail) => {
  if ((o.column === undefined) === (o.expr === undefined)) return fail(at, 'must have exactly one of "column" and "expr"');
});

const field = obj(
  {
    name: str(),
    input: str(),
    kind: oneOf(["categorical", "numeric"]),
    vocabSize: int(1),
    source,
    valueType: opt(str()),
    ids: opt(record(int(1))),
    multi: opt(obj({ separator: str(), maxLen: int(1), pooling: oneOf(["mean", "sum"]), padding: oneOf([-1]) })),
    pointMasses: opt(list(num())),
    boundaries: opt(list(num())),
  },
  (o, at, fail) => {
    if (o.kind === "categorical" && o.ids === undefined) return fail(keyPath(at, "ids"), "is missing (a categorical field needs its vocabulary)");
    if (o.kind === "numeric" && (o.ids !== undefined || o.multi !== undefined)) return fail(at, "is numeric and must not have ids or multi");
  },
);

const splits = (c: Check): Check => obj({ train: c, val: c, test: c });

const specCheck: Check = (x, at, fail) => {
  try {
    validateSpec(x);
  } catch (e) {
    if (!(e instanceof DataError)) throw e;
    fail(at, `(the dataset spec) is invalid: ${e.message.replace(/^invalid dataset spec: \$\.?/, "")}`);
  }
};

/** features.json (see src/deploy/features.ts for what each key means). */
export const FEATURES_SCHEMA: Check = obj(
  {
    format: oneOf(["mtlcraft-features"]),
    version: int(1),
    dataset: obj({
      name: str(),
      hash: str({ pattern: /^[0-9a-f]{16,128}$/, patternText: "a hex content hash" }),
      rows: splits(int(0)),
      labelRates: splits(record(nullable(num()))),
      groupColumn: str({ allowEmpty: true }),
    }),
    spec: specCheck,
    columns: record(str()),
    fields: list(field, { minItems: 1 }),
    dense: list(obj({ name: str(), source, log1p: bool, mean: num(), std: num() })),
    sides: list(obj({ file: plainFile, on: str(), columns: list(str(), { minItems: 1 }) })),
    oov: oneOf([0]),
    denseInput: nullable(str()),
    timezone: opt(str()),
    tasks: list(obj({ name: str(), output: str(), kind: str(), threshold: opt(num()) }), { minItems: 1 }),
    keys: list(str()),
    model: obj({ architecture: str(), options: anyObject, opset: int(1), batchDim: str(), inputs: list(str()), outputs: list(str()) }),
    training: obj({
      source: opt(str()),
      method: opt(str()),
      methodLabel: opt(str()),
      seed: opt(num()),
      steps: opt(int(0)),
      bestEpoch: opt(int(0)),
      test: opt(anyJson),
      val: opt(anyJson),
      fingerprint: opt(anyJson),
      config: opt(anyJson),
    }),
  },
  (o, _at, fail) => {
    const unique = (key: string, names: string[]): void => {
      const dup = names.find((n, i) => names.indexOf(n) !== i);
      if (dup !== undefined) return fail(key, `has ${JSON.stringify(dup)} twice`);
    };
    const fields = o.fields as { name: string; input: string }[];
    const tasks = o.tasks as { name: string; output: string }[];
    const dense = o.dense as unknown[];
    unique("fields[].name", fields.map((f) => f.name));
    unique("tasks[].name", tasks.map((t) => t.name));
    unique("model inputs (fields[].input and denseInput)", [...fields.map((f) => f.input), ...(o.denseInput !== null ? [o.denseInput as string] : [])]);
    unique("tasks[].output", tasks.map((t) => t.output));
    unique("sides[].file", (o.sides as { file: string }[]).map((s) => s.file));
    if (dense.length > 0 && o.denseInput === null) return fail("denseInput", `is null, but ${dense.length} dense inputs are listed`);
  },
);

// ---- fusion.json -----------------------------------------------------------------------------

const metric = nullable(num());
const weights = record(num({ min: 0 }));

/** fusion.json, as `mtlcraft fuse` writes it (src/deploy/fuse.ts); only kind and weights are used by score. */
export const FUSION_SCHEMA: Check = obj({
  kind: oneOf(["sum", "product"]),
  weights,
  formula: opt(str()),
  objective: opt(str()),
  objectiveText: opt(str()),
  taskWeights: opt(weights),
  val: opt(metric),
  test: opt(metric),
  baseline: opt(obj({ formula: str(), val: metric, test: metric })),
  perKind: opt(list(obj({ kind: oneOf(["sum", "product"]), weights, val: metric }))),
  search: opt(obj({ samples: int(0), rounds: int(0), seed: num(), evaluations: int(0), split: oneOf(["val"]) })),
  datasetHash: opt(str()),
  createdAt: opt(str()),
});
