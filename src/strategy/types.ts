/**
 * The interface every strategy implements. The executor owns ordering, chunking and
 * cancellation; a strategy only runs chunks and reports how long they took.
 *
 * @module
 */

import type { TaskSpec } from "../protocol.ts";
import type { SharedEntry } from "../shared.ts";

/** Names of the strategies available to `ParallelExecutor`. */
export type StrategyName = "serial" | "threads" | "processes";

/** One chunk: consecutive items of one call. */
export interface ChunkRequest {
  /** The task to run on each item. */
  task: TaskSpec;
  /** Index (in the call's input) of the first item. */
  base: number;
  /** The items. */
  items: unknown[];
  /**
   * Whether the caller needs `ms` (auto chunk sizing does). Timing costs two clock reads per
   * chunk, a visible part of a one-item round trip; untimed chunks report `NaN`.
   */
  timed?: boolean;
  /** Aborting it cancels the chunk: the returned promise rejects with `signal.reason`. */
  signal?: AbortSignal;
  /**
   * Whether a running chunk may be stopped hard (its thread terminated) on abort. False for
   * cancellations that are not urgent, e.g. the rest of a call whose first task failed: the
   * chunk is then asked to stop through its `ctx.signal` and its thread is kept.
   */
  hardStop?: () => boolean;
  /**
   * Longest the chunk (always one item when set) may run, in ms: past it the chunk rejects
   * with `TaskTimeoutError` and its worker is stopped where the runtime allows it.
   */
  timeoutMs?: number;
  /**
   * The shared values whose handles the items hold: a worker that lacks one gets it with this
   * chunk. Absent when there are none.
   */
  shared?: readonly SharedEntry[];
  /** The call's base seed, from which each task's `ctx.seed` is mixed. Absent means 0. */
  seed?: bigint;
  /**
   * Called when the chunk starts on a worker, with the worker's number (small, stable for
   * the worker's life; 0 for serial). Set only while telemetry listens.
   */
  onStart?: (worker: number) => void;
}

/** What a finished chunk returns. */
export interface ChunkResult {
  /** One result per item, in order. */
  values: unknown[];
  /** Time spent running the items, excluding transport; `NaN` unless the request was `timed`. */
  ms: number;
}

/** A way of running chunks. */
export interface Strategy {
  /** The strategy's name. */
  readonly name: StrategyName;
  /** How many chunks it runs at once. */
  readonly concurrency: number;
  /** Runs one chunk. Rejects with `TaskError`, `WorkerCrashedError`, `NotCloneableError` or the abort reason. */
  run(request: ChunkRequest): Promise<ChunkResult>;
  /**
   * Drops a released shared value from every worker that holds it. No chunk holding its handle
   * is queued or running any more. A strategy whose workers hold no shared values can leave
   * it out.
   */
  forget?(id: number): void;
  /** Workers alive now (a warm pool has some); absent for strategies without workers. */
  readonly live?: number;
  /** Workers started so far to replace dead ones. */
  readonly respawns?: number;
  /** Workers replaced so far because they were worn (`maxTasksPerWorker`, `idleMemoryLimitMb`). */
  readonly recycled?: number;
  /** Waits for running chunks, then releases every resource. Idempotent. */
  close(): Promise<void>;
  /** Rejects queued and running chunks with `ExecutorClosedError`, then releases everything. Idempotent. */
  terminate(): Promise<void>;
}
