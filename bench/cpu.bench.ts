/**
 * `deno bench -A --no-check bench/cpu.bench.ts`: 64 CPU-bound tasks of ~20 ms, serially and on two
 * workers of a warm pool. Deno reports the speedup against the serial baseline.
 *
 * Each iteration starts its own pool and runs a warm-up map before the timer starts
 * (`b.start()`), then closes the pool, so no worker outlives the bench.
 *
 * `--no-check`: with type checking on, Deno re-checks each worker's module graph at every
 * worker start (~0.6 s each), which would swamp the figures; see bench/README.md.
 *
 * @module
 */

import { ParallelExecutor, tasks } from "../mod.ts";
import { spin, SPIN_ITERATIONS_20MS } from "./work.ts";

const work = tasks<typeof import("./work.ts")>(new URL("./work.ts", import.meta.url));
const TASKS = 64;
const WORKERS = 2;
const inputs: number[] = new Array(TASKS).fill(SPIN_ITERATIONS_20MS);
const group = `cpu: ${TASKS} × ~20 ms`;

Deno.bench({ name: "serial loop", group, baseline: true, n: 5, warmup: 1 }, () => {
  for (const n of inputs) spin(n);
});

Deno.bench(
  { name: `threads, ${WORKERS} workers, warm pool`, group, n: 5, warmup: 1 },
  async (b) => {
    await using ex = new ParallelExecutor({ strategy: "threads", maxWorkers: WORKERS });
    await ex.map(work.spin, inputs);
    b.start();
    await ex.map(work.spin, inputs);
    b.end();
  },
);

Deno.bench(
  { name: `threads, ${WORKERS} workers, cold (pool start included)`, group, n: 5, warmup: 1 },
  async (b) => {
    b.start();
    const ex = new ParallelExecutor({ strategy: "threads", maxWorkers: WORKERS });
    try {
      await ex.map(work.spin, inputs);
      b.end();
    } finally {
      await ex.close();
    }
  },
);
