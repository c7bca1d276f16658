/**
 * The running stage of a batch of `runCommands`: launches the planned jobs (at most
 * `maxWorkers` at once), runs each attempt as a child process, retries, halts, stops, and
 * hands every result to a {@linkcode Sink} once its progress call settled.
 *
 * Every job's result goes through the progress queue before it is delivered, so a batch ends
 * only after the last progress call settled, and no call can come after it. Skipped jobs (after
 * a halt) are delivered last, without a progress call: they never ran.
 *
 * @module
 */

import { openSpawner } from "./_launch.ts";
import type { Spawner } from "./_launch.ts";
import type { ChildExit, ChildHandle } from "../runtime/mod.ts";
import { killGently } from "../runtime/_kill.ts";
import { onAbort } from "../_abort.ts";
import type { CommandProgress, JobResult } from "../run_commands.ts";
import { estimateEta } from "../progress.ts";
import { JobKilledError, JobSkippedError } from "./errors.ts";
import { Capture } from "./_capture.ts";
import type { Plan, PlannedJob } from "./_plan.ts";
import { Deque } from "../_deque.ts";
import { formatCmd, haltCause, halts, isSuccess, startError } from "./_outcome.ts";

/** Why a batch stopped early: an abort, a throwing `onProgress`, or a left loop (no error). */
export interface Stop {
  readonly error: unknown;
}

/** A job's output as it came, bytes not decoded (the `fanout` command passes it on as is). */
export interface JobOutput {
  readonly stdout: Uint8Array;
  readonly stderr: Uint8Array;
}

/** Where a batch hands its results. */
export interface Sink {
  /** A job's result, once its progress call (if any) settled, with its output's bytes. */
  result(result: JobResult, output: JobOutput): void;
  /** Called once, when nothing runs any more: without `stop` when every job was delivered. */
  end(stop: Stop | undefined): void;
}

/** Why a running command is being killed. */
type KillReason = "timeout" | "halt" | "stop";

/** One started process of a job. */
class Run {
  #why: KillReason | undefined;
  #exited = false;
  readonly #handle: ChildHandle;
  readonly #graceMs: number;

  constructor(handle: ChildHandle, graceMs: number) {
    this.#handle = handle;
    this.#graceMs = graceMs;
    handle.exited.then(() => {
      this.#exited = true;
    });
  }

  /** Why it was killed, if it was killed before it exited. */
  get why(): KillReason | undefined {
    return this.#why;
  }

  /** SIGTERM now, SIGKILL after the grace; nothing once it exited or a kill is under way. */
  kill(why: KillReason): void {
    if (this.#why !== undefined || this.#exited) return;
    this.#why = why;
    killGently(this.#handle, this.#graceMs);
  }
}

/** One attempt's outcome. */
interface Attempt {
  readonly exit: ChildExit;
  readonly error: Error | undefined;
  readonly stdout: Capture;
  readonly stderr: Capture;
  readonly timedOut: boolean;
  readonly killedByHalt: boolean;
}

/** A finished job waiting for its progress call. */
interface Finished {
  readonly result: JobResult;
  readonly output: JobOutput;
  readonly progress: CommandProgress;
}

const NO_OUTPUT: JobOutput = { stdout: new Uint8Array(0), stderr: new Uint8Array(0) };

/** One batch: launches jobs, retries, halts, stops, and reports through a `Sink`. */
export class Batch {
  readonly #plan: Plan;
  readonly #sink: Sink;
  #next = 0;
  /** Jobs launched and not finished (spawning, running, or between attempts). */
  #active = 0;
  readonly #runs = new Set<Run>();
  /** Starts the jobs; the launcher, if it is used, starts with the first job. */
  readonly #spawner: Spawner = openSpawner();
  #done = 0;
  #failed = 0;
  /** Which of the `maxWorkers` slots run a job (`{%}` of the `fanout` command). */
  readonly #slots: boolean[] = [];
  readonly #started = performance.now();
  #halt: JobResult | undefined;
  #stop: Stop | undefined;
  readonly #progress: Deque<Finished> = new Deque();
  #pumping = false;
  #ended = false;
  readonly #endedPromise: Promise<void>;
  #resolveEnded!: () => void;
  /** Removes the abort listener of `start()`, once the batch ended. */
  #stopListening: (() => void) | undefined;

  /** The job whose result halted the batch, if one did. */
  get haltedBy(): JobResult | undefined {
    return this.#halt;
  }

  constructor(plan: Plan, sink: Sink) {
    this.#plan = plan;
    this.#sink = sink;
    this.#endedPromise = new Promise((resolve) => {
      this.#resolveEnded = resolve;
    });
  }

  start(): void {
    const signal = this.#plan.signal;
    if (signal?.aborted) {
      this.#stop = { error: signal.reason };
    } else {
      this.#stopListening = onAbort(signal, () => this.#cancel({ error: signal!.reason }));
      this.#launch();
    }
    this.#settleIfIdle();
  }

  /** Stops the batch without an error (a left loop) and waits until nothing runs. */
  cancel(): Promise<void> {
    this.#cancel({ error: undefined });
    return this.#endedPromise;
  }

  #cancel(stop: Stop): void {
    if (this.#ended || this.#stop !== undefined) return;
    this.#stop = stop;
    for (const run of this.#runs) run.kill("stop");
    this.#settleIfIdle();
  }

  #launch(): void {
    while (
      this.#stop === undefined && this.#halt === undefined &&
      this.#active < this.#plan.maxWorkers && this.#next < this.#plan.jobs.length
    ) {
      const index = this.#next++;
      this.#active++;
      let slot = this.#slots.indexOf(false);
      if (slot === -1) slot = this.#slots.length;
      this.#slots[slot] = true;
      this.#runJob(index, slot + 1).then(
        ([result, output]) => {
          this.#slots[slot] = false;
          this.#finish(result, output);
        },
        // Not expected: every failure of a job is caught into its result.
        (error) => {
          this.#active--;
          this.#cancel({ error });
          this.#settleIfIdle();
        },
      );
    }
  }

  async #runJob(index: number, slot: number): Promise<[JobResult, JobOutput]> {
    const planned = this.#plan.jobs[index];
    const job = this.#plan.prepare?.(planned, index, slot) ?? planned;
    const startedAt = Date.now();
    const started = performance.now();
    let attempts = 0;
    let attempt: Attempt;
    for (;;) {
      attempts++;
      attempt = await this.#attempt(job);
      if (
        succeeded(attempt) || attempts > this.#plan.retries ||
        this.#stop !== undefined || this.#halt !== undefined
      ) break;
    }
    const error = attempt.killedByHalt
      ? new JobKilledError(
        index,
        this.#halt!.index,
        `Job ${index} (${formatCmd(job.cmd)}) was killed: ${haltCause(this.#halt!)}`,
      )
      : attempt.error;
    const result: JobResult = {
      index,
      cmd: job.cmd,
      slot,
      startedAt,
      exitCode: attempt.exit.code,
      signal: attempt.exit.signal,
      stdout: attempt.stdout.text(),
      stderr: attempt.stderr.text(),
      truncated: attempt.stdout.truncated || attempt.stderr.truncated,
      durationMs: performance.now() - started,
      timedOut: attempt.timedOut,
      error,
      attempts,
    };
    return [result, { stdout: attempt.stdout.bytes(), stderr: attempt.stderr.bytes() }];
  }

  async #attempt(job: PlannedJob): Promise<Attempt> {
    const stdout = new Capture(this.#plan.maxOutputBytes);
    const stderr = new Capture(this.#plan.maxOutputBytes);
    let handle: ChildHandle;
    try {
      handle = await this.#spawner.spawn({
        cmd: job.argv,
        cwd: job.cwd,
        env: job.env,
        input: job.stdin,
        onStdout: (chunk) => stdout.push(chunk),
        onStderr: (chunk) => stderr.push(chunk),
        maxOutputBytes: this.#plan.maxOutputBytes,
      });
    } catch (error) {
      const exit = { code: null, signal: null };
      const err = startError(job, error);
      return { exit, error: err, stdout, stderr, timedOut: false, killedByHalt: false };
    }
    const run = new Run(handle, this.#plan.killGraceMs);
    this.#runs.add(run);
    if (this.#stop !== undefined) run.kill("stop");
    else if (this.#halt !== undefined && this.#plan.halt?.when === "now") run.kill("halt");
    const timer = job.timeoutMs === Infinity
      ? undefined
      : setTimeout(() => run.kill("timeout"), job.timeoutMs);
    const exit = await handle.closed;
    clearTimeout(timer);
    this.#runs.delete(run);
    return {
      exit,
      error: undefined,
      stdout,
      stderr,
      timedOut: run.why === "timeout",
      killedByHalt: run.why === "halt",
    };
  }

  #finish(result: JobResult, output: JobOutput): void {
    this.#active--;
    this.#done++;
    const success = isSuccess(result);
    if (!success) this.#failed++;
    const rule = this.#plan.halt;
    if (
      rule !== undefined && this.#halt === undefined && this.#stop === undefined &&
      halts(rule, success, this.#done, this.#failed, this.#plan.jobs.length)
    ) {
      this.#halt = result;
      if (rule.when === "now") { for (const run of this.#runs) run.kill("halt"); }
    }
    const total = this.#plan.jobs.length;
    const elapsedMs = performance.now() - this.#started;
    this.#progress.push({
      result,
      output,
      progress: {
        done: this.#done,
        failed: this.#failed,
        running: this.#active,
        total,
        elapsedMs,
        etaMs: estimateEta(this.#done, total, elapsedMs),
        job: result,
      },
    });
    this.#launch();
    void this.#pump();
  }

  /** Makes the progress calls one at a time, in finish order, and delivers each result. */
  async #pump(): Promise<void> {
    if (this.#pumping) return;
    this.#pumping = true;
    const onProgress = this.#plan.onProgress;
    for (;;) {
      if (this.#stop !== undefined) break;
      const item = this.#progress.shift();
      if (item === undefined) break;
      if (onProgress !== undefined) {
        try {
          await onProgress(item.progress);
        } catch (error) {
          this.#cancel({ error });
          break;
        }
        if (this.#stop !== undefined) break;
      }
      this.#sink.result(item.result, item.output);
    }
    this.#pumping = false;
    this.#settleIfIdle();
  }

  /** Ends the batch once no job is active, no progress call runs and none is due. */
  #settleIfIdle(): void {
    if (this.#ended || this.#active > 0 || this.#pumping) return;
    if (this.#stop === undefined) {
      if (this.#progress.length > 0) return;
      if (this.#halt === undefined && this.#next < this.#plan.jobs.length) return;
    }
    this.#ended = true;
    this.#stopListening?.();
    if (this.#stop === undefined && this.#halt !== undefined) {
      for (let index = this.#next; index < this.#plan.jobs.length; index++) {
        this.#sink.result(this.#skipped(index, this.#halt), NO_OUTPUT);
      }
    }
    // The launcher goes before the batch says it ended: nothing the batch started outlives it.
    const stop = this.#stop;
    void this.#spawner.close().then(() => {
      this.#sink.end(stop);
      this.#resolveEnded();
    });
  }

  #skipped(index: number, halt: JobResult): JobResult {
    const cmd = this.#plan.jobs[index].cmd;
    return {
      index,
      cmd,
      slot: undefined,
      startedAt: undefined,
      exitCode: null,
      signal: null,
      stdout: "",
      stderr: "",
      truncated: false,
      durationMs: 0,
      timedOut: false,
      error: new JobSkippedError(
        index,
        halt.index,
        `Job ${index} (${formatCmd(cmd)}) was not started: ${haltCause(halt)}`,
      ),
      attempts: 0,
    };
  }
}

function succeeded(attempt: Attempt): boolean {
  return attempt.exit.code === 0 && attempt.error === undefined && !attempt.timedOut &&
    !attempt.killedByHalt;
}
