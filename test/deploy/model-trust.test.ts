/**
 * A model folder is untrusted input (SECURITY.md; issue #19, class 1). Each test crafts a hostile
 * folder from a real export of a tiny model: it edits the bytes (model.onnx decoded with
 * onnx-proto, edited, re-encoded; features.json or fusion.json rewritten; links made) and then
 * recomputes checksums.json, as an attacker would, so that only the guard under test can catch it:
 * - no tensor stored as external data, wherever it is (a secret file never reaches the model);
 * - no protobuf fields the reader cannot see;
 * - graph inputs and outputs as features.json says (names, dtypes, shapes);
 * - every output of every batch float32, one value per row, finite and in [0, 1];
 * - side tables and the folder's own files: plain names, checksummed, real paths inside the folder;
 * - features.json and fusion.json: every key known, exact JSON types; fusion.json covered by
 *   checksums.json (`fuse` writes both).
 */
import { before, test } from "node:test";
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { cpSync, existsSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";
import onnxProto from "onnx-proto";
import { exportModel } from "../../src/deploy/export.ts";
import { fusionFromJson } from "../../src/deploy/fusion.ts";
import { fuseModel } from "../../src/deploy/fuse.ts";
import { loadModel, saveFusionFile, type IdBatch } from "../../src/deploy/model.ts";
import { scoreFile } from "../../src/deploy/score.ts";
import { runTraining } from "../../src/train/run.ts";
import { writeTinyDataset } from "../train/tiny-data.ts";
import { tempDir } from "../data/helpers.ts";

const { onnx } = onnxProto;
type ModelProto = InstanceType<typeof onnx.ModelProto>;

const root = tempDir("model-trust");
const good = join(root, "model");
let logCsv = "";
let copies = 0;

before(async () => {
  const spec = writeTinyDataset(join(root, "data"), { rows: 600 });
  logCsv = join(root, "data", "log.csv");
  await runTraining(
    { dataset: spec, cacheDir: join(root, "cache"), model: "mmoe", embDim: 4, method: "ew", seed: 1, epochs: 1, maxSteps: 3, evalEvery: 3, batchSize: 128, patience: 0, out: join(root, "run.json") },
  );
  await exportModel({ source: join(root, "run.json"), out: good, cacheDir: join(root, "cache") });
});

const sha = (b: Uint8Array): string => createHash("sha256").update(b).digest("hex");

/** A fresh copy of the good model folder. */
function copy(): string {
  const d = join(root, `m${++copies}`);
  cpSync(good, d, { recursive: true });
  return d;
}

/** Recomputes checksums.json over the files it lists plus `add` (what an attacker can always do). */
function resum(dir: string, add: string[] = []): void {
  const p = join(dir, "checksums.json");
  const sums = JSON.parse(readFileSync(p, "utf8")) as { format: string; sha256: Record<string, string> };
  for (const f of [...Object.keys(sums.sha256), ...add]) sums.sha256[f] = sha(readFileSync(join(dir, f)));
  writeFileSync(p, JSON.stringify(sums));
}

function readOnnx(dir: string): ModelProto {
  return onnx.ModelProto.decode(readFileSync(join(dir, "model.onnx")));
}

function writeOnnx(dir: string, m: ModelProto | Uint8Array): void {
  writeFileSync(join(dir, "model.onnx"), m instanceof Uint8Array ? m : onnx.ModelProto.encode(m).finish());
  resum(dir);
}

function editJson(dir: string, file: string, edit: (x: Record<string, unknown>) => void): void {
  const x = JSON.parse(readFileSync(join(dir, file), "utf8")) as Record<string, unknown>;
  edit(x);
  writeFileSync(join(dir, file), JSON.stringify(x));
  resum(dir);
}

const f32 = (...v: number[]): Uint8Array => new Uint8Array(Float32Array.from(v).buffer);
const i64 = (...v: number[]): Uint8Array => new Uint8Array(BigInt64Array.from(v.map(BigInt)).buffer);

/** A tensor stored as external data: `location` (relative to the current directory, as onnxruntime resolves it for a model loaded from bytes). */
function externalize(t: onnxProto.onnx.ITensorProto, location: string, length: number): void {
  t.rawData = new Uint8Array(0);
  t.dataLocation = onnx.TensorProto.DataLocation.EXTERNAL;
  t.externalData = [onnx.StringStringEntryProto.create({ key: "location", value: location }), onnx.StringStringEntryProto.create({ key: "length", value: String(length) })];
}

/**
 * Rewires output `name`: the node that produced it now produces `${name}_raw`, and `wire` adds
 * the nodes (and initializers) that compute `name` from it.
 */
function rewire(m: ModelProto, name: string, wire: (raw: string) => { nodes: object[]; inits?: object[] }): void {
  const g = m.graph!;
  const prod = g.node!.find((n) => n.output!.includes(name))!;
  prod.output = prod.output!.map((o) => (o === name ? `${name}_raw` : o));
  const w = wire(`${name}_raw`);
  g.node!.push(...w.nodes.map((n) => onnx.NodeProto.create(n)));
  g.initializer!.push(...(w.inits ?? []).map((t) => onnx.TensorProto.create(t)));
}

/** A batch of `n` rows of ids (user, item): row r gets user (r % 5) + 1, item 1; `userAt` sets a user id at given rows. */
function batchOf(n: number, userAt: Record<number, number> = {}): IdBatch {
  const user = Int32Array.from({ length: n }, (_, r) => userAt[r] ?? (r % 5) + 1);
  return { size: n, fields: [user, new Int32Array(n).fill(1)] };
}

test("model.onnx with a tensor stored as external data (a secret file) is refused before onnxruntime opens it, wherever the tensor is; the secret never appears", async () => {
  const secretText = `SECRET-${randomBytes(12).toString("hex")}`;
  const secretDir = tempDir("model-trust-secret");
  const secret = join(secretDir, ".env.secret");
  writeFileSync(secret, secretText.repeat(400)); // long enough for any tensor of the tiny model
  const loc = relative(process.cwd(), secret);
  const out = join(root, "secret-scores.csv");
  const places: Record<string, (m: ModelProto) => string> = {
    "graph initializer": (m) => {
      const t = m.graph!.initializer![0]!;
      externalize(t, loc, t.rawData!.length);
      return t.name!;
    },
    "sparse initializer": (m) => {
      const values = onnx.TensorProto.create({ name: "sp", dataType: 1, dims: [1] });
      externalize(values, loc, 4);
      m.graph!.sparseInitializer!.push(onnx.SparseTensorProto.create({ values, indices: onnx.TensorProto.create({ name: "sp_i", dataType: 7, dims: [1, 1], rawData: i64(0) }), dims: [4] }));
      return "sp";
    },
    "Constant node attribute": (m) => {
      // the first initializer becomes a Constant node holding the (external) tensor
      const t = m.graph!.initializer!.shift()!;
      externalize(t, loc, t.rawData!.length);
      m.graph!.node!.unshift(onnx.NodeProto.create({ opType: "Constant", output: [t.name!], name: "const0", attribute: [{ name: "value", type: onnx.AttributeProto.AttributeType.TENSOR, t }] }));
      return t.name!;
    },
    "If subgraph": (m) => {
      const inner = onnx.TensorProto.create({ name: "inner", dataType: 1, dims: [1] });
      externalize(inner, loc, 4);
      const branch = (n: string) => onnx.GraphProto.create({ name: n, node: [{ opType: "Identity", input: ["inner"], output: [`${n}_o`] }], initializer: n === "then" ? [inner] : [onnx.TensorProto.create({ name: "inner", dataType: 1, dims: [1], rawData: f32(0) })], output: [{ name: `${n}_o`, type: { tensorType: { elemType: 1, shape: { dim: [{ dimValue: 1 }] } } } }] });
      m.graph!.initializer!.push(onnx.TensorProto.create({ name: "cond", dataType: 9, dims: [], rawData: new Uint8Array([1]) }));
      m.graph!.node!.push(onnx.NodeProto.create({ opType: "If", input: ["cond"], output: ["if_out"], name: "if0", attribute: [{ name: "then_branch", type: onnx.AttributeProto.AttributeType.GRAPH, g: branch("then") }, { name: "else_branch", type: onnx.AttributeProto.AttributeType.GRAPH, g: branch("else") }] }));
      return "inner";
    },
    "function body": (m) => {
      const t = onnx.TensorProto.create({ name: "fconst", dataType: 1, dims: [1] });
      externalize(t, loc, 4);
      m.functions = [onnx.FunctionProto.create({ name: "leak", domain: "evil", input: [], output: ["y"], node: [{ opType: "Constant", output: ["y"], attribute: [{ name: "value", type: onnx.AttributeProto.AttributeType.TENSOR, t }] }], opsetImport: [{ domain: "", version: 13 }] })];
      return "fconst";
    },
  };
  for (const [where, edit] of Object.entries(places)) {
    const dir = copy();
    const m = readOnnx(dir);
    const tensor = edit(m);
    writeOnnx(dir, m);
    let msg = "";
    await assert.rejects(loadModel(dir), (e: unknown) => {
      msg = (e as Error).message;
      return /is stored as external data/.test(msg) && msg.includes(JSON.stringify(tensor)) && msg.includes("model.onnx");
    }, where);
    assert.ok(!msg.includes("SECRET-"), `${where}: the message quotes the secret`);
    // the command line path: nothing written, the secret nowhere
    await assert.rejects(scoreFile(dir, logCsv, out), /is stored as external data/, where);
    assert.equal(existsSync(out), false, where);
  }
  assert.deepEqual(readdirSync(root).filter((f) => f.startsWith(".") || f.includes("secret")), []);
});

test("model.onnx with protobuf fields the reader cannot see (where onnxruntime might find tensors) is refused", async () => {
  const dir = copy();
  const bytes = readFileSync(join(dir, "model.onnx"));
  // field 99, length-delimited, 4 bytes (tag varint 0x9a 0x06): unknown to onnx-proto's schema, skipped by its decoder
  const tag = Buffer.from([0x9a, 0x06, 4, 1, 2, 3, 4]);
  writeOnnx(dir, Buffer.concat([bytes, tag]));
  await assert.rejects(loadModel(dir), /7 bytes of the file are protobuf fields mtlcraft's ONNX reader does not know/);
});

test("graph inputs and outputs must be those features.json describes: dtype, shape, no extra required input", async () => {
  const cases: { what: string; edit: (m: ModelProto) => void; want: RegExp }[] = [
    {
      what: "an output declared int64 (with a Cast to int64)",
      edit: (m) => {
        rewire(m, "p_click", (raw) => ({ nodes: [{ opType: "Cast", input: [raw], output: ["p_click"], attribute: [{ name: "to", type: onnx.AttributeProto.AttributeType.INT, i: 7 }] }] }));
        m.graph!.output![0]!.type!.tensorType!.elemType = 7;
      },
      want: /output "p_click" \(task "click"\) is int64 \[batch\], expected float32 \[batch\]/,
    },
    {
      what: "an output of shape [batch, 1]",
      edit: (m) => {
        m.graph!.output![1]!.type!.tensorType!.shape!.dim!.push(onnx.TensorShapeProto.Dimension.create({ dimValue: 1 }));
      },
      want: /output "p_like" \(task "like"\) is float32 \[batch, 1\], expected float32 \[batch\]/,
    },
    {
      what: "a field input declared int32",
      edit: (m) => {
        m.graph!.input![0]!.type!.tensorType!.elemType = 6;
      },
      want: /input "user_id" \(field "user_id"\) is int32 \[batch\], expected int64 \[batch\]/,
    },
    {
      what: "a missing output",
      edit: (m) => {
        m.graph!.output![0]!.name = "p_other";
        m.graph!.node!.find((n) => n.output!.includes("p_click"))!.output = ["p_other"];
      },
      want: /has no output "p_click" \(task "click" in features\.json; expected float32 \[batch\]\)/,
    },
    {
      what: "an extra required input",
      edit: (m) => {
        m.graph!.input!.push(onnx.ValueInfoProto.create({ name: "extra", type: { tensorType: { elemType: 1, shape: { dim: [{ dimParam: "batch" }] } } } }));
      },
      want: /has an input "extra" that features\.json does not feed/,
    },
  ];
  for (const c of cases) {
    const dir = copy();
    const m = readOnnx(dir);
    c.edit(m);
    writeOnnx(dir, m);
    await assert.rejects(loadModel(dir), c.want, c.what);
  }
});

test("outputs are checked after every batch: 49.1, NaN, a negative value or a wrong length is an error naming the output and the row", async () => {
  const scaled = (factor: number) => (m: ModelProto) =>
    rewire(m, "p_click", (raw) => ({ nodes: [{ opType: "Mul", input: [raw, "k"], output: ["p_click"] }], inits: [{ name: "k", dataType: 1, dims: [], rawData: f32(factor) }] }));
  // NaN only where user_id == 4 (a row the test chooses)
  const nanAt = (m: ModelProto) =>
    rewire(m, "p_like", (raw) => ({
      nodes: [
        { opType: "Equal", input: ["user_id", "four"], output: ["is4"] },
        { opType: "Where", input: ["is4", "nan", raw], output: ["p_like"] },
      ],
      inits: [
        { name: "four", dataType: 7, dims: [], rawData: i64(4) },
        { name: "nan", dataType: 1, dims: [], rawData: f32(NaN) },
      ],
    }));
  const doubled = (m: ModelProto) => rewire(m, "p_click", (raw) => ({ nodes: [{ opType: "Concat", input: [raw, raw], output: ["p_click"], attribute: [{ name: "axis", type: onnx.AttributeProto.AttributeType.INT, i: 0 }] }] }));
  const build = (edit: (m: ModelProto) => void): string => {
    const dir = copy();
    const m = readOnnx(dir);
    edit(m);
    writeOnnx(dir, m);
    return dir;
  };
  // 49.1 x p: every row above 1, first the row 0 of the input; through score, nothing is written
  const big = build(scaled(49.1));
  const out = join(root, "big-scores.csv");
  await assert.rejects(scoreFile(big, logCsv, out, { batchSize: 100 }), /output "p_click" is greater than 1 at row 0 \(0-based, counted from the first row of the input\)/);
  assert.equal(existsSync(out), false);
  const m1 = await loadModel(big);
  await assert.rejects(m1.predict(batchOf(7), 300), /output "p_click" is greater than 1 at row 300 \(0-based, counted from the first row of the input\)/);
  await m1.close();
  const neg = await loadModel(build(scaled(-1)));
  await assert.rejects(neg.predict(batchOf(5)), /output "p_click" is less than 0 at row 0 of the batch/);
  await neg.close();
  // NaN in row 5 of a batch that starts at input row 4096: row 4101
  const nan = await loadModel(build(nanAt));
  const ok = await nan.predict(batchOf(10, { 3: 2, 8: 2 }), 0); // no user 4 in this batch: fine
  assert.equal(ok.length, 2);
  await assert.rejects(nan.predict(batchOf(10, { 3: 1, 8: 1, 5: 4 }), 4096), /output "p_like" is NaN at row 4101 \(0-based/);
  await nan.close();
  // twice as many values as rows (declared [batch]): refused, not read past
  const dbl = await loadModel(build(doubled));
  await assert.rejects(dbl.predict(batchOf(6)), /output "p_click" has shape \[12\] for a batch of 6 rows, expected \[6\]/);
  await dbl.close();
  // the good model passes the same check
  const m = await loadModel(good);
  const p = await m.predict(batchOf(6), 0);
  assert.ok(p.every((x) => x.length === 6 && x.every((v) => v >= 0 && v <= 1)));
  await m.close();
});

test("side tables and the folder's files: plain names, listed in checksums.json, real paths inside the folder; links out are refused", async () => {
  const outside = tempDir("model-trust-outside");
  const parquet = join(outside, "x.parquet");
  writeFileSync(parquet, "PAR1 not really");
  // ../x.parquet (and an absolute path, a hidden file): refused by features.json's schema, naming the key
  for (const file of ["../x.parquet", parquet, ".hidden.parquet", "sub/x.parquet"]) {
    const dir = copy();
    editJson(dir, "features.json", (f) => (f.sides = [{ file, on: "item_id", columns: ["item_cat"] }]));
    await assert.rejects(loadModel(dir), /features\.json: sides\[0\]\.file must be a plain file name inside the model folder/, file);
  }
  // a plain name that is a link to a file outside, listed in checksums.json with the outside file's checksum
  const dir = copy();
  symlinkSync(parquet, join(dir, "side_0.parquet"));
  editJson(dir, "features.json", (f) => (f.sides = [{ file: "side_0.parquet", on: "item_id", columns: ["item_cat"] }]));
  resum(dir, ["side_0.parquet"]);
  await assert.rejects(loadModel(dir), /side_0\.parquet is a link to a file outside the model folder/);
  // a plain name not listed in checksums.json
  const dir2 = copy();
  writeFileSync(join(dir2, "side_0.parquet"), "PAR1");
  editJson(dir2, "features.json", (f) => (f.sides = [{ file: "side_0.parquet", on: "item_id", columns: ["item_cat"] }]));
  await assert.rejects(loadModel(dir2), /sides\[0\]\.file names "side_0\.parquet", which checksums\.json does not list/);
  // model.onnx and checksums.json as links out of the folder (content and checksums intact)
  const dir3 = copy();
  cpSync(join(good, "model.onnx"), join(outside, "model.onnx"));
  rmSync(join(dir3, "model.onnx"));
  symlinkSync(join(outside, "model.onnx"), join(dir3, "model.onnx"));
  await assert.rejects(loadModel(dir3), /model\.onnx is a link to a file outside the model folder/);
  const dir4 = copy();
  cpSync(join(good, "checksums.json"), join(outside, "checksums.json"));
  rmSync(join(dir4, "checksums.json"));
  symlinkSync(join(outside, "checksums.json"), join(dir4, "checksums.json"));
  await assert.rejects(loadModel(dir4), /checksums\.json is a link to a file outside the model folder/);
  // a link that stays inside the folder is fine
  const dir5 = copy();
  cpSync(join(good, "features.json"), join(dir5, "features-real.json"));
  rmSync(join(dir5, "features.json"));
  symlinkSync("features-real.json", join(dir5, "features.json"));
  const m = await loadModel(dir5);
  await m.close();
});

test("features.json: every key known (with a suggestion), exact JSON types", async () => {
  const cases: { edit: (f: Record<string, unknown>) => void; want: RegExp }[] = [
    { edit: (f) => (f.sidez = []), want: /features\.json: sidez is not a known key; did you mean "sides"\?/ },
    { edit: (f) => ((f.fields as Record<string, unknown>[])[0]!.vocabSize = "12"), want: /features\.json: fields\[0\]\.vocabSize must be an integer >= 1, got a string/ },
    { edit: (f) => ((f.fields as Record<string, unknown>[])[1]!.mullti = { separator: ",", maxLen: 2, pooling: "mean", padding: -1 }), want: /fields\[1\]\.mullti is not a known key; did you mean "multi"\?/ },
    { edit: (f) => ((f.tasks as Record<string, unknown>[])[0]!.output = true), want: /tasks\[0\]\.output must be a string, got a boolean/ },
    { edit: (f) => ((f.spec as Record<string, unknown>).logg = ["x.csv"]), want: /features\.json: spec \(the dataset spec\) is invalid: logg is not a known key; did you mean "log"\?/ },
    { edit: (f) => ((f.fields as Record<string, unknown>[])[0]!.ids = { "1": [5] }), want: /fields\[0\]\.ids\["1"\] must be an integer >= 1, got an array/ },
  ];
  for (const c of cases) {
    const dir = copy();
    editJson(dir, "features.json", c.edit);
    await assert.rejects(loadModel(dir), c.want);
  }
});

test("fusion.json: weights are JSON numbers >= 0 (true, [5], \"0x10\" refused naming the key), keys are known, and it must be covered by checksums.json", async () => {
  const base = { kind: "sum", weights: { click: 1, like: 0.5 } };
  // fusionFromJson itself (behind the file's schema) converts nothing
  for (const bad of [true, [5], "0x10", -2]) assert.throws(() => fusionFromJson({ kind: "sum", weights: { click: bad } }, ["click", "like"], "f.json"), /f\.json: weights\.click must be a JSON number >= 0/, JSON.stringify(bad));
  assert.throws(() => fusionFromJson({ kind: "sum", weights: { clik: 1 } }, ["click", "like"], "f.json"), /unknown task "clik".*did you mean "click"\?/);
  for (const [bad, got] of [[true, "a boolean"], [[5], "an array"], ["0x10", "a string"], [-1, ""], [null, "null"]] as const) {
    const dir = copy();
    writeFileSync(join(dir, "fusion.json"), JSON.stringify({ ...base, weights: { click: bad, like: 1 } }));
    resum(dir, ["fusion.json"]);
    await assert.rejects(loadModel(dir), (e: unknown) => /fusion\.json: weights\.click must be a JSON number >= 0/.test((e as Error).message) && (e as Error).message.includes(got), String(bad));
  }
  const dir = copy();
  writeFileSync(join(dir, "fusion.json"), JSON.stringify({ ...base, weigths: {} }));
  resum(dir, ["fusion.json"]);
  await assert.rejects(loadModel(dir), /fusion\.json: weigths is not a known key; did you mean "weights"\?/);
  // the informational keys are typed too (score never reads them; the schema alone checks them)
  writeFileSync(join(dir, "fusion.json"), JSON.stringify({ ...base, taskWeights: { click: "1" } }));
  resum(dir, ["fusion.json"]);
  await assert.rejects(loadModel(dir), /fusion\.json: taskWeights\.click must be a JSON number >= 0, got a string/);
  // not covered by checksums.json, then covered but edited afterwards
  const dir2 = copy();
  writeFileSync(join(dir2, "fusion.json"), JSON.stringify(base));
  await assert.rejects(loadModel(dir2), /fusion\.json is not covered by checksums\.json .*run `mtlcraft fuse` again/);
  saveFusionFile(dir2, JSON.stringify(base));
  const m = await loadModel(dir2);
  assert.equal(m.fusionSource, "fusion.json");
  assert.deepEqual(m.fusion, { kind: "sum", weights: [1, 0.5] });
  await m.close();
  assert.deepEqual(readdirSync(dir2).filter((f) => f.startsWith(".")), [], "no temporary files left");
  writeFileSync(join(dir2, "fusion.json"), JSON.stringify({ ...base, weights: { click: 1, like: 50 } }));
  await assert.rejects(loadModel(dir2), /fusion\.json is corrupt \(sha256 .*delete fusion\.json, or run `mtlcraft fuse` again \(it replaces the file\)/);
  // a fusion.json that cannot be used never locks the user out: with --fusion it is not read, and fuse replaces it
  const given = await loadModel(dir2, { ignoreFusion: true });
  assert.equal(given.fusionSource, "default");
  await given.close();
  const r = await fuseModel(dir2, { dataset: join(root, "data", "tiny.json"), cacheDir: join(root, "cache"), samples: 2, rounds: 0 });
  assert.ok(r.saved, "fuse saved its weights");
  const fused = await loadModel(dir2);
  assert.equal(fused.fusionSource, "fusion.json");
  await fused.close();
});

test("time zone: an export records its zone; an older export (no zone) whose features could depend on one is refused, one that cannot still loads", async () => {
  const f = JSON.parse(readFileSync(join(good, "features.json"), "utf8")) as { timezone?: string; columns: Record<string, string> };
  assert.equal(f.timezone, "UTC", "a new export records the zone its features were computed in");
  // an export from before the zone was fixed, of a dataset with nothing zone-dependent: still scored
  const plain = copy();
  editJson(plain, "features.json", (x) => delete x.timezone);
  const m = await loadModel(plain);
  await m.close();
  // the same with a zone-aware log column (or an expression, a side table): refused, saying what to do
  const zoned = copy();
  editJson(zoned, "features.json", (x) => {
    delete x.timezone;
    const cols = x.columns as Record<string, string>;
    cols[Object.keys(cols)[0]!] = "TIMESTAMP WITH TIME ZONE";
  });
  await assert.rejects(loadModel(zoned), /was exported by an mtlcraft that computed derived features .* in the machine's time zone.*Retrain and export it with this version/);
  // a recorded zone that is not the spec's
  const other = copy();
  editJson(other, "features.json", (x) => (x.timezone = "Asia/Tokyo"));
  await assert.rejects(loadModel(other), /features were computed in time zone "Asia\/Tokyo", but its spec's zone is "UTC"/);
});
