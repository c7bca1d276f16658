/**
 * The failures of `runParallel`: {@linkcode KeyedTaskError} for one task, {@linkcode ParallelError}
 * for a run, its failures in key order. They live beside `run_parallel.ts` rather than in
 * `errors.ts` because they name keys, which only a keyed run has.
 *
 * @module
 */

import { TaskError } from "./errors.ts";
import type { FanoutErrorOptions } from "./errors.ts";
import { showKey } from "./_order.ts";

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
