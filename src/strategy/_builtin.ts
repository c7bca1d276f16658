/**
 * What the built-in strategies (serial, threads, processes) take and give beyond the public
 * `Strategy` contract: the executor's own hooks, which a user's strategy never sees.
 *
 * @module
 */

import type { SharedEntry } from "../shared.ts";
import type { ChunkRequest, ChunkResult, Strategy, StrategyName } from "./types.ts";

/** A chunk as the executor hands it to a built-in strategy. */
export interface BuiltInRequest extends ChunkRequest {
  /**
   * Whether the caller needs `ms` (auto chunk sizing and telemetry do). Timing costs two clock
   * reads per chunk, a visible part of a one-item round trip; untimed chunks report `NaN`.
   */
  readonly timed?: boolean;
  /**
   * The shared values whose handles the items hold: a worker that lacks one gets it with this
   * chunk. Absent when there are none.
   */
  readonly shared?: readonly SharedEntry[];
  /**
   * Called when the chunk starts on a worker, with the worker's number (small, stable for the
   * worker's life; 0 for serial). Set only while telemetry listens.
   */
  readonly onStart?: (worker: number) => void;
}

/** A built-in strategy. */
export interface BuiltInStrategy extends Strategy {
  readonly name: StrategyName;
  run(request: BuiltInRequest): Promise<ChunkResult>;
  /**
   * Drops a released shared value from every worker that holds it. No chunk holding its handle
   * is queued or running any more.
   */
  forget(id: number): void;
  /** Workers alive now (a warm pool has some; 0 for serial). */
  readonly live: number;
  /** Workers started so far to replace dead ones. */
  readonly respawns: number;
  /** Workers replaced so far because they were worn (`maxTasksPerWorker`, `idleMemoryLimitMb`). */
  readonly recycled: number;
}
