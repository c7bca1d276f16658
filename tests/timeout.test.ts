/**
 * `timeoutMs`: a task that runs past it fails with `TaskTimeoutError` and is stopped where the
 * runtime allows it — its process is killed, a thread on Bun or Node is terminated, a busy
 * thread on Deno sees `ctx.signal` abort — and the executor stays usable. The option is
 * validated at the boundary, and cannot be combined with chunks of more than one item.
 *
 * Nothing here measures time: a spinning task would run for tens of seconds without the
 * timeout, so the call rejecting (within a generous bound) with the right error is the proof.
 */

import { describe } from "node:test";
import assert from "node:assert/strict";
import { ParallelExecutor, TaskError, tasks, TaskTimeoutError } from "../mod.ts";
import type { ExecutorOptions, StrategyName } from "../mod.ts";
import { board, SAW_ABORT, TIMED_OUT } from "./fixtures/work.ts";
import { waitForSlot } from "./fixtures/wait.ts";
import { removeDir, tempDir, waitForPids, waitUntilGone } from "./fixtures/proc.ts";
import { collect, rejection, release, runtime, show, test, within, work } from "./_helpers.ts";

const proc = tasks<typeof import("./fixtures/proc.ts")>(
  new URL("./fixtures/proc.ts", import.meta.url),
);

/** The timeout the tests use: far shorter than any spinning task, far longer than a square. */
const TIMEOUT = 300;
/** How long a spinning task runs if nothing stops it: far beyond every bound below. */
const SPIN_MS = 60_000;
/** Bound on how long a call may take to reject after its task ran past the timeout. */
const SETTLE_MS = 20_000;

/** Asserts `error` is a TaskTimeoutError for the task at `index` and the given limit. */
function assertTimedOut(error: unknown, index: number, timeoutMs = TIMEOUT): TaskTimeoutError {
  assert.ok(error instanceof TaskTimeoutError, `expected TaskTimeoutError, got ${show(error)}`);
  assert.ok(error instanceof TaskError, "TaskTimeoutError is a TaskError");
  assert.equal(error.name, "TaskTimeoutError");
  assert.equal(error.index, index, `index of the task that timed out: ${show(error)}`);
  assert.equal(error.timeoutMs, timeoutMs, `timeoutMs of the error: ${show(error)}`);
  return error;
}

/** Items for squareOrSpin: squares of 1..n, except that the one at `spinAt` spins. */
function mixed(n: number, spinAt: number, dir?: string) {
  return Array.from({ length: n }, (_, i) => ({
    n: i + 1,
    spin: i === spinAt
      ? { maxMs: SPIN_MS, mark: dir === undefined ? undefined : { dir, tag: `item-${i}` } }
      : undefined,
  }));
}

describe("timeoutMs (processes)", () => {
  const options = { strategy: "processes", maxWorkers: 2 } as const;

  /**
   * Runs `call` (whose task at `index` spins and records its pid as `item-<index>`), checks it
   * rejects with TaskTimeoutError, that the task's process is killed, and that the executor
   * still runs work.
   */
  async function timesOut(
    ex: ParallelExecutor,
    dir: string,
    call: Promise<unknown>,
    index: number,
    what: string,
  ): Promise<void> {
    assertTimedOut(await within(rejection(call, what), SETTLE_MS, what), index);
    const pids = await waitForPids(dir, [`item-${index}`], "the timed-out task's pid");
    await waitUntilGone(pids, "the process of the task that timed out to be killed");
    assert.deepEqual(
      await within(ex.map(proc.squareOrSpin, mixed(3, -1)), SETTLE_MS, "map() afterwards"),
      [1, 4, 9],
    );
  }

  test("a task that runs past the executor's timeoutMs rejects map() with TaskTimeoutError, its process is killed, and the executor recovers", async () => {
    await using ex = new ParallelExecutor({ ...options, timeoutMs: TIMEOUT });
    const dir = tempDir();
    try {
      await timesOut(ex, dir, ex.map(proc.squareOrSpin, mixed(3, 1, dir)), 1, "map()");
    } finally {
      removeDir(dir);
    }
  });

  test("map()'s own timeoutMs stops a task that runs past it", async () => {
    await using ex = new ParallelExecutor(options);
    const dir = tempDir();
    try {
      const call = ex.map(proc.squareOrSpin, mixed(4, 2, dir), { timeoutMs: TIMEOUT });
      await timesOut(ex, dir, call, 2, "map() with timeoutMs");
    } finally {
      removeDir(dir);
    }
  });

  test("submit()'s own timeoutMs stops a task that runs past it", async () => {
    await using ex = new ParallelExecutor(options);
    const dir = tempDir();
    try {
      const [item] = mixed(1, 0, dir);
      const call = ex.submit(proc.squareOrSpin, item, { timeoutMs: TIMEOUT });
      await timesOut(ex, dir, call, 0, "submit() with timeoutMs");
    } finally {
      removeDir(dir);
    }
  });

  test("a call's timeoutMs overrides a longer one of the executor", async () => {
    await using ex = new ParallelExecutor({ ...options, timeoutMs: SPIN_MS * 2 });
    const dir = tempDir();
    try {
      const call = ex.map(proc.squareOrSpin, mixed(2, 0, dir), { timeoutMs: TIMEOUT });
      await timesOut(ex, dir, call, 0, "map() with a shorter timeoutMs than its executor's");
    } finally {
      removeDir(dir);
    }
  });

  test("a call's timeoutMs overrides a shorter one of the executor", async () => {
    // Each task sleeps well past the executor's limit, but within the call's.
    await using ex = new ParallelExecutor({ ...options, timeoutMs: TIMEOUT });
    const slow = (value: string) => ({ ms: TIMEOUT * 5, value });
    assert.deepEqual(
      await within(
        ex.map(proc.sleepThen, [slow("a"), slow("b")], { timeoutMs: SPIN_MS }),
        SETTLE_MS,
        "map() with a longer timeoutMs than its executor's",
      ),
      ["a", "b"],
    );
    assert.equal(
      await within(
        ex.submit(proc.sleepThen, slow("c"), { timeoutMs: SPIN_MS }),
        SETTLE_MS,
        "submit() with a longer timeoutMs than its executor's",
      ),
      "c",
    );
  });
});

describe("timeoutMs (threads)", () => {
  if (runtime !== "deno") {
    test("a thread whose task runs past timeoutMs is terminated: the call rejects with TaskTimeoutError and the executor recovers", async () => {
      // One thread, and a task deaf to ctx.signal: only terminating the thread frees it.
      await using ex = new ParallelExecutor({
        strategy: "threads",
        maxWorkers: 1,
        timeoutMs: TIMEOUT,
      });
      const items = [{ n: 1 }, { n: 2, spin: { maxMs: SPIN_MS, deaf: true } }, { n: 3 }];
      assertTimedOut(
        await within(rejection(ex.map(proc.squareOrSpin, items)), SETTLE_MS, "map()"),
        1,
      );
      assert.equal(
        await within(ex.submit(proc.square, 6), SETTLE_MS, "submit() after the timeout"),
        36,
      );
    });
  } else {
    test("on Deno a busy thread cannot be stopped: the call rejects with TaskTimeoutError pointing to processes, and the task sees ctx.signal abort", async () => {
      await using ex = new ParallelExecutor({
        strategy: "threads",
        maxWorkers: 1,
        timeoutMs: TIMEOUT,
      });
      const b = board();
      try {
        const error = assertTimedOut(
          await within(
            rejection(ex.submit(work.spin, { board: b, maxMs: SPIN_MS })),
            SETTLE_MS,
            "submit() of a task that spins past its timeout",
          ),
          0,
        );
        assert.match(error.message, /processes/, "the message should say processes can stop it");
        await waitForSlot(b, SAW_ABORT, 1, "the spinning task to see ctx.signal.aborted");
        assert.equal(Atomics.load(b, TIMED_OUT), 0, "the task ran to its own limit instead");
        assert.equal(
          await within(ex.submit(proc.square, 6), SETTLE_MS, "submit() after the timeout"),
          36,
        );
      } finally {
        release(b);
      }
    });
  }
});

describe("timeoutMs (serial)", () => {
  test("an async task that runs past timeoutMs rejects with TaskTimeoutError and sees ctx.signal abort", async () => {
    await using ex = new ParallelExecutor({ strategy: "serial", timeoutMs: TIMEOUT });
    const b = board();
    try {
      assertTimedOut(
        await within(
          rejection(ex.submit(work.hold, { board: b, maxMs: SPIN_MS })),
          SETTLE_MS,
          "submit() of a task that waits past its timeout",
        ),
        0,
      );
      await waitForSlot(b, SAW_ABORT, 1, "the waiting task to see ctx.signal.aborted");
      assert.equal(Atomics.load(b, TIMED_OUT), 0, "the task ran to its own limit instead");
      assert.deepEqual(await ex.map(work.square, [2, 3]), [4, 9]);
    } finally {
      release(b);
    }
  });

  test("map()'s own timeoutMs applies on serial too", async () => {
    await using ex = new ParallelExecutor({ strategy: "serial" });
    const b = board();
    try {
      const items = [{ board: b, maxMs: SPIN_MS }, { board: b, maxMs: SPIN_MS }];
      assertTimedOut(
        await within(
          rejection(ex.map(work.hold, items, { timeoutMs: TIMEOUT })),
          SETTLE_MS,
          "map() with timeoutMs",
        ),
        0,
      );
      await waitForSlot(b, SAW_ABORT, 1, "the waiting task to see ctx.signal.aborted");
    } finally {
      release(b);
    }
  });
});

// ---- validation -------------------------------------------------------------------------------

const STRATEGY_NAMES: StrategyName[] = ["serial", "threads", "processes"];

function assertNamesOption(
  error: unknown,
  expected: typeof TypeError | typeof RangeError,
  names: string[],
  where: string,
): void {
  const other = expected === RangeError ? TypeError : RangeError;
  assert.ok(
    error instanceof expected && !(error instanceof other),
    `${where}: expected ${expected.name}, got ${show(error)}`,
  );
  for (const name of names) {
    assert.ok(
      error.message.includes(name),
      `${where}: the message should name \`${name}\`: ${error.message}`,
    );
  }
}

/** What constructing an executor throws (it is disposed at once if it does not throw). */
async function constructionError(options: ExecutorOptions): Promise<unknown> {
  try {
    const ex = new ParallelExecutor(options);
    await ex.terminate();
  } catch (error) {
    return error;
  }
  return undefined;
}

describe("timeoutMs (validation)", () => {
  const BAD: [unknown, typeof RangeError | typeof TypeError][] = [
    [0, RangeError],
    [-1, RangeError],
    [Number.NaN, RangeError],
    ["300", TypeError],
  ];
  for (const [value, expected] of BAD) {
    test(`timeoutMs: ${show(value)} throws a ${expected.name} naming it, on the executor and per call`, async () => {
      for (const strategy of STRATEGY_NAMES) {
        const where = `new ParallelExecutor({ strategy: "${strategy}", timeoutMs: ${
          show(value)
        } })`;
        const options = { strategy, timeoutMs: value } as ExecutorOptions;
        assertNamesOption(await constructionError(options), expected, ["timeoutMs"], where);
      }
      await using ex = new ParallelExecutor({ strategy: "serial" });
      const timeoutMs = value as number;
      assertNamesOption(
        await rejection(ex.map(work.square, [1], { timeoutMs })),
        expected,
        ["timeoutMs"],
        "map()",
      );
      assertNamesOption(
        await rejection(ex.submit(work.square, 1, { timeoutMs })),
        expected,
        ["timeoutMs"],
        "submit()",
      );
      assertNamesOption(
        await rejection((async () => await collect(ex.imap(work.square, [1], { timeoutMs })))()),
        expected,
        ["timeoutMs"],
        "imap()",
      );
      // The executor is unharmed.
      assert.deepEqual(await ex.map(work.square, [2]), [4]);
    });
  }

  test("timeoutMs with chunkSize above 1 throws a RangeError naming both, wherever each is set", async () => {
    const both = ["timeoutMs", "chunkSize"];
    for (const strategy of STRATEGY_NAMES) {
      assertNamesOption(
        await constructionError({ strategy, timeoutMs: TIMEOUT, chunkSize: 4 }),
        RangeError,
        both,
        `new ParallelExecutor({ strategy: "${strategy}", timeoutMs, chunkSize: 4 })`,
      );
    }
    {
      await using ex = new ParallelExecutor({ strategy: "serial" });
      assertNamesOption(
        await rejection(ex.map(work.square, [1], { timeoutMs: TIMEOUT, chunkSize: 4 })),
        RangeError,
        both,
        "map() with timeoutMs and chunkSize: 4",
      );
      assertNamesOption(
        await rejection(
          (async () =>
            await collect(ex.imap(work.square, [1], { timeoutMs: TIMEOUT, chunkSize: 4 })))(),
        ),
        RangeError,
        both,
        "imap() with timeoutMs and chunkSize: 4",
      );
    }
    {
      await using ex = new ParallelExecutor({ strategy: "serial", chunkSize: 4 });
      assertNamesOption(
        await rejection(ex.map(work.square, [1], { timeoutMs: TIMEOUT })),
        RangeError,
        both,
        "map() with timeoutMs on an executor with chunkSize: 4",
      );
    }
    {
      await using ex = new ParallelExecutor({ strategy: "serial", timeoutMs: TIMEOUT });
      assertNamesOption(
        await rejection(ex.map(work.square, [1], { chunkSize: 4 })),
        RangeError,
        both,
        "map() with chunkSize: 4 on an executor with timeoutMs",
      );
    }
  });

  test('timeoutMs goes with chunkSize 1 and "auto"', async () => {
    for (const chunkSize of [1, "auto"] as const) {
      await using ex = new ParallelExecutor({ strategy: "serial", timeoutMs: SPIN_MS, chunkSize });
      assert.deepEqual(await ex.map(work.square, [1, 2, 3], { chunkSize }), [1, 4, 9]);
    }
  });
});
