/** Data-layer benchmark on the bundled KuaiRand slice: cold prepare time and shuffled batch throughput. */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openPrepared, prepareDataset } from "../src/data/index.ts";

export async function runDataBench(opts: { batchSize?: number; epochs?: number } = {}): Promise<void> {
  const batchSize = opts.batchSize ?? 4096;
  const epochs = opts.epochs ?? 3;
  const cacheDir = mkdtempSync(join(tmpdir(), "mtlcraft-bench-data-"));
  try {
    let t = performance.now();
    const { dir, manifest } = await prepareDataset("kuairand", { cacheDir, force: true });
    const prepMs = performance.now() - t;
    t = performance.now();
    const again = await prepareDataset("kuairand", { cacheDir });
    const cachedMs = performance.now() - t;
    if (!again.cached) throw new Error("second prepare did not reuse the cache");
    const total = manifest.rows.train + manifest.rows.val + manifest.rows.test;
    const ds = openPrepared(dir);
    const train = ds.split("train");
    let rows = 0;
    let check = 0;
    t = performance.now();
    for (let e = 0; e < epochs; e++) {
      for (const b of train.iterate({ batchSize, shuffle: true, seed: 1, epoch: e })) {
        rows += b.size;
        check += b.groups[0] ?? 0;
      }
    }
    const iterMs = performance.now() - t;
    console.log(`\nData layer, KuaiRand slice (${total} rows, ${manifest.fields.length} fields, ${manifest.tasks.length} tasks)`);
    console.log("| measure | value |\n|---|---:|");
    console.log(`| prepare, cold (force) | ${(prepMs / 1000).toFixed(2)} s |`);
    console.log(`| prepare, cached (hash check) | ${cachedMs.toFixed(0)} ms |`);
    console.log(`| shuffled batches (batch ${batchSize}, train, ${epochs} epochs) | ${Math.round(rows / (iterMs / 1000)).toLocaleString("en-US")} rows/s |`);
    if (check < 0) console.log(check);
  } finally {
    rmSync(cacheDir, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await runDataBench();
