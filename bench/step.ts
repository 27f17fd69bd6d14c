/**
 * Step benchmark against the matched PyTorch peer (../shared/bench/torch_peer.py,
 * see ../shared/bench/README.md): PLE with the CLI defaults (CGC, 1 shared + 1
 * per-task expert 256-128-64, towers 32-16, embDim 16, dropout 0.2), T = 6, on
 * three real shuffled batches of the bundled KuaiRand slice (29 fields), batch
 * 2048 and 4096, one engine thread.
 *
 * Rows: the whole `trainStep` (coalescing, balancing and Adam included)
 *  - EW: the weighted-sum program (one backward of the summed losses), against
 *    the peer's `ew` path (one summed backward);
 *  - GradCraft: the per-task program (T per-task gradients over the "shared"
 *    scope, Gramian, GradCraft, scatter), against the peer's `gc` path.
 * Each pair alternates TS step, torch step, TS step, ... (2 warm-up steps each,
 * then `reps` pairs) in one run; printed: each side's median ms/step and
 * samples/s, and the median of the pairwise ratios TS / torch. Then 2 engine
 * threads against 1 (TS only), and peak RSS of both processes.
 *
 * The peer runs when /usr/bin/python3 imports torch (Debian: `apt-get install
 * python3-torch libopenblas0-pthread`: without an OpenBLAS, Debian's torch falls
 * back to the reference BLAS and runs about 15x slower) and
 * ../shared/bench/torch_peer.py exists (or MTLCRAFT_TORCH_PEER points at it);
 * otherwise only the TS side is printed. Peak RSS is printed after each batch
 * size (the first, 4096, alone: both of its programs).
 * The batches are handed to the peer as raw files (field-major int32 ids,
 * task-major float32 labels) in a temporary folder.
 *
 * `npm run bench -- epoch` also runs one KuaiRand epoch of PLE + GradCraft on
 * one thread in both engines (train, then val + test prediction).
 */
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { createModel } from "../src/model/index.ts";
import { createAdam } from "../src/optim/adam.ts";
import { trainStep } from "../src/train/step.ts";
import type { Batch, PreparedDataset } from "../src/data/types.ts";
import { loadDataset, prepareDataset } from "../src/data/index.ts";
import { createMethod } from "../src/balance/registry.ts";
import { configureEngine } from "../src/engine/ort.ts";
import { releasePrograms } from "../src/engine/programs.ts";
import { runTraining } from "../src/train/run.ts";
import { Rng } from "../src/util/rng.ts";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const PYTHON = "/usr/bin/python3";

export function peerScript(): string | null {
  const p = process.env.MTLCRAFT_TORCH_PEER ?? resolve(ROOT, "../shared/bench/torch_peer.py");
  if (!existsSync(p)) return null;
  if (!existsSync(PYTHON)) return null;
  const r = spawnSync(PYTHON, ["-c", "import torch"], { stdio: "ignore" });
  return r.status === 0 ? p : null;
}

const median = (a: readonly number[]): number => {
  const s = [...a].sort((x, y) => x - y);
  const n = s.length;
  return n % 2 ? s[(n - 1) / 2]! : (s[n / 2 - 1]! + s[n / 2]!) / 2;
};

const rssMB = (): number => process.resourceUsage().maxRSS / 1024;

/** The peer in `serve` mode: one JSON command per line, answers prefixed "@@". */
class Peer {
  private readonly child: ChildProcessWithoutNullStreams;
  private readonly lines: AsyncIterator<string>;
  constructor(script: string, batchesDir: string) {
    this.child = spawn(PYTHON, [script, "serve", "--batches", batchesDir], { stdio: ["pipe", "pipe", "pipe"] });
    this.child.stderr.on("data", (d: Buffer) => process.stderr.write(d));
    this.lines = createInterface({ input: this.child.stdout })[Symbol.asyncIterator]();
  }
  private async answer(): Promise<Record<string, unknown>> {
    for (;;) {
      const r = await this.lines.next();
      if (r.done) throw new Error("torch peer exited");
      if (r.value.startsWith("@@")) return JSON.parse(r.value.slice(2)) as Record<string, unknown>;
    }
  }
  async ready(): Promise<string> {
    return String((await this.answer()).torch);
  }
  async step(B: number, path: string, n = 1): Promise<number[]> {
    this.child.stdin.write(JSON.stringify({ cmd: "step", B, n, path }) + "\n");
    return (await this.answer()).ms as number[];
  }
  async rss(): Promise<number> {
    this.child.stdin.write(JSON.stringify({ cmd: "rss" }) + "\n");
    return (await this.answer()).maxRssMB as number;
  }
  close(): void {
    this.child.stdin.write(JSON.stringify({ cmd: "quit" }) + "\n");
    this.child.stdin.end();
  }
}

function firstBatches(data: PreparedDataset, B: number, n: number): Batch[] {
  const out: Batch[] = [];
  for (const b of data.split("train").iterate({ batchSize: B, shuffle: true, seed: 1, epoch: 0 })) {
    // the reader reuses its buffers: copy
    out.push(structuredClone(b));
    if (out.length === n) break;
  }
  return out;
}

/**
 * The peer's model has one id per field: a multi-valued field (KuaiRand's tag,
 * [B, maxLen] padded with -1) is handed over as each row's first id. The step's
 * cost is the same (the TS side pools at most maxLen rows per slot in JS; the
 * network is identical).
 */
function writeBatches(dir: string, B: number, batches: Batch[]): void {
  batches.forEach((b, i) => {
    const F = b.fields.length;
    const ids = new Int32Array(F * B);
    b.fields.forEach((f, k) => {
      const L = f.length / b.size;
      for (let r = 0; r < B; r++) ids[k * B + r] = Math.max(0, f[r * L]!);
    });
    const T = b.labels.length;
    const y = new Float32Array(T * B);
    b.labels.forEach((l, t) => y.set(l.subarray(0, B), t * B));
    writeFileSync(join(dir, `B${B}_${i}.fields.i32`), new Uint8Array(ids.buffer));
    writeFileSync(join(dir, `B${B}_${i}.labels.f32`), new Uint8Array(y.buffer));
  });
}

export async function runStepBench(opts: { batches?: number[]; reps?: number; warmup?: number } = {}): Promise<void> {
  const T = 6;
  const reps = opts.reps ?? 7;
  const warmup = opts.warmup ?? 2;
  const sizes = opts.batches ?? [4096, 2048];
  const data = await loadDataset("kuairand");
  const script = peerScript();
  const dir = mkdtempSync(join(tmpdir(), "mtlcraft-bench-"));
  const all = new Map<number, Batch[]>();
  for (const B of sizes) {
    all.set(B, firstBatches(data, B, 3));
    writeBatches(dir, B, all.get(B)!);
  }
  const peer = script ? new Peer(script, dir) : null;
  const torchVersion = peer ? await peer.ready() : null;
  configureEngine({ threads: 1 });
  const model = createModel("ple", { fields: data.meta.fields, numTasks: T });
  const np = model.numParams();
  console.log(`\nStep bench: PLE defaults on KuaiRand, T=${T}, ${data.meta.fields.length} fields, ${np.dense} dense + ${np.embedding} embedding params, 1 thread`);
  console.log(peer ? `peer: PyTorch ${torchVersion} (${script}), alternated, ${reps} pairs after ${warmup} warm-up steps each` : "peer: none (needs /usr/bin/python3 with torch and ../shared/bench/torch_peer.py)");
  console.log("| batch | step | TS ms/step | TS samples/s | torch ms/step | torch samples/s | median ratio TS/torch |\n|---:|---|---:|---:|---:|---:|---:|");
  const opt = createAdam(model);
  const rng = new Rng(1);
  let step = 0;
  const tsStep = async (b: Batch, method: ReturnType<typeof createMethod>, diagnostics: boolean): Promise<number> => {
    const t0 = performance.now();
    await trainStep(model, opt, method, b, { step: step++, epoch: 0, rng, diagnostics });
    return performance.now() - t0;
  };
  const rows = [
    { label: "EW (weighted-sum program)", method: createMethod("ew", T), diagnostics: false, peerPath: "ew" },
    { label: "GradCraft (per-task program)", method: createMethod("gradcraft", T), diagnostics: true, peerPath: "gc" },
  ];
  for (const B of sizes) {
    const bs = all.get(B)!;
    for (const r of rows) {
      for (let i = 0; i < warmup; i++) {
        await tsStep(bs[i % 3]!, r.method, r.diagnostics);
        if (peer) await peer.step(B, r.peerPath);
      }
      const ts: number[] = [];
      const pt: number[] = [];
      const ratio: number[] = [];
      for (let i = 0; i < reps; i++) {
        ts.push(await tsStep(bs[i % 3]!, r.method, r.diagnostics));
        if (peer) {
          pt.push((await peer.step(B, r.peerPath))[0]!);
          ratio.push(ts.at(-1)! / pt.at(-1)!);
        }
      }
      const m = median(ts);
      const pm = peer ? median(pt) : NaN;
      // a training process holds one main program per batch size (EngineOptions.memory): release this
      // row's sessions before the next row compiles its own, so the peak RSS is that of one configuration
      await releasePrograms(model);
      console.log(
        `| ${B} | ${r.label} | ${m.toFixed(0)} | ${((B * 1000) / m).toFixed(0)} | ${peer ? pm.toFixed(0) : "-"} | ${peer ? ((B * 1000) / pm).toFixed(0) : "-"} | ${peer ? median(ratio).toFixed(2) : "-"} |`,
      );
    }
    console.log(`| | peak RSS of the TS process so far: ${rssMB().toFixed(0)} MB | | | | | |`);
  }
  const peerRss = peer ? await peer.rss() : NaN;
  peer?.close();
  console.log(`peak RSS: TS ${rssMB().toFixed(0)} MB${peer ? `, torch ${peerRss.toFixed(0)} MB` : ""}`);

  // threads: 2 against 1 (TS only; sessions are created per engine setting, hence fresh models)
  console.log("\n| batch | step | 1 thread ms | 2 threads ms | speed-up |\n|---:|---|---:|---:|---:|");
  for (const B of sizes) {
    const bs = all.get(B)!;
    for (const r of rows) {
      const times: number[] = [];
      for (const threads of [1, 2]) {
        configureEngine({ threads });
        const m2 = createModel("ple", { fields: data.meta.fields, numTasks: T });
        const o2 = createAdam(m2);
        const ts: number[] = [];
        for (let i = 0; i < warmup + reps; i++) {
          const t0 = performance.now();
          await trainStep(m2, o2, r.method, bs[i % 3]!, { step: i, epoch: 0, rng, diagnostics: r.diagnostics });
          if (i >= warmup) ts.push(performance.now() - t0);
        }
        times.push(median(ts));
      }
      console.log(`| ${B} | ${r.label} | ${times[0]!.toFixed(0)} | ${times[1]!.toFixed(0)} | ${(times[0]! / times[1]!).toFixed(2)} |`);
    }
  }
  configureEngine({ threads: 1 });
  rmSync(dir, { recursive: true, force: true });
}

/**
 * Loss-aware weightings against EW (`npm run bench -- step-loss`): PLE defaults on KuaiRand,
 * T = 6, one engine thread, the whole trainStep without diagnostics. EW runs the weighted-sum
 * program; STCH the loss-aware program (weights computed in the graph from the same run's
 * losses); FAMO the loss-aware program plus its afterStep forward (the batch's losses at the
 * new parameters), or with update "next-batch" the loss-aware program alone. One model and
 * optimiser; each rep runs EW, STCH, FAMO, FAMO next-batch in turn on the same
 * batch (alternated), `warmup` rounds first; printed: medians and the median of the per-rep
 * ratios to EW, of the wall time and of the process CPU time (user + system, all threads: with
 * one engine thread it is the step's work, and far less disturbed than the wall time when
 * other processes compete for the cores). Env: MTLCRAFT_BENCH_REPS, MTLCRAFT_BENCH_BATCHES.
 */
export async function runLossAwareBench(opts: { batches?: number[]; reps?: number; warmup?: number } = {}): Promise<void> {
  const T = 6;
  const reps = opts.reps ?? Number(process.env.MTLCRAFT_BENCH_REPS ?? 11);
  const warmup = opts.warmup ?? 2;
  const sizes = opts.batches ?? (process.env.MTLCRAFT_BENCH_BATCHES ?? "4096,2048").split(",").map(Number);
  const data = await loadDataset("kuairand");
  configureEngine({ threads: 1 });
  console.log(`\nLoss-aware step bench: PLE defaults on KuaiRand, T=${T}, 1 thread, alternated EW / STCH / FAMO / FAMO next-batch, ${reps} rounds after ${warmup} warm-up rounds`);
  console.log("| batch | step | wall ms/step (median) | samples/s | median wall ratio to EW | CPU ms/step (median) | median CPU ratio to EW |\n|---:|---|---:|---:|---:|---:|---:|");
  for (const B of sizes) {
    const bs = firstBatches(data, B, 3);
    const model = createModel("ple", { fields: data.meta.fields, numTasks: T });
    const opt = createAdam(model);
    const rng = new Rng(1);
    let step = 0;
    const rows = [
      { label: "EW (weighted-sum program)", method: createMethod("ew", T) },
      { label: "STCH (loss-aware program)", method: createMethod("stch", T) },
      { label: "FAMO (loss-aware program + afterStep forward)", method: createMethod("famo", T) },
      { label: "FAMO update=next-batch (loss-aware program only)", method: createMethod("famo", T, { update: "next-batch" }) },
    ];
    const times: number[][] = rows.map(() => []);
    const cpu: number[][] = rows.map(() => []);
    for (let i = 0; i < warmup + reps; i++) {
      for (const [k, r] of rows.entries()) {
        const c0 = process.cpuUsage();
        const t0 = performance.now();
        await trainStep(model, opt, r.method, bs[i % 3]!, { step: step++, epoch: 0, rng, diagnostics: false });
        const wall = performance.now() - t0;
        const c = process.cpuUsage(c0);
        if (i >= warmup) {
          times[k]!.push(wall);
          cpu[k]!.push((c.user + c.system) / 1000);
        }
      }
    }
    rows.forEach((r, k) => {
      const m = median(times[k]!);
      const ratio = median(times[k]!.map((x, i) => x / times[0]![i]!));
      const cm = median(cpu[k]!);
      const cratio = median(cpu[k]!.map((x, i) => x / cpu[0]![i]!));
      console.log(`| ${B} | ${r.label} | ${m.toFixed(0)} | ${((B * 1000) / m).toFixed(0)} | ${ratio.toFixed(3)} | ${cm.toFixed(0)} | ${cratio.toFixed(3)} |`);
    });
    await releasePrograms(model);
  }
  console.log(`peak RSS: ${rssMB().toFixed(0)} MB`);
}

/**
 * Balancing at the representation (`npm run bench -- step-balance-at`): PLE defaults on KuaiRand,
 * T = 6, one engine thread, the whole trainStep. Rows, alternated on the same batch each round
 * (`warmup` rounds first): EW (weighted-sum program), GradCraft at `parameters` (per-task
 * program, "shared" scope), GradCraft at `representation` (representation program, combine over
 * the shared experts' outputs, trunk backward), EW at `representation` with diagnostics (the
 * same path as GradCraft's, EW's combine). Printed: medians and the median of the per-round
 * ratios to EW, of the wall time and of the process CPU time. Env: MTLCRAFT_BENCH_REPS,
 * MTLCRAFT_BENCH_BATCHES (default 4096).
 */
export async function runBalanceAtBench(opts: { batches?: number[]; reps?: number; warmup?: number } = {}): Promise<void> {
  const T = 6;
  const reps = opts.reps ?? Number(process.env.MTLCRAFT_BENCH_REPS ?? 11);
  const warmup = opts.warmup ?? 2;
  const sizes = opts.batches ?? (process.env.MTLCRAFT_BENCH_BATCHES ?? "4096").split(",").map(Number);
  const data = await loadDataset("kuairand");
  configureEngine({ threads: 1 });
  console.log(`\n--balance-at step bench: PLE defaults on KuaiRand, T=${T}, 1 thread, alternated rows, ${reps} rounds after ${warmup} warm-up rounds`);
  console.log("| batch | step | wall ms/step (median) | samples/s | median wall ratio to EW | CPU ms/step (median) | median CPU ratio to EW |\n|---:|---|---:|---:|---:|---:|---:|");
  for (const B of sizes) {
    const bs = firstBatches(data, B, 3);
    const model = createModel("ple", { fields: data.meta.fields, numTasks: T });
    const opt = createAdam(model);
    const rng = new Rng(1);
    let step = 0;
    const rows = [
      { label: "EW (weighted-sum program)", method: createMethod("ew", T), balanceAt: "parameters" as const, diagnostics: false },
      { label: "GradCraft --balance-at parameters", method: createMethod("gradcraft", T), balanceAt: "parameters" as const, diagnostics: true },
      { label: "GradCraft --balance-at representation", method: createMethod("gradcraft", T), balanceAt: "representation" as const, diagnostics: true },
      { label: "EW --balance-at representation (diagnostics step)", method: createMethod("ew", T), balanceAt: "representation" as const, diagnostics: true },
    ];
    const times: number[][] = rows.map(() => []);
    const cpu: number[][] = rows.map(() => []);
    for (let i = 0; i < warmup + reps; i++) {
      for (const [k, r] of rows.entries()) {
        const c0 = process.cpuUsage();
        const t0 = performance.now();
        await trainStep(model, opt, r.method, bs[i % 3]!, { step: step++, epoch: 0, rng, diagnostics: r.diagnostics, balanceAt: r.balanceAt });
        const wall = performance.now() - t0;
        const c = process.cpuUsage(c0);
        if (i >= warmup) {
          times[k]!.push(wall);
          cpu[k]!.push((c.user + c.system) / 1000);
        }
      }
    }
    rows.forEach((r, k) => {
      const m = median(times[k]!);
      const ratio = median(times[k]!.map((x, i) => x / times[0]![i]!));
      const cm = median(cpu[k]!);
      const cratio = median(cpu[k]!.map((x, i) => x / cpu[0]![i]!));
      console.log(`| ${B} | ${r.label} | ${m.toFixed(0)} | ${((B * 1000) / m).toFixed(0)} | ${ratio.toFixed(3)} | ${cm.toFixed(0)} | ${cratio.toFixed(3)} |`);
    });
    const gp = median(times[2]!.map((x, i) => x / times[1]![i]!));
    console.log(`| ${B} | GradCraft representation / parameters (median of pairs) | | | ${gp.toFixed(3)} | | |`);
    await releasePrograms(model);
  }
  console.log(`peak RSS: ${rssMB().toFixed(0)} MB`);
}

/** One KuaiRand epoch of PLE + GradCraft, 1 thread, both engines (train + val/test prediction). */
export async function runEpochBench(rounds = Number(process.env.MTLCRAFT_EPOCH_ROUNDS ?? 2)): Promise<void> {
  const { dir: cache } = await prepareDataset("kuairand", {});
  console.log(`\nEpoch bench: one KuaiRand epoch, PLE defaults + GradCraft, batch 4096, 1 thread; ${rounds} alternated rounds`);
  // loaded (and verified) before the clock starts, as the peer's time excludes its load
  const data = await loadDataset("kuairand");
  const script = peerScript();
  // the peer reads one id per field: hand it a copy of the cache whose multi-valued fields keep each row's first id
  const peerDir = mkdtempSync(join(tmpdir(), "mtlcraft-peer-epoch-"));
  try {
    if (script) {
      const manifest = JSON.parse(readFileSync(join(cache, "manifest.json"), "utf8")) as { fields: { multi?: { maxLen: number } }[]; tasks: unknown[] };
      for (const split of ["train", "val", "test"]) {
        mkdirSync(join(peerDir, split));
        manifest.fields.forEach((f, k) => {
          const src = join(cache, split, `field_${k}.i32`);
          if (!f.multi) return copyFileSync(src, join(peerDir, split, `field_${k}.i32`));
          const L = f.multi.maxLen;
          const all = new Int32Array(readFileSync(src).buffer.slice(0));
          const first = new Int32Array(all.length / L);
          for (let r = 0; r < first.length; r++) first[r] = Math.max(0, all[r * L]!);
          writeFileSync(join(peerDir, split, `field_${k}.i32`), new Uint8Array(first.buffer));
        });
        manifest.tasks.forEach((_, t) => copyFileSync(join(cache, split, `label_${t}.u8`), join(peerDir, split, `label_${t}.u8`)));
      }
    } else console.log("peer: none");
    const ratios: number[] = [];
    for (let k = 0; k < rounds; k++) {
      const t0 = performance.now();
      const res = await runTraining(
        { dataset: "kuairand", model: "ple", method: "gradcraft", seed: 1, epochs: 1, batchSize: 4096, lr: 5e-4, l2: 1e-5, embDim: 16, dropout: 0.2, scope: "shared", patience: 0, threads: 1, progress: "none" },
        data,
      );
      const tsSec = (performance.now() - t0) / 1000;
      console.log(`round ${k + 1} TS: ${res.steps} steps, ${tsSec.toFixed(1)} s wall (train + val + test, programs compiled on the way), test AUC ${res.test.auc.map((a) => a.toFixed(4)).join(" ")}`);
      if (!script) continue;
      const r = spawnSync(PYTHON, [script, "epoch", "--data", peerDir, "--path", "gc"], { encoding: "utf8" });
      const line = r.stdout.trim() || r.stderr.trim();
      console.log(`round ${k + 1} ${line}`);
      const total = /total ([0-9.]+) s/.exec(line);
      if (total) ratios.push(tsSec / Number(total[1]));
    }
    if (ratios.length) console.log(`TS / torch per round: ${ratios.map((x) => x.toFixed(2)).join(", ")}; median ${median(ratios).toFixed(2)}`);
  } finally {
    rmSync(peerDir, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await runStepBench();
