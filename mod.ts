/**
 * fanout runs many independent pieces of work in parallel from TypeScript, the same way on
 * Deno, Bun and Node. One facade, {@linkcode ParallelExecutor}, maps work onto a strategy —
 * serial, a pool of worker threads, or a pool of processes — keeps results in input order,
 * shares large payloads instead of copying them per task, cancels through `AbortSignal`,
 * disposes with `await using`, and never leaves a promise hanging when a worker dies.
 * {@linkcode runParallel} merges keyed results in key order, and `ctx.seed` gives every task a
 * reproducible seed, so a parallel run gives the serial answer bit for bit.
 *
 * @example Map a module's export over inputs on threads
 * ```ts ignore
 * import { ParallelExecutor, tasks } from "@fanout/fanout";
 *
 * // work.ts: export function fib(n: number): number { return n < 2 ? n : fib(n - 1) + fib(n - 2); }
 * const work = tasks<typeof import("./work.ts")>(new URL("./work.ts", import.meta.url));
 * await using ex = new ParallelExecutor();
 * console.log(await ex.map(work.fib, [30, 31, 32]));
 * ```
 *
 * @module
 */

export { ParallelExecutor } from "./src/executor.ts";
export type { ExecutorOptions } from "./src/executor.ts";
export type {
  Explanation,
  ImapOptions,
  MapOptions,
  SubmitOptions,
  WarmupOptions,
} from "./src/config.ts";
export { STRATEGY_NAMES } from "./src/strategy/types.ts";
export type { StrategyName } from "./src/strategy/types.ts";
export { tasks } from "./src/task.ts";
export { sharedArray } from "./src/shared_array.ts";
export { parseParallelEnv } from "./src/env.ts";
export type { EnvConfig, ParallelConfig, StrategyChoice } from "./src/config.ts";
export type {
  ExecutorStats,
  FallbackEvent,
  ParallelExecutionEvent,
  Percentiles,
  TaskEvent,
  TelemetryEvent,
} from "./src/telemetry.ts";
export type { ChunkRequest, ChunkResult, Strategy } from "./src/strategy/types.ts";
export type { TaskSpec } from "./src/protocol.ts";
export type { SharedEntry } from "./src/shared.ts";
export { call, runParallel } from "./src/run_parallel.ts";
export { KeyedTaskError, ParallelError } from "./src/run_parallel_errors.ts";
export { seedFor } from "./src/seeds.ts";
export type {
  Call,
  CallOptions,
  OrderValue,
  RunParallelOptions,
  Thunk,
} from "./src/run_parallel.ts";
export type { Shared, SharedValue } from "./src/shared.ts";
export type { SharedTypedArray, TypedArrayConstructor } from "./src/shared_array.ts";
export type {
  ModuleTasks,
  Task,
  TaskContext,
  TaskFunction,
  TaskInput,
  TaskRef,
} from "./src/task.ts";
export { commandsAsCompleted, runCommands } from "./src/run_commands.ts";
export { estimateEta, progressReporter } from "./src/progress.ts";
export type {
  Progress,
  ProgressOutput,
  ProgressReporter,
  ProgressReporterOptions,
  ProgressStyle,
} from "./src/progress.ts";
export { JobHaltedError, JobKilledError, JobSkippedError } from "./src/commands/errors.ts";
export type {
  BatchResult,
  CommandJob,
  CommandOptions,
  CommandProgress,
  HaltMode,
  HaltRule,
  JobResult,
} from "./src/run_commands.ts";
export {
  ExecutorClosedError,
  LoadTimeoutError,
  NotCloneableError,
  SharedReleasedError,
  SpawnError,
  TaskError,
  TaskTimeoutError,
  WorkerCrashedError,
  WorkerError,
  WorkerStartError,
} from "./src/errors.ts";
export type { FanoutErrorOptions, WorkerCrashInfo } from "./src/errors.ts";
