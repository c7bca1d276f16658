// @ts-check
/**
 * The program every pool thread runs (plain JavaScript: see run_task.js for why).
 *
 * It speaks two channels: its own port for the hot path (`run` → `done` | `fail`), and a
 * comlink control port, handed over in `init`, for preparing tasks. Before any of that it
 * reports what would otherwise die silently: on Deno a worker that calls `process.exit`,
 * `Deno.exit` or `self.close()` raises no event in the parent, so those are wrapped to say
 * `exit` first; an uncaught error is sent as `fatal` with its real stack (the parent only
 * gets `error: null` on Deno and a formatted code frame on Bun).
 *
 * @module
 */

/** @import { FromWorker, ToWorker } from "../protocol.ts" */
/** @import { TaskFn } from "./run_task.js" */

import { expose } from "comlink";
import { findUncloneable, loadTask, serializeError } from "./run_task.js";

/** Slots of the shared state array (kept in step with protocol.ts). */
const STATE_CANCELLED = 0;
const STATE_RUNNING_INDEX = 1;

const scope = /** @type {any} */ (globalThis);
// Web workers (Deno, Bun) have `self.postMessage`; Node's worker_threads use `parentPort`.
// Bun also sets `parentPort` inside web workers, so `self` is checked first.
const web = typeof scope.self === "object" && typeof scope.self.postMessage === "function";
const parentPort = web ? null : (await import("node:worker_threads")).parentPort;
if (!web && parentPort === null) throw new Error("thread_entry.js must run in a worker");

/** @type {(message: FromWorker) => void} */
const post = web
  ? (message) => scope.self.postMessage(message)
  : (message) => /** @type {NonNullable<typeof parentPort>} */ (parentPort).postMessage(message);

// Say `exit` before exiting, where the parent would otherwise hear nothing.
/** @param {unknown} code */
const reportExit = (code) => {
  try {
    post({ type: "exit", code: typeof code === "number" ? code : 0 });
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
if (web && typeof scope.self.close === "function") {
  const close = scope.self.close.bind(scope.self);
  scope.self.close = () => {
    reportExit(0);
    close();
  };
}
if (web) {
  scope.self.addEventListener("error", (/** @type {ErrorEvent} */ event) => {
    post({ type: "fatal", error: serializeError(event.error ?? event.message) });
  });
  scope.self.addEventListener(
    "unhandledrejection",
    (/** @type {PromiseRejectionEvent} */ event) => {
      post({ type: "fatal", error: serializeError(event.reason) });
    },
  );
}

/** @type {Map<number, TaskFn>} */
const prepared = new Map();
/** @type {Int32Array} */
let state = new Int32Array(2);
/** @type {{ id: number, controller: AbortController } | undefined} */
let current;
/** @type {Extract<ToWorker, { type: "run" }>[]} */
const backlog = [];

const abortedGetter = /** @type {() => boolean} */ (
  /** @type {PropertyDescriptor} */ (Object.getOwnPropertyDescriptor(
    AbortSignal.prototype,
    "aborted",
  ))
    .get
);

/**
 * A signal that also reads the shared cancel slot, so `signal.aborted` flips for a chunk the
 * parent cancelled even while a synchronous task never lets the cancel message in.
 *
 * @param {AbortController} controller
 * @param {number} id
 * @returns {AbortSignal}
 */
function chunkSignal(controller, id) {
  const signal = controller.signal;
  const aborted = () => {
    if (!abortedGetter.call(signal) && Atomics.load(state, STATE_CANCELLED) === id) {
      controller.abort(new DOMException("The task was cancelled", "AbortError"));
    }
    return abortedGetter.call(signal);
  };
  Object.defineProperty(signal, "aborted", { get: aborted });
  Object.defineProperty(signal, "throwIfAborted", {
    value: () => {
      if (aborted()) throw signal.reason;
    },
  });
  return signal;
}

/**
 * Runs the items of one chunk in order. Synchronous tasks run in a plain loop; the loop only
 * goes through a promise when a task returns one.
 *
 * @param {Extract<ToWorker, { type: "run" }>} message
 */
function runChunk(message) {
  const { id, base, items } = message;
  const fn = /** @type {TaskFn} */ (prepared.get(message.task));
  const controller = new AbortController();
  const signal = chunkSignal(controller, id);
  current = { id, controller };
  const values = new Array(items.length);
  const start = performance.now();
  let k = 0;

  const finish = (/** @type {FromWorker} */ reply) => {
    current = undefined;
    post(reply);
    const next = backlog.shift();
    if (next !== undefined) runChunk(next);
  };
  const fail = (/** @type {unknown} */ error) =>
    finish({ type: "fail", id, index: base + k, error: serializeError(error) });

  const step = () => {
    for (; k < items.length; k++) {
      if (Atomics.load(state, STATE_CANCELLED) === id) return finish({ type: "cancelled", id });
      Atomics.store(state, STATE_RUNNING_INDEX, base + k);
      let value;
      try {
        value = fn(items[k], { index: base + k, signal });
      } catch (error) {
        return fail(error);
      }
      if (
        value instanceof Promise || (typeof value === "object" && value !== null &&
          typeof (/** @type {{ then?: unknown }} */ (value)).then === "function")
      ) {
        Promise.resolve(value).then((v) => {
          values[k++] = v;
          step();
        }, fail);
        return;
      }
      values[k] = value;
    }
    const ms = performance.now() - start;
    try {
      current = undefined;
      post({ type: "done", id, values, ms });
    } catch (error) {
      const bad = values.findIndex((v) => findUncloneable(v, "result") !== undefined);
      k = Math.max(bad, 0);
      const found = findUncloneable(values[k], "result");
      finish({
        type: "fail",
        id,
        index: base + k,
        error: serializeError(error),
        clone: { path: found?.path ?? "result", what: found?.what ?? "a value" },
      });
      return;
    }
    const next = backlog.shift();
    if (next !== undefined) runChunk(next);
  };
  step();
}

/** @param {ToWorker} message */
function onMessage(message) {
  switch (message.type) {
    case "run":
      if (current === undefined) runChunk(message);
      else backlog.push(message);
      break;
    case "cancel":
      if (current?.id === message.id) {
        current.controller.abort(new DOMException("The task was cancelled", "AbortError"));
      }
      break;
    case "init":
      state = new Int32Array(message.state);
      expose({
        /**
         * @param {number} id
         * @param {import("../protocol.ts").TaskSpec} spec
         */
        async prepare(id, spec) {
          if (!prepared.has(id)) prepared.set(id, await loadTask(spec));
        },
      }, message.control);
      break;
  }
}

if (web) scope.self.onmessage = (/** @type {MessageEvent} */ event) => onMessage(event.data);
/** @type {NonNullable<typeof parentPort>} */ else parentPort.on("message", onMessage);
post({ type: "ready" });
