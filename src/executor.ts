/**
 * `ParallelExecutor`: the facade. It resolves its options once (`_options.ts`), keeps its
 * state in a `Core` (`_core.ts`), and hands every call to the pipeline (`_pipeline.ts`, where
 * the diagram of a call is), which runs it on a strategy (serial, threads, processes, one of
 * your own, or one chosen per call by "auto") and returns what the strategy gives back.
 *
 * @module
 */

import type { TaskFunction, TaskRef } from "./task.ts";
import { specOf } from "./task.ts";
import type { Shared, SharedValue } from "./shared.ts";
import type { ParallelConfig } from "./config.ts";
import type { ExecutorStats } from "./telemetry.ts";
import type { CallKind } from "./_options.ts";
import { resolveCall, resolveSettings } from "./_options.ts";
import { Core } from "./_core.ts";
import { startCall } from "./_route.ts";
import { directStrategy, submitDirect, submitRouted } from "./_submit.ts";
import { explain } from "./_explain.ts";
import type { Pipeline } from "./_pipeline.ts";
import { collect, iterate } from "./_pipeline.ts";
import { MAX_CHUNK } from "./chunking.ts";
import { ExecutorClosedError } from "./errors.ts";
import { checkKeys, describe } from "./_checks.ts";

import type {
  Explanation,
  ImapOptions,
  MapOptions,
  SubmitOptions,
  WarmupOptions,
} from "./config.ts";

/** Options of {@linkcode ParallelExecutor}: every option, with its default, is in `ParallelConfig`. */
export type ExecutorOptions = ParallelConfig;

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
  readonly #core: Core;

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
    this.#core = new Core(resolveSettings(options), this);
  }

  /**
   * The strategy this executor runs work with: `"auto"` (chosen per call; see `explain()`),
   * a strategy's name, or the `name` of a strategy object of your own.
   */
  get strategy(): string {
    const choice = this.#core.settings.choice;
    return typeof choice === "string" ? choice : choice.name;
  }

  /** Most workers (threads or processes) this executor runs at once (1 for serial). */
  get maxWorkers(): number {
    const { choice, maxWorkers } = this.#core.settings;
    if (choice === "serial" || choice === "async") return 1;
    if (typeof choice === "object") return choice.concurrency;
    return maxWorkers;
  }

  /** Whether `close()` or `terminate()` has been called. */
  get closed(): boolean {
    return this.#core.closed;
  }

  /**
   * Says which strategy a `map` of `task` over `items` would run on, and why, in words (the
   * same reason telemetry reports and `CE_PARALLEL=log=1` prints), and whether the tasks would
   * run on the calling thread (`inProcess`). Under `"auto"`, when the task's time per item is
   * not known from an earlier call, this runs the same probe `map` would: the first items, on
   * the calling thread, until about a millisecond of work was measured (their results are
   * thrown away; of an iterator, it reads those items). What it says is what `map` does.
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
    return await explain(this.#begin("map", task, items, {}, true), this.#core.settings);
  }

  /**
   * Starts the pool ahead of work: every worker, up to `maxWorkers`, and, with `tasks`, their
   * modules loaded in each thread, so that a service pays start-up before its first request
   * rather than during it. Without it a pool starts one worker per queued chunk, when the
   * chunk comes. Calling it again starts nothing more; calls may run meanwhile.
   *
   * What it starts follows the strategy: the thread or process pool; for `"auto"` the thread
   * pool (auto's choice for most parallel work); nothing for `"serial"` or a strategy of your
   * own.
   *
   * @example Start the threads before serving
   * ```ts
   * import { ParallelExecutor } from "@fanout/fanout";
   * import assert from "node:assert/strict";
   *
   * await using ex = new ParallelExecutor({ strategy: "threads", maxWorkers: 2 });
   * const double = (n: number) => n * 2;
   * await ex.warmup({ tasks: [double] });
   * assert.equal(await ex.submit(double, 21), 42);
   * ```
   *
   * @throws {ExecutorClosedError} (rejects) If the executor is closed.
   * @throws {WorkerStartError} (rejects) If no worker could start.
   */
  warmup(options: WarmupOptions = {}): Promise<void> {
    try {
      const core = this.#core;
      checkKeys("warmup options", options, ["tasks"]);
      const tasks = options.tasks ?? [];
      if (!Array.isArray(tasks)) {
        throw new TypeError(
          `Expected warmup's tasks to be an array of tasks, got ${describe(tasks)}`,
        );
      }
      const specs = tasks.map((task) => specOf(task));
      if (core.closed) throw new ExecutorClosedError();
      return core.warmup(specs);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * Running totals: calls, tasks, chunks, calls per strategy, fallbacks, crashes, respawns,
   * recycled workers,
   * and worker busy time (measured only while `onEvent` is set).
   *
   * @returns A copy of the totals.
   */
  stats(): ExecutorStats {
    const stats = this.#core.stats;
    return { ...stats, ...this.#core.workerCounts(), byStrategy: { ...stats.byStrategy } };
  }

  /**
   * Runs `task` on every item and returns the results in input order. The input is read
   * lazily, as workers free up. The first failure rejects the call and cancels the rest.
   *
   * @param task A task reference from {@linkcode tasks}, or a self-contained function.
   * @param items The inputs: any iterable or async iterable.
   * @param options `signal`, `chunkSize`, `onProgress` and the rest of `MapOptions`.
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
      return collect<O>(this.#begin("map", task, items, options));
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
   * @param options `signal`, `chunkSize`, `ordered`, `onProgress` and the rest of `ImapOptions`.
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
    const call = resolveCall("imap", this.#core.settings, options);
    const spec = specOf(task);
    // Per chunk in flight: two chunks' worth each.
    const window = (call.chunkSize === "auto" ? MAX_CHUNK : call.chunkSize) * 2;
    const core = this.#core;
    // The call begins when the loop takes its first result, as a generator's body does.
    return (async function* () {
      const pipeline = startCall(core, "imap", spec, items, call);
      yield* iterate<O>(pipeline, call.ordered, window);
    })();
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
    options?: SubmitOptions,
  ): Promise<O> {
    try {
      const core = this.#core;
      // Without options a submit takes the executor's: resolved once, not per call.
      const call = options === undefined
        ? (core.submitDefaults ??= resolveCall("submit", core.settings, {}))
        : resolveCall("submit", core.settings, options);
      const spec = specOf(task);
      if (core.closed) throw new ExecutorClosedError();
      const direct = directStrategy(core);
      if (direct !== undefined) return submitDirect(core, direct, spec, input, call);
      return submitRouted(core, spec, input, call);
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
    if (this.#core.closed) {
      throw new ExecutorClosedError("Cannot share a value with a closed executor");
    }
    return this.#core.shared.share(value);
  }

  /**
   * Stops taking work, waits for running calls to finish, then stops every worker.
   * Idempotent: every call returns the same promise.
   *
   * @returns A promise that resolves once no worker is left.
   */
  close(): Promise<void> {
    return this.#core.close();
  }

  /**
   * Stops taking work, cancels running calls (they reject with `ExecutorClosedError`) and
   * stops every worker. On Deno a worker busy in synchronous code cannot be stopped from
   * outside; it sees `ctx.signal` abort and goes away once its task returns. Idempotent.
   *
   * @returns A promise that resolves once no worker is left.
   */
  terminate(): Promise<void> {
    return this.#core.terminate();
  }

  /** Same as `close()`, for `await using`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /** Begins a call of `map` (or `explain`'s probe): options, task, route and pipeline. */
  #begin(
    kind: CallKind,
    task: unknown,
    items: unknown,
    options: unknown,
    probeOnly = false,
  ): Pipeline {
    const call = resolveCall(kind, this.#core.settings, options);
    return startCall(this.#core, kind, specOf(task), items, call, probeOnly);
  }
}
