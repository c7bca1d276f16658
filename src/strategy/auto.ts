/**
 * Strategy `"auto"`: per call, choose serial, threads or processes from the workload, and say
 * why in words.
 *
 * ```
 * call ──► rules that need no measurement (nested, isolate, timeout on Deno, memory cap,
 *   │       too few items, a large input) ──► decision
 *   ▼
 * time per item known from an earlier call? ──no──► run the first chunk (one item) here,
 *   │                                               timed: its result is kept, not thrown away
 *   ▼
 * cost model: serial n·c  against  pool start (0 when warm) + n·(c + transport) / workers
 * ```
 *
 * The pool's start, round trip and transport are measured in this process (`Calibration`, in
 * chunking.ts), the constants standing in until then; the reason says which figures were which.
 *
 * Threads win only with a margin (`MARGIN`), so that auto never makes a small workload much
 * slower than serial. Processes are chosen for what only they give (isolation, hard timeouts
 * on Deno, memory caps), never for speed: they cost more than threads on every runtime.
 *
 * @module
 */

import type { RuntimeName } from "../runtime/mod.ts";
import { CAPABILITIES } from "../runtime/_capabilities.ts";
import type { Runner } from "../_pipeline.ts";
import type { ChunkResult, StrategyName } from "./types.ts";
import type { BuiltInRequest } from "./_builtin.ts";
import { Mean } from "../chunking.ts";
import type { Figure, PoolCosts } from "../chunking.ts";
import { SoftStop } from "../_abort.ts";

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

/** The probe keeps running items on the calling thread until this much time was measured. */
export const PROBE_MS = 1;

/** A concrete strategy auto can choose: a built-in one. */
type Choice = StrategyName;

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
}

class Verdict implements Decision {
  readonly strategy: Choice | undefined;
  readonly workers: number;
  readonly regretMs: number;
  #why: (() => string) | string;

  constructor(strategy: Choice | undefined, why: () => string, workers: number, regretMs = 0) {
    this.strategy = strategy;
    this.#why = why;
    this.workers = workers;
    this.regretMs = regretMs;
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
  ): Decision => {
    const broken = strategy === "serial" ? undefined : w.broken[strategy];
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
      strategy === "serial" ? 1 : workers,
      regretMs,
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
  if (w.perItemMs === undefined) {
    return new Verdict(undefined, () => "measuring the first items", 1);
  }
  const c = w.perItemMs;
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

/** `n` with thousands separators (by hand: `Intl` costs tens of µs on some runtimes). */
function grouped(n: number): string {
  const digits = String(Math.round(n));
  return digits.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
}

function count(n: number, what: string): string {
  return `${grouped(n)} ${what}${n === 1 ? "" : "s"}`;
}

function ms(value: number): string {
  if (value >= 100) return `${grouped(value)} ms`;
  if (value >= 0.001) return `${Number(value.toPrecision(2))} ms`;
  return "<0.001 ms";
}

/** The figures the cost model priced the pool with, each said to be measured or assumed. */
function figures({ start, roundTrip, transport }: PoolCosts): string {
  const how = (figure: Figure): string => figure.measured ? "(measured)" : "(assumed)";
  const us = transport.ms * 1000; // transport is a fraction of a µs per item
  return `; start ~${ms(start.ms)} ${how(start)}, round trip ~${ms(roundTrip.ms)} ${
    how(roundTrip)
  }, transport ~${us >= 0.001 ? `${Number(us.toPrecision(2))} µs` : "<0.001 µs"} per item ${
    how(transport)
  }`;
}

function megabytes(bytes: number): string {
  return `${Number((bytes / 1e6).toPrecision(3))} MB`;
}

/** What an auto runner needs from its executor. */
export interface AutoHost {
  /** The workload of this call, given what is measured so far (`sample`: an input, if seen). */
  workload(
    perItemMs: number | undefined,
    measured: Workload["measured"],
    done: number,
    sample?: unknown,
  ): Workload;
  /** The runner of a strategy, for this call (claims, telemetry and fallback included). */
  runner(choice: Choice): Runner;
  /** Told each time the choice is made or changed. */
  chosen(decision: Decision): void;
  /** Told what was measured on the calling thread, so that later calls need no probe. */
  measured(perItemMs: number): void;
}

/**
 * One call's runner under `"auto"`, and its probe: `map`, `imap` and `submit` run the call
 * through it; `explain()` runs the same probe with `probeOnly`, so what it says is what the
 * call does.
 *
 * - Without a measurement, chunks run on the calling thread, one at a time (concurrency 1),
 *   as the probe, until ~`PROBE_MS` of work was timed: a task's very first call is often
 *   100× slower than the rest, so one item would mislead. Their results are kept.
 * - Once chosen, chunks go to the choice. A serial choice made from the cost is checked again
 *   after every chunk with the running mean, so a few slow items later in the input (skewed
 *   work) still move the rest to threads.
 * - With `probeOnly`, a chunk that would go anywhere but the probe rejects with a `SoftStop`
 *   instead: the choice is made, nothing starts.
 */
export class AutoRunner implements Runner {
  readonly #host: AutoHost;
  readonly #probeOnly: boolean;
  #target: Runner | undefined;
  #serial: Runner | undefined;
  #decision: Decision | undefined;
  /** Whether the current choice came from the cost model (and may change). */
  #costed = false;
  #choosing: Promise<void> | undefined;
  /** What the chunks run on the calling thread measured. */
  readonly #probed = new Mean();

  constructor(host: AutoHost, estimateMs: number | undefined, probeOnly = false) {
    this.#host = host;
    this.#probeOnly = probeOnly;
    const decision = decide(
      host.workload(estimateMs, estimateMs === undefined ? undefined : "earlier calls", 0),
    );
    if (decision.strategy !== undefined) this.#choose(decision, estimateMs !== undefined);
  }

  get concurrency(): number {
    return this.#target?.concurrency ?? 1;
  }

  /** The choice, once made (with `probeOnly`, what the call would run on). */
  get decision(): Decision | undefined {
    return this.#decision;
  }

  run(request: BuiltInRequest): Promise<ChunkResult> {
    const probing = this.#target === undefined || (this.#costed && this.#target === this.#serial);
    if (this.#probeOnly && (!probing || this.#decision !== undefined)) {
      return Promise.reject(new SoftStop("auto has chosen; explain() runs nothing more"));
    }
    if (!probing) return this.#target!.run(request);
    if (this.#choosing !== undefined) {
      return this.#choosing.then(() => this.run(request));
    }
    // Probing, or serial by cost: run here, timed, and decide again.
    const serial = this.#serial ??= this.#host.runner("serial");
    const run = serial.run({ ...request, timed: true });
    this.#choosing = run.then(
      (result) => {
        this.#choosing = undefined;
        this.#probed.add(request.items.length, result.ms);
        const perItem = this.#probed.perItemMs;
        const decision = decide(
          // explain() throws its probe's results away: the call it describes runs them all.
          this.#host.workload(
            perItem,
            "probe",
            this.#probeOnly ? 0 : this.#probed.items,
            request.items[0],
          ),
        );
        if (this.#target === undefined) this.#host.measured(perItem);
        if (
          decision.strategy !== "serial" && decision.strategy !== undefined &&
          this.#probed.ms < PROBE_MS && this.#target === undefined
        ) {
          // Looks parallel, but on too little measured time: keep probing a little longer.
          return;
        }
        const chosen = decision.strategy === undefined
          ? new Verdict("serial", () => `serial: ${decision.reason}`, 1)
          : decision;
        if (this.#target === undefined || chosen.strategy !== "serial") {
          this.#choose(chosen, true);
        }
      },
      () => {
        this.#choosing = undefined;
        // The call fails with this chunk's error; later chunks, if any, stay here.
        if (this.#target === undefined) {
          this.#choose(new Verdict("serial", () => "serial: the first item failed", 1), false);
        }
      },
    );
    return run;
  }

  #choose(decision: Decision, costed: boolean): void {
    const strategy = decision.strategy!;
    this.#decision = decision;
    this.#costed = costed && strategy === "serial";
    this.#target = strategy === "serial"
      ? (this.#serial ??= this.#host.runner("serial"))
      : this.#probeOnly
      ? this.#serial
      : this.#host.runner(strategy);
    this.#host.chosen(decision);
  }
}
