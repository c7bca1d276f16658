/**
 * Does `strategy: "auto"` pick well? The ablation of issue 5: six workloads, each run with
 * every strategy on 2 workers:
 *
 * - serial: `{ strategy: "serial" }`;
 * - threads, processes: `{ strategy, maxWorkers: 2 }` (auto chunking);
 * - auto: `{ strategy: "auto", maxWorkers: 2 }` (the default strategy);
 * - naive: the rule "always threads with maxWorkers, fixed chunk of 1":
 *   `{ strategy: "threads", maxWorkers: 2, chunkSize: 1 }`.
 *
 * Workloads (`_auto_workloads.ts`, tasks of `work.ts`): tiny (`n + 1`), small (~20 µs each),
 * cpu (~20 ms each),
 * skewed (~2 ms each, a few 50× slower at fixed positions), payload (a large `Float64Array`
 * passed with `ex.share()` and summed in ranges) and io (an async task awaiting a ~5 ms timer).
 *
 * Two timings per strategy and workload (`_auto_measure.ts`), both medians, strategies
 * interleaved map by map within each repetition (in an order shuffled per rep), so that the
 * machine's noise hits all of them alike:
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
 * The parts are the workloads, then "suite": the issue's targets over the workloads that ran,
 * which runs after them whenever one of them runs.
 *
 * ```sh
 * node_modules/.bin/deno run -A bench/run.ts auto [--quick] [--warm-reps 15]
 * node_modules/.bin/bun bench/run.ts tiny,cpu
 * ```
 *
 * @module
 */

import process from "node:process";
import type { Figure, PartResult, Scenario, SizeSpec } from "./_measure.ts";
import { benchLog, figure, median } from "./_measure.ts";
import {
  buildWorkload,
  calibrationNotes,
  SKEW_FACTOR,
  STRATEGIES,
  WORKERS,
  WORKLOADS,
} from "./_auto_workloads.ts";
import type { WorkloadName, WorkloadSize } from "./_auto_workloads.ts";
import {
  describeRan,
  detail,
  fmtMs,
  measureCold,
  measureWarm,
  phaseRatios,
  SETTLE_MS,
  spread,
} from "./_auto_measure.ts";
import type { AutoSays, MeasureSize, Times } from "./_auto_measure.ts";

type Size = WorkloadSize | MeasureSize;

/** The sizes, as `run.ts` resolved them. */
type Sized = Record<Size, number>;

const SIZES: Record<Size, SizeSpec> = {
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

const log = benchLog("auto");

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

/** The six workloads (tiny to io), then the suite's targets over those that ran. */
export const auto: Scenario<Size> = {
  name: "auto",
  sizes: SIZES,
  parts: {
    ...Object.fromEntries(
      WORKLOADS.map((name) => [name, (o: Sized) => runWorkload(name, o)]),
    ),
    suite,
  },
  closing: "suite",
  children: true,
  notes: calibrationNotes,
};

// Run as a script, this file runs its scenario through run.ts. Not awaited at the top level:
// run.ts imports this module, which must finish evaluating first.
if (import.meta.main) {
  import("./run.ts").then(({ main }) => main(process.argv.slice(2), "auto"));
}
