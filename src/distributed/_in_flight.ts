/**
 * The submitter's chunks in flight, by job id, and how each one's end is read: its reply
 * decoded into results or the error, or — when its event was missed — its job looked up in
 * Redis. Apart from `strategy.ts`, which sends the chunks and routes the link's events here.
 *
 * @module
 */

import type { ChunkResult } from "../strategy/types.ts";
import { WorkerCrashedError } from "../errors.ts";
import { decode } from "./_codec.ts";
import { RedisConnectionError } from "./errors.ts";
import type { ChunkReply } from "./_redis.ts";
import type { Link } from "./_link.ts";

/** Most jobs looked up at once. */
const RECHECK_MOST = 256;

/** A chunk in flight. */
export interface Pending {
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
 * The chunks in flight, by job id. Every path that settles a chunk takes it out first (see
 * `run()` in `strategy.ts`): a chunk is settled once.
 */
export class InFlight extends Map<string, Pending> {
  /** The Redis connection, as a URL without its password, for the errors. */
  readonly #connection: string;
  /** Whether a look at unheard-of jobs is under way. */
  #checking = false;

  constructor(connection: string) {
    super();
    this.#connection = connection;
  }

  /** Whether a look at unheard-of jobs is under way. */
  get checking(): boolean {
    return this.#checking;
  }

  /** Settles a chunk from its job's return value. */
  settle(pending: Pending, reply: unknown): void {
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
   * fails. With 0 it looks at every job.
   */
  recheck(link: Link, olderThanMs: number): void {
    if (this.#checking) return;
    const now = performance.now();
    const due = [...this.values()].filter((pending) =>
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
      if (!this.has(pending.id)) return;
      const tasks = `tasks ${pending.base}–${pending.base + pending.count - 1}`;
      if (state === "unknown") {
        pending.reject(
          new RedisConnectionError(
            this.#connection,
            `The job of ${tasks} is gone from Redis at ${this.#connection} (removed by hand, or ` +
              `Redis restarted without its data)`,
          ),
        );
        return;
      }
      if (state !== "completed" && state !== "failed") return;
      const job = await link.queue.getJob(pending.id);
      if (!this.has(pending.id) || job === undefined || job === null) return;
      if (state === "completed") this.settle(pending, job.returnvalue);
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
}
