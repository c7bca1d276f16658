/**
 * The serving side of the distributed strategy (`fanout worker`): takes chunks from a BullMQ
 * queue and runs each on this host's own thread or process pool, so each host uses all its
 * cores.
 *
 * ```
 * Redis ──► BullMQ Worker (slots jobs at once) ──► decode items, shared values from the cache
 *   ▲             │                                     (GET once per host per value)
 *   │             ▼
 *   │      local pool.run(chunk: base, seed, timeout, signal) ──► encode results or error
 *   └──────── job's return value ◄──────────────────────────────────────────┘
 * SUBSCRIBE cancel ──► abort that job's chunk;  SUBSCRIBE forget ──► drop a shared value
 * every 2 s: HSET roll call { host, pid, slots }, read by submitters for explain() and sizing
 * ```
 *
 * A worker loads only modules under its root, named by their path there: never code sent
 * through the queue.
 *
 * @module
 */

import process from "node:process";
import os from "node:os";
import path from "node:path";
import { realpath, stat } from "node:fs/promises";
import { pathToFileURL } from "node:url";
import type { Job, Worker } from "bullmq";
import { ThreadPool } from "../strategy/threads.ts";
import { ProcessPool } from "../strategy/processes.ts";
import type { BuiltInStrategy } from "../strategy/_builtin.ts";
import type { SharedEntry } from "../shared.ts";
import { threadFactory } from "../runtime/mod.ts";
import { detect } from "../runtime/mod.ts";
import { TaskError } from "../errors.ts";
import { MARK } from "../worker/shared_refs.js";
import { decode, encode } from "./_codec.ts";
import { checkJob, resultsText } from "./_job.ts";
import type { ChunkJob, ChunkReply, RedisConnection, WorkerInfo } from "./_redis.ts";
import {
  checkQueue,
  clientOptions,
  insideRoot,
  keys,
  loadBullMQ,
  loadRedis,
  PREFIX,
  ROLL_CALL_MS,
  whenReady,
} from "./_redis.ts";

/** Options of {@linkcode serve}. */
export interface ServeOptions {
  /** Redis, as for the strategy. @default "redis://127.0.0.1:6379" */
  connection?: string | RedisConnection;
  /** The queue to serve. @default "fanout" */
  queue?: string;
  /** Chunks run at once, each on a worker of the local pool. @default the CPU count */
  slots?: number;
  /** The local pool. @default "threads" */
  strategy?: "threads" | "processes";
  /** The folder task modules are named relative to. @default the current working directory */
  root?: string;
  /**
   * How long a chunk's lock lasts unless renewed; a worker that dies holding a chunk loses it
   * this long after, and another worker takes it.
   *
   * @default 30000
   */
  lockMs?: number;
  /**
   * Most bytes a chunk's results may take encoded (a submitter's own, smaller `maxJobBytes`
   * wins for its chunks).
   *
   * @default 33554432 (32 MiB)
   */
  maxJobBytes?: number;
  /**
   * Longest Redis may take to answer at the start: past it `serve()` rejects with
   * `RedisConnectionError`.
   *
   * @default 10000
   */
  connectTimeoutMs?: number;
  /** Aborting it while `serve()` connects makes it reject with the reason, having started nothing. */
  signal?: AbortSignal;
}

/** A worker serving a queue. */
export interface Serving {
  /** What it says of itself in the roll call. */
  readonly info: Omit<WorkerInfo, "seen">;
  /** The Redis connection, as a URL without its password. */
  readonly connection: string;
  /**
   * Stops taking chunks, finishes the ones it holds (BullMQ hands back none that it started),
   * then leaves the roll call and closes its pool. Idempotent.
   */
  close(): Promise<void>;
  /**
   * Stops at once, even during `close()`: the chunks it holds are stopped and handed back to
   * the queue for other workers (or, with Redis gone, taken by them once their locks lapse).
   * Idempotent.
   */
  terminate(): Promise<void>;
}

/** A roll-call answer this old is a worker that died without leaving: it is deleted. */
const ROLL_CALL_FORGET_MS = 60_000;

/** While closing, Redis gone this long means the held chunks cannot be handed in: stop them. */
const LOST_ON_CLOSE_MS = 2000;

/** How long a cancel for a chunk this worker has not started is remembered. */
const CANCEL_MEMORY_MS = 60_000;
/** How often cached shared values are checked against Redis (a submitter that died leaves them). */
const SHARE_SWEEP_MS = 60_000;

/** Local shared-handle ids start here, far from any a submitter's process could make. */
const LOCAL_SHARE_BASE = 2 ** 40;

/**
 * Serves a queue: runs the chunks submitters put there on this host's pool, until closed.
 *
 * @param options Where Redis is, the queue, the slots and root.
 * @returns Once connected and serving.
 */
export async function serve(options: ServeOptions = {}): Promise<Serving> {
  const { options: client, named } = clientOptions(
    options.connection ?? "redis://127.0.0.1:6379",
    "worker",
  );
  const queue = checkQueue(options.queue ?? "fanout");
  const names = keys(queue);
  const slots = options.slots ?? os.availableParallelism?.() ?? os.cpus().length;
  const kind = options.strategy ?? "threads";
  // Real paths, so that a link inside the root cannot lead a module path outside it.
  const root = await realpath(path.resolve(options.root ?? process.cwd())).catch(() => {
    throw new TypeError(
      `Expected \`root\` to be a folder that exists, got ${options.root ?? process.cwd()}`,
    );
  });
  const lockMs = options.lockMs ?? 30_000;
  const maxJobBytes = options.maxJobBytes ?? 32 * 1024 * 1024;
  const host = os.hostname();
  const info = { host, pid: process.pid, slots, runtime: detect().name, strategy: kind };
  const field = `${host}:${process.pid}:${crypto.randomUUID().slice(0, 8)}`;

  const bullmq = await loadBullMQ();
  const { Redis } = await loadRedis();
  const control = new Redis({ ...client, connectionName: "fanout:worker-control" });
  const listen = new Redis({ ...client, connectionName: "fanout:worker-listen" });
  for (const redis of [control, listen]) redis.on("error", () => {});
  try {
    const timeoutMs = options.connectTimeoutMs ?? 10_000;
    await Promise.all([
      whenReady(control, named, timeoutMs, options.signal),
      whenReady(listen, named, timeoutMs, options.signal),
    ]);
  } catch (error) {
    control.disconnect();
    listen.disconnect();
    throw error;
  }
  const pool: BuiltInStrategy = kind === "processes"
    ? new ProcessPool(slots, {})
    : new ThreadPool(slots, threadFactory(), {});
  const running = new Map<string, AbortController>();
  const cache = new Map<string, SharedEntry>();
  let nextShare = LOCAL_SHARE_BASE;
  const modules = new Map<string, Promise<string | undefined>>();

  await listen.subscribe(names.cancel, names.forget);
  /** Chunks cancelled before this worker started them (a cancel can outrun the job's start). */
  const cancelled = new Map<string, number>();
  listen.on("message", (channel: string, message: string) => {
    if (channel === names.cancel) {
      const controller = running.get(message);
      if (controller !== undefined) {
        controller.abort(new Error("The submitter cancelled this chunk"));
      } else {
        const now = Date.now();
        for (const [id, at] of cancelled) if (at < now - CANCEL_MEMORY_MS) cancelled.delete(id);
        cancelled.set(message, now);
      }
    } else if (channel === names.forget) {
      const entry = cache.get(message);
      if (entry !== undefined) {
        cache.delete(message);
        pool.forget(entry.id);
      }
    }
  });

  /** The file URL of a module path, or why there is none (outside the root, missing). */
  const moduleUrl = (module: string): Promise<string | undefined> => {
    let found = modules.get(module);
    if (found === undefined) {
      const full = path.resolve(root, module);
      found = !path.isAbsolute(module) && insideRoot(root, full)
        ? realpath(full).then(
          async (real) =>
            insideRoot(root, real) && (await stat(real)).isFile()
              ? pathToFileURL(full).href
              : undefined,
          () => undefined,
        )
        : Promise.resolve(undefined);
      modules.set(module, found);
      // A module added later is found then.
      found.then((url) => url === undefined && modules.delete(module));
    }
    return found;
  };

  const shares = async (job: ChunkJob): Promise<SharedEntry[] | undefined> => {
    if (job.shares === undefined) return undefined;
    const entries: SharedEntry[] = [];
    for (const key of job.shares) {
      let entry = cache.get(key);
      if (entry === undefined) {
        const text = await control.get(key);
        if (text === null) {
          throw new TaskError(
            job.base,
            `Task ${job.base} failed: a shared value it holds is no longer in Redis (released, ` +
              `or lost with Redis's data)`,
          );
        }
        entry = cache.get(key) ?? { id: nextShare++, value: decode(text) };
        cache.set(key, entry);
      }
      entries.push(entry);
    }
    return entries;
  };

  const reply = (body: { values: string; ms: number } | { error: unknown }): ChunkReply => {
    if ("values" in body) return { ok: true, ...body, host, pid: process.pid };
    return { ok: false, error: encode(body.error), host, pid: process.pid };
  };

  /** Set while terminating: a chunk stopped now goes back to the queue rather than failing. */
  let handingBack = false;
  const run = async (job: Job<ChunkJob>, token?: string): Promise<ChunkReply> => {
    const data = job.data;
    const id = job.id!;
    const controller = new AbortController();
    running.set(id, controller);
    if (cancelled.delete(id)) controller.abort(new Error("The submitter cancelled this chunk"));
    try {
      checkJob(data);
      controller.signal.throwIfAborted();
      const url = await moduleUrl(data.module);
      if (url === undefined) {
        throw new TaskError(
          data.base,
          `Task ${data.base} failed: its task could not be loaded: the module ${data.module} is ` +
            `not in the root ${root} of the worker on ${host} (pid ${process.pid})`,
        );
      }
      const shared = await shares(data);
      const items = decode(data.items, (ref) => {
        const entry = cache.get(ref);
        if (entry === undefined) throw new TypeError("A shared handle the chunk does not list");
        return { [MARK]: entry.id };
      });
      if (!Array.isArray(items)) {
        throw new TypeError(`Expected a chunk's items to be an array, got ${typeof items}`);
      }
      const result = await pool.run({
        task: { kind: "module", url, name: data.name },
        base: data.base,
        items,
        seed: data.seed === undefined ? undefined : BigInt(data.seed),
        timeoutMs: data.timeoutMs,
        concurrency: data.concurrency,
        signal: controller.signal,
        shared,
        timed: true,
      });
      const limit = Math.min(maxJobBytes, data.maxBytes ?? maxJobBytes);
      const values = resultsText(result.values, data.base, limit);
      return reply({ values, ms: result.ms });
    } catch (error) {
      if (handingBack) {
        // Stopped because this worker stops at once: handed back for another worker to run.
        await job.moveToWait(token).catch(() => {});
        throw new bullmq.WaitingError();
      }
      return reply({ error });
    } finally {
      running.delete(id);
    }
  };

  const worker: Worker = new bullmq.Worker(queue, run, {
    connection: { ...client, connectionName: "fanout:worker" },
    prefix: PREFIX,
    concurrency: slots,
    lockDuration: lockMs,
    stalledInterval: Math.max(500, Math.min(lockMs, 30_000)),
    autorun: false,
  });
  worker.on("error", (error: unknown) => {
    const message = error instanceof Error ? error.message : String(error);
    // A chunk whose lock could not be renewed is no longer this worker's (Redis lost it, or
    // another worker took it): stop it rather than finish work nobody will take.
    const lost = /could not renew lock for job (\S+)/.exec(message);
    if (lost !== null) {
      running.get(lost[1])?.abort(new Error(`This worker lost the lock of chunk ${lost[1]}`));
    }
    process.stderr.write(`fanout worker: ${message}\n`);
  });

  const answer = async (): Promise<void> => {
    const [seconds, micros] = await control.time();
    const seen = Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
    await control.hset(names.workers, field, JSON.stringify({ ...info, seen }));
    // Answers of workers that died without leaving (SIGKILL, a lost host) are struck off.
    const roll = await control.hgetall(names.workers);
    const gone = Object.entries(roll).filter(([, text]) => {
      try {
        return seen - (JSON.parse(text) as WorkerInfo).seen > ROLL_CALL_FORGET_MS;
      } catch {
        return false;
      }
    }).map(([name]) => name);
    if (gone.length > 0) await control.hdel(names.workers, ...gone);
  };
  await answer();
  const roll = setInterval(() => answer().catch(() => {}), ROLL_CALL_MS);
  // Shared values whose key is gone (released while this worker missed the message, or left by
  // a submitter that died, whose keys expire) are dropped here too.
  const sweep = setInterval(async () => {
    for (const [key, entry] of [...cache]) {
      const found = await control.exists(key).catch(() => 1);
      if (found === 0 && cache.get(key) === entry) {
        cache.delete(key);
        pool.forget(entry.id);
      }
    }
  }, SHARE_SWEEP_MS);
  (sweep as { unref?: () => void }).unref?.();
  (roll as { unref?: () => void }).unref?.();
  worker.run().catch(() => {});
  await worker.waitUntilReady();

  let closing: Promise<void> | undefined;
  let stopNow: (() => void) | undefined;
  const now = new Promise<void>((resolve) => (stopNow = resolve));
  return {
    info,
    connection: named,
    close: () => closing ??= shutDown(),
    terminate: () => {
      stopNow!();
      return closing ??= shutDown();
    },
  };

  /**
   * Finishes the chunks it holds while Redis is there to take their results; once Redis has
   * been gone for a while, stops them instead (their locks lapse and other workers take them).
   */
  async function shutDown(): Promise<void> {
    clearInterval(roll);
    clearInterval(sweep);
    let lostSince: number | undefined;
    let watch: ReturnType<typeof setInterval> | undefined;
    const lost = new Promise<void>((resolve) => {
      watch = setInterval(() => {
        if (control.status === "ready") lostSince = undefined;
        else if ((lostSince ??= Date.now()) < Date.now() - LOST_ON_CLOSE_MS) resolve();
      }, LOST_ON_CLOSE_MS / 4);
    });
    const graceful = worker.close().then(() => true, () => true);
    const finished = await Promise.race([graceful, lost.then(() => false), now.then(() => false)]);
    clearInterval(watch);
    if (finished) {
      await control.hdel(names.workers, field).catch(() => 0);
      await pool.close();
    } else {
      handingBack = true;
      // Asked first, through ctx.signal (a busy Deno thread cannot be stopped from outside).
      for (const controller of running.values()) {
        controller.abort(new Error("This worker stops at once"));
      }
      await pool.terminate();
      // The stopped chunks' handing back, for a short while (Redis may be gone).
      for (let waited = 0; running.size > 0 && waited < 1000; waited += 20) {
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      worker.close(true).catch(() => {});
    }
    const quit = Promise.all([control.quit().catch(() => {}), listen.quit().catch(() => {})]);
    if (finished) await Promise.race([quit, new Promise((resolve) => setTimeout(resolve, 1000))]);
    control.disconnect();
    listen.disconnect();
    worker.disconnect().catch(() => {});
  }
}
