/**
 * Configuration: every option of an executor in one place, with its default, and the
 * `CE_PARALLEL` environment variable an operator sets to steer programs without editing them.
 *
 * Precedence, highest first: a per-call option, the executor's option, `CE_PARALLEL`, the
 * default. One exception: `CE_PARALLEL=off` forces serial even over an executor's
 * `strategy`, because that is what an operator means by it.
 *
 * @module
 */

import type { Strategy } from "./strategy/types.ts";
import type { TelemetryEvent } from "./telemetry.ts";

/** How work runs: a strategy by name, `"auto"` to choose per call, or a strategy of your own. */
export type StrategyChoice = "auto" | "serial" | "threads" | "processes" | Strategy;

/** Every option of a `ParallelExecutor`, each with its default. */
export interface ParallelConfig {
  /**
   * How work runs: on a pool of worker threads (`"threads"`: Web Workers on Deno and Bun,
   * `node:worker_threads` on Node), a pool of child processes (`"processes"`), the calling
   * thread (`"serial"`), a `Strategy` object of your own, or `"auto"`: chosen per call from
   * the workload (see `ParallelExecutor.explain`). Inside a worker of another executor,
   * `"auto"` means serial, so that nested maps do not multiply workers.
   *
   * @default {"auto"}
   */
  strategy?: StrategyChoice;
  /**
   * Most workers (threads or processes) run at once, from 1 to 1024. Pools start lazily and
   * never start more workers than the work queued for them. The default honours CPU affinity
   * and a container's CPU quota (cgroups).
   *
   * @default {the number of usable CPUs}
   */
  maxWorkers?: number;
  /**
   * Items per message to a worker: a positive integer, or `"auto"` to size chunks from the
   * measured time per item (one item per chunk for slow tasks, thousands for trivial ones).
   *
   * @default {"auto"}
   */
  chunkSize?: number | "auto";
  /**
   * With `"auto"`, a call with fewer items than this (when the count is known) runs serially:
   * starting or feeding a pool is not worth it. `0` or `1` leaves the choice to the measured
   * cost alone.
   *
   * @default {2}
   */
  minBatchSize?: number;
  /**
   * With `"auto"`, the size of one task's input in bytes, when you know it better than a
   * measurement of the first input can tell. Large inputs (10 MB and up) go to threads, where
   * `share()` avoids copies, never to processes.
   *
   * @default {measured from the first input}
   */
  taskSizeHintBytes?: number;
  /**
   * When the pool cannot start, or a worker dies (not a task's own error), run the rest of
   * the call serially instead of failing it, and record a `fallback` event. Beware: the rest
   * then runs on the calling thread, where exit calls and uncaught errors are contained but a
   * native crash or running out of memory would end your program.
   *
   * @default {false}
   */
  forceSerialOnFailure?: boolean;
  /**
   * Longest a task may run, in ms, before it fails with `TaskTimeoutError` and its worker is
   * stopped (a process gets SIGTERM, then SIGKILL; a thread on Bun or Node is terminated; a
   * busy thread on Deno cannot be stopped, so its task sees `ctx.signal` abort). With a
   * timeout, each task is sent on its own, so `chunkSize` must be 1 or `"auto"`. With
   * `"auto"` on Deno, a timeout chooses processes, the only way to stop a busy task there.
   * Overridable per call.
   *
   * @default {no limit}
   */
  timeoutMs?: number;
  /**
   * Memory cap per worker, in MB (V8's old-space limit; at least 16, below which V8 cannot start
   * a worker): `--max-old-space-size` for Deno and
   * Node processes, `resourceLimits` for Node threads. A task that exceeds it fails with
   * `WorkerCrashedError` saying so, and its worker is replaced. Bun, and threads on Deno, have
   * no such cap: there it is ignored with a warning, once per process. With `"auto"`, a cap
   * chooses processes (threads on Node).
   *
   * @default {no cap}
   */
  maxMemoryMb?: number;
  /**
   * Longest a worker may take to start, and a task's module to load in it (its import, top-level
   * `await` included), in ms. Past it the call fails: with `WorkerStartError` for a worker that
   * did not start, with `LoadTimeoutError` (naming the module) for a module that did not load;
   * the worker is stopped. This bound is separate from `timeoutMs`, whose clock starts only
   * when the task starts running in its worker.
   *
   * @default {60000}
   */
  loadTimeoutMs?: number;
  /**
   * How long a process that is being stopped (a timeout, an abort, a recycle, `terminate()`)
   * gets after SIGTERM before it is sent SIGKILL, in ms. `0` sends SIGKILL at once.
   *
   * @default {1000}
   */
  killGraceMs?: number;
  /**
   * Replace a worker (thread or process) once it has run this many tasks, at the end of the
   * chunk that reached it (a chunk is never split; with `chunkSize: 1` it is exact): a bound on
   * what a leaky task can accumulate. Replacements start on demand.
   *
   * @default {no limit}
   */
  maxTasksPerWorker?: number;
  /**
   * Replace a worker whose JavaScript heap in use exceeds this many MB after a chunk, before it
   * runs the next one (as Jest's `workerIdleMemoryLimit` and tinypool's
   * `maxMemoryLimitBeforeRecycle` do). Measured inside the worker after each chunk, only while
   * this is set. Unlike `maxMemoryMb`, it never interrupts a task, and it works on every
   * runtime.
   *
   * @default {no limit}
   */
  idleMemoryLimitMb?: number;
  /**
   * With `"auto"`, ask for isolation: run on processes, so that a crash, an exit or a runaway
   * allocation takes down only a worker.
   *
   * @default {false}
   */
  isolate?: boolean;
  /**
   * Receives telemetry: a `parallel_execution` event per call, `fallback` events, and with
   * `taskEvents` one `task` event per task. Without a listener nothing is measured.
   *
   * @default {none}
   */
  onEvent?: (event: TelemetryEvent) => void;
  /**
   * Also send a `task` event per task to `onEvent` (its index, worker, wait and run time).
   *
   * @default {false}
   */
  taskEvents?: boolean;
  /**
   * Base seed of each task's `ctx.seed`, which is mixed from it and the task's index by
   * SplitMix64 (see `seedFor`): the same on every strategy, worker count and chunk size. An
   * integer from 0 to 2^64 - 1, as a number or a bigint. Overridable per call.
   *
   * @default {0}
   */
  seed?: number | bigint;
}

/** What `CE_PARALLEL` sets. */
export interface EnvConfig {
  /** The mode token, if any; `"off"` forces serial. */
  mode?: "off" | "serial" | "threads" | "processes" | "auto";
  /** `workers=N`. */
  maxWorkers?: number;
  /** `chunk=N|auto`. */
  chunkSize?: number | "auto";
  /** `min_batch=N`. */
  minBatchSize?: number;
  /** `task_bytes=N[unit]`. */
  taskSizeHintBytes?: number;
  /** `force_serial=0|1`. */
  forceSerialOnFailure?: boolean;
  /** `timeout=ms`. */
  timeoutMs?: number;
  /** `load_timeout=ms`. */
  loadTimeoutMs?: number;
  /** `kill_grace=ms`. */
  killGraceMs?: number;
  /** `max_tasks=N`. */
  maxTasksPerWorker?: number;
  /** `idle_memory=MB`. */
  idleMemoryLimitMb?: number;
  /** `log=1`: print each call's strategy and reason to stderr. */
  log?: boolean;
}

/**
 * Most workers an executor may run at once. Each is an isolate (or a process) of its own, with
 * tens of MB of memory; far past the CPU count they only compete for it.
 */
export const MAX_WORKERS = 1024;
/** Smallest `maxMemoryMb`: below it V8 cannot even start a worker (Node aborts the program at 1–2). */
export const MIN_MEMORY_MB = 16;

const MODES = ["off", "serial", "threads", "processes", "auto"] as const;
const ACCEPTED = "a mode (off, serial, threads, processes, auto), workers=N, chunk=N|auto, " +
  "min_batch=N, task_bytes=N[B|KB|MB|GB|KiB|MiB|GiB], force_serial=0|1, timeout=ms, " +
  "load_timeout=ms, kill_grace=ms, max_tasks=N, idle_memory=MB, log=0|1";
/** Longest timer: `setTimeout` fires at once for longer delays. */
export const MAX_TIMEOUT_MS = 2 ** 31 - 1;
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
    const bad = (why: string): RangeError =>
      new RangeError(
        `Expected CE_PARALLEL tokens to be ${ACCEPTED}; got ${JSON.stringify(token)}: ${why}`,
      );
    if (token === "") throw bad("an empty token (two commas in a row, or a trailing comma)");
    const eq = token.indexOf("=");
    const key = eq < 0 ? "mode" : token.slice(0, eq).trim().toLowerCase();
    if (eq >= 0 && (key === "mode" || key === "")) throw bad(`unknown setting \`${key}\``);
    const value = eq < 0 ? token.toLowerCase() : token.slice(eq + 1).trim();
    if (seen.has(key)) throw bad(`${key === "mode" ? "a second mode" : `\`${key}\` again`}`);
    seen.add(key);
    switch (key) {
      case "mode":
        if (!(MODES as readonly string[]).includes(value)) throw bad("not a mode or a setting");
        config.mode = value as EnvConfig["mode"];
        break;
      case "workers":
        config.maxWorkers = integer(value, 1, bad, MAX_WORKERS);
        break;
      case "chunk":
        config.chunkSize = value.toLowerCase() === "auto" ? "auto" : integer(value, 1, bad);
        break;
      case "min_batch":
        config.minBatchSize = integer(value, 0, bad);
        break;
      case "task_bytes":
        config.taskSizeHintBytes = bytes(value, bad);
        break;
      case "force_serial":
        config.forceSerialOnFailure = flag(value, bad);
        break;
      case "timeout":
        config.timeoutMs = milliseconds(value, false, bad);
        break;
      case "load_timeout":
        config.loadTimeoutMs = milliseconds(value, false, bad);
        break;
      case "kill_grace":
        config.killGraceMs = milliseconds(value, true, bad);
        break;
      case "max_tasks":
        config.maxTasksPerWorker = integer(value, 1, bad);
        break;
      case "idle_memory":
        config.idleMemoryLimitMb = integer(value, 1, bad);
        break;
      case "log":
        config.log = flag(value, bad);
        break;
      default:
        throw bad(`unknown setting \`${key}\``);
    }
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
  if (!((zero ? ms >= 0 : ms > 0) && ms <= MAX_TIMEOUT_MS)) {
    throw bad(`expected milliseconds ${zero ? "from 0" : "above 0"}, up to ${MAX_TIMEOUT_MS}`);
  }
  return ms;
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
