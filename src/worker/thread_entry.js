/**
 * The program every pool thread runs (plain JavaScript: see run_task.js for why). The wire
 * format is described in `src/protocol.ts`.
 *
 * Before any of that it reports what would otherwise die silently: on Deno a web worker that
 * calls `process.exit`, `Deno.exit` or `self.close()` raises no event in the parent, so those
 * are wrapped to say `exit` first; an uncaught error is sent as `fatal` with its real stack
 * (the parent only gets `error: null` on Deno and a formatted code frame on Bun).
 *
 * @module
 */

/** @import { FromWorkerEvent, InitMessage, StartMessage, TaskSpec, ToWorkerEvent, WrappedPayload } from "../protocol.ts" */
/** @import { TaskFn } from "./load_task.js" */

import { expose } from "comlink";
import { Chunk, eachReply, heapInUse, runItems } from "./run_task.js";
import { eachCloneReply, resultCloneFailure } from "./clone_failure.js";
import { loadTask } from "./load_task.js";
import { saveCompileCache, startCompileCache } from "./compile_cache.js";
import { serializeError } from "./error_wire.js";
import { Bank, bankAt, Claim, MS_OFFSET, Payload, Shares, Slot, SLOTS } from "./wire.js";
import { attachRefs, forgetShares, receiveShares } from "./shared_refs.js";
import { seedFromWords } from "./seed.js";

// Executors made by tasks here see this and default to serial (see ParallelConfig.strategy).
/** @type {any} */ (globalThis)[Symbol.for("fanout.worker")] = "thread";
const scope = /** @type {any} */ (globalThis);
// Node: the compile cache on before any task module is imported (see compile_cache.js).
startCompileCache();
// Web workers (Deno, Bun) have `self.postMessage`; Node's worker_threads use `parentPort`.
// Bun also sets `parentPort` inside web workers, so `self` is checked first.
const web = typeof scope.self === "object" && typeof scope.self.postMessage === "function";
const parentPort = web ? null : (await import("node:worker_threads")).parentPort;
if (!web && parentPort === null) throw new Error("thread_entry.js must run in a worker");

/** Posts on the worker's own port: start messages, then result payloads only. */
const self = web ? scope.self : undefined;
const post = web
  ? (/** @type {unknown} */ message) => self.postMessage(message)
  : (/** @type {unknown} */ message) =>
    /** @type {NonNullable<typeof parentPort>} */ (parentPort).postMessage(message);

/** @type {MessagePort | undefined} */
let events;
/** Posts on the events port, or on the own port while there is none yet (before `init`). */
const postEvent = (/** @type {FromWorkerEvent} */ event) => {
  if (events !== undefined) events.postMessage(event);
  else post(/** @type {StartMessage} */ (event));
};

// Web workers die silently on Deno (no event for `process.exit`, `Deno.exit`, `self.close()`,
// and `error: null` for an uncaught error), so they say what happened first. worker_threads
// report all of this to the parent themselves, real Error and exit code included.
if (web) {
  /** @param {unknown} code */
  const reportExit = (code) => {
    markBusy?.(0); // It is going, and will run nothing more.
    try {
      postEvent({ type: "exit", code: typeof code === "number" ? code : 0 });
    } catch {
      // Nothing more can be done from a dying worker.
    }
  };
  if (typeof scope.process?.exit === "function") {
    const exit = scope.process.exit.bind(scope.process);
    scope.process.exit = (/** @type {number | undefined} */ code) => {
      reportExit(code ?? scope.process.exitCode ?? 0);
      return exit(code);
    };
  }
  if (typeof scope.Deno?.exit === "function") {
    const exit = scope.Deno.exit.bind(scope.Deno);
    try {
      scope.Deno.exit = (/** @type {number | undefined} */ code) => {
        reportExit(code ?? 0);
        return exit(code);
      };
    } catch {
      // Not writable on this Deno: the exit then goes unreported, as before.
    }
  }
  if (typeof scope.self.close === "function") {
    const close = scope.self.close.bind(scope.self);
    scope.self.close = () => {
      reportExit(0);
      close();
    };
  }
  // An uncaught error leaves the worker in an unknown state: report it with its real stack
  // and let the pool terminate this worker at once. Handling it here also keeps Deno from
  // printing it as if the program had crashed.
  /** @param {Event} event @param {unknown} error */
  const fatal = (event, error) => {
    event.preventDefault();
    markBusy?.(0); // The pool terminates it: nothing more of it runs.
    postEvent({ type: "fatal", error: serializeError(error) });
  };
  scope.self.addEventListener(
    "error",
    (/** @type {ErrorEvent} */ event) => fatal(event, event.error ?? event.message),
  );
  scope.self.addEventListener(
    "unhandledrejection",
    (/** @type {PromiseRejectionEvent} */ event) => fatal(event, event.reason),
  );
}

/** @type {Map<number, TaskFn>} */
const prepared = new Map();
/**
 * Shared header (see `Slot`); replaced by views on the pool's shared memory in `init`.
 * @type {Int32Array<ArrayBufferLike>}
 */
let header = new Int32Array(SLOTS);
/** @type {Float64Array<ArrayBufferLike>} */
let runMs = new Float64Array(2);
/** Chunks received so far: the n-th uses bank `n % 2` (see `Bank`). */
let received = 0;
/** @type {Chunk | undefined} */
let current;
/** Whether to write the heap in use into the header before each reply (see `init`). */
let measureHeap = false;
/**
 * On Deno a terminated thread goes on running synchronous code: it says in `Slot.BUSY` when it
 * runs a task's code, so the pool knows when it is really gone. Elsewhere terminate() stops
 * it at once, and the atomic stores are skipped (each is a full fence).
 */
const markBusy = typeof scope.Deno === "object"
  ? (/** @type {0 | 1} */ busy) => {
    Atomics.store(header, Slot.BUSY, busy);
    if (busy === 0) Atomics.notify(header, Slot.BUSY);
  }
  : undefined;

/** Before each reply: what the pool reads of this worker besides the reply itself. */
function beforeReply() {
  markBusy?.(0);
  if (measureHeap) header[Slot.HEAP_KB] = Math.ceil(heapInUse() / 1024);
}

/**
 * Runs one chunk and reports it: the result payload on the worker's own port (what it is sits
 * in the shared header), anything else on the events port.
 *
 * @param {number} id
 * @param {number} bank The bank of the chunk (0 or 1).
 * @param {TaskFn} fn
 * @param {number} base
 * @param {unknown[]} items
 * @param {boolean} one Whether the result goes back as a bare value.
 * @param {boolean} timed Whether the pool wants the run time.
 * @param {{ seeds: readonly (bigint | undefined)[] | undefined } | undefined} each Set for a batch of
 *   submits (see `Payload.EACH`).
 * @param {number} limit Items that may be in flight at once.
 */
function runChunk(id, bank, fn, base, items, one, timed, each, limit) {
  const at = bankAt(bank);
  const high = header[at + Bank.RUN_SEED_HIGH];
  const low = header[at + Bank.RUN_SEED_LOW];
  const chunk = new Chunk(
    id,
    () => Atomics.load(header, at + Bank.CANCELLED) === id,
    high === 0 && low === 0 ? 0n : seedFromWords(high, low),
  );
  current = chunk;
  const start = timed ? performance.now() : 0;
  markBusy?.(1);
  /** @type {import("./run_task.js").ChunkHooks} */
  const hooks = {
    waiting: markBusy && (() => markBusy(0)),
    resumed: markBusy && (() => markBusy(1)),
    // A plain store: the pool reads this slot only after the thread has died, and an atomic
    // store (a full fence on x86) per item was a visible share of a trivial task.
    at: (index) => (header[Slot.RUNNING_INDEX] = index),
    fail(index, error, stragglers) {
      // With items still running, it stays the current chunk: nothing more starts here.
      if (!stragglers) current = undefined;
      beforeReply();
      /** @type {Extract<FromWorkerEvent, { type: "fail" }>} */
      const event = { type: "fail", id, index, error: serializeError(error) };
      if (stragglers) event.stragglers = stragglers;
      replyEvent(at, event);
      // Still running some of its items: the pool replaces this worker, which starts nothing more.
      if (!stragglers) startWaiting();
    },
    stopped() {
      current = undefined;
      beforeReply();
      replyEvent(at, { type: "cancelled", id });
      startWaiting();
    },
    done(values, failures) {
      current = undefined;
      if (timed) runMs[bank] = performance.now() - start;
      beforeReply();
      // Plain stores, ordered before the pool reads them by the postMessage that follows.
      header[at + Bank.DONE_ID] = id;
      const reply = failures === undefined ? undefined : eachReply(values, failures);
      header[at + Bank.DONE_PAYLOAD] = one ? Payload.ONE : reply ? Payload.EACH : Payload.MANY;
      try {
        post(one ? values[0] : reply ?? values);
      } catch (error) {
        if (each === undefined) replyEvent(at, resultCloneFailure(id, base, values, error));
        else {
          // Each result that cannot be cloned fails its own submit; the others go back.
          header[at + Bank.DONE_PAYLOAD] = Payload.EACH;
          try {
            post(eachCloneReply(values, reply, error));
          } catch (again) {
            replyEvent(at, resultCloneFailure(id, base, values, again));
          }
        }
      }
      startWaiting();
    },
  };
  runItems(fn, chunk, base, items, hooks, each, limit);
}

/**
 * A chunk's reply that is an event, not its values: on the worker's own port like the values,
 * so that the pool gets every chunk's reply in the order the chunks ran (two ports would not
 * keep it); `Payload.EVENT` in the chunk's bank says what it is.
 *
 * @param {number} at The chunk's bank.
 * @param {Extract<FromWorkerEvent, { id: number }>} event
 */
function replyEvent(at, event) {
  header[at + Bank.DONE_ID] = event.id;
  header[at + Bank.DONE_PAYLOAD] = Payload.EVENT;
  post(event);
}

/**
 * The chunk posted behind the running one (`[bank, payload]`), when it came while a task
 * awaited: chunks run one after the other, never interleaved.
 * @type {[number, unknown][]}
 */
const waiting = [];

/** @param {unknown} payload */
function onPayload(payload) {
  if (events === undefined) return init(/** @type {InitMessage} */ (payload));
  const bank = received++ & 1;
  if (current !== undefined) return void waiting.push([bank, payload]);
  start(bank, payload);
}

/** Starts the chunk that waited for the one that just finished, if any. */
function startWaiting() {
  const next = waiting.shift();
  if (next !== undefined) start(next[0], next[1]);
}

/**
 * Starts a chunk, if the pool has not taken it back.
 *
 * @param {number} bank
 * @param {unknown} payload
 */
function start(bank, payload) {
  const at = bankAt(bank);
  const id = header[at + Bank.RUN_ID];
  const kind = header[at + Bank.RUN_PAYLOAD];
  const shared = header[at + Bank.RUN_SHARED];
  if (shared & Shares.WRAPPED) {
    // Kept even if the chunk is skipped: the pool counts them as delivered.
    const wrapped = /** @type {WrappedPayload} */ (payload);
    receiveShares(wrapped.shares, wrapped.forget);
    payload = wrapped.payload;
  }
  // The pool may have taken the chunk back to run it elsewhere: whoever changes the claim
  // first wins, so it runs exactly once.
  if (Atomics.compareExchange(header, at + Bank.CLAIM, id, Claim.TAKEN) !== id) {
    replyEvent(at, { type: "skipped", id });
    return startWaiting();
  }
  const fn = /** @type {TaskFn} */ (prepared.get(header[at + Bank.RUN_TASK]));
  const base = header[at + Bank.RUN_BASE];
  const timed = header[at + Bank.RUN_TIMED] === 1;
  const limit = header[at + Bank.RUN_CONCURRENCY];
  if (kind === Payload.EACH) {
    const batch = /** @type {{ items: unknown[], seeds: (bigint | undefined)[] | undefined }} */ (
      payload
    );
    return runChunk(id, bank, fn, base, batch.items, false, timed, batch, limit);
  }
  const one = kind === Payload.ONE;
  const items = one ? [payload] : /** @type {unknown[]} */ (payload);
  if (shared & Shares.REFS) attachRefs(items);
  runChunk(id, bank, fn, base, items, one, timed, undefined, limit);
}

/** @param {InitMessage} message */
function init(message) {
  header = new Int32Array(message.state, 0, SLOTS);
  runMs = new Float64Array(message.state, MS_OFFSET, 2);
  events = message.events;
  measureHeap = message.heap;
  events.onmessage = (/** @type {MessageEvent<ToWorkerEvent>} */ event) => {
    const message = event.data;
    if (message.type === "release") forgetShares(message.ids);
    else if (message.type === "stop") stopExecutors();
    else if (current?.id === message.id) current.abort();
  };
  // A nested pool's child processes are counted here, so the pool knows to let this thread
  // stop them before it is terminated (see `stop`).
  scope[Symbol.for("fanout.children")] = (/** @type {number} */ count) =>
    Atomics.store(header, Slot.CHILDREN, count);
  expose({
    /**
     * @param {number} id
     * @param {TaskSpec} spec
     */
    async prepare(id, spec) {
      if (!prepared.has(id)) {
        prepared.set(id, await loadTask(spec));
        saveCompileCache();
      }
    },
  }, message.control);
}

/**
 * Terminates the executors that tasks made in this thread (they register themselves under
 * `fanout.executors`), so their child processes are killed and reaped, then says so.
 */
async function stopExecutors() {
  /** @type {Set<{ terminate(): Promise<void> }> | undefined} */
  const executors = scope[Symbol.for("fanout.executors")];
  await Promise.allSettled([...(executors ?? [])].map((executor) => executor.terminate()));
  postEvent({ type: "stopped" });
}

if (parentPort !== null) parentPort.on("message", onPayload);
else scope.self.onmessage = (/** @type {MessageEvent} */ event) => onPayload(event.data);
post(/** @type {StartMessage} */ ({ type: "ready" }));
