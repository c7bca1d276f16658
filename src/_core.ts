/**
 * An executor's state behind its facade: its settings, the strategies it has started, the
 * shared values, what it measured, and the calls in progress. Every part of a call reads it;
 * none of them calls back into the facade.
 *
 * @module
 */

import process from "node:process";
import type { CallSettings, Settings } from "./_options.ts";
import { SharedRegistry } from "./shared.ts";
import type { ExecutorStats } from "./telemetry.ts";
import { emptyStats } from "./telemetry.ts";
import { Estimates } from "./chunking.ts";
import { calibration } from "./_calibration.ts";
import type { Strategy, StrategyName } from "./strategy/types.ts";
import type { BuiltInStrategy } from "./strategy/_builtin.ts";
import { FORGET_SHARED, WARMUP } from "./strategy/_builtin.ts";
import type { TaskSpec } from "./protocol.ts";
import type { JobEnd } from "./strategy/_queue.ts";
import { SerialStrategy } from "./strategy/serial.ts";
import { ThreadPool } from "./strategy/threads.ts";
import { ProcessPool } from "./strategy/processes.ts";
import { detect, threadFactory } from "./runtime/mod.ts";
import { ASYNC_CONCURRENCY } from "./config.ts";
import { ExecutorClosedError } from "./errors.ts";

/** Marks the global scope of a fanout worker (set by thread_entry.js and process_entry.js). */
const WORKER_MARK = Symbol.for("fanout.worker");
/** Where executors made inside a worker are listed (read by thread_entry.js). */
const NESTED_EXECUTORS = Symbol.for("fanout.executors");

/** Runtimes and strategies already warned that `maxMemoryMb` has no effect there. */
const warnedNoCap = new Set<string>();

/** An executor's state. */
export class Core {
  readonly settings: Settings;
  readonly shared: SharedRegistry;
  readonly stats: ExecutorStats = emptyStats();
  /** Time per item of each task's last call, for chunk sizing and auto. */
  readonly estimates: Estimates = new Estimates();
  /** Pools that could not start, with why: auto and `forceSerialOnFailure` avoid them. */
  readonly broken: { threads?: string; processes?: string } = {};
  /** Whether this executor runs inside a fanout worker. */
  readonly nested: boolean;
  /** What serial calls gave up because the thread pool was cold (see `Workload.regretMs`). */
  regretMs = 0;
  closed = false;
  /** Submits in flight: together, they are auto's batch. */
  submits = 0;
  /** A submit's settings when it passes no options (see `ParallelExecutor.submit`). */
  submitDefaults: CallSettings | undefined;
  /** The strategy submits go to without a route, once known (see `_submit.ts`); null: none. */
  direct: BuiltInStrategy | null | undefined;
  /** How a direct submit is counted when it settles (see `_submit.ts`). */
  submitEnd: JobEnd | undefined;
  /** Calls whose pipelines run now: `terminate()` cancels them. */
  readonly running: Set<{ cancel(reason: unknown, hard: boolean): void }> = new Set();
  readonly #strategies = new Map<StrategyName, BuiltInStrategy>();
  #active = 0;
  #idle: (() => void) | undefined;
  readonly #owner: object;
  #closing: Promise<void> | undefined;
  #terminating: Promise<void> | undefined;

  /**
   * @param settings The resolved options.
   * @param owner The facade, listed where a pool thread finds the executors its tasks made.
   */
  constructor(settings: Settings, owner: object) {
    this.settings = settings;
    this.#owner = owner;
    this.shared = new SharedRegistry((id) => {
      for (const strategy of this.#strategies.values()) strategy.forget(id);
      const own = settings.choice as Partial<Record<typeof FORGET_SHARED, (id: number) => void>>;
      if (typeof own === "object") own[FORGET_SHARED]?.(id);
    });
    this.nested = (globalThis as Record<symbol, unknown>)[WORKER_MARK] !== undefined;
    // In a pool thread, the pool terminates these before it terminates the thread, so that
    // their child processes are reaped (a terminated thread cannot reap them).
    if (this.nested) nestedExecutors().add(owner);
  }

  /** The built-in strategy by that name, started on first use. */
  builtIn(name: StrategyName): BuiltInStrategy {
    let strategy = this.#strategies.get(name);
    if (strategy !== undefined) return strategy;
    const { maxWorkers, pool, concurrency } = this.settings;
    if (pool.maxMemoryMb !== undefined) warnIfNoCap(name);
    strategy = name === "serial" || name === "async"
      ? new SerialStrategy({
        name,
        loadTimeoutMs: pool.loadTimeoutMs,
        concurrency: concurrency ?? (name === "async" ? ASYNC_CONCURRENCY : 1),
      })
      : name === "threads"
      ? new ThreadPool(maxWorkers, threadFactory(), pool)
      : new ProcessPool(maxWorkers, pool);
    this.#strategies.set(name, strategy);
    return strategy;
  }

  /**
   * Starts what `warmup()` starts: the thread or process pool (the thread pool under auto,
   * auto's choice for most parallel work), a strategy of the user's own if it can warm up,
   * nothing on the calling thread.
   */
  warmup(specs: TaskSpec[]): Promise<void> {
    const choice = this.settings.choice;
    if (typeof choice === "object") {
      const own = (choice as Partial<Record<typeof WARMUP, () => Promise<void>>>)[WARMUP];
      return own?.call(choice) ?? Promise.resolve();
    }
    if (choice === "serial" || choice === "async") return Promise.resolve();
    const pool = this.builtIn(choice === "auto" ? "threads" : choice);
    return pool.warmup?.(specs) ?? Promise.resolve();
  }

  /**
   * Hands the start its pools measured to the process-wide calibration (`calibration` in
   * `chunking.ts`), so that this executor's decisions price its own pool's start, and a later
   * executor's, a start measured here rather than the constant.
   */
  calibrate(): void {
    for (const [name, strategy] of this.#strategies) calibration.started(name, strategy.startMs);
  }

  /** Whether the built-in pool by that name has workers alive. */
  warm(name: StrategyName): boolean {
    return (this.#strategies.get(name)?.live ?? 0) > 0;
  }

  /** Every strategy started so far, the user's own included. */
  started(): Strategy[] {
    const started: Strategy[] = [...this.#strategies.values()];
    if (typeof this.settings.choice === "object") started.push(this.settings.choice);
    return started;
  }

  /** Respawned and recycled workers of the built-in pools so far. */
  workerCounts(): { respawns: number; recycled: number } {
    let respawns = 0;
    let recycled = 0;
    for (const strategy of this.#strategies.values()) {
      respawns += strategy.respawns;
      recycled += strategy.recycled;
    }
    return { respawns, recycled };
  }

  /** A call began: `close()` waits for it. */
  begin(): void {
    this.#active++;
  }

  /** A call ended. */
  end(): void {
    if (--this.#active === 0 && this.#idle !== undefined) {
      const resolve = this.#idle;
      this.#idle = undefined;
      resolve();
    }
  }

  /** `ParallelExecutor.close()`: once no call is in progress, every strategy closes. */
  close(): Promise<void> {
    this.closed = true;
    this.#closing ??= (async () => {
      if (this.#active > 0) await new Promise<void>((resolve) => (this.#idle = resolve));
      this.shared.releaseAll();
      await Promise.all(this.started().map((strategy) => strategy.close()));
      this.#gone();
    })();
    return this.#closing;
  }

  /** `ParallelExecutor.terminate()`: running calls are cancelled, every strategy terminated. */
  terminate(): Promise<void> {
    this.closed = true;
    this.#terminating ??= (async () => {
      const error = new ExecutorClosedError(
        "The executor was terminated while this call was running",
      );
      for (const pipeline of [...this.running]) pipeline.cancel(error, true);
      this.shared.releaseAll();
      await Promise.all(this.started().map((strategy) => strategy.terminate()));
      this.#gone();
    })();
    return this.#terminating;
  }

  /**
   * Every worker is gone: a pool thread no longer needs to find this executor, and what its
   * pools measured is kept for the executors after it.
   */
  #gone(): void {
    this.calibrate();
    if (this.nested) nestedExecutors().delete(this.#owner);
  }
}

/** The executors made inside this worker, by its tasks (read by thread_entry.js). */
function nestedExecutors(): Set<object> {
  const scope = globalThis as Record<symbol, Set<object> | undefined>;
  return (scope[NESTED_EXECUTORS] ??= new Set());
}

/** Warns, once per process and strategy, where `maxMemoryMb` cannot be enforced. */
function warnIfNoCap(strategy: StrategyName): void {
  const { name: runtime, capabilities: can } = detect();
  const capped = strategy === "processes"
    ? can.processHeapCap
    : strategy === "threads" && can.threadHeapCap;
  const key = `${runtime}/${strategy}`;
  if (capped || warnedNoCap.has(key)) return;
  warnedNoCap.add(key);
  const where = strategy === "serial" || strategy === "async"
    ? `the ${strategy} strategy runs on the calling thread`
    : can.noHeapCap;
  process.emitWarning(
    `fanout: maxMemoryMb has no effect with ${strategy} on ${runtime}: ${where}`,
    { code: "FANOUT_NO_MEMORY_CAP" },
  );
}
