/**
 * `deno bench -A --no-check bench/processes.bench.ts`: what the process strategy costs, each
 * group against a baseline in the same group:
 * - latency: 1,000 sequential `submit(work.noop)` round trips on a warm 1-worker pool,
 *   processes against threads (run the bench under `taskset -c 0` for the pinned figure);
 * - start-up: a fresh 1-process pool until its first `submit(work.noop)` resolved, against a
 *   bare `Deno.Command` spawn of `deno run _ready.mjs` until "ready" is read on its stdout.
 *
 * Pools are created and warmed before `b.start()` and closed after `b.end()`. `bench/processes.ts`
 * measures the same on every runtime, interleaved, with the close() time and `map` throughput.
 *
 * @module
 */

import { fileURLToPath } from "node:url";
import { ParallelExecutor, tasks } from "../mod.ts";

const work = tasks<typeof import("./work.ts")>(new URL("./work.ts", import.meta.url));
const READY_SCRIPT = fileURLToPath(new URL("./_ready.mjs", import.meta.url));
const CALLS = 1_000;
const WARMUP = 500;

const latency = `${CALLS} sequential submit(noop) round trips, 1 worker`;

// Each bench function must itself be `async`: Deno awaits only what an async function returns.

async function roundTrips(strategy: "threads" | "processes", b: Deno.BenchContext) {
  await using ex = new ParallelExecutor({ strategy, maxWorkers: 1 });
  for (let i = 0; i < WARMUP; i++) await ex.submit(work.noop, undefined);
  b.start();
  for (let i = 0; i < CALLS; i++) await ex.submit(work.noop, undefined);
  b.end();
}

Deno.bench(
  { name: "threads", group: latency, baseline: true, n: 20 },
  async (b) => await roundTrips("threads", b),
);

Deno.bench({ name: "processes", group: latency, n: 20 }, async (b) => {
  await roundTrips("processes", b);
});

const startup = "start + first submit(noop), 1 process";

Deno.bench(
  { name: 'bare spawn: deno run _ready.mjs until "ready"', group: startup, baseline: true, n: 10 },
  async (b) => {
    b.start();
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", READY_SCRIPT],
      stdin: "null",
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    const reader = child.stdout.getReader();
    const decoder = new TextDecoder();
    let text = "";
    let ready = false;
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      if (ready) continue;
      text += decoder.decode(value, { stream: true });
      if (text.includes("ready")) {
        b.end();
        ready = true;
      }
    }
    const status = await child.status;
    if (!ready || !status.success) throw new Error(`_ready.mjs failed: ${JSON.stringify(status)}`);
  },
);

Deno.bench({ name: "processes pool", group: startup, n: 10 }, async (b) => {
  b.start();
  const ex = new ParallelExecutor({ strategy: "processes", maxWorkers: 1 });
  try {
    await ex.submit(work.noop, undefined);
    b.end();
  } finally {
    await ex.close();
  }
});
