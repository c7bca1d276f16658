/**
 * The contract every strategy keeps: results, ordering, errors, task forms, submit and imap.
 * One suite, run against each strategy (CPython's `create_executor_tests` pattern), under
 * `deno test`, `bun test` and `node --test` alike.
 */

import { describe } from "node:test";
import assert from "node:assert/strict";
import { ParallelExecutor, TaskError } from "../mod.ts";
import type { TaskContext } from "../mod.ts";
import { FINISHED, ORDER, TIMED_OUT } from "./fixtures/work.ts";
import { waitForSlot } from "./fixtures/wait.ts";
import {
  boardFor,
  collect,
  forEachStrategy,
  read,
  rejection,
  release,
  show,
  STRATEGIES,
  test,
  within,
  work,
} from "./_helpers.ts";

/** Upper bound of a gated task's wait; the tests release it long before. */
const GATE_MS = 30_000;

forEachStrategy(STRATEGIES, (strategy) => {
  describe(`contract (${strategy})`, () => {
    const options = { strategy, maxWorkers: 2 } as const;
    /**
     * Whether tasks run beside each other (threads, processes) rather than one by one. These
     * tasks block synchronously: on the calling thread even "async" runs them in turn.
     */
    const parallel = strategy !== "serial" && strategy !== "async";

    // ---- results and order ------------------------------------------------------------

    test("map() returns one result per input, in input order", async () => {
      await using ex = new ParallelExecutor(options);
      const input = [3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5];
      assert.deepEqual(await ex.map(work.square, input), input.map((n) => n * n));
      assert.deepEqual(await ex.map(work.square, input, { chunkSize: 3 }), input.map((n) => n * n));
    });

    test("map() of an empty input resolves to an empty array", async () => {
      await using ex = new ParallelExecutor(options);
      assert.deepEqual(await ex.map(work.square, []), []);
      assert.deepEqual(await collect(ex.imap(work.square, [])), []);
    });

    test("map() keeps input order when late items finish first", async () => {
      await using ex = new ParallelExecutor({ ...options, chunkSize: 1 });
      const n = 6;
      const b = boardFor(strategy, n);
      // In parallel, item 0 blocks until every later item has finished; serial runs items one
      // after another, so there the finish order is the input order.
      const input = Array.from(
        { length: n },
        (_, item) => ({ board: b, item, gated: parallel && item === 0, maxMs: GATE_MS }),
      );
      const call = ex.map(work.gated, input);
      try {
        if (parallel) {
          await waitForSlot(b, FINISHED, n - 1, "items 1..5 to finish while item 0 is held");
          assert.equal(read(b, ORDER + 0), 0, "item 0 finished before it was released");
          release(b);
        }
        const results = await within(call, 30_000, "map()");
        assert.deepEqual(results.map((r) => r.item), [0, 1, 2, 3, 4, 5]);
        assert.ok(results.every((r) => !r.timedOut), `a gate timed out: ${show(results)}`);
        const ranks = results.map((r) => r.rank);
        assert.deepEqual(ranks, parallel ? [6, 1, 2, 3, 4, 5] : [1, 2, 3, 4, 5, 6]);
      } finally {
        release(b);
      }
    });

    test("map() passes ctx.index, the item's position in the input", async () => {
      await using ex = new ParallelExecutor(options);
      assert.deepEqual(
        await ex.map(work.tagWithIndex, ["a", "b", "c", "d", "e"], { chunkSize: 2 }),
        ["0:a", "1:b", "2:c", "3:d", "4:e"],
      );
    });

    test("map() awaits asynchronous tasks", async () => {
      await using ex = new ParallelExecutor(options);
      const input = [{ ms: 20, value: "slow" }, { ms: 0, value: "fast" }, { ms: 5, value: "mid" }];
      assert.deepEqual(await ex.map(work.sleepThen, input), ["slow", "fast", "mid"]);
    });

    test("map() reads an async iterable", async () => {
      await using ex = new ParallelExecutor(options);
      async function* numbers(): AsyncGenerator<number> {
        for (let i = 0; i < 20; i++) {
          await Promise.resolve();
          yield i;
        }
      }
      const expected = Array.from({ length: 20 }, (_, i) => i * i);
      assert.deepEqual(await ex.map(work.square, numbers()), expected);
    });

    test("serial and parallel runs of a pure task give identical results", async () => {
      await using ex = new ParallelExecutor(options);
      await using reference = new ParallelExecutor({ strategy: "serial" });
      const input = Array.from({ length: 25 }, (_, i) => i);
      assert.deepEqual(await ex.map(work.fib, input), await reference.map(work.fib, input));
    });

    // ---- task forms ---------------------------------------------------------------------

    test("a module task typed via tasks<typeof import(...)> runs and keeps its types", async () => {
      await using ex = new ParallelExecutor(options);
      const squares: number[] = await ex.map(work.square, [1, 2, 3]);
      assert.deepEqual(squares, [1, 4, 9]);
      const fib: number = await ex.submit(work.fib, 20);
      assert.equal(fib, 6765);
      // Type-level contract, checked by `deno test` (never called at run time).
      const _typeChecks = (): void => {
        // @ts-expect-error square takes numbers, not strings
        void ex.map(work.square, ["not a number"]);
        // @ts-expect-error the result of square is a number, not a string
        const _wrong: Promise<string[]> = ex.map(work.square, [1]);
      };
      void _typeChecks;
    });

    test("an inline self-contained function runs", async () => {
      await using ex = new ParallelExecutor(options);
      assert.deepEqual(await ex.map((n: number) => n * n + 1, [1, 2, 3, 4]), [2, 5, 10, 17]);
      assert.deepEqual(
        await ex.map((s: string, ctx: TaskContext) => `${s}@${ctx.index}`, ["x", "y"]),
        ["x@0", "y@1"],
      );
      assert.equal(await ex.submit((s: string) => s.toUpperCase(), "hi"), "HI");
      // Functions it defines itself are fine, and so are globals.
      assert.deepEqual(
        await ex.map((n: number) => {
          const twice = (k: number): number => k * 2;
          return Math.max(twice(n), 3);
        }, [1, 2]),
        [3, 4],
      );
    });

    test("an inline function that captures a variable rejects with TaskError saying it must be self-contained", async () => {
      await using ex = new ParallelExecutor(options);
      // A value known only at run time, so no transpiler can inline it into the function.
      const offset = Number.parseInt("10", 10);
      const error = await rejection(
        ex.map((n: number) => (n === 2 ? n + offset : n), [0, 1, 2, 3], { chunkSize: 1 }),
      );
      assert.ok(error instanceof TaskError, `expected TaskError, got ${show(error)}`);
      assert.equal(error.index, 2);
      assert.match(error.message, /`offset`/);
      assert.match(error.message, /self-contained/);
      assert.match(error.message, /module task/);
      assert.ok(error.cause instanceof Error, `cause: ${show(error.cause)}`);
      assert.equal(error.cause.name, "ReferenceError");
    });

    // ---- errors ---------------------------------------------------------------------------

    test("map() rejects with TaskError carrying the index and the task's own error", async () => {
      await using ex = new ParallelExecutor({ ...options, chunkSize: 1 });
      const error = await rejection(ex.map(work.rejectNegative, [0, 1, -2, 3]));
      assert.ok(error instanceof TaskError, `expected TaskError, got ${show(error)}`);
      assert.equal(error.name, "TaskError");
      assert.equal(error.index, 2);
      const cause = error.cause;
      assert.ok(cause instanceof Error, `cause: ${show(cause)}`);
      assert.equal(cause.name, "RangeError");
      assert.equal(cause.message, "Expected a non-negative number, got -2");
      assert.equal(typeof cause.stack, "string");
      assert.match(cause.stack!, /Expected a non-negative number, got -2/);
      assert.match(cause.stack!, /fixtures\/work\.ts/, "the stack should point into the task");
    });

    test("a custom error keeps its class name, code and cause across the boundary", async () => {
      await using ex = new ParallelExecutor({ ...options, chunkSize: 1 });
      const error = await rejection(ex.map(work.throwCoded, [5, -1, 7]));
      assert.ok(error instanceof TaskError, `expected TaskError, got ${show(error)}`);
      assert.equal(error.index, 1);
      const cause = error.cause as Error & { code?: unknown; cause?: unknown };
      assert.ok(cause instanceof Error, `cause: ${show(cause)}`);
      assert.equal(cause.name, "CodedError");
      assert.equal(cause.message, "coded failure for -1");
      assert.equal(cause.code, "E_FANOUT_TEST");
      assert.match(cause.stack ?? "", /coded failure for -1/);
      const inner = cause.cause;
      assert.ok(inner instanceof Error, `cause.cause: ${show(inner)}`);
      assert.equal(inner.name, "TypeError");
      assert.equal(inner.message, "the root cause");
    });

    test("a rejected promise from an async task becomes a TaskError", async () => {
      await using ex = new ParallelExecutor({ ...options, chunkSize: 1 });
      const error = await rejection(ex.map(work.rejectNegativeAsync, [1, 2, 3, -4]));
      assert.ok(error instanceof TaskError, `expected TaskError, got ${show(error)}`);
      assert.equal(error.index, 3);
      assert.equal((error.cause as Error).name, "RangeError");
      assert.equal(
        (error.cause as Error).message,
        "async: expected a non-negative number, got -4",
      );
    });

    test("an error thrown by an inline function becomes a TaskError", async () => {
      await using ex = new ParallelExecutor({ ...options, chunkSize: 1 });
      const error = await rejection(ex.map((n: number) => {
        if (n === 1) throw new SyntaxError(`inline failure ${n}`);
        return n;
      }, [0, 1, 2]));
      assert.ok(error instanceof TaskError, `expected TaskError, got ${show(error)}`);
      assert.equal(error.index, 1);
      assert.equal((error.cause as Error).name, "SyntaxError");
      assert.equal((error.cause as Error).message, "inline failure 1");
    });

    test("the executor keeps working after a task error", async () => {
      await using ex = new ParallelExecutor(options);
      await rejection(ex.map(work.rejectNegative, [-1, -2, -3]));
      assert.deepEqual(await ex.map(work.rejectNegative, [1, 2, 3]), [1, 2, 3]);
    });

    // ---- submit ---------------------------------------------------------------------------

    test("submit() runs one task and resolves to its result", async () => {
      await using ex = new ParallelExecutor(options);
      assert.equal(await ex.submit(work.square, 7), 49);
      const many = await Promise.all([1, 2, 3, 4, 5].map((n) => ex.submit(work.square, n)));
      assert.deepEqual(many, [1, 4, 9, 16, 25]);
    });

    test("submit() rejects with TaskError when the task throws", async () => {
      await using ex = new ParallelExecutor(options);
      const error = await rejection(ex.submit(work.throwCoded, -3));
      assert.ok(error instanceof TaskError, `expected TaskError, got ${show(error)}`);
      assert.equal(error.index, 0);
      assert.equal((error.cause as Error).name, "CodedError");
      assert.equal((error.cause as Error & { code: string }).code, "E_FANOUT_TEST");
    });

    // ---- imap -----------------------------------------------------------------------------

    test("imap() yields results in input order", async () => {
      await using ex = new ParallelExecutor(options);
      const input = Array.from({ length: 40 }, (_, i) => 40 - i);
      assert.deepEqual(
        await collect(ex.imap(work.square, input, { chunkSize: 3 })),
        input.map((n) => n * n),
      );
    });

    test("imap() yields in input order when late items finish first", async () => {
      await using ex = new ParallelExecutor({ ...options, chunkSize: 1 });
      const n = 4;
      const b = boardFor(strategy, n);
      const input = Array.from(
        { length: n },
        (_, item) => ({ board: b, item, gated: parallel && item === 0, maxMs: GATE_MS }),
      );
      const results = collect(ex.imap(work.gated, input));
      try {
        if (parallel) {
          // imap() bounds how far it runs ahead of the consumer, so only a few later items can
          // finish while item 0 is held; two are enough to show the reordering.
          await waitForSlot(b, FINISHED, 2, "two later items to finish while item 0 is held");
          assert.equal(read(b, ORDER + 0), 0, "item 0 finished before it was released");
          release(b);
        }
        const out = await within(results, 30_000, "imap()");
        assert.deepEqual(out.map((r) => r.item), [0, 1, 2, 3]);
        assert.ok(out.every((r) => !r.timedOut), `a gate timed out: ${show(out)}`);
        if (parallel) assert.ok(out[0].rank >= 3, `item 0 should have finished late: ${show(out)}`);
      } finally {
        release(b);
      }
    });

    if (parallel) {
      test("imap({ ordered: false }) yields items as they complete", async () => {
        await using ex = new ParallelExecutor({ ...options, chunkSize: 1 });
        const n = 5;
        const b = boardFor(strategy, n);
        const input = Array.from(
          { length: n },
          (_, item) => ({ board: b, item, gated: item === 0, maxMs: GATE_MS }),
        );
        const seen: number[] = [];
        try {
          const consume = (async () => {
            for await (const r of ex.imap(work.gated, input, { ordered: false })) {
              seen.push(r.item);
              // Item 0 is held until every other item has been yielded.
              if (seen.length === n - 1) release(b);
            }
          })();
          await within(consume, 40_000, "imap({ ordered: false })");
        } finally {
          release(b);
        }
        assert.equal(read(b, TIMED_OUT), 0, "the held item timed out");
        assert.equal(seen.length, n);
        assert.equal(seen[n - 1], 0, `item 0 was held, so it must come last: ${seen}`);
        assert.deepEqual([...seen].sort(), [0, 1, 2, 3, 4]);
      });
    } else {
      test("imap({ ordered: false }) yields every result once", async () => {
        await using ex = new ParallelExecutor(options);
        const input = Array.from({ length: 30 }, (_, i) => i);
        const out = await collect(ex.imap(work.square, input, { ordered: false }));
        assert.deepEqual([...out].sort((a, b) => a - b), input.map((i) => i * i));
      });
    }

    test("imap() reads an async iterable", async () => {
      await using ex = new ParallelExecutor(options);
      async function* words(): AsyncGenerator<string> {
        for (const w of ["alpha", "beta", "gamma", "delta", "epsilon"]) {
          await Promise.resolve();
          yield w;
        }
      }
      assert.deepEqual(
        await collect(ex.imap((w: string) => w.length, words())),
        [5, 4, 5, 5, 7],
      );
    });

    test("imap() streams a million-item generator with bounded memory", async () => {
      await using ex = new ParallelExecutor(options);
      const total = 1_000_000;
      let produced = 0;
      function* numbers(): Generator<number> {
        for (let i = 0; i < total; i++) {
          produced++;
          yield i;
        }
      }
      let received = 0;
      let maxAhead = 0;
      let outOfOrder = -1;
      for await (const value of ex.imap((n: number) => n, numbers())) {
        if (value !== received && outOfOrder < 0) outOfOrder = received;
        received++;
        maxAhead = Math.max(maxAhead, produced - received);
      }
      assert.equal(received, total);
      assert.equal(produced, total);
      assert.equal(outOfOrder, -1, `result ${outOfOrder} was out of order`);
      assert.ok(
        maxAhead < 100_000,
        `the input was read up to ${maxAhead} items ahead of the consumer`,
      );
    }, 150_000);

    test("breaking out of imap() stops reading the input", async () => {
      await using ex = new ParallelExecutor(options);
      let produced = 0;
      function* endless(): Generator<number> {
        // Bounded so that a library that drains it anyway fails instead of spinning forever.
        for (let i = 0; i < 5_000_000; i++) {
          produced++;
          yield i;
        }
      }
      const got: number[] = [];
      for await (const value of ex.imap(work.square, endless())) {
        got.push(value);
        if (got.length === 10) break;
      }
      assert.deepEqual(got, [0, 1, 4, 9, 16, 25, 36, 49, 64, 81]);
      await within(ex.close(), 30_000, "close() after breaking out of imap()");
      assert.ok(produced < 100_000, `the input was read ${produced} items deep after the break`);
    });
  });
});
