/**
 * What one call did, for the executor's stats and its listener: the items and chunks it ran,
 * how long its workers were busy, its crashes, fallbacks, respawns and retries, and, while a
 * listener is set (nothing is measured or allocated otherwise), each chunk's wait in the queue
 * and run time per item. At the end it adds itself to the stats and tells the listener.
 *
 * @module
 */

import type { ChunkResult, Strategy } from "./strategy/types.ts";
import type { BuiltInStrategy } from "./strategy/_builtin.ts";
import type { ExecutorStats, TelemetryEvent } from "./telemetry.ts";
import { percentile } from "./telemetry.ts";
import type { Settings } from "./_options.ts";
import type { CallKind } from "./_options.ts";
import { WorkerCrashedError } from "./errors.ts";
import process from "node:process";

const EMPTY: number[] = [];

/** One chunk followed for the listener: its wait in the queue, and the worker it ran on. */
export interface ChunkWatch {
  readonly queued: number;
  wait: number;
  worker: number;
  onStart(no: number): void;
}

/** How a call ended, as its report tells it. */
export interface CallEnd {
  readonly kind: CallKind;
  readonly strategy: string;
  readonly reason: string;
  readonly ok: boolean;
  readonly workers: number;
}

/** The counts of one call. */
export class CallReport {
  /** Whether a listener is set: only then are chunks followed one by one. */
  readonly listening: boolean;
  fallbacks = 0;
  crashes = 0;
  readonly #settings: Pick<Settings, "onEvent" | "taskEvents">;
  readonly #start: number;
  #tasks = 0;
  #chunks = 0;
  #busy = 0;
  #respawns = 0;
  #retries = 0;
  #waits: number[] = EMPTY;
  /** Per chunk: the run time per item, and how many items it ran. */
  #runs: number[] = EMPTY;
  #runItems: number[] = EMPTY;
  /** Each strategy the call used, with its respawn count when the call began using it. */
  readonly #respawnBase: [Strategy, number][] = [];

  constructor(settings: Pick<Settings, "onEvent" | "taskEvents">) {
    this.#settings = settings;
    this.listening = settings.onEvent !== undefined;
    this.#start = this.listening ? performance.now() : 0;
    if (this.listening) {
      this.#waits = [];
      this.#runs = [];
      this.#runItems = [];
    }
  }

  /** The call runs chunks on `strategy` (its respawns from now on count, with a listener). */
  uses(strategy: Strategy): void {
    if (this.listening && !this.#respawnBase.some(([used]) => used === strategy)) {
      this.#respawnBase.push([strategy, respawnsOf(strategy)]);
    }
  }

  /** A chunk to follow, queued now. */
  watch(): ChunkWatch {
    const queued = performance.now();
    return {
      queued,
      wait: 0,
      worker: 0,
      onStart(no: number): void {
        this.wait = performance.now() - queued;
        this.worker = no;
      },
    };
  }

  /** A chunk of `items` items from index `base` was sent; `watch` follows it, with a listener. */
  ran(run: Promise<ChunkResult>, base: number, items: number, watch?: ChunkWatch): void {
    this.#tasks += items;
    this.#chunks++;
    if (watch === undefined) return;
    run.then(
      (result) => {
        const ms = Number.isFinite(result.ms) ? result.ms : 0;
        this.#busy += ms;
        this.#retries += result.retries ?? 0;
        this.#waits.push(watch.wait);
        const each = items > 0 ? ms / items : 0;
        this.#runs.push(each);
        this.#runItems.push(items);
        if (!this.#settings.taskEvents) return;
        for (let k = 0; k < items; k++) {
          this.tell({
            type: "task",
            index: base + k,
            worker: watch.worker,
            ...(result.host === undefined ? {} : { host: result.host }),
            waitMs: watch.wait,
            runMs: each,
          });
        }
      },
      (error: unknown) => {
        if (error instanceof WorkerCrashedError) this.crashes++;
      },
    );
  }

  /** Tells the listener; a listener that throws is reported as a warning, not to the call. */
  tell(event: TelemetryEvent): void {
    const listener = this.#settings.onEvent;
    if (listener === undefined) return;
    try {
      listener(event);
    } catch (error) {
      process.emitWarning(
        `fanout: onEvent threw on a ${event.type} event: ${
          error instanceof Error ? error.message : String(error)
        }`,
        { code: "FANOUT_LISTENER_ERROR" },
      );
    }
  }

  /** The call settled (`error`, when it failed): the respawns it saw are counted. */
  settled(error: unknown): void {
    if (!this.listening && error instanceof WorkerCrashedError) {
      // Unwatched chunks are not followed one by one: the crash that failed the call counts.
      this.crashes++;
    }
    for (const [strategy, base] of this.#respawnBase) {
      this.#respawns += respawnsOf(strategy) - base;
    }
  }

  /** Adds the call to `stats`, and tells the listener how it went. */
  report(stats: ExecutorStats, end: CallEnd): void {
    stats.calls++;
    if (!end.ok) stats.failedCalls++;
    stats.tasks += this.#tasks;
    stats.chunks += this.#chunks;
    stats.byStrategy[end.strategy] = (stats.byStrategy[end.strategy] ?? 0) + 1;
    stats.fallbacks += this.fallbacks;
    stats.crashes += this.crashes;
    stats.busyMs += this.#busy;
    if (!this.listening) return;
    const durationMs = performance.now() - this.#start;
    this.tell({
      type: "parallel_execution",
      call: end.kind,
      strategy: end.strategy,
      reason: end.reason,
      ok: end.ok,
      workers: end.workers,
      tasks: this.#tasks,
      chunks: this.#chunks,
      durationMs,
      queueWaitMs: { p50: percentile(this.#waits, 50), p95: percentile(this.#waits, 95) },
      runMs: {
        p50: percentile(this.#runs, 50, this.#runItems),
        p95: percentile(this.#runs, 95, this.#runItems),
      },
      utilization: durationMs > 0 ? Math.min(1, this.#busy / (end.workers * durationMs)) : 0,
      fallbacks: this.fallbacks,
      crashes: this.crashes,
      respawns: this.#respawns,
      retries: this.#retries,
    });
  }
}

/** Workers a strategy started to replace dead ones (a user's strategy counts none). */
function respawnsOf(strategy: Strategy): number {
  return (strategy as Partial<BuiltInStrategy>).respawns ?? 0;
}
