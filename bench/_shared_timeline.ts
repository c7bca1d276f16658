/**
 * Where a pool's maps spent their time, for part s2 of the shared-payload scenario: from the
 * clock readings `work.timedRangeSum` returns with each range's sum, the wait before the first
 * range, the wait for the last result, the gaps between a worker's consecutive ranges (each one
 * the next chunk's round trip) and how long each worker sat idle; and how a series of times
 * spreads (the engines run the same loop at different speeds from time to time).
 *
 * @module
 */

import { median } from "./_measure.ts";

/**
 * How a series of times spreads, and how many are well above the best: the engines run the
 * same loop at different speeds from time to time (see bench/README.md).
 */
export function spread(times: number[], what = "reps"): string {
  const sorted = [...times].sort((a, b) => a - b);
  const at = (q: number): string =>
    sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]
      .toFixed(2);
  const slow = times.filter((t) => t > 1.25 * sorted[0]).length;
  return `spread min ${at(0)} / p25 ${at(0.25)} / median ${at(0.5)} / p75 ${at(0.75)} / max ${
    sorted[sorted.length - 1].toFixed(2)
  } ms, ${slow} of ${times.length} ${what} over 1.25× the best`;
}

/** "paired ratios: median 1.23 (p25 1.10, p75 1.40)", for long series. */
export function quartiles(ratios: number[]): string {
  const sorted = [...ratios].sort((a, b) => a - b);
  const at = (q: number): string => sorted[Math.floor(q * (sorted.length - 1))].toFixed(2);
  return `paired (same-rep) ratios: median ${median(ratios).toFixed(2)} (p25 ${at(0.25)}, p75 ${
    at(0.75)
  })`;
}

/** Where a pool's maps spent their time, from `timedRangeSum`'s clock readings. */
export interface Timeline {
  /** The pool's workers. */
  workers: number;
  leads: number[];
  tails: number[];
  firsts: number[];
  ranges: number[];
  idleMost: number[];
  idleLeast: number[];
  gaps: number[];
  waits: number[];
  /** Each map's summing time in the workers, added up over its ranges. */
  works: number[];
}

export function newTimeline(workers: number): Timeline {
  return {
    workers,
    leads: [],
    tails: [],
    firsts: [],
    ranges: [],
    idleMost: [],
    idleLeast: [],
    gaps: [],
    waits: [],
    works: [],
  };
}

/**
 * Adds one map to a timeline: `res` holds, per range, `[sum, start, end, worker]` with the
 * times in ms since the epoch; `t0` and `t1` are the map's call and result, on the same clock.
 */
export function record(
  tl: Timeline,
  t0: number,
  t1: number,
  res: readonly [number, number, number, number][],
): void {
  tl.leads.push(Math.min(...res.map((r) => r[1])) - t0);
  tl.tails.push(t1 - Math.max(...res.map((r) => r[2])));
  const byWorker = new Map<number, [number, number][]>();
  for (const [, start, end, worker] of res) {
    byWorker.set(worker, [...(byWorker.get(worker) ?? []), [start, end]]);
  }
  const busy: number[] = [];
  let waits = 0;
  for (const spans of byWorker.values()) {
    spans.sort((a, b) => a[0] - b[0]);
    // A worker's first range of the map runs on cold caches (and a CPU back from idle).
    tl.firsts.push(spans[0][1] - spans[0][0]);
    let sum = spans[0][1] - spans[0][0];
    for (let k = 1; k < spans.length; k++) {
      tl.ranges.push(spans[k][1] - spans[k][0]);
      sum += spans[k][1] - spans[k][0];
      // ~0 inside a chunk; the next chunk's round trip between two chunks.
      const gap = spans[k][0] - spans[k - 1][1];
      if (gap > 0.01) {
        tl.gaps.push(gap);
        waits++;
      }
    }
    busy.push(sum);
  }
  tl.waits.push(waits / tl.workers);
  tl.works.push(busy.reduce((a, b) => a + b, 0));
  const idle = busy.map((b) => t1 - t0 - b);
  while (idle.length < tl.workers) idle.push(t1 - t0);
  tl.idleMost.push(Math.max(...idle));
  tl.idleLeast.push(Math.min(...idle));
}

export function describeTimeline(tl: Timeline, label: string): string {
  const f = (x: number[]): string => x.length === 0 ? "-" : `${median(x).toFixed(2)} ms`;
  return `s2: where the maps' time goes, ${label} (medians over the reps): the first range ` +
    `starts ${f(tl.leads)} after map() and the last result arrives ${f(tl.tails)} after the ` +
    `last range ends; in a worker, its first range of a map takes ${f(tl.firsts)}, the ` +
    `others ${f(tl.ranges)} (all ranges: ${spread([...tl.firsts, ...tl.ranges], "ranges")}); a ` +
    `worker waits ${median(tl.waits)} times per map between ranges (gaps over 10 µs: the ` +
    `next chunk's round trip), ${f(tl.gaps)} each; the more idle worker sits idle ` +
    `${f(tl.idleMost)} of the map, the other ${f(tl.idleLeast)}`;
}
