/**
 * Worker recycling: `maxTasksPerWorker` replaces a worker once it has run that many tasks, and
 * `idleMemoryLimitMb` one whose heap grew past the limit, between chunks, never under a task;
 * on threads and processes, on every runtime. `killGraceMs` sets how long a stopped process
 * gets between SIGTERM and SIGKILL.
 */

import { describe } from "node:test";
import assert from "node:assert/strict";
import { ParallelExecutor, runCommands, tasks, TaskTimeoutError } from "../mod.ts";
import { describeExit } from "../src/strategy/processes.ts";
import { forEachStrategy, rejection, show, test } from "./_helpers.ts";

const recycle = tasks<typeof import("./fixtures/recycle_work.ts")>(
  new URL("./fixtures/recycle_work.ts", import.meta.url),
);
const proc = tasks<typeof import("./fixtures/proc.ts")>(
  new URL("./fixtures/proc.ts", import.meta.url),
);

/** How many times each id occurs, in order of first appearance. */
function runs(ids: string[]): number[] {
  const counts = new Map<string, number>();
  for (const id of ids) counts.set(id, (counts.get(id) ?? 0) + 1);
  return [...counts.values()];
}

forEachStrategy(["threads", "processes"], (strategy) => {
  describe(`recycling (${strategy})`, () => {
    test("maxTasksPerWorker replaces a worker after that many tasks", async () => {
      await using ex = new ParallelExecutor({ strategy, maxWorkers: 1, maxTasksPerWorker: 2 });
      const ids = await ex.map(recycle.workerId, [1, 2, 3, 4, 5], { chunkSize: 1 });
      assert.deepEqual(runs(ids), [2, 2, 1], `workers by task: ${show(ids)}`);
      const stats = ex.stats();
      assert.equal(stats.recycled, 2, show(stats));
      assert.equal(stats.respawns, 0, "a recycled worker's replacement is not a respawn");
    });

    test("without a limit one worker runs every task", async () => {
      await using ex = new ParallelExecutor({ strategy, maxWorkers: 1 });
      const ids = await ex.map(recycle.workerId, [1, 2, 3, 4, 5], { chunkSize: 1 });
      assert.deepEqual(runs(ids), [5]);
      assert.equal(ex.stats().recycled, 0);
    });

    test(
      "idleMemoryLimitMb replaces a worker whose heap grew past it, after its chunk",
      async () => {
        await using ex = new ParallelExecutor({ strategy, maxWorkers: 1, idleMemoryLimitMb: 48 });
        // Each task keeps ~20 MB: a worker passes 48 MB after its second or third task.
        const ids = await ex.map(recycle.leak, [20, 20, 20, 20, 20, 20], { chunkSize: 1 });
        const counts = runs(ids);
        assert.ok(counts.length >= 2, `one worker ran every task: ${show(counts)}`);
        assert.ok(counts.every((n) => n <= 3), `a worker ran past the limit: ${show(counts)}`);
        assert.ok(ex.stats().recycled >= 1);
      },
      60_000,
    );
  });
});

describe("killGraceMs", () => {
  test("runCommands: killGraceMs 0 sends SIGKILL at once, the default grace SIGTERM first", async () => {
    const job = { cmd: ["sleep", "30"] };
    const graceful = await runCommands([job], { timeoutMs: 200 });
    assert.equal(graceful.results[0].signal, "SIGTERM", show(graceful.results[0]));
    const at_once = await runCommands([job], { timeoutMs: 200, killGraceMs: 0 });
    assert.equal(at_once.results[0].signal, "SIGKILL", show(at_once.results[0]));
    assert.equal(at_once.results[0].timedOut, true);
  });

  test("runCommands: killGraceMs is checked at the boundary", async () => {
    for (const value of [-1, 1.5, "1000"]) {
      const error = await rejection(
        runCommands([{ cmd: ["true"] }], { killGraceMs: value as number }),
      );
      assert.ok(error instanceof RangeError || error instanceof TypeError, show(error));
      assert.match((error as Error).message, /killGraceMs/);
    }
  });

  test("processes: a timed-out task's process is stopped with the executor's killGraceMs", async () => {
    await using ex = new ParallelExecutor({
      strategy: "processes",
      maxWorkers: 1,
      killGraceMs: 0,
    });
    const error = await rejection(
      ex.submit(proc.spin, { maxMs: 60_000, deaf: true }, { timeoutMs: 200 }),
    );
    assert.ok(error instanceof TaskTimeoutError, show(error));
    assert.match(error.message, /SIGKILL at once \(killGraceMs 0\)/);
    assert.equal(await ex.submit(proc.square, 3), 9);
  });

  test("killGraceMs is checked at the boundary on the executor", () => {
    assert.throws(() => new ParallelExecutor({ killGraceMs: -1 }), /`killGraceMs`/);
    assert.throws(() => new ParallelExecutor({ killGraceMs: "1" as unknown as number }), TypeError);
    assert.equal(new ParallelExecutor({ strategy: "serial", killGraceMs: 0 }).closed, false);
  });
});

describe("a process worker that ran out of memory", () => {
  const v8Death = "<--- JS stacktrace --->\nFATAL ERROR: Reached heap limit Allocation failed - " +
    "JavaScript heap out of memory\n";
  test("is named as such without a cap, from its last words and how it died", () => {
    const how = describeExit({ code: null, signal: "SIGABRT" }, undefined, v8Death, undefined);
    assert.match(
      how,
      /^it ran out of memory \(the runtime's default heap limit; killed by SIGABRT/,
    );
    const deno = describeExit({ code: null, signal: "SIGTRAP" }, undefined, v8Death, undefined);
    assert.match(deno, /ran out of memory/);
  });

  test("is named with the cap when there is one", () => {
    assert.equal(
      describeExit({ code: null, signal: "SIGABRT" }, undefined, "", 64),
      "it ran out of memory (maxMemoryMb: 64)",
    );
  });

  test("is not confused with a task that merely printed the words and was killed otherwise", () => {
    const printed = "my task: out of memory? no\n";
    assert.equal(
      describeExit({ code: null, signal: "SIGKILL" }, undefined, printed, undefined),
      "it was killed by SIGKILL",
    );
    assert.equal(
      describeExit({ code: 0, signal: null }, undefined, printed, undefined),
      "it exited with code 0",
    );
  });
});
