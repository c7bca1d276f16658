/**
 * The round trip: one `submit(work.noop)` on a warm 1-worker thread pool, sequential and
 * awaited, against a raw `postMessage` ping-pong with a bare worker (`_bare.ts`), interleaved
 * in rounds (part c). Run it pinned to one CPU (`taskset -c 0`, as `compare.mjs` does): on two
 * CPUs the scheduler moves the two threads around and the figure flips between levels.
 *
 * ```sh
 * taskset -c 0 node_modules/.bin/node bench/run.ts round_trip [--pings 2000]
 * ```
 *
 * @module
 */

import process from "node:process";
import { ParallelExecutor } from "../mod.ts";
import { detect } from "../src/runtime/mod.ts";
import { barePing, startBareWorker } from "./_bare.ts";
import type { BareWorker } from "./_bare.ts";
import type { Figure, PartResult, Scenario, SizeSpec } from "./_measure.ts";
import { fail, mean, median, timeEach, versus, workTasks } from "./_measure.ts";

type Size = "pings";

const SIZES: Record<Size, SizeSpec> = {
  pings: { flag: "pings", full: 10_000, quick: 2_000, help: "c: timed round trips of each kind" },
};

const ROUNDS = 10;
const WARMUP = 1_000;

/** `count` awaited `submit(work.noop)` calls on `ex`, one at a time: µs each. */
export function submitTrips(ex: ParallelExecutor, count: number): Promise<number[]> {
  return timeEach(count, () => ex.submit(workTasks.noop, undefined));
}

/** `count` raw round trips with a bare worker, one at a time: µs each. */
export function pingTrips(bare: BareWorker, count: number): Promise<number[]> {
  return timeEach(count, (i) => barePing(bare, i), (reply, i) => {
    if (reply !== i + 1) fail("ping");
  });
}

/**
 * The median and the mean of round trips (µs), each against the same statistic of a
 * baseline's round trips from the same run; `first` adds to the median's figure.
 */
export function tripFigures(
  part: string,
  name: string,
  us: readonly number[],
  baseline: { name: string; samples: readonly number[] },
  ratioLabel: string,
  first: Pick<Figure, "target" | "note">,
): Figure[] {
  const rest = { part, unit: "µs", ratioLabel };
  return [
    versus(median, us, baseline, { ...rest, name: `${name} (median)`, ...first }),
    versus(mean, us, baseline, { ...rest, name: `${name} (mean)` }),
  ];
}

async function submitRoundTrip(o: Record<Size, number>): Promise<PartResult> {
  const pool = new ParallelExecutor({ strategy: "threads", maxWorkers: 1 });
  const bare = await startBareWorker();
  const submits: number[] = [];
  const pings: number[] = [];
  try {
    for (let i = 0; i < WARMUP; i++) {
      if (await barePing(bare, i) !== i + 1) fail("ping warm-up");
      await pool.submit(workTasks.noop, undefined);
    }
    const per = Math.max(1, Math.ceil(o.pings / ROUNDS));
    for (let round = 0; round < ROUNDS; round++) {
      if (round % 2 === 0) {
        pings.push(...await pingTrips(bare, per));
        submits.push(...await submitTrips(pool, per));
      } else {
        submits.push(...await submitTrips(pool, per));
        pings.push(...await pingTrips(bare, per));
      }
    }
  } finally {
    await pool.close();
    await bare.terminate();
  }
  const cpus = detect().cpus;
  const pinned = cpus === 1
    ? "pinned to 1 CPU"
    : `NOT pinned (${cpus} CPUs visible; run under taskset -c 0)`;
  return {
    figures: tripFigures(
      "c",
      "submit() round trip, warm pool, 1 worker",
      submits,
      { name: "raw ping-pong", samples: pings },
      "× raw",
      {
        target: { on: "ratio", op: "<=", value: 1.1, label: "≤ 1.1×" },
        note: `work.noop, sequential and awaited, ${submits.length} calls of each after ` +
          `${WARMUP} warm-up, interleaved in ${ROUNDS} rounds; ${pinned}`,
      },
    ),
    notes: [],
  };
}

/** Part c: one `submit()` round trip against a raw ping-pong. */
export const roundTrip: Scenario<Size> = {
  name: "round_trip",
  sizes: SIZES,
  parts: { c: submitRoundTrip },
};

// Run as a script, this file runs its scenario through run.ts. Not awaited at the top level:
// run.ts imports this module, which must finish evaluating first.
if (import.meta.main) {
  import("./run.ts").then(({ main }) => main(process.argv.slice(2), "round_trip"));
}
