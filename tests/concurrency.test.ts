/**
 * The `concurrency` option: how many items of a call may be in flight at once, on the calling
 * thread (`"serial"`, `"async"`) or per worker (`"threads"`, `"processes"`). Its checks (the
 * executor option, the per-call option, `CE_PARALLEL`'s token), its defaults, its precedence,
 * and the bound itself, observed by the tasks: on the calling thread through a gate that holds
 * every item until the bound is in flight (so reaching it is certain and passing it is seen),
 * in a worker through the most in flight its module saw.
 */

import { describe } from "node:test";
import assert from "node:assert/strict";
import { setImmediate } from "node:timers";
import { ParallelExecutor, parseParallelEnv, tasks } from "../mod.ts";
import * as local from "./fixtures/io_work.ts";
import { collect, forEachStrategy, show, test, within, work } from "./_helpers.ts";

const io = tasks<typeof import("./fixtures/io_work.ts")>(
  new URL("./fixtures/io_work.ts", import.meta.url),
);

/** Longest a gated call may take before the test fails instead of hanging. */
const BOUND_MS = 30_000;

/** What a call or constructor threw or rejected with; fails the test if it did neither. */
async function failure(what: string, fn: () => unknown): Promise<unknown> {
  try {
    await fn();
  } catch (error) {
    return error;
  }
  assert.fail(`Expected ${what} to fail`);
}

/** Bad values of `concurrency`, the class each is refused with, and how the message shows it. */
const BAD: [unknown, typeof TypeError | typeof RangeError, string][] = [
  ["8", TypeError, '"8" (string)'],
  [true, TypeError, "`true` (boolean)"],
  [8n, TypeError, "`8` (bigint)"],
  [{}, TypeError, "an object"],
  [0, RangeError, "`0` (number)"],
  [-1, RangeError, "`-1` (number)"],
  [1.5, RangeError, "`1.5` (number)"],
  [NaN, RangeError, "`NaN` (number)"],
  [Infinity, RangeError, "`Infinity` (number)"],
  [65_537, RangeError, "`65537` (number)"],
];

/** Checks that `error` is `Class`, names `concurrency` and shows the value it got. */
function assertRefused(
  error: unknown,
  Class: typeof TypeError | typeof RangeError,
  shown: string,
): void {
  assert.ok(error instanceof Class, `expected ${Class.name}, got ${show(error)}`);
  // A RangeError is no TypeError, nor the other way round.
  assert.equal(error.constructor, Class, show(error));
  assert.match(error.message, /`concurrency`/, show(error));
  assert.ok(error.message.includes(shown), `the message shows ${shown}: ${error.message}`);
  assert.ok(
    error.message.includes("from 1 to 65536"),
    `the message says the range: ${error.message}`,
  );
}

/**
 * Runs `call` with the gate armed at `bound` (every gated item waits until `bound` are in
 * flight at once), opening it for good afterwards whatever happened; returns what the gate saw.
 */
async function gatedRun<T>(
  bound: number,
  what: string,
  call: () => Promise<T>,
  maxMs = BOUND_MS,
): Promise<{ result: T; max: number; started: number }> {
  local.resetGate(bound);
  try {
    const result = await within(call(), maxMs, `${what} (reaching ${bound} in flight)`)
      .catch((error: unknown) => {
        throw new Error(`${show(error)}\nthe gate saw ${show(local.gateState())}`);
      });
    const { max, started, inFlight } = local.gateState();
    assert.equal(inFlight, 0, `${what}: nothing is left in flight`);
    return { result, max, started };
  } finally {
    local.openGate();
  }
}

/** `0..n-1`. */
const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);

describe("concurrency: the option's checks", () => {
  test("the executor option takes an integer from 1 to 65536; else a TypeError or RangeError naming it", async () => {
    for (const [value, Class, shown] of BAD) {
      const error = await failure(
        `new ParallelExecutor({ concurrency: ${show(value)} })`,
        () => new ParallelExecutor({ concurrency: value as number }),
      );
      assertRefused(error, Class, shown);
    }
    const nulled = await failure(
      "new ParallelExecutor({ concurrency: null })",
      () => new ParallelExecutor({ concurrency: null as unknown as number }),
    );
    assert.ok(nulled instanceof TypeError, show(nulled));
    assert.match(nulled.message, /`concurrency`/);
    for (const concurrency of [1, 2, 65_536]) {
      await using ex = new ParallelExecutor({ strategy: "async", concurrency });
      assert.deepEqual(
        await ex.map(work.square, [1, 2, 3]),
        [1, 4, 9],
        `concurrency ${concurrency}`,
      );
    }
  });

  test("map and imap take a per-call concurrency, checked the same way", async () => {
    await using ex = new ParallelExecutor({ strategy: "serial" });
    for (const [value, Class, shown] of BAD) {
      const options = { concurrency: value as number };
      assertRefused(
        await failure(
          `map(…, { concurrency: ${show(value)} })`,
          () => ex.map(work.square, [1, 2], options),
        ),
        Class,
        shown,
      );
      assertRefused(
        await failure(
          `imap(…, { concurrency: ${show(value)} })`,
          () => collect(ex.imap(work.square, [1, 2], options)),
        ),
        Class,
        shown,
      );
    }
    assert.deepEqual(await ex.map(work.square, [1, 2, 3], { concurrency: 65_536 }), [1, 4, 9]);
    assert.deepEqual(await collect(ex.imap(work.square, [1, 2], { concurrency: 1 })), [1, 4]);
    assert.equal(ex.stats().failedCalls, 0, "a refused call is never begun");
  });

  test("imap refuses a bad concurrency at once, before any result is taken", async () => {
    await using ex = new ParallelExecutor({ strategy: "async" });
    assert.throws(() => ex.imap(work.square, [1], { concurrency: 0 }), RangeError);
    assert.throws(
      () => ex.imap(work.square, [1], { concurrency: "2" as unknown as number }),
      TypeError,
    );
  });

  test("submit() takes no per-call concurrency: it is an unknown option, a TypeError naming it", async () => {
    await using ex = new ParallelExecutor({ strategy: "async" });
    const error = await failure(
      "submit(…, { concurrency: 2 })",
      () => ex.submit(work.square, 3, { concurrency: 2 } as never),
    );
    assert.ok(error instanceof TypeError, show(error));
    assert.match(error.message, /`concurrency`/);
    assert.equal(await ex.submit(work.square, 3), 9);
  });

  test("CE_PARALLEL's concurrency=N is read; a bad N is a RangeError naming the token", () => {
    assert.deepEqual(parseParallelEnv("concurrency=8"), { concurrency: 8 });
    assert.deepEqual(parseParallelEnv("async,concurrency=8"), { mode: "async", concurrency: 8 });
    assert.deepEqual(parseParallelEnv(" threads , concurrency = 65536 "), {
      mode: "threads",
      concurrency: 65_536,
    });
    assert.deepEqual(parseParallelEnv("async"), { mode: "async" });
    for (const bad of ["0", "65537", "-1", "1.5", "eight", ""]) {
      const token = `concurrency=${bad}`;
      assert.throws(
        () => parseParallelEnv(token),
        (error: unknown) =>
          error instanceof RangeError && error.message.includes(JSON.stringify(token)) &&
          /concurrency/.test(error.message),
        token,
      );
    }
    assert.throws(() => parseParallelEnv("concurrency=2,concurrency=3"), RangeError);
  });
});

describe("concurrency: on the calling thread", () => {
  test("serial keeps one item in flight by default", async () => {
    await using ex = new ParallelExecutor({ strategy: "serial" });
    const { result, max, started } = await gatedRun(
      1,
      "serial map()",
      () => ex.map(io.gated, range(20)),
    );
    assert.deepEqual(result, range(20));
    assert.equal(started, 20);
    assert.equal(max, 1);
  });

  test("serial with concurrency 3 keeps exactly 3 in flight", async () => {
    await using ex = new ParallelExecutor({ strategy: "serial", concurrency: 3 });
    const { result, max } = await gatedRun(
      3,
      "serial map(), concurrency 3",
      () => ex.map(io.gated, range(30)),
    );
    assert.deepEqual(result, range(30));
    assert.equal(max, 3);
  });

  test("async keeps 64 in flight by default, never more", async () => {
    await using ex = new ParallelExecutor({ strategy: "async" });
    const { result, max, started } = await gatedRun(
      64,
      "async map()",
      () => ex.map(io.gated, range(100)),
    );
    assert.deepEqual(result, range(100));
    assert.equal(started, 100);
    assert.equal(max, 64);
  });

  test("async with the executor's concurrency 5 keeps exactly 5 in flight", async () => {
    await using ex = new ParallelExecutor({ strategy: "async", concurrency: 5 });
    const { result, max } = await gatedRun(
      5,
      "async map(), concurrency 5",
      () => ex.map(io.gated, range(40)),
    );
    assert.deepEqual(result, range(40));
    assert.equal(max, 5);
  });

  test("a per-call concurrency overrides the executor's, up or down", async () => {
    {
      await using ex = new ParallelExecutor({ strategy: "async", concurrency: 3 });
      const up = await gatedRun(
        7,
        "map(), concurrency 7 over 3",
        () => ex.map(io.gated, range(40), { concurrency: 7 }),
      );
      assert.deepEqual(up.result, range(40));
      assert.equal(up.max, 7);
      // And the executor's holds again for the next call. (Another task: what the first call
      // measured of `gated` is not what this checks; see the test of a repeated call below.)
      const again = await gatedRun(
        3,
        "map() with the executor's 3",
        () => ex.map(io.gatedAgain, range(20)),
      );
      assert.deepEqual(again.result, range(20));
      assert.equal(again.max, 3);
    }
    {
      await using ex = new ParallelExecutor({ strategy: "async", concurrency: 10 });
      const down = await gatedRun(
        2,
        "map(), concurrency 2 under 10",
        () => ex.map(io.gated, range(20), { concurrency: 2 }),
      );
      assert.deepEqual(down.result, range(20));
      assert.equal(down.max, 2);
    }
    {
      await using ex = new ParallelExecutor({ strategy: "async" });
      const below = await gatedRun(
        4,
        "map(), concurrency 4 under async's 64",
        () => ex.map(io.gated, range(30), { concurrency: 4 }),
      );
      assert.equal(below.max, 4);
    }
    {
      await using ex = new ParallelExecutor({ strategy: "serial" });
      const serial = await gatedRun(
        4,
        "serial map(), concurrency 4",
        () => ex.map(io.gated, range(30), { concurrency: 4 }),
      );
      assert.deepEqual(serial.result, range(30));
      assert.equal(serial.max, 4);
    }
  });

  test("imap on async keeps the bound, ordered or not", async () => {
    for (const ordered of [true, false]) {
      await using ex = new ParallelExecutor({ strategy: "async", concurrency: 6 });
      const { result, max } = await gatedRun(
        6,
        `imap(), ordered: ${ordered}`,
        () => collect(ex.imap(io.gated, range(50), { ordered })),
      );
      assert.deepEqual(ordered ? result : [...result].sort((a, b) => a - b), range(50));
      assert.equal(max, 6, `ordered: ${ordered}`);
    }
  });

  test("a call after a quick one of the same task still has its concurrency in flight", async () => {
    // The first call's items return at once, so the task's time per item is measured tiny;
    // the next call's items wait (at the gate) until 4 are in flight together. On the calling
    // thread a chunk's items run one after another, so a chunk of several of them holds back
    // all but one: the bound must still be reachable.
    await using ex = new ParallelExecutor({ strategy: "async", concurrency: 4 });
    const quick = range(2000).map((i) => -1 - i);
    assert.deepEqual(await ex.map(io.gated, quick), quick);
    const { result, max } = await gatedRun(
      4,
      "the second map() of the task, concurrency 4",
      () => ex.map(io.gated, range(20)),
      10_000,
    );
    assert.deepEqual(result, range(20));
    assert.equal(max, 4);
  });

  test("submits on async with concurrency 3: at most 3 in flight, each resolves with its own value", async () => {
    await using ex = new ParallelExecutor({ strategy: "async", concurrency: 3 });
    const { result, max, started } = await gatedRun(
      3,
      "10 submits",
      () => Promise.all(range(10).map((n) => ex.submit(io.gated, n))),
    );
    assert.deepEqual(result, range(10));
    assert.equal(started, 10);
    assert.equal(max, 3);
  });

  test('the "async" strategy is named as such, runs on the calling thread, and has one worker', async () => {
    await using ex = new ParallelExecutor({ strategy: "async", concurrency: 16 });
    assert.equal(ex.strategy, "async");
    assert.equal(ex.maxWorkers, 1);
    const plan = await ex.explain(io.gated, range(10));
    assert.equal(plan.strategy, "async", show(plan));
    assert.equal(plan.inProcess, true, show(plan));
    assert.equal(plan.workers, 1, show(plan));
    assert.match(plan.reason, /^async/, show(plan));
    assert.equal(ex.stats().tasks, 0, "explain() on a fixed strategy runs nothing");
    const { result } = await gatedRun(1, "map() after explain()", () => ex.map(io.gated, range(3)));
    assert.deepEqual(result, range(3));
    assert.deepEqual(ex.stats().byStrategy, { async: 1 });
  });
});

forEachStrategy(["threads", "processes"], (strategy, test) => {
  describe(`concurrency: per worker (${strategy})`, () => {
    /** The most in flight at once that any item saw in its worker. */
    const most = (seen: number[]): number => Math.max(...seen);

    test("with one worker and concurrency 4, it runs more than one item at once and never more than 4", async () => {
      await using ex = new ParallelExecutor({ strategy, maxWorkers: 1, concurrency: 4 });
      const seen = await within(
        ex.map(io.countInFlight, range(16).map(() => 5)),
        BOUND_MS,
        "map() of 16 waiting items",
      );
      assert.equal(seen.length, 16);
      assert.ok(most(seen) > 1 && most(seen) <= 4, `in flight at once: ${seen}`);
    });

    test("a per-call concurrency 3 overrides the default of 1 on a worker", async () => {
      await using ex = new ParallelExecutor({ strategy, maxWorkers: 1 });
      const seen = await within(
        ex.map(io.countInFlight, range(12).map(() => 5), { concurrency: 3 }),
        BOUND_MS,
        "map() with concurrency 3",
      );
      assert.ok(most(seen) > 1 && most(seen) <= 3, `in flight at once: ${seen}`);
    });

    test("by default a worker runs one item at a time", async () => {
      await using ex = new ParallelExecutor({ strategy, maxWorkers: 1 });
      const seen = await within(
        ex.map(io.countInFlight, range(12).map(() => 2)),
        BOUND_MS,
        "map() without concurrency",
      );
      assert.equal(most(seen), 1, `in flight at once: ${seen}`);
    });

    test("with timeoutMs each item goes alone, so a worker runs one at a time whatever concurrency says", async () => {
      await using ex = new ParallelExecutor({ strategy, maxWorkers: 1, concurrency: 4 });
      const seen = await within(
        ex.map(io.countInFlight, range(8).map(() => 2), { timeoutMs: 60_000 }),
        BOUND_MS,
        "map() with timeoutMs",
      );
      assert.equal(most(seen), 1, `in flight at once: ${seen}`);
    });

    test("two workers with concurrency 4 each keep their own bound", async () => {
      await using ex = new ParallelExecutor({ strategy, maxWorkers: 2, concurrency: 4 });
      const seen = await within(
        ex.map(io.countInFlight, range(40).map(() => 5)),
        BOUND_MS,
        "map() on two workers",
      );
      assert.equal(seen.length, 40);
      assert.ok(most(seen) > 1 && most(seen) <= 4, `in flight at once per worker: ${seen}`);
    });
  });
});

describe("a chunk's failure with several of its items in flight", () => {
  test("the others see ctx.signal aborted, however late they first read it", async () => {
    const { Chunk, runItems } = await import("../src/worker/run_task.js");
    const chunk = new Chunk(1, () => false, 0n);
    const seen: boolean[] = [];
    const failed = new Promise<[number, unknown, number | undefined]>((resolve) => {
      runItems(
        async (n: unknown, ctx: { signal: AbortSignal }) => {
          if (n === 0) throw new Error("item 0 failed");
          // A turn of the event loop: the failure, a microtask, is handled before it ends.
          await new Promise((resolve) => setImmediate(resolve));
          seen.push(ctx.signal.aborted); // the first read of the signal, after the failure
          return n;
        },
        chunk,
        10,
        [0, 1, 2, 3],
        {
          at() {},
          done: () => assert.fail("the chunk failed; it must not say done"),
          fail: (index, error, stragglers) => resolve([index, error, stragglers]),
          stopped: () => assert.fail("nothing cancelled the chunk"),
        },
        undefined,
        4,
      );
    });
    const [index, error, stragglers] = await within(failed, BOUND_MS, "the chunk's failure");
    assert.equal(index, 10);
    assert.equal((error as Error).message, "item 0 failed");
    // Reported once the others settled, none of them left running.
    assert.equal(stragglers ?? 0, 0);
    assert.deepEqual(seen, [true, true, true]);
  });

  test("one that runs on past the grace is reported, and nothing else starts", async () => {
    const { Chunk, runItems } = await import("../src/worker/run_task.js");
    const chunk = new Chunk(1, () => false, 0n);
    const started: unknown[] = [];
    const failed = new Promise<number | undefined>((resolve) => {
      runItems(
        (n: unknown) => {
          started.push(n);
          if (n === 0) return Promise.reject(new Error("item 0 failed"));
          return new Promise(() => {}); // never settles, whatever its signal says
        },
        chunk,
        0,
        [0, 1, 2, 3, 4, 5],
        {
          at() {},
          done: () => assert.fail("the chunk failed; it must not say done"),
          fail: (_index, _error, stragglers) => resolve(stragglers),
          stopped: () => assert.fail("nothing cancelled the chunk"),
        },
        undefined,
        3,
      );
    });
    assert.equal(await within(failed, BOUND_MS, "the chunk's failure"), 2);
    assert.deepEqual(started, [0, 1, 2], "no item starts after the failure");
  });

  forEachStrategy(["threads", "processes"] as const, (strategy) => {
    test(`items that never settle after a failure do not hold up the next call (${strategy})`, async () => {
      await using ex = new ParallelExecutor({ strategy, maxWorkers: 1, concurrency: 4 });
      const stuck = (n: number): Promise<number> => {
        if (n === 0) return Promise.reject(new Error("item 0 failed"));
        return new Promise(() => {});
      };
      const error = await failure(
        "the map",
        () => within(ex.map(stuck, [0, 1, 2, 3]), BOUND_MS, "map()"),
      );
      assert.equal((error as { index?: number }).index, 0, show(error));
      assert.equal(((error as Error).cause as Error).message, "item 0 failed");
      // The worker that still ran them was replaced: the next call runs, and nothing crashed.
      assert.deepEqual(await within(ex.map((n: number) => n + 1, [1, 2]), BOUND_MS, "map()"), [
        2,
        3,
      ]);
      assert.equal(ex.stats().crashes, 0);
      assert.equal(ex.stats().respawns, 1, "the worker still running them was replaced");
    });
  });
});
