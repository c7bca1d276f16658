/**
 * `--halt` as GNU parallel spells it, and the exit status it gives a finished batch.
 *
 * @module
 */

import type { BatchResult, HaltMode, HaltRule } from "../run_commands.ts";
import { isSuccess } from "../commands/_outcome.ts";
import { UsageError } from "./errors.ts";

/** GNU parallel's old numeric forms. */
const LEGACY: Record<string, HaltMode | HaltRule> = {
  "0": "never",
  "1": { when: "soon", on: "fail", count: 1 },
  "2": { when: "now", on: "fail", count: 1 },
  "-1": { when: "soon", on: "success", count: 1 },
  "-2": { when: "now", on: "success", count: 1 },
};

/**
 * Parses `never`, `now`, `soon`, `when,why=N`, `when,why=N%` (why: fail, success, done), and
 * the legacy `0`, `1`, `2`, `-1`, `-2` and `1-99%`.
 *
 * @throws {UsageError} Naming `--halt` and what was expected.
 */
export function parseHalt(text: string): HaltMode | HaltRule {
  if (text === "never" || text === "now" || text === "soon") return text;
  if (text in LEGACY) return LEGACY[text];
  const legacyPercent = /^(\d+(?:\.\d+)?)%$/.exec(text);
  if (legacyPercent !== null) return rule("soon", "fail", legacyPercent[1], "%", text);
  const match = /^(now|soon),(fail|success|done)=(\d+(?:\.\d+)?)(%?)$/.exec(text);
  if (match === null) {
    throw new UsageError(
      "--halt",
      `Expected --halt to be never, now, soon, or now|soon,fail|success|done=N or =N%, got ${
        JSON.stringify(text)
      }`,
    );
  }
  return rule(match[1] as HaltRule["when"], match[2] as HaltRule["on"], match[3], match[4], text);
}

function rule(
  when: HaltRule["when"],
  on: HaltRule["on"],
  amount: string,
  percent: string,
  text: string,
): HaltRule {
  const n = Number(amount);
  if (percent === "%") {
    if (!(n > 0 && n <= 100)) {
      throw new UsageError(
        "--halt",
        `Expected the percentage of --halt to be above 0 and at most 100, got ${
          JSON.stringify(text)
        }`,
      );
    }
    return { when, on, percent: n };
  }
  if (!Number.isInteger(n) || n < 1) {
    throw new UsageError(
      "--halt",
      `Expected the count of --halt to be a whole number from 1, got ${JSON.stringify(text)}`,
    );
  }
  return { when, on, count: n };
}

/** The most failed jobs the exit status counts; more exit with 101. */
const MAX_COUNTED = 100;

/**
 * GNU parallel's exit status: with a halt on failures, the halting job's exit code (1 when it
 * had none); with a percentage rule, the percentage of jobs that failed; otherwise the number
 * of failed jobs, 101 from 101 on.
 */
export function exitStatus(batch: BatchResult, halt: HaltMode | HaltRule): number {
  const rule = typeof halt === "string"
    ? (halt === "never" ? undefined : { when: halt, on: "fail" as const, count: 1 })
    : halt;
  if (batch.haltedBy !== undefined && rule?.on === "fail" && rule.percent === undefined) {
    const job = batch.results[batch.haltedBy];
    return job.exitCode !== null && job.exitCode !== 0 ? job.exitCode : 1;
  }
  if (batch.haltedBy !== undefined && rule?.on === "success") return 0;
  // Jobs a halt skipped did not fail: GNU parallel counts the ones that ran.
  const failed = batch.results.filter((job) => job.attempts > 0 && !isSuccess(job)).length;
  if (rule?.percent !== undefined && batch.results.length > 0) {
    return Math.floor((100 * failed) / batch.results.length);
  }
  return Math.min(failed, MAX_COUNTED + 1);
}
