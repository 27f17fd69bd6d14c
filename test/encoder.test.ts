/**
 * `mtlcraft/encoder` (src/encoder.ts): canonical keys pinned against DuckDB (the canonical key
 * of DuckDB's text of a value casts back to the same value, and equal values get equal keys),
 * the encoder's ids equal `score`'s on a model with integer, DOUBLE, DECIMAL and text columns
 * (hostile values included), exported keys are canonical and an older features.json ("9.0" keys)
 * is canonicalised on load with the same ids, clashing keys are refused naming both, and hostile
 * rows and features files (prototype keys, huge strings, wrong types) neither pollute nor match
 * prototype properties.
 */
import { before, test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { cpSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import * as ort from "onnxruntime-node";
import { canonicalKey, createEncoder, toFeeds, type EncodedBatch } from "../src/encoder.ts";
import { canonicalVocab, readFeatures } from "../src/deploy/features.ts";
import { loadModel } from "../src/deploy/model.ts";
import { scoreRows } from "../src/deploy/score.ts";
import { DataError } from "../src/data/errors.ts";
import { Rng } from "../src/util/rng.ts";
import { query, tempDir } from "./data/helpers.ts";
import { hostileRows, typedModel } from "./deploy/typed-model.ts";

// ---- canonical keys ---------------------------------------------------------------------------

test("canonical keys: 9, '9', '9.0', ' +009 ' are one integer; DOUBLE, FLOAT, DECIMAL, BOOLEAN, DATE forms; what a type cannot hold is null", () => {
  for (const t of ["9", "9.0", " +009 ", "009.000", "\t9\n"]) assert.equal(canonicalKey("BIGINT", t), "9", t);
  for (const t of ["9.5", "0x9", "1e1", "9e0", "", "nine", "1_000", "\u000b9"]) assert.equal(canonicalKey("BIGINT", t), null, t);
  assert.equal(canonicalKey("BIGINT", "-0"), "0");
  assert.equal(canonicalKey("BIGINT", "-12"), "-12");
  assert.equal(canonicalKey("BIGINT", "9223372036854775807"), "9223372036854775807");
  assert.equal(canonicalKey("BIGINT", "9223372036854775808"), null, "out of BIGINT's range");
  assert.equal(canonicalKey("UTINYINT", "-1"), null);
  assert.equal(canonicalKey("TINYINT", "-128"), "-128");
  for (const [t, want] of [["9.0", "9"], ["9", "9"], ["1e-07", "1e-7"], ["1e+21", "1e+21"], ["-0.0", "0"], ["inf", "Infinity"], ["-inf", "-Infinity"], ["nan", "NaN"], ["0.1", "0.1"], ["1_000", "1000"], [" 2.50 ", "2.5"]] as const) {
    assert.equal(canonicalKey("DOUBLE", t), want, `DOUBLE ${t}`);
  }
  assert.equal(canonicalKey("DOUBLE", "0x10"), null);
  assert.equal(canonicalKey("FLOAT", "0.1"), "0.1");
  assert.equal(canonicalKey("FLOAT", "16777217"), "16777216", "float32 has 24 bits");
  for (const [t, want] of [["9.00", "9"], ["9", "9"], ["9.5", "9.5"], ["-0.50", "-0.5"], ["-0.00", "0"], ["1e1", "10"], ["12.3e-1", "1.23"], [".5", "0.5"]] as const) {
    assert.equal(canonicalKey("DECIMAL(5,2)", t), want, `DECIMAL ${t}`);
  }
  for (const t of ["1.234", "10000", "abc", "inf", "1e5"]) assert.equal(canonicalKey("DECIMAL(5,2)", t), null, t);
  for (const [t, want] of [["true", "true"], ["T", "true"], ["yes", "true"], ["1", "true"], ["FALSE", "false"], ["n", "false"]] as const) assert.equal(canonicalKey("BOOLEAN", t), want);
  assert.equal(canonicalKey("BOOLEAN", "on"), null);
  assert.equal(canonicalKey("DATE", "2022-5-1"), "2022-05-01");
  assert.equal(canonicalKey("VARCHAR", " 9.0 "), " 9.0 ", "text is kept as it is");
  assert.equal(canonicalKey("TIMESTAMP", "2022-05-01T10:00:00.500Z"), "2022-05-01 10:00:00.5");
  assert.equal(canonicalKey("TIMESTAMP", "2022-05-01T10:00:00+02:00"), null, "offsets other than Z are not read");
  assert.equal(canonicalKey("TIME", " 10:00 "), " 10:00 ", "other types: the text as it is");
});

test("canonical keys against DuckDB: the key of DuckDB's text of a value casts back to that value, and JavaScript's text of a number gets the same key", async () => {
  const rng = new Rng(7);
  const doubles: number[] = [0, 1, -1, 9, 0.1, 1e-7, 1e21, 123456789.125, 2 ** 53, -(2 ** 60), 5e-324, 1.7976931348623157e308];
  for (let k = 0; k < 300; k++) doubles.push((rng.next() - 0.5) * 10 ** Math.floor(rng.next() * 40 - 20));
  for (let k = 0; k < 100; k++) doubles.push(Math.round((rng.next() - 0.5) * 2e6) / 100);
  const values = doubles.map((x) => `('${String(x)}')`).join(", ");
  const rows = await query(
    `SELECT t, CAST(t::DOUBLE AS VARCHAR) AS d, CAST(t::FLOAT AS VARCHAR) AS f, CAST(TRY_CAST(t AS DECIMAL(18,4)) AS VARCHAR) AS dec, CAST(TRY_CAST(t AS BIGINT) AS VARCHAR) AS i FROM (VALUES ${values}) v(t)`,
  );
  const back: string[] = [];
  rows.forEach((r, k) => {
    const x = doubles[k]!;
    const d = canonicalKey("DOUBLE", r.d as string);
    assert.equal(d, String(x), `DOUBLE: DuckDB's ${String(r.d)} -> ${String(d)}, JavaScript's ${String(x)}`);
    assert.equal(canonicalKey("DOUBLE", String(x)), d);
    back.push(`(${k}, '${r.d as string}', '${d}', 'DOUBLE')`);
    const f = canonicalKey("FLOAT", r.f as string);
    assert.ok(f !== null, `FLOAT ${String(r.f)} has a key`);
    assert.equal(canonicalKey("FLOAT", String(Math.fround(x))), f, `FLOAT ${String(r.f)}`);
    back.push(`(${k}, '${r.f as string}', '${f}', 'FLOAT')`);
    if (r.dec !== null) {
      const c = canonicalKey("DECIMAL(18,4)", r.dec as string);
      assert.ok(c !== null && !/e|\.$|\.\d*0$/.test(c), `DECIMAL ${String(r.dec)} -> ${String(c)}`);
      back.push(`(${k}, '${r.dec as string}', '${c}', 'DECIMAL(18,4)')`);
    }
    if (r.i !== null) assert.equal(canonicalKey("BIGINT", r.i as string), r.i);
  });
  // every canonical key casts back to exactly the value DuckDB wrote (so score's vocabulary, loaded from the keys, is unchanged)
  const check = await query(
    `SELECT count(*) FILTER (WHERE NOT (CASE ty WHEN 'DOUBLE' THEN a::DOUBLE = c::DOUBLE AND a::DOUBLE::VARCHAR = c::DOUBLE::VARCHAR WHEN 'FLOAT' THEN a::FLOAT::VARCHAR = c::FLOAT::VARCHAR ELSE a::DECIMAL(18,4) = c::DECIMAL(18,4) END)) AS bad, count(*) AS n FROM (VALUES ${back.join(", ")}) v(k, a, c, ty)`,
  );
  assert.equal(Number(check[0]!.bad), 0);
  assert.equal(Number(check[0]!.n), back.length);
  // dates and timestamps: the key of a text (a JavaScript Date's ISO text included) is DuckDB's text of its cast
  const times = ["2022-05-01", "2022-5-1", " 2022-05-01 ", "2022-05-01T10:00:00.000Z", "2022-05-01T10:00:00.500Z", "2022-05-01 10:00:00.123456", "2022-05-01 10:00:00.120", "2022-05-01T23:59:59Z", "2022-05-01 7:05:03", "2022-05-01T10:00", new Date(Date.UTC(2021, 11, 31, 23, 5, 6, 70)).toISOString()];
  const duck = await query(`SELECT t, TRY_CAST(t AS DATE)::VARCHAR AS d, TRY_CAST(t AS TIMESTAMP)::VARCHAR AS ts FROM (VALUES ${times.map((t) => `('${t}')`).join(", ")}) v(t)`);
  duck.forEach((r) => {
    assert.equal(canonicalKey("DATE", r.t as string), r.d, `DATE ${String(r.t)}`);
    assert.equal(canonicalKey("TIMESTAMP", r.t as string), r.ts, `TIMESTAMP ${String(r.t)}`);
  });
});

test("a vocabulary whose values clash once canonical (DOUBLE 0.0 and -0.0) is refused, naming the field and both values; distinct values never clash", () => {
  const err = (() => {
    try {
      canonicalVocab("prepared dataset d", "price", "DOUBLE", [["0.0", 1], ["-0.0", 2], ["1.0", 3]], { source: { column: "price_eur" } });
    } catch (e) {
      return e as Error;
    }
    return null;
  })();
  assert.ok(err instanceof DataError, "the clash is refused with a DataError");
  assert.match(err.message, /prepared dataset d: field "price" \(column "price_eur", DOUBLE\) has the vocabulary values "0\.0" and "-0\.0", which are the same DOUBLE value \(canonical key "0"\)/);
  const ok = canonicalVocab("d", "price", "DOUBLE", [["9.0", 1], ["0.5", 2], ["nan", 3]]);
  assert.deepEqual({ ...ok }, { "9": 1, "0.5": 2, NaN: 3 });
  assert.throws(() => canonicalVocab("d", "price", "DOUBLE", [["abc", 1]]), /field "price" \(DOUBLE\) has a vocabulary value "abc" that is not a DOUBLE value/);
  assert.throws(() => createEncoder(featuresWith({ "9.0": 1, "9": 2 }, "DOUBLE")), /field "f" has the keys "9" and "9\.0", which are the same DOUBLE value \(canonical key "9"\)/);
});

/** A minimal features.json with one categorical field `f` over column `c`. */
function featuresWith(ids: Record<string, number>, valueType: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    format: "mtlcraft-features",
    version: 1,
    oov: 0,
    spec: {},
    columns: { c: valueType },
    fields: [{ name: "f", input: "f", kind: "categorical", vocabSize: Math.max(0, ...Object.values(ids)) + 1, source: { column: "c" }, valueType, ids }],
    dense: [],
    denseInput: null,
    ...extra,
  };
}

// ---- the encoder against score ----------------------------------------------------------------

const root = tempDir("encoder");
let modelDir = "";

before(async () => {
  ({ modelDir } = await typedModel(root));
});

async function scoreIds(rows: Record<string, unknown>[]): Promise<{ ids: number[][][]; probs: number[][] }> {
  const m = await loadModel(modelDir);
  try {
    const out = await scoreRows(m, rows, { withIds: true, log: () => {} });
    const ids = m.features.fields.map((f) => out.map((o) => {
      const v = o[`id_${f.name}`];
      return Array.isArray(v) ? (v as number[]) : [v as number];
    }));
    return { ids, probs: m.features.tasks.map((t) => out.map((o) => o[t.output] as number)) };
  } finally {
    await m.close();
  }
}

function encoderIds(b: EncodedBatch, features: { fields: { multi?: { maxLen: number } }[] }): number[][][] {
  return features.fields.map((f, i) => {
    const L = f.multi?.maxLen ?? 1;
    return Array.from({ length: b.size }, (_, r) => {
      const row = Array.from(b.ids[i]!.subarray(r * L, (r + 1) * L));
      return f.multi ? row.filter((x) => x !== -1) : row;
    });
  });
}

test("exported keys are canonical: a DOUBLE 9.0 is \"9\", a DECIMAL 2.0 is \"2\", 1.5 stays \"1.5\"; text keys as they are", () => {
  const f = JSON.parse(readFileSync(join(modelDir, "features.json"), "utf8")) as { fields: { name: string; valueType?: string; ids?: Record<string, number> }[] };
  const by = (n: string) => f.fields.find((x) => x.name === n)!;
  assert.equal(by("price").valueType, "DOUBLE");
  assert.match(by("grade").valueType!, /^DECIMAL\(4,\s?1\)$/);
  assert.deepEqual(Object.keys(by("price").ids!).sort(), ["0.25", "11", "4.5", "7", "9"]);
  assert.deepEqual(Object.keys(by("grade").ids!).sort(), ["1.5", "10", "2", "3.5"]);
  assert.deepEqual(Object.keys(by("city").ids!).sort(), ["  Nice", "Lyon", "Paris", "__proto__", "constructor"]);
  for (const fl of f.fields) for (const k of Object.keys(fl.ids ?? {})) assert.equal(canonicalKey(fl.valueType && !["tags"].includes(fl.name) ? fl.valueType : "VARCHAR", k), k, `${fl.name}: ${k}`);
});

test("the encoder's ids are score's on hostile rows (numbers, numeric text, fractions, hex, NaN, prototype names, huge text), and its feeds give score's probabilities", async () => {
  const features = JSON.parse(readFileSync(join(modelDir, "features.json"), "utf8")) as { fields: { name: string; multi?: { maxLen: number } }[]; tasks: { output: string }[] };
  const rows = hostileRows();
  const enc = createEncoder(features);
  const b = enc.encode(rows);
  const want = await scoreIds(rows);
  const got = encoderIds(b, features);
  features.fields.forEach((f, i) => assert.deepEqual(got[i], want.ids[i], `field ${f.name}`));
  // the cases that matter: 9, "9", "9.0" are one price; "3", "3.0", " +003 " one user; 2 and "2.0" one grade
  const price = got[1]!;
  assert.ok(price[0]![0]! > 0, "price 9 is known");
  for (const r of [12, 13, 14]) assert.deepEqual(price[r], price[0], `price row ${r}`);
  for (const r of [1, 2, 3]) assert.deepEqual(got[0]![r], got[0]![0], `user row ${r}`);
  for (const r of [4, 5, 6, 7, 8, 9]) assert.deepEqual(got[0]![r], [0], `user row ${r} is OOV`);
  assert.deepEqual(got[2]![20], got[2]![0]);
  assert.deepEqual(got[2]![21], got[2]![0]);
  assert.ok(got[3]![25]![0]! > 0 && got[3]![26]![0]! > 0, "__proto__ and constructor are ordinary city values");
  assert.deepEqual(got[3]![27], [0], "toString is no city (no prototype property matched)");
  assert.ok(b.problems.some((p) => /^column "user_id": \d+ rows have a value that is not a value of type (BIGINT|INTEGER), first at row 4/.test(p)), b.problems.join("\n"));
  const session = await ort.InferenceSession.create(join(modelDir, "model.onnx"));
  try {
    const out = await session.run(toFeeds(b, ort.Tensor));
    features.tasks.forEach((t, k) => {
      const p = out[t.output]!.data as Float32Array;
      for (let r = 0; r < rows.length; r++) assert.ok(Math.abs(p[r]! - want.probs[k]![r]!) <= 1e-6, `${t.output} row ${r}`);
    });
  } finally {
    await session.release();
  }
  assert.equal(({} as Record<string, unknown>).polluted, undefined);
});

test("an older features.json with DuckDB's keys (\"9.0\", \"2.0\") is canonicalised on load: score and the encoder give the ids of the new form", async () => {
  const old = join(root, "old-model");
  cpSync(modelDir, old, { recursive: true });
  const path = join(old, "features.json");
  const f = JSON.parse(readFileSync(path, "utf8")) as { fields: { name: string; ids?: Record<string, number> }[] };
  const duck = (k: string, dec: boolean): string => (dec ? (k.includes(".") ? k : `${k}.0`) : k.includes(".") || k.includes("e") ? k : `${k}.0`);
  for (const fl of f.fields) {
    if (fl.name !== "price" && fl.name !== "grade") continue;
    fl.ids = Object.fromEntries(Object.entries(fl.ids!).map(([k, v]) => [duck(k, fl.name === "grade"), v]));
  }
  assert.ok(Object.hasOwn(f.fields[1]!.ids!, "9.0"), "the old form");
  const bytes = Buffer.from(JSON.stringify(f));
  writeFileSync(path, bytes);
  const sums = JSON.parse(readFileSync(join(old, "checksums.json"), "utf8")) as { sha256: Record<string, string> };
  sums.sha256["features.json"] = createHash("sha256").update(bytes).digest("hex");
  writeFileSync(join(old, "checksums.json"), JSON.stringify(sums));
  const loaded = readFeatures(path);
  assert.equal(loaded.fields[1]!.ids!["9"], f.fields[1]!.ids!["9.0"]);
  assert.equal(Object.hasOwn(loaded.fields[1]!.ids!, "9.0"), false);
  const rows = hostileRows();
  const m = await loadModel(old);
  let oldIds: unknown[];
  try {
    oldIds = (await scoreRows(m, rows, { withIds: true, log: () => {} })).map((o) => [o.id_price, o.id_grade]);
  } finally {
    await m.close();
  }
  const now = await scoreIds(rows);
  assert.deepEqual(oldIds, rows.map((_, r) => [now.ids[1]![r]![0], now.ids[2]![r]![0]]));
  const b = createEncoder(f).encode(rows);
  assert.deepEqual(encoderIds(b, f as never)[1], now.ids[1]);
});

// ---- hostile inputs ---------------------------------------------------------------------------

test("hostile features.json: __proto__ / constructor keys are ordinary values, nothing is polluted, bad shapes are refused naming the key", () => {
  const text = '{"format":"mtlcraft-features","version":1,"oov":0,"spec":{},"columns":{"c":"VARCHAR"},"dense":[],"denseInput":null,' +
    '"fields":[{"name":"f","input":"f","kind":"categorical","vocabSize":4,"source":{"column":"c"},"valueType":"VARCHAR","ids":{"__proto__":1,"constructor":2,"hasOwnProperty":3}}],"__proto__":{"polluted":1}}';
  const enc = createEncoder(JSON.parse(text));
  const rows = [{ c: "__proto__" }, { c: "constructor" }, { c: "hasOwnProperty" }, { c: "toString" }, { c: "valueOf" }, Object.create(null) as Record<string, unknown>, JSON.parse('{"__proto__":"constructor"}') as Record<string, unknown>];
  // a row whose only column is inherited (not own) has no column c
  const inherited = Object.create({ c: "constructor" }) as Record<string, unknown>;
  const b = enc.encode([...rows, inherited]);
  assert.deepEqual(Array.from(b.ids[0]!), [1, 2, 3, 0, 0, 0, 0, 0]);
  assert.equal((Object.prototype as Record<string, unknown>).polluted, undefined);
  assert.equal(({} as Record<string, unknown>).polluted, undefined);
  assert.equal(Object.getPrototypeOf(b.inputs), null, "the feeds map has no prototype to match");
  assert.throws(() => enc.encode([inherited]), /no row has column "c"/);
  const bad: [unknown, RegExp][] = [
    [null, /the file must be an object/],
    [{ format: "x" }, /format must be "mtlcraft-features"/],
    [featuresWith({ a: 0 }, "VARCHAR"), /outside 1\.\./],
    [featuresWith({ a: 1 }, "VARCHAR", { fields: [{ name: "f", input: "f", kind: "categorical", vocabSize: 2, source: { column: "c", expr: "1" }, ids: {} }] }), /fields\[0\]\.source must have exactly one/],
    [featuresWith({ a: 1 }, "VARCHAR", { fields: [{ name: "f", input: "f", kind: "numeric", vocabSize: 2, source: { column: "c" }, boundaries: ["1"] }] }), /fields\[0\]\.boundaries must be a list of finite numbers/],
    [featuresWith({ a: 1 }, "VARCHAR", { fields: [{ name: "f", input: "f", kind: "categorical", vocabSize: 2, source: { column: "c" }, ids: [1] }] }), /fields\[0\]\.ids must be an object/],
    [featuresWith({ a: 1 }, "VARCHAR", { dense: [{ name: "d", source: { column: "x" }, log1p: false, mean: 0, std: 1 }] }), /denseInput is null, but 1 dense inputs/],
  ];
  for (const [f, re] of bad) assert.throws(() => createEncoder(f), re);
});

test("an expression field needs a derive function (the error quotes the expression); with one, its value is encoded by the field's type", () => {
  const f = featuresWith({ 13: 1, 7: 2 }, "BIGINT", {
    fields: [{ name: "hour", input: "hour", kind: "categorical", vocabSize: 3, source: { expr: "hourmin // 100" }, valueType: "BIGINT", ids: { 13: 1, 7: 2 } }],
  });
  assert.throws(() => createEncoder(f), /field "hour" \("hourmin \/\/ 100"\) is a SQL expression .* derive/);
  const enc = createEncoder(f, { derive: { hour: (r) => Math.trunc(Number(r.hourmin) / 100) } });
  assert.deepEqual(Array.from(enc.encode([{ hourmin: 1305 }, { hourmin: 700 }, { hourmin: 2359 }]).ids[0]!), [1, 2, 0]);
  // derive must be an own property: an inherited "constructor" function is not a derive function
  assert.throws(() => createEncoder(featuresWith({}, "BIGINT", { fields: [{ name: "constructor", input: "x", kind: "categorical", vocabSize: 1, source: { expr: "1" }, valueType: "BIGINT", ids: {} }] }), { derive: {} }), /is a SQL expression/);
});

test("rows that are not objects are refused with the row number; wrong value types are missing; a huge string is looked up without trouble", () => {
  const enc = createEncoder(featuresWith({ 9: 1, 10: 2 }, "DOUBLE"));
  assert.throws(() => enc.encode([{ c: 9 }, null as never]), /row 1 is not an object/);
  assert.throws(() => enc.encode([[9] as never]), /row 0 is not an object/);
  assert.throws(() => enc.encode("rows" as never), /rows must be an array/);
  const b = enc.encode([{ c: 9 }, { c: "9.0" }, { c: "1e1" }, { c: { valueOf: () => 9 } }, { c: [9] }, { c: () => 9 }, { c: Symbol("9") }, { c: new Date(NaN) }, { c: "9".repeat(1_000_000) }, { c: NaN }]);
  assert.deepEqual(Array.from(b.ids[0]!), [1, 1, 2, 0, 0, 0, 0, 0, 0, 0]);
  assert.deepEqual(b.inputs.f!.dims, [10]);
  assert.equal(b.inputs.f!.type, "int64");
  assert.ok(b.inputs.f!.data instanceof BigInt64Array, "int64 ids are a BigInt64Array");
});
