/**
 * Shared payloads: `share()` handles in task inputs, on every strategy. A value reaches each
 * worker once, tasks read it as `handle.value`, typed arrays are one memory on threads, and
 * `release()` (or closing the executor) frees it everywhere.
 */

import { describe } from "node:test";
import assert from "node:assert/strict";
import {
  ExecutorClosedError,
  NotCloneableError,
  ParallelExecutor,
  sharedArray,
  SharedReleasedError,
  TaskError,
  tasks,
} from "../mod.ts";
import type { Shared } from "../mod.ts";
import { STARTED } from "./fixtures/work.ts";
import { waitForSlot } from "./fixtures/wait.ts";
import {
  boardFor,
  collect,
  forEachStrategy,
  rejection,
  release,
  show,
  STRATEGIES,
  test,
} from "./_helpers.ts";

const shared = tasks<typeof import("./fixtures/shared_work.ts")>(
  new URL("./fixtures/shared_work.ts", import.meta.url),
);

/** A deterministic, non-trivial array: sums of it depend on every element and on the order. */
function data(length: number): Float64Array {
  const values = new Float64Array(length);
  let x = 12345;
  for (let i = 0; i < length; i++) {
    x = (x * 1103515245 + 12345) % 2147483648;
    values[i] = x / 2147483648 - 0.5;
  }
  return values;
}

/** `[start, end)` ranges that cut `length` into `parts` pieces. */
function ranges(length: number, parts: number): { start: number; end: number }[] {
  return Array.from({ length: parts }, (_, k) => ({
    start: Math.floor((k * length) / parts),
    end: Math.floor(((k + 1) * length) / parts),
  }));
}

/** The same range sums, on the calling thread. */
function serialSums(values: Float64Array, parts: { start: number; end: number }[]): number[] {
  return parts.map(({ start, end }) => {
    let sum = 0;
    for (let i = start; i < end; i++) sum += values[i];
    return sum;
  });
}

let keys = 0;
/** A key unique to one test, for per-isolate state in the fixture. */
function key(): string {
  return `k${++keys}-${Math.random().toString(36).slice(2)}`;
}

forEachStrategy(STRATEGIES, (strategy) => {
  describe(`shared payloads (${strategy})`, () => {
    const options = { strategy, maxWorkers: 2 } as const;
    // On the calling thread (serial, async) a task holds the caller's own handle and array.
    const parallel = strategy !== "serial" && strategy !== "async";

    test("a shared Float64Array summed by many tasks gives the serial sums", async () => {
      await using ex = new ParallelExecutor(options);
      const values = data(200_000);
      const parts = ranges(values.length, 40);
      using handle = ex.share(values);
      const input = parts.map((r) => ({ data: handle, ...r }));
      const expected = serialSums(values, parts);
      assert.deepEqual(await ex.map(shared.rangeSum, input), expected);
      assert.deepEqual(await ex.map(shared.rangeSum, input, { chunkSize: 1 }), expected);
      assert.deepEqual(await ex.map(shared.rangeSum, input, { chunkSize: 7 }), expected);
      assert.deepEqual(await collect(ex.imap(shared.rangeSum, input)), expected);
    });

    test("a handle works as the whole input, and inside arrays, Maps and Sets", async () => {
      await using ex = new ParallelExecutor(options);
      using a = ex.share(Float64Array.of(1, 2, 3));
      using b = ex.share(new Float64Array([10, 20]));
      using m = ex.share([100, 200]);
      using s = ex.share("four");
      assert.equal(await ex.submit(shared.lengthOf, a), 3);
      const input = { list: [a, b, a], map: new Map([["m", m]]), set: new Set([s]) };
      assert.equal(await ex.submit(shared.sumNested, input), 6 + 30 + 6 + 300 + 4);
    });

    if (parallel) {
      test("writes into a shared output array reach the caller (threads) or stay in each process", async () => {
        await using ex = new ParallelExecutor(options);
        const out = sharedArray(Float64Array, 1000);
        using handle = ex.share(out);
        assert.equal(handle.value, out, "an array already in shared memory is not copied");
        const counts = await ex.map(
          shared.writeRange,
          ranges(out.length, 10).map((r) => ({ out: handle, ...r })),
          { chunkSize: 1 },
        );
        assert.deepEqual(counts, Array(10).fill(100));
        const expected = Float64Array.from({ length: 1000 }, (_, i) => i * 2 + 1);
        if (strategy === "threads") assert.deepEqual(out, expected);
        else assert.deepEqual(out, new Float64Array(1000), "a process writes to its own copy");
      });
    } else {
      test("writes into a shared output array reach the caller", async () => {
        await using ex = new ParallelExecutor(options);
        const out = sharedArray(Float64Array, 100);
        using handle = ex.share(out);
        await ex.map(shared.writeRange, ranges(100, 4).map((r) => ({ out: handle, ...r })));
        assert.deepEqual(out, Float64Array.from({ length: 100 }, (_, i) => i * 2 + 1));
      });
    }

    test("a shared object reaches each worker once, however many tasks read it", async () => {
      await using ex = new ParallelExecutor(options);
      const k = key();
      using handle = ex.share({ label: "table", rows: Array.from({ length: 1000 }, (_, i) => i) });
      // Two calls, one task per message: a value sent again would be a new object there.
      const first = await ex.map(
        shared.see,
        Array.from({ length: 30 }, () => ({ key: k, shared: handle })),
        { chunkSize: 1 },
      );
      const second = await ex.map(
        shared.see,
        Array.from({ length: 30 }, () => ({ key: k, shared: handle })),
        { chunkSize: 1 },
      );
      const sightings = [...first, ...second];
      assert.ok(sightings.every((s) => s.label === "table"), show(sightings));
      assert.deepEqual(
        sightings.filter((s) => s.copies !== 1),
        [],
        "every task in a worker saw the one copy that worker was sent",
      );
      const isolates = new Set(sightings.map((s) => s.isolate));
      assert.ok(isolates.size <= (parallel ? 2 : 1), show([...isolates]));
    });

    test("the value is a snapshot: changes to the original after share() are not seen", async () => {
      await using ex = new ParallelExecutor(options);
      const original = { label: "before" };
      using handle = ex.share(original);
      original.label = "after";
      const seen = await ex.submit(shared.see, { key: key(), shared: handle });
      assert.equal(seen.label, "before");
      assert.equal(handle.value.label, "before");
    });

    test("release() frees the value in every worker; a task that kept the handle then fails", async () => {
      await using ex = new ParallelExecutor(options);
      const k = key();
      const handle = ex.share({ label: "kept" });
      const labels = await ex.map(
        shared.keep,
        Array.from({ length: 8 }, () => ({ key: k, shared: handle })),
        { chunkSize: 1 },
      );
      assert.deepEqual(labels, Array(8).fill("kept"));
      handle.release();
      assert.equal(handle.released, true);
      assert.throws(() => handle.value, SharedReleasedError);
      const reads = await ex.map(shared.readKept, Array(8).fill(k), { chunkSize: 1 });
      assert.ok(reads.includes("SharedReleasedError"), show(reads));
      assert.deepEqual(reads.filter((r) => r !== "SharedReleasedError" && r !== "none kept"), []);
      handle.release(); // idempotent
    });

    test("a released handle in an input fails the call with SharedReleasedError", async () => {
      await using ex = new ParallelExecutor(options);
      const handle = ex.share(Float64Array.of(1, 2));
      assert.equal(await ex.submit(shared.lengthOf, handle), 2);
      handle[Symbol.dispose]();
      const error = await rejection(ex.map(shared.lengthOf, [handle]));
      assert.ok(error instanceof SharedReleasedError, show(error));
      assert.equal(error.id, (handle as unknown as Record<string, number>)["fanout.shared"]);
      assert.match(error.message, /input of task 0 .*released/);
      const late = await rejection(ex.submit(shared.sumNested, {
        list: [],
        map: new Map(),
        set: new Set([handle as unknown as Shared<string>]),
      }));
      assert.ok(late instanceof SharedReleasedError, show(late));
      assert.deepEqual(await ex.map(shared.lengthOf, []), [], "the executor stays usable");
    });

    test("release() while a task holds the handle frees it only after that task", async () => {
      await using ex = new ParallelExecutor(options);
      const b = boardFor(strategy);
      const handle = ex.share(Float64Array.of(1, 2, 3, 4));
      const call = ex.submit(shared.holdThenSum, { board: b, maxMs: 30_000, data: handle });
      await waitForSlot(b, STARTED, 1, "the task to start");
      handle.release();
      assert.equal(handle.released, true);
      release(b);
      assert.deepEqual(await call, { outcome: "released", sum: 10 });
      assert.ok(await rejection(ex.submit(shared.lengthOf, handle)) instanceof SharedReleasedError);
    });

    test("release() during a call lets that call finish, items not read yet included", async () => {
      await using ex = new ParallelExecutor(options);
      const values = data(10_000);
      const parts = ranges(values.length, 20);
      const handle = ex.share(values);
      // Chunks are cut lazily, one per worker at a time: most items are not read yet here.
      const call = ex.map(shared.rangeSum, parts.map((r) => ({ data: handle, ...r })), {
        chunkSize: 1,
      });
      handle.release();
      assert.deepEqual(await call, serialSums(values, parts));
      assert.throws(() => handle.value, SharedReleasedError, "freed once the call ended");
      const late = await rejection(ex.submit(shared.lengthOf, handle as never));
      assert.ok(late instanceof SharedReleasedError, show(late));
      assert.match(late.message, /released before the call began/);

      const sumWith = (x: Float64Array): Promise<number[]> => {
        using scoped = ex.share(x);
        return ex.map(shared.rangeSum, parts.map((r) => ({ data: scoped, ...r })));
      };
      assert.deepEqual(await sumWith(values), serialSums(values, parts));
      assert.deepEqual(
        await collect(ex.imap(
          shared.rangeSum,
          (function* () {
            using scoped = ex.share(values);
            for (const r of parts) yield { data: scoped, ...r };
          })(),
        )),
        serialSums(values, parts),
        "a handle made and released by a lazy input",
      );
    });

    test("shared typed arrays and buffers are shared memory inside every task", async () => {
      await using ex = new ParallelExecutor(options);
      using array = ex.share(Float64Array.of(1, 2));
      using buffer = ex.share(new ArrayBuffer(8));
      assert.equal(await ex.submit(shared.memoryOf, array), "SharedArrayBuffer");
      assert.equal(await ex.submit(shared.memoryOf, buffer), "SharedArrayBuffer");
    });

    test("closing the executor releases every handle", async () => {
      const ex = new ParallelExecutor(options);
      const a = ex.share(Float64Array.of(1));
      const b = ex.share(new Map([[1, "one"]]));
      assert.equal(await ex.submit(shared.lengthOf, a), 1);
      await ex.close();
      assert.equal(a.released, true);
      assert.equal(b.released, true);
      assert.throws(() => b.value, SharedReleasedError);
      assert.throws(() => ex.share(1), ExecutorClosedError);
    });

    test("terminate() releases every handle too", async () => {
      const ex = new ParallelExecutor(options);
      const a = ex.share("text");
      await ex.terminate();
      assert.equal(a.released, true);
    });

    if (parallel) {
      test("a task cannot release a handle; only the caller that shared it can", async () => {
        await using ex = new ParallelExecutor(options);
        using handle = ex.share("x");
        assert.equal(await ex.submit(shared.releaseInside, handle), "TypeError");
        assert.equal(handle.released, false);
      });
    }

    test("a handle of another executor, or a copy of one, is refused with a TypeError", async () => {
      await using ex = new ParallelExecutor(options);
      await using other = new ParallelExecutor({ strategy: "serial" });
      using foreign = other.share(Float64Array.of(1));
      const error = await rejection(ex.submit(shared.lengthOf, foreign));
      assert.ok(error instanceof TypeError, show(error));
      assert.match(error.message, /another executor/);
      using own = ex.share(Float64Array.of(1));
      const copy = structuredClone(own);
      const copied = await rejection(ex.map(shared.lengthOf, [own, copy]));
      assert.ok(copied instanceof TypeError, show(copied));
      assert.match(copied.message, /task 1 .*copy of handle/);
    });

    test("a task error still names the task when inputs hold handles", async () => {
      await using ex = new ParallelExecutor(options);
      using handle = ex.share(Float64Array.of(1, 2));
      const error = await rejection(
        ex.map(shared.rangeSum, [{ data: handle, start: 0, end: 1 }, {
          data: null as unknown as Shared<Float64Array>,
          start: 0,
          end: 1,
        }]),
      );
      assert.ok(error instanceof TaskError, show(error));
      assert.equal(error.index, 1);
    });
  });
});

describe("share() and sharedArray()", () => {
  test("typed arrays, DataViews and ArrayBuffers move into shared memory once", async () => {
    await using ex = new ParallelExecutor({ strategy: "serial" });
    const plain = Float64Array.of(1.5, 2.5);
    using a = ex.share(plain);
    assert.ok(a.value.buffer instanceof SharedArrayBuffer);
    assert.ok(a.value instanceof Float64Array);
    assert.deepEqual([...a.value], [1.5, 2.5]);
    a.value[0] = 9;
    assert.equal(plain[0], 1.5, "the original is copied, not moved");
    const offset = new Uint16Array(new ArrayBuffer(16), 4, 3);
    offset.set([7, 8, 9]);
    using o = ex.share(offset);
    assert.deepEqual([...o.value], [7, 8, 9]);
    using buffer: Shared<SharedArrayBuffer> = ex.share(Uint8Array.of(4, 5).buffer);
    assert.ok(buffer.value instanceof SharedArrayBuffer);
    assert.deepEqual([...new Uint8Array(buffer.value)], [4, 5]);
    using view = ex.share(new DataView(Uint8Array.of(1, 2, 3).buffer, 1));
    assert.ok(view.value.buffer instanceof SharedArrayBuffer);
    assert.equal(view.value.getUint8(0), 2);
    const already = sharedArray(Int32Array, 4);
    using same = ex.share(already);
    assert.equal(same.value, already);
    using big = ex.share(BigInt64Array.of(1n, 2n));
    assert.deepEqual([...big.value], [1n, 2n]);
  });

  test("share() refuses what structured clone cannot copy, naming where it is", async () => {
    await using ex = new ParallelExecutor({ strategy: "serial" });
    const error = (() => {
      try {
        ex.share({ rows: [1, 2], format: { render: () => "x" } });
      } catch (e) {
        return e;
      }
    })();
    assert.ok(error instanceof NotCloneableError, show(error));
    assert.equal(error.path, "value.format.render");
    assert.match(error.message, /a function at `value\.format\.render`/);
    assert.throws(() => ex.share(Symbol("s")), NotCloneableError);
    using handle = ex.share(1);
    assert.throws(() => ex.share(handle), { name: "TypeError", message: /shared already/ });
    assert.throws(() => ex.share({ inner: handle }), {
      name: "TypeError",
      message: /without Shared handles inside/,
    });
  });

  test("sharedArray() allocates zeroed shared memory of the given type", () => {
    const a: Float64Array<SharedArrayBuffer> = sharedArray(Float64Array, 3);
    // @ts-expect-error: the Uint8Array class makes a Uint8Array, not an Int32Array
    const wrong: Int32Array = sharedArray(Uint8Array, 1);
    assert.ok(wrong instanceof Uint8Array);
    assert.ok(a instanceof Float64Array);
    assert.ok(a.buffer instanceof SharedArrayBuffer);
    assert.deepEqual([...a], [0, 0, 0]);
    assert.equal(sharedArray(Uint8Array, 0).length, 0);
    assert.ok(sharedArray(BigUint64Array, 2) instanceof BigUint64Array);
    Atomics.add(sharedArray(Int32Array, 1), 0, 1);
    assert.throws(
      () => sharedArray(Array as unknown as Float64ArrayConstructor, 1),
      { name: "TypeError", message: /typed array class/ },
    );
    assert.throws(() => sharedArray(Float64Array, -1), RangeError);
    assert.throws(() => sharedArray(Float64Array, 1.5), RangeError);
    assert.throws(() => sharedArray(Float64Array, "3" as unknown as number), TypeError);
  });
});
