/**
 * Chunk sizing. Small items are sent in chunks so that a map over 200,000 trivial items is a
 * few dozen messages, not 200,000; slow items go one by one so every worker stays busy.
 *
 * Auto sizing starts every worker on a one-item chunk, then sizes chunks from the measured
 * time per item (reported by the worker, excluding transport) towards a target duration long
 * enough to hide a round trip, growing at most 16× per step. Towards the end, chunks shrink
 * to an even share of what is left, so workers finish together, but never below a quarter of
 * the target duration.
 *
 * When the same task ran before on this executor, its last measured time per item is the
 * starting estimate: the first chunks are sized from it at once, and a short input of known
 * length is split evenly across the idle workers, one chunk each, instead of paying a round
 * trip per one-item probe.
 *
 * @module
 */

import type { TaskSpec } from "./protocol.ts";
import { taskKey } from "./task.ts";

/** Duration a chunk should take: ~40 round trips on this class of machine. */
export const TARGET_CHUNK_MS = 4;
/** Largest auto chunk, which bounds the size of one message. */
export const MAX_CHUNK = 8192;
const GROWTH = 16;

/** Chooses the size of each next chunk of one call. */
export class ChunkSizer {
  readonly #fixed: number | undefined;
  readonly #workers: () => number;
  #perItemMs: number | undefined;
  #last = 1;
  /** With an estimate: how many of the first chunks (one per idle worker) are still to cut. */
  #opening = 0;
  /** The even share of those opening chunks, fixed when the first one is cut. */
  #openingShare: number | undefined;

  /**
   * @param chunkSize A fixed size, or "auto".
   * @param workers How many chunks run at once (read on every chunk: with strategy "auto" it
   *   is known only once the call's strategy is chosen).
   * @param estimateMs Time per item measured by an earlier call of the same task, if any.
   */
  constructor(
    chunkSize: number | "auto",
    workers: number | (() => number),
    estimateMs?: number,
  ) {
    this.#fixed = chunkSize === "auto" ? undefined : chunkSize;
    this.#workers = typeof workers === "number" ? () => workers : workers;
    if (estimateMs !== undefined && Number.isFinite(estimateMs) && estimateMs >= 0) {
      this.#perItemMs = estimateMs;
      this.#last = MAX_CHUNK;
      this.#opening = this.#workers();
    }
  }

  /** The measured time per item so far, if any; what the next call of the task starts from. */
  get perItemMs(): number | undefined {
    return this.#perItemMs;
  }

  /** Size of the next chunk; `remaining` is the number of items left, when known. */
  next(remaining?: number): number {
    if (this.#fixed !== undefined) return this.#fixed;
    if (this.#perItemMs === undefined) return (this.#last = 1);
    const wanted = this.#perItemMs > 0 ? TARGET_CHUNK_MS / this.#perItemMs : Infinity;
    let size = Math.max(1, Math.min(Math.floor(wanted), this.#last * GROWTH, MAX_CHUNK));
    if (remaining !== undefined) {
      // Even out the tail across workers, but never below a quarter of the target duration:
      // shorter chunks cost more in round trips than the imbalance they save. The opening
      // chunks, all cut while every worker is idle, share what was there at the start.
      let share = Math.ceil(remaining / this.#workers());
      if (this.#opening > 0) {
        this.#opening--;
        share = this.#openingShare ??= share;
      }
      size = Math.min(size, Math.max(share, Math.floor(wanted / 4), 1));
    }
    return (this.#last = size);
  }

  /**
   * The sizer of one call of `task`: it starts from what the task's last call measured, and
   * records this call's mean time per item there after each chunk (under auto sizing).
   */
  static forTask(
    chunkSize: number | "auto",
    workers: () => number,
    estimates: Estimates,
    task: TaskSpec,
  ): ChunkSizer {
    if (chunkSize !== "auto") return new ChunkSizer(chunkSize, workers);
    const sizer = new ChunkSizer(chunkSize, workers, estimates.of(task));
    sizer.#memory = { estimates, task, mean: new Mean() };
    return sizer;
  }

  #memory: { estimates: Estimates; task: TaskSpec; mean: Mean } | undefined;

  /** Records that `items` items took `ms` milliseconds to run. */
  record(items: number, ms: number): void {
    if (this.#fixed !== undefined || items === 0) return;
    const perItem = ms / items;
    this.#perItemMs = this.#perItemMs === undefined ? perItem : (this.#perItemMs + perItem) / 2;
    const memory = this.#memory;
    if (memory !== undefined && Number.isFinite(ms)) {
      // The call's mean so far, not the recent average above: skewed work has a few slow
      // items, and the next call should expect the mean.
      memory.mean.add(items, ms);
      memory.estimates.set(memory.task, memory.mean.perItemMs);
    }
  }
}

/**
 * A running mean of time per item: what a call has measured so far. The one estimate of a
 * task's cost: the auto probe decides from it, a call records it for the next call of the
 * same task (`Estimates`), and chunk sizing starts from that.
 */
export class Mean {
  #ms = 0;
  #items = 0;

  /** Items measured so far. */
  get items(): number {
    return this.#items;
  }

  /** Time measured so far, in ms. */
  get ms(): number {
    return this.#ms;
  }

  /** The mean time per item, in ms; 0 before anything was measured. */
  get perItemMs(): number {
    return this.#items > 0 ? this.#ms / this.#items : 0;
  }

  /** Adds `items` items that took `ms` in all; an unmeasured (`NaN`) time counts as 0. */
  add(items: number, ms: number): void {
    this.#items += items;
    this.#ms += Number.isFinite(ms) ? ms : 0;
  }
}

/** Most tasks whose time per item an executor remembers. */
const REMEMBERED = 128;

/**
 * Time per item of each task's last auto-chunked call, newest last: the next call of the same
 * task sizes its first chunks from it, and auto needs no probe. Equal tasks from different
 * call sites share an entry (see `taskKey`).
 */
export class Estimates {
  readonly #byTask = new Map<string, number>();
  /** Each spec's key, made once (specs are cached per task by the executor). */
  readonly #keys = new WeakMap<TaskSpec, string>();

  /** What the last call of the task measured, if any. */
  of(task: TaskSpec): number | undefined {
    return this.#byTask.get(this.#key(task));
  }

  /** Records what a call of the task measured (its mean so far). */
  set(task: TaskSpec, perItemMs: number): void {
    const key = this.#key(task);
    this.#byTask.delete(key);
    this.#byTask.set(key, perItemMs);
    if (this.#byTask.size > REMEMBERED) this.#byTask.delete(this.#byTask.keys().next().value!);
  }

  #key(task: TaskSpec): string {
    let key = this.#keys.get(task);
    if (key === undefined) this.#keys.set(task, key = taskKey(task));
    return key;
  }
}
