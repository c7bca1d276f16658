/**
 * Threads on Bun: the global Web Worker. Bun reports an uncaught error as an `error` event
 * whose message is a formatted code frame, then a `close` event with the exit code; `close`
 * also follows `process.exit` and `terminate()`.
 *
 * @module
 */

import type { ThreadFactory, ThreadHandle } from "./types.ts";
import { startWebThread, webHandle } from "./_web.ts";

/** How long `terminate()` waits for Bun's `close` event before taking the thread as gone. */
const CLOSE_GRACE_MS = 2000;

/** Thread factory for Bun. */
export const bunThreads: ThreadFactory = {
  canStopBusyThread: true,
  create(url: URL, name: string): ThreadHandle {
    const thread = startWebThread(url, name, 1);
    let closed = false;
    let onClosed: (() => void) | undefined;
    thread.worker.addEventListener("close", (event) => {
      closed = true;
      thread.untrack();
      onClosed?.();
      const code = (event as Event & { code?: number }).code;
      thread.exit.fire({ code, message: `the worker exited with code ${code}` });
    });
    return webHandle(thread, () => {
      if (closed) return Promise.resolve();
      return new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          thread.untrack();
          resolve();
        }, CLOSE_GRACE_MS);
        onClosed = () => {
          clearTimeout(timer);
          resolve();
        };
        thread.worker.terminate();
      });
    });
  },
};
