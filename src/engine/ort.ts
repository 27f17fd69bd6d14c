/**
 * The compute engine: onnxruntime-node (pinned 1.30.0) running the graphs that
 * src/graph builds.
 *
 * - Install: the package's CPU binaries ship inside it. Its post-install step
 *   would download CUDA binaries, which fails offline, so the project's `.npmrc`
 *   says `onnxruntime-node-install=skip`. A GPU user installs them with
 *   `npm rebuild onnxruntime-node --onnxruntime-node-install=cuda12` (see the
 *   README) and passes `--device cuda`.
 * - Threads: `intraOpNumThreads` = `threads` (default: every core), one
 *   inter-op thread, sequential execution. On CPUs with AVX-512, MLAS picks those
 *   kernels by itself.
 * - Sessions are created once per compiled graph (src/engine/programs.ts) and
 *   reused for every step.
 */
import { existsSync } from "node:fs";
import { availableParallelism } from "node:os";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import * as ort from "onnxruntime-node";

/** @internal Not in the package's declarations: onnxruntime's types need the DOM lib, which a Node consumer lacks. */
export { ort };

export type Device = "cpu" | "cuda";
export const DEVICES: readonly Device[] = ["cpu", "cuda"];

export interface EngineOptions {
  /** Intra-op threads (>= 1). */
  threads: number;
  device: Device;
  /**
   * ORT's CPU memory arena (default off). The arena keeps every buffer it ever
   * handed out: for PLE at batch 4096 it doubled the process's RSS (about 1.2 GB
   * against 0.6 GB with a per-task and a weighted-sum program) for a step time
   * within the noise (0.94-1.05x in alternated runs). Memory patterns stay on, so
   * each run still allocates its planned buffers in one block.
   */
  memArena: boolean;
}

let current: EngineOptions = { threads: availableParallelism(), device: "cpu", memArena: false };

/** Set the engine's threads / device for sessions created from now on. */
export function configureEngine(o: Partial<EngineOptions>): EngineOptions {
  const next = { ...current, ...o };
  if (!Number.isInteger(next.threads) || next.threads < 1) throw new Error(`engine: threads must be an integer >= 1, got ${String(next.threads)}`);
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
      "Install it with `npm rebuild onnxruntime-node --onnxruntime-node-install=cuda12` on a machine with internet access and CUDA 12, or use --device cpu"
    );
  }
  return null;
}

/** Create an inference session for serialized ONNX bytes with the current engine options. @internal */
export async function createSession(bytes: Uint8Array): Promise<ort.InferenceSession> {
  const o = current;
  return ort.InferenceSession.create(bytes, {
    intraOpNumThreads: o.threads,
    interOpNumThreads: 1,
    executionMode: "sequential",
    graphOptimizationLevel: "all",
    executionProviders: o.device === "cuda" ? ["cuda", "cpu"] : ["cpu"],
    enableCpuMemArena: o.memArena,
    enableMemPattern: true,
  });
}
