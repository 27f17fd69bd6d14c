/**
 * The Redis connection of the job queue (src/sweep/queue.ts): its URL parsed into BullMQ's
 * connection options, and redacted for every message, result and report. Kept apart from
 * queue.ts so the CLI loads BullMQ only when a queue is used.
 *
 * A password may come from MTLCRAFT_REDIS_PASSWORD (preferred), before the host
 * (`redis://:PW@host`) or as `?password=PW` (ioredis's form, honoured rather than silently
 * ignored); no other URL parameter is read, and an unknown one is refused by name. Messages show
 * the URL through redactUrl: user, password, query string and fragment hidden, and a URL that
 * does not parse is never shown at all.
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
  /** `redis://[user:password@]host:port[/db][?password=...]` or `rediss://` (TLS). */
  url: string;
  /** Password (overrides one in the URL), e.g. from MTLCRAFT_REDIS_PASSWORD. */
  password?: string;
  /** Queue name (default `mtlcraft`): sweeps on one Redis can be kept apart. */
  name?: string;
}

/** What a message says in place of a URL that does not parse (it is never echoed: it may hold a password). */
export const INVALID_URL_TEXT = "(a URL that is not valid)";

/**
 * The URL safe for messages: user name and password replaced by `***`, any query string
 * (`?password=...`) and fragment replaced by `?***`, a path other than a database number by
 * `/***`; a URL that does not parse is never
 * echoed (INVALID_URL_TEXT instead), since a password may sit anywhere in it.
 */
export function redactUrl(url: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return INVALID_URL_TEXT;
  }
  if (u.password || u.username) {
    u.username = u.username ? "***" : "";
    u.password = u.password ? "***" : "";
  }
  const hidden = u.search !== "" || u.hash !== "";
  u.search = "";
  u.hash = "";
  // the path is a database number; anything else in it is shown as *** (a misplaced password?)
  if (!/^\/?\d*$/.test(u.pathname)) u.pathname = "/***";
  return u.toString().replace(/\/$/, "") + (hidden ? "?***" : "");
}

const URL_IN_ARG = /rediss?:\/\//i;

/**
 * `args` with every Redis URL redacted (for a command line shown in a report): the value of
 * `--queue` (whatever its scheme) and any argument holding `redis://` or `rediss://`, from the
 * scheme to the end of the argument (a password may hold spaces).
 */
export function redactArgs(args: readonly string[]): string[] {
  return args.map((a, i) => {
    if (i > 0 && args[i - 1] === "--queue" && !a.startsWith("-")) return redactUrl(a);
    if (a.startsWith("--queue=")) return `--queue=${redactUrl(a.slice("--queue=".length))}`;
    const m = URL_IN_ARG.exec(a);
    return m ? a.slice(0, m.index) + redactUrl(a.slice(m.index)) : a;
  });
}

/**
 * Every secret a connection holds, as it may appear in a message: the password given apart,
 * the URL's user name and password and its `?password=` (raw and decoded).
 */
export function connectionSecrets(c: QueueConnection): string[] {
  const out = new Set<string>();
  const add = (s: string | null | undefined) => {
    if (!s) return;
    out.add(s);
    try {
      out.add(decodeURIComponent(s));
    } catch {
      /* not %-encoded */
    }
  };
  add(c.password);
  try {
    const u = new URL(c.url);
    add(u.password);
    add(u.username);
    add(u.searchParams.get("password"));
    if (u.search.length > 1) add(u.search.slice(1));
  } catch {
    /* not a URL: nothing parses out of it (and it is never echoed) */
  }
  return [...out].filter((s) => s.length > 0).sort((a, b) => b.length - a.length);
}

/** `msg` with the connection's URL redacted and every secret of it replaced by `***`. */
export function redactMessage(msg: string, c: QueueConnection): string {
  let out = msg.split(c.url).join(redactUrl(c.url));
  for (const s of connectionSecrets(c)) out = out.split(s).join("***");
  return out;
}

/** BullMQ/ioredis connection options from a Redis URL (no ioredis import needed). */
/** Whether a host name is this machine's loopback (127.0.0.0/8, ::1, localhost). */
function loopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, "").toLowerCase();
  return h === "localhost" || h === "::1" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}

/**
 * A warning for a plain-text `redis://` connection to another machine (its password and every
 * job payload and result cross the network unencrypted), or null: `rediss://` and loopback
 * hosts are fine. Callers log it once at start.
 */
export function plainTextWarning(c: QueueConnection): string | null {
  let u: URL;
  try {
    u = new URL(c.url);
  } catch {
    return null; // connectionOptions refuses it
  }
  if (u.protocol !== "redis:" || loopback(u.hostname)) return null;
  return `warning: --queue ${redactUrl(c.url)} is plain redis:// to another machine: its password, the jobs and their results cross the network unencrypted; use rediss:// (TLS) or a private network`;
}

export function connectionOptions(c: QueueConnection): RedisConnectionOptions {
  let u: URL;
  try {
    u = new URL(c.url);
  } catch {
    // never echoed: a password may sit anywhere in a URL that does not parse
    throw new Error("--queue: the URL is not valid (expected redis://HOST:PORT, or rediss:// for TLS)");
  }
  const shown = redactUrl(c.url);
  if (u.protocol !== "redis:" && u.protocol !== "rediss:") throw new Error(`--queue: expected redis://HOST:PORT or rediss://..., got ${shown}`);
  if (!u.hostname) throw new Error(`--queue: no host in ${shown}`);
  const db = u.pathname.replace(/^\//, "");
  if (db !== "" && !/^\d+$/.test(db)) throw new Error(`--queue: the path of ${shown} must be a database number`);
  if (u.hash) throw new Error(`--queue: ${shown} has a fragment (#...); remove it`);
  // `?password=` (as ioredis reads it) is honoured; any other parameter is refused by name
  for (const k of new Set(u.searchParams.keys())) {
    if (k !== "password") throw new Error(`--queue: unknown URL parameter "${k.slice(0, 40)}" in ${shown} (the only one read is password)`);
  }
  const inQuery = u.searchParams.getAll("password");
  if (inQuery.length > 1) throw new Error(`--queue: ${shown} gives password more than once`);
  const decode = (x: string, what: string): string => {
    try {
      return decodeURIComponent(x);
    } catch {
      throw new Error(`--queue: the ${what} in ${shown} has a bad %-escape`);
    }
  };
  const inUser = u.password ? decode(u.password, "password") : undefined;
  if (inQuery.length === 1 && inUser !== undefined && inQuery[0] !== inUser) {
    throw new Error(`--queue: ${shown} gives two different passwords (before the host and in ?password=); give one`);
  }
  const password = c.password ?? inUser ?? (inQuery[0] || undefined);
  return {
    host: u.hostname.replace(/^\[|\]$/g, ""),
    port: u.port ? Number(u.port) : 6379,
    ...(u.username ? { username: decode(u.username, "user name") } : {}),
    ...(password ? { password } : {}),
    ...(db ? { db: Number(db) } : {}),
    ...(u.protocol === "rediss:" ? { tls: {} } : {}),
    // fail fast on a refused connection instead of queueing commands forever
    connectTimeout: 10_000,
  };
}
