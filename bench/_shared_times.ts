/**
 * The timed parts of the shared-payload scenario, on a warm 2-thread pool:
 *
 * - s2: the 16 sums of the array on a pool that already holds it (`share`), with `chunkSize`
 *   "auto" and 1, against the same 16 calls of `work.rangeSum` in a plain loop on the main
 *   thread, interleaved; a bare pool of 2 raw workers (`_bare.ts`) is the ceiling. The pool
 *   runs `work.timedRangeSum`, so that the same maps say where their time went (the wait
 *   before the first range, the gaps between a worker's ranges, the idle time), and each map
 *   is also held against the summing time its workers measured, which the JIT's tiers cannot
 *   skew (see bench/README.md);
 * - s3: the same map with the array cloned into every task's message, against `share`.
 *
 * @module
 */

import type { ParallelExecutor, Shared } from "../mod.ts";
import { liveThreadCount } from "../src/runtime/mod.ts";
import { rangeSum } from "./work.ts";
import type { RangeInput } from "./work.ts";
import { startBareSumPool } from "./_bare.ts";
import { describeTimeline, newTimeline, quartiles, record, spread } from "./_shared_timeline.ts";
import type { Timeline } from "./_shared_timeline.ts";
import type { Figure, PartResult } from "./_measure.ts";
import type { IndexRange } from "./_payload.ts";
import {
  benchLog,
  bounded,
  figure,
  formatValue,
  load,
  median,
  noise,
  paired,
  withWatchdog,
  workTasks,
} from "./_measure.ts";
import { checkSums, payload, plainCopy, rangeInputs, rangeSums } from "./_payload.ts";

/** The setting: 2 workers. */
const WORKERS = 2;

const log = benchLog("shared");

type Sizes = Record<
  "payloadMb" | "sumTasks" | "sumWarmup" | "sumReps" | "cloneReps" | "watchdogMs",
  number
>;

function ms(x: number): string {
  return formatValue(x, "ms");
}

// ---------------------------------------------------------------------------------------------
// s2. Speedup over the same sums done serially

/** Part s2: the speedup of the sums on a warm pool over a plain loop. */
export async function sumSpeedup(o: Sizes): Promise<PartResult> {
  log(`s2: filling ${o.payloadMb} MiB`);
  const p = payload(o.payloadMb, o.sumTasks);
  const { data, ranges } = p;
  const n = data.length;
  const expected = rangeSums(p);
  await using pool = bounded({ strategy: "threads", maxWorkers: WORKERS }, o.watchdogMs, "s2");
  const ex = pool.ex;
  using handle = ex.share(data);
  const inputs: RangeInput[] = rangeInputs(ranges, handle);
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
        ex.map(workTasks.timedRangeSum, inputs, { chunkSize }),
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
    const timelines = kinds.map(() => newTimeline(WORKERS));
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

// ---------------------------------------------------------------------------------------------
// s3. Against cloning the array into every task's message

/** The maps of s3, each on the pool that suits its kind of input. */
export function cloneKinds(
  sharePool: ParallelExecutor,
  clonePool: ParallelExecutor,
  ranges: readonly IndexRange[],
  handle: Shared<Float64Array>,
  plain: Float64Array,
): { label: string; run(): Promise<number[]> }[] {
  const shareInputs = rangeInputs(ranges, handle);
  const cloneInputs = rangeInputs(ranges, plain);
  return [
    {
      label: "array cloned per task, chunkSize 1",
      run: () => clonePool.map(workTasks.rangeSum, cloneInputs, { chunkSize: 1 }),
    },
    {
      label: "share, chunkSize 1",
      run: () => sharePool.map(workTasks.rangeSum, shareInputs, { chunkSize: 1 }),
    },
    {
      label: 'array cloned, chunkSize "auto"',
      run: () => clonePool.map(workTasks.rangeSum, cloneInputs),
    },
    {
      label: 'share, chunkSize "auto"',
      run: () => sharePool.map(workTasks.rangeSum, shareInputs),
    },
  ];
}

/** Part s3: the map with the array cloned into every task, against `share`. */
export async function againstClones(o: Sizes): Promise<PartResult> {
  log(`s3: filling ${o.payloadMb} MiB (and a plain copy)`);
  const p = payload(o.payloadMb, o.sumTasks);
  const { data, ranges } = p;
  const expected = rangeSums(p);
  const plain = plainCopy(data);
  // One pool each, so that no worker's JIT sees both kinds of array.
  const threads = { strategy: "threads", maxWorkers: WORKERS } as const;
  await using sharePool = bounded(threads, o.watchdogMs, "s3");
  await using clonePool = bounded(threads, o.watchdogMs, "s3");
  using handle = sharePool.ex.share(data);
  const kinds = cloneKinds(sharePool.ex, clonePool.ex, ranges, handle, plain);
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
