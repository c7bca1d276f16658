/**
 * Per-call workloads: what `submit()` costs when a program makes one call per item, every
 * figure against a baseline measured in the same process. All on
 * `new ParallelExecutor({ strategy: "threads", maxWorkers: 2 })`, with the tasks of `work.ts`.
 *
 * - sb1. 200,000 `submit(work.inc, i)` issued at once, then `Promise.all`: items/s against a
 *   bare pool of 2 raw workers, one `postMessage` per item, all posted at once (`_bare.ts`).
 *   Only tried if 20,000 took under 3 s, and cut off at a cap (`--submit-cap-ms`).
 * - sb2. The same at 20,000 and at 2,000,000: time per item at the large size over that at the
 *   small one (a ladder ×10 at a time, each step under a cap, the next one only if the last
 *   took at most 10 s and a linear projection fits the cap).
 * - sb3. At most 1,024 submits in flight over 200,000 items (a new one started as one
 *   settles): items/s against the bare pool with the same bound (`_bare_bounded.ts`).
 * - sb4. One `submit(work.noop)` round trip on a warm pool, sequential and awaited, in a child
 *   process pinned to one CPU (`taskset -c 0`, `_pinned_trips.ts`), against a raw ping-pong
 *   with a bare worker in the same pinned process.
 * - sb5. 64 CPU-bound tasks of ~20 ms (`work.spin`, calibrated here) as 64 submits and as one
 *   map: speedup over the same 64 calls in a plain loop.
 * - sb6. `warmup()` then the first submit, and a cold first submit, each on a fresh executor
 *   (from the submit to its result): against a warm round trip on the same executors.
 *
 * ```sh
 * node_modules/.bin/deno run -A bench/run.ts submits [--quick]
 * node_modules/.bin/node bench/submits.ts --quick
 * node_modules/.bin/bun bench/run.ts sb1,sb3 --submits 50000
 * ```
 *
 * @module
 */

import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { ParallelExecutor } from "../mod.ts";
import type { TaskFunction, TaskRef } from "../mod.ts";
import { detect } from "../src/runtime/mod.ts";
import { bareMap, startBarePool, stopBarePool } from "./_bare.ts";
import type { BareWorker } from "./_bare.ts";
import { bareBounded } from "./_bare_bounded.ts";
import type { Figure, PartResult, Scenario, SizeSpec } from "./_measure.ts";
import {
  benchLog,
  calibrateSpin,
  closeWithin,
  expectValues,
  fail,
  figure,
  median,
  paired,
  timeAsync,
  timeSync,
  withWatchdog,
  workTasks,
} from "./_measure.ts";
import { PINNED_MARKER } from "./_pinned_trips.ts";
import type { PinnedTrips } from "./_pinned_trips.ts";
import { tripFigures } from "./round_trip.ts";
import { cpuWork, TASK_MS, trivialItems } from "./throughput.ts";
import * as work from "./work.ts";

type Size =
  | "workers"
  | "submits"
  | "submitReps"
  | "capMs"
  | "scaleFrom"
  | "scaleTo"
  | "scaleCapMs"
  | "boundedItems"
  | "inFlight"
  | "tripPings"
  | "spinTasks"
  | "spinReps"
  | "firstStarts";

const SIZES: Record<Size, SizeSpec> = {
  workers: { flag: "workers", full: 2, quick: 2, help: "maxWorkers for parts sb1 to sb6" },
  submits: { flag: "submits", full: 200_000, quick: 20_000, help: "sb1: submits at once" },
  submitReps: { flag: "submit-reps", full: 3, quick: 2, help: "sb1, sb3: timed repetitions" },
  capMs: {
    flag: "submit-cap-ms",
    full: 10_000,
    quick: 10_000,
    help: "sb1, sb3: cut-off of one timed run, ms",
  },
  scaleFrom: { flag: "scale-from", full: 20_000, quick: 20_000, help: "sb2: the small size" },
  scaleTo: { flag: "scale-to", full: 2_000_000, quick: 200_000, help: "sb2: the large size" },
  scaleCapMs: {
    flag: "scale-cap-ms",
    full: 15_000,
    quick: 10_000,
    help: "sb2: cut-off of one step, ms",
  },
  boundedItems: {
    flag: "bounded-items",
    full: 200_000,
    quick: 50_000,
    help: "sb3: items through the bounded loop",
  },
  inFlight: { flag: "in-flight", full: 1_024, quick: 1_024, help: "sb3: submits in flight" },
  tripPings: {
    flag: "trip-pings",
    full: 10_000,
    quick: 2_000,
    help: "sb4: timed round trips of each kind",
  },
  spinTasks: { flag: "spin-tasks", full: 64, quick: 64, help: "sb5: ~20 ms tasks" },
  spinReps: { flag: "spin-reps", full: 3, quick: 1, help: "sb5: timed repetitions" },
  firstStarts: {
    flag: "first-starts",
    full: 10,
    quick: 5,
    help: "sb6: fresh executors of each kind",
  },
};

const log = benchLog("submits");

/** How long closing (or terminating) an executor may take before the part fails. */
const CLOSE_LIMIT_MS = 10_000;
/** How long a bare pool's run may take before the part fails (it never should). */
const BARE_LIMIT_MS = 60_000;
/** The cap on a warm-up run (which starts the pool): not the timed runs' cap. */
const WARMUP_CAP_MS = 30_000;
/** sb1: the pre-flight size, and how long it may take for the full size to be tried. */
const PREFLIGHT = 20_000;
const PREFLIGHT_MAX_MS = 3_000;
/** sb2: the next step of the ladder runs only if the last one took at most this. */
const SCALE_GATE_MS = 10_000;
/** sb2: each step is this many times the last. */
const SCALE_STEP = 10;
/** sb4: how long the pinned child may take. */
const CHILD_LIMIT_MS = 120_000;
/** sb6: warm round trips timed on each fresh executor after its first submit. */
const WARM_TRIPS = 300;

const en = (n: number): string => n.toLocaleString("en-US");
const secs = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;

function executor(workers: number): ParallelExecutor {
  return new ParallelExecutor({ strategy: "threads", maxWorkers: workers });
}

// ---------------------------------------------------------------------------------------------
// Runs under a cap

/** A timed run: its time, or how far it got when the cap cut it off. */
export type Capped =
  | { done: true; ms: number; issueMs: number }
  | { done: false; ms: number; issueMs: number; settled: number; count: number };

/** Counts the promises among `ps` that have settled, without waiting for the others. */
async function countSettled(ps: readonly Promise<unknown>[]): Promise<number> {
  const pending = {};
  let settled = 0;
  for (const p of ps) {
    try {
      // A settled promise's reaction is queued before the plain value's: race sees it first.
      if (await Promise.race([p, pending]) !== pending) settled++;
    } catch {
      settled++;
    }
  }
  return settled;
}

/** Waits for `promise` until `start + capMs`; `false` if the cap came first. */
async function beforeCap(
  promise: Promise<unknown>,
  start: number,
  capMs: number,
): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const cap = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), Math.max(0, start + capMs - performance.now()));
  });
  try {
    return await Promise.race([promise.then(() => true as const), cap]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * `count` submits of `work.inc` issued at once, then `Promise.all`, checked, under a cap from
 * the first submit. When the cap cuts it off, the executor is terminated (the caller must not
 * use it again).
 */
export async function burst(ex: ParallelExecutor, count: number, capMs: number): Promise<Capped> {
  const ps = new Array<Promise<number>>(count);
  const start = performance.now();
  for (let i = 0; i < count; i++) ps[i] = ex.submit(workTasks.inc, i);
  const issueMs = performance.now() - start;
  const all = Promise.all(ps);
  if (!await beforeCap(all, start, capMs)) {
    const ms = performance.now() - start;
    const settled = await countSettled(ps);
    all.catch(() => {});
    await closeWithin(ex, CLOSE_LIMIT_MS, "burst cut off by its cap", true);
    return { done: false, ms, issueMs, settled, count };
  }
  const ms = performance.now() - start;
  const values = await all;
  for (let i = 0; i < count; i++) if (values[i] !== i + 1) fail(`burst: item ${i}`);
  return { done: true, ms, issueMs };
}

/**
 * `items.length` submits of `work.inc` with at most `limit` in flight, a new one started as
 * one settles, checked, under a cap; the executor is terminated if the cap cuts it off.
 */
export async function boundedSubmits(
  ex: ParallelExecutor,
  count: number,
  limit: number,
  capMs: number,
): Promise<Capped> {
  const out = new Array<number>(count);
  let next = 0;
  let settled = 0;
  const start = performance.now();
  const loop = new Promise<void>((resolve, reject) => {
    const one = (): void => {
      const i = next++;
      ex.submit(workTasks.inc, i).then((value) => {
        out[i] = value;
        if (++settled === count) resolve();
        else if (next < count) one();
      }, reject);
    };
    for (let k = 0; k < limit && next < count; k++) one();
  });
  const issueMs = performance.now() - start;
  if (!await beforeCap(loop, start, capMs)) {
    const ms = performance.now() - start;
    const got = settled;
    loop.catch(() => {});
    await closeWithin(ex, CLOSE_LIMIT_MS, "bounded loop cut off by its cap", true);
    return { done: false, ms, issueMs, settled: got, count };
  }
  const ms = performance.now() - start;
  await loop;
  for (let i = 0; i < count; i++) if (out[i] !== i + 1) fail(`bounded loop: item ${i}`);
  return { done: true, ms, issueMs };
}

/** "did not finish within the 10 s cap: 12,345 of 200,000 settled (≤ 1,234 items/s)". */
function cutOff(r: Capped & { done: false }, capMs: number): string {
  return `did not finish within the ${secs(capMs)} cap: ${en(r.settled)} of ${
    en(r.count)
  } settled by then (≤ ${en(Math.round(r.settled / (r.ms / 1000)))} items/s; issuing took ${
    r.issueMs.toFixed(0)
  } ms)`;
}

/** Items/s of one bare run, checked, within {@linkcode BARE_LIMIT_MS}. */
async function bareRate(
  run: () => Promise<number[]>,
  expected: readonly number[],
  what: string,
): Promise<number> {
  let values: number[] = [];
  const ms = await timeAsync(async () => {
    values = await withWatchdog(run(), BARE_LIMIT_MS, what);
  });
  expectValues(values, expected, what);
  return expected.length / (ms / 1000);
}

/**
 * Alternates `reps` timed runs of fanout and of its bare baseline (which goes first alternates,
 * so neither always runs right after the other's garbage), stopping early once fanout's runs
 * have taken `budgetMs` together or one was cut off by its cap.
 */
async function alternate(
  reps: number,
  budgetMs: number,
  lib: () => Promise<Capped>,
  bare: () => Promise<number>,
  count: number,
  what: string,
): Promise<{ lib: number[]; bare: number[]; cut?: Capped & { done: false } }> {
  const libRates: number[] = [];
  const bareRates: number[] = [];
  let spent = 0;
  for (let rep = 0; rep < reps; rep++) {
    let r: Capped;
    if (rep % 2 === 0) {
      bareRates.push(await bare());
      r = await lib();
    } else {
      r = await lib();
      bareRates.push(await bare());
    }
    spent += r.ms;
    if (!r.done) {
      log(`${what}: rep ${rep + 1}: cut off after ${secs(r.ms)}`);
      return { lib: libRates, bare: bareRates, cut: r };
    }
    libRates.push(count / (r.ms / 1000));
    log(
      `${what}: rep ${rep + 1}/${reps}: fanout ${en(Math.round(libRates.at(-1)!))} items/s, bare ${
        en(Math.round(bareRates.at(-1)!))
      } items/s (issuing took ${r.issueMs.toFixed(0)} ms)`,
    );
    if (spent >= budgetMs && rep + 1 < reps) {
      log(`${what}: stopping after ${rep + 1} reps (${secs(spent)} spent)`);
      break;
    }
  }
  return { lib: libRates, bare: bareRates };
}

/** A throughput figure against a bare baseline: best of each; unmeasured when cut off. */
function rateFigure(
  f: Pick<Figure, "part" | "name" | "target">,
  runs: { lib: number[]; bare: number[]; cut?: Capped & { done: false } },
  capMs: number,
  baseline: string,
  note: string,
): Figure {
  const bare = Math.max(...runs.bare);
  const base = { name: baseline, value: bare, unit: "items/s" };
  if (runs.cut !== undefined || runs.lib.length === 0) {
    const why = runs.cut === undefined ? "no run" : cutOff(runs.cut, capMs);
    return figure({ ...f, value: NaN, unit: "items/s", baseline: base, note: `${why}; ${note}` });
  }
  const best = Math.max(...runs.lib);
  return figure({
    ...f,
    value: best,
    unit: "items/s",
    baseline: base,
    ratio: best / bare,
    ratioLabel: "× bare",
    note: `best of ${runs.lib.length}, ${
      paired(runs.lib.map((l, k) => l / runs.bare[k]))
    }; ${note}`,
  });
}

/** A figure that could not be measured, with the reason. */
function unmeasured(f: Pick<Figure, "part" | "name" | "unit" | "target">, why: string): Figure {
  return figure({ ...f, value: NaN, note: why });
}

// ---------------------------------------------------------------------------------------------
// sb1. Submits at once, against a bare pool

async function atOnce(o: Record<Size, number>): Promise<PartResult> {
  const ex = executor(o.workers);
  const bare = await startBarePool(o.workers);
  let usable = true;
  const figures: Figure[] = [];
  const name = (n: number): string =>
    `${en(n)} submit() at once, then Promise.all, ${o.workers} workers`;
  const target = { on: "ratio" as const, op: ">=" as const, value: 5, label: "≥ 5×" };
  const note = "work.inc; bare pool = raw postMessage, one message per item, all posted at once";
  try {
    const warm = await burst(ex, 2_000, WARMUP_CAP_MS);
    if (!warm.done) throw new Error(`warm-up burst of 2,000: ${cutOff(warm, WARMUP_CAP_MS)}`);
    const few = trivialItems(2_000);
    expectValues(await bareMap(bare, few.items), few.expected, "bare warm-up");
    if (o.submits > PREFLIGHT) {
      const small = trivialItems(PREFLIGHT);
      const runs = await alternate(
        1,
        0,
        () => burst(ex, PREFLIGHT, PREFLIGHT_MAX_MS),
        () => bareRate(() => bareMap(bare, small.items), small.expected, "bare pre-flight"),
        PREFLIGHT,
        "sb1 pre-flight",
      );
      figures.push(
        rateFigure(
          { part: "sb1", name: `${name(PREFLIGHT)} (pre-flight)` },
          runs,
          PREFLIGHT_MAX_MS,
          "bare pool",
          `one run; ${en(o.submits)} are tried only if this took under ${secs(PREFLIGHT_MAX_MS)}`,
        ),
      );
      if (runs.cut !== undefined) {
        usable = false;
        figures.push(unmeasured(
          { part: "sb1", name: name(o.submits), unit: "items/s", target },
          `not tried: ${en(PREFLIGHT)} submits did not finish within ${secs(PREFLIGHT_MAX_MS)}`,
        ));
        return { figures, notes: [] };
      }
    }
    const { items, expected } = trivialItems(o.submits);
    const runs = await alternate(
      o.submitReps,
      o.capMs,
      () => burst(ex, o.submits, o.capMs),
      () => bareRate(() => bareMap(bare, items), expected, "bare pool"),
      o.submits,
      "sb1",
    );
    if (runs.cut !== undefined) usable = false;
    figures.push(
      rateFigure({ part: "sb1", name: name(o.submits), target }, runs, o.capMs, "bare pool", note),
    );
    return { figures, notes: [] };
  } finally {
    if (usable) await closeWithin(ex, CLOSE_LIMIT_MS, "sb1");
    await stopBarePool(bare);
  }
}

// ---------------------------------------------------------------------------------------------
// sb2. Time per item, small against large

async function scaling(o: Record<Size, number>): Promise<PartResult> {
  const name = `time per submit at ${en(o.scaleTo)} ÷ at ${en(o.scaleFrom)} (at once, then ` +
    `Promise.all), ${o.workers} workers`;
  const target = { on: "ratio" as const, op: "<=" as const, value: 1.2, label: "≤ 1.2×" };
  const steps: number[] = [];
  for (let n = o.scaleFrom; n < o.scaleTo; n *= SCALE_STEP) steps.push(n);
  steps.push(o.scaleTo);
  let ex = executor(o.workers);
  let usable = true;
  /** µs per item at each size reached, and the resident memory right after it. */
  const perItem = new Map<number, number>();
  const rss = new Map<number, number>();
  const ladder = (): string =>
    [...perItem].map(([n, us]) => `${en(n)}: ${us.toFixed(2)} µs/item`).join(", ");
  try {
    const warm = await burst(ex, 2_000, WARMUP_CAP_MS);
    if (!warm.done) throw new Error(`warm-up burst of 2,000: ${cutOff(warm, WARMUP_CAP_MS)}`);
    // The small size: best of 3.
    const small: number[] = [];
    for (let rep = 0; rep < 3; rep++) {
      const r = await burst(ex, o.scaleFrom, o.scaleCapMs);
      if (!r.done) {
        usable = false;
        return {
          figures: [unmeasured(
            { part: "sb2", name, unit: "µs", target },
            `the small size: ${cutOff(r, o.scaleCapMs)}`,
          )],
          notes: [],
        };
      }
      small.push((r.ms * 1000) / o.scaleFrom);
    }
    perItem.set(o.scaleFrom, Math.min(...small));
    let lastMs = Math.min(...small) * o.scaleFrom / 1000;
    for (const n of steps.slice(1)) {
      const projected = lastMs * (n / [...perItem.keys()].at(-1)!);
      let why: string | undefined;
      if (lastMs > SCALE_GATE_MS) {
        why = `${en([...perItem.keys()].at(-1)!)} took ${secs(lastMs)} (> ${secs(SCALE_GATE_MS)})`;
      } else if (projected > o.scaleCapMs) {
        why = `${en(n)} would take ≥ ${secs(projected)} at the rate of ${
          en([...perItem.keys()].at(-1)!)
        }, over the ${secs(o.scaleCapMs)} cap`;
      }
      if (why !== undefined) {
        return {
          figures: [unmeasured(
            { part: "sb2", name, unit: "µs", target },
            `not tried at ${en(n)}: ${why}; reached ${ladder()}`,
          )],
          notes: [],
        };
      }
      // A fresh executor for each large step, so that one step's garbage is not the next's.
      await closeWithin(ex, CLOSE_LIMIT_MS, "sb2");
      ex = executor(o.workers);
      const w = await burst(ex, 2_000, WARMUP_CAP_MS);
      if (!w.done) throw new Error(`warm-up burst of 2,000: ${cutOff(w, WARMUP_CAP_MS)}`);
      log(`sb2: ${en(n)} submits at once`);
      const r = await burst(ex, n, o.scaleCapMs);
      if (!r.done) {
        usable = false;
        return {
          figures: [unmeasured(
            { part: "sb2", name, unit: "µs", target },
            `${en(n)}: ${cutOff(r, o.scaleCapMs)} — ≥ ${
              ((r.ms * 1000) / r.settled / perItem.get(o.scaleFrom)!).toFixed(1)
            }× the time per item of ${en(o.scaleFrom)}; reached ${ladder()}`,
          )],
          notes: [],
        };
      }
      perItem.set(n, (r.ms * 1000) / n);
      rss.set(n, process.memoryUsage().rss);
      lastMs = r.ms;
      log(`sb2: ${ladder()}`);
    }
    const from = perItem.get(o.scaleFrom)!;
    const to = perItem.get(o.scaleTo)!;
    return {
      figures: [figure({
        part: "sb2",
        name,
        value: to,
        unit: "µs",
        baseline: { name: `per item at ${en(o.scaleFrom)}`, value: from, unit: "µs" },
        ratio: to / from,
        ratioLabel: "× per item",
        target,
        note: `work.inc; the small size best of 3, each larger one run once on a fresh ` +
          `executor; ${ladder()}`,
      })],
      notes: [
        `sb2: resident memory right after each large step: ${
          [...rss].map(([n, bytes]) => `${en(n)}: ${Math.round(bytes / 2 ** 20)} MiB`).join(", ")
        }`,
      ],
    };
  } finally {
    if (usable) await closeWithin(ex, CLOSE_LIMIT_MS, "sb2");
  }
}

// ---------------------------------------------------------------------------------------------
// sb3. A bounded number in flight, against a bare pool with the same bound

async function inFlight(o: Record<Size, number>): Promise<PartResult> {
  const ex = executor(o.workers);
  const bare: BareWorker[] = await startBarePool(o.workers);
  let usable = true;
  const { items, expected } = trivialItems(o.boundedItems);
  try {
    const warm = await boundedSubmits(ex, 2_000, o.inFlight, WARMUP_CAP_MS);
    if (!warm.done) throw new Error(`warm-up of 2,000: ${cutOff(warm, WARMUP_CAP_MS)}`);
    const few = trivialItems(2_000);
    expectValues(await bareBounded(bare, few.items, o.inFlight), few.expected, "bare warm-up");
    const runs = await alternate(
      o.submitReps,
      o.capMs,
      () => boundedSubmits(ex, o.boundedItems, o.inFlight, o.capMs),
      () => bareRate(() => bareBounded(bare, items, o.inFlight), expected, "bare bounded"),
      o.boundedItems,
      "sb3",
    );
    if (runs.cut !== undefined) usable = false;
    return {
      figures: [rateFigure(
        {
          part: "sb3",
          name: `${en(o.boundedItems)} submit(), at most ${
            en(o.inFlight)
          } in flight, ${o.workers} workers`,
          target: { on: "ratio", op: ">=", value: 2, label: "≥ 2×" },
        },
        runs,
        o.capMs,
        `bare pool, ≤ ${en(o.inFlight)} in flight`,
        "work.inc; a new submit as each one settles; bare pool = raw postMessage, a new " +
          "message as each reply arrives",
      )],
      notes: [],
    };
  } finally {
    if (usable) await closeWithin(ex, CLOSE_LIMIT_MS, "sb3");
    await stopBarePool(bare);
  }
}

// ---------------------------------------------------------------------------------------------
// sb4. The round trip, pinned to one CPU

function findTaskset(): string | undefined {
  return ["/usr/bin/taskset", "/bin/taskset"].find((p) => existsSync(p));
}

/** The command that runs `script` on this runtime. */
export function selfCommand(script: string): string[] {
  return detect().name === "deno"
    ? [process.execPath, "run", "-A", script]
    : [process.execPath, script];
}

/** Runs `command`, and returns what it printed after `marker`, parsed. */
function runChild<T>(command: string[], marker: string, limitMs: number): Promise<T> {
  return new Promise((resolve, reject) => {
    const child = spawn(command[0], command.slice(1), { stdio: ["ignore", "pipe", "inherit"] });
    let stdout = "";
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`${command.join(" ")}: killed after ${secs(limitMs)}`));
    }, limitMs);
    child.stdout!.setEncoding("utf8");
    child.stdout!.on("data", (chunk: string) => (stdout += chunk));
    child.on("error", (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on("close", (code) => {
      clearTimeout(timer);
      const at = stdout.indexOf(marker);
      if (code !== 0 || at === -1) {
        reject(new Error(`${command.join(" ")}: exited with ${code}, printed no result`));
        return;
      }
      try {
        resolve(JSON.parse(stdout.slice(at + marker.length).trim().split("\n")[0]) as T);
      } catch (error) {
        reject(error);
      }
    });
  });
}

async function pinnedTrip(o: Record<Size, number>): Promise<PartResult> {
  const taskset = findTaskset();
  const script = fileURLToPath(new URL("./_pinned_trips.ts", import.meta.url));
  const own = selfCommand(script);
  const command = [
    ...(taskset === undefined ? [] : [taskset, "-c", "0"]),
    ...own,
    String(o.tripPings),
    String(o.workers),
  ];
  log(`sb4: ${command.join(" ")}`);
  const r = await runChild<PinnedTrips>(command, PINNED_MARKER, CHILD_LIMIT_MS);
  const pinned = r.cpus === 1
    ? "a child process pinned to 1 CPU (taskset -c 0)"
    : `a child process NOT pinned (${r.cpus} CPUs visible${
      taskset === undefined ? "; taskset not found" : ""
    })`;
  return {
    figures: tripFigures(
      "sb4",
      `submit() round trip, warm pool, ${o.workers} workers, pinned`,
      r.submits,
      { name: "raw ping-pong, same pinning", samples: r.pings },
      "× raw",
      {
        target: { on: "ratio", op: "<=", value: 1.05, label: "≤ 1.05×" },
        note: `work.noop, sequential and awaited, ${r.submits.length} calls of each after ` +
          `${r.warmup} warm-up, interleaved in ${r.rounds} rounds, in ${pinned}`,
      },
    ),
    notes: [],
  };
}

// ---------------------------------------------------------------------------------------------
// sb5. CPU-bound speedup, as submits and as one map

async function cpuSpeedup(o: Record<Size, number>): Promise<PartResult> {
  const iterations = Math.round(calibrateSpin() * TASK_MS);
  const taskMs = median([0, 1, 2].map(() => timeSync(() => work.spin(iterations))));
  const { inputs, expected } = cpuWork(o.spinTasks, iterations);
  const all = new Array(inputs.length).fill(expected);
  const serial: number[] = [];
  const submits: number[] = [];
  const maps: number[] = [];
  const ex = executor(o.workers);
  const viaSubmits = (): Promise<number[]> =>
    Promise.all(inputs.map((n) => ex.submit(workTasks.spin, n)));
  try {
    log(
      `sb5: warm-up (${o.spinTasks} tasks of ${iterations} iterations, ~${taskMs.toFixed(1)} ms)`,
    );
    expectValues(await ex.map(workTasks.spin, inputs), all, "warm-up map");
    expectValues(await viaSubmits(), all, "warm-up submits");
    for (let rep = 0; rep < o.spinReps; rep++) {
      let values: number[] = [];
      serial.push(timeSync(() => {
        values = inputs.map((n) => work.spin(n));
      }));
      expectValues(values, all, "serial loop");
      // Which of the two goes first alternates.
      const timeSubmits = async () => {
        submits.push(await timeAsync(async () => expectValues(await viaSubmits(), all, "submits")));
      };
      const timeMap = async () => {
        maps.push(
          await timeAsync(async () =>
            expectValues(await ex.map(workTasks.spin, inputs), all, "map")
          ),
        );
      };
      if (rep % 2 === 0) {
        await timeSubmits();
        await timeMap();
      } else {
        await timeMap();
        await timeSubmits();
      }
      log(
        `sb5: rep ${rep + 1}/${o.spinReps}: serial ${serial.at(-1)!.toFixed(0)} ms, submits ${
          submits.at(-1)!.toFixed(0)
        } ms, map ${maps.at(-1)!.toFixed(0)} ms`,
      );
    }
  } finally {
    await closeWithin(ex, CLOSE_LIMIT_MS, "sb5");
  }
  // Noise only ever adds time: each figure is the best of its repetitions.
  const best = Math.min(...serial);
  const what = `${o.spinTasks} × ~${TASK_MS} ms tasks, ${o.workers} workers`;
  const speedup = (how: string, times: number[]): Figure =>
    figure({
      part: "sb5",
      name: `CPU: ${what}, ${how}`,
      value: Math.min(...times),
      unit: "ms",
      baseline: { name: "serial loop", value: best, unit: "ms" },
      ratio: best / Math.min(...times),
      ratioLabel: "speedup",
      target: { on: "ratio", op: ">=", value: 1.95, label: "≥ 1.95×" },
      note: `best of ${o.spinReps}; ${paired(serial.map((s, k) => s / times[k]))}`,
    });
  return {
    figures: [
      speedup(`${o.spinTasks} submit() + Promise.all`, submits),
      speedup("one map()", maps),
    ],
    notes: [`sb5: task = work.spin(${iterations}) — ${taskMs.toFixed(1)} ms on the main thread`],
  };
}

// ---------------------------------------------------------------------------------------------
// sb6. The first task after warmup(), and a cold one

/** `warmup()` as the other half of this change adds it; absent until then. */
type Warmup = (
  options?: { tasks?: Array<TaskRef<never, unknown> | TaskFunction<never, unknown>> },
) => Promise<void>;

function warmupOf(ex: ParallelExecutor): Warmup | undefined {
  const fn = (ex as unknown as { warmup?: unknown }).warmup;
  return typeof fn === "function" ? (fn as Warmup).bind(ex) : undefined;
}

/**
 * A fresh executor: `warmup()` first when `warm` (and available), then the first submit, timed
 * from the submit to its result, then warm round trips on it.
 *
 * @returns The first submit's time (ms), the warm round trips (µs), `warmup()`'s time (ms).
 */
async function firstSubmit(
  workers: number,
  warm: boolean,
): Promise<{ firstMs: number; tripsUs: number[]; warmupMs?: number } | undefined> {
  const ex = executor(workers);
  try {
    let warmupMs: number | undefined;
    if (warm) {
      const warmup = warmupOf(ex);
      if (warmup === undefined) return undefined;
      warmupMs = await timeAsync(() =>
        withWatchdog(warmup({ tasks: [workTasks.inc] }), CLOSE_LIMIT_MS, "warmup()")
      );
    }
    const start = performance.now();
    const value = await withWatchdog(ex.submit(workTasks.inc, 1), CLOSE_LIMIT_MS, "first submit");
    const firstMs = performance.now() - start;
    if (value !== 2) fail("first submit");
    for (let i = 0; i < 100; i++) await ex.submit(workTasks.noop, undefined);
    const tripsUs: number[] = [];
    for (let i = 0; i < WARM_TRIPS; i++) {
      const t = performance.now();
      await ex.submit(workTasks.inc, i);
      tripsUs.push((performance.now() - t) * 1000);
    }
    return { firstMs, tripsUs, ...(warmupMs === undefined ? {} : { warmupMs }) };
  } finally {
    await closeWithin(ex, CLOSE_LIMIT_MS, "sb6");
  }
}

async function afterWarmup(o: Record<Size, number>): Promise<PartResult> {
  const cold: number[] = [];
  const warmed: number[] = [];
  const warmups: number[] = [];
  const trips: number[] = [];
  let available = true;
  for (let s = 0; s < o.firstStarts; s++) {
    const c = await firstSubmit(o.workers, false);
    cold.push(c!.firstMs);
    trips.push(...c!.tripsUs);
    if (!available) continue;
    const w = await firstSubmit(o.workers, true);
    if (w === undefined) {
      available = false;
      continue;
    }
    warmed.push(w.firstMs);
    warmups.push(w.warmupMs!);
    trips.push(...w.tripsUs);
  }
  const trip = median(trips);
  const base = { name: "warm submit() round trip", value: trip, unit: "µs" };
  const name = (how: string): string =>
    `first submit() on a fresh executor, ${how}, ${o.workers} workers`;
  const coldMs = median(cold);
  const figures: Figure[] = [];
  const tripNote = `work.inc (work.ts); the baseline is the median of ${WARM_TRIPS} sequential ` +
    `round trips on each of these executors after their first submit`;
  if (available) {
    const warmMs = median(warmed);
    figures.push(figure({
      part: "sb6",
      name: name("after warmup({ tasks: [work.inc] })"),
      value: warmMs,
      unit: "ms",
      baseline: base,
      ratio: (warmMs * 1000) / trip,
      ratioLabel: "× warm trip",
      target: { on: "ratio", op: "<=", value: 3, label: "≤ 3×" },
      note: `from the submit to its result, median of ${warmed.length} fresh executors; ` +
        `warmup() itself took ${median(warmups).toFixed(1)} ms (median); cold ÷ after warmup ` +
        `${(coldMs / warmMs).toFixed(1)}×; ${tripNote}`,
    }));
  } else {
    figures.push(unmeasured(
      {
        part: "sb6",
        name: name("after warmup()"),
        unit: "ms",
        target: { on: "ratio", op: "<=", value: 3, label: "≤ 3×" },
      },
      "warmup() not available: ParallelExecutor has no warmup method in this checkout",
    ));
  }
  figures.push(figure({
    part: "sb6",
    name: name("cold"),
    value: coldMs,
    unit: "ms",
    baseline: base,
    ratio: (coldMs * 1000) / trip,
    ratioLabel: "× warm trip",
    note: `from the submit to its result (starting the pool and loading work.ts included), ` +
      `median of ${cold.length} fresh executors`,
  }));
  return { figures, notes: [] };
}

/** Parts sb1 to sb6: per-call workloads on `submit()`. */
export const submits: Scenario<Size> = {
  name: "submits",
  sizes: SIZES,
  // sb4's pinned child: its CPU is this run's, not others'.
  children: true,
  parts: {
    sb1: atOnce,
    sb2: scaling,
    sb3: inFlight,
    sb4: pinnedTrip,
    sb5: cpuSpeedup,
    sb6: afterWarmup,
  },
};

// Run as a script, this file runs its scenario through run.ts. Not awaited at the top level:
// run.ts imports this module, which must finish evaluating first.
if (import.meta.main) {
  import("./run.ts").then(({ main }) => main(process.argv.slice(2), "submits"));
}
