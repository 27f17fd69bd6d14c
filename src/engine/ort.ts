/**
 * The compute engine: onnxruntime-node (pinned 1.30.0) running the graphs that
 * src/graph builds.
 *
 * - Install: the package's CPU binaries ship inside it. Its post-install step
 *   would download CUDA binaries on Linux x64, which fails offline, so this
 *   repository's package.json denies that script (`allowScripts`, npm >= 11) and a
 *   CPU user installs with `ONNXRUNTIME_NODE_INSTALL=skip`. A GPU user installs them
 *   with `ONNXRUNTIME_NODE_INSTALL=cuda12 npm rebuild onnxruntime-node` (README, On a
 *   GPU) and passes `--device cuda`.
 * - Threads: `intraOpNumThreads` = `threads` (default: every core), one
 *   inter-op thread, sequential execution. On CPUs with AVX-512, MLAS picks those
 *   kernels by itself.
 * - Sessions are created once per compiled graph (src/engine/programs.ts) and
 *   reused for every step.
 * - Telemetry off: onnxruntime-node 1.30's Linux build starts Microsoft's 1DS telemetry when the
 *   first session is created. It writes an empty `mat-debug-<pid>.log` and a `.ses` file into
 *   $TMPDIR for every process (nothing removes them), a device id and an event database under
 *   $XDG_CACHE_HOME/Microsoft/DeveloperTools/.onnxruntime, and tries HTTPS uploads. The native
 *   code reads ORT_DISABLE_TELEMETRY when its environment is created, at the first
 *   `InferenceSession.create`, not when the module loads; so this module sets it (unless the
 *   user set it) before any session exists: every session of mtlcraft is created here or after
 *   this module is loaded. Tested in test/engine/telemetry.test.ts.
 */
import { existsSync } from "node:fs";
import { availableParallelism } from "node:os";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import * as ort from "onnxruntime-node";

/** @internal Not in the package's declarations: onnxruntime's types need the DOM lib, which a Node consumer lacks. */
export { ort };

// See the module comment: no stray files in $TMPDIR or the user's cache, nothing sent anywhere.
process.env.ORT_DISABLE_TELEMETRY ??= "1";

export type Device = "cpu" | "cuda";
export const DEVICES: readonly Device[] = ["cpu", "cuda"];

export interface EngineOptions {
  /** Intra-op threads (>= 1). */
  threads: number;
  device: Device;
  /**
   * How ORT's CPU provider gets its intermediate buffers (default "auto"):
   * - "arena": its memory arena on, memory patterns off. A session keeps the buffers it has
   *   handed out and reuses them on the next run, so a step touches no fresh pages; the
   *   memory stays with the session while it lives.
   * - "pattern": arena off, memory patterns on. Each run allocates its planned buffers as one
   *   block and frees it afterwards; that block is a fresh mmap (hundreds of MB for PLE at
   *   batch 4096) whose pages the kernel faults in and zeroes on every run.
   * - "auto": "arena" for the training step's main program, "pattern" for programs that run
   *   only now and then, so that their buffers are not held between runs: the per-task
   *   program of a loss-weighting method (needed on its diagnostics steps only), the eval and
   *   losses programs, and the program of an epoch's last, smaller batch (see programFor).
   *
   * Measured in alternated steps (PLE defaults, batch 4096, one thread, one program per
   * process): "arena" took 0.75-0.81x the time of "pattern" for the EW step (weighted-sum
   * program) and 0.84-0.95x for the GradCraft step (per-task program), at the same peak RSS
   * (570 against 584-600 MB, 500 against 495-507 MB). But every arena program holds its
   * arena while it lives: a one-epoch `train --method ew` with every program on the arena
   * peaked at 0.99 GB, against 0.6 GB, hence "auto".
   */
  memory: MemoryMode;
}

export type MemoryMode = "auto" | "arena" | "pattern";
export const MEMORY_MODES: readonly MemoryMode[] = ["auto", "arena", "pattern"];

let current: EngineOptions = { threads: availableParallelism(), device: "cpu", memory: "auto" };

/** Set the engine's threads / device for sessions created from now on. */
export function configureEngine(o: Partial<EngineOptions>): EngineOptions {
  const next = { ...current, ...o };
  if (!Number.isInteger(next.threads) || next.threads < 1) throw new Error(`engine: threads must be an integer >= 1, got ${String(next.threads)}`);
  if (!MEMORY_MODES.includes(next.memory)) throw new Error(`engine: memory must be one of ${MEMORY_MODES.join(", ")}, got "${String(next.memory)}"`);
  if (!DEVICES.includes(next.device)) throw new Error(`engine: device must be one of ${DEVICES.join(", ")}, got "${String(next.device)}"`);
  if (next.device === "cuda") {
    const why = cudaUnavailable();
    if (why) throw new Error(`engine: --device cuda was asked for, but ${why}`);
  }
  current = next;
  return { ...current };
}

export function engineOptions(): EngineOptions {
  return { ...current };
}

/** Why the CUDA execution provider can't be used here (null when its library is installed). */
export function cudaUnavailable(): string | null {
  let dir: string;
  try {
    const req = createRequire(import.meta.url);
    dir = join(dirname(req.resolve("onnxruntime-node/package.json")), "bin", "napi-v6", process.platform, process.arch);
  } catch {
    return "onnxruntime-node could not be located";
  }
  if (process.platform !== "linux" && process.platform !== "win32") return `onnxruntime-node has no CUDA build for ${process.platform}`;
  const lib = process.platform === "win32" ? "onnxruntime_providers_cuda.dll" : "libonnxruntime_providers_cuda.so";
  if (!existsSync(join(dir, lib))) {
    return (
      `onnxruntime-node's CUDA provider (${lib}) is not installed in ${dir}. ` +
      "Install it with `ONNXRUNTIME_NODE_INSTALL=cuda12 npm rebuild onnxruntime-node` on a machine with internet access and CUDA 12 (README: On a GPU), or use --device cpu"
    );
  }
  return null;
}

/**
 * Create an inference session for serialized ONNX bytes with the current engine options.
 * `occasional`: the session runs only now and then (see `memory`). @internal
 */
export async function createSession(bytes: Uint8Array, opts: { occasional?: boolean } = {}): Promise<ort.InferenceSession> {
  const o = current;
  const arena = o.memory === "arena" || (o.memory === "auto" && opts.occasional !== true);
  return ort.InferenceSession.create(bytes, {
    intraOpNumThreads: o.threads,
    interOpNumThreads: 1,
    executionMode: "sequential",
    graphOptimizationLevel: "all",
    executionProviders: o.device === "cuda" ? ["cuda", "cpu"] : ["cpu"],
    enableCpuMemArena: arena,
    enableMemPattern: !arena,
  });
}
