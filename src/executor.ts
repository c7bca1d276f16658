/**
 * `ParallelExecutor`: the facade. It validates options (see config.ts), owns ordering and
 * the lifecycle, and maps each call onto a strategy (serial, threads, processes, one of your
 * own, or one chosen per call by "auto"), which only runs chunks.
 *
 * @module
 */

import type { TaskFunction, TaskRef } from "./task.ts";
import { describe, toTaskSpec } from "./task.ts";
import type { TaskSpec } from "./protocol.ts";
import type { Strategy, StrategyName } from "./strategy/types.ts";
import { SerialStrategy } from "./strategy/serial.ts";
import { ThreadPool } from "./strategy/threads.ts";
import { ProcessPool } from "./strategy/processes.ts";
import type { PoolOptions } from "./strategy/_pool.ts";
import { detect, threadFactory } from "./runtime/mod.ts";
import process from "node:process";
import { checkResult, Dispatch } from "./_dispatch.ts";
import type { DispatchOptions, Runner } from "./_dispatch.ts";
import { SharedRegistry } from "./shared.ts";
import { toBaseSeed } from "./deterministic.ts";
import type { Shared, SharedValue } from "./shared.ts";
import { MAX_TIMEOUT_MS, MAX_WORKERS, MIN_MEMORY_MB, parseParallelEnv } from "./config.ts";
import type { EnvConfig, ParallelConfig } from "./config.ts";
import type { ExecutorStats, TelemetryEvent } from "./telemetry.ts";
import { emptyStats } from "./telemetry.ts";
import { AutoRunner, decide, estimateBytes } from "./strategy/auto.ts";
import type { Choice, Decision, Workload } from "./strategy/auto.ts";
import { Call } from "./_call.ts";
import type { CallHost } from "./_call.ts";
import { MAX_CHUNK } from "./chunking.ts";
import { ExecutorClosedError } from "./errors.ts";
import { checkKeys } from "./_checks.ts";

export type { StrategyName } from "./strategy/types.ts";

/** Options of {@linkcode ParallelExecutor}: every option, with its default, is in `ParallelConfig`. */
export type ExecutorOptions = ParallelConfig;

/** What {@linkcode ParallelExecutor.prototype.explain} says. */
export interface Explanation {
  /** The strategy the call would run on. */
  strategy: string;
  /** Why, in words, e.g. "threads: 10,000 items × ~2.1 ms each = …". */
  reason: string;
  /** Workers it would use at once. */
  workers: number;
  /**
   * Whether the tasks would run on the calling thread (serial): there a task's exit call,
   * uncaught error or unhandled rejection is contained only while the task runs, and nothing
   * isolates a native crash or runaway memory. Threads and processes isolate those.
   */
  inProcess: boolean;
}

/** Options of {@linkcode ParallelExecutor.prototype.map}. */
export interface MapOptions {
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

const EXECUTOR_OPTIONS = [
  "strategy",
  "maxWorkers",
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
const MAP_OPTIONS = ["signal", "chunkSize", "timeoutMs", "seed"];
const IMAP_OPTIONS = ["signal", "chunkSize", "timeoutMs", "ordered", "seed"];
const SUBMIT_OPTIONS = ["signal", "timeoutMs", "seed"];
const STRATEGIES: readonly (StrategyName | "auto")[] = ["auto", "serial", "threads", "processes"];
/** Marks the global scope of a fanout worker (set by thread_entry.js and process_entry.js). */
const WORKER_MARK = Symbol.for("fanout.worker");
/** Where executors made inside a worker are listed (see thread_entry.js). */
const NESTED_EXECUTORS = Symbol.for("fanout.executors");
/** Default of `loadTimeoutMs`: generous, since a loaded machine can take seconds to start one. */
const LOAD_TIMEOUT_MS = 60_000;
/** Default of `killGraceMs`. */
const KILL_GRACE_MS = 1000;

/** Most tasks whose time per item an executor remembers for chunk sizing. */
const ESTIMATES = 128;

/** Runtimes and strategies already warned that `maxMemoryMb` has no effect there. */
const warnedNoCap = new Set<string>();

/**
 * Runs many independent tasks in parallel, the same way on Deno, Bun and Node, with results
 * in input order.
 *
 * A task is either an exported function of a module, named with {@linkcode tasks} (the robust
 * form), or a self-contained inline function, which is sent as source. Either is called as
 * `fn(input, ctx)` with `ctx.index` and `ctx.signal`.
 *
 * Dispose it when done (`await using`, or `close()`): live threads keep the process running.
 *
 * @example Squares on threads
 * ```ts
 * import { ParallelExecutor } from "@fanout/fanout";
 * import assert from "node:assert/strict";
 *
 * await using ex = new ParallelExecutor({ maxWorkers: 2 });
 * const squares = await ex.map((n: number) => n * n, [1, 2, 3, 4]);
 * assert.deepEqual(squares, [1, 4, 9, 16]);
 * ```
 */
export class ParallelExecutor implements AsyncDisposable {
  /** `"auto"`, a strategy by name, or a strategy object of the user's. */
  readonly #choice: "auto" | Choice | Strategy;
  /** Why a fixed strategy was chosen (the option, or CE_PARALLEL). */
  readonly #choiceReason: string;
  readonly #maxWorkers: number;
  readonly #chunkSize: number | "auto";
  readonly #minBatchSize: number;
  readonly #taskSizeHintBytes: number | undefined;
  readonly #forceSerialOnFailure: boolean;
  readonly #timeoutMs: number | undefined;
  /** What every pool is started with. */
  readonly #pool: PoolOptions;
  readonly #isolate: boolean;
  readonly #onEvent: ((event: TelemetryEvent) => void) | undefined;
  readonly #taskEvents: boolean;
  readonly #log: boolean;
  readonly #seed: bigint;
  readonly #nested: boolean;
  /** Strategies started so far, by name. */
  readonly #strategies = new Map<Choice, Strategy>();
  /** Pools that could not start, with why. */
  readonly #broken: { threads?: string; processes?: string } = {};
  readonly #stats: ExecutorStats = emptyStats();
  readonly #shared = new SharedRegistry((id) => {
    for (const strategy of this.#live()) strategy.forget?.(id);
  });
  readonly #specs = new WeakMap<object, TaskSpec>();
  /** Time per item each task took in its last auto-chunked call, oldest first. */
  readonly #estimates = new Map<string, number>();
  readonly #host: CallHost;
  #active = 0;
  /** Submits in flight. */
  #submits = 0;
  /** What serial calls gave up because the thread pool was cold (see `Workload.regretMs`). */
  #regretMs = 0;
  #idle: (() => void) | undefined;
  readonly #dispatches = new Set<Dispatch>();
  #closed = false;
  #closing: Promise<void> | undefined;
  #terminating: Promise<void> | undefined;

  /**
   * Creates an executor. No worker starts until a call needs one. Reads `CE_PARALLEL` (see
   * `parseParallelEnv`): options given here win over it, except that `CE_PARALLEL=off` forces
   * serial.
   *
   * @param options How to run work; every field is optional (see `ParallelConfig`).
   * @throws {TypeError} If an option has the wrong type or is unknown.
   * @throws {RangeError} If an option is out of range, or `CE_PARALLEL` holds a bad token.
   */
  constructor(options: ExecutorOptions = {}) {
    checkKeys("options", options, EXECUTOR_OPTIONS);
    const env = readEnv();
    const strategy = options.strategy;
    if (env.mode === "off") {
      this.#choice = "serial";
      this.#choiceReason = "serial: CE_PARALLEL=off";
    } else if (strategy !== undefined) {
      this.#choice = checkStrategy(strategy);
      this.#choiceReason = typeof this.#choice === "string"
        ? `${this.#choice}: strategy "${this.#choice}" set on the executor`
        : `${this.#choice.name}: a strategy of your own`;
    } else if (env.mode !== undefined) {
      this.#choice = env.mode;
      this.#choiceReason = `${env.mode}: CE_PARALLEL=${env.mode}`;
    } else {
      this.#choice = "auto";
      this.#choiceReason = "";
    }
    this.#maxWorkers = options.maxWorkers === undefined
      ? env.maxWorkers ?? Math.min(detect().cpus, MAX_WORKERS)
      : checkCount("maxWorkers", options.maxWorkers, 1, MAX_WORKERS);
    this.#timeoutMs = options.timeoutMs === undefined
      ? env.timeoutMs
      : checkTimeout(options.timeoutMs);
    this.#chunkSize = withTimeout(
      checkChunkSize(options.chunkSize ?? env.chunkSize ?? "auto"),
      this.#timeoutMs,
    );
    this.#minBatchSize = options.minBatchSize === undefined
      ? env.minBatchSize ?? 2
      : checkCount("minBatchSize", options.minBatchSize, 0);
    this.#taskSizeHintBytes = options.taskSizeHintBytes === undefined
      ? env.taskSizeHintBytes
      : checkCount("taskSizeHintBytes", options.taskSizeHintBytes);
    this.#forceSerialOnFailure = checkFlag(
      "forceSerialOnFailure",
      options.forceSerialOnFailure ?? env.forceSerialOnFailure ?? false,
    );
    this.#pool = {
      maxMemoryMb: options.maxMemoryMb === undefined
        ? undefined
        : checkCount("maxMemoryMb", options.maxMemoryMb, MIN_MEMORY_MB),
      loadTimeoutMs: options.loadTimeoutMs === undefined
        ? env.loadTimeoutMs ?? LOAD_TIMEOUT_MS
        : checkMs("loadTimeoutMs", options.loadTimeoutMs),
      killGraceMs: options.killGraceMs === undefined
        ? env.killGraceMs ?? KILL_GRACE_MS
        : checkMs("killGraceMs", options.killGraceMs, true),
      maxTasksPerWorker: options.maxTasksPerWorker === undefined
        ? env.maxTasksPerWorker
        : checkCount("maxTasksPerWorker", options.maxTasksPerWorker),
      idleMemoryLimitMb: options.idleMemoryLimitMb === undefined
        ? env.idleMemoryLimitMb
        : checkCount("idleMemoryLimitMb", options.idleMemoryLimitMb),
    };
    this.#isolate = checkFlag("isolate", options.isolate ?? false);
    if (options.onEvent !== undefined && typeof options.onEvent !== "function") {
      throw new TypeError(
        `Expected \`onEvent\` to be a function, got ${describe(options.onEvent)}`,
      );
    }
    this.#onEvent = options.onEvent;
    this.#taskEvents = checkFlag("taskEvents", options.taskEvents ?? false);
    this.#log = env.log ?? false;
    this.#seed = options.seed === undefined ? 0n : toBaseSeed(options.seed);
    this.#nested = (globalThis as Record<symbol, unknown>)[WORKER_MARK] !== undefined;
    // In a pool thread, the pool terminates these before it terminates the thread, so that
    // their child processes are reaped (a terminated thread cannot reap them).
    if (this.#nested) nestedExecutors().add(this);
    this.#host = {
      shared: this.#shared,
      serial: () => this.#strategyFor("serial"),
      forceSerialOnFailure: this.#forceSerialOnFailure,
      onEvent: this.#onEvent,
      taskEvents: this.#taskEvents,
      log: this.#log,
      stats: this.#stats,
      broken: (name, why) => {
        if (name === "threads" || name === "processes") this.#broken[name] = why;
      },
    };
  }

  /**
   * The strategy this executor runs work with: `"auto"` (chosen per call; see `explain()`),
   * a strategy's name, or the `name` of a strategy object of your own.
   */
  get strategy(): string {
    return typeof this.#choice === "string" ? this.#choice : this.#choice.name;
  }

  /** Most workers (threads or processes) this executor runs at once (1 for serial). */
  get maxWorkers(): number {
    if (this.#choice === "serial") return 1;
    if (typeof this.#choice === "object") return this.#choice.concurrency;
    return this.#maxWorkers;
  }

  /** Whether `close()` or `terminate()` has been called. */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Says which strategy a `map` of `task` over `items` would run on, and why, in words (the
   * same reason telemetry reports and `CE_PARALLEL=log=1` prints), and whether the tasks would
   * run on the calling thread (`inProcess`). Under `"auto"`, when the task's time per item is
   * not known from an earlier call, this measures it by running the first item once on the
   * calling thread (its result is thrown away); of an iterator, it reads that first item.
   *
   * @param task A task reference from {@linkcode tasks}, or a self-contained function.
   * @param items The inputs the call would get.
   * @returns The strategy, the reason and how many workers it would use.
   * @throws {TaskError} If the first item, run to measure it, throws.
   *
   * @example Asking auto what it would do
   * ```ts
   * import { ParallelExecutor } from "@fanout/fanout";
   * import assert from "node:assert/strict";
   *
   * await using ex = new ParallelExecutor({ maxWorkers: 4 });
   * const plan = await ex.explain((n: number) => n + 1, [1, 2, 3]);
   * assert.equal(plan.strategy, "serial");
   * assert.match(plan.reason, /^serial: 3 items × ~/);
   * ```
   */
  async explain<I, O>(
    task: TaskRef<I, O> | TaskFunction<I, O>,
    items: Iterable<I> | AsyncIterable<I>,
  ): Promise<Explanation> {
    if (this.#closed) throw new ExecutorClosedError();
    const spec = this.#spec(task);
    if (this.#choice !== "auto") {
      const strategy = this.#strategyFor(this.#choice);
      return {
        strategy: strategy.name,
        reason: this.#choiceReason,
        workers: strategy.concurrency,
        inProcess: strategy.name === "serial",
      };
    }
    const count = countOf(items);
    let sample: unknown = Array.isArray(items) ? items[0] : undefined;
    const estimate = this.#estimateOf(spec);
    const workload = (perItemMs: number | undefined, measured: Workload["measured"]) =>
      this.#workload(count, sample, this.#timeoutMs, perItemMs, measured, 0);
    let decision: Decision = decide(
      workload(estimate, estimate === undefined ? undefined : "earlier calls"),
    );
    if (decision.strategy === undefined) {
      const first = await firstOf(items);
      if (first.done) {
        return { strategy: "serial", reason: "serial: no items", workers: 1, inProcess: true };
      }
      sample = first.value;
      const result = await this.#strategyFor("serial").run({
        task: spec,
        base: 0,
        items: [sample],
        timed: true,
      });
      decision = decide(workload(Number.isFinite(result.ms) ? result.ms : 0, "probe"));
    }
    const strategy = decision.strategy ?? "serial";
    return {
      strategy,
      reason: decision.reason,
      workers: decision.workers,
      inProcess: strategy === "serial",
    };
  }

  /**
   * Running totals: calls, tasks, chunks, calls per strategy, fallbacks, crashes, respawns,
   * recycled workers,
   * and worker busy time (measured only while `onEvent` is set).
   *
   * @returns A copy of the totals.
   */
  stats(): ExecutorStats {
    let respawns = 0;
    let recycled = 0;
    for (const strategy of this.#live()) {
      respawns += strategy.respawns ?? 0;
      recycled += strategy.recycled ?? 0;
    }
    return { ...this.#stats, respawns, recycled, byStrategy: { ...this.#stats.byStrategy } };
  }

  /**
   * Runs `task` on every item and returns the results in input order. The input is read
   * lazily, as workers free up. The first failure rejects the call and cancels the rest.
   *
   * @param task A task reference from {@linkcode tasks}, or a self-contained function.
   * @param items The inputs: any iterable or async iterable.
   * @param options `signal` and `chunkSize`.
   * @returns The results, in input order.
   * @throws {TaskError} If a task throws; `index` says which, `cause` is its error.
   * @throws {WorkerCrashedError} If a worker dies while running a task.
   * @throws {NotCloneableError} If an input or result cannot be sent between threads.
   * @throws {ExecutorClosedError} If the executor is closed, or terminated during the call.
   *
   * @example Results keep input order
   * ```ts
   * import { ParallelExecutor } from "@fanout/fanout";
   * import assert from "node:assert/strict";
   *
   * await using ex = new ParallelExecutor({ strategy: "serial" });
   * assert.deepEqual(await ex.map((s: string) => s.length, ["a", "bb", "ccc"]), [1, 2, 3]);
   * ```
   */
  map<I, O>(
    task: TaskRef<I, O> | TaskFunction<I, O>,
    items: Iterable<I> | AsyncIterable<I>,
    options: MapOptions = {},
  ): Promise<O[]> {
    try {
      checkKeys("options", options, MAP_OPTIONS);
      const timeoutMs = this.#callTimeout(options.timeoutMs);
      const chunkSize = withTimeout(
        checkChunkSize(options.chunkSize ?? this.#chunkSize),
        timeoutMs,
      );
      const signal = checkSignal(options.signal);
      const seed = this.#callSeed(options.seed);
      const spec = this.#spec(task);
      const parts: unknown[][] = [];
      let total = 0;
      const { call, runner } = this.#begin("map", spec, items, timeoutMs);
      let dispatch: Dispatch;
      try {
        dispatch = new Dispatch(runner, spec, items, {
          signal,
          chunkSize,
          timeoutMs,
          seed,
          window: Infinity,
          ...this.#estimating(spec),
          onChunk(seq, _base, values) {
            parts[seq] = values;
            total += values.length;
          },
        });
      } catch (error) {
        this.#end(call, false);
        throw error;
      }
      return (async () => {
        this.#dispatches.add(dispatch);
        try {
          dispatch.start();
          await dispatch.done;
        } finally {
          this.#dispatches.delete(dispatch);
          this.#end(call, !dispatch.failed, dispatch.error);
        }
        const results = new Array<O>(total);
        let at = 0;
        for (const part of parts) {
          for (let k = 0; k < part.length; k++) results[at++] = part[k] as O;
        }
        return results;
      })();
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * Runs `task` on every item and yields the results, in input order or as they complete.
   * Reads its input lazily and keeps memory bounded: only a few chunks per worker are in
   * flight or waiting to be consumed, so a generator of millions of items is never
   * materialised. Breaking out of the loop cancels the rest.
   *
   * On a failure the iterator throws it at once; with `ordered`, results of items before the
   * failed one that had not been yielded yet are dropped.
   *
   * Note that `close()` waits for iterators that are still being consumed; break out of the
   * loop (or call `return()`) on an iterator you abandon.
   *
   * @param task A task reference from {@linkcode tasks}, or a self-contained function.
   * @param items The inputs: any iterable or async iterable.
   * @param options `signal`, `chunkSize` and `ordered`.
   * @returns An async iterator of the results.
   * @throws {TypeError} At once, for bad options or a task that cannot be sent.
   *
   * @example Streaming results as they complete
   * ```ts
   * import { ParallelExecutor } from "@fanout/fanout";
   * import assert from "node:assert/strict";
   *
   * await using ex = new ParallelExecutor({ strategy: "serial" });
   * const seen: number[] = [];
   * for await (const n of ex.imap((n: number) => n + 1, [1, 2, 3], { ordered: false })) {
   *   seen.push(n);
   * }
   * assert.deepEqual(seen.sort(), [2, 3, 4]);
   * ```
   */
  imap<I, O>(
    task: TaskRef<I, O> | TaskFunction<I, O>,
    items: Iterable<I> | AsyncIterable<I>,
    options: ImapOptions = {},
  ): AsyncIterableIterator<O> {
    checkKeys("options", options, IMAP_OPTIONS);
    const timeoutMs = this.#callTimeout(options.timeoutMs);
    const chunkSize = withTimeout(checkChunkSize(options.chunkSize ?? this.#chunkSize), timeoutMs);
    const signal = checkSignal(options.signal);
    const ordered = options.ordered ?? true;
    if (typeof ordered !== "boolean") {
      throw new TypeError(`Expected \`ordered\` to be a boolean, got ${describe(ordered)}`);
    }
    const seed = this.#callSeed(options.seed);
    const spec = this.#spec(task);
    return this.#iterate<O>(spec, items, { signal, chunkSize, timeoutMs, ordered, seed });
  }

  async *#iterate<O>(
    spec: TaskSpec,
    items: unknown,
    options: {
      signal?: AbortSignal;
      chunkSize: number | "auto";
      timeoutMs: number | undefined;
      ordered: boolean;
      seed: bigint;
    },
  ): AsyncGenerator<O, void, undefined> {
    const ready = new Map<number, unknown[]>();
    let wake: (() => void) | undefined;
    const notify = (): void => {
      const resume = wake;
      wake = undefined;
      resume?.();
    };
    let arrival = 0;
    const { call, runner } = this.#begin("imap", spec, items, options.timeoutMs);
    let dispatch: Dispatch;
    try {
      dispatch = new Dispatch(runner, spec, items, {
        signal: options.signal,
        chunkSize: options.chunkSize,
        timeoutMs: options.timeoutMs,
        seed: options.seed,
        ...this.#estimating(spec),
        window: this.maxWorkers *
          (options.chunkSize === "auto" ? MAX_CHUNK : options.chunkSize) * 2,
        onChunk(seq, _base, values) {
          ready.set(options.ordered ? seq : arrival++, values);
          notify();
        },
        onSettled: notify,
      });
    } catch (error) {
      this.#end(call, false);
      throw error;
    }
    this.#dispatches.add(dispatch);
    const signal = options.signal;
    let failure: { error: unknown } | undefined;
    /** Stops the iterator at its next step on a failure or an abort, whatever is buffered. */
    const check = (): void => {
      if (dispatch.failed) failure = { error: dispatch.error };
      else if (signal?.aborted) failure = { error: signal.reason };
      if (failure !== undefined) throw failure.error;
    };
    try {
      dispatch.start();
      let next = 0;
      while (true) {
        check();
        const values = ready.get(next);
        if (values !== undefined) {
          ready.delete(next++);
          for (const value of values) {
            yield value as O;
            check();
          }
          dispatch.release(values.length);
          continue;
        }
        if (dispatch.stopped && ready.size === 0) return;
        await new Promise<void>((resolve) => (wake = resolve));
      }
    } finally {
      const error = failure !== undefined ? failure.error : dispatch.error;
      const failed = failure !== undefined || dispatch.failed;
      dispatch.cancel(new ExecutorClosedError("The iterator was closed"), false);
      this.#dispatches.delete(dispatch);
      this.#end(call, !failed, failed ? error : undefined);
    }
  }

  /**
   * Runs `task` on one input.
   *
   * @param task A task reference from {@linkcode tasks}, or a self-contained function.
   * @param input The input.
   * @param options `signal`.
   * @returns The task's result.
   * @throws {TaskError} If the task throws.
   * @throws {WorkerCrashedError} If the worker dies while running it.
   * @throws {NotCloneableError} If the input or result cannot be sent between threads.
   * @throws {ExecutorClosedError} If the executor is closed, or terminated during the call.
   *
   * @example One task
   * ```ts
   * import { ParallelExecutor } from "@fanout/fanout";
   * import assert from "node:assert/strict";
   *
   * await using ex = new ParallelExecutor({ maxWorkers: 1 });
   * assert.equal(await ex.submit((s: string) => s.toUpperCase(), "hi"), "HI");
   * ```
   */
  submit<I, O>(
    task: TaskRef<I, O> | TaskFunction<I, O>,
    input: I,
    options: SubmitOptions = {},
  ): Promise<O> {
    try {
      checkKeys("options", options, SUBMIT_OPTIONS);
      const signal = checkSignal(options.signal);
      const timeoutMs = this.#callTimeout(options.timeoutMs);
      const seed = this.#callSeed(options.seed);
      const spec = this.#spec(task);
      const { call, runner } = this.#begin("submit", spec, [input], timeoutMs);
      const run = runner.run({
        task: spec,
        base: 0,
        items: [input],
        signal,
        timeoutMs,
        seed,
      });
      return run.then((result) => {
        this.#end(call, true);
        return result.values[0] as O;
      }, (error: unknown) => {
        this.#end(call, false, error);
        throw error;
      });
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * Shares a value with this executor's workers, so that tasks can read it without it being
   * copied for every task. Put the returned handle in task inputs (as the input, or anywhere
   * inside one); a task reads the value as `handle.value`.
   *
   * - A typed array, DataView or ArrayBuffer is copied into a `SharedArrayBuffer` once (no copy
   *   if it is already there, e.g. from {@linkcode sharedArray}). Every thread then sees the
   *   same memory: tasks can write results into disjoint ranges, and `Atomics` works. Read and
   *   write it through `handle.value` (or the array you passed, if it was already shared).
   * - Any other value is snapshot by structured clone now; later changes to the original are
   *   not seen.
   * - Each worker gets the value once, with the first task that needs it there; a task's
   *   message carries only the handle's id. Processes cannot share memory, so there each
   *   process gets one copy, and writes to it stay in that process.
   *
   * The value lives until `release()` (or `using`), or until the executor closes.
   *
   * @param value What to share.
   * @returns A handle; its `value` is the shared value.
   * @throws {NotCloneableError} If structured clone refuses the value (`path` says where).
   * @throws {TypeError} If the value is, or holds, a Shared handle.
   * @throws {ExecutorClosedError} If the executor is closed.
   *
   * @example Summing ranges of one large array
   * ```ts
   * import { ParallelExecutor } from "@fanout/fanout";
   * import type { Shared } from "@fanout/fanout";
   * import assert from "node:assert/strict";
   *
   * await using ex = new ParallelExecutor({ maxWorkers: 2 });
   * using data = ex.share(Float64Array.from({ length: 1000 }, (_, i) => i));
   * const sums = await ex.map(
   *   (job: { data: Shared<Float64Array>; start: number; end: number }) => {
   *     const values = job.data.value;
   *     let sum = 0;
   *     for (let i = job.start; i < job.end; i++) sum += values[i];
   *     return sum;
   *   },
   *   [0, 250, 500, 750].map((start) => ({ data, start, end: start + 250 })),
   * );
   * assert.equal(sums.reduce((a, b) => a + b), 499500);
   * ```
   */
  share<T>(value: T): Shared<SharedValue<T>> {
    if (this.#closed) throw new ExecutorClosedError("Cannot share a value with a closed executor");
    return this.#shared.share(value);
  }

  /**
   * Stops taking work, waits for running calls to finish, then stops every worker.
   * Idempotent: every call returns the same promise.
   *
   * @returns A promise that resolves once no worker is left.
   */
  close(): Promise<void> {
    this.#closed = true;
    this.#closing ??= (async () => {
      if (this.#active > 0) await new Promise<void>((resolve) => (this.#idle = resolve));
      this.#shared.releaseAll();
      await Promise.all(this.#live().map((strategy) => strategy.close()));
      if (this.#nested) nestedExecutors().delete(this);
    })();
    return this.#closing;
  }

  /**
   * Stops taking work, cancels running calls (they reject with `ExecutorClosedError`) and
   * stops every worker. On Deno a worker busy in synchronous code cannot be stopped from
   * outside; it sees `ctx.signal` abort and goes away once its task returns. Idempotent.
   *
   * @returns A promise that resolves once no worker is left.
   */
  terminate(): Promise<void> {
    this.#closed = true;
    this.#terminating ??= (async () => {
      const error = new ExecutorClosedError(
        "The executor was terminated while this call was running",
      );
      for (const dispatch of this.#dispatches) dispatch.cancel(error, true);
      this.#shared.releaseAll();
      await Promise.all(this.#live().map((strategy) => strategy.terminate()));
      if (this.#nested) nestedExecutors().delete(this);
    })();
    return this.#terminating;
  }

  /** Same as `close()`, for `await using`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /**
   * Begins a call, counted by `close()`: its runner is the fixed strategy's, or under
   * `"auto"` one that chooses (after measuring the first item, if need be).
   */
  #begin(
    kind: "map" | "imap" | "submit",
    spec: TaskSpec,
    items: unknown,
    timeoutMs: number | undefined,
  ): { call: Call; runner: Runner } {
    if (this.#closed) throw new ExecutorClosedError();
    const call = new Call(this.#host, kind);
    this.#active++;
    if (kind === "submit") this.#submits++;
    try {
      if (this.#choice !== "auto") {
        const broken = typeof this.#choice === "string" && this.#choice !== "serial"
          ? this.#broken[this.#choice]
          : undefined;
        if (broken !== undefined && this.#forceSerialOnFailure) {
          // The pool could not start before; with forceSerialOnFailure, do not pay for it again.
          const serial = this.#strategyFor("serial");
          call.choose(
            "serial",
            `serial: the ${this.#choice} pool could not start (${broken}); forceSerialOnFailure`,
            1,
          );
          return { call, runner: call.runner(serial) };
        }
        const strategy = this.#strategyFor(this.#choice);
        call.choose(strategy.name, this.#choiceReason, strategy.concurrency);
        return { call, runner: call.runner(strategy) };
      }
      // Submits running side by side are, together, a batch: count them as its items.
      const count = kind === "submit" ? this.#submits : countOf(items);
      const first = Array.isArray(items) ? items[0] : undefined;
      const learn = this.#estimating(spec).onEstimate!;
      const runner = new AutoRunner({
        measured: learn,
        workload: (perItemMs, measured, done, sample) =>
          this.#workload(count, sample ?? first, timeoutMs, perItemMs, measured, done),
        runner: (choice) => call.runner(this.#strategyFor(choice)),
        chosen: (decision) => {
          this.#regretMs += decision.regretMs;
          call.choose(decision.strategy!, () => decision.reason, decision.workers);
        },
      }, this.#estimateOf(spec));
      return { call, runner };
    } catch (error) {
      this.#end(call, false);
      throw error;
    }
  }

  /** A call settled. */
  #end(call: Call, ok: boolean, error?: unknown): void {
    call.end(ok, error);
    if (call.kind === "submit") this.#submits--;
    if (--this.#active === 0 && this.#idle !== undefined) {
      const resolve = this.#idle;
      this.#idle = undefined;
      resolve();
    }
  }

  /** What "auto" decides from, for one call. */
  #workload(
    items: number | undefined,
    sample: unknown,
    timeoutMs: number | undefined,
    perItemMs: number | undefined,
    measured: Workload["measured"],
    done: number,
  ): Workload {
    return {
      runtime: detect().name,
      maxWorkers: this.#maxWorkers,
      items,
      done,
      minBatchSize: this.#minBatchSize,
      perItemMs,
      measured,
      inputBytes: this.#taskSizeHintBytes ??
        (sample === undefined ? undefined : estimateBytes(sample)),
      isolate: this.#isolate,
      timeoutMs,
      maxMemoryMb: this.#pool.maxMemoryMb,
      warm: {
        threads: (this.#strategies.get("threads")?.live ?? 0) > 0,
        processes: (this.#strategies.get("processes")?.live ?? 0) > 0,
      },
      nested: this.#nested,
      broken: { ...this.#broken },
      regretMs: this.#regretMs,
    };
  }

  /** The strategy by that name (started on first use), or the user's own. */
  #strategyFor(choice: Choice | Strategy): Strategy {
    if (typeof choice === "object") return choice;
    let strategy = this.#strategies.get(choice);
    if (strategy !== undefined) return strategy;
    if (this.#pool.maxMemoryMb !== undefined) warnIfNoCap(choice);
    switch (choice) {
      case "serial":
        strategy = new SerialStrategy({ loadTimeoutMs: this.#pool.loadTimeoutMs });
        break;
      case "threads":
        strategy = new ThreadPool(this.#maxWorkers, threadFactory(), this.#pool);
        break;
      case "processes":
        strategy = new ProcessPool(this.#maxWorkers, this.#pool);
        break;
    }
    this.#strategies.set(choice, strategy);
    return strategy;
  }

  /** Every strategy this executor has started, the user's own included. */
  #live(): Strategy[] {
    const live = [...this.#strategies.values()];
    if (typeof this.#choice === "object") live.push(this.#choice);
    return live;
  }

  /** A call's timeout: its own, else the executor's. */
  #callTimeout(value: unknown): number | undefined {
    return value === undefined ? this.#timeoutMs : checkTimeout(value);
  }

  /**
   * Where auto chunking of `spec` starts, and where it records what it measured: the next call
   * of the same task then sizes its first chunks from it.
   */
  #estimating(spec: TaskSpec): Pick<DispatchOptions, "estimateMs" | "onEstimate"> {
    const key = specKey(spec);
    return {
      estimateMs: this.#estimates.get(key),
      onEstimate: (perItemMs) => {
        this.#estimates.delete(key);
        this.#estimates.set(key, perItemMs);
        if (this.#estimates.size > ESTIMATES) {
          this.#estimates.delete(this.#estimates.keys().next().value!);
        }
      },
    };
  }

  /** The time per item the last auto-chunked call of `spec` measured, if any. */
  #estimateOf(spec: TaskSpec): number | undefined {
    return this.#estimates.get(specKey(spec));
  }

  /** A call's base seed: its own, else the executor's. */
  #callSeed(value: unknown): bigint {
    return value === undefined ? this.#seed : toBaseSeed(value);
  }

  #spec(task: unknown): TaskSpec {
    if ((typeof task === "object" && task !== null) || typeof task === "function") {
      let spec = this.#specs.get(task);
      if (spec === undefined) {
        spec = toTaskSpec(task);
        this.#specs.set(task, spec);
      }
      return spec;
    }
    return toTaskSpec(task);
  }
}

function checkCount(name: string, value: unknown, min = 1, max?: number): number {
  const range = max === undefined ? `from ${min} and up` : `from ${min} to ${max}`;
  if (typeof value !== "number") {
    throw new TypeError(`Expected \`${name}\` to be an integer ${range}, got ${describe(value)}`);
  }
  if (!Number.isInteger(value) || value < min || (max !== undefined && value > max)) {
    throw new RangeError(`Expected \`${name}\` to be an integer ${range}, got ${describe(value)}`);
  }
  return value;
}

/** A duration option in ms: above 0 (or from 0, with `zero`), up to the longest timer. */
function checkMs(name: string, value: unknown, zero = false): number {
  const range = `a number of milliseconds ${zero ? "from 0" : "above 0"}, up to ${MAX_TIMEOUT_MS}`;
  if (typeof value !== "number") {
    throw new TypeError(`Expected \`${name}\` to be ${range}, got ${describe(value)}`);
  }
  if (!(zero ? value >= 0 : value > 0) || !(value <= MAX_TIMEOUT_MS)) {
    throw new RangeError(`Expected \`${name}\` to be ${range}, got ${describe(value)}`);
  }
  return value;
}

function checkFlag(name: string, value: unknown): boolean {
  if (typeof value === "boolean") return value;
  throw new TypeError(`Expected \`${name}\` to be a boolean, got ${describe(value)}`);
}

/** A strategy by name, or an object that has what a strategy needs. */
function checkStrategy(value: unknown): "auto" | Choice | Strategy {
  if (typeof value === "string") {
    if ((STRATEGIES as readonly string[]).includes(value)) return value as "auto" | Choice;
    throw new RangeError(
      `Expected \`strategy\` to be one of ${
        STRATEGIES.map((s) => `"${s}"`).join(", ")
      } or a Strategy object, got ${describe(value)}`,
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
    `Expected \`strategy\` to be one of ${
      STRATEGIES.map((s) => `"${s}"`).join(", ")
    } or a Strategy object (name, concurrency, run, close, terminate), got ${describe(value)}`,
  );
}

/** The executors made inside this worker, by its tasks (read by thread_entry.js). */
function nestedExecutors(): Set<ParallelExecutor> {
  const scope = globalThis as Record<symbol, Set<ParallelExecutor> | undefined>;
  return (scope[NESTED_EXECUTORS] ??= new Set());
}

/** `CE_PARALLEL`, parsed; empty when unset or unreadable (Deno without env permission). */
function readEnv(): EnvConfig {
  const text = detect().env("CE_PARALLEL");
  return text === undefined ? {} : parseParallelEnv(text);
}

/** The first item of any iterable or async iterable (the rest is left unread). */
async function firstOf(items: unknown): Promise<IteratorResult<unknown>> {
  const source = items as Partial<AsyncIterable<unknown> & Iterable<unknown>>;
  if (typeof source?.[Symbol.asyncIterator] === "function") {
    const iterator = source[Symbol.asyncIterator]!();
    const first = checkResult(await iterator.next());
    await iterator.return?.();
    return first;
  }
  if (typeof source?.[Symbol.iterator] === "function") {
    const iterator = source[Symbol.iterator]!();
    const first = checkResult(iterator.next());
    iterator.return?.();
    return first;
  }
  throw new TypeError(
    `Expected \`items\` to be an iterable or async iterable, got ${describe(items)}`,
  );
}

/** How many items an input holds, when that is known without reading it. */
function countOf(items: unknown): number | undefined {
  if (Array.isArray(items)) return items.length;
  if (ArrayBuffer.isView(items) && !(items instanceof DataView)) {
    return (items as unknown as { length: number }).length;
  }
  if (items instanceof Set || items instanceof Map) return items.size;
  return undefined;
}

/** A task's key for remembered measurements: its module export, or its source. */
function specKey(spec: TaskSpec): string {
  return spec.kind === "module" ? `m:${spec.url}#${spec.name}` : `f:${spec.source}`;
}

function checkChunkSize(value: unknown): number | "auto" {
  if (value === "auto") return value;
  if (typeof value !== "number") {
    throw new TypeError(
      `Expected \`chunkSize\` to be an integer from 1 and up or "auto", got ${describe(value)}`,
    );
  }
  return checkCount("chunkSize", value);
}

function checkSignal(signal: unknown): AbortSignal | undefined {
  if (signal === undefined || signal instanceof AbortSignal) return signal;
  throw new TypeError(`Expected \`signal\` to be an AbortSignal, got ${describe(signal)}`);
}

function checkTimeout(value: unknown): number | undefined {
  return value === undefined ? undefined : checkMs("timeoutMs", value);
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

/** Warns, once per process and strategy, where `maxMemoryMb` cannot be enforced. */
function warnIfNoCap(strategy: StrategyName): void {
  const runtime = detect().name;
  const capped = strategy === "processes" ? runtime !== "bun" : strategy === "threads" &&
    runtime === "node";
  const key = `${runtime}/${strategy}`;
  if (capped || warnedNoCap.has(key)) return;
  warnedNoCap.add(key);
  const where = strategy === "serial"
    ? "the serial strategy runs on the calling thread"
    : runtime === "bun"
    ? "Bun (JavaScriptCore) has no per-worker heap limit"
    : 'Deno\'s Web Workers have no per-worker heap limit (use strategy: "processes")';
  process.emitWarning(
    `fanout: maxMemoryMb has no effect with ${strategy} on ${runtime}: ${where}`,
    {
      code: "FANOUT_NO_MEMORY_CAP",
    },
  );
}
