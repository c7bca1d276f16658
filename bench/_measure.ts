/**
 * What every scenario measures and reports with: the shape of a scenario, statistics and
 * timers, the watchdog, the machine's load, figures with their targets, executors that close
 * within a limit, and the task handles of `work.ts`. The
 * report's format itself is in `_report.js`, plain JavaScript so that `compare.mjs` can load it
 * on Node 20; it is re-exported here.
 *
 * @module
 */

import { readFileSync } from "node:fs";
import { ParallelExecutor, tasks } from "../mod.ts";
import type { ExecutorOptions } from "../mod.ts";
import { detect, liveProcessPids } from "../src/runtime/mod.ts";
import { spin, SPIN_ITERATIONS_20MS } from "./work.ts";
import type { Figure } from "./_report.js";
import { meets } from "./_report.js";

export type { Figure, Report, Target } from "./_report.js";
export { formatReport, formatValue, REPORT_MARKER } from "./_report.js";

/** The tasks of `work.ts`, as module tasks for the pools. */
export const workTasks = tasks<typeof import("./work.ts")>(new URL("./work.ts", import.meta.url));
/** `work_js.js`: the trivial task in plain JavaScript (no type stripping in a worker). */
export const jsTasks = tasks<typeof import("./work_js.js")>(
  new URL("./work_js.js", import.meta.url),
);

// ---------------------------------------------------------------------------------------------
// Scenarios

/** One size flag: its name, its full and `--quick` defaults, and a line of help. */
export interface SizeSpec {
  flag: string;
  full: number;
  quick: number;
  help: string;
}

/** What one part of a scenario produces: its rows of the table, and notes. */
export interface PartResult {
  figures: Figure[];
  notes: string[];
}

/** One part: measures with the scenario's sizes, as `run.ts` resolved them. */
export type Part<S extends string> = (sizes: Record<S, number>) => Promise<PartResult>;

/**
 * A scenario: one thing measured, in parts whose names label the rows of the table
 * (`run.ts --only a,b`). `run.ts` resolves its sizes from flags, `FANOUT_BENCH_<FLAG>` or the
 * defaults, runs the parts asked for and notes the machine's load around each.
 */
export interface Scenario<S extends string = string> {
  /** What `run.ts` and `--only` call it: the file's name without `.ts`. */
  readonly name: string;
  /** Its size flags. */
  readonly sizes: Record<S, SizeSpec>;
  /** Its parts, in the order they run by default. */
  readonly parts: Record<string, Part<S>>;
  /**
   * Whether it starts child processes, whose CPU the load notes then count as this run's
   * ("this process and its children"), not as others'.
   */
  readonly children?: boolean;
  /** A part that runs after the others whenever any of them runs (a summary over them). */
  readonly closing?: string;
  /** Notes for the end of the report, once its parts ran. */
  notes?(): string[];
}

/** A scenario's full sizes, the defaults of a run without `--quick` (for its `*.bench.ts`). */
export function fullSizes<S extends string>(scenario: Scenario<S>): Record<S, number> {
  const out = {} as Record<S, number>;
  for (const key of Object.keys(scenario.sizes) as S[]) out[key] = scenario.sizes[key].full;
  return out;
}

/**
 * A progress logger for one scenario: lines go to stderr (stdout carries the report),
 * prefixed with the scenario's name and the runtime.
 */
export function benchLog(scenario: string): (message: string) => void {
  return (message) => console.error(`[${scenario} ${detect().name}] ${message}`);
}

/** Throws for a workload that computed the wrong answer: its timing would mean nothing. */
export function fail(what: string): never {
  throw new Error(`wrong result: ${what}`);
}

/** Fails unless `values` are `expected`, element for element. */
export function expectValues(
  values: readonly unknown[],
  expected: readonly unknown[],
  what: string,
  item = "item",
): void {
  if (values.length !== expected.length) {
    fail(`${what}: ${values.length} results, not ${expected.length}`);
  }
  for (let k = 0; k < values.length; k++) {
    if (values[k] !== expected[k]) {
      fail(`${what}: ${item} ${k}: ${String(values[k])} ≠ ${String(expected[k])}`);
    }
  }
}

/** Reads a file as text (for /proc readings). */
export function readText(path: string): string {
  return readFileSync(path, "utf8");
}

// ---------------------------------------------------------------------------------------------
// Statistics and timers

/** The median of some samples (the mean of the middle two for an even count). */
export function median(samples: readonly number[]): number {
  if (samples.length === 0) return NaN;
  const sorted = [...samples].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** The arithmetic mean of some samples. */
export function mean(samples: readonly number[]): number {
  if (samples.length === 0) return NaN;
  let sum = 0;
  for (const s of samples) sum += s;
  return sum / samples.length;
}

/** Milliseconds taken by a synchronous function. */
export function timeSync(fn: () => unknown): number {
  const start = performance.now();
  fn();
  return performance.now() - start;
}

/** Milliseconds taken by an asynchronous function. */
export async function timeAsync(fn: () => unknown): Promise<number> {
  const start = performance.now();
  await fn();
  return performance.now() - start;
}

/**
 * Times `count` sequential, awaited calls, one at a time: a round trip each.
 *
 * @param call The call; its promise is awaited as is (no wrapper adds a tick).
 * @param check Checks a call's value, after its time was taken.
 * @returns Each call's time, in µs.
 */
export async function timeEach<T>(
  count: number,
  call: (i: number) => Promise<T>,
  check?: (value: T, i: number) => void,
): Promise<number[]> {
  const us: number[] = [];
  for (let i = 0; i < count; i++) {
    const start = performance.now();
    const value = await call(i);
    us.push((performance.now() - start) * 1000);
    check?.(value, i);
  }
  return us;
}

/** Thrown by {@linkcode withWatchdog} when the watched promise takes too long. */
export class WatchdogTimeout extends Error {
  /** Creates the error for `label`, which did not settle within `ms`. */
  constructor(label: string, ms: number) {
    super(`${label} did not settle within ${ms} ms`);
    this.name = "WatchdogTimeout";
  }
}

/**
 * Waits for `promise`, but no longer than `ms`: a bench must report a hang, not become one.
 *
 * @param promise What to wait for.
 * @param ms The limit.
 * @param label What is being waited for, for the error message.
 * @returns The promise's value.
 * @throws {WatchdogTimeout} If the limit passes first.
 */
export async function withWatchdog<T>(promise: Promise<T>, ms: number, label: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new WatchdogTimeout(label, ms)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Iterations of `work.spin` per millisecond on this runtime's main thread, so that a task of
 * "~20 ms" takes about that here.
 */
export function calibrateSpin(): number {
  // Several full-size runs first: Bun's JIT reaches its top tier only after a few.
  for (let i = 0; i < 10; i++) spin(SPIN_ITERATIONS_20MS);
  const best = Math.min(
    ...[0, 1, 2, 3, 4].map(() => timeSync(() => spin(SPIN_ITERATIONS_20MS))),
  );
  return SPIN_ITERATIONS_20MS / best;
}

// ---------------------------------------------------------------------------------------------
// The machine's load

/** A reading of the machine's CPU counters (Linux `/proc`), to tell how noisy a run was. */
export interface CpuSample {
  /** Jiffies of all CPUs spent busy (user, nice, system, irq, softirq). */
  busy: number;
  /** Jiffies the hypervisor gave to someone else. */
  steal: number;
  /** All jiffies of all CPUs. */
  total: number;
  /** Jiffies this process and its children spent on any CPU (user + system, every thread). */
  self: number;
}

/** The fields of a /proc/<pid>/stat after the command name (which may hold spaces). */
function statFields(path: string): string[] | undefined {
  try {
    const stat = readText(path);
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  } catch {
    return undefined;
  }
}

/**
 * Reads the CPU counters; `undefined` where `/proc` is not readable. "This process" includes
 * its child processes: the reaped ones (`cutime` + `cstime`) and the live pool processes
 * (their own /proc/<pid>/stat), so that a worker process's CPU is not counted as another's
 * load.
 */
export function load(): CpuSample | undefined {
  let cpu: number[];
  try {
    cpu = readText("/proc/stat").split("\n")[0].trim().split(/\s+/).slice(1).map(Number);
  } catch {
    return undefined;
  }
  const own = statFields("/proc/self/stat");
  if (own === undefined) return undefined;
  const [user, nice, system, idle, iowait, irq, softirq, steal] = cpu;
  let self = Number(own[11]) + Number(own[12]) + Number(own[13]) + Number(own[14]);
  for (const pid of liveProcessPids()) {
    const f = statFields(`/proc/${pid}/stat`);
    if (f !== undefined) self += Number(f[11]) + Number(f[12]);
  }
  return {
    busy: user + nice + system + irq + softirq,
    steal,
    total: user + nice + system + idle + iowait + irq + softirq + steal,
    self,
  };
}

/**
 * How much of the machine others used between two readings: busy time not spent by this
 * process (and its children), plus steal, as a share of all CPU time.
 *
 * @param children Whether to say that this process's share includes its children's.
 * @returns A description such as "others used 12% of the CPUs (steal 3%), this process 80%".
 */
export function noise(
  from: CpuSample | undefined,
  to: CpuSample | undefined,
  children = true,
): string {
  if (from === undefined || to === undefined || to.total <= from.total) {
    return "machine load unknown";
  }
  const total = to.total - from.total;
  const others = Math.max(0, (to.busy - from.busy) - (to.self - from.self));
  const steal = to.steal - from.steal;
  const pct = (x: number): string => `${Math.round((100 * x) / total)}%`;
  return `others used ${pct(others + steal)} of the CPUs (steal ${pct(steal)}), this process ${
    children ? "and its children " : ""
  }${pct(to.self - from.self)}`;
}

// ---------------------------------------------------------------------------------------------
// Figures

/** A figure with its target checked. */
export function figure(f: Figure): Figure {
  return f.target === undefined ? f : { ...f, met: meets(f.target, f.value, f.ratio) };
}

/**
 * A figure of one statistic (median, mean…) of `samples` against the same statistic of a
 * baseline's samples from the same run, as the round trips report theirs.
 */
export function versus(
  stat: (samples: readonly number[]) => number,
  samples: readonly number[],
  baseline: { name: string; samples: readonly number[] },
  f: Pick<Figure, "part" | "name" | "unit" | "ratioLabel" | "target" | "note">,
): Figure {
  const value = stat(samples);
  const base = stat(baseline.samples);
  return figure({
    part: f.part,
    name: f.name,
    value,
    unit: f.unit,
    baseline: { name: baseline.name, value: base, unit: f.unit },
    ratio: value / base,
    ratioLabel: f.ratioLabel,
    ...(f.target === undefined ? {} : { target: f.target }),
    ...(f.note === undefined ? {} : { note: f.note }),
  });
}

/** "median of paired ratios 1.23 (1.20, 1.25, …)": same-repetition ratios, for a note. */
export function paired(ratios: readonly number[], what = "paired ratios"): string {
  return `median of ${what} ${median(ratios).toFixed(2)} (${
    ratios.map((r) => r.toFixed(2)).join(", ")
  })`;
}

// ---------------------------------------------------------------------------------------------
// Executors within a limit

/**
 * Closes an executor (or terminates it, after a failure) within `limitMs`. If that does not
 * finish in time (a hung call keeps `close()` waiting), terminates it and throws, so that a
 * bench reports a hang instead of becoming one.
 */
export async function closeWithin(
  ex: ParallelExecutor,
  limitMs: number,
  what: string,
  failed = false,
): Promise<void> {
  const how = failed ? "terminate()" : "close()";
  try {
    await withWatchdog(failed ? ex.terminate() : ex.close(), limitMs, `${what}: ${how}`);
  } catch (error) {
    console.error(`${error}; terminating`);
    await withWatchdog(ex.terminate(), limitMs, `${what}: terminate()`).catch(() => {});
    throw error;
  }
}

/**
 * An executor that `await using` disposes with {@linkcode closeWithin}, without throwing (a
 * failure that brought the block down is the one to report).
 */
export function bounded(options: ExecutorOptions, limitMs: number, what = "an executor"): {
  ex: ParallelExecutor;
  [Symbol.asyncDispose](): Promise<void>;
} {
  const ex = new ParallelExecutor(options);
  return {
    ex,
    [Symbol.asyncDispose]: () => closeWithin(ex, limitMs, what).catch(() => {}),
  };
}
