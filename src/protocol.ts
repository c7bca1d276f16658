/**
 * How the pool talks to its workers, threads and processes alike. Types and constants only:
 * the worker side (`src/worker/*.js`) is plain JavaScript and refers to these with JSDoc
 * `@import`. Every message is an object discriminated on a string `type`, with fields named
 * for what they hold; only a thread's payloads (below) go bare, or in the small
 * `WrappedPayload`, because there the wrapper itself is what a round trip costs.
 *
 * A **thread** has three channels:
 *
 * - **the worker's own port: payloads only.** After the `ready`/`init` handshake, a message
 *   to the worker is the input of one chunk (the bare item, or an array of items) and a
 *   message from it is that chunk's result (the bare value, or an array of values). What the
 *   payload is — chunk id, task, first index, one-or-many — sits in the worker's shared
 *   header (`Slot`), written just before the post. A payload-only message costs what a raw
 *   `postMessage` of the user's value costs: on Deno any object wrapper, even `[value]`,
 *   measured ~1.2× a bare number's round trip. It is safe because a worker never has more
 *   than one chunk in flight: the next header is written only after the last reply arrived.
 * - **an events `MessagePort`** (handed over in `init`): everything that is not a payload —
 *   `cancel` to the worker; `fail`, `cancelled`, `fatal`, `exit` from it.
 * - **a comlink control `MessagePort`** (handed over in `init`): `WorkerControl`, for
 *   preparing a task once per worker, where module import errors and missing exports show.
 *
 * A **process** has one channel each way, `ToProcess` and `FromProcess`: Node's and Bun's IPC
 * channel, or on Deno frames over stdin and stdout (`worker/frames.js`). It shares no memory
 * with the pool, so each message carries its own header (`run` says which chunk, task and
 * first index). What a task produces only ever travels inside a message (`values`, `error`),
 * never as one: on Node and Bun a task's output goes to stdout, not the IPC channel; on Deno
 * it lacks the per-process token every frame carries (kept where no task can read it), so it
 * is passed through as output and cannot be read as a message.
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
  /** `AggregateError.errors`, each in its wire form. */
  errors?: (WireError | { value: unknown })[];
  /** `SuppressedError`'s `error` and `suppressed`. */
  suppressed?: [WireError | { value: unknown }, WireError | { value: unknown }];
  /** Own enumerable properties other than the above (e.g. `code`), where cloneable. */
  props?: Record<string, unknown>;
  /** Set when a thrown non-Error value was sent as is. */
  thrown?: { value: unknown };
  /** Set by the worker when an inline function read a variable it does not define. */
  capturedName?: string;
}

/**
 * One end of a `MessageChannel`: the DOM's `MessagePort` on Deno and Bun, `node:worker_threads`'
 * on Node. Named through `MessageChannel`, so the declarations fanout ships mean the one the
 * program's own types have (a consumer with only Node's types has no DOM `MessagePort`).
 */
export type Port = InstanceType<typeof MessageChannel>["port1"];

/** The first message to a worker, on its own port, in answer to `ready`. */
export interface InitMessage {
  type: "init";
  /** Backs the shared header: `Int32Array` slots (see `Slot`, `Bank`), then two `Float64`s at `MS_OFFSET`. */
  state: SharedArrayBuffer;
  /** The events port. */
  events: Port;
  /** The comlink control port. */
  control: Port;
  /** Whether to write the heap in use into `Slot.HEAP_KB` before each reply. */
  heap: boolean;
}

/** From a worker on its own port, before `init`. */
export type StartMessage =
  | { type: "ready" }
  | { type: "fatal"; error: WireError }
  | { type: "exit"; code: number };

/** Main → worker, on the events port. */
export type ToWorkerEvent =
  | { type: "cancel"; id: number }
  /** Shared values released by the parent: drop them. */
  | { type: "release"; ids: number[] }
  /**
   * The worker is about to be terminated: terminate the executors its tasks made, so their
   * child processes are reaped, then answer `stopped`.
   */
  | { type: "stop" };

/**
 * A payload that carries shared values (`Shares.WRAPPED` in the header): the first chunk on a
 * worker that needs a value brings it along, so it always arrives before the items using it.
 */
export interface WrappedPayload {
  /** `[id, value]` of each shared value to keep. */
  shares: [number, unknown][] | undefined;
  /** Ids of released values to forget first. */
  forget: number[] | undefined;
  /** The payload proper. */
  payload: unknown;
}

/**
 * Worker → main. A chunk's own events (`fail`, `cancelled`, `skipped`) go on the worker's own
 * port with `Payload.EVENT` in the chunk's bank, so that every reply of a chunk keeps the order
 * the chunks ran in; the rest go on the events port.
 */
export type FromWorkerEvent =
  | {
    type: "fail";
    id: number;
    index: number;
    error: WireError;
    clone?: CloneFailure;
    /** Items of the chunk still running after the grace (see `runWindow`): replace the worker. */
    stragglers?: number;
  }
  /** The chunk was cancelled before it finished. */
  | { type: "cancelled"; id: number }
  /** The chunk was taken back by the pool before it started (`Claim.REVOKED`): not run. */
  | { type: "skipped"; id: number }
  /** An uncaught error or unhandled rejection is about to kill the worker. */
  | { type: "fatal"; error: WireError }
  /** The worker called `process.exit`, `Deno.exit` or `self.close`. */
  | { type: "exit"; code: number }
  /** The answer to `stop`: the executors made by its tasks are terminated. */
  | { type: "stopped" };

/** One failed item of a batch of submits (`Payload.EACH`): its position and its error. */
export interface EachFailure {
  at: number;
  error: WireError;
  /** Set when its result could not be cloned. */
  clone?: CloneFailure;
}

/** Where a result that could not be cloned went wrong. */
export interface CloneFailure {
  path: string;
  what: string;
}

/** The comlink API a worker exposes on its control port. */
export interface WorkerControl {
  /** Loads a task (imports its module, or compiles inline source) and registers it under `id`. */
  prepare(id: number, spec: TaskSpec): Promise<void>;
}

// The constants live in a .js file so the worker can import them without type stripping.
export {
  Bank,
  BANK_SLOTS,
  bankAt,
  Claim,
  MS_OFFSET,
  Payload,
  Shares,
  Slot,
  SLOTS,
  STATE_BYTES,
} from "./worker/wire.js";

/** Pool → worker process. */
export type ToProcess =
  | {
    type: "run";
    /** Chunk id. */
    id: number;
    /** Task id; `spec` comes along the first time this process sees the task. */
    task: number;
    spec?: TaskSpec;
    /** Index of the first item. */
    base: number;
    items: unknown[];
    /** Whether to measure the run time. */
    timed: boolean;
    /** `[id, value]` of shared values the items need that this process does not hold yet. */
    shares?: [number, unknown][];
    /** Whether the items hold Shared handles to wire up. */
    refs?: boolean;
    /** The call's base seed, when not 0. */
    seed?: bigint;
    /** Whether replies should carry `heap` (the pool's `idleMemoryLimitMb`). */
    heap?: boolean;
    /**
     * Set for a batch of submits: each item is its own call (index 0, base seed `seeds[k]`,
     * absent meaning 0), and one that fails fails alone (see `Payload.EACH`).
     */
    each?: { seeds: readonly (bigint | undefined)[] | undefined };
    /** Items of the chunk that may be in flight at once, when more than 1. */
    concurrency?: number;
  }
  /** Abort the chunk's `ctx.signal`; the process answers `cancelled` (or the chunk's end). */
  | { type: "cancel"; id: number }
  /** Shared values released by the parent: drop them. */
  | { type: "release"; ids: number[] };

/** Worker process → pool. `index` is the item that was running (-1 when none). */
export type FromProcess =
  /** Sent once, when the process can take `run` messages. */
  | { type: "ready" }
  /** A task's module finished loading (sent once per task and process). */
  | { type: "loaded"; task: number }
  /**
   * `heap` (bytes in use after the chunk) is there when the run message asked for it; a batch
   * (`each`) lists the items that failed in `failures`, their `values` left undefined.
   */
  | {
    type: "done";
    id: number;
    values: unknown[];
    ms: number;
    heap?: number;
    failures?: EachFailure[];
  }
  | {
    type: "fail";
    id: number;
    index: number;
    error: WireError;
    /** Set when the task could not be loaded (module import, missing export). */
    load?: boolean;
    clone?: CloneFailure;
    heap?: number;
    /** Items of the chunk still running after the grace (see `runWindow`): replace the process. */
    stragglers?: number;
  }
  | { type: "cancelled"; id: number; heap?: number }
  /** An uncaught error or unhandled rejection; the process exits with code 1 next. */
  | { type: "fatal"; error: WireError; index: number }
  /** The task called `process.exit` or `Deno.exit`; the exit status follows. */
  | { type: "exit"; code: number; index: number };
