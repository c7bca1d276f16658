/**
 * The contract of `submit()` under load: submits issued together travel to a worker together
 * (on threads) yet each settles on its own, a lone submit is not held back, a crash costs only
 * the submits it reached, and `warmup()` starts the pool ahead of work.
 */

import { describe } from "node:test";
import assert from "node:assert/strict";
import { ExecutorClosedError, ParallelExecutor, tasks, TaskTimeoutError } from "../mod.ts";
import { WorkerCrashedError } from "../mod.ts";
import type { Case } from "./fixtures/batch.ts";
import { forEachStrategy, rejection, STRATEGIES, test, within, work } from "./_helpers.ts";
import { programReport, runProgram } from "./_helpers.ts";
import { fileURLToPath } from "node:url";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { liveProcessPids, liveThreadCount } from "../src/runtime/mod.ts";

const batch = tasks<typeof import("./fixtures/batch.ts")>(
  new URL("./fixtures/batch.ts", import.meta.url),
);

const KINDS = ["value", "throw", "reject", "async", "seed", "uncloneable"] as const;

/** How a submit ended, in a form two runs can be compared by. */
type Outcome =
  | { ok: true; value: unknown }
  | { ok: false; name: string; message: string; cause?: string };

function outcome(settled: PromiseSettledResult<unknown>): Outcome {
  if (settled.status === "fulfilled") {
    const value = settled.value;
    return { ok: true, value: typeof value === "function" ? "a function" : value };
  }
  const error = settled.reason as Error & { cause?: Error };
  return {
    ok: false,
    name: error.name,
    message: error.message,
    ...(error.cause instanceof Error
      ? { cause: `${error.cause.name}: ${error.cause.message}` }
      : {}),
  };
}

forEachStrategy(STRATEGIES, (strategy) => {
  describe(`submit (${strategy})`, () => {
    const options = { strategy, maxWorkers: 2 } as const;

    test("submits issued at once each settle as the same submit would alone", async () => {
      await using ex = new ParallelExecutor(options);
      const cases: Case[] = Array.from({ length: 240 }, (_, i) => ({ i, kind: KINDS[i % 6] }));
      // Every other seeded case carries a seed of its own; the rest take the default.
      const seedOf = (c: Case): bigint | undefined =>
        c.kind === "seed" && c.i % 12 === 4 ? BigInt(c.i) * 7919n : undefined;
      const together = await Promise.allSettled(
        cases.map((c) => ex.submit(batch.mixed, c, { seed: seedOf(c) })),
      );
      const alone: PromiseSettledResult<unknown>[] = [];
      for (const c of cases) {
        // One at a time on an idle pool: each submit travels alone.
        alone.push((await Promise.allSettled([ex.submit(batch.mixed, c, { seed: seedOf(c) })]))[0]);
      }
      for (let k = 0; k < cases.length; k++) {
        assert.deepEqual(outcome(together[k]), outcome(alone[k]), `case ${k} (${cases[k].kind})`);
      }
      // And what each got is its own: plain values carry their input and index 0.
      assert.deepEqual(together[0], { status: "fulfilled", value: { i: 0, index: 0 } });
      const thrown = together[1] as PromiseRejectedResult;
      assert.match(String(thrown.reason?.message), /bad 1/);
    });

    test("submits with signals and timeouts among plain ones settle on their own", async () => {
      await using ex = new ParallelExecutor(options);
      const plain = Array.from({ length: 100 }, (_, i) => ex.submit(work.square, i));
      const early = new AbortController();
      early.abort(new Error("aborted before"));
      const before = rejection(ex.submit(work.square, 3, { signal: early.signal }), "aborted");
      const running = new AbortController();
      const during = rejection(
        ex.submit(batch.mixed, { i: 1, kind: "wait" }, { signal: running.signal }),
        "the submit aborted while it ran",
      );
      const timed = rejection(
        ex.submit(batch.mixed, { i: 2, kind: "wait" }, { timeoutMs: 50 }),
        "the submit that ran past its timeout",
      );
      const later = new AbortController();
      const after = ex.submit(work.square, 4, { signal: later.signal });
      const more = Array.from({ length: 100 }, (_, i) => ex.submit(work.square, i + 100));

      assert.deepEqual(await Promise.all(plain), plain.map((_, i) => i * i));
      assert.deepEqual(await Promise.all(more), more.map((_, i) => (i + 100) ** 2));
      assert.equal(await before, early.signal.reason);
      assert.equal(await after, 16);
      later.abort(new Error("aborted after"));
      const reason = new Error("aborted during");
      running.abort(reason);
      assert.equal(await during, reason);
      assert.ok((await timed) instanceof TaskTimeoutError);
      assert.equal(await after, 16);
    });
  });
});

forEachStrategy(["threads", "processes"], (strategy) => {
  describe(`submit (${strategy}): coalescing`, () => {
    test("submits queued together reach a worker together", async () => {
      await using ex = new ParallelExecutor({ strategy, maxWorkers: 2 });
      // Issued before any worker is up: they all wait for one.
      const turns = await Promise.all(
        Array.from({ length: 200 }, (_, i) => ex.submit(batch.where, i)),
      );
      const messages = new Set(turns).size;
      assert.ok(messages <= 50, `200 submits took ${messages} messages`);
      assert.equal(ex.stats().tasks, 200);
    });
  });
});

describe("submit (threads): stops among chunks that move between workers", () => {
  test("a timeout or an abort never waits on a chunk another worker took over", async () => {
    // A chunk posted behind a busy worker may be taken by a free one; a stop on the busy
    // worker must then not take the stand-in it keeps for it as a chunk that started. Ten
    // rounds: which chunk lands where varies from round to round.
    for (let round = 0; round < 10; round++) {
      await using ex = new ParallelExecutor({ strategy: "threads", maxWorkers: 2 });
      const plain = Array.from({ length: 100 }, (_, i) => ex.submit(work.square, i));
      const running = new AbortController();
      const during = rejection(
        ex.submit(batch.mixed, { i: 1, kind: "wait" }, { signal: running.signal }),
      );
      const timed = rejection(ex.submit(batch.mixed, { i: 2, kind: "wait" }, { timeoutMs: 50 }));
      const more = Array.from({ length: 100 }, (_, i) => ex.submit(work.square, i + 100));
      assert.deepEqual(
        await Promise.all([...plain, ...more]),
        [...plain, ...more].map((_, i) => i * i),
      );
      running.abort(new Error("stop"));
      assert.equal(((await during) as Error).message, "stop", `round ${round}`);
      assert.ok((await timed) instanceof TaskTimeoutError, `round ${round}`);
    }
  });
});

forEachStrategy(["threads", "processes"], (strategy) => {
  describe(`submit (${strategy}): replies`, () => {
    test("each of many submits that fail and succeed side by side gets its own outcome", async () => {
      await using ex = new ParallelExecutor({ strategy, maxWorkers: 2 });
      // A signal keeps each submit a chunk of its own: two chunks per thread, and failures
      // beside results, are what once let a reply reach the wrong submit.
      const signal = new AbortController().signal;
      const oddThrows = (n: number): number => {
        if (n % 2 === 1) throw new Error(`odd ${n}`);
        return n * 10;
      };
      const settled = await Promise.allSettled(
        Array.from({ length: 5000 }, (_, n) => ex.submit(oddThrows, n, { signal })),
      );
      const wrong = settled.filter((one, n) =>
        n % 2 === 0
          ? one.status !== "fulfilled" || one.value !== n * 10
          : one.status !== "rejected" || !String(one.reason?.message).includes(`odd ${n}`)
      ).length;
      assert.equal(wrong, 0, `${wrong} of 5000 submits got another submit's outcome`);
    });
  });
});

describe("submit (processes): a batch whose process dies without a word", () => {
  test("no submit runs twice, and the ones after it still run", async () => {
    const dir = await mkdtemp(join(tmpdir(), "fanout-batch-"));
    try {
      await using ex = new ParallelExecutor({ strategy: "processes", maxWorkers: 1 });
      const log = join(dir, "runs.log");
      const settled = await Promise.allSettled(
        Array.from({ length: 12 }, (_, n) => ex.submit(batch.logThenKill, { n, log, kill: 4 })),
      );
      const runs = (await readFile(log, "utf8")).trim().split("\n").map(Number);
      assert.equal(runs.length, new Set(runs).size, `a submit ran twice: ${runs.join(",")}`);
      const crashed = settled[4] as PromiseRejectedResult;
      assert.ok(crashed.reason instanceof WorkerCrashedError, String(crashed.reason));
      for (let n = 0; n < settled.length; n++) {
        const one = settled[n];
        if (one.status === "fulfilled") assert.equal(one.value, n);
        else assert.ok(one.reason instanceof WorkerCrashedError, `submit ${n}: ${one.reason}`);
      }
      // The process was replaced: a later submit runs.
      assert.equal(await ex.submit(batch.logThenKill, { n: 99, log, kill: -1 }), 99);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe("warmup() (threads): a load that times out beside a running call", () => {
  test("warmup() rejects, and the call running on that thread still settles", async () => {
    await using ex = new ParallelExecutor({
      strategy: "threads",
      maxWorkers: 1,
      loadTimeoutMs: 300,
    });
    await ex.warmup();
    const running = ex.map(work.sleepThen, [{ ms: 1000, value: "done" }]);
    const slow = tasks<typeof import("./fixtures/slow_loads.ts")>(
      new URL("./fixtures/slow_loads.ts", import.meta.url),
    );
    const error = await rejection(ex.warmup({ tasks: [slow.square] }), "the slow warmup");
    assert.equal((error as Error).name, "LoadTimeoutError");
    assert.deepEqual(await within(running, 20_000, "the call beside it"), ["done"]);
  });
});

describe("submit (threads): dispatch", () => {
  test("a lone submit on an idle pool is dispatched at once, without waiting for company", async () => {
    await using ex = new ParallelExecutor({ strategy: "threads", maxWorkers: 2 });
    await ex.warmup({ tasks: [batch.openGate] });
    const gate = new Int32Array(new SharedArrayBuffer(4));
    const result = ex.submit(batch.openGate, gate);
    // The calling thread blocks here: the worker can only open the gate if the submit was
    // posted before submit() returned, not on a later turn of this thread's event loop.
    const woke = Atomics.wait(gate, 0, 0, 20_000);
    assert.notEqual(woke, "timed-out", "the submit was not dispatched until the caller yielded");
    assert.equal(await result, 1);
  });
});

forEachStrategy(["threads", "processes"], (strategy) => {
  describe(`submit (${strategy}): crashes and warm start`, () => {
    test("a crash fails the submit that crashed; submits after it still run", async () => {
      await using ex = new ParallelExecutor({ strategy, maxWorkers: 2 });
      const inputs = Array.from({ length: 100 }, (_, i) => (i === 50 ? -1 : i));
      const settled = await Promise.allSettled(inputs.map((n) => ex.submit(work.crashExit, n)));
      const crashed = settled[50] as PromiseRejectedResult;
      assert.equal(crashed.status, "rejected");
      assert.ok(crashed.reason instanceof WorkerCrashedError, String(crashed.reason));
      for (let k = 0; k < inputs.length; k++) {
        if (k === 50) continue;
        const one = settled[k];
        if (k > 50) assert.deepEqual(one, { status: "fulfilled", value: k }, `submit ${k}`);
        else if (one.status === "rejected") {
          // It ran in one message with the crash, whose worker took its result along.
          assert.ok(one.reason instanceof WorkerCrashedError, `submit ${k}: ${one.reason}`);
        } else assert.equal(one.value, k);
      }
    });

    test("warmup() starts every worker once, however often it is called", async () => {
      const threads = liveThreadCount();
      const processes = liveProcessPids().length;
      const alive = (): number =>
        strategy === "threads" ? liveThreadCount() - threads : liveProcessPids().length - processes;
      await using ex = new ParallelExecutor({ strategy, maxWorkers: 2 });
      await Promise.all([ex.warmup({ tasks: [work.square] }), ex.warmup()]);
      assert.equal(alive(), 2);
      await ex.warmup();
      assert.equal(alive(), 2);
      assert.equal(await ex.submit(work.square, 7), 49);
      assert.equal(alive(), 2);
    });

    test("warmup() on a closed executor rejects; after terminate() no worker is alive", async () => {
      const closed = new ParallelExecutor({ strategy, maxWorkers: 2 });
      await closed.close();
      assert.ok((await rejection(closed.warmup())) instanceof ExecutorClosedError);
      assert.ok((await rejection(closed.warmup())) instanceof ExecutorClosedError);
      const ex = new ParallelExecutor({ strategy, maxWorkers: 2 });
      await ex.warmup();
      await ex.terminate();
      // test() fails the test if a thread or process outlives it.
    });
  });
});

forEachStrategy(["threads", "processes"], (strategy) => {
  describe(`pipelining (${strategy})`, () => {
    test("a crash fails the call it reached; a chunk of another call behind it runs elsewhere", async () => {
      await using ex = new ParallelExecutor({ strategy, maxWorkers: 1 });
      const inputs = Array.from({ length: 16 }, (_, i) => (i === 5 ? -1 : i));
      const crashing = ex.map(work.crashExit, inputs, { chunkSize: 4 });
      const other = ex.map(work.square, inputs.map((_, i) => i), { chunkSize: 4 });
      const error = await rejection(crashing, "the call whose task crashed");
      assert.ok(error instanceof WorkerCrashedError, String(error));
      assert.equal((error as WorkerCrashedError).index, 5);
      assert.deepEqual(await other, inputs.map((_, i) => i * i));
    });

    test("map results keep their order and identity with chunks posted behind each other", async () => {
      await using ex = new ParallelExecutor({ strategy, maxWorkers: 2 });
      const inputs = Array.from({ length: 2000 }, (_, i) => `item-${i}`);
      const tagged = await ex.map(work.tagWithIndex, inputs, { chunkSize: 7 });
      assert.deepEqual(tagged, inputs.map((input, i) => `${i}:${input}`));
    });
  });
});

describe("warmup() (threads): tasks", () => {
  test("a task module that cannot load fails warmup() with the module's error", async () => {
    await using ex = new ParallelExecutor({ strategy: "threads", maxWorkers: 1 });
    const missing = tasks<{ nothing(n: number): number }>(
      new URL("./fixtures/no_such_module.ts", import.meta.url),
    );
    const error = (await rejection(ex.warmup({ tasks: [missing.nothing] }))) as Error;
    assert.match(String(error?.message), /no_such_module/);
    assert.equal(await ex.submit(work.square, 3), 9);
  });

  test("a program whose only work is warmup() stays alive until it resolves", async () => {
    // The module takes 600 ms to load: all that while only the pool's threads can keep the
    // program alive, and the threads are idle.
    const result = await runProgram(
      fileURLToPath(new URL("./fixtures/warmup_alone.ts", import.meta.url)),
      [],
    );
    assert.equal(result.hung, false, programReport(result));
    assert.equal(result.code, 0, programReport(result));
    assert.match(
      result.stdout,
      /fanout-mapped 1,4\nfanout-warm\nfanout-square 49\n/,
      programReport(result),
    );
  });

  test("warmup() checks its options", async () => {
    await using ex = new ParallelExecutor({ strategy: "threads", maxWorkers: 1 });
    const wrong = ex.warmup({ tasks: "square" } as never);
    assert.ok((await rejection(wrong)) instanceof TypeError);
    const extra = ex.warmup({ task: [] } as never);
    assert.match(String(((await rejection(extra)) as Error).message), /task/);
  });
});
