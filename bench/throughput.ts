/**
 * Throughput on threads: how much work a warm pool gets through, against a baseline measured
 * in the same process.
 *
 * - a. CPU-bound speedup: 64 tasks of ~20 ms (`work.spin`, calibrated here) on 2 workers,
 *   warm, cold and on `strategy: "serial"`, against the same calls in a plain loop; and a bare
 *   pool of 2 raw workers with one task in flight each (`_bare_cpu_worker.js`), what the
 *   machine allows at that moment.
 * - b. 200,000 trivial items (`work.inc`) through `map`, `chunkSize: "auto"`: items/s against
 *   a bare pool posting one message per item (`_bare.ts`).
 *
 * ```sh
 * node_modules/.bin/deno run -A bench/run.ts throughput [--quick] [--cpu-reps 3]
 * ```
 *
 * @module
 */

import process from "node:process";
import { ParallelExecutor } from "../mod.ts";
import * as work from "./work.ts";
import { bareMap, bareRunEach, startBarePool, stopBarePool } from "./_bare.ts";
import type { Figure, PartResult, Scenario, SizeSpec } from "./_measure.ts";
import {
  benchLog,
  calibrateSpin,
  expectValues,
  figure,
  load,
  median,
  noise,
  paired,
  timeAsync,
  timeSync,
  workTasks,
} from "./_measure.ts";

type Size = "workers" | "cpuTasks" | "cpuReps" | "items" | "itemReps";

const SIZES: Record<Size, SizeSpec> = {
  workers: { flag: "workers", full: 2, quick: 2, help: "maxWorkers for parts a, b, d, e" },
  cpuTasks: { flag: "cpu-tasks", full: 64, quick: 16, help: "a: ~20 ms tasks per map" },
  cpuReps: { flag: "cpu-reps", full: 5, quick: 1, help: "a: timed repetitions" },
  items: { flag: "items", full: 200_000, quick: 50_000, help: "b: trivial items per map" },
  itemReps: { flag: "item-reps", full: 5, quick: 2, help: "b: timed repetitions" },
};

const log = benchLog("throughput");

/** The length of one CPU-bound task. */
export const TASK_MS = 20;

/** `count` items `0 … count - 1`, and their `inc` results: the trivial-items workload. */
export function trivialItems(count: number): { items: number[]; expected: number[] } {
  const items = Array.from({ length: count }, (_, i) => i);
  return { items, expected: items.map((i) => i + 1) };
}

/** `count` CPU-bound tasks of `iterations` each, and the checksum each must give. */
export function cpuWork(count: number, iterations: number): { inputs: number[]; expected: number } {
  return { inputs: new Array(count).fill(iterations), expected: work.spin(iterations) };
}

// ---------------------------------------------------------------------------------------------
// a. CPU-bound speedup

async function cpuSpeedup(o: Record<Size, number>): Promise<PartResult> {
  const iterations = Math.round(calibrateSpin() * TASK_MS);
  const taskMs = median([0, 1, 2, 3, 4].map(() => timeSync(() => work.spin(iterations))));
  const { inputs, expected } = cpuWork(o.cpuTasks, iterations);
  const check = (values: number[], what: string, count = inputs.length): void =>
    expectValues(values, new Array(count).fill(expected), what);
  const serial: number[] = [];
  const warm: number[] = [];
  const cold: number[] = [];
  const strategySerial: number[] = [];
  const bare: number[] = [];
  const warmRatio: number[] = [];
  const coldRatio: number[] = [];
  const bareRatio: number[] = [];

  const pool = new ParallelExecutor({ strategy: "threads", maxWorkers: o.workers });
  const serialEx = new ParallelExecutor({ strategy: "serial" });
  const barePool = await startBarePool(o.workers, "spin");
  try {
    log(
      `a: warm-up map (${o.cpuTasks} tasks of ${iterations} iterations, ~${taskMs.toFixed(1)} ms)`,
    );
    check(await pool.map(workTasks.spin, inputs), "warm-up map");
    check(await bareRunEach(barePool, inputs), "bare pool warm-up");
    check(await serialEx.map(workTasks.spin, inputs.slice(0, 2)), "serial strategy warm-up", 2);
    for (let rep = 0; rep < o.cpuReps; rep++) {
      const before = load();
      let values: number[] = [];
      const s = timeSync(() => {
        values = inputs.map((n) => work.spin(n));
      });
      check(values, "serial loop");
      const b = await timeAsync(async () =>
        check(await bareRunEach(barePool, inputs), "bare pool")
      );
      const w = await timeAsync(async () =>
        check(await pool.map(workTasks.spin, inputs), "warm map")
      );
      // The cold figure runs from `new ParallelExecutor` to the map's result; close() is not in it.
      let fresh: ParallelExecutor | undefined;
      let c: number;
      try {
        c = await timeAsync(async () => {
          fresh = new ParallelExecutor({ strategy: "threads", maxWorkers: o.workers });
          check(await fresh.map(workTasks.spin, inputs), "cold map");
        });
      } finally {
        await fresh?.close();
      }
      const ss = await timeAsync(async () =>
        check(await serialEx.map(workTasks.spin, inputs), "serial strategy")
      );
      serial.push(s);
      warm.push(w);
      cold.push(c);
      strategySerial.push(ss);
      bare.push(b);
      bareRatio.push(s / b);
      warmRatio.push(s / w);
      coldRatio.push(s / c);
      log(
        `a: rep ${rep + 1}/${o.cpuReps}: serial ${s.toFixed(0)} ms, bare ${b.toFixed(0)} ms, ` +
          `warm ${w.toFixed(0)} ms, cold ${c.toFixed(0)} ms, strategy "serial" ` +
          `${ss.toFixed(0)} ms; ${noise(before, load(), false)}`,
      );
    }
  } finally {
    await pool.close();
    await serialEx.close();
    await stopBarePool(barePool);
  }
  // The machine is shared: noise only ever adds time, so each figure takes the best of its
  // repetitions; the median of the paired (same-repetition) ratios is in the note.
  const best = Math.min(...serial);
  const base = { name: "serial loop", value: best, unit: "ms" };
  const what = `${o.cpuTasks} × ~${TASK_MS} ms tasks`;
  const speedup = (name: string, times: number[], rest: Partial<Figure>): Figure =>
    figure({
      part: "a",
      name: `CPU: ${what}, ${name}`,
      value: Math.min(...times),
      unit: "ms",
      baseline: base,
      ratio: best / Math.min(...times),
      ratioLabel: "speedup",
      ...rest,
    });
  return {
    figures: [
      speedup(`warm pool, ${o.workers} workers`, warm, {
        target: { on: "ratio", op: ">=", value: 1.95, label: "≥ 1.95×" },
        note: `best of ${o.cpuReps}; ${paired(warmRatio)}; ${
          (100 * Math.min(...bare) / Math.min(...warm)).toFixed(1)
        }% of the bare pool's speedup`,
      }),
      speedup(`bare pool of ${o.workers} raw workers`, bare, {
        note: `what this machine allows right now: one task in flight per worker, raw ` +
          `postMessage; best of ${o.cpuReps}; ${paired(bareRatio)}`,
      }),
      speedup("cold (new executor + map)", cold, {
        note: `includes starting the pool and importing work.ts in each worker (close() is not ` +
          `timed); best of ${o.cpuReps}; ${paired(coldRatio)}`,
      }),
      speedup('strategy "serial"', strategySerial, {}),
    ],
    notes: [
      `a: task = work.spin(${iterations}) — ${
        taskMs.toFixed(1)
      } ms on the main thread (median of 5)`,
    ],
  };
}

// ---------------------------------------------------------------------------------------------
// b. Throughput of trivial items against a bare pool

async function manyItems(o: Record<Size, number>): Promise<PartResult> {
  const { items, expected } = trivialItems(o.items);
  const pool = new ParallelExecutor({ strategy: "threads", maxWorkers: o.workers });
  const bare = await startBarePool(o.workers);
  const lib: number[] = [];
  const raw: number[] = [];
  const ratios: number[] = [];
  /** One map, checked: items/s. */
  const rate = async (map: () => Promise<number[]>, what: string): Promise<number> => {
    let values: number[] = [];
    const ms = await timeAsync(async () => {
      values = await map();
    });
    expectValues(values, expected, what);
    return o.items / (ms / 1000);
  };
  const runBare = (): Promise<number> => rate(() => bareMap(bare, items), "bare pool");
  const runLib = (): Promise<number> => rate(() => pool.map(workTasks.inc, items), "map");
  try {
    log(`b: warm-up (${o.items} items through each)`);
    expectValues(await bareMap(bare, items), expected, "bare warm-up");
    expectValues(await pool.map(workTasks.inc, items), expected, "map warm-up");
    for (let rep = 0; rep < o.itemReps; rep++) {
      // Alternate which goes first, so neither always runs right after the other's garbage.
      let r: number;
      let l: number;
      if (rep % 2 === 0) {
        r = await runBare();
        l = await runLib();
      } else {
        l = await runLib();
        r = await runBare();
      }
      raw.push(r);
      lib.push(l);
      ratios.push(l / r);
      log(
        `b: rep ${rep + 1}/${o.itemReps}: map ${Math.round(l)} items/s, bare ${
          Math.round(r)
        } items/s`,
      );
    }
  } finally {
    await pool.close();
    await stopBarePool(bare);
  }
  return {
    figures: [figure({
      part: "b",
      name: `map(): ${o.items.toLocaleString("en-US")} trivial items, ${o.workers} workers`,
      value: Math.max(...lib),
      unit: "items/s",
      baseline: { name: "bare pool", value: Math.max(...raw), unit: "items/s" },
      ratio: Math.max(...lib) / Math.max(...raw),
      ratioLabel: "× bare",
      target: { on: "ratio", op: ">=", value: 10, label: "≥ 10×" },
      note: `work.inc, chunkSize "auto"; bare pool = raw postMessage, one message per item, ` +
        `all posted up front; best of ${o.itemReps}, ${paired(ratios)}`,
    })],
    notes: [],
  };
}

/** Parts a (CPU-bound speedup) and b (trivial items against a bare pool). */
export const throughput: Scenario<Size> = {
  name: "throughput",
  sizes: SIZES,
  parts: { a: cpuSpeedup, b: manyItems },
};

// Run as a script, this file runs its scenario through run.ts. Not awaited at the top level:
// run.ts imports this module, which must finish evaluating first.
if (import.meta.main) {
  import("./run.ts").then(({ main }) => main(process.argv.slice(2), "throughput"));
}
