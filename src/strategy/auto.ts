/**
 * Strategy `"auto"`: per call, choose serial, threads or processes from the workload, and say
 * why in words.
 *
 * ```
 * call ──► rules that need no measurement (nested, isolate, timeout on Deno, memory cap,
 *   │       too few items, a large input) ──► decision
 *   ▼
 * time per item known from an earlier call? ──no──► run the first chunks here, timed, from one
 *   │                                               item up: their results are kept, not thrown
 *   │                                               away; c is their warm part (`Mean.warm`)
 *   ▼
 * cost model: serial n·c  against  pool start (0 when warm) + n·(c + transport) / workers
 *   │
 *   ▼
 * serial? checked again after every chunk, so skewed work still moves (`REVISE_MS`)
 * ```
 *
 * The pool's start, round trip and transport are measured in this process (`Calibration`, in
 * _calibration.ts), the constants standing in until then; the reason says which figures were which.
 *
 * Threads win only with a margin (`MARGIN`), so that auto never makes a small workload much
 * slower than serial. Processes are chosen for what only they give (isolation, hard timeouts
 * on Deno, memory caps), never for speed: they cost more than threads on every runtime.
 *
 * @module
 */

import type { RuntimeName } from "../runtime/mod.ts";
import { CAPABILITIES } from "../runtime/_capabilities.ts";
import type { StrategyName } from "./types.ts";
import type { Profile } from "../chunking.ts";
import type { PoolCosts } from "../_calibration.ts";
import { ASYNC_CONCURRENCY } from "../config.ts";
import { count, figures, megabytes, ms, percent } from "./_auto_words.ts";

/** Round trip of one chunk to a warm thread and back, in ms (bench/round_trip.ts, part c). */
export const ROUND_TRIP_MS = 0.03;

/** The thread pool's costs on `runtime` before anything was measured: its constants. */
export function assumedCosts(runtime: RuntimeName): PoolCosts {
  const can = CAPABILITIES[runtime];
  return {
    start: { ms: can.startMs.threads, measured: false },
    roundTrip: { ms: ROUND_TRIP_MS, measured: false },
    transport: { ms: can.transportMs, measured: false },
  };
}

/** Threads must beat serial by this factor. */
export const MARGIN = 1.25;

export { estimateBytes, LARGE_INPUT_BYTES } from "./_bytes.ts";
import { LARGE_INPUT_BYTES } from "./_bytes.ts";

/** Items assumed for an input of unknown length. */
export const UNKNOWN_ITEMS = 1000;

/**
 * The probe chooses a parallel strategy only once its estimate (the warm part of what it
 * measured: `Mean.warm`) rests on this much time. While the task is still getting faster its
 * warm part stays short, so the probe runs on: on Bun a trivial task is still 3–5× slower than
 * its final speed after 1 ms of its first calls, enough to misprice it for threads. Serial is
 * chosen as soon as the estimate says so: it goes on running here, as the probe does, and is
 * checked again after every chunk. Probed items are kept, so probing longer costs a parallel
 * call only what the other workers would have run meanwhile (half of it, on 2 workers).
 */
export const PROBE_MS = 3;

/**
 * ... and on at least this many chunks: the first runs a single item, the task's first call,
 * which can be 10,000× slower than the rest (on Bun, `n + 1` once took 2.5 ms: its module's first
 * run), and must not choose threads on its own.
 */
export const PROBE_CHUNKS = 2;

/**
 * A serial choice made from the cost is checked again after every chunk, but moves to threads
 * only once the mean it is checked with rests on this much time. Before that one late chunk (a
 * time slice lost to another process, a collection: a few ms) would weigh as much as the rest,
 * and count again for every item left: it moved trivial calls to threads, which then took 2–6×
 * as long. Slow items of skewed work carry this much time themselves.
 */
export const REVISE_MS = 10;

/**
 * Below this share of its wall time spent computing, a task mostly waits: it is priced with
 * items in flight (the `"async"` strategy, or threads running several at once).
 */
export const WAITING_SHARE = 0.9;
/**
 * A task that awaits is probed on this many chunks (or `WAITING_PROBE_MS`), and the least busy
 * share among them counts: noise (another thread's turn on the core, a first call compiling)
 * only ever adds to it.
 */
export const WAITING_SAMPLES = 3;
/** ... or, after two, until this much wall time was probed. */
export const WAITING_PROBE_MS = 20;
/**
 * A task's first probes run while much is still cold (its first calls, the runtime's own first
 * fetch, collections of what ran before): they can make it look busier and slower than it is.
 * So later calls of a task that awaits probe it again, a few items each, until its profile rests
 * on this many: the least busy of them all gives its share and its wall time.
 */
export const PROFILE_SAMPLES = 9;

/** Most items a thread keeps in flight when auto chooses for a task that awaits. */
export const MAX_PER_THREAD = 64;

/** A concrete strategy auto can choose: a built-in one. */
export type Choice = StrategyName;

/** What the choice is made from. */
export interface Workload {
  runtime: RuntimeName;
  /** `maxWorkers`, already capped by nothing else. */
  maxWorkers: number;
  /** Items in the call, when known. */
  items: number | undefined;
  /** Items already run (by the probe). */
  done: number;
  minBatchSize: number;
  /** Measured time per item, if known. */
  perItemMs: number | undefined;
  /** Where `perItemMs` comes from, for the reason. */
  measured: "probe" | "earlier calls" | undefined;
  /** For a task that awaits: its time per item on the calling thread, and the share computing. */
  profile: Profile | undefined;
  /** The call's `concurrency`, when the caller set it. */
  concurrency: number | undefined;
  /** Size of one input in bytes: the hint, or a measurement. */
  inputBytes: number | undefined;
  isolate: boolean;
  timeoutMs: number | undefined;
  maxMemoryMb: number | undefined;
  /** Pools already started. */
  warm: { threads: boolean; processes: boolean };
  /** What the thread pool costs: measured in this process, or assumed (`assumedCosts`). */
  costs: PoolCosts;
  /** Whether this executor runs inside a fanout worker. */
  nested: boolean;
  /** Pools that could not start, with why. */
  broken: { threads?: string; processes?: string };
  /**
   * Time this executor's earlier calls gave up by running serially only because the thread
   * pool was not started yet, in ms. Once it reaches the pool's start cost, the pool is
   * started (rent or buy): a long-lived executor never pays more than about twice the best.
   */
  regretMs: number;
}

/** What auto chose, and why. */
export interface Decision {
  /** The strategy; `undefined` while the time per item must be measured first. */
  readonly strategy: Choice | undefined;
  /** Why, in words (formatted only when read: most calls never look). */
  readonly reason: string;
  /** Workers it can use at once. */
  readonly workers: number;
  /**
   * With a serial choice made only because the pool is cold: what a warm pool would have saved
   * this call, in ms (added to `Workload.regretMs`); else 0.
   */
  readonly regretMs: number;
  /**
   * Items in flight at once it chose, for a task that awaits: on the calling thread (`"async"`)
   * or per thread; `undefined` otherwise (the call's own, or one at a time).
   */
  readonly concurrency?: number;
}

/** A decision whose reason is worded only when read. */
export class Verdict implements Decision {
  readonly strategy: Choice | undefined;
  readonly workers: number;
  readonly regretMs: number;
  readonly concurrency: number | undefined;
  #why: (() => string) | string;

  constructor(
    strategy: Choice | undefined,
    why: () => string,
    workers: number,
    regretMs = 0,
    concurrency?: number,
  ) {
    this.strategy = strategy;
    this.#why = why;
    this.workers = workers;
    this.regretMs = regretMs;
    this.concurrency = concurrency;
  }

  get reason(): string {
    if (typeof this.#why === "function") this.#why = this.#why();
    return this.#why;
  }
}

/**
 * Chooses a strategy for a call.
 *
 * @returns The decision, or one with `strategy: undefined` when a probe must measure first.
 */
export function decide(w: Workload): Decision {
  const fixed = (
    strategy: Choice,
    why: () => string,
    workers = w.maxWorkers,
    regretMs = 0,
    concurrency?: number,
  ): Decision => {
    const broken = strategy === "threads" || strategy === "processes"
      ? w.broken[strategy]
      : undefined;
    if (broken !== undefined) {
      return new Verdict(
        "serial",
        () => `serial: ${why()}, but the ${strategy} pool could not start (${broken})`,
        1,
      );
    }
    return new Verdict(
      strategy,
      () => `${strategy}: ${why()}`,
      strategy === "serial" || strategy === "async" ? 1 : workers,
      regretMs,
      concurrency,
    );
  };
  if (w.nested) {
    return fixed(
      "serial",
      () => "inside a worker of another executor (nested pools would multiply workers)",
    );
  }
  if (w.isolate) return fixed("processes", () => "isolation was asked for (isolate: true)");
  // A large payload is never sent to processes, which would copy it to each: where a rule
  // below would pick processes, the cost model picks serial or threads (with share(), one
  // memory) instead.
  const large = w.inputBytes !== undefined && w.inputBytes >= LARGE_INPUT_BYTES;
  const note = large
    ? `; inputs of ~${megabytes(w.inputBytes!)} stay off processes (they would be copied)`
    : "";
  const can = CAPABILITIES[w.runtime];
  if (w.timeoutMs !== undefined && !can.stopBusyThread && !large) {
    return fixed(
      "processes",
      () => `timeoutMs ${w.timeoutMs} on ${can.label}, where only a process can stop a busy task`,
    );
  }
  if (w.maxMemoryMb !== undefined && !can.threadHeapCap && can.processHeapCap && !large) {
    return fixed(
      "processes",
      () => `maxMemoryMb ${w.maxMemoryMb} on ${can.label}, capped only in processes`,
    );
  }
  if (w.maxMemoryMb !== undefined && can.threadHeapCap) {
    return fixed("threads", () => `maxMemoryMb ${w.maxMemoryMb}, capped in ${can.label} threads`);
  }
  if (w.items !== undefined && w.items < w.minBatchSize) {
    return fixed("serial", () => `${count(w.items!, "item")} < minBatchSize ${w.minBatchSize}`);
  }
  const left = w.items === undefined ? UNKNOWN_ITEMS : w.items - w.done;
  const workers = Math.min(w.maxWorkers, Math.max(left, 1));
  if (w.perItemMs === undefined && w.profile === undefined) {
    return new Verdict(undefined, () => "measuring the first items", 1);
  }
  if (w.profile !== undefined && w.profile.busyShare < WAITING_SHARE) {
    return waiting(w, w.profile, left, workers, fixed);
  }
  const c = w.perItemMs ?? w.profile!.wallMs;
  const each = (): string =>
    `${
      w.items === undefined ? `~${UNKNOWN_ITEMS} items (length unknown)` : count(left, "item")
    } × ~${ms(c)} each${w.measured === "earlier calls" ? " (measured by earlier calls)" : ""}`;
  if (workers <= 1) {
    return fixed(
      "serial",
      () => `${each()}: one worker would do no better (maxWorkers ${w.maxWorkers})`,
    );
  }
  const serialMs = left * c;
  const busyMs = (left * (c + w.costs.transport.ms)) / workers + 2 * w.costs.roundTrip.ms;
  const start = w.costs.start.ms;
  if (w.warm.threads ? busyMs * MARGIN < serialMs : (start + busyMs) * MARGIN < serialMs) {
    return fixed(
      "threads",
      () =>
        `${each()} = ${ms(serialMs)} serially ≫ ${
          w.warm.threads ? "a warm pool" : `${ms(start)} pool start`
        } + ${ms(busyMs)} on ${count(workers, "thread")}${note}${figures(w.costs)}`,
      workers,
    );
  }
  // Serial, because of the pool's start alone? Then count what it cost (rent or buy).
  const gain = w.warm.threads ? 0 : serialMs - busyMs * MARGIN;
  if (gain > 0 && w.regretMs + gain >= start && w.broken.threads === undefined) {
    return fixed(
      "threads",
      () =>
        `${each()} = ${ms(serialMs)} serially; a warm pool would take ${ms(busyMs)}, and ` +
        `serial calls have already given up ${ms(w.regretMs)}: worth the ${ms(start)} pool start` +
        figures(w.costs),
      workers,
    );
  }
  return fixed(
    "serial",
    () =>
      `${each()} = ${ms(serialMs)} in all; ${count(workers, "thread")} would take ~${
        ms(busyMs + (w.warm.threads ? 0 : start))
      }${w.warm.threads ? "" : ` (${ms(start)} pool start)`}${note}${figures(w.costs)}`,
    1,
    Math.max(gain, 0),
  );
}

/**
 * The choice for a task that mostly waits: many items in flight, on the calling thread
 * (`"async"`: no start, no transport, but one thread computes every item's share) or on the
 * threads, several per thread (their computing spread over the workers, at a pool's cost).
 */
function waiting(
  w: Workload,
  { wallMs, busyShare }: Profile,
  left: number,
  workers: number,
  fixed: (
    strategy: Choice,
    why: () => string,
    workers?: number,
    regretMs?: number,
    concurrency?: number,
  ) => Decision,
): Decision {
  const busy = wallMs * busyShare;
  const split = (): string =>
    `${
      w.items === undefined ? `~${UNKNOWN_ITEMS} items (length unknown)` : count(left, "item")
    }, ~${ms(wallMs)} each, ${percent(busyShare)} of it computing${
      w.measured === "earlier calls" ? " (measured by earlier calls)" : ""
    }`;
  // Enough in flight per thread that its waits hide behind the others' computing.
  const hiding = Math.min(
    MAX_PER_THREAD,
    Math.max(2, Math.ceil((2 * wallMs) / Math.max(busy, 1e-3))),
  );
  // With a timeout each item goes alone (see `withTimeout`), so a thread has one in flight.
  const perThread = w.timeoutMs !== undefined ? 1 : w.concurrency ?? hiding;
  // The calling thread can hold as many waits as the threads could in all, without a timeout
  // (async times each item on its own, and keeps its concurrency under one); its computing is
  // priced below. "async"'s default is a floor, not a cap, when the caller set none.
  const inFlight = w.concurrency ??
    Math.max(ASYNC_CONCURRENCY, Math.min(Math.max(left, 1), Math.max(workers, 1) * hiding));
  // One thread: waves of `inFlight` waits (none shorter than one item's), and every item's
  // computing takes its turn.
  const asyncMs = Math.max(Math.ceil(left / inFlight) * wallMs, left * busy);
  const threadsMs = Math.max(
    Math.ceil(left / (workers * perThread)) * wallMs,
    (left * (busy + w.costs.transport.ms)) / workers,
  ) + 2 * w.costs.roundTrip.ms;
  const start = w.warm.threads ? 0 : w.costs.start.ms;
  // Async, only because the pool is cold? Then count what it cost (rent or buy, as for serial).
  const gain = workers > 1 && !w.warm.threads ? asyncMs - threadsMs * MARGIN : 0;
  const bought = gain > 0 && w.regretMs + gain >= start && w.broken.threads === undefined;
  if (workers > 1 && ((start + threadsMs) * MARGIN < asyncMs || bought)) {
    return fixed(
      "threads",
      () =>
        `${split()}: ${perThread} in flight on each of ${count(workers, "thread")} ~${
          ms(threadsMs)
        }${w.warm.threads ? "" : ` + ${ms(start)} pool start`} ≪ ~${
          ms(asyncMs)
        } on the calling thread, which would compute them all${
          bought && (start + threadsMs) * MARGIN >= asyncMs
            ? `; a warm pool saves ~${ms(gain)} on this call, and calls have already given up ${
              ms(w.regretMs)
            }: worth the pool start`
            : ""
        }${figures(w.costs)}`,
      workers,
      0,
      perThread,
    );
  }
  return fixed(
    "async",
    () =>
      `${split()}: ${inFlight} in flight on the calling thread ~${ms(asyncMs)}${
        workers > 1
          ? `; ${count(workers, "thread")} would take ~${ms(start + threadsMs)}${
            w.warm.threads ? "" : ` (${ms(start)} pool start)`
          }`
          : ""
      }`,
    1,
    Math.max(gain, 0),
    inFlight,
  );
}
