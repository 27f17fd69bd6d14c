/**
 * A tiny pre-split CSV dataset (three tasks: click, like, follow) whose `follow` labels are all
 * 0 on one chosen split: that split has one class for `follow`, so its AUC and GAUC are undefined
 * there (src/metrics/defined.ts). Written into a test's temp folder; returns the spec path.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Rng } from "../../src/util/rng.ts";

export function writeOneClassDataset(dir: string, oneClassOn: "val" | "test" | "val+test", opts: { seed?: number; allTasksOneClassOnVal?: boolean } = {}): string {
  const rng = new Rng(opts.seed ?? 7);
  mkdirSync(dir, { recursive: true });
  const rowsOf = { train: 240, val: 80, test: 80 } as const;
  for (const split of ["train", "val", "test"] as const) {
    const zeroFollow = oneClassOn.split("+").includes(split);
    const allZero = split === "val" && opts.allTasksOneClassOnVal === true;
    const lines = ["user_id,item_id,click,like,follow"];
    for (let r = 0; r < rowsOf[split]; r++) {
      const u = rng.int(10);
      const i = rng.int(16);
      let click = rng.next() < 0.25 + 0.05 * (i % 8) ? 1 : 0;
      let like = click && rng.next() < 0.5 ? 1 : 0;
      let follow = rng.next() < 0.2 + 0.04 * (u % 5) ? 1 : 0;
      if (zeroFollow) follow = 0;
      if (allZero) click = like = follow = 0;
      lines.push(`${u},${i},${click},${like},${follow}`);
    }
    writeFileSync(join(dir, `${split}.csv`), lines.join("\n") + "\n");
  }
  const spec = {
    name: "oneclass",
    categorical: ["user_id", "item_id"],
    groupColumn: "user_id",
    tasks: [
      { name: "click", kind: "column", column: "click" },
      { name: "like", kind: "column", column: "like" },
      { name: "follow", kind: "column", column: "follow" },
    ],
    split: { kind: "files", train: "train.csv", val: "val.csv", test: "test.csv" },
  };
  const path = join(dir, "oneclass.json");
  writeFileSync(path, JSON.stringify(spec, null, 2));
  return path;
}
