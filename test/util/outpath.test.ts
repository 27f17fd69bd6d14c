/**
 * Output paths never destroy good data (src/util/outpath.ts, the writers of src/util/fsx.ts):
 * real paths (symlinks, hard links, missing tails), mtlcraft folders recognised by their own
 * files, outputs refused over inputs, inside mtlcraft folders and over anything of another kind
 * (devices, FIFOs, sockets, folders), and symlinked outputs written through, the link kept.
 * Each hostile input is made here, in a temp folder.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { linkSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, realpathSync, symlinkSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { checkOutput, folderKind, realTarget } from "../../src/util/outpath.ts";
import { AtomicLineWriter, checkWritable, writeDirAtomic, writeFileAtomic } from "../../src/util/fsx.ts";
import { saveCheckpoint } from "../../src/train/checkpoint.ts";
import { tempDir } from "../data/helpers.ts";

function mkfifo(path: string): void {
  const r = spawnSync("mkfifo", [path]);
  assert.equal(r.status, 0, `mkfifo ${path}: ${String(r.stderr)}`);
}

test("realTarget follows symlinks (dangling ones too) and resolves a missing path through its nearest existing ancestor", () => {
  const root = realpathSync(tempDir("outpath-real"));
  mkdirSync(join(root, "real"));
  symlinkSync(join(root, "real"), join(root, "link"));
  assert.equal(realTarget(join(root, "link")), join(root, "real"));
  assert.equal(realTarget(join(root, "link", "a", "b.json")), join(root, "real", "a", "b.json"));
  assert.equal(realTarget(join(root, "link", "..", "x")), join(root, "x"), "resolved lexically first, as the shell does");
  symlinkSync("nowhere/f.csv", join(root, "dangling"));
  assert.equal(realTarget(join(root, "dangling")), join(root, "nowhere", "f.csv"));
});

test("folderKind recognises checkpoints, artefacts and prepared datasets by their files, and nothing else", () => {
  const root = tempDir("outpath-kind");
  saveCheckpoint(join(root, "ck"), { json: { fingerprint: { model: "m" } }, tensors: { model: { w: new Float32Array(2) } } });
  saveCheckpoint(join(root, "run.model"), { json: { artifact: { format: "mtlcraft-model-1" } }, tensors: { params: { w: new Float32Array(2) } } });
  mkdirSync(join(root, "ds"));
  writeFileSync(join(root, "ds", "manifest.json"), JSON.stringify({ format: "mtlcraft-dataset", version: 4 }));
  mkdirSync(join(root, "web"));
  writeFileSync(join(root, "web", "manifest.json"), JSON.stringify({ name: "a web app" }));
  writeFileSync(join(root, "web", "checksums.json"), "not json");
  assert.equal(folderKind(join(root, "ck")), "checkpoint");
  assert.equal(folderKind(join(root, "run.model")), "artifact");
  assert.equal(folderKind(join(root, "ds")), "dataset");
  assert.equal(folderKind(join(root, "web")), null, "foreign files of the same names are not mtlcraft folders");
  assert.equal(folderKind(join(root, "missing")), null);
});

test("checkOutput refuses devices, FIFOs and sockets, a folder where a file goes, and names the option, the path and why", async () => {
  const root = tempDir("outpath-types");
  const fifo = join(root, "r.json");
  mkfifo(fifo);
  assert.throws(() => checkOutput("--out", fifo, "file"), new RegExp(`^Error: --out ${fifo} is a FIFO \\(named pipe\\), not a regular file; refusing to replace it`));
  assert.throws(() => checkOutput("--out", "/dev/null", "file"), /^Error: --out \/dev\/null is a character device, not a regular file; refusing to replace it/);
  assert.throws(() => checkOutput("--checkpoint", "/dev/null", "checkpoint"), /--checkpoint \/dev\/null is a character device/);
  // through a symlink: the message shows where it points
  symlinkSync("/dev/null", join(root, "null.json"));
  assert.throws(() => checkOutput("--out", join(root, "null.json"), "file"), /--out .*null\.json \(\/dev\/null\) is a character device/);
  const sock = join(root, "s.sock");
  const server = createServer();
  await new Promise<void>((r) => server.listen(sock, r));
  try {
    assert.throws(() => checkOutput("--out", sock, "file"), /--out .*s\.sock is a socket, not a regular file/);
  } finally {
    await new Promise((r) => server.close(r));
  }
  mkdirSync(join(root, "d.csv"));
  assert.throws(() => checkOutput("--out", join(root, "d.csv"), "file"), /--out .*d\.csv is a folder; give a file path/);
  writeFileSync(join(root, "f"), "x");
  assert.throws(() => checkOutput("--out", join(root, "f"), "export"), /--out .*\/f is a file; give a folder/);
  // checkWritable too: a probe in /dev would succeed as root, so the file's type is checked first
  assert.throws(() => checkWritable(fifo, "file", "--out"), /--out .*r\.json is not writable \(it is a FIFO/);
  assert.ok(lstatSync(fifo).isFIFO(), "the FIFO is still a FIFO");
  assert.ok(lstatSync("/dev/null").isCharacterDevice());
});

test("checkOutput refuses an output that is an input (symlink, hard link), lies inside an input folder, or (a folder output) contains one", () => {
  const root = realpathSync(tempDir("outpath-inputs"));
  const input = join(root, "in.csv");
  writeFileSync(input, "a,b\n1,2\n");
  symlinkSync(input, join(root, "out.csv"));
  assert.throws(() => checkOutput("--out", join(root, "out.csv"), "file", [{ what: "--input", path: input }]), /--out .*out\.csv \(.*in\.csv\) is --input .*in\.csv; an output must not replace an input/);
  // the input is the link, the output the file it points to
  assert.throws(() => checkOutput("--out", input, "file", [{ what: "--input", path: join(root, "out.csv") }]), /is --input .*out\.csv/);
  linkSync(input, join(root, "hard.csv"));
  assert.throws(() => checkOutput("--out", join(root, "hard.csv"), "file", [{ what: "--input", path: input }]), /hard\.csv is --input .*in\.csv/);
  mkdirSync(join(root, "src"));
  assert.throws(() => checkOutput("--out", join(root, "src", "new", "x.json"), "file", [{ what: "--source", path: join(root, "src") }]), /lies inside --source .*src; an output must not be written into an input/);
  // an earlier export that holds the source (a result copied into it): replacing it would delete the source
  mkdirSync(join(root, "old-export"));
  writeFileSync(join(root, "old-export", "checksums.json"), JSON.stringify({ format: "mtlcraft-export-1", sha256: {} }));
  writeFileSync(join(root, "old-export", "run.json"), "{}");
  assert.throws(() => checkOutput("--out", join(root, "old-export"), "export", [{ what: "the source", path: join(root, "old-export", "run.json") }]), /--out .*old-export contains the source .*run\.json; replacing it would delete an input/);
  assert.equal(readFileSync(input, "utf8"), "a,b\n1,2\n");
  // a file beside an input is fine
  assert.equal(checkOutput("--out", join(root, "scores.csv"), "file", [{ what: "--input", path: input }]), join(root, "scores.csv"));
});

test("checkOutput refuses writing inside an mtlcraft folder and replacing one of another kind; an empty folder or one of the same kind is fine", () => {
  const root = realpathSync(tempDir("outpath-folders"));
  const ck = join(root, "ck");
  saveCheckpoint(ck, { json: { fingerprint: { model: "m" } }, tensors: { model: { w: new Float32Array(2) } } });
  const art = join(root, "run.model");
  saveCheckpoint(art, { json: { artifact: {} }, tensors: { params: { w: new Float32Array(2) } } });
  assert.throws(() => checkOutput("--out", join(ck, "scores.csv"), "file"), new RegExp(`--out ${ck}/scores\\.csv lies inside a training checkpoint \\(${ck}\\); refusing to write there`));
  assert.throws(() => checkOutput("--out", join(art, "sub", "r.json"), "file"), /lies inside a run's model artefact/);
  assert.throws(() => checkOutput("--out", ck, "export"), /--out .*ck exists and is a training checkpoint, not an exported mtlcraft model; refusing to replace it \(an exported mtlcraft model replaces only an exported mtlcraft model or an empty folder\)/);
  assert.throws(() => checkOutput("--out", art, "export"), /exists and is a run's model artefact/);
  assert.throws(() => checkOutput("--checkpoint", art, "checkpoint"), /--checkpoint .*run\.model exists and is a run's model artefact, not a training checkpoint; refusing to replace it/);
  assert.throws(() => checkOutput("--out", ck, "artifact"), /exists and is a training checkpoint, not a run's model artefact; refusing to replace it \(a run's model artefact replaces only a run's model artefact or an empty folder\)/);
  mkdirSync(join(root, "docs"));
  writeFileSync(join(root, "docs", "notes.txt"), "keep me");
  assert.throws(() => checkOutput("--checkpoint", join(root, "docs"), "checkpoint"), /--checkpoint .*docs exists and is a folder that is not a training checkpoint \(nor empty\); refusing to replace it/);
  assert.throws(() => checkOutput("bench --out", ck, "folder"), /bench --out .*ck is a training checkpoint; refusing to write into it/);
  assert.equal(checkOutput("--checkpoint", ck, "checkpoint"), ck);
  assert.equal(checkOutput("--out", art, "artifact"), art);
  mkdirSync(join(root, "empty"));
  assert.equal(checkOutput("--out", join(root, "empty"), "export"), join(root, "empty"));
  assert.equal(readFileSync(join(root, "docs", "notes.txt"), "utf8"), "keep me");
});

test("writeFileAtomic and AtomicLineWriter write through a symlink (the link kept, the temp file beside the target) and never replace a FIFO", () => {
  const root = realpathSync(tempDir("outpath-write"));
  mkdirSync(join(root, "a"));
  mkdirSync(join(root, "b"));
  writeFileSync(join(root, "b", "real.json"), "old");
  symlinkSync(join(root, "b", "real.json"), join(root, "a", "r.json"));
  writeFileAtomic(join(root, "a", "r.json"), "new");
  assert.ok(lstatSync(join(root, "a", "r.json")).isSymbolicLink(), "the link is kept");
  assert.equal(readlinkSync(join(root, "a", "r.json")), join(root, "b", "real.json"));
  assert.equal(readFileSync(join(root, "b", "real.json"), "utf8"), "new");
  const w = new AtomicLineWriter(join(root, "a", "r.json"));
  w.write("line");
  assert.deepEqual(readdirSync(join(root, "a")), ["r.json"], "the temporary file lies beside the target, not the link");
  assert.equal(readdirSync(join(root, "b")).length, 2);
  w.commit();
  assert.ok(lstatSync(join(root, "a", "r.json")).isSymbolicLink());
  assert.equal(readFileSync(join(root, "b", "real.json"), "utf8"), "line\n");
  assert.deepEqual(readdirSync(join(root, "b")), ["real.json"]);
  const fifo = join(root, "fifo.json");
  mkfifo(fifo);
  assert.throws(() => writeFileAtomic(fifo, "x"), /fifo\.json is a FIFO \(named pipe\), not a regular file; refusing to replace it/);
  assert.throws(() => new AtomicLineWriter(fifo), /is a FIFO/);
  assert.ok(lstatSync(fifo).isFIFO());
  assert.deepEqual(readdirSync(root).sort(), ["a", "b", "fifo.json"], "no temporary file left");
});

test("writeDirAtomic (the checkpoint writer) replaces a symlinked folder's target and keeps the link; it never replaces a file with a folder", () => {
  const root = realpathSync(tempDir("outpath-dir"));
  mkdirSync(join(root, "store"));
  symlinkSync(join(root, "store", "ck-real"), join(root, "ck"));
  saveCheckpoint(join(root, "ck"), { json: { n: 1 }, tensors: {} });
  assert.ok(lstatSync(join(root, "ck")).isSymbolicLink(), "a dangling link is written through, too");
  assert.ok(readdirSync(join(root, "store", "ck-real")).includes("state.json"));
  saveCheckpoint(join(root, "ck"), { json: { n: 2 }, tensors: {} });
  assert.ok(lstatSync(join(root, "ck")).isSymbolicLink());
  assert.match(readFileSync(join(root, "store", "ck-real", "state.json"), "utf8"), /"n":2/);
  assert.deepEqual(readdirSync(root).sort(), ["ck", "store"]);
  assert.deepEqual(readdirSync(join(root, "store")), ["ck-real"], "temporary folders beside the target, and removed");
  writeFileSync(join(root, "file"), "keep");
  assert.throws(() => writeDirAtomic(join(root, "file"), () => {}), /file is a regular file, not a folder; refusing to replace it/);
  assert.equal(readFileSync(join(root, "file"), "utf8"), "keep");
});
