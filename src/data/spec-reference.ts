/**
 * The dataset spec reference (docs/spec-reference.md), generated from SPEC_SCHEMA: every key with
 * its type, default, description and an example, the cross-key rules, and a worked example (the
 * bundled spec for the headerless UCI Census-Income file). `npm run docs:spec` writes it; a test
 * regenerates it and compares, so the file cannot go stale.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { bundledDataDir } from "./builtin.ts";
import { SPEC_SCHEMA } from "./spec.ts";
import { renderSchemaSections, type ObjectSchema } from "./spec-schema.ts";

/** Repository path of the generated reference. */
export const SPEC_REFERENCE_PATH = "docs/spec-reference.md";

/** The reference as markdown (deterministic: the same schema and census spec give the same text). */
export function renderSpecReference(schema: ObjectSchema = SPEC_SCHEMA): string {
  const census = readFileSync(join(bundledDataDir(), "specs", "census-income.json"), "utf8").trimEnd();
  return [
    "# Dataset spec reference",
    "",
    "<!-- Generated from SPEC_SCHEMA (src/data/spec.ts) by `npm run docs:spec`; do not edit by hand. -->",
    "",
    "A dataset spec is a JSON object describing what to read, how to parse it, which columns become model inputs, how labels are derived and how rows are split.",
    "It is validated against the schema below: every error names the JSON path of the key (`$.categorical[2].maxLen`), and unknown keys are rejected with a suggestion.",
    "The prose guide, with the encoding rules and the split hash SQL, is [data/README.md](../data/README.md).",
    "",
    "In the tables, **required** keys must be present; any other key may be left out and then takes its default.",
    "",
    renderSchemaSections(schema),
    '<a id="worked-example"></a>',
    "",
    "## Worked example: a headerless UCI-style CSV",
    "",
    "The UCI Census-Income (KDD) files (`census-income.data`, `census-income.test`) have no header row and separate the 42 values of a line by a comma and a space:",
    "",
    "```",
    "73, Not in universe, 0, 0, High school graduate, 0, Not in universe, Widowed, Not in universe or children, ...",
    "```",
    "",
    "The bundled `data/specs/census-income.json` reads them unchanged: `csv.header` false with the 42 names in `csv.columns`, `csv.trim` to drop the space after each comma (values keep their spaces otherwise), `?` as a NULL string,",
    "the two MMoE tasks as SQL conditions on the trimmed text, zero-inflated amounts bucketised with their 0 as a point mass and also given as `log1p` dense inputs:",
    "",
    "```json",
    census,
    "```",
    "",
    "```bash",
    "npx mtlcraft prepare data/specs/census-income.json --source <folder with census-income.data and census-income.test>",
    "```",
    "",
  ].join("\n");
}
