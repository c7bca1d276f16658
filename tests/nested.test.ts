/**
 * Executors inside tasks: a task running on a threads pool can start a processes executor of
 * its own, on every runtime (a worker thread has no main module, which the process strategy
 * must not depend on).
 */

import { describe } from "node:test";
import assert from "node:assert/strict";
import process from "node:process";
import { ParallelExecutor, tasks } from "../mod.ts";
import { assertPidsGone, test, within } from "./_helpers.ts";
import { removeDir, tempDir, waitForPids } from "./fixtures/proc.ts";

const nested = tasks<typeof import("./fixtures/nested.ts")>(
  new URL("./fixtures/nested.ts", import.meta.url),
);

describe("nested executors", () => {
  test("a task on a thread starts a processes executor, gets its child's result and disposes it", async () => {
    await using ex = new ParallelExecutor({ strategy: "threads", maxWorkers: 1 });
    const result = await ex.submit(nested.viaProcesses, 7);
    assert.equal(result.value, 49);
    assert.equal(result.outerPid, process.pid, "the outer task ran on a thread of this process");
    assert.notEqual(result.innerPid, process.pid, "the inner task ran in a child process");
    // The thread's own executor tracks its children, out of this test's sight: check the pid.
    await assertPidsGone([result.innerPid], "the inner executor's child process");
  });

  for (const how of ["terminate()", "an abort"] as const) {
    test(
      `${how} of a thread whose task runs a processes pool leaves no child behind, not even a zombie`,
      async () => {
        const dir = tempDir();
        try {
          const ex = new ParallelExecutor({ strategy: "threads", maxWorkers: 1 });
          const controller = new AbortController();
          const call = ex.submit(nested.nestedSpin, { dir, count: 2, maxMs: 120_000 }, {
            signal: controller.signal,
          });
          call.catch(() => {});
          const pids = await waitForPids(dir, ["inner-0", "inner-1"], "both inner tasks to start");
          if (how === "an abort") {
            controller.abort(new Error("stop"));
            await within(call.catch(() => {}), 30_000, "the aborted call");
          }
          await within(ex.terminate(), 30_000, "terminate()");
          // A zombie still answers kill(pid, 0): only a reaped child is gone.
          await assertPidsGone(pids, "the inner executor's child processes");
        } finally {
          removeDir(dir);
        }
      },
      60_000,
    );
  }
});
