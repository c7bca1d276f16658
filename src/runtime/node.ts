/**
 * Threads on Node: `node:worker_threads` (Node has no global Worker). The only runtime whose
 * worker hands over the real uncaught `Error` and an exit code.
 *
 * @module
 */

import { Worker } from "node:worker_threads";
import type { ThreadExit, ThreadFactory, ThreadHandle } from "./types.ts";
import { trackThread } from "./_live.ts";

/** Thread factory for Node. */
export const nodeThreads: ThreadFactory = {
  canStopBusyThread: true,
  create(url: URL, name: string): ThreadHandle {
    const worker = new Worker(url, { name });
    const untrack = trackThread();
    let error: unknown;
    let exitListener: ((exit: ThreadExit) => void) | undefined;
    let ended = false;
    const end = (exit: ThreadExit): void => {
      if (ended) return;
      ended = true;
      exitListener?.(exit);
    };
    worker.on("error", (e) => {
      error = e;
    });
    worker.on("exit", (code) => {
      untrack();
      end({
        code,
        error,
        message: error instanceof Error
          ? `${error.name}: ${error.message}`
          : `the worker exited with code ${code}`,
      });
    });
    worker.on(
      "messageerror",
      (e) => end({ error: e, message: `a message could not be read: ${e}` }),
    );
    return {
      postMessage: (message, transfer) =>
        worker.postMessage(message, transfer as unknown as ReadonlyArray<never>),
      onMessage: (listener) => {
        worker.on("message", listener);
      },
      onExit: (listener) => {
        exitListener = listener;
      },
      terminate: async () => {
        ended = true;
        await worker.terminate();
        untrack();
      },
    };
  },
};
