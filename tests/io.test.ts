/**
 * Tasks that mostly wait, with several in flight at once: on the calling thread (`"async"`) and
 * per worker (`"threads"` and `"processes"` with `concurrency: 8`). Real workloads: fetches
 * from a local HTTP server the test starts (loopback, a random port), files read and hashed,
 * timers. Ordering is gated by the server, which holds the responses the test chooses until
 * the test releases them; nothing waits on time.
 */

import { describe } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { createHash } from "node:crypto";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ParallelExecutor, TaskError, tasks, WorkerCrashedError } from "../mod.ts";
import type { ExecutorOptions } from "../mod.ts";
import { forEachStrategy, rejection, show, within } from "./_helpers.ts";

const io = tasks<typeof import("./fixtures/io_work.ts")>(
  new URL("./fixtures/io_work.ts", import.meta.url),
);

/** Longest a gated step may take before the test fails instead of hanging. */
const BOUND_MS = 30_000;

/** What the server does with one request: `n` is the item in its path (`/item/<n>`). */
type Handler = (n: number, req: IncomingMessage, res: ServerResponse) => void;

/** A local HTTP server for one test. */
interface Server {
  /** `http://127.0.0.1:<port>`. */
  readonly base: string;
  /** Every request seen, in arrival order, by item. */
  readonly seen: number[];
  /** The inputs of `fetchText` for items `0..count-1`. */
  inputs(count: number): { url: string }[];
  /** Stops listening and drops every connection still open. */
  close(): Promise<void>;
}

/** Starts a server on 127.0.0.1, a random port, answering `/item/<n>` through `handler`. */
async function serve(handler: Handler): Promise<Server> {
  const sockets = new Set<Socket>();
  const seen: number[] = [];
  const server = createServer((req, res) => {
    const match = /^\/item\/(\d+)$/.exec(req.url ?? "");
    if (match === null) {
      res.statusCode = 404;
      res.end("no such item");
      return;
    }
    const n = Number(match[1]);
    seen.push(n);
    handler(n, req, res);
  });
  server.on("connection", (socket: Socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    base,
    seen,
    inputs: (count) => Array.from({ length: count }, (_, i) => ({ url: `${base}/item/${i}` })),
    close: () => {
      for (const socket of sockets) socket.destroy();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** The body the server sends for item `n`. */
const body = (n: number): string => `body-${n}`;

/** Answers item `n` with its body after `ms` (the server's workload, not a synchronization). */
function answerAfter(ms: number): Handler {
  return (n, _req, res) => {
    setTimeout(() => res.end(body(n)), ms);
  };
}

/** A promise with its resolver, for the test to settle. */
function deferred<T = void>(): { promise: Promise<T>; resolve: (value: T) => void } {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

const STRATEGIES = ["async", "threads", "processes"] as const;

/** The executor of each strategy: 64 in flight on async (its default), 8 per worker on pools. */
function optionsOf(strategy: typeof STRATEGIES[number]): ExecutorOptions {
  return strategy === "async" ? { strategy } : { strategy, concurrency: 8, maxWorkers: 2 };
}

forEachStrategy(STRATEGIES, (strategy, test) => {
  const options = optionsOf(strategy);
  const where = strategy === "async" ? "async" : `${strategy}, concurrency 8`;

  describe(`I/O (${where})`, () => {
    test("200 fetches from a local server come back with their own bodies, in input order", async () => {
      const server = await serve(answerAfter(3));
      try {
        await using ex = new ParallelExecutor(options);
        const bodies = await within(
          ex.map(io.fetchText, server.inputs(200)),
          BOUND_MS,
          "map() of 200 fetches",
        );
        assert.deepEqual(bodies, Array.from({ length: 200 }, (_, i) => body(i)));
        assert.deepEqual(
          [...server.seen].sort((a, b) => a - b),
          Array.from({ length: 200 }, (_, i) => i),
          "each item was fetched once",
        );
      } finally {
        await server.close();
      }
    });

    test("imap with ordered: false yields a later item before an earlier one the server holds", async () => {
      // Item 0 is held until the test has taken a result; every other item is answered at once.
      const held = deferred();
      const server = await serve((n, _req, res) => {
        if (n === 0) held.promise.then(() => res.end(body(n)));
        else setTimeout(() => res.end(body(n)), 1);
      });
      try {
        await using ex = new ParallelExecutor(options);
        const yielded: string[] = [];
        const consume = async (): Promise<void> => {
          for await (const text of ex.imap(io.fetchText, server.inputs(40), { ordered: false })) {
            yielded.push(text);
            if (yielded.length === 1) held.resolve();
          }
        };
        try {
          await within(consume(), BOUND_MS, "imap() while item 0 is held");
        } finally {
          held.resolve();
        }
        assert.notEqual(yielded[0], body(0), `item 0 was held, yet came first: ${yielded}`);
        assert.ok(yielded.indexOf(body(0)) > 0, `item 0 was yielded: ${yielded}`);
        assert.deepEqual(
          [...yielded].sort(),
          Array.from({ length: 40 }, (_, i) => body(i)).sort(),
          "every item yielded once",
        );
      } finally {
        await server.close();
      }
    });

    test("an abort while fetches are in flight rejects with its reason and closes their connections", async () => {
      const IN_FLIGHT = 8;
      const reached = deferred();
      /** Each held response: resolved when its connection closes, with whether it was answered. */
      const closed: Promise<boolean>[] = [];
      const server = await serve((_n, _req, res) => {
        // Held for good: only the client going away ends it.
        closed.push(new Promise((resolve) => res.on("close", () => resolve(res.writableEnded))));
        if (closed.length >= IN_FLIGHT) reached.resolve();
      });
      try {
        await using ex = new ParallelExecutor(options);
        const controller = new AbortController();
        const run = rejection(
          ex.map(io.fetchText, server.inputs(40), { signal: controller.signal }),
          "map() of held fetches, aborted",
        );
        await within(reached.promise, BOUND_MS, `${IN_FLIGHT} requests in flight at the server`);
        const inFlight = closed.slice();
        const reason = new Error("stop the fetches");
        controller.abort(reason);
        assert.equal(await within(run, BOUND_MS, "the aborted map()"), reason);
        const answered = await within(
          Promise.all(inFlight),
          BOUND_MS,
          `the connections of the ${inFlight.length} requests in flight closing`,
        );
        assert.deepEqual(
          answered,
          inFlight.map(() => false),
          "every request in flight was closed by the client, none answered",
        );
      } finally {
        await server.close();
      }
    });

    test("a failed fetch stops the others in flight through ctx.signal, and no worker is lost", async () => {
      // Every request is held, but item 3's: once 8 are in flight it is answered with a 500.
      // The call then stops softly (workers are kept), so only the tasks' own ctx.signal can
      // close the connections of the fetches still held.
      const IN_FLIGHT = 8;
      const reached = deferred();
      const closed: Promise<boolean>[] = [];
      const server = await serve((n, _req, res) => {
        if (n === 3) {
          reached.promise.then(() => {
            res.statusCode = 500;
            res.end("server error");
          });
        } else {
          closed.push(new Promise((resolve) => res.on("close", () => resolve(res.writableEnded))));
        }
        if (server.seen.length >= IN_FLIGHT) reached.resolve();
      });
      try {
        await using ex = new ParallelExecutor(options);
        const error = await within(
          rejection(ex.map(io.fetchText, server.inputs(40)), "map() with a 500 among held fetches"),
          BOUND_MS,
          "map() with a 500 among held fetches",
        );
        assert.ok(error instanceof TaskError, `expected TaskError, got ${show(error)}`);
        assert.equal(error.index, 3, show(error));
        const inFlight = closed.slice();
        assert.ok(inFlight.length >= IN_FLIGHT - 1, `${inFlight.length} fetches were held`);
        const answered = await within(
          Promise.all(inFlight),
          BOUND_MS,
          `the connections of the ${inFlight.length} fetches held closing`,
        );
        assert.deepEqual(answered, inFlight.map(() => false), "every held fetch was aborted");
        const stats = ex.stats();
        assert.equal(stats.crashes, 0, `no worker died: ${show(stats)}`);
        assert.equal(stats.respawns, 0, `no worker was replaced: ${show(stats)}`);
      } finally {
        await server.close();
      }
    });

    test("an HTTP 500 fails its own item with TaskError, the task's error as cause", async () => {
      const server = await serve((n, _req, res) => {
        if (n === 13) {
          res.statusCode = 500;
          res.end("server error");
        } else setTimeout(() => res.end(body(n)), 2);
      });
      try {
        await using ex = new ParallelExecutor(options);
        const error = await within(
          rejection(ex.map(io.fetchText, server.inputs(30)), "map() with a 500"),
          BOUND_MS,
          "map() with a 500",
        );
        assert.ok(error instanceof TaskError, `expected TaskError, got ${show(error)}`);
        assert.equal(error.index, 13, show(error));
        const cause = error.cause as Error & { status?: unknown };
        assert.ok(cause instanceof Error, `the cause is an Error: ${show(cause)}`);
        assert.equal(cause.name, "HttpError", show(cause));
        assert.equal(cause.status, 500, show(cause));
        assert.match(cause.message, /\/item\/13 answered HTTP 500/);
        // The executor goes on.
        assert.deepEqual(
          await ex.map(io.fetchText, server.inputs(5)),
          [0, 1, 2, 3, 4].map(body),
        );
      } finally {
        await server.close();
      }
    });

    test("a connection reset fails its own item with TaskError, fetch's error as cause", async () => {
      const server = await serve((n, req, res) => {
        if (n === 7) req.socket.destroy();
        else setTimeout(() => res.end(body(n)), 2);
      });
      try {
        await using ex = new ParallelExecutor(options);
        const error = await within(
          rejection(ex.map(io.fetchText, server.inputs(30)), "map() with a reset"),
          BOUND_MS,
          "map() with a reset",
        );
        assert.ok(error instanceof TaskError, `expected TaskError, got ${show(error)}`);
        assert.equal(error.index, 7, show(error));
        assert.ok(error.cause instanceof Error, `the cause is an Error: ${show(error.cause)}`);
      } finally {
        await server.close();
      }
    });

    test("300 files read and hashed give what a plain loop over them gives", async () => {
      const dir = await mkdtemp(join(tmpdir(), "fanout-io-"));
      try {
        const paths: string[] = [];
        for (let i = 0; i < 300; i++) {
          const path = join(dir, `file-${i}.txt`);
          await writeFile(path, `file ${i}\n`.repeat(1 + (i % 97)));
          paths.push(path);
        }
        const expected: string[] = [];
        for (const path of paths) {
          expected.push(createHash("sha256").update(await readFile(path)).digest("hex"));
        }
        await using ex = new ParallelExecutor(options);
        assert.deepEqual(
          await within(ex.map(io.hashFile, paths), BOUND_MS, "map() of 300 hashes"),
          expected,
        );
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    });

    test("tasks that wait, then compute, give the plain loop's results in input order", async () => {
      const inputs = Array.from({ length: 120 }, (_, i) => ({ ms: i % 4, n: 1000 + i * 37 }));
      const { mixedValue } = await import("./fixtures/io_work.ts");
      await using ex = new ParallelExecutor(options);
      assert.deepEqual(
        await within(ex.map(io.mixed, inputs), BOUND_MS, "map() of mixed tasks"),
        inputs.map(({ n }) => mixedValue(n)),
      );
    });

    test("ctx.index and ctx.seed with several in flight match the serial strategy's", async () => {
      // Delays that differ from item to item: items finish out of order.
      const inputs = Array.from({ length: 100 }, (_, i) => (i * 7) % 5);
      const seed = 20240917n;
      let expected: [number, number][];
      {
        await using serial = new ParallelExecutor({ strategy: "serial" });
        expected = await serial.map(io.seeded, inputs, { seed });
      }
      assert.deepEqual(expected.map(([index]) => index), inputs.map((_, i) => i));
      await using ex = new ParallelExecutor(options);
      assert.deepEqual(
        await within(ex.map(io.seeded, inputs, { seed }), BOUND_MS, "map() of seeded tasks"),
        expected,
      );
    });

    test("a task that exits while others are in flight rejects with WorkerCrashedError, and the executor goes on", async () => {
      await using ex = new ParallelExecutor(options);
      const inputs = Array.from({ length: 24 }, (_, i) => ({ n: i === 5 ? -1 : i, ms: 2 }));
      const error = await within(
        rejection(ex.map(io.exitAfter, inputs), "map() with an exit"),
        BOUND_MS,
        "map() with an exit",
      );
      assert.ok(
        error instanceof WorkerCrashedError,
        `expected WorkerCrashedError, got ${show(error)}`,
      );
      if (strategy === "async") {
        // On the calling thread each task is told apart: the crash is pinned on item 5.
        assert.equal(error.index, 5, show(error));
      } else {
        // A worker with several items in flight cannot tell which one exited; the index it
        // reports is one of the call's items (see the report: it names the last one started).
        assert.ok(
          error.index === undefined || (error.index >= 0 && error.index < inputs.length),
          show(error),
        );
        assert.equal(error.exitCode, 3, show(error));
      }
      const again = Array.from({ length: 24 }, (_, i) => ({ n: i, ms: 2 }));
      assert.deepEqual(
        await within(ex.map(io.exitAfter, again), BOUND_MS, "map() after the crash"),
        again.map(({ n }) => n),
      );
    });
  });
});
