/**
 * The one interface the pool sees for a thread, whatever the runtime. Each runtime file
 * (`deno.ts`, `bun.ts`, `node.ts`) implements it over that runtime's worker API, folding its
 * lifecycle quirks (see research/runtime-probe.md §8) into a single `onExit` call.
 *
 * @module
 */

/** How a thread ended, as far as the runtime tells. */
export interface ThreadExit {
  /** Exit code, where the runtime reports one. */
  code?: number;
  /** The uncaught error that killed it, where the runtime hands one over. */
  error?: unknown;
  /** A description of what happened, for error messages. */
  message: string;
}

/** A worker thread running `src/worker/thread_entry.js`. */
export interface ThreadHandle {
  /** Posts a message; throws synchronously when a value cannot be cloned. */
  postMessage(message: unknown, transfer?: Transferable[]): void;
  /** Sets the one message listener. */
  onMessage(listener: (message: unknown) => void): void;
  /**
   * Sets the one exit listener: called at most once, when the thread dies on its own
   * (uncaught error, exit, failed start). Not called for `terminate()`.
   */
  onExit(listener: (exit: ThreadExit) => void): void;
  /** Stops the thread; resolves once the runtime says it is gone (or cannot say more). */
  terminate(): Promise<void>;
}

/** Makes threads for one runtime. */
export interface ThreadFactory {
  /** Starts a thread running the module at `url`. */
  create(url: URL, name: string): ThreadHandle;
  /**
   * Whether `terminate()` stops a thread that is busy in synchronous code. False on Deno,
   * where a terminated busy worker keeps running (and keeps the process alive) until it yields.
   */
  readonly canStopBusyThread: boolean;
}
