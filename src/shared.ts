/**
 * Shared payloads: a large value reaches every worker without being copied for every task.
 *
 * ```
 * ex.share(value) ──► Shared handle (id) ── in task inputs, clones as { "fanout.shared": id }
 *        │
 *        ├─ typed array / buffer ─► copied into a SharedArrayBuffer once (threads see it, no copy)
 *        └─ anything else ────────► a structured-clone snapshot, taken once
 *
 * chunk ──► claim(items): which handles it holds ──► pool: first chunk on a worker that lacks
 *                                                    a value carries it; the worker keeps it
 * release() ──► once no running chunk holds it ──► every worker that has it forgets it
 * ```
 *
 * Typed arrays and buffers are moved into shared memory by `shared_array.ts`, which also makes
 * them there from the start (`sharedArray`).
 *
 * @module
 */

import { MARK, visitRefs } from "./worker/shared_refs.js";
import { findUncloneable } from "./worker/clone_failure.js";
import { NotCloneableError, SharedReleasedError } from "./errors.ts";
import { describe } from "./_checks.ts";
import { toSharedMemory } from "./shared_array.ts";

/**
 * A handle on a value shared with an executor's workers, made by
 * {@linkcode ParallelExecutor.prototype.share}. Put it in task inputs, as the input or anywhere
 * inside one; the task reads the value as `handle.value`.
 *
 * On threads a typed array or buffer is the same memory in every thread, so writes to
 * disjoint ranges are visible to the caller (and `Atomics` works on it). On processes each
 * process gets one copy (again in a `SharedArrayBuffer`), so writes there stay in that
 * process. Other values are a snapshot taken by `share()`: treat it as read-only, since each
 * thread or process has its own copy. A task should not return a handle.
 */
export interface Shared<T> extends Disposable {
  /**
   * The value. Read it once per task (`const data = input.data.value`) rather than in a hot
   * loop.
   *
   * @throws {SharedReleasedError} Once the handle was released and no running task holds it.
   */
  readonly value: T;
  /** Whether the handle was released (or its executor closed). */
  readonly released: boolean;
  /**
   * Frees the value in the executor and in every worker, once no running task uses it and
   * every call begun before the release has ended. Idempotent. Only the caller that shared it
   * can release it: inside a task on threads or processes this throws a `TypeError`.
   */
  release(): void;
}

/**
 * What a shared value reads as: typed arrays and DataViews keep their type (now over shared
 * memory), an ArrayBuffer becomes a SharedArrayBuffer, anything else is a snapshot of itself.
 */
export type SharedValue<T> = T extends ArrayBuffer ? SharedArrayBuffer : T;

/** What a pool needs to deliver one shared value. */
export interface SharedEntry {
  /** The handle's id. */
  readonly id: number;
  /** The value to send to a worker that lacks it. */
  readonly value: unknown;
}

interface State extends SharedEntry {
  readonly owner: SharedRegistry;
  value: unknown;
  released: boolean;
  /** The registry's release count once this handle was released: calls begun before may use it. */
  releasedAt: number;
  /** Set once released and nothing can use it any more: the value is gone. */
  freed: boolean;
  /** Chunks queued or running that hold the handle; freeing waits for them. */
  busy: number;
}

/** A call in progress. Handles released after it began stay usable by it until it ends. */
export interface CallPin {
  /** The registry's release count when the call began. */
  readonly epoch: number;
}

/** Ids are unique in the process, so a handle can never be mistaken for another executor's. */
let nextId = 1;
/** Handles of every executor in this process not freed yet: while any is, all inputs are searched. */
let unfreed = 0;
let stateOf: (handle: SharedHandle<unknown>) => State;

class SharedHandle<T> implements Shared<T> {
  declare readonly [MARK]: number;
  readonly #state: State;

  static {
    stateOf = (handle) => handle.#state;
  }

  constructor(state: State) {
    this.#state = state;
    // The one own enumerable property, so structured clone copies nothing but the id.
    Object.defineProperty(this, MARK, { value: state.id, enumerable: true });
  }

  get value(): T {
    const state = this.#state;
    if (state.freed) throw released(state.id);
    return state.value as T;
  }

  get released(): boolean {
    return this.#state.released;
  }

  release(): void {
    this.#state.owner.release(this.#state);
  }

  [Symbol.dispose](): void {
    this.release();
  }
}

/**
 * The shared values of one executor. A released value is freed once no chunk holds it and
 * every call that began before the release has ended: a call cuts its input into chunks
 * lazily, so chunks it has not cut yet may still name the handle.
 */
export class SharedRegistry {
  readonly #live = new Set<State>();
  /** Released but not freed yet. */
  readonly #pending = new Set<State>();
  readonly #calls = new Set<CallPin>();
  readonly #free: (id: number) => void;
  /** How many handles were released so far. */
  #epoch = 0;
  /** Whether any handle was ever made here: until then inputs are not searched for handles. */
  #made = false;

  /** @param free Tells the strategy to drop a value from its workers. */
  constructor(free: (id: number) => void) {
    this.#free = free;
  }

  /**
   * Makes a handle: typed arrays and buffers are copied into shared memory (unless already
   * there), other values are snapshot by structured clone.
   *
   * @throws {NotCloneableError} If structured clone refuses the value.
   * @throws {TypeError} If the value is, or holds, a handle.
   */
  share<T>(value: T): Shared<SharedValue<T>> {
    const state: State = {
      id: nextId++,
      owner: this,
      value: toShared(value),
      released: false,
      releasedAt: Infinity,
      freed: false,
      busy: 0,
    };
    this.#made = true;
    unfreed++;
    this.#live.add(state);
    return new SharedHandle<SharedValue<T>>(state);
  }

  /**
   * Whether no handle can be in any input: this registry never made one, and no other
   * executor's is alive. A call begun now has nothing to pin.
   */
  get quiet(): boolean {
    return !this.#made && unfreed === 0;
  }

  /** A call begins; `end(pin)` when it has settled. */
  begin(): CallPin {
    const pin = { epoch: this.#epoch };
    this.#calls.add(pin);
    return pin;
  }

  /** A call ended: values released while it ran may be freed now. */
  end(pin: CallPin): void {
    this.#calls.delete(pin);
    for (const state of this.#pending) this.#tryFree(state);
  }

  /**
   * The handles inside a chunk's items, marked busy until `unclaim`; `undefined` when there
   * are none. Inputs are only searched once this executor has made a handle, or while another
   * executor's handle is alive, so programs that never share pay nothing for it.
   *
   * @throws {SharedReleasedError} If an item holds a handle released before the call began.
   * @throws {TypeError} If an item holds another executor's handle, or a copy of one.
   */
  claim(pin: CallPin, base: number, items: readonly unknown[]): SharedEntry[] | undefined {
    // An executor that never shared still looks while another's handle could be in its input.
    if (!this.#made && unfreed === 0) return undefined;
    let found: State[] | undefined;
    visitRefs(items, (ref, at) => {
      const index = base + at;
      if (!(ref instanceof SharedHandle)) {
        throw new TypeError(
          `Expected the input of task ${index} to hold Shared handles made by share(), got a ` +
            `copy of handle ${ref[MARK]} (an object with a "${MARK}" key): pass the ` +
            `handle itself`,
        );
      }
      const state = stateOf(ref);
      if (state.owner !== this) {
        throw new TypeError(
          `Expected the input of task ${index} to hold Shared handles of this executor, got ` +
            `handle ${state.id}, shared by another executor`,
        );
      }
      if (state.freed || pin.epoch >= state.releasedAt) {
        throw new SharedReleasedError(
          state.id,
          `Expected the input of task ${index} to hold live Shared handles, got handle ` +
            `${state.id}, which was released before the call began`,
        );
      }
      (found ??= []).push(state);
    });
    if (found !== undefined) { for (const state of found) state.busy++; }
    return found;
  }

  /** The chunk that claimed `entries` settled. */
  unclaim(entries: readonly SharedEntry[]): void {
    for (const entry of entries as readonly State[]) {
      entry.busy--;
      if (entry.released) this.#tryFree(entry);
    }
  }

  /** Releases one handle: freed at once, or once nothing can use it any more. */
  release(state: State): void {
    if (state.released) return;
    state.released = true;
    state.releasedAt = ++this.#epoch;
    this.#live.delete(state);
    this.#pending.add(state);
    this.#tryFree(state);
  }

  /**
   * Releases every handle, for `close()` (no call is left then) or `terminate()` (calls are
   * being cancelled; their values go now).
   */
  releaseAll(): void {
    for (const state of [...this.#live]) this.release(state);
    for (const state of [...this.#pending]) this.#drop(state);
  }

  #tryFree(state: State): void {
    if (state.freed || state.busy > 0) return;
    for (const call of this.#calls) if (call.epoch < state.releasedAt) return;
    this.#drop(state);
  }

  #drop(state: State): void {
    this.#pending.delete(state);
    unfreed--;
    state.freed = true;
    state.value = undefined;
    this.#free(state.id);
  }
}

/** The error for reading a released handle. */
function released(id: number): SharedReleasedError {
  return new SharedReleasedError(
    id,
    `Expected a live Shared handle, got handle ${id}, which was released (release() was ` +
      `called, or its executor closed)`,
  );
}

/** A typed array, DataView or buffer over shared memory (copied once if it was not); else a snapshot. */
function toShared(value: unknown): unknown {
  const binary = toSharedMemory(value);
  if (binary !== undefined) return binary;
  if (value instanceof SharedHandle) {
    throw new TypeError(
      `Expected a value to share, got Shared handle ${value[MARK]}, which is shared already`,
    );
  }
  let snapshot: unknown;
  try {
    snapshot = structuredClone(value);
  } catch (error) {
    const found = findUncloneable(value, "value") ?? { path: "value", what: describe(value) };
    throw new NotCloneableError(
      -1,
      found.path,
      `Expected a value share() can clone, got ${found.what} at \`${found.path}\``,
      { cause: error },
    );
  }
  visitRefs([snapshot], (ref) => {
    throw new TypeError(
      `Expected a value to share without Shared handles inside, got handle ${
        ref[MARK]
      } inside it: pass the handles next to each other in the task input instead`,
    );
  });
  return snapshot;
}
