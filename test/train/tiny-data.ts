/** A tiny CSV dataset (two tasks, two fields) written as a spec file, for fast CLI and trainer tests. */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Rng } from "../../src/util/rng.ts";

/**
 * Writes `<dir>/log.csv` (`rows` rows; labels drawn from `seed`) and `<dir>/tiny.json`,
 * and returns the spec path. A different `seed` gives different content, hence a different
 * dataset content hash.
 */
export function writeTinyDataset(dir: string, opts: { rows?: number; seed?: number } = {}): string {
  const rows = opts.rows ?? 240;
  const rng = new Rng(opts.seed ?? 1);
  mkdirSync(dir, { recursive: true });
  const lines = ["user_id,item_id,click,like"];
  for (let r = 0; r < rows; r++) {
    const u = rng.int(12);
    const i = rng.int(20);
    const click = rng.next() < 0.3 + 0.03 * (i % 10) ? 1 : 0;
    const like = click && rng.next() < 0.5 ? 1 : 0;
    lines.push(`${u},${i},${click},${like}`);
  }
  writeFileSync(join(dir, "log.csv"), lines.join("\n") + "\n");
  const spec = {
    name: "tiny",
    log: ["log.csv"],
    categorical: ["user_id", "item_id"],
    groupColumn: "user_id",
    tasks: [
      { name: "click", kind: "column", column: "click" },
      { name: "like", kind: "column", column: "like" },
    ],
    split: { kind: "fraction", train: 0.6, val: 0.2, test: 0.2, seed: 1 },
  };
  const path = join(dir, "tiny.json");
  writeFileSync(path, JSON.stringify(spec, null, 2));
  return path;
}
