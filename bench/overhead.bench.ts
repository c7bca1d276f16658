/**
 * `deno bench -A --no-check bench/overhead.bench.ts`: what the pool costs over raw `postMessage`, each
 * against a bare baseline (`_bare.ts`) in the same group:
 * - throughput: 200,000 trivial items through `map` on two workers;
 * - latency: 1,000 sequential `submit()` round trips on one worker (run the bench under
 *   `taskset -c 0` for the figure the targets refer to);
 * - start-up: a fresh pool of two workers, its first task, and `close()`.
 *
 * Pools are created and warmed before the timer starts and closed after it stops.
 *
 * `--no-check`: with type checking on, Deno re-checks each worker's module graph at every
 * worker start (~0.6 s each), which would swamp the figures; see bench/README.md.
 *
 * @module
 */

import { ParallelExecutor, tasks } from "../mod.ts";
import { bareMap, barePing, startBarePool, stopBarePool } from "./_bare.ts";

const work = tasks<typeof import("./work.ts")>(new URL("./work.ts", import.meta.url));
const workJs = tasks<typeof import("./work_js.js")>(new URL("./work_js.js", import.meta.url));
const ITEMS = 200_000;
const PINGS = 1_000;
const WORKERS = 2;
const items = Array.from({ length: ITEMS }, (_, i) => i);

const throughput = `map: ${ITEMS.toLocaleString("en-US")} trivial items, ${WORKERS} workers`;

Deno.bench(
  { name: "bare pool, one message per item", group: throughput, baseline: true, n: 10 },
  async (b) => {
    const workers = await startBarePool(WORKERS);
    try {
      await bareMap(workers, items);
      b.start();
      await bareMap(workers, items);
      b.end();
    } finally {
      await stopBarePool(workers);
    }
  },
);

Deno.bench({ name: "fanout map()", group: throughput, n: 10 }, async (b) => {
  await using ex = new ParallelExecutor({ strategy: "threads", maxWorkers: WORKERS });
  await ex.map(work.inc, items);
  b.start();
  await ex.map(work.inc, items);
  b.end();
});

const latency = `${PINGS} sequential round trips, 1 worker`;

Deno.bench(
  { name: "raw postMessage ping-pong", group: latency, baseline: true, n: 20 },
  async (b) => {
    const [worker] = await startBarePool(1);
    try {
      for (let i = 0; i < PINGS; i++) await barePing(worker, i);
      b.start();
      for (let i = 0; i < PINGS; i++) await barePing(worker, i);
      b.end();
    } finally {
      await worker.terminate();
    }
  },
);

Deno.bench({ name: "fanout submit(noop)", group: latency, n: 20 }, async (b) => {
  await using ex = new ParallelExecutor({ strategy: "threads", maxWorkers: 1 });
  for (let i = 0; i < PINGS; i++) await ex.submit(work.noop, undefined);
  b.start();
  for (let i = 0; i < PINGS; i++) await ex.submit(work.noop, undefined);
  b.end();
});

const startup = `start + first task + close, ${WORKERS} workers`;

Deno.bench(
  { name: "bare workers: start, ping, terminate", group: startup, baseline: true, n: 10 },
  async () => {
    const workers = await startBarePool(WORKERS);
    await barePing(workers[0], 1);
    await stopBarePool(workers);
  },
);

Deno.bench({ name: "fanout, inline task", group: startup, n: 10 }, async () => {
  const ex = new ParallelExecutor({ strategy: "threads", maxWorkers: WORKERS });
  await ex.submit((n: number) => n + 1, 1);
  await ex.close();
});

Deno.bench({ name: "fanout, module task (.js)", group: startup, n: 10 }, async () => {
  const ex = new ParallelExecutor({ strategy: "threads", maxWorkers: WORKERS });
  await ex.submit(workJs.inc, 1);
  await ex.close();
});

Deno.bench({ name: "fanout, module task (.ts)", group: startup, n: 10 }, async () => {
  const ex = new ParallelExecutor({ strategy: "threads", maxWorkers: WORKERS });
  await ex.submit(work.inc, 1);
  await ex.close();
});
