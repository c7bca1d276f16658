/**
 * One call's route to its strategy: which strategy runs it and why (fixed, or chosen by
 * auto), every chunk claiming the shared handles it holds, measured when someone listens,
 * and, with `forceSerialOnFailure`, moved to serial when the strategy fails underneath it. At
 * the end the route reports what the call did (`CallReport`): to the stats, and to the listener.
 *
 * ```
 * pipeline ──► Route.run ──► claim handles ──► strategy.run ──► result / error
 *                 │            (pin)             │   ▲ onStart: queue wait, worker
 *                 │                              ▼   │
 *                 └── WorkerError + forceSerialOnFailure ──► serial (this chunk and the rest)
 * ```
 *
 * @module
 */

import type { Runner } from "./_pipeline.ts";
import { Pipeline } from "./_pipeline.ts";
import { ExecutorClosedError } from "./errors.ts";
import type { CallPin } from "./shared.ts";
import type { ChunkResult, Strategy } from "./strategy/types.ts";
import type { BuiltInRequest } from "./strategy/_builtin.ts";
import { CHUNK_MS, DESCRIBE, WORKERS } from "./strategy/_builtin.ts";
import { WorkerError, WorkerStartError } from "./errors.ts";
import { CallReport } from "./_call_report.ts";
import type { ChunkWatch } from "./_call_report.ts";
import type { Core } from "./_core.ts";
import type { CallKind, CallSettings } from "./_options.ts";
import { assumedCosts } from "./strategy/auto.ts";
import { AutoRunner } from "./strategy/_auto_runner.ts";
import type { Workload } from "./strategy/auto.ts";
import { estimateBytes } from "./strategy/_bytes.ts";
import { countOf } from "./_source.ts";
import { calibration } from "./_calibration.ts";
import { detect } from "./runtime/mod.ts";
import { SerialStrategy } from "./strategy/serial.ts";
import type { TaskSpec } from "./protocol.ts";

/** One call in progress. */
export class Route {
  /** Handles released while this call runs stay usable by it. */
  readonly pin: CallPin;
  /** The strategy running the call; set once chosen. */
  strategy = "serial";
  workers = 1;
  #reason: string | (() => string) = "";

  /** The executor's state. */
  readonly core: Core;
  /** Which method made the call. */
  readonly kind: CallKind;
  /** The runner the call's chunks go to: a strategy's, or auto's. */
  readonly runner: Runner;
  readonly #report: CallReport;
  #fellBack: Runner | undefined;
  #ended = false;
  readonly #probeOnly: boolean;
  /** The call's `concurrency`, if the caller set it (it wins over auto's). */
  readonly #concurrency: number | undefined;

  /**
   * Begins a call, counted by `close()`.
   *
   * @param core The executor's state.
   * @param kind Which method made it.
   * @param spec Its task.
   * @param items Its input (auto sizes the workload from it, without reading it).
   * @param call Its timeout and concurrency, as the caller set them.
   * @param probeOnly For `explain()`: auto's probe, and nothing after it.
   */
  constructor(
    core: Core,
    kind: CallKind,
    spec: TaskSpec,
    items: unknown,
    call: { readonly timeoutMs: number | undefined; readonly concurrency: number | undefined },
    probeOnly = false,
  ) {
    this.core = core;
    this.#concurrency = call.concurrency;
    this.kind = kind;
    this.#probeOnly = probeOnly;
    this.pin = core.shared.begin();
    this.#report = new CallReport(core.settings);
    core.begin();
    if (kind === "submit") core.submits++;
    try {
      this.runner = this.#route(spec, items, call.timeoutMs, probeOnly);
    } catch (error) {
      this.end(false);
      throw error;
    }
  }

  /** The runner of the fixed strategy, or one of auto's that chooses (measuring first, if need be). */
  #route(
    spec: TaskSpec,
    items: unknown,
    timeoutMs: number | undefined,
    probeOnly: boolean,
  ): Runner {
    const core = this.core;
    const { choice, choiceReason, forceSerialOnFailure } = core.settings;
    if (typeof choice === "object") {
      const own = choice as
        & Partial<Record<typeof DESCRIBE, () => string>>
        & Partial<Record<typeof WORKERS, () => number>>;
      const describe = own[DESCRIBE];
      this.choose(
        choice.name,
        describe === undefined ? choiceReason : () => describe.call(choice),
        own[WORKERS]?.() ?? choice.concurrency,
      );
      return this.#runnerOf(choice);
    }
    if (choice !== "auto") {
      const broken = choice === "threads" || choice === "processes"
        ? core.broken[choice]
        : undefined;
      if (broken !== undefined && forceSerialOnFailure) {
        // The pool could not start before; with forceSerialOnFailure, do not pay for it again.
        this.choose(
          "serial",
          `serial: the ${choice} pool could not start (${broken}); forceSerialOnFailure`,
          1,
        );
        return this.#runnerOf(core.builtIn("serial"));
      }
      const strategy = core.builtIn(choice);
      // Workers: none on the calling thread, however many items are in flight there.
      const workers = strategy instanceof SerialStrategy ? 1 : strategy.concurrency;
      this.choose(strategy.name, choiceReason, workers);
      return this.#runnerOf(strategy);
    }
    // Submits running side by side are, together, a batch: count them as its items.
    const count = this.kind === "submit" ? core.submits : countOf(items);
    const first = Array.isArray(items) ? items[0] : undefined;
    return new AutoRunner(
      {
        measured: (perItemMs) => core.estimates.set(spec, perItemMs),
        profiled: (profile) => core.estimates.setProfile(spec, profile),
        workload: (perItemMs, measured, done, sample, profile) =>
          workload(core, count, sample ?? first, timeoutMs, perItemMs, measured, done, {
            profile,
            concurrency: this.#concurrency,
          }),
        runner: (name, concurrency) => this.#runnerOf(core.builtIn(name), concurrency),
        chosen: (decision) => {
          if (!probeOnly) core.regretMs += decision.regretMs;
          this.choose(decision.strategy!, () => decision.reason, decision.workers);
        },
      },
      core.estimates.of(spec),
      core.estimates.profile(spec),
      probeOnly,
    );
  }

  /**
   * Resolves once auto has chosen, if the call ran only its probe (see `AutoRunner.conclude`),
   * so that its reason says what it measured; at once for any other call.
   */
  concluded(): Promise<void> {
    return this.runner instanceof AutoRunner ? this.runner.conclude() : Promise.resolve();
  }

  /** Why the strategy, in words; formatted on first read (most calls never look). */
  get reason(): string {
    if (typeof this.#reason === "function") this.#reason = this.#reason();
    return this.#reason;
  }

  /** Records the strategy and its reason; with `log=1`, prints them. */
  choose(strategy: string, reason: string | (() => string), workers: number): void {
    this.strategy = strategy;
    this.#reason = reason;
    this.workers = workers;
    if (this.core.settings.log && !this.#probeOnly) {
      console.error(`fanout: ${this.kind}: ${this.reason}`);
    }
  }

  /**
   * The runner of `strategy` for this call. Its concurrency (the caller's, else `chosen`, auto's)
   * is what the calling-thread strategies keep in flight as chunks, and what a worker runs at
   * once of each chunk.
   */
  #runnerOf(strategy: Strategy, chosen?: number): Runner {
    this.#report.uses(strategy);
    const direct = (request: BuiltInRequest): Promise<ChunkResult> => this.#run(strategy, request);
    const wanted = this.#concurrency ?? chosen;
    const here = strategy instanceof SerialStrategy;
    const concurrency = here ? wanted ?? strategy.concurrency : strategy.concurrency;
    const perChunk = here ? 1 : wanted ?? 1;
    const chunkMs = (strategy as Partial<Record<typeof CHUNK_MS, number>>)[CHUNK_MS];
    if (!this.core.settings.forceSerialOnFailure || here) {
      return { concurrency, perChunk, onCaller: here, chunkMs, run: direct };
    }
    const fellBack = (): Runner | undefined => this.#fellBack;
    return {
      get concurrency(): number {
        return fellBack()?.concurrency ?? concurrency;
      },
      get perChunk(): number {
        return fellBack()?.perChunk ?? perChunk;
      },
      get onCaller(): boolean {
        return fellBack()?.onCaller ?? here;
      },
      get chunkMs(): number | undefined {
        return fellBack() === undefined ? chunkMs : undefined;
      },
      run: (request) => {
        if (this.#fellBack !== undefined) return this.#fellBack.run(request);
        return direct(request).catch((error: unknown) => {
          if (!(error instanceof WorkerError) || request.signal?.aborted) throw error;
          this.#fallBack(strategy, error, wanted);
          return this.#fellBack!.run(request);
        });
      },
    };
  }

  /** Moves the rest of the call to serial, keeping as many in flight as each worker had. */
  #fallBack(strategy: Strategy, error: unknown, concurrency: number | undefined): void {
    if (this.#fellBack !== undefined) return;
    const why = error instanceof Error ? error.message : String(error);
    if (error instanceof WorkerStartError && strategy.name !== "serial") {
      this.core.broken[strategy.name as "threads" | "processes"] = why;
    }
    this.#report.fallbacks++;
    const serial = this.#runnerOf(this.core.builtIn("serial"), concurrency);
    this.#fellBack = serial;
    const reason = `serial: fell back from ${strategy.name}: ${why}`;
    this.#report.tell({ type: "fallback", from: strategy.name, reason, error });
    this.choose("serial", reason, 1);
  }

  #run(strategy: Strategy, request: BuiltInRequest): Promise<ChunkResult> {
    let shared;
    try {
      shared = this.core.shared.claim(this.pin, request.base, request.items);
    } catch (error) {
      return Promise.reject(error);
    }
    let sent: BuiltInRequest = shared === undefined ? request : { ...request, shared };
    let watch: ChunkWatch | undefined;
    if (this.#report.listening) {
      watch = this.#report.watch();
      sent = { ...sent, timed: true, onStart: watch.onStart.bind(watch) };
    }
    const items = request.items.length;
    const mine = strategy === this.core.settings.choice;
    // The first timed chunks on each pool measure what a chunk costs besides its items, for
    // the process (`Calibration`); later chunks, and untimed ones, cost a test or two here.
    const sample = sent.timed === true && !mine && request.single !== true
      ? calibration.sample(strategy, items, sent.onStart)
      : undefined;
    if (sample !== undefined) sent = { ...sent, onStart: sample.onStart };
    const run = strategy.run(mine ? publicPart(sent) : sent);
    if (shared !== undefined) {
      const unclaim = (): void => this.core.shared.unclaim(shared);
      run.then(unclaim, unclaim);
    }
    if (sample !== undefined) run.then(sample.done, noop);
    // Without a listener, no promise reaction on the hot path.
    this.#report.ran(run, request.base, items, watch);
    return run;
  }

  /** The call settled (with `error` when it failed): count it, and tell the listener. */
  end(ok: boolean, error?: unknown): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#report.settled(error);
    const core = this.core;
    core.shared.end(this.pin);
    if (this.kind === "submit") core.submits--;
    core.end();
    if (this.#probeOnly) return; // explain() ran a probe, not a call.
    this.#report.report(core.stats, {
      kind: this.kind,
      strategy: this.strategy,
      reason: this.#report.listening ? this.reason : "",
      ok,
      workers: this.workers,
    });
  }
}

/** Begins a call of `map` or `imap` (or `explain`'s probe): its route and pipeline, counted by `close()`. */
export function startCall(
  core: Core,
  kind: CallKind,
  spec: TaskSpec,
  items: unknown,
  call: CallSettings,
  probeOnly = false,
): Pipeline {
  if (core.closed) throw new ExecutorClosedError();
  const route = new Route(core, kind, spec, items, call, probeOnly);
  try {
    return new Pipeline(route, spec, items, call, core.estimates);
  } catch (error) {
    route.end(false, error);
    throw error;
  }
}

/** What "auto" decides from, for one call. */
function workload(
  core: Core,
  items: number | undefined,
  sample: unknown,
  timeoutMs: number | undefined,
  perItemMs: number | undefined,
  measured: Workload["measured"],
  done: number,
  waits: Pick<Workload, "profile" | "concurrency">,
): Workload {
  const settings = core.settings;
  const runtime = detect().name;
  core.calibrate();
  return {
    runtime,
    maxWorkers: settings.maxWorkers,
    items,
    done,
    minBatchSize: settings.minBatchSize,
    perItemMs,
    measured,
    profile: waits.profile,
    concurrency: waits.concurrency,
    inputBytes: settings.taskSizeHintBytes ??
      (sample === undefined ? undefined : estimateBytes(sample)),
    isolate: settings.isolate,
    timeoutMs,
    maxMemoryMb: settings.pool.maxMemoryMb,
    warm: { threads: core.warm("threads"), processes: core.warm("processes") },
    costs: calibration.costs("threads", assumedCosts(runtime)),
    nested: core.nested,
    broken: { ...core.broken },
    regretMs: core.regretMs,
  };
}

/** What a user's own strategy gets of a chunk: the public `ChunkRequest`, nothing of the pool. */
function publicPart(request: BuiltInRequest): BuiltInRequest {
  const { task, base, items, signal, timeoutMs, seed, concurrency } = request;
  return { task, base, items, signal, timeoutMs, seed, concurrency };
}

function noop(): void {}
