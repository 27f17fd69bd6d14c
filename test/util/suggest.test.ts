import { test } from "node:test";
import assert from "node:assert/strict";
import { closest, didYouMean, levenshtein, unknownKeyMessage } from "../../src/util/suggest.ts";

test("edit distance: insertions, deletions, substitutions and adjacent swaps count 1", () => {
  assert.equal(levenshtein("", ""), 0);
  assert.equal(levenshtein("abc", ""), 3);
  assert.equal(levenshtein("kitten", "sitting"), 3);
  assert.equal(levenshtein("tua", "tau"), 1);
  assert.equal(levenshtein("metods", "methods"), 1);
  assert.equal(levenshtein("abc", "abc"), 0);
});

test("suggestions ignore case, - and _, and only offer close names", () => {
  assert.deepEqual(closest("expertunits", ["expertUnits", "towerUnits", "levels"]), ["expertUnits"]);
  assert.deepEqual(closest("batchsize", ["batch-size", "eval-batch-size"]), ["batch-size"]);
  assert.deepEqual(closest("zzz", ["batch-size"]), []);
  assert.equal(didYouMean("metods", ["methods", "model"]), '; did you mean "methods"?');
  assert.equal(didYouMean("qqqqqq", ["methods"]), "");
  assert.equal(unknownKeyMessage("cfg", "key", "metods", ["methods", "seeds"]), 'cfg: unknown key "metods"; did you mean "methods"? (valid: methods, seeds)');
});
