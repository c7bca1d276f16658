/**
 * Containing a task that runs on the calling thread (the serial strategy, and `"auto"` while it
 * probes or chooses serial), so that what would end a worker does not end the program:
 *
 * - `process.exit()` / `Deno.exit()` called by the task is refused: it throws inside the task,
 *   and the task fails with `WorkerCrashedError` carrying the exit code;
 * - an uncaught error or an unhandled rejection while the task runs fails it the same way.
 *
 * A task is told apart from the rest of the program by an `AsyncLocalStorage` store, which
 * follows its awaits, timers and callbacks on every runtime. The store is not always visible
 * in the runtime's `uncaughtException` / `unhandledRejection` handlers (Deno loses it for a
 * timer's throw, Bun for a microtask's), so there an error is pinned on the task when it is the
 * only one running here. What cannot be pinned on a task goes on as if fanout were not there:
 * to the program's own listeners, or, when it has none, it ends the program as it would have.
 *
 * What cannot be contained: a crash after the task settled (a callback it left behind), a
 * native crash, `process.abort()`, a signal, running out of memory. Threads and processes
 * isolate those.
 *
 * The hooks are installed while a task runs here and removed soon after the last one ends.
 *
 * @module
 */

import { AsyncLocalStorage } from "node:async_hooks";
import process from "node:process";
import { WorkerCrashedError } from "../errors.ts";

/** The tasks of one chunk running on the calling thread, one after another. */
export class Watch {
  /** The index (in its call) of the task running now. */
  index: number;
  /** The crash that failed it, once one did. */
  crash: WorkerCrashedError | undefined;
  /** Called once, when a crash is pinned on the task after it returned a promise. */
  onCrash: ((error: WorkerCrashedError) => void) | undefined;

  constructor(index: number) {
    this.index = index;
  }

  /** Records the crash (the first one counts) and tells whoever awaits the task. */
  fail(error: WorkerCrashedError): void {
    if (this.crash !== undefined) return;
    this.crash = error;
    this.onCrash?.(error);
  }
}

/** Thrown inside a task by the refused `process.exit()`, so no code after it runs. */
class ExitRefused extends Error {
  static {
    this.prototype.name = "ExitRefused";
  }
}

type Listener = (...args: unknown[]) => void;
type Exit = (code?: number) => never;

/** `process` as an emitter of the two events, whatever its typings say of their listeners. */
const emitter = process as unknown as {
  listeners(event: string): Listener[];
  removeListener(event: string, listener: Listener): void;
  on(event: string, listener: Listener): void;
};

const storage = new AsyncLocalStorage<Watch>();
const running = new Set<Watch>();
let hooks: Hooks | undefined;
let removal: ReturnType<typeof setTimeout> | undefined;

/**
 * Runs `fn`, a chunk's work, as `watch`: what its tasks start (awaits, timers, callbacks)
 * carries the watch, and errors can be pinned on it until `release(watch)`. One context per
 * chunk, not per task: entering one per task made a map of trivial items ~10× slower on Node.
 */
export function contained<T>(watch: Watch, fn: () => T): T {
  running.add(watch);
  hooks ??= new Hooks();
  return storage.run(watch, fn);
}

/** The chunk settled: errors are no longer pinned on it. */
export function release(watch: Watch): void {
  running.delete(watch);
  if (running.size === 0 && hooks !== undefined && removal === undefined) scheduleRemoval();
}

/**
 * Removes the hooks once a turn of the event loop passed with no task running here: not at
 * once, or calls made back to back (awaited submits) would install and remove them every
 * time. Meanwhile nothing is pinned on a task (none runs), so the hooks change nothing.
 */
function scheduleRemoval(): void {
  removal = setTimeout(() => {
    removal = undefined;
    if (running.size > 0) return;
    hooks?.remove();
    hooks = undefined;
  }, 0);
  unrefTimer(removal);
}

/** Lets a timer not keep the program alive, on every runtime. */
function unrefTimer(timer: ReturnType<typeof setTimeout>): void {
  if (typeof timer === "number") {
    (globalThis as { Deno?: { unrefTimer(id: number): void } }).Deno?.unrefTimer(timer);
  } else (timer as { unref?: () => void }).unref?.();
}

/** The running task an error belongs to, if it can be told. */
function owner(): Watch | undefined {
  const watch = storage.getStore();
  if (watch !== undefined && running.has(watch)) return watch;
  if (running.size === 1) return running.values().next().value;
  return undefined;
}

/** What a crash on the calling thread is reported as. */
function crashError(watch: Watch, what: string, info: { exitCode?: number; cause?: unknown }) {
  return new WorkerCrashedError(
    `Task ${watch.index} crashed on the calling thread: ${what}; fanout contained it, since ` +
      `here it would have ended the whole program`,
    { index: watch.index, ...info },
  );
}

const EVENTS = ["uncaughtException", "unhandledRejection"] as const;

/** The installed hooks: exit wrappers and process listeners, and what they replaced. */
class Hooks {
  readonly #exit: Exit;
  readonly #denoExit: Exit | undefined;
  readonly #saved = new Map<string, Listener[]>();
  readonly #listeners: Record<(typeof EVENTS)[number], Listener>;

  constructor() {
    const deno = (globalThis as { Deno?: { exit: Exit } }).Deno;
    this.#exit = process.exit;
    process.exit = this.#guard(this.#exit) as typeof process.exit;
    if (deno !== undefined) {
      this.#denoExit = deno.exit;
      try {
        deno.exit = this.#guard(deno.exit);
      } catch {
        // Not writable on this Deno: its exits are not contained.
      }
    }
    this.#listeners = {
      uncaughtException: (error) => this.#uncaught("uncaughtException", "an uncaught error", error),
      unhandledRejection: (reason) =>
        this.#uncaught("unhandledRejection", "an unhandled rejection", reason),
    };
    for (const event of EVENTS) {
      // The program's own listeners are set aside, so that they do not see what is contained,
      // and called for what is not.
      const saved = emitter.listeners(event);
      this.#saved.set(event, saved);
      for (const listener of saved) emitter.removeListener(event, listener);
      emitter.on(event, this.#listeners[event]);
    }
  }

  #guard(exit: Exit): Exit {
    return ((code?: number) => {
      const watch = storage.getStore();
      if (watch === undefined || !running.has(watch)) return exit(code);
      const exitCode = typeof code === "number" ? code : 0;
      watch.fail(crashError(watch, `it called exit(${exitCode})`, { exitCode }));
      throw new ExitRefused(
        `exit(${exitCode}) was refused: this task runs on the calling thread, where it would ` +
          `end the whole program`,
      );
    }) as Exit;
  }

  #uncaught(event: (typeof EVENTS)[number], what: string, error: unknown): void {
    if (error instanceof ExitRefused) return; // Already recorded by the exit guard.
    const watch = owner();
    if (watch !== undefined) {
      const message = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
      watch.fail(crashError(watch, `${what} (${message})`, { cause: error }));
      return;
    }
    const saved = this.#saved.get(event) ?? [];
    if (saved.length > 0) {
      for (const listener of saved) listener.call(process, error);
      return;
    }
    // Nobody else listens: end the program the way the runtime would have.
    this.remove();
    hooks = undefined;
    process.nextTick(() => {
      throw error;
    });
  }

  remove(): void {
    if (process.exit !== this.#exit) process.exit = this.#exit as typeof process.exit;
    const deno = (globalThis as { Deno?: { exit: Exit } }).Deno;
    if (deno !== undefined && this.#denoExit !== undefined) {
      try {
        deno.exit = this.#denoExit;
      } catch {
        // Was never replaced.
      }
    }
    for (const event of EVENTS) {
      emitter.removeListener(event, this.#listeners[event]);
      for (const listener of this.#saved.get(event) ?? []) emitter.on(event, listener);
    }
  }
}
