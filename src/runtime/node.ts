/**
 * Threads on Node: `node:worker_threads` (Node has no global Worker). The only runtime whose
 * worker hands over the real uncaught `Error` and an exit code.
 *
 * @module
 */

import { Worker } from "node:worker_threads";
import type { ThreadFactory, ThreadHandle } from "./types.ts";
import { ExitOnce } from "./_exit.ts";
import { trackThread } from "./_live.ts";

/** Thread factory for Node. */
export const nodeThreads: ThreadFactory = {
  canStopBusyThread: true,
  create(url: URL, name: string): ThreadHandle {
    const worker = new Worker(url, { name });
    const untrack = trackThread();
    const exit = new ExitOnce();
    let error: unknown;
    worker.on("error", (e) => {
      error = e;
    });
    worker.on("exit", (code) => {
      untrack();
      exit.fire({
        code,
        error,
        message: error instanceof Error
          ? `${error.name}: ${error.message}`
          : `the worker exited with code ${code}`,
      });
    });
    worker.on(
      "messageerror",
      (e) => exit.fire({ error: e, message: `a message could not be read: ${e}` }),
    );
    return {
      postMessage: (message, transfer) =>
        worker.postMessage(message, transfer as unknown as ReadonlyArray<never>),
      onMessage: (listener) => {
        worker.on("message", listener);
      },
      onExit: (listener) => exit.listen(listener),
      terminate: async () => {
        exit.silence();
        await worker.terminate();
        untrack();
      },
    };
  },
};
