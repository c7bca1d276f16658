/**
 * Messages between the pool and a thread worker. Types only: the worker side
 * (`src/worker/*.js`) is plain JavaScript and refers to these with JSDoc `@import`.
 *
 * Two channels per worker:
 * - the worker's own port carries the hot path below (one `run` per chunk, one reply);
 * - a `MessageChannel` port, handed over in `init`, carries the comlink control API
 *   (`WorkerControl`): preparing a task once per worker, which is where module import
 *   errors and missing exports are reported.
 *
 * @module
 */

/** Where a task's code comes from. */
export type TaskSpec =
  | { kind: "module"; url: string; name: string }
  | { kind: "inline"; source: string };

/** A task's error as it crosses the boundary: enough to rebuild it on the other side. */
export interface WireError {
  /** `name` of the original error. */
  name: string;
  /** Constructor name, when it differs from `name` (e.g. a subclass that did not set `name`). */
  className?: string;
  message: string;
  stack?: string;
  cause?: WireError | { value: unknown };
  /** Own enumerable properties other than the above (e.g. `code`), where cloneable. */
  props?: Record<string, unknown>;
  /** Set when a thrown non-Error value was sent as is. */
  thrown?: { value: unknown };
  /** Set by the worker when an inline function read a variable it does not define. */
  capturedName?: string;
}

/** Main → worker, on the worker's own port. */
export type ToWorker =
  | {
    type: "init";
    /** comlink control port. */
    control: MessagePort;
    /** Int32Array(2) over a SharedArrayBuffer: [cancelled chunk id, index of the running item]. */
    state: SharedArrayBuffer;
  }
  | { type: "run"; id: number; task: number; base: number; items: unknown[] }
  | { type: "cancel"; id: number };

/** Worker → main, on the worker's own port. */
export type FromWorker =
  | { type: "ready" }
  | { type: "done"; id: number; values: unknown[]; ms: number }
  | {
    type: "fail";
    id: number;
    index: number;
    error: WireError;
    clone?: { path: string; what: string };
  }
  | { type: "cancelled"; id: number }
  /** An uncaught error or unhandled rejection is about to kill the worker. */
  | { type: "fatal"; error: WireError }
  /** The worker called `process.exit`, `Deno.exit` or `self.close`. */
  | { type: "exit"; code: number };

/** The comlink API a worker exposes on its control port. */
export interface WorkerControl {
  /** Load a task (import its module, or compile inline source) and register it under `id`. */
  prepare(id: number, spec: TaskSpec): Promise<void>;
}

/** Slots of the shared state array. */
export const STATE_CANCELLED = 0;
/** Slot holding the index of the item the worker is running. */
export const STATE_RUNNING_INDEX = 1;
