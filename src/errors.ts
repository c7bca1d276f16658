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

/**
 * A task ran past its `timeoutMs`. Its worker was stopped where the runtime allows it: a
 * process is sent SIGTERM, then SIGKILL after a short grace; a thread on Bun or Node is
 * terminated. A busy thread on Deno cannot be stopped from outside, so there the task's
 * `ctx.signal` aborts and the thread is kept until the task returns (the message says so);
 * use `strategy: "processes"` to hard-stop such tasks.
 */
export class TaskTimeoutError extends TaskError {
  static {
    this.prototype.name = "TaskTimeoutError";
  }
  /** The limit the task ran past, in milliseconds. */
  readonly timeoutMs: number;

  /**
   * Creates a timeout error.
   *
   * @param index Position of the task in the call's input.
   * @param timeoutMs The limit it ran past.
   * @param message What happened, and what was done about it.
   */
  constructor(index: number, timeoutMs: number, message: string) {
    super(index, message);
    this.timeoutMs = timeoutMs;
  }
}

/**
 * A task's module did not finish loading in time (`loadTimeoutMs`): its import, top-level
 * `await` included, was still pending — typically a connection or a promise awaited at the top
 * of the module that never settles. The worker that was loading it is stopped; on the serial
 * strategy the import cannot be stopped, and the call fails without waiting for it.
 */
export class LoadTimeoutError extends TaskError {
  static {
    this.prototype.name = "LoadTimeoutError";
  }
  /** The module that did not load (its URL), or `"an inline function"`. */
  readonly module: string;
  /** The limit, in milliseconds. */
  readonly timeoutMs: number;

  /**
   * Creates a load timeout error.
   *
   * @param index Position of the first task that was waiting for the module.
   * @param module The module's URL.
   * @param timeoutMs The limit it ran past.
   */
  constructor(index: number, module: string, timeoutMs: number) {
    super(
      index,
      `Task ${index} failed: its module ${module} did not finish loading within ${timeoutMs} ms ` +
        `(loadTimeoutMs); a top-level await that never settles keeps a module loading for ever`,
    );
    this.module = module;
    this.timeoutMs = timeoutMs;
  }
}

/**
 * A process could not be started: its executable does not exist, is not executable, or the
 * runtime refused (e.g. Deno without `--allow-run`). `code` is the system's error code
 * (`ENOENT`, `EACCES`, ...) when there is one.
 */
export class SpawnError extends Error {
  static {
    this.prototype.name = "SpawnError";
  }
  /** The command that could not be started. */
  readonly command: string;
  /** The system error code, e.g. `ENOENT`, when known. */
  readonly code: string | undefined;

  /**
   * Creates a spawn error.
   *
   * @param command The executable that could not be started.
   * @param message What was expected and what happened.
   * @param options `code` and `cause` (the runtime's own error).
   */
  constructor(command: string, message: string, options: { code?: string; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.command = command;
    this.code = options.code;
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
 * A worker failed: it crashed while running a task ({@linkcode WorkerCrashedError}) or could
 * not start ({@linkcode WorkerStartError}). Catch this base to handle either; with
 * `forceSerialOnFailure`, either moves the call to serial.
 */
export class WorkerError extends Error {
  static {
    this.prototype.name = "WorkerError";
  }
  /** Position of the task that was running when the worker died, when known. */
  readonly index: number | undefined;
  /** The worker's exit code, when the runtime reports one. */
  readonly exitCode: number | undefined;
  /** The signal that killed the worker's process, when there is one. */
  readonly signal: string | undefined;

  /**
   * Creates a worker error.
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
 * A worker died while running a task: it threw outside any task (an uncaught error or
 * unhandled rejection), exited (`process.exit`, `Deno.exit`, `self.close`) or was killed.
 * The tasks it was running fail with this error; the worker is replaced and the executor
 * stays usable.
 */
export class WorkerCrashedError extends WorkerError {
  static {
    this.prototype.name = "WorkerCrashedError";
  }
}

/**
 * A worker could not start (its module failed to load, or the runtime refused it, e.g. Deno
 * without `--allow-read`). Every call waiting for a worker fails with this error. A sibling of
 * {@linkcode WorkerCrashedError} under {@linkcode WorkerError}: no task ran, nothing crashed.
 */
export class WorkerStartError extends WorkerError {
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
  /** Position of the task whose input or result could not be cloned; -1 when `share()` refused the value. */
  readonly index: number;
  /** Where the offending part is, e.g. `input.callback`, `result[2]` or `value.render`. */
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

/**
 * A released `Shared` handle was used: its `value` was read, or it was put in a task
 * input, after `release()` or after its executor closed.
 *
 * @example Reading a released handle
 * ```ts
 * import { ParallelExecutor, SharedReleasedError } from "@fanout/fanout";
 * import assert from "node:assert/strict";
 *
 * await using ex = new ParallelExecutor({ strategy: "serial" });
 * const handle = ex.share({ table: [1, 2, 3] });
 * handle.release();
 * assert.throws(() => handle.value, SharedReleasedError);
 * ```
 */
export class SharedReleasedError extends Error {
  static {
    this.prototype.name = "SharedReleasedError";
  }
  /** Id of the released handle. */
  readonly id: number;

  /**
   * Creates a released-handle error.
   *
   * @param id Id of the released handle.
   * @param message What was attempted.
   */
  constructor(id: number, message: string) {
    super(message);
    this.id = id;
  }
}
