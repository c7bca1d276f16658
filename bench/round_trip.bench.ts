/**
 * `deno bench -A --no-check bench/round_trip.bench.ts`: the round-trip scenario
 * (`round_trip.ts`, part c) as a Deno bench: 1,000 sequential `submit(work.noop)` round trips
 * on a warm 1-worker pool against as many raw `postMessage` ping-pongs with a bare worker.
 * Run it under `taskset -c 0` for the figure the target refers to. The pool is started and
 * warmed before `b.start()` and closed after `b.end()`.
 *
 * @module
 */

import { ParallelExecutor } from "../mod.ts";
import { startBareWorker } from "./_bare.ts";
import { pingTrips, submitTrips } from "./round_trip.ts";

const TRIPS = 1_000;
const latency = `${TRIPS} sequential round trips, 1 worker`;

Deno.bench(
  { name: "raw postMessage ping-pong", group: latency, baseline: true, n: 20 },
  async (b) => {
    const worker = await startBareWorker();
    try {
      await pingTrips(worker, TRIPS);
      b.start();
      await pingTrips(worker, TRIPS);
      b.end();
    } finally {
      await worker.terminate();
    }
  },
);

Deno.bench({ name: "fanout submit(noop)", group: latency, n: 20 }, async (b) => {
  await using ex = new ParallelExecutor({ strategy: "threads", maxWorkers: 1 });
  await submitTrips(ex, TRIPS);
  b.start();
  await submitTrips(ex, TRIPS);
  b.end();
});
