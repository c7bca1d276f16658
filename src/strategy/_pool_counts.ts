/**
 * What a pool counts of its workers' lives, for telemetry and calibration: how long a worker
 * takes to start (the mean of every start so far), how many were started to replace one that
 * died (respawns), and how many were replaced on purpose (recycled, by `maxTasksPerWorker` or
 * `idleMemoryLimitMb`; their replacements are not respawns).
 *
 * @module
 */

/** The counts of one pool. */
export class WorkerCounts {
  #startMs: number | undefined;
  #starts = 0;
  #peak = 0;
  #respawns = 0;
  #recycled = 0;
  /** Replacements owed to recycling: the next starts below the peak are not respawns. */
  #owed = 0;
  #nextNo = 1;

  /** The mean start, spawn to ready, in ms; `undefined` before the first worker was ready. */
  get startMs(): number | undefined {
    return this.#startMs;
  }

  get respawns(): number {
    return this.#respawns;
  }

  get recycled(): number {
    return this.#recycled;
  }

  /** A worker was ready `ms` after it was spawned. */
  started(ms: number): void {
    this.#starts++;
    this.#startMs = this.#startMs === undefined
      ? ms
      : this.#startMs + (ms - this.#startMs) / this.#starts;
  }

  /**
   * The number for a worker about to start while `live` others run; below the peak, it replaces
   * one: a respawn, unless recycling owed it.
   */
  nextNumber(live: number): number {
    if (live < this.#peak) {
      if (this.#owed > 0) this.#owed--;
      else this.#respawns++;
    }
    return this.#nextNo++;
  }

  /** A worker started: `live` now run. */
  enlisted(live: number): void {
    this.#peak = Math.max(this.#peak, live);
  }

  /** A worker is being replaced on purpose. */
  recycle(): void {
    this.#recycled++;
    this.#owed++;
  }
}
