/**
 * Progress: `map` and `imap`'s `onProgress` on every strategy (counts, the final call, failures,
 * a throwing or a wrong callback), its throttle under a clock the test steps, and
 * `progressReporter` drawing on fake outputs, a terminal and a plain one.
 */

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import process from "node:process";
import { setImmediate } from "node:timers";
import { ParallelExecutor, progressReporter, TaskError } from "../mod.ts";
import { formatProgress } from "../src/progress.ts";
import type { Explanation, Progress, ProgressOutput, ProgressStyle } from "../mod.ts";
import { CallProgress, PROGRESS_INTERVAL_MS } from "../src/_call_progress.ts";
import { collect, forEachStrategy, rejection, show, STRATEGIES, test, work } from "./_helpers.ts";

/** Carriage return, then erase to the end of the line: how a terminal bar redraws. */
const ERASE = "\r\x1b[K";

/** Fails unless every count in `calls` only grows, call after call. */
function assertMonotonic(calls: readonly Progress[]): void {
  for (let at = 1; at < calls.length; at++) {
    const [before, after] = [calls[at - 1], calls[at]];
    assert.ok(after.done >= before.done, `done went down: ${show(calls)}`);
    assert.ok(after.failed >= before.failed, `failed went down: ${show(calls)}`);
    assert.ok(after.elapsedMs >= before.elapsedMs, `elapsedMs went down: ${show(calls)}`);
    assert.equal(after.total, before.total, `total changed: ${show(calls)}`);
  }
}

/** Fails unless `progress` is the final state of a call over `n` items that all succeeded. */
function assertFinished(progress: Progress | undefined, n: number): void {
  assert.ok(progress !== undefined, "no onProgress call was made");
  assert.equal(progress.done, n);
  assert.equal(progress.total, n);
  assert.equal(progress.failed, 0);
  assert.equal(progress.etaMs, 0);
  assert.ok(progress.elapsedMs >= 0, `elapsedMs is ${progress.elapsedMs}`);
}

function* numbers(n: number): Generator<number> {
  for (let k = 0; k < n; k++) yield k;
}

/**
 * `n` items, with a pause of twice the progress interval before the third: the items after it
 * come back once a periodic call is due. (A pause, not a window: nothing asserts its length.)
 */
async function* paced(n: number, onRead?: () => void): AsyncGenerator<number> {
  for (let k = 0; k < n; k++) {
    if (k === 2) await new Promise((resolve) => setTimeout(resolve, 2 * PROGRESS_INTERVAL_MS));
    onRead?.();
    yield k;
  }
}

forEachStrategy([...STRATEGIES, "auto"], (strategy) => {
  describe(`onProgress (${strategy})`, () => {
    const options = { strategy, maxWorkers: 2 } as const;
    const input = Array.from({ length: 40 }, (_, k) => k);

    test("map() makes a final onProgress call with done === total, before it resolves", async () => {
      await using ex = new ParallelExecutor(options);
      const calls: Progress[] = [];
      const results = await ex.map(work.square, input, {
        chunkSize: 3,
        onProgress: (progress) => calls.push(progress),
      });
      assert.deepEqual(results, input.map((n) => n * n));
      assertFinished(calls.at(-1), input.length);
      assertMonotonic(calls);
      assert.equal(calls.filter((p) => p.done === p.total).length, 1, show(calls));
    });

    test("imap() counts every item, in order and as completed, before the loop ends", async () => {
      await using ex = new ParallelExecutor(options);
      for (const ordered of [true, false]) {
        const calls: Progress[] = [];
        const results = await collect(ex.imap(work.square, input, {
          ordered,
          chunkSize: 2,
          onProgress: (progress) => calls.push(progress),
        }));
        assert.deepEqual(results.sort((a, b) => a - b), input.map((n) => n * n));
        assertFinished(calls.at(-1), input.length);
        assertMonotonic(calls);
      }
    });

    test("imap() over a generator reports total undefined", async () => {
      await using ex = new ParallelExecutor(options);
      const calls: Progress[] = [];
      const results = await collect(ex.imap(work.square, numbers(25), {
        onProgress: (progress) => calls.push(progress),
      }));
      assert.equal(results.length, 25);
      assert.ok(calls.length >= 1, "no onProgress call was made");
      assert.ok(calls.every((p) => p.total === undefined && p.etaMs === undefined), show(calls));
      assert.equal(calls.at(-1)!.done, 25);
      assertMonotonic(calls);
    });

    test("onProgress is called while a slow call runs; a throw there stops it", async () => {
      await using ex = new ParallelExecutor(options);
      const calls: Progress[] = [];
      const results = await ex.map(work.square, paced(4), {
        chunkSize: 1,
        onProgress: (progress) => calls.push(progress),
      });
      assert.deepEqual(results, [0, 1, 4, 9]);
      assert.ok(calls.length >= 2 && calls[0].done < 4, `no call while running: ${show(calls)}`);
      assert.equal(calls.at(-1)!.done, 4);
      assertMonotonic(calls);

      const boom = new Error("onProgress failed");
      let read = 0;
      let called = 0;
      const error = await rejection(ex.map(work.square, paced(1000, () => read++), {
        chunkSize: 1,
        onProgress: () => {
          called++;
          throw boom;
        },
      }));
      assert.equal(error, boom);
      assert.equal(called, 1);
      assert.ok(read < 1000, "the input was read to its end after onProgress threw");
    });

    test("a promise onProgress returns that rejects fails the call, or warns once it ended", async () => {
      await using ex = new ParallelExecutor(options);
      const boom = new Error("onProgress rejected");
      let read = 0;
      let called = 0;
      const unhandled: unknown[] = [];
      const onUnhandled = (reason: unknown): void => {
        unhandled.push(reason);
      };
      const warnings: Error[] = [];
      const onWarning = (warning: Error): void => {
        warnings.push(warning);
      };
      process.on("unhandledRejection", onUnhandled);
      process.on("warning", onWarning);
      try {
        // While the call runs: it fails with the rejection, and reads no further.
        const error = await rejection(ex.map(work.square, paced(1000, () => read++), {
          chunkSize: 1,
          onProgress: async () => {
            called++;
            await null;
            throw boom;
          },
        }));
        assert.equal(error, boom);
        assert.equal(called, 1);
        assert.ok(read < 1000, "the input was read to its end after onProgress rejected");
        // After it: the final call's rejection comes once the map has resolved (only the
        // final call rejects: a periodic one, on a busy machine, would fail the map instead).
        const late = new Error("late rejection");
        const onProgress = (p: Progress): Promise<void> =>
          p.done === p.total ? Promise.reject(late) : Promise.resolve();
        assert.deepEqual(await ex.map(work.square, [1, 2, 3], { onProgress }), [1, 4, 9]);
        // A warning is emitted on a later turn of the event loop, on every runtime.
        for (let turn = 0; turn < 100 && warnings.length === 0; turn++) {
          await new Promise((resolve) => setImmediate(resolve));
        }
        assert.equal(warnings.length, 1, show(warnings));
        assert.equal((warnings[0] as Error & { code?: string }).code, "FANOUT_PROGRESS_REJECTED");
        assert.match(warnings[0].message, /late rejection/);
        assert.deepEqual(unhandled, []);
      } finally {
        process.off("unhandledRejection", onUnhandled);
        process.off("warning", onWarning);
      }
    });

    test("a failing map() makes a last call with failed >= 1 before it rejects", async () => {
      await using ex = new ParallelExecutor(options);
      const calls: Progress[] = [];
      let seenAtRejection = -1;
      const error = await rejection(
        ex.map(work.rejectNegative, [0, 1, -2, 3, 4, 5], {
          onProgress: (progress) => calls.push(progress),
        }).catch((error: unknown) => {
          seenAtRejection = calls.length;
          throw error;
        }),
      );
      assert.ok(error instanceof TaskError, show(error));
      assert.ok(seenAtRejection >= 1, "no onProgress call before the rejection");
      const last = calls.at(-1)!;
      assert.ok(last.failed >= 1, show(calls));
      assert.ok(last.done >= last.failed && last.done <= 6, show(calls));
      assert.equal(last.total, 6);
      assertMonotonic(calls);
      await ex.close();
      assert.equal(
        calls.length,
        seenAtRejection,
        `a call came after the rejection: ${show(calls)}`,
      );
    });

    test("a failing imap() makes a last call with failed >= 1 before it throws", async () => {
      await using ex = new ParallelExecutor(options);
      const calls: Progress[] = [];
      const error = await rejection(
        collect(ex.imap(work.rejectNegative, [0, -1, 2], {
          ordered: false,
          onProgress: (progress) => calls.push(progress),
        })),
      );
      assert.ok(error instanceof TaskError, show(error));
      assert.ok(calls.at(-1)!.failed >= 1, show(calls));
    });

    test("a throwing onProgress fails map() and imap() with its error", async () => {
      await using ex = new ParallelExecutor(options);
      const boom = new Error("onProgress failed");
      let calls = 0;
      const onProgress = (): void => {
        calls++;
        throw boom;
      };
      assert.equal(await rejection(ex.map(work.square, input, { onProgress })), boom);
      assert.equal(calls, 1, "onProgress was called again after it threw");
      assert.equal(await rejection(collect(ex.imap(work.square, input, { onProgress }))), boom);
      // The executor is still usable, and a call that fails keeps its own error.
      assert.deepEqual(await ex.map(work.square, [1, 2]), [1, 4]);
      const error = await rejection(ex.map(work.rejectNegative, [-1], { onProgress }));
      assert.ok(error instanceof TaskError, show(error));
    });

    test("a cancelled map() makes a final call with the counts so far", async () => {
      await using ex = new ParallelExecutor(options);
      const calls: Progress[] = [];
      const controller = new AbortController();
      const reason = new Error("stop");
      controller.abort(reason);
      const error = await rejection(ex.map(work.square, input, {
        signal: controller.signal,
        onProgress: (progress) => calls.push(progress),
      }));
      assert.equal(error, reason);
      assert.equal(calls.length, 1, show(calls));
      assert.deepEqual({ ...calls[0], elapsedMs: 0 }, {
        done: 0,
        total: input.length,
        failed: 0,
        elapsedMs: 0,
        etaMs: undefined,
      });
    });

    test("leaving an imap() loop early makes one final call", async () => {
      await using ex = new ParallelExecutor(options);
      const calls: Progress[] = [];
      for await (
        const _ of ex.imap(work.square, numbers(1000), {
          chunkSize: 10,
          onProgress: (progress) => calls.push(progress),
        })
      ) {
        break;
      }
      assert.ok(calls.length >= 1, "no final onProgress call");
      const last = calls.at(-1)!;
      assert.ok(last.done >= 1 && last.failed === 0, show(calls));
      assertMonotonic(calls);
    });
  });
});

describe("onProgress option checks", () => {
  test("map() and imap() refuse an onProgress that is not a function", async () => {
    await using ex = new ParallelExecutor({ strategy: "serial" });
    const message = /Expected `onProgress` to be a function, got `5` \(number\)/;
    await assert.rejects(ex.map(work.square, [1], { onProgress: 5 as never }), {
      name: "TypeError",
      message,
    });
    assert.throws(() => ex.imap(work.square, [1], { onProgress: 5 as never }), {
      name: "TypeError",
      message,
    });
    await assert.rejects(ex.map(work.square, [1], { onProgress: null as never }), {
      name: "TypeError",
      message: /`onProgress` to be left out/,
    });
  });

  test("submit() has no onProgress", async () => {
    await using ex = new ParallelExecutor({ strategy: "serial" });
    await assert.rejects(ex.submit(work.square, 1, { onProgress: () => {} } as never), {
      name: "TypeError",
      message: /got `onProgress`/,
    });
  });

  test("explain() chooses the same after calls with an onProgress", async () => {
    await using ex = new ParallelExecutor({ maxWorkers: 2 });
    // The reason quotes measured times, which vary from call to call: compare the choice.
    const choice = ({ reason: _, ...rest }: Explanation) => rest;
    const before = choice(await ex.explain(work.square, [1, 2, 3]));
    await ex.map(work.square, [1, 2, 3], { onProgress: () => {} });
    assert.deepEqual(choice(await ex.explain(work.square, [1, 2, 3])), before);
  });
});

describe("CallProgress (a call's throttle, under a clock the test steps)", () => {
  it("reports at most every PROGRESS_INTERVAL_MS, then once at the end", () => {
    let now = 1000;
    const calls: Progress[] = [];
    const progress = new CallProgress((p) => calls.push(p), 10, () => now);
    progress.advance(1);
    assert.equal(calls.length, 0, "a call came before the interval had passed");
    now += PROGRESS_INTERVAL_MS;
    progress.advance(2);
    assert.deepEqual(calls.map((p) => p.done), [3]);
    assert.equal(calls[0].elapsedMs, PROGRESS_INTERVAL_MS);
    assert.equal(calls[0].etaMs, (7 * PROGRESS_INTERVAL_MS) / 3);
    now += PROGRESS_INTERVAL_MS - 1;
    progress.advance(1);
    assert.equal(calls.length, 1, "a call came again within the interval");
    now += 1;
    progress.advance(1);
    assert.deepEqual(calls.map((p) => p.done), [3, 5]);
    // All in: no periodic call, whatever the clock, as the final one follows.
    now += 10 * PROGRESS_INTERVAL_MS;
    progress.advance(5);
    assert.equal(calls.length, 2);
    progress.finish();
    progress.finish();
    assert.deepEqual(calls.at(-1), {
      done: 10,
      total: 10,
      failed: 0,
      elapsedMs: 12 * PROGRESS_INTERVAL_MS,
      etaMs: 0,
    });
    assert.equal(calls.length, 3);
  });

  it("counts a failed item as done and failed, and makes no call after a throw", () => {
    let now = 0;
    let calls = 0;
    const progress = new CallProgress(
      () => {
        calls++;
        throw new RangeError("no");
      },
      undefined,
      () => now,
    );
    progress.fail();
    now += PROGRESS_INTERVAL_MS;
    assert.throws(() => progress.advance(1), RangeError);
    now += PROGRESS_INTERVAL_MS;
    progress.advance(1);
    progress.finish();
    assert.equal(calls, 1);
  });
});

/** A fake output that keeps what is written to it. */
function fakeOutput(tty: boolean, columns?: number): ProgressOutput & { writes: string[] } {
  const writes: string[] = [];
  return { writes, isTTY: tty, columns, write: (text: string) => writes.push(text) };
}

function state(done: number, total: number | undefined, failed = 0): Progress {
  return {
    done,
    total,
    failed,
    elapsedMs: 1000 * done,
    etaMs: total === undefined ? undefined : 0,
  };
}

describe("progressReporter", () => {
  it("writes no escape codes to an output that is not a terminal, and a final N/N line", () => {
    const output = fakeOutput(false);
    const bar = progressReporter({ output, plainIntervalMs: 0 });
    for (let done = 1; done <= 5; done++) bar.update(state(done, 5));
    bar.clear();
    bar.finish();
    bar.update(state(5, 5));
    assert.equal(output.writes.length, 1, show(output.writes));
    assert.ok(output.writes.every((text) => !text.includes("\x1b")), show(output.writes));
    assert.match(output.writes[0], /\b5\/5\b/);
    assert.ok(output.writes[0].endsWith("\n"));
  });

  it("redraws a terminal's line in place, every update with intervalMs 0", () => {
    const output = fakeOutput(true, 60);
    const bar = progressReporter({ output, intervalMs: 0 });
    for (let done = 1; done <= 4; done++) bar.update(state(done, 4));
    assert.equal(output.writes.length, 4);
    assert.ok(output.writes.every((text) => text.startsWith(ERASE)), show(output.writes));
    assert.ok(output.writes.every((text) => text.length - ERASE.length < 60), show(output.writes));
    assert.match(output.writes.at(-1)!, /4\/4/);
  });

  it("redraws a terminal's line at most every intervalMs", () => {
    const output = fakeOutput(true, 80);
    const bar = progressReporter({ output, intervalMs: 1e9 });
    for (let done = 1; done <= 4; done++) bar.update(state(done, 10));
    assert.equal(output.writes.length, 1, show(output.writes));
    assert.match(output.writes[0], /1\/10/);
    // clear() erases the bar; the next update draws it again at once.
    bar.clear();
    assert.equal(output.writes.at(-1), ERASE);
    bar.clear();
    assert.equal(output.writes.length, 2, "clear() wrote again with nothing shown");
    bar.update(state(5, 10));
    assert.equal(output.writes.length, 3);
    assert.match(output.writes.at(-1)!, /5\/10/);
    // finish() draws the latest state whatever the interval, and ends the line.
    bar.update(state(6, 10));
    bar.finish(state(10, 10));
    assert.match(output.writes.at(-2)!, /10\/10/);
    assert.equal(output.writes.at(-1), "\n");
    const count = output.writes.length;
    bar.update(state(10, 10));
    bar.finish();
    assert.equal(output.writes.length, count, "the reporter drew after finish()");
  });

  it("draws a map's progress", async () => {
    await using ex = new ParallelExecutor({ strategy: "serial" });
    const output = fakeOutput(true, 80);
    const bar = progressReporter({ output });
    await ex.map(work.square, [1, 2, 3], { onProgress: (progress) => bar.update(progress) });
    bar.finish();
    assert.match(output.writes.at(-2)!, /3\/3/);
    assert.equal(output.writes.at(-1), "\n");
  });

  it("formatProgress() never writes past the width it is given", () => {
    const styles: ProgressStyle[] = ["bar", "progress", "eta"];
    const states: Progress[] = [
      state(0, 0),
      state(0, undefined),
      { done: 0, total: 1_000_000, failed: 0, elapsedMs: 0, etaMs: undefined },
      { done: 37, total: 200, failed: 2, elapsedMs: 697, etaMs: 3070 },
      { done: 123_456, total: undefined, failed: 99, elapsedMs: 3_600_000, etaMs: undefined },
      { done: 999_999, total: 1_000_000, failed: 12_345, elapsedMs: 86_400_000, etaMs: 86 },
    ];
    for (const style of styles) {
      for (const progress of states) {
        for (let width = 0; width <= 120; width++) {
          const line = formatProgress(progress, style, width);
          assert.ok(
            line.length <= width,
            `${style} at width ${width}: ${JSON.stringify(line)} (${line.length})`,
          );
        }
      }
    }
  });
});
