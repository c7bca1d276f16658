/**
 * Threads on Deno: the global Web Worker. (Deno's `node:worker_threads` delivers typed arrays
 * in time proportional to their length, even shared ones, so it is avoided.)
 *
 * Quirks folded in here and in `_web.ts` (research/runtime-probe.md §8):
 * - an uncaught error in a worker kills the main process unless the `error` event is
 *   `preventDefault()`ed, and its ErrorEvent has `error: null`;
 * - `process.exit`, `Deno.exit` and `self.close()` in a worker raise no event at all: the
 *   worker entry reports them itself before exiting;
 * - `terminate()` raises no event and does not stop a worker busy in synchronous code.
 *
 * @module
 */

import type { ThreadFactory, ThreadHandle } from "./types.ts";
import { startWebThread, webHandle } from "./_web.ts";

/** Thread factory for Deno. */
export const denoThreads: ThreadFactory = {
  canStopBusyThread: false,
  create(url: URL, name: string): ThreadHandle {
    const thread = startWebThread(url, name);
    return webHandle(thread, () => {
      thread.worker.terminate();
      thread.untrack();
      return Promise.resolve();
    });
  },
};
