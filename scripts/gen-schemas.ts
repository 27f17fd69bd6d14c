/**
 * Writes the JSON Schema files of schemas/ from the option schemas (src/config/json-schema.ts).
 *   npm run schemas
 * test/config/json-schema.test.ts fails when a file differs from what this would write.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { SCHEMA_FILES, schemaText } from "../src/config/json-schema.ts";

const dir = fileURLToPath(new URL("../schemas/", import.meta.url));
mkdirSync(dir, { recursive: true });
for (const name of Object.keys(SCHEMA_FILES)) {
  writeFileSync(join(dir, name), schemaText(name));
  console.log(`wrote schemas/${name}`);
}
