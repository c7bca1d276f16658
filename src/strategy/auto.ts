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
 * Threads win only with a margin (`MARGIN`), so that auto never makes a small workload much
 * slower than serial. Processes are chosen for what only they give (isolation, hard timeouts
 * on Deno, memory caps), never for speed: they cost more than threads on every runtime.
 *
 * @module
 */

import type { RuntimeName } from "../runtime/mod.ts";
import type { Runner } from "../_dispatch.ts";
import type { ChunkRequest, ChunkResult } from "./types.ts";

/** Start of a pool plus its first task, in ms, per runtime (bench/run.ts part d, processes.ts p2). */
export const START_MS: Record<"threads" | "processes", Record<RuntimeName, number>> = {
  threads: { deno: 25, bun: 8, node: 40 },
  processes: { deno: 30, bun: 10, node: 45 },
};

/** Transport per item when items go in chunks, in ms (bench/run.ts part b). */
export const TRANSPORT_MS = { threads: 0.003, processes: 0.02 } as const;

/** Threads must beat serial by this factor. */
export const MARGIN = 1.25;

/** Inputs from this size up go to threads (where `share()` avoids copies), never processes. */
export const LARGE_INPUT_BYTES = 10_000_000;

/** Items assumed for an input of unknown length. */
export const UNKNOWN_ITEMS = 1000;

/** A concrete strategy auto can choose. */
export type Choice = "serial" | "threads" | "processes";

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
  /** Whether this executor runs inside a fanout worker. */
  nested: boolean;
  /** Pools that could not start, with why. */
  broken: { threads?: string; processes?: string };
}

/** What auto chose, and why. */
export interface Decision {
  /** The strategy; `undefined` while the time per item must be measured first. */
  strategy: Choice | undefined;
  /** Why, in words. */
  reason: string;
  /** Workers it can use at once. */
  workers: number;
}

/**
 * Chooses a strategy for a call.
 *
 * @returns The decision, or one with `strategy: undefined` when a probe must measure first.
 */
export function decide(w: Workload): Decision {
  const fixed = (strategy: Choice, reason: string, workers = w.maxWorkers): Decision => {
    if (strategy !== "serial" && w.broken[strategy] !== undefined) {
      return {
        strategy: "serial",
        reason: `serial: ${reason}, but the ${strategy} pool could not start (${
          w.broken[strategy]
        })`,
        workers: 1,
      };
    }
    return {
      strategy,
      reason: `${strategy}: ${reason}`,
      workers: strategy === "serial" ? 1 : workers,
    };
  };
  if (w.nested) {
    return fixed(
      "serial",
      "inside a worker of another executor (nested pools would multiply workers)",
    );
  }
  if (w.isolate) return fixed("processes", "isolation was asked for (isolate: true)");
  if (w.timeoutMs !== undefined && w.runtime === "deno") {
    return fixed(
      "processes",
      `timeoutMs ${w.timeoutMs} on Deno, where only a process can stop a busy task`,
    );
  }
  if (w.maxMemoryMb !== undefined && w.runtime === "deno") {
    return fixed("processes", `maxMemoryMb ${w.maxMemoryMb} on Deno, capped only in processes`);
  }
  if (w.maxMemoryMb !== undefined && w.runtime === "node") {
    return fixed("threads", `maxMemoryMb ${w.maxMemoryMb}, capped in Node threads`);
  }
  if (w.items !== undefined && w.items < w.minBatchSize) {
    return fixed("serial", `${count(w.items, "item")} < minBatchSize ${w.minBatchSize}`);
  }
  const left = w.items === undefined ? UNKNOWN_ITEMS : w.items - w.done;
  const workers = Math.min(w.maxWorkers, Math.max(left, 1));
  if (w.inputBytes !== undefined && w.inputBytes >= LARGE_INPUT_BYTES && workers > 1) {
    return fixed(
      "threads",
      `inputs of ~${megabytes(w.inputBytes)} go to threads (share() avoids copies; processes ` +
        `would copy them)`,
      workers,
    );
  }
  if (w.perItemMs === undefined) {
    return { strategy: undefined, reason: "measuring the first item", workers: 1 };
  }
  const c = w.perItemMs;
  const each = `${
    w.items === undefined ? `~${UNKNOWN_ITEMS} items (length unknown)` : count(left, "item")
  } × ~${ms(c)} each${w.measured === "earlier calls" ? " (measured by earlier calls)" : ""}`;
  if (workers <= 1) {
    return fixed("serial", `${each}: one worker would do no better (maxWorkers ${w.maxWorkers})`);
  }
  const serialMs = left * c;
  const start = w.warm.threads ? 0 : START_MS.threads[w.runtime];
  const parallelMs = start + (left * (c + TRANSPORT_MS.threads)) / workers;
  if (parallelMs * MARGIN < serialMs) {
    const startText = w.warm.threads ? "a warm pool" : `${ms(start)} pool start`;
    return fixed(
      "threads",
      `${each} = ${ms(serialMs)} serially ≫ ${startText} + ${ms(parallelMs - start)} on ` +
        `${count(workers, "thread")}`,
      workers,
    );
  }
  const startText = w.warm.threads ? "" : ` (${ms(start)} pool start)`;
  return fixed(
    "serial",
    `${each} = ${ms(serialMs)} in all; ${count(workers, "thread")} would take ~${
      ms(parallelMs)
    }${startText}`,
  );
}

function count(n: number, what: string): string {
  return `${n.toLocaleString("en-US")} ${what}${n === 1 ? "" : "s"}`;
}

function ms(value: number): string {
  if (value >= 100) return `${Math.round(value).toLocaleString("en-US")} ms`;
  if (value >= 1) return `${Number(value.toPrecision(2))} ms`;
  if (value >= 0.001) return `${Number(value.toPrecision(2))} ms`;
  return "<0.001 ms";
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
  /** Told once the choice is made. */
  chosen(decision: Decision): void;
  /** Told what the probe measured, so that later calls of the task need no probe. */
  measured(perItemMs: number): void;
}

/**
 * One call's runner under `"auto"`: the first chunk either goes straight to a choice made
 * without measuring, or runs serially as the probe; every later chunk waits for the choice.
 * Until then its concurrency is 1, so the dispatch sends only the probe.
 */
export class AutoRunner implements Runner {
  readonly #host: AutoHost;
  #target: Runner | undefined;
  #choosing: Promise<void> | undefined;

  constructor(host: AutoHost, estimateMs: number | undefined) {
    this.#host = host;
    const decision = decide(
      host.workload(estimateMs, estimateMs === undefined ? undefined : "earlier calls", 0),
    );
    if (decision.strategy !== undefined) this.#choose(decision);
  }

  get concurrency(): number {
    return this.#target?.concurrency ?? 1;
  }

  run(request: ChunkRequest): Promise<ChunkResult> {
    if (this.#target !== undefined) return this.#target.run(request);
    if (this.#choosing !== undefined) {
      return this.#choosing.then(() => this.#target!.run(request));
    }
    const probe = this.#host.runner("serial").run({ ...request, timed: true });
    this.#choosing = probe.then(
      (result) => {
        const items = request.items.length;
        const perItem = items > 0 && Number.isFinite(result.ms) ? result.ms / items : 0;
        this.#host.measured(perItem);
        const decision = decide(this.#host.workload(perItem, "probe", items, request.items[0]));
        this.#choose(
          decision.strategy === undefined ? { ...decision, strategy: "serial" } : decision,
        );
      },
      () => {
        // The call fails with the probe's error; later chunks, if any, stay here.
        this.#choose({ strategy: "serial", reason: "serial: the first item failed", workers: 1 });
      },
    );
    return probe;
  }

  #choose(decision: Decision): void {
    this.#target = this.#host.runner(decision.strategy!);
    this.#host.chosen(decision);
  }
}

/**
 * Roughly how many bytes structured clone would write for `value`: exact for buffers and
 * typed arrays, close for strings and numbers, a few bytes for a `share()` handle (that is the
 * point of it). Stops counting past `LARGE_INPUT_BYTES`, so a huge input costs little to size.
 */
export function estimateBytes(value: unknown): number {
  let total = 0;
  const stack: unknown[] = [value];
  const seen = new Set<object>();
  while (stack.length > 0 && total < LARGE_INPUT_BYTES) {
    const v = stack.pop();
    if (typeof v === "string") total += 2 * v.length + 4;
    else if (typeof v !== "object" || v === null) total += 9;
    else if (seen.has(v)) total += 4;
    else {
      seen.add(v);
      if (ArrayBuffer.isView(v)) total += v.byteLength + 16;
      else if (v instanceof ArrayBuffer || v instanceof SharedArrayBuffer) {
        total += v.byteLength + 8;
      } else if (typeof (v as Record<string, unknown>)["fanout.shared"] === "number") total += 32;
      else if (v instanceof Map) { for (const [k, x] of v) stack.push(k, x); }
      else if (v instanceof Set) { for (const x of v) stack.push(x); }
      else if (Array.isArray(v)) { for (const x of v) stack.push(x); }
      else {
        for (const key of Object.keys(v)) {
          total += key.length + 2;
          stack.push((v as Record<string, unknown>)[key]);
        }
      }
    }
  }
  return total;
}
