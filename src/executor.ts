/**
 * `ParallelExecutor`: the facade. It validates options, owns ordering and the lifecycle, and
 * maps calls onto a strategy (serial or threads), which only runs chunks.
 *
 * @module
 */

import type { TaskFunction, TaskRef } from "./task.ts";
import { describe, toTaskSpec } from "./task.ts";
import type { TaskSpec } from "./protocol.ts";
import type { ChunkRequest, ChunkResult, Strategy, StrategyName } from "./strategy/types.ts";
import { SerialStrategy } from "./strategy/serial.ts";
import { ThreadPool } from "./strategy/threads.ts";
import { ProcessPool } from "./strategy/processes.ts";
import { detect, threadFactory } from "./runtime/mod.ts";
import process from "node:process";
import { Dispatch } from "./_dispatch.ts";
import type { DispatchOptions, Runner } from "./_dispatch.ts";
import { SharedRegistry } from "./shared.ts";
import { toBaseSeed } from "./deterministic.ts";
import type { CallPin, Shared, SharedValue } from "./shared.ts";
import { MAX_CHUNK } from "./chunking.ts";
import { ExecutorClosedError } from "./errors.ts";

export type { StrategyName } from "./strategy/types.ts";

/** Options of {@linkcode ParallelExecutor}. */
export interface ExecutorOptions {
  /**
   * How work runs: `"threads"` on a pool of worker threads (Web Workers on Deno and Bun,
   * `node:worker_threads` on Node), or `"serial"` on the calling thread.
   *
   * @default {"threads"}
   */
  strategy?: StrategyName;
  /**
   * Most threads to run at once. The pool starts lazily and never starts more threads than
   * the work queued for it.
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
   * Longest a task may run, in ms, before it fails with `TaskTimeoutError` and its worker is
   * stopped (a process gets SIGTERM, then SIGKILL; a thread on Bun or Node is terminated; a
   * busy thread on Deno cannot be stopped, so its task sees `ctx.signal` abort). With a
   * timeout, each task is sent on its own, so `chunkSize` must be 1 or `"auto"`.
   * Overridable per call.
   *
   * @default {no limit}
   */
  timeoutMs?: number;
  /**
   * Memory cap per worker, in MB (V8's old-space limit): `--max-old-space-size` for Deno and
   * Node processes, `resourceLimits` for Node threads. A task that exceeds it fails with
   * `WorkerCrashedError` saying so, and its worker is replaced. Bun, and threads on Deno, have
   * no such cap: there it is ignored with a warning, once per process.
   *
   * @default {no cap}
   */
  maxMemoryMb?: number;
  /**
   * Base seed of each task's `ctx.seed`, which is mixed from it and the task's index by
   * SplitMix64 (see `seedFor`): the same on every strategy, worker count and chunk size. An
   * integer from 0 to 2^64 - 1, as a number or a bigint. Overridable per call.
   *
   * @default {0}
   */
  seed?: number | bigint;
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
  "timeoutMs",
  "maxMemoryMb",
  "seed",
];
const MAP_OPTIONS = ["signal", "chunkSize", "timeoutMs", "seed"];
const IMAP_OPTIONS = ["signal", "chunkSize", "timeoutMs", "ordered", "seed"];
const SUBMIT_OPTIONS = ["signal", "timeoutMs", "seed"];
const STRATEGIES: readonly StrategyName[] = ["serial", "threads", "processes"];

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
  readonly #strategyName: StrategyName;
  readonly #maxWorkers: number;
  readonly #chunkSize: number | "auto";
  readonly #timeoutMs: number | undefined;
  readonly #maxMemoryMb: number | undefined;
  readonly #seed: bigint;
  #strategy: Strategy | undefined;
  readonly #shared = new SharedRegistry((id) => this.#strategy?.forget(id));
  readonly #specs = new WeakMap<object, TaskSpec>();
  /** Time per item each task took in its last auto-chunked call, oldest first. */
  readonly #estimates = new Map<string, number>();
  #active = 0;
  #idle: (() => void) | undefined;
  readonly #dispatches = new Set<Dispatch>();
  #closed = false;
  #closing: Promise<void> | undefined;
  #terminating: Promise<void> | undefined;

  /**
   * Creates an executor. No thread starts until the first call needs one.
   *
   * @param options How to run work; every field is optional.
   * @throws {TypeError} If an option has the wrong type or is unknown.
   * @throws {RangeError} If an option is out of range.
   */
  constructor(options: ExecutorOptions = {}) {
    checkKeys("options", options, EXECUTOR_OPTIONS);
    const strategy = options.strategy ?? "threads";
    if (!STRATEGIES.includes(strategy)) {
      throw new RangeError(
        `Expected \`strategy\` to be one of ${STRATEGIES.map((s) => `"${s}"`).join(", ")}, got ${
          describe(strategy)
        }`,
      );
    }
    this.#strategyName = strategy;
    this.#maxWorkers = options.maxWorkers === undefined
      ? detect().cpus
      : checkCount("maxWorkers", options.maxWorkers);
    this.#timeoutMs = checkTimeout(options.timeoutMs);
    this.#chunkSize = withTimeout(checkChunkSize(options.chunkSize ?? "auto"), this.#timeoutMs);
    this.#maxMemoryMb = options.maxMemoryMb === undefined
      ? undefined
      : checkCount("maxMemoryMb", options.maxMemoryMb);
    this.#seed = options.seed === undefined ? 0n : toBaseSeed(options.seed);
  }

  /** The strategy this executor runs work with. */
  get strategy(): StrategyName {
    return this.#strategyName;
  }

  /** Most workers (threads or processes) this executor runs at once (1 for serial). */
  get maxWorkers(): number {
    return this.#strategyName === "serial" ? 1 : this.#maxWorkers;
  }

  /** Whether `close()` or `terminate()` has been called. */
  get closed(): boolean {
    return this.#closed;
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
      const strategy = this.#ensure();
      const parts: unknown[][] = [];
      let total = 0;
      const pin = this.#begin();
      let dispatch: Dispatch;
      try {
        dispatch = new Dispatch(this.#runner(strategy, pin), spec, items, {
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
        this.#end(pin);
        throw error;
      }
      return (async () => {
        this.#dispatches.add(dispatch);
        try {
          dispatch.start();
          await dispatch.done;
        } finally {
          this.#dispatches.delete(dispatch);
          this.#end(pin);
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
    const strategy = this.#ensure();
    const ready = new Map<number, unknown[]>();
    let wake: (() => void) | undefined;
    const notify = (): void => {
      const resume = wake;
      wake = undefined;
      resume?.();
    };
    let arrival = 0;
    const pin = this.#begin();
    let dispatch: Dispatch;
    try {
      dispatch = new Dispatch(this.#runner(strategy, pin), spec, items, {
        signal: options.signal,
        chunkSize: options.chunkSize,
        timeoutMs: options.timeoutMs,
        seed: options.seed,
        ...this.#estimating(spec),
        window: strategy.concurrency *
          (options.chunkSize === "auto" ? MAX_CHUNK : options.chunkSize) * 2,
        onChunk(seq, _base, values) {
          ready.set(options.ordered ? seq : arrival++, values);
          notify();
        },
        onSettled: notify,
      });
    } catch (error) {
      this.#end(pin);
      throw error;
    }
    this.#dispatches.add(dispatch);
    try {
      dispatch.start();
      let next = 0;
      while (true) {
        const values = ready.get(next);
        if (values !== undefined) {
          ready.delete(next++);
          for (const value of values) yield value as O;
          dispatch.release(values.length);
          continue;
        }
        if (dispatch.error !== undefined || (dispatch.stopped && ready.size === 0)) {
          if (dispatch.stopped && dispatch.error === undefined) return;
          throw dispatch.error;
        }
        await new Promise<void>((resolve) => (wake = resolve));
      }
    } finally {
      dispatch.cancel(new ExecutorClosedError("The iterator was closed"), false);
      this.#dispatches.delete(dispatch);
      this.#end(pin);
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
      const strategy = this.#ensure();
      const pin = this.#begin();
      const run = this.#runner(strategy, pin).run({
        task: spec,
        base: 0,
        items: [input],
        signal,
        timeoutMs,
        seed,
      });
      return run.then((result) => {
        this.#end(pin);
        return result.values[0] as O;
      }, (error: unknown) => {
        this.#end(pin);
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
      await this.#strategy?.close();
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
      await this.#strategy?.terminate();
    })();
    return this.#terminating;
  }

  /** Same as `close()`, for `await using`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /** One call's way to the strategy: chunks that hold shared handles claim them while they run. */
  #runner(strategy: Strategy, pin: CallPin): Runner {
    return {
      concurrency: strategy.concurrency,
      run: (request: ChunkRequest): Promise<ChunkResult> => {
        let shared;
        try {
          shared = this.#shared.claim(pin, request.base, request.items);
        } catch (error) {
          return Promise.reject(error);
        }
        if (shared === undefined) return strategy.run(request);
        const run = strategy.run({ ...request, shared });
        const unclaim = (): void => this.#shared.unclaim(shared);
        run.then(unclaim, unclaim);
        return run;
      },
    };
  }

  #ensure(): Strategy {
    if (this.#closed) throw new ExecutorClosedError();
    if (this.#strategy !== undefined) return this.#strategy;
    const maxMemoryMb = this.#maxMemoryMb;
    if (maxMemoryMb !== undefined) warnIfNoCap(this.#strategyName);
    switch (this.#strategyName) {
      case "serial":
        this.#strategy = new SerialStrategy();
        break;
      case "threads":
        this.#strategy = new ThreadPool(this.#maxWorkers, threadFactory(), { maxMemoryMb });
        break;
      case "processes":
        this.#strategy = new ProcessPool(this.#maxWorkers, { maxMemoryMb });
        break;
    }
    return this.#strategy;
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
    const key = spec.kind === "module" ? `m:${spec.url}#${spec.name}` : `f:${spec.source}`;
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

  /** A call started: `close()` waits for it, and handles released meanwhile stay usable by it. */
  #begin(): CallPin {
    this.#active++;
    return this.#shared.begin();
  }

  /** A call settled. */
  #end(pin: CallPin): void {
    this.#shared.end(pin);
    if (--this.#active === 0 && this.#idle !== undefined) {
      const resolve = this.#idle;
      this.#idle = undefined;
      resolve();
    }
  }
}

function checkKeys(what: string, options: unknown, allowed: string[]): void {
  if (typeof options !== "object" || options === null) {
    throw new TypeError(`Expected \`${what}\` to be an object, got ${describe(options)}`);
  }
  for (const key of Object.keys(options)) {
    if (!allowed.includes(key)) {
      throw new TypeError(
        `Expected ${what} among ${allowed.map((k) => `\`${k}\``).join(", ")}, got \`${key}\``,
      );
    }
  }
}

function checkCount(name: string, value: unknown): number {
  if (typeof value !== "number") {
    throw new TypeError(
      `Expected \`${name}\` to be an integer from 1 and up, got ${describe(value)}`,
    );
  }
  if (!Number.isInteger(value) || value < 1) {
    throw new RangeError(
      `Expected \`${name}\` to be an integer from 1 and up, got ${describe(value)}`,
    );
  }
  return value;
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
  if (value === undefined) return undefined;
  if (typeof value !== "number") {
    throw new TypeError(
      `Expected \`timeoutMs\` to be a number of milliseconds above 0, got ${describe(value)}`,
    );
  }
  if (!(value > 0) || !Number.isFinite(value)) {
    throw new RangeError(
      `Expected \`timeoutMs\` to be a number of milliseconds above 0, got ${describe(value)}`,
    );
  }
  return value;
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
