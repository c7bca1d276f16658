/**
 * Start-up and teardown on threads:
 *
 * - d. a new executor (`maxWorkers: 2`) + its first task + `close()`, median of 10 fresh
 *   executors, for an inline task, a `.js` module task (`work_js.js`) and a `.ts` module task
 *   (`work.ts`), against 2 bare workers started, pinged once and terminated (`_bare.ts`), and
 *   held to what peer libraries take on this machine;
 * - e. 1,000 create / run / dispose cycles, each under a watchdog, counting hangs and the
 *   threads still alive after each (`liveThreadCount()`).
 *
 * ```sh
 * node_modules/.bin/bun bench/run.ts startup [--quick] [--cycles 200]
 * ```
 *
 * @module
 */

import process from "node:process";
import { ParallelExecutor } from "../mod.ts";
import { detect, liveThreadCount } from "../src/runtime/mod.ts";
import { barePing, startBarePool, stopBarePool } from "./_bare.ts";
import type { PartResult, Scenario, SizeSpec } from "./_measure.ts";
import {
  benchLog,
  expectValues,
  fail,
  figure,
  jsTasks,
  median,
  readText,
  timeAsync,
  WatchdogTimeout,
  withWatchdog,
  workTasks,
} from "./_measure.ts";

type Size = "workers" | "starts" | "cycles" | "watchdogMs";

const SIZES: Record<Size, SizeSpec> = {
  workers: { flag: "workers", full: 2, quick: 2, help: "maxWorkers for parts a, b, d, e" },
  starts: { flag: "starts", full: 10, quick: 5, help: "d: fresh executors per variant" },
  cycles: { flag: "cycles", full: 1_000, quick: 100, help: "e: create/run/dispose cycles" },
  watchdogMs: { flag: "watchdog-ms", full: 10_000, quick: 10_000, help: "e: per-cycle limit" },
};

const log = benchLog("startup");

/** Pool start-up of peer libraries on this machine (2 workers, first task, dispose). */
const PEER_START_MS: Record<string, number> = { node: 49.5, bun: 24.8, deno: 64.2 };

/** The first tasks of part d: each must answer 2. */
export const FIRST_TASKS: { label: string; run(ex: ParallelExecutor): Promise<number> }[] = [
  { label: "inline (n) => n + 1", run: (ex) => ex.submit((n: number) => n + 1, 1) },
  { label: "module task, .js (work_js.js)", run: (ex) => ex.submit(jsTasks.inc, 1) },
  { label: "module task, .ts (work.ts)", run: (ex) => ex.submit(workTasks.inc, 1) },
];

/** A new executor of `workers` threads, its first task and `close()`, each within `limitMs`. */
export async function startRunClose(
  workers: number,
  first: typeof FIRST_TASKS[number],
  limitMs: number,
): Promise<void> {
  const ex = new ParallelExecutor({ strategy: "threads", maxWorkers: workers });
  const answer = await withWatchdog(first.run(ex), limitMs, `${first.label}: first task`);
  if (answer !== 2) fail(first.label);
  await withWatchdog(ex.close(), limitMs, `${first.label}: close()`);
}

/** The baseline: `workers` bare workers started (within `limitMs`), one pinged, all stopped. */
export async function bareStartPing(workers: number, limitMs: number): Promise<void> {
  const pool = await withWatchdog(startBarePool(workers), limitMs, "bare pool start");
  if (await barePing(pool[0], 1) !== 2) fail("bare start ping");
  await stopBarePool(pool);
}

// ---------------------------------------------------------------------------------------------
// d. Pool start + first task + close

async function startFirstClose(o: Record<Size, number>): Promise<PartResult> {
  const samples = FIRST_TASKS.map((): number[] => []);
  const bareSamples: number[] = [];
  let leaks = 0;
  for (let s = 0; s < o.starts; s++) {
    // Round-robin over the variants, so that noise on the machine hits all of them alike.
    bareSamples.push(await timeAsync(() => bareStartPing(o.workers, o.watchdogMs)));
    for (const [k, v] of FIRST_TASKS.entries()) {
      samples[k].push(await timeAsync(() => startRunClose(o.workers, v, o.watchdogMs)));
      if (liveThreadCount() !== 0) leaks++;
    }
  }
  const peer = PEER_START_MS[detect().name];
  const bare = {
    name: `bare ${o.workers}-worker start+ping+terminate`,
    value: median(bareSamples),
    unit: "ms",
  };
  log(
    `d: medians ${
      FIRST_TASKS.map((v, k) => `${v.label} ${median(samples[k]).toFixed(1)} ms`).join("; ")
    }`,
  );
  return {
    figures: FIRST_TASKS.map((v, k) =>
      figure({
        part: "d",
        name: `start + first task + close(), ${o.workers} workers, ${v.label}`,
        value: median(samples[k]),
        unit: "ms",
        baseline: bare,
        ratio: median(samples[k]) / bare.value,
        ratioLabel: "× bare",
        target: k < 2 && peer !== undefined
          ? { on: "value", op: "<=", value: peer, label: `≤ peer ${peer} ms` }
          : undefined,
        note: k === 2
          ? `peer figure ${peer} ms is for .js workers; Node strips the types of work.ts in each worker`
          : undefined,
      })
    ),
    notes: [
      `d: median of ${o.starts} fresh executors per variant (min–max: ${
        samples.map((ms) => `${Math.min(...ms).toFixed(1)}–${Math.max(...ms).toFixed(1)}`)
          .join(", ")
      } ms); threads alive after close(): ${leaks === 0 ? "none" : `${leaks} times`}`,
    ],
  };
}

// ---------------------------------------------------------------------------------------------
// e. Create / run / dispose cycles

const MAX_HANGS = 5;

function osThreads(): number | undefined {
  try {
    const m = /^Threads:\s+(\d+)/m.exec(readText("/proc/self/status"));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

async function cycles(o: Record<Size, number>): Promise<PartResult> {
  const items = [1, 2, 3, 4];
  const expected = items.map((n) => n + 1);
  let current: ParallelExecutor | undefined;
  const fresh = (): ParallelExecutor => {
    current = new ParallelExecutor({ strategy: "threads", maxWorkers: o.workers });
    return current;
  };
  const kinds: { label: string; run: () => Promise<void> }[] = [
    {
      label: "map(inline) + close()",
      run: async () => {
        const ex = fresh();
        expectValues(await ex.map((n: number) => n + 1, items), expected, "map(inline)");
        await ex.close();
      },
    },
    {
      label: "map(.js module) + terminate()",
      run: async () => {
        const ex = fresh();
        expectValues(await ex.map(jsTasks.inc, items), expected, "map(.js module)");
        await ex.terminate();
      },
    },
    {
      label: "submit(.ts module) + await using",
      run: async () => {
        await using ex = fresh();
        if (await ex.submit(workTasks.inc, 1) !== 2) fail("submit(.ts module)");
      },
    },
  ];
  const threadsBefore = osThreads();
  let hangs = 0;
  let leaked = 0;
  let dirtyCycles = 0;
  let done = 0;
  const times: number[] = [];
  const hangLabels: string[] = [];
  const started = performance.now();
  for (let c = 0; c < o.cycles && hangs < MAX_HANGS; c++) {
    const kind = kinds[c % kinds.length];
    const before = liveThreadCount();
    const t0 = performance.now();
    try {
      await withWatchdog(kind.run(), o.watchdogMs, `cycle ${c} (${kind.label})`);
      times.push(performance.now() - t0);
    } catch (error) {
      if (!(error instanceof WatchdogTimeout)) throw error;
      hangs++;
      hangLabels.push(`cycle ${c} (${kind.label})`);
      await withWatchdog(current!.terminate(), o.watchdogMs, "terminate() after a hang").catch(
        () => {},
      );
    }
    done++;
    const after = liveThreadCount();
    if (after !== 0) dirtyCycles++;
    if (after > before) leaked += after - before;
    if ((c + 1) % 100 === 0) {
      log(
        `e: ${c + 1}/${o.cycles} cycles, hangs ${hangs}, leaked ${leaked}, ` +
          `${((performance.now() - started) / 1000).toFixed(1)} s`,
      );
    }
  }
  const threadsAfter = osThreads();
  const summary = `hangs: ${hangs}, leaked: ${leaked}`;
  log(`e: ${summary}`);
  const name = `${done} create/run/dispose cycles`;
  return {
    figures: [
      figure({
        part: "e",
        name: `${name}: hangs (watchdog ${o.watchdogMs / 1000} s)`,
        value: hangs,
        unit: "count",
        target: { on: "value", op: "==", value: 0, label: "0" },
        note: hangs > 0
          ? `hung: ${hangLabels.join(", ")}${
            hangs >= MAX_HANGS ? `; stopped after ${MAX_HANGS} hangs` : ""
          }`
          : undefined,
      }),
      figure({
        part: "e",
        name: `${name}: leaked threads`,
        value: leaked,
        unit: "count",
        target: { on: "value", op: "==", value: 0, label: "0" },
        note: `liveThreadCount() after each dispose; cycles where it was not 0: ${dirtyCycles}; ` +
          `at the end: ${liveThreadCount()}`,
      }),
      figure({
        part: "e",
        name: `${name}: one cycle (median)`,
        value: median(times),
        unit: "ms",
        note: `cycles rotate ${kinds.map((k) => k.label).join(" / ")}; total ` +
          `${((performance.now() - started) / 1000).toFixed(1)} s`,
      }),
    ],
    notes: [
      `e: ${summary}` +
      (threadsBefore === undefined
        ? ""
        : `; OS threads of the process before the cycles ${threadsBefore}, after ${threadsAfter}`),
    ],
  };
}

/** Parts d (start + first task + close) and e (create/run/dispose cycles). */
export const startup: Scenario<Size> = {
  name: "startup",
  sizes: SIZES,
  parts: { d: startFirstClose, e: cycles },
};

// Run as a script, this file runs its scenario through run.ts. Not awaited at the top level:
// run.ts imports this module, which must finish evaluating first.
if (import.meta.main) {
  import("./run.ts").then(({ main }) => main(process.argv.slice(2), "startup"));
}
