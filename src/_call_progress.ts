/**
 * A `map` or `imap` call's progress, for its `onProgress`: counted as chunks come back and
 * reported at most every {@linkcode PROGRESS_INTERVAL_MS}, then once more at the end.
 *
 * Results come back a chunk at a time, so counting per chunk costs one addition and one clock
 * read per chunk, never per item; a map that ends within the interval makes just the final call.
 *
 * @module
 */

import process from "node:process";
import type { Progress } from "./progress.ts";
import { estimateEta } from "./progress.ts";

/**
 * Least time between two periodic `onProgress` calls, in ms: about what a terminal redraw
 * wants (`progressReporter` redraws at most this often too), and rare enough to cost nothing
 * next to the work.
 */
export const PROGRESS_INTERVAL_MS = 100;

/** One call's counts, and when to report them next. */
export class CallProgress {
  readonly #onProgress: (progress: Progress) => void;
  readonly #onRejected: (error: unknown) => void;
  readonly #total: number | undefined;
  readonly #now: () => number;
  readonly #start: number;
  #dueAt: number;
  #done = 0;
  #failed = 0;
  /** Whether the final call was made, or `onProgress` threw: no call comes after either. */
  #over = false;

  /**
   * @param onProgress The caller's callback.
   * @param total Items in the input, when known before reading it.
   * @param now The clock, in ms (a test's own, to step time without waiting).
   * @param onRejected Told when a promise `onProgress` returned rejects (the call fails with
   *   its error, if it still runs); by default a warning.
   */
  constructor(
    onProgress: (progress: Progress) => void,
    total: number | undefined,
    now: () => number = () => performance.now(),
    onRejected: (error: unknown) => void = warnRejected,
  ) {
    this.#onProgress = onProgress;
    this.#onRejected = onRejected;
    this.#total = total;
    this.#now = now;
    this.#start = now();
    this.#dueAt = this.#start + PROGRESS_INTERVAL_MS;
  }

  /**
   * `count` more items came back; reports when the last report is old enough.
   *
   * @throws What `onProgress` throws.
   */
  advance(count: number): void {
    const done = this.#done += count;
    const now = this.#now();
    // Once every item is in, the final call follows at once: no periodic one with the same counts.
    if (now < this.#dueAt || done === this.#total || this.#over) return;
    this.#dueAt = now + PROGRESS_INTERVAL_MS;
    this.#report(now);
  }

  /** An item failed: its error came back, so it is done too. Reported by `finish()`. */
  fail(): void {
    this.#done++;
    this.#failed++;
  }

  /**
   * The final call, made once, whatever ended the call; nothing after a throwing `onProgress`.
   *
   * @throws What `onProgress` throws.
   */
  finish(): void {
    if (this.#over) return;
    // Set first: an `onProgress` that ends the call itself (aborting its signal) re-enters here.
    this.#over = true;
    this.#report(this.#now());
  }

  #report(now: number): void {
    const done = this.#done;
    const total = this.#total;
    const elapsedMs = now - this.#start;
    // Called detached, as the caller wrote it: `this` inside it is not this object.
    const onProgress = this.#onProgress;
    try {
      const returned: unknown = onProgress({
        done,
        total,
        failed: this.#failed,
        elapsedMs,
        etaMs: estimateEta(done, total, elapsedMs),
      });
      // Not awaited (the call does not wait for its observer), but never left unhandled: on
      // Node an unhandled rejection ends the program.
      const then = (returned as { then?: unknown } | null | undefined)?.then;
      if (typeof then === "function") {
        then.call(returned, undefined, (error: unknown) => {
          this.#over = true;
          this.#onRejected(error);
        });
      }
    } catch (error) {
      // The call fails with this error; calling back a callback that threw would only repeat it.
      this.#over = true;
      throw error;
    }
  }
}

/** A rejection of `onProgress` that no running call can fail with: said, not thrown. */
export function warnRejected(error: unknown): void {
  process.emitWarning(
    `fanout: a promise returned by onProgress rejected after its call had ended: ${
      error instanceof Error ? `${error.name}: ${error.message}` : String(error)
    }`,
    { code: "FANOUT_PROGRESS_REJECTED" },
  );
}
