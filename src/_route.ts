/**
 * One call's way to its strategy: every chunk claims the shared handles it holds, is measured
 * when someone listens, and, with `forceSerialOnFailure`, falls back to serial when the
 * strategy fails underneath it. At the end the call reports what it did.
 *
 * ```
 * dispatch ──► Runner ──► claim handles ──► strategy.run ──► result / error
 *                 │          (pin)            │   ▲ onStart: queue wait, worker
 *                 │                           ▼   │
 *                 └── worker failure + forceSerialOnFailure ──► serial (this chunk and the rest)
 * ```
 *
 * @module
 */

import type { Runner } from "./_dispatch.ts";
import type { CallPin, SharedRegistry } from "./shared.ts";
import type { ChunkRequest, ChunkResult, Strategy } from "./strategy/types.ts";
import type { ExecutorStats, TelemetryEvent } from "./telemetry.ts";
import { percentile } from "./telemetry.ts";

const EMPTY: number[] = [];
import { WorkerCrashedError, WorkerStartError } from "./errors.ts";
import process from "node:process";

/** What a call needs from its executor. */
export interface CallHost {
  readonly shared: SharedRegistry;
  /** The serial strategy, for fallbacks. */
  serial(): Strategy;
  readonly forceSerialOnFailure: boolean;
  readonly onEvent: ((event: TelemetryEvent) => void) | undefined;
  readonly taskEvents: boolean;
  readonly log: boolean;
  readonly stats: ExecutorStats;
  /** A pool could not start: later calls should not count on it. */
  broken(strategy: string, why: string): void;
}

/** Whether an error is the strategy's failure rather than the task's or the caller's. */
function isWorkerFailure(error: unknown): boolean {
  return error instanceof WorkerCrashedError;
}

/** One call in progress. */
export class Call {
  /** Handles released while this call runs stay usable by it. */
  readonly pin: CallPin;
  /** The strategy running the call; set once chosen. */
  strategy = "serial";
  workers = 1;
  #reason: string | (() => string) = "";

  readonly #host: CallHost;
  /** Which method made the call. */
  readonly kind: "map" | "imap" | "submit";
  readonly #listening: boolean;
  readonly #start: number;
  #tasks = 0;
  #chunks = 0;
  #busy = 0;
  #crashes = 0;
  #fallbacks = 0;
  #respawns = 0;
  #fellBack: Runner | undefined;
  // Measurements, made only while a listener is set (no allocation per call otherwise).
  #waits: number[] = EMPTY;
  /** Per chunk: the run time per item, and how many items it ran. */
  #runs: number[] = EMPTY;
  #runItems: number[] = EMPTY;
  /** Each strategy this call used, with its respawn count when the call began using it. */
  readonly #respawnBase: [Strategy, number][] = [];
  #ended = false;

  constructor(host: CallHost, kind: "map" | "imap" | "submit") {
    this.#host = host;
    this.kind = kind;
    this.pin = host.shared.begin();
    this.#listening = host.onEvent !== undefined;
    this.#start = this.#listening ? performance.now() : 0;
    if (this.#listening) {
      this.#waits = [];
      this.#runs = [];
      this.#runItems = [];
    }
  }

  /** Why the strategy, in words; formatted on first read (most calls never look). */
  get reason(): string {
    if (typeof this.#reason === "function") this.#reason = this.#reason();
    return this.#reason;
  }

  /** Records the strategy and its reason; with `log=1`, prints them. */
  choose(strategy: string, reason: string | (() => string), workers: number): void {
    this.strategy = strategy;
    this.#reason = reason;
    this.workers = workers;
    if (this.#host.log) console.error(`fanout: ${this.kind}: ${this.reason}`);
  }

  /** The runner of `strategy` for this call. */
  runner(strategy: Strategy): Runner {
    if (this.#listening && !this.#respawnBase.some(([used]) => used === strategy)) {
      this.#respawnBase.push([strategy, strategy.respawns ?? 0]);
    }
    const host = this.#host;
    const direct = (request: ChunkRequest): Promise<ChunkResult> => this.#run(strategy, request);
    if (!host.forceSerialOnFailure || strategy.name === "serial") {
      return { concurrency: strategy.concurrency, run: direct };
    }
    const fellBack = (): Runner | undefined => this.#fellBack;
    return {
      get concurrency(): number {
        return fellBack()?.concurrency ?? strategy.concurrency;
      },
      run: (request) => {
        if (this.#fellBack !== undefined) return this.#fellBack.run(request);
        return direct(request).catch((error: unknown) => {
          if (!isWorkerFailure(error) || request.signal?.aborted) throw error;
          this.#fallBack(strategy, error);
          return this.#fellBack!.run(request);
        });
      },
    };
  }

  #fallBack(strategy: Strategy, error: unknown): void {
    if (this.#fellBack !== undefined) return;
    const why = error instanceof Error ? error.message : String(error);
    if (error instanceof WorkerStartError) this.#host.broken(strategy.name, why);
    this.#fallbacks++;
    this.#fellBack = this.runner(this.#host.serial());
    const reason = `serial: fell back from ${strategy.name}: ${why}`;
    this.#tell({ type: "fallback", from: strategy.name, reason, error });
    this.choose("serial", reason, 1);
  }

  #run(strategy: Strategy, request: ChunkRequest): Promise<ChunkResult> {
    let shared;
    try {
      shared = this.#host.shared.claim(this.pin, request.base, request.items);
    } catch (error) {
      return Promise.reject(error);
    }
    let sent = shared === undefined ? request : { ...request, shared };
    let queued = 0;
    let wait = 0;
    let worker = 0;
    if (this.#listening) {
      queued = performance.now();
      sent = {
        ...sent,
        timed: true,
        onStart: (no: number) => {
          wait = performance.now() - queued;
          worker = no;
        },
      };
    }
    const run = strategy.run(sent);
    if (shared !== undefined) {
      const unclaim = (): void => this.#host.shared.unclaim(shared);
      run.then(unclaim, unclaim);
    }
    const items = request.items.length;
    this.#tasks += items;
    this.#chunks++;
    // Without a listener, nothing more: no promise reaction on the hot path.
    if (!this.#listening) return run;
    run.then(
      (result) => {
        const ms = Number.isFinite(result.ms) ? result.ms : 0;
        this.#busy += ms;
        this.#waits.push(wait);
        const each = items > 0 ? ms / items : 0;
        this.#runs.push(each);
        this.#runItems.push(items);
        if (this.#host.taskEvents) {
          for (let k = 0; k < items; k++) {
            this.#tell({
              type: "task",
              index: request.base + k,
              worker,
              waitMs: wait,
              runMs: each,
            });
          }
        }
      },
      (error: unknown) => {
        if (error instanceof WorkerCrashedError && !(error instanceof WorkerStartError)) {
          this.#crashes++;
        }
      },
    );
    return run;
  }

  /** Tells the listener; a listener that throws is reported as a warning, not to the call. */
  #tell(event: TelemetryEvent): void {
    const listener = this.#host.onEvent;
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

  /** The call settled (with `error` when it failed): count it, and tell the listener. */
  end(ok: boolean, error?: unknown): void {
    if (this.#ended) return;
    this.#ended = true;
    if (
      !this.#listening && error instanceof WorkerCrashedError &&
      !(error instanceof WorkerStartError)
    ) {
      // Unwatched chunks are not followed one by one: the crash that failed the call counts.
      this.#crashes++;
    }
    const host = this.#host;
    host.shared.end(this.pin);
    for (const [strategy, base] of this.#respawnBase) {
      this.#respawns += (strategy.respawns ?? 0) - base;
    }
    const stats = host.stats;
    stats.calls++;
    if (!ok) stats.failedCalls++;
    stats.tasks += this.#tasks;
    stats.chunks += this.#chunks;
    stats.byStrategy[this.strategy] = (stats.byStrategy[this.strategy] ?? 0) + 1;
    stats.fallbacks += this.#fallbacks;
    stats.crashes += this.#crashes;
    stats.busyMs += this.#busy;
    if (!this.#listening) return;
    const durationMs = performance.now() - this.#start;
    this.#tell({
      type: "parallel_execution",
      call: this.kind,
      strategy: this.strategy,
      reason: this.reason,
      ok,
      workers: this.workers,
      tasks: this.#tasks,
      chunks: this.#chunks,
      durationMs,
      queueWaitMs: { p50: percentile(this.#waits, 50), p95: percentile(this.#waits, 95) },
      runMs: {
        p50: percentile(this.#runs, 50, this.#runItems),
        p95: percentile(this.#runs, 95, this.#runItems),
      },
      utilization: durationMs > 0 ? Math.min(1, this.#busy / (this.workers * durationMs)) : 0,
      fallbacks: this.#fallbacks,
      crashes: this.#crashes,
      respawns: this.#respawns,
    });
  }
}
