/**
 * Threads on Deno: the global Web Worker. (Deno's `node:worker_threads` delivers typed arrays
 * in time proportional to their length, even shared ones, so it is avoided.)
 *
 * Quirks folded in here (research/runtime-probe.md §8):
 * - an uncaught error in a worker kills the main process unless the `error` event is
 *   `preventDefault()`ed, and its ErrorEvent has `error: null`;
 * - `process.exit`, `Deno.exit` and `self.close()` in a worker raise no event at all: the
 *   worker entry reports them itself before exiting;
 * - `terminate()` raises no event and does not stop a worker busy in synchronous code.
 *
 * @module
 */

import type { ThreadExit, ThreadFactory, ThreadHandle } from "./types.ts";
import { trackThread } from "./_live.ts";

/** Thread factory for Deno. */
export const denoThreads: ThreadFactory = {
  canStopBusyThread: false,
  create(url: URL, name: string): ThreadHandle {
    const worker = new Worker(url, { type: "module", name });
    const untrack = trackThread();
    let exitListener: ((exit: ThreadExit) => void) | undefined;
    let ended = false;
    const end = (exit: ThreadExit): void => {
      if (ended) return;
      ended = true;
      exitListener?.(exit);
    };
    worker.addEventListener("error", (event) => {
      event.preventDefault();
      end({ error: event.error ?? undefined, message: event.message || "the worker failed" });
    });
    worker.addEventListener("messageerror", () => {
      end({ message: "a message from the worker could not be read" });
    });
    return {
      postMessage: (message, transfer) => worker.postMessage(message, transfer ?? []),
      onMessage: (listener) => {
        worker.addEventListener("message", (event) => listener(event.data));
      },
      onExit: (listener) => {
        exitListener = listener;
      },
      terminate: () => {
        ended = true;
        worker.terminate();
        untrack();
        return Promise.resolve();
      },
    };
  },
};
