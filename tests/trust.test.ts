/**
 * Nothing is lost and nothing is mistaken: every thrown value becomes a `TaskError` with its
 * index (`undefined` and `null` included), an iterator that breaks the protocol is refused, an
 * `AggregateError` keeps what it holds, an abort stops an `imap` whatever it has buffered, and
 * the options follow one rule at the boundary. Run against every strategy and `"auto"`.
 */

import { describe } from "node:test";
import assert from "node:assert/strict";
import {
  NotCloneableError,
  ParallelExecutor,
  parseParallelEnv,
  runCommands,
  TaskError,
  tasks,
} from "../mod.ts";
import type { ExecutorOptions, StrategyName, TaskRef } from "../mod.ts";
import {
  collect,
  forEachStrategy,
  rejection,
  runtime,
  show,
  STRATEGIES,
  test,
} from "./_helpers.ts";
import { liveThreadCount } from "../src/runtime/mod.ts";

const trust = tasks<typeof import("./fixtures/trust_work.ts")>(
  new URL("./fixtures/trust_work.ts", import.meta.url),
);

/** The same module's exports by any name, functions or not. */
const byName = trust as unknown as Record<string, TaskRef<number, number>>;

/** An iterator that yields `count` numbers from 10 up (none a task fails on), then throws `thrown`. */
function throwingAfter(count: number, thrown: unknown): Iterable<number> {
  return {
    [Symbol.iterator]() {
      let n = 0;
      return {
        next(): IteratorResult<number> {
          if (n < count) return { done: false, value: 10 + n++ };
          throw thrown;
        },
      };
    },
  };
}

/** An iterable whose `next()` breaks the iterator protocol by returning a number. */
function brokenIterable(kind: "sync" | "async"): Iterable<number> & AsyncIterable<number> {
  const iterator = { next: () => 42 as unknown as IteratorResult<number> };
  const asyncIterator = { next: () => Promise.resolve(42 as unknown as IteratorResult<number>) };
  return (kind === "sync"
    ? { [Symbol.iterator]: () => iterator }
    : { [Symbol.asyncIterator]: () => asyncIterator }) as unknown as
      & Iterable<number>
      & AsyncIterable<number>;
}

forEachStrategy([...STRATEGIES, "auto"], (strategy) => {
  describe(`trust (${strategy})`, () => {
    const options: ExecutorOptions = { strategy, maxWorkers: 2 };
    const isolated = strategy === "threads" || strategy === "processes";

    for (const [what, thrown] of [["undefined", undefined], ["null", null]] as const) {
      test(`a task that throws ${what} fails map() with a TaskError carrying its index`, async () => {
        await using ex = new ParallelExecutor(options);
        const input = what === "undefined" ? [0, 1, 2, 4, 5] : [0, 1, 3, 4, 5];
        const error = await rejection(ex.map(trust.throwNothing, input, { chunkSize: 1 }));
        assert.ok(error instanceof TaskError, `expected a TaskError, got ${show(error)}`);
        assert.equal(error.index, 2);
        assert.ok(Object.hasOwn(error, "cause"), "the cause is kept, even when it is nothing");
        assert.equal(error.cause, thrown);
        const stats = ex.stats();
        assert.equal(stats.failedCalls, 1, `the call counts as failed: ${show(stats)}`);
      });
    }

    test("a task that returns Promise.reject() fails submit(), map() and imap() with a TaskError", async () => {
      await using ex = new ParallelExecutor(options);
      const submitted = await rejection(ex.submit(trust.rejectNothing, 1));
      assert.ok(submitted instanceof TaskError, show(submitted));
      assert.equal(submitted.index, 0);
      assert.equal(submitted.cause, undefined);
      const mapped = await rejection(ex.map(trust.rejectNothing, [0, 1, 2]));
      assert.ok(mapped instanceof TaskError, show(mapped));
      assert.equal(mapped.index, 1);
      // imap must not end "complete" with the failed item missing.
      const seen: number[] = [];
      const iterated = await rejection(
        (async () => {
          for await (const n of ex.imap(trust.rejectNothing, [0, 1, 2, 3], { chunkSize: 1 })) {
            seen.push(n);
          }
        })(),
        "the imap() loop",
      );
      assert.ok(iterated instanceof TaskError, show(iterated));
      assert.equal(iterated.index, 1);
      // Only results before the failed one: item 0's, unless the failure came first (items
      // in flight together, as on async, may settle in the same turn).
      assert.ok(
        strategy === "async" ? seen.length <= 1 && seen.every((n, i) => n === i) : seen[0] === 0,
        `only the results before the failed one are yielded: ${show(seen)}`,
      );
      assert.ok(
        seen.length <= 1,
        `only the results before the failed one are yielded: ${show(seen)}`,
      );
      assert.equal(ex.stats().failedCalls, 3);
    });

    test("an input iterator that throws undefined fails imap() and map() instead of ending them early", async () => {
      await using ex = new ParallelExecutor(options);
      let threw = false;
      const seen: number[] = [];
      try {
        for await (const n of ex.imap(trust.throwNothing, throwingAfter(5, undefined))) {
          seen.push(n);
        }
      } catch (error) {
        threw = true;
        assert.equal(error, undefined, "the iterator's own error, as for…of would throw it");
      }
      assert.ok(threw, `the loop ended normally after ${seen.length} of 5 results`);
      threw = false;
      await ex.map(trust.throwNothing, throwingAfter(5, undefined)).catch((error) => {
        threw = true;
        assert.equal(error, undefined);
      });
      assert.ok(threw, "map() resolved although its input failed");
      assert.equal(ex.stats().failedCalls, 2);
    });

    for (const kind of ["sync", "async"] as const) {
      test(`an iterator whose next() returns a non-object fails with a TypeError naming items (${kind})`, async () => {
        await using ex = new ParallelExecutor(options);
        for (
          const call of [
            () => ex.map(trust.throwNothing, brokenIterable(kind)),
            () => collect(ex.imap(trust.throwNothing, brokenIterable(kind))),
            // explain() reads the input only when it has to measure (under auto).
            ...(strategy === "auto"
              ? [() => ex.explain(trust.throwNothing, brokenIterable(kind))]
              : []),
          ]
        ) {
          const error = await rejection(call());
          assert.ok(error instanceof TypeError, show(error));
          assert.match((error as Error).message, /`items`.*next\(\).*`42` \(number\)/);
        }
      });
    }

    test("an AggregateError keeps its class and the errors it holds, recursively", async () => {
      await using ex = new ParallelExecutor(options);
      const error = await rejection(ex.submit(trust.any, undefined));
      assert.ok(error instanceof TaskError, show(error));
      const cause = error.cause as AggregateError;
      assert.ok(cause instanceof AggregateError, `the cause is ${show(cause)}`);
      assert.equal(cause.errors.length, 3);
      const [first, second, inner] = cause.errors as [
        TypeError,
        Error & { code: string },
        AggregateError,
      ];
      assert.ok(first instanceof TypeError);
      assert.equal(first.message, "first");
      assert.equal(second.code, "E2");
      assert.ok(inner instanceof AggregateError, show(inner));
      assert.ok(inner.errors[0] instanceof RangeError);
      assert.equal((inner.errors[0] as Error).message, "deep");
    });

    test("aborting imap() stops it at its next step, whatever it has buffered", async () => {
      await using ex = new ParallelExecutor(options);
      const controller = new AbortController();
      const input = Array.from({ length: 40 }, (_, i) => i);
      const iterator = ex.imap(trust.throwNothing, input.map((n) => n + 10), {
        signal: controller.signal,
      });
      const first = await iterator.next();
      assert.equal(first.value, 10);
      // Let every item finish and its result wait in the buffer (imap reads ahead).
      await ex.map(trust.throwNothing, [0]);
      controller.abort(new Error("stop now"));
      const error = await rejection(iterator.next(), "the next step after the abort");
      assert.equal((error as Error).message, "stop now");
      assert.deepEqual(await iterator.next(), { done: true, value: undefined });
    });

    test("a class instance crosses as documented: by reference on serial, as a plain object of its own fields elsewhere", async () => {
      await using ex = new ParallelExecutor({
        ...options,
        strategy: strategy === "auto" ? "serial" : strategy,
      });
      const input = new (await import("./fixtures/trust_work.ts")).Account("ada");
      const seen = await ex.submit(trust.isAccount, input);
      assert.deepEqual(seen, { instance: !isolated, owner: "ada" });
      const result = await ex.submit(trust.account, "bob");
      assert.equal(result instanceof Object, true);
      assert.equal(Object.getPrototypeOf(result) === Object.prototype, isolated, show(result));
      assert.equal(result.owner, "bob");
    });

    if (isolated) {
      test("a generator returned by a task is refused, naming its class", async () => {
        await using ex = new ParallelExecutor(options);
        const error = await rejection(ex.submit(trust.generator, 1));
        assert.ok(error instanceof NotCloneableError, show(error));
        assert.match(error.message, /an object of class Generator at `result`/);
      });
    }
  });
});

describe("trust: options at the boundary", () => {
  const strategies: StrategyName[] = ["serial", "threads"];
  for (
    const key of [
      "strategy",
      "maxWorkers",
      "chunkSize",
      "forceSerialOnFailure",
      "isolate",
      "taskEvents",
      "timeoutMs",
      "seed",
      "loadTimeoutMs",
      "killGraceMs",
      "maxTasksPerWorker",
      "idleMemoryLimitMb",
    ]
  ) {
    test(`\`${key}: null\` throws a TypeError naming it, as every option does`, () => {
      assert.throws(
        () => new ParallelExecutor({ [key]: null } as unknown as ExecutorOptions),
        (error: Error) => error instanceof TypeError && error.message.includes(`\`${key}\``),
      );
    });
  }

  test("null per-call options throw a TypeError naming them", async () => {
    await using ex = new ParallelExecutor({ strategy: "serial" });
    for (const key of ["chunkSize", "timeoutMs", "signal", "seed"]) {
      const error = await rejection(
        ex.map(trust.throwNothing, [1], { [key]: null } as Record<string, unknown>),
      );
      assert.ok(error instanceof TypeError && error.message.includes(`\`${key}\``), show(error));
    }
    assert.throws(
      () => ex.imap(trust.throwNothing, [1], { ordered: null } as unknown as { ordered: boolean }),
      TypeError,
    );
  });

  test("an array is not an options object", () => {
    assert.throws(
      () => new ParallelExecutor([] as unknown as ExecutorOptions),
      /Expected `options` to be an object, got an array/,
    );
  });

  test("maxWorkers has an upper bound, on the executor and in CE_PARALLEL", () => {
    for (const value of [1025, 1e6, 2 ** 53]) {
      assert.throws(
        () => new ParallelExecutor({ maxWorkers: value }),
        (error: Error) => error instanceof RangeError && /from 1 to 1024/.test(error.message),
      );
    }
    assert.equal(new ParallelExecutor({ strategy: "serial", maxWorkers: 1024 }).closed, false);
    assert.throws(() => parseParallelEnv("workers=100000"), /from 1 to 1024/);
    assert.equal(parseParallelEnv("workers=1024").maxWorkers, 1024);
  });

  test("maxMemoryMb below 16 is refused, since V8 cannot start a worker with it", () => {
    for (const value of [1, 2, 8, 15]) {
      assert.throws(() => new ParallelExecutor({ maxMemoryMb: value }), /from 16 and up/);
    }
  });

  forEachStrategy(strategies, (strategy) => {
    test(`a missing export's message lists the module's functions, not its classes (${strategy})`, async () => {
      await using ex = new ParallelExecutor({ strategy, maxWorkers: 1 });
      const missing = await rejection(ex.submit(byName.nope, 1));
      assert.ok(missing instanceof TaskError, show(missing));
      assert.match(missing.message, /exported functions are: .*throwNothing/);
      assert.doesNotMatch(missing.message, /\bAccount\b/);
      const klass = await rejection(ex.submit(byName.Account, 1));
      assert.match((klass as Error).message, /to export a function `Account`, got a class/);
    });
  });

  test("runCommands refuses an empty command name as it refuses an empty cmd", async () => {
    for (const cmd of [[], [""], ["", "x"]]) {
      const error = await rejection(runCommands([{ cmd }]));
      assert.ok(error instanceof TypeError, `${JSON.stringify(cmd)}: ${show(error)}`);
      assert.match((error as Error).message, /jobs\[0\]\.cmd/);
    }
  });
});

describe("trust: terminate() and the threads it leaves", () => {
  /** Waits (bounded) until `condition()` holds. */
  async function until(condition: () => boolean, what: string): Promise<void> {
    const deadline = Date.now() + 20_000;
    while (!condition()) {
      if (Date.now() > deadline) assert.fail(`${what} did not happen within 20 s`);
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  }

  test("liveThreadCount() counts a terminated thread for as long as it really runs", async () => {
    const board = new Int32Array(new SharedArrayBuffer(12));
    const ex = new ParallelExecutor({ strategy: "threads", maxWorkers: 1 });
    const call = ex.submit(trust.spinUntilReleased, board).catch(() => "cut short");
    try {
      await until(() => Atomics.load(board, 0) === 1, "the task's start");
      await ex.terminate();
      assert.equal(await call, "cut short");
      if (runtime !== "deno") {
        // Bun and Node stop a busy thread: none is left.
        assert.equal(liveThreadCount(), 0);
        return;
      }
      // Deno cannot stop it: it goes on counting, and is counted.
      assert.equal(liveThreadCount(), 1, "the spinning thread is reported as alive");
      const before = Atomics.load(board, 1);
      await until(() => Atomics.load(board, 1) > before, "the terminated task going on");
      Atomics.store(board, 2, 1);
      await until(() => liveThreadCount() === 0, "the thread's end once its task returned");
    } finally {
      Atomics.store(board, 2, 1);
    }
  });
});

describe("trust: inline functions on each runtime", () => {
  // Module scope, as where a user would write it.
  const FACTOR = 3;
  const LABEL = "x";
  const LIMITS = { max: 10 };

  forEachStrategy(["serial", "threads"], (strategy) => {
    test(`an inline function that captures a const primitive: Bun inlines it, Node and Deno refuse it (${strategy})`, async () => {
      await using ex = new ParallelExecutor({ strategy, maxWorkers: 1 });
      const call = ex.map((n: number) => `${LABEL}${n * FACTOR}`, [1, 2]);
      if (runtime === "bun") {
        // Bun's transpiler replaces a `const` primitive by its value in the function's source.
        assert.deepEqual(await call, ["x3", "x6"]);
      } else {
        const error = await rejection(call);
        assert.ok(error instanceof TaskError, show(error));
        assert.match(error.message, /uses `(LABEL|FACTOR)`, which is not defined inside it/);
      }
    });

    test(`an inline function that captures an object fails on every runtime (${strategy})`, async () => {
      await using ex = new ParallelExecutor({ strategy, maxWorkers: 1 });
      const error = await rejection(ex.map((n: number) => Math.min(n, LIMITS.max), [1]));
      assert.ok(error instanceof TaskError, show(error));
      assert.match(error.message, /uses `LIMITS`, which is not defined inside it/);
    });
  });
});
