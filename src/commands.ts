/**
 * Batches of external commands with bounded concurrency — what GNU parallel and `xargs -P` do —
 * started through the runtime-neutral `spawnChild()`, so a batch runs the same way on Deno, Bun
 * and Node.
 *
 * ```
 * jobs ─► validate ─► launch (≤ maxWorkers) ─► attempt: spawn, capture, time out ─► retry? ─┐
 *                          ▲                         ▲                                      │
 *        halt / abort / left loop: launch no more, kill running                             │
 * results ◄─ deliver ◄─ onProgress (one call at a time, in finish order) ◄─ job result ◄────┘
 * ```
 *
 * Every job's result goes through the progress queue before it is delivered, so a batch ends
 * only after the last progress call settled, and no call can come after it. Skipped jobs (after
 * a halt) are delivered last, without a progress call: they never ran.
 *
 * @module
 */

import { statSync } from "node:fs";
import { spawnChild } from "./runtime/mod.ts";
import type { ChildExit, ChildHandle } from "./runtime/mod.ts";
import { describe } from "./_checks.ts";
import { checkKeys } from "./_checks.ts";
import { SpawnError } from "./errors.ts";

/** One external command of a batch. */
export interface CommandJob {
  /**
   * The executable, then its arguments, passed as they are (no shell). With `shell: true`,
   * `cmd[0]` is a shell script run by `/bin/sh -c` and `cmd[1..]` are its `$1`, `$2`, …
   */
  cmd: readonly string[];
  /**
   * Working directory.
   *
   * @default {the current directory}
   */
  cwd?: string;
  /** Variables added to (or overriding) the parent's environment. */
  env?: Record<string, string>;
  /**
   * Written to the command's stdin, which is then closed. Without it the command reads an
   * empty stdin.
   */
  stdin?: string | Uint8Array;
  /**
   * Longest one attempt of this job may run, in ms (`Infinity`: no limit).
   *
   * @default {the batch's `timeoutMs`}
   */
  timeoutMs?: number;
  /**
   * Runs `cmd[0]` as a `/bin/sh -c` script with `cmd[1..]` as its positional parameters.
   *
   * @default {the batch's `shell`}
   */
  shell?: boolean;
}

/**
 * When a failed job stops the batch: `"never"` runs every job; `"soon"` starts no new job
 * after the first failure and lets running ones finish; `"now"` also kills the running ones.
 */
export type HaltMode = "never" | "soon" | "now";

/** What {@linkcode CommandOptions.onProgress} receives after each job finishes. */
export interface CommandProgress {
  /** Jobs finished so far, this one included (skipped jobs never count here). */
  readonly done: number;
  /** How many of the finished jobs failed. */
  readonly failed: number;
  /** Jobs still running (or waiting to retry) when this one finished. */
  readonly running: number;
  /** Jobs in the batch. */
  readonly total: number;
  /** The result of the job that just finished. */
  readonly job: JobResult;
}

/** Options of {@linkcode runCommands} and {@linkcode commandsAsCompleted}. */
export interface CommandOptions {
  /**
   * Most commands running at once: an integer from 1 to 16.
   *
   * @default {4}
   */
  maxWorkers?: number;
  /**
   * `false` runs the jobs one after another (as `maxWorkers: 1` does), with the same results.
   *
   * @default {true}
   */
  parallel?: boolean;
  /**
   * Longest one attempt of a job may run, in ms, before it is sent SIGTERM, then SIGKILL
   * after `killGraceMs`; its result says `timedOut`. `Infinity`: no
   * limit. A job's own `timeoutMs` overrides it.
   *
   * @default {300_000}
   */
  timeoutMs?: number;
  /**
   * Cancels the batch: running commands are killed and awaited, no new one starts, and the
   * call rejects with `signal.reason`.
   */
  signal?: AbortSignal;
  /**
   * Called after each job finishes (not for skipped jobs), one call at a time: a returned
   * promise is awaited before the next call. The batch settles only after the last call
   * settled. If it throws or rejects, the batch stops as with `halt: "now"` and the call
   * rejects with that error.
   */
  onProgress?: (progress: CommandProgress) => void | Promise<void>;
  /**
   * When a failed job (after its retries) stops the batch. Jobs not started because of it
   * fail with {@linkcode JobSkippedError}; jobs killed by `"now"` with
   * {@linkcode JobKilledError}.
   *
   * @default {"never"}
   */
  halt?: HaltMode;
  /**
   * How many times a failed job (non-zero exit, signal, timeout, or a start error) is run
   * again. The result is that of the last attempt; `attempts` says how many there were. A
   * halted or cancelled batch retries nothing.
   *
   * @default {0}
   */
  retries?: number;
  /**
   * Most bytes kept of each of a job's stdout and stderr. The rest is read and dropped (the
   * command never blocks on a full pipe) and the result says `truncated`.
   *
   * @default {10 MiB}
   */
  maxOutputBytes?: number;
  /**
   * How long a command that is being killed (a timeout, a halt, a cancel) gets after SIGTERM
   * before it is sent SIGKILL, in ms. `0` sends SIGKILL at once.
   *
   * @default {1000}
   */
  killGraceMs?: number;
  /**
   * Runs every job's `cmd[0]` as a `/bin/sh -c` script (see {@linkcode CommandJob.shell}).
   *
   * @default {false}
   */
  shell?: boolean;
}

/** How one job ended. */
export interface JobResult {
  /** The job's position in the input. */
  readonly index: number;
  /** The job's `cmd`, as given. */
  readonly cmd: readonly string[];
  /** Exit code; `null` when a signal ended the command or it never ran. */
  readonly exitCode: number | null;
  /** The signal that ended the command, e.g. `"SIGTERM"`; `null` otherwise. */
  readonly signal: string | null;
  /** Captured stdout, decoded as UTF-8 (at most `maxOutputBytes` bytes of it). */
  readonly stdout: string;
  /** Captured stderr, decoded as UTF-8 (at most `maxOutputBytes` bytes of it). */
  readonly stderr: string;
  /** Whether stdout or stderr was cut at `maxOutputBytes`. */
  readonly truncated: boolean;
  /** From the start of the first attempt to the end of the last, in ms. */
  readonly durationMs: number;
  /** Whether the last attempt ran past its `timeoutMs` and was killed. */
  readonly timedOut: boolean;
  /**
   * Why the job did not run to its end: a `SpawnError` when the command could not start,
   * {@linkcode JobSkippedError} or {@linkcode JobKilledError} after a halt; otherwise
   * `undefined` (a non-zero exit or a timeout is not an error here: see `exitCode`, `timedOut`).
   */
  readonly error: Error | undefined;
  /** How many times the command was started (0 for a skipped job). */
  readonly attempts: number;
}

/** What {@linkcode runCommands} returns. */
export interface BatchResult {
  /** One result per job, in input order. */
  readonly results: JobResult[];
  /** Jobs that exited with code 0, without an error or a timeout. */
  readonly succeeded: number;
  /** Every other job, skipped ones included. */
  readonly failed: number;
  /** Wall time of the whole batch, in ms. */
  readonly durationMs: number;
}

/**
 * A job that did not run to its end because an earlier failure halted the batch (`halt`):
 * {@linkcode JobSkippedError} for one that never started, {@linkcode JobKilledError} for one
 * that was killed. `haltedBy` is the index of the job whose failure did it.
 */
export class JobHaltedError extends Error {
  static {
    this.prototype.name = "JobHaltedError";
  }
  /** The job's position in the input. */
  readonly index: number;
  /** The position of the failed job that halted the batch. */
  readonly haltedBy: number;

  /**
   * Creates a halted-job error.
   *
   * @param index The job's position.
   * @param haltedBy The position of the job whose failure halted the batch.
   * @param message What happened.
   */
  constructor(index: number, haltedBy: number, message: string) {
    super(message);
    this.index = index;
    this.haltedBy = haltedBy;
  }
}

/**
 * A job was not started because an earlier failure halted the batch (`halt: "soon"` or
 * `"now"`). `haltedBy` is the index of the job whose failure did it.
 *
 * @example Telling the failure from the jobs it cut short
 * ```ts
 * import { JobSkippedError, runCommands } from "@fanout/fanout";
 * import assert from "node:assert/strict";
 *
 * const batch = await runCommands([
 *   { cmd: ["sh", "-c", "exit 2"] },
 *   { cmd: ["sh", "-c", "echo never"] },
 * ], { maxWorkers: 1, halt: "soon" });
 * const [failed, skipped] = batch.results;
 * assert.equal(failed.exitCode, 2);
 * assert.ok(skipped.error instanceof JobSkippedError);
 * assert.equal(skipped.error.haltedBy, 0);
 * assert.equal(skipped.attempts, 0);
 * ```
 */
export class JobSkippedError extends JobHaltedError {
  static {
    this.prototype.name = "JobSkippedError";
  }
}

/**
 * A running job was killed because an earlier failure halted the batch with `halt: "now"`.
 * `haltedBy` is the index of the job whose failure did it.
 *
 * @example A failure kills the job running beside it
 * ```ts
 * import { JobKilledError, runCommands } from "@fanout/fanout";
 * import assert from "node:assert/strict";
 *
 * const batch = await runCommands([
 *   { cmd: ["sleep", "30"] },
 *   { cmd: ["sh", "-c", "exit 1"] },
 * ], { maxWorkers: 2, halt: "now" });
 * const [killed] = batch.results;
 * assert.ok(killed.error instanceof JobKilledError);
 * assert.equal(killed.error.haltedBy, 1);
 * assert.equal(killed.signal, "SIGTERM");
 * ```
 */
export class JobKilledError extends JobHaltedError {
  static {
    this.prototype.name = "JobKilledError";
  }
}

/** Default of `killGraceMs`: how long a command may take to exit after SIGTERM. */
const KILL_GRACE_MS = 1000;

const DEFAULT_MAX_WORKERS = 4;
const MAX_WORKERS = 16;
const DEFAULT_TIMEOUT_MS = 300_000;
const DEFAULT_MAX_OUTPUT_BYTES = 10 * 1024 * 1024;
/** setTimeout fires at once for longer delays. */
const MAX_TIMER_MS = 2 ** 31 - 1;
const SHELL = "/bin/sh";
const HALT_MODES: readonly HaltMode[] = ["never", "soon", "now"];
const OPTIONS = [
  "maxWorkers",
  "parallel",
  "timeoutMs",
  "signal",
  "onProgress",
  "halt",
  "retries",
  "maxOutputBytes",
  "shell",
  "killGraceMs",
];
const JOB_KEYS = ["cmd", "cwd", "env", "stdin", "timeoutMs", "shell"];

/**
 * Runs external commands with bounded concurrency and reports how each ended. One job's
 * failure — a non-zero exit, a timeout, a command that does not exist (its `error` is a
 * `SpawnError`) — never affects the others, unless `halt` says so; it is never thrown.
 *
 * Killing a job (timeout, halt, abort) signals only the command's own process, not processes
 * it started: a shell's background jobs or a build tool's children live on.
 *
 * @param jobs The commands; each `cmd` is a non-empty array of strings.
 * @param options Concurrency, timeouts, retries, halting, progress and cancellation.
 * @returns Every job's result in input order, with counts.
 * @throws {TypeError} If a job or an option has the wrong shape, or an option is unknown
 *   (as a rejection).
 * @throws {RangeError} If an option is out of range (as a rejection).
 * @throws If `signal` aborts, its `reason`; if `onProgress` throws, that error.
 *
 * @example Run three commands, two at a time
 * ```ts
 * import { runCommands } from "@fanout/fanout";
 * import assert from "node:assert/strict";
 *
 * const batch = await runCommands([
 *   { cmd: ["sh", "-c", "echo one"] },
 *   { cmd: ["sh", "-c", "echo two >&2; exit 3"] },
 *   { cmd: ['printf "%s" "$1"', "three"], shell: true },
 * ], { maxWorkers: 2 });
 * assert.equal(batch.succeeded, 2);
 * assert.equal(batch.results[0].stdout, "one\n");
 * assert.equal(batch.results[1].exitCode, 3);
 * assert.equal(batch.results[1].stderr, "two\n");
 * assert.equal(batch.results[2].stdout, "three");
 * ```
 */
export async function runCommands(
  jobs: Iterable<CommandJob>,
  options: CommandOptions = {},
): Promise<BatchResult> {
  const started = performance.now();
  const plan = prepare(jobs, options);
  const results: JobResult[] = new Array(plan.jobs.length);
  await new Promise<void>((resolve, reject) => {
    new Batch(plan, {
      result: (result) => {
        results[result.index] = result;
      },
      end: (stop) => stop === undefined ? resolve() : reject(stop.error),
    }).start();
  });
  const succeeded = results.filter(isSuccess).length;
  return {
    results,
    succeeded,
    failed: results.length - succeeded,
    durationMs: performance.now() - started,
  };
}

/**
 * Runs external commands like {@linkcode runCommands}, yielding each job's result as soon as
 * it finishes (skipped ones last). Nothing starts before the first `next()`. Leaving the loop
 * early (`break`, `return`, a throw) kills the running commands and waits for them.
 *
 * @param jobs The commands; each `cmd` is a non-empty array of strings.
 * @param options The same options as {@linkcode runCommands}.
 * @returns An iterator of job results in finish order.
 * @throws {TypeError} If a job or an option has the wrong shape, or an option is unknown.
 * @throws {RangeError} If an option is out of range.
 *
 * @example Handle results as they come
 * ```ts
 * import { commandsAsCompleted } from "@fanout/fanout";
 * import assert from "node:assert/strict";
 *
 * const seen: number[] = [];
 * for await (const job of commandsAsCompleted([
 *   { cmd: ["sh", "-c", "sleep 0.2; echo slow"] },
 *   { cmd: ["sh", "-c", "echo fast"] },
 * ])) {
 *   assert.equal(job.exitCode, 0);
 *   seen.push(job.index);
 * }
 * assert.deepEqual(seen.sort(), [0, 1]);
 * ```
 */
export function commandsAsCompleted(
  jobs: Iterable<CommandJob>,
  options: CommandOptions = {},
): AsyncIterableIterator<JobResult> {
  return iterate(prepare(jobs, options));
}

async function* iterate(plan: Plan): AsyncGenerator<JobResult, void, undefined> {
  const queue: JobResult[] = [];
  let ended: { stop: Stop | undefined } | undefined;
  let wake: (() => void) | undefined;
  const batch = new Batch(plan, {
    result: (result) => {
      queue.push(result);
      wake?.();
    },
    end: (stop) => {
      ended = { stop };
      wake?.();
    },
  });
  batch.start();
  try {
    for (;;) {
      // A cancelled batch throws at once; queued results of jobs that finished before are
      // dropped, as runCommands drops them.
      if (ended?.stop !== undefined) throw ended.stop.error;
      const next = queue.shift();
      if (next !== undefined) yield next;
      else if (ended !== undefined) return;
      else {
        await new Promise<void>((resolve) => {
          wake = resolve;
        });
        wake = undefined;
      }
    }
  } finally {
    await batch.cancel();
  }
}

/** A job with the batch's defaults filled in. */
interface PlannedJob {
  readonly cmd: readonly string[];
  readonly argv: readonly string[];
  readonly cwd: string | undefined;
  readonly env: Record<string, string> | undefined;
  readonly stdin: Uint8Array | undefined;
  readonly timeoutMs: number;
}

/** Validated jobs and settings. */
interface Plan {
  readonly jobs: readonly PlannedJob[];
  readonly maxWorkers: number;
  readonly signal: AbortSignal | undefined;
  readonly onProgress: ((progress: CommandProgress) => void | Promise<void>) | undefined;
  readonly halt: HaltMode;
  readonly retries: number;
  readonly maxOutputBytes: number;
  readonly killGraceMs: number;
}

function prepare(jobs: Iterable<CommandJob>, options: CommandOptions): Plan {
  checkKeys("options", options, OPTIONS);
  const maxWorkers = options.maxWorkers === undefined
    ? DEFAULT_MAX_WORKERS
    : checkInteger("maxWorkers", options.maxWorkers, 1, MAX_WORKERS);
  const parallel = checkBoolean("parallel", options.parallel ?? true);
  const timeoutMs = checkTimeout("timeoutMs", options.timeoutMs ?? DEFAULT_TIMEOUT_MS);
  const signal = options.signal;
  if (signal !== undefined && !(signal instanceof AbortSignal)) {
    throw new TypeError(`Expected \`signal\` to be an AbortSignal, got ${describe(signal)}`);
  }
  const onProgress = options.onProgress;
  if (onProgress !== undefined && typeof onProgress !== "function") {
    throw new TypeError(`Expected \`onProgress\` to be a function, got ${describe(onProgress)}`);
  }
  const halt = options.halt ?? "never";
  if (!HALT_MODES.includes(halt)) {
    const expected = 'Expected `halt` to be "never", "soon" or "now"';
    if (typeof halt !== "string") throw new TypeError(`${expected}, got ${describe(halt)}`);
    throw new RangeError(`${expected}, got ${describe(halt)}`);
  }
  const retries = checkInteger("retries", options.retries ?? 0, 0, Infinity);
  const maxOutputBytes = checkInteger(
    "maxOutputBytes",
    options.maxOutputBytes ?? DEFAULT_MAX_OUTPUT_BYTES,
    0,
    Infinity,
  );
  const shell = checkBoolean("shell", options.shell ?? false);
  const killGraceMs = checkInteger(
    "killGraceMs",
    options.killGraceMs ?? KILL_GRACE_MS,
    0,
    MAX_TIMER_MS,
  );
  if (
    jobs === null || typeof (jobs as { [Symbol.iterator]?: unknown })?.[Symbol.iterator] !==
      "function"
  ) {
    throw new TypeError(`Expected \`jobs\` to be an iterable of jobs, got ${describe(jobs)}`);
  }
  const planned = Array.from(jobs, (job, index) => planJob(job, index, timeoutMs, shell));
  return {
    jobs: planned,
    maxWorkers: parallel ? maxWorkers : 1,
    signal,
    onProgress,
    halt,
    retries,
    maxOutputBytes,
    killGraceMs,
  };
}

function planJob(job: CommandJob, index: number, timeoutMs: number, shell: boolean): PlannedJob {
  const name = `jobs[${index}]`;
  checkKeys(name, job, JOB_KEYS);
  const cmd: unknown = job.cmd;
  if (
    !Array.isArray(cmd) || cmd.length === 0 || !cmd.every((part) => typeof part === "string") ||
    cmd[0] === ""
  ) {
    throw new TypeError(
      `Expected \`${name}.cmd\` to be a non-empty array of strings, the first naming the ` +
        `command, got ${describeCmd(cmd)}`,
    );
  }
  if (job.cwd !== undefined && typeof job.cwd !== "string") {
    throw new TypeError(`Expected \`${name}.cwd\` to be a string, got ${describe(job.cwd)}`);
  }
  const env: unknown = job.env;
  if (
    env !== undefined &&
    (typeof env !== "object" || env === null ||
      !Object.values(env).every((value) => typeof value === "string"))
  ) {
    throw new TypeError(
      `Expected \`${name}.env\` to be an object of strings, got ${describe(env)}`,
    );
  }
  const stdin: unknown = job.stdin;
  if (stdin !== undefined && typeof stdin !== "string" && !(stdin instanceof Uint8Array)) {
    throw new TypeError(
      `Expected \`${name}.stdin\` to be a string or a Uint8Array, got ${describe(stdin)}`,
    );
  }
  const viaShell = checkBoolean(`${name}.shell`, job.shell ?? shell);
  const strings = cmd as string[];
  return {
    cmd: [...strings],
    argv: viaShell ? [SHELL, "-c", strings[0], "sh", ...strings.slice(1)] : [...strings],
    cwd: job.cwd,
    env: env === undefined ? undefined : { ...env as Record<string, string> },
    stdin: typeof stdin === "string" ? new TextEncoder().encode(stdin) : stdin,
    timeoutMs: job.timeoutMs === undefined
      ? timeoutMs
      : checkTimeout(`${name}.timeoutMs`, job.timeoutMs),
  };
}

/** Why a batch stopped early: an abort, a throwing `onProgress`, or a left loop (no error). */
interface Stop {
  readonly error: unknown;
}

/** Where a batch hands its results. */
interface Sink {
  /** A job's result, once its progress call (if any) settled. */
  result(result: JobResult): void;
  /** Called once, when nothing runs any more: without `stop` when every job was delivered. */
  end(stop: Stop | undefined): void;
}

/** Why a running command is being killed. */
type KillReason = "timeout" | "halt" | "stop";

/** One started process of a job. */
class Run {
  #why: KillReason | undefined;
  #exited = false;
  #killTimer: ReturnType<typeof setTimeout> | undefined;
  readonly #handle: ChildHandle;
  readonly #graceMs: number;

  constructor(handle: ChildHandle, graceMs: number) {
    this.#handle = handle;
    this.#graceMs = graceMs;
    handle.exited.then(() => {
      this.#exited = true;
      clearTimeout(this.#killTimer);
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
    if (this.#graceMs === 0) return this.#handle.kill("SIGKILL");
    this.#handle.kill("SIGTERM");
    this.#killTimer = setTimeout(() => this.#handle.kill("SIGKILL"), this.#graceMs);
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
  readonly progress: CommandProgress;
}

/** One batch: launches jobs, retries, halts, stops, and reports through a `Sink`. */
class Batch {
  readonly #plan: Plan;
  readonly #sink: Sink;
  #next = 0;
  /** Jobs launched and not finished (spawning, running, or between attempts). */
  #active = 0;
  readonly #runs = new Set<Run>();
  #done = 0;
  #failed = 0;
  #halt: JobResult | undefined;
  #stop: Stop | undefined;
  readonly #progress: Finished[] = [];
  #pumping = false;
  #ended = false;
  readonly #endedPromise: Promise<void>;
  #resolveEnded!: () => void;
  readonly #onAbort = (): void => this.#cancel({ error: this.#plan.signal!.reason });

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
      signal?.addEventListener("abort", this.#onAbort, { once: true });
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
      this.#runJob(index).then(
        (result) => this.#finish(result),
        // Not expected: every failure of a job is caught into its result.
        (error) => {
          this.#active--;
          this.#cancel({ error });
          this.#settleIfIdle();
        },
      );
    }
  }

  async #runJob(index: number): Promise<JobResult> {
    const job = this.#plan.jobs[index];
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
    return {
      index,
      cmd: job.cmd,
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
  }

  async #attempt(job: PlannedJob): Promise<Attempt> {
    const stdout = new Capture(this.#plan.maxOutputBytes);
    const stderr = new Capture(this.#plan.maxOutputBytes);
    let handle: ChildHandle;
    try {
      handle = await spawnChild({
        cmd: job.argv,
        cwd: job.cwd,
        env: job.env,
        stdin: job.stdin === undefined ? "ignore" : "pipe",
        stdout: "pipe",
        stderr: "pipe",
        onStdout: (chunk) => stdout.push(chunk),
        onStderr: (chunk) => stderr.push(chunk),
      });
    } catch (error) {
      const exit = { code: null, signal: null };
      const err = startError(job, error);
      return { exit, error: err, stdout, stderr, timedOut: false, killedByHalt: false };
    }
    const run = new Run(handle, this.#plan.killGraceMs);
    this.#runs.add(run);
    if (this.#stop !== undefined) run.kill("stop");
    else if (this.#halt !== undefined && this.#plan.halt === "now") run.kill("halt");
    const timer = job.timeoutMs === Infinity
      ? undefined
      : setTimeout(() => run.kill("timeout"), job.timeoutMs);
    if (job.stdin !== undefined) {
      // A command may close its stdin or exit without reading it: its exit status tells.
      try {
        if (job.stdin.length > 0) handle.write(job.stdin);
      } catch {
        // See above.
      }
      try {
        handle.end();
      } catch {
        // See above.
      }
    }
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

  #finish(result: JobResult): void {
    this.#active--;
    this.#done++;
    if (!isSuccess(result)) {
      this.#failed++;
      if (this.#plan.halt !== "never" && this.#halt === undefined && this.#stop === undefined) {
        this.#halt = result;
        if (this.#plan.halt === "now") { for (const run of this.#runs) run.kill("halt"); }
      }
    }
    this.#progress.push({
      result,
      progress: {
        done: this.#done,
        failed: this.#failed,
        running: this.#active,
        total: this.#plan.jobs.length,
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
      this.#sink.result(item.result);
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
    this.#plan.signal?.removeEventListener("abort", this.#onAbort);
    if (this.#stop === undefined && this.#halt !== undefined) {
      for (let index = this.#next; index < this.#plan.jobs.length; index++) {
        this.#sink.result(this.#skipped(index, this.#halt));
      }
    }
    this.#sink.end(this.#stop);
    this.#resolveEnded();
  }

  #skipped(index: number, halt: JobResult): JobResult {
    const cmd = this.#plan.jobs[index].cmd;
    return {
      index,
      cmd,
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

/** Keeps up to `max` bytes of a stream; the rest is counted as cut and dropped. */
class Capture {
  readonly #max: number;
  readonly #chunks: Uint8Array[] = [];
  #size = 0;
  truncated = false;

  constructor(max: number) {
    this.#max = max;
  }

  push(chunk: Uint8Array): void {
    if (chunk.length === 0) return;
    const room = this.#max - this.#size;
    if (chunk.length > room) {
      this.truncated = true;
      if (room === 0) return;
      chunk = chunk.slice(0, room);
    }
    this.#chunks.push(chunk);
    this.#size += chunk.length;
  }

  /** The kept bytes as UTF-8; a character cut in half at the limit is left out. */
  text(): string {
    let bytes: Uint8Array;
    if (this.#chunks.length === 1) bytes = this.#chunks[0];
    else {
      bytes = new Uint8Array(this.#size);
      let at = 0;
      for (const chunk of this.#chunks) {
        bytes.set(chunk, at);
        at += chunk.length;
      }
    }
    if (this.truncated) bytes = bytes.subarray(0, wholeUtf8Length(bytes));
    return decoder.decode(bytes);
  }
}

const decoder = new TextDecoder();

/** Length of `bytes` without a trailing, incomplete UTF-8 sequence. */
function wholeUtf8Length(bytes: Uint8Array): number {
  let lead = bytes.length - 1;
  while (lead >= 0 && bytes.length - lead < 4 && (bytes[lead] & 0xc0) === 0x80) lead--;
  if (lead < 0) return bytes.length;
  const b = bytes[lead];
  const size = b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : b >= 0xc0 ? 2 : 1;
  return bytes.length - lead < size ? lead : bytes.length;
}

/**
 * The error of a failed start. The runtimes report a missing `cwd` as a missing executable;
 * this says which it was.
 */
function startError(job: PlannedJob, error: unknown): Error {
  if (
    error instanceof SpawnError && job.cwd !== undefined &&
    (error.code === "ENOENT" || error.code === "ENOTDIR") && !isDirectory(job.cwd)
  ) {
    return new SpawnError(
      error.command,
      `Expected \`cwd\` to be a directory, but ${JSON.stringify(job.cwd)} is not one`,
      { code: error.code, cause: error },
    );
  }
  return error instanceof Error ? error : new Error(String(error), { cause: error });
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

function succeeded(attempt: Attempt): boolean {
  return attempt.exit.code === 0 && attempt.error === undefined && !attempt.timedOut &&
    !attempt.killedByHalt;
}

function isSuccess(result: JobResult): boolean {
  return result.exitCode === 0 && result.error === undefined && !result.timedOut;
}

/** Why a batch halted, for the messages of skipped and killed jobs. */
function haltCause(failed: JobResult): string {
  const how = failed.error !== undefined
    ? `could not start (${failed.error.message})`
    : failed.timedOut
    ? `timed out (${failed.signal ?? "exited"})`
    : failed.signal !== null
    ? `was killed by ${failed.signal}`
    : `exited with code ${failed.exitCode}`;
  return `the batch halted after job ${failed.index} (${formatCmd(failed.cmd)}) ${how}`;
}

/** A command for messages: shell-like, shortened. */
function formatCmd(cmd: readonly string[]): string {
  const text = cmd.map((arg) => /^[\w@%+=:,./-]+$/.test(arg) ? arg : JSON.stringify(arg))
    .join(" ");
  return text.length > 80 ? `\`${text.slice(0, 77)}...\`` : `\`${text}\``;
}

function describeCmd(cmd: unknown): string {
  if (Array.isArray(cmd)) {
    if (cmd.length === 0) return "an empty array";
    if (cmd[0] === "") return "an empty string as the command";
    const bad = cmd.findIndex((part) => typeof part !== "string");
    return `an array whose item ${bad} is ${describe(cmd[bad])}`;
  }
  return describe(cmd);
}

function checkInteger(name: string, value: unknown, min: number, max: number): number {
  const expected = max === Infinity
    ? `Expected \`${name}\` to be an integer from ${min} and up`
    : `Expected \`${name}\` to be an integer from ${min} to ${max}`;
  if (typeof value !== "number") throw new TypeError(`${expected}, got ${describe(value)}`);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new RangeError(`${expected}, got ${describe(value)}`);
  }
  return value;
}

function checkTimeout(name: string, value: unknown): number {
  const expected =
    `Expected \`${name}\` to be a number of ms above 0, at most ${MAX_TIMER_MS}, or \`Infinity\``;
  if (typeof value !== "number") throw new TypeError(`${expected}, got ${describe(value)}`);
  if (value === Infinity) return value;
  if (!(value > 0 && value <= MAX_TIMER_MS)) {
    throw new RangeError(`${expected}, got ${describe(value)}`);
  }
  return value;
}

function checkBoolean(name: string, value: unknown): boolean {
  if (typeof value !== "boolean") {
    throw new TypeError(`Expected \`${name}\` to be a boolean, got ${describe(value)}`);
  }
  return value;
}
