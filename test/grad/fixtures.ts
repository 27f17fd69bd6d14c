/** Tiny synthetic problems shared by the model/grad/train tests. */
import type { Batch, FieldInfo } from "../../src/data/types.ts";
import { Rng } from "../../src/util/rng.ts";

export const TINY_FIELDS: FieldInfo[] = [
  { name: "user", vocabSize: 6 },
  { name: "item", vocabSize: 9 },
  { name: "ctx", vocabSize: 4 },
];

/** Tiny dims for finite differences: embDim 3, experts [5,4], towers [3], 3 tasks. */
export const TINY_OPTS = { embDim: 3, expertUnits: [5, 4], bottomUnits: [5, 4], towerUnits: [3], seed: 7 };

/** Random batch; ids repeat within the batch (so row coalescing is exercised). */
export function randomBatch(fields: readonly FieldInfo[], numTasks: number, B: number, seed: number): Batch {
  const rng = new Rng(seed);
  const f = fields.map((fi) => {
    const a = new Int32Array(B);
    for (let r = 0; r < B; r++) a[r] = rng.int(fi.vocabSize);
    return a;
  });
  const labels: Float32Array[] = [];
  for (let t = 0; t < numTasks; t++) {
    const y = new Float32Array(B);
    for (let r = 0; r < B; r++) y[r] = rng.next() < 0.4 ? 1 : 0;
    labels.push(y);
  }
  return { size: B, fields: f, labels, groups: f[0]!.slice() };
}

/** Learnable labels: task t's label is a fixed function of the ids (parity-like). */
export function learnableBatch(fields: readonly FieldInfo[], numTasks: number, B: number, seed: number): Batch {
  const b = randomBatch(fields, numTasks, B, seed);
  for (let t = 0; t < numTasks; t++) {
    const y = b.labels[t]!;
    for (let r = 0; r < B; r++) {
      const u = b.fields[0]![r]!;
      const i = b.fields[1]![r]!;
      y[r] = (u + (t + 1) * i) % 3 === 0 ? 1 : 0;
    }
  }
  return b;
}
