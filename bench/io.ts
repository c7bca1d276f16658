/**
 * I/O-bound work: tasks that mostly wait, where what counts is how many are in flight at once,
 * not how many CPUs run them. Every figure is a ratio against a baseline measured in the same
 * process, each way of running a workload on a long-lived executor of its own
 * (`maxWorkers: 2` by default), with the tasks of `_io_work.ts` as module tasks.
 *
 * - timers. 64 tasks that each await a 5 ms timer: `strategy: "auto"` against a bare bounded
 *   promise pool on the main thread with auto's concurrency (64, `"async"`'s default, unless
 *   `explain()` says otherwise), and against the best of today's fixed strategies (serial,
 *   threads, processes, one item in flight per worker: without `concurrency`).
 * - fetch. 200 fetches of a `node:http` server on 127.0.0.1 that this scenario starts as a
 *   process of its own (`_io_server.ts`, on this runtime), which answers each request after
 *   10 ms: auto against the ideal, 200 × 10 ms ÷ auto's concurrency; against a bare promise
 *   pool of the same fetches; and the bare pool one request at a time against 200 × 10 ms,
 *   what one request costs here beyond the server's wait.
 * - mixed. 128 items that await 5 ms, then spin ~2 ms of CPU (`work.spin`, calibrated here):
 *   auto against the best fixed way with the best concurrency (threads and processes with
 *   `concurrency` 1, 2, 4, 8 and 16, and `"async"` with 64).
 *
 * Each is timed warm (a map on a long-lived executor, after a few warm-up maps: pools started,
 * modules loaded, auto's estimate known) and cold (new executor + map + `close()`, all timed).
 * The targets are judged on warm. Within each repetition every way runs once, in an order
 * shuffled per repetition, after a short rest; figures are medians, with the median of the
 * same-repetition ratios in the notes. Every map's results are checked.
 *
 * ```sh
 * node_modules/.bin/node bench/run.ts io [--quick]
 * node_modules/.bin/deno run -A bench/run.ts timers,fetch --io-warm-reps 5
 * node_modules/.bin/bun bench/io.ts --quick
 * ```
 *
 * @module
 */

import { spawn } from "node:child_process";
import process from "node:process";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { ParallelExecutor, tasks } from "../mod.ts";
import type { ExecutorOptions, Explanation, TaskRef } from "../mod.ts";
import { ASYNC_CONCURRENCY } from "../src/config.ts";
import { detect } from "../src/runtime/mod.ts";
import * as io from "./_io_work.ts";
import type { FetchInput, IoContext, MixedInput, TimerInput } from "./_io_work.ts";
import type { Figure, PartResult, Scenario, SizeSpec } from "./_measure.ts";
import {
  benchLog,
  calibrateSpin,
  closeWithin,
  expectValues,
  figure,
  median,
  paired,
  timeSync,
  withWatchdog,
} from "./_measure.ts";
import { spin } from "./work.ts";
import { addRan, ranBetween } from "./_auto_measure.ts";

type Size =
  | "workers"
  | "timerItems"
  | "timerMs"
  | "fetches"
  | "fetchDelayMs"
  | "mixedItems"
  | "mixedWaitMs"
  | "mixedCpuMs"
  | "warmMaps"
  | "warmReps"
  | "coldReps"
  | "watchdogMs";

const SIZES: Record<Size, SizeSpec> = {
  workers: { flag: "workers", full: 2, quick: 2, help: "maxWorkers of timers, fetch, mixed" },
  timerItems: { flag: "timer-items", full: 64, quick: 64, help: "timers: items" },
  timerMs: { flag: "timer-ms", full: 5, quick: 5, help: "timers: ms each item awaits" },
  fetches: { flag: "fetches", full: 200, quick: 200, help: "fetch: requests per map" },
  fetchDelayMs: {
    flag: "fetch-delay-ms",
    full: 10,
    quick: 10,
    help: "fetch: ms the server waits before it answers",
  },
  mixedItems: { flag: "mixed-items", full: 128, quick: 64, help: "mixed: items" },
  mixedWaitMs: { flag: "mixed-wait-ms", full: 5, quick: 5, help: "mixed: ms each item awaits" },
  mixedCpuMs: { flag: "mixed-cpu-ms", full: 2, quick: 2, help: "mixed: ms of CPU per item" },
  warmMaps: { flag: "io-warm-maps", full: 5, quick: 3, help: "warm-up maps per way" },
  warmReps: { flag: "io-warm-reps", full: 15, quick: 5, help: "timed warm repetitions" },
  coldReps: {
    flag: "io-cold-reps",
    full: 3,
    quick: 1,
    help: "timed cold repetitions (after one untimed)",
  },
  watchdogMs: {
    flag: "watchdog-ms",
    full: 60_000,
    quick: 60_000,
    help: "io: longest one map, close or bare run may take",
  },
};

const log = benchLog("io");

/** The tasks of `_io_work.ts`, as module tasks. */
const ioTasks = tasks<typeof import("./_io_work.ts")>(new URL("./_io_work.ts", import.meta.url));

/** Rest before each timed sample, so that one way's aftermath does not land on the next. */
const SETTLE_MS = 10;
/** The concurrencies tried on threads and processes for the mixed workload. */
const MIXED_CONCURRENCIES = [1, 2, 4, 8, 16];

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const fmtMs = (ms: number): string => (ms >= 100 ? ms.toFixed(0) : ms.toFixed(1)) + " ms";

// ---------------------------------------------------------------------------------------------
// The bare pool

/**
 * The bare baseline: a bounded promise pool on the main thread, with none of fanout's
 * machinery. Starts `limit` calls, then a new one each time one settles.
 *
 * @param items The inputs.
 * @param limit Most calls in flight at once.
 * @param fn The task, called as `fn(input, ctx)`.
 * @returns The results in input order; rejects with the first error.
 */
export function barePool<I, O>(
  items: readonly I[],
  limit: number,
  fn: (input: I, ctx: IoContext) => Promise<O>,
): Promise<O[]> {
  const out = new Array<O>(items.length);
  if (items.length === 0) return Promise.resolve(out);
  const ctx: IoContext = { signal: new AbortController().signal };
  return new Promise((resolve, reject) => {
    let next = 0;
    let inFlight = 0;
    let done = 0;
    let failed = false;
    const launch = (): void => {
      while (inFlight < limit && next < items.length) {
        const i = next++;
        inFlight++;
        fn(items[i], ctx).then((value) => {
          out[i] = value;
          inFlight--;
          if (++done === items.length) resolve(out);
          else if (!failed) launch();
        }, (error) => {
          failed = true;
          reject(error);
        });
      }
    };
    launch();
  });
}

// ---------------------------------------------------------------------------------------------
// The loopback server

/** What the fetch part's server has seen. */
interface ServerStats {
  /** Requests answered so far. */
  served: number;
  /** Requests received and not answered yet. */
  open: number;
  /** Most requests open at once since the previous `stats()`. */
  peak: number;
}

/** The server of the fetch part, a process of its own (`_io_server.ts`). */
interface Loopback {
  url: string;
  /** What it has seen; starts a new peak. */
  stats(): Promise<ServerStats>;
  close(): Promise<void>;
}

/**
 * Starts `_io_server.ts` on this runtime, answering after `delayMs`: a process of its own, so
 * that serving the requests neither takes the client's thread nor counts as its computing.
 */
async function startServer(delayMs: number): Promise<Loopback> {
  const { name, execPath } = detect();
  const script = fileURLToPath(new URL("./_io_server.ts", import.meta.url));
  const args = name === "deno"
    ? ["run", "--allow-net=127.0.0.1", "--allow-read", script, String(delayMs)]
    : [script, String(delayMs)];
  const child = spawn(execPath, args, { stdio: ["pipe", "pipe", "inherit"] });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
  const nextLine = async (what: string): Promise<string> => {
    const line = await lines.next();
    if (line.done) throw new Error(`fetch: the server ended before ${what}`);
    return line.value;
  };
  let port: number;
  try {
    port = (JSON.parse(await nextLine("it listened")) as { port: number }).port;
  } catch (error) {
    child.kill();
    await exited;
    throw error;
  }
  return {
    url: `http://127.0.0.1:${port}/`,
    async stats() {
      child.stdin!.write("stats\n");
      return JSON.parse(await nextLine("its stats")) as ServerStats;
    },
    async close() {
      child.stdin!.end();
      await exited;
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Ways, workloads and their measurement

/** One way of running a workload. */
interface Way {
  /** Its label in the figures and notes. */
  name: string;
  /** Whether it is a candidate for the best fixed way. */
  fixed: boolean;
  /** The executor's options; a way without them is the bare pool. */
  options?: ExecutorOptions;
  /** The bare pool's bound. */
  limit?: number;
}

/** One workload: its task, inputs and expected results. */
interface Workload<I> {
  part: string;
  task: TaskRef<I, number>;
  /** The same function, for the bare pool. */
  fn: (input: I, ctx: IoContext) => Promise<number>;
  items: I[];
  expected: number[];
  /** Called before each map; what it returns is called after it, with the map's label. */
  watch?(): Promise<(label: string) => Promise<void>>;
}

/** What auto's concurrency is, as `explain()` tells it, for the bare pool and the ideal. */
interface Limit {
  /** Items in flight at once in all. */
  total: number;
  /** Where the number came from. */
  said: string;
}

/**
 * Auto's concurrency from its `explain()`: a `concurrency` field if it has one, else a number
 * in its reason ("concurrency 32", "64 in flight"), else `"async"`'s default. On threads and
 * processes it is per worker, so the total is that times the workers.
 */
function limitOf(plan: Plan): Limit {
  const field = (plan as Plan & { concurrency?: unknown }).concurrency;
  let per: number | undefined = typeof field === "number" ? field : undefined;
  let how = "explain().concurrency";
  if (per === undefined) {
    const m = /concurrency[ =:]*(\d[\d,]*)|(\d[\d,]*) (?:items? |tasks? |calls? )?in flight/i
      .exec(plan.reason);
    if (m !== null) {
      per = Number((m[1] ?? m[2]).replaceAll(",", ""));
      how = "explain()'s reason";
    }
  }
  if (per === undefined || !(per >= 1)) {
    return {
      total: ASYNC_CONCURRENCY,
      said: `${ASYNC_CONCURRENCY} ("async"'s default: explain() gives no concurrency; it says ` +
        `${plan.strategy})`,
    };
  }
  const onWorkers = plan.strategy === "threads" || plan.strategy === "processes";
  const total = onWorkers ? per * plan.workers : per;
  return {
    total,
    said: onWorkers
      ? `${total} (${per} per worker × ${plan.workers} ${plan.strategy}, from ${how})`
      : `${total} (${plan.strategy}, from ${how})`,
  };
}

const ranText = (ran: Record<string, number>): string =>
  Object.entries(ran).map(([name, n]) => `${name} ×${n}`).join(", ") || "nothing";

/** A copy of `xs` in an order fixed by `seed` (a rotation would always pair the same ways). */
function shuffled<T>(xs: readonly T[], seed: number): T[] {
  const out = [...xs];
  let s = (seed * 0x9e3779b1 + 0x7f4a7c15) >>> 0;
  const next = (): number => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(next() * (i + 1));
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

/** What {@linkcode measure} found. */
interface Measured {
  ways: Way[];
  auto: Way;
  warm: Map<Way, number[]>;
  cold: Map<Way, number[]>;
  limit: Limit;
  /** auto's `explain()` after the warm-up, and after the timed maps. */
  before: Explanation;
  after: Explanation;
  /** What auto ran in the timed warm maps, and in the timed cold calls. */
  ran: Record<string, number>;
  coldRan: Record<string, number>;
  /**
   * What auto chose in each cold call, from its `parallel_execution` event: the untimed one,
   * then one per timed call (in the order of `cold.get(auto)`; a call without an event has
   * none).
   */
  firstColdPlan?: Plan;
  coldPlans: (Plan | undefined)[];
}

/** What `explain()` and a `parallel_execution` event both say of a choice. */
type Plan = Pick<Explanation, "strategy" | "reason" | "workers">;

/** Runs a workload one way, on `ex` (or the bare pool), checked: its time in ms. */
async function runOnce<I>(
  w: Workload<I>,
  way: Way,
  ex: ParallelExecutor | undefined,
  o: Record<Size, number>,
  label: string,
): Promise<number> {
  const after = await w.watch?.();
  const start = performance.now();
  const values = await withWatchdog(
    ex === undefined ? barePool(w.items, way.limit!, w.fn) : ex.map(w.task, w.items),
    o.watchdogMs,
    `${w.part}: ${label}`,
  );
  const ms = performance.now() - start;
  expectValues(values, w.expected, `${w.part}: ${label}`);
  await after?.(label);
  return ms;
}

/** A cold call: new executor + map + `close()`, all timed (the bare pool: just its run). */
async function coldOnce<I>(
  w: Workload<I>,
  way: Way,
  o: Record<Size, number>,
  label: string,
  onEvent?: ExecutorOptions["onEvent"],
): Promise<{ ms: number; ran: Record<string, number> }> {
  if (way.options === undefined) return { ms: await runOnce(w, way, undefined, o, label), ran: {} };
  const after = await w.watch?.();
  const start = performance.now();
  const ex = new ParallelExecutor(
    onEvent === undefined ? way.options : { ...way.options, onEvent },
  );
  let values: number[];
  try {
    values = await withWatchdog(ex.map(w.task, w.items), o.watchdogMs, `${w.part}: ${label}`);
  } catch (error) {
    await withWatchdog(ex.terminate(), o.watchdogMs, `${label}: terminate()`).catch(() => {});
    throw error;
  }
  await closeWithin(ex, o.watchdogMs, `${w.part}: ${label}`);
  const ms = performance.now() - start;
  expectValues(values, w.expected, `${w.part}: ${label}`);
  await after?.(label);
  return { ms, ran: ex.stats().byStrategy };
}

/**
 * Measures a workload: auto's executor first, warmed, then its `explain()` gives the
 * concurrency the other ways (`waysFor`) are built with; then every way warmed, the timed warm
 * repetitions, and the cold ones.
 */
async function measure<I>(
  w: Workload<I>,
  o: Record<Size, number>,
  waysFor: (limit: number) => Way[],
): Promise<Measured> {
  const auto: Way = {
    name: "auto",
    fixed: false,
    options: { strategy: "auto", maxWorkers: o.workers },
  };
  const executors = new Map<Way, ParallelExecutor>();
  const warm = new Map<Way, number[]>();
  const cold = new Map<Way, number[]>();
  let ways: Way[] = [auto];
  let limit: Limit;
  let before: Explanation;
  let after: Explanation;
  let ran: Record<string, number>;
  const run = (way: Way, label: string): Promise<number> =>
    runOnce(w, way, executors.get(way), o, `${way.name} ${label}`);
  try {
    executors.set(auto, new ParallelExecutor(auto.options));
    log(`${w.part}: auto warm-up (${o.warmMaps} maps)`);
    for (let i = 0; i < o.warmMaps; i++) await run(auto, "warm-up");
    const autoEx = executors.get(auto)!;
    before = await withWatchdog(
      autoEx.explain(w.task, w.items),
      o.watchdogMs,
      `${w.part}: explain()`,
    );
    limit = limitOf(before);
    log(`${w.part}: auto after warm-up: ${before.reason}; concurrency ${limit.said}`);
    const others = waysFor(limit.total);
    ways = [auto, ...others];
    for (const way of others) {
      if (way.options !== undefined) executors.set(way, new ParallelExecutor(way.options));
    }
    log(`${w.part}: warm-up of ${others.map((w) => w.name).join(", ")} (${o.warmMaps} maps)`);
    for (let i = 0; i < o.warmMaps; i++) {
      for (const way of shuffled(others, 1000 + i)) await run(way, "warm-up");
    }
    for (const way of ways) warm.set(way, []);
    const start = autoEx.stats().byStrategy;
    for (let rep = 0; rep < o.warmReps; rep++) {
      for (const way of shuffled(ways, rep)) {
        await sleep(SETTLE_MS);
        warm.get(way)!.push(await run(way, "warm"));
      }
      log(
        `${w.part}: warm rep ${rep + 1}/${o.warmReps}: ` +
          ways.map((way) => `${way.name} ${fmtMs(warm.get(way)![rep])}`).join(", "),
      );
    }
    ran = ranBetween(start, autoEx.stats().byStrategy);
    after = await withWatchdog(
      autoEx.explain(w.task, w.items),
      o.watchdogMs,
      `${w.part}: explain()`,
    );
  } finally {
    for (const [way, ex] of executors) {
      await closeWithin(ex, o.watchdogMs, `${w.part}: ${way.name}`);
    }
  }
  const coldRan: Record<string, number> = {};
  let firstColdPlan: Plan | undefined;
  const coldPlans: (Plan | undefined)[] = [];
  if (o.coldReps > 0) {
    for (const way of ways) cold.set(way, []);
    // Round 0 is untimed: what a first start in this process pays once (caches, JIT).
    for (let round = 0; round <= o.coldReps; round++) {
      for (const way of shuffled(ways, 2000 + round)) {
        await sleep(SETTLE_MS);
        // Auto's cold calls say what they chose and why through a listener (which times every
        // chunk: a few µs, next to an executor's start). Warm maps go without one.
        let plan: Plan | undefined;
        const listen = way === auto
          ? (e: Parameters<NonNullable<ExecutorOptions["onEvent"]>>[0]) => {
            if (e.type === "parallel_execution") plan = e;
          }
          : undefined;
        const r = await coldOnce(
          w,
          way,
          o,
          `${way.name} ${round === 0 ? "cold (untimed)" : "cold"}`,
          listen,
        );
        if (round === 0) {
          if (way === auto) firstColdPlan = plan;
          continue;
        }
        cold.get(way)!.push(r.ms);
        if (way === auto) {
          addRan(coldRan, r.ran);
          coldPlans.push(plan);
        }
      }
      log(
        `${w.part}: cold round ${round}/${o.coldReps}${round === 0 ? " (untimed)" : ""}` +
          (round === 0
            ? ""
            : ": " + ways.map((way) => `${way.name} ${fmtMs(cold.get(way)!.at(-1)!)}`).join(", ")),
      );
    }
  }
  return {
    ways,
    auto,
    warm,
    cold,
    limit,
    before,
    after,
    ran,
    coldRan,
    firstColdPlan,
    coldPlans,
  };
}

// ---------------------------------------------------------------------------------------------
// Figures

/** The fixed way with the lowest median, among `ways`, in `times`. */
function bestOf(ways: readonly Way[], times: Map<Way, number[]>): Way {
  const fixed = ways.filter((w) => w.fixed && (times.get(w)?.length ?? 0) > 0);
  return fixed.reduce((a, b) => (median(times.get(b)!) < median(times.get(a)!) ? b : a));
}

/**
 * `mine` against a baseline's samples from the same repetitions: the ratio of the medians,
 * `mine ÷ base` (`faster`: `base ÷ mine`), with the paired ratios in the note.
 */
function against(
  f: Pick<Figure, "part" | "name" | "target">,
  mine: readonly number[],
  base: { name: string; samples: readonly number[] },
  note: string,
  faster = false,
): Figure {
  const value = median(mine);
  const b = median(base.samples);
  const ratios = mine.map((m, k) => (faster ? base.samples[k] / m : m / base.samples[k]));
  return figure({
    ...f,
    value,
    unit: "ms",
    baseline: { name: base.name, value: b, unit: "ms" },
    ratio: faster ? b / value : value / b,
    ratioLabel: faster ? "faster" : `× ${base.name.split(" (")[0]}`,
    note: `median of ${mine.length}; ${paired(ratios)}; ${note}`,
  });
}

/** "auto 6.1 ms, bare pool 5.8 ms, …": each way's median. */
function table(m: Measured, times: Map<Way, number[]>): string {
  return m.ways.filter((w) => (times.get(w)?.length ?? 0) > 0)
    .map((w) => `${w.name} ${fmtMs(median(times.get(w)!))}`).join(", ");
}

/** The notes every part gives: each way's medians, what auto ran and why. */
function commonNotes(m: Measured, o: Record<Size, number>, part: string): string[] {
  const notes = [
    `${part}: warm medians of ${o.warmReps}: ${table(m, m.warm)}`,
    `${part}: auto ran ${ranText(m.ran)} in its timed warm maps; explain() after them: ` +
    `${m.after.strategy}, ${m.after.workers} worker(s): "${m.after.reason}"`,
    `${part}: auto's concurrency for the baselines: ${m.limit.said}; explain() after the ` +
    `warm-up: ${m.before.strategy}: "${m.before.reason}"`,
  ];
  if (m.cold.size > 0) {
    notes.push(
      `${part}: cold medians of ${o.coldReps} (new executor + map + close, after one untimed ` +
        `round): ${table(m, m.cold)}; auto ran ${ranText(m.coldRan)} in its timed cold calls`,
      `${part}: auto's cold calls chose: ${
        [m.firstColdPlan, ...m.coldPlans].map((p, k) =>
          `${k === 0 ? "untimed" : `#${k}`}: ${
            p === undefined
              ? "no parallel_execution event"
              : `${p.strategy}, ${p.workers} worker(s): "${p.reason}"`
          }`
        ).join("; ")
      }`,
    );
  }
  return notes;
}

function executorWay(
  name: string,
  strategy: "serial" | "threads" | "processes" | "async",
  o: Record<Size, number>,
  concurrency?: number,
  fixed = true,
): Way {
  const options: ExecutorOptions = { strategy, maxWorkers: o.workers };
  if (concurrency !== undefined) options.concurrency = concurrency;
  return { name, fixed, options };
}

// ---------------------------------------------------------------------------------------------
// timers

async function timers(o: Record<Size, number>): Promise<PartResult> {
  const items: TimerInput[] = Array.from({ length: o.timerItems }, (_, i) => ({
    ms: o.timerMs,
    value: i,
  }));
  const w: Workload<TimerInput> = {
    part: "timers",
    task: ioTasks.timer,
    fn: io.timer,
    items,
    expected: items.map((x) => io.timerAnswer(x.value)),
  };
  const m = await measure(w, o, (limit) => [
    { name: `bare pool (≤ ${limit} in flight)`, fixed: false, limit },
    executorWay(`async c=${limit}`, "async", o, limit, false),
    executorWay("serial", "serial", o),
    executorWay("threads", "threads", o),
    executorWay("processes", "processes", o),
  ]);
  const what = `${o.timerItems} × ${o.timerMs} ms timers, ${o.workers} workers`;
  const bare = m.ways.find((w) => w.limit !== undefined)!;
  const asyncWay = m.ways.find((w) => w.name.startsWith("async"))!;
  const figures: Figure[] = [];
  const autoSays = `auto ran ${ranText(m.ran)}: "${m.after.reason}"`;
  const bareOf = (times: Map<Way, number[]>) => ({ name: bare.name, samples: times.get(bare)! });
  figures.push(against(
    {
      part: "timers",
      name: `${what}, warm: auto ÷ bare promise pool`,
      target: { on: "ratio", op: "<=", value: 1.2, label: "≤ 1.2×" },
    },
    m.warm.get(m.auto)!,
    bareOf(m.warm),
    `bare pool = a while (inFlight < ${bare.limit}) launcher on the main thread; ${autoSays}`,
  ));
  const best = bestOf(m.ways, m.warm);
  figures.push(against(
    {
      part: "timers",
      name: `${what}, warm: auto vs best fixed (concurrency 1)`,
      target: { on: "ratio", op: ">=", value: 10, label: "≥ 10× faster" },
    },
    m.warm.get(m.auto)!,
    { name: `best fixed (${best.name})`, samples: m.warm.get(best)! },
    "fixed = serial, threads, processes without concurrency (one item in flight per worker)",
    true,
  ));
  figures.push(against(
    { part: "timers", name: `${what}, warm: "async" (c=${bare.limit}) ÷ bare promise pool` },
    m.warm.get(asyncWay)!,
    bareOf(m.warm),
    "strategy \"async\" set, with the same concurrency: fanout's own cost, without auto's choice",
  ));
  if (m.cold.size > 0) {
    figures.push(against(
      { part: "timers", name: `${what}, cold: auto ÷ bare promise pool` },
      m.cold.get(m.auto)!,
      bareOf(m.cold),
      `new executor + map + close() (the bare pool just runs); auto ran ${ranText(m.coldRan)}`,
    ));
    const coldBest = bestOf(m.ways, m.cold);
    figures.push(against(
      { part: "timers", name: `${what}, cold: auto vs best fixed (concurrency 1)` },
      m.cold.get(m.auto)!,
      { name: `best fixed (${coldBest.name})`, samples: m.cold.get(coldBest)! },
      "new executor + map + close() of each",
      true,
    ));
  }
  return { figures, notes: commonNotes(m, o, "timers") };
}

// ---------------------------------------------------------------------------------------------
// fetch

async function fetches(o: Record<Size, number>): Promise<PartResult> {
  const server = await startServer(o.fetchDelayMs);
  log(`fetch: server on ${server.url}, answering after ${o.fetchDelayMs} ms`);
  const peaks = new Map<string, number>();
  try {
    const items: FetchInput[] = Array.from({ length: o.fetches }, (_, id) => ({
      url: server.url,
      id,
    }));
    const w: Workload<FetchInput> = {
      part: "fetch",
      task: ioTasks.fetchOne,
      fn: io.fetchOne,
      items,
      expected: items.map((x) => io.fetchAnswer(x.id)),
      async watch() {
        const { served } = await server.stats();
        return async (label) => {
          const now = await server.stats();
          const got = now.served - served;
          if (got !== o.fetches) {
            throw new Error(`wrong result: fetch: ${label}: the server answered ${got} requests`);
          }
          // The timed runs only: "auto (warm)", "auto (cold)".
          const phase = / (warm|cold)$/.exec(label);
          if (phase === null) return;
          const key = `${label.slice(0, phase.index)} (${phase[1]})`;
          peaks.set(key, Math.max(peaks.get(key) ?? 0, now.peak));
        };
      },
    };
    const m = await measure(w, o, (limit) => [
      { name: `bare pool (≤ ${limit} in flight)`, fixed: false, limit },
      executorWay(`async c=${limit}`, "async", o, limit, false),
      // When auto runs fewer in flight than "async"'s default, what the default would give.
      ...(limit === ASYNC_CONCURRENCY ? [] : [
        {
          name: `bare pool (≤ ${ASYNC_CONCURRENCY} in flight)`,
          fixed: false,
          limit: ASYNC_CONCURRENCY,
        },
        executorWay(`async c=${ASYNC_CONCURRENCY}`, "async", o, ASYNC_CONCURRENCY, false),
      ]),
    ]);
    const limit = m.limit.total;
    const ideal = (o.fetches * o.fetchDelayMs) / limit;
    const waves = Math.ceil(o.fetches / limit) * o.fetchDelayMs;
    const what = `${o.fetches} loopback fetches of ${o.fetchDelayMs} ms, ${o.workers} workers`;
    const bare = m.ways.find((w) => w.limit === limit)!;
    const asyncWay = m.ways.find((w) => w.name === `async c=${limit}`)!;
    const idealBase = (n: number, c = limit) => ({
      name: `ideal (${o.fetches} × ${o.fetchDelayMs} ms ÷ ${c})`,
      samples: new Array<number>(n).fill((o.fetches * o.fetchDelayMs) / c),
    });
    const floor = `with every request taking ${o.fetchDelayMs} ms, ${limit} in flight finish in ` +
      `waves: ${Math.ceil(o.fetches / limit)} waves = ${waves} ms at best, ${
        (waves / ideal).toFixed(2)
      }× the ideal`;
    const figures: Figure[] = [];
    figures.push(against(
      {
        part: "fetch",
        name: `${what}, warm: auto ÷ ideal`,
        target: { on: "ratio", op: "<=", value: 1.3, label: "≤ 1.3×" },
      },
      m.warm.get(m.auto)!,
      idealBase(o.warmReps),
      `${floor}; auto ran ${ranText(m.ran)}: "${m.after.reason}"`,
    ));
    figures.push(against(
      { part: "fetch", name: `${what}, warm: auto ÷ bare promise pool` },
      m.warm.get(m.auto)!,
      { name: bare.name, samples: m.warm.get(bare)! },
      "the bare pool: the same fetches from the main thread, what the runtime's fetch allows",
    ));
    figures.push(against(
      { part: "fetch", name: `${what}, warm: "async" (c=${limit}) ÷ ideal` },
      m.warm.get(asyncWay)!,
      idealBase(o.warmReps),
      'strategy "async" set, with the same concurrency',
    ));
    if (limit !== ASYNC_CONCURRENCY) {
      figures.push(against(
        { part: "fetch", name: `${what}, warm: auto ÷ ideal at ${ASYNC_CONCURRENCY} in flight` },
        m.warm.get(m.auto)!,
        idealBase(o.warmReps, ASYNC_CONCURRENCY),
        `auto ran ${limit} in flight; this is the ideal at "async"'s default instead; the bare ` +
          `pool at ${ASYNC_CONCURRENCY} took ${
            fmtMs(median(m.warm.get(m.ways.find((w) => w.limit === ASYNC_CONCURRENCY)!)!))
          }`,
      ));
    }
    // What one request costs here beyond the server's wait: the floor under every ratio to
    // the ideal (the runtime's fetch, the loopback, the server's timer).
    const inRow = Math.min(20, items.length);
    const row: number[] = [];
    for (let rep = 0; rep < 3; rep++) {
      const start = performance.now();
      const got = await withWatchdog(
        barePool(items.slice(0, inRow), 1, io.fetchOne),
        o.watchdogMs,
        "fetch: one at a time",
      );
      row.push(performance.now() - start);
      expectValues(got, w.expected.slice(0, inRow), "fetch: one at a time");
    }
    figures.push(against(
      {
        part: "fetch",
        name: `${inRow} fetches one at a time (bare) ÷ ${inRow} × ${o.fetchDelayMs} ms`,
      },
      row,
      {
        name: `ideal (${inRow} × ${o.fetchDelayMs} ms)`,
        samples: new Array<number>(row.length).fill(inRow * o.fetchDelayMs),
      },
      "what one request costs beyond the server's wait, with nothing else in flight: no way " +
        "with more in flight can come nearer the ideal than this",
    ));
    if (m.cold.size > 0) {
      // Each cold call's own concurrency, from its event (the warm one if it had none).
      const limits = m.coldPlans.map((p) => (p === undefined ? undefined : limitOf(p)));
      const ideals = limits.map((l) => (o.fetches * o.fetchDelayMs) / (l?.total ?? limit));
      const cs = [...new Set(limits.map((l) => l?.total ?? limit))];
      figures.push(against(
        { part: "fetch", name: `${what}, cold: auto ÷ ideal` },
        m.cold.get(m.auto)!,
        {
          name: `ideal (${o.fetches} × ${o.fetchDelayMs} ms ÷ ${cs.join(" or ")})`,
          samples: ideals,
        },
        `new executor + map + close(); auto ran ${ranText(m.coldRan)}; the ideal of each cold ` +
          `call with its own concurrency: ${
            limits.map((l) => l?.said ?? `no event: the warm ${limit}`).join("; ")
          }`,
      ));
    }
    return {
      figures,
      notes: [
        ...commonNotes(m, o, "fetch"),
        `fetch: most requests open at once at the server, per way: ${
          [...peaks].map(([way, n]) => `${way} ${n}`).join(", ")
        }`,
      ],
    };
  } finally {
    await withWatchdog(server.close(), o.watchdogMs, "fetch: closing the server");
  }
}

// ---------------------------------------------------------------------------------------------
// mixed

async function mixedWork(o: Record<Size, number>): Promise<PartResult> {
  const iterations = Math.max(1, Math.round(calibrateSpin() * o.mixedCpuMs));
  const spinMs = median([0, 1, 2].map(() => timeSync(() => spin(iterations))));
  const spun = spin(iterations);
  const items: MixedInput[] = Array.from({ length: o.mixedItems }, (_, i) => ({
    ms: o.mixedWaitMs,
    iterations,
    value: i,
  }));
  const w: Workload<MixedInput> = {
    part: "mixed",
    task: ioTasks.mixed,
    fn: io.mixed,
    items,
    expected: items.map((x) => io.mixedAnswer(spun, x.value)),
  };
  const m = await measure(w, o, () => [
    ...MIXED_CONCURRENCIES.map((c) => executorWay(`threads c=${c}`, "threads", o, c)),
    ...MIXED_CONCURRENCIES.map((c) => executorWay(`processes c=${c}`, "processes", o, c)),
    executorWay(`async c=${ASYNC_CONCURRENCY}`, "async", o, ASYNC_CONCURRENCY),
  ]);
  const what =
    `${o.mixedItems} × (${o.mixedWaitMs} ms wait + ~${o.mixedCpuMs} ms CPU), ${o.workers} workers`;
  const best = bestOf(m.ways, m.warm);
  const figures: Figure[] = [against(
    {
      part: "mixed",
      name: `${what}, warm: auto ÷ best fixed`,
      target: { on: "ratio", op: "<=", value: 1.15, label: "≤ 1.15×" },
    },
    m.warm.get(m.auto)!,
    { name: `best fixed (${best.name})`, samples: m.warm.get(best)! },
    `fixed = threads and processes with concurrency ${MIXED_CONCURRENCIES.join(", ")}, async ` +
      `with ${ASYNC_CONCURRENCY}; auto ran ${ranText(m.ran)}: "${m.after.reason}"`,
  )];
  if (m.cold.size > 0) {
    const coldBest = bestOf(m.ways, m.cold);
    figures.push(against(
      { part: "mixed", name: `${what}, cold: auto ÷ best fixed` },
      m.cold.get(m.auto)!,
      { name: `best fixed (${coldBest.name})`, samples: m.cold.get(coldBest)! },
      `new executor + map + close() of each; auto ran ${ranText(m.coldRan)}`,
    ));
  }
  return {
    figures,
    notes: [
      ...commonNotes(m, o, "mixed"),
      `mixed: CPU per item = work.spin(${iterations}), ${spinMs.toFixed(2)} ms on the main thread`,
    ],
  };
}

/** Parts timers, fetch and mixed: tasks that mostly wait. */
export const ioScenario: Scenario<Size> = {
  name: "io",
  sizes: SIZES,
  // The processes ways: their CPU is this run's, not others'.
  children: true,
  parts: { timers, fetch: fetches, mixed: mixedWork },
};

// Run as a script, this file runs its scenario through run.ts. Not awaited at the top level:
// run.ts imports this module, which must finish evaluating first.
if (import.meta.main) {
  import("./run.ts").then(({ main }) => main(process.argv.slice(2), "io"));
}
