/**
 * Writes docs/spec-reference.md from the dataset spec's schema (`npm run docs:spec`).
 * `--check`: exit 1 when the file differs from what the schema generates.
 */
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { renderSpecReference, SPEC_REFERENCE_PATH } from "../src/data/spec-reference.ts";

const text = renderSpecReference();
if (process.argv.includes("--check")) {
  const cur = existsSync(SPEC_REFERENCE_PATH) ? readFileSync(SPEC_REFERENCE_PATH, "utf8") : "";
  if (cur !== text) {
    console.error(`${SPEC_REFERENCE_PATH} is stale: run npm run docs:spec`);
    process.exit(1);
  }
  console.log(`${SPEC_REFERENCE_PATH} is up to date`);
} else {
  writeFileSync(SPEC_REFERENCE_PATH, text);
  console.log(`wrote ${SPEC_REFERENCE_PATH}`);
}
