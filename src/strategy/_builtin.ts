/**
 * What the built-in strategies (serial, threads, processes) take and give beyond the public
 * `Strategy` contract: the executor's own hooks, which a user's strategy never sees.
 *
 * @module
 */

import type { SharedEntry } from "../shared.ts";
import type { TaskSpec } from "../protocol.ts";
import type { JobEnd } from "./_queue.ts";
import type { ChunkRequest, ChunkResult, Strategy, StrategyName } from "./types.ts";

/** A chunk as the executor hands it to a built-in strategy. */
export interface BuiltInRequest extends ChunkRequest {
  /**
   * Whether the caller needs `ms` (auto chunk sizing and telemetry do). Timing costs two clock
   * reads per chunk, a visible part of a one-item round trip; untimed chunks report `NaN`.
   */
  readonly timed?: boolean;
  /**
   * On the calling thread: measure how much of the run time the thread spent computing rather
   * than waiting (`BuiltInResult.busyMs`), for auto's probe.
   */
  readonly busy?: boolean;
  /**
   * The shared values whose handles the items hold: a worker that lacks one gets it with this
   * chunk. Absent when there are none.
   */
  readonly shared?: readonly SharedEntry[];
  /**
   * Called when the chunk is handed to a worker, with the worker's number (small, stable for
   * the worker's life; 0 for serial) and whether it was posted `behind` another chunk there,
   * which it waits for. Set only while telemetry listens or the first chunks are measured
   * (`Calibration`).
   */
  readonly onStart?: (worker: number, behind?: boolean) => void;
  /**
   * A `submit()`: one item, run as a call of its own (index 0, its own seed). A pool may send
   * it to a worker together with other queued submits of the same task (see `Batch` in
   * `_pool.ts`); each is still settled on its own.
   */
  readonly single?: boolean;
  /**
   * Set on a batch of coalesced submits only: each item is its own call (index 0, seed
   * `seeds[k]`, absent means 0), and one item's error fails that item alone.
   */
  readonly each?: { readonly seeds: readonly (bigint | undefined)[] | undefined };
}

/** What a built-in strategy returns for a chunk; a batch of submits adds its failed items. */
export interface BuiltInResult extends ChunkResult {
  /** For `each` chunks: the error of every item that failed, by position; the rest succeeded. */
  failures?: Map<number, unknown>;
  /** With `busy`: of `ms`, the time the calling thread spent computing, in ms. */
  busyMs?: number;
  /** With `busy`: whether a task of the chunk returned a promise, which was awaited. */
  awaited?: boolean;
}

/** A built-in strategy. */
export interface BuiltInStrategy extends Strategy {
  readonly name: StrategyName;
  run(request: BuiltInRequest): Promise<ChunkResult>;
  /**
   * `run()` settling the caller's own promise, where the strategy offers it (the pools).
   */
  enqueue?(
    request: BuiltInRequest,
    resolve: (result: BuiltInResult) => void,
    reject: (error: unknown) => void,
    end?: JobEnd,
    pin?: object,
  ): void;
  /**
   * Drops a released shared value from every worker that holds it. No chunk holding its handle
   * is queued or running any more.
   */
  forget(id: number): void;
  /** Starts every worker and loads `tasks` in each (the pools; see `ParallelExecutor.warmup`). */
  warmup?(tasks: readonly TaskSpec[]): Promise<void>;
  /** Mean time its workers took to start, spawn to ready, in ms; `undefined` before one did (and for serial). */
  readonly startMs?: number;
  /** Workers alive now (a warm pool has some; 0 for serial). */
  readonly live: number;
  /** Workers started so far to replace dead ones. */
  readonly respawns: number;
  /** Workers replaced so far because they were worn (`maxTasksPerWorker`, `idleMemoryLimitMb`). */
  readonly recycled: number;
}

/**
 * What a strategy of fanout's own that is not a pool (the distributed one) may offer beside the
 * public contract, under these keys, so that no user's strategy offers them by chance.
 */
/** `(): string`: why this strategy, in words, for `explain()` and telemetry. */
export const DESCRIBE: unique symbol = Symbol.for("fanout.strategy.describe");
/** `(id: number): void`: a shared value was released; drop it wherever it was sent. */
export const FORGET_SHARED: unique symbol = Symbol.for("fanout.strategy.forgetShared");
/** `(): Promise<void>`: get ready ahead of work (`ParallelExecutor.warmup`). */
export const WARMUP: unique symbol = Symbol.for("fanout.strategy.warmup");
/** `(): number`: the workers that run its chunks, where that differs from `concurrency`. */
export const WORKERS: unique symbol = Symbol.for("fanout.strategy.workers");
/** `number`: how long an auto chunk should take on it, in ms (jobs that cost ~2 ms each to send). */
export const CHUNK_MS: unique symbol = Symbol.for("fanout.strategy.chunkMs");
