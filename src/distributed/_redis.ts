/**
 * Where the distributed strategy and `fanout worker` meet: the Redis connection, named the same
 * way on both sides, BullMQ loaded only when one of them starts, and the names of the few keys
 * fanout keeps beside BullMQ's own (the workers' roll call, shared values, cancellations).
 *
 * @module
 */

import path from "node:path";
import type { Redis } from "ioredis";
import { DistributedUnavailableError, RedisConnectionError } from "./errors.ts";
import { QUEUE_NAME, redactUrl } from "../strategy/_distributed_env.ts";

/** What BullMQ's classes are, as fanout uses them (the package is an optional peer). */
export type BullMQ = typeof import("bullmq");

let loading: Promise<BullMQ> | undefined;
/** What fanout uses of ioredis: its client class. */
export interface RedisModule {
  Redis: typeof import("ioredis").Redis;
}
let loadingRedis: Promise<RedisModule> | undefined;

/**
 * BullMQ, imported on first use.
 *
 * @throws {DistributedUnavailableError} If `bullmq` (or `ioredis`) is not installed.
 */
export function loadBullMQ(): Promise<BullMQ> {
  return loading ??= import("bullmq").then(
    (bullmq) => bullmq as BullMQ,
    (error: unknown) => {
      loading = undefined;
      throw new DistributedUnavailableError("bullmq", error);
    },
  );
}

/**
 * ioredis, imported on first use.
 *
 * @throws {DistributedUnavailableError} If `ioredis` is not installed.
 */
export function loadRedis(): Promise<RedisModule> {
  return loadingRedis ??= import("ioredis").then(({ Redis }) => ({ Redis }), (error: unknown) => {
    loadingRedis = undefined;
    throw new DistributedUnavailableError("ioredis", error);
  });
}

/**
 * Resolves once `client` is ready (ioredis retries on its own meanwhile); rejects with
 * `RedisConnectionError` past `timeoutMs`, naming the connection and the client's last error,
 * or with the reason of `signal` when it aborts first.
 */
export function whenReady(
  client: Redis,
  named: string,
  timeoutMs: number,
  signal?: AbortSignal,
): Promise<void> {
  if (client.status === "ready") return Promise.resolve();
  return new Promise<void>((resolve, reject) => {
    let last: unknown;
    const remember = (error: unknown): void => {
      last = error;
    };
    const done = (): void => {
      clearTimeout(timer);
      client.off("ready", done);
      client.off("error", remember);
      signal?.removeEventListener("abort", stop);
    };
    const stop = (): void => {
      done();
      reject(signal!.reason);
    };
    const timer = setTimeout(() => {
      done();
      reject(
        new RedisConnectionError(
          named,
          `Could not connect to Redis at ${named} within ${timeoutMs} ms (connectTimeoutMs)${
            last instanceof Error ? `: ${last.message}` : ""
          }`,
          last,
        ),
      );
    }, timeoutMs);
    client.on("error", remember);
    client.once("ready", () => {
      done();
      resolve();
    });
    if (signal?.aborted) stop();
    else signal?.addEventListener("abort", stop, { once: true });
  });
}

/** Whether `full` is a path strictly inside the folder `root` (both absolute). */
export function insideRoot(root: string, full: string): boolean {
  const relative = path.relative(root, full);
  return relative !== "" && relative !== ".." && !relative.startsWith(`..${path.sep}`) &&
    !path.isAbsolute(relative);
}

/** How to reach Redis: a `redis://` or `rediss://` (TLS) URL, or its parts. */
export interface RedisConnection {
  /**
   * The server's host name or address.
   *
   * @default "127.0.0.1"
   */
  host?: string;
  /**
   * The server's port.
   *
   * @default 6379
   */
  port?: number;
  /** The user, for Redis 6 ACLs. */
  username?: string;
  /** The password (`requirepass`, or the user's). */
  password?: string;
  /**
   * The database number.
   *
   * @default 0
   */
  db?: number;
  /** TLS, as for `node:tls` `connect` (`{}` for the defaults). */
  tls?: Record<string, unknown>;
}

/** ioredis's options, as BullMQ takes them. */
export interface ClientOptions extends RedisConnection {
  host: string;
  port: number;
  maxRetriesPerRequest: null;
  retryStrategy: (times: number) => number;
  /** Every Redis client fanout opens is named, so `CLIENT LIST` shows which are its. */
  connectionName: string;
}

/** The URL or parts, checked, as client options; and as words for messages (no password). */
export function clientOptions(
  connection: string | RedisConnection,
  role: string,
): { options: ClientOptions; named: string } {
  let parts: RedisConnection;
  if (typeof connection === "string") {
    let url: URL;
    try {
      url = new URL(connection);
    } catch {
      throw new TypeError(
        `Expected \`connection\` to be a redis:// or rediss:// URL, got ${
          JSON.stringify(redactUrl(connection))
        }`,
      );
    }
    if (url.protocol !== "redis:" && url.protocol !== "rediss:") {
      throw new TypeError(
        `Expected \`connection\` to be a redis:// or rediss:// URL, got ${url.protocol} in ${
          JSON.stringify(redactUrl(connection))
        }`,
      );
    }
    const db = url.pathname.replace(/^\//, "");
    parts = {
      host: url.hostname.replace(/^\[|\]$/g, "") || "127.0.0.1",
      port: url.port === "" ? 6379 : Number(url.port),
      username: url.username === "" ? undefined : decodeURIComponent(url.username),
      password: url.password === "" ? undefined : decodeURIComponent(url.password),
      db: db === "" ? undefined : Number(db),
      tls: url.protocol === "rediss:" ? {} : undefined,
    };
    if (parts.db !== undefined && !(Number.isInteger(parts.db) && parts.db >= 0)) {
      throw new TypeError(
        `Expected the database of \`connection\` to be a number from 0 and up, got ${
          JSON.stringify(db)
        } in ${JSON.stringify(redactUrl(connection))}`,
      );
    }
  } else if (typeof connection === "object" && connection !== null) {
    parts = connection;
  } else {
    throw new TypeError(
      `Expected \`connection\` to be a redis:// URL or { host, port, ... }, got ${
        connection === null ? "null" : typeof connection
      }`,
    );
  }
  const host = parts.host ?? "127.0.0.1";
  const port = parts.port ?? 6379;
  if (!(Number.isInteger(port) && port > 0 && port < 65536)) {
    throw new RangeError(`Expected the port of \`connection\` to be from 1 to 65535, got ${port}`);
  }
  const options: ClientOptions = {
    ...parts,
    host,
    port,
    // BullMQ's blocking clients need it; a lost connection is bounded by fanout's own timer.
    maxRetriesPerRequest: null,
    retryStrategy: (times) => Math.min(50 * 2 ** Math.min(times, 10), 1000),
    connectionName: `fanout:${role}`,
  };
  const auth = parts.username !== undefined || parts.password !== undefined
    ? `${parts.username ?? ""}${parts.password !== undefined ? ":***" : ""}@`
    : "";
  const where = host.includes(":") ? `[${host}]` : host;
  const named = `${parts.tls !== undefined ? "rediss" : "redis"}://${auth}${where}:${port}${
    parts.db ? `/${parts.db}` : ""
  }`;
  return { options, named };
}

/** The BullMQ key prefix fanout's queues live under. */
export const PREFIX = "fanout";

/** The names fanout keeps beside a queue's BullMQ keys. */
export function keys(queue: string): {
  /** Hash: one field per serving worker, its roll call as JSON. */
  workers: string;
  /** Pub/sub: job ids to stop. */
  cancel: string;
  /** Pub/sub: shared value keys to forget. */
  forget: string;
  /** Prefix of the shared values' keys. */
  share: string;
} {
  const base = `${PREFIX}:${queue}:fanout`;
  return {
    workers: `${base}:workers`,
    cancel: `${base}:cancel`,
    forget: `${base}:forget`,
    share: `${base}:share:`,
  };
}

/** A queue name BullMQ and Redis keys take: letters, digits, `-`, `_`, `.`. */
export function checkQueue(queue: unknown): string {
  if (typeof queue !== "string" || !QUEUE_NAME.test(queue)) {
    throw new TypeError(
      `Expected \`queue\` to be a name of 1 to 100 letters, digits, '.', '_' or '-', got ${
        typeof queue === "string" ? JSON.stringify(queue) : typeof queue
      }`,
    );
  }
  return queue;
}

/** How often a worker answers the roll call, and how long an answer stands. */
export const ROLL_CALL_MS = 2000;
export const ROLL_CALL_STALE_MS = 3 * ROLL_CALL_MS;

/** What a worker says of itself in the roll call. */
export interface WorkerInfo {
  /** The machine's host name. */
  host: string;
  /** The `fanout worker` process's id. */
  pid: number;
  /** Chunks it runs at once (`-j`). */
  slots: number;
  /** The runtime it runs on: `"deno"`, `"bun"` or `"node"`. */
  runtime: string;
  /** Its local pool: `"threads"` or `"processes"`. */
  strategy: string;
  /** When it last answered, in ms since the epoch (Redis's clock). */
  seen: number;
}

/** What travels in a job: one chunk. */
export interface ChunkJob {
  /** The protocol's version: a worker refuses what it does not know. */
  v: 1;
  /** The task: a module path under the shared root, and the export. */
  module: string;
  name: string;
  base: number;
  /** The call's base seed, in decimal. */
  seed?: string;
  timeoutMs?: number;
  concurrency?: number;
  /** The items, encoded (see `_codec.ts`). */
  items: string;
  /** Keys of the shared values the items hold. */
  shares?: string[];
  /** The submitter's `maxJobBytes`: the worker holds the results to it too. */
  maxBytes?: number;
}

/** What a job returns: the chunk's results, or the error that failed it. */
export type ChunkReply =
  | { ok: true; values: string; ms: number; host: string; pid: number }
  | { ok: false; error: string; host: string; pid: number };
