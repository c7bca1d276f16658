/**
 * The options of `distributed()`: what each means, and their checks and defaults.
 *
 * @module
 */

import process from "node:process";
import path from "node:path";
import { realpathSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { checkInteger, checkKeys, MAX_TIMER_MS } from "../_checks.ts";
import { MAX_CONCURRENCY } from "../config.ts";
import { checkQueue, clientOptions } from "./_redis.ts";
import type { RedisConnection } from "./_redis.ts";

/** Options of {@linkcode distributed}. */
export interface DistributedOptions {
  /**
   * Redis: a `redis://[user:password@]host:port[/db]` URL (`rediss://` for TLS), or its parts.
   *
   * @default "redis://127.0.0.1:6379"
   */
  connection?: string | RedisConnection;
  /**
   * The queue's name; `fanout worker --queue` must name the same.
   *
   * @default "fanout"
   */
  queue?: string;
  /**
   * The folder task modules are named relative to: a task's module must be inside it, and a
   * worker loads the same relative path inside its own `--root`. A path or a `file:` URL.
   *
   * @default the current working directory
   */
  root?: string | URL;
  /**
   * Chunks in flight at once.
   *
   * @default twice the slots of the workers serving the queue when the call begins (8 before
   *   any answered)
   */
  concurrency?: number;
  /**
   * Longest Redis may be unreachable, at the start or mid-call, before the chunks in flight
   * reject with `RedisConnectionError`.
   *
   * @default 10000
   */
  connectTimeoutMs?: number;
  /**
   * Most bytes a chunk's items, or its results, may take encoded. Past it the chunk fails with
   * `PayloadTooLargeError`.
   *
   * @default 33554432 (32 MiB)
   */
  maxJobBytes?: number;
}

/** Most bytes of a chunk's items or results, unless `maxJobBytes` says otherwise. */
export const DEFAULT_MAX_JOB_BYTES = 32 * 1024 * 1024;
const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;

/** Options checked, with their defaults. */
export interface ResolvedOptions {
  readonly client: ReturnType<typeof clientOptions>["options"];
  /** The connection as a URL without its password. */
  readonly connection: string;
  readonly queue: string;
  /** The root's real path. */
  readonly root: string;
  /** Left out: twice the slots serving the queue. */
  readonly concurrency: number | undefined;
  readonly connectTimeoutMs: number;
  readonly maxJobBytes: number;
}

/**
 * Checks `distributed()`'s options and fills in the defaults.
 *
 * @throws {TypeError} If an option has the wrong type, or is unknown.
 * @throws {RangeError} If a number is out of range.
 */
export function resolveOptions(options: DistributedOptions): ResolvedOptions {
  checkKeys("distributed options", options, [
    "connection",
    "queue",
    "root",
    "concurrency",
    "connectTimeoutMs",
    "maxJobBytes",
  ]);
  const { options: client, named } = clientOptions(
    options.connection ?? "redis://127.0.0.1:6379",
    "submitter",
  );
  const integer = (name: string, value: unknown, min: number, max: number) =>
    value === undefined ? undefined : checkInteger(name, value, min, max);
  return {
    client,
    connection: named,
    queue: checkQueue(options.queue ?? "fanout"),
    root: rootOf(options.root),
    concurrency: integer("concurrency", options.concurrency, 1, MAX_CONCURRENCY),
    connectTimeoutMs: integer("connectTimeoutMs", options.connectTimeoutMs, 1, MAX_TIMER_MS) ??
      DEFAULT_CONNECT_TIMEOUT_MS,
    maxJobBytes: integer("maxJobBytes", options.maxJobBytes, 1024, 512 * 2 ** 20) ??
      DEFAULT_MAX_JOB_BYTES,
  };
}

/** A path with its links resolved, where it exists; else as given. */
export function real(file: string): string {
  try {
    return realpathSync(file);
  } catch {
    return path.resolve(file);
  }
}

function rootOf(root: string | URL | undefined): string {
  if (root === undefined) return real(process.cwd());
  if (root instanceof URL || (typeof root === "string" && root.startsWith("file:"))) {
    return real(fileURLToPath(root));
  }
  if (typeof root === "string" && root !== "") return real(path.resolve(root));
  throw new TypeError(
    `Expected \`root\` to be a folder's path or file: URL, got ${
      typeof root === "string" ? '""' : typeof root
    }`,
  );
}
