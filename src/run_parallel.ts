/**
 * `runParallel` and `call`: keyed tasks run with bounded concurrency, their results merged in
 * an order that depends only on the keys, so the parallel answer is the serial answer, bit for
 * bit, errors included.
 *
 * ```
 * tasks [key, thunk | call(task, input)] ──► validate every thunk and order key (nothing runs
 *        │                                   yet), sort by (orderKey(key), submit index)
 *        │                                   (_order.ts)
 *        ▼
 * run, at most maxWorkers at once ──► every outcome kept by submit index (completion order
 *        │                            is never looked at)
 *        ▼
 * any failed? ──yes──► ParallelError, its errors in the sorted order (run_parallel_errors.ts)
 *        └─────no───► mergeFn(pairs in the sorted order)
 * ```
 *
 * Nothing here reads a clock, draws a random number or logs.
 *
 * @module
 */

import type { ParallelExecutor } from "./executor.ts";
import type { TaskFunction, TaskRef } from "./task.ts";
import { checkFunction, checkKeys, checkSignal, describe } from "./_checks.ts";
import { onAbort } from "./_abort.ts";
import { ExecutorClosedError, TaskError, TaskTimeoutError } from "./errors.ts";
import { KeyedTaskError, ParallelError } from "./run_parallel_errors.ts";
import { showKey, sortedOrder } from "./_order.ts";
import type { OrderValue } from "./_order.ts";
import { detect } from "./runtime/mod.ts";

export type { OrderValue } from "./_order.ts";

/** A zero-argument function run in the calling isolate; it may return a promise. */
export type Thunk<R> = () => R | Promise<R>;

/** A task to run on `runParallel`'s executor, made by {@linkcode call}. */
export interface Call<R> {
  /** The task. */
  readonly task: TaskRef<unknown, R> | TaskFunction<unknown, R>;
  /** Its input. */
  readonly input: unknown;
  /** Its options. */
  readonly options: CallOptions;
}

/** Options of {@linkcode call}: those of `submit`, except `signal` (`runParallel` has one). */
export interface CallOptions {
  /**
   * Base seed of the task's `ctx.seed` (it runs as index 0, so `ctx.seed` is
   * `seedFor(seed, 0)`). Give every call its own, e.g. `seedFor(base, key)`: without it,
   * every call of a run gets the executor's seed, hence the same `ctx.seed`.
   *
   * @default {the executor's `seed`}
   */
  seed?: number | bigint;
  /**
   * Longest the task may run, in ms.
   *
   * @default {the executor's `timeoutMs`}
   */
  timeoutMs?: number;
}

/** Options of {@linkcode runParallel}. */
export interface RunParallelOptions<K, R, M> {
  /**
   * Most tasks in flight at once. `1` or less (zero and negatives included) runs the tasks one
   * after another in submit order; the result is the same either way.
   *
   * @default {the executor's `maxWorkers`, else the number of usable CPUs}
   */
  maxWorkers?: number;
  /**
   * Combines the results: receives every `[key, result]` pair sorted by `orderKey(key)`, ties
   * broken by submit index, and its return value (awaited) is what `runParallel` resolves
   * with. Not called when a task failed.
   *
   * @default {returns the sorted pairs}
   */
  mergeFn?: (pairs: [K, R][]) => M | Promise<M>;
  /**
   * Maps a key to the value results are sorted by: a number, bigint or string, or an array of
   * those (compared element by element, shorter first on a tie). All keys must map to values
   * of the same kind.
   *
   * @default {the key itself}
   */
  orderKey?: (key: K) => OrderValue;
  /** Runs the tasks made with {@linkcode call} on its workers. */
  executor?: ParallelExecutor;
  /**
   * Cancels the run: it rejects with `signal.reason`, and no further task starts. Calls on the
   * executor are cancelled too; running thunks cannot be stopped and are not waited for.
   */
  signal?: AbortSignal;
}

/** The keys of {@linkcode RunParallelOptions}. */
const OPTIONS = ["maxWorkers", "mergeFn", "orderKey", "executor", "signal"];
/** The keys of {@linkcode CallOptions}. */
const CALL_OPTIONS = ["seed", "timeoutMs"];

class TaskCall<R> implements Call<R> {
  readonly task: TaskRef<unknown, R> | TaskFunction<unknown, R>;
  readonly input: unknown;
  readonly options: CallOptions;

  constructor(
    task: TaskRef<unknown, R> | TaskFunction<unknown, R>,
    input: unknown,
    options: CallOptions,
  ) {
    this.task = task;
    this.input = input;
    this.options = options;
    Object.freeze(this);
  }
}

/**
 * Names a task to run on `runParallel`'s executor (CPU-bound fan-out), where a thunk would run
 * in the calling isolate (I/O-bound fan-out). Both forms can be mixed in one run.
 *
 * @param task A task reference from `tasks()`, or a self-contained function.
 * @param input Its input.
 * @param options `seed` and `timeoutMs`, as for `submit`.
 * @returns The call, to use in place of a thunk.
 * @throws {TypeError} If `options` has an unknown key.
 *
 * @example Seeded calls on an executor, merged by key
 * ```ts
 * import { call, ParallelExecutor, runParallel, seedFor } from "@fanout/fanout";
 * import assert from "node:assert/strict";
 *
 * await using ex = new ParallelExecutor({ strategy: "serial" });
 * const keys = ["north", "south"];
 * const seeds = await runParallel(
 *   keys.map((key) => [key, call((_: null, ctx) => ctx.seed, null, { seed: seedFor(7, key) })]),
 *   { executor: ex },
 * );
 * assert.deepEqual(seeds, keys.map((key) => [key, seedFor(seedFor(7, key), 0)]));
 * ```
 */
export function call<I, O>(
  task: TaskRef<I, O> | TaskFunction<I, O>,
  input: I,
  options: CallOptions = {},
): Call<O> {
  checkKeys("options", options, CALL_OPTIONS);
  return new TaskCall<O>(
    task as TaskRef<unknown, O> | TaskFunction<unknown, O>,
    input,
    { ...options },
  );
}

type Outcome = { ok: true; value: unknown } | { ok: false; error: unknown };

/**
 * Runs keyed tasks with bounded concurrency and merges their results in an order that depends
 * only on the keys, never on which task finished first: the parallel answer is the serial
 * answer.
 *
 * Every task runs, even after one failed, so that the list of failures is complete and the
 * same on every run; then `runParallel` either rejects with {@linkcode ParallelError} or calls
 * `mergeFn` once with every `[key, result]` pair sorted by `orderKey(key)`, ties broken by
 * submit index. An empty `tasks` calls `mergeFn([])`.
 *
 * @param tasks `[key, thunk]` pairs, where a thunk is a zero-argument (possibly async)
 *   function run in the calling isolate, or a {@linkcode call} run on `options.executor`.
 * @param options `maxWorkers`, `mergeFn`, `orderKey`, `executor` and `signal`.
 * @returns What `mergeFn` returns.
 * @throws {ParallelError} If any task failed; `errors` lists them in order.
 * @throws {TypeError} Before anything runs, for a thunk that is not a function (or a `call`
 *   without an executor), a key `orderKey` cannot order, or bad options.
 * @throws {ExecutorClosedError} If `executor` is closed.
 *
 * @example Results in key order, whatever finishes first
 * ```ts
 * import { runParallel } from "@fanout/fanout";
 * import assert from "node:assert/strict";
 *
 * const wait = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
 * const total = await runParallel(
 *   [
 *     ["b", async () => { await wait(1); return 2; }],
 *     ["a", async () => { await wait(5); return 1; }],
 *     ["c", () => 3],
 *   ],
 *   {
 *     maxWorkers: 3,
 *     mergeFn: (pairs) => pairs.map(([key, n]) => `${key}=${n}`).join(" "),
 *   },
 * );
 * assert.equal(total, "a=1 b=2 c=3");
 * ```
 */
export async function runParallel<K, R, M = [K, R][]>(
  tasks: Iterable<readonly [K, Thunk<R> | Call<R>]>,
  options: RunParallelOptions<K, R, M> = {},
): Promise<M> {
  checkOptions(options);
  const { executor, signal } = options;
  const orderKey = options.orderKey ?? ((key: K) => key as unknown as OrderValue);
  const mergeFn = options.mergeFn ?? ((pairs: [K, R][]) => pairs as unknown as M);
  const maxWorkers = options.maxWorkers ?? executor?.maxWorkers ?? detect().cpus;
  if (executor?.closed) {
    throw new ExecutorClosedError("Cannot run calls on a closed executor");
  }
  const entries = toEntries<K, R>(tasks, executor !== undefined);
  const order = sortedOrder(entries.map(([key]) => key), orderKey);
  signal?.throwIfAborted();

  const outcomes = await runAll(entries, maxWorkers <= 1 ? 1 : maxWorkers, executor, signal);
  const errors: KeyedTaskError<K>[] = [];
  for (const at of order) {
    const outcome = outcomes[at];
    if (!outcome.ok) errors.push(keyedError(entries[at][0], at, outcome.error));
  }
  if (errors.length > 0) throw new ParallelError(errors, entries.length);
  return await mergeFn(
    order.map((at) => [entries[at][0], (outcomes[at] as { value: R }).value] as [K, R]),
  );
}

/** Runs every entry, at most `limit` at once, and keeps each outcome by submit index. */
async function runAll<K, R>(
  entries: readonly (readonly [K, Thunk<R> | Call<R>])[],
  limit: number,
  executor: ParallelExecutor | undefined,
  signal: AbortSignal | undefined,
): Promise<Outcome[]> {
  const outcomes = new Array<Outcome>(entries.length);
  let next = 0;
  let running = 0;
  let stopped = false;
  let removeAbort = (): void => {};
  try {
    return await new Promise<Outcome[]>((resolve, reject) => {
      removeAbort = onAbort(signal, () => {
        stopped = true;
        reject(signal!.reason);
      });
      const pump = (): void => {
        while (!stopped && running < limit && next < entries.length) {
          const at = next++;
          running++;
          start(entries[at][1], executor, signal).then(
            (value) => (outcomes[at] = { ok: true, value }),
            (error: unknown) => (outcomes[at] = { ok: false, error }),
          ).then(() => {
            running--;
            if (stopped) return;
            if (next < entries.length) pump();
            else if (running === 0) resolve(outcomes);
          });
        }
      };
      if (entries.length === 0) resolve(outcomes);
      else pump();
    });
  } finally {
    removeAbort();
  }
}

/** Starts one task; a thunk that throws synchronously becomes a rejection. */
function start<R>(
  task: Thunk<R> | Call<R>,
  executor: ParallelExecutor | undefined,
  signal: AbortSignal | undefined,
): Promise<unknown> {
  try {
    if (task instanceof TaskCall) {
      return executor!.submit(task.task, task.input, { ...task.options, signal });
    }
    return Promise.resolve((task as Thunk<R>)());
  } catch (error) {
    return Promise.reject(error);
  }
}

/** Reads `tasks` into `[key, task]` pairs, refusing a task that cannot run. */
function toEntries<K, R>(
  tasks: unknown,
  hasExecutor: boolean,
): (readonly [K, Thunk<R> | Call<R>])[] {
  if (
    tasks === null || typeof tasks !== "object" ||
    typeof (tasks as Iterable<unknown>)[Symbol.iterator] !== "function"
  ) {
    throw new TypeError(
      `Expected \`tasks\` to be an iterable of [key, thunk] pairs, got ${describe(tasks)}`,
    );
  }
  const entries: (readonly [K, Thunk<R> | Call<R>])[] = [];
  for (const entry of tasks as Iterable<unknown>) {
    const at = entries.length;
    if (!Array.isArray(entry) || entry.length !== 2) {
      throw new TypeError(
        `Expected task ${at} to be a [key, thunk] pair, got ${describe(entry)}`,
      );
    }
    const [key, task] = entry as [K, unknown];
    if (task instanceof TaskCall) {
      if (!hasExecutor) {
        throw new TypeError(
          `Expected a thunk for key ${showKey(key)}, got call(): a call runs on an executor, ` +
            `so pass \`executor\` to runParallel`,
        );
      }
    } else if (typeof task !== "function") {
      throw new TypeError(
        `Expected the task of key ${showKey(key)} to be a zero-argument function${
          hasExecutor ? " or a call()" : ""
        }, got ${describe(task)}`,
      );
    }
    entries.push([key, task as Thunk<R> | Call<R>]);
  }
  return entries;
}

/** The record of one failed task: a call's own task error is unwrapped to what the task threw. */
function keyedError<K>(key: K, index: number, error: unknown): KeyedTaskError<K> {
  const thrown = error instanceof TaskError && !(error instanceof TaskTimeoutError) &&
      error.cause !== undefined
    ? error.cause
    : error;
  if (thrown instanceof Error) {
    return new KeyedTaskError(key, index, thrown.name, thrown.message, { cause: thrown });
  }
  return new KeyedTaskError(key, index, typeof thrown, String(thrown), { cause: thrown });
}

function checkOptions(options: unknown): void {
  checkKeys("options", options, OPTIONS);
  const o = options as RunParallelOptions<unknown, unknown, unknown>;
  checkMaxWorkers(o.maxWorkers);
  checkFunction("mergeFn", o.mergeFn);
  checkFunction("orderKey", o.orderKey);
  // Any object with a submit() would do; the message names what the option is for.
  if (o.executor !== undefined && typeof o.executor?.submit !== "function") {
    throw new TypeError(
      `Expected \`executor\` to be a ParallelExecutor, got ${describe(o.executor)}`,
    );
  }
  checkSignal(o.signal);
}

/**
 * Not `checkInteger`: here 1 or less (zero and negatives included) is allowed, and means one
 * task at a time, as a plain loop would run them.
 */
function checkMaxWorkers(n: unknown): void {
  if (n === undefined) return;
  if (typeof n !== "number" || Number.isNaN(n)) {
    throw new TypeError(`Expected \`maxWorkers\` to be a number, got ${describe(n)}`);
  }
  if (n > 1 && !Number.isInteger(n) && n !== Infinity) {
    throw new RangeError(
      `Expected \`maxWorkers\` to be an integer (or Infinity; 1 or less runs in order), got ${n}`,
    );
  }
}
