/**
 * SECURITY.md stays current: every test file it cites exists, and every test title it quotes
 * (a "…" cut off is a prefix) is a test of that file. A guarantee whose test was renamed or
 * removed fails here, naming the file and the title.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";

const flat = (s: string): string => s.replace(/\s+/g, " ");

test("SECURITY.md cites test files that exist and test titles that those files have", () => {
  const md = flat(readFileSync("SECURITY.md", "utf8"));
  const cites = [...md.matchAll(/(test\/[\w/.-]+\.test\.ts)/g)];
  assert.ok(cites.length >= 30, `SECURITY.md cites only ${cites.length} test files`);
  const problems: string[] = [];
  let titles = 0;
  cites.forEach((m, i) => {
    const file = m[1]!;
    if (!existsSync(file)) {
      problems.push(`${file} does not exist`);
      return;
    }
    const src = flat(readFileSync(file, "utf8"));
    // the titles quoted after this citation, up to the next citation
    const end = i + 1 < cites.length ? cites[i + 1]!.index! : md.length;
    const tail = md.slice(m.index! + file.length, end);
    if (!tail.trimStart().startsWith("›")) return; // "(every test)" or a plain mention
    for (const q of tail.matchAll(/"((?:[^"\\]|\\.)*)"/g)) {
      const t = q[1]!.replace(/\s*…$/, "");
      if (t.length < 15) continue; // the pieces between the quotes of a title that holds quotes itself
      titles++;
      if (!src.includes(t)) problems.push(`${file} has no test titled ${JSON.stringify(t.slice(0, 80))}`);
    }
  });
  assert.ok(titles >= 30, `only ${titles} quoted titles were checked`);
  assert.deepEqual(problems, []);
});
