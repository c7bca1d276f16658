/**
 * Which shared values one pool worker holds, shared by the thread and process pools. A value
 * goes to a worker with the first chunk that needs it there, and at most once.
 *
 * @module
 */

import type { SharedEntry } from "../shared.ts";

/** What goes along with one chunk: values the worker lacks, and ids it must forget first. */
export interface Delivery {
  shares: [number, unknown][] | undefined;
  forget: number[] | undefined;
}

/** The shared values one worker holds. */
export class WorkerShares {
  readonly #held = new Set<number>();
  #forget: number[] = [];

  /** What must go with a chunk holding `entries`; `undefined` when nothing does. */
  plan(entries: readonly SharedEntry[] | undefined): Delivery | undefined {
    let shares: [number, unknown][] | undefined;
    if (entries !== undefined) {
      for (const entry of entries) {
        if (!this.#held.has(entry.id)) (shares ??= []).push([entry.id, entry.value]);
      }
    }
    const forget = this.#forget.length > 0 ? this.#forget : undefined;
    return shares === undefined && forget === undefined ? undefined : { shares, forget };
  }

  /** The chunk carrying `delivery` reached the worker's channel. */
  sent(delivery: Delivery): void {
    if (delivery.shares !== undefined) { for (const [id] of delivery.shares) this.#held.add(id); }
    if (delivery.forget === this.#forget) this.#forget = [];
  }

  /**
   * Forgets `id`. Returns whether the worker held it, in which case the caller tells the worker
   * at once. With `ordered: false` (a release message may overtake or trail chunks), the id
   * also goes with the worker's next chunk, so no task after the release can read it.
   */
  drop(id: number, ordered: boolean): boolean {
    if (!this.#held.delete(id)) return false;
    if (!ordered) this.#forget.push(id);
    return true;
  }
}
