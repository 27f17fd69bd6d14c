/**
 * The README's method and architecture tables are generated from the registries
 * (src/report/readme-tables.ts, `npm run docs:tables`): the committed README must equal what
 * the registries generate now, every registered method / architecture has a row, and a newly
 * registered one shows up without touching the renderer.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { README_PATH, generatedBlock, renderArchitectureTable, renderMethodTable, updateReadme } from "../../src/report/readme-tables.ts";
import { METHODS, registerMethod, unregisterMethod } from "../../src/balance/registry.ts";
import { ARCHITECTURES, registerArchitecture, unregisterArchitecture } from "../../src/model/registry.ts";
import { ew } from "../../src/balance/ew.ts";

test("README.md's generated tables are what the registries give (run `npm run docs:tables` after adding a method or an architecture)", () => {
  const committed = readFileSync(README_PATH, "utf8");
  assert.ok(committed === updateReadme(committed), `${README_PATH}'s method or architecture table is stale: run npm run docs:tables`);
  for (const id of ["methods", "architectures"]) assert.ok(committed.includes(generatedBlock(id)), `section ${id}`);
});

test("every registered method and architecture has a row; a new one shows up, with its properties and options", () => {
  const methods = renderMethodTable();
  for (const [name, e] of METHODS) {
    const row = methods.split("\n").find((l) => l.startsWith(`| \`${name}\` |`));
    assert.ok(row, `method ${name} has a row`);
    for (const p of e.properties ?? []) assert.ok(row.includes(p), `${name}: property ${p}`);
  }
  assert.ok(methods.includes(`${METHODS.size} methods.`));
  const archs = renderArchitectureTable();
  for (const name of ARCHITECTURES.keys()) assert.ok(archs.includes(`| \`${name}\` |`), `architecture ${name} has a row`);
  registerMethod({ ...ew, name: "toy-sum", label: "Toy|Sum", summary: "a toy, registered by this test", defaults: { k: 3 } as never, properties: ["deterministic"] });
  registerArchitecture({ name: "toy-arch", summary: "a toy architecture", defaults: { units: [4, 2], embDim: 16 }, create: () => { throw new Error("not built"); } });
  try {
    assert.match(renderMethodTable(), /^\| `toy-sum` \| Toy\\\|Sum \| loss-weighting \| a toy, registered by this test \| k=3 \| deterministic \|$/m);
    // an option equal to the common default is not repeated
    assert.match(renderArchitectureTable(), /^\| `toy-arch` \| a toy architecture \| units=\[4,2\] \|$/m);
    const stale = readFileSync(README_PATH, "utf8");
    assert.notEqual(updateReadme(stale), stale, "a new method makes the README stale");
  } finally {
    unregisterMethod("toy-sum");
    unregisterArchitecture("toy-arch");
  }
});

test("a README without the markers gets an error naming the section and the markers", () => {
  assert.throws(() => updateReadme("# no tables here\n"), /generated section "methods" needs the marker lines <!-- generated:methods .* and <!-- \/generated:methods -->/);
  const swapped = `${generatedBlock("methods")}\n<!-- /generated:architectures -->\n${generatedBlock("architectures").split("\n")[0]}\n`;
  assert.throws(() => updateReadme(swapped), /"architectures" needs the marker lines/);
});
