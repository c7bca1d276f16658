/**
 * The distributed strategy: a call's chunks as BullMQ jobs on Redis, run by `fanout worker`
 * processes on any number of machines.
 *
 * ```
 * pipeline ──► run(chunk) ──► encode items ──► Queue.add(job) ──► Redis ──► fanout worker(s)
 *                 ▲  shared values: SET once per handle, read once per host         │
 *                 │                                                                  ▼
 * result / error ◄── decode reply ◄── QueueEvents "completed" (one stream for all) ◄─┘
 * signal / timeout ──► remove the job if it waits, PUBLISH cancel if it runs
 * connection lost ──► after connectTimeoutMs every chunk in flight rejects (RedisConnectionError)
 * ```
 *
 * Delivery is at least once per chunk: a worker killed mid-chunk loses its lock and BullMQ's
 * stalled-job check gives the chunk to another worker. A chunk's result is taken once, the
 * first time it arrives; later ones are dropped.
 *
 * @module
 */

import process from "node:process";
import path from "node:path";
import type { ChunkRequest, ChunkResult, Strategy } from "../strategy/types.ts";
import { DESCRIBE, FORGET_SHARED, WARMUP } from "../strategy/_builtin.ts";
import { ExecutorClosedError } from "../errors.ts";
import { MARK } from "../worker/shared_refs.js";
import { onAbort } from "../_abort.ts";
import { cloneFailure, decode, encode } from "./_codec.ts";
import { PayloadTooLargeError, RedisConnectionError } from "./errors.ts";
import type { ChunkJob, ChunkReply, RedisConnection, WorkerInfo } from "./_redis.ts";
import {
  checkQueue,
  clientOptions,
  keys,
  loadBullMQ,
  PREFIX,
  ROLL_CALL_MS,
  ROLL_CALL_STALE_MS,
} from "./_redis.ts";
import type { Queue, QueueEvents } from "bullmq";
import type { Redis } from "ioredis";

/** Options of {@linkcode distributed}. */
export interface DistributedOptions {
  /**
   * Redis: a `redis://[user:password@]host:port[/db]` URL (`rediss://` for TLS), or its parts.
   *
   * @default "redis://127.0.0.1:6379"
   */
  connection?: string | RedisConnection;
  /**
   * The queue's name; `fanout worker --queue` must name the same.
   *
   * @default "fanout"
   */
  queue?: string;
  /**
   * The folder task modules are named relative to: a task's module must be inside it, and a
   * worker loads the same relative path inside its own `--root`. A path or a `file:` URL.
   *
   * @default the current working directory
   */
  root?: string | URL;
  /**
   * Chunks in flight at once.
   *
   * @default twice the slots of the workers serving the queue when the call begins (8 before
   *   any answered)
   */
  concurrency?: number;
  /**
   * Longest Redis may be unreachable, at the start or mid-call, before the chunks in flight
   * reject with `RedisConnectionError`.
   *
   * @default 10000
   */
  connectTimeoutMs?: number;
  /**
   * Most bytes a chunk's items, or its results, may take encoded. Past it the chunk fails with
   * `PayloadTooLargeError`.
   *
   * @default 33554432 (32 MiB)
   */
  maxJobBytes?: number;
}

/** The distributed strategy, with what it knows of the workers serving its queue. */
export interface DistributedStrategy extends Strategy {
  /** `"distributed"`. */
  readonly name: "distributed";
  /** The queue's name. */
  readonly queue: string;
  /** The Redis connection, as a URL without its password. */
  readonly connection: string;
  /** The workers serving the queue, as they last answered the roll call (asks Redis now). */
  workers(): Promise<WorkerInfo[]>;
  /** Chunks given to another worker after the one running them was lost, so far. */
  readonly retried: number;
}

const DEFAULT_CONCURRENCY = 8;
const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;
const DEFAULT_MAX_JOB_BYTES = 32 * 1024 * 1024;
/** Finished jobs stay this long in Redis, so a result missed while disconnected can be read. */
const KEEP_FINISHED_S = 600;
/** Longest `close()` waits for Redis to say goodbye before it drops the connections. */
const CLOSE_WAIT_MS = 2000;

interface Pending {
  readonly id: string;
  readonly base: number;
  readonly count: number;
  readonly resolve: (result: ChunkResult & { host?: string }) => void;
  readonly reject: (error: unknown) => void;
  /** Whether a worker has taken it (then a cancel must reach that worker). */
  active: boolean;
}

interface Connected {
  readonly queue: Queue;
  readonly events: QueueEvents;
  readonly client: Redis;
}

/**
 * A strategy that runs a call's chunks on `fanout worker` processes, on this machine or many,
 * through BullMQ on Redis. `map`, `imap`, `submit`, `share` and `runParallel`'s calls keep
 * their contracts: order, error identity, seeds, timeouts, `signal`.
 *
 * Only module tasks travel (a worker never runs code sent through the queue): their module
 * must be inside `root`, and every worker must have the same file at the same path inside its
 * own `--root`. Inline functions are refused.
 *
 * BullMQ and ioredis are optional peer dependencies: `npm install bullmq ioredis`.
 *
 * @param options Where Redis is, the queue, the root; see {@linkcode DistributedOptions}.
 * @returns The strategy, to pass as `strategy` to `ParallelExecutor`.
 * @throws {TypeError} If an option has the wrong type.
 * @throws {RangeError} If a number is out of range.
 *
 * @example Map over workers on many machines
 * ```ts ignore
 * import { ParallelExecutor, tasks } from "@fanout/fanout";
 * import { distributed } from "@fanout/fanout/distributed";
 *
 * // On each machine: fanout worker --redis redis://queue-host:6379 --root /srv/app
 * const work = tasks<typeof import("./work.ts")>(new URL("./work.ts", import.meta.url));
 * await using ex = new ParallelExecutor({
 *   strategy: distributed({ connection: "redis://queue-host:6379", root: "/srv/app" }),
 * });
 * const fibs = await ex.map(work.fib, [30, 31, 32]);
 * ```
 */
export function distributed(options: DistributedOptions = {}): DistributedStrategy {
  return new Distributed(options);
}

class Distributed implements DistributedStrategy {
  readonly name = "distributed" as const;
  readonly queue: string;
  readonly connection: string;
  retried = 0;
  readonly #clientOptions: ReturnType<typeof clientOptions>["options"];
  readonly #root: string;
  readonly #concurrency: number | undefined;
  readonly #connectTimeoutMs: number;
  readonly #maxJobBytes: number;
  readonly #keys: ReturnType<typeof keys>;
  /** Makes job ids unique to this strategy, so two submitters never share one. */
  readonly #instance = crypto.randomUUID();
  #jobs = 0;
  #connecting: Promise<Connected> | undefined;
  #connected: Connected | undefined;
  readonly #pending = new Map<string, Pending>();
  /** Shared values put in Redis, by handle id: their key once written. */
  readonly #shares = new Map<number, Promise<string>>();
  #roll: WorkerInfo[] = [];
  #rollTimer: ReturnType<typeof setInterval> | undefined;
  #lostTimer: ReturnType<typeof setTimeout> | undefined;
  #lastError: unknown;
  #closed = false;
  #closing: Promise<void> | undefined;

  constructor(options: DistributedOptions) {
    if (typeof options !== "object" || options === null) {
      throw new TypeError(`Expected distributed options to be an object, got ${typeof options}`);
    }
    const known = ["connection", "queue", "root", "concurrency", "connectTimeoutMs", "maxJobBytes"];
    for (const key of Object.keys(options)) {
      if (!known.includes(key)) {
        throw new TypeError(
          `Expected distributed options among ${known.join(", ")}, got an unknown \`${key}\``,
        );
      }
    }
    const { options: client, named } = clientOptions(
      options.connection ?? "redis://127.0.0.1:6379",
      "submitter",
    );
    this.#clientOptions = client;
    this.connection = named;
    this.queue = checkQueue(options.queue ?? "fanout");
    this.#keys = keys(this.queue);
    this.#root = rootOf(options.root);
    this.#concurrency = optionalInteger("concurrency", options.concurrency, 1, 65_536);
    this.#connectTimeoutMs = optionalInteger(
      "connectTimeoutMs",
      options.connectTimeoutMs,
      1,
      2 ** 31 - 1,
    ) ?? DEFAULT_CONNECT_TIMEOUT_MS;
    this.#maxJobBytes = optionalInteger("maxJobBytes", options.maxJobBytes, 1024, 512 * 2 ** 20) ??
      DEFAULT_MAX_JOB_BYTES;
  }

  get concurrency(): number {
    if (this.#concurrency !== undefined) return this.#concurrency;
    const slots = this.#roll.reduce((sum, worker) => sum + worker.slots, 0);
    return slots > 0 ? 2 * slots : DEFAULT_CONCURRENCY;
  }

  [DESCRIBE](): string {
    const roll = this.#roll;
    const slots = roll.reduce((sum, worker) => sum + worker.slots, 0);
    const hosts = new Set(roll.map((worker) => worker.host)).size;
    const serving = this.#connected === undefined
      ? "workers not asked yet"
      : `${roll.length} worker${roll.length === 1 ? "" : "s"} serving (${slots} slot${
        slots === 1 ? "" : "s"
      } on ${hosts} host${hosts === 1 ? "" : "s"}${
        roll.length > 0
          ? `: ${roll.map((w) => `${w.host} pid ${w.pid} ×${w.slots}`).join(", ")}`
          : ""
      })`;
    return `distributed: queue "${this.queue}" on ${this.connection}, ${serving}; ${this.concurrency} chunks in flight`;
  }

  /** Connects and reads the roll call, so the first call knows how many serve. */
  async [WARMUP](): Promise<void> {
    await this.#connect();
  }

  async workers(): Promise<WorkerInfo[]> {
    const { client } = await this.#connect();
    await this.#readRoll(client);
    return this.#roll.map((worker) => ({ ...worker }));
  }

  run(request: ChunkRequest): Promise<ChunkResult> {
    if (this.#closed) return Promise.reject(new ExecutorClosedError());
    const { signal } = request;
    if (signal?.aborted) return Promise.reject(signal.reason);
    let job: Omit<ChunkJob, "shares">;
    const handles: { readonly [MARK]: number }[] = [];
    try {
      job = this.#job(request, handles);
    } catch (error) {
      return Promise.reject(error);
    }
    return new Promise<ChunkResult>((resolve, reject) => {
      const id = `${this.#instance}-${++this.#jobs}`;
      const settle = (): void => {
        this.#pending.delete(id);
        stop();
      };
      const pending: Pending = {
        id,
        base: request.base,
        count: request.items.length,
        active: false,
        resolve: (result) => {
          settle();
          resolve(result);
        },
        reject: (error) => {
          settle();
          reject(error);
        },
      };
      // Every path that settles a chunk takes it out of #pending first: it settles once.
      const stop = onAbort(signal, () => {
        if (!this.#pending.has(id)) return;
        pending.reject(signal!.reason);
        this.#cancel(id);
      });
      this.#pending.set(id, pending);
      this.#send(id, job, handles).catch((error: unknown) => {
        if (this.#pending.has(id)) pending.reject(error);
      });
    });
  }

  /** The chunk as a job, its items encoded; the shared handles it holds go to `handles`. */
  #job(request: ChunkRequest, handles: { readonly [MARK]: number }[]): Omit<ChunkJob, "shares"> {
    const { task, base, items } = request;
    if (task.kind !== "module") {
      throw new TypeError(
        "Expected a module task for the distributed strategy, got an inline function: workers " +
          "load only modules they have, never code sent through the queue; use " +
          'tasks(new URL("./work.ts", import.meta.url))',
      );
    }
    const module = this.#relative(task.url);
    let text: string;
    try {
      text = encode(items, (handle) => {
        handles.push(handle);
        return `${this.#keys.share}${this.#instance}:${handle[MARK]}`;
      });
    } catch (error) {
      throw cloneFailure(error, base, "input");
    }
    if (text.length > this.#maxJobBytes) {
      throw new PayloadTooLargeError(
        `the items of tasks ${base}–${base + items.length - 1}`,
        text.length,
        this.#maxJobBytes,
      );
    }
    return {
      v: 1,
      module,
      name: task.name,
      base,
      seed: request.seed === undefined ? undefined : request.seed.toString(),
      timeoutMs: request.timeoutMs,
      concurrency: request.concurrency,
      items: text,
      maxBytes: this.#maxJobBytes === DEFAULT_MAX_JOB_BYTES ? undefined : this.#maxJobBytes,
    };
  }

  /** A module URL as a path inside the root, with `/` separators. */
  #relative(url: string): string {
    const file = url.startsWith("file:") ? new URL(url) : undefined;
    const full = file === undefined ? undefined : path.resolve(decodeURIComponent(file.pathname));
    const relative = full === undefined ? undefined : path.relative(this.#root, full);
    if (
      relative === undefined || relative === "" || relative.startsWith("..") ||
      path.isAbsolute(relative)
    ) {
      throw new TypeError(
        `Expected the task's module to be a file inside the distributed root ${this.#root}, got ${url}: ` +
          `set \`root\` to a folder that holds it (and start each worker with --root at the same ` +
          `folder of its own copy)`,
      );
    }
    return relative.split(path.sep).join("/");
  }

  async #send(id: string, job: Omit<ChunkJob, "shares">, handles: object[]): Promise<void> {
    const connected = await this.#connect();
    const shares = handles.length === 0
      ? undefined
      : await Promise.all(handles.map((handle) => this.#share(connected.client, handle)));
    const pending = this.#pending.get(id);
    if (pending === undefined) return; // Settled meanwhile (aborted).
    const data: ChunkJob = shares === undefined ? job : { ...job, shares: [...new Set(shares)] };
    await connected.queue.add(job.name, data, {
      jobId: id,
      removeOnComplete: { age: KEEP_FINISHED_S },
      removeOnFail: { age: KEEP_FINISHED_S },
    });
    if (!this.#pending.has(id)) this.#cancel(id); // Aborted while it was being added.
  }

  /** The Redis key of a shared value, written there the first time a chunk holds it. */
  #share(client: Redis, handle: object): Promise<string> {
    const id = (handle as { [MARK]: number })[MARK];
    let key = this.#shares.get(id);
    if (key === undefined) {
      const name = `${this.#keys.share}${this.#instance}:${id}`;
      const value = (handle as { value: unknown }).value;
      let text: string;
      try {
        text = encode(value);
      } catch (error) {
        return Promise.reject(error);
      }
      key = client.set(name, text).then(() => name);
      key.catch(() => this.#shares.delete(id));
      this.#shares.set(id, key);
    }
    return key;
  }

  /** A released shared value: gone from Redis and from every worker's cache. */
  [FORGET_SHARED](id: number): void {
    const key = this.#shares.get(id);
    if (key === undefined) return;
    this.#shares.delete(id);
    const client = this.#connected?.client;
    if (client === undefined) return;
    key.then(async (name) => {
      await client.del(name);
      await client.publish(this.#keys.forget, name);
    }).catch(() => {});
  }

  #connect(): Promise<Connected> {
    if (this.#closed) return Promise.reject(new ExecutorClosedError());
    return this.#connecting ??= this.#open().catch((error: unknown) => {
      this.#connecting = undefined;
      throw error;
    });
  }

  async #open(): Promise<Connected> {
    const bullmq = await loadBullMQ();
    const { Redis } = await import("ioredis");
    const client = new Redis(this.#clientOptions);
    client.on("error", (error: unknown) => (this.#lastError = error));
    const opened: { client: Redis; queue?: Queue; events?: QueueEvents } = { client };
    const fail = (error: unknown): never => {
      for (const part of [opened.events, opened.queue]) part?.close().catch(() => {});
      client.disconnect();
      throw error;
    };
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        reject(
          new RedisConnectionError(
            this.connection,
            `Could not connect to Redis at ${this.connection} within ${this.#connectTimeoutMs} ms (connectTimeoutMs)${
              this.#lastError instanceof Error ? `: ${this.#lastError.message}` : ""
            }`,
            this.#lastError,
          ),
        );
      }, this.#connectTimeoutMs);
    });
    try {
      // ioredis retries on its own; the first "ready" (or the timer) decides.
      const ready = client.status === "ready"
        ? Promise.resolve()
        : new Promise<void>((resolve) => client.once("ready", () => resolve()));
      await Promise.race([ready, timeout]);
      // Events from now on: what Redis's clock says now is where the stream is read from.
      const [seconds, micros] = await Promise.race([client.time(), timeout]);
      const from = `${Number(seconds) * 1000 + Math.floor(Number(micros) / 1000) - 1}-0`;
      const connection = { ...this.#clientOptions };
      opened.queue = new bullmq.Queue(this.queue, { connection, prefix: PREFIX });
      opened.events = new bullmq.QueueEvents(this.queue, {
        connection: { ...connection, connectionName: "fanout:events" },
        prefix: PREFIX,
        lastEventId: from,
      });
      opened.queue.on("error", (error: unknown) => (this.#lastError = error));
      opened.events.on("error", (error: unknown) => (this.#lastError = error));
      await Promise.race([
        Promise.all([opened.queue.waitUntilReady(), opened.events.waitUntilReady()]),
        timeout,
      ]);
      await this.#readRoll(client);
    } catch (error) {
      fail(error);
    } finally {
      clearTimeout(timer);
    }
    const connected = opened as Connected;
    this.#listen(connected);
    this.#connected = connected;
    return connected;
  }

  #listen({ events, client }: Connected): void {
    events.on("completed", ({ jobId, returnvalue }: { jobId: string; returnvalue: unknown }) => {
      const pending = this.#pending.get(jobId);
      if (pending !== undefined) this.#settle(pending, returnvalue);
    });
    events.on("failed", ({ jobId, failedReason }: { jobId: string; failedReason: string }) => {
      const pending = this.#pending.get(jobId);
      if (pending === undefined) return;
      pending.reject(
        new RedisConnectionError(
          this.connection,
          `The job of tasks ${pending.base}–${
            pending.base + pending.count - 1
          } failed in BullMQ: ${failedReason}`,
        ),
      );
    });
    events.on("active", ({ jobId }: { jobId: string }) => {
      const pending = this.#pending.get(jobId);
      if (pending !== undefined) pending.active = true;
    });
    events.on("stalled", ({ jobId }: { jobId: string }) => {
      if (this.#pending.has(jobId)) this.retried++;
    });
    client.on("close", () => this.#lost());
    client.on("ready", () => this.#regained());
    this.#rollTimer = setInterval(() => {
      if (this.#pending.size > 0) this.#readRoll(client).catch(() => {});
    }, ROLL_CALL_MS);
    unref(this.#rollTimer);
  }

  #settle(pending: Pending, reply: unknown): void {
    let parsed: ChunkReply;
    try {
      parsed = (typeof reply === "string" ? JSON.parse(reply) : reply) as ChunkReply;
      if (parsed.ok) {
        const values = decode(parsed.values) as unknown[];
        pending.resolve({ values, ms: parsed.ms, host: parsed.host });
      } else {
        pending.reject(decode(parsed.error));
      }
    } catch (error) {
      pending.reject(error);
    }
  }

  /** The connection dropped: the chunks in flight wait at most `connectTimeoutMs` for it. */
  #lost(): void {
    if (this.#closed || this.#lostTimer !== undefined) return;
    this.#lostTimer = setTimeout(() => {
      this.#lostTimer = undefined;
      const error = new RedisConnectionError(
        this.connection,
        `Lost the connection to Redis at ${this.connection} for more than ${this.#connectTimeoutMs} ms (connectTimeoutMs)${
          this.#lastError instanceof Error ? `: ${this.#lastError.message}` : ""
        }`,
        this.#lastError,
      );
      for (const pending of [...this.#pending.values()]) pending.reject(error);
    }, this.#connectTimeoutMs);
    unref(this.#lostTimer);
  }

  /** Back: jobs finished while away are read; jobs Redis no longer has fail. */
  #regained(): void {
    clearTimeout(this.#lostTimer);
    this.#lostTimer = undefined;
    const connected = this.#connected;
    if (connected === undefined || this.#closed) return;
    for (const pending of [...this.#pending.values()]) {
      connected.queue.getJob(pending.id).then(async (job) => {
        if (!this.#pending.has(pending.id)) return;
        if (job === undefined || job === null) {
          pending.reject(
            new RedisConnectionError(
              this.connection,
              `The job of tasks ${pending.base}–${
                pending.base + pending.count - 1
              } is gone from Redis at ${this.connection} (restarted without its data?)`,
            ),
          );
          return;
        }
        if (await job.isCompleted()) this.#settle(pending, job.returnvalue);
      }).catch(() => {});
    }
  }

  async #readRoll(client: Redis): Promise<void> {
    const [entries, [seconds]] = await Promise.all([
      client.hgetall(this.#keys.workers),
      client.time(),
    ]);
    const now = Number(seconds) * 1000;
    const roll: WorkerInfo[] = [];
    for (const text of Object.values(entries)) {
      try {
        const info = JSON.parse(text) as WorkerInfo;
        if (now - info.seen <= ROLL_CALL_STALE_MS) roll.push(info);
      } catch {
        // Not a worker's answer: ignore it.
      }
    }
    roll.sort((a, b) => a.host.localeCompare(b.host) || a.pid - b.pid);
    this.#roll = roll;
  }

  /** Stops a chunk: out of the queue if it waits, and its worker told if it runs. */
  #cancel(id: string): void {
    const connected = this.#connected;
    if (connected === undefined) return;
    connected.queue.remove(id).catch(() => 0);
    connected.client.publish(this.#keys.cancel, id).catch(() => 0);
  }

  close(): Promise<void> {
    return this.#closing ??= this.#shutDown();
  }

  terminate(): Promise<void> {
    if (!this.#closed) {
      const error = new ExecutorClosedError(
        "The executor was terminated: the distributed chunks in flight were cancelled",
      );
      for (const pending of [...this.#pending.values()]) {
        pending.reject(error);
        this.#cancel(pending.id);
      }
    }
    return this.close();
  }

  async #shutDown(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#rollTimer);
    clearTimeout(this.#lostTimer);
    const connecting = this.#connecting;
    if (connecting === undefined) return;
    const connected = await connecting.catch(() => undefined);
    if (connected === undefined) return;
    const error = new ExecutorClosedError(
      "The executor was closed with distributed chunks in flight",
    );
    for (const pending of [...this.#pending.values()]) pending.reject(error);
    const { queue, events, client } = connected;
    const goodbye = (async () => {
      const names = await Promise.all([...this.#shares.values()].map((key) => key.catch(() => "")));
      const written = names.filter((name) => name !== "");
      if (written.length > 0) {
        await client.del(...written);
        for (const name of written) await client.publish(this.#keys.forget, name);
      }
      await Promise.all([events.close(), queue.close()]);
      await client.quit();
    })().catch(() => {});
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      goodbye,
      new Promise<void>((resolve) => (timer = setTimeout(resolve, CLOSE_WAIT_MS))),
    ]);
    clearTimeout(timer);
    // Redis did not answer in time (it is gone): drop the connections.
    client.disconnect();
    for (const part of [queue, events]) {
      const disconnect = (part as unknown as { disconnect?: () => Promise<void> }).disconnect;
      disconnect?.call(part).catch(() => {});
    }
  }
}

function rootOf(root: string | URL | undefined): string {
  if (root === undefined) return process.cwd();
  if (root instanceof URL || (typeof root === "string" && root.startsWith("file:"))) {
    return path.resolve(decodeURIComponent(new URL(root).pathname));
  }
  if (typeof root === "string" && root !== "") return path.resolve(root);
  throw new TypeError(
    `Expected \`root\` to be a folder's path or file: URL, got ${
      typeof root === "string" ? '""' : typeof root
    }`,
  );
}

function optionalInteger(
  name: string,
  value: unknown,
  min: number,
  max: number,
): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== "number" || !Number.isInteger(value)) {
    throw new TypeError(
      `Expected \`${name}\` to be an integer from ${min} to ${max}, got ${
        typeof value === "number" ? value : typeof value
      }`,
    );
  }
  if (value < min || value > max) {
    throw new RangeError(
      `Expected \`${name}\` to be an integer from ${min} to ${max}, got ${value}`,
    );
  }
  return value;
}

function unref(timer: unknown): void {
  (timer as { unref?: () => void }).unref?.();
}
