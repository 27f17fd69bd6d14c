/**
 * onnxruntime-node 1.30's telemetry stays off (src/engine/ort.ts): a process that creates an
 * inference session leaves nothing in its $TMPDIR (no `mat-debug-<pid>.log`, no `.ses`) and
 * nothing in its cache or home folder (no device id, no event database).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdirSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { tempDir } from "../data/helpers.ts";

test("a session created in a child process with its own TMPDIR, XDG_CACHE_HOME and HOME leaves all three empty", () => {
  const root = tempDir("telemetry");
  const dirs = { TMPDIR: join(root, "tmp"), XDG_CACHE_HOME: join(root, "cache"), HOME: join(root, "home") };
  for (const d of Object.values(dirs)) mkdirSync(d);
  const env: NodeJS.ProcessEnv = { ...process.env, ...dirs, TSX_DISABLE_CACHE: "1" };
  delete env.ORT_DISABLE_TELEMETRY;
  const r = spawnSync(process.execPath, ["--import", "tsx", join("test", "engine", "session-child.ts")], { env, encoding: "utf8", timeout: 60_000 });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^ok \d+/);
  for (const [name, d] of Object.entries(dirs)) assert.deepEqual(readdirSync(d), [], `${name} ${d} after the session`);
});
