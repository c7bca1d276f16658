/**
 * The runner of one call under `"auto"`: its probe on the calling thread, then the choice that
 * `decide()` (auto.ts) makes from what the probe measured, and the runner of that choice.
 *
 * @module
 */

import type { Runner } from "../_pipeline.ts";
import type { ChunkResult } from "./types.ts";
import type { BuiltInRequest, BuiltInResult } from "./_builtin.ts";
import { Mean } from "../chunking.ts";
import type { Profile } from "../chunking.ts";
import { wakeCost } from "../_busy.ts";
import { SoftStop } from "../_abort.ts";
import {
  decide,
  PROBE_CHUNKS,
  PROBE_MS,
  PROFILE_SAMPLES,
  REVISE_MS,
  Verdict,
  WAITING_PROBE_MS,
  WAITING_SAMPLES,
  WAITING_SHARE,
} from "./auto.ts";
import type { Choice, Decision, Workload } from "./auto.ts";

/** What an auto runner needs from its executor. */
export interface AutoHost {
  /** The workload of this call, given what is measured so far (`sample`: an input, if seen). */
  workload(
    perItemMs: number | undefined,
    measured: Workload["measured"],
    done: number,
    sample?: unknown,
    profile?: Profile,
  ): Workload;
  /**
   * The runner of a strategy, for this call (claims, telemetry and fallback included), with
   * `concurrency` unless the caller set one.
   */
  runner(choice: Choice, concurrency?: number): Runner;
  /** Told each time the choice is made or changed. */
  chosen(decision: Decision): void;
  /** Told what was measured on the calling thread, so that later calls need no probe. */
  measured(perItemMs: number): void;
  /** Told how a task that awaits spends its time, so that later calls need no probe. */
  profiled(profile: Profile): void;
}

/**
 * One call's runner under `"auto"`, and its probe: `map`, `imap` and `submit` run the call
 * through it; `explain()` runs the same probe with `probeOnly`, so what it says is what the
 * call does.
 *
 * - Without a measurement, chunks run on the calling thread, one at a time (concurrency 1),
 *   as the probe. It prices the task by the warm part of what it measured (`Mean.warm`): a
 *   task's first calls are often 100× slower than the rest, so its first items would mislead.
 *   Serial is chosen as soon as that says so; a parallel strategy once it rests on `PROBE_MS`
 *   of measured work, over `PROBE_CHUNKS` chunks. Their results are kept.
 * - Once chosen, chunks go to the choice. A serial choice made from the cost is checked again
 *   after every chunk with the warm mean so far, so a few slow items later in the input (skewed
 *   work) still move the rest to threads; once that rests on `REVISE_MS`, so that noise does not.
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
  /**
   * What this call gave up by its serial choice (counted in the host's `regretMs` at once, for
   * all its items): a check of that choice prices the items left itself, so it takes this off.
   */
  #regretMs = 0;
  #choosing: Promise<void> | undefined;
  /** What the chunks run on the calling thread measured. */
  readonly #probed = new Mean();
  /** Of the probed chunks whose tasks awaited: how many, and the least busy share of them. */
  #waited = 0;
  #leastShare = 1;
  /** The wall time per item of that least busy chunk. */
  #leastWall = 0;
  /** A profile of earlier calls not settled yet, probed again (see `PROFILE_SAMPLES`). */
  #earlier: Profile | undefined;
  /** An input the probe ran, for the workload's size of one. */
  #sample: unknown;

  /**
   * @param host The call's side of the executor.
   * @param estimateMs The task's time per item from earlier calls, if known.
   * @param profile How its items spent their time, if an earlier call's probe found it awaits.
   * @param probeOnly For `explain()`: the probe, and nothing after it.
   */
  constructor(
    host: AutoHost,
    estimateMs: number | undefined,
    profile?: Profile,
    probeOnly = false,
  ) {
    this.#host = host;
    this.#probeOnly = probeOnly;
    if (profile !== undefined && profile.samples < PROFILE_SAMPLES) {
      // Not settled yet: probe again, and keep the least busy share of every probe so far.
      this.#earlier = profile;
      this.#leastShare = profile.busyShare;
      this.#leastWall = profile.wallMs;
      estimateMs = undefined;
      profile = undefined;
    }
    const known = estimateMs !== undefined || profile !== undefined;
    const decision = decide(
      host.workload(estimateMs, known ? "earlier calls" : undefined, 0, undefined, profile),
    );
    if (decision.strategy !== undefined) this.#choose(decision, known);
  }

  get concurrency(): number {
    return this.#target?.concurrency ?? 1;
  }

  get perChunk(): number {
    return this.#target?.perChunk ?? 1;
  }

  get onCaller(): boolean {
    return this.#target?.onCaller ?? true;
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
    const run = serial.run({ ...request, timed: true, busy: this.#target === undefined });
    this.#choosing = run.then(
      async (result) => {
        const { busyMs, awaited } = result as BuiltInResult;
        // A wait's own wake-up is not the task's computing (see `wakeCost`).
        const wakeMs = awaited === true ? await wakeCost() : 0;
        this.#choosing = undefined;
        this.#probed.add(request.items.length, result.ms);
        this.#sample = request.items[0];
        const first = this.#target === undefined;
        if (awaited === true && busyMs !== undefined && result.ms > 0) {
          // It awaits: probe a few chunks, and keep the least busy share (noise, and a first
          // call's one-time costs, only ever add to it). What is known so far is kept at once,
          // so that a short call (a submit) leaves it for the next.
          this.#waited++;
          const share = Math.max(0, busyMs - wakeMs) / result.ms;
          if (this.#waited === 1 && this.#earlier === undefined || share <= this.#leastShare) {
            // The least disturbed chunk: its share, and its wall time (a first call's is far
            // slower, and would stand for every item).
            this.#leastShare = share;
            this.#leastWall = result.ms / request.items.length;
          }
          if (first) this.#remember();
          const more = request.single !== true && this.#waited < WAITING_SAMPLES &&
            (this.#waited < 2 || this.#probed.ms < WAITING_PROBE_MS);
          if (more && first) return;
        }
        this.#decideNow(false);
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

  /** How the probed items spent their time, if any of them awaited. */
  #profile(): Profile | undefined {
    if (this.#waited === 0) return undefined;
    return {
      wallMs: this.#leastWall,
      busyShare: this.#leastShare,
      samples: this.#waited + (this.#earlier?.samples ?? 0),
    };
  }

  /** Keeps what the probe measured for the task's later calls (which find it warm). */
  #remember(): void {
    this.#host.measured(this.#probed.warm.perItemMs);
    const profile = this.#profile();
    if (profile !== undefined) this.#host.profiled(profile);
  }

  /**
   * Decides from what the probe measured, or checks a serial choice again; unless `final`, a
   * parallel choice waits for `PROBE_MS` of warm measured work.
   */
  #decideNow(final: boolean): void {
    const warm = this.#probed.warm;
    const first = this.#target === undefined;
    if (!first && warm.ms < REVISE_MS) return;
    const profile = this.#profile();
    const workload = this.#host.workload(
      warm.perItemMs,
      "probe",
      // explain() throws its probe's results away: the call it describes runs them all.
      this.#probeOnly ? 0 : this.#probed.items,
      this.#sample,
      profile,
    );
    // Checked again, the items left are priced here: this call's own loss is not one of the
    // earlier calls' (it would count twice, and start the pool on its own).
    const regretMs = first ? workload.regretMs : Math.max(0, workload.regretMs - this.#regretMs);
    const decision = decide(first ? workload : { ...workload, regretMs });
    if (first) this.#remember();
    // A task that mostly awaits is priced from its profile, which its own samples settle (see
    // `WAITING_SAMPLES`), not from a time per item.
    const measuredMs = profile !== undefined && profile.busyShare < WAITING_SHARE
      ? this.#probed.ms
      : warm.ms;
    if (
      !final && first && decision.strategy !== "serial" && decision.strategy !== undefined &&
      (measuredMs < PROBE_MS || this.#probed.chunks < PROBE_CHUNKS)
    ) {
      // Looks parallel, but on too little warm measured time: keep probing a little longer.
      return;
    }
    const chosen = decision.strategy === undefined
      ? new Verdict("serial", () => `serial: ${decision.reason}`, 1)
      : decision;
    if (this.#target === undefined || chosen.strategy !== "serial") this.#choose(chosen, true);
  }

  /**
   * The call has run every item: if the probe took them all before a choice was made (a short
   * input of a task that awaits), choose now from what it measured, so that the call (and
   * `explain()`) says what a longer one would do.
   */
  async conclude(): Promise<void> {
    while (this.#choosing !== undefined) await this.#choosing;
    if (this.#decision === undefined && this.#probed.items > 0) this.#decideNow(true);
  }

  #choose(decision: Decision, costed: boolean): void {
    const strategy = decision.strategy!;
    this.#decision = decision;
    this.#costed = costed && strategy === "serial";
    this.#regretMs = decision.regretMs;
    this.#target = strategy === "serial"
      ? (this.#serial ??= this.#host.runner("serial"))
      : this.#probeOnly
      ? this.#serial
      : this.#host.runner(strategy, decision.concurrency);
    this.#host.chosen(decision);
  }
}
