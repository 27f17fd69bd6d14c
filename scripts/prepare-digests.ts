/**
 * Digests of what `prepareDataset` writes for two real datasets, so a refactoring of the data layer
 * can be checked to leave every manifest and cache file byte-identical
 * (test/data/prepare-identity.test.ts compares against test/fixtures/prepare-digests.json).
 *
 * - `kuairand`: the bundled KuaiRand-Pure slice (data/specs/kuairand.json, 228,329 log rows, two
 *   side tables, a multi-valued field, an expression field, date split).
 * - `census-income`: the bundled UCI Census-Income spec (data/specs/census-income.json: headerless,
 *   ", " separators, trim, '?' as NULL, files split with valFraction, numeric buckets, dense inputs,
 *   SQL tasks) on a slice of the real census-income.test.gz in ../shared/data: its first
 *   CENSUS_TRAIN lines as census-income.data and the next CENSUS_TEST lines as census-income.test.
 *
 * Every file of each cache folder is hashed (sha256) as written, except manifest.json, which is
 * hashed after normalising the two things in it that legitimately differ between runs:
 * `createdAt` (the time of the prepare) and `inputs[].file` (absolute paths of the input files,
 * which depend on where the repository and the temp folder are; replaced by their base names,
 * which is also what enters the dataset hash). Everything else in the manifest (the hash, the
 * spec, sizes, content hashes and row counts of the inputs, CRC32 of every column file, fields,
 * vocabularies, thresholds, rates, warnings) is compared as written. The cache folder's name
 * (`<name>-<hash16>`) is recorded too.
 *
 * `tsx scripts/prepare-digests.ts` writes the fixture (only ever from a known-good tree).
 */
import { createHash } from "node:crypto";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join, relative, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { gunzipSync } from "node:zlib";
import { prepareDataset } from "../src/data/index.ts";

export const DIGEST_FIXTURE = "test/fixtures/prepare-digests.json";
export const CENSUS_GZ = "../shared/data/census-income/census-income.test.gz";
export const CENSUS_TRAIN = 20000;
export const CENSUS_TEST = 5000;

export interface CacheDigest {
  /** The cache folder's name, `<name>-<hash16>`. */
  folder: string;
  /** sha256 of every file (path relative to the folder, '/'-separated), manifest.json normalised. */
  files: Record<string, string>;
}

/** manifest.json as text with `createdAt` and the absolute input paths taken out (see the doc comment). */
export function normaliseManifest(text: string): string {
  const m = JSON.parse(text) as { createdAt?: string; inputs?: { file: string }[] };
  if (m.createdAt !== undefined) m.createdAt = "<excluded: time of the prepare>";
  for (const i of m.inputs ?? []) i.file = basename(i.file);
  return JSON.stringify(m, null, 2);
}

function sha256(b: Buffer | string): string {
  return createHash("sha256").update(b).digest("hex");
}

function walk(dir: string, root: string, out: Record<string, string>): void {
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p, root, out);
    else {
      const rel = relative(root, p).split("\\").join("/");
      out[rel] = rel === "manifest.json" ? sha256(normaliseManifest(readFileSync(p, "utf8"))) : sha256(readFileSync(p));
    }
  }
}

/** Digest of one prepared cache folder. */
export function digestCache(dir: string): CacheDigest {
  const files: Record<string, string> = {};
  walk(dir, dir, files);
  return { folder: basename(dir), files };
}

/** Writes the census slice (see the doc comment) into `dir`. */
export function writeCensusSlice(dir: string): void {
  const lines = gunzipSync(readFileSync(CENSUS_GZ)).toString("latin1").split("\n");
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "census-income.data"), Buffer.from(lines.slice(0, CENSUS_TRAIN).join("\n") + "\n", "latin1"));
  writeFileSync(join(dir, "census-income.test"), Buffer.from(lines.slice(CENSUS_TRAIN, CENSUS_TRAIN + CENSUS_TEST).join("\n") + "\n", "latin1"));
}

/** Prepares both datasets into `work` (a fresh folder) and returns their digests. */
export async function prepareDigests(work: string): Promise<Record<"kuairand" | "census-income", CacheDigest>> {
  const cacheDir = join(work, "cache");
  const censusDir = join(work, "census");
  writeCensusSlice(censusDir);
  const k = await prepareDataset("kuairand", { cacheDir, force: true });
  const c = await prepareDataset("data/specs/census-income.json", { cacheDir, dataDir: censusDir, force: true });
  return { kuairand: digestCache(k.dir), "census-income": digestCache(c.dir) };
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  const work = mkdtempSync(join(tmpdir(), "mtlcraft-digests-"));
  try {
    const t0 = Date.now();
    const d = await prepareDigests(work);
    writeFileSync(DIGEST_FIXTURE, JSON.stringify(d, null, 2) + "\n");
    console.log(`wrote ${DIGEST_FIXTURE} (${Object.keys(d.kuairand.files).length} + ${Object.keys(d["census-income"].files).length} files, ${((Date.now() - t0) / 1000).toFixed(1)} s)`);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
