/**
 * `CE_PARALLEL`: the environment variable that sets an executor's defaults from outside the
 * program, parsed.
 *
 * @module
 */

import type { EnvConfig } from "./config.ts";
import { STRATEGY_NAMES } from "./strategy/types.ts";
import { MAX_TIMER_MS } from "./_checks.ts";
import { MAX_CONCURRENCY, MAX_WORKERS } from "./config.ts";
import { QUEUE_NAME, redactUrl } from "./strategy/_distributed_env.ts";

const MODES = ["off", ...STRATEGY_NAMES, "auto", "distributed"] as const;
const ACCEPTED = `a mode (${MODES.join(", ")}), workers=N, concurrency=N, chunk=N|auto, ` +
  "min_batch=N, task_bytes=N[B|KB|MB|GB|KiB|MiB|GiB], force_serial=0|1, timeout=ms, " +
  "load_timeout=ms, kill_grace=ms, max_tasks=N, idle_memory=MB, log=0|1, redis=URL, queue=NAME";
type Bad = (why: string) => RangeError;

/** Each `key=value` setting: the field of `EnvConfig` it sets, and how its value is read. */
const SETTINGS: Record<string, [keyof EnvConfig, (value: string, bad: Bad) => unknown]> = {
  workers: ["maxWorkers", (v, bad) => integer(v, 1, bad, MAX_WORKERS)],
  concurrency: ["concurrency", (v, bad) => integer(v, 1, bad, MAX_CONCURRENCY)],
  chunk: ["chunkSize", (v, bad) => v.toLowerCase() === "auto" ? "auto" : integer(v, 1, bad)],
  min_batch: ["minBatchSize", (v, bad) => integer(v, 0, bad)],
  task_bytes: ["taskSizeHintBytes", (v, bad) => bytes(v, bad)],
  force_serial: ["forceSerialOnFailure", (v, bad) => flag(v, bad)],
  timeout: ["timeoutMs", (v, bad) => milliseconds(v, false, bad)],
  load_timeout: ["loadTimeoutMs", (v, bad) => milliseconds(v, false, bad)],
  kill_grace: ["killGraceMs", (v, bad) => milliseconds(v, true, bad)],
  max_tasks: ["maxTasksPerWorker", (v, bad) => integer(v, 1, bad)],
  idle_memory: ["idleMemoryLimitMb", (v, bad) => integer(v, 1, bad)],
  log: ["log", (v, bad) => flag(v, bad)],
  redis: ["redis", (v, bad) => redisUrl(v, bad)],
  queue: ["queue", (v, bad) => queueName(v, bad)],
};

const UNITS: Record<string, number> = {
  "": 1,
  b: 1,
  kb: 1e3,
  mb: 1e6,
  gb: 1e9,
  kib: 1024,
  mib: 1024 ** 2,
  gib: 1024 ** 3,
};

/**
 * Parses `CE_PARALLEL`: comma-separated tokens, a mode and `key=value` settings. An empty or
 * blank value sets nothing.
 *
 * @param text The variable's value.
 * @returns What it sets.
 * @throws {RangeError} For a token it does not accept, quoting the token and listing what is
 *   accepted; also for a setting or mode given twice.
 *
 * @example
 * ```ts
 * import { parseParallelEnv } from "@fanout/fanout";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(parseParallelEnv("threads, workers=4, task_bytes=10MB"), {
 *   mode: "threads",
 *   maxWorkers: 4,
 *   taskSizeHintBytes: 10_000_000,
 * });
 * assert.throws(() => parseParallelEnv("workers=many"), RangeError);
 * ```
 */
export function parseParallelEnv(text: string): EnvConfig {
  const config: EnvConfig = {};
  if (text.trim() === "") return config;
  const seen = new Set<string>();
  for (const raw of text.split(",")) {
    const token = raw.trim();
    // A connection's password never shows in a message.
    const shown = /^redis\s*=/i.test(token)
      ? `redis=${redactUrl(token.replace(/^[^=]*=\s*/, ""))}`
      : token;
    const bad = (why: string): RangeError =>
      new RangeError(
        `Expected CE_PARALLEL tokens to be ${ACCEPTED}; got ${JSON.stringify(shown)}: ${why}`,
      );
    if (token === "") throw bad("an empty token (two commas in a row, or a trailing comma)");
    const eq = token.indexOf("=");
    const key = eq < 0 ? "mode" : token.slice(0, eq).trim().toLowerCase();
    if (eq >= 0 && (key === "mode" || key === "")) throw bad(`unknown setting \`${key}\``);
    const value = eq < 0 ? token.toLowerCase() : token.slice(eq + 1).trim();
    if (seen.has(key)) throw bad(`${key === "mode" ? "a second mode" : `\`${key}\` again`}`);
    seen.add(key);
    if (key === "mode") {
      if (!(MODES as readonly string[]).includes(value)) throw bad("not a mode or a setting");
      config.mode = value as EnvConfig["mode"];
      continue;
    }
    const setting = Object.hasOwn(SETTINGS, key) ? SETTINGS[key] : undefined;
    if (setting === undefined) throw bad(`unknown setting \`${key}\``);
    const [field, parse] = setting;
    (config as Record<string, unknown>)[field] = parse(value, bad);
  }
  return config;
}

function integer(
  value: string,
  min: number,
  bad: (why: string) => RangeError,
  max = Number.MAX_SAFE_INTEGER,
): number {
  const n = /^\d+$/.test(value) ? Number(value) : NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    throw bad(
      max === Number.MAX_SAFE_INTEGER
        ? `expected an integer from ${min} up`
        : `expected an integer from ${min} to ${max}`,
    );
  }
  return n;
}

function milliseconds(value: string, zero: boolean, bad: (why: string) => RangeError): number {
  const ms = /^\d+(\.\d+)?$/.test(value) ? Number(value) : NaN;
  if (!((zero ? ms >= 0 : ms > 0) && ms <= MAX_TIMER_MS)) {
    throw bad(`expected milliseconds ${zero ? "from 0" : "above 0"}, up to ${MAX_TIMER_MS}`);
  }
  return ms;
}

function redisUrl(value: string, bad: (why: string) => RangeError): string {
  if (!/^rediss?:\/\/[^\s]+$/i.test(value) || !URL.canParse(value)) {
    throw bad("expected a redis:// or rediss:// URL (a comma in it written as %2C)");
  }
  return value;
}

function queueName(value: string, bad: (why: string) => RangeError): string {
  if (!QUEUE_NAME.test(value)) {
    throw bad("expected a queue name of 1 to 100 letters, digits, '.', '_' or '-'");
  }
  return value;
}

function flag(value: string, bad: (why: string) => RangeError): boolean {
  if (value === "0" || value === "1") return value === "1";
  throw bad("expected 0 or 1");
}

function bytes(value: string, bad: (why: string) => RangeError): number {
  const match = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i.exec(value);
  const unit = match !== null && Object.hasOwn(UNITS, match[2].toLowerCase())
    ? UNITS[match[2].toLowerCase()]
    : undefined;
  const n = match === null || unit === undefined ? NaN : Math.round(Number(match[1]) * unit);
  if (!Number.isSafeInteger(n) || n < 1) {
    throw bad("expected a byte count from 1 up, such as 1048576, 512KB, 10MB or 1GiB");
  }
  return n;
}
