/**
 * The thread strategy: a lazily started pool of worker threads, reused for the executor's
 * life and never larger than the work queued for it.
 *
 * ```
 * run(chunk) ──► queue ──► idle worker? ──► prepare task once (comlink) ──► "run" message
 *                  ▲                                                           │
 *   abort ─────────┤  (queued: dropped; running: thread terminated where      ▼
 *                  │   the runtime can, else ctx.signal via shared memory)  worker
 *                  │                                                           │
 * resolve/reject ◄─┴── "done" | "fail" | crash (exit, fatal, exit event) ◄────┘
 * ```
 *
 * A worker holds up to two chunks: the one it runs and one posted behind it (`next`), so it
 * never idles for a round trip between chunks; each uses its own bank of the shared header.
 * The pool can take `next` back until the worker starts it (`Bank.CLAIM`), to run it
 * elsewhere when the chunk ahead must be stopped or its worker died. Submits of one task
 * queued together travel as one batch (`Payload.EACH`, see `JobQueue.take`).
 *
 * Every job is settled by the pool itself, never by waiting on comlink, which would hang if
 * the worker died mid-call. A worker that dies fails only what it had started (the chunk
 * behind goes back to the queue) and is replaced on demand; a worker that dies before it is
 * ready fails the queued jobs with `WorkerStartError` (retrying would only fail again).
 *
 * @module
 */

import type { FromWorkerEvent, StartMessage, TaskSpec, ToWorkerEvent } from "../protocol.ts";
import { Bank, bankAt, Claim, Payload, Slot, SLOTS, STATE_BYTES } from "../protocol.ts";
import { connect, exitOf, newWorker, sendChunk, stopThread, takeBack } from "./_thread_worker.ts";
import type { PoolWorker } from "./_thread_worker.ts";
import { detect } from "../runtime/mod.ts";
import type { ThreadExit, ThreadFactory } from "../runtime/mod.ts";
import { workerEntry } from "../runtime/_entries.ts";
import { KILL_GRACE_MS } from "../runtime/_kill.ts";
import type { Job as Job_ } from "./_pool.ts";
import { WarmPool } from "./_warm_pool.ts";
import { stopsHard } from "../_abort.ts";
import type { PoolOptions } from "./_pool.ts";
import { WorkerStartError } from "../errors.ts";
import { inputCloneError, loadFailure } from "../_revive.ts";
import type { EachReply } from "./_pool_errors.ts";
import {
  crashedBatch,
  crashedChunk,
  eachFailures,
  failureOf,
  threadTimeout,
  uncloneableInputs,
} from "./_pool_errors.ts";

const ENTRY = new URL("../worker/thread_entry.js", import.meta.url);

type Job = Job_<PoolWorker>;

/** Options of the thread pool: `maxMemoryMb` is Node's `resourceLimits` (the executor warns elsewhere). */
export type ThreadPoolOptions = PoolOptions;

/** Runs chunks on a pool of worker threads. */
export class ThreadPool extends WarmPool<PoolWorker> {
  readonly name = "threads";
  protected override readonly primeRounds: number = detect().capabilities.primeRounds;
  readonly #factory: ThreadFactory;

  /**
   * @param maxWorkers Most threads the pool runs at once.
   * @param factory The runtime's thread factory.
   * @param options Memory cap, bounds and recycling.
   */
  constructor(maxWorkers: number, factory: ThreadFactory, options: ThreadPoolOptions = {}) {
    super(maxWorkers, options);
    this.#factory = factory;
    // A thread runs a batch of submits as one message (see `Payload.EACH`).
    this.queue.coalesce = true;
  }

  protected spawn(): void {
    let entry: URL;
    try {
      entry = workerEntry("thread_entry.js", ENTRY);
    } catch (error) {
      return this.failQueue(error);
    }
    const state = new SharedArrayBuffer(STATE_BYTES);
    const handle = this.#factory.create(entry, `fanout-thread-${this.workers.size + 1}`, {
      maxMemoryMb: this.options.maxMemoryMb,
      state: new Int32Array(state, 0, SLOTS),
    });
    const worker = newWorker(this.nextNumber(), handle, state);
    this.enlist(worker);
    handle.onMessage((message) =>
      worker.ready
        ? this.#onResult(worker, message)
        : this.#onStart(worker, message as StartMessage)
    );
    handle.onExit((exit) => this.#onDeath(worker, exit));
  }

  /** Before `init`: the handshake, or news of a worker that died while starting. */
  #onStart(worker: PoolWorker, message: StartMessage): void {
    if (worker.dead) return;
    if (message.type !== "ready") return this.#onEvent(worker, message);
    connect(
      worker,
      this.options.idleMemoryLimitMb !== undefined,
      (event) => this.#onEvent(worker, event),
    );
    this.ready(worker);
    this.release(worker);
  }

  /** Reads what the worker wrote of itself with its reply. */
  #replied(worker: PoolWorker): void {
    if (this.options.idleMemoryLimitMb !== undefined) {
      worker.heapBytes = worker.header[Slot.HEAP_KB] * 1024;
    }
  }

  /**
   * A chunk's reply: its values, or (`Payload.EVENT` in its bank) how it ended otherwise. Every
   * reply comes on the worker's own port, in the order the chunks ran, so it is the reply of the
   * oldest chunk the worker holds.
   */
  #onResult(worker: PoolWorker, payload: unknown): void {
    if (worker.dead) return;
    const job = worker.job;
    if (job === undefined || job.bank === undefined) return;
    const at = bankAt(job.bank);
    const id = worker.header[at + Bank.DONE_ID];
    if (id !== job.id) {
      // Never hand a reply to the wrong chunk: a worker out of step is replaced.
      return this.#onDeath(worker, {
        message: `it answered chunk ${id} while chunk ${job.id} was the one to answer`,
      });
    }
    const kind = worker.header[at + Bank.DONE_PAYLOAD];
    if (kind === Payload.EVENT) {
      const event = payload as Extract<FromWorkerEvent, { id: number }>;
      if (event.type !== "skipped") this.#replied(worker);
      if (!job.settled && event.type === "fail") this.settle(job, failureOf(event));
      else if (!job.settled && event.type === "cancelled") {
        this.settle(job, job.request.signal?.reason);
      }
      if (event.type === "fail" && event.stragglers) return this.#dropStragglers(worker);
      return this.#done(worker, job);
    }
    this.#replied(worker);
    if (!job.settled) {
      const ms = job.request.timed ? worker.runMs[job.bank] : NaN;
      if (kind === Payload.EACH) {
        const reply = payload as EachReply;
        this.settle(job, undefined, { values: reply.values, ms, failures: eachFailures(reply) });
      } else {
        const values = kind === Payload.ONE ? [payload] : payload as unknown[];
        this.settle(job, undefined, { values, ms });
      }
    }
    this.#done(worker, job);
  }

  /** `job` has left `worker`: the worker goes on with the chunk behind it, or takes more. */
  #done(worker: PoolWorker, job: Job): void {
    if (worker.job === job) {
      worker.job = worker.next;
      worker.next = undefined;
    } else if (worker.next === job) worker.next = undefined;
    if (worker.stopAfterReply && worker.job !== undefined) {
      // The chunk now running was aborted with a hard stop while the reply above was on its way.
      worker.stopAfterReply = false;
      this.retire(worker);
      this.pump();
    } else if (worker.job === undefined) this.release(worker);
    else this.#pipeline(worker);
  }

  /**
   * A chunk failed while some of its items ran on past the grace (see `runWindow`): the worker,
   * which starts nothing more, is replaced, so that none of them outlives its call; the chunk
   * posted behind goes back to the queue.
   */
  #dropStragglers(worker: PoolWorker): void {
    const next = worker.next;
    worker.job = undefined;
    if (next !== undefined && !this.#revoke(worker, next, true) && !next.settled) {
      this.settle(next, crashedChunk(next, undefined, { message: "it was replaced" }, undefined));
    }
    worker.next = undefined;
    this.retire(worker);
    this.pump();
  }

  /**
   * Posts a second chunk behind the one `worker` runs, so that it never idles for a round trip
   * between chunks. Only chunks without a timeout (whose clock would start while they wait)
   * and of a task the worker has loaded go behind another.
   */
  #pipeline(worker: PoolWorker): void {
    if (worker.next !== undefined || worker.job === undefined || worker.dead) return;
    const next = this.takeNext(
      worker,
      (job) => job.request.timeoutMs === undefined && worker.prepared.has(job.taskId),
    );
    if (next === undefined) return;
    worker.next = next;
    next.worker = worker;
    next.id = this.nextChunk++;
    this.#post(worker, next);
  }

  /**
   * A free worker takes the chunk posted behind a busy one, if that one has not started it: at
   * the tail of a call no worker idles while another has two chunks. The busy one keeps a
   * stand-in until it says it skipped the chunk, so its banks stay in step.
   */
  protected override steal(thief: PoolWorker): Job | undefined {
    for (const victim of this.workers) {
      const next = victim.next;
      if (victim === thief || next === undefined || next.settled) continue;
      if (!this.#revoke(victim, next, false)) continue;
      victim.next = { ...next, settled: true, members: undefined };
      next.worker = undefined;
      return next;
    }
    return undefined;
  }

  /** `takeBack`, and with `requeue` the chunk taken back goes back to the queue. */
  #revoke(worker: PoolWorker, next: Job, requeue: boolean): boolean {
    if (!takeBack(worker, next)) return false;
    if (requeue) {
      worker.next = undefined;
      if (!next.settled) this.queue.requeue(next);
    }
    return true;
  }

  #onEvent(worker: PoolWorker, event: FromWorkerEvent): void {
    // The answer to a graceful stop comes from a worker already out of the pool.
    if (event.type === "stopped") return worker.stopped?.();
    if (worker.dead) return;
    const exit = exitOf(worker, event);
    if (exit !== undefined) this.#onDeath(worker, exit);
  }

  protected override async preload(worker: PoolWorker, id: number, task: TaskSpec): Promise<void> {
    if (worker.prepared.has(id)) return;
    await worker.control!.prepare(id, task);
    worker.prepared.add(id);
  }

  protected assign(worker: PoolWorker, job: Job): void {
    worker.job = job;
    job.worker = worker;
    job.id = this.nextChunk++;
    if (worker.prepared.has(job.taskId)) return this.#post(worker, job);
    this.loading(worker, job);
    worker.control!.prepare(job.taskId, job.request.task).then(
      () => {
        if (worker.dead || worker.job !== job) return;
        this.loaded(worker);
        worker.prepared.add(job.taskId);
        if (job.settled) {
          worker.job = undefined;
          this.release(worker);
        } else this.#post(worker, job);
      },
      (error: unknown) => {
        if (worker.dead || worker.job !== job) return;
        this.loaded(worker);
        worker.job = undefined;
        this.settle(job, loadFailure(job.request.base, error));
        this.release(worker);
      },
    );
  }

  #post(worker: PoolWorker, job: Job): void {
    try {
      sendChunk(worker, job);
    } catch (error) {
      const { base, items } = job.request;
      if (job.members !== undefined) this.queue.unbatch(job, uncloneableInputs(items, error));
      else this.settle(job, inputCloneError(base, items, error));
      // Not sent: the worker never sees it, so its bank stays free.
      if (worker.next === job) worker.next = undefined;
      else {
        worker.job = undefined;
        this.release(worker);
      }
      return;
    }
    job.request.onStart?.(worker.no, worker.next === job);
    const timeoutMs = job.request.timeoutMs;
    if (timeoutMs !== undefined) {
      job.timer = setTimeout(() => this.#timeout(job, timeoutMs), timeoutMs);
    }
    if (worker.job === job) this.#pipeline(worker);
  }

  #timeout(job: Job, timeoutMs: number): void {
    const worker = job.worker;
    if (job.settled || worker === undefined || worker.job !== job) return;
    const index = job.request.base;
    const hard = this.#factory.canStopBusyThread;
    // The chunk behind it has started, so this one finished in time: its reply is on its way.
    const next = worker.next;
    if (next !== undefined) {
      const started = hard
        ? !this.#revoke(worker, next, true)
        : Atomics.load(worker.header, bankAt(next.bank!) + Bank.CLAIM) === Claim.TAKEN;
      if (started) return;
    }
    this.settle(job, threadTimeout(index, timeoutMs, hard));
    this.#stop(worker, job, hard);
  }

  /**
   * Stops a job on a worker: terminates the thread, or asks the task through ctx.signal. A job
   * posted behind another is taken back if it has not started; one that has started while the
   * reply of the one before is on its way is stopped once that reply is read.
   */
  #stop(worker: PoolWorker, job: Job, hard: boolean): void {
    if (hard && this.#factory.canStopBusyThread) {
      if (job === worker.next) {
        // Taken back: the worker skips it, and says so. Else it runs now.
        if (!this.#revoke(worker, job, false)) worker.stopAfterReply = true;
        return;
      }
      // The job behind it started: this one has finished, and nothing is to be stopped.
      if (worker.next !== undefined && !this.#revoke(worker, worker.next, true)) return;
      this.retire(worker);
      this.pump();
    } else {
      // Cooperative: the task sees ctx.signal abort (read from shared memory even in a sync
      // loop); the worker stays busy, and out of the idle list, until it replies.
      if (job.bank !== undefined) {
        Atomics.store(worker.header, bankAt(job.bank) + Bank.CANCELLED, job.id);
      }
      const cancel: ToWorkerEvent = { type: "cancel", id: job.id };
      worker.events?.postMessage(cancel);
    }
  }

  forget(id: number): void {
    const release: ToWorkerEvent = { type: "release", ids: [id] };
    for (const worker of this.workers) {
      // At once, so idle workers free the memory; and with the next chunk, because the events
      // port is not ordered with the payloads.
      if (worker.shares.drop(id, false)) worker.events?.postMessage(release);
    }
  }

  protected abort(job: Job): void {
    const worker = job.worker;
    const reason = job.request.signal?.reason;
    if (worker === undefined) return this.dropQueued(job, reason);
    this.settle(job, reason);
    this.#stop(worker, job, stopsHard(job.request.signal));
  }

  protected startFailed(worker: PoolWorker, message: string): void {
    this.#onDeath(worker, { message });
  }

  protected hold(worker: PoolWorker, busy: boolean): void {
    const method = busy ? "ref" : "unref";
    worker.handle[method]?.();
    for (const port of worker.ports) (port as { ref?(): void; unref?(): void })[method]?.();
  }

  #onDeath(worker: PoolWorker, exit: ThreadExit): void {
    if (worker.dead) return;
    const wasReady = worker.ready;
    const { job, next } = worker;
    this.retire(worker, true);
    if (!wasReady) {
      // A worker that cannot start would not start on a retry either: fail what waits, unless
      // another worker is up to serve it.
      if (![...this.workers].some((w) => w.ready)) {
        this.startError = new WorkerStartError(`A worker failed to start: ${exit.message}`, {
          exitCode: exit.code,
          cause: exit.error,
        });
        this.failQueue(this.startError);
      }
    } else {
      const cause = exit.error ?? worker.fatal;
      let running = job;
      if (next !== undefined && !this.#revoke(worker, next, true)) {
        // The chunk behind started, so `job` had finished: its result died with the worker.
        if (job !== undefined && !job.settled) this.#crash(job, undefined, exit, cause);
        running = next;
      }
      if (running !== undefined && !running.settled) {
        this.#crash(running, Atomics.load(worker.header, Slot.RUNNING_INDEX), exit, cause);
      }
    }
    this.pump();
  }

  /** Fails a chunk the crash reached: at item `running`, or, undefined, after it ran. */
  #crash(job: Job, running: number | undefined, exit: ThreadExit, cause: unknown): void {
    if (job.members !== undefined) this.queue.unbatch(job, crashedBatch(job, running, exit, cause));
    else this.settle(job, crashedChunk(job, running, exit, cause));
  }

  /** Takes a worker out of the pool and stops its thread (its children first: `stopThread`). */
  protected retire(worker: PoolWorker, gone = false): void {
    if (worker.dead) return;
    this.unlist(worker);
    this.hold(worker, true);
    this.track(stopThread(worker, gone, this.options.killGraceMs ?? KILL_GRACE_MS));
    this.checkDrained();
  }
}
