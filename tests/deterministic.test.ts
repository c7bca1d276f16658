/**
 * Deterministic aggregation and seeds: `runParallel` gives the serial answer whatever finishes
 * first, errors included; `ctx.seed` depends only on the base seed and the task's index.
 */

import { describe } from "node:test";
import assert from "node:assert/strict";
import {
  call,
  ExecutorClosedError,
  KeyedTaskError,
  ParallelError,
  ParallelExecutor,
  runParallel,
  seedFor,
  TaskError,
  tasks,
} from "../mod.ts";
import type { Thunk } from "../mod.ts";
import { forEachStrategy, rejection, show, STRATEGIES, test, work } from "./_helpers.ts";

const seeded = tasks<typeof import("./fixtures/seeded.ts")>(
  new URL("./fixtures/seeded.ts", import.meta.url),
);

/** A promise the test settles itself. */
function deferred<T>(): { promise: Promise<T>; resolve: (value: T) => void } {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

/** Waits `n` microtask turns: completion order without any clock. */
async function turns(n: number): Promise<void> {
  for (let i = 0; i < n; i++) await null;
}

/** Keys with ties in their order key, and thunks that finish in a scrambled order. */
function scrambled(log: string[]): [string, Thunk<string>][] {
  const keys = ["d", "b", "a2", "c", "a1", "b2", "e", "c2", "a3", "d2"];
  return keys.map((key, at) => [key, async () => {
    log.push(`start ${key}`);
    await turns((at * 7) % 5);
    log.push(`end ${key}`);
    return `${key}#${at}`;
  }]);
}

/** Order key: the first letter, so "a1", "a2", "a3" tie and keep submit order. */
const byLetter = (key: string): string => key[0];

/** What a plain loop plus a stable sort gives. */
async function plainLoop<R>(
  entries: [string, Thunk<R>][],
  orderKey: (key: string) => string,
): Promise<[string, R][]> {
  const pairs: [string, R][] = [];
  for (const [key, thunk] of entries) pairs.push([key, await thunk()]);
  return pairs.sort((
    x,
    y,
  ) => (orderKey(x[0]) < orderKey(y[0]) ? -1 : orderKey(x[0]) > orderKey(y[0]) ? 1 : 0));
}

describe("runParallel", () => {
  test("merges in orderKey order even when tasks finish in reverse", async () => {
    const gates = Array.from({ length: 5 }, () => deferred<void>());
    const finished: number[] = [];
    const started = deferred<void>();
    let running = 0;
    const entries: [number, Thunk<number>][] = gates.map((gate, k) => [k, async () => {
      if (++running === gates.length) started.resolve();
      await gate.promise;
      finished.push(k);
      return k * 10;
    }]);
    const run = runParallel(entries, { maxWorkers: 5, mergeFn: (pairs) => pairs });
    await started.promise;
    // Release the last first: completion order is the reverse of key order.
    for (let k = gates.length - 1; k >= 0; k--) {
      gates[k].resolve();
      await turns(3);
    }
    assert.deepEqual(await run, [[0, 0], [1, 10], [2, 20], [3, 30], [4, 40]]);
    assert.deepEqual(finished, [4, 3, 2, 1, 0], "the tasks really finished in reverse");
  });

  for (const maxWorkers of [1, 2, 8]) {
    test(`maxWorkers ${maxWorkers} gives exactly a plain loop plus a stable sort`, async () => {
      const expected = await plainLoop(scrambled([]), byLetter);
      const log: string[] = [];
      let merged = 0;
      const result = await runParallel(scrambled(log), {
        maxWorkers,
        orderKey: byLetter,
        mergeFn: (pairs) => {
          merged++;
          return pairs;
        },
      });
      assert.deepEqual(result, expected);
      assert.equal(merged, 1);
      const ends = log.filter((line) => line.startsWith("end")).map((line) => line.slice(4));
      if (maxWorkers > 1) {
        assert.notDeepEqual(ends, result.map(([key]) => key), "completion order differs");
      }
    });
  }

  for (const maxWorkers of [1, 0, -3, -Infinity]) {
    test(`maxWorkers ${maxWorkers} runs one task at a time, in submit order`, async () => {
      const log: string[] = [];
      const result = await runParallel(scrambled(log), { maxWorkers, orderKey: byLetter });
      const keys = scrambled([]).map(([key]) => key);
      assert.deepEqual(log, keys.flatMap((key) => [`start ${key}`, `end ${key}`]));
      assert.deepEqual(result, await plainLoop(scrambled([]), byLetter));
    });
  }

  test("empty tasks call mergeFn([]) once and return its value", async () => {
    const calls: unknown[] = [];
    const result = await runParallel([], {
      mergeFn: (pairs) => {
        calls.push(pairs);
        return "nothing";
      },
    });
    assert.equal(result, "nothing");
    assert.deepEqual(calls, [[]]);
    assert.deepEqual(await runParallel([]), []);
  });

  test("several failures give the same sorted error list on every run", async () => {
    const build = (ran: string[]): [string, Thunk<number>][] =>
      ["q", "b", "x", "a", "m", "c", "z"].map((key, at) => [key, async () => {
        ran.push(key);
        await turns((at * 3) % 4);
        if (key === "x") throw new RangeError(`x is out of range`);
        if (key === "b") throw new TypeError("b has the wrong type");
        if (key === "m") throw "m threw a string";
        if (key === "c") return Promise.reject(new Error("c rejected"));
        return at;
      }]);
    const lists: unknown[] = [];
    for (const maxWorkers of [1, 3, 8, 1, 8]) {
      const ran: string[] = [];
      let merged = false;
      const error = await rejection(runParallel(build(ran), {
        maxWorkers,
        mergeFn: () => (merged = true),
      }));
      assert.ok(error instanceof ParallelError, show(error));
      assert.equal(merged, false, "mergeFn is not called");
      assert.equal(ran.length, 7, "every task ran, failures or not");
      for (const e of error.errors) {
        assert.ok(e instanceof KeyedTaskError && e instanceof TaskError, show(e));
      }
      assert.match(error.message, /^4 of 7 tasks failed; the first in order is key "b": TypeError/);
      lists.push(error.errors.map((e) => [e.key, e.index, e.excType, e.message]));
    }
    assert.deepEqual(lists[0], [
      ["b", 1, "TypeError", "b has the wrong type"],
      ["c", 5, "Error", "c rejected"],
      ["m", 4, "string", "m threw a string"],
      ["x", 2, "RangeError", "x is out of range"],
    ]);
    for (const list of lists) assert.deepEqual(list, lists[0]);
  });

  test("a synchronous throw in a thunk is that task's failure", async () => {
    const error = await rejection(runParallel([
      [1, () => 1],
      [2, () => {
        throw new SyntaxError("bad");
      }],
    ]));
    assert.ok(error instanceof ParallelError, show(error));
    assert.deepEqual(error.errors.map((e) => [e.key, e.excType]), [[2, "SyntaxError"]]);
    assert.ok(error.errors[0].cause instanceof SyntaxError);
  });

  test("a thunk that is not a function, or a key orderKey cannot order, is a TypeError naming the key", async () => {
    let ran = 0;
    const thunk = () => ran++;
    await assert.rejects(
      runParallel([["ok", thunk], ["broken", 42 as unknown as Thunk<number>]]),
      { name: "TypeError", message: /key "broken" to be a zero-argument function, got `42`/ },
    );
    await assert.rejects(
      runParallel([["a", thunk], ["b", thunk]], { orderKey: (k) => (k === "b" ? NaN : 1) }),
      { name: "TypeError", message: /for key "b", got `NaN`/ },
    );
    await assert.rejects(
      runParallel([["a", thunk], ["b", thunk]], { orderKey: (k) => (k === "b" ? "x" : 1) }),
      { name: "TypeError", message: /one kind, got a (number|string) for key "(a|b)" and a/ },
    );
    await assert.rejects(
      runParallel([[{ id: 1 }, thunk]]),
      { name: "TypeError", message: /for key \{"id":1\}, got an object/ },
    );
    await assert.rejects(
      runParallel([["a", call(work.square, 2)]]),
      { name: "TypeError", message: /key "a", got call\(\).*pass `executor`/ },
    );
    assert.equal(ran, 0, "nothing ran");
  });

  test("order keys may be numbers, bigints, strings or arrays of them", async () => {
    const keys: [number, string][] = [[2, "b"], [1, "z"], [2, "a"], [1, "a"]];
    const result = await runParallel(keys.map((key) => [key, () => key.join("")]), {
      maxWorkers: 4,
      mergeFn: (pairs) => pairs.map(([, v]) => v),
    });
    assert.deepEqual(result, ["1a", "1z", "2a", "2b"]);
    const big = await runParallel<number | bigint, string, string>([
      [3n, () => "3"],
      [1, () => "1"],
      [2n, () => "2"],
    ], {
      mergeFn: (pairs) => pairs.map(([, v]) => v).join(""),
    });
    assert.equal(big, "123");
  });

  test("bad options are refused with TypeError or RangeError", async () => {
    await assert.rejects(runParallel([], { maxWorkers: NaN }), TypeError);
    await assert.rejects(runParallel([], { maxWorkers: 2.5 }), RangeError);
    await assert.rejects(
      runParallel([], { mergeFn: 1 as unknown as () => void }),
      { name: "TypeError", message: /`mergeFn` to be a function/ },
    );
    await assert.rejects(
      runParallel([], { unknown: 1 } as unknown as { maxWorkers: number }),
      { name: "TypeError", message: /got `unknown`/ },
    );
    await assert.rejects(runParallel(5 as unknown as []), TypeError);
  });

  test("an aborted signal rejects with its reason and starts nothing more", async () => {
    const controller = new AbortController();
    const started: number[] = [];
    const gate = deferred<void>();
    const run = runParallel(
      [0, 1, 2, 3].map((k) => [k, async () => {
        started.push(k);
        await gate.promise;
        return k;
      }]),
      { maxWorkers: 2, signal: controller.signal },
    );
    await turns(2);
    controller.abort(new Error("stop"));
    await assert.rejects(run, { message: "stop" });
    gate.resolve();
    await turns(5);
    assert.deepEqual(started, [0, 1]);
  });

  forEachStrategy(STRATEGIES, (strategy) => {
    test(`calls run on the executor (${strategy}), mixed with thunks`, async () => {
      await using ex = new ParallelExecutor({ strategy, maxWorkers: 2 });
      const result = await runParallel<number, number, number[]>(
        [[3, call(work.square, 3)], [1, () => 1], [2, call(work.square, 2)], [
          0,
          () => Promise.resolve(0),
        ]],
        { executor: ex, mergeFn: (pairs) => pairs.map(([, v]) => v) },
      );
      assert.deepEqual(result, [0, 1, 4, 9]);
      const error = await rejection(runParallel(
        [[2, call(work.rejectNegative, -2)], [1, call(work.rejectNegative, -1)], [0, () => 0]],
        { executor: ex },
      ));
      assert.ok(error instanceof ParallelError, show(error));
      assert.deepEqual(
        error.errors.map((e) => [e.key, e.excType]),
        [[1, "RangeError"], [2, "RangeError"]],
        "a call's error is what the task threw",
      );
    });
  });

  test("call() takes a seed, so calls need not share the executor's", async () => {
    await using ex = new ParallelExecutor({ strategy: "threads", maxWorkers: 2, seed: 5 });
    const keys = ["a", "b", "c"];
    const own = await runParallel(
      keys.map((key) => [key, call(seeded.seedOf, null, { seed: seedFor(11, key) })]),
      { executor: ex, mergeFn: (pairs) => pairs.map(([, seed]) => seed) },
    );
    assert.deepEqual(own, keys.map((key) => seedFor(seedFor(11, key), 0)));
    assert.equal(new Set(own).size, 3);
    const shared = await runParallel(keys.map((key) => [key, call(seeded.seedOf, null)]), {
      executor: ex,
      mergeFn: (pairs) => pairs.map(([, seed]) => seed),
    });
    assert.deepEqual(shared, Array(3).fill(seedFor(5, 0)), "without one, each is index 0");
    assert.throws(() => call(seeded.seedOf, null, { signal: undefined } as never), {
      name: "TypeError",
      message: /got `signal`/,
    });
  });

  test("a closed executor is refused before anything runs", async () => {
    const ex = new ParallelExecutor({ strategy: "serial" });
    await ex.close();
    await assert.rejects(
      runParallel([[1, call(work.square, 1)]], { executor: ex }),
      ExecutorClosedError,
    );
  });
});

describe("seeds", () => {
  test("seedFor follows SplitMix64: the reference outputs for seed 1234567", () => {
    // The first three outputs of SplitMix64 seeded with 1234567 are 6457827717110365317,
    // 3203168211198807973 and 9817491932198370423; seedFor keeps their top 53 bits.
    assert.equal(seedFor(1234567, 0), Number(6457827717110365317n >> 11n));
    assert.equal(seedFor(1234567, 1), Number(3203168211198807973n >> 11n));
    assert.equal(seedFor(1234567n, 2n), Number(9817491932198370423n >> 11n));
  });

  test("seedFor is a pure function of base seed and key", () => {
    assert.equal(seedFor(7, "alpha"), seedFor(7n, "alpha"));
    assert.notEqual(seedFor(7, "alpha"), seedFor(7, "alphb"));
    assert.notEqual(seedFor(7, "alpha"), seedFor(8, "alpha"));
    assert.ok(Number.isSafeInteger(seedFor(2n ** 64n - 1n, "é")));
    assert.throws(() => seedFor(-1, 0), RangeError);
    assert.throws(() => seedFor(2n ** 64n, 0), RangeError);
    assert.throws(() => seedFor(0.5, 0), RangeError);
    assert.throws(() => seedFor("1" as unknown as number, 0), TypeError);
    assert.throws(() => seedFor(1, -1), RangeError);
    assert.throws(() => seedFor(1, {} as unknown as string), TypeError);
  });

  forEachStrategy(STRATEGIES, (strategy) => {
    test(`ctx.seed is seedFor(seed, index) on ${strategy}, per call and per executor`, async () => {
      await using ex = new ParallelExecutor({ strategy, maxWorkers: 2, seed: 99 });
      const items = Array.from({ length: 12 }, (_, i) => i);
      assert.deepEqual(
        await ex.map(seeded.seedOf, items, { chunkSize: 5 }),
        items.map((i) => seedFor(99, i)),
      );
      assert.deepEqual(
        await ex.map(seeded.seedOf, items, { seed: 2n ** 63n + 5n }),
        items.map((i) => seedFor(2n ** 63n + 5n, i)),
      );
      assert.equal(await ex.submit(seeded.seedOf, null), seedFor(99, 0));
      assert.equal(await ex.submit(seeded.seedOf, null, { seed: 3 }), seedFor(3, 0));
      await using plain = new ParallelExecutor({ strategy, maxWorkers: 1 });
      assert.equal(await plain.submit(seeded.seedOf, null), seedFor(0, 0), "the default seed is 0");
    });
  });

  test("a bad seed is refused with TypeError or RangeError", () => {
    assert.throws(() => new ParallelExecutor({ seed: -1 }), RangeError);
    assert.throws(() => new ParallelExecutor({ seed: 1.5 }), RangeError);
    assert.throws(() => new ParallelExecutor({ seed: "1" as unknown as number }), {
      name: "TypeError",
      message: /`seed` to be an integer from 0 to 2\^64 - 1/,
    });
    const ex = new ParallelExecutor({ strategy: "serial" });
    assert.throws(() => ex.imap(seeded.seedOf, [1], { seed: 2n ** 64n }), RangeError);
  });

  test("a seeded Monte Carlo estimate is identical on every strategy, worker count and chunk size", async () => {
    const samples = Array(24).fill(5_000);
    const results = new Map<string, string>();
    for (const strategy of STRATEGIES) {
      for (const maxWorkers of [1, 2, 4]) {
        for (const chunkSize of [1, 5, "auto"] as const) {
          await using ex = new ParallelExecutor({
            strategy,
            maxWorkers,
            chunkSize,
            seed: 20261123,
          });
          const runs = await ex.map(seeded.darts, samples);
          const hits = runs.reduce((sum, r) => sum + r.hits, 0);
          const estimate = (4 * hits) / (samples.length * 5_000);
          results.set(
            `${strategy}/${maxWorkers}/${chunkSize}`,
            JSON.stringify({ estimate, runs }),
          );
        }
      }
    }
    const distinct = new Set(results.values());
    assert.equal(
      distinct.size,
      1,
      show([...results.entries()].map(([k, v]) => [k, v.slice(0, 60)])),
    );
    const { estimate } = JSON.parse([...distinct][0]);
    assert.ok(Math.abs(estimate - Math.PI) < 0.05, `estimate ${estimate}`);
  });
});
