/**
 * The executor's options, resolved once: what `new ParallelExecutor(options)` was given,
 * checked, merged with `CE_PARALLEL` and filled with defaults; and each call's options
 * (`map`, `imap`, `submit`) merged with those. Every check is one of `_checks.ts`.
 *
 * @module
 */

import type { ParallelConfig } from "./config.ts";
import { MAX_CONCURRENCY, MAX_WORKERS, MIN_MEMORY_MB } from "./config.ts";
import { parseParallelEnv } from "./env.ts";
import type { EnvConfig } from "./config.ts";
import type { PoolOptions } from "./strategy/_pool.ts";
import type { Strategy, StrategyName } from "./strategy/types.ts";
import { STRATEGY_NAMES } from "./strategy/types.ts";
import { DistributedFromEnv } from "./strategy/_distributed_env.ts";
import type { TelemetryEvent } from "./telemetry.ts";
import type { Progress } from "./progress.ts";
import { detect } from "./runtime/mod.ts";
import { KILL_GRACE_MS } from "./runtime/_kill.ts";
import { toBaseSeed } from "./seeds.ts";
import {
  checkFlag,
  checkFunction,
  checkInteger,
  checkKeys,
  checkMs,
  checkSignal,
  describe,
} from "./_checks.ts";

/** Default of `loadTimeoutMs`: generous, since a loaded machine can take seconds to start one. */
const LOAD_TIMEOUT_MS = 60_000;

const EXECUTOR_OPTIONS = [
  "strategy",
  "maxWorkers",
  "concurrency",
  "chunkSize",
  "minBatchSize",
  "taskSizeHintBytes",
  "forceSerialOnFailure",
  "timeoutMs",
  "maxMemoryMb",
  "loadTimeoutMs",
  "killGraceMs",
  "maxTasksPerWorker",
  "idleMemoryLimitMb",
  "isolate",
  "onEvent",
  "taskEvents",
  "seed",
];

/** The options each call method takes. */
const CALL_OPTIONS = {
  map: ["signal", "chunkSize", "concurrency", "timeoutMs", "seed", "onProgress"],
  imap: ["signal", "chunkSize", "concurrency", "timeoutMs", "ordered", "seed", "onProgress"],
  submit: ["signal", "timeoutMs", "seed"],
} as const;

/** Which method made a call. */
export type CallKind = keyof typeof CALL_OPTIONS;

/** An executor's options, resolved. */
export interface Settings {
  /** `"auto"`, a built-in strategy by name, or a strategy object of the user's. */
  readonly choice: "auto" | StrategyName | Strategy;
  /** Why a fixed strategy was chosen (the option, or CE_PARALLEL); empty under auto. */
  readonly choiceReason: string;
  readonly maxWorkers: number;
  /** Items in flight at once, as set (option or CE_PARALLEL); `undefined`: the strategy's default. */
  readonly concurrency: number | undefined;
  readonly chunkSize: number | "auto";
  readonly minBatchSize: number;
  readonly taskSizeHintBytes: number | undefined;
  readonly forceSerialOnFailure: boolean;
  readonly timeoutMs: number | undefined;
  /** What every pool is started with. */
  readonly pool: PoolOptions;
  readonly isolate: boolean;
  readonly onEvent: ((event: TelemetryEvent) => void) | undefined;
  readonly taskEvents: boolean;
  /** `CE_PARALLEL=log=1`. */
  readonly log: boolean;
  readonly seed: bigint;
}

/** One call's options, resolved against the executor's. */
export interface CallSettings {
  readonly signal: AbortSignal | undefined;
  readonly chunkSize: number | "auto";
  /** Items in flight at once, as set; `undefined`: the strategy's default (or auto's choice). */
  readonly concurrency: number | undefined;
  readonly timeoutMs: number | undefined;
  readonly seed: bigint;
  readonly ordered: boolean;
  /** `map` and `imap`: told how far the call has come (see `MapOptions.onProgress`). */
  readonly onProgress: ((progress: Progress) => void) | undefined;
}

/**
 * Resolves an executor's options. Options given here win over `CE_PARALLEL`, except that
 * `CE_PARALLEL=off` forces serial.
 *
 * @throws {TypeError} If an option has the wrong type or is unknown.
 * @throws {RangeError} If an option is out of range, or `CE_PARALLEL` holds a bad token.
 */
export function resolveSettings(options: ParallelConfig): Settings {
  checkKeys("options", options, EXECUTOR_OPTIONS);
  const env = readEnv();
  let choice: Settings["choice"] = "auto";
  let choiceReason = "";
  if (env.mode === "off") {
    choice = "serial";
    choiceReason = "serial: CE_PARALLEL=off";
  } else if (options.strategy !== undefined) {
    choice = checkStrategy(options.strategy);
    choiceReason = typeof choice === "string"
      ? `${choice}: strategy "${choice}" set on the executor`
      : `${choice.name}: a strategy of your own`;
  } else if (env.mode === "distributed") {
    choice = new DistributedFromEnv({ connection: env.redis, queue: env.queue });
    choiceReason = "distributed: CE_PARALLEL=distributed";
  } else if (env.mode !== undefined) {
    choice = env.mode;
    choiceReason = `${env.mode}: CE_PARALLEL=${env.mode}`;
  }
  const timeoutMs = options.timeoutMs === undefined
    ? env.timeoutMs
    : checkMs("timeoutMs", options.timeoutMs);
  const count = (name: keyof ParallelConfig & keyof EnvConfig, min = 1, max = Infinity) =>
    options[name] === undefined
      ? env[name] as number | undefined
      : checkInteger(name, options[name], min, max);
  return {
    choice,
    choiceReason,
    maxWorkers: count("maxWorkers", 1, MAX_WORKERS) ?? Math.min(detect().cpus, MAX_WORKERS),
    concurrency: count("concurrency", 1, MAX_CONCURRENCY),
    timeoutMs,
    chunkSize: withTimeout(checkChunkSize(options.chunkSize ?? env.chunkSize ?? "auto"), timeoutMs),
    minBatchSize: count("minBatchSize", 0) ?? 2,
    taskSizeHintBytes: count("taskSizeHintBytes"),
    forceSerialOnFailure: checkFlag(
      "forceSerialOnFailure",
      options.forceSerialOnFailure ?? env.forceSerialOnFailure ?? false,
    ),
    pool: {
      maxMemoryMb: options.maxMemoryMb === undefined
        ? undefined
        : checkInteger("maxMemoryMb", options.maxMemoryMb, MIN_MEMORY_MB),
      loadTimeoutMs: options.loadTimeoutMs === undefined
        ? env.loadTimeoutMs ?? LOAD_TIMEOUT_MS
        : checkMs("loadTimeoutMs", options.loadTimeoutMs),
      killGraceMs: options.killGraceMs === undefined
        ? env.killGraceMs ?? KILL_GRACE_MS
        : checkMs("killGraceMs", options.killGraceMs, { zero: true }),
      maxTasksPerWorker: count("maxTasksPerWorker"),
      idleMemoryLimitMb: count("idleMemoryLimitMb"),
    },
    isolate: checkFlag("isolate", options.isolate ?? false),
    onEvent: checkFunction("onEvent", options.onEvent),
    taskEvents: checkFlag("taskEvents", options.taskEvents ?? false),
    log: env.log ?? false,
    seed: options.seed === undefined ? 0n : toBaseSeed(options.seed),
  };
}

/**
 * Resolves one call's options against the executor's.
 *
 * @throws {TypeError} If an option has the wrong type or is unknown.
 * @throws {RangeError} If an option is out of range.
 */
export function resolveCall(kind: CallKind, settings: Settings, options: unknown): CallSettings {
  checkKeys("options", options, CALL_OPTIONS[kind]);
  const o = options as Record<string, unknown>;
  const timeoutMs = o.timeoutMs === undefined
    ? settings.timeoutMs
    : checkMs("timeoutMs", o.timeoutMs);
  // The executor's own chunk size was checked against its own timeout already.
  const chunkSize = kind === "submit"
    ? 1
    : o.chunkSize === undefined && o.timeoutMs === undefined
    ? settings.chunkSize
    : withTimeout(checkChunkSize(o.chunkSize ?? settings.chunkSize), timeoutMs);
  const signal = checkSignal(o.signal);
  const ordered = o.ordered ?? true;
  if (typeof ordered !== "boolean") {
    throw new TypeError(`Expected \`ordered\` to be a boolean, got ${describe(ordered)}`);
  }
  const seed = o.seed === undefined ? settings.seed : toBaseSeed(o.seed);
  const concurrency = o.concurrency === undefined
    ? settings.concurrency
    : checkInteger("concurrency", o.concurrency, 1, MAX_CONCURRENCY);
  const onProgress = checkFunction("onProgress", o.onProgress as CallSettings["onProgress"]);
  return { signal, chunkSize, concurrency, timeoutMs, seed, ordered, onProgress };
}

/** A strategy by name, or an object that has what a strategy needs. */
function checkStrategy(value: unknown): Settings["choice"] {
  const names = ["auto", ...STRATEGY_NAMES].map((s) => `"${s}"`).join(", ");
  if (typeof value === "string") {
    if (value === "auto" || (STRATEGY_NAMES as readonly string[]).includes(value)) {
      return value as Settings["choice"];
    }
    throw new RangeError(
      `Expected \`strategy\` to be one of ${names} or a Strategy object, got ${describe(value)}`,
    );
  }
  const candidate = value as Partial<Strategy> | null;
  if (
    typeof candidate === "object" && candidate !== null &&
    typeof candidate.run === "function" && typeof candidate.close === "function" &&
    typeof candidate.terminate === "function" && typeof candidate.name === "string" &&
    Number.isInteger(candidate.concurrency) && candidate.concurrency! >= 1
  ) {
    return candidate as Strategy;
  }
  throw new TypeError(
    `Expected \`strategy\` to be one of ${names} or a Strategy object (name, concurrency, run, ` +
      `close, terminate), got ${describe(value)}`,
  );
}

function checkChunkSize(value: unknown): number | "auto" {
  if (value === "auto") return value;
  if (typeof value !== "number") {
    throw new TypeError(
      `Expected \`chunkSize\` to be an integer from 1 and up or "auto", got ${describe(value)}`,
    );
  }
  return checkInteger("chunkSize", value);
}

/**
 * The chunk size to use with a timeout: each task is watched on its own, so "auto" becomes 1
 * and a larger fixed size is refused.
 */
function withTimeout(chunkSize: number | "auto", timeoutMs: number | undefined): number | "auto" {
  if (timeoutMs === undefined) return chunkSize;
  if (chunkSize !== "auto" && chunkSize > 1) {
    throw new RangeError(
      `Expected \`chunkSize\` to be 1 or "auto" when \`timeoutMs\` is set (each task is timed ` +
        `on its own), got chunkSize ${chunkSize} with timeoutMs ${timeoutMs}`,
    );
  }
  return 1;
}

/** `CE_PARALLEL`, parsed; empty when unset or unreadable (Deno without env permission). */
function readEnv(): EnvConfig {
  const text = detect().env("CE_PARALLEL");
  return text === undefined ? {} : parseParallelEnv(text);
}
