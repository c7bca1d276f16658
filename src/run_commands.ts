/**
 * `runCommands` and `commandsAsCompleted`: batches of external commands with bounded
 * concurrency — what GNU parallel and `xargs -P` do — started through the runtime-neutral
 * `spawnChild()`, so a batch runs the same way on Deno, Bun and Node.
 *
 * ```
 * jobs, options
 *     │  commands/_plan.ts: planBatch() checks every option and job (a bad one throws before
 *     ▼  anything starts) and fills in each job's defaults
 *   Plan
 *     │  commands/_batch.ts: a Batch launches at most maxWorkers jobs; a halt, an abort or a
 *     ▼  left loop launches no more and kills the running ones (killGently, runtime/_kill.ts)
 * child processes: spawnChild() (runtime/), stdout and stderr kept by a Capture
 *     │            (commands/_capture.ts); a timeout kills; a failed attempt runs again
 *     ▼
 * JobResult ─► onProgress, one call at a time, in finish order ─► Sink (commands/_batch.ts)
 *     │
 *     ▼  this file
 * runCommands(): every result by index, with counts; commandsAsCompleted(): each as it comes
 * ```
 *
 * A halt cuts jobs short with `JobSkippedError` or `JobKilledError` (`commands/errors.ts`).
 *
 * @module
 */

import { planBatch } from "./commands/_plan.ts";
import type { Plan } from "./commands/_plan.ts";
import { Batch } from "./commands/_batch.ts";
import { isSuccess } from "./commands/_outcome.ts";
import type { JobOutput, Stop } from "./commands/_batch.ts";
import type { Progress } from "./progress.ts";
import { Deque } from "./_deque.ts";

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

/**
 * When a batch halts, GNU parallel's `--halt when,on=count` (or `=percent%`): after `count`
 * jobs (or `percent` % of all jobs) failed (`"fail"`), succeeded (`"success"`) or finished
 * either way (`"done"`). `"soon"` starts no new job and lets running ones finish; `"now"`
 * kills them too. `"soon"` as a {@linkcode HaltMode} is `{ when: "soon", on: "fail", count: 1 }`.
 */
export interface HaltRule {
  /** `"soon"`: start no new job; `"now"`: kill the running ones too. */
  readonly when: "soon" | "now";
  /** Which jobs count toward the halt. */
  readonly on: "fail" | "success" | "done";
  /**
   * How many jobs it takes, from 1; not with `percent`.
   *
   * @default {1}
   */
  readonly count?: number;
  /** How many jobs it takes, as a percentage of the batch's jobs (above 0, at most 100). */
  readonly percent?: number;
}

/** What {@linkcode CommandOptions.onProgress} receives after each job finishes. */
export interface CommandProgress extends Progress {
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
   * Most commands running at once: an integer from 1 to `max(64, 16 × CPUs)` (a bound against
   * exhausting processes and file descriptors, which grows with the machine).
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
  halt?: HaltMode | HaltRule;
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
  /**
   * Which of the `maxWorkers` slots ran it, from 1 (the lowest free one when it started);
   * `undefined` for a skipped job.
   */
  readonly slot: number | undefined;
  /** When its first attempt started, in ms since the epoch; `undefined` for a skipped job. */
  readonly startedAt: number | undefined;
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
  /** The index of the job whose result halted the batch (see `halt`), if one did. */
  readonly haltedBy: number | undefined;
}

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
  return await runPlan(planBatch(jobs, options));
}

/**
 * Runs a planned batch to its end; `onResult` sees each result (with its output's bytes) in
 * finish order, skipped jobs last. What `runCommands` and the `fanout` command share.
 */
export async function runPlan(
  plan: Plan,
  onResult?: (result: JobResult, output: JobOutput) => void,
): Promise<BatchResult> {
  const started = performance.now();
  const results: JobResult[] = new Array(plan.jobs.length);
  const batch = await new Promise<Batch>((resolve, reject) => {
    const batch: Batch = new Batch(plan, {
      result: (result, output) => {
        results[result.index] = result;
        onResult?.(result, output);
      },
      end: (stop) => stop === undefined ? resolve(batch) : reject(stop.error),
    });
    batch.start();
  });
  const succeeded = results.filter(isSuccess).length;
  return {
    results,
    succeeded,
    failed: results.length - succeeded,
    durationMs: performance.now() - started,
    haltedBy: batch.haltedBy?.index,
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
  return iterate(planBatch(jobs, options));
}

async function* iterate(plan: Plan): AsyncGenerator<JobResult, void, undefined> {
  const queue = new Deque<JobResult>();
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
