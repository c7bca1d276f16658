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
import type { ChunkRequest, ChunkResult, Strategy } from "../strategy/types.ts";
import { CHUNK_MS, DESCRIBE, FORGET_SHARED, WARMUP, WORKERS } from "../strategy/_builtin.ts";
import { ExecutorClosedError, WorkerCrashedError } from "../errors.ts";
import type { MARK } from "../worker/shared_refs.js";
import { onAbort } from "../_abort.ts";
import { RedisConnectionError } from "./errors.ts";
import type { ChunkJob, WorkerInfo } from "./_redis.ts";
import { keys } from "./_redis.ts";
import type { clientOptions } from "./_redis.ts";
import { resolveOptions } from "./_options.ts";
import { JobWriter } from "./_job.ts";
import { InFlight } from "./_in_flight.ts";
import type { Pending } from "./_in_flight.ts";
import { SharedValues } from "./_shares.ts";
import type { DistributedOptions } from "./_options.ts";
import { Link } from "./_link.ts";
import { DISTRIBUTED_CHUNK_MS } from "../strategy/_distributed_env.ts";
import type { LinkEvents } from "./_link.ts";

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
/** A job added this long ago whose end was not heard of is looked up in Redis. */
const UNHEARD_MS = 5000;
/** Finished jobs stay this long in Redis, so a result missed while disconnected can be read. */
const KEEP_FINISHED_S = 600;

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
  readonly [CHUNK_MS] = DISTRIBUTED_CHUNK_MS;
  readonly queue: string;
  readonly connection: string;
  retried = 0;
  readonly #clientOptions: ReturnType<typeof clientOptions>["options"];
  readonly #concurrency: number | undefined;
  readonly #connectTimeoutMs: number;
  readonly #keys: ReturnType<typeof keys>;
  /** Makes job ids unique to this strategy, so two submitters never share one. */
  readonly #instance = crypto.randomUUID();
  #jobs = 0;
  #connecting: Promise<Link> | undefined;
  #link: Link | undefined;
  readonly #pending: InFlight;
  readonly #writer: JobWriter;
  /** Shared values put in Redis. */
  readonly #shares: SharedValues;
  #closed = false;
  #closing: Promise<void> | undefined;
  /** Whether it warned that no worker serves. */
  #warned = false;

  constructor(options: DistributedOptions) {
    const resolved = resolveOptions(options);
    this.#clientOptions = resolved.client;
    this.connection = resolved.connection;
    this.queue = resolved.queue;
    this.#keys = keys(this.queue);
    const sharePrefix = `${this.#keys.share}${this.#instance}:`;
    this.#shares = new SharedValues(sharePrefix);
    this.#writer = new JobWriter(resolved.root, sharePrefix, resolved.maxJobBytes);
    this.#pending = new InFlight(this.connection);
    this.#concurrency = resolved.concurrency;
    this.#connectTimeoutMs = resolved.connectTimeoutMs;
  }

  get concurrency(): number {
    if (this.#concurrency !== undefined) return this.#concurrency;
    const slots = this[WORKERS]();
    return slots > 0 ? 2 * slots : DEFAULT_CONCURRENCY;
  }

  [DESCRIBE](): string {
    const roll = this.#link?.roll ?? [];
    const slots = roll.reduce((sum, worker) => sum + worker.slots, 0);
    const hosts = new Set(roll.map((worker) => worker.host)).size;
    const serving = this.#link === undefined
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

  /** The slots of the workers serving, as they last answered (0 before any did). */
  [WORKERS](): number {
    return (this.#link?.roll ?? []).reduce((sum, worker) => sum + worker.slots, 0);
  }

  /** Connects and reads the roll call, so the first call knows how many serve. */
  async [WARMUP](): Promise<void> {
    await this.#connect();
  }

  async workers(): Promise<WorkerInfo[]> {
    const link = await this.#connect();
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      await Promise.race([
        link.readRoll(),
        new Promise<never>((_, reject) => {
          timer = setTimeout(
            () =>
              reject(
                new RedisConnectionError(
                  this.connection,
                  `Redis at ${this.connection} did not answer the roll call within ${this.#connectTimeoutMs} ms (connectTimeoutMs)`,
                ),
              ),
            this.#connectTimeoutMs,
          );
        }),
      ]);
    } finally {
      clearTimeout(timer);
    }
    return link.roll.map((worker) => ({ ...worker }));
  }

  run(request: ChunkRequest): Promise<ChunkResult> {
    if (this.#closed) return Promise.reject(new ExecutorClosedError());
    const { signal } = request;
    if (signal?.aborted) return Promise.reject(signal.reason);
    let job: Omit<ChunkJob, "shares">;
    const handles: { readonly [MARK]: number }[] = [];
    try {
      job = this.#writer.job(request, handles);
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
        retries: 0,
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

  async #send(id: string, job: Omit<ChunkJob, "shares">, handles: object[]): Promise<void> {
    const link = await this.#connect();
    const shares = handles.length === 0
      ? undefined
      : await Promise.all(handles.map((handle) => this.#shares.key(link.client, handle)));
    const pending = this.#pending.get(id);
    if (pending === undefined) return; // Settled meanwhile (aborted).
    if (link.roll.length === 0 && !this.#warned) await this.#warnIfNobodyServes(link);
    const data: ChunkJob = shares === undefined ? job : { ...job, shares: [...new Set(shares)] };
    await link.queue.add(job.name, data, {
      jobId: id,
      removeOnComplete: { age: KEEP_FINISHED_S },
      removeOnFail: { age: KEEP_FINISHED_S },
    });
    if (!this.#pending.has(id)) this.#cancel(id); // Aborted while it was being added.
    else pending.sentAt = performance.now();
  }

  /**
   * Warns, once, when no worker answers the roll call: the chunks wait in Redis for one (a
   * worker may be starting), and the warning says why nothing happens meanwhile.
   */
  async #warnIfNobodyServes(link: Link): Promise<void> {
    await link.readRoll().catch(() => {});
    if (link.roll.length > 0 || this.#warned) return;
    this.#warned = true;
    process.emitWarning(
      `fanout: no fanout worker serves queue "${this.queue}" on ${this.connection}: the chunks ` +
        `wait in Redis until one does (start one with: fanout worker --redis URL --queue ${this.queue})`,
      { code: "FANOUT_NO_WORKERS" },
    );
  }

  /** A released shared value: gone from Redis and from every worker's cache. */
  [FORGET_SHARED](id: number): void {
    this.#shares.forget(id, this.#link);
  }

  #connect(): Promise<Link> {
    if (this.#closed) return Promise.reject(new ExecutorClosedError());
    return this.#connecting ??= Link.open({
      client: this.#clientOptions,
      named: this.connection,
      queue: this.queue,
      connectTimeoutMs: this.#connectTimeoutMs,
    }, this.#events()).then((link) => (this.#link = link), (error: unknown) => {
      this.#connecting = undefined;
      throw error;
    });
  }

  /** What the link's events do to the chunks in flight. */
  #events(): LinkEvents {
    const pending = this.#pending;
    return {
      completed: (jobId, reply) => {
        const chunk = pending.get(jobId);
        if (chunk !== undefined) pending.settle(chunk, reply);
      },
      failed: (jobId, reason) => {
        const chunk = pending.get(jobId);
        if (chunk === undefined) return;
        const { base, count } = chunk;
        chunk.reject(
          new WorkerCrashedError(
            `The chunk of tasks ${base}–${base + count - 1} failed in BullMQ: ${reason}`,
            { index: count === 1 ? base : undefined },
          ),
        );
      },
      stalled: (jobId) => {
        const chunk = pending.get(jobId);
        if (chunk === undefined) return;
        chunk.retries++;
        this.retried++;
      },
      lost: (error) => {
        for (const chunk of [...pending.values()]) chunk.reject(error);
      },
      regained: () => this.#recheck(0),
      busy: () => pending.size > 0,
      tick: () => this.#recheck(UNHEARD_MS),
    };
  }

  /**
   * Looks in Redis at the chunks whose end was not heard of for `olderThanMs` (see
   * `InFlight.recheck`); with 0 (Redis is back after a loss) at every chunk, and at the shared
   * values, which Redis may have lost with its data.
   */
  #recheck(olderThanMs: number): void {
    const link = this.#link;
    if (link === undefined || this.#closed || this.#pending.checking) return;
    if (olderThanMs === 0) this.#shares.recheck(link);
    this.#pending.recheck(link, olderThanMs);
  }

  /** Stops a chunk: out of the queue if it waits, and its worker told if it runs. */
  #cancel(id: string): void {
    this.#link?.cancel(id);
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
    const connecting = this.#connecting;
    if (connecting === undefined) return;
    const link = await connecting.catch(() => undefined);
    if (link === undefined) return;
    const error = new ExecutorClosedError(
      "The executor was closed with distributed chunks in flight",
    );
    for (const pending of [...this.#pending.values()]) pending.reject(error);
    await link.close(this.#shares.written());
  }
}
