/**
 * `deno bench -A --no-check bench/shared_payloads.bench.ts`: the shared-payload scenario
 * (`shared_payloads.ts`) as Deno benches, each group against a baseline in the same group:
 *
 * - sum (s2): a 64 MiB `Float64Array` summed by 16 tasks (disjoint ranges) on a warm 2-thread
 *   pool holding it through `share`, with `chunkSize` "auto" and 1, against the same 16 calls
 *   of `rangeSum` in a plain loop on the main thread; 20 sums per measurement;
 * - clone (s3): the same map with the array cloned into every task's message
 *   (`chunkSize: 1`), against the map with `share`;
 * - processes (s4): the same on a warm 2-process pool with a 16 MiB array: `share()` + the map
 *   (each process gets the array once), against the map that sends it with every task.
 *
 * Pools are created and warmed before `b.start()` and closed after `b.end()`. Bytes per task
 * and bytes written (parts s1 and s4) are counts, not times: only `run.ts` reports them.
 *
 * @module
 */

import { ParallelExecutor } from "../mod.ts";
import { rangeSum } from "./work.ts";
import type { Payload } from "./_payload.ts";
import { workTasks } from "./_measure.ts";
import { checkSums, payload, plainCopy, rangeInputs, rangeSums } from "./_payload.ts";
import { cloneKinds } from "./shared_payloads.ts";

const TASKS = 16;
const WORKERS = 2;
/** Sums per measurement in the sum group, after as many warm-up sums. */
const SUMS = 20;

interface Workload extends Payload {
  plain: Float64Array;
  expected: number[];
}

function workload(mb: number): Workload {
  const p = payload(mb, TASKS);
  return { ...p, plain: plainCopy(p.data), expected: rangeSums(p) };
}

const big = workload(64);
const small = workload(16);

function check(values: number[], w: Workload): void {
  checkSums(values, w.expected, "sums");
}

// Each bench function must itself be `async`: Deno awaits only what an async function returns.

const sum = `sum 64 MiB in ${TASKS} tasks, ${WORKERS} threads, ${SUMS} sums`;

Deno.bench({ name: "serial loop (main thread)", group: sum, baseline: true, n: 10 }, (b) => {
  const items = rangeInputs(big.ranges, { value: big.data });
  for (let i = 0; i < SUMS; i++) check(items.map((input) => rangeSum(input)), big);
  b.start();
  for (let i = 0; i < SUMS; i++) check(items.map((input) => rangeSum(input)), big);
  b.end();
});

for (const chunkSize of ["auto", 1] as const) {
  const name = `share, chunkSize ${chunkSize === "auto" ? '"auto"' : chunkSize}`;
  Deno.bench({ name, group: sum, n: 10 }, async (b) => {
    await using ex = new ParallelExecutor({ strategy: "threads", maxWorkers: WORKERS });
    using handle = ex.share(big.data);
    const items = rangeInputs(big.ranges, handle);
    for (let i = 0; i < SUMS; i++) {
      check(await ex.map(workTasks.rangeSum, items, { chunkSize }), big);
    }
    b.start();
    for (let i = 0; i < SUMS; i++) {
      check(await ex.map(workTasks.rangeSum, items, { chunkSize }), big);
    }
    b.end();
  });
}

const clone = `sum 64 MiB in ${TASKS} tasks, ${WORKERS} threads, chunkSize 1, one map`;

// cloneKinds: 0 is the array cloned per task, 1 is share, both with chunkSize 1.
for (const [kind, name, n] of [[1, "share", 10], [0, "array cloned per task", 3]] as const) {
  Deno.bench({ name, group: clone, baseline: kind === 1, n }, async (b) => {
    await using ex = new ParallelExecutor({ strategy: "threads", maxWorkers: WORKERS });
    using handle = ex.share(big.data);
    const map = cloneKinds(ex, ex, big.ranges, handle, big.plain)[kind];
    check(await map.run(), big);
    b.start();
    const values = await map.run();
    b.end();
    check(values, big);
  });
}

const processes = `sum 16 MiB in ${TASKS} tasks, ${WORKERS} processes, chunkSize 1, one map`;

for (
  const [kind, name, n] of [["share", "share() + map", 5], [
    "clone",
    "array sent with every task",
    3,
  ]] as const
) {
  Deno.bench({ name, group: processes, baseline: kind === "share", n }, async (b) => {
    await using ex = new ParallelExecutor({ strategy: "processes", maxWorkers: WORKERS });
    // Start both processes and load the task module, sending nothing large.
    await ex.map(workTasks.noop, new Array(WORKERS * 2).fill(undefined), { chunkSize: 1 });
    b.start();
    // share() is timed: the array goes to each process with the first task that needs it.
    using handle = kind === "share" ? ex.share(small.data) : undefined;
    const values = await ex.map(
      workTasks.rangeSum,
      rangeInputs(small.ranges, handle ?? small.plain),
      {
        chunkSize: 1,
      },
    );
    b.end();
    check(values, small);
  });
}
