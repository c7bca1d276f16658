/**
 * Shared pieces of the contract suite: the task module, the runtime, a test wrapper that
 * fails a test whose threads or child processes outlive it, boards, and small bounded-wait
 * helpers.
 *
 * @module
 */

import { it } from "node:test";
import assert from "node:assert/strict";
import process from "node:process";
import { inspect } from "node:util";
import { spawn } from "node:child_process";
import { tasks } from "../mod.ts";
import type { StrategyName } from "../mod.ts";
import { detect, liveProcessPids, liveThreadCount } from "../src/runtime/mod.ts";
import { board, STARTED } from "./fixtures/work.ts";
import type { Board } from "./fixtures/work.ts";
import { fileBoard, isFileBoard, pidsOf } from "./fixtures/board_file.ts";

export { read, release } from "./fixtures/work.ts";
export type { Board } from "./fixtures/work.ts";

/** The fixture tasks, typed from the module. */
export const work = tasks<typeof import("./fixtures/work.ts")>(
  new URL("./fixtures/work.ts", import.meta.url),
);

/** The runtime the suite is running on. */
export const runtime = detect().name;

/** Every strategy the contract suite runs against. */
export const STRATEGIES = ["serial", "async", "threads", "processes"] as const;

/** What {@linkcode forEachStrategy} may loop over: a built-in strategy, or `"auto"`. */
export type StrategyUnderTest = StrategyName | "auto";

/** Defines one test, as {@linkcode test} does. */
export type DefineTest = (
  name: string,
  fn: () => void | Promise<void>,
  timeout?: number,
) => void;

/** Registers the tests of one strategy, defining them through `test`. */
export type StrategyBody<S> = (strategy: S, test: DefineTest) => void;

/** How {@linkcode forEachStrategy} treats a strategy that cannot run here. */
export interface ForEachStrategyOptions<S> {
  /** Why `strategy`'s tests cannot run on this runtime, or `undefined` if they can. */
  skip?: (strategy: S) => string | undefined;
}

/**
 * Defines a strategy's tests once for each of `strategies`: `body(strategy, test)` registers
 * them, in a `describe` of its own or as tests that name the strategy.
 *
 * A strategy for which `options.skip` gives a reason still registers every test, each
 * reported as skipped (`(skipped: <reason>)` in its name, and as its skip reason), so the
 * count of tests is the same on every runtime. Its body must define its tests through the
 * `test` it is given for that.
 *
 * @param strategies The strategies, in the order their tests run.
 * @param options `skip`, for strategies that cannot run on this runtime.
 * @param body Registers the tests of one strategy.
 */
export function forEachStrategy<const S extends StrategyUnderTest>(
  strategies: readonly S[],
  body: StrategyBody<S>,
): void;
export function forEachStrategy<const S extends StrategyUnderTest>(
  strategies: readonly S[],
  options: ForEachStrategyOptions<S>,
  body: StrategyBody<S>,
): void;
export function forEachStrategy<S extends StrategyUnderTest>(
  strategies: readonly S[],
  ...args: [StrategyBody<S>] | [ForEachStrategyOptions<S>, StrategyBody<S>]
): void {
  const [options, body] = args.length === 1 ? [{}, args[0]] : args;
  for (const strategy of strategies) {
    const reason = options.skip?.(strategy);
    body(
      strategy,
      reason === undefined
        ? test
        : (name) => it(`${name} (skipped: ${reason})`, { skip: reason }, () => {}),
    );
  }
}

/** Generous per-test bound: a hang fails the test with a message instead of stalling the run. */
const TEST_TIMEOUT_MS = 90_000;

/**
 * Defines a test that must leave no worker thread and no child process behind. The checks run
 * inside the test body rather than in an `afterEach` hook because Deno's `node:test` ignores
 * errors thrown by hooks (the test still reports `ok`).
 *
 * @param name What the test shows, as a sentence about behaviour.
 * @param fn The test; it must dispose every executor it creates (`await using`).
 * @param timeout Upper bound for the whole test.
 */
export function test(
  name: string,
  fn: () => void | Promise<void>,
  timeout = TEST_TIMEOUT_MS,
): void {
  it(name, { timeout }, async () => {
    const threadsBefore = liveThreadCount();
    const processesBefore = liveProcessPids();
    await fn();
    assertNoLiveThreads(threadsBefore);
    assertNoLiveProcesses(processesBefore);
  });
}

/**
 * Fails if any worker thread started by fanout is still alive.
 *
 * @param before Threads already alive when the test started (leaked by an earlier test that
 *   failed before it could check), so the message blames the right test.
 */
export function assertNoLiveThreads(before = 0): void {
  const live = liveThreadCount();
  assert.equal(
    live,
    0,
    before > 0
      ? `${live} worker thread(s) alive after the test; ${before} were already alive when it ` +
        `started, leaked by an earlier test`
      : `${live} worker thread(s) outlived the test that started them`,
  );
}

/**
 * Fails if any child process started by fanout has not been seen to exit (its exit status not
 * reaped yet).
 *
 * @param before Pids already alive when the test started (leaked by an earlier test that
 *   failed before it could check), so the message blames the right test.
 */
export function assertNoLiveProcesses(before: readonly number[] = []): void {
  const live = liveProcessPids();
  const inherited = live.filter((pid) => before.includes(pid));
  assert.deepEqual(
    live,
    [],
    inherited.length > 0
      ? `${live.length} child process(es) alive after the test (pids ${live.join(", ")}); ` +
        `${inherited.join(", ")} were already alive when it started, leaked by an earlier test`
      : `${live.length} child process(es) outlived the test that started them ` +
        `(pids ${live.join(", ")})`,
  );
}

/** How long an ended process may take to disappear from the system. */
const PIDS_GONE_MS = 5_000;
/** How often {@linkcode assertPidsGone} looks again. */
const PIDS_POLL_MS = 5;

/** Whether a process with this pid exists (a zombie still counts: nobody reaped it). */
function exists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it exists but belongs to someone else.
    return (error as { code?: unknown }).code !== "ESRCH";
  }
}

/**
 * Fails unless none of `pids` exists any more, waiting up to a few seconds for the system to
 * finish with them (fanout reaps its children before `close()` resolves, so normally at once).
 *
 * @param pids Processes that ran tasks; never the test's own.
 * @param what Which processes these are, for the message.
 */
export async function assertPidsGone(pids: readonly number[], what: string): Promise<void> {
  assert.ok(pids.length > 0, `no pids to check for ${what}`);
  assert.ok(!pids.includes(process.pid), `${what}: a task ran in the test's own process`);
  const deadline = Date.now() + PIDS_GONE_MS;
  let alive = pids.filter(exists);
  while (alive.length > 0 && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, PIDS_POLL_MS));
    alive = alive.filter(exists);
  }
  assert.deepEqual(
    alive,
    [],
    `${what}: process(es) ${alive.join(", ")} still exist ${PIDS_GONE_MS} ms later`,
  );
}

/** Resolves with what `promise` rejects with; fails the test if it resolves. */
export async function rejection(promise: Promise<unknown>, what = "the call"): Promise<unknown> {
  let value: unknown;
  try {
    value = await promise;
  } catch (error) {
    return error;
  }
  assert.fail(`Expected ${what} to reject, but it resolved to ${inspect(value)}`);
}

/** Awaits `promise`, failing (not hanging) if it has not settled after `maxMs`. */
export async function within<T>(promise: Promise<T>, maxMs: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const watchdog = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`${what} did not settle within ${maxMs} ms`)),
      maxMs,
    );
  });
  try {
    return await Promise.race([promise, watchdog]);
  } finally {
    clearTimeout(timer);
  }
}

/** Collects an async iterator into an array. */
export async function collect<T>(iterable: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const value of iterable) out.push(value);
  return out;
}

/**
 * A fresh board that reaches the tasks of `strategy`: shared memory for serial and threads, a
 * directory for processes (no shared memory crosses into a child process).
 *
 * @param items How many items record their finish rank (`ORDER + item`).
 */
export function boardFor(strategy: StrategyName, items = 0): Board {
  return strategy === "processes" ? fileBoard() : board(items);
}

/** A fresh board for `strategy` plus `n` inputs for `hold`/`spin` that wait on it. */
export function holders(
  strategy: StrategyName,
  n: number,
  maxMs = 30_000,
): { board: Board; items: { board: Board; maxMs: number }[] } {
  const b = boardFor(strategy);
  return { board: b, items: Array.from({ length: n }, () => ({ board: b, maxMs })) };
}

/** The pids of the processes whose tasks counted themselves in as STARTED on a file board. */
export function startedPids(b: Board): number[] {
  assert.ok(isFileBoard(b), "only a file board records the pids of the tasks' processes");
  return pidsOf(b, STARTED);
}

/** Describes an error for assertion messages. */
export function show(error: unknown): string {
  return inspect(error, { depth: 4 });
}

/** How long a program started by {@linkcode runProgram} may run before it counts as hung. */
export const PROGRAM_WATCHDOG_MS = 30_000;

/** How a program started by {@linkcode runProgram} ended, and what it printed. */
export interface ProgramResult {
  code: number | null;
  signal: string | null;
  stdout: string;
  /** Its stdout as it was written, for binary output. */
  stdoutBytes: Uint8Array;
  stderr: string;
  /** Whether the watchdog had to kill it. */
  hung: boolean;
}

/**
 * Runs `script` on the suite's runtime (`deno run <denoFlags>` on Deno) and collects its
 * output; kills it, and says so, if it has not exited after {@linkcode PROGRAM_WATCHDOG_MS}.
 */
export function runProgram(
  script: string,
  args: string[],
  denoFlags: string[] = ["-A"],
): Promise<ProgramResult> {
  const { name, execPath } = detect();
  const argv = name === "deno" ? ["run", ...denoFlags, script, ...args] : [script, ...args];
  return new Promise((resolve, reject) => {
    const child = spawn(execPath, argv, { stdio: ["ignore", "pipe", "pipe"] });
    const stdout: Uint8Array[] = [];
    let stderr = "";
    let hung = false;
    child.stdout.on("data", (d: Uint8Array) => stdout.push(d));
    child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    const watchdog = setTimeout(() => {
      hung = true;
      child.kill("SIGKILL");
    }, PROGRAM_WATCHDOG_MS);
    child.on("error", (error) => {
      clearTimeout(watchdog);
      reject(error);
    });
    child.on("close", (code, signal) => {
      clearTimeout(watchdog);
      const bytes = new Uint8Array(stdout.reduce((n, d) => n + d.length, 0));
      let at = 0;
      for (const d of stdout) {
        bytes.set(d, at);
        at += d.length;
      }
      resolve({
        code,
        signal,
        stdout: new TextDecoder().decode(bytes),
        stdoutBytes: bytes,
        stderr,
        hung,
      });
    });
  });
}

/** What a program printed, for assertion messages. */
export function programReport(result: ProgramResult): string {
  return `\n--- stdout\n${result.stdout}\n--- stderr\n${result.stderr}`;
}

/**
 * Checks that a program started by {@linkcode runProgram} exited by itself (with `code`, unless
 * it is `"any"`), and parses the JSON it printed after `marker`.
 */
export function programResult(
  result: ProgramResult,
  marker: string,
  code: number | "any" = 0,
): unknown {
  const report = programReport(result);
  assert.equal(
    result.hung,
    false,
    `the program did not exit within ${PROGRAM_WATCHDOG_MS} ms${report}`,
  );
  if (code !== "any") {
    assert.equal(
      result.code,
      code,
      `the program exited with code ${result.code} (${result.signal})${report}`,
    );
  }
  const line = result.stdout.split("\n").find((l) => l.startsWith(marker));
  assert.ok(line !== undefined, `the program printed no "${marker.trim()}" line${report}`);
  return JSON.parse(line.slice(marker.length));
}
