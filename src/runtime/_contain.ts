/**
 * Containing a task that runs on the calling thread (the serial strategy, and `"auto"` while it
 * probes or chooses serial), so that what would end a worker does not end the program:
 *
 * - `process.exit()` / `Deno.exit()` called by the task is refused: it throws inside the task,
 *   and the task fails with `WorkerCrashedError` carrying the exit code;
 * - an uncaught error or an unhandled rejection while the task runs fails it the same way; one
 *   noticed just after its chunk settled (an unhandled rejection is reported once the microtasks
 *   have run) cannot fail it any more, and is reported as a warning instead.
 *
 * A task is told apart from the rest of the program by an `AsyncLocalStorage` store, which
 * follows its awaits, timers and callbacks on every runtime. Node shows the store in its error
 * events too; Deno loses it for a timer's throw and Bun for a microtask's throw and for a
 * rejection, and there an error is pinned on the task only when it is the only one on the
 * calling thread. Everything else is the program's own and goes on as if fanout were not there.
 *
 * How an error is caught before the program's own handling differs per runtime:
 *
 * - Node: `process.emit` is wrapped, and a contained error is not emitted (Node then counts it
 *   as handled); everything else is emitted as it would be, with Node's own defaults
 *   (`--unhandled-rejections` included).
 * - Deno: listeners for the global `error` and `unhandledrejection` events call
 *   `preventDefault()` on a contained error. Global listeners the program added first still
 *   see it; its `process` listeners do not.
 * - Bun: a `process` listener put first. Bun calls listeners directly, so the program's own
 *   `process` listeners see a contained error too. When only fanout listens, an error that is
 *   not a task's is raised again, as Bun would have raised it.
 *
 * What cannot be contained: a crash well after the task settled (a callback it left behind), a
 * native crash, `process.abort()`, a signal, running out of memory. Threads and processes
 * isolate those.
 *
 * The hooks are installed while a chunk runs here and removed soon after the last one ended.
 * Their state is shared by every copy of fanout loaded in the program (a dependency's and the
 * application's), so they never stack.
 *
 * @module
 */

import { AsyncLocalStorage } from "node:async_hooks";
import process from "node:process";
import { setImmediate } from "node:timers";
import { WorkerCrashedError } from "../errors.ts";

/** The tasks of one chunk running on the calling thread, one after another. */
export class Watch {
  /** The index (in its call) of the chunk's first task. */
  readonly base: number;
  /** The index (in its call) of the task running now. */
  index: number;
  /** The crash that failed it, once one did. */
  crash: WorkerCrashedError | undefined;
  /** Called once, when a crash is pinned on the task after it returned a promise. */
  onCrash: ((error: WorkerCrashedError) => void) | undefined;

  constructor(base: number) {
    this.base = base;
    this.index = base;
  }

  /** The chunk's tasks so far, for messages: `task 3`, or `one of tasks 0–3`. */
  tasks(): string {
    return this.base === this.index
      ? `task ${this.index}`
      : `one of tasks ${this.base}–${this.index}`;
  }

  /**
   * Records the crash (the first one counts) and tells whoever awaits the task. The error is
   * made here, by the copy of fanout that made the watch, so that its class is the caller's.
   */
  fail(what: string, info: { exitCode?: number; cause?: unknown }): void {
    if (this.crash !== undefined) return;
    this.crash = new WorkerCrashedError(
      `Task ${this.index} crashed on the calling thread: ${what}; fanout contained it, since ` +
        `here it would have ended the whole program`,
      { index: this.index, ...info },
    );
    this.onCrash?.(this.crash);
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
type Emit = (event: string | symbol, ...args: unknown[]) => boolean;
type Kind = "uncaughtException" | "unhandledRejection";

/** What every copy of this module in the program shares. */
interface State {
  readonly storage: AsyncLocalStorage<Watch>;
  /** Chunks running on the calling thread. */
  readonly running: Set<Watch>;
  /** Chunks that settled in this turn of the event loop: a late rejection is still theirs. */
  readonly settling: Set<Watch>;
  /** Whether the immediate that ends the settling chunks' grace is pending. */
  grace: boolean;
  hooks: Hooks | undefined;
  removal: ReturnType<typeof setTimeout> | undefined;
}

// Versioned: copies of different fanout versions must not share what they may not agree on.
const STATE = Symbol.for("fanout.contain.v2");
const state: State = ((globalThis as Record<symbol, State | undefined>)[STATE] ??= {
  storage: new AsyncLocalStorage<Watch>(),
  running: new Set(),
  settling: new Set(),
  grace: false,
  hooks: undefined,
  removal: undefined,
});

const runtime = (globalThis as { Deno?: unknown }).Deno !== undefined
  ? "deno"
  : (globalThis as { Bun?: unknown }).Bun !== undefined
  ? "bun"
  : "node";

/**
 * Runs `fn`, a chunk's work, as `watch`: what its tasks start (awaits, timers, callbacks)
 * carries the watch, and errors can be pinned on it until `release(watch)`. One context per
 * chunk, not per task: entering one per task made a map of trivial items ~10× slower on Node.
 */
export function contained<T>(watch: Watch, fn: () => T): T {
  state.running.add(watch);
  state.hooks ??= new Hooks();
  return state.storage.run(watch, fn);
}

/**
 * The chunk settled. Until the next turn of the event loop an error can still be pinned on it
 * (an unhandled rejection is reported only after the microtasks ran), as a late one.
 */
export function release(watch: Watch): void {
  state.running.delete(watch);
  state.settling.add(watch);
  if (state.grace) return;
  // One immediate for every chunk that settles before it fires: a rejection is reported at the
  // end of the turn it was made in, before any immediate, so all of them have had theirs.
  state.grace = true;
  setImmediate(() => {
    state.grace = false;
    state.settling.clear();
    if (state.running.size === 0) scheduleRemoval();
  });
}

/**
 * Removes the hooks once a turn of the event loop passed with no chunk here: not at once, or
 * calls made back to back (awaited submits) would install and remove them every time.
 */
function scheduleRemoval(): void {
  if (state.hooks === undefined || state.removal !== undefined) return;
  state.removal = setTimeout(() => {
    state.removal = undefined;
    if (state.running.size > 0 || state.settling.size > 0) return;
    state.hooks?.remove();
    state.hooks = undefined;
  }, 0);
  unrefTimer(state.removal);
}

/** Lets a timer not keep the program alive, on every runtime. */
export function unrefTimer(timer: ReturnType<typeof setTimeout> | undefined): void {
  if (timer === undefined) return;
  if (typeof timer === "number") {
    (globalThis as { Deno?: { unrefTimer(id: number): void } }).Deno?.unrefTimer(timer);
  } else (timer as { unref?: () => void }).unref?.();
}

/** Whether this runtime can lose the task's store by the time it reports `kind`. */
function losesStore(kind: Kind): boolean {
  return runtime === "bun" || (runtime === "deno" && kind === "uncaughtException");
}

/**
 * The chunk an error belongs to, and whether it already settled; `undefined` when it is the
 * program's own.
 */
function owner(kind: Kind): { watch: Watch; late: boolean; guessed?: boolean } | undefined {
  const watch = state.storage.getStore();
  if (watch !== undefined) {
    if (state.running.has(watch)) return { watch, late: false };
    if (state.settling.has(watch)) return { watch, late: true };
  }
  // Node's store is right: no store, or one of a chunk long settled (a callback it left
  // behind), is not a running task's. Elsewhere it can be missing, or stale (Deno runs timer
  // callbacks' errors in the context of the first timer's creator).
  if (!losesStore(kind)) return undefined;
  // Without the context, a guess that holds when one chunk is all there is: the running one
  // (chunks that settled a moment ago are past), else the one that just settled.
  const { running, settling } = state;
  if (running.size === 1) return { watch: running.values().next().value!, late: false };
  // Only chunks that have just settled (a probe's one-item chunks, say): one of them left it.
  if (running.size === 0 && settling.size > 0) {
    return { watch: [...settling].at(-1)!, late: true, guessed: settling.size > 1 };
  }
  return undefined;
}

/**
 * Contains `error` if it is a task's: fails the task, or, for a chunk that already settled,
 * warns. Returns whether it was contained.
 */
function contain(kind: Kind, error: unknown): boolean {
  if (error instanceof ExitRefused) return true; // Already recorded by the exit guard.
  const found = owner(kind);
  if (found === undefined) return false;
  const what = kind === "uncaughtException" ? "an uncaught error" : "an unhandled rejection";
  const message = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  if (!found.late) {
    found.watch.fail(`${what} (${message})`, { cause: error });
  } else {
    const who = found.guessed ? "a task" : found.watch.tasks();
    process.emitWarning(
      `fanout: ${who} ran on the calling thread and had already returned ` +
        `when it left ${what} (${message}); fanout contained it, but could no longer fail the ` +
        `task. Run such tasks on threads or processes to isolate them`,
      { code: "FANOUT_CONTAINED_LATE" },
    );
  }
  return true;
}

/** The installed hooks, and what each replaced. */
class Hooks {
  readonly #exit: Exit;
  readonly #exitGuard: Exit;
  readonly #denoExit: Exit | undefined;
  readonly #denoExitGuard: Exit | undefined;
  readonly #emit: Emit | undefined;
  readonly #emitGuard: Emit | undefined;
  readonly #removers: (() => void)[] = [];

  constructor() {
    const deno = (globalThis as { Deno?: { exit: Exit } }).Deno;
    this.#exit = process.exit;
    this.#exitGuard = guard(this.#exit);
    process.exit = this.#exitGuard as typeof process.exit;
    if (deno !== undefined) {
      this.#denoExit = deno.exit;
      this.#denoExitGuard = guard(deno.exit);
      try {
        deno.exit = this.#denoExitGuard;
      } catch {
        // Not writable on this Deno: its exits are not contained.
      }
    }
    if (runtime === "node") {
      // Node decides from emit's answer whether an error was handled: a contained one is
      // never emitted, the rest goes on with Node's own defaults.
      const emit = (this.#emit = process.emit as unknown as Emit);
      this.#emitGuard = function (this: unknown, event, ...args) {
        if (
          (event === "uncaughtException" || event === "unhandledRejection") &&
          contain(event, args[0])
        ) {
          return true;
        }
        return emit.call(this, event, ...args);
      };
      (process as unknown as { emit: Emit }).emit = this.#emitGuard;
    } else if (runtime === "deno") {
      // Deno dispatches the global events first; a prevented one goes no further.
      const onError = (event: Event): void => {
        const error = (event as ErrorEvent).error;
        if (contain("uncaughtException", error)) event.preventDefault();
      };
      const onRejection = (event: Event): void => {
        const reason = (event as PromiseRejectionEvent).reason;
        if (contain("unhandledRejection", reason)) event.preventDefault();
      };
      globalThis.addEventListener("error", onError);
      globalThis.addEventListener("unhandledrejection", onRejection);
      this.#removers.push(() => {
        globalThis.removeEventListener("error", onError);
        globalThis.removeEventListener("unhandledrejection", onRejection);
      });
    } else {
      const emitter = process as unknown as {
        prependListener(event: Kind, listener: Listener): void;
        removeListener(event: Kind, listener: Listener): void;
        listenerCount(event: Kind): number;
      };
      for (const kind of ["uncaughtException", "unhandledRejection"] as const) {
        const listener: Listener = (error) => {
          if (contain(kind, error) || emitter.listenerCount(kind) > 1) return;
          // Only fanout listened: raise it again, as Bun would have without this listener.
          this.remove();
          if (state.hooks === this) state.hooks = undefined;
          if (kind === "uncaughtException") {
            process.nextTick(() => {
              throw error;
            });
          } else Promise.reject(error);
        };
        emitter.prependListener(kind, listener);
        this.#removers.push(() => emitter.removeListener(kind, listener));
      }
    }
  }

  remove(): void {
    // Only what is still ours: a wrapper the program installed since stays in place.
    if (process.exit === this.#exitGuard) process.exit = this.#exit as typeof process.exit;
    const deno = (globalThis as { Deno?: { exit: Exit } }).Deno;
    if (deno !== undefined && deno.exit === this.#denoExitGuard) {
      try {
        deno.exit = this.#denoExit!;
      } catch {
        // Was never replaced.
      }
    }
    const target = process as unknown as { emit: Emit };
    if (this.#emitGuard !== undefined && target.emit === this.#emitGuard) target.emit = this.#emit!;
    for (const remove of this.#removers.splice(0)) remove();
  }
}

/** An exit function that refuses a call made by a task running on the calling thread. */
function guard(exit: Exit): Exit {
  return ((code?: number) => {
    const watch = state.storage.getStore();
    const running = watch !== undefined && state.running.has(watch);
    if (watch === undefined || (!running && !state.settling.has(watch))) return exit(code);
    const exitCode = typeof code === "number" ? code : 0;
    if (running) watch.fail(`it called exit(${exitCode})`, { exitCode });
    else {
      process.emitWarning(
        `fanout: ${watch.tasks()} ran on the calling thread and had already returned when ` +
          `it called exit(${exitCode}); fanout refused it`,
        { code: "FANOUT_CONTAINED_LATE" },
      );
    }
    throw new ExitRefused(
      `exit(${exitCode}) was refused: this task runs on the calling thread, where it would ` +
        `end the whole program`,
    );
  }) as Exit;
}
