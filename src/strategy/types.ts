/**
 * The contract of a strategy: what `ParallelExecutor` asks of a way of running chunks. The
 * executor owns ordering, chunking, cancellation and accounting; a strategy only runs chunks.
 * Implement it to run fanout's calls on something of your own (pass the object as
 * `strategy`); the built-in strategies implement it too, with more of their own (see
 * `_builtin.ts`).
 *
 * @module
 */

import type { TaskSpec } from "../protocol.ts";

/**
 * The built-in strategies, by name: the one list that `StrategyName`, `CE_PARALLEL`'s modes,
 * the `strategy` option's check and auto's choices are all made from.
 */
export const STRATEGY_NAMES = ["serial", "async", "threads", "processes"] as const;

/** Names of the built-in strategies of `ParallelExecutor`. */
export type StrategyName = typeof STRATEGY_NAMES[number];

/** One chunk: consecutive items of one call. */
export interface ChunkRequest {
  /** The task to run on each item. */
  readonly task: TaskSpec;
  /** Index (in the call's input) of the first item: the item at `k` is task `base + k`. */
  readonly base: number;
  /** The items. */
  readonly items: unknown[];
  /**
   * Aborting it cancels the chunk: the returned promise rejects with `signal.reason`. Pass it
   * on to the tasks as `ctx.signal`.
   */
  readonly signal?: AbortSignal;
  /**
   * Longest the chunk (always one item when set) may run, in ms: past it the chunk rejects
   * with `TaskTimeoutError`.
   */
  readonly timeoutMs?: number;
  /** The call's base seed, from which each task's `ctx.seed` is mixed. Absent means 0. */
  readonly seed?: bigint;
  /**
   * Most items of this chunk that may be in flight at once (the call's `concurrency`): a task
   * that returns a promise need not settle before the next item starts. Absent means 1: one
   * item after another.
   */
  readonly concurrency?: number;
}

/** What a finished chunk returns. */
export interface ChunkResult {
  /** One result per item, in order. */
  values: unknown[];
  /** Time spent running the items, excluding transport, in ms; `NaN` when not measured. */
  ms: number;
  /** The host that ran them, for a strategy that spans machines; telemetry's task events carry it. */
  host?: string;
  /**
   * Times the chunk was given to another worker because the one running it was lost, for a
   * strategy that does so (distributed); telemetry's `retries` sums them.
   */
  retries?: number;
}

/** A way of running chunks. */
export interface Strategy {
  /** The strategy's name, as `ParallelExecutor.strategy` and telemetry report it. */
  readonly name: string;
  /** How many chunks it runs at once (at least 1). */
  readonly concurrency: number;
  /**
   * Runs one chunk. Rejects with `TaskError` (a task threw), `WorkerError` (what ran it
   * failed), `NotCloneableError`, or the signal's reason.
   */
  run(request: ChunkRequest): Promise<ChunkResult>;
  /** Waits for running chunks, then releases every resource. Idempotent. */
  close(): Promise<void>;
  /** Rejects queued and running chunks with `ExecutorClosedError`, then releases everything. Idempotent. */
  terminate(): Promise<void>;
}
