/**
 * Shared values as workers see them, and the one walk that finds handles inside an input
 * (used by the executor to learn what a chunk needs, and by workers to wire what arrived).
 *
 * A `Shared` handle in the parent has exactly one own enumerable property, `MARK` (its id):
 * that is all structured clone copies of it, so a task's message carries a marker of a few
 * bytes whatever the value's size. The value itself travels once per worker, next to the
 * first chunk that needs it, and is kept here by id until the parent says to forget it.
 * Plain JavaScript, like everything a worker imports (see run_task.js).
 *
 * @module
 */

/** The own property that marks a shared handle, holding its id. */
export const MARK = "fanout.shared";

/** A shared value held by this worker; `live` turns false when the parent releases it. */
class Cell {
  /**
   * @param {number} id
   * @param {unknown} value
   */
  constructor(id, value) {
    this.id = id;
    this.value = value;
    this.live = true;
  }
}

/** @type {Map<number, Cell>} */
const cells = new Map();
/**
 * Ids the parent released. On threads a release on the events port may overtake the chunk
 * that delivers the value; remembering the id keeps that late value from being kept.
 * @type {Set<number>}
 */
const released = new Set();
const CELL = Symbol("fanout.cell");

/**
 * Thrown when a released handle is read. The parent revives it by name as its own
 * `SharedReleasedError`.
 */
class SharedReleasedError extends Error {
  static {
    this.prototype.name = "SharedReleasedError";
  }
  /** @param {number} id */
  constructor(id) {
    super(
      `Expected a live Shared handle, got handle ${id}, which was released (release() was ` +
        `called, or its executor closed) or never reached this worker`,
    );
    this.id = id;
  }
}

/**
 * A handle as a task sees it in a worker: `value` reads the value delivered to this worker.
 * Only the parent can release it.
 */
class SharedRef {
  /** @returns {unknown} */
  get value() {
    const cell = /** @type {Cell | undefined} */ (/** @type {any} */ (this)[CELL]);
    if (cell === undefined || !cell.live) {
      throw new SharedReleasedError(/** @type {any} */ (this)[MARK]);
    }
    return cell.value;
  }

  /** @returns {boolean} */
  get released() {
    const cell = /** @type {Cell | undefined} */ (/** @type {any} */ (this)[CELL]);
    return cell === undefined || !cell.live;
  }

  /** @returns {never} */
  release() {
    throw new TypeError(
      "Expected release() to be called where share() was called, got a call inside a task: " +
        "a task's handle is read-only",
    );
  }

  /** @returns {never} */
  [Symbol.dispose]() {
    return this.release();
  }
}

/**
 * Calls `onRef(ref, at)` once for every distinct object inside `value` that carries `MARK`,
 * where `at` is the position in `items` whose walk found it. Walks arrays, objects, Maps and
 * Sets (what structured clone copies), skips typed arrays and buffers, and survives cycles.
 *
 * @param {readonly unknown[]} items
 * @param {(ref: Record<string, unknown>, at: number) => void} onRef
 */
export function visitRefs(items, onRef) {
  /** @type {Set<object> | undefined} */
  let seen;
  /** @type {unknown[]} */
  const stack = [];
  for (let at = 0; at < items.length; at++) {
    const item = items[at];
    if (typeof item !== "object" || item === null) continue;
    seen ??= new Set();
    stack.push(item);
    while (stack.length > 0) {
      const value = /** @type {Record<string, unknown>} */ (stack.pop());
      if (seen.has(value)) continue;
      seen.add(value);
      if (typeof value[MARK] === "number") {
        onRef(value, at);
        continue;
      }
      if (
        ArrayBuffer.isView(value) || value instanceof ArrayBuffer ||
        (typeof SharedArrayBuffer === "function" && value instanceof SharedArrayBuffer)
      ) {
        continue;
      }
      /** @type {Iterable<unknown>} */
      let inner;
      if (Array.isArray(value)) inner = value;
      else if (value instanceof Map) inner = [...value.keys(), ...value.values()];
      else if (value instanceof Set) inner = value;
      else inner = Object.values(value);
      for (const next of inner) {
        if (typeof next === "object" && next !== null) stack.push(next);
      }
    }
  }
}

/**
 * Takes what the parent sent along with a chunk: values to keep and ids to forget.
 *
 * @param {readonly [number, unknown][] | undefined} shares
 * @param {readonly number[] | undefined} forget
 * @param {boolean} [copied] Whether the values were copied on the way (into a process):
 *   typed arrays and buffers, which were shared memory in the parent, then arrive over plain
 *   `ArrayBuffer`s and are moved back into shared memory, so they have the same type here.
 */
export function receiveShares(shares, forget, copied = false) {
  if (forget !== undefined) forgetShares(forget);
  if (shares !== undefined) {
    for (const [id, value] of shares) {
      if (!released.has(id)) cells.set(id, new Cell(id, copied ? toSharedMemory(value) : value));
    }
  }
}

/**
 * A buffer or view over a plain `ArrayBuffer`, copied into a `SharedArrayBuffer`; anything
 * else as it is.
 *
 * @param {unknown} value
 * @returns {unknown}
 */
function toSharedMemory(value) {
  if (value instanceof ArrayBuffer) {
    const copy = new SharedArrayBuffer(value.byteLength);
    new Uint8Array(copy).set(new Uint8Array(value));
    return copy;
  }
  if (!ArrayBuffer.isView(value) || !(value.buffer instanceof ArrayBuffer)) return value;
  const copy = new SharedArrayBuffer(value.byteLength);
  new Uint8Array(copy).set(new Uint8Array(value.buffer, value.byteOffset, value.byteLength));
  if (value instanceof DataView) return new DataView(copy);
  const View = /** @type {new (b: ArrayBufferLike, o: number, l: number) => unknown} */ (
    value.constructor
  );
  return new View(
    copy,
    0,
    /** @type {{ length: number }} */ (/** @type {unknown} */ (value)).length,
  );
}

/**
 * Drops released values, so they can be collected; a task that kept a handle and reads it
 * later gets `SharedReleasedError`.
 *
 * @param {readonly number[]} ids
 */
export function forgetShares(ids) {
  for (const id of ids) {
    released.add(id);
    const cell = cells.get(id);
    if (cell === undefined) continue;
    cell.live = false;
    cell.value = undefined;
    cells.delete(id);
  }
}

/**
 * Turns the markers inside a chunk's items into handles whose `value` reads the value this
 * worker holds.
 *
 * @param {readonly unknown[]} items
 */
export function attachRefs(items) {
  visitRefs(items, (ref) => {
    Object.setPrototypeOf(ref, SharedRef.prototype);
    Object.defineProperty(ref, CELL, { value: cells.get(/** @type {number} */ (ref[MARK])) });
  });
}
