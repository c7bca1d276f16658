/**
 * The calling-thread strategies: `"serial"` runs chunks one at a time (unless `concurrency`
 * says more), `"async"` many at once (`concurrency`, 64 unless set), for tasks that mostly wait: their promises are in flight
 * together on this event loop, with no worker at all. Within a chunk, items run one after
 * another; the pipeline keeps up to `concurrency` chunks in flight. Submits to `"async"` share
 * that budget: past it they wait their turn, first come first served. Inline functions are
 * compiled from source here too, so a function that captures outer variables fails the same
 * way as on threads. Inputs and results are passed by reference, not cloned.
 *
 * A task here shares the program's thread, so what would end a worker is contained while it
 * runs (`_contain.ts`): its `process.exit()` is refused, and an uncaught error or unhandled
 * rejection fails it with `WorkerCrashedError`. Loading its module is bounded by
 * `loadTimeoutMs`, and cut short by an abort or `terminate()` (the import itself cannot be
 * stopped: the call just stops waiting for it).
 *
 * @module
 */

import type { TaskSpec } from "../protocol.ts";
import type { ChunkResult } from "./types.ts";
import type { BuiltInRequest, BuiltInResult, BuiltInStrategy } from "./_builtin.ts";
import { BusyMeter } from "../_busy.ts";
import { onAbort } from "../_abort.ts";
import { moduleOf, taskKey } from "../task.ts";
import { capturedName, loadTask } from "../worker/load_task.js";
import { mixSeed } from "../worker/seed.js";
import type { TaskFn } from "../worker/load_task.js";
import { loadFailure, taskFailure } from "../_revive.ts";
import { ExecutorClosedError, LoadTimeoutError, TaskTimeoutError } from "../errors.ts";
import { contained, release, unrefTimer, Watch } from "../runtime/_contain.ts";
import { Deque } from "../_deque.ts";

import { setImmediate } from "node:timers";

/** Longest stretch of work between two returns to the event loop, so timers and aborts run. */
const YIELD_EVERY_MS = 10;

const neverAborted = new AbortController().signal;

/** A submit waiting for its turn on `"async"`. */
interface Turn {
  go(): void;
  dropped: boolean;
}

/** Options of the calling-thread strategies. */
export interface SerialOptions {
  /** Longest a task's module may take to load, in ms (see `ParallelConfig.loadTimeoutMs`). */
  loadTimeoutMs?: number;
  /** `"serial"` (the default) or `"async"`. */
  name?: "serial" | "async";
  /**
   * Chunks of one call in flight at once unless the call says otherwise, and, on `"async"`,
   * submits in flight at once.
   *
   * @default {1}
   */
  concurrency?: number;
}

/** Runs every chunk on the calling thread. */
export class SerialStrategy implements BuiltInStrategy {
  readonly name: "serial" | "async";
  readonly concurrency: number;
  /** No workers: tasks run on the calling thread. */
  readonly live = 0;
  readonly respawns = 0;
  readonly recycled = 0;
  #loaded = new Map<string, Promise<TaskFn>>();
  /** Tasks whose load finished: a call of one needs no wait, timer or race. */
  readonly #ready = new Map<string, TaskFn>();
  #closed = false;
  /** Set by `terminate()`: what running calls reject with. */
  #terminated: ExecutorClosedError | undefined;
  /** Rejecters of the async tasks being awaited, so `terminate()` can cut them short. */
  readonly #waiting = new Set<(error: unknown) => void>();
  #lastYield = performance.now();
  readonly #loadTimeoutMs: number | undefined;
  /** Submits running now, on `"async"`; past `concurrency` they wait in `#turns`. */
  #submits = 0;
  readonly #turns = new Deque<Turn>();

  /** @param options Its name, its concurrency, the bound on loading a task's module. */
  constructor(options: SerialOptions = {}) {
    this.#loadTimeoutMs = options.loadTimeoutMs;
    this.name = options.name ?? "serial";
    this.concurrency = options.concurrency ?? 1;
  }

  run(request: BuiltInRequest): Promise<ChunkResult> {
    if (request.single !== true || this.name !== "async") return this.#run(request);
    // Each submit is a call of its own: together they get the strategy's budget.
    if (this.#submits < this.concurrency) {
      this.#submits++;
      return this.#runSubmit(request);
    }
    return new Promise<void>((resolve, reject) => {
      const signal = request.signal;
      const turn: Turn = {
        dropped: false,
        go: () => {
          unlisten();
          resolve();
        },
      };
      // An aborted submit keeps its place in line, skipped when reached.
      const unlisten = onAbort(signal, () => {
        turn.dropped = true;
        reject(signal!.reason);
      });
      this.#turns.push(turn);
    }).then(() => this.#runSubmit(request));
  }

  /** Runs a submit that holds a turn; when it settles, the turn passes to the next in line. */
  #runSubmit(request: BuiltInRequest): Promise<ChunkResult> {
    const next = (): void => {
      let turn;
      while ((turn = this.#turns.shift()) !== undefined && turn.dropped);
      if (turn === undefined) this.#submits--;
      else turn.go();
    };
    const run = this.#run(request);
    run.then(next, next);
    return run;
  }

  async #run(request: BuiltInRequest): Promise<ChunkResult> {
    if (this.#closed) throw new ExecutorClosedError();
    const { task, base } = request;
    const callSignal = request.signal ?? neverAborted;
    const fn = this.#ready.get(taskKey(task)) ?? await this.#load(task, base, callSignal);
    request.onStart?.(0);
    if (performance.now() - this.#lastYield > YIELD_EVERY_MS) {
      // setImmediate, not setTimeout(0): nested timers are clamped to 4 ms, which made 64
      // tasks of 20 ms each 10% slower than a plain loop.
      await new Promise((resolve) => setImmediate(resolve));
      this.#lastYield = performance.now();
    }
    const watch = new Watch(base);
    try {
      const result = await contained(watch, () => this.#items(request, fn, callSignal, watch));
      // A crash after the last task returned, in a microtask it left (an exit, say).
      if (watch.crash !== undefined) throw watch.crash;
      return result;
    } finally {
      release(watch);
    }
  }

  /** Runs the items of a chunk, one after another, as `watch` (its `index` follows). */
  async #items(
    request: BuiltInRequest,
    fn: TaskFn,
    callSignal: AbortSignal,
    watch: Watch,
  ): Promise<ChunkResult> {
    const { task, base, items, timeoutMs } = request;
    const values = new Array(items.length);
    const start = performance.now();
    /** With `busy`: measuring since the first task that awaited (before it, all was busy). */
    let meter: BusyMeter | undefined;
    let busyBefore = 0;
    try {
      for (let k = 0; k < items.length; k++) {
        if (callSignal.aborted) throw callSignal.reason;
        if (this.#terminated !== undefined) throw this.#terminated;
        const index = base + k;
        watch.index = index;
        const deadline = timeoutMs === undefined ? undefined : new Deadline(index, timeoutMs);
        const signal = deadline === undefined
          ? callSignal
          : AbortSignal.any([callSignal, deadline.signal]);
        try {
          const began = meter === undefined && request.busy ? performance.now() : 0;
          let value = fn(items[k], new SerialContext(index, signal, request.seed ?? 0n));
          if (watch.crash === undefined && isThenable(value)) {
            if (request.busy && meter === undefined) {
              busyBefore = began - start;
              meter = new BusyMeter(began);
            }
            value = await this.#await(value, signal, watch);
          }
          if (watch.crash !== undefined) throw watch.crash;
          // A synchronous task cannot be interrupted here; past its limit, it still fails.
          deadline?.check();
          values[k] = value;
        } catch (error) {
          if (watch.crash !== undefined) throw watch.crash;
          if (
            (signal.aborted && error === signal.reason) ||
            (this.#terminated !== undefined && error === this.#terminated) ||
            (deadline?.late !== undefined && error === deadline.late)
          ) {
            throw error;
          }
          throw taskFailure(index, error, task.kind === "inline" ? capturedName(error) : undefined);
        } finally {
          deadline?.clear();
        }
      }
    } catch (error) {
      // The meter spins the event loop on some runtimes: never past its chunk.
      meter?.cancel();
      throw error;
    }
    const ms = performance.now() - start;
    if (!request.busy) return { values, ms };
    const busyMs = meter === undefined ? ms : busyBefore + meter.stop();
    return { values, ms, busyMs, awaited: meter !== undefined } as BuiltInResult;
  }

  /** Nothing to do: tasks here read the caller's own handles. */
  forget(_id: number): void {}

  /**
   * Awaits an async task, unless the call is aborted or the executor terminated first: the
   * task cannot be stopped (it shares this thread), but the call does not wait for it.
   */
  #await(value: PromiseLike<unknown>, signal: AbortSignal, watch?: Watch): Promise<unknown> {
    return new Promise((resolve, reject) => {
      const unlisten = onAbort(signal, () => reject(signal.reason));
      const done = (): void => {
        this.#waiting.delete(reject);
        unlisten();
        if (watch !== undefined) watch.onCrash = undefined;
      };
      this.#waiting.add(reject);
      if (watch !== undefined) watch.onCrash = reject;
      Promise.resolve(value).then(
        (result) => {
          done();
          resolve(result);
        },
        (error: unknown) => {
          done();
          reject(error);
        },
      );
    });
  }

  /**
   * The task's function, once its module has loaded: no longer than `loadTimeoutMs`, and not
   * past an abort or `terminate()`. The import goes on (nothing can stop it here); a later call
   * waits for the same one.
   */
  async #load(task: TaskSpec, base: number, signal: AbortSignal): Promise<TaskFn> {
    const key = taskKey(task);
    let loaded = this.#loaded.get(key);
    if (loaded === undefined) {
      loaded = containedLoad(task, base, this.#loadTimeoutMs);
      this.#loaded.set(key, loaded);
      loaded.then((fn) => this.#ready.set(key, fn), () => this.#loaded.delete(key));
    }
    const limit = this.#loadTimeoutMs;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const bounded = limit === undefined ? loaded : Promise.race([
      loaded,
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new LoadTimeoutError(base, moduleOf(task), limit)),
          limit,
        );
      }),
    ]);
    try {
      return await this.#await(
        bounded.catch((error) => {
          throw error instanceof LoadTimeoutError ? error : loadFailure(base, error);
        }),
        signal,
      ) as TaskFn;
    } finally {
      clearTimeout(timer);
    }
  }

  close(): Promise<void> {
    this.#closed = true;
    return Promise.resolve();
  }

  terminate(): Promise<void> {
    this.#closed = true;
    this.#terminated ??= new ExecutorClosedError(
      "The executor was terminated while this call was running",
    );
    // Submits waiting for a turn run into the closed strategy, and reject.
    for (const turn of this.#turns.drain()) if (!turn.dropped) turn.go();
    this.#submits = 0;
    for (const reject of this.#waiting) reject(this.#terminated);
    this.#waiting.clear();
    return Promise.resolve();
  }
}

/**
 * Loads a task's module on the calling thread, contained like a task: an exit call or an
 * uncaught error while it evaluates fails the load instead of ending the program.
 */
function containedLoad(task: TaskSpec, base: number, limitMs: number | undefined): Promise<TaskFn> {
  const watch = new Watch(base);
  const crashed = new Promise<never>((_, reject) => (watch.onCrash = reject));
  crashed.catch(() => {});
  const loading = contained(watch, () => loadTask(task));
  // Watched until it loads, or until the calls waiting for it gave up (an import that never
  // ends must not keep a watch open for ever).
  let released = false;
  const done = (): void => {
    if (released) return;
    released = true;
    clearTimeout(timer);
    release(watch);
  };
  const timer = limitMs === undefined ? undefined : setTimeout(done, limitMs);
  unrefTimer(timer);
  loading.then(done, done);
  return Promise.race([loading, crashed]);
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return typeof (value as { then?: unknown } | null)?.then === "function";
}

/** What a task receives as `ctx` here; the seed is mixed on first use, like in a worker. */
class SerialContext {
  readonly index: number;
  readonly signal: AbortSignal;
  readonly #base: bigint;

  constructor(index: number, signal: AbortSignal, base: bigint) {
    this.index = index;
    this.signal = signal;
    this.#base = base;
  }

  get seed(): number {
    return mixSeed(this.#base, BigInt(this.index));
  }
}

/**
 * One task's time limit on the calling thread: its signal aborts with `TaskTimeoutError` when
 * the time is up (an async task is then no longer awaited); a synchronous task, which cannot
 * be interrupted, fails once it returns late.
 */
class Deadline {
  readonly signal: AbortSignal;
  readonly #controller = new AbortController();
  readonly #timer: ReturnType<typeof setTimeout>;
  readonly #start = performance.now();
  readonly #index: number;
  readonly #timeoutMs: number;

  constructor(index: number, timeoutMs: number) {
    this.#index = index;
    this.#timeoutMs = timeoutMs;
    this.signal = this.#controller.signal;
    this.#timer = setTimeout(() => this.#controller.abort(this.#error()), timeoutMs);
  }

  /** Throws if the task took longer than its limit. */
  check(): void {
    if (this.signal.aborted) throw this.signal.reason;
    if (performance.now() - this.#start > this.#timeoutMs) throw (this.late = this.#error());
  }

  /** The error `check()` threw for a task that returned late. */
  late: TaskTimeoutError | undefined;

  clear(): void {
    clearTimeout(this.#timer);
  }

  #error(): TaskTimeoutError {
    return new TaskTimeoutError(
      this.#index,
      this.#timeoutMs,
      `Task ${this.#index} ran past its timeout of ${this.#timeoutMs} ms; the serial strategy ` +
        `runs tasks on the calling thread and cannot stop one, so it was asked to stop through ` +
        `ctx.signal`,
    );
  }
}
