/**
 * What a finished job's result means to its batch: whether it succeeded, whether it meets the
 * batch's halt rule, and the words of the errors of jobs that could not start, were killed by a
 * halt, or were skipped after one.
 *
 * @module
 */

import { statSync } from "node:fs";
import { SpawnError } from "../errors.ts";
import type { HaltRule, JobResult } from "../run_commands.ts";
import type { PlannedJob } from "./_plan.ts";

/** Whether the result of a job that just finished meets the batch's halt rule. */
export function halts(
  rule: HaltRule,
  success: boolean,
  done: number,
  failed: number,
  total: number,
): boolean {
  if (rule.on === "fail" && success) return false;
  if (rule.on === "success" && !success) return false;
  const reached = rule.on === "fail" ? failed : rule.on === "success" ? done - failed : done;
  return rule.percent === undefined
    ? reached >= (rule.count ?? 1)
    : reached >= 1 && reached * 100 >= rule.percent * total;
}

/** Whether a job succeeded: exit code 0, without an error or a timeout. */
export function isSuccess(result: JobResult): boolean {
  return result.exitCode === 0 && result.error === undefined && !result.timedOut;
}

/**
 * The error of a failed start. The runtimes report a missing `cwd` as a missing executable;
 * this says which it was.
 */
export function startError(job: PlannedJob, error: unknown): Error {
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

/** Why a batch halted, for the messages of skipped and killed jobs. */
export function haltCause(failed: JobResult): string {
  const how = isSuccess(failed)
    ? "succeeded"
    : failed.error !== undefined
    ? `could not start (${failed.error.message})`
    : failed.timedOut
    ? `timed out (${failed.signal ?? "exited"})`
    : failed.signal !== null
    ? `was killed by ${failed.signal}`
    : `exited with code ${failed.exitCode}`;
  return `the batch halted after job ${failed.index} (${formatCmd(failed.cmd)}) ${how}`;
}

/** A command for messages: shell-like, shortened. */
export function formatCmd(cmd: readonly string[]): string {
  const text = cmd.map((arg) => /^[\w@%+=:,./-]+$/.test(arg) ? arg : JSON.stringify(arg))
    .join(" ");
  return text.length > 80 ? `\`${text.slice(0, 77)}...\`` : `\`${text}\``;
}
