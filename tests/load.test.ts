/**
 * Every wait inside a call is bounded and can be cut short: a worker's start and a task's
 * module load end at `loadTimeoutMs` with an error naming the module, on an abort, and on
 * `terminate()`; `timeoutMs` counts only the task's own run, not the load before it.
 */

import { describe } from "node:test";
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import {
  ExecutorClosedError,
  LoadTimeoutError,
  ParallelExecutor,
  TaskError,
  tasks,
} from "../mod.ts";
import {
  forEachStrategy,
  PROGRAM_WATCHDOG_MS,
  rejection,
  runProgram,
  runtime,
  show,
  test,
  within,
  work,
} from "./_helpers.ts";

const never = tasks<typeof import("./fixtures/never_loads.ts")>(
  new URL("./fixtures/never_loads.ts", import.meta.url),
);
const slow = tasks<typeof import("./fixtures/slow_loads.ts")>(
  new URL("./fixtures/slow_loads.ts", import.meta.url),
);
const NEVER_URL = new URL("./fixtures/never_loads.ts", import.meta.url).href;

/** Far below what the tests wait for, far above a normal load. */
const LOAD_TIMEOUT_MS = 300;

forEachStrategy(["threads", "processes"], (strategy) => {
  describe(`loading (${strategy})`, () => {
    const options = { strategy, maxWorkers: 1, loadTimeoutMs: LOAD_TIMEOUT_MS } as const;

    test("a module that never finishes loading fails with LoadTimeoutError naming it, and the executor recovers", async () => {
      await using ex = new ParallelExecutor(options);
      const error = await within(rejection(ex.submit(never.task, 1)), 30_000, "submit()");
      assert.ok(error instanceof LoadTimeoutError, show(error));
      assert.ok(error instanceof TaskError, "a LoadTimeoutError is a TaskError");
      assert.equal(error.index, 0);
      assert.equal(error.module, NEVER_URL);
      assert.equal(error.timeoutMs, LOAD_TIMEOUT_MS);
      assert.match(error.message, /never_loads\.ts did not finish loading within 300 ms/);
      assert.equal(await ex.submit(work.square, 3), 9, "a new worker serves the next call");
    });

    test("an abort ends the wait for a module that never loads", async () => {
      await using ex = new ParallelExecutor({ ...options, loadTimeoutMs: 60_000 });
      const controller = new AbortController();
      const call = ex.submit(never.task, 1, { signal: controller.signal });
      controller.abort(new Error("stop waiting"));
      const error = await within(rejection(call), 30_000, "the aborted submit()");
      assert.equal((error as Error).message, "stop waiting");
      assert.equal(await ex.submit(work.square, 4), 16);
    });

    test("terminate() ends the wait for a module that never loads", async () => {
      const ex = new ParallelExecutor({ ...options, loadTimeoutMs: 60_000 });
      const call = ex.submit(never.task, 1);
      const terminated = ex.terminate();
      const error = await within(rejection(call), 30_000, "the submit() cut short");
      assert.ok(error instanceof ExecutorClosedError, show(error));
      await within(terminated, 30_000, "terminate()");
    });

    test("close() after a load timed out does not wait for the stuck import", async () => {
      const ex = new ParallelExecutor(options);
      await rejection(ex.submit(never.task, 1));
      await within(ex.close(), 30_000, "close()");
    });

    test("a call cancelled while its module loads leaves no load bound behind to stop a later call", async () => {
      await using ex = new ParallelExecutor({ strategy, maxWorkers: 2, loadTimeoutMs: 1500 });
      // Both workers up, one with the module loaded: the other will be loading it when the
      // loop breaks, on the first result.
      const warm = { ms: 300, value: "warm" };
      assert.deepEqual(await ex.map(work.sleepThen, [warm, warm], { chunkSize: 1 }), [
        "warm",
        "warm",
      ]);
      assert.equal(await ex.submit(slow.wait, 0), 0);
      for await (const _ of ex.imap(slow.wait, [0, 0], { chunkSize: 1, ordered: false })) break;
      // The same task, longer than the load bound, on both workers: a bound left armed would
      // stop one of them.
      const results = await within(
        ex.map(slow.wait, [2500, 2500], { chunkSize: 1 }),
        30_000,
        "the later call",
      );
      assert.deepEqual(results, [2500, 2500]);
    });

    test("timeoutMs counts the task's run, not its module's load", async () => {
      await using ex = new ParallelExecutor({ ...options, loadTimeoutMs: 60_000 });
      // The module takes 600 ms to load, the task no time: a 100 ms timeout must not fire.
      assert.equal(await ex.submit(slow.square, 5, { timeoutMs: 100 }), 25);
      assert.deepEqual(await ex.map(slow.square, [1, 2], { timeoutMs: 100 }), [1, 4]);
    });
  });
});

describe("loading (serial)", () => {
  test(
    "a module that never finishes loading fails with LoadTimeoutError, and an abort ends the wait",
    async () => {
      const result = await runProgram(
        fileURLToPath(new URL("./fixtures/load_parent.ts", import.meta.url)),
        [],
      );
      const report = `\n--- stdout\n${result.stdout}\n--- stderr\n${result.stderr}`;
      assert.equal(result.hung, false, `no exit within ${PROGRAM_WATCHDOG_MS} ms${report}`);
      const line = result.stdout.split("\n").find((l) => l.startsWith("fanout-load-result "));
      assert.ok(line !== undefined, report);
      assert.deepEqual(JSON.parse(line.slice("fanout-load-result ".length)), {
        name: "LoadTimeoutError",
        index: 0,
        module: NEVER_URL,
        timeoutMs: 200,
        abort: "stop waiting",
        after: 9,
      });
      assert.match(result.stdout, /^fanout-load-closed$/m, "close() did not wait for the import");
      if (runtime === "deno") {
        // Deno reports an import still pending when the program ends, whatever the program did.
        assert.match(result.stderr, /Top-level await promise never resolved/, report);
      } else {
        assert.equal(result.code, 0, report);
      }
    },
    60_000,
  );

  test("timeoutMs counts the task's run, not its module's load", async () => {
    await using ex = new ParallelExecutor({ strategy: "serial" });
    assert.equal(await ex.submit(slow.square, 6, { timeoutMs: 100 }), 36);
  });
});
