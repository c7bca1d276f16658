/**
 * What a chunk costs besides its items (a pool's start, a round trip, transport per item),
 * measured once per process from the first timed chunks, for auto's cost model: the
 * constants of `runtime/_capabilities.ts` stand in until then, and the reason says which
 * figures were which.
 *
 * @module
 */

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
