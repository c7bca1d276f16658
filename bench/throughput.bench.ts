/**
 * `deno bench -A --no-check bench/throughput.bench.ts`: the throughput scenario
 * (`throughput.ts`) as Deno benches, each group against its baseline so that Deno's summary
 * prints the ratios:
 *
 * - cpu (part a): 64 CPU-bound tasks of ~20 ms (uncalibrated: `SPIN_ITERATIONS_20MS`),
 *   serially and on two workers of a warm pool, and cold (the pool's start included);
 * - items (part b): 200,000 trivial items through `map` on two workers, against a bare pool
 *   posting one message per item.
 *
 * Each iteration starts its own pool and warms it before `b.start()`, and closes it after
 * `b.end()`, so no worker outlives the bench.
 *
 * `--no-check`: with type checking on, Deno re-checks each worker's module graph at every
 * worker start (~0.6 s each), which would swamp the figures; see bench/README.md.
 *
 * @module
 */

import { ParallelExecutor } from "../mod.ts";
import { spin, SPIN_ITERATIONS_20MS } from "./work.ts";
import { bareMap, barePoolBench } from "./_bare.ts";
import { expectValues, workTasks } from "./_measure.ts";
import { trivialItems } from "./throughput.ts";
import { cpuWork, TASK_MS } from "./throughput.ts";

const TASKS = 64;
const ITEMS = 200_000;
const WORKERS = 2;

// Each bench function must itself be `async`: Deno awaits only what an async function returns.

const cpu = cpuWork(TASKS, SPIN_ITERATIONS_20MS);
const checkCpu = (values: number[]): void =>
  expectValues(values, new Array(TASKS).fill(cpu.expected), "cpu");
const group = `cpu: ${TASKS} × ~${TASK_MS} ms`;

Deno.bench({ name: "serial loop", group, baseline: true, n: 5, warmup: 1 }, () => {
  checkCpu(cpu.inputs.map((n) => spin(n)));
});

Deno.bench(
  { name: `threads, ${WORKERS} workers, warm pool`, group, n: 5, warmup: 1 },
  async (b) => {
    await using ex = new ParallelExecutor({ strategy: "threads", maxWorkers: WORKERS });
    checkCpu(await ex.map(workTasks.spin, cpu.inputs));
    b.start();
    const values = await ex.map(workTasks.spin, cpu.inputs);
    b.end();
    checkCpu(values);
  },
);

Deno.bench(
  { name: `threads, ${WORKERS} workers, cold (pool start included)`, group, n: 5, warmup: 1 },
  async (b) => {
    b.start();
    await using ex = new ParallelExecutor({ strategy: "threads", maxWorkers: WORKERS });
    const values = await ex.map(workTasks.spin, cpu.inputs);
    b.end();
    checkCpu(values);
  },
);

const { items, expected } = trivialItems(ITEMS);
const throughput = `map: ${ITEMS.toLocaleString("en-US")} trivial items, ${WORKERS} workers`;

Deno.bench(
  { name: "bare pool, one message per item", group: throughput, baseline: true, n: 10 },
  barePoolBench(
    WORKERS,
    (workers) => bareMap(workers, items),
    (values) => expectValues(values, expected, "bare pool"),
  ),
);

Deno.bench({ name: "fanout map()", group: throughput, n: 10 }, async (b) => {
  await using ex = new ParallelExecutor({ strategy: "threads", maxWorkers: WORKERS });
  expectValues(await ex.map(workTasks.inc, items), expected, "map");
  b.start();
  const values = await ex.map(workTasks.inc, items);
  b.end();
  expectValues(values, expected, "map");
});
