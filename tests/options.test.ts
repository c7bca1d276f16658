/**
 * Option validation at the boundary: wrong types are TypeErrors, out-of-range values are
 * RangeErrors, and the message names the option and the value received.
 */

import { describe } from "node:test";
import assert from "node:assert/strict";
import { ParallelExecutor } from "../mod.ts";
import type { ExecutorOptions } from "../mod.ts";
import { detect } from "../src/runtime/mod.ts";
import { forEachStrategy, rejection, show, STRATEGIES, test, work } from "./_helpers.ts";

/** [options, expected class, option name, how the value appears in the message] */
const BAD_OPTIONS: [
  Record<string, unknown>,
  typeof TypeError | typeof RangeError,
  string,
  string,
][] = [
  [{ maxWorkers: 0 }, RangeError, "maxWorkers", "0"],
  [{ maxWorkers: -1 }, RangeError, "maxWorkers", "-1"],
  [{ maxWorkers: 1.5 }, RangeError, "maxWorkers", "1.5"],
  [{ maxWorkers: Number.NaN }, RangeError, "maxWorkers", "NaN"],
  [{ maxWorkers: "2" }, TypeError, "maxWorkers", "2"],
  [{ chunkSize: 0 }, RangeError, "chunkSize", "0"],
  [{ chunkSize: -3 }, RangeError, "chunkSize", "-3"],
  [{ strategy: "bogus" }, RangeError, "strategy", "bogus"],
  [{ strategy: { name: "mine" } }, TypeError, "strategy", "an object"],
  [{ minBatchSize: -1 }, RangeError, "minBatchSize", "-1"],
  [{ taskSizeHintBytes: 0 }, RangeError, "taskSizeHintBytes", "0"],
  [{ forceSerialOnFailure: "yes" }, TypeError, "forceSerialOnFailure", "yes"],
  [{ isolate: 1 }, TypeError, "isolate", "1"],
  [{ onEvent: "log" }, TypeError, "onEvent", "log"],
  [{ taskEvents: 1 }, TypeError, "taskEvents", "1"],
  [{ timeoutMs: 2 ** 31 }, RangeError, "timeoutMs", String(2 ** 31)],
];

function assertNamesOption(
  error: unknown,
  expected: typeof TypeError,
  option: string,
  value: string,
): void {
  assert.ok(
    error instanceof expected,
    `expected ${expected.name} for ${option} = ${value}, got ${show(error)}`,
  );
  const message = error.message;
  // RangeError and TypeError are siblings; make sure it is not the other one.
  const other: ErrorConstructor = expected === RangeError ? TypeError : RangeError;
  assert.ok(!(error instanceof other), `got a ${other.name}: ${show(error)}`);
  assert.ok(message.includes(option), `the message should name \`${option}\`: ${message}`);
  assert.ok(message.includes(value), `the message should show the value ${value}: ${message}`);
}

describe("options", () => {
  for (const [options, expected, option, value] of BAD_OPTIONS) {
    test(`new ParallelExecutor({ ${option}: ${show(options[option])} }) throws a ${expected.name} naming the option`, async () => {
      let error: unknown;
      try {
        const ex = new ParallelExecutor(options as ExecutorOptions);
        await ex.terminate();
      } catch (e) {
        error = e;
      }
      assertNamesOption(error, expected, option, value);
    });
  }

  forEachStrategy(STRATEGIES, (strategy) => {
    test(`map() and imap() reject a bad per-call chunkSize (${strategy})`, async () => {
      await using ex = new ParallelExecutor({ strategy, maxWorkers: 2 });
      assertNamesOption(
        await rejection(ex.map(work.square, [1], { chunkSize: 0 })),
        RangeError,
        "chunkSize",
        "0",
      );
      let error: unknown;
      try {
        for await (const _ of ex.imap(work.square, [1], { chunkSize: 2.5 })) {
          // never reached
        }
      } catch (e) {
        error = e;
      }
      assertNamesOption(error, RangeError, "chunkSize", "2.5");
      // The executor is unharmed.
      assert.deepEqual(await ex.map(work.square, [5]), [25]);
    });

    test(`an executor reports its strategy, and closed flips on close() (${strategy})`, async () => {
      const ex = new ParallelExecutor({ strategy, maxWorkers: 2 });
      try {
        assert.equal(ex.strategy, strategy);
        if (strategy === "threads") assert.equal(ex.maxWorkers, 2);
        assert.equal(ex.closed, false);
      } finally {
        await ex.close();
      }
      assert.equal(ex.closed, true);
    });
  });

  test("the defaults are the auto strategy and one worker per usable CPU", async () => {
    await using ex = new ParallelExecutor();
    assert.equal(ex.strategy, "auto");
    assert.equal(ex.maxWorkers, detect().cpus);
    await using auto = new ParallelExecutor({ chunkSize: "auto", maxWorkers: 1 });
    assert.deepEqual(await auto.map(work.square, [1, 2, 3]), [1, 4, 9]);
  });
});
