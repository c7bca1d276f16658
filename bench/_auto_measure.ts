/**
 * How the auto scenario times a workload: every way interleaved with the others, map by map,
 * in an order shuffled per repetition, on long-lived executors (warm) and on new ones (cold,
 * the executor's start and `close()` included); and the ratios its figures are made of.
 *
 * @module
 */

import { ParallelExecutor } from "../mod.ts";
import type { ExecutorOptions, ParallelExecutionEvent } from "../mod.ts";
import { check, FIXED, optionsFor, STRATEGIES } from "./_auto_workloads.ts";
import type { Prepared, StrategyKey, Workload } from "./_auto_workloads.ts";
import { benchLog, closeWithin, median, paired, withWatchdog } from "./_measure.ts";

/** Most maps (or cold calls) one sample of a strategy averages over. */
const MAX_MAPS_PER_SAMPLE = 100;
/** Rest before each repetition, so that the previous one's aftermath does not land in it. */
export const SETTLE_MS = 20;

/** The sizes the timing reads. */
export type MeasureSize = "warmMaps" | "warmReps" | "sampleMs" | "coldReps" | "watchdogMs";
type MeasureSizes = Record<MeasureSize, number>;

const log = benchLog("auto");

/** A time for a table: more digits for shorter times. */
export function fmtMs(x: number): string {
  if (Number.isNaN(x)) return "n/a";
  return `${x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2)} ms`;
}

/** Per strategy: wall times of the timed repetitions. */
export type Times = Record<StrategyKey, number[]>;

function emptyTimes(): Times {
  return { serial: [], threads: [], processes: [], auto: [], naive: [] };
}

/** What auto did in one phase: the strategies its timed calls ran, and why. */
export interface AutoSays {
  /** Calls per strategy, from `stats().byStrategy` (no listener: that would cost time). */
  ran: Record<string, number>;
  /** Its reason, from an untimed call (see the callers). */
  reason: string;
}

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

/** `after - before`, per strategy name (calls per strategy between two `stats().byStrategy`). */
export function ranBetween(
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

/** Adds `more`'s calls per strategy into `into`. */
export function addRan(into: Record<string, number>, more: Record<string, number>): void {
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
  o: MeasureSizes,
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

/** Times a workload on long-lived executors, one per way, after warm-up maps. */
export async function measureWarm(
  w: Workload,
  o: MeasureSizes,
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
      await closeWithin(ex, o.watchdogMs, `${w.name}: warm ${key}`);
    }
  }
}

/** One cold call: new executor (+ share) + map + close(), timed; its results checked. */
async function coldCall(
  w: Workload,
  o: MeasureSizes,
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
  await closeWithin(ex, o.watchdogMs, label);
  const t2 = performance.now();
  check(w, values, `${label} map`);
  return { ms: t2 - t0, closeMs: t2 - t1, ran: ex.stats().byStrategy };
}

/** Times a workload on a new executor per call, the executor's start and close included. */
export async function measureCold(
  w: Workload,
  o: MeasureSizes,
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
export function medianRatio(a: number[], b: number[]): number {
  return median(a) / median(b);
}

/** The three ratios of a phase: auto ÷ best fixed, auto ÷ serial, naive ÷ auto. */
export function phaseRatios(
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
export function detail(a: number[], b: number[]): string {
  return paired(ratios(a, b), "the same-rep ratios");
}

export function spread(times: number[]): string {
  const sorted = [...times].sort((a, b) => a - b);
  return sorted.length === 1
    ? fmtMs(sorted[0])
    : `${fmtMs(sorted[0])}–${fmtMs(sorted[sorted.length - 1])}`;
}

export function describeRan(ran: Record<string, number>): string {
  return Object.entries(ran).map(([s, n]) => `${s} ×${n}`).join(", ");
}
