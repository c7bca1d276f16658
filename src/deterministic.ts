/**
 * Deterministic aggregation and reproducible seeds: the parallel answer is the serial answer,
 * bit for bit, errors included.
 *
 * ```
 * tasks [key, thunk | call(task, input)] ──► validate every thunk and order key (nothing runs
 *        │                                   yet), sort by (orderKey(key), submit index)
 *        ▼
 * run, at most maxWorkers at once ──► every outcome kept by submit index (completion order
 *        │                            is never looked at)
 *        ▼
 * any failed? ──yes──► ParallelError, its errors in the sorted order
 *        └─────no───► mergeFn(pairs in the sorted order)
 * ```
 *
 * Nothing here reads a clock, draws a random number or logs.
 *
 * @module
 */

import type { ParallelExecutor } from "./executor.ts";
import type { TaskFunction, TaskRef } from "./task.ts";
import { describe } from "./_checks.ts";
import { ExecutorClosedError, TaskError, TaskTimeoutError } from "./errors.ts";
import type { FanoutErrorOptions } from "./errors.ts";
import { detect } from "./runtime/mod.ts";

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

/** A value `orderKey` may return: numbers (and bigints), strings, or arrays of them compared element by element. */
export type OrderValue = number | bigint | string | readonly OrderValue[];

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

const OPTIONS = ["maxWorkers", "mergeFn", "orderKey", "executor", "signal"];

/**
 * One failed task of a {@linkcode runParallel}: its `key`, the thrown error's type
 * (`excType`, the error's `name`, or for a thrown non-error its `typeof`) and `message` (the
 * error's own message). `index` is the task's submit index; `cause` is the thrown value.
 * See {@linkcode ParallelError} for an example.
 */
export class KeyedTaskError<K = unknown> extends TaskError {
  static {
    this.prototype.name = "KeyedTaskError";
  }
  /** The task's key. */
  readonly key: K;
  /** The thrown error's `name` (`"RangeError"`), or `typeof` the thrown value if not an error. */
  readonly excType: string;

  /**
   * Creates the error of one failed task.
   *
   * @param key The task's key.
   * @param index The task's submit index.
   * @param excType The thrown error's type.
   * @param message The thrown error's message.
   * @param options `cause`: the thrown value.
   */
  constructor(
    key: K,
    index: number,
    excType: string,
    message: string,
    options?: FanoutErrorOptions,
  ) {
    super(index, message, options);
    this.key = key;
    this.excType = excType;
  }
}

/**
 * Some tasks of a {@linkcode runParallel} failed. `errors` holds one {@linkcode KeyedTaskError}
 * per failed task, sorted like the results would have been (by `orderKey`, then submit
 * index), so a run gives the same list every time.
 *
 * @example The failures, in key order
 * ```ts
 * import { KeyedTaskError, ParallelError, runParallel } from "@fanout/fanout";
 * import assert from "node:assert/strict";
 *
 * const error = await runParallel([
 *   ["b", () => { throw new RangeError("b is too big"); }],
 *   ["c", () => 3],
 *   ["a", () => Promise.reject(new TypeError("a is no number"))],
 * ]).catch((e) => e);
 * assert.ok(error instanceof ParallelError);
 * assert.ok(error.errors[0] instanceof KeyedTaskError);
 * assert.deepEqual(
 *   error.errors.map((e: KeyedTaskError) => [e.key, e.excType, e.message]),
 *   [["a", "TypeError", "a is no number"], ["b", "RangeError", "b is too big"]],
 * );
 * ```
 */
export class ParallelError<K = unknown> extends AggregateError {
  static {
    this.prototype.name = "ParallelError";
  }
  /** The failed tasks, in order. */
  declare readonly errors: KeyedTaskError<K>[];

  /**
   * Creates the error of a run.
   *
   * @param errors The failed tasks, in order.
   * @param total How many tasks ran.
   */
  constructor(errors: KeyedTaskError<K>[], total: number) {
    const first = errors[0];
    super(
      errors,
      `${errors.length} of ${total} tasks failed; the first in order is key ${
        showKey(first?.key)
      }: ${first?.excType}: ${first?.message}`,
    );
  }
}

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
  if (typeof options !== "object" || options === null) {
    throw new TypeError(`Expected \`options\` to be an object, got ${describe(options)}`);
  }
  for (const key of Object.keys(options)) {
    if (key !== "seed" && key !== "timeoutMs") {
      throw new TypeError(`Expected call() options among \`seed\`, \`timeoutMs\`, got \`${key}\``);
    }
  }
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
function runAll<K, R>(
  entries: readonly (readonly [K, Thunk<R> | Call<R>])[],
  limit: number,
  executor: ParallelExecutor | undefined,
  signal: AbortSignal | undefined,
): Promise<Outcome[]> {
  const outcomes = new Array<Outcome>(entries.length);
  let next = 0;
  return new Promise<Outcome[]>((resolve, reject) => {
    let running = 0;
    let stopped = false;
    const onAbort = (): void => {
      stopped = true;
      reject(signal!.reason);
    };
    signal?.addEventListener("abort", onAbort, { once: true });
    const finish = (): void => {
      signal?.removeEventListener("abort", onAbort);
      resolve(outcomes);
    };
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
          else if (running === 0) finish();
        });
      }
    };
    if (entries.length === 0) finish();
    else pump();
  });
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

/** Submit indices sorted by `orderKey(key)`, ties by index. */
function sortedOrder<K>(keys: readonly K[], orderKey: (key: K) => OrderValue): number[] {
  const values = keys.map((key) => {
    const value = orderKey(key);
    checkOrderValue(key, value, value);
    return value;
  });
  return keys.map((_, at) => at).sort((a, b) =>
    compareOrder(values[a], values[b], keys[a], keys[b]) || a - b
  );
}

function checkOrderValue(key: unknown, value: unknown, whole: unknown): void {
  if (typeof value === "string" || typeof value === "bigint") return;
  if (typeof value === "number" && !Number.isNaN(value)) return;
  if (Array.isArray(value)) {
    for (const inner of value) checkOrderValue(key, inner, whole);
    return;
  }
  throw new TypeError(
    `Expected orderKey to return a number, bigint, string or an array of them for key ${
      showKey(key)
    }, got ${whole === value ? describe(value) : `${describe(value)} inside an array`}`,
  );
}

function kindOf(value: OrderValue): string {
  return typeof value === "bigint" ? "number" : Array.isArray(value) ? "array" : typeof value;
}

function compareOrder(a: OrderValue, b: OrderValue, keyA: unknown, keyB: unknown): number {
  const kind = kindOf(a);
  if (kind !== kindOf(b)) {
    throw new TypeError(
      `Expected orderKey to return values of one kind, got a ${kind} for key ${
        showKey(keyA)
      } and a ${kindOf(b)} for key ${showKey(keyB)}, which cannot be ordered`,
    );
  }
  if (kind === "array") {
    const x = a as readonly OrderValue[];
    const y = b as readonly OrderValue[];
    for (let i = 0; i < x.length && i < y.length; i++) {
      const c = compareOrder(x[i], y[i], keyA, keyB);
      if (c !== 0) return c;
    }
    return x.length - y.length;
  }
  return a < b ? -1 : a > b ? 1 : 0;
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

function showKey(key: unknown): string {
  if (typeof key === "string") return JSON.stringify(key);
  if (typeof key === "bigint") return `${key}n`;
  if (typeof key === "number" || typeof key === "boolean" || key == null) return String(key);
  try {
    return JSON.stringify(key) ?? String(key);
  } catch {
    return String(key);
  }
}

function checkOptions(options: unknown): void {
  if (typeof options !== "object" || options === null) {
    throw new TypeError(`Expected \`options\` to be an object, got ${describe(options)}`);
  }
  for (const key of Object.keys(options)) {
    if (!OPTIONS.includes(key)) {
      throw new TypeError(
        `Expected options among ${OPTIONS.map((k) => `\`${k}\``).join(", ")}, got \`${key}\``,
      );
    }
  }
  const o = options as RunParallelOptions<unknown, unknown, unknown>;
  if (o.maxWorkers !== undefined) {
    const n = o.maxWorkers;
    if (typeof n !== "number" || Number.isNaN(n)) {
      throw new TypeError(`Expected \`maxWorkers\` to be a number, got ${describe(n)}`);
    }
    if (n > 1 && !Number.isInteger(n) && n !== Infinity) {
      throw new RangeError(
        `Expected \`maxWorkers\` to be an integer (or Infinity; 1 or less runs in order), got ${n}`,
      );
    }
  }
  for (const name of ["mergeFn", "orderKey"] as const) {
    if (o[name] !== undefined && typeof o[name] !== "function") {
      throw new TypeError(`Expected \`${name}\` to be a function, got ${describe(o[name])}`);
    }
  }
  if (o.executor !== undefined && typeof o.executor?.submit !== "function") {
    throw new TypeError(
      `Expected \`executor\` to be a ParallelExecutor, got ${describe(o.executor)}`,
    );
  }
  if (o.signal !== undefined && !(o.signal instanceof AbortSignal)) {
    throw new TypeError(`Expected \`signal\` to be an AbortSignal, got ${describe(o.signal)}`);
  }
}
