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

import type { Strategy, StrategyName } from "./strategy/types.ts";
import type { TelemetryEvent } from "./telemetry.ts";
import type { TaskFunction, TaskRef } from "./task.ts";
import type { Progress } from "./progress.ts";

/** How work runs: a strategy by name, `"auto"` to choose per call, or a strategy of your own. */
export type StrategyChoice = "auto" | StrategyName | Strategy;

/** Every option of a `ParallelExecutor`, each with its default. */
export interface ParallelConfig {
  /**
   * How work runs: on a pool of worker threads (`"threads"`: Web Workers on Deno and Bun,
   * `node:worker_threads` on Node), a pool of child processes (`"processes"`), the calling
   * thread one item at a time (`"serial"`) or with many in flight (`"async"`, for tasks that
   * mostly wait: see `concurrency`), a `Strategy` object of your own, or `"auto"`: chosen per
   * call from the workload (see `ParallelExecutor.explain`). Inside a worker of another executor,
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
   * How many items of a call may be in flight at once for tasks that return promises: per
   * worker on threads and processes, on the calling thread for `"serial"` and `"async"`. From 1
   * to 65,536. With 1 each item starts once the one before it settled: what CPU-bound work
   * wants. More lets tasks that wait (on the network, files, subprocesses) overlap their waits.
   * On threads and processes, auto chunking then puts at least this many items in a chunk; with
   * `timeoutMs` each task is sent on its own, so there each worker runs one at a time.
   * Overridable per `map` and `imap` call; submits use the executor's.
   *
   * @default {1; `"async"` 64; with `"auto"`, chosen from what the first items measured}
   */
  concurrency?: number;
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
  /**
   * The mode token, if any; `"off"` forces serial; `"distributed"` runs on `fanout worker`
   * processes through Redis (see `@fanout/fanout/distributed`).
   */
  mode?: "off" | "auto" | "distributed" | StrategyName;
  /** `workers=N`. */
  maxWorkers?: number;
  /** `concurrency=N`. */
  concurrency?: number;
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
  /** `redis=URL`: where the distributed mode's Redis is (default `redis://127.0.0.1:6379`). */
  redis?: string;
  /** `queue=NAME`: the distributed mode's queue (default `fanout`). */
  queue?: string;
}

/**
 * Most workers an executor may run at once. Each is an isolate (or a process) of its own, with
 * tens of MB of memory; far past the CPU count they only compete for it.
 */
export const MAX_WORKERS = 1024;
/** Most items of a call in flight at once (`concurrency`). */
export const MAX_CONCURRENCY = 65_536;
/** Items in flight at once on the `"async"` strategy when `concurrency` is not set. */
export const ASYNC_CONCURRENCY = 64;
/** Smallest `maxMemoryMb`: below it V8 cannot even start a worker (Node aborts the program at 1–2). */
export const MIN_MEMORY_MB = 16;

/** What {@linkcode ParallelExecutor.prototype.explain} says. */
export interface Explanation {
  /** The strategy the call would run on. */
  strategy: string;
  /** Why, in words, e.g. "threads: 10,000 items × ~2.1 ms each = …". */
  reason: string;
  /** Workers it would use at once. */
  workers: number;
  /**
   * Items it would keep in flight at once: on the calling thread for `"serial"` and `"async"`,
   * per worker for threads and processes (see `ExecutorOptions.concurrency`).
   */
  concurrency: number;
  /**
   * Whether the tasks would run on the calling thread (serial): there a task's exit call,
   * uncaught error or unhandled rejection is contained only while the task runs, and nothing
   * isolates a native crash or runaway memory. Threads and processes isolate those.
   */
  inProcess: boolean;
}

/** Options of {@linkcode ParallelExecutor.prototype.map}. */
export interface MapOptions {
  /**
   * Items of this call in flight at once (see `ExecutorOptions.concurrency`).
   *
   * @default {the executor's `concurrency`}
   */
  concurrency?: number;
  /** Cancels the call: it rejects with `signal.reason`, queued work stops, running work is stopped. */
  signal?: AbortSignal;
  /**
   * Items per message to a worker for this call.
   *
   * @default {the executor's `chunkSize`}
   */
  chunkSize?: number | "auto";
  /**
   * Longest each task of this call may run, in ms (see `ExecutorOptions.timeoutMs`).
   *
   * @default {the executor's `timeoutMs`}
   */
  timeoutMs?: number;
  /**
   * Base seed of this call's `ctx.seed` (see `ExecutorOptions.seed`).
   *
   * @default {the executor's `seed`}
   */
  seed?: number | bigint;
  /**
   * Told how far the call has come (hand it to a `progressReporter`'s `update` to draw a bar):
   * `done` counts the items whose result or error came back, `failed` those that failed,
   * `total` is the input's length when it is known without reading the input (an array, a
   * typed array, a `Set` or a `Map`; for an iterator or a generator `undefined`), `elapsedMs`
   * runs from the start of the call and `etaMs` is `estimateEta`'s.
   *
   * It is called as results come back, at most every 100 ms (so a fast map pays nothing for
   * it), and always once more at the end, before `map` settles or `imap`'s iterator ends: with
   * `done === total` after a success, with `failed` of 1 or more after a failure, with the
   * counts so far after a cancellation or a loop left early. It is called on the calling thread
   * and not awaited. If it throws, or the promise it returns rejects while the call runs, the
   * call stops as a failed task stops it, and fails with that error (a call that had already
   * failed keeps its own error); a rejection after the call ended is reported as a warning
   * (`FANOUT_PROGRESS_REJECTED`), never left unhandled.
   *
   * @default {none}
   */
  onProgress?: (progress: Progress) => void;
}

/** Options of {@linkcode ParallelExecutor.prototype.imap}. */
export interface ImapOptions extends MapOptions {
  /**
   * `true` yields results in input order; `false` yields each as soon as it is ready.
   *
   * @default {true}
   */
  ordered?: boolean;
}

/** Options of {@linkcode ParallelExecutor.prototype.submit}. */
export interface SubmitOptions {
  /** Cancels the call: it rejects with `signal.reason` and the running task is stopped. */
  signal?: AbortSignal;
  /**
   * Longest the task may run, in ms (see `ExecutorOptions.timeoutMs`).
   *
   * @default {the executor's `timeoutMs`}
   */
  timeoutMs?: number;
  /**
   * Base seed of the task's `ctx.seed`; a submitted task has index 0.
   *
   * @default {the executor's `seed`}
   */
  seed?: number | bigint;
}

/** Options of {@linkcode ParallelExecutor.prototype.warmup}. */
export interface WarmupOptions {
  /**
   * Tasks to load in every worker ahead of the first call (their modules imported, inline
   * functions compiled), so that no call pays for it. On processes the module loads with a
   * process's first chunk instead, as it always does.
   */
  tasks?: readonly (TaskRef<never, unknown> | TaskFunction<never, unknown>)[];
}
