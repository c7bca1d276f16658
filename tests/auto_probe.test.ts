/**
 * Auto's probe and its serial re-checks, driven with a host of their own and chunk times made
 * up or recorded: no workers, no clock. Each call runs as the pipeline runs it (`ChunkSizer`
 * cuts its chunks from what they measured) until auto moves it to threads or it ends.
 */

import { describe } from "node:test";
import assert from "node:assert/strict";
import { assumedCosts, PROBE_MS } from "../src/strategy/auto.ts";
import type { Decision } from "../src/strategy/auto.ts";
import { AutoRunner } from "../src/strategy/_auto_runner.ts";
import type { AutoHost } from "../src/strategy/_auto_runner.ts";
import { ChunkSizer, COLD_CHUNKS, Mean } from "../src/chunking.ts";
import type { Runner } from "../src/_pipeline.ts";
import type { ChunkResult } from "../src/strategy/types.ts";
import type { TaskSpec } from "../src/protocol.ts";
import type { RuntimeName } from "../src/runtime/mod.ts";
import { test } from "./_helpers.ts";
import { workload } from "./fixtures/workload.ts";

const TASK: TaskSpec = { kind: "inline", source: "(x) => x" };
const RUNTIMES: RuntimeName[] = ["node", "deno", "bun"];

/** What one call under auto did. */
interface Ran {
  /** Every choice auto made, in order. */
  readonly choices: Decision[];
  /** Items run on the calling thread (the probe, then serial) before it moved to threads. */
  readonly here: number;
}

/** How long a chunk takes on the calling thread: the `k`th, of `size` items from `from`. */
type ChunkMs = (from: number, size: number, k: number) => number;

/**
 * Runs a call of `items` items on 2 workers of `runtime`, priced with its constants, where its
 * chunks take `chunkMs` on the calling thread. `sizes` fixes the chunks' sizes (else a
 * `ChunkSizer` cuts them), `regretMs` is what earlier calls gave up, and `probeOnly` runs the
 * call as `explain()` does.
 */
async function run(
  runtime: RuntimeName,
  items: number,
  chunkMs: ChunkMs,
  { regretMs = 0, probeOnly = false, sizes = undefined as number[] | undefined } = {},
): Promise<Ran> {
  const choices: Decision[] = [];
  let regret = regretMs;
  let chunks = 0;
  const here: Runner = {
    concurrency: 1,
    perChunk: 1,
    onCaller: true,
    run: (request): Promise<ChunkResult> =>
      Promise.resolve({
        values: request.items,
        ms: chunkMs(request.base, request.items.length, chunks++),
      }),
  };
  const threads: Runner = {
    concurrency: 2,
    perChunk: 1,
    onCaller: false,
    run: () => Promise.reject(new Error("the test stops at the move to threads")),
  };
  const host: AutoHost = {
    workload: (perItemMs, measured, done, _sample, profile) =>
      workload({
        runtime,
        maxWorkers: 2,
        items,
        done,
        perItemMs,
        measured,
        profile,
        costs: assumedCosts(runtime),
        regretMs: regret,
      }),
    runner: (choice) => choice === "serial" ? here : threads,
    chosen: (decision) => {
      if (!probeOnly) regret += decision.regretMs;
      choices.push(decision);
    },
    measured: () => {},
    profiled: () => {},
  };
  const auto = new AutoRunner(host, undefined, undefined, probeOnly);
  const sizer = new ChunkSizer(
    "auto",
    () => auto.concurrency,
    undefined,
    () => auto.perChunk,
    () => auto.onCaller ? auto.concurrency : 0,
  );
  let done = 0;
  while (done < items && auto.onCaller) {
    const size = sizes?.[chunks] ?? Math.min(sizer.next(items - done), items - done);
    const chunk = Array.from({ length: size }, (_, k) => done + k);
    let result: ChunkResult;
    try {
      result = await auto.run({ task: TASK, base: done, items: chunk, timed: true });
    } catch (error) {
      if (probeOnly) break; // explain() stops once auto has chosen
      throw error;
    }
    sizer.record(size, result.ms);
    done += size;
  }
  await auto.conclude();
  return { choices, here: done };
}

/**
 * The chunks of a first call of 100,000 items of `n + 1` (`items:ms`), as they were measured
 * on a 2-core machine, with `{ maxWorkers: 1 }`: the first item ~1,000× slower than the last,
 * chunks of a few hundred still several times slower, and now and then one a few ms late. The
 * call took 8–22 ms serially in all, and several times that on threads, which the probe used to
 * choose for most such calls on each runtime.
 */
const FIRST_CALLS: Record<RuntimeName, string> = {
  node: "1:0.0661 16:0.0976 110:0.0710 217:0.0742 427:0.6363 737:0.4060 1339:0.3064 " +
    "2488:0.5125 4411:0.5282 7793:0.7445 8192:4.4061 8192:0.8213 8192:1.1185 8192:1.1401 " +
    "8192:0.8626 8192:1.0598 8192:0.8636 8192:1.1865 8192:0.7245 8192:0.7829 541:0.0450",
  deno: "1:0.0458 16:0.0711 159:0.0850 311:0.1244 604:0.3371 1115:0.3199 2065:0.3850 " +
    "3768:0.6401 6497:1.1599 8192:0.4839 8192:0.3152 8192:0.3463 8192:0.3376 8192:0.3073 " +
    "8192:0.2789 8192:0.2813 8192:0.5108 8192:0.5029 8192:0.4603 3544:0.2132",
  bun: "1:0.1062 16:0.0221 74:0.2711 139:0.1607 267:0.2152 508:0.4365 916:0.3041 " +
    "1702:0.7664 2857:0.5223 5055:1.2447 7710:1.4489 8192:1.6071 8192:1.6255 8192:1.5322 " +
    "8192:3.7325 8192:3.4195 8192:0.9906 8192:1.1181 8192:1.0332 8192:0.9546 7027:0.8217",
};

/**
 * A trivial task's chunk times as its first calls run: item `i` costs `warmMs` × (1 + 300 /
 * (1 + i)^0.8), 300× its final time for the first, ~8× by the 100th, ~2× by the 1,000th, close
 * to what `FIRST_CALLS` measured.
 */
function warmingUp(warmMs: number): ChunkMs {
  return (from, size) => {
    let ms = 0;
    for (let i = from; i < from + size; i++) ms += warmMs * (1 + 300 / (1 + i) ** 0.8);
    return ms;
  };
}

function strategies(ran: Ran): string {
  return ran.choices.map((decision) => decision.strategy).join(" → ");
}

function reasons(ran: Ran): string {
  return ran.choices.map((decision) => decision.reason).join("\n");
}

describe("auto's probe", () => {
  for (const runtime of RUNTIMES) {
    test(`a trivial task's slow first calls leave its call serial (${runtime})`, async () => {
      const trace = FIRST_CALLS[runtime].split(" ").map((chunk) => chunk.split(":").map(Number));
      const sizes = trace.map(([items]) => items);
      const replay: ChunkMs = (_from, _size, k) => trace[k][1];
      const ran = await run(runtime, 100_000, replay, { sizes });
      assert.equal(strategies(ran), "serial", reasons(ran));
      assert.equal(ran.here, 100_000);
      // explain() says what the call did.
      const plan = await run(runtime, 100_000, replay, { sizes, probeOnly: true });
      assert.equal(strategies(plan), "serial", reasons(plan));
    });
  }

  test("a serial choice does not count its own call's loss twice (rent or buy)", async () => {
    // 100,000 items of 0.002 ms, every chunk alike: serial, giving up ~60 ms to the cold pool
    // (which costs 90 ms to start on Node). Nothing measured later says anything new.
    const ran = await run("node", 100_000, (_from, size) => size * 0.002);
    assert.equal(strategies(ran), "serial", reasons(ran));
    assert.ok(ran.choices[0].regretMs > 45, `regret ${ran.choices[0].regretMs}`);
    // Earlier calls that gave up enough still start the pool, as before.
    const later = await run("node", 100_000, (_from, size) => size * 0.002, { regretMs: 60 });
    assert.equal(strategies(later), "threads", reasons(later));
    assert.match(later.choices[0].reason, /serial calls have already given up 60 ms/);
  });

  test("one chunk delayed by noise does not move a serial call to threads", async () => {
    // Bun's pool starts in ~10 ms, so a trivial call is nearest to threads there. Its 8th chunk,
    // a few thousand items into the call, waits 5 ms for the core (another process, a
    // collection): 5 ms more than the whole call had measured by then.
    const warming = warmingUp(0.00012);
    const ran = await run("bun", 100_000, (from, size, k) => {
      return warming(from, size, k) + (k === 7 ? 5 : 0);
    });
    assert.equal(strategies(ran), "serial", reasons(ran));
    assert.equal(ran.here, 100_000);
  });

  test("a few slow items among fast ones still move the rest of the call to threads", async () => {
    // 64 items of 2 ms, 4 of them 100 ms, at 8, 24, 40 and 56: serial at first (on Node's
    // constants), threads before the second.
    const slow = new Set([8, 24, 40, 56]);
    const ran = await run("node", 64, (from, size) => {
      let ms = 0;
      for (let i = from; i < from + size; i++) ms += slow.has(i) ? 100 : 2;
      return ms;
    });
    assert.equal(strategies(ran), "serial → threads", reasons(ran));
    assert.ok(ran.here <= 24, `moved after ${ran.here} items`);
  });

  for (const [items, ms] of [[1000, 1], [2000, 0.3], [20_000, 0.05]]) {
    test(`${items} items of ${ms} ms still go to threads, after a short probe`, async () => {
      // A first call 3× slower than the rest, as a cold task's is.
      const ran = await run("node", items, (from, size) => (size + (from === 0 ? 2 : 0)) * ms);
      assert.equal(strategies(ran), "threads", reasons(ran));
      // The probe runs until its warm part spans PROBE_MS: a chunk or two past it.
      assert.ok(ran.here * ms <= 3 * PROBE_MS, `probed ${ran.here} items`);
    });
  }

  test("a first call slow enough to look parallel alone does not choose threads", async () => {
    // `n + 1`, whose first call took several ms (its module's first run: 2.5 ms seen on Bun).
    const warming = warmingUp(0.00012);
    const ran = await run("bun", 100_000, (from, size, k) => {
      return warming(from, size, k) + (k === 0 ? 5 : 0);
    });
    assert.equal(strategies(ran), "serial", reasons(ran));
  });
});

describe("Mean", () => {
  const near = (actual: number, expected: number): void =>
    assert.ok(Math.abs(actual - expected) < 1e-9, `${actual} ≠ ${expected}`);

  test("warm leaves out a slow start, and only a start", () => {
    const mean = new Mean();
    mean.add(1, 1);
    mean.add(16, 0.16);
    mean.add(100, 0.1);
    near(mean.perItemMs, 1.26 / 117);
    near(mean.warm.perItemMs, 0.001);
    near(mean.warm.ms, 0.1);
    // Past the first COLD_CHUNKS chunks every chunk counts, however slow: 10 ms more here.
    for (let k = mean.chunks; k < COLD_CHUNKS; k++) mean.add(100, 0.1);
    mean.add(100, 10);
    near(mean.warm.perItemMs, (0.1 * (COLD_CHUNKS - 2) + 10) / (100 * (COLD_CHUNKS - 1)));
    // A start no slower than the rest is kept.
    const even = new Mean();
    for (let k = 0; k < 4; k++) even.add(10, 1);
    near(even.warm.perItemMs, 0.1);
    near(even.warm.ms, 4);
  });
});
