/**
 * `score` keeps the input's keys and never changes an id (src/data/encode.ts `exactCast`): the
 * output's key columns hold exactly what the input holds (text that is no integer, fractions,
 * hex, leading zeros), and a feature value its training type cannot hold as it is (42.7 or 0x5 in
 * an integer column, text) is out-of-vocabulary (id 0) with a warning counting the rows per
 * column; nothing is rounded (4.6 is not user 5) or parsed as hex (0x5 is not user 5).
 */
import { before, test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { loadModel } from "../../src/deploy/model.ts";
import { scoreFile, scoreRows } from "../../src/deploy/score.ts";
import { query, tempDir } from "../data/helpers.ts";
import { tinyModel } from "./tiny-model.ts";

const root = tempDir("score-keys");
let modelDir = "";
let userId: Record<string, number> = {};
let itemId: Record<string, number> = {};

before(async () => {
  ({ modelDir } = await tinyModel(root));
  const f = JSON.parse(readFileSync(join(modelDir, "features.json"), "utf8")) as { fields: { name: string; ids: Record<string, number> }[] };
  userId = f.fields.find((x) => x.name === "user_id")!.ids;
  itemId = f.fields.find((x) => x.name === "item_id")!.ids;
});

async function scored(csv: string, name: string): Promise<{ rows: Record<string, unknown>[]; warnings: string[] }> {
  const input = join(root, `${name}.csv`);
  const out = join(root, `${name}.parquet`);
  writeFileSync(input, csv);
  const log: string[] = [];
  const r = await scoreFile(modelDir, input, out, { keep: ["user_id", "item_id"], withIds: true, log: (m) => log.push(m) });
  assert.deepEqual(r.warnings, log.map((m) => m.replace(/^warning: /, "")));
  return { rows: await query(`SELECT * FROM read_parquet('${out}')`), warnings: r.warnings };
}

test("keys are copied verbatim; fractions, hex and text in an integer column are out-of-vocabulary with a per-column row count, never rounded or parsed", async () => {
  assert.ok(userId["5"]! > 0 && userId["4"]! > 0 && userId["7"]! > 0 && itemId["3"]! > 0, "the tiny model knows users 4, 5 and 7 and item 3");
  const keys = ["abc", "4.6", "0x5", "5", "007", "1e1", "4"];
  const { rows, warnings } = await scored(`user_id,item_id\n${keys.map((k) => `${k},3`).join("\n")}\n`, "mixed");
  assert.deepEqual(
    rows.map((r) => r.user_id),
    keys,
    "the output's keys are the input's text",
  );
  assert.deepEqual(
    rows.map((r) => r.id_user_id),
    [0, 0, 0, userId["5"], userId["7"], 0, userId["4"]],
    "abc, 4.6 (not 5), 0x5 (not 5) and 1e1 are OOV; 5, 007 (= 7) and 4 are the users they write",
  );
  assert.ok(rows.every((r) => r.id_item_id === itemId["3"]));
  assert.equal(warnings.length, 1, warnings.join("\n"));
  assert.match(warnings[0]!, /mixed\.csv: column "user_id": 4 rows have a value that is not an integer \(a fraction, hex, text or out of BIGINT's range\), first at data row 1 \(BIGINT in training\); scored as out-of-vocabulary \(id 0/);
  assert.doesNotMatch(warnings[0]!, /abc|0x5|4\.6/, "the warning quotes no value of the file");
});

test("an all-text key column keeps every key (no empty keys); in a column of numbers 4.6 and 1e1 are out-of-vocabulary and 3.0 is 3, kept or not", async () => {
  const text = await scored("user_id,item_id\nalice,3\nbob,3\ncarol,3\n", "text");
  assert.deepEqual(
    text.rows.map((r) => r.user_id),
    ["alice", "bob", "carol"],
  );
  assert.deepEqual(
    text.rows.map((r) => r.id_user_id),
    [0, 0, 0],
  );
  assert.match(text.warnings[0]!, /column "user_id": 3 rows have a value that is not an integer/);
  // a column of numbers: whether it is kept or not, 4.6 and 1e1 are not items 5 and 10, 3.0 is item 3; the kept keys are the input's text
  for (const keep of [["user_id"], ["user_id", "item_id"]]) {
    const input = join(root, "frac.csv");
    writeFileSync(input, "user_id,item_id\n5,4.6\n5,3.0\n5,3\n5,1e1\n");
    const out = join(root, "frac.csv.gz");
    const r = await scoreFile(modelDir, input, out, { keep, withIds: true });
    const got = await query(`SELECT * FROM read_csv('${out}', all_varchar = true)`);
    assert.deepEqual(
      got.map((x) => x.id_item_id),
      ["0", String(itemId["3"]), String(itemId["3"]), "0"],
      `keep ${keep.join(",")}`,
    );
    if (keep.includes("item_id")) {
      assert.deepEqual(
        got.map((x) => x.item_id),
        ["4.6", "3.0", "3", "1e1"],
      );
    }
    assert.equal(r.warnings.length, 1);
    assert.match(r.warnings[0]!, /column "item_id": 2 rows have a value that is not an integer .* first at data row 1 /);
  }
});

test("rows in memory: the same exact casts (a number 4.6 and the text 0x5 are out-of-vocabulary), keys returned as given", async () => {
  const m = await loadModel(modelDir);
  try {
    const warnings: string[] = [];
    const rows = [
      { user_id: 4.6, item_id: 3 },
      { user_id: "0x5", item_id: 3 },
      { user_id: 5, item_id: 3 },
    ];
    const r = await scoreRows(m, rows, { keep: ["user_id"], withIds: true, log: (w) => warnings.push(w) });
    assert.deepEqual(
      r.map((x) => [x.user_id, x.id_user_id]),
      [
        [4.6, 0],
        ["0x5", 0],
        [5, userId["5"]],
      ],
    );
    assert.equal(warnings.length, 1);
    assert.match(warnings[0]!, /the rows: column "user_id": 2 rows have a value that is not an integer/);
  } finally {
    await m.close();
  }
});
