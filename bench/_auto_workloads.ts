/**
 * The workloads of the auto scenario (issue 5) and the ways of running them: each workload's
 * task, its inputs for an executor and the results it must give, and the executor options of
 * each way (serial, threads, processes, auto, and the "naive" rule).
 *
 * @module
 */

import type { ExecutorOptions, Explanation, ParallelExecutor } from "../mod.ts";
import * as work from "./work.ts";
import type { Payload } from "./_payload.ts";
import { benchLog, calibrateSpin, expectValues, workTasks } from "./_measure.ts";
import { payload } from "./_payload.ts";

/** The machine's cores, and the setting. */
export const WORKERS = 2;
/** How much slower the skewed workload's slow items are. */
export const SKEW_FACTOR = 50;

export const WORKLOADS = ["tiny", "small", "cpu", "skewed", "payload", "io"] as const;
export type WorkloadName = typeof WORKLOADS[number];

/** The ways of running a workload. */
export const STRATEGIES = ["serial", "threads", "processes", "auto", "naive"] as const;
export type StrategyKey = typeof STRATEGIES[number];
/** The strategies "best fixed" is chosen among (naive is a rule, not one of them). */
export const FIXED = ["serial", "threads", "processes"] as const;

/** The sizes a workload reads. */
export type WorkloadSize =
  | "tinyItems"
  | "smallItems"
  | "smallUs"
  | "cpuItems"
  | "cpuMs"
  | "skewItems"
  | "skewMs"
  | "skewSlow"
  | "sharedMb"
  | "sharedTasks"
  | "sharedPasses"
  | "ioItems"
  | "ioMs";

const log = benchLog("auto");

/** The executor options of each way. */
export function optionsFor(key: StrategyKey): ExecutorOptions {
  switch (key) {
    case "serial":
      return { strategy: "serial" };
    case "threads":
      return { strategy: "threads", maxWorkers: WORKERS };
    case "processes":
      return { strategy: "processes", maxWorkers: WORKERS };
    case "auto":
      return { strategy: "auto", maxWorkers: WORKERS };
    case "naive":
      return { strategy: "threads", maxWorkers: WORKERS, chunkSize: 1 };
  }
}

// ---------------------------------------------------------------------------------------------
// Calibration

/** Iterations of `spin` per millisecond on this runtime's main thread, once measured. */
let iterationsPerMs: number | undefined;

/** The calibration note, once a workload has needed it. */
export function calibrationNotes(): string[] {
  return iterationsPerMs === undefined ? [] : [
    `spin calibrated on the main thread: ${
      Math.round(iterationsPerMs).toLocaleString("en-US")
    } iterations per ms`,
  ];
}

/** The iterations of `spin` that take `msEach` here. */
export function spinFor(msEach: number): number {
  iterationsPerMs ??= calibrateSpin();
  return Math.max(1, Math.round(iterationsPerMs * msEach));
}

// ---------------------------------------------------------------------------------------------
// Workloads

/** The inputs of one executor's maps, and how to let go of what they hold. */
export interface Prepared {
  items: unknown[];
  release(): void;
}

/** One workload: its task, how to build its inputs for an executor, and what it must give. */
export interface Workload {
  name: WorkloadName;
  /** What it is, for the table: "20,000 × n + 1". */
  what: string;
  prepare(ex: ParallelExecutor): Prepared;
  map(ex: ParallelExecutor, items: unknown[]): Promise<unknown[]>;
  explain(ex: ParallelExecutor, items: unknown[]): Promise<Explanation>;
  expected: unknown[];
}

function count(n: number): string {
  return n.toLocaleString("en-US");
}

function plain(items: unknown[]): (ex: ParallelExecutor) => Prepared {
  return () => ({ items, release() {} });
}

/** A workload of `spin` calls of the given sizes. */
export function spinWorkload(name: WorkloadName, inputs: number[], what: string): Workload {
  const expected = new Map<number, number>();
  for (const n of new Set(inputs)) expected.set(n, work.spin(n));
  return {
    name,
    what,
    prepare: plain(inputs),
    map: (ex, items) => ex.map(workTasks.spin, items as number[]),
    explain: (ex, items) => ex.explain(workTasks.spin, items as number[]),
    expected: inputs.map((n) => expected.get(n)),
  };
}

/** Where the skewed workload's slow items are: the middle of each of `slow` equal stretches. */
export function slowPositions(items: number, slow: number): number[] {
  return Array.from(
    { length: Math.min(slow, items) },
    (_, k) => Math.floor(((k + 0.5) * items) / slow),
  );
}

/** The payload workload's array, made once per run (it is large). */
let cached: { mb: number; tasks: number; payload: Payload } | undefined;

/** The workload `name` at the sizes asked for. */
export function buildWorkload(name: WorkloadName, o: Record<WorkloadSize, number>): Workload {
  switch (name) {
    case "tiny": {
      const inputs = Array.from({ length: o.tinyItems }, (_, i) => i);
      return {
        name,
        what: `${count(o.tinyItems)} × n + 1`,
        prepare: plain(inputs),
        map: (ex, items) => ex.map(workTasks.inc, items as number[]),
        explain: (ex, items) => ex.explain(workTasks.inc, items as number[]),
        expected: inputs.map((n) => work.inc(n)),
      };
    }
    case "small": {
      const n = spinFor(o.smallUs / 1000);
      return spinWorkload(
        name,
        new Array(o.smallItems).fill(n),
        `${count(o.smallItems)} × ~${o.smallUs} µs`,
      );
    }
    case "cpu": {
      const n = spinFor(o.cpuMs);
      return spinWorkload(name, new Array(o.cpuItems).fill(n), `${o.cpuItems} × ~${o.cpuMs} ms`);
    }
    case "skewed": {
      const fast = spinFor(o.skewMs);
      const inputs: number[] = new Array(o.skewItems).fill(fast);
      const at = slowPositions(o.skewItems, o.skewSlow);
      for (const k of at) inputs[k] = fast * SKEW_FACTOR;
      return spinWorkload(
        name,
        inputs,
        `${o.skewItems} × ~${o.skewMs} ms, ${at.length} of them ${SKEW_FACTOR}× (at ${
          at.join(", ")
        })`,
      );
    }
    case "payload": {
      if (cached?.mb !== o.sharedMb || cached.tasks !== o.sharedTasks) {
        log(`payload: filling ${o.sharedMb} MiB`);
        cached = {
          mb: o.sharedMb,
          tasks: o.sharedTasks,
          payload: payload(o.sharedMb, o.sharedTasks),
        };
      }
      const { data, ranges } = cached.payload;
      return {
        name,
        what: `${o.sharedMb} MiB shared, ${o.sharedTasks} ranges × ${o.sharedPasses} passes`,
        prepare: (ex) => {
          const handle = ex.share(data);
          return {
            items: ranges.map((r) => ({ data: handle, ...r, passes: o.sharedPasses })),
            release: () => handle.release(),
          };
        },
        map: (ex, items) => ex.map(workTasks.passesSum, items as work.PassesInput[]),
        explain: (ex, items) => ex.explain(workTasks.passesSum, items as work.PassesInput[]),
        expected: ranges.map((r) => work.weightedSum(data, r.start, r.end, o.sharedPasses)),
      };
    }
    case "io": {
      const inputs = Array.from({ length: o.ioItems }, (_, i) => ({ ms: o.ioMs, value: i }));
      return {
        name,
        what: `${o.ioItems} × await ${o.ioMs} ms timer`,
        prepare: plain(inputs),
        map: (ex, items) => ex.map(workTasks.wait, items as work.WaitInput[]),
        explain: (ex, items) => ex.explain(workTasks.wait, items as work.WaitInput[]),
        expected: inputs.map((input) => work.waitAnswer(input.value)),
      };
    }
  }
}

/** Fails unless a map gave the workload's results. */
export function check(w: Workload, values: unknown[], what: string): void {
  expectValues(values, w.expected, `${w.name}, ${what}`);
}
