/**
 * The ceiling of `shared.ts`'s part s2: a bare pool of raw workers (`_shared_bare_worker.ts`
 * on the global `Worker` of Deno and Bun, `node:worker_threads` on Node), none of the pool's
 * machinery. Each worker gets the shared array once; a sum is then one message per worker
 * holding all of its ranges, and one reply with their sums: the least messaging any pool can
 * do, so its speedup is what the machine allows at that moment.
 *
 * @module
 */

import { startRawWorker } from "./_bare.ts";
import type { RawWorker } from "./_bare.ts";

const WORKER_URL = new URL("./_shared_bare_worker.ts", import.meta.url);

/** A half-open range of indices. */
export interface IndexRange {
  start: number;
  end: number;
}

/** A bare pool of raw workers that all hold the same shared `Float64Array`. */
export interface BareSumPool {
  /**
   * Sums the ranges: range `k` goes to worker `k % workers`, each worker gets its ranges in
   * one message and answers once.
   *
   * @returns The sums, in range order.
   */
  sum(ranges: readonly IndexRange[]): Promise<number[]>;
  /** Milliseconds the workers spent summing in the last `sum`, added up. */
  readonly lastBusyMs: number;
  /** Terminates the workers. */
  stop(): Promise<void>;
}

/**
 * Starts `count` raw workers and hands each the array (which must be over a
 * `SharedArrayBuffer`, so that posting it copies nothing).
 */
export async function startBareSumPool(count: number, data: Float64Array): Promise<BareSumPool> {
  if (!(data.buffer instanceof SharedArrayBuffer)) {
    throw new TypeError("Expected the bare pool's array to be over a SharedArrayBuffer");
  }
  const workers = await Promise.all(
    Array.from({ length: count }, () => startRawWorker(WORKER_URL)),
  );
  const ask = (worker: RawWorker, message: unknown): Promise<unknown> =>
    new Promise((resolve) => {
      worker.onReply(resolve);
      worker.post(message);
    });
  await Promise.all(workers.map((w) => ask(w, data)));
  let busy = 0;
  return {
    get lastBusyMs() {
      return busy;
    },
    async sum(ranges) {
      const mine = workers.map((_, w) => ranges.filter((_, k) => k % workers.length === w));
      const replies = await Promise.all(
        workers.map((worker, w) => ask(worker, mine[w].flatMap((r) => [r.start, r.end]))),
      );
      const out = new Array<number>(ranges.length);
      busy = 0;
      replies.forEach((reply, w) => {
        const { sums, ms } = reply as { sums: number[]; ms: number };
        sums.forEach((s, j) => (out[w + j * workers.length] = s));
        busy += ms;
      });
      return out;
    },
    async stop() {
      await Promise.all(workers.map((w) => w.terminate()));
    },
  };
}
