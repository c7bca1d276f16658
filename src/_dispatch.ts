/**
 * One call's traffic: pulls items from the input lazily, cuts them into chunks, keeps at most
 * one chunk per worker in flight (and, for `imap`, at most `window` items dispatched but not
 * yet consumed), hands results to the caller's sink, and cancels the rest on the first failure.
 *
 * @module
 */

import type { TaskSpec } from "./protocol.ts";
import type { Strategy } from "./strategy/types.ts";

/** What a dispatch needs of a strategy. */
export type Runner = Pick<Strategy, "concurrency" | "run">;
import { ChunkSizer } from "./chunking.ts";
import { describe } from "./task.ts";

/** How a dispatch behaves. */
export interface DispatchOptions {
  /** The caller's signal: aborting it stops the call hard. */
  signal?: AbortSignal;
  /** Fixed chunk size or "auto". */
  chunkSize: number | "auto";
  /** Longest each task may run (chunks are then one item each). */
  timeoutMs?: number;
  /** The call's base seed. */
  seed?: bigint;
  /** Most items dispatched but not yet released by the consumer. */
  window: number;
  /** Receives each finished chunk; `seq` counts chunks in input order from 0. */
  onChunk(seq: number, base: number, values: unknown[]): void;
  /** Called once, when the dispatch finishes or fails. */
  onSettled?(): void;
  /** Time per item an earlier call of the same task measured (auto chunking starts from it). */
  estimateMs?: number;
  /** Receives the call's mean time per item so far, after each timed chunk. */
  onEstimate?(perItemMs: number): void;
}

type Source =
  | { kind: "array"; items: ArrayLike<unknown> }
  | { kind: "sync"; iterator: Iterator<unknown> }
  | { kind: "async"; iterator: AsyncIterator<unknown> };

/** Resolves `items` into a source, or throws a `TypeError`. */
function toSource(items: unknown): Source {
  if (Array.isArray(items) || ArrayBuffer.isView(items) && !(items instanceof DataView)) {
    return { kind: "array", items: items as ArrayLike<unknown> };
  }
  if (items !== null && typeof items === "object" || typeof items === "string") {
    const object = items as Partial<AsyncIterable<unknown> & Iterable<unknown>>;
    if (typeof object[Symbol.asyncIterator] === "function") {
      return { kind: "async", iterator: object[Symbol.asyncIterator]!() };
    }
    if (typeof object[Symbol.iterator] === "function") {
      return { kind: "sync", iterator: object[Symbol.iterator]!() };
    }
  }
  throw new TypeError(
    `Expected \`items\` to be an iterable or async iterable, got ${describe(items)}`,
  );
}

/**
 * An iterator result, checked the way `for…of` checks it: a `next()` that returns a
 * non-object would otherwise read as an endless stream of `undefined` items.
 */
export function checkResult<T>(result: IteratorResult<T>): IteratorResult<T> {
  if ((typeof result !== "object" || result === null) && typeof result !== "function") {
    throw new TypeError(
      `Expected the iterator of \`items\` to return an object from next(), got ${describe(result)}`,
    );
  }
  return result;
}

/** One call's dispatch. */
export class Dispatch {
  /** Settles when every item has run (resolves) or the call failed (rejects). */
  readonly done: Promise<void>;
  /** The failure, once the dispatch has failed; read it only when `failed` is set. */
  error: unknown;
  /**
   * Whether the dispatch failed (or was cancelled). A flag of its own, because a task or an
   * input may throw `undefined`, which `error` cannot tell apart from "no error".
   */
  failed = false;
  /** Whether it ended: finished, failed or cancelled. */
  stopped = false;

  readonly #strategy: Runner;
  readonly #task: TaskSpec;
  readonly #source: Source;
  readonly #options: DispatchOptions;
  readonly #sizer: ChunkSizer;
  readonly #control = new AbortController();
  readonly #onUserAbort: (() => void) | undefined;
  #resolve!: () => void;
  #reject!: (error: unknown) => void;
  #hard = false;
  #position = 0;
  #seq = 0;
  #inFlight = 0;
  #outstanding = 0;
  #filling = false;
  #measuredMs = 0;
  #measuredItems = 0;
  #exhausted = false;

  /**
   * @throws {TypeError} If `items` is not iterable.
   */
  constructor(strategy: Runner, task: TaskSpec, items: unknown, options: DispatchOptions) {
    this.#strategy = strategy;
    this.#task = task;
    this.#source = toSource(items);
    this.#options = options;
    this.#sizer = new ChunkSizer(
      options.chunkSize,
      () => strategy.concurrency,
      options.estimateMs,
    );
    this.done = new Promise<void>((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
    this.done.catch(() => {}); // Callers that need the error read it from `done` or `error`.
    const signal = options.signal;
    if (signal !== undefined) {
      this.#onUserAbort = () => this.cancel(signal.reason, true);
      signal.addEventListener("abort", this.#onUserAbort, { once: true });
    }
  }

  /** Starts dispatching. */
  start(): void {
    if (this.#options.signal?.aborted) return this.cancel(this.#options.signal.reason, true);
    void this.#fill();
  }

  /** The consumer took `count` items: room for more. */
  release(count: number): void {
    this.#outstanding -= count;
    void this.#fill();
  }

  /**
   * Stops the call with `reason`. `hard` lets running threads be terminated; otherwise they
   * are asked to stop through `ctx.signal`.
   */
  cancel(reason: unknown, hard: boolean): void {
    if (this.stopped) return;
    this.#hard = hard;
    this.#fail(reason);
  }

  async #fill(): Promise<void> {
    if (this.#filling || this.stopped) return;
    this.#filling = true;
    try {
      const { window } = this.#options;
      const concurrency = this.#strategy.concurrency;
      while (
        !this.stopped && !this.#exhausted && this.#inFlight < concurrency &&
        this.#outstanding < window
      ) {
        const remaining = this.#source.kind === "array"
          ? this.#source.items.length - this.#position
          : undefined;
        const size = Math.min(this.#sizer.next(remaining), window - this.#outstanding);
        const items = this.#source.kind === "async"
          ? await this.#takeAsync(size)
          : this.#take(size);
        if (this.stopped) return;
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

  #take(size: number): unknown[] {
    const source = this.#source;
    if (source.kind === "array") {
      const end = Math.min(this.#position + size, source.items.length);
      const items = Array.prototype.slice.call(source.items, this.#position, end);
      this.#position = end;
      return items;
    }
    const items: unknown[] = [];
    const iterator = (source as { iterator: Iterator<unknown> }).iterator;
    while (items.length < size) {
      const next = checkResult(iterator.next());
      if (next.done) break;
      items.push(next.value);
    }
    this.#position += items.length;
    return items;
  }

  async #takeAsync(size: number): Promise<unknown[]> {
    const iterator = (this.#source as { iterator: AsyncIterator<unknown> }).iterator;
    const items: unknown[] = [];
    while (items.length < size) {
      const next = checkResult(await iterator.next());
      if (next.done) break;
      items.push(next.value);
    }
    this.#position += items.length;
    return items;
  }

  #dispatch(items: unknown[]): void {
    const seq = this.#seq++;
    const base = this.#position - items.length;
    this.#inFlight++;
    this.#outstanding += items.length;
    this.#strategy.run({
      task: this.#task,
      base,
      items,
      timed: this.#options.chunkSize === "auto",
      signal: this.#control.signal,
      hardStop: () => this.#hard,
      timeoutMs: this.#options.timeoutMs,
      seed: this.#options.seed,
    }).then(
      (result) => {
        this.#inFlight--;
        if (this.stopped) return;
        this.#sizer.record(items.length, result.ms);
        if (Number.isFinite(result.ms) && this.#options.onEstimate !== undefined) {
          // The call's mean so far, not the sizer's recent average: skewed work has a few
          // slow items, and the next call should expect the mean.
          this.#measuredMs += result.ms;
          this.#measuredItems += items.length;
          this.#options.onEstimate(this.#measuredMs / this.#measuredItems);
        }
        this.#options.onChunk(seq, base, result.values);
        void this.#fill();
      },
      (error: unknown) => {
        this.#inFlight--;
        this.#fail(error);
      },
    );
  }

  #checkFinished(): void {
    if (this.stopped || !this.#exhausted || this.#inFlight > 0 || this.#filling) return;
    this.stopped = true;
    this.#cleanup();
    this.#resolve();
    this.#options.onSettled?.();
  }

  #fail(error: unknown): void {
    if (this.stopped) return;
    this.stopped = true;
    this.failed = true;
    this.error = error;
    this.#control.abort(error);
    if (this.#source.kind !== "array" && !this.#exhausted) {
      try {
        const returned = this.#source.iterator.return?.();
        if (returned instanceof Promise) returned.catch(() => {});
      } catch {
        // The input's own cleanup failed; the call's error is the one to report.
      }
    }
    this.#cleanup();
    this.#reject(error);
    this.#options.onSettled?.();
  }

  #cleanup(): void {
    if (this.#onUserAbort !== undefined) {
      this.#options.signal?.removeEventListener("abort", this.#onUserAbort);
    }
  }
}
