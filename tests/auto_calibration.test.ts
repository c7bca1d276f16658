/**
 * Auto's cost model, calibrated: a pool's start, round trip and transport measured in this
 * process stand in for the runtime's constants, and the reason says which figures were measured
 * and which assumed. The figures are checked by what they say and what they change, not by how
 * long anything took.
 */

import { describe } from "node:test";
import assert from "node:assert/strict";
import { ParallelExecutor, tasks } from "../mod.ts";
import { assumedCosts, decide } from "../src/strategy/auto.ts";
import type { Workload } from "../src/strategy/auto.ts";
import { Calibration, calibration } from "../src/_calibration.ts";
import type { PoolCosts } from "../src/_calibration.ts";
import { detect } from "../src/runtime/mod.ts";
import { forEachStrategy, test } from "./_helpers.ts";
import { workload } from "./fixtures/workload.ts";

const auto = tasks<typeof import("./fixtures/auto_work.ts")>(
  new URL("./fixtures/auto_work.ts", import.meta.url),
);

const { name: runtime, capabilities } = detect();

/** A workload of slow items, priced with `costs`. */
function slowWorkload(overrides: Partial<Workload>): Workload {
  return workload({ items: 10_000, perItemMs: 2.1, measured: "probe", ...overrides });
}

/** What this process has measured of the thread pool, or the constants. */
function threadCosts(): PoolCosts {
  return calibration.costs("threads", assumedCosts(runtime));
}

/** The number in `reason` before `after` (`~38 ms (measured)` → 38), or fails. */
function quoted(reason: string, after: RegExp): number {
  const match = reason.match(new RegExp(`([\\d,.]+) ms ${after.source}`));
  assert.ok(match !== null, `no ${after} in: ${reason}`);
  return Number(match[1].replaceAll(",", ""));
}

/** Whether `value` is `ms` as a reason rounds it (two significant digits, whole from 100). */
function roundsTo(value: number, ms: number): boolean {
  return Math.abs(value - ms) <= Math.max(0.05 * ms, 0.5);
}

describe("decide() with measured costs", () => {
  test("the reason says which figures were assumed", () => {
    const decision = decide(slowWorkload({}));
    assert.equal(decision.strategy, "threads", decision.reason);
    assert.match(
      decision.reason,
      /≫ 90 ms pool start .*; start ~90 ms \(assumed\), round trip ~0\.03 ms \(assumed\), transport ~0\.1 µs per item \(assumed\)$/,
    );
  });

  test("a measured start replaces the constant in the decision and in the reason", () => {
    const costs = { ...assumedCosts("node"), start: { ms: 38, measured: true } };
    const decision = decide(slowWorkload({ costs }));
    assert.match(decision.reason, /≫ 38 ms pool start /);
    assert.match(decision.reason, /; start ~38 ms \(measured\), round trip ~0\.03 ms \(assumed\)/);
    // 60 ms of work: not worth a 90 ms start, worth a 2 ms one.
    const small = { items: 300, perItemMs: 0.2 };
    assert.equal(decide(slowWorkload(small)).strategy, "serial");
    const cheap = { ...assumedCosts("node"), start: { ms: 2, measured: true } };
    assert.equal(decide(slowWorkload({ ...small, costs: cheap })).strategy, "threads");
  });

  test("a measured round trip and transport are priced too", () => {
    const warm = { warm: { threads: true, processes: false }, items: 200, perItemMs: 0.2 };
    assert.equal(decide(slowWorkload(warm)).strategy, "threads");
    const slowTrip = { ...assumedCosts("node"), roundTrip: { ms: 20, measured: true } };
    const far = decide(slowWorkload({ ...warm, costs: slowTrip }));
    assert.equal(far.strategy, "serial", far.reason);
    assert.match(
      far.reason,
      /round trip ~20 ms \(measured\), transport ~0\.1 µs per item \(assumed\)/,
    );
    const costly = { ...assumedCosts("node"), transport: { ms: 0.5, measured: true } };
    const heavy = decide(slowWorkload({ ...warm, costs: costly }));
    assert.equal(heavy.strategy, "serial", heavy.reason);
    assert.match(heavy.reason, /transport ~500 µs per item \(measured\)$/);
  });
});

describe("Calibration", () => {
  const pool = { name: "threads", startMs: 42 };
  const few = (c: Calibration): number => c.costs("threads", assumedCosts("node")).roundTrip.ms;

  test("a worker's first chunk is no sample, and one outlier does not move the figure", () => {
    const c = new Calibration();
    c.record("threads", pool, 1, 1, 500); // the first chunk on worker 1: its start and load
    c.record("threads", pool, 1, 1, 0.2);
    c.record("threads", pool, 1, 1, 0.1);
    assert.equal(c.costs("threads", assumedCosts("node")).roundTrip.measured, false, "2 of 3");
    c.record("threads", pool, 1, 1, 0.3);
    assert.deepEqual(c.costs("threads", assumedCosts("node")).roundTrip, {
      ms: 0.2,
      measured: true,
    });
    c.record("threads", pool, 1, 4, 40);
    assert.equal(few(c), 0.2);
    // Worker numbers are per pool: another pool's worker 1 starts fresh.
    c.record("threads", { name: "threads" }, 1, 1, 0.01);
    assert.equal(few(c), 0.2);
  });

  test("chunks of many items measure the transport per item; others measure nothing", () => {
    const c = new Calibration();
    assert.equal(c.sample(pool, 100), undefined, "neither few items nor many");
    assert.equal(c.sample({ name: "serial" }, 1), undefined, "serial has no round trip");
    for (const ms of [9, 0.4, 0.4, 0.6, 0.2]) c.record("threads", pool, 2, 2000, ms);
    const { transport, roundTrip } = c.costs("threads", assumedCosts("node"));
    assert.deepEqual(transport, { ms: 0.0002, measured: true });
    assert.equal(roundTrip.measured, false);
  });

  test("after its first samples a figure is measured no more; starts are kept per kind", () => {
    const c = new Calibration();
    assert.notEqual(c.sample(pool, 1), undefined);
    for (let k = 0; k < 20; k++) c.record("threads", pool, 3, 1, 0.1);
    assert.equal(c.sample(pool, 1), undefined, "enough round trips: no more timing");
    assert.notEqual(c.sample(pool, 5000), undefined, "the transport still wants samples");
    c.started("threads", undefined);
    assert.equal(c.costs("threads", assumedCosts("node")).start.measured, false);
    c.started("processes", 120);
    assert.equal(c.costs("threads", assumedCosts("node")).start.ms, 90);
    c.started("threads", 42);
    assert.deepEqual(c.costs("threads", assumedCosts("node")).start, { ms: 42, measured: true });
    c.forget();
    assert.equal(c.costs("threads", assumedCosts("node")).start.measured, false);
  });
});

describe("strategy auto, calibrated", () => {
  test("explain() quotes the constant start before a pool started, the measured one after", async () => {
    calibration.forget(); // as in a fresh process
    await using ex = new ParallelExecutor({ maxWorkers: 2 });
    const items = Array(48).fill(8);
    const before = await ex.explain(auto.busy, items);
    const constant = capabilities.startMs.threads;
    assert.match(before.reason, new RegExp(`; start ~${constant} ms \\(assumed\\)`));
    assert.equal(quoted(before.reason, /pool start/), constant);
    const started = performance.now();
    await ex.warmup();
    const warmupMs = performance.now() - started;
    const after = await ex.explain(auto.busy, items);
    const figure = threadCosts().start;
    assert.equal(figure.measured, true);
    const said = quoted(after.reason, /\(measured\), round trip/);
    assert.ok(roundsTo(said, figure.ms), `${said} quoted for ${figure.ms}: ${after.reason}`);
    assert.ok(said > 0 && said <= warmupMs * 1.05 + 0.5, `${said} ms, warmup ${warmupMs} ms`);
  });

  test("the first chunks on a warm pool measure the round trip, and a new executor uses it", async () => {
    calibration.forget();
    {
      await using threads = new ParallelExecutor({ strategy: "threads", maxWorkers: 2 });
      await threads.warmup();
      assert.deepEqual(await threads.map(auto.busy, Array(48).fill(1)), Array(48).fill(1));
    }
    const { start, roundTrip } = threadCosts();
    assert.equal(roundTrip.measured, true);
    await using fresh = new ParallelExecutor({ maxWorkers: 2 });
    const plan = await fresh.explain(auto.busy, Array(48).fill(8));
    assert.match(plan.reason, /round trip ~[\d.<]+ ms \(measured\)/);
    // Its own pool never started: its cold start is priced with what the other one measured.
    assert.ok(roundsTo(quoted(plan.reason, /pool start/), start.ms), plan.reason);
    assert.match(plan.reason, /; start ~[\d.,]+ ms \(measured\)/);
  });

  forEachStrategy(["threads", "processes"], (strategy, test) => {
    test(`a ${strategy} pool's start is measured for ${strategy} alone`, async () => {
      calibration.forget();
      await using ex = new ParallelExecutor({ strategy, maxWorkers: 1 });
      await ex.warmup();
      // An executor of a fixed strategy hands its pool's start over as its first chunks are measured.
      assert.deepEqual(await ex.map(auto.square, [2, 3]), [4, 9]);
      const other = strategy === "threads" ? "processes" : "threads";
      const prior = assumedCosts(runtime);
      assert.equal(calibration.costs(strategy, prior).start.measured, true);
      assert.equal(calibration.costs(other, prior).start.measured, false);
    });
  });
});
