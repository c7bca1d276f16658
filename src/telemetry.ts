/**
 * Telemetry: what each call did, as typed events for `onEvent`, and running totals for
 * `ex.stats()`. Nothing is measured for a call unless a listener is set.
 *
 * @module
 */

/** A median and a 95th percentile, in ms. */
export interface Percentiles {
  /** The median. */
  p50: number;
  /** The 95th percentile. */
  p95: number;
}

/** One call (`map`, `imap` or `submit`) ended. */
export interface ParallelExecutionEvent {
  /** What kind of event. */
  type: "parallel_execution";
  /** `"map"`, `"imap"` or `"submit"`. */
  call: "map" | "imap" | "submit";
  /** The strategy that ran the call (`"serial"` after a fallback). */
  strategy: string;
  /** Why that strategy, in words (the same text as `explain()` and `log=1`). */
  reason: string;
  /** Whether the call succeeded. */
  ok: boolean;
  /** Workers that could run its chunks at once (1 for serial). */
  workers: number;
  /** Tasks (items) sent to the strategy. */
  tasks: number;
  /** Messages (chunks) they went in. */
  chunks: number;
  /** Wall time of the call. */
  durationMs: number;
  /** Per chunk: from being handed to the strategy to starting on a worker. */
  queueWaitMs: Percentiles;
  /** Per task: run time on its worker (a chunk's run time shared out over its items). */
  runMs: Percentiles;
  /** Busy time of the workers ÷ (workers × wall time), from 0 to 1. */
  utilization: number;
  /** Times the call fell back to serial (0 or 1). */
  fallbacks: number;
  /** Workers that died under this call's tasks. */
  crashes: number;
  /** Workers started during the call to replace dead ones. */
  respawns: number;
  /**
   * Chunks given to another worker during the call because the one running them was lost
   * (the distributed strategy's stalled-job recovery); 0 on the other strategies.
   */
  retries: number;
}

/** A call gave up on its strategy and ran the rest serially (`forceSerialOnFailure`). */
export interface FallbackEvent {
  /** What kind of event. */
  type: "fallback";
  /** The strategy given up on. */
  from: string;
  /** Why, in words. */
  reason: string;
  /** The failure. */
  error: unknown;
}

/** One task ran (only with `taskEvents: true`). */
export interface TaskEvent {
  /** What kind of event. */
  type: "task";
  /** The task's index in its call's input. */
  index: number;
  /** Which worker ran it: a small number, stable for the worker's life (0 for serial). */
  worker: number;
  /** The host that ran it, for a strategy that spans machines (distributed); absent otherwise. */
  host?: string;
  /** Its chunk's queue wait, in ms. */
  waitMs: number;
  /** Its run time, in ms (its chunk's run time shared out over the chunk's items). */
  runMs: number;
}

/** Everything `onEvent` receives. */
export type TelemetryEvent = ParallelExecutionEvent | FallbackEvent | TaskEvent;

/** Running totals of an executor, from `ex.stats()`. */
export interface ExecutorStats {
  /** Calls ended, successful or not. */
  calls: number;
  /** Calls that failed. */
  failedCalls: number;
  /** Tasks sent to a strategy. */
  tasks: number;
  /** Chunks sent. */
  chunks: number;
  /** Calls per strategy that ran them. */
  byStrategy: Record<string, number>;
  /** Fallbacks to serial. */
  fallbacks: number;
  /** Workers that died under tasks (without a listener: the crashes that failed a call). */
  crashes: number;
  /** Workers started to replace dead ones. */
  respawns: number;
  /** Workers replaced because of `maxTasksPerWorker` or `idleMemoryLimitMb`. */
  recycled: number;
  /** Worker busy time, in ms (measured only while a listener is set). */
  busyMs: number;
}

/**
 * The p-th percentile (nearest rank) of some samples, each counted `weights[i]` times (once
 * when no weights are given); 0 for none.
 */
export function percentile(
  samples: readonly number[],
  p: number,
  weights?: readonly number[],
): number {
  if (samples.length === 0) return 0;
  const order = samples.map((_, i) => i).sort((a, b) => samples[a] - samples[b]);
  const weight = (i: number): number => weights?.[i] ?? 1;
  const total = order.reduce((sum, i) => sum + weight(i), 0);
  const rank = Math.max(1, Math.ceil((p / 100) * total));
  let seen = 0;
  for (const i of order) {
    seen += weight(i);
    if (seen >= rank) return samples[i];
  }
  return samples[order[order.length - 1]];
}

/** Fresh totals. */
export function emptyStats(): ExecutorStats {
  return {
    calls: 0,
    failedCalls: 0,
    tasks: 0,
    chunks: 0,
    byStrategy: {},
    fallbacks: 0,
    crashes: 0,
    respawns: 0,
    recycled: 0,
    busyMs: 0,
  };
}
