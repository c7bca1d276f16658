/**
 * `deno bench -A --no-check bench/ablation.bench.ts`: two workloads of `bench/ablation.ts`
 * (issue 5), each group running one map per measurement on a warm executor of every strategy
 * (2 workers), serial as the baseline, so that Deno's summary prints the ratios:
 *
 * - small: 2,000 items of ~20 µs (`spin`), where a warm pool beats serial but auto, which
 *   counts a pool start it never pays, stays serial;
 * - skewed: 64 items of ~2 ms with 4 of them 50× slower (at 8, 24, 40 and 56).
 *
 * Executors are created and warmed (two maps: pools started, the task loaded, auto's time per
 * item known) before `b.start()` and closed after `b.end()`. The iteration counts assume the
 * reference machine (`SPIN_ITERATIONS_20MS`); `ablation.ts` calibrates them per runtime, so its
 * tables, not this file, are what the targets are judged on.
 *
 * @module
 */

import { ParallelExecutor, tasks } from "../mod.ts";
import type { ExecutorOptions } from "../mod.ts";
import { spin, SPIN_ITERATIONS_20MS } from "./_ablation_work.ts";

const work = tasks<typeof import("./_ablation_work.ts")>(
  new URL("./_ablation_work.ts", import.meta.url),
);

const WORKERS = 2;
const PER_MS = SPIN_ITERATIONS_20MS / 20;

const STRATEGIES: [string, ExecutorOptions][] = [
  ["serial", { strategy: "serial" }],
  ["threads", { strategy: "threads", maxWorkers: WORKERS }],
  ["processes", { strategy: "processes", maxWorkers: WORKERS }],
  ["auto", { strategy: "auto", maxWorkers: WORKERS }],
  ["naive (threads, chunkSize 1)", { strategy: "threads", maxWorkers: WORKERS, chunkSize: 1 }],
];

function workload(name: string, inputs: number[], n: number): void {
  const expected = inputs.map((n) => spin(n));
  const check = (values: number[]): void => {
    if (values.length !== expected.length || values.some((v, k) => v !== expected[k])) {
      throw new Error(`${name}: wrong results`);
    }
  };
  for (const [label, options] of STRATEGIES) {
    // Each bench function must itself be `async`: Deno awaits only what an async function returns.
    Deno.bench(
      { name: label, group: name, baseline: label === "serial", n, warmup: 0 },
      async (b) => {
        await using ex = new ParallelExecutor(options);
        for (let i = 0; i < 2; i++) check(await ex.map(work.spin, inputs));
        b.start();
        const values = await ex.map(work.spin, inputs);
        b.end();
        check(values);
      },
    );
  }
}

workload(
  `small: 2,000 × ~20 µs, ${WORKERS} workers, warm`,
  new Array(2000).fill(Math.round(PER_MS * 0.02)),
  10,
);

const skewed: number[] = new Array(64).fill(Math.round(PER_MS * 2));
for (const k of [8, 24, 40, 56]) skewed[k] *= 50;
workload(`skewed: 64 × ~2 ms, 4 of them 50×, ${WORKERS} workers, warm`, skewed, 5);
