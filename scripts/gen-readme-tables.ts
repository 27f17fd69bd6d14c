/**
 * Regenerates the README's method and architecture tables from the registries, between their
 * marker comments (`npm run docs:tables`). `--check`: exit 1 when README.md is out of date.
 * Written atomically (temporary file + rename).
 */
import { readFileSync, renameSync, writeFileSync } from "node:fs";
import { README_PATH, updateReadme } from "../src/report/readme-tables.ts";

const cur = readFileSync(README_PATH, "utf8");
const next = updateReadme(cur);
if (process.argv.includes("--check")) {
  if (cur !== next) {
    console.error(`${README_PATH}'s generated tables are stale: run npm run docs:tables`);
    process.exit(1);
  }
  console.log(`${README_PATH}'s generated tables are up to date`);
} else if (cur === next) {
  console.log(`${README_PATH}: tables already up to date`);
} else {
  const tmp = `${README_PATH}.${process.pid}.tmp`;
  writeFileSync(tmp, next);
  renameSync(tmp, README_PATH);
  console.log(`wrote ${README_PATH}'s generated tables`);
}
