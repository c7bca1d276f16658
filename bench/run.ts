/**
 * The cross-runtime bench: runs the same workloads on whichever runtime runs it, and compares
 * each of fanout's figures with a baseline measured in the same process.
 *
 * ```sh
 * node_modules/.bin/deno run -A bench/run.ts [--quick] [--only a,b] [--json]
 * node_modules/.bin/bun bench/run.ts
 * node_modules/.bin/node bench/run.ts
 * ```
 *
 * Parts (see bench/README.md): a. CPU-bound speedup; b. trivial-item throughput against a bare
 * pool; c. one `submit()` round trip against a raw ping-pong (run it under `taskset -c 0`);
 * d. pool start + first task + close; e. create/run/dispose cycles, counting hangs and leaks.
 * Sizes come from flags, else from `FANOUT_BENCH_<FLAG>` environment variables (e.g.
 * `FANOUT_BENCH_CYCLES=200`), else from the defaults (or the `--quick` ones).
 *
 * @module
 */

import { benchLog, fail, parseBenchOptions, readText, runParts } from "./_cli.ts";
import type { BenchOptions, PartResult, SizeSpec } from "./_cli.ts";
import process from "node:process";
import { ParallelExecutor, tasks } from "../mod.ts";
import { detect, liveThreadCount } from "../src/runtime/mod.ts";
import * as work from "./work.ts";
import {
  bareMap,
  barePing,
  bareRunEach,
  startBarePool,
  startBareWorker,
  stopBarePool,
} from "./_bare.ts";
import {
  describeLoad,
  mean,
  median,
  sampleCpu,
  timeAsync,
  timeSync,
  WatchdogTimeout,
  withWatchdog,
} from "./_stats.ts";
import type { Figure } from "./_table.js";
import { meets } from "./_table.js";

const workTasks = tasks<typeof work>(new URL("./work.ts", import.meta.url));
const jsTasks = tasks<typeof import("./work_js.js")>(new URL("./work_js.js", import.meta.url));

/** Pool start-up of peer libraries on this machine (2 workers, first task, dispose). */
const PEER_START_MS: Record<string, number> = { node: 49.5, bun: 24.8, deno: 64.2 };

const PARTS = ["a", "b", "c", "d", "e"] as const;
type Part = typeof PARTS[number];

interface Sizes {
  workers: number;
  cpuTasks: number;
  cpuReps: number;
  items: number;
  itemReps: number;
  pings: number;
  starts: number;
  cycles: number;
  watchdogMs: number;
}

const SIZES: Record<keyof Sizes, SizeSpec> = {
  workers: { flag: "workers", full: 2, quick: 2, help: "maxWorkers for parts a, b, d, e" },
  cpuTasks: { flag: "cpu-tasks", full: 64, quick: 16, help: "a: ~20 ms tasks per map" },
  cpuReps: { flag: "cpu-reps", full: 5, quick: 1, help: "a: timed repetitions" },
  items: { flag: "items", full: 200_000, quick: 50_000, help: "b: trivial items per map" },
  itemReps: { flag: "item-reps", full: 5, quick: 2, help: "b: timed repetitions" },
  pings: { flag: "pings", full: 10_000, quick: 2_000, help: "c: timed round trips of each kind" },
  starts: { flag: "starts", full: 10, quick: 5, help: "d: fresh executors per variant" },
  cycles: { flag: "cycles", full: 1_000, quick: 100, help: "e: create/run/dispose cycles" },
  watchdogMs: { flag: "watchdog-ms", full: 10_000, quick: 10_000, help: "e: per-cycle limit" },
};

type Options = BenchOptions<keyof Sizes, Part>;

function parseOptions(argv: string[]): Options {
  return parseBenchOptions(argv, "run.ts", PARTS, SIZES);
}

const log = benchLog("bench");

/** A figure with its target checked. */
function figure(f: Figure): Figure {
  return f.target === undefined ? f : { ...f, met: meets(f.target, f.value, f.ratio) };
}

// ---------------------------------------------------------------------------------------------
// a. CPU-bound speedup

/** Finds the iteration count of `work.spin` that takes ~20 ms here, and what it really takes. */
function calibrateSpin(): { iterations: number; ms: number } {
  // Several full-size runs first: Bun's JIT reaches its top tier only after a few.
  for (let i = 0; i < SPIN_WARMUP_RUNS; i++) work.spin(work.SPIN_ITERATIONS_20MS);
  const probe = Math.min(
    ...[0, 1, 2].map(() => timeSync(() => work.spin(work.SPIN_ITERATIONS_20MS))),
  );
  const iterations = Math.round(work.SPIN_ITERATIONS_20MS * (TASK_MS / probe));
  const ms = median([0, 1, 2, 3, 4].map(() => timeSync(() => work.spin(iterations))));
  return { iterations, ms };
}

const TASK_MS = 20;
const SPIN_WARMUP_RUNS = 10;

async function partA(o: Options): Promise<{ figures: Figure[]; notes: string[] }> {
  const { iterations, ms: taskMs } = calibrateSpin();
  const inputs: number[] = new Array(o.cpuTasks).fill(iterations);
  const expected = work.spin(iterations);
  const check = (values: number[], what: string, count = inputs.length): void => {
    if (values.length !== count || values.some((v) => v !== expected)) fail(what);
  };
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
      const load = sampleCpu(readText);
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
          `warm ${w.toFixed(0)} ms, ` +
          `cold ${c.toFixed(0)} ms, strategy "serial" ${ss.toFixed(0)} ms; ` +
          describeLoad(load, sampleCpu(readText)),
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
  const paired = (ratios: number[]): string =>
    `median of paired ratios ${median(ratios).toFixed(2)} (${
      ratios.map((r) => r.toFixed(2)).join(", ")
    })`;
  return {
    figures: [
      figure({
        part: "a",
        name: `CPU: ${what}, warm pool, ${o.workers} workers`,
        value: Math.min(...warm),
        unit: "ms",
        baseline: base,
        ratio: best / Math.min(...warm),
        ratioLabel: "speedup",
        target: { on: "ratio", op: ">=", value: 1.95, label: "≥ 1.95×" },
        note: `best of ${o.cpuReps}; ${paired(warmRatio)}; ${
          (100 * Math.min(...bare) / Math.min(...warm)).toFixed(1)
        }% of the bare pool's speedup`,
      }),
      figure({
        part: "a",
        name: `CPU: ${what}, bare pool of ${o.workers} raw workers`,
        value: Math.min(...bare),
        unit: "ms",
        baseline: base,
        ratio: best / Math.min(...bare),
        ratioLabel: "speedup",
        note: `what this machine allows right now: one task in flight per worker, raw ` +
          `postMessage; best of ${o.cpuReps}; ${paired(bareRatio)}`,
      }),
      figure({
        part: "a",
        name: `CPU: ${what}, cold (new executor + map)`,
        value: Math.min(...cold),
        unit: "ms",
        baseline: base,
        ratio: best / Math.min(...cold),
        ratioLabel: "speedup",
        note: `includes starting the pool and importing work.ts in each worker (close() is not ` +
          `timed); best of ${o.cpuReps}; ${paired(coldRatio)}`,
      }),
      figure({
        part: "a",
        name: `CPU: ${what}, strategy "serial"`,
        value: Math.min(...strategySerial),
        unit: "ms",
        baseline: base,
        ratio: best / Math.min(...strategySerial),
        ratioLabel: "speedup",
      }),
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

async function partB(o: Options): Promise<{ figures: Figure[]; notes: string[] }> {
  const items = Array.from({ length: o.items }, (_, i) => i);
  const check = (values: number[], what: string): void => {
    if (values.length !== items.length) fail(`${what}: ${values.length} results`);
    for (let i = 0; i < items.length; i++) if (values[i] !== i + 1) fail(`${what}: item ${i}`);
  };
  const pool = new ParallelExecutor({ strategy: "threads", maxWorkers: o.workers });
  const bare = await startBarePool(o.workers);
  const lib: number[] = [];
  const raw: number[] = [];
  const ratios: number[] = [];
  try {
    log(`b: warm-up (${o.items} items through each)`);
    check(await bareMap(bare, items), "bare warm-up");
    check(await pool.map(workTasks.inc, items), "map warm-up");
    for (let rep = 0; rep < o.itemReps; rep++) {
      // Alternate which goes first, so neither always runs right after the other's garbage.
      const runBare = async (): Promise<number> => {
        let values: number[] = [];
        const ms = await timeAsync(async () => {
          values = await bareMap(bare, items);
        });
        check(values, "bare pool");
        return o.items / (ms / 1000);
      };
      const runLib = async (): Promise<number> => {
        let values: number[] = [];
        const ms = await timeAsync(async () => {
          values = await pool.map(workTasks.inc, items);
        });
        check(values, "map");
        return o.items / (ms / 1000);
      };
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
        `all posted up front; best of ${o.itemReps}, median of paired ratios ${
          median(ratios).toFixed(2)
        } (${ratios.map((r) => r.toFixed(2)).join(", ")})`,
    })],
    notes: [],
  };
}

// ---------------------------------------------------------------------------------------------
// c. One submit() round trip against a raw ping-pong

const PING_ROUNDS = 10;
const PING_WARMUP = 1_000;

async function partC(o: Options): Promise<{ figures: Figure[]; notes: string[] }> {
  const pool = new ParallelExecutor({ strategy: "threads", maxWorkers: 1 });
  const bare = await startBareWorker();
  const lib: number[] = [];
  const raw: number[] = [];
  try {
    for (let i = 0; i < PING_WARMUP; i++) {
      if (await barePing(bare, i) !== i + 1) fail("ping warm-up");
      await pool.submit(workTasks.noop, undefined);
    }
    const per = Math.max(1, Math.ceil(o.pings / PING_ROUNDS));
    const pings = async (): Promise<void> => {
      for (let i = 0; i < per; i++) {
        const start = performance.now();
        const reply = await barePing(bare, i);
        raw.push((performance.now() - start) * 1000);
        if (reply !== i + 1) fail("ping");
      }
    };
    const submits = async (): Promise<void> => {
      for (let i = 0; i < per; i++) {
        const start = performance.now();
        await pool.submit(workTasks.noop, undefined);
        lib.push((performance.now() - start) * 1000);
      }
    };
    for (let round = 0; round < PING_ROUNDS; round++) {
      if (round % 2 === 0) {
        await pings();
        await submits();
      } else {
        await submits();
        await pings();
      }
    }
  } finally {
    await pool.close();
    await bare.terminate();
  }
  const cpus = detect().cpus;
  const pinned = cpus === 1
    ? "pinned to 1 CPU"
    : `NOT pinned (${cpus} CPUs visible; run under taskset -c 0)`;
  return {
    figures: [
      figure({
        part: "c",
        name: "submit() round trip, warm pool, 1 worker (median)",
        value: median(lib),
        unit: "µs",
        baseline: { name: "raw ping-pong", value: median(raw), unit: "µs" },
        ratio: median(lib) / median(raw),
        ratioLabel: "× raw",
        target: { on: "ratio", op: "<=", value: 1.1, label: "≤ 1.1×" },
        note: `work.noop, sequential and awaited, ${lib.length} calls of each after ` +
          `${PING_WARMUP} warm-up, interleaved in ${PING_ROUNDS} rounds; ${pinned}`,
      }),
      figure({
        part: "c",
        name: "submit() round trip, warm pool, 1 worker (mean)",
        value: mean(lib),
        unit: "µs",
        baseline: { name: "raw ping-pong", value: mean(raw), unit: "µs" },
        ratio: mean(lib) / mean(raw),
        ratioLabel: "× raw",
      }),
    ],
    notes: [],
  };
}

// ---------------------------------------------------------------------------------------------
// d. Pool start + first task + close

async function partD(o: Options): Promise<{ figures: Figure[]; notes: string[] }> {
  const variants = [
    {
      label: "inline (n) => n + 1",
      run: (ex: ParallelExecutor) => ex.submit((n: number) => n + 1, 1),
    },
    {
      label: "module task, .js (work_js.js)",
      run: (ex: ParallelExecutor) => ex.submit(jsTasks.inc, 1),
    },
    {
      label: "module task, .ts (work.ts)",
      run: (ex: ParallelExecutor) => ex.submit(workTasks.inc, 1),
    },
  ];
  const samples = variants.map((): number[] => []);
  const bareSamples: number[] = [];
  let leaks = 0;
  const limit = o.watchdogMs;
  for (let s = 0; s < o.starts; s++) {
    // Round-robin over the variants, so that noise on the machine hits all of them alike.
    bareSamples.push(
      await timeAsync(async () => {
        const workers = await withWatchdog(startBarePool(o.workers), limit, "bare pool start");
        if (await barePing(workers[0], 1) !== 2) fail("bare start ping");
        await stopBarePool(workers);
      }),
    );
    for (const [k, v] of variants.entries()) {
      samples[k].push(
        await timeAsync(async () => {
          const ex = new ParallelExecutor({ strategy: "threads", maxWorkers: o.workers });
          if (await withWatchdog(v.run(ex), limit, `${v.label}: first task`) !== 2) fail(v.label);
          await withWatchdog(ex.close(), limit, `${v.label}: close()`);
        }),
      );
      if (liveThreadCount() !== 0) leaks++;
    }
  }
  const runtime = detect().name;
  const peer = PEER_START_MS[runtime];
  const bare = {
    name: `bare ${o.workers}-worker start+ping+terminate`,
    value: median(bareSamples),
    unit: "ms",
  };
  log(
    `d: medians ${
      variants.map((v, k) => `${v.label} ${median(samples[k]).toFixed(1)} ms`).join("; ")
    }`,
  );
  return {
    figures: variants.map((v, k) =>
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
    const status = readText("/proc/self/status");
    const m = /^Threads:\s+(\d+)/m.exec(status);
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

async function partE(o: Options): Promise<{ figures: Figure[]; notes: string[] }> {
  const items = [1, 2, 3, 4];
  const expect = (values: number[], what: string): void => {
    if (values.length !== items.length || values.some((v, i) => v !== items[i] + 1)) fail(what);
  };
  let current: ParallelExecutor | undefined;
  const kinds: { label: string; run: () => Promise<void> }[] = [
    {
      label: "map(inline) + close()",
      run: async () => {
        const ex = current = new ParallelExecutor({ strategy: "threads", maxWorkers: o.workers });
        expect(await ex.map((n: number) => n + 1, items), "map(inline)");
        await ex.close();
      },
    },
    {
      label: "map(.js module) + terminate()",
      run: async () => {
        const ex = current = new ParallelExecutor({ strategy: "threads", maxWorkers: o.workers });
        expect(await ex.map(jsTasks.inc, items), "map(.js module)");
        await ex.terminate();
      },
    },
    {
      label: "submit(.ts module) + await using",
      run: async () => {
        await using ex = current = new ParallelExecutor({
          strategy: "threads",
          maxWorkers: o.workers,
        });
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
  return {
    figures: [
      figure({
        part: "e",
        name: `${done} create/run/dispose cycles: hangs (watchdog ${o.watchdogMs / 1000} s)`,
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
        name: `${done} create/run/dispose cycles: leaked threads`,
        value: leaked,
        unit: "count",
        target: { on: "value", op: "==", value: 0, label: "0" },
        note: `liveThreadCount() after each dispose; cycles where it was not 0: ${dirtyCycles}; ` +
          `at the end: ${liveThreadCount()}`,
      }),
      figure({
        part: "e",
        name: `${done} create/run/dispose cycles: one cycle (median)`,
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

// ---------------------------------------------------------------------------------------------

const RUNNERS: Record<Part, (o: Options) => Promise<PartResult>> = {
  a: partA,
  b: partB,
  c: partC,
  d: partD,
  e: partE,
};

async function main(): Promise<void> {
  const o = parseOptions(process.argv.slice(2));
  await runParts(
    o,
    RUNNERS,
    {
      sample: () => sampleCpu(readText),
      describe: describeLoad,
    },
    log,
    () =>
      liveThreadCount() === 0
        ? []
        : [`${liveThreadCount()} worker thread(s) still alive at the end of the run`],
  );
}

await main();
