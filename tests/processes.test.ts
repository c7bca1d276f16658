/**
 * The processes strategy: tasks run in child processes of the same runtime, a crash fails only
 * the task that caused it, aborting kills the processes of running tasks, disposing leaves no
 * process behind, and `maxMemoryMb` caps a worker's heap where the runtime can. (On Deno, a
 * child's permissions are tested in deno_permissions.test.ts.)
 *
 * A child process shares no memory with the test: tasks record their pid in a file of a
 * temporary directory (see fixtures/proc.ts) and the test polls for it, bounded.
 */

import { describe } from "node:test";
import assert from "node:assert/strict";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { ParallelExecutor, tasks, WorkerCrashedError } from "../mod.ts";
import type { ExecutorOptions } from "../mod.ts";
import { liveProcessPids } from "../src/runtime/mod.ts";
import { isAlive, removeDir, tempDir, waitForPids, waitUntilGone } from "./fixtures/proc.ts";
import {
  forEachStrategy,
  programReport,
  programResult,
  rejection,
  runProgram,
  runtime,
  show,
  test,
  within,
} from "./_helpers.ts";

const proc = tasks<typeof import("./fixtures/proc.ts")>(
  new URL("./fixtures/proc.ts", import.meta.url),
);

/** Fails if any of `pids` is still among the processes fanout has started and not reaped. */
function assertNotTracked(pids: number[], what: string): void {
  const live = liveProcessPids();
  const tracked = pids.filter((pid) => live.includes(pid));
  assert.deepEqual(tracked, [], `${what}: liveProcessPids() still lists ${tracked.join(", ")}`);
}

/**
 * Waits (bounded) until none of `pids` is tracked any more. After an abort the call rejects
 * first and the process is killed after: the OS can report the pid gone a moment before the
 * runtime hands its exit status to JavaScript, which is when the library stops tracking it.
 */
async function waitUntilUntracked(pids: number[], what: string, maxMs = 5_000): Promise<void> {
  const deadline = Date.now() + maxMs;
  while (pids.some((pid) => liveProcessPids().includes(pid)) && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  assertNotTracked(pids, what);
}

describe("processes", () => {
  const options = { strategy: "processes", maxWorkers: 2 } as const;

  // ---- crash isolation ----------------------------------------------------------------------

  test("a task that exits, is killed or throws at top level fails only its own submit() with WorkerCrashedError, and its process is replaced", async () => {
    await using ex = new ParallelExecutor(options);
    const dir = tempDir();
    try {
      const message = "thrown at top level by the crash test";
      const square = (n: number) => ({ kind: "square", n, call: ex.submit(proc.square, n) });
      const batch = [
        square(1),
        { kind: "exit", call: ex.submit(proc.exitWith, { dir, tag: "exit", code: 5 }) },
        square(2),
        square(3),
        { kind: "kill", call: ex.submit(proc.killSelf, { dir, tag: "kill", signal: "SIGKILL" }) },
        square(4),
        { kind: "throw", call: ex.submit(proc.throwFromTimer, { dir, tag: "throw", message }) },
        square(5),
        square(6),
      ];
      const settled = await within(
        Promise.allSettled(batch.map((entry) => entry.call)),
        60_000,
        "a batch of submits, three of which crash their process",
      );

      for (const [i, entry] of batch.entries()) {
        const outcome = settled[i];
        if ("n" in entry) {
          assert.equal(
            outcome.status,
            "fulfilled",
            `submit(square, ${entry.n}) beside the crashes: ${show(outcome)}`,
          );
          assert.equal(outcome.status === "fulfilled" && outcome.value, entry.n * entry.n);
          continue;
        }
        assert.equal(outcome.status, "rejected", `the ${entry.kind} task: ${show(outcome)}`);
        const error = outcome.status === "rejected" ? outcome.reason : undefined;
        assert.ok(
          error instanceof WorkerCrashedError,
          `the ${entry.kind} task: expected WorkerCrashedError, got ${show(error)}`,
        );
        assert.equal(error.name, "WorkerCrashedError");
        assert.equal(error.index, 0, `the ${entry.kind} task's index: ${show(error)}`);
        if (entry.kind === "exit") {
          assert.equal(error.exitCode, 5, `process.exit(5): ${show(error)}`);
        } else if (entry.kind === "kill") {
          assert.equal(error.signal, "SIGKILL", `killed by SIGKILL: ${show(error)}`);
        } else {
          assert.ok(
            `${error.message}\n${show(error.cause)}`.includes(message),
            `the error of a task that threw at top level should carry its message: ${show(error)}`,
          );
        }
      }

      // Each crash took its process down, so the three ran in three different processes.
      const crashed = await waitForPids(dir, ["exit", "kill", "throw"], "the crash tasks' pids");
      assert.equal(new Set(crashed).size, 3, `pids of the crashed processes: ${crashed}`);
      assert.ok(!crashed.includes(process.pid), "a crash task ran in the test's own process");
      await waitUntilGone(crashed, "the crashed processes to be gone");
      assertNotTracked(crashed, "after the crashes");

      // The pool replaced them: a task still runs, in a live process that is none of them.
      const fresh = await within(ex.submit(proc.pid, undefined), 20_000, "submit() after crashes");
      assert.notEqual(fresh, process.pid, "the task ran in the test's own process");
      assert.ok(!crashed.includes(fresh), `the task ran in crashed process ${fresh}`);
      assert.ok(isAlive(fresh), `process ${fresh} that just ran a task does not exist`);
      assert.ok(
        liveProcessPids().includes(fresh),
        `process ${fresh} is not among liveProcessPids(): ${liveProcessPids()}`,
      );
    } finally {
      removeDir(dir);
    }
  });

  // ---- processes are processes, and dispose ends them ---------------------------------------

  /**
   * Runs two tasks that each block their thread until both have started, so they can only
   * finish if they run at once in two processes, and returns their pids.
   */
  async function twoAtOnce(ex: ParallelExecutor, dir: string): Promise<number[]> {
    const items = [0, 1].map((i) => ({ dir, tag: `task-${i}`, count: 2, maxMs: 30_000 }));
    const pids = await within(
      ex.map(proc.rendezvous, items, { chunkSize: 1 }),
      40_000,
      "map() of two tasks that wait for each other",
    );
    assert.equal(new Set(pids).size, 2, `both tasks ran in the same process: ${pids}`);
    for (const pid of pids) {
      assert.notEqual(pid, process.pid, "a task ran in the test's own process");
      assert.ok(isAlive(pid), `worker process ${pid} does not exist while the executor is open`);
      assert.ok(
        liveProcessPids().includes(pid),
        `worker process ${pid} is not among liveProcessPids(): ${liveProcessPids()}`,
      );
    }
    return pids;
  }

  for (const how of ["close()", "terminate()", "await using"] as const) {
    test(`tasks run at once in child processes of their own, and none is left after ${how}`, async () => {
      const dir = tempDir();
      try {
        let pids: number[];
        if (how === "await using") {
          await using ex = new ParallelExecutor(options);
          pids = await twoAtOnce(ex, dir);
        } else {
          const ex = new ParallelExecutor(options);
          try {
            pids = await twoAtOnce(ex, dir);
            await within(how === "close()" ? ex.close() : ex.terminate(), 20_000, how);
          } finally {
            await ex.terminate();
          }
        }
        // Once disposal has resolved, the processes have exited and been reaped.
        const alive = pids.filter(isAlive);
        assert.deepEqual(alive, [], `worker process(es) ${alive} still exist after ${how}`);
        assert.deepEqual(liveProcessPids(), [], `liveProcessPids() after ${how}`);
      } finally {
        removeDir(dir);
      }
    });
  }

  test("aborting map() of tasks that spin synchronously rejects with signal.reason and kills their processes", async () => {
    await using ex = new ParallelExecutor(options);
    const dir = tempDir();
    try {
      const tags = ["spin-0", "spin-1"];
      const items = tags.map((tag) => ({ mark: { dir, tag }, maxMs: 60_000 }));
      const controller = new AbortController();
      const reason = new Error("the test aborted this call");
      const outcome = rejection(ex.map(proc.spin, items, { signal: controller.signal }));
      const pids = await waitForPids(dir, tags, "both spinning tasks to start");
      controller.abort(reason);
      const error = await within(outcome, 20_000, "map() after abort");
      assert.equal(error, reason, `expected the signal's reason, got ${show(error)}`);
      await waitUntilGone(pids, "the processes of the aborted tasks to be killed");
      await waitUntilUntracked(pids, "after the abort");
      // The executor is unharmed.
      assert.deepEqual(await within(ex.map(proc.square, [2, 3]), 20_000, "map()"), [4, 9]);
    } finally {
      removeDir(dir);
    }
  });

  test("aborting submit() of a task that spins synchronously rejects with signal.reason and kills its process", async () => {
    await using ex = new ParallelExecutor(options);
    const dir = tempDir();
    try {
      const controller = new AbortController();
      const reason = new Error("the test aborted this task");
      const outcome = rejection(
        ex.submit(proc.spin, { mark: { dir, tag: "spin" }, maxMs: 60_000 }, {
          signal: controller.signal,
        }),
      );
      const pids = await waitForPids(dir, ["spin"], "the spinning task to start");
      controller.abort(reason);
      const error = await within(outcome, 20_000, "submit() after abort");
      assert.equal(error, reason, `expected the signal's reason, got ${show(error)}`);
      await waitUntilGone(pids, "the process of the aborted task to be killed");
      await waitUntilUntracked(pids, "after the abort");
      assert.equal(await within(ex.submit(proc.square, 12), 20_000, "submit()"), 144);
    } finally {
      removeDir(dir);
    }
  });

  // ---- maxMemoryMb ----------------------------------------------------------------------------

  /**
   * Whether `strategy` caps a worker's heap on this runtime. V8's heap limit: Deno and Node
   * processes take --max-old-space-size, Node threads take resourceLimits. Bun
   * (JavaScriptCore) and Deno's Web Workers have no such knob.
   */
  const capped = (strategy: "processes" | "threads"): boolean =>
    strategy === "processes" ? runtime !== "bun" : runtime === "node";
  const uncapped = (strategy: "processes" | "threads"): string | undefined =>
    capped(strategy)
      ? undefined
      : `${runtime} ${strategy} have no memory cap, so the allocation would not stop`;
  forEachStrategy(["processes", "threads"], { skip: uncapped }, (strategy, test) => {
    const name =
      `a ${strategy} task that allocates past maxMemoryMb fails with WorkerCrashedError saying so, and the executor recovers`;
    test(name, async () => {
      await using ex = new ParallelExecutor({ strategy, maxWorkers: 1, maxMemoryMb: 64 });
      const dir = tempDir();
      try {
        // Bounded at 2 GB, far above the cap, so a missing cap shows as "survived".
        const error = await within(
          rejection(ex.submit(proc.allocate, { mark: { dir, tag: "alloc" }, maxMb: 2048 })),
          60_000,
          "submit() of a task that allocates past the cap",
        );
        assert.ok(
          error instanceof WorkerCrashedError,
          `expected WorkerCrashedError, got ${show(error)}`,
        );
        assert.match(error.message, /memory/i, `the error should say why: ${show(error)}`);
        if (strategy === "processes") {
          const pids = await waitForPids(dir, ["alloc"], "the allocating task's pid");
          await waitUntilGone(pids, "the process that ran out of memory to be gone");
        }
        assert.equal(await within(ex.submit(proc.square, 7), 20_000, "submit() after"), 49);
      } finally {
        removeDir(dir);
      }
    }, 120_000);
  });

  const BAD_MEMORY: [unknown, typeof RangeError | typeof TypeError, string][] = [
    [0, RangeError, "0"],
    [-64, RangeError, "-64"],
    [1.5, RangeError, "1.5"],
    [Number.NaN, RangeError, "NaN"],
    ["64", TypeError, "64"],
  ];
  for (const [value, expected, shown] of BAD_MEMORY) {
    test(`new ParallelExecutor({ maxMemoryMb: ${show(value)} }) throws a ${expected.name} naming the option`, async () => {
      for (const strategy of ["processes", "threads", "serial"] as const) {
        let error: unknown;
        try {
          const ex = new ParallelExecutor({ strategy, maxMemoryMb: value } as ExecutorOptions);
          await ex.terminate();
        } catch (e) {
          error = e;
        }
        const other = expected === RangeError ? TypeError : RangeError;
        assert.ok(
          error instanceof expected && !(error instanceof other),
          `${strategy}: expected ${expected.name}, got ${show(error)}`,
        );
        assert.match(error.message, /maxMemoryMb/, `${strategy}: the message should name it`);
        assert.ok(error.message.includes(shown), `${strategy}: should show ${shown}: ${error}`);
      }
    });
  }

  // Whether maxMemoryMb warns is decided once per process, so each case runs in a fresh one.
  forEachStrategy(["processes", "threads"], (strategy) => {
    const what = capped(strategy)
      ? "is applied without a warning"
      : "is ignored with one FANOUT_NO_MEMORY_CAP warning per process";
    test(`maxMemoryMb on ${runtime} ${strategy} ${what}`, async () => {
      const mode = strategy === "processes" ? "processes-memory-warning" : "memory-warning";
      const result = await runProgram(CHILD, [mode], ["-A"]);
      const warnings = programResult(result, "fanout-child-result ") as string[];
      assert.match(
        result.stdout,
        /^fanout-child-disposed$/m,
        `the child did not finish${programReport(result)}`,
      );
      assert.equal(
        warnings.length,
        capped(strategy) ? 0 : 1,
        `FANOUT_NO_MEMORY_CAP warnings from two executors in one process: ${show(warnings)}`,
      );
    }, 60_000);
  });
});

// ---- running a program of the same runtime -------------------------------------------------

const CHILD = fileURLToPath(new URL("./fixtures/child.ts", import.meta.url));
/** How long a program may take before it counts as hung. Generous: it normally takes < 2 s. */
