/** What a worker stores in Redis names file, row, line and column but never quotes file content (src/sweep/redis-message.ts). */
import { test } from "node:test";
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { DataError, scanCsv } from "../../src/data/index.ts";
import { OutsideDataFolderError } from "../../src/data/confine.ts";
import { PayloadError } from "../../src/sweep/payload.ts";
import { MAX_REDIS_MESSAGE, payloadStrings, redisSafeMessage, scrubText } from "../../src/sweep/redis-message.ts";
import { tempDir } from "../data/helpers.ts";

const SECRET = "b3BlbnNzaC1rZXktdjEAAAAAFAKE";
const known = payloadStrings({ job: { options: { method: "ew", "model-opt": ["levels=2"] } }, dataset: { spec: { log: "keys.csv", categorical: ["user_id"] } } });

test("a data error from the data layer is told by file, row, line and column only: its quoted row never comes through", async () => {
  const dir = tempDir("redis-msg");
  const file = join(dir, "keys.csv");
  writeFileSync(file, `-----BEGIN OPENSSH PRIVATE KEY-----,${SECRET}\n1,2,3\n`);
  const e = await scanCsv(file, { header: false, columns: ["a", "b", "c"] }).then(
    () => assert.fail("a ragged first line"),
    (x: unknown) => x as DataError,
  );
  assert.ok(e instanceof DataError);
  assert.ok(e.message.includes(SECRET), "the data layer's own message quotes the row (it stays in the worker's log)");
  const m = redisSafeMessage(e, known);
  assert.equal(m, "data error: a row with the wrong number of fields (file keys.csv, row 1, line 1); the worker's log has the full message");
  // DuckDB-style text with the offending line, and a column list from a header
  const duck = new DataError(`reading keys.csv: Could not convert string "${SECRET}" to INT64\nOriginal Line: ${SECRET},1`, { file, column: "user_id" });
  assert.equal(redisSafeMessage(duck, known), "data error: a value of the wrong type (file keys.csv, column \"user_id\"); the worker's log has the full message");
  const header = new DataError(`column "click" not found in keys.csv (columns: ${SECRET}, x)`, { file, column: "click" });
  const hm = redisSafeMessage(header, known);
  assert.ok(!hm.includes(SECRET) && !hm.includes("click"), `a column the payload does not name is left out: ${hm}`);
});

test("the worker's own refusals pass as they are; any other text keeps only quotes of the payload's own words", () => {
  assert.equal(redisSafeMessage(new PayloadError("queue payload: job x: job.options.lr must be a number, got \"--plugin=/p\""), known), "queue payload: job x: job.options.lr must be a number, got \"--plugin=/p\"");
  assert.match(redisSafeMessage(new OutsideDataFolderError('spec.log ("../x.csv") resolves outside the data folder', "x.csv"), known), /^spec\.log \("\.\.\/x\.csv"\)/);
  const train = `train exited with code 1:\n    mtlcraft: unknown method "ew" option "${SECRET}"; value '${SECRET}' in \`${SECRET}\`\n    (worker output: /w/job/x.stderr.log)`;
  const m = redisSafeMessage(new Error(train), known);
  assert.ok(!m.includes(SECRET), m);
  assert.match(m, /unknown method "ew" option "…"; value '…' in `…`/);
  assert.ok(!m.includes("\n"), "one line");
  assert.equal(scrubText(`bad row Original Line: ${SECRET}`, known), "bad row ");
  assert.equal(scrubText(`x LINE 3: ${SECRET}`, known), "x ");
  assert.ok(redisSafeMessage(new Error("x".repeat(10_000)), known).length <= MAX_REDIS_MESSAGE);
  assert.ok(redisSafeMessage(new PayloadError("y".repeat(10_000)), known).length <= MAX_REDIS_MESSAGE);
  assert.equal(scrubText(`epoch 1 "${SECRET}"`, known, 10).length, 10);
});
