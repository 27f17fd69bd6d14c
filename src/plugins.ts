/**
 * Plugins: a user's own balancing methods and architectures, in an ES module the CLI loads
 * by path (`--plugin ./my-method.mjs`, or `plugins` in a sweep config). `bench` loads them
 * in its own process (for planning and the report's labels) and hands their absolute paths
 * to every worker, so a plugin method trains in parallel jobs like a built-in one.
 *
 * A plugin module exports, as its default export or as named exports:
 *   methods?: MethodEntry[]          registered with registerMethod
 *   architectures?: ModelEntry[]     registered with registerArchitecture
 * e.g. `export default definePlugin({ methods: [myMethod] })`.
 */
import { existsSync, statSync } from "node:fs";
import { isAbsolute, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import type { MethodEntry } from "./balance/types.ts";
import { registerMethod } from "./balance/registry.ts";
import { registerArchitecture, type ModelEntry } from "./model/registry.ts";

export interface MtlcraftPlugin {
  methods?: readonly MethodEntry[];
  architectures?: readonly ModelEntry[];
}

/** Identity, for typing a plugin module's default export. */
export function definePlugin<P extends MtlcraftPlugin>(plugin: P): P {
  return plugin;
}

/** Registers every method and architecture of a plugin object; returns their names. */
export function registerPlugin(plugin: MtlcraftPlugin, where = "plugin"): { methods: string[]; architectures: string[] } {
  if (plugin === null || typeof plugin !== "object") throw new Error(`${where}: a plugin must be an object with methods and/or architectures`);
  const { methods, architectures } = plugin;
  if (methods !== undefined && !Array.isArray(methods)) throw new Error(`${where}: methods must be an array of method entries`);
  if (architectures !== undefined && !Array.isArray(architectures)) throw new Error(`${where}: architectures must be an array of architecture entries`);
  if (!methods?.length && !architectures?.length) throw new Error(`${where}: exports no methods and no architectures (export default { methods: [...], architectures: [...] })`);
  const out = { methods: [] as string[], architectures: [] as string[] };
  for (const m of methods ?? []) {
    try {
      registerMethod(m);
    } catch (e) {
      throw new Error(`${where}: ${(e as Error).message}`, { cause: e });
    }
    out.methods.push(m.name);
  }
  for (const a of architectures ?? []) {
    try {
      registerArchitecture(a);
    } catch (e) {
      throw new Error(`${where}: ${(e as Error).message}`, { cause: e });
    }
    out.architectures.push(a.name);
  }
  return out;
}

/** A plugin path resolved against `cwd` (the parent process's, so workers get absolute paths). */
export function resolvePluginPath(path: string, cwd = process.cwd()): string {
  const abs = isAbsolute(path) ? path : resolve(cwd, path);
  if (!existsSync(abs) || !statSync(abs).isFile()) throw new Error(`--plugin ${path}: no such file (${abs})`);
  return abs;
}

/**
 * Imports each plugin module (paths relative to `cwd`) and registers what it exports.
 * Returns the absolute paths, in order. Loading the same module twice is harmless.
 */
export async function loadPlugins(paths: readonly string[], cwd = process.cwd()): Promise<string[]> {
  const out: string[] = [];
  for (const p of paths) {
    const abs = resolvePluginPath(p, cwd);
    let mod: Record<string, unknown>;
    try {
      mod = (await import(pathToFileURL(abs).href)) as Record<string, unknown>;
    } catch (e) {
      throw new Error(`--plugin ${p}: could not be loaded: ${(e as Error).message}`, { cause: e });
    }
    const plugin = (mod.default ?? { methods: mod.methods, architectures: mod.architectures }) as MtlcraftPlugin;
    registerPlugin(plugin, `--plugin ${p}`);
    out.push(abs);
  }
  return out;
}
