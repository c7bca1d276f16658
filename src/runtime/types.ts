/**
 * The one interface the pool sees for a thread, whatever the runtime. Each runtime file
 * (`deno.ts`, `bun.ts`, `node.ts`) implements it over that runtime's worker API, folding its
 * lifecycle quirks (see research/runtime-probe.md §8) into a single `onExit` call.
 *
 * @module
 */

/** The JavaScript runtimes fanout supports. */
export type RuntimeName = "deno" | "bun" | "node";

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
  /** Lets the thread keep the program alive again (after `unref`), where the runtime can. */
  ref?(): void;
  /** Lets the program end while the thread is idle, where the runtime can (not Deno). */
  unref?(): void;
}

/** How to start a thread. */
export interface ThreadOptions {
  /** V8 old-generation cap in MB; only Node's worker_threads have one. */
  maxMemoryMb?: number;
  /**
   * The thread's shared header (`Slot` in protocol.ts): on Deno, where a terminated thread
   * busy in synchronous code keeps running, `Slot.BUSY` tells when it is really gone.
   */
  state?: Int32Array;
}

/** Makes threads for one runtime. */
export interface ThreadFactory {
  /** Starts a thread running the module at `url`. */
  create(url: URL, name: string, options?: ThreadOptions): ThreadHandle;
  /**
   * Whether `terminate()` stops a thread that is busy in synchronous code. False on Deno,
   * where a terminated busy worker keeps running (and keeps the process alive) until it yields.
   */
  readonly canStopBusyThread: boolean;
}

/** How to start a child process. */
export interface SpawnOptions {
  /** The executable, then its arguments; passed as they are, never through a shell. */
  cmd: readonly string[];
  /** Working directory. */
  cwd?: string;
  /** Variables added to (or overriding) the parent's environment. */
  env?: Record<string, string>;
  /** `"pipe"` to write to the child's stdin; otherwise it reads nothing. */
  stdin?: "pipe" | "ignore";
  /** Where the child's stdout goes; `"pipe"` delivers it to `onStdout`. */
  stdout?: "pipe" | "inherit" | "ignore";
  /** Where the child's stderr goes; `"pipe"` delivers it to `onStderr`. */
  stderr?: "pipe" | "inherit" | "ignore";
  /** Receives stdout chunks when `stdout` is `"pipe"`. */
  onStdout?: (chunk: Uint8Array) => void;
  /** Receives stderr chunks when `stderr` is `"pipe"`. */
  onStderr?: (chunk: Uint8Array) => void;
  /**
   * Opens an IPC channel (Bun and Node only; the child uses `process.send`) with the
   * runtime's structured serialization, and receives the child's messages.
   */
  onMessage?: (message: unknown) => void;
}

/** How a child process ended. */
export interface ChildExit {
  /** Exit code; `null` when a signal ended it. */
  code: number | null;
  /** The signal that ended it, e.g. `"SIGKILL"`; `null` when it exited. */
  signal: string | null;
}

/** A started child process, the same on every runtime. */
export interface ChildHandle {
  /** The child's process id. */
  readonly pid: number;
  /** Settles once the child's exit status has been collected. Never rejects. */
  readonly exited: Promise<ChildExit>;
  /**
   * Settles after `exited` once the piped streams have ended too (bounded: a grandchild that
   * keeps a pipe open is not waited for more than a moment). Never rejects.
   */
  readonly closed: Promise<ChildExit>;
  /** Sends a signal; does nothing once the child has exited. */
  kill(signal?: "SIGTERM" | "SIGKILL"): void;
  /** Sends on the IPC channel; throws synchronously when the message cannot be serialized. */
  send(message: unknown): void;
  /** Writes to stdin (in order; writes are queued). */
  write(bytes: Uint8Array): void;
  /** Closes stdin. */
  end(): void;
  /** Lets the child (and its pipes and IPC channel) keep the program alive again. */
  ref(): void;
  /**
   * Lets the program end while the child is alive, where the runtime can: the child, its pipes
   * and its IPC channel stop counting. Reports whether it could.
   */
  unref(): boolean;
}
