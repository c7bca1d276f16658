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
 * measured once per process from the first timed chunks (`Calibration`), for auto's cost model.
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

/** A cost, in ms, and whether it was measured in this process or assumed (a constant). */
export interface Figure {
  readonly ms: number;
  readonly measured: boolean;
}

/** What using a pool costs, besides running the items: what auto's cost model prices. */
export interface PoolCosts {
  /** Starting the pool: a worker's spawn to ready. */
  readonly start: Figure;
  /** One chunk of few items to a warm worker and back. */
  readonly roundTrip: Figure;
  /** Per item, its way to the worker and its value's way back. */
  readonly transport: Figure;
}

/** Chunks measured per figure and kind of pool; after them, none is measured in the process. */
const SAMPLES = 9;
/** Samples needed before a figure replaces its constant: the middle one of 3 drops an outlier. */
const ENOUGH = 3;
/** A chunk of at most this many items measures the round trip. */
const FEW_ITEMS = 16;
/** A chunk of at least this many items measures the transport: a round trip is a small part of it. */
const MANY_ITEMS = 1024;

/** What one kind of pool measured. */
interface Measured {
  /** The last start measured by a pool of this kind (its mean over its workers). */
  startMs: number | undefined;
  /** Overheads of few-item chunks, in ms, smallest first. */
  readonly trips: number[];
  /** Overheads of many-item chunks, per item, in ms, smallest first. */
  readonly perItem: number[];
  /** Per pool, the workers whose first chunk was seen. */
  readonly seen: WeakMap<object, Set<number>>;
}

/** What `Calibration.sample` needs of a pool. */
interface Measurable {
  readonly name: string;
  readonly startMs?: number;
}

/** One chunk being measured: `onStart` goes into its request, `done` gets its result. */
export interface Sample {
  readonly onStart: (worker: number, behind?: boolean) => void;
  readonly done: (result: { readonly ms: number }) => void;
}

/**
 * What the pools cost on this machine, measured in this process, per kind of pool: the start
 * (the pools' own `startMs`), and from the first timed chunks, their overhead (the wall time from
 * dispatch to result, less the run time the worker reported). A worker's first chunk is never a
 * sample (it waited for the worker's start and its task's load). Until a figure is measured, the
 * runtime's constant stands in for it (the prior); once `SAMPLES` chunks measured it, no chunk
 * is measured for it again: later calls pay nothing.
 *
 * - The round trip, from chunks of few items: a floor that contention only adds to (where the
 *   pool's workers keep every core busy, the calling thread answers late), so its figure is the
 *   second smallest sample (the smallest may be a clock's jitter), as the constant was measured:
 *   on a warm, otherwise idle pool.
 * - The transport per item, from chunks of many items: the median of their overhead per item, an
 *   upper bound (it carries a share of a round trip), which errs on auto's side: serial stays a
 *   little longer. It depends on the items' size too: it is what the first large chunks carried.
 *
 * Process-wide rather than per executor: these costs belong to the machine and the runtime
 * (cores, their load, how fast a worker starts), not to an executor, and a pool's start is priced
 * only while the pool is cold, so an executor's own measurement could never change its own
 * decisions: only a record that outlives it lets the next executor price a cold pool right. An
 * executor's own pool, once measured, still wins for that executor (see `Core.calibrate`).
 */
export class Calibration {
  readonly #kinds = new Map<string, Measured>();

  /** A pool of `kind` measured its start (`undefined`: not yet; nothing changes). */
  started(kind: string, startMs: number | undefined): void {
    if (startMs !== undefined && Number.isFinite(startMs)) this.#of(kind).startMs = startMs;
  }

  /**
   * Measures a timed chunk of `items` items on `pool`, if a figure still wants it; `onStart` is
   * the request's own hook, which the sample's calls in turn.
   */
  sample(
    pool: Measurable,
    items: number,
    onStart?: (worker: number, behind?: boolean) => void,
  ): Sample | undefined {
    const kind = pool.name;
    if (kind !== "threads" && kind !== "processes") return undefined;
    const samples = this.#samplesOf(this.#of(kind), items);
    if (samples === undefined || samples.length >= SAMPLES) return undefined;
    let sent = 0;
    let worker = -1;
    return {
      onStart: (no, behind) => {
        // From the post to a worker, not from the queue; a chunk posted behind another waits
        // for it there, so it does not measure a round trip (-1: not recorded).
        sent = performance.now();
        worker = behind === true ? -1 : no;
        onStart?.(no, behind);
      },
      done: (result) => {
        if (!Number.isFinite(result.ms)) return;
        this.started(kind, pool.startMs);
        this.record(kind, pool, worker, items, performance.now() - sent - result.ms);
      },
    };
  }

  /**
   * A chunk of `items` items on `worker` (-1: unknown) of `pool` cost `overheadMs` beyond its
   * run time. The first chunk seen on each worker is skipped.
   */
  record(kind: string, pool: object, worker: number, items: number, overheadMs: number): void {
    if (worker < 0 || !Number.isFinite(overheadMs)) return;
    const measured = this.#of(kind);
    let seen = measured.seen.get(pool);
    if (seen === undefined) measured.seen.set(pool, seen = new Set());
    if (!seen.has(worker)) {
      seen.add(worker);
      return;
    }
    const samples = this.#samplesOf(measured, items);
    if (samples === undefined || samples.length >= SAMPLES) return;
    const ms = Math.max(0, overheadMs);
    const value = samples === measured.trips ? ms : ms / items;
    let at = samples.length;
    while (at > 0 && samples[at - 1] > value) at--;
    samples.splice(at, 0, value);
  }

  /** The costs of a pool of `kind`: each figure measured here if it was, else `prior`'s. */
  costs(kind: string, prior: PoolCosts): PoolCosts {
    const measured = this.#kinds.get(kind);
    if (measured === undefined) return prior;
    const figure = (samples: number[], at: number, otherwise: Figure): Figure =>
      samples.length < ENOUGH ? otherwise : { ms: samples[at], measured: true };
    return {
      start: measured.startMs === undefined
        ? prior.start
        : { ms: measured.startMs, measured: true },
      roundTrip: figure(measured.trips, 1, prior.roundTrip),
      transport: figure(measured.perItem, measured.perItem.length >> 1, prior.transport),
    };
  }

  /** Forgets every measurement, as in a new process (for tests). */
  forget(): void {
    this.#kinds.clear();
  }

  /** Where a chunk of `items` items is a sample, if it is one. */
  #samplesOf(measured: Measured, items: number): number[] | undefined {
    return items <= FEW_ITEMS ? measured.trips : items >= MANY_ITEMS ? measured.perItem : undefined;
  }

  #of(kind: string): Measured {
    let measured = this.#kinds.get(kind);
    if (measured === undefined) {
      measured = { startMs: undefined, trips: [], perItem: [], seen: new WeakMap() };
      this.#kinds.set(kind, measured);
    }
    return measured;
  }
}

/** This process's calibration: every executor's pools feed it, auto reads it. */
export const calibration: Calibration = new Calibration();
