/**
 * Layout of a worker's shared header: see `src/protocol.ts`, which re-exports these. Plain
 * JavaScript so that workers import it without type stripping.
 *
 * @module
 */

/**
 * Slots of the shared `Int32Array` header of one worker that are not tied to a chunk. A worker
 * may hold two chunks at once (one running, one posted behind it: see `Bank`).
 */
export const Slot = /** @type {const} */ ({
  /** Index of the item the worker is running; names the task when a worker crashes. */
  RUNNING_INDEX: 0,
  /**
   * 1 while the worker runs a task's synchronous code, 0 while it waits (idle, or awaiting a
   * task's promise); written and notified on Deno only, where a terminated thread keeps
   * running synchronous code, so the pool can tell when it is really gone.
   */
  BUSY: 1,
  /** Child processes fanout started inside this worker (a nested pool) and not yet reaped. */
  CHILDREN: 2,
  /** The worker's JavaScript heap in use after its last chunk, in KiB (with `idleMemoryLimitMb`). */
  HEAP_KB: 3,
});

/**
 * Each chunk's slots, in one of two banks: the n-th chunk posted to a worker uses bank
 * `n % 2`, so a chunk posted while another runs never overwrites what the worker has yet to
 * read, nor the worker's reply what the pool has yet to read. Offsets within a bank.
 */
export const Bank = /** @type {const} */ ({
  /** Chunk id of the payload being posted to the worker. */
  RUN_ID: 0,
  /** Task id (as prepared) of that chunk. */
  RUN_TASK: 1,
  /** Index of the chunk's first item. */
  RUN_BASE: 2,
  /** A `Payload` kind, for the payload being posted to the worker. */
  RUN_PAYLOAD: 3,
  /** 1 when the pool wants the chunk's run time (for chunk sizing), 0 when not. */
  RUN_TIMED: 4,
  /** `Shares` flags of the payload being posted to the worker; 0 when it has no handles. */
  RUN_SHARED: 5,
  /** High 32 bits of the call's base seed (see seed.js). */
  RUN_SEED_HIGH: 6,
  /** Low 32 bits of the call's base seed. */
  RUN_SEED_LOW: 7,
  /** Chunk id of the result being posted back. */
  DONE_ID: 8,
  /** A `Payload` kind, for the result being posted back. */
  DONE_PAYLOAD: 9,
  /** Id of the chunk when the pool cancelled it; read by `ctx.signal.aborted`. */
  CANCELLED: 10,
  /**
   * Who has the chunk: its id while nobody does; `Claim.TAKEN` once the worker started it;
   * `Claim.REVOKED` once the pool took it back (to run it elsewhere) before it started. Both
   * sides change it with `Atomics.compareExchange`, so exactly one of them wins.
   */
  CLAIM: 11,
  /** Items of the chunk the worker may have in flight at once (the call's `concurrency`). */
  RUN_CONCURRENCY: 12,
});

/** Values of `Bank.CLAIM` besides a chunk id (ids are positive). */
export const Claim = /** @type {const} */ ({ TAKEN: -1, REVOKED: -2 });

/** Slots of one bank. */
export const BANK_SLOTS = 13;
/** Index of the first slot of bank `b` (0 or 1). */
export const bankAt = (/** @type {number} */ b) => 4 + b * BANK_SLOTS;

/** Number of `Int32` slots in the header (even, so the `Float64`s after them are aligned). */
export const SLOTS = 4 + 2 * BANK_SLOTS;
if (SLOTS % 2 !== 0) throw new Error("The header's slots must be even in number");
/** Byte offset of the two `Float64`s holding each bank's last run time in ms. */
export const MS_OFFSET = SLOTS * Int32Array.BYTES_PER_ELEMENT;
/** Bytes of shared state per worker. */
export const STATE_BYTES = MS_OFFSET + 2 * Float64Array.BYTES_PER_ELEMENT;

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
  /**
   * Back only: the reply is a chunk's event (`fail`, `cancelled`, `skipped`), not its values.
   * Every reply of a chunk goes on the worker's own port, so replies come in the order the
   * chunks ran, and each one is the oldest chunk's the pool holds.
   */
  EVENT: 4,
});

/** Flags in `Slot.RUN_SHARED`. */
export const Shares = /** @type {const} */ ({
  /** The items hold Shared handles for the worker to wire up. */
  REFS: 1,
  /** The payload is a `WrappedPayload`: shared values to keep or forget, then the items. */
  WRAPPED: 2,
});
