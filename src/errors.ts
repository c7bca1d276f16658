/**
 * The library's own error classes. Each has a stable `name` (set on the prototype so stack
 * headers read `TaskError: …`) and carries the facts as properties; the original error, when
 * there is one, is the `cause`.
 *
 * @module
 */

/** Options shared by the error constructors. */
export interface FanoutErrorOptions {
  /** The underlying error. */
  cause?: unknown;
}

/**
 * A task threw (or rejected). `index` is the task's position in the input; `cause` is the
 * task's own error, rebuilt across the worker boundary with its class name, message, stack,
 * `cause` and own properties such as `code`.
 *
 * @example Catching a task's error
 * ```ts
 * import { ParallelExecutor, TaskError } from "@fanout/fanout";
 * import assert from "node:assert/strict";
 *
 * await using ex = new ParallelExecutor({ strategy: "serial" });
 * const err = await ex.map((n: number) => {
 *   if (n === 2) throw new RangeError("two is not allowed");
 *   return n;
 * }, [1, 2, 3]).catch((e) => e);
 * assert.ok(err instanceof TaskError);
 * assert.equal(err.index, 1);
 * assert.equal((err.cause as Error).name, "RangeError");
 * ```
 */
export class TaskError extends Error {
  static {
    this.prototype.name = "TaskError";
  }
  /** Position of the failed task in the call's input. */
  readonly index: number;

  /**
   * Creates a task error.
   *
   * @param index Position of the failed task in the call's input.
   * @param message What went wrong.
   * @param options `cause`: the task's own error.
   */
  constructor(index: number, message: string, options?: FanoutErrorOptions) {
    super(message, options);
    this.index = index;
  }
}

/** Facts about a worker that died. */
export interface WorkerCrashInfo extends FanoutErrorOptions {
  /** Position of the task that was running when the worker died, when known. */
  index?: number;
  /** The worker's exit code, when the runtime reports one. */
  exitCode?: number;
  /** The signal that killed the worker's process, when there is one. */
  signal?: string;
}

/**
 * A worker died while running a task: it threw outside any task (an uncaught error or
 * unhandled rejection), exited (`process.exit`, `Deno.exit`, `self.close`) or was killed.
 * The tasks it was running fail with this error; the worker is replaced and the executor
 * stays usable.
 */
export class WorkerCrashedError extends Error {
  static {
    this.prototype.name = "WorkerCrashedError";
  }
  /** Position of the task that was running when the worker died, when known. */
  readonly index: number | undefined;
  /** The worker's exit code, when the runtime reports one. */
  readonly exitCode: number | undefined;
  /** The signal that killed the worker's process, when there is one. */
  readonly signal: string | undefined;

  /**
   * Creates a crash error.
   *
   * @param message What happened.
   * @param info The index, exit code, signal and cause.
   */
  constructor(message: string, info: WorkerCrashInfo = {}) {
    super(message, info.cause === undefined ? undefined : { cause: info.cause });
    this.index = info.index;
    this.exitCode = info.exitCode;
    this.signal = info.signal;
  }
}

/**
 * A worker could not start (its module failed to load, or the runtime refused it, e.g. Deno
 * without `--allow-read`). Every call waiting for a worker fails with this error.
 */
export class WorkerStartError extends WorkerCrashedError {
  static {
    this.prototype.name = "WorkerStartError";
  }
}

/** The executor was closed or terminated: it takes no new work. */
export class ExecutorClosedError extends Error {
  static {
    this.prototype.name = "ExecutorClosedError";
  }
  /**
   * Creates a closed-executor error.
   *
   * @param message What was refused or cut short.
   */
  constructor(message = "Cannot run work on a closed executor: it was closed or terminated") {
    super(message);
  }
}

/**
 * A task's input (or result) cannot be sent between threads: structured clone refused it,
 * typically because it holds a function, a symbol, a class instance with private state, or a
 * socket. `path` says where in the value the offending part is.
 */
export class NotCloneableError extends TypeError {
  static {
    this.prototype.name = "NotCloneableError";
  }
  /** Position of the task whose input or result could not be cloned. */
  readonly index: number;
  /** Where the offending part is, e.g. `input.callback` or `result[2]`. */
  readonly path: string;

  /**
   * Creates a clone error.
   *
   * @param index Position of the task.
   * @param path Where in the value the offending part is.
   * @param message What was expected and what arrived.
   * @param options `cause`: the runtime's own clone error.
   */
  constructor(index: number, path: string, message: string, options?: FanoutErrorOptions) {
    super(message, options);
    this.index = index;
    this.path = path;
  }
}
