/**
 * Layout of a worker's shared header: see `src/protocol.ts`, which re-exports these. Plain
 * JavaScript so that workers import it without type stripping.
 *
 * @module
 */

/** Slots of the shared `Int32Array` header of one worker. */
export const Slot = /** @type {const} */ ({
  /** Id of the chunk the pool cancelled; read by `ctx.signal.aborted`. */
  CANCELLED: 0,
  /** Index of the item the worker is running; names the task when a worker crashes. */
  RUNNING_INDEX: 1,
  /** Chunk id of the payload being posted to the worker. */
  RUN_ID: 2,
  /** Task id (as prepared) of that chunk. */
  RUN_TASK: 3,
  /** Index of the chunk's first item. */
  RUN_BASE: 4,
  /** `Payload.ONE` or `Payload.MANY`, for the payload being posted to the worker. */
  RUN_PAYLOAD: 5,
  /** Chunk id of the result being posted back. */
  DONE_ID: 6,
  /** `Payload.ONE` or `Payload.MANY`, for the result being posted back. */
  DONE_PAYLOAD: 7,
  /** 1 when the pool wants the chunk's run time (for chunk sizing), 0 when not. */
  RUN_TIMED: 8,
  /** `Shares` flags of the payload being posted to the worker; 0 when it has no handles. */
  RUN_SHARED: 9,
  /** High 32 bits of the call's base seed (see seed.js). */
  RUN_SEED_HIGH: 10,
  /** Low 32 bits of the call's base seed. */
  RUN_SEED_LOW: 11,
  /**
   * 1 while the worker runs a task's synchronous code, 0 while it waits (idle, or awaiting a
   * task's promise); written and notified on Deno only, where a terminated thread keeps
   * running synchronous code, so the pool can tell when it is really gone.
   */
  BUSY: 12,
  /** Child processes fanout started inside this worker (a nested pool) and not yet reaped. */
  CHILDREN: 13,
  /** The worker's JavaScript heap in use after its last chunk, in KiB (with `idleMemoryLimitMb`). */
  HEAP_KB: 14,
});

/** Number of `Int32` slots in the header (even, so the `Float64` after them is aligned). */
export const SLOTS = 16;
/** Byte offset of the `Float64` holding the last chunk's run time in ms. */
export const MS_OFFSET = SLOTS * Int32Array.BYTES_PER_ELEMENT;
/** Bytes of shared state per worker. */
export const STATE_BYTES = MS_OFFSET + Float64Array.BYTES_PER_ELEMENT;

/** What a payload holds. */
export const Payload = /** @type {const} */ ({
  /** The bare item (or value) of a one-item chunk. */
  ONE: 1,
  /** An array with one item (or value) per item of the chunk. */
  MANY: 2,
  /**
   * A batch of submits, each item its own call: to the worker `{ items, seeds }` (`seeds[k]`
   * absent means 0); back, when some failed, `{ values, failures }` (see `EachFailure`), else
   * a `MANY` array.
   */
  EACH: 3,
});

/** Flags in `Slot.RUN_SHARED`. */
export const Shares = /** @type {const} */ ({
  /** The items hold Shared handles for the worker to wire up. */
  REFS: 1,
  /** The payload is a `WrappedPayload`: shared values to keep or forget, then the items. */
  WRAPPED: 2,
});
