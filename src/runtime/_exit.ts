/**
 * The exit listener every adapter keeps: it fires at most once, and never after the pool
 * asked for the thread to stop (`terminate()` is not a crash).
 *
 * @module
 */

import type { ThreadExit } from "./types.ts";

/** A one-shot exit notification. */
export class ExitOnce {
  #listener: ((exit: ThreadExit) => void) | undefined;
  #ended = false;

  /** Sets the listener. */
  listen(listener: (exit: ThreadExit) => void): void {
    this.#listener = listener;
  }

  /** Reports the thread's end, unless it was already reported or silenced. */
  fire(exit: ThreadExit): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#listener?.(exit);
  }

  /** No report from now on: the thread is being stopped on purpose. */
  silence(): void {
    this.#ended = true;
  }
}
