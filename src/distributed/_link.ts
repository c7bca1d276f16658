/**
 * A submitter's link to Redis: the three connections the distributed strategy holds (a BullMQ
 * `Queue` to add jobs, one `QueueEvents` stream that brings every job's end, a plain client for
 * the roll call, shared values and cancellations), opened within `connectTimeoutMs`, watched
 * while open, and closed within a bound even when Redis is gone.
 *
 * @module
 */

import type { Queue, QueueEvents } from "bullmq";
import type { Redis } from "ioredis";
import { RedisConnectionError } from "./errors.ts";
import type { ClientOptions, WorkerInfo } from "./_redis.ts";
import {
  keys,
  loadBullMQ,
  loadRedis,
  PREFIX,
  ROLL_CALL_MS,
  ROLL_CALL_STALE_MS,
  whenReady,
} from "./_redis.ts";

/** Longest `close()` waits for Redis to say goodbye before it drops the connections. */
const CLOSE_WAIT_MS = 2000;

/** What the link tells its strategy. */
export interface LinkEvents {
  /** A job ended with `reply` (what its worker returned). */
  completed(jobId: string, reply: unknown): void;
  /** BullMQ failed a job (it stalled more often than allowed, say). */
  failed(jobId: string, reason: string): void;
  /** A job's worker was lost: BullMQ gives the job to another. */
  stalled(jobId: string): void;
  /** Redis has been unreachable for longer than `connectTimeoutMs`. */
  lost(error: RedisConnectionError): void;
  /** Redis is back after a loss: jobs may have ended meanwhile, or be gone. */
  regained(): void;
  /** Whether jobs are in flight (the roll call is kept fresh only then). */
  busy(): boolean;
  /** Every `ROLL_CALL_MS` while busy: a chance to look at jobs whose end was not heard of. */
  tick(): void;
}

/** Where and how to connect. */
export interface LinkOptions {
  readonly client: ClientOptions;
  /** The connection, as a URL without its password, for messages. */
  readonly named: string;
  readonly queue: string;
  readonly connectTimeoutMs: number;
}

/** An open link. */
export class Link {
  readonly queue: Queue;
  readonly client: Redis;
  readonly #events: QueueEvents;
  readonly #options: LinkOptions;
  readonly #keys: ReturnType<typeof keys>;
  /** The workers serving the queue, as they last answered. */
  roll: WorkerInfo[] = [];
  #rollTimer: ReturnType<typeof setInterval> | undefined;
  #lostTimer: ReturnType<typeof setTimeout> | undefined;
  #lastError: unknown;
  #closed = false;

  private constructor(
    options: LinkOptions,
    parts: { queue: Queue; events: QueueEvents; client: Redis },
    lastError: () => unknown,
  ) {
    this.#options = options;
    this.#keys = keys(options.queue);
    this.queue = parts.queue;
    this.#events = parts.events;
    this.client = parts.client;
    this.#lastError = lastError();
  }

  /**
   * Connects, within `connectTimeoutMs`.
   *
   * @throws {RedisConnectionError} If Redis did not answer in time.
   * @throws {DistributedUnavailableError} If BullMQ is not installed.
   */
  static async open(options: LinkOptions, on: LinkEvents): Promise<Link> {
    const bullmq = await loadBullMQ();
    const { Redis } = await loadRedis();
    let lastError: unknown;
    const remember = (error: unknown): void => {
      lastError = error;
    };
    const client = new Redis(options.client);
    client.on("error", remember);
    let queue: Queue | undefined;
    let events: QueueEvents | undefined;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        reject(
          new RedisConnectionError(
            options.named,
            `Could not connect to Redis at ${options.named} within ${options.connectTimeoutMs} ms (connectTimeoutMs)${
              lastError instanceof Error ? `: ${lastError.message}` : ""
            }`,
            lastError,
          ),
        );
      }, options.connectTimeoutMs);
    });
    // Raced below, and possibly after another part of the start already failed.
    timeout.catch(() => {});
    try {
      await whenReady(client, options.named, options.connectTimeoutMs);
      // Events from now on: what Redis's clock says now is where the stream is read from.
      const [seconds, micros] = await Promise.race([client.time(), timeout]);
      const from = `${Number(seconds) * 1000 + Math.floor(Number(micros) / 1000) - 1}-0`;
      queue = new bullmq.Queue(options.queue, {
        connection: { ...options.client },
        prefix: PREFIX,
      });
      events = new bullmq.QueueEvents(options.queue, {
        connection: { ...options.client, connectionName: "fanout:events" },
        prefix: PREFIX,
        lastEventId: from,
      });
      queue.on("error", remember);
      events.on("error", remember);
      await Promise.race([Promise.all([queue.waitUntilReady(), events.waitUntilReady()]), timeout]);
      const link = new Link(options, { queue, events, client }, () => lastError);
      await Promise.race([link.readRoll(), timeout]);
      client.off("error", remember);
      client.on("error", (error: unknown) => (link.#lastError = error));
      link.#listen(on);
      return link;
    } catch (error) {
      for (const part of [events, queue]) part?.close().catch(() => {});
      client.disconnect();
      throw error;
    } finally {
      clearTimeout(timer);
    }
  }

  #listen(on: LinkEvents): void {
    const events = this.#events;
    events.on("completed", ({ jobId, returnvalue }) => on.completed(jobId, returnvalue));
    events.on("failed", ({ jobId, failedReason }) => on.failed(jobId, failedReason));
    events.on("stalled", ({ jobId }) => on.stalled(jobId));
    this.client.on("close", () => this.#lost(on));
    this.client.on("ready", () => {
      clearTimeout(this.#lostTimer);
      this.#lostTimer = undefined;
      if (!this.#closed) on.regained();
    });
    this.#rollTimer = setInterval(() => {
      if (!on.busy()) return;
      this.readRoll().catch(() => {});
      on.tick();
    }, ROLL_CALL_MS);
    unref(this.#rollTimer);
  }

  /** The connection dropped: jobs in flight wait at most `connectTimeoutMs` for it. */
  #lost(on: LinkEvents): void {
    if (this.#closed || this.#lostTimer !== undefined) return;
    const { named, connectTimeoutMs } = this.#options;
    this.#lostTimer = setTimeout(() => {
      this.#lostTimer = undefined;
      const last = this.#lastError;
      on.lost(
        new RedisConnectionError(
          named,
          `Lost the connection to Redis at ${named} for more than ${connectTimeoutMs} ms (connectTimeoutMs)${
            last instanceof Error ? `: ${last.message}` : ""
          }`,
          last,
        ),
      );
    }, connectTimeoutMs);
    unref(this.#lostTimer);
  }

  /** Reads the roll call: the workers that answered within the last few seconds. */
  async readRoll(): Promise<void> {
    const [entries, [seconds]] = await Promise.all([
      this.client.hgetall(this.#keys.workers),
      this.client.time(),
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
    this.roll = roll;
  }

  /** Stops a job: out of the queue if it waits, and its worker told if it runs. */
  cancel(id: string): void {
    this.queue.remove(id).catch(() => 0);
    this.client.publish(this.#keys.cancel, id).catch(() => 0);
  }

  /** Deletes shared values and tells every worker to forget them. */
  async forget(names: readonly string[]): Promise<void> {
    if (names.length === 0) return;
    await this.client.del(...names);
    for (const name of names) await this.client.publish(this.#keys.forget, name);
  }

  /**
   * Deletes `shares` (awaited first), then closes every connection; past a short bound (Redis
   * gone) drops them instead.
   */
  async close(shares: Promise<string[]>): Promise<void> {
    this.#closed = true;
    clearInterval(this.#rollTimer);
    clearTimeout(this.#lostTimer);
    const goodbye = (async () => {
      await this.forget(await shares);
      await Promise.all([this.#events.close(), this.queue.close()]);
      await this.client.quit();
    })().catch(() => {});
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      goodbye,
      new Promise<void>((resolve) => (timer = setTimeout(resolve, CLOSE_WAIT_MS))),
    ]);
    clearTimeout(timer);
    // Whatever did not close in time (Redis is gone): dropped.
    this.client.disconnect();
    for (const part of [this.queue, this.#events]) {
      const disconnect = (part as unknown as { disconnect?: () => Promise<void> }).disconnect;
      disconnect?.call(part).catch(() => {});
    }
  }
}

function unref(timer: unknown): void {
  (timer as { unref?: () => void }).unref?.();
}
