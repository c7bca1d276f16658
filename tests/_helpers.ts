/**
 * Shared pieces of the contract suite: the task module, the runtime, a test wrapper that
 * fails a test whose threads outlive it, and small bounded-wait helpers.
 *
 * @module
 */

import { it } from "node:test";
import assert from "node:assert/strict";
import { inspect } from "node:util";
import { tasks } from "../mod.ts";
import { detect, liveThreadCount } from "../src/runtime/mod.ts";
import { board, RELEASE } from "./fixtures/work.ts";

/** The fixture tasks, typed from the module. */
export const work = tasks<typeof import("./fixtures/work.ts")>(
  new URL("./fixtures/work.ts", import.meta.url),
);

/** The runtime the suite is running on. */
export const runtime = detect().name;

/** Every strategy the contract suite runs against. */
export const STRATEGIES = ["serial", "threads"] as const;

/** Generous per-test bound: a hang fails the test with a message instead of stalling the run. */
const TEST_TIMEOUT_MS = 90_000;

/**
 * Defines a test that must leave no worker thread behind. The check runs inside the test body
 * rather than in an `afterEach` hook because Deno's `node:test` ignores errors thrown by hooks
 * (the test still reports `ok`).
 *
 * @param name What the test shows, as a sentence about behaviour.
 * @param fn The test; it must dispose every executor it creates (`await using`).
 * @param timeout Upper bound for the whole test.
 */
export function test(name: string, fn: () => Promise<void>, timeout = TEST_TIMEOUT_MS): void {
  it(name, { timeout }, async () => {
    const before = liveThreadCount();
    await fn();
    assertNoLiveThreads(before);
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

/** Sets the board's RELEASE flag and wakes every task waiting on it. */
export function release(b: Int32Array<SharedArrayBuffer>): void {
  Atomics.store(b, RELEASE, 1);
  Atomics.notify(b, RELEASE);
}

/** A fresh board plus `n` inputs for `hold`/`spin` that wait on it. */
export function holders(
  n: number,
  maxMs = 30_000,
): {
  board: Int32Array<SharedArrayBuffer>;
  items: { board: Int32Array<SharedArrayBuffer>; maxMs: number }[];
} {
  const b = board();
  return { board: b, items: Array.from({ length: n }, () => ({ board: b, maxMs })) };
}

/** Describes an error for assertion messages. */
export function show(error: unknown): string {
  return inspect(error, { depth: 4 });
}
