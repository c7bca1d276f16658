/**
 * Strategy "auto", configuration precedence and CE_PARALLEL, fallback to serial, and
 * telemetry. `decide()` is checked on its own (pure); the executor through its decisions,
 * which `explain()` and telemetry report in words.
 */

import { describe } from "node:test";
import assert from "node:assert/strict";
import process from "node:process";
import { ParallelExecutor, tasks, WorkerCrashedError } from "../mod.ts";
import type { ExecutorOptions, ParallelExecutionEvent, TelemetryEvent } from "../mod.ts";
import { decide, estimateBytes, LARGE_INPUT_BYTES } from "../src/strategy/auto.ts";
import type { Workload } from "../src/strategy/auto.ts";
import { detect } from "../src/runtime/mod.ts";
import { forEachStrategy, rejection, show, test } from "./_helpers.ts";
import { workload } from "./fixtures/workload.ts";

const auto = tasks<typeof import("./fixtures/auto_work.ts")>(
  new URL("./fixtures/auto_work.ts", import.meta.url),
);

/** Runs `fn` with CE_PARALLEL set to `value`, then restores it. */
async function withEnv<T>(value: string, fn: () => T | Promise<T>): Promise<T> {
  const before = process.env.CE_PARALLEL;
  process.env.CE_PARALLEL = value;
  try {
    return await fn();
  } finally {
    if (before === undefined) delete process.env.CE_PARALLEL;
    else process.env.CE_PARALLEL = before;
  }
}

describe("decide()", () => {
  test("rules that need no measurement come first, each with its reason", () => {
    const cases: [Partial<Workload>, string, RegExp][] = [
      [{ nested: true, isolate: true }, "serial", /inside a worker of another executor/],
      [{ isolate: true }, "processes", /isolation was asked for/],
      [{ runtime: "deno", timeoutMs: 500 }, "processes", /timeoutMs 500 on Deno/],
      [{ runtime: "deno", maxMemoryMb: 64 }, "processes", /maxMemoryMb 64 on Deno/],
      [{ runtime: "node", maxMemoryMb: 64 }, "threads", /capped in Node threads/],
      [{ items: 1 }, "serial", /1 item < minBatchSize 2/],
    ];
    for (const [overrides, strategy, reason] of cases) {
      const decision = decide(workload(overrides));
      assert.equal(decision.strategy, strategy, show(decision));
      assert.match(decision.reason, reason);
      assert.ok(decision.reason.startsWith(`${strategy}: `), decision.reason);
    }
  });

  test("a large input never goes to processes, even where a rule would pick them", () => {
    const decision = decide(
      workload({ runtime: "deno", timeoutMs: 500, inputBytes: LARGE_INPUT_BYTES, perItemMs: 5 }),
    );
    assert.equal(decision.strategy, "threads", decision.reason);
    assert.match(decision.reason, /inputs of ~10 MB stay off processes/);
  });

  test("without a time per item, it asks for a probe", () => {
    assert.equal(decide(workload({})).strategy, undefined);
  });

  test("slow items go to threads and say why in numbers", () => {
    const decision = decide(workload({ items: 10_000, perItemMs: 2.1, measured: "probe" }));
    assert.equal(decision.strategy, "threads");
    assert.equal(decision.workers, 4);
    assert.match(
      decision.reason,
      /^threads: 10,000 items × ~2\.1 ms each = 21,000 ms serially ≫ 90 ms pool start/,
    );
  });

  test("trivial items stay serial, and a warm pool lowers the bar", () => {
    const cold = decide(workload({ items: 200, perItemMs: 0.2, measured: "probe" }));
    assert.equal(cold.strategy, "serial", cold.reason);
    assert.match(cold.reason, /^serial: 200 items × ~0\.2 ms each = 40 ms in all/);
    const warm = decide(
      workload({ items: 200, perItemMs: 0.2, warm: { threads: true, processes: false } }),
    );
    assert.equal(warm.strategy, "threads", warm.reason);
    assert.match(warm.reason, /a warm pool/);
    assert.equal(decide(workload({ items: 1000, perItemMs: 0.0001 })).strategy, "serial");
  });

  test("serial calls that lost to the cold pool add up until starting it pays (rent or buy)", () => {
    const item = { items: 200, perItemMs: 0.2, measured: "probe" } as const;
    const first = decide(workload(item));
    assert.equal(first.strategy, "serial");
    assert.ok(first.regretMs > 20 && first.regretMs < 40, String(first.regretMs));
    const later = decide(workload({ ...item, regretMs: 3 * first.regretMs }));
    assert.equal(later.strategy, "threads", later.reason);
    assert.match(later.reason, /serial calls have already given up .* worth the 90 ms pool start/);
  });

  test("a pool that could not start is not chosen again", () => {
    const decision = decide(
      workload({ items: 10_000, perItemMs: 5, broken: { threads: "no read permission" } }),
    );
    assert.equal(decision.strategy, "serial");
    assert.match(decision.reason, /the threads pool could not start \(no read permission\)/);
  });

  test("a task that mostly waits goes to async, with its split in the reason", () => {
    const d = decide(workload({ items: 64, profile: { wallMs: 5, busyShare: 0.03, samples: 3 } }));
    assert.equal(d.strategy, "async");
    assert.equal(d.concurrency, 64);
    assert.equal(d.workers, 1);
    assert.match(d.reason, /^async: 64 items, ~5 ms each, 3% of it computing: 64 in flight/);
  });

  test("a task that waits, then computes, goes to threads with several in flight each", () => {
    const d = decide(
      workload({
        items: 128,
        maxWorkers: 2,
        warm: { threads: true, processes: false },
        profile: { wallMs: 7, busyShare: 2 / 7, samples: 3 },
      }),
    );
    assert.equal(d.strategy, "threads");
    assert.equal(d.concurrency, 7);
    assert.match(d.reason, /29% of it computing: 7 in flight on each of 2 threads/);
  });

  test("async chosen only because the pool is cold adds up until starting it pays", () => {
    const mixed = {
      items: 64,
      maxWorkers: 2,
      profile: { wallMs: 7, busyShare: 2 / 7, samples: 9 },
    };
    const cold = decide(workload(mixed));
    assert.equal(cold.strategy, "async");
    assert.ok(cold.regretMs > 0, `regret ${cold.regretMs}`);
    const later = decide(workload({ ...mixed, regretMs: 1000 }));
    assert.equal(later.strategy, "threads");
    assert.match(later.reason, /calls have already given up 1,000 ms: worth the pool start/);
  });

  test("async keeps as many in flight as the threads would, so it is not outbid by them", () => {
    // 200 loopback fetches: the threads would keep 64 each in flight; the calling thread can too.
    const d = decide(
      workload({
        items: 200,
        maxWorkers: 2,
        warm: { threads: true, processes: false },
        profile: { wallMs: 11, busyShare: 0.005, samples: 9 },
      }),
    );
    assert.equal(d.strategy, "async", d.reason);
    assert.equal(d.concurrency, 128);
    assert.match(d.reason, /: 128 in flight on the calling thread/);
    // Never fewer than "async"'s default, and never more than there are items.
    const few = decide(
      workload({ items: 8, profile: { wallMs: 11, busyShare: 0.005, samples: 9 } }),
    );
    assert.equal(few.concurrency, 64);
  });

  test("the caller's concurrency is the one auto prices and uses", () => {
    const d = decide(
      workload({ items: 64, concurrency: 8, profile: { wallMs: 5, busyShare: 0, samples: 3 } }),
    );
    assert.equal(d.strategy, "async");
    assert.equal(d.concurrency, 8);
    assert.match(d.reason, /: 8 in flight on the calling thread/);
  });

  test("a task that awaits but mostly computes is priced as computing", () => {
    const d = decide(workload({ items: 64, profile: { wallMs: 5, busyShare: 0.95, samples: 9 } }));
    assert.notEqual(d.strategy, "async");
    assert.equal(d.concurrency, undefined);
  });

  test("with a timeout, a thread runs one waiting item at a time, and auto prices it so", () => {
    const d = decide(
      workload({
        items: 1000,
        maxWorkers: 2,
        timeoutMs: 1000,
        warm: { threads: true, processes: false },
        profile: { wallMs: 20, busyShare: 0.01, samples: 9 },
      }),
    );
    assert.equal(d.strategy, "async", d.reason);
  });

  test("a short call of a task that awaits still chooses, and says so", async () => {
    const events: ParallelExecutionEvent[] = [];
    await using ex = new ParallelExecutor({
      maxWorkers: 2,
      onEvent: (event) => event.type === "parallel_execution" && events.push(event),
    });
    // Long enough to be waited for on a loaded machine too (see the next test).
    const wait = async (n: number): Promise<number> => {
      await new Promise((resolve) => setTimeout(resolve, 20));
      return n;
    };
    const plan = await ex.explain(wait, [1, 2]);
    assert.notEqual(plan.reason, "serial: no items");
    assert.match(plan.reason, /of it computing/);
    assert.deepEqual(await ex.map(wait, [3, 4]), [3, 4]);
    for (let k = 0; k < 3; k++) assert.equal(await ex.submit(wait, k), k);
    assert.equal(events.length, 4);
    for (const event of events) assert.notEqual(event.reason, "", show(event));
  });

  test("the probe measures the split of a task that awaits, and explain() says it", async () => {
    await using ex = new ParallelExecutor({ maxWorkers: 2 });
    // A wait long enough that the event loop goes idle for it on a loaded machine too: a timer
    // already due when the loop gets the CPU back is never waited for (seen with 2 ms waits
    // beside a second test suite), and the CPU clock that caps the meter steps in up to 10 ms.
    const wait = async (n: number): Promise<number> => {
      await new Promise((resolve) => setTimeout(resolve, 20));
      return n;
    };
    const plan = await ex.explain(wait, Array.from({ length: 32 }, (_, i) => i));
    // Which strategy wins depends on the machine's noise; that it was seen to wait does not.
    assert.match(
      plan.reason,
      /^(async|threads): 32 items, ~[\d.]+ ms each, [<\d.]+% of it computing/,
    );
    assert.deepEqual(await ex.map(wait, [1, 2, 3]), [1, 2, 3]);
  });

  test("one worker, or one item left, is serial", () => {
    assert.equal(decide(workload({ maxWorkers: 1, perItemMs: 50 })).strategy, "serial");
    assert.equal(decide(workload({ items: 2, done: 1, perItemMs: 50 })).strategy, "serial");
  });

  test("estimateBytes counts buffers exactly, and share() handles by the array they share", async () => {
    assert.ok(estimateBytes(new Float64Array(1000)) >= 8000);
    assert.ok(estimateBytes({ data: { "fanout.shared": 3 }, start: 0 }) < 100);
    await using ex = new ParallelExecutor({ strategy: "serial" });
    using big = ex.share(new Float64Array(2_000_000));
    assert.ok(estimateBytes({ data: big, start: 0 }) >= 16_000_000);
    using small = ex.share({ label: "x" });
    assert.ok(estimateBytes({ data: small }) < 100);
    assert.ok(estimateBytes("x".repeat(1000)) >= 2000);
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    assert.ok(estimateBytes(cyclic) < 100);
  });
});

describe("strategy auto", () => {
  test("is the default, and a few trivial items stay serial", async () => {
    const events: ParallelExecutionEvent[] = [];
    await using ex = new ParallelExecutor({
      maxWorkers: 2,
      onEvent: (e) => void (e.type === "parallel_execution" && events.push(e)),
    });
    assert.equal(ex.strategy, "auto");
    assert.deepEqual(await ex.map(auto.square, [1, 2, 3]), [1, 4, 9]);
    assert.equal(events.length, 1);
    assert.equal(events[0].strategy, "serial");
    assert.match(events[0].reason, /^serial: /);
    assert.deepEqual(await ex.map(auto.square, [7]), [49]);
    assert.match(events[1].reason, /^serial: 1 item < minBatchSize 2/);
  });

  test("the probe's result is used: every item runs exactly once", async () => {
    await using ex = new ParallelExecutor({ maxWorkers: 2 });
    for (const n of [1, 5, 40]) {
      const runs = new Int32Array(new SharedArrayBuffer(4));
      const items = Array.from({ length: n }, (_, i) => ({ runs, n: i }));
      assert.deepEqual(await ex.map(auto.counted, items), items.map((_, i) => i * 2));
      assert.equal(Atomics.load(runs, 0), n, `${n} items ran ${Atomics.load(runs, 0)} times`);
    }
  });

  test("slow items go to threads, and explain() says so before running the call", async () => {
    const events: ParallelExecutionEvent[] = [];
    await using ex = new ParallelExecutor({
      maxWorkers: 2,
      onEvent: (e) => void (e.type === "parallel_execution" && events.push(e)),
    });
    const items = Array(48).fill(8);
    const plan = await ex.explain(auto.busy, items);
    assert.equal(plan.strategy, "threads", plan.reason);
    assert.match(plan.reason, /^threads: 48 items × ~\d/);
    assert.deepEqual(await ex.map(auto.busy, items), items);
    assert.equal(events[0].strategy, "threads", events[0].reason);
    assert.equal(events[0].workers, 2);
  });

  test("submits in flight together count as a batch, once the task's cost is known", async () => {
    const chosen: string[] = [];
    const reasons: string[] = [];
    await using ex = new ParallelExecutor({
      maxWorkers: 2,
      onEvent: (e) => {
        if (e.type !== "parallel_execution") return;
        chosen.push(`${e.call} ${e.strategy}`);
        reasons.push(e.reason);
      },
    });
    // Warm threads first: what is tested is the batch, not the price of a start measured on a
    // machine as busy as it happens to be.
    await ex.warmup();
    await ex.map(auto.busy, Array(48).fill(8));
    const results = await Promise.all([8, 8, 8, 8].map((ms) => ex.submit(auto.busy, ms)));
    assert.deepEqual(results, [8, 8, 8, 8]);
    // The first submit is alone (1 < minBatchSize 2); the others join it, and the map measured
    // the task: they go to the warm threads.
    assert.equal(chosen[0], "map threads", reasons[0]);
    assert.deepEqual(chosen.slice(1).sort(), [
      "submit serial",
      "submit threads",
      "submit threads",
      "submit threads",
    ]);
  });

  test("an executor made inside a worker defaults to serial", async () => {
    for (const strategy of ["threads", "processes"] as const) {
      await using ex = new ParallelExecutor({ strategy, maxWorkers: 1 });
      const plan = await ex.submit(auto.nestedPlan, undefined);
      assert.equal(plan.strategy, "serial", `${strategy}: ${plan.reason}`);
      assert.match(plan.reason, /inside a worker of another executor/);
    }
  });

  test("isolate: true chooses processes", async () => {
    await using ex = new ParallelExecutor({ maxWorkers: 1, isolate: true });
    const plan = await ex.explain(auto.square, [1, 2, 3]);
    assert.equal(plan.strategy, "processes");
    assert.equal(plan.inProcess, false, "processes isolate crashes");
    assert.deepEqual(await ex.map(auto.square, [1, 2, 3]), [1, 4, 9]);
  });

  test("a fixed strategy explains itself by where it was set", async () => {
    await using ex = new ParallelExecutor({ strategy: "serial" });
    assert.deepEqual(await ex.explain(auto.square, [1]), {
      strategy: "serial",
      reason: 'serial: strategy "serial" set on the executor',
      workers: 1,
      concurrency: 1,
      inProcess: true,
    });
  });

  test("explain() says how many items each would keep in flight", async () => {
    const explained = async (options: ExecutorOptions): Promise<number> => {
      await using ex = new ParallelExecutor(options);
      return (await ex.explain(auto.square, [1, 2])).concurrency;
    };
    assert.equal(await explained({ strategy: "async" }), 64);
    assert.equal(await explained({ strategy: "async", concurrency: 5 }), 5);
    assert.equal(await explained({ strategy: "threads", maxWorkers: 2 }), 1);
    assert.equal(await explained({ strategy: "threads", maxWorkers: 2, concurrency: 4 }), 4);
    const d = decide(workload({ items: 64, profile: { wallMs: 5, busyShare: 0.03, samples: 3 } }));
    assert.equal(d.concurrency, 64);
  });
});

describe("configuration precedence and CE_PARALLEL", () => {
  test("CE_PARALLEL sets what the executor does not", async () => {
    await withEnv("threads, workers=3, chunk=5, min_batch=7", async () => {
      await using ex = new ParallelExecutor();
      assert.equal(ex.strategy, "threads");
      assert.equal(ex.maxWorkers, 3);
      assert.match((await ex.explain(auto.square, [1])).reason, /CE_PARALLEL=threads/);
      await using mine = new ParallelExecutor({ strategy: "serial", maxWorkers: 2 });
      assert.equal(mine.strategy, "serial", "the executor's option wins");
      await using autoEx = new ParallelExecutor({ strategy: "auto" });
      const plan = await autoEx.explain(auto.square, [1, 2, 3]);
      assert.match(plan.reason, /3 items < minBatchSize 7/, "min_batch came from CE_PARALLEL");
    });
  });

  test("CE_PARALLEL=off forces serial even over the executor's strategy", async () => {
    await withEnv("off", async () => {
      await using ex = new ParallelExecutor({ strategy: "threads", maxWorkers: 2 });
      assert.equal(ex.strategy, "serial");
      assert.equal((await ex.explain(auto.square, [1, 2])).reason, "serial: CE_PARALLEL=off");
      assert.deepEqual(await ex.map(auto.square, [2, 3]), [4, 9]);
    });
  });

  test("a per-call option wins over the executor's, which wins over CE_PARALLEL's", async () => {
    await withEnv("serial,timeout=1", async () => {
      await using fromEnv = new ParallelExecutor();
      const late = await rejection(fromEnv.submit(auto.busy, 30));
      assert.equal((late as Error).name, "TaskTimeoutError", "CE_PARALLEL's 1 ms applies");
      assert.equal(await fromEnv.submit(auto.busy, 30, { timeoutMs: 60_000 }), 30, "per call");
      await using own = new ParallelExecutor({ timeoutMs: 60_000 });
      assert.equal(await own.submit(auto.busy, 30), 30, "the executor's option");
    });
  });

  test("a bad CE_PARALLEL token fails the constructor with a RangeError quoting it", async () => {
    await withEnv("threads,workers=lots", () => {
      assert.throws(() => new ParallelExecutor(), {
        name: "RangeError",
        message: /"workers=lots".*integer from 1 to 1024/,
      });
    });
  });

  test("log=1 prints each call's strategy and reason to stderr", async () => {
    const lines: string[] = [];
    const original = console.error;
    console.error = (...args: unknown[]) => void lines.push(args.join(" "));
    try {
      await withEnv("serial,log=1", async () => {
        await using ex = new ParallelExecutor();
        await ex.map(auto.square, [1, 2]);
      });
    } finally {
      console.error = original;
    }
    assert.deepEqual(lines, ["fanout: map: serial: CE_PARALLEL=serial"]);
  });
});

describe("fallback to serial", () => {
  forEachStrategy(["threads", "processes"], (strategy) => {
    test(`forceSerialOnFailure runs the rest serially when a worker dies (${strategy})`, async () => {
      const events: TelemetryEvent[] = [];
      await using ex = new ParallelExecutor({
        strategy,
        maxWorkers: 2,
        forceSerialOnFailure: true,
        onEvent: (e) => void events.push(e),
      });
      assert.deepEqual(
        await ex.map(auto.crashInWorker, [1, 2, 3, 4], { chunkSize: 1 }),
        [2, 4, 6, 8],
      );
      const fallbacks = events.filter((e) => e.type === "fallback");
      assert.equal(fallbacks.length, 1, show(events));
      assert.equal(fallbacks[0].type === "fallback" && fallbacks[0].from, strategy);
      assert.ok(
        fallbacks[0].type === "fallback" && fallbacks[0].error instanceof WorkerCrashedError,
      );
      const call = events.find((e) => e.type === "parallel_execution") as ParallelExecutionEvent;
      assert.equal(call.strategy, "serial");
      assert.equal(call.fallbacks, 1);
      assert.ok(call.crashes >= 1);
      assert.match(call.reason, new RegExp(`^serial: fell back from ${strategy}: `));
      assert.equal(ex.stats().fallbacks, 1);
    });

    test(`without forceSerialOnFailure a dead worker fails the call (${strategy})`, async () => {
      await using ex = new ParallelExecutor({ strategy, maxWorkers: 2 });
      const error = await rejection(ex.map(auto.crashInWorker, [1, 2], { chunkSize: 1 }));
      assert.ok(error instanceof WorkerCrashedError, show(error));
    });
  });

  test("a task's own error is not a reason to fall back", async () => {
    await using ex = new ParallelExecutor({ strategy: "threads", forceSerialOnFailure: true });
    const error = await rejection(
      ex.map((n: number) => {
        if (n === 2) throw new Error("two");
        return n;
      }, [1, 2]),
    );
    assert.equal((error as Error).name, "TaskError");
    assert.equal(ex.stats().fallbacks, 0);
  });
});

describe("telemetry", () => {
  test("one parallel_execution event per call, with the numbers", async () => {
    const events: TelemetryEvent[] = [];
    await using ex = new ParallelExecutor({
      strategy: "threads",
      maxWorkers: 2,
      taskEvents: true,
      onEvent: (e) => void events.push(e),
    });
    assert.deepEqual(
      await ex.map(auto.busy, Array(10).fill(1), { chunkSize: 1 }),
      Array(10).fill(1),
    );
    const calls = events.filter((e) => e.type === "parallel_execution");
    assert.equal(calls.length, 1);
    const call = calls[0] as ParallelExecutionEvent;
    assert.equal(call.call, "map");
    assert.equal(call.ok, true);
    assert.equal(call.strategy, "threads");
    assert.equal(call.workers, 2);
    assert.equal(call.tasks, 10);
    assert.equal(call.chunks, 10);
    assert.ok(call.durationMs > 0);
    assert.ok(call.runMs.p50 > 0 && call.runMs.p95 >= call.runMs.p50, show(call.runMs));
    assert.ok(call.queueWaitMs.p95 >= call.queueWaitMs.p50 && call.queueWaitMs.p50 >= 0);
    assert.ok(call.utilization > 0 && call.utilization <= 1, String(call.utilization));
    assert.equal(call.fallbacks, 0);
    assert.equal(call.crashes, 0);
    const taskEvents = events.filter((e) => e.type === "task");
    assert.deepEqual(
      taskEvents.map((e) => e.type === "task" && e.index).sort((a, b) => Number(a) - Number(b)),
      [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
    );
    for (const e of taskEvents) {
      assert.ok(e.type === "task" && [1, 2].includes(e.worker), show(e));
    }
  });

  test("a failed call says so; crashes and respawns are counted", async () => {
    const calls: ParallelExecutionEvent[] = [];
    await using ex = new ParallelExecutor({
      strategy: "threads",
      maxWorkers: 1,
      onEvent: (e) => void (e.type === "parallel_execution" && calls.push(e)),
    });
    await rejection(ex.submit(auto.crashInWorker, 1));
    assert.deepEqual(await ex.map(auto.square, [3]), [9]);
    assert.equal(calls[0].ok, false);
    assert.equal(calls[0].crashes, 1);
    assert.equal(calls[1].respawns, 1, "the second call started a thread to replace the dead one");
    const stats = ex.stats();
    assert.equal(stats.calls, 2);
    assert.equal(stats.failedCalls, 1);
    assert.equal(stats.crashes, 1);
    assert.equal(stats.respawns, 1);
    assert.deepEqual(stats.byStrategy, { threads: 2 });
  });

  test("stats() counts without a listener, and a throwing listener does not break calls", async () => {
    await using quiet = new ParallelExecutor({ strategy: "serial" });
    await quiet.map(auto.square, [1, 2, 3]);
    assert.deepEqual(
      { ...quiet.stats(), busyMs: 0 },
      {
        calls: 1,
        failedCalls: 0,
        tasks: 3,
        chunks: quiet.stats().chunks,
        byStrategy: { serial: 1 },
        fallbacks: 0,
        crashes: 0,
        respawns: 0,
        recycled: 0,
        busyMs: 0,
      },
    );
    const warnings: string[] = [];
    const onWarning = (w: Error & { code?: string }) => void warnings.push(String(w.code));
    process.on("warning", onWarning);
    try {
      await using loud = new ParallelExecutor({
        strategy: "serial",
        onEvent: () => {
          throw new Error("listener broke");
        },
      });
      assert.deepEqual(await loud.map(auto.square, [2]), [4]);
      await new Promise((resolve) => setTimeout(resolve, 0));
    } finally {
      process.off("warning", onWarning);
    }
    assert.ok(warnings.includes("FANOUT_LISTENER_ERROR"), show(warnings));
  });

  if (detect().name !== "bun") {
    test("a memory cap under auto chooses a strategy that enforces it", async () => {
      await using ex = new ParallelExecutor({ maxMemoryMb: 256, maxWorkers: 1 });
      const plan = await ex.explain(auto.square, [1, 2, 3]);
      assert.equal(plan.strategy, detect().name === "node" ? "threads" : "processes");
    });
  }
});
