/**
 * Shared payloads (`ex.share`, issue 4): one 64 MiB `Float64Array` summed by 16 tasks on 2
 * workers, each task summing a disjoint 1/16 of it, with the array either shared once or
 * cloned into every task's message. Each figure against a baseline measured in the same
 * process:
 *
 * - s1. bytes posted per task: `node:v8`'s `serialize(input).byteLength` (the structured-clone
 *   serializer behind `postMessage` and the IPC channel) of a task's input holding the
 *   handle, against one holding the array itself; at two payload sizes;
 * - s2. speedup of the 16 sums on a warm 2-thread pool with `share`, over the same 16 calls
 *   of `rangeSum` in a plain loop on the main thread, interleaved; with `chunkSize` "auto"
 *   and 1, and a bare pool of 2 raw workers as the ceiling; and each against the summing
 *   time its workers measured (`timedRangeSum`), which the JIT's tiers cannot skew, with
 *   where the maps' time went;
 * - s3. the same map with the array cloned into every task's message (`chunkSize: 1`, so
 *   that each task is its own message), against `share`;
 * - s4. `strategy: "processes"`: bytes the parent wrote during the map (`wchar` of
 *   `/proc/self/io`), share against per-task clone, next to workers × size and tasks × size.
 *   On Bun, whose IPC sends with `sendto(2)` (not counted in `wchar`), the bench runs part
 *   s4 again under `strace` and counts the bytes its threads wrote and sent.
 *
 * ```sh
 * node_modules/.bin/deno run -A bench/shared.ts [--quick] [--only s1,s2] [--json]
 * node_modules/.bin/bun bench/shared.ts
 * node_modules/.bin/node bench/shared.ts
 * ```
 *
 * Sizes come from flags, else from `FANOUT_BENCH_<FLAG>` environment variables (e.g.
 * `FANOUT_BENCH_SUM_REPS=20`), else from the defaults (or the `--quick` ones). Their names
 * differ from the other scripts', so that `compare.mjs` can tell whose they are.
 * `FANOUT_SHARED_STRACE=1` makes s4 count with strace on Deno and Node too (a cross-check
 * of `wchar`); `=0` stops it on Bun.
 *
 * @module
 */

import process from "node:process";
import { fileURLToPath } from "node:url";
import { serialize } from "node:v8";
import { benchLog, fail, parseBenchOptions, readText, runParts } from "./_cli.ts";
import type { BenchOptions, PartResult, SizeSpec } from "./_cli.ts";
import { ParallelExecutor, sharedArray, tasks } from "../mod.ts";
import type { ExecutorOptions } from "../mod.ts";
import { detect, liveProcessPids, liveThreadCount } from "../src/runtime/mod.ts";
import { fillValue, rangeSum, sumRange } from "./_shared_work.ts";
import type { RangeInput } from "./_shared_work.ts";
import { startBareSumPool } from "./_shared_bare.ts";
import type { IndexRange } from "./_shared_bare.ts";
import { findStrace, TRACE_OUT_ENV, traceWindows, WindowMarks } from "./_shared_strace.ts";
import type { TracedWindow } from "./_shared_strace.ts";
import type { CpuSample } from "./_stats.ts";
import { describeLoad, median, sampleCpuWithChildren, withWatchdog } from "./_stats.ts";
import type { Figure } from "./_table.js";
import { meets } from "./_table.js";

const sharedTasks = tasks<typeof import("./_shared_work.ts")>(
  new URL("./_shared_work.ts", import.meta.url),
);

const PARTS = ["s1", "s2", "s3", "s4"] as const;
type Part = typeof PARTS[number];

/** The issue's setting: 2 workers. */
const WORKERS = 2;
const MIB = 1 << 20;

interface Sizes {
  payloadMb: number;
  smallMb: number;
  sumTasks: number;
  sumWarmup: number;
  sumReps: number;
  cloneReps: number;
  procMb: number;
  procReps: number;
  watchdogMs: number;
}

const SIZES: Record<keyof Sizes, SizeSpec> = {
  payloadMb: { flag: "payload-mb", full: 64, quick: 16, help: "s1-s3: the array, in MiB" },
  smallMb: { flag: "small-mb", full: 1, quick: 1, help: "s1: the second, smaller array, MiB" },
  sumTasks: { flag: "sum-tasks", full: 16, quick: 16, help: "tasks (disjoint ranges) per map" },
  sumWarmup: {
    flag: "sum-warmup",
    full: 20,
    quick: 5,
    help: "s2: warm-up repetitions of each kind",
  },
  sumReps: { flag: "sum-reps", full: 40, quick: 10, help: "s2: interleaved repetitions" },
  cloneReps: { flag: "clone-reps", full: 5, quick: 2, help: "s3: interleaved repetitions" },
  procMb: { flag: "proc-mb", full: 64, quick: 16, help: "s4: the array on processes, MiB" },
  procReps: { flag: "proc-reps", full: 2, quick: 1, help: "s4: maps of each kind" },
  watchdogMs: {
    flag: "watchdog-ms",
    full: 120_000,
    quick: 120_000,
    help: "limit for one map or close()",
  },
};

type Options = BenchOptions<keyof Sizes, Part>;

function parseOptions(argv: string[]): Options {
  return parseBenchOptions(argv, "shared.ts", PARTS, SIZES);
}

const log = benchLog("shared");

/** A figure with its target checked. */
function figure(f: Figure): Figure {
  return f.target === undefined ? f : { ...f, met: meets(f.target, f.value, f.ratio) };
}

/** "median of paired ratios 1.23 (1.20, 1.25, …)". */
function paired(ratios: number[]): string {
  return `median of paired ratios ${median(ratios).toFixed(2)} (${
    ratios.map((r) => r.toFixed(2)).join(", ")
  })`;
}

/**
 * A CPU reading in which "this process" includes its child processes (reaped, and the live
 * pool processes), so that a worker process's CPU is not counted as another's load.
 */
function load(): CpuSample | undefined {
  return sampleCpuWithChildren(readText, liveProcessPids());
}

function noise(from: CpuSample | undefined, to: CpuSample | undefined): string {
  return describeLoad(from, to).replace("this process", "this process and its children");
}

/**
 * An executor that `await using` disposes within a limit: `close()`, or `terminate()` if
 * `close()` does not finish in time (a hung call would keep it waiting), so that a bench
 * reports a hang instead of becoming one.
 */
function bounded(options: ExecutorOptions, limitMs: number): {
  ex: ParallelExecutor;
  [Symbol.asyncDispose](): Promise<void>;
} {
  const ex = new ParallelExecutor(options);
  return {
    ex,
    async [Symbol.asyncDispose]() {
      await withWatchdog(ex.close(), limitMs, "close()").catch(async (error) => {
        log(`${error}; terminating`);
        await withWatchdog(ex.terminate(), limitMs, "terminate()").catch(() => {});
      });
    },
  };
}

/** Elements of a Float64Array of `mb` MiB. */
function elements(mb: number): number {
  return (mb * MIB) / Float64Array.BYTES_PER_ELEMENT;
}

/** `count` disjoint ranges covering `[0, n)`. */
function split(n: number, count: number): IndexRange[] {
  return Array.from({ length: count }, (_, k) => ({
    start: Math.floor((k * n) / count),
    end: Math.floor(((k + 1) * n) / count),
  }));
}

/** A Float64Array over a SharedArrayBuffer, filled with `fillValue`. */
function filledShared(n: number): Float64Array {
  const data = sharedArray(Float64Array, n);
  for (let i = 0; i < n; i++) data[i] = fillValue(i);
  return data;
}

/** A plain (not shared) copy. */
function plainCopy(data: Float64Array): Float64Array {
  const plain = new Float64Array(data.length);
  plain.set(data);
  return plain;
}

function checkSums(values: readonly number[], expected: readonly number[], what: string): void {
  if (values.length !== expected.length) fail(`${what}: ${values.length} results`);
  for (let k = 0; k < expected.length; k++) {
    if (values[k] !== expected[k]) fail(`${what}: range ${k}: ${values[k]} ≠ ${expected[k]}`);
  }
}

function ms(x: number): string {
  return `${x >= 100 ? x.toFixed(0) : x.toFixed(1)} ms`;
}

function mib(bytes: number): number {
  return Math.round((bytes / MIB) * 100) / 100;
}

function bytesText(bytes: number): string {
  return `${bytes.toLocaleString("en-US")} B`;
}

// ---------------------------------------------------------------------------------------------
// s1. Bytes posted per task

/** Bun's own structured-clone serializer, to show that `node:v8`'s is the same format there. */
async function bunSerialize(): Promise<((value: unknown) => Uint8Array) | undefined> {
  if (detect().name !== "bun") return undefined;
  const specifier = "bun:jsc"; // not a literal import: Deno and Node must not resolve it
  const jsc = await import(specifier) as { serialize(value: unknown): Uint8Array };
  return (value) => jsc.serialize(value);
}

async function partS1(o: Options): Promise<PartResult> {
  const figures: Figure[] = [];
  const notes: string[] = [];
  const jsc = await bunSerialize();
  await using pool = bounded({ strategy: "threads", maxWorkers: WORKERS }, o.watchdogMs);
  const ex = pool.ex;
  const sizes = [...new Set([o.smallMb, o.payloadMb])].sort((a, b) => a - b);
  let handleClone = "";
  for (const mb of sizes) {
    const n = elements(mb);
    const data = filledShared(n);
    using handle = ex.share(data);
    if (handle.value !== data) fail("share() of a SharedArrayBuffer-backed array copied it");
    const ranges = split(n, o.sumTasks);
    const shareInputs = ranges.map((r) => ({ data: handle, start: r.start, end: r.end }));
    // The handle's inputs really run: the bytes below are those of inputs that work.
    const expected = ranges.map((r) => sumRange(data, r.start, r.end));
    checkSums(
      await withWatchdog(ex.map(sharedTasks.rangeSum, shareInputs), o.watchdogMs, "s1: map"),
      expected,
      `s1: share map, ${mb} MiB`,
    );
    const shareBytes = shareInputs.map((input) => serialize(input).byteLength);
    handleClone = JSON.stringify(structuredClone(handle));
    const plain = plainCopy(data);
    // One at a time: 16 serialized copies of 64 MiB need not be alive at once.
    const cloneBytes = ranges.map((r) => serialize({ data: plain, ...r }).byteLength);
    const shareMax = Math.max(...shareBytes);
    const cloneMin = Math.min(...cloneBytes);
    const cloneMax = Math.max(...cloneBytes);
    let jscNote = "";
    if (jsc !== undefined) {
      const a = Math.max(...shareInputs.map((input) => jsc(input).byteLength));
      const b = Math.max(...ranges.map((r) => jsc({ data: plain, ...r }).byteLength));
      jscNote = `; bun:jsc serialize gives ${a} B and ${bytesText(b)}` +
        (a === shareMax && b === cloneMax ? " (the same)" : " (DIFFERENT)");
    }
    figures.push(figure({
      part: "s1",
      name: `bytes posted per task, share, ${mb} MiB array`,
      value: shareMax,
      unit: "B",
      baseline: { name: "array cloned per task", value: cloneMax, unit: "B" },
      ratio: cloneMin / shareMax,
      ratioLabel: "fewer",
      target: { on: "value", op: "<=", value: 1024, label: "≤ 1 KB" },
      note: `serialize(input).byteLength of each of the ${o.sumTasks} tasks' inputs ` +
        `{ data, start, end } (largest shown; share: ${Math.min(...shareBytes)}–${shareMax} B, ` +
        `clone: ${bytesText(cloneMin)}–${bytesText(cloneMax)})${jscNote}`,
    }));
  }
  const serializer = detect().name === "bun"
    ? "node:v8 serialize on Bun writes JSC's structured-clone format, the one Bun's " +
      "postMessage and IPC use (bun:jsc serialize gives the same bytes)"
    : "node:v8 serialize is V8's ValueSerializer, which postMessage and the IPC channel use " +
      "(postMessage shares a SharedArrayBuffer where serialize copies it; no SAB is in a " +
      "share input)";
  notes.push(
    `s1: ${serializer}; structuredClone(handle) = ${handleClone}, whatever the array's size`,
  );
  return { figures, notes };
}

// ---------------------------------------------------------------------------------------------
// s2. Speedup over the same sums done serially

async function partS2(o: Options): Promise<PartResult> {
  const n = elements(o.payloadMb);
  log(`s2: filling ${o.payloadMb} MiB`);
  const data = filledShared(n);
  const ranges = split(n, o.sumTasks);
  const expected = ranges.map((r) => sumRange(data, r.start, r.end));
  await using pool = bounded({ strategy: "threads", maxWorkers: WORKERS }, o.watchdogMs);
  const ex = pool.ex;
  using handle = ex.share(data);
  const inputs: RangeInput[] = ranges.map((r) => ({ data: handle, start: r.start, end: r.end }));
  const bare = await startBareSumPool(WORKERS, data);
  try {
    const now = (): number => performance.timeOrigin + performance.now();
    /** One timed run: wall ms, and what the workers said about their own summing. */
    type Run = { ms: number; timeline?: (tl: Timeline) => void; busy?: number };
    // The pool runs `timedRangeSum`: `rangeSum` plus two clock reads, so that the same maps
    // also say where their time went.
    const poolRun = (chunkSize: number | "auto", label: string) => async (): Promise<Run> => {
      const t0 = now();
      const res = await withWatchdog(
        ex.map(sharedTasks.timedRangeSum, inputs, { chunkSize }),
        o.watchdogMs,
        `s2: ${label}`,
      );
      const t1 = now();
      checkSums(res.map((r) => r[0]), expected, `s2: ${label}`);
      return { ms: t1 - t0, timeline: (tl) => record(tl, t0, t1, res) };
    };
    const kinds: { label: string; run: () => Promise<Run> }[] = [
      {
        label: "serial loop",
        run: () => {
          const t0 = performance.now();
          const values = inputs.map((input) => rangeSum(input));
          const t = performance.now() - t0;
          checkSums(values, expected, "s2: serial loop");
          return Promise.resolve({ ms: t });
        },
      },
      { label: 'share, chunkSize "auto"', run: poolRun("auto", "auto map") },
      { label: "share, chunkSize 1", run: poolRun(1, "chunkSize 1 map") },
      {
        label: `bare pool of ${WORKERS} raw workers`,
        run: async () => {
          const t0 = performance.now();
          const values = await withWatchdog(bare.sum(ranges), o.watchdogMs, "s2: bare pool");
          const t = performance.now() - t0;
          checkSums(values, expected, "s2: bare pool");
          return { ms: t, busy: bare.lastBusyMs };
        },
      },
    ];
    const times = kinds.map((): number[] => []);
    const busy = kinds.map((): number[] => []);
    const timelines = kinds.map(() => newTimeline());
    log(`s2: warm-up (${o.sumWarmup} of each; the pool starts, each thread gets the array)`);
    for (let i = 0; i < o.sumWarmup; i++) for (const k of kinds) await k.run();
    if (liveThreadCount() < WORKERS) {
      log(`s2: only ${liveThreadCount()} threads alive after the warm-up`);
    }
    for (let rep = 0; rep < o.sumReps; rep++) {
      const before = load();
      // Rotate the order, so that noise and each other's garbage hit every kind alike.
      for (let j = 0; j < kinds.length; j++) {
        const k = (j + rep) % kinds.length;
        const r = await kinds[k].run();
        times[k].push(r.ms);
        r.timeline?.(timelines[k]);
        if (r.busy !== undefined) busy[k].push(r.busy);
      }
      if (rep % 10 === 9 || rep === o.sumReps - 1) {
        log(
          `s2: rep ${rep + 1}/${o.sumReps}: ` +
            kinds.map((k, i) => `${k.label} ${ms(times[i][rep])}`).join(", ") +
            `; ${noise(before, load())}`,
        );
      }
    }
    for (const [k, tl] of timelines.entries()) busy[k].push(...tl.works);
    const serial = times[0];
    const base = { name: "serial loop", value: median(serial), unit: "ms" };
    const gbs = (t: number): string => `${((n * 8) / (t / 1000) / 1e9).toFixed(1)} GB/s`;
    const what = (i: number): string =>
      `sum ${o.payloadMb} MiB in ${o.sumTasks} tasks, ${WORKERS} threads, ${kinds[i].label}`;
    const fig = (i: number, extra: Partial<Figure>, note: string): Figure => {
      const t = times[i];
      return figure({
        part: "s2",
        name: what(i),
        value: median(t),
        unit: "ms",
        baseline: base,
        ratio: base.value / median(t),
        ratioLabel: "speedup",
        note: `${note}; median of ${o.sumReps} interleaved reps; ${
          quartiles(serial.map((s, r) => s / t[r]))
        }; best against best ${(Math.min(...serial) / Math.min(...t)).toFixed(2)}×; ${spread(t)}`,
        ...extra,
      });
    };
    /**
     * The speedup against the code the workers really ran: the ranges' summing time measured
     * inside the workers, added up, over the map's wall time, in the same maps. Immune to the
     * JIT running the serial loop and the workers' loop in different tiers; it still counts
     * memory contention against the pool (the ranges are timed while both workers run).
     */
    const sameCode = (i: number): Figure => {
      const t = times[i];
      const w = busy[i];
      return figure({
        part: "s2",
        name: `${what(i)}, vs its workers' summing time`,
        value: median(t),
        unit: "ms",
        baseline: { name: "Σ range times in the workers", value: median(w), unit: "ms" },
        ratio: median(w.map((x, r) => x / t[r])),
        ratioLabel: "speedup (same code)",
      });
    };
    return {
      figures: [
        fig(
          1,
          { target: { on: "ratio", op: ">=", value: 1.9, label: "≥ 1.9×" } },
          "warm pool that already holds the array; inputs { data: handle, start, end }; task " +
            "timedRangeSum (rangeSum and two clock reads)",
        ),
        fig(2, {}, "the same, one task per message"),
        fig(
          3,
          {},
          "the ceiling: the same SharedArrayBuffer, each worker gets all its ranges in one " +
            "message and answers once (no pool machinery)",
        ),
        sameCode(1),
        sameCode(2),
        sameCode(3),
      ],
      notes: [
        `s2: serial loop = the ${o.sumTasks} calls of rangeSum on the main thread: median ${
          ms(median(serial))
        } (best ${ms(Math.min(...serial))}, ${gbs(median(serial))}), ${
          (median(serial) / o.sumTasks).toFixed(2)
        } ms per range; ${spread(serial)}`,
        `s2: "vs its workers' summing time": the same maps' time against the summing time ` +
        `the workers measured for their ranges, added up (median over the reps of the ` +
        `ratio): the speedup over a serial loop that ran the workers' code at their speed`,
        describeTimeline(timelines[1], kinds[1].label),
        describeTimeline(timelines[2], kinds[2].label),
      ],
    };
  } finally {
    await bare.stop();
  }
}

/**
 * How a series of times spreads, and how many are well above the best: the engines run the
 * same loop at different speeds from time to time (see bench/README.md).
 */
function spread(times: number[], what = "reps"): string {
  const sorted = [...times].sort((a, b) => a - b);
  const at = (q: number): string =>
    sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]
      .toFixed(2);
  const slow = times.filter((t) => t > 1.25 * sorted[0]).length;
  return `spread min ${at(0)} / p25 ${at(0.25)} / median ${at(0.5)} / p75 ${at(0.75)} / max ${
    sorted[sorted.length - 1].toFixed(2)
  } ms, ${slow} of ${times.length} ${what} over 1.25× the best`;
}

/** "paired ratios: median 1.23 (p25 1.10, p75 1.40)", for long series. */
function quartiles(ratios: number[]): string {
  const sorted = [...ratios].sort((a, b) => a - b);
  const at = (q: number): string => sorted[Math.floor(q * (sorted.length - 1))].toFixed(2);
  return `paired (same-rep) ratios: median ${median(ratios).toFixed(2)} (p25 ${at(0.25)}, p75 ${
    at(0.75)
  })`;
}

/** Where a pool's maps spent their time, from `timedRangeSum`'s clock readings. */
interface Timeline {
  leads: number[];
  tails: number[];
  firsts: number[];
  ranges: number[];
  idleMost: number[];
  idleLeast: number[];
  gaps: number[];
  waits: number[];
  /** Each map's summing time in the workers, added up over its ranges. */
  works: number[];
}

function newTimeline(): Timeline {
  return {
    leads: [],
    tails: [],
    firsts: [],
    ranges: [],
    idleMost: [],
    idleLeast: [],
    gaps: [],
    waits: [],
    works: [],
  };
}

/**
 * Adds one map to a timeline: `res` holds, per range, `[sum, start, end, worker]` with the
 * times in ms since the epoch; `t0` and `t1` are the map's call and result, on the same clock.
 */
function record(
  tl: Timeline,
  t0: number,
  t1: number,
  res: readonly [number, number, number, number][],
): void {
  tl.leads.push(Math.min(...res.map((r) => r[1])) - t0);
  tl.tails.push(t1 - Math.max(...res.map((r) => r[2])));
  const byWorker = new Map<number, [number, number][]>();
  for (const [, start, end, worker] of res) {
    byWorker.set(worker, [...(byWorker.get(worker) ?? []), [start, end]]);
  }
  const busy: number[] = [];
  let waits = 0;
  for (const spans of byWorker.values()) {
    spans.sort((a, b) => a[0] - b[0]);
    // A worker's first range of the map runs on cold caches (and a CPU back from idle).
    tl.firsts.push(spans[0][1] - spans[0][0]);
    let sum = spans[0][1] - spans[0][0];
    for (let k = 1; k < spans.length; k++) {
      tl.ranges.push(spans[k][1] - spans[k][0]);
      sum += spans[k][1] - spans[k][0];
      // ~0 inside a chunk; the next chunk's round trip between two chunks.
      const gap = spans[k][0] - spans[k - 1][1];
      if (gap > 0.01) {
        tl.gaps.push(gap);
        waits++;
      }
    }
    busy.push(sum);
  }
  tl.waits.push(waits / WORKERS);
  tl.works.push(busy.reduce((a, b) => a + b, 0));
  const idle = busy.map((b) => t1 - t0 - b);
  while (idle.length < WORKERS) idle.push(t1 - t0);
  tl.idleMost.push(Math.max(...idle));
  tl.idleLeast.push(Math.min(...idle));
}

function describeTimeline(tl: Timeline, label: string): string {
  const f = (x: number[]): string => x.length === 0 ? "-" : `${median(x).toFixed(2)} ms`;
  return `s2: where the maps' time goes, ${label} (medians over the reps): the first range ` +
    `starts ${f(tl.leads)} after map() and the last result arrives ${f(tl.tails)} after the ` +
    `last range ends; in a worker, its first range of a map takes ${f(tl.firsts)}, the ` +
    `others ${f(tl.ranges)} (all ranges: ${spread([...tl.firsts, ...tl.ranges], "ranges")}); a ` +
    `worker waits ${median(tl.waits)} times per map between ranges (gaps over 10 µs: the ` +
    `next chunk's round trip), ${f(tl.gaps)} each; the more idle worker sits idle ` +
    `${f(tl.idleMost)} of the map, the other ${f(tl.idleLeast)}`;
}

// ---------------------------------------------------------------------------------------------
// s3. Against cloning the array into every task's message

async function partS3(o: Options): Promise<PartResult> {
  const n = elements(o.payloadMb);
  log(`s3: filling ${o.payloadMb} MiB (and a plain copy)`);
  const data = filledShared(n);
  const plain = plainCopy(data);
  const ranges = split(n, o.sumTasks);
  const expected = ranges.map((r) => sumRange(data, r.start, r.end));
  // One pool each, so that no worker's JIT sees both kinds of array.
  await using sharePool = bounded({ strategy: "threads", maxWorkers: WORKERS }, o.watchdogMs);
  await using clonePool = bounded({ strategy: "threads", maxWorkers: WORKERS }, o.watchdogMs);
  using handle = sharePool.ex.share(data);
  const shareInputs = ranges.map((r) => ({ data: handle, start: r.start, end: r.end }));
  const cloneInputs = ranges.map((r) => ({ data: plain, start: r.start, end: r.end }));
  const kinds = [
    {
      label: "array cloned per task, chunkSize 1",
      run: () => clonePool.ex.map(sharedTasks.rangeSum, cloneInputs, { chunkSize: 1 }),
    },
    {
      label: "share, chunkSize 1",
      run: () => sharePool.ex.map(sharedTasks.rangeSum, shareInputs, { chunkSize: 1 }),
    },
    {
      label: 'array cloned, chunkSize "auto"',
      run: () => clonePool.ex.map(sharedTasks.rangeSum, cloneInputs),
    },
    {
      label: 'share, chunkSize "auto"',
      run: () => sharePool.ex.map(sharedTasks.rangeSum, shareInputs),
    },
  ];
  const times = kinds.map((): number[] => []);
  const once = async (k: number): Promise<number> => {
    const t0 = performance.now();
    const values = await withWatchdog(kinds[k].run(), o.watchdogMs, `s3: ${kinds[k].label}`);
    const t = performance.now() - t0;
    checkSums(values, expected, `s3: ${kinds[k].label}`);
    return t;
  };
  log("s3: warm-up (one map of each clone kind, three of each share kind)");
  for (const k of [0, 2]) await once(k);
  for (let i = 0; i < 3; i++) for (const k of [1, 3]) await once(k);
  for (let rep = 0; rep < o.cloneReps; rep++) {
    const before = load();
    const row: number[] = [];
    for (let j = 0; j < kinds.length; j++) {
      const k = (j + rep) % kinds.length;
      row[k] = await once(k);
      times[k].push(row[k]);
    }
    log(
      `s3: rep ${rep + 1}/${o.cloneReps}: ` +
        kinds.map((k, i) => `${k.label} ${ms(row[i])}`).join(", ") +
        `; ${noise(before, load())}`,
    );
  }
  const fig = (c: number, s: number, extra: Partial<Figure>, note: string): Figure => {
    const value = median(times[c]);
    const base = median(times[s]);
    return figure({
      part: "s3",
      name: `sum ${o.payloadMb} MiB in ${o.sumTasks} tasks, ${WORKERS} threads, ${kinds[c].label}`,
      value,
      unit: "ms",
      baseline: { name: kinds[s].label, value: base, unit: "ms" },
      ratio: value / base,
      ratioLabel: "× share",
      note: `${note}; median of ${o.cloneReps} interleaved reps; ${
        paired(times[c].map((t, r) => t / times[s][r]))
      }`,
      ...extra,
    });
  };
  return {
    figures: [
      fig(
        0,
        1,
        { target: { on: "ratio", op: ">=", value: 10, label: "≥ 10×" } },
        `input { data: plain Float64Array, start, end }: every task's message clones all ` +
          `${o.payloadMb} MiB`,
      ),
      fig(
        2,
        3,
        {},
        `auto chunks hold several tasks, and structured clone copies an array once per ` +
          `message however many items refer to it, so this clones less than once per task`,
      ),
    ],
    notes: [],
  };
}

// ---------------------------------------------------------------------------------------------
// s4. Process strategy: bytes the parent writes

/** `wchar` of `/proc/self/io`: bytes this process passed to write(2)-like syscalls. */
function wchar(): number | undefined {
  try {
    const m = /^wchar:\s*(\d+)/m.exec(readText("/proc/self/io"));
    return m === null ? undefined : Number(m[1]);
  } catch {
    return undefined;
  }
}

interface ProcMap {
  kind: "share" | "clone";
  rep: number;
  /** Label of the traced window. */
  window: string;
  wchar: number | undefined;
  ms: number;
}

/** The maps of part s4, each inside a window; marked for strace when `marks` is given. */
async function measureProcesses(o: Options, marks?: WindowMarks): Promise<ProcMap[]> {
  const n = elements(o.procMb);
  log(`s4: filling ${o.procMb} MiB (and a plain copy)`);
  const data = filledShared(n);
  const plain = plainCopy(data);
  const ranges = split(n, o.sumTasks);
  const expected = ranges.map((r) => sumRange(data, r.start, r.end));
  const maps: ProcMap[] = [];
  await using pool = bounded({ strategy: "processes", maxWorkers: WORKERS }, o.watchdogMs);
  const ex = pool.ex;
  // Start both processes and load the task module in each, sending nothing large.
  for (let i = 0; i < 2; i++) {
    await withWatchdog(
      ex.map(sharedTasks.noop, new Array(WORKERS * 2).fill(undefined), { chunkSize: 1 }),
      o.watchdogMs,
      "s4: warm-up",
    );
  }
  if (liveProcessPids().length !== WORKERS) {
    fail(`s4: ${liveProcessPids().length} worker processes after the warm-up, not ${WORKERS}`);
  }
  for (let rep = 0; rep < o.procReps; rep++) {
    const order = rep % 2 === 0 ? ["share", "clone"] as const : ["clone", "share"] as const;
    for (const kind of order) {
      const window = `${kind}-${rep + 1}`;
      marks?.begin(window);
      const w0 = wchar();
      const t0 = performance.now();
      // share() is inside the window: whatever it writes counts.
      const handle = kind === "share" ? ex.share(data) : undefined;
      const inputs = ranges.map((r) => ({ data: handle ?? plain, start: r.start, end: r.end }));
      const values = await withWatchdog(
        ex.map(sharedTasks.rangeSum, inputs, { chunkSize: 1 }),
        o.watchdogMs,
        `s4: ${kind} map`,
      );
      const t = performance.now() - t0;
      const w1 = wchar();
      marks?.end(window);
      handle?.release();
      checkSums(values, expected, `s4: ${kind} map`);
      const delta = w0 === undefined || w1 === undefined ? undefined : w1 - w0;
      maps.push({ kind, rep, window, wchar: delta, ms: t });
      log(
        `s4: ${window}: ${ms(t)}, wchar +${delta === undefined ? "?" : bytesText(delta)}`,
      );
    }
  }
  return maps;
}

/** The command that runs this script again for part s4 only, with the same sizes. */
function selfCommand(o: Options): string[] {
  const { name, execPath } = detect();
  const script = fileURLToPath(import.meta.url);
  return [
    execPath,
    ...(name === "deno" ? ["run", "-A"] : []),
    script,
    "--only",
    "s4",
    "--json",
    "--proc-mb",
    String(o.procMb),
    "--proc-reps",
    String(o.procReps),
    "--sum-tasks",
    String(o.sumTasks),
    "--watchdog-ms",
    String(o.watchdogMs),
  ];
}

/** Whether to count s4's bytes with strace: on Bun (wchar misses sendto) unless told not to. */
function useStrace(): boolean {
  const env = detect().env("FANOUT_SHARED_STRACE");
  if (env === "0" || env === "false") return false;
  return env === "1" || env === "true" || detect().name === "bun";
}

async function partS4(o: Options): Promise<PartResult> {
  const traceOut = detect().env(TRACE_OUT_ENV);
  if (traceOut !== undefined) {
    // The run under strace: mark the windows and save them; its figures are not read.
    const marks = new WindowMarks(traceOut);
    await measureProcesses(o, marks);
    marks.save();
    return { figures: [], notes: [] };
  }
  const maps = await measureProcesses(o, undefined);
  const notes: string[] = [];
  let traced: TracedWindow[] | undefined;
  let method = "wchar of /proc/self/io (bytes passed to write(2), writev(2) and the like)";
  if (useStrace()) {
    const strace = findStrace();
    if (strace === undefined) {
      notes.push("s4: strace is not installed, so there is no syscall count");
    } else {
      log("s4: again under strace -f, counting the bytes this process writes and sends");
      const t0 = performance.now();
      traced = await traceWindows(strace, selfCommand(o), 4 * o.watchdogMs);
      notes.push(
        `s4: the strace run took ${((performance.now() - t0) / 1000).toFixed(1)} s; ` +
          traced.map((w) =>
            `${w.label}: ${
              Object.entries(w.calls).map(([name, c]) => `${c.count} ${name} ${bytesText(c.bytes)}`)
                .join(", ")
            }`
          ).join("; "),
      );
      method = "strace -f: the sum of what the parent's threads' write, writev, sendto, " +
        "sendmsg (and the like) returned, in a second run of s4 under strace; wchar (in this " +
        "run) is in the notes";
    }
  }
  const size = o.procMb * MIB;
  const bytesOf = (m: ProcMap): number | undefined =>
    traced === undefined ? m.wchar : traced.find((w) => w.label === m.window)?.bytes;
  const of = (kind: "share" | "clone"): { bytes: number[]; times: number[]; wchar: string } => {
    const mine = maps.filter((m) => m.kind === kind);
    return {
      bytes: mine.map(bytesOf).filter((b): b is number => b !== undefined),
      times: mine.map((m) => m.ms),
      wchar: mine.map((m) => m.wchar === undefined ? "?" : bytesText(m.wchar)).join(", "),
    };
  };
  const share = of("share");
  const clone = of("clone");
  notes.push(
    `s4: wchar deltas: share ${share.wchar}; clone ${clone.wchar}` +
      (detect().name === "bun"
        ? " (Bun's IPC sends with sendto(2), which wchar does not count)"
        : ""),
  );
  const value = (b: number[]): number => b.length === 0 ? NaN : median(b);
  const shareBytes = value(share.bytes);
  const cloneBytes = value(clone.bytes);
  const what = `${o.procMb} MiB × ${o.sumTasks} tasks, ${WORKERS} processes`;
  const timing = `maps took ${share.times.map(ms).join(", ")} (share) and ${
    clone.times.map(ms).join(", ")
  } (clone), warm pool, chunkSize 1`;
  const exact = (b: number[]): string => b.map(bytesText).join(", ");
  return {
    figures: [
      figure({
        part: "s4",
        name: `bytes written during the map, share, ${what}`,
        value: mib(shareBytes),
        unit: "MiB",
        baseline: { name: "workers × size", value: mib(WORKERS * size), unit: "MiB" },
        ratio: shareBytes / (WORKERS * size),
        ratioLabel: "× workers×size",
        target: { on: "ratio", op: "<=", value: 1.05, label: "≤ 1.05×" },
        note: `${method}; share() + map, after warming both processes with a noop map; ` +
          `${exact(share.bytes)} (${o.procReps} map(s)); ${timing}`,
      }),
      figure({
        part: "s4",
        name: `bytes written during the map, array cloned per task, ${what}`,
        value: mib(cloneBytes),
        unit: "MiB",
        baseline: { name: "tasks × size", value: mib(o.sumTasks * size), unit: "MiB" },
        ratio: cloneBytes / (o.sumTasks * size),
        ratioLabel: "× tasks×size",
        note: `chunkSize 1, so every task's message holds its own copy; ${exact(clone.bytes)}`,
      }),
      figure({
        part: "s4",
        name: `bytes written, share vs clone per task, ${what}`,
        value: mib(shareBytes),
        unit: "MiB",
        baseline: { name: "array cloned per task", value: mib(cloneBytes), unit: "MiB" },
        ratio: cloneBytes / shareBytes,
        ratioLabel: "fewer",
        note: `ideal: tasks ÷ workers = ${(o.sumTasks / WORKERS).toFixed(2)}×`,
      }),
    ],
    notes,
  };
}

// ---------------------------------------------------------------------------------------------

const RUNNERS: Record<Part, (o: Options) => Promise<PartResult>> = {
  s1: partS1,
  s2: partS2,
  s3: partS3,
  s4: partS4,
};

async function main(): Promise<void> {
  const o = parseOptions(process.argv.slice(2));
  await runParts(o, RUNNERS, { sample: load, describe: noise }, log, () => {
    const pids = liveProcessPids();
    return [
      ...(pids.length === 0 ? [] : [`worker processes still alive at the end: ${pids}`]),
      ...(liveThreadCount() === 0
        ? []
        : [`${liveThreadCount()} worker thread(s) still alive at the end of the run`]),
    ];
  });
}

await main();
