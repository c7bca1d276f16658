/**
 * Threads on Bun: the global Web Worker. Bun reports an uncaught error as an `error` event
 * whose message is a formatted code frame, then a `close` event with the exit code; `close`
 * also follows `process.exit` and `terminate()`.
 *
 * @module
 */

import type { ThreadExit, ThreadFactory, ThreadHandle } from "./types.ts";
import { trackThread } from "./_live.ts";

/** How long `terminate()` waits for Bun's `close` event before taking the thread as gone. */
const CLOSE_GRACE_MS = 2000;

/** Thread factory for Bun. */
export const bunThreads: ThreadFactory = {
  canStopBusyThread: true,
  create(url: URL, name: string): ThreadHandle {
    const worker = new Worker(url, { type: "module", name });
    const untrack = trackThread();
    let exitListener: ((exit: ThreadExit) => void) | undefined;
    let ended = false;
    let closed = false;
    let errorMessage: string | undefined;
    let onClosed: (() => void) | undefined;
    const end = (exit: ThreadExit): void => {
      if (ended) return;
      ended = true;
      exitListener?.(exit);
    };
    worker.addEventListener("error", (event) => {
      event.preventDefault();
      errorMessage = event.message || "the worker failed";
      end({ code: 1, message: errorMessage });
    });
    worker.addEventListener("messageerror", () => {
      end({ message: "a message from the worker could not be read" });
    });
    worker.addEventListener("close", (event) => {
      closed = true;
      untrack();
      onClosed?.();
      const code = (event as Event & { code?: number }).code;
      end({ code, message: errorMessage ?? `the worker exited with code ${code}` });
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
        if (closed) return Promise.resolve();
        return new Promise<void>((resolve) => {
          const timer = setTimeout(() => {
            untrack();
            resolve();
          }, CLOSE_GRACE_MS);
          onClosed = () => {
            clearTimeout(timer);
            resolve();
          };
          worker.terminate();
        });
      },
    };
  },
};
