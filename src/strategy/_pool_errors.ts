/**
 * What the pools make of a worker's replies and of its death: the error of a failed chunk
 * (threads), of the items that failed in a batch of submits (see `JobQueue.take`), of inputs
 * that could not be sent, of the chunks a dying worker held, and of a thread's timeout.
 *
 * @module
 */

import type { EachFailure, FromWorkerEvent } from "../protocol.ts";
import type { ThreadExit } from "../runtime/mod.ts";
import type { Job } from "./_queue.ts";
import { cloneError, reviveError, taskFailure } from "../_revive.ts";
import { findUncloneable } from "../worker/clone_failure.js";
import { TaskTimeoutError, WorkerCrashedError } from "../errors.ts";

/** The error of a chunk whose item failed (a "fail" event). */
export function failureOf(message: Extract<FromWorkerEvent, { type: "fail" }>): unknown {
  const cause = reviveError(message.error);
  if (message.clone !== undefined) {
    return cloneError("result", message.index, message.clone, cause);
  }
  return taskFailure(message.index, cause, message.error.capturedName);
}

/** A batch's reply when some of its items failed (see `Payload.EACH`). */
export interface EachReply {
  values: unknown[];
  failures: EachFailure[];
}

/** The errors of a batch's failed items, by position. */
export function eachFailures(reply: EachReply): Map<number, unknown> {
  const failures = new Map<number, unknown>();
  for (const { at, error, clone } of reply.failures) {
    const cause = reviveError(error);
    failures.set(
      at,
      clone !== undefined
        ? cloneError("result", 0, clone, cause)
        : taskFailure(0, cause, error.capturedName),
    );
  }
  return failures;
}

/** The submits of a batch whose input could not be sent, each with its own error. */
export function uncloneableInputs(items: unknown[], error: unknown): Map<number, unknown> {
  const failed = new Map<number, unknown>();
  for (let k = 0; k < items.length; k++) {
    const found = findUncloneable(items[k], "input");
    if (found !== undefined) failed.set(k, cloneError("input", 0, found, error));
  }
  // The clone failed, yet no single item is to blame: fail them all rather than retry forever.
  if (failed.size === 0) { for (let k = 0; k < items.length; k++) failed.set(k, error); }
  return failed;
}

/**
 * The error of a chunk whose worker crashed: while it ran item `running`, or, with `running`
 * undefined, after it finished, before its result came back.
 */
export function crashedChunk(
  job: Job<unknown>,
  running: number | undefined,
  exit: ThreadExit,
  cause: unknown,
): WorkerCrashedError {
  const { base, items } = job.request;
  if (running === undefined) {
    return new WorkerCrashedError(
      `The worker crashed (${exit.message}) after task ${base} ran, before its result came back`,
      { index: base, exitCode: exit.code, cause },
    );
  }
  const index = running >= base && running < base + items.length ? running : base;
  const several = (job.request.concurrency ?? 1) > 1 && index > base;
  if (several) {
    // Several were in flight: which one crashed it is not known.
    return new WorkerCrashedError(
      `The worker crashed while running one of tasks ${base}–${index} (up to ` +
        `${job.request.concurrency} in flight at once): ${exit.message}`,
      { exitCode: exit.code, cause },
    );
  }
  return new WorkerCrashedError(`The worker running task ${index} crashed: ${exit.message}`, {
    index,
    exitCode: exit.code,
    cause,
  });
}

/**
 * What a crash did to a batch, by position: the submit that was running at `running` failed
 * with the crash, those before it ran but lost their results with the worker; those after it
 * never ran (they are not in the map: they go back to the queue). With `running` undefined the
 * whole batch had run, or (`unknown`) how far it got is not known: every submit in it fails.
 */
export function crashedBatch(
  job: Job<unknown>,
  running: number | undefined,
  exit: ThreadExit,
  cause: unknown,
  unknown = false,
): Map<number, unknown> {
  const members = job.members!;
  const last = running === undefined
    ? members.length
    : running >= 0 && running < members.length
    ? running
    : 0;
  const failed = new Map<number, unknown>();
  for (let k = 0; k <= last && k < members.length; k++) {
    failed.set(
      k,
      new WorkerCrashedError(
        unknown
          ? `The worker crashed (${exit.message}) while it ran one message of submits with ` +
            `task 0 in it; which of them it was running is not known`
          : k === last
          ? `The worker running task 0 crashed: ${exit.message}`
          : `The worker crashed (${exit.message}) after task 0 ran, before its result came back: ` +
            `it ran in one message with other submits`,
        { index: 0, exitCode: exit.code, cause },
      ),
    );
  }
  return failed;
}

/** The error of a chunk that ran past its timeout on a thread, stopped `hard` or asked to stop. */
export function threadTimeout(index: number, timeoutMs: number, hard: boolean): TaskTimeoutError {
  return new TaskTimeoutError(
    index,
    timeoutMs,
    `Task ${index} ran past its timeout of ${timeoutMs} ms; ` +
      (hard
        ? "its thread was terminated"
        : "a busy thread cannot be stopped on Deno, so the task was asked to stop through " +
          "ctx.signal and keeps its thread until it returns. Only the processes strategy " +
          "can hard-stop a busy task"),
  );
}
