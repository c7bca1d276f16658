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
import { Buffer } from "node:buffer";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { ChunkRequest, ChunkResult, Strategy } from "../strategy/types.ts";
import { CHUNK_MS, DESCRIBE, FORGET_SHARED, WARMUP, WORKERS } from "../strategy/_builtin.ts";
import { ExecutorClosedError, WorkerCrashedError } from "../errors.ts";
import { MARK } from "../worker/shared_refs.js";
import { onAbort } from "../_abort.ts";
import { cloneFailure, decode, encode } from "./_codec.ts";
import { PayloadTooLargeError, RedisConnectionError } from "./errors.ts";
import type { ChunkJob, ChunkReply, WorkerInfo } from "./_redis.ts";
import { insideRoot, keys } from "./_redis.ts";
import type { clientOptions } from "./_redis.ts";
import { DEFAULT_MAX_JOB_BYTES, real, resolveOptions } from "./_options.ts";
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
/** Most jobs looked up at once. */
const RECHECK_MOST = 256;
/** Finished jobs stay this long in Redis, so a result missed while disconnected can be read. */
const KEEP_FINISHED_S = 600;

interface Pending {
  readonly id: string;
  readonly base: number;
  readonly count: number;
  /** When its job was added (`performance.now()`), once it was. */
  sentAt?: number;
  /** Times BullMQ gave it to another worker after the one running it was lost. */
  retries: number;
  readonly resolve: (result: ChunkResult & { host?: string }) => void;
  readonly reject: (error: unknown) => void;
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
  readonly [CHUNK_MS] = DISTRIBUTED_CHUNK_MS;
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
  #connecting: Promise<Link> | undefined;
  #link: Link | undefined;
  readonly #pending = new Map<string, Pending>();
  /** Each task module's path inside the root, by URL. */
  readonly #modules = new Map<string, string>();
  /** Shared values put in Redis. */
  readonly #shares: SharedValues;
  #closed = false;
  #closing: Promise<void> | undefined;
  /** Whether it warned that no worker serves. */
  #warned = false;
  /** Whether a look at unheard-of jobs is under way. */
  #checking = false;

  constructor(options: DistributedOptions) {
    const resolved = resolveOptions(options);
    this.#clientOptions = resolved.client;
    this.connection = resolved.connection;
    this.queue = resolved.queue;
    this.#keys = keys(this.queue);
    this.#shares = new SharedValues(`${this.#keys.share}${this.#instance}:`);
    this.#root = resolved.root;
    this.#concurrency = resolved.concurrency;
    this.#connectTimeoutMs = resolved.connectTimeoutMs;
    this.#maxJobBytes = resolved.maxJobBytes;
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
    const bytes = Buffer.byteLength(text);
    if (bytes > this.#maxJobBytes) {
      throw new PayloadTooLargeError(
        `the items of tasks ${base}–${base + items.length - 1}`,
        bytes,
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
    let relative = this.#modules.get(url);
    if (relative !== undefined) return relative;
    const file = url.startsWith("file:") ? fileURLToPath(url) : undefined;
    // Real paths on both sides: a root reached through a link (`/srv/app/current`) still holds
    // the modules that `import.meta.url` names by their real path.
    const full = file === undefined ? undefined : real(file);
    if (full === undefined || !insideRoot(this.#root, full)) {
      throw new TypeError(
        `Expected the task's module to be a file inside the distributed root ${this.#root}, got ${url}: ` +
          `set \`root\` to a folder that holds it (and start each worker with --root at the same ` +
          `folder of its own copy)`,
      );
    }
    relative = path.relative(this.#root, full).split(path.sep).join("/");
    this.#modules.set(url, relative);
    return relative;
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
        if (chunk !== undefined) this.#settle(chunk, reply);
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

  #settle(pending: Pending, reply: unknown): void {
    let parsed: ChunkReply;
    try {
      parsed = (typeof reply === "string" ? JSON.parse(reply) : reply) as ChunkReply;
      if (parsed.ok) {
        const values = decode(parsed.values) as unknown[];
        pending.resolve({ values, ms: parsed.ms, host: parsed.host, retries: pending.retries });
      } else {
        pending.reject(decode(parsed.error));
      }
    } catch (error) {
      pending.reject(error);
    }
  }

  /**
   * Looks at the jobs added more than `olderThanMs` ago whose end was not heard of: one that
   * ended meanwhile is read from Redis (its event was missed: the connection dropped, or the
   * shared event stream was trimmed before this submitter read it), one Redis no longer has
   * fails. With 0 (Redis is back after a loss) it looks at every job, and at the shared values.
   */
  #recheck(olderThanMs: number): void {
    const link = this.#link;
    if (link === undefined || this.#closed || this.#checking) return;
    if (olderThanMs === 0) {
      // Shared values Redis lost with its data are written again by the next chunk holding them.
      this.#shares.recheck(link);
    }
    const now = performance.now();
    const due = [...this.#pending.values()].filter((pending) =>
      pending.sentAt !== undefined && now - pending.sentAt > olderThanMs
    ).slice(0, RECHECK_MOST);
    if (due.length === 0) return;
    this.#checking = true;
    Promise.all(due.map((pending) => this.#look(link, pending))).finally(() => {
      this.#checking = false;
    });
  }

  /** One job's state, read from Redis: settles its chunk if it ended, fails it if it is gone. */
  async #look(link: Link, pending: Pending): Promise<void> {
    try {
      // The state alone (a few small commands), not the job, whose data may be large.
      const state = await link.queue.getJobState(pending.id);
      if (!this.#pending.has(pending.id)) return;
      const tasks = `tasks ${pending.base}–${pending.base + pending.count - 1}`;
      if (state === "unknown") {
        pending.reject(
          new RedisConnectionError(
            this.connection,
            `The job of ${tasks} is gone from Redis at ${this.connection} (removed by hand, or ` +
              `Redis restarted without its data)`,
          ),
        );
        return;
      }
      if (state !== "completed" && state !== "failed") return;
      const job = await link.queue.getJob(pending.id);
      if (!this.#pending.has(pending.id) || job === undefined || job === null) return;
      if (state === "completed") this.#settle(pending, job.returnvalue);
      else {
        pending.reject(
          new WorkerCrashedError(`The chunk of ${tasks} failed in BullMQ: ${job.failedReason}`, {
            index: pending.count === 1 ? pending.base : undefined,
          }),
        );
      }
    } catch {
      // Redis is away: the connection watch decides.
    }
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
