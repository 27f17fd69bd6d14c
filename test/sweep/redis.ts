/**
 * A Redis for the queue tests, on loopback only: the one .ci/run started
 * (MTLCRAFT_TEST_REDIS=redis://127.0.0.1:PORT), else a redis-server this helper starts on a
 * free loopback port (no persistence, a temporary folder) and stops. Neither available: the
 * tests fail with a message saying what to install; they are never skipped.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { connect, createServer } from "node:net";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { tempDir } from "../data/helpers.ts";

export interface TestRedis {
  url: string;
  stop(): Promise<void>;
}

const LOOPBACK = new Set(["127.0.0.1", "localhost", "[::1]"]);

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** PING over a raw socket: true on +PONG (or an auth error: the server is up). */
function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = connect({ host: "127.0.0.1", port });
    let buf = "";
    const done = (ok: boolean) => {
      sock.destroy();
      resolve(ok);
    };
    sock.setTimeout(1000, () => done(false));
    sock.once("error", () => done(false));
    sock.on("connect", () => sock.write("PING\r\n"));
    sock.on("data", (d) => {
      buf += d.toString();
      if (buf.includes("\r\n")) done(buf.startsWith("+PONG") || buf.startsWith("-NOAUTH"));
    });
  });
}

async function startRedis(): Promise<TestRedis> {
  const dir = tempDir("redis");
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    const child: ChildProcess = spawn(
      "redis-server",
      ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir, "--protected-mode", "yes"],
      { stdio: ["ignore", "ignore", "pipe"] },
    );
    let exited = false;
    child.once("exit", () => (exited = true));
    const t0 = Date.now();
    while (!exited && Date.now() - t0 < 10_000) {
      if (await ping(port)) {
        const stop = async () => {
          if (exited) return;
          child.kill("SIGTERM");
          const t1 = Date.now();
          while (!exited && Date.now() - t1 < 5000) await new Promise((r) => setTimeout(r, 50));
          if (!exited) child.kill("SIGKILL");
        };
        process.once("exit", () => {
          if (!exited) child.kill("SIGKILL");
        });
        return { url: `redis://127.0.0.1:${port}`, stop };
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    if (!exited) child.kill("SIGKILL");
  }
  throw new Error("could not start redis-server on a loopback port (3 tries)");
}

/** The Redis for a test file (stop it in `after`). */
export async function testRedis(): Promise<TestRedis> {
  const fromEnv = process.env.MTLCRAFT_TEST_REDIS;
  if (fromEnv) {
    const host = new URL(fromEnv).host.replace(/:\d+$/, "");
    if (!LOOPBACK.has(host)) throw new Error(`MTLCRAFT_TEST_REDIS must be a loopback address (the tests contact nothing else), got host ${host}`);
    return { url: fromEnv, stop: async () => {} };
  }
  if (spawnSync("redis-server", ["--version"], { stdio: "ignore" }).status !== 0) {
    throw new Error(
      "the queue tests need Redis: set MTLCRAFT_TEST_REDIS=redis://127.0.0.1:PORT, or install redis-server " +
        "(Debian/Ubuntu: apt-get install -y redis-server) so the tests start their own; .ci/run does this",
    );
  }
  return startRedis();
}

/** A redis-server of a test's own (no persistence) that can be stopped and started again empty on the same port. */
export interface RestartableRedis extends TestRedis {
  /** Kills the server (SIGKILL: nothing saved) and, after `downMs`, starts an empty one on the same port. */
  restart(downMs: number): Promise<void>;
}

/** Starts a restartable loopback redis-server (the tests of lost jobs need one they can restart). */
export async function restartableRedis(): Promise<RestartableRedis> {
  if (spawnSync("redis-server", ["--version"], { stdio: "ignore" }).status !== 0) {
    throw new Error("the lost-job tests restart their own Redis: install redis-server (Debian/Ubuntu: apt-get install -y redis-server); .ci/run does this");
  }
  // its own folder (tempDir's cleanup would run when the calling hook ends): removed at exit
  const dir = mkdtempSync(join(tmpdir(), "mtlcraft-redis-restart-"));
  const port = await freePort();
  let child: ChildProcess | null = null;
  let exited = true;
  const up = async () => {
    const c = spawn("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir, "--protected-mode", "yes"], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    let log = "";
    c.stdout!.on("data", (d: Buffer) => (log += d.toString()));
    c.stderr!.on("data", (d: Buffer) => (log += d.toString()));
    child = c;
    let gone = false;
    exited = false;
    c.once("exit", () => (exited = gone = true));
    const t0 = Date.now();
    while (!(await ping(port))) {
      if (gone || Date.now() - t0 > 30_000) throw new Error(`redis-server did not start on port ${port}:\n${log}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  const down = async () => {
    if (!child || exited) return;
    child.kill("SIGKILL");
    const t0 = Date.now();
    while (!exited && Date.now() - t0 < 5000) await new Promise((r) => setTimeout(r, 50));
  };
  await up();
  process.once("exit", () => {
    if (child && !exited) child.kill("SIGKILL");
    rmSync(dir, { recursive: true, force: true });
  });
  return {
    url: `redis://127.0.0.1:${port}`,
    stop: down,
    async restart(downMs) {
      await down();
      await new Promise((r) => setTimeout(r, downMs));
      await up();
    },
  };
}
