/**
 * Single entry point to the autodiff engine `@jax-js/jax` (pinned 0.1.25).
 *
 * - Node 20 has no global `Float16Array`; the engine's `np.array(Float64Array)`
 *   path references it in an `instanceof` chain and throws a ReferenceError. We
 *   install an inert placeholder class (nothing is ever an instance of it) before
 *   the engine is loaded. Node >= 22 with a native Float16Array is untouched.
 * - The engine is loaded with a dynamic ESM import after that shim, and the wasm
 *   backend is initialised once (`await initEngine()` before any model call).
 * - Threads: the wasm backend only spreads kernels over workers when a global
 *   web-style `Worker` exists (checked when the engine module loads) *and* work
 *   is read asynchronously (`await arr.data()`); synchronous reads (`dataSync`)
 *   always run on the calling thread. Node 20 has no global `Worker`, so the
 *   engine is single-threaded here. A worker_threads shim (patching Blob,
 *   URL.createObjectURL and Worker before the engine loads) works: a large
 *   matmul chain ran 1.3-1.5x faster on 2 cores, but a full PLE per-task
 *   gradient step (B = 2048, T = 6, async reads) was slower (1628 vs 1439 ms):
 *   per-kernel postMessage round trips dominate the many small kernels. Not
 *   adopted.
 */
import type * as Jax from "@jax-js/jax";

export type JaxModule = typeof Jax;
export type JArray = Jax.Array;
export type FloatArray = Float32Array | Float64Array;
export type FloatDType = "float32" | "float64";

let mod: JaxModule | null = null;
let pending: Promise<JaxModule> | null = null;

function installFloat16Placeholder(): void {
  const g = globalThis as { Float16Array?: unknown };
  if (typeof g.Float16Array === "undefined") {
    g.Float16Array = class Float16ArrayUnavailable {};
  }
}

/** Load and initialise the engine (wasm backend). Idempotent; safe to call concurrently. */
export async function initEngine(): Promise<JaxModule> {
  if (mod) return mod;
  if (!pending) {
    pending = (async () => {
      installFloat16Placeholder();
      const m = await import("@jax-js/jax");
      const devs = await m.init("wasm");
      if (!devs.includes("wasm")) throw new Error("engine: the wasm backend failed to initialise");
      m.defaultDevice("wasm");
      mod = m;
      return m;
    })();
  }
  return pending;
}

/** The initialised engine; throws if `initEngine()` has not completed. */
export function jax(): JaxModule {
  if (!mod) throw new Error("engine: call `await initEngine()` before using models or gradients");
  return mod;
}

/**
 * Yield one macrotask so the engine's WeakRef targets from the previous steps
 * can be collected (see the module comment). Call between training steps.
 */
export function yieldToEngine(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** Wrap a typed array as an engine array of the given shape (float32 or float64 by array type). */
export function toJ(data: FloatArray, shape: number[]): JArray {
  const m = jax();
  return m.numpy.array(data, { shape, dtype: data instanceof Float64Array ? m.numpy.float64 : m.numpy.float32 });
}

/** Read an engine array back (consumes it). */
export function fromJ(a: JArray): FloatArray {
  const d = a.dataSync();
  if (d instanceof Float32Array || d instanceof Float64Array) return d;
  throw new Error(`engine: expected a float array, got ${d.constructor.name}`);
}
