/**
 * The dataset spec's schema drives validation and the generated reference docs/spec-reference.md:
 * the committed file must equal what the schema generates now (it never goes stale), every key
 * has a type, a default and an example that the schema itself accepts, and unknown keys are
 * rejected with a suggestion.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { DataError, validateSpec } from "../../src/data/index.ts";
import { SPEC_SCHEMA } from "../../src/data/spec.ts";
import { objectSchemas, validateAgainst, type ObjectSchema } from "../../src/data/spec-schema.ts";
import { renderSpecReference, SPEC_REFERENCE_PATH } from "../../src/data/spec-reference.ts";

test("docs/spec-reference.md is what the schema generates (run `npm run docs:spec` after changing the schema)", () => {
  const committed = readFileSync(SPEC_REFERENCE_PATH, "utf8");
  assert.ok(committed === renderSpecReference(), `${SPEC_REFERENCE_PATH} is stale: run npm run docs:spec`);
});

test("the reference is generated from the schema: every object has a section and every key a row; a new key shows up", () => {
  const text = renderSpecReference();
  const objects = objectSchemas(SPEC_SCHEMA);
  assert.ok(objects.length >= 15, `${objects.length} object schemas`);
  for (const o of objects) {
    assert.ok(text.includes(`<a id="${o.anchor}"></a>\n\n## ${o.title}\n`), `section ${o.title}`);
    const section = text.slice(text.indexOf(`<a id="${o.anchor}"></a>`)).split('<a id="')[1] as string;
    for (const k of Object.keys(o.props)) assert.ok(section.includes(`| \`${k}\` |`), `${o.title}: key ${k}`);
  }
  // changing the schema changes the reference
  const extra: ObjectSchema = {
    ...SPEC_SCHEMA,
    props: { ...SPEC_SCHEMA.props, newKey: { schema: { type: "integer", min: 3 }, default: 7, description: "A key added by the test.", example: 9 } },
  };
  const changed = renderSpecReference(extra);
  assert.notEqual(changed, text);
  assert.ok(changed.includes("| `newKey` | integer >= 3 | `7` | A key added by the test. | `9` |"));
});

test("every key has a description, a default (or is required) and an example its own schema accepts", () => {
  for (const o of objectSchemas(SPEC_SCHEMA)) {
    for (const [k, p] of Object.entries(o.props)) {
      const where = `${o.title}.${k}`;
      assert.ok(p.description.length > 5, `${where}: description`);
      assert.ok(p.required || p.requiredWhen || p.default !== undefined || p.defaultText !== undefined, `${where}: default`);
      assert.ok(p.example !== undefined, `${where}: example`);
      assert.doesNotThrow(() => validateAgainst(p.schema, p.example, `$.${k}`), `${where}: example ${JSON.stringify(p.example)}`);
    }
  }
});

test("validation is the schema's: JSON paths, unknown keys with a suggestion, rules across keys", () => {
  const base = {
    name: "x",
    log: "log.csv",
    categorical: ["user"],
    tasks: [{ name: "click", kind: "column", column: "click" }],
    split: { kind: "fraction", train: 0.8, val: 0.1, test: 0.1, seed: 1 },
  };
  assert.equal(validateSpec(base).name, "x");
  const bad = (over: Record<string, unknown>, re: RegExp): void => {
    assert.throws(() => validateSpec({ ...base, ...over }), (e: unknown) => e instanceof DataError && re.test(e.message), JSON.stringify(over));
  };
  bad({ categorical: [{ name: "tags", seperator: "," }] }, /\$\.categorical\[0\]\.seperator is not a known key; did you mean "separator"\?/);
  bad({ csv: { hedaer: false } }, /\$\.csv\.hedaer is not a known key; did you mean "header"\?/);
  bad({ csv: { header: false } }, /\$\.csv\.columns is required when header is false/);
  bad({ csv: { columns: ["a"] } }, /\$\.csv\.columns is only allowed with header: false/);
  bad({ csv: { delimiter: "|||||" } }, /\$\.csv\.delimiter must be 1 to 4 characters \(DuckDB reads delimiters of at most 4 bytes\); got 5/);
  assert.equal(validateSpec({ ...base, csv: { delimiter: "||" } }).csv?.delimiter, "||", "a delimiter of several characters");
  bad({ categorical: [{ name: "t", maxLen: 4 }] }, /\$\.categorical\[0\]\.maxLen only applies to a multi-valued field/);
  bad({ categorical: [{ name: "t", separator: ",", pooling: "max" }] }, /\$\.categorical\[0\]\.pooling must be one of "mean", "sum"/);
  bad({ numeric: [{ name: "n", pointMass: 0 }] }, /\$\.numeric\[0\]\.pointMass must be a number in \(0, 1\]/);
  bad({ dense: [{ name: "user" }] }, /declares the field "user" twice/);
  bad({ dense: [{ name: "d", log1p: "yes" }] }, /\$\.dense\[0\]\.log1p must be true or false/);
  bad({ split: { kind: "fractoin" } }, /\$\.split\.kind must be one of date, fraction, files, time-fraction \(got "fractoin"\); did you mean "fraction"\?/);
  bad({ split: { kind: "fraction", train: 0.9, val: 0, test: 0.2, seed: 1 } }, /fractions must sum to 1/);
  assert.equal(validateSpec({ ...base, split: { kind: "fraction", train: 0.9, val: 0, test: 0.1, seed: 1 } }).split.kind, "fraction");
});
