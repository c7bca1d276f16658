/**
 * `deno bench -A --no-check bench/shared.bench.ts`: shared payloads (`ex.share`), the core
 * workloads of `bench/shared.ts`, each group against a baseline in the same group:
 * - sum: a 64 MiB `Float64Array` summed by 16 tasks (disjoint ranges) on a warm 2-thread pool
 *   holding it through `share`, with `chunkSize` "auto" and 1, against the same 16 calls of
 *   `rangeSum` in a plain loop on the main thread; 20 sums per measurement;
 * - clone: the same map with the array cloned into every task's message (`chunkSize: 1`),
 *   against the map with `share`;
 * - processes: the same on a warm 2-process pool with a 16 MiB array: `share()` + the map
 *   (each process gets the array once), against the map that sends it with every task.
 *
 * Pools are created and warmed before `b.start()` and closed after `b.end()`. Bytes per task
 * and bytes written (parts s1 and s4 of `shared.ts`) are counts, not times: only `shared.ts`
 * reports them.
 *
 * @module
 */

import { ParallelExecutor, sharedArray, tasks } from "../mod.ts";
import type { Shared } from "../mod.ts";
import { fillValue, rangeSum, sumRange } from "./_shared_work.ts";

const work = tasks<typeof import("./_shared_work.ts")>(
  new URL("./_shared_work.ts", import.meta.url),
);

const MIB = 1 << 20;
const TASKS = 16;
const WORKERS = 2;
/** Sums per measurement in the sum group, after as many warm-up sums. */
const SUMS = 20;

interface Workload {
  shared: Float64Array;
  plain: Float64Array;
  ranges: { start: number; end: number }[];
  expected: number[];
}

function workload(mb: number): Workload {
  const n = (mb * MIB) / Float64Array.BYTES_PER_ELEMENT;
  const shared = sharedArray(Float64Array, n);
  for (let i = 0; i < n; i++) shared[i] = fillValue(i);
  const plain = new Float64Array(n);
  plain.set(shared);
  const ranges = Array.from({ length: TASKS }, (_, k) => ({
    start: Math.floor((k * n) / TASKS),
    end: Math.floor(((k + 1) * n) / TASKS),
  }));
  return { shared, plain, ranges, expected: ranges.map((r) => sumRange(shared, r.start, r.end)) };
}

const big = workload(64);
const small = workload(16);

function check(values: number[], w: Workload): void {
  if (values.length !== w.expected.length || values.some((v, k) => v !== w.expected[k])) {
    throw new Error("wrong sums");
  }
}

function inputs(w: Workload, data: Shared<Float64Array> | Float64Array) {
  return w.ranges.map((r) => ({ data, start: r.start, end: r.end }));
}

// Each bench function must itself be `async`: Deno awaits only what an async function returns.

const sum = `sum 64 MiB in ${TASKS} tasks, ${WORKERS} threads, ${SUMS} sums`;

Deno.bench({ name: "serial loop (main thread)", group: sum, baseline: true, n: 10 }, (b) => {
  const handleLike = { value: big.shared };
  const items = inputs(big, big.shared).map((i) => ({ ...i, data: handleLike }));
  for (let i = 0; i < SUMS; i++) check(items.map((input) => rangeSum(input)), big);
  b.start();
  for (let i = 0; i < SUMS; i++) check(items.map((input) => rangeSum(input)), big);
  b.end();
});

async function sums(chunkSize: number | "auto", b: Deno.BenchContext) {
  await using ex = new ParallelExecutor({ strategy: "threads", maxWorkers: WORKERS });
  using handle = ex.share(big.shared);
  const items = inputs(big, handle);
  for (let i = 0; i < SUMS; i++) check(await ex.map(work.rangeSum, items, { chunkSize }), big);
  b.start();
  for (let i = 0; i < SUMS; i++) check(await ex.map(work.rangeSum, items, { chunkSize }), big);
  b.end();
}

Deno.bench({ name: 'share, chunkSize "auto"', group: sum, n: 10 }, async (b) => {
  await sums("auto", b);
});

Deno.bench({ name: "share, chunkSize 1", group: sum, n: 10 }, async (b) => {
  await sums(1, b);
});

const clone = `sum 64 MiB in ${TASKS} tasks, ${WORKERS} threads, chunkSize 1, one map`;

async function oneMap(kind: "share" | "clone", b: Deno.BenchContext) {
  await using ex = new ParallelExecutor({ strategy: "threads", maxWorkers: WORKERS });
  using handle = ex.share(big.shared);
  const items = inputs(big, kind === "share" ? handle : big.plain);
  check(await ex.map(work.rangeSum, items, { chunkSize: 1 }), big);
  b.start();
  check(await ex.map(work.rangeSum, items, { chunkSize: 1 }), big);
  b.end();
}

Deno.bench({ name: "share", group: clone, baseline: true, n: 10 }, async (b) => {
  await oneMap("share", b);
});

Deno.bench({ name: "array cloned per task", group: clone, n: 3 }, async (b) => {
  await oneMap("clone", b);
});

const processes = `sum 16 MiB in ${TASKS} tasks, ${WORKERS} processes, chunkSize 1, one map`;

async function processMap(kind: "share" | "clone", b: Deno.BenchContext) {
  await using ex = new ParallelExecutor({ strategy: "processes", maxWorkers: WORKERS });
  // Start both processes and load the task module, sending nothing large.
  await ex.map(work.noop, new Array(WORKERS * 2).fill(undefined), { chunkSize: 1 });
  b.start();
  // share() is timed: the array goes to each process with the first task that needs it.
  using handle = kind === "share" ? ex.share(small.shared) : undefined;
  const values = await ex.map(work.rangeSum, inputs(small, handle ?? small.plain), {
    chunkSize: 1,
  });
  b.end();
  check(values, small);
}

Deno.bench({ name: "share() + map", group: processes, baseline: true, n: 5 }, async (b) => {
  await processMap("share", b);
});

Deno.bench({ name: "array sent with every task", group: processes, n: 3 }, async (b) => {
  await processMap("clone", b);
});
