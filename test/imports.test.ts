/**
 * The relative imports of src/ form no cycle. Every import counts, type-only ones and dynamic
 * `import()` included (read with TypeScript's own pre-processor, so comments and strings are not
 * mistaken for imports): a cycle of types is still two modules that can only be understood together.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import ts from "typescript";

function walk(dir: string, out: string[]): string[] {
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p, out);
    else if (/\.(ts|mts)$/.test(name) && !name.endsWith(".d.ts")) out.push(p);
  }
  return out;
}

/** file -> the files of src/ it imports by relative path. */
export function importGraph(root: string): Map<string, string[]> {
  const files = walk(root, []).map((f) => resolve(f));
  const known = new Set(files);
  const graph = new Map<string, string[]>();
  for (const f of files) {
    const info = ts.preProcessFile(readFileSync(f, "utf8"), true, true);
    const deps = new Set<string>();
    for (const i of info.importedFiles) {
      if (!i.fileName.startsWith(".")) continue;
      const target = resolve(dirname(f), i.fileName);
      const hit = [target, `${target}.ts`, join(target, "index.ts")].find((c) => known.has(c));
      if (hit) deps.add(hit);
      else if (!existsSync(target)) throw new Error(`${relative(".", f)} imports ${i.fileName}, which is not a file of ${root}`);
    }
    graph.set(f, [...deps].sort());
  }
  return graph;
}

/** The cycles of a graph: one path per strongly connected component with a cycle (Tarjan), as file lists ending where they start. */
export function findCycles(graph: ReadonlyMap<string, readonly string[]>): string[][] {
  let index = 0;
  const idx = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const on = new Set<string>();
  const sccs: string[][] = [];
  const strong = (v: string): void => {
    idx.set(v, index);
    low.set(v, index++);
    stack.push(v);
    on.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!idx.has(w)) {
        strong(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (on.has(w)) low.set(v, Math.min(low.get(v)!, idx.get(w)!));
    }
    if (low.get(v) === idx.get(v)) {
      const c: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        on.delete(w);
        c.push(w);
      } while (w !== v);
      if (c.length > 1 || (graph.get(v) ?? []).includes(v)) sccs.push(c);
    }
  };
  for (const v of [...graph.keys()].sort()) if (!idx.has(v)) strong(v);
  // one concrete cycle per component: a shortest path back to its first member (breadth-first, inside the component)
  return sccs.map((c) => {
    const inside = new Set(c);
    const start = [...c].sort()[0]!;
    const prev = new Map<string, string>();
    const queue = [start];
    let end: string | null = null;
    while (queue.length && end === null) {
      const v = queue.shift()!;
      for (const w of graph.get(v) ?? []) {
        if (!inside.has(w)) continue;
        if (w === start) {
          end = v;
          break;
        }
        if (!prev.has(w)) {
          prev.set(w, v);
          queue.push(w);
        }
      }
    }
    const path = [start];
    for (let v = end!; v !== start; v = prev.get(v)!) path.splice(1, 0, v);
    return [...path, start];
  });
}

test("the cycle finder finds a cycle, a self-import and nothing in a tree (so a clean src/ means something)", () => {
  const g = new Map<string, string[]>([
    ["a", ["b"]],
    ["b", ["c"]],
    ["c", ["a", "d"]],
    ["d", []],
    ["e", ["e"]],
    ["f", ["d"]],
  ]);
  assert.deepEqual(findCycles(g), [["a", "b", "c", "a"], ["e", "e"]]);
  assert.deepEqual(findCycles(new Map([["x", ["y"]], ["y", []]])), []);
});

test("the import graph holds the imports of src/data (prepare -> integrity, a type-only import included)", () => {
  const g = importGraph("src");
  const deps = (f: string): string[] => (g.get(resolve(f)) ?? []).map((d) => relative(".", d));
  assert.ok(deps("src/data/prepare.ts").includes(join("src", "data", "integrity.ts")));
  // `import type { Manifest, VocabFile } from "./manifest.ts"`: type-only, still an edge
  assert.ok(deps("src/data/integrity.ts").includes(join("src", "data", "manifest.ts")));
  assert.ok(g.size > 50, `only ${g.size} files of src/ read`);
});

test("src/ has no import cycle", () => {
  const cycles = findCycles(importGraph("src")).map((c) => c.map((f) => relative(".", f)).join(" -> "));
  assert.deepEqual(cycles, [], `import cycles in src/:\n${cycles.join("\n")}`);
});
