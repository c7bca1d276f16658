/**
 * The contract on cancellation, shutdown and failure: abort, close vs terminate, use after
 * close, workers that crash, and inputs that cannot cross a thread or process boundary.
 */

import { describe } from "node:test";
import assert from "node:assert/strict";
import {
  ExecutorClosedError,
  NotCloneableError,
  ParallelExecutor,
  TaskError,
  WorkerCrashedError,
} from "../mod.ts";
import { SAW_ABORT, STARTED, TIMED_OUT } from "./fixtures/work.ts";
import { waitForSlot } from "./fixtures/wait.ts";
import {
  assertPidsGone,
  boardFor,
  collect,
  forEachStrategy,
  holders,
  read,
  rejection,
  release,
  runtime,
  show,
  startedPids,
  STRATEGIES,
  test,
  within,
  work,
} from "./_helpers.ts";

forEachStrategy(STRATEGIES, (strategy) => {
  describe(`lifecycle (${strategy})`, () => {
    /** Whether tasks run on the calling thread (serial, async), where they must yield. */
    const onCaller = strategy === "serial" || strategy === "async";
    /** Whether tasks run beside each other (threads, processes) rather than one by one. */
    const parallel = !onCaller;
    const processes = strategy === "processes";
    // Async keeps two in flight here, as two workers would: the bounds below count on it.
    const options = {
      strategy,
      maxWorkers: 2,
      chunkSize: 1,
      ...(strategy === "async" ? { concurrency: 2 } : {}),
    } as const;
    /** How many one-item chunks run at once. */
    const running = strategy === "serial" ? 1 : 2;
    /**
     * A task that runs until its call is cancelled. In parallel it spins synchronously (the
     * hard case: only killing its process, terminating its thread, or on Deno threads the
     * shared-memory `ctx.signal`, stops it); serial runs on the test's own thread, so there it
     * must yield.
     */
    const blocker = parallel ? work.spin : work.hold;

    // ---- abort ----------------------------------------------------------------------------

    test("map() rejects with signal.reason when aborted mid-run", async () => {
      await using ex = new ParallelExecutor(options);
      const { board: b, items } = holders(strategy, 6);
      const controller = new AbortController();
      const reason = new Error("the test aborted this call");
      const outcome = rejection(ex.map(blocker, items, { signal: controller.signal }));
      try {
        await waitForSlot(b, STARTED, running, "the first tasks to start");
        controller.abort(reason);
        const error = await within(outcome, 20_000, "map() after abort");
        assert.equal(error, reason, `expected the signal's reason, got ${show(error)}`);
        if (processes) {
          // Nothing else can stop a synchronous loop: the processes running it were killed.
          const pids = startedPids(b);
          assert.equal(pids.length, running, `the spinning tasks ran in ${pids.length} processes`);
          await assertPidsGone(pids, "the processes of the aborted spinning tasks");
        }
      } finally {
        release(b);
      }
    });

    test("queued work does not run after abort", async () => {
      const { board: b, items } = holders(strategy, 8);
      const controller = new AbortController();
      let startedAtAbort: number;
      {
        await using ex = new ParallelExecutor(options);
        const call = ex.map(blocker, items, { signal: controller.signal });
        call.catch(() => {});
        try {
          await waitForSlot(b, STARTED, running, "the first tasks to start");
          controller.abort(new Error("stop"));
          startedAtAbort = read(b, STARTED);
          await within(rejection(call), 20_000, "map() after abort");
        } finally {
          release(b);
        }
      } // disposed: every worker is gone, so nothing can start any more.
      assert.equal(startedAtAbort, running);
      assert.equal(
        read(b, STARTED),
        startedAtAbort,
        "items that were still queued when the call was aborted ran anyway",
      );
      if (processes) await assertPidsGone(startedPids(b), "the processes after dispose");
    });

    // Processes, and threads on Bun and Node, are killed instead: their tasks see nothing.
    if (onCaller || (strategy === "threads" && runtime === "deno")) {
      test("an aborted running task sees ctx.signal.aborted", async () => {
        // Serial: the task shares the thread and must be told. Deno threads: terminate() cannot
        // stop a busy worker, so the spec has ctx.signal read from shared memory, visible even
        // to a synchronous loop that never yields.
        await using ex = new ParallelExecutor(options);
        const { board: b, items } = holders(strategy, 2, 60_000);
        const controller = new AbortController();
        const call = ex.map(blocker, items, { signal: controller.signal });
        call.catch(() => {});
        try {
          await waitForSlot(b, STARTED, running, "the tasks to start");
          controller.abort(new Error("stop"));
          await within(rejection(call), 20_000, "map() after abort");
          await waitForSlot(b, SAW_ABORT, running, "the running tasks to see ctx.signal.aborted");
          assert.equal(read(b, TIMED_OUT), 0);
        } finally {
          release(b);
        }
      });
    }

    test("an already-aborted signal rejects map(), imap() and submit() without running anything", async () => {
      const b = boardFor(strategy, 3);
      const input = [0, 1, 2].map((item) => ({ board: b, item, gated: false, maxMs: 1 }));
      const reason = new Error("aborted before the call");
      const signal = AbortSignal.abort(reason);
      {
        await using ex = new ParallelExecutor(options);
        assert.equal(await rejection(ex.map(work.gated, input, { signal })), reason);
        assert.equal(await rejection(collect(ex.imap(work.gated, input, { signal }))), reason);
        assert.equal(await rejection(ex.submit(work.gated, input[0], { signal })), reason);
        // The executor is unharmed.
        assert.deepEqual(await ex.map(work.square, [2, 3]), [4, 9]);
      }
      assert.equal(read(b, STARTED), 0, "a task of an already-aborted call ran");
    });

    test("imap() rejects with signal.reason when aborted mid-run", async () => {
      await using ex = new ParallelExecutor(options);
      const { board: b, items } = holders(strategy, 6);
      const controller = new AbortController();
      const reason = new Error("the test aborted this iteration");
      const outcome = rejection(collect(ex.imap(blocker, items, { signal: controller.signal })));
      try {
        await waitForSlot(b, STARTED, running, "the first tasks to start");
        controller.abort(reason);
        assert.equal(await within(outcome, 20_000, "imap() after abort"), reason);
      } finally {
        release(b);
      }
    });

    test("submit() rejects with signal.reason when aborted mid-run", async () => {
      await using ex = new ParallelExecutor(options);
      const { board: b, items } = holders(strategy, 1);
      const controller = new AbortController();
      const reason = new Error("the test aborted this task");
      const outcome = rejection(ex.submit(blocker, items[0], { signal: controller.signal }));
      try {
        await waitForSlot(b, STARTED, 1, "the task to start");
        controller.abort(reason);
        assert.equal(await within(outcome, 20_000, "submit() after abort"), reason);
        // The executor is unharmed.
        assert.equal(await ex.submit(work.square, 12), 144);
      } finally {
        release(b);
      }
    });

    test("the first failure of map() cancels the rest of the call", async () => {
      const b = boardFor(strategy);
      const items = Array.from(
        { length: 12 },
        (_, i) => ({ board: b, maxMs: 30_000, fail: i === 0 }),
      );
      {
        await using ex = new ParallelExecutor(options);
        const error = await within(rejection(ex.map(work.hold, items)), 20_000, "map()");
        assert.ok(error instanceof TaskError, `expected TaskError, got ${show(error)}`);
        assert.equal(error.index, 0);
        release(b); // lets an item that was already running finish, so close() can drain.
      }
      const started = read(b, STARTED);
      // Item 0 and whatever ran beside it; allow for one chunk queued ahead per worker.
      assert.ok(started <= running * 2, `${started} of 12 items ran after the first one failed`);
    });

    if (processes) {
      test("the first failure of map() aborts ctx.signal of the tasks running beside it", async () => {
        // A failure cancels the rest softly: a running task is told, not killed.
        const b = boardFor(strategy);
        const items = [0, 1].map((i) => ({
          board: b,
          maxMs: 30_000,
          failWhenStarted: i === 0 ? 2 : undefined,
        }));
        await using ex = new ParallelExecutor(options);
        try {
          const error = await within(rejection(ex.map(work.hold, items)), 20_000, "map()");
          assert.ok(error instanceof TaskError, `expected TaskError, got ${show(error)}`);
          assert.equal(error.index, 0);
          await waitForSlot(b, SAW_ABORT, 1, "item 1 to see ctx.signal abort");
          assert.equal(read(b, TIMED_OUT), 0);
        } finally {
          release(b);
        }
      });
    }

    // ---- close and terminate --------------------------------------------------------------

    test("close() lets a running call finish, then resolves", async () => {
      await using ex = new ParallelExecutor(options);
      const { board: b, items } = holders(strategy, 2);
      const call = ex.map(work.hold, items);
      let closeSettled = false;
      try {
        await waitForSlot(b, STARTED, 1, "a task to start");
        const closing = ex.close().then(() => {
          closeSettled = true;
        });
        assert.equal(ex.closed, true);
        // New work is refused while the running call drains.
        await assert.rejects(ex.map(work.square, [1]), ExecutorClosedError);
        assert.equal(closeSettled, false, "close() resolved while a call was still running");
        release(b);
        assert.deepEqual(await within(call, 20_000, "the running map()"), [
          "released",
          "released",
        ]);
        await within(closing, 20_000, "close()");
        if (processes) await assertPidsGone(startedPids(b), "the processes after close()");
      } finally {
        release(b);
      }
    });

    test("terminate() rejects a running call with ExecutorClosedError", async () => {
      await using ex = new ParallelExecutor(options);
      const { board: b, items } = holders(strategy, 4);
      const outcome = rejection(ex.map(work.hold, items));
      try {
        await waitForSlot(b, STARTED, running, "the tasks to start");
        await within(ex.terminate(), 20_000, "terminate()");
        if (processes) await assertPidsGone(startedPids(b), "the processes after terminate()");
        assert.equal(ex.closed, true);
        const error = await within(outcome, 20_000, "map() after terminate()");
        assert.ok(
          error instanceof ExecutorClosedError,
          `expected ExecutorClosedError, got ${show(error)}`,
        );
        assert.equal(error.name, "ExecutorClosedError");
      } finally {
        release(b);
      }
    });

    test("terminate() rejects a running imap() and submit() with ExecutorClosedError", async () => {
      await using ex = new ParallelExecutor(options);
      const { board: b, items } = holders(strategy, 3);
      const iterated = rejection(collect(ex.imap(work.hold, items.slice(0, 2))));
      const submitted = rejection(ex.submit(work.hold, items[2]));
      try {
        await waitForSlot(b, STARTED, running, "the tasks to start");
        await within(ex.terminate(), 20_000, "terminate()");
        for (const [what, outcome] of [["imap()", iterated], ["submit()", submitted]] as const) {
          const error = await within(outcome, 20_000, `${what} after terminate()`);
          assert.ok(error instanceof ExecutorClosedError, `${what}: got ${show(error)}`);
        }
      } finally {
        release(b);
      }
    });

    test("close() and terminate() are idempotent", async () => {
      const first = new ParallelExecutor(options);
      try {
        assert.equal(first.closed, false);
        assert.deepEqual(await first.map(work.square, [1, 2, 3]), [1, 4, 9]);
        await Promise.all([first.close(), first.close()]);
        await first.close();
        await first.terminate();
        await first.terminate();
        assert.equal(first.closed, true);
      } finally {
        await first.terminate();
      }
      const second = new ParallelExecutor(options);
      try {
        assert.deepEqual(await second.map(work.square, [4, 5]), [16, 25]);
        await Promise.all([second.terminate(), second.terminate()]);
        await second.close();
        await second.close();
        assert.equal(second.closed, true);
      } finally {
        await second.terminate();
      }
    });

    for (const how of ["close", "terminate"] as const) {
      test(`map(), imap() and submit() reject with ExecutorClosedError after ${how}()`, async () => {
        await using ex = new ParallelExecutor(options);
        assert.deepEqual(await ex.map(work.square, [3]), [9]); // workers have started
        await ex[how]();
        const checks: [string, Promise<unknown>][] = [
          ["map()", ex.map(work.square, [1, 2])],
          ["imap()", collect(ex.imap(work.square, [1, 2]))],
          ["submit()", ex.submit(work.square, 1)],
          ["map() of an inline function", ex.map((n: number) => n, [1])],
        ];
        for (const [what, call] of checks) {
          const error = await rejection(call, what);
          assert.ok(error instanceof ExecutorClosedError, `${what}: got ${show(error)}`);
        }
      });
    }

    test("a never-used executor closes cleanly", async () => {
      const ex = new ParallelExecutor(options);
      await ex.close();
      assert.equal(ex.closed, true);
    });

    // ---- non-cloneable input --------------------------------------------------------------

    if (parallel) {
      test("a non-cloneable input rejects with NotCloneableError naming the index and path", async () => {
        await using ex = new ParallelExecutor(options);
        const error = await rejection(
          ex.map(work.identity, [1, { name: "ok", cb: () => 1 }, 3]),
        );
        assert.ok(
          error instanceof NotCloneableError,
          `expected NotCloneableError, got ${show(error)}`,
        );
        assert.ok(error instanceof TypeError, "NotCloneableError is a TypeError");
        assert.equal(error.name, "NotCloneableError");
        assert.equal(error.index, 1);
        assert.equal(error.path, "input.cb");

        const symbol = await rejection(ex.submit(work.identity, Symbol("not cloneable")));
        assert.ok(symbol instanceof NotCloneableError, `got ${show(symbol)}`);
        assert.equal(symbol.index, 0);
        assert.equal(symbol.path, "input");

        const nested = await rejection(ex.map(work.identity, [[0], [1, [2, () => 3]]]));
        assert.ok(nested instanceof NotCloneableError, `got ${show(nested)}`);
        assert.equal(nested.index, 1);
        assert.equal(nested.path, "input[1][1]");

        // The executor stays usable.
        assert.deepEqual(await ex.map(work.square, [1, 2, 3]), [1, 4, 9]);
      });

      test("a non-cloneable input fails only its own call", async () => {
        await using ex = new ParallelExecutor(options);
        const input = Array.from({ length: 50 }, (_, i) => i);
        const good = ex.map(work.square, input);
        const bad = ex.map(work.identity, [{ when: new Date(0), fn: Math.max }]);
        const error = await rejection(bad);
        assert.ok(error instanceof NotCloneableError, `got ${show(error)}`);
        assert.equal(error.path, "input.fn");
        assert.deepEqual(await good, input.map((i) => i * i));
      });
    } else {
      test("the serial strategy passes inputs by reference, without cloning", async () => {
        await using ex = new ParallelExecutor(options);
        const input = { cb: () => 42 };
        const [out] = await ex.map(work.identity, [input]);
        assert.equal(out, input);
      });
    }

    // ---- crashes ----------------------------------------------------------------------------
    // On serial the "worker" is the calling thread: what would end a worker is contained while
    // the task runs there (src/runtime/_contain.ts), so the program lives on.

    {
      const crashes: {
        how: string;
        task: typeof work.crashExit;
        exitCode?: number;
        signal?: string;
      }[] = [
        { how: "process.exit(3)", task: work.crashExit, exitCode: 3 },
        { how: "an uncaught error thrown from a timer", task: work.crashTimerThrow },
        { how: "an unhandled rejection", task: work.crashUnhandledRejection },
        ...(runtime === "deno"
          ? [{ how: "Deno.exit(4)", task: work.crashDenoExit, exitCode: 4 }]
          : []),
        // Only a process has a signal to die of; a thread that did this would take the suite.
        ...(processes ? [{ how: "SIGKILL", task: work.crashSignal, signal: "SIGKILL" }] : []),
      ];
      for (const { how, task, exitCode, signal } of crashes) {
        // On serial, uncaught errors are contained too, but `bun test` takes them for itself
        // ahead of any listener: contain.test.ts checks those in programs of their own.
        if (onCaller && !/exit/i.test(how)) continue;
        test(`a worker killed by ${how} rejects the call with WorkerCrashedError, and the executor recovers`, async () => {
          await using ex = new ParallelExecutor(options);
          const error = await within(
            rejection(ex.map(task, [0, 1, -2, 3])),
            30_000,
            `map() of a task that crashes with ${how}`,
          );
          assert.ok(
            error instanceof WorkerCrashedError,
            `expected WorkerCrashedError, got ${show(error)}`,
          );
          assert.equal(error.name, "WorkerCrashedError");
          assert.equal(error.index, 2, `the crashed item was 2: ${show(error)}`);
          if (exitCode !== undefined) assert.equal(error.exitCode, exitCode);
          if (signal !== undefined) assert.equal(error.signal, signal, show(error));
          // A following call succeeds, on both workers.
          assert.deepEqual(await ex.map(work.square, [1, 2, 3, 4, 5, 6]), [1, 4, 9, 16, 25, 36]);
          assert.deepEqual(await ex.map(task, [7, 8]), [7, 8]);
          // submit() sees a crash the same way.
          const again = await within(rejection(ex.submit(task, -1)), 30_000, "submit()");
          assert.ok(again instanceof WorkerCrashedError, `submit(): got ${show(again)}`);
          assert.equal(again.index, 0);
          assert.equal(await ex.submit(work.square, 9), 81);
        });
      }
    }
  });
});
