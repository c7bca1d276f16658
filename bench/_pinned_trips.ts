/**
 * The measurement behind `submits.ts` part sb4, run as a child process of its own under
 * `taskset -c 0` (the part starts it so): one `submit(work.noop)` round trip on a warm
 * `maxWorkers: 2` thread pool, sequential and awaited, against a raw `postMessage` ping-pong with
 * a bare worker in the same (pinned) process, interleaved in rounds. Prints
 * {@linkcode PINNED_MARKER} and then one line of JSON ({@linkcode PinnedTrips}).
 *
 * ```sh
 * taskset -c 0 node_modules/.bin/node bench/_pinned_trips.ts 2000 2
 * ```
 *
 * @module
 */

import process from "node:process";
import { ParallelExecutor } from "../mod.ts";
import { detect } from "../src/runtime/mod.ts";
import { barePing, startBareWorker } from "./_bare.ts";
import { fail, workTasks } from "./_measure.ts";
import { pingTrips, submitTrips } from "./round_trip.ts";

/** The line before the JSON this script prints. */
export const PINNED_MARKER = "--- fanout pinned trips ---";

/** What this script prints after {@linkcode PINNED_MARKER}. */
export interface PinnedTrips {
  /** CPUs visible to the process (1 under `taskset -c 0`). */
  cpus: number;
  /** µs of each timed `submit()` round trip. */
  submits: number[];
  /** µs of each timed raw ping-pong. */
  pings: number[];
  /** Untimed calls of each kind before the timed ones. */
  warmup: number;
  /** Rounds the timed calls were interleaved in. */
  rounds: number;
}

const ROUNDS = 10;
const WARMUP = 1_000;

/**
 * Measures `pings` round trips of each kind on a warm `workers`-thread pool and a bare worker,
 * in {@linkcode ROUNDS} interleaved rounds after {@linkcode WARMUP} untimed calls of each.
 */
export async function measurePinnedTrips(pings: number, workers: number): Promise<PinnedTrips> {
  const pool = new ParallelExecutor({ strategy: "threads", maxWorkers: workers });
  const bare = await startBareWorker();
  const submits: number[] = [];
  const raw: number[] = [];
  try {
    for (let i = 0; i < WARMUP; i++) {
      if (await barePing(bare, i) !== i + 1) fail("ping warm-up");
      await pool.submit(workTasks.noop, undefined);
    }
    const per = Math.max(1, Math.ceil(pings / ROUNDS));
    for (let round = 0; round < ROUNDS; round++) {
      if (round % 2 === 0) {
        raw.push(...await pingTrips(bare, per));
        submits.push(...await submitTrips(pool, per));
      } else {
        submits.push(...await submitTrips(pool, per));
        raw.push(...await pingTrips(bare, per));
      }
    }
  } finally {
    await pool.close();
    await bare.terminate();
  }
  return { cpus: detect().cpus, submits, pings: raw, warmup: WARMUP, rounds: ROUNDS };
}

if (import.meta.main) {
  const [pings = "2000", workers = "2"] = process.argv.slice(2);
  const result = await measurePinnedTrips(Number(pings), Number(workers));
  console.log(PINNED_MARKER);
  console.log(JSON.stringify(result));
}
