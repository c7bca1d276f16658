/**
 * Running one chunk's items in a worker: the chunk's lazily made signal (`Chunk`), the `ctx`
 * each task receives and the loop over the items; then what a worker reports after a chunk:
 * a batch's failed items (`eachReply`) and how much heap it holds. What to reply for a result
 * that could not be sent is in clone_failure.js.
 *
 * Plain JavaScript (typed with JSDoc) on purpose: Node strips the types of every `.ts` file a
 * worker loads, and its first use in a fresh thread costs ~28 ms of a ~36 ms worker start
 * (measured on Node 24.21). Everything a worker imports is therefore `.js`.
 *
 * @module
 */

/** @import { TaskFn } from "./load_task.js" */
/** @import { EachFailure } from "../protocol.ts" */

import { mixSeed } from "./seed.js";
import { serializeError } from "./error_wire.js";

const abortedGetter = /** @type {() => boolean} */ (
  /** @type {PropertyDescriptor} */ (Object.getOwnPropertyDescriptor(
    AbortSignal.prototype,
    "aborted",
  ))
    .get
);
const cancelled = () => new DOMException("The task was cancelled", "AbortError");

/**
 * After a chunk's item failed, how long the chunk's other items in flight get to settle, told
 * through `ctx.signal`, before the worker reports them still running and is replaced.
 */
export const STRAGGLER_GRACE_MS = 100;

/**
 * One running chunk, on a worker thread or in a worker process. Its signal is made on first
 * use only: most tasks never read `ctx.signal`, and an AbortController per chunk is a
 * measurable part of a round trip.
 */
export class Chunk {
  /**
   * @param {number} id
   * @param {() => boolean} isCancelled Whether the pool cancelled this chunk; on threads it
   *   reads shared memory, so it answers even while the task never yields.
   * @param {bigint} seed The call's base seed, from which each task's `ctx.seed` is mixed.
   */
  constructor(id, isCancelled, seed) {
    this.id = id;
    this.isCancelled = isCancelled;
    this.seed = seed;
    /** @type {AbortController | undefined} */
    this.controller = undefined;
    /** Set by `abort()`: a signal made after it is aborted from the start. */
    this.aborted = false;
  }

  /**
   * A signal whose `aborted` also asks `isCancelled`, so it flips for a chunk the pool
   * cancelled even while a synchronous task never lets the cancel message in.
   *
   * @returns {AbortSignal}
   */
  get signal() {
    if (this.controller !== undefined) return this.controller.signal;
    const controller = new AbortController();
    this.controller = controller;
    const signal = controller.signal;
    const isCancelled = this.aborted ? () => true : this.isCancelled;
    // Deno's abort() reads `aborted` itself: without the guard that would recurse.
    let aborting = false;
    const aborted = () => {
      if (!aborting && !abortedGetter.call(signal) && isCancelled()) {
        aborting = true;
        try {
          controller.abort(cancelled());
        } finally {
          aborting = false;
        }
      }
      return abortedGetter.call(signal);
    };
    Object.defineProperty(signal, "aborted", { get: aborted });
    Object.defineProperty(signal, "throwIfAborted", {
      value: () => {
        if (aborted()) throw signal.reason;
      },
    });
    aborted();
    return signal;
  }

  /** Aborts the signal: now, if a task asked for it, else once one does. */
  abort() {
    this.aborted = true;
    this.controller?.abort(cancelled());
  }
}

/** What a task receives as `ctx`; made per item, so it stays a plain, fast object. */
class Context {
  /** @type {Chunk} */
  #chunk;

  /** @type {bigint} */
  #seed;

  /**
   * @param {number} index
   * @param {Chunk} chunk
   * @param {bigint} seed The base seed its `ctx.seed` is mixed from: the chunk's, or a
   *   submit's own in a batch.
   */
  constructor(index, chunk, seed) {
    this.index = index;
    this.#chunk = chunk;
    this.#seed = seed;
  }

  /** @returns {AbortSignal} */
  get signal() {
    return this.#chunk.signal;
  }

  /** @returns {number} Mixed on first use only: few tasks read it. */
  get seed() {
    return mixSeed(this.#seed, BigInt(this.index));
  }
}

/**
 * @typedef {object} ChunkHooks How a worker reports on a chunk it runs.
 * @property {(index: number) => void} at An item is about to run.
 * @property {(values: unknown[], failures?: [number, unknown][]) => void} done Every item
 *   ran (in a batch of submits, with the items that failed: position, error).
 * @property {(index: number, error: unknown, stragglers?: number) => void} fail Item `index`
 *   threw or rejected. With several in flight, once the others settled, or after
 *   `STRAGGLER_GRACE_MS` with `stragglers` of them still running: the worker is then replaced,
 *   so that none of them outlives its call.
 * @property {() => void} stopped The chunk was cancelled between two items.
 * @property {() => void} [waiting] A task returned a promise: nothing runs until it settles.
 * @property {() => void} [resumed] That promise settled: the chunk goes on.
 */

/**
 * Runs the items of one chunk in order. Synchronous tasks run in a plain loop; the loop only
 * goes through a promise when a task returns one.
 *
 * With `each` the chunk is a batch of submits: each item is a call of its own (index 0, seed
 * `each.seeds[k]`, absent meaning 0), and an item that throws fails alone while the others
 * run on; `done` then gets the failures.
 *
 * @param {TaskFn} fn
 * @param {Chunk} chunk
 * @param {number} base Index of the first item.
 * @param {unknown[]} items
 * @param {ChunkHooks} hooks
 * @param {{ seeds: readonly (bigint | undefined)[] | undefined }} [each]
 * @param {number} [limit] Items that may be in flight at once (see `runWindow`); 1 when absent.
 */
export function runItems(fn, chunk, base, items, hooks, each, limit = 1) {
  if (limit > 1 && items.length > 1) return runWindow(fn, chunk, base, items, hooks, each, limit);
  const values = new Array(items.length);
  /** @type {[number, unknown][] | undefined} */
  const failures = each === undefined ? undefined : [];
  let k = 0;
  /** Whether the chunk ends here (a chunk's first failure ends it; a batch's does not). */
  const failed = (/** @type {unknown} */ error) => {
    if (failures === undefined) {
      hooks.fail(base + k, error);
      return true;
    }
    failures.push([k, error]);
    return false;
  };
  const step = () => {
    for (; k < items.length; k++) {
      if (chunk.isCancelled()) return hooks.stopped();
      hooks.at(base + k);
      let value;
      try {
        value = fn(items[k], contextOf(chunk, base, k, each));
      } catch (error) {
        if (failed(error)) return;
        continue;
      }
      if (isThenable(value)) {
        hooks.waiting?.();
        Promise.resolve(value).then((v) => {
          hooks.resumed?.();
          values[k++] = v;
          step();
        }, (error) => {
          hooks.resumed?.();
          if (failed(error)) return;
          k++;
          step();
        });
        return;
      }
      values[k] = value;
    }
    hooks.done(values, failures);
  };
  step();
}

/**
 * `runItems` with up to `limit` items in flight: items start in order, each as soon as fewer
 * than `limit` of those started have not settled, so the tasks' waits overlap. `hooks.at` names
 * the last item started (a crash fails every item started, since none has been answered yet).
 * The chunk's first failure ends it: no more items start, `ctx.signal` aborts for those still in
 * flight, and the failure is reported once they settled (their outcome dropped), or after
 * `STRAGGLER_GRACE_MS` with the count of those still running; in a batch (`each`) an item that
 * fails fails alone.
 * A cancel stops items from starting; the chunk says `stopped` once those in flight settled.
 *
 * @param {TaskFn} fn
 * @param {Chunk} chunk
 * @param {number} base
 * @param {unknown[]} items
 * @param {ChunkHooks} hooks
 * @param {{ seeds: readonly (bigint | undefined)[] | undefined } | undefined} each
 * @param {number} limit
 */
function runWindow(fn, chunk, base, items, hooks, each, limit) {
  const values = new Array(items.length);
  /** @type {[number, unknown][] | undefined} */
  const failures = each === undefined ? undefined : [];
  let next = 0;
  let inFlight = 0;
  let ended = false;
  /** With the chunk failed and items still in flight: called as each of them settles. */
  /** @type {(() => void) | undefined} */
  let straggled;
  /** Whether the chunk ends with item `k`'s error. */
  const failed = (/** @type {number} */ k, /** @type {unknown} */ error) => {
    if (failures !== undefined) {
      failures.push([k, error]);
      return false;
    }
    ended = true;
    if (inFlight === 0) {
      hooks.fail(base + k, error);
      return true;
    }
    // The others are told to stop, and the reply waits for them (briefly): one that ran on
    // after it could crash the worker in the middle of another call.
    chunk.abort();
    let reported = false;
    const report = (/** @type {number} */ stragglers) => {
      if (reported) return;
      reported = true;
      clearTimeout(timer);
      hooks.fail(base + k, error, stragglers);
    };
    const timer = setTimeout(() => report(inFlight), STRAGGLER_GRACE_MS);
    straggled = () => {
      if (inFlight === 0) report(0);
    };
    return true;
  };
  /** Starts what it may; ends the chunk once every item settled. */
  const pump = () => {
    while (!ended && inFlight < limit && next < items.length) {
      if (chunk.isCancelled()) break;
      const k = next++;
      hooks.at(base + k);
      let value;
      try {
        value = fn(items[k], contextOf(chunk, base, k, each));
      } catch (error) {
        if (failed(k, error)) return;
        continue;
      }
      if (!isThenable(value)) {
        values[k] = value;
        continue;
      }
      inFlight++;
      Promise.resolve(value).then((v) => {
        inFlight--;
        if (ended) return straggled?.();
        hooks.resumed?.();
        values[k] = v;
        pump();
      }, (error) => {
        inFlight--;
        if (ended) return straggled?.();
        hooks.resumed?.();
        if (!failed(k, error)) pump();
      });
    }
    if (ended || inFlight > 0) {
      if (!ended) hooks.waiting?.();
      return;
    }
    ended = true;
    if (next < items.length) hooks.stopped();
    else hooks.done(values, failures);
  };
  pump();
}

/**
 * The `ctx` of item `k`: its index in the call, or in a batch of submits (`each`) index 0 and
 * the submit's own seed.
 *
 * @param {Chunk} chunk
 * @param {number} base
 * @param {number} k
 * @param {{ seeds: readonly (bigint | undefined)[] | undefined } | undefined} each
 */
function contextOf(chunk, base, k, each) {
  return each === undefined
    ? new Context(base + k, chunk, chunk.seed)
    : new Context(0, chunk, each.seeds?.[k] ?? 0n);
}

/**
 * A batch's reply (see `Payload.EACH`) when some items failed: the values, with the failed
 * ones' errors; a result that cannot be cloned fails its own item. `undefined` when every
 * item succeeded and the plain values go back.
 *
 * @param {unknown[]} values
 * @param {[number, unknown][]} failures
 * @returns {{ values: unknown[], failures: EachFailure[] } | undefined}
 */
export function eachReply(values, failures) {
  if (failures.length === 0) return undefined;
  for (const [at] of failures) values[at] = undefined;
  return {
    values,
    failures: failures.map(([at, error]) => ({ at, error: serializeError(error) })),
  };
}

/**
 * @param {unknown} value
 * @returns {value is PromiseLike<unknown>}
 */
function isThenable(value) {
  return value instanceof Promise ||
    (typeof value === "object" && value !== null &&
      typeof (/** @type {{ then?: unknown }} */ (value)).then === "function");
}

/**
 * This isolate's JavaScript heap in use, in bytes, for `idleMemoryLimitMb`. On Bun the heap's
 * total is used: JavaScriptCore updates its "used" figure only when it collects, so a heap
 * that grows without a collection would read as not growing at all.
 *
 * @returns {number}
 */
export function heapInUse() {
  const scope = /** @type {any} */ (globalThis);
  if (typeof scope.Deno?.memoryUsage === "function") return scope.Deno.memoryUsage().heapUsed;
  const usage = scope.process.memoryUsage();
  return scope.Bun !== undefined ? usage.heapTotal : usage.heapUsed;
}
