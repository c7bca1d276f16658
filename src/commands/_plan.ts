/**
 * The first stage of a batch of `runCommands`: checks the options and every job before
 * anything starts, and fills in each job's defaults, so that the batch (`_batch.ts`) runs a
 * {@linkcode Plan} it no longer has to question.
 *
 * @module
 */

import type { CommandJob, CommandOptions, CommandProgress, HaltRule } from "../run_commands.ts";
import {
  checkFlag,
  checkFunction,
  checkInteger,
  checkKeys,
  checkMs,
  checkSignal,
  describe,
  MAX_TIMER_MS,
} from "../_checks.ts";
import { KILL_GRACE_MS } from "../runtime/_kill.ts";
import { detect } from "../runtime/mod.ts";

/** A job with the batch's defaults filled in. */
export interface PlannedJob {
  /** The job's `cmd`, as given (for results and messages). */
  readonly cmd: readonly string[];
  /** What is spawned: `cmd`, or the `/bin/sh -c` line that runs it. */
  readonly argv: readonly string[];
  readonly cwd: string | undefined;
  readonly env: Record<string, string> | undefined;
  readonly stdin: Uint8Array | undefined;
  readonly timeoutMs: number;
}

/** Checked jobs and settings. */
export interface Plan {
  readonly jobs: readonly PlannedJob[];
  /** Already 1 when `parallel` is `false`. */
  readonly maxWorkers: number;
  readonly signal: AbortSignal | undefined;
  readonly onProgress: ((progress: CommandProgress) => void | Promise<void>) | undefined;
  /** `undefined`: never halt. */
  readonly halt: HaltRule | undefined;
  readonly retries: number;
  readonly maxOutputBytes: number;
  readonly killGraceMs: number;
  /**
   * Rewrites a job as it starts, knowing its slot (1 to `maxWorkers`, the lowest one free):
   * the `fanout` command's `{%}`. Not an option of `runCommands`.
   */
  readonly prepare?: (job: PlannedJob, index: number, slot: number) => PlannedJob;
}

const DEFAULT_MAX_WORKERS = 4;
const DEFAULT_TIMEOUT_MS = 300_000;
const DEFAULT_MAX_OUTPUT_BYTES = 10 * 1024 * 1024;
const SHELL = "/bin/sh";
const HALT_RULE_KEYS = ["when", "on", "count", "percent"];
const HALT_ON: readonly HaltRule["on"][] = ["fail", "success", "done"];

/**
 * Most commands a batch may run at once on this machine: `max(64, 16 × CPUs)`. A bound
 * still, against a typo such as `-j 100000` exhausting processes and file descriptors (each
 * running command holds two pipes), but one that grows with the machine.
 */
export function maxCommandWorkers(): number {
  return Math.max(64, 16 * detect().cpus);
}
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
 * Checks `options` and every job, and plans the batch.
 *
 * @throws {TypeError} If a job or an option has the wrong shape, or an option is unknown.
 * @throws {RangeError} If an option is out of range.
 */
export function planBatch(jobs: Iterable<CommandJob>, options: CommandOptions): Plan {
  checkKeys("options", options, OPTIONS);
  const maxWorkers = options.maxWorkers === undefined
    ? DEFAULT_MAX_WORKERS
    : checkInteger("maxWorkers", options.maxWorkers, 1, maxCommandWorkers());
  const parallel = checkFlag("parallel", options.parallel ?? true);
  const timeoutMs = checkMs("timeoutMs", options.timeoutMs ?? DEFAULT_TIMEOUT_MS, {
    infinite: true,
  });
  const signal = checkSignal(options.signal);
  const onProgress = checkFunction("onProgress", options.onProgress);
  const halt = checkHalt(options.halt ?? "never");
  const retries = checkInteger("retries", options.retries ?? 0, 0);
  const maxOutputBytes = checkInteger(
    "maxOutputBytes",
    options.maxOutputBytes ?? DEFAULT_MAX_OUTPUT_BYTES,
    0,
  );
  const shell = checkFlag("shell", options.shell ?? false);
  // Whole ms, as it always was here (tests/recycle.test.ts refuses 1.5); the executor's own
  // `killGraceMs` takes any duration.
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
  return {
    jobs: Array.from(jobs, (job, index) => planJob(job, index, timeoutMs, shell)),
    maxWorkers: parallel ? maxWorkers : 1,
    signal,
    onProgress,
    halt,
    retries,
    maxOutputBytes,
    killGraceMs,
  };
}

function checkHalt(halt: unknown): HaltRule | undefined {
  if (halt === "never") return undefined;
  if (halt === "soon" || halt === "now") return { when: halt, on: "fail", count: 1 };
  if (typeof halt === "object" && halt !== null && !Array.isArray(halt)) {
    return checkHaltRule(halt as HaltRule);
  }
  const expected = 'Expected `halt` to be "never", "soon", "now" or a halt rule';
  if (typeof halt !== "string") throw new TypeError(`${expected}, got ${describe(halt)}`);
  throw new RangeError(`${expected}, got ${describe(halt)}`);
}

function checkHaltRule(rule: HaltRule): HaltRule {
  checkKeys("halt", rule, HALT_RULE_KEYS);
  if (rule.when !== "soon" && rule.when !== "now") {
    throw new RangeError(
      `Expected \`halt.when\` to be "soon" or "now", got ${describe(rule.when)}`,
    );
  }
  if (!HALT_ON.includes(rule.on)) {
    throw new RangeError(
      `Expected \`halt.on\` to be "fail", "success" or "done", got ${describe(rule.on)}`,
    );
  }
  if (rule.count !== undefined && rule.percent !== undefined) {
    throw new TypeError("Expected `halt` to have `count` or `percent`, got both");
  }
  if (rule.percent !== undefined) {
    if (typeof rule.percent !== "number" || !(rule.percent > 0 && rule.percent <= 100)) {
      throw new RangeError(
        `Expected \`halt.percent\` to be a number above 0 and at most 100, got ${
          describe(rule.percent)
        }`,
      );
    }
    return { when: rule.when, on: rule.on, percent: rule.percent };
  }
  return { when: rule.when, on: rule.on, count: checkInteger("halt.count", rule.count ?? 1, 1) };
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
  const viaShell = checkFlag(`${name}.shell`, job.shell ?? shell);
  const strings = cmd as string[];
  return {
    cmd: [...strings],
    argv: viaShell ? [SHELL, "-c", strings[0], "sh", ...strings.slice(1)] : [...strings],
    cwd: job.cwd,
    env: env === undefined ? undefined : { ...env as Record<string, string> },
    stdin: typeof stdin === "string" ? new TextEncoder().encode(stdin) : stdin,
    timeoutMs: job.timeoutMs === undefined
      ? timeoutMs
      : checkMs(`${name}.timeoutMs`, job.timeoutMs, { infinite: true }),
  };
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
