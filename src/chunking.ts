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
 * What a chunk costs besides its items (a pool's start, a round trip, transport per item) is
 * measured in `_calibration.ts`.
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
  /** Items a worker runs at once of a chunk: an auto chunk holds at least that many. */
  readonly #least: () => number;
  /** Chunks in flight at once on the calling thread (0: they go to workers). */
  readonly #here: () => number;
  /** How long an auto chunk should take (see {@linkcode ChunkSizer.prototype.aimAt}). */
  #targetMs = TARGET_CHUNK_MS;

  /**
   * @param chunkSize A fixed size, or "auto".
   * @param workers How many chunks run at once (read on every chunk: with strategy "auto" it
   *   is known only once the call's strategy is chosen).
   * @param estimateMs Time per item measured by an earlier call of the same task, if any.
   * @param least Items of a chunk a worker runs at once (its `concurrency`): an auto chunk
   *   holds at least that many while the input has them, so the worker has them all in flight.
   * @param here Chunks in flight at once on the calling thread (0 when they go to workers):
   *   there a chunk's items run one after another, so with more than one in flight a chunk
   *   never takes more than its share of what is left, and each of them has work.
   */
  constructor(
    chunkSize: number | "auto",
    workers: number | (() => number),
    estimateMs?: number,
    least: () => number = one,
    here: () => number = zero,
  ) {
    this.#fixed = chunkSize === "auto" ? undefined : chunkSize;
    this.#workers = typeof workers === "number" ? () => workers : workers;
    this.#least = least;
    this.#here = here;
    if (estimateMs !== undefined && Number.isFinite(estimateMs) && estimateMs >= 0) {
      this.#perItemMs = estimateMs;
      this.#last = MAX_CHUNK;
      this.#opening = this.#workers();
    }
  }

  /**
   * Aims auto chunks at `ms` each rather than `TARGET_CHUNK_MS`: for a strategy whose chunks
   * cost far more than a thread's round trip to send (a job through Redis), so that they carry
   * enough work to be worth it.
   */
  aimAt(ms: number): void {
    this.#targetMs = ms;
  }

  /** The measured time per item so far, if any; what the next call of the task starts from. */
  get perItemMs(): number | undefined {
    return this.#perItemMs;
  }

  /** Size of the next chunk; `remaining` is the number of items left, when known. */
  next(remaining?: number): number {
    if (this.#fixed !== undefined) return this.#fixed;
    const least = this.#least();
    if (least > 1) return this.#atLeast(least, remaining);
    if (this.#perItemMs === undefined) return (this.#last = 1);
    const wanted = this.#perItemMs > 0 ? this.#targetMs / this.#perItemMs : Infinity;
    let size = Math.max(1, Math.min(Math.floor(wanted), this.#last * GROWTH, MAX_CHUNK));
    const here = this.#here();
    if (here > 1) {
      // Many chunks in flight on the calling thread: each waits for its items one by one.
      this.#opening = 0;
      if (remaining === undefined) return (this.#last = size);
      return (this.#last = Math.max(1, Math.min(size, Math.floor(remaining / here))));
    }
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
   * A chunk for a worker that runs `least` of its items at once: at least that many, or an even
   * share of what is left when that is fewer; more when they would take less than the target
   * duration at once (the measured time per item is then the chunk's wall time over its items,
   * its waits overlapped).
   */
  #atLeast(least: number, remaining: number | undefined): number {
    const share = remaining === undefined ? least : Math.ceil(remaining / this.#workers());
    const floor = Math.max(1, Math.min(least, share, MAX_CHUNK));
    if (this.#perItemMs === undefined) return (this.#last = floor);
    this.#opening = 0;
    const wanted = this.#perItemMs > 0 ? this.#targetMs / this.#perItemMs : Infinity;
    const size = Math.min(Math.floor(wanted), this.#last * GROWTH, MAX_CHUNK, share);
    return (this.#last = Math.max(floor, size));
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
    least?: () => number,
    here?: () => number,
  ): ChunkSizer {
    if (chunkSize !== "auto") return new ChunkSizer(chunkSize, workers);
    const sizer = new ChunkSizer(chunkSize, workers, estimates.of(task), least, here);
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
 * Chunks at the start of a call that `Mean.warm` may leave out, as its cold start. A trivial
 * task's items run several times slower than the rest for its first few thousand calls, while
 * the engine compiles it in tiers (on Bun 1.4, `n + 1` still took ~3× its final time after 2,000
 * calls); with chunks about doubling from one item, that is the first 10 or so.
 */
export const COLD_CHUNKS = 12;

/**
 * A running mean of time per item: what a call has measured so far. A call records it for the
 * next call of the same task (`Estimates`), and chunk sizing starts from that; auto's probe
 * decides from its warm part (`warm`).
 */
export class Mean {
  #ms = 0;
  #items = 0;
  #chunks = 0;
  /** Items and time measured before each of the first `COLD_CHUNKS` chunks. */
  readonly #before: { items: number; ms: number }[] = [];

  /** Items measured so far. */
  get items(): number {
    return this.#items;
  }

  /** Time measured so far, in ms. */
  get ms(): number {
    return this.#ms;
  }

  /** Chunks measured so far. */
  get chunks(): number {
    return this.#chunks;
  }

  /** The mean time per item, in ms; 0 before anything was measured. */
  get perItemMs(): number {
    return this.#items > 0 ? this.#ms / this.#items : 0;
  }

  /**
   * The mean without the cold start: from one of the first `COLD_CHUNKS` chunks on, the one
   * that gives the least mean (from the first, unless the chunks before it were slower). A
   * task's first calls cost more than the rest (its code is still being compiled, and the first
   * chunks pay first-use costs of their own), and that weighs on the cumulative mean for
   * thousands of items: on Node 24, 100,000 items of `n + 1` probed at ~0.002 ms each over 1 ms,
   * 10× what each took in the rest of the call. Every chunk after the first `COLD_CHUNKS` counts,
   * so slow items later in the input (skewed work) are never left out.
   *
   * @returns The time per item (0 before anything was measured), and the time it rests on, in ms.
   */
  get warm(): { perItemMs: number; ms: number } {
    let best = { perItemMs: this.perItemMs, ms: this.#ms };
    for (let at = 1; at < this.#before.length; at++) {
      const { items, ms } = this.#before[at];
      const perItemMs = (this.#ms - ms) / (this.#items - items);
      if (perItemMs < best.perItemMs) best = { perItemMs, ms: this.#ms - ms };
    }
    return best;
  }

  /** Adds a chunk: `items` items that took `ms` in all (an unmeasured, `NaN`, time counts as 0). */
  add(items: number, ms: number): void {
    if (this.#before.length < COLD_CHUNKS) this.#before.push({ items: this.#items, ms: this.#ms });
    this.#chunks++;
    this.#items += items;
    this.#ms += Number.isFinite(ms) ? ms : 0;
  }
}

/**
 * How a task's items spend their time, as auto's probe measured them one at a time on the
 * calling thread: the wall time per item, and the share of it the thread spent computing (the
 * rest it waited: on a timer, the network, a file, a subprocess).
 */
export interface Profile {
  readonly wallMs: number;
  readonly busyShare: number;
  /** Items it was measured on, over every probe so far. */
  readonly samples: number;
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
  /** Of tasks that await: auto's probe's time per item on the calling thread, and its split. */
  readonly #profiles = new Map<string, Profile>();
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

  /** How the task's items spent their time when auto's probe ran them, if it did. */
  profile(task: TaskSpec): Profile | undefined {
    return this.#profiles.get(this.#key(task));
  }

  /** Records what auto's probe measured of the task. */
  setProfile(task: TaskSpec, profile: Profile): void {
    const key = this.#key(task);
    this.#profiles.delete(key);
    this.#profiles.set(key, profile);
    if (this.#profiles.size > REMEMBERED) {
      this.#profiles.delete(this.#profiles.keys().next().value!);
    }
  }

  #key(task: TaskSpec): string {
    let key = this.#keys.get(task);
    if (key === undefined) this.#keys.set(task, key = taskKey(task));
    return key;
  }
}

function one(): number {
  return 1;
}

function zero(): number {
  return 0;
}
