/**
 * `deno bench -A --no-check bench/processes.bench.ts`: the process scenario (`processes.ts`)
 * as Deno benches, each group against a baseline in the same group:
 *
 * - latency (p1): 1,000 sequential `submit(work.noop)` round trips on a warm 1-worker pool,
 *   processes against threads (run the bench under `taskset -c 0` for the pinned figure);
 * - start-up (p2): a fresh 1-process pool until its first `submit(work.noop)` resolved,
 *   against a bare `Deno.Command` spawn of `deno run _ready.mjs` until "ready" is read on its
 *   stdout.
 *
 * Pools are created and warmed before `b.start()` and closed after `b.end()`. `processes.ts`
 * measures the same on every runtime, interleaved, with the close() time and `map` throughput.
 *
 * @module
 */

import { ParallelExecutor } from "../mod.ts";
import { bareSpawn } from "./_bare_spawn.ts";
import { FIRST_TASKS } from "./processes.ts";
import { submitTrips } from "./round_trip.ts";

const CALLS = 1_000;
const WARMUP = 500;

// Each bench function must itself be `async`: Deno awaits only what an async function returns.

const latency = `${CALLS} sequential submit(noop) round trips, 1 worker`;

for (const strategy of ["threads", "processes"] as const) {
  Deno.bench(
    { name: strategy, group: latency, baseline: strategy === "threads", n: 20 },
    async (b) => {
      await using ex = new ParallelExecutor({ strategy, maxWorkers: 1 });
      await submitTrips(ex, WARMUP);
      b.start();
      await submitTrips(ex, CALLS);
      b.end();
    },
  );
}

const startup = "start + first submit(noop), 1 process";

Deno.bench(
  { name: 'bare spawn: deno run _ready.mjs until "ready"', group: startup, baseline: true, n: 10 },
  async (b) => {
    b.start();
    await bareSpawn(() => b.end());
  },
);

Deno.bench({ name: "processes pool", group: startup, n: 10 }, async (b) => {
  b.start();
  await using ex = new ParallelExecutor({ strategy: "processes", maxWorkers: 1 });
  await FIRST_TASKS[0].run(ex);
  b.end();
});
