/**
 * `deno bench -A --no-check bench/auto.bench.ts`: two workloads of the auto scenario
 * (`auto.ts`, issue 5) at its full sizes, each group running one map per measurement on a
 * warm executor of every way (2 workers), serial as the baseline, so that Deno's summary
 * prints the ratios:
 *
 * - small: 2,000 items of ~20 µs (`spin`), where a warm pool beats serial but auto, which
 *   counts a pool start it never pays, stays serial;
 * - skewed: 64 items of ~2 ms with 4 of them 50× slower (at 8, 24, 40 and 56).
 *
 * Executors are created and warmed (two maps: pools started, the task loaded, auto's time per
 * item known) before `b.start()` and closed after `b.end()`. `run.ts auto` interleaves the ways
 * and is what the targets are judged on.
 *
 * @module
 */

import { ParallelExecutor } from "../mod.ts";
import { fullSizes } from "./_measure.ts";
import { buildWorkload, check, optionsFor, STRATEGIES, WORKERS } from "./_auto_workloads.ts";
import type { WorkloadName } from "./_auto_workloads.ts";
import { auto } from "./auto.ts";

const sizes = fullSizes(auto);

function workload(name: WorkloadName, n: number): void {
  const w = buildWorkload(name, sizes);
  const group = `${name}: ${w.what}, ${WORKERS} workers, warm`;
  for (const key of STRATEGIES) {
    // Each bench function must itself be `async`: Deno awaits only what an async function returns.
    Deno.bench({ name: key, group, baseline: key === "serial", n, warmup: 0 }, async (b) => {
      await using ex = new ParallelExecutor(optionsFor(key));
      const prepared = w.prepare(ex);
      try {
        for (let i = 0; i < 2; i++) check(w, await w.map(ex, prepared.items), "warm-up");
        b.start();
        const values = await w.map(ex, prepared.items);
        b.end();
        check(w, values, key);
      } finally {
        prepared.release();
      }
    });
  }
}

workload("small", 10);
workload("skewed", 5);
