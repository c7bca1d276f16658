/**
 * The global Web Worker as a `ThreadHandle`, shared by Deno and Bun. They differ only in how
 * a thread's end shows (Bun has a `close` event, Deno nothing), which each adapter adds.
 *
 * @module
 */

import type { ThreadHandle } from "./types.ts";
import { ExitOnce } from "./_exit.ts";
import { trackThread } from "./_live.ts";

/** A started Web Worker and what its adapter needs to finish wiring it. */
export interface WebThread {
  readonly worker: Worker;
  readonly exit: ExitOnce;
  /** Records that the thread is gone (for `liveThreadCount()`). */
  readonly untrack: () => void;
}

/**
 * Starts a module Web Worker. An uncaught error in it is `preventDefault()`ed (on Deno it
 * would otherwise kill the main process) and reported as the thread's end.
 *
 * @param url The worker module.
 * @param name The worker's name (Deno shows it in errors; Bun ignores it).
 * @param errorCode Exit code to report for an uncaught error, where the runtime has one.
 */
export function startWebThread(url: URL, name: string, errorCode?: number): WebThread {
  const worker = new Worker(url, { type: "module", name });
  const exit = new ExitOnce();
  worker.addEventListener("error", (event) => {
    event.preventDefault();
    exit.fire({
      code: errorCode,
      error: event.error ?? undefined,
      message: event.message || "the worker failed",
    });
  });
  worker.addEventListener("messageerror", () => {
    exit.fire({ message: "a message from the worker could not be read" });
  });
  return { worker, exit, untrack: trackThread() };
}

/** The handle over a started Web Worker; `terminate` is the runtime's own way to stop it. */
export function webHandle(thread: WebThread, terminate: () => Promise<void>): ThreadHandle {
  const { worker, exit } = thread;
  return {
    // Without a transfer list, post the value alone: passing an empty list is slower.
    postMessage: (message, transfer) =>
      transfer === undefined ? worker.postMessage(message) : worker.postMessage(message, transfer),
    onMessage: (listener) => {
      worker.onmessage = (event) => listener(event.data);
    },
    onExit: (listener) => exit.listen(listener),
    terminate: () => {
      exit.silence();
      return terminate();
    },
  };
}
