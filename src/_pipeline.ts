/**
 * The pipeline of one call, from input to results. Every call (`map`, `imap`, `submit`, the
 * probe of `explain`) flows through it, top to bottom:
 *
 * ```
 *  ParallelExecutor.map / imap / submit / explain          executor.ts
 *   │ options resolved (resolveCall)                        _options.ts
 *   │ a Route: which strategy and why, claims, fallback     _route.ts  (auto: strategy/auto.ts)
 *   ▼
 *  Pipeline ── reads the input lazily ──────────────────── _source.ts
 *   │          cuts it into chunks (ChunkSizer, Mean)        chunking.ts
 *   │          keeps ≤ concurrency chunks in flight, ≤ window items unconsumed
 *   ▼
 *  Route.run(BuiltInRequest) ─► Strategy.run                strategy/{serial,threads,processes}.ts
 *   │                              queue, idle worker        strategy/_pool.ts
 *   │                              message ─► worker         worker/thread_entry.js, process_entry.js
 *   │                              task(input, ctx) ×n       worker/run_task.js
 *   ▼                              ◄─ values (or an error)   _revive.ts, worker/error_wire.js
 *  Pipeline: record the time per item, hand the values to the Sink ─► the caller
 *      map: collect() puts chunks in input order            (this file)
 *      imap: iterate() yields them in order or as they come (this file)
 *      onProgress: counted per chunk, called now and then    _call_progress.ts
 *                  and once when the call stops
 * ```
 *
 * Cancellation composes signals rather than flags: each chunk's signal is the call's own
 * signal joined with the pipeline's, and its abort reason says how hard to stop (see
 * `_abort.ts`): the caller's reason or `terminate()` stop hard, a `SoftStop` (another chunk
 * failed, the iterator was closed) asks through `ctx.signal`.
 *
 * @module
 */

import type { TaskSpec } from "./protocol.ts";
import type { ChunkResult } from "./strategy/types.ts";
import type { BuiltInRequest } from "./strategy/_builtin.ts";
import type { Source } from "./_source.ts";
import { abandon, countOf, take, takeAsync, toSource } from "./_source.ts";
import { ChunkSizer } from "./chunking.ts";
import type { Estimates } from "./chunking.ts";
import { onAbort, SoftStop } from "./_abort.ts";
import type { CallSettings } from "./_options.ts";
import type { Route } from "./_route.ts";
import { ExecutorClosedError } from "./errors.ts";
import { CallProgress, warnRejected } from "./_call_progress.ts";

/** What a pipeline needs of a strategy. */
export interface Runner {
  /** Chunks in flight at once. */
  readonly concurrency: number;
  /**
   * Items of one chunk in flight at once: a worker's share of the call's `concurrency`; 1 on
   * the calling thread, where chunks are what is in flight.
   */
  readonly perChunk: number;
  /** Whether chunks run on the calling thread (serial, async; auto while it probes). */
  readonly onCaller: boolean;
  /** How long an auto chunk should take, where the strategy wants more than `TARGET_CHUNK_MS`. */
  readonly chunkMs?: number;
  run(request: BuiltInRequest): Promise<ChunkResult>;
}

/** Where a pipeline's results go. */
interface Sink {
  /** A chunk's results; `seq` counts chunks in input order from 0. */
  put(seq: number, values: unknown[]): void;
  /** The pipeline stopped: finished, failed or cancelled. */
  stopped(): void;
}

/** One call's traffic. */
export class Pipeline {
  /** The failure, once the call has failed; read it only when `failed` is set. */
  error: unknown;
  /**
   * Whether the call failed (or was cancelled). A flag of its own, because a task or an input
   * may throw `undefined`, which `error` cannot tell apart from "no error".
   */
  failed = false;
  /** Whether it ended: finished, failed or cancelled. */
  stopped = false;
  /** The call's route: its runner, and its accounting at the end. */
  readonly route: Route;

  readonly #runner: Runner;
  readonly #task: TaskSpec;
  readonly #source: Source;
  readonly #call: CallSettings;
  readonly #sizer: ChunkSizer;
  readonly #control = new AbortController();
  /** What every chunk gets: the caller's signal joined with the pipeline's. */
  readonly #signal: AbortSignal;
  readonly #unlisten: () => void;
  /** The call's counts for its `onProgress`, if it has one. */
  readonly #progress: CallProgress | undefined;
  #sink: Sink | undefined;
  /** Most items dispatched but not yet released by the consumer, per chunk in flight. */
  #window = Infinity;
  #position = 0;
  #seq = 0;
  #inFlight = 0;
  #outstanding = 0;
  #filling = false;
  #exhausted = false;

  /**
   * @param route The call's route (its runner, and its accounting at the end).
   * @param task The task.
   * @param items The input.
   * @param call The call's options.
   * @param memory Where the task's time per item is read from and recorded, under auto chunking.
   * @throws {TypeError} If `items` is not iterable.
   */
  constructor(
    route: Route,
    task: TaskSpec,
    items: unknown,
    call: CallSettings,
    memory?: Estimates,
  ) {
    this.route = route;
    this.#runner = route.runner;
    this.#task = task;
    this.#source = toSource(items);
    this.#call = call;
    this.#progress = call.onProgress === undefined
      ? undefined
      : new CallProgress(call.onProgress, countOf(items), undefined, (error) => {
        // A rejection while the call runs fails it, as a throw does; after, only a warning can.
        if (this.stopped) warnRejected(error);
        else this.#fail(error);
      });
    const runner = this.#runner;
    const workers = (): number => runner.concurrency;
    const least = (): number => runner.perChunk;
    const here = (): number => runner.onCaller ? runner.concurrency : 0;
    this.#sizer = memory === undefined
      ? new ChunkSizer(call.chunkSize, workers, undefined, least, here)
      : ChunkSizer.forTask(call.chunkSize, workers, memory, task, least, here);
    if (runner.chunkMs !== undefined) this.#sizer.aimAt(runner.chunkMs);
    const own = this.#control.signal;
    this.#signal = call.signal === undefined ? own : AbortSignal.any([call.signal, own]);
    // Only the caller's abort needs a listener: the pipeline's own abort comes from #fail.
    this.#unlisten = call.signal === undefined
      ? noop
      : onAbort(this.#signal, () => this.#fail(this.#signal.reason));
  }

  /** The caller's signal, joined with the pipeline's. */
  get signal(): AbortSignal {
    return this.#signal;
  }

  /**
   * Starts reading the input into `sink`, keeping at most `window` items unconsumed per chunk
   * the runner keeps in flight.
   */
  start(sink: Sink, window = Infinity): void {
    this.#sink = sink;
    this.#window = window;
    this.route.core.running.add(this);
    if (this.#signal.aborted) return this.#fail(this.#signal.reason);
    void this.#fill();
  }

  /** The consumer took `count` items: room for more. */
  release(count: number): void {
    this.#outstanding -= count;
    void this.#fill();
  }

  /**
   * Stops the call with `reason`. `hard` lets running workers be stopped; otherwise running
   * tasks are asked to stop through `ctx.signal`.
   */
  cancel(reason: unknown, hard: boolean): void {
    if (this.stopped) return;
    this.#fail(reason, hard);
  }

  async #fill(): Promise<void> {
    if (this.#filling || this.stopped) return;
    this.#filling = true;
    try {
      const source = this.#source;
      const runner = this.#runner;
      let window;
      while (
        !this.stopped && !this.#exhausted && this.#inFlight < runner.concurrency &&
        this.#outstanding < (window = this.#windowOf(runner))
      ) {
        const remaining = source.kind === "array"
          ? source.items.length - this.#position
          : undefined;
        const size = Math.min(this.#sizer.next(remaining), window - this.#outstanding);
        const items = source.kind === "async"
          ? await takeAsync(source.iterator, size)
          : take(source, this.#position, size);
        if (this.stopped) return;
        this.#position += items.length;
        if (items.length > 0) this.#dispatch(items);
        if (items.length < size) this.#exhausted = true;
      }
    } catch (error) {
      this.#fail(error);
    } finally {
      this.#filling = false;
    }
    this.#checkFinished();
  }

  /**
   * Items dispatched and not yet consumed, at most: `window` per worker, or on the calling
   * thread `window` in all (its chunks are small when many are in flight), and never so few
   * that fewer than `concurrency` chunks could be in flight.
   */
  #windowOf(runner: Runner): number {
    const window = this.#window;
    return runner.onCaller ? Math.max(window, 2 * runner.concurrency) : window * runner.concurrency;
  }

  #dispatch(items: unknown[]): void {
    const seq = this.#seq++;
    const base = this.#position - items.length;
    const call = this.#call;
    const runner = this.#runner;
    this.#inFlight++;
    this.#outstanding += items.length;
    const perChunk = runner.perChunk;
    runner.run({
      task: this.#task,
      base,
      items,
      timed: call.chunkSize === "auto",
      signal: this.#signal,
      timeoutMs: call.timeoutMs,
      seed: call.seed,
      concurrency: perChunk > 1 && items.length > 1 ? perChunk : undefined,
    }).then(
      (result) => {
        this.#inFlight--;
        if (this.stopped) return;
        this.#sizer.record(items.length, result.ms);
        this.#sink!.put(seq, result.values);
        if (this.#progress !== undefined) {
          try {
            this.#progress.advance(items.length);
          } catch (error) {
            return this.#fail(error);
          }
        }
        void this.#fill();
      },
      (error: unknown) => {
        this.#inFlight--;
        // Once the call has stopped, the chunks still running fail because it did: not items.
        if (!this.stopped) this.#progress?.fail();
        this.#fail(error);
      },
    );
  }

  #checkFinished(): void {
    if (this.stopped || !this.#exhausted || this.#inFlight > 0 || this.#filling) return;
    if (this.#progress !== undefined) {
      try {
        this.#progress.finish();
      } catch (error) {
        return this.#fail(error);
      }
      // An onProgress that aborted the call's signal has ended the call itself.
      if (this.stopped) return;
    }
    this.#stop();
    this.#sink!.stopped();
  }

  #stop(): void {
    this.stopped = true;
    this.#unlisten();
    this.route.core.running.delete(this);
  }

  /**
   * Fails the call. Running chunks are stopped hard when the reason is the caller's or the
   * executor's; after a chunk's own failure, the rest are asked softly.
   */
  #fail(error: unknown, hard = error === this.#signal.reason): void {
    if (this.stopped) return;
    this.#stop();
    this.failed = true;
    this.error = error;
    if (!this.#control.signal.aborted) {
      this.#control.abort(hard ? error : new SoftStop("The call stopped", error));
    }
    if (!this.#exhausted) abandon(this.#source);
    try {
      this.#progress?.finish();
    } catch {
      // The call fails with its own error already; that is the one to report.
    }
    this.#sink?.stopped();
  }
}

/** Runs a pipeline to its end and returns every result in input order: `map`. */
export async function collect<O>(pipeline: Pipeline): Promise<O[]> {
  const parts: unknown[][] = [];
  let total = 0;
  let settle!: () => void;
  const stopped = new Promise<void>((resolve) => (settle = resolve));
  pipeline.start({
    put(seq, values) {
      parts[seq] = values;
      total += values.length;
    },
    stopped: settle,
  });
  await stopped;
  await pipeline.route.concluded();
  pipeline.route.end(!pipeline.failed, pipeline.error);
  if (pipeline.failed) throw pipeline.error;
  const results = new Array<O>(total);
  let at = 0;
  for (const part of parts) {
    for (let k = 0; k < part.length; k++) results[at++] = part[k] as O;
  }
  return results;
}

/**
 * Yields a pipeline's results, in input order or as they complete: `imap`. At most a few
 * chunks per worker are in flight or waiting to be consumed; a failure or an abort is thrown
 * at the next step, whatever is buffered.
 */
export async function* iterate<O>(
  pipeline: Pipeline,
  ordered: boolean,
  window: number,
): AsyncGenerator<O, void, undefined> {
  const ready = new Map<number, unknown[]>();
  let wake: (() => void) | undefined;
  const notify = (): void => {
    const resume = wake;
    wake = undefined;
    resume?.();
  };
  let arrival = 0;
  const signal = pipeline.signal;
  let failure: { error: unknown } | undefined;
  const check = (): void => {
    if (pipeline.failed) failure = { error: pipeline.error };
    else if (signal.aborted) failure = { error: signal.reason };
    if (failure !== undefined) throw failure.error;
  };
  try {
    pipeline.start({
      put(seq, values) {
        ready.set(ordered ? seq : arrival++, values);
        notify();
      },
      stopped: notify,
    }, window);
    let next = 0;
    while (true) {
      check();
      const values = ready.get(next);
      if (values !== undefined) {
        ready.delete(next++);
        for (const value of values) {
          yield value as O;
          check();
        }
        pipeline.release(values.length);
        continue;
      }
      if (pipeline.stopped && ready.size === 0) return;
      await new Promise<void>((resolve) => (wake = resolve));
    }
  } finally {
    const failed = failure !== undefined || pipeline.failed;
    const error = failure !== undefined ? failure.error : pipeline.error;
    pipeline.cancel(new ExecutorClosedError("The iterator was closed"), false);
    await pipeline.route.concluded();
    pipeline.route.end(!failed, failed ? error : undefined);
  }
}

function noop(): void {}
