/**
 * What the process strategy costs, each figure against a baseline measured in the same
 * process, in interleaved rounds (the machine is shared and noisy). No targets: these figures
 * say what isolation costs.
 *
 * - p1. one warm `submit(work.noop)` round trip on 1 worker: processes against threads, and
 *   against a bare child echoing the same message on the same transport (`_bare_process.mjs`);
 *   run it under `taskset -c 0` too, for the pinned figure;
 * - p2. pool start + first `submit(work.noop)`: processes against a bare spawn of the same
 *   runtime running `_ready.mjs` until it prints "ready"; and the `close()` that follows;
 * - p3. `map` over 20,000 trivial items on 2 workers: processes against threads.
 *
 * ```sh
 * node_modules/.bin/deno run -A bench/run.ts processes [--quick] [--calls 1000]
 * taskset -c 0 node_modules/.bin/node bench/run.ts p1
 * ```
 *
 * @module
 */

import process from "node:process";
import { ParallelExecutor } from "../mod.ts";
import { detect, liveProcessPids } from "../src/runtime/mod.ts";
import { bareSpawn, startBareProcess } from "./_bare_spawn.ts";
import type { BareProcess } from "./_bare_spawn.ts";
import type { Figure, PartResult, Scenario, SizeSpec } from "./_measure.ts";
import {
  benchLog,
  bounded,
  closeWithin,
  expectValues,
  fail,
  jsTasks,
  load,
  mean,
  median,
  noise,
  paired,
  timeEach,
  versus,
  withWatchdog,
  workTasks,
} from "./_measure.ts";
import { trivialItems } from "./throughput.ts";
import { submitTrips, tripFigures } from "./round_trip.ts";

type Size = "calls" | "warmup" | "rounds" | "poolStarts" | "mapItems" | "mapReps" | "watchdogMs";

const SIZES: Record<Size, SizeSpec> = {
  calls: { flag: "calls", full: 3_000, quick: 1_000, help: "p1: timed round trips of each kind" },
  warmup: { flag: "warmup", full: 500, quick: 200, help: "p1: warm-up calls of each kind" },
  rounds: { flag: "rounds", full: 10, quick: 5, help: "p1: interleaved rounds" },
  poolStarts: { flag: "pool-starts", full: 10, quick: 5, help: "p2: starts of each kind" },
  mapItems: { flag: "map-items", full: 20_000, quick: 20_000, help: "p3: items per map" },
  mapReps: { flag: "map-reps", full: 7, quick: 3, help: "p3: timed maps of each kind" },
  watchdogMs: {
    flag: "watchdog-ms",
    full: 30_000,
    quick: 30_000,
    help: "limit for one start, close or round",
  },
};

type Sizes = Record<Size, number>;

const log = benchLog("processes");

/** How many CPUs this process may use, for figure names: the pinned run is its own row. */
function cpuLabel(): string {
  const cpus = detect().cpus;
  return cpus === 1 ? "1 CPU" : `${cpus} CPUs`;
}

/** The message the pool sends for a `submit` (src/protocol.ts): what the bare child echoes. */
const SUBMIT_MESSAGE = { type: "run", id: 0, task: 1, base: 0, items: [undefined], timed: false };

/** `count` round trips with a bare child, each echoing {@linkcode SUBMIT_MESSAGE}: µs each. */
export function echoTrips(bare: BareProcess, count: number): Promise<number[]> {
  return timeEach(count, (i) => bare.ping({ ...SUBMIT_MESSAGE, id: i }), (reply, i) => {
    if ((reply as { id?: number }).id !== i) fail("bare process echo");
  });
}

// ---------------------------------------------------------------------------------------------
// p1. Warm submit() round trip: processes against threads

async function roundTrip(o: Sizes): Promise<PartResult> {
  await using proc = bounded({ strategy: "processes", maxWorkers: 1 }, o.watchdogMs, "p1");
  await using thr = bounded({ strategy: "threads", maxWorkers: 1 }, o.watchdogMs, "p1");
  const bare = await withWatchdog(startBareProcess(), o.watchdogMs, "p1: bare process start");
  const procUs: number[] = [];
  const thrUs: number[] = [];
  const bareUs: number[] = [];
  const ratios: number[] = [];
  const bareRatios: number[] = [];
  const per = Math.max(1, Math.ceil(o.calls / o.rounds));
  try {
    const kinds = [
      { label: "processes", trips: (n: number) => submitTrips(proc.ex, n), into: procUs },
      { label: "threads", trips: (n: number) => submitTrips(thr.ex, n), into: thrUs },
      { label: "bare process", trips: (n: number) => echoTrips(bare, n), into: bareUs },
    ];
    log(`p1: warm-up (${o.warmup} calls of each kind)`);
    for (const k of kinds) {
      await withWatchdog(k.trips(o.warmup), o.watchdogMs, `p1: ${k.label} warm-up`);
    }
    for (let round = 0; round < o.rounds; round++) {
      const before = load();
      // Rotate the order, so that none always runs right after another.
      const medians = new Map<string, number>();
      for (let j = 0; j < kinds.length; j++) {
        const k = kinds[(j + round) % kinds.length];
        const us = await withWatchdog(k.trips(per), o.watchdogMs, `p1: ${k.label} round`);
        k.into.push(...us);
        medians.set(k.label, median(us));
      }
      const [p, t, r] = kinds.map((k) => medians.get(k.label)!);
      ratios.push(p / t);
      bareRatios.push(p / r);
      log(
        `p1: round ${round + 1}/${o.rounds}: processes ${p.toFixed(1)} µs, threads ` +
          `${t.toFixed(1)} µs, bare process ${r.toFixed(1)} µs (medians of ${per}); ` +
          noise(before, load()),
      );
    }
  } finally {
    await withWatchdog(bare.stop(), o.watchdogMs, "p1: bare stop");
  }
  const cpus = detect().cpus;
  const pinned = cpus === 1
    ? "pinned to 1 CPU: parent and child take turns on it"
    : `NOT pinned (${cpus} CPUs visible): from round to round the scheduler puts parent and ` +
      `child on one CPU or on two, and round trips (threads and the bare child's too) flip ` +
      `between two levels up to ~3× apart, so this ratio is noisy; the run under ` +
      `taskset -c 0 is the one to quote`;
  const name = `submit(noop) round trip, warm, 1 worker, processes [${cpuLabel()}]`;
  const transport = detect().name === "deno"
    ? "node:v8 frames over stdin/stdout"
    : "IPC channel, structured serialization";
  return {
    figures: [
      ...tripFigures(
        "p1",
        name,
        procUs,
        { name: "threads", samples: thrUs },
        "vs threads",
        {
          note: `one sequential, awaited submit(work.noop) on a warm 1-worker pool, against the ` +
            `same on threads; ${procUs.length} calls of each after ${o.warmup} warm-up, ` +
            `interleaved in ${o.rounds} rounds; ${paired(ratios)} (per-round medians); ${pinned}`,
        },
      ),
      versus(median, procUs, { name: "bare process ping-pong", samples: bareUs }, {
        part: "p1",
        name: `${name} (median) vs a bare process`,
        unit: "µs",
        ratioLabel: "vs bare",
        note: `what fanout adds to its transport: the same message echoed by a bare child ` +
          `(_bare_process.mjs; ${transport}), in the same rounds; ${paired(bareRatios)}; ` +
          `bare mean ${mean(bareUs).toFixed(1)} µs`,
      }),
    ],
    notes: [],
  };
}

// ---------------------------------------------------------------------------------------------
// p2. Pool start + first task, against a bare spawn of the same runtime

/** The first tasks of part p2. */
export const FIRST_TASKS: { label: string; run(ex: ParallelExecutor): Promise<void> }[] = [
  {
    label: "submit(work.noop), .ts module",
    run: async (ex) => {
      if (await ex.submit(workTasks.noop, undefined) !== undefined) fail("first noop");
    },
  },
  {
    label: "submit(work_js.inc), .js module",
    run: async (ex) => {
      if (await ex.submit(jsTasks.inc, 1) !== 2) fail("first inc");
    },
  },
];

/**
 * A new 1-process pool until its first task resolved, and its `close()`, within `limitMs`
 * each; terminated if the task fails.
 *
 * @returns The ms until the first task's result, and those of the `close()` after it.
 */
export async function startProcess(
  first: typeof FIRST_TASKS[number],
  limitMs: number,
): Promise<{ startMs: number; closeMs: number }> {
  const t0 = performance.now();
  const ex = new ParallelExecutor({ strategy: "processes", maxWorkers: 1 });
  try {
    await withWatchdog(first.run(ex), limitMs, `p2: ${first.label}`);
  } catch (error) {
    await closeWithin(ex, limitMs, "p2", true).catch(() => {});
    throw error;
  }
  const t1 = performance.now();
  await closeWithin(ex, limitMs, `p2: ${first.label}`);
  return { startMs: t1 - t0, closeMs: performance.now() - t1 };
}

async function poolStart(o: Sizes): Promise<PartResult> {
  const starts = FIRST_TASKS.map((): number[] => []);
  const closes = FIRST_TASKS.map((): number[] => []);
  const ratios = FIRST_TASKS.map((): number[] => []);
  const bareReady: number[] = [];
  const bareExit: number[] = [];
  let leaks = 0;
  log("p2: one unmeasured start of each, to fill file caches");
  await withWatchdog(bareSpawn(), o.watchdogMs, "p2: bare spawn");
  for (const v of FIRST_TASKS) await startProcess(v, o.watchdogMs);
  for (let s = 0; s < o.poolStarts; s++) {
    const before = load();
    // Rotate the order (bare, then each variant), so that noise hits all of them alike.
    const steps = [-1, ...FIRST_TASKS.keys()];
    const order = steps.map((_, k) => steps[(k + s) % steps.length]);
    const sample: number[] = [];
    for (const k of order) {
      if (k === -1) {
        const bare = await withWatchdog(bareSpawn(), o.watchdogMs, "p2: bare spawn");
        bareReady.push(bare.readyMs);
        bareExit.push(bare.exitMs);
        continue;
      }
      const { startMs, closeMs } = await startProcess(FIRST_TASKS[k], o.watchdogMs);
      starts[k].push(startMs);
      closes[k].push(closeMs);
      sample[k] = startMs;
      if (liveProcessPids().length !== 0) leaks++;
    }
    const bare = bareReady[bareReady.length - 1];
    for (const k of FIRST_TASKS.keys()) ratios[k].push(sample[k] / bare);
    log(
      `p2: start ${s + 1}/${o.poolStarts}: bare spawn → ready ${bare.toFixed(1)} ms; ` +
        FIRST_TASKS.map((v, k) =>
          `${v.label} ${sample[k].toFixed(1)} ms (close ${closes[k].at(-1)!.toFixed(1)} ms)`
        ).join("; ") + `; ${noise(before, load())}`,
    );
  }
  const bare = { name: 'bare spawn → "ready"', value: median(bareReady), unit: "ms" };
  const range = (ms: number[]): string =>
    `${Math.min(...ms).toFixed(1)}–${Math.max(...ms).toFixed(1)} ms`;
  return {
    figures: [
      ...FIRST_TASKS.map((v, k): Figure => ({
        part: "p2",
        name: `pool start (1 process) + first ${v.label}`,
        value: median(starts[k]),
        unit: "ms",
        baseline: bare,
        ratio: median(starts[k]) / bare.value,
        ratioLabel: "vs bare",
        note:
          (k === 0
            ? `new ParallelExecutor({ strategy: "processes", maxWorkers: 1 }) until its first ` +
              `task resolved (close() not in it), against spawning the runtime on _ready.mjs ` +
              `with its own spawn API until "ready" is read on stdout; `
            : `the same with a plain-JavaScript task module (no type stripping in the child); `) +
          `median of ${o.poolStarts}, interleaved (range ${range(starts[k])}); ${
            paired(ratios[k])
          }`,
      })),
      ...FIRST_TASKS.map((v, k): Figure => ({
        part: "p2",
        name: `close() after the first ${v.label}`,
        value: median(closes[k]),
        unit: "ms",
        note: k === 0
          ? `close() of the 1-process pool above, until the process has exited and been ` +
            `reaped; median of ${o.poolStarts} (range ${range(closes[k])}); the bare child ` +
            `exits by itself ${(median(bareExit) - bare.value).toFixed(1)} ms after "ready"`
          : undefined,
      })),
    ],
    notes: [
      `p2: processes alive after close(): ${leaks === 0 ? "none" : `${leaks} times`}`,
    ],
  };
}

// ---------------------------------------------------------------------------------------------
// p3. map() throughput of trivial items: processes against threads

const MAP_WORKERS = 2;

async function manyItems(o: Sizes): Promise<PartResult> {
  const { items, expected } = trivialItems(o.mapItems);
  const options = { maxWorkers: MAP_WORKERS, chunkSize: "auto" } as const;
  await using proc = bounded({ strategy: "processes", ...options }, o.watchdogMs, "p3");
  await using thr = bounded({ strategy: "threads", ...options }, o.watchdogMs, "p3");
  /** One map, checked; items/s. */
  const rate = async (ex: ParallelExecutor, what: string): Promise<number> => {
    const start = performance.now();
    const values = await withWatchdog(ex.map(workTasks.inc, items), o.watchdogMs, what);
    const ms = performance.now() - start;
    expectValues(values, expected, what);
    return o.mapItems / (ms / 1000);
  };
  const procRates: number[] = [];
  const thrRates: number[] = [];
  const ratios: number[] = [];
  log(`p3: warm-up (one map of ${o.mapItems} items on each, starting the pools)`);
  await rate(proc.ex, "p3: processes warm-up");
  await rate(thr.ex, "p3: threads warm-up");
  for (let rep = 0; rep < o.mapReps; rep++) {
    const before = load();
    let p: number;
    let t: number;
    if (rep % 2 === 0) {
      p = await rate(proc.ex, "p3: processes map");
      t = await rate(thr.ex, "p3: threads map");
    } else {
      t = await rate(thr.ex, "p3: threads map");
      p = await rate(proc.ex, "p3: processes map");
    }
    procRates.push(p);
    thrRates.push(t);
    ratios.push(p / t);
    log(
      `p3: rep ${rep + 1}/${o.mapReps}: processes ${Math.round(p)} items/s, threads ` +
        `${Math.round(t)} items/s; ${noise(before, load())}`,
    );
  }
  const count = (x: number): string => Math.round(x).toLocaleString("en-US");
  return {
    figures: [{
      part: "p3",
      name: `map(): ${
        o.mapItems.toLocaleString("en-US")
      } trivial items, ${MAP_WORKERS} workers, processes`,
      value: median(procRates),
      unit: "items/s",
      baseline: { name: "threads", value: median(thrRates), unit: "items/s" },
      ratio: median(procRates) / median(thrRates),
      ratioLabel: "vs threads",
      note: `work.inc through map() on warm pools, chunkSize "auto", against the same on ` +
        `threads; median of ${o.mapReps} interleaved maps (best: processes ${
          count(Math.max(...procRates))
        }, threads ${count(Math.max(...thrRates))} items/s); ${paired(ratios)}`,
    }],
    notes: [],
  };
}

/** Parts p1 (round trip), p2 (start-up) and p3 (throughput) of `strategy: "processes"`. */
export const processes: Scenario<Size> = {
  name: "processes",
  sizes: SIZES,
  parts: { p1: roundTrip, p2: poolStart, p3: manyItems },
  children: true,
};

// Run as a script, this file runs its scenario through run.ts. Not awaited at the top level:
// run.ts imports this module, which must finish evaluating first.
if (import.meta.main) {
  import("./run.ts").then(({ main }) => main(process.argv.slice(2), "processes"));
}
