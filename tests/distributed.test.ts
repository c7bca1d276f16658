/**
 * The distributed strategy against a real Redis and real `fanout worker` processes: two workers
 * of this runtime stand in for two hosts; a mixed run adds workers of the other two runtimes.
 * Skipped, with the reason, where `redis-server` (or bullmq) cannot be had.
 */

import { after, before, describe } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import process from "node:process";
import { Buffer } from "node:buffer";
import { call, ParallelExecutor, runParallel, TaskError, tasks } from "../mod.ts";
import type { TelemetryEvent } from "../mod.ts";
import { distributed, PayloadTooLargeError, RedisConnectionError } from "../src/distributed/mod.ts";
import type { DistributedStrategy } from "../src/distributed/mod.ts";
import { decode, encode } from "../src/distributed/_codec.ts";
import { ExecutorClosedError, NotCloneableError, TaskTimeoutError } from "../src/errors.ts";
import { cluster, queueName, redisMissing, startRedis, startWorker } from "./_redis.ts";
import { main } from "../src/cli.ts";
import type { Io } from "../src/cli/_io.ts";
import type { RedisServer, WorkerProcess } from "./_redis.ts";
import { collect, programReport, rejection, runProgram, runtime, test } from "./_helpers.ts";

const ROOT = fileURLToPath(new URL("./fixtures/", import.meta.url));
/** The contract suite's root: the repository, the working folder `CE_PARALLEL` resolves from. */
const REPO = fileURLToPath(new URL("../", import.meta.url));
const work = tasks<typeof import("./fixtures/distributed_work.ts")>(
  new URL("./fixtures/distributed_work.ts", import.meta.url),
);
const missing = redisMissing();
const OTHERS = (["deno", "bun", "node"] as const).filter((name) => name !== runtime);

/** Polls until `ready()` says so: for what another process does (a file it writes). */
async function until(ready: () => boolean, what: string, maxMs = 20_000): Promise<void> {
  const deadline = Date.now() + maxMs;
  while (!ready()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** Polls an asynchronous condition, as {@linkcode until}. */
async function untilAsync(ready: () => Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (!(await ready())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** The keys matching `pattern` in the Redis at `url`. */
async function redisKeys(url: string, pattern: string): Promise<string[]> {
  const { Redis } = await import("ioredis");
  const client = new Redis(url);
  try {
    return await client.keys(pattern);
  } finally {
    client.disconnect();
  }
}

describe("distributed: options", () => {
  test("bad options are refused at once, naming the option and what was expected", () => {
    const bad: [unknown, RegExp, ErrorConstructor][] = [
      [
        "redis://127.0.0.1:1",
        /Expected `distributed options` to be an object, got "redis/,
        TypeError,
      ],
      [{ queu: "q" }, /Expected distributed options among `connection`, .*got `queu`/, TypeError],
      [{ queue: null }, /Expected `queue` to be left out .* got `null`/, TypeError],
      [
        { concurrency: 0 },
        /Expected `concurrency` to be an integer from 1 to 65536, got `0`/,
        RangeError,
      ],
      [
        { concurrency: "8" },
        /Expected `concurrency` to be an integer .*got "8" \(string\)/,
        TypeError,
      ],
      [{ maxJobBytes: 100 }, /Expected `maxJobBytes` to be an integer from 1024 to /, RangeError],
      [
        { connectTimeoutMs: 1.5 },
        /Expected `connectTimeoutMs` to be an integer from 1 to /,
        RangeError,
      ],
    ];
    for (const [options, message, kind] of bad) {
      assert.throws(
        () => distributed(options as Parameters<typeof distributed>[0]),
        (error: unknown) => error instanceof kind && message.test((error as Error).message),
        JSON.stringify(options),
      );
    }
  });
});

describe("distributed: values through Redis", () => {
  test("the codec gives back what structured clone would", () => {
    const value = {
      n: [1, -0, NaN, Infinity, -Infinity, 2 ** 60],
      u: undefined,
      big: 12345678901234567890n,
      when: new Date(1_700_000_000_000),
      re: /a+b/gi,
      map: new Map<unknown, unknown>([["k", new Set([1, 2])], [3, { deep: [null] }]]),
      bytes: new Uint8Array([1, 2, 255]),
      floats: new Float64Array([0.5, -1]),
      buffer: new Uint16Array([7, 8]).buffer,
      boxed: Object(5),
      "\u0000": "a key that looks like a tag",
      nested: { "\u0000": "u", v: 1 },
    };
    const back = decode(encode(value)) as typeof value;
    assert.deepEqual(back, structuredClone(value));
    assert.ok(Object.is(back.n[1], -0));
    assert.equal(back.nested["\u0000"], "u", "task data is never read as a tag");
  });

  test("the codec refuses functions, symbols and cycles, naming where", () => {
    const cycle: Record<string, unknown> = {};
    cycle.self = cycle;
    assert.throws(() => encode([1, { f: () => 1 }]), /a function \(f\) at `\[1\]\.f`/);
    assert.throws(() => encode({ s: Symbol("x") }), /a symbol \(Symbol\(x\)\) at `\.s`/);
    assert.throws(() => encode(cycle), /a cycle/);
  });

  test("a Buffer travels as a Uint8Array, as structured clone sends it", () => {
    const back = decode(encode({ data: Buffer.from("abc") })) as { data: Uint8Array };
    assert.equal(Object.getPrototypeOf(back.data), Uint8Array.prototype);
    assert.deepEqual([...back.data], [97, 98, 99]);
  });

  test("a `__proto__` key of the task's data stays a key, never the prototype", () => {
    for (
      const text of [
        '{"__proto__":{"isAdmin":true},"a":1}',
        '{"__proto__":{"isAdmin":true},"\\u0000":1}',
      ]
    ) {
      const value = JSON.parse(text);
      const back = decode(encode(value)) as Record<string, unknown>;
      assert.deepEqual(Object.keys(back), Object.keys(value), text);
      assert.equal(Object.getPrototypeOf(back), Object.prototype, text);
      assert.equal((back as { isAdmin?: unknown }).isAdmin, undefined, text);
      assert.deepEqual(Object.getOwnPropertyDescriptor(back, "__proto__")?.value, {
        isAdmin: true,
      });
    }
  });

  test("an error's own property that cannot travel goes as its string form", () => {
    const info: Record<string, unknown> = { n: 1 };
    info.self = info;
    const error = Object.assign(new Error("boom"), { info, code: "E2" });
    const back = decode(encode(error)) as Error & {
      info: { n: number; self: unknown };
      code: string;
    };
    assert.equal(back.message, "boom");
    assert.equal(back.code, "E2");
    assert.equal(back.info.n, 1);
    assert.equal(back.info.self, "[object Object]");
  });

  test("an error keeps its class name, message, stack, cause and own properties", () => {
    const error = Object.assign(new TypeError("bad", { cause: new Error("root") }), { code: "E1" });
    const back = decode(encode(error)) as TypeError & { code: string };
    assert.ok(back instanceof TypeError);
    assert.equal(back.message, "bad");
    assert.equal(back.stack, error.stack);
    assert.equal(back.code, "E1");
    assert.equal((back.cause as Error).message, "root");
  });
});

describe(`distributed: the contract over two workers${missing ? ` (skipped: ${missing})` : ""}`, () => {
  if (missing !== undefined) {
    test(`map, imap, submit, share, errors, seeds, signal (skipped: ${missing})`, () => {});
    return;
  }
  let redis: RedisServer;
  let workers: WorkerProcess[] = [];
  const queue = queueName("contract");
  let strategy: DistributedStrategy;
  let ex: ParallelExecutor;
  const events: TelemetryEvent[] = [];

  before(async () => {
    redis = await startRedis();
    workers = await Promise.all(
      [0, 1].map(() => startWorker({ redis: redis.url, queue, root: REPO, slots: 1 })),
    );
    strategy = distributed({ connection: redis.url, queue, root: REPO });
    ex = new ParallelExecutor({
      strategy,
      onEvent: (event) => events.push(event),
      taskEvents: true,
    });
    await ex.warmup();
  });
  after(async () => {
    await ex?.close();
    await Promise.all(workers.map((worker) => worker.stop()));
    await redis?.stop();
  });

  test("map() keeps input order when late items finish first", async () => {
    const n = 12;
    const items = Array.from({ length: n }, (_, i) => ({ i, n, step: 4 }));
    assert.deepEqual(await ex.map(work.late, items, { chunkSize: 1 }), items.map((x) => x.i));
  });

  test("map() of 10,000 items gives every result once, in order, from both workers", async () => {
    const items = Array.from({ length: 10_000 }, (_, i) => i);
    assert.deepEqual(await ex.map(work.inc, items), items.map((n) => n + 1));
    const pids = new Set(await ex.map(work.pidOf, Array.from({ length: 40 }), { chunkSize: 1 }));
    assert.deepEqual(
      [...pids].sort(),
      workers.map((w) => w.pid).sort(),
      "both workers served the queue",
    );
  });

  test("seeds and indices are the same as on threads", async () => {
    await using threads = new ParallelExecutor({ strategy: "threads", maxWorkers: 2 });
    const items = Array.from({ length: 50 }, () => 0);
    const there = await ex.map(work.seedOf, items, { seed: 42, chunkSize: 7 });
    assert.deepEqual(there, await threads.map(work.seedOf, items, { seed: 42 }));
    assert.deepEqual(
      await ex.submit(work.seedOf, 0, { seed: 9 }),
      await threads.submit(work.seedOf, 0, { seed: 9 }),
    );
  });

  test("a task's error keeps its identity and index", async () => {
    const error = await rejection(ex.map(work.failOnThree, [1, 2, 3, 4], { chunkSize: 2 }));
    assert.ok(error instanceof TaskError, String(error));
    assert.equal(error.index, 2);
    assert.match(error.message, /^Task 2 failed: QuotaError: over quota/);
    const cause = error.cause as Error & { code: string; limit: number };
    assert.equal(cause.name, "QuotaError");
    assert.equal(cause.message, "over quota");
    assert.equal(cause.code, "E_QUOTA");
    assert.equal(cause.limit, 3);
    assert.match(String(cause.stack), /failOnThree/);
    assert.ok(cause.cause instanceof RangeError);
    assert.equal(cause.cause.message, "three is too many");
  });

  test("values JSON has no word for come back as structured clone gives them", async () => {
    const value = {
      big: 2n ** 70n,
      when: new Date(0),
      map: new Map([[1, new Set(["a"])]]),
      bytes: new Int32Array([-1, 2]),
      odd: [undefined, NaN, -0],
    };
    assert.deepEqual(await ex.submit(work.identity, value), structuredClone(value));
  });

  test("an input or result that cannot travel fails its own task with NotCloneableError", async () => {
    const input = await rejection(ex.map(work.identity, [1, { f: () => 2 }]));
    assert.ok(input instanceof NotCloneableError, String(input));
    assert.equal(input.index, 1);
    assert.equal(input.path, "input.f");
    const result = await rejection(ex.map(work.returnsFunction, [0, 1], { chunkSize: 2 }));
    assert.ok(result instanceof NotCloneableError, String(result));
    assert.equal(result.index, 0);
    assert.equal(result.path, "result.callback");
  });

  test("imap() yields in order, and as completed with ordered: false", async () => {
    const n = 6;
    const items = Array.from({ length: n }, (_, i) => ({ i, n, step: 15 }));
    assert.deepEqual(await collect(ex.imap(work.late, items, { chunkSize: 1 })), [
      0,
      1,
      2,
      3,
      4,
      5,
    ]);
    const unordered = await collect(ex.imap(work.late, items, { chunkSize: 1, ordered: false }));
    assert.deepEqual([...unordered].sort(), [0, 1, 2, 3, 4, 5]);
  });

  test("share() sends a value once; tasks read it; release() removes it", async () => {
    const data = Array.from({ length: 1000 }, (_, i) => i);
    const handle = ex.share(data);
    const sums = await ex.map(
      work.sumShared,
      [0, 250, 500, 750].map((from) => ({ data: handle, from, to: from + 250 })),
      { chunkSize: 1 },
    );
    assert.deepEqual(sums, [31125, 93625, 156125, 218625]);
    const shareKeys = (): Promise<string[]> =>
      redisKeys(redis.url, `fanout:${queue}:fanout:share:*`);
    assert.equal((await shareKeys()).length, 1, "the value went to Redis once");
    handle.release();
    await untilAsync(
      async () => (await shareKeys()).length === 0,
      "the released value to leave Redis",
    );
  });

  test("runParallel's call() runs on the workers, by key", async () => {
    const results = await runParallel(
      [["a", call(work.inc, 1)], ["b", call(work.inc, 2)]],
      { executor: ex },
    );
    assert.deepEqual(results, [["a", 2], ["b", 3]]);
  });

  test("timeoutMs fails the task with TaskTimeoutError", async () => {
    const dir = mkdtempSync(join(tmpdir(), "fanout-dist-"));
    try {
      const error = await rejection(
        ex.submit(work.markThenWait, { dir, i: 0, ms: 60_000 }, { timeoutMs: 300 }),
      );
      assert.ok(error instanceof TaskTimeoutError, String(error));
      assert.equal(error.timeoutMs, 300);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("aborting the signal rejects with its reason and stops the running chunks", async () => {
    const dir = mkdtempSync(join(tmpdir(), "fanout-dist-"));
    try {
      const controller = new AbortController();
      const items = Array.from({ length: 6 }, (_, i) => ({ dir, i, ms: 60_000 }));
      const running = ex.map(work.markThenWait, items, { chunkSize: 1, signal: controller.signal });
      await until(() => readdirSync(dir).length >= 2, "two chunks to start");
      const reason = new Error("stop now");
      controller.abort(reason);
      assert.equal(await rejection(running), reason);
      // The workers are free again: a call after it runs.
      assert.deepEqual(await ex.map(work.inc, [1, 2], { chunkSize: 1 }), [2, 3]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("explain() names the queue and the workers serving it", async () => {
    const plan = await ex.explain(work.inc, [1, 2, 3]);
    assert.equal(plan.strategy, "distributed");
    assert.match(
      plan.reason,
      new RegExp(`queue "${queue}" on redis://127\\.0\\.0\\.1:${redis.port}`),
    );
    assert.match(plan.reason, /2 workers serving \(2 slots on 1 host/);
    assert.equal(plan.workers, 2, "the slots serving");
    const roll = await strategy.workers();
    assert.deepEqual(roll.map((w) => w.pid).sort(), workers.map((w) => w.pid).sort());
    assert.deepEqual(roll.map((w) => w.runtime), [runtime, runtime]);
  });

  test("telemetry's task events name the host that ran each task", async () => {
    events.length = 0;
    await ex.map(work.inc, [1, 2, 3]);
    const tasksSeen = events.filter((event) => event.type === "task");
    assert.equal(tasksSeen.length, 3);
    for (const event of tasksSeen) assert.equal(typeof event.host, "string");
    const summary = events.find((event) => event.type === "parallel_execution");
    assert.equal(summary?.type === "parallel_execution" && summary.strategy, "distributed");
  });

  test("fanout map --strategy distributed runs JSON lines on the workers, in order", async () => {
    const dir = mkdtempSync(join(tmpdir(), "fanout-dist-map-"));
    try {
      const input = join(dir, "in.jsonl");
      writeFileSync(input, "1\n2\n3\n");
      let out = "";
      let err = "";
      const streams: Io = {
        stdout: { write: (text: string | Uint8Array) => (out += String(text)) },
        stderr: { write: (text: string | Uint8Array) => (err += String(text)) },
        readStdin: () => Promise.resolve(""),
      };
      const args = ["--redis", redis.url, "--queue", queue, "--root", REPO];
      const module = "tests/fixtures/distributed_work.ts#inc";
      assert.equal(
        await main(["map", "--strategy", "distributed", ...args, "--in", input, module], streams),
        0,
        err,
      );
      assert.equal(out, "2\n3\n4\n");
      out = "";
      const explained = ["map", "--strategy", "distributed", ...args, "--explain", "--in", input];
      assert.equal(await main([...explained, module], streams), 0, err);
      assert.match(out, new RegExp(`^distributed: queue "${queue}" on .*, 2 workers serving`));
      err = "";
      assert.equal(await main(["map", "--redis", redis.url, "--in", input, module], streams), 255);
      assert.match(err, /--redis, --queue and --root only with --strategy distributed/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("CE_PARALLEL=distributed,redis=URL,queue=NAME runs an unchanged program on the workers", async () => {
    const before = process.env.CE_PARALLEL;
    process.env.CE_PARALLEL = `distributed,redis=${redis.url},queue=${queue}`;
    try {
      await using plain = new ParallelExecutor();
      assert.equal(plain.strategy, "distributed");
      assert.equal(process.cwd(), REPO.replace(/\/$/, ""), "the suite runs from the repository");
      const here = work;
      const pids = new Set(
        await plain.map(here.pidOf, Array.from({ length: 20 }), { chunkSize: 1 }),
      );
      assert.ok([...pids].every((pid) => workers.some((w) => w.pid === pid)), "ran on the workers");
      assert.match((await plain.explain(here.inc, [1])).reason, new RegExp(`queue "${queue}"`));
    } finally {
      if (before === undefined) delete process.env.CE_PARALLEL;
      else process.env.CE_PARALLEL = before;
    }
  });

  test("inline functions and modules outside the root are refused with what to do", async () => {
    const inline = await rejection(ex.map((n: number) => n, [1]));
    assert.ok(inline instanceof TypeError);
    assert.match(inline.message, /workers load only modules they have/);
    const outside = tasks<{ inc(n: number): number }>("file:///elsewhere/work.ts");
    const error = await rejection(ex.map(outside.inc, [1]));
    assert.ok(error instanceof TypeError);
    assert.match(
      error.message,
      /inside the distributed root .*, got file:\/\/\/elsewhere\/work\.ts/,
    );
  });

  test("a chunk larger than maxJobBytes fails with PayloadTooLargeError", async () => {
    await using small = new ParallelExecutor({
      strategy: distributed({ connection: redis.url, queue, root: REPO, maxJobBytes: 1024 }),
    });
    const error = await rejection(small.map(work.identity, ["x".repeat(2000)]));
    assert.ok(error instanceof PayloadTooLargeError, String(error));
    assert.match(
      error.message,
      /Expected the items of tasks 0–0 to be at most 1024 bytes .*maxJobBytes/,
    );
    // Results are held to the submitter's limit on the worker.
    const back = await rejection(small.map(work.repeat, [3000]));
    assert.ok(back instanceof PayloadTooLargeError, String(back));
    assert.match(back.message, /Expected the results of tasks 0–0 to be at most 1024 bytes/);
  });

  test("terminate() rejects running chunks with ExecutorClosedError and leaves the queue usable", async () => {
    const dir = mkdtempSync(join(tmpdir(), "fanout-dist-"));
    try {
      const other = new ParallelExecutor({
        strategy: distributed({ connection: redis.url, queue, root: REPO }),
      });
      const running = other.map(work.markThenWait, [{ dir, i: 0, ms: 60_000 }]);
      await until(() => readdirSync(dir).length >= 1, "the chunk to start");
      const failed = rejection(running);
      await other.terminate();
      assert.ok((await failed) instanceof ExecutorClosedError);
      assert.deepEqual(await ex.map(work.inc, [5, 6], { chunkSize: 1 }), [6, 7]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe(`distributed: faults${missing ? ` (skipped: ${missing})` : ""}`, () => {
  if (missing !== undefined) {
    test(`a worker killed, Redis stopped, a module missing (skipped: ${missing})`, () => {});
    return;
  }

  test("a worker SIGKILLed mid-call: its chunk runs on another, every result once", async () => {
    await using c = await cluster("kill", { root: ROOT, workers: 2, lockMs: 1000 });
    const { redis, queue, dir, workers } = c;
    const events: TelemetryEvent[] = [];
    await using ex = new ParallelExecutor({
      strategy: distributed({ connection: redis.url, queue, root: ROOT }),
      onEvent: (event) => events.push(event),
    });
    const items = Array.from({ length: 8 }, (_, i) => ({ dir, i, ms: 150 }));
    const running = ex.map(work.markThenWait, items, { chunkSize: 1 });
    const victim = workers[0];
    await until(
      () => readdirSync(dir).some((name) => name.startsWith(`started-${victim.pid}-`)),
      "the victim to start a chunk",
    );
    victim.kill("SIGKILL");
    const results = await running;
    assert.deepEqual(results.map((r) => r.i), items.map((x) => x.i));
    const summary = events.find((event) => event.type === "parallel_execution");
    assert.ok(summary?.type === "parallel_execution");
    assert.ok(summary.retries >= 1, `retries: ${summary.retries}`);
    assert.ok(results.some((r) => r.pid === workers[1].pid));
  });

  test("Redis stopped mid-call: the call rejects with RedisConnectionError; close() returns", async () => {
    await using c = await cluster("lost", { root: ROOT, workers: 1, lockMs: 1000 });
    const { redis, queue, dir } = c;
    const ex = new ParallelExecutor({
      strategy: distributed({ connection: redis.url, queue, root: ROOT, connectTimeoutMs: 1000 }),
    });
    const running = ex.map(work.markThenWait, [{ dir, i: 0, ms: 60_000 }]);
    await until(() => readdirSync(dir).length >= 1, "the chunk to start");
    await redis.stop();
    const error = await rejection(running);
    assert.ok(error instanceof RedisConnectionError, String(error));
    assert.equal(error.connection, redis.url);
    assert.match(error.message, new RegExp(`Redis at redis://127\\.0\\.0\\.1:${redis.port}`));
    await ex.close();
  });

  test("Redis restarted without its data mid-call: the lost chunk rejects, naming it", async () => {
    await using c = await cluster("restart", { root: ROOT, workers: 1, lockMs: 1000 });
    const { redis: first, queue, dir } = c;
    let second: RedisServer | undefined;
    try {
      await using ex = new ParallelExecutor({
        strategy: distributed({ connection: first.url, queue, root: ROOT }),
      });
      const running = ex.map(work.markThenWait, [{ dir, i: 0, ms: 60_000 }]);
      const failed = rejection(running);
      await until(() => readdirSync(dir).length >= 1, "the chunk to start");
      await first.stop();
      second = await startRedis(first.port);
      const error = await failed;
      assert.ok(error instanceof RedisConnectionError, String(error));
      assert.match(
        error.message,
        /The job of tasks 0–0 is gone from Redis at redis:\/\/127\.0\.0\.1:\d+/,
      );
    } finally {
      await Promise.all(c.workers.map((worker) => worker.stop()));
      await second?.stop();
    }
  });

  test("Redis unreachable from the start: the call rejects within connectTimeoutMs", async () => {
    const redis = await startRedis();
    await redis.stop(); // A port where nothing listens now.
    await using ex = new ParallelExecutor({
      strategy: distributed({ connection: redis.url, root: ROOT, connectTimeoutMs: 500 }),
    });
    const error = await rejection(ex.map(work.inc, [1]));
    assert.ok(error instanceof RedisConnectionError, String(error));
    assert.match(
      error.message,
      /Could not connect to Redis at redis:\/\/127\.0\.0\.1:\d+ within 500 ms/,
    );
  });

  test("a worker without the module fails the chunk, naming the module and the host", async () => {
    await using c = await cluster("module", { root: ROOT, workers: 1 });
    // The submitter's root is the cluster's folder, which the worker's root does not hold.
    const mine = c.dir;
    writeFileSync(join(mine, "only_here.ts"), "export const twice = (n: number) => 2 * n;\n");
    await using ex = new ParallelExecutor({
      strategy: distributed({ connection: c.redis.url, queue: c.queue, root: mine }),
    });
    const local = tasks<{ twice(n: number): number }>(
      new URL(`file://${join(mine, "only_here.ts")}`),
    );
    const error = await rejection(ex.map(local.twice, [1, 2]));
    assert.ok(error instanceof TaskError, String(error));
    assert.match(
      error.message,
      /the module only_here\.ts is not in the root .* of the worker on \S+ \(pid \d+\)/,
    );
  });

  test("a worker with --strategy processes runs chunks in its child processes", async () => {
    await using c = await cluster("procs", {
      root: ROOT,
      workers: 1,
      slots: 2,
      strategy: "processes",
    });
    const [worker] = c.workers;
    const strategy = distributed({ connection: c.redis.url, queue: c.queue, root: ROOT });
    await using ex = new ParallelExecutor({ strategy });
    const pids = new Set(await ex.map(work.pidOf, Array.from({ length: 20 }), { chunkSize: 1 }));
    assert.ok(!pids.has(worker.pid), "not in the worker's own process");
    const handle = ex.share([1, 2, 3, 4]);
    assert.deepEqual(
      await ex.map(work.sumShared, [{ data: handle, from: 0, to: 4 }, {
        data: handle,
        from: 2,
        to: 4,
      }]),
      [10, 7],
    );
    handle.release();
    assert.deepEqual((await strategy.workers()).map((w) => w.strategy), ["processes"]);
  });

  test("a second SIGTERM stops a worker at once, even while it finishes a chunk", async () => {
    await using c = await cluster("term2", { root: ROOT, workers: 1 });
    const { redis, queue, dir } = c;
    const [worker] = c.workers;
    const ex = new ParallelExecutor({
      strategy: distributed({ connection: redis.url, queue, root: ROOT }),
    });
    const failed = rejection(ex.map(work.markThenWait, [{ dir, i: 0, ms: 60_000 }]));
    await until(() => readdirSync(dir).length >= 1, "the chunk to start");
    worker.kill("SIGTERM");
    await until(() => /stopping: finishing/.test(worker.log()), "the graceful stop to begin");
    worker.kill("SIGTERM");
    await worker.exited;
    assert.match(worker.log(), /stopping at once\n[^]*fanout worker: stopped\n$/);
    // Its chunk went back to the queue: another worker runs it.
    await c.addWorker();
    try {
      await until(() => readdirSync(dir).length >= 2, "the chunk to start again");
    } finally {
      await ex.terminate();
    }
    assert.ok((await failed) instanceof ExecutorClosedError, "terminated while it ran again");
  });

  test("a job removed from Redis by hand fails its chunk instead of leaving the call waiting", async () => {
    await using c = await cluster("removed", { root: ROOT });
    const onWarning = (): void => {};
    process.on("warning", onWarning); // No worker serves: the warning is expected.
    const { Queue } = await import("bullmq");
    const admin = new Queue(c.queue, {
      connection: { host: "127.0.0.1", port: c.redis.port },
      prefix: "fanout",
    });
    try {
      await using ex = new ParallelExecutor({
        strategy: distributed({ connection: c.redis.url, queue: c.queue, root: ROOT }),
      });
      const failed = rejection(ex.map(work.inc, [1]));
      await untilAsync(async () => (await admin.getWaitingCount()) === 1, "the job to wait");
      await admin.drain();
      const error = await failed;
      assert.ok(error instanceof RedisConnectionError, String(error));
      assert.match(error.message, /The job of tasks 0–0 is gone from Redis .*removed by hand/);
    } finally {
      process.off("warning", onWarning);
      await admin.close();
    }
  });

  test("a job that is not a fanout chunk fails alone, and the worker keeps serving", async () => {
    await using c = await cluster("malformed", { root: ROOT, workers: 1 });
    const { Queue, QueueEvents } = await import("bullmq");
    const connection = { host: "127.0.0.1", port: c.redis.port };
    const admin = new Queue(c.queue, { connection, prefix: "fanout" });
    const events = new QueueEvents(c.queue, { connection, prefix: "fanout" });
    try {
      await events.waitUntilReady();
      const bad = [
        {
          v: 1,
          module: "distributed_work.ts",
          name: "inc",
          base: 0,
          items: '{"length":100000000}',
        },
        { v: 1, module: "../../../../etc/passwd", name: "x", base: 0, items: "[1]" },
        { v: 1, module: "distributed_work.ts", name: "inc", base: -1, items: "[1]" },
        { v: 2, module: "distributed_work.ts", name: "inc", base: 0, items: "[1]" },
        { v: 1, module: "distributed_work.ts", name: "inc", base: 0, items: "[1]", timeoutMs: -5 },
      ];
      for (const data of bad) {
        const job = await admin.add("x", data);
        const reply = await job.waitUntilFinished(events) as { ok: boolean; error: string };
        assert.equal(reply.ok, false, JSON.stringify(data));
        const error = decode(reply.error) as Error;
        assert.ok(error instanceof Error, JSON.stringify(data));
      }
      await using ex = new ParallelExecutor({
        strategy: distributed({ connection: c.redis.url, queue: c.queue, root: ROOT }),
      });
      assert.deepEqual(await ex.map(work.inc, [1, 2]), [2, 3]);
    } finally {
      await events.close();
      await admin.close();
    }
  });

  test("a call made before any worker serves warns once, then runs when a worker comes", async () => {
    await using c = await cluster("late", { root: ROOT });
    const warnings: string[] = [];
    const onWarning = (warning: Error & { code?: string }): void => {
      if (warning.code === "FANOUT_NO_WORKERS") warnings.push(warning.message);
    };
    process.on("warning", onWarning);
    try {
      await using ex = new ParallelExecutor({
        strategy: distributed({ connection: c.redis.url, queue: c.queue, root: ROOT }),
      });
      const running = ex.map(work.inc, [1, 2, 3]);
      await until(() => warnings.length > 0, "the warning");
      assert.match(warnings[0], new RegExp(`no fanout worker serves queue "${c.queue}"`));
      await c.addWorker();
      assert.deepEqual(await running, [2, 3, 4]);
      assert.equal(warnings.length, 1);
    } finally {
      process.off("warning", onWarning);
    }
  });

  test("a worker stopped with SIGTERM finishes the chunk it holds, then exits 0", async () => {
    await using c = await cluster("term", { root: ROOT, workers: 1 });
    const [worker] = c.workers;
    await using ex = new ParallelExecutor({
      strategy: distributed({ connection: c.redis.url, queue: c.queue, root: ROOT }),
    });
    const running = ex.map(work.markThenWait, [{ dir: c.dir, i: 0, ms: 300 }]);
    await until(() => readdirSync(c.dir).length >= 1, "the chunk to start");
    worker.kill("SIGTERM");
    assert.deepEqual((await running).map((r) => r.i), [0]);
    const exit = await worker.exited;
    assert.match(
      worker.log(),
      /stopping: finishing the chunks it holds \(signal again to stop at once\)\nfanout worker: stopped\n$/,
    );
    // Deno's node:child_process reports the signal it sent, not the exit status, for a child
    // that handled it and exited (checked against a Node child doing the same).
    if (runtime !== "deno") assert.deepEqual(exit, { code: 0, signal: null });
  });
});

describe("fanout worker: its command line", () => {
  const CLI = fileURLToPath(new URL("../src/cli.ts", import.meta.url));
  const io = (): { io: Io; err: () => string } => {
    let err = "";
    return {
      io: {
        stdout: { write: () => true },
        stderr: { write: (text: string | Uint8Array) => (err += String(text)) },
        readStdin: () => Promise.resolve(""),
      },
      err: () => err,
    };
  };

  test("a bad flag is a usage error (255) naming the flag and what was expected", async () => {
    const cases: [string[], RegExp][] = [
      [["--queue", "a b"], /--queue to be a name of 1 to 100 letters/],
      [["--redis", "http://x"], /--redis to be a redis:\/\/ or rediss:\/\/ URL, got http:/],
      [["--strategy", "serial"], /--strategy to be threads or processes, got "serial"/],
      [["-j", "0"], /--jobs to be a whole number from 1, got "0"/],
      [["--lock-ms", "5"], /--lock-ms to be a whole number from 100/],
      [["--connect-timeout", "0"], /--connect-timeout to be a number of seconds above 0/],
      [
        ["--root", "/no/such/folder", "--redis", "redis://127.0.0.1:1"],
        /--root to be a folder that exists/,
      ],
    ];
    for (const [args, message] of cases) {
      const { io: streams, err } = io();
      assert.equal(await main(["worker", ...args], streams), 255, args.join(" "));
      assert.match(err(), message, args.join(" "));
    }
  });

  test(
    `Redis unreachable: exits 1 within --connect-timeout, naming the connection${
      missing ? ` (skipped: ${missing})` : ""
    }`,
    async () => {
      if (missing !== undefined) return;
      const gone = await startRedis();
      await gone.stop(); // A port where nothing listens now.
      const result = await runProgram(CLI, [
        "worker",
        "--redis",
        `redis://user:secret@127.0.0.1:${gone.port}`,
        "--connect-timeout",
        "0.5",
      ]);
      assert.equal(result.code, 1, programReport(result));
      assert.match(
        result.stderr,
        new RegExp(
          `RedisConnectionError: Could not connect to Redis at redis://user:\\*\\*\\*@127\\.0\\.0\\.1:${gone.port} within 500 ms`,
        ),
      );
      assert.doesNotMatch(result.stderr, /secret/);
    },
  );
});

describe(
  `distributed: a ${runtime} submitter with ${OTHERS.join(" and ")} workers${
    missing ? ` (skipped: ${missing})` : ""
  }`,
  () => {
    test(`map() over workers of ${OTHERS.join(" and ")}${missing ? ` (skipped: ${missing})` : ""}`, async () => {
      if (missing !== undefined) return;
      const redis = await startRedis();
      const queue = queueName("mixed");
      const workers = await Promise.all(
        OTHERS.map((other) => startWorker({ redis: redis.url, queue, root: ROOT, runtime: other })),
      );
      try {
        await using ex = new ParallelExecutor({
          strategy: distributed({ connection: redis.url, queue, root: ROOT }),
        });
        const items = Array.from({ length: 30 }, () => 0);
        await using threads = new ParallelExecutor({ strategy: "threads", maxWorkers: 2 });
        assert.deepEqual(
          await ex.map(work.seedOf, items, { seed: 5, chunkSize: 1 }),
          await threads.map(work.seedOf, items, { seed: 5 }),
        );
        const value = {
          big: 1n << 65n,
          bytes: new Uint8Array([9]),
          when: new Date(5),
          m: new Map([[1, 2]]),
        };
        assert.deepEqual(await ex.map(work.identity, [value, value], { chunkSize: 1 }), [
          value,
          value,
        ]);
        const pids = new Set(
          await ex.map(work.pidOf, Array.from({ length: 30 }), { chunkSize: 1 }),
        );
        assert.equal(pids.size, 2, "both workers served");
      } finally {
        await Promise.all(workers.map((worker) => worker.stop()));
        await redis.stop();
      }
    });
  },
);
