/**
 * The Redis connection of the job queue (src/sweep/queue.ts): its URL parsed into BullMQ's
 * connection options, and redacted for every message, result and report. Kept apart from
 * queue.ts so the CLI loads BullMQ only when a queue is used.
 */

/** Redis connection options (a subset of ioredis's, as BullMQ takes them). */
export interface RedisConnectionOptions {
  host: string;
  port: number;
  username?: string;
  password?: string;
  db?: number;
  tls?: Record<string, never>;
  connectTimeout: number;
}

/** Queue name used when none is given. */
export const DEFAULT_QUEUE_NAME = "mtlcraft";
/** Environment variables read for the connection (never written anywhere). */
export const QUEUE_URL_ENV = "MTLCRAFT_QUEUE_URL";
export const QUEUE_PASSWORD_ENV = "MTLCRAFT_REDIS_PASSWORD";

export interface QueueConnection {
  /** `redis://[user:password@]host:port[/db]` or `rediss://` (TLS). */
  url: string;
  /** Password (overrides one in the URL), e.g. from MTLCRAFT_REDIS_PASSWORD. */
  password?: string;
  /** Queue name (default `mtlcraft`): sweeps on one Redis can be kept apart. */
  name?: string;
}

/** The URL with any password (and user name) replaced by `***`: safe for messages. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password || u.username) {
      u.username = u.username ? "***" : "";
      u.password = u.password ? "***" : "";
    }
    return u.toString().replace(/\/$/, "");
  } catch {
    // not parseable: hide everything between "//" and "@"
    return url.replace(/\/\/[^/@]*@/, "//***@");
  }
}

/** Every Redis URL in `args` redacted (for a command line shown in a report). */
export function redactArgs(args: readonly string[]): string[] {
  return args.map((a) => a.replace(/rediss?:\/\/[^\s]*/g, (m) => redactUrl(m)));
}

/** BullMQ/ioredis connection options from a Redis URL (no ioredis import needed). */
export function connectionOptions(c: QueueConnection): RedisConnectionOptions {
  let u: URL;
  try {
    u = new URL(c.url);
  } catch {
    throw new Error(`--queue: not a URL: ${redactUrl(c.url)} (expected redis://HOST:PORT)`);
  }
  if (u.protocol !== "redis:" && u.protocol !== "rediss:") throw new Error(`--queue: expected redis://HOST:PORT or rediss://..., got ${redactUrl(c.url)}`);
  if (!u.hostname) throw new Error(`--queue: no host in ${redactUrl(c.url)}`);
  const db = u.pathname.replace(/^\//, "");
  if (db !== "" && !/^\d+$/.test(db)) throw new Error(`--queue: the path of ${redactUrl(c.url)} must be a database number`);
  const password = c.password ?? (u.password ? decodeURIComponent(u.password) : undefined);
  return {
    host: u.hostname.replace(/^\[|\]$/g, ""),
    port: u.port ? Number(u.port) : 6379,
    ...(u.username ? { username: decodeURIComponent(u.username) } : {}),
    ...(password ? { password } : {}),
    ...(db ? { db: Number(db) } : {}),
    ...(u.protocol === "rediss:" ? { tls: {} } : {}),
    // fail fast on a refused connection instead of queueing commands forever
    connectTimeout: 10_000,
  };
}

