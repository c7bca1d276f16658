/**
 * The ablation bench of issue 5: does `strategy: "auto"` pick well? Six workloads, each run
 * with every strategy on 2 workers:
 *
 * - serial: `{ strategy: "serial" }`;
 * - threads, processes: `{ strategy, maxWorkers: 2 }` (auto chunking);
 * - auto: `{ strategy: "auto", maxWorkers: 2 }` (the default strategy);
 * - naive: the rule "always threads with maxWorkers, fixed chunk of 1":
 *   `{ strategy: "threads", maxWorkers: 2, chunkSize: 1 }`.
 *
 * Workloads (`_ablation_work.ts`): tiny (`n + 1`), small (~20 µs each), cpu (~20 ms each),
 * skewed (~2 ms each, a few 50× slower at fixed positions), payload (a large `Float64Array`
 * passed with `ex.share()` and summed in ranges) and io (an async task awaiting a ~5 ms timer).
 *
 * Two timings per strategy and workload, both medians, strategies interleaved map by map
 * within each repetition (in an order shuffled per rep), so that the machine's noise hits all
 * of them alike:
 *
 * - warm: one map on a long-lived executor (one per strategy and workload) after warm-up
 *   maps: pools started, the task loaded, auto's time per item known from earlier calls.
 *   The issue's targets are judged on these: the steady state of a long-lived executor.
 * - cold: `new ParallelExecutor()` + `share()` (payload) + map + `close()`, all timed: what
 *   a one-shot call costs, auto's probe and the pool's start included.
 *
 * A sample is the median of a strategy's maps (or cold calls) in one repetition, as many as span
 * `--sample-ms` (one map for most workloads, dozens for tiny), taken in rounds of one map per
 * strategy. No timed executor has a listener (`onEvent`
 * makes every chunk timed): auto's choices come from `stats()`, its reasons from `explain()`
 * and from one more, untimed, cold call with a listener.
 *
 * Every map's results are checked against the task's results computed on the main thread.
 *
 * ```sh
 * node_modules/.bin/deno run -A bench/ablation.ts [--quick] [--only tiny,cpu] [--json]
 * node_modules/.bin/bun bench/ablation.ts
 * node_modules/.bin/node bench/ablation.ts
 * ```
 *
 * Sizes come from flags, else from `FANOUT_BENCH_<FLAG>` environment variables (e.g.
 * `FANOUT_BENCH_WARM_REPS=9`), else from the defaults (or the `--quick` ones).
 *
 * @module
 */

import process from "node:process";
import { benchLog, fail, parseBenchOptions, readText, runParts } from "./_cli.ts";
import type { BenchOptions, PartResult, SizeSpec } from "./_cli.ts";
import { ParallelExecutor, sharedArray, tasks } from "../mod.ts";
import type { ExecutorOptions, Explanation, ParallelExecutionEvent } from "../mod.ts";
import { liveProcessPids, liveThreadCount } from "../src/runtime/mod.ts";
import * as work from "./_ablation_work.ts";
import type { CpuSample } from "./_stats.ts";
import { describeLoad, median, sampleCpuWithChildren, timeSync, withWatchdog } from "./_stats.ts";
import type { Figure } from "./_table.js";
import { meets } from "./_table.js";

const workTasks = tasks<typeof work>(new URL("./_ablation_work.ts", import.meta.url));

/** The machine's cores, and the issue's setting. */
const WORKERS = 2;
/** Most maps (or cold calls) one sample of a strategy averages over. */
const MAX_MAPS_PER_SAMPLE = 100;
/** Rest before each repetition, so that the previous one's aftermath does not land in it. */
const SETTLE_MS = 20;
/** How much slower the skewed workload's slow items are. */
const SKEW_FACTOR = 50;
const MIB = 1 << 20;

const WORKLOADS = ["tiny", "small", "cpu", "skewed", "payload", "io"] as const;
type WorkloadName = typeof WORKLOADS[number];
/**
 * `--only` picks workloads; "suite" (the targets over the workloads that ran) always runs
 * last, listed or not.
 */
const PARTS = [...WORKLOADS, "suite"] as const;
type Part = typeof PARTS[number];

const STRATEGIES = ["serial", "threads", "processes", "auto", "naive"] as const;
type StrategyKey = typeof STRATEGIES[number];
/** The strategies "best fixed" is chosen among (naive is a rule, not one of them). */
const FIXED = ["serial", "threads", "processes"] as const;

interface Sizes {
  tinyItems: number;
  smallItems: number;
  smallUs: number;
  cpuItems: number;
  cpuMs: number;
  skewItems: number;
  skewMs: number;
  skewSlow: number;
  sharedMb: number;
  sharedTasks: number;
  sharedPasses: number;
  ioItems: number;
  ioMs: number;
  warmMaps: number;
  warmReps: number;
  sampleMs: number;
  coldReps: number;
  watchdogMs: number;
}

const SIZES: Record<keyof Sizes, SizeSpec> = {
  tinyItems: { flag: "tiny-items", full: 20_000, quick: 5_000, help: "tiny: items (n + 1)" },
  smallItems: { flag: "small-items", full: 2_000, quick: 500, help: "small: items" },
  smallUs: { flag: "small-us", full: 20, quick: 20, help: "small: µs per item" },
  cpuItems: { flag: "cpu-items", full: 32, quick: 8, help: "cpu: items" },
  cpuMs: { flag: "cpu-ms", full: 20, quick: 20, help: "cpu: ms per item" },
  skewItems: { flag: "skew-items", full: 64, quick: 16, help: "skewed: items" },
  skewMs: { flag: "skew-ms", full: 2, quick: 2, help: "skewed: ms per fast item" },
  skewSlow: {
    flag: "skew-slow",
    full: 4,
    quick: 2,
    help: `skewed: items ${SKEW_FACTOR}× slower, evenly spread`,
  },
  sharedMb: { flag: "shared-mb", full: 64, quick: 16, help: "payload: the shared array, MiB" },
  sharedTasks: { flag: "shared-tasks", full: 16, quick: 16, help: "payload: ranges (tasks)" },
  sharedPasses: {
    flag: "shared-passes",
    full: 8,
    quick: 8,
    help: "payload: passes over each range",
  },
  ioItems: { flag: "io-items", full: 64, quick: 16, help: "io: items" },
  ioMs: { flag: "io-ms", full: 5, quick: 5, help: "io: ms each item awaits a timer" },
  // Enough for auto's rent-or-buy to settle: it starts a pool once serial calls have given up
  // its start cost (on Node ~6 calls of "small"), and warm figures are the steady state.
  warmMaps: { flag: "warm-maps", full: 10, quick: 4, help: "warm-up maps per strategy" },
  warmReps: { flag: "warm-reps", full: 9, quick: 3, help: "timed warm repetitions" },
  sampleMs: {
    flag: "sample-ms",
    full: 25,
    quick: 10,
    help: "a sample averages back-to-back maps until it spans this",
  },
  coldReps: { flag: "cold-reps", full: 3, quick: 1, help: "timed cold repetitions" },
  watchdogMs: {
    flag: "watchdog-ms",
    full: 60_000,
    quick: 60_000,
    help: "limit for one map or close()",
  },
};

type Options = BenchOptions<keyof Sizes, Part>;
/** The sizes alone, which is all a workload reads. */
type Sized = Record<keyof Sizes, number>;

const log = benchLog("ablation");

/** A CPU reading that counts this process's child processes (the pools') as its own. */
function load(): CpuSample | undefined {
  return sampleCpuWithChildren(readText, liveProcessPids());
}

function noise(from: CpuSample | undefined, to: CpuSample | undefined): string {
  return describeLoad(from, to).replace("this process", "this process and its children");
}

function fmtMs(x: number): string {
  if (Number.isNaN(x)) return "n/a";
  return `${x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2)} ms`;
}

function ratio(x: number): string {
  return Number.isFinite(x) ? `${x.toFixed(2)}×` : "n/a";
}

function geomean(xs: readonly number[]): number {
  if (xs.length === 0) return NaN;
  return Math.exp(xs.reduce((sum, x) => sum + Math.log(x), 0) / xs.length);
}

/** Rounds a ratio for a figure's value (printed as is). */
function round2(x: number): number {
  return Math.round(x * 100) / 100;
}

function figure(f: Figure): Figure {
  return f.target === undefined ? f : { ...f, met: meets(f.target, f.value, f.ratio) };
}

// ---------------------------------------------------------------------------------------------
// Calibration

/** Iterations of `spin` per millisecond on this runtime's main thread. */
function calibrate(): number {
  // Several full-size runs first: Bun's JIT reaches its top tier only after a few.
  for (let i = 0; i < 8; i++) work.spin(work.SPIN_ITERATIONS_20MS);
  const best = Math.min(
    ...[0, 1, 2, 3, 4].map(() => timeSync(() => work.spin(work.SPIN_ITERATIONS_20MS))),
  );
  return work.SPIN_ITERATIONS_20MS / best;
}

let iterationsPerMs: number | undefined;

function spinFor(msEach: number): number {
  iterationsPerMs ??= calibrate();
  return Math.max(1, Math.round(iterationsPerMs * msEach));
}

// ---------------------------------------------------------------------------------------------
// Workloads

/** The inputs of one executor's maps, and how to let go of what they hold. */
interface Prepared {
  items: unknown[];
  release(): void;
}

/** One workload: its task, how to build its inputs for an executor, and what it must give. */
interface Workload {
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

function spinWorkload(name: WorkloadName, inputs: number[], what: string): Workload {
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
function slowPositions(items: number, slow: number): number[] {
  return Array.from(
    { length: Math.min(slow, items) },
    (_, k) => Math.floor(((k + 0.5) * items) / slow),
  );
}

/** The shared array of the payload workload, made once per run (it is large). */
let payloadArray: Float64Array | undefined;

function buildWorkload(name: WorkloadName, o: Sized): Workload {
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
      const n = (o.sharedMb * MIB) / Float64Array.BYTES_PER_ELEMENT;
      if (payloadArray === undefined || payloadArray.length !== n) {
        log(`payload: filling ${o.sharedMb} MiB`);
        payloadArray = sharedArray(Float64Array, n);
        for (let i = 0; i < n; i++) payloadArray[i] = work.fillValue(i);
      }
      const data = payloadArray;
      const ranges = Array.from({ length: o.sharedTasks }, (_, k) => ({
        start: Math.floor((k * n) / o.sharedTasks),
        end: Math.floor(((k + 1) * n) / o.sharedTasks),
      }));
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
        map: (ex, items) => ex.map(workTasks.rangeSum, items as work.RangeInput[]),
        explain: (ex, items) => ex.explain(workTasks.rangeSum, items as work.RangeInput[]),
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

function check(w: Workload, values: unknown[], what: string): void {
  if (values.length !== w.expected.length) {
    fail(`${w.name}, ${what}: ${values.length} results, not ${w.expected.length}`);
  }
  for (let k = 0; k < values.length; k++) {
    if (values[k] !== w.expected[k]) {
      fail(`${w.name}, ${what}: item ${k}: ${String(values[k])} ≠ ${String(w.expected[k])}`);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Executors

function optionsFor(key: StrategyKey): ExecutorOptions {
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

/** Closes an executor within the watchdog's limit, else terminates it and throws. */
async function closeBounded(ex: ParallelExecutor, o: Sized, what: string): Promise<void> {
  try {
    await withWatchdog(ex.close(), o.watchdogMs, `${what}: close()`);
  } catch (error) {
    log(`${error}; terminating`);
    await withWatchdog(ex.terminate(), o.watchdogMs, `${what}: terminate()`).catch(() => {});
    throw error;
  }
}

// ---------------------------------------------------------------------------------------------
// One workload

/** Per strategy: wall times of the timed repetitions. */
type Times = Record<StrategyKey, number[]>;

function emptyTimes(): Times {
  return { serial: [], threads: [], processes: [], auto: [], naive: [] };
}

/** What auto did in one phase: the strategies its timed calls ran, and why. */
interface AutoSays {
  /** Calls per strategy, from `stats().byStrategy` (no listener: that would cost time). */
  ran: Record<string, number>;
  /** Its reason, from an untimed call (see the callers). */
  reason: string;
}

/** What one workload measured, for its figures and the suite's table. */
interface WorkloadResult {
  name: WorkloadName;
  what: string;
  warm: Times;
  cold: Times;
  /** Cold: the `close()` part of each time. */
  coldClose: Times;
  /** Maps (warm) or cold calls each sample averaged over, per strategy. */
  counts: { warm: Times; cold: Times };
  auto: { warm: AutoSays; cold: AutoSays };
}

const results: WorkloadResult[] = [];

/**
 * The strategies in this rep's order: a permutation shuffled from the rep's number, the same
 * in every run. Not a rotation: under a rotation each strategy always follows the same one,
 * and what a strategy leaves behind (a pool shutting down, garbage) would always hit the same
 * next one.
 */
function shuffled(rep: number, phase: "warm" | "cold"): StrategyKey[] {
  const order = [...STRATEGIES];
  // mulberry32, seeded by the rep and the phase
  let state = (rep * 2654435761 + (phase === "warm" ? 1 : 2)) >>> 0;
  const random = (): number => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  for (let i = order.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [order[i], order[j]] = [order[j], order[i]];
  }
  return order;
}

/** Lets what the previous repetition left behind (a pool shutting down, timers) settle. */
function settle(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, SETTLE_MS));
}

/** `after - before`, per strategy name. */
function ranBetween(
  before: Record<string, number>,
  after: Record<string, number>,
): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [name, n] of Object.entries(after)) {
    const d = n - (before[name] ?? 0);
    if (d > 0) out[name] = d;
  }
  return out;
}

function addRan(into: Record<string, number>, more: Record<string, number>): void {
  for (const [name, n] of Object.entries(more)) into[name] = (into[name] ?? 0) + n;
}

/**
 * One repetition: a sample of every strategy, taken in rounds. Each round runs one map (or
 * cold call) of every strategy whose sample is not complete yet, in `order`; a sample is
 * complete once its maps span `sampleMs` (or number `MAX_MAPS_PER_SAMPLE`). So the cheap
 * strategies alternate map by map and meet the same conditions (what a slow neighbour left
 * behind, such as garbage or a pool shutting down, lands on all of them alike), instead of
 * one taking all its maps in one stretch. A sample is the median of its maps' times: a
 * garbage collection, which any strategy's garbage may set off, lands in one map of dozens
 * and moves the mean of a sub-millisecond map by tens of percent. Gives each sample's time
 * and map count.
 */
async function repetition(
  order: readonly StrategyKey[],
  once: (key: StrategyKey) => Promise<number>,
  o: Sized,
): Promise<Record<StrategyKey, { ms: number; n: number }>> {
  const taken = new Map<StrategyKey, number[]>();
  for (const key of order) taken.set(key, []);
  const spent = (key: StrategyKey): number => taken.get(key)!.reduce((a, b) => a + b, 0);
  let active = [...order];
  while (active.length > 0) {
    for (const key of active) taken.get(key)!.push(await once(key));
    active = active.filter((key) =>
      spent(key) < o.sampleMs && taken.get(key)!.length < MAX_MAPS_PER_SAMPLE
    );
  }
  const out = {} as Record<StrategyKey, { ms: number; n: number }>;
  for (const [key, times] of taken) out[key] = { ms: median(times), n: times.length };
  return out;
}

async function measureWarm(
  w: Workload,
  o: Sized,
): Promise<{ times: Times; counts: Times; auto: AutoSays }> {
  const executors = new Map<StrategyKey, { ex: ParallelExecutor; prepared: Prepared }>();
  const times = emptyTimes();
  const counts = emptyTimes();
  try {
    for (const key of STRATEGIES) {
      const ex = new ParallelExecutor(optionsFor(key));
      executors.set(key, { ex, prepared: w.prepare(ex) });
    }
    const run = async (key: StrategyKey, label: string): Promise<number> => {
      const { ex, prepared } = executors.get(key)!;
      const t0 = performance.now();
      const values = await withWatchdog(
        w.map(ex, prepared.items),
        o.watchdogMs,
        `${w.name}: ${label} map`,
      );
      const t = performance.now() - t0;
      check(w, values, `${label} map`);
      return t;
    };
    log(`${w.name}: warm-up (${o.warmMaps} map(s) per strategy)`);
    for (let i = 0; i < o.warmMaps; i++) {
      for (const key of shuffled(i, "warm")) await run(key, `${key} warm-up`);
    }
    const auto = executors.get("auto")!;
    const before = auto.ex.stats().byStrategy;
    for (let rep = 0; rep < o.warmReps; rep++) {
      await settle();
      const r = await repetition(shuffled(rep, "warm"), (key) => run(key, `${key} warm`), o);
      for (const key of STRATEGIES) {
        times[key].push(r[key].ms);
        counts[key].push(r[key].n);
      }
      log(
        `${w.name}: warm rep ${rep + 1}/${o.warmReps}: ` +
          STRATEGIES.map((k) => `${k} ${fmtMs(times[k][rep])}`).join(", "),
      );
    }
    const ran = ranBetween(before, auto.ex.stats().byStrategy);
    // The same executor, after the timed maps: the time per item is known from them, so
    // explain() measures nothing and says what the next map would do, and why.
    const plan = await withWatchdog(
      w.explain(auto.ex, auto.prepared.items),
      o.watchdogMs,
      `${w.name}: explain()`,
    );
    return { times, counts, auto: { ran, reason: plan.reason } };
  } finally {
    for (const [key, { ex, prepared }] of executors) {
      prepared.release();
      await closeBounded(ex, o, `${w.name}: warm ${key}`);
    }
  }
}

/** One cold call: new executor (+ share) + map + close(), timed; its results checked. */
async function coldCall(
  w: Workload,
  o: Sized,
  options: ExecutorOptions,
  label: string,
): Promise<{ ms: number; closeMs: number; ran: Record<string, number> }> {
  const t0 = performance.now();
  const ex = new ParallelExecutor(options);
  let prepared: Prepared | undefined;
  let values: unknown[];
  try {
    prepared = w.prepare(ex);
    values = await withWatchdog(w.map(ex, prepared.items), o.watchdogMs, `${label} map`);
  } catch (error) {
    await withWatchdog(ex.terminate(), o.watchdogMs, `${label}: terminate()`).catch(() => {});
    throw error;
  }
  const t1 = performance.now();
  prepared.release();
  await closeBounded(ex, o, label);
  const t2 = performance.now();
  check(w, values, `${label} map`);
  return { ms: t2 - t0, closeMs: t2 - t1, ran: ex.stats().byStrategy };
}

async function measureCold(
  w: Workload,
  o: Sized,
): Promise<{
  times: Times;
  close: Times;
  counts: Times;
  auto: AutoSays;
}> {
  const times = emptyTimes();
  const close = emptyTimes();
  const ran: Record<string, number> = {};
  const counts = emptyTimes();
  // One untimed cold call of each first: the code paths of a start warm up.
  for (const key of STRATEGIES) await coldCall(w, o, optionsFor(key), `${w.name}: cold ${key}`);
  for (let rep = 0; rep < o.coldReps; rep++) {
    await settle();
    const closeSums = emptyTimes();
    const r = await repetition(shuffled(rep, "cold"), async (key) => {
      const c = await coldCall(w, o, optionsFor(key), `${w.name}: cold ${key}`);
      closeSums[key].push(c.closeMs);
      if (key === "auto") addRan(ran, c.ran);
      return c.ms;
    }, o);
    for (const key of STRATEGIES) {
      times[key].push(r[key].ms);
      close[key].push(median(closeSums[key]));
      counts[key].push(r[key].n);
    }
    log(
      `${w.name}: cold rep ${rep + 1}/${o.coldReps}: ` +
        STRATEGIES.map((k) => `${k} ${fmtMs(times[k][rep])}`).join(", "),
    );
  }
  // One more cold auto call, untimed, with a listener: its parallel_execution event says why
  // (a listener makes every chunk timed, so the timed calls have none).
  const events: ParallelExecutionEvent[] = [];
  await coldCall(w, o, {
    ...optionsFor("auto"),
    onEvent(event) {
      if (event.type === "parallel_execution") events.push(event);
    },
  }, `${w.name}: cold auto (for its reason)`);
  const reason = events.length === 1
    ? `${events[0].reason} (that call took ${fmtMs(events[0].durationMs)})`
    : `${events.length} events`;
  return { times, close, counts, auto: { ran, reason } };
}

/** The fixed strategy with the smallest median, and that median. */
function bestFixed(times: Times): { key: StrategyKey; ms: number } {
  let best: { key: StrategyKey; ms: number } = { key: "serial", ms: Infinity };
  for (const key of FIXED) {
    const m = median(times[key]);
    if (m < best.ms) best = { key, ms: m };
  }
  return best;
}

/** Same-rep ratios `a[r] / b[r]`. */
function ratios(a: number[], b: number[]): number[] {
  return a.map((x, r) => x / b[r]);
}

/**
 * The ratio every table and target uses: of the medians. (The median of the same-rep ratios,
 * in the notes, cancels drift that slows a whole rep, but doubles the noise of each sample,
 * which is what dominates the short maps.)
 */
function medianRatio(a: number[], b: number[]): number {
  return median(a) / median(b);
}

/** The three ratios of a phase: auto ÷ best fixed, auto ÷ serial, naive ÷ auto. */
function phaseRatios(
  t: Times,
): { best: StrategyKey; overBest: number; overSerial: number; naive: number } {
  const best = bestFixed(t).key;
  return {
    best,
    overBest: medianRatio(t.auto, t[best]),
    overSerial: medianRatio(t.auto, t.serial),
    naive: medianRatio(t.naive, t.auto),
  };
}

/** "median of the same-rep ratios 1.02 (0.98, 1.05, 1.01)". */
function detail(a: number[], b: number[]): string {
  const each = ratios(a, b);
  return `median of the same-rep ratios ${median(each).toFixed(2)} (${
    each.map((r) => r.toFixed(2)).join(", ")
  })`;
}

function spread(times: number[]): string {
  const sorted = [...times].sort((a, b) => a - b);
  return sorted.length === 1
    ? fmtMs(sorted[0])
    : `${fmtMs(sorted[0])}–${fmtMs(sorted[sorted.length - 1])}`;
}

function describeRan(ran: Record<string, number>): string {
  return Object.entries(ran).map(([s, n]) => `${s} ×${n}`).join(", ");
}

async function runWorkload(name: WorkloadName, o: Sized): Promise<PartResult> {
  const w = buildWorkload(name, o);
  log(`${name}: ${w.what}`);
  const warm = await measureWarm(w, o);
  const cold = await measureCold(w, o);
  const result: WorkloadResult = {
    name,
    what: w.what,
    warm: warm.times,
    cold: cold.times,
    coldClose: cold.close,
    counts: { warm: warm.counts, cold: cold.counts },
    auto: { warm: warm.auto, cold: cold.auto },
  };
  results.push(result);
  return { figures: workloadFigures(result, o), notes: workloadNotes(result) };
}

function workloadFigures(r: WorkloadResult, o: Sized): Figure[] {
  const figures: Figure[] = [];
  for (const phase of ["warm", "cold"] as const) {
    const t = r[phase];
    const reps = phase === "warm" ? o.warmReps : o.coldReps;
    const x = phaseRatios(t);
    const target = phase === "warm"
      ? { target: { on: "ratio" as const, op: "<=" as const, value: 1.1, label: "≤ 1.1×" } }
      : {};
    const how = phase === "warm"
      ? `${reps} samples on long-lived executors after ${o.warmMaps} warm-up map(s)`
      : `${reps} samples of new executor${
        r.name === "payload" ? " + share()" : ""
      } + map + close()`;
    figures.push(figure({
      part: r.name,
      name: `${phase}: auto vs the best fixed strategy`,
      value: median(t.auto),
      unit: "ms",
      baseline: { name: x.best, value: median(t[x.best]), unit: "ms" },
      ratio: x.overBest,
      ratioLabel: "× best fixed",
      ...target,
      note: `${how}; auto ran ${describeRan(r.auto[phase].ran)}; ${detail(t.auto, t[x.best])}`,
    }));
    if (r.name === "tiny" || r.name === "small") {
      figures.push(figure({
        part: r.name,
        name: `${phase}: auto vs serial`,
        value: median(t.auto),
        unit: "ms",
        baseline: { name: "serial", value: median(t.serial), unit: "ms" },
        ratio: x.overSerial,
        ratioLabel: "× serial",
        ...target,
        note: detail(t.auto, t.serial),
      }));
    }
    figures.push(figure({
      part: r.name,
      name: `${phase}: naive rule vs auto`,
      value: median(t.naive),
      unit: "ms",
      baseline: { name: "auto", value: median(t.auto), unit: "ms" },
      ratio: x.naive,
      ratioLabel: "× auto (naive ÷ auto)",
      note: detail(t.naive, t.auto),
    }));
  }
  return figures;
}

function workloadNotes(r: WorkloadResult): string[] {
  const perStrategy = (times: Times): string =>
    STRATEGIES.map((k) => `${k} ${spread(times[k])}`).join(", ");
  const counts = (c: Times): string =>
    STRATEGIES.map((k) => `${k} ${Math.min(...c[k])}–${Math.max(...c[k])}`).join(", ");
  const extra = STRATEGIES.map((k) => `${k} ${fmtMs(median(r.cold[k]) - median(r.warm[k]))}`);
  return [
    `${r.name}: ${r.what}`,
    `${r.name}: maps per sample (min–max over the reps), warm: ${counts(r.counts.warm)}; ` +
    `cold calls per sample: ${counts(r.counts.cold)}`,
    `${r.name}: cold − warm medians (executor, pool start, task load, probe, close): ${
      extra.join(", ")
    }`,
    `${r.name}: auto, warm (explain() on the warm executor after the timed maps): ${r.auto.warm.reason}`,
    `${r.name}: auto, cold (one more untimed cold call, with a listener): ${r.auto.cold.reason}`,
    `${r.name}: warm min–max: ${perStrategy(r.warm)}`,
    `${r.name}: cold min–max: ${perStrategy(r.cold)}; of which close(): ${
      STRATEGIES.map((k) => `${k} ${fmtMs(median(r.coldClose[k]))}`).join(", ")
    }`,
  ];
}

// ---------------------------------------------------------------------------------------------
// The suite

/** One phase's table: a row per workload, wall times and ratios. */
function table(phase: "warm" | "cold"): string[] {
  const header = [
    "workload",
    "serial",
    "threads",
    "processes",
    "auto",
    "naive",
    "best fixed",
    "auto÷best",
    "auto÷serial",
    "naive÷auto",
    "auto ran",
  ];
  const rows = results.map((r) => {
    const t = r[phase];
    const x = phaseRatios(t);
    return [
      r.name,
      ...STRATEGIES.map((k) => fmtMs(median(t[k]))),
      x.best,
      ratio(x.overBest),
      ratio(x.overSerial),
      ratio(x.naive),
      describeRan(r.auto[phase].ran),
    ];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i].length)));
  const line = (cells: string[]): string =>
    cells.map((
      c,
      i,
    ) => (i === 0 || i === cells.length - 1 ? c.padEnd(widths[i]) : c.padStart(widths[i])))
      .join("  ").trimEnd();
  return [line(header), ...rows.map(line)];
}

function suite(o: Sized): Promise<PartResult> {
  if (results.length === 0) return Promise.resolve({ figures: [], notes: [] });
  const figures: Figure[] = [];
  const notes: string[] = [];
  for (const phase of ["warm", "cold"] as const) {
    const judged = phase === "warm";
    const all = results.map((r) => phaseRatios(r[phase]));
    const naiveOverAuto = all.map((x) => x.naive);
    const g = geomean(naiveOverAuto);
    const overBest = all.map((x) => x.overBest);
    const worst = Math.max(...overBest);
    const worstAt = results[overBest.indexOf(worst)].name;
    const small = results.filter((r) => r.name === "tiny" || r.name === "small");
    const overSerial = small.map((r) => phaseRatios(r[phase]).overSerial);
    const names = results.map((r) => r.name).join(", ");
    figures.push(figure({
      part: "suite",
      name: `${phase}: auto within 1.1× of the best fixed strategy on every workload`,
      value: round2(worst),
      unit: "× (worst)",
      ...(judged ? { target: { on: "value", op: "<=", value: 1.1, label: "≤ 1.1×" } } : {}),
      note: `worst: ${worstAt}; ${
        results.map((r, i) => `${r.name} ${overBest[i].toFixed(2)}`).join(", ")
      }`,
    }));
    figures.push(figure({
      part: "suite",
      name: `${phase}: naive rule ÷ auto, geometric mean over ${results.length} workloads`,
      value: round2(g),
      unit: "×",
      ...(judged ? { target: { on: "value", op: ">=", value: 1.3, label: "≥ 1.3×" } } : {}),
      note: `${names}: ${naiveOverAuto.map((x) => x.toFixed(2)).join(", ")}` +
        (results.length > 1 && results.some((r) => r.name === "tiny")
          ? `; without tiny (where naive sends every item as its own message): ${
            geomean(naiveOverAuto.filter((_, i) => results[i].name !== "tiny")).toFixed(2)
          }×`
          : ""),
    }));
    if (small.length > 0) {
      const worstSmall = Math.max(...overSerial);
      figures.push(figure({
        part: "suite",
        name: `${phase}: auto ÷ serial on tiny and small`,
        value: round2(worstSmall),
        unit: "× (worst)",
        ...(judged ? { target: { on: "value", op: "<=", value: 1.1, label: "≤ 1.1×" } } : {}),
        note: small.map((r, i) => `${r.name} ${overSerial[i].toFixed(2)}`).join(", "),
      }));
    }
    notes.push(
      `${phase} wall times (medians)${
        judged ? ", what the targets are judged on" : ", new executor + map + close()"
      }:`,
      ...table(phase),
    );
  }
  notes.push(
    `ratios (÷) are of the medians; a sample is the median of a strategy's maps (or cold ` +
      `calls) in one rep, as many as span ${o.sampleMs} ms; ` +
      `best fixed = the fastest of serial, threads and processes (auto chunking, ${WORKERS} ` +
      `workers); naive = threads, ${WORKERS} workers, chunkSize 1; strategies interleaved ` +
      `map by map in rounds within each rep (order shuffled per rep), ${SETTLE_MS} ms of rest ` +
      `before each rep`,
  );
  return Promise.resolve({ figures, notes });
}

// ---------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const o = parseBenchOptions(process.argv.slice(2), "ablation.ts", PARTS, SIZES);
  const runners = {} as Record<Part, (o: Options) => Promise<PartResult>>;
  for (const name of WORKLOADS) runners[name] = (opts) => runWorkload(name, opts);
  runners.suite = (opts) => suite(opts);
  const withSuite: Options = { ...o, parts: [...o.parts.filter((p) => p !== "suite"), "suite"] };
  await runParts(withSuite, runners, { sample: load, describe: noise }, log, () => {
    const pids = liveProcessPids();
    return [
      ...(iterationsPerMs === undefined ? [] : [
        `spin calibrated on the main thread: ${
          Math.round(iterationsPerMs).toLocaleString("en-US")
        } iterations per ms`,
      ]),
      ...(pids.length === 0 ? [] : [`worker processes still alive at the end: ${pids}`]),
      ...(liveThreadCount() === 0
        ? []
        : [`${liveThreadCount()} worker thread(s) still alive at the end of the run`]),
    ];
  });
}

await main();
