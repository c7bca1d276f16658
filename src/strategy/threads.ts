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
 * Every job is settled by the pool itself, never by waiting on comlink, which would hang if
 * the worker died mid-call. A worker that dies fails only the job it was running and is
 * replaced on demand; a worker that dies before it is ready fails the queued jobs with
 * `WorkerStartError` (retrying would only fail again).
 *
 * @module
 */

import { releaseProxy, wrap } from "comlink";
import type {
  EachFailure,
  FromWorkerEvent,
  InitMessage,
  StartMessage,
  TaskSpec,
  ToWorkerEvent,
  WorkerControl,
  WrappedPayload,
} from "../protocol.ts";
import { Payload, Shares, Slot, SLOTS, STATE_BYTES } from "../protocol.ts";
import { newWorker, stopChildren } from "./_thread_worker.ts";
import type { PoolWorker } from "./_thread_worker.ts";
import type { ThreadExit, ThreadFactory } from "../runtime/mod.ts";
import { workerEntry } from "../runtime/_entries.ts";
import { KILL_GRACE_MS } from "../runtime/_kill.ts";
import type { Job as Job_ } from "./_pool.ts";
import { Pool } from "./_pool.ts";
import { stopsHard } from "../_abort.ts";
import type { PoolOptions } from "./_pool.ts";
import { seedWords } from "../worker/seed.js";
import { TaskTimeoutError, WorkerCrashedError, WorkerStartError } from "../errors.ts";
import { cloneError, inputCloneError, loadFailure, reviveError, taskFailure } from "../_revive.ts";
import { findUncloneable } from "../worker/run_task.js";

const ENTRY = new URL("../worker/thread_entry.js", import.meta.url);

type Job = Job_<PoolWorker>;

/** Options of the thread pool: `maxMemoryMb` is Node's `resourceLimits` (the executor warns elsewhere). */
export type ThreadPoolOptions = PoolOptions;

/** Runs chunks on a pool of worker threads. */
export class ThreadPool extends Pool<PoolWorker> {
  readonly name = "threads";
  protected override coalesce = true;
  readonly #factory: ThreadFactory;

  /**
   * @param maxWorkers Most threads the pool runs at once.
   * @param factory The runtime's thread factory.
   * @param options Memory cap, bounds and recycling.
   */
  constructor(maxWorkers: number, factory: ThreadFactory, options: ThreadPoolOptions = {}) {
    super(maxWorkers, options);
    this.#factory = factory;
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
    const events = new MessageChannel();
    const control = new MessageChannel();
    worker.ports = [events.port1, control.port1];
    worker.events = events.port1;
    worker.events.onmessage = (event: MessageEvent<FromWorkerEvent>) =>
      this.#onEvent(worker, event.data);
    worker.control = wrap<WorkerControl>(control.port1);
    const init: InitMessage = {
      type: "init",
      state: worker.header.buffer as SharedArrayBuffer,
      events: events.port2,
      control: control.port2,
      heap: this.options.idleMemoryLimitMb !== undefined,
    };
    worker.handle.postMessage(init, [events.port2, control.port2]);
    this.ready(worker);
    this.release(worker);
  }

  /** Reads what the worker wrote of itself with its reply. */
  #replied(worker: PoolWorker): void {
    if (this.options.idleMemoryLimitMb !== undefined) {
      worker.heapBytes = worker.header[Slot.HEAP_KB] * 1024;
    }
  }

  /** A result payload: what it belongs to is in the shared header. */
  #onResult(worker: PoolWorker, payload: unknown): void {
    if (worker.dead) return;
    const job = worker.job;
    worker.job = undefined;
    this.#replied(worker);
    const id = worker.header[Slot.DONE_ID];
    if (job !== undefined && job.id === id && !job.settled) {
      const ms = job.request.timed ? worker.runMs[0] : NaN;
      const kind = worker.header[Slot.DONE_PAYLOAD];
      if (kind === Payload.EACH) {
        const reply = payload as EachReply;
        this.settle(job, undefined, { values: reply.values, ms, failures: eachFailures(reply) });
      } else {
        const values = kind === Payload.ONE ? [payload] : payload as unknown[];
        this.settle(job, undefined, { values, ms });
      }
    }
    this.release(worker);
  }

  #onEvent(worker: PoolWorker, event: FromWorkerEvent): void {
    // The answer to a graceful stop comes from a worker already out of the pool.
    if (event.type === "stopped") return worker.stopped?.();
    if (worker.dead) return;
    switch (event.type) {
      case "fail":
      case "cancelled": {
        const job = worker.job;
        worker.job = undefined;
        this.#replied(worker);
        if (job !== undefined && job.id === event.id && !job.settled) {
          this.settle(
            job,
            event.type === "fail" ? this.#failure(event) : job.request.signal?.reason,
          );
        }
        this.release(worker);
        return;
      }
      case "fatal":
        worker.fatal = reviveError(event.error);
        this.#onDeath(worker, {
          error: worker.fatal,
          message: worker.fatal instanceof Error
            ? `uncaught ${worker.fatal.name}: ${worker.fatal.message}`
            : `uncaught ${String(worker.fatal)}`,
        });
        return;
      case "exit":
        this.#onDeath(worker, {
          code: event.code,
          message: `the worker called exit with code ${event.code}`,
        });
        return;
    }
  }

  #failure(message: Extract<FromWorkerEvent, { type: "fail" }>): unknown {
    const cause = reviveError(message.error);
    if (message.clone !== undefined) {
      return cloneError("result", message.index, message.clone, cause);
    }
    return taskFailure(message.index, cause, message.error.capturedName);
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
    const { base, items, shared, each } = job.request;
    const header = worker.header;
    const one = items.length === 1 && each === undefined;
    const delivery = worker.shares.plan(shared);
    // Plain stores: the postMessage below orders them before the worker reads them, and an
    // atomic store is a full fence on x86, four of them a visible part of a round trip.
    header[Slot.RUN_ID] = job.id;
    header[Slot.RUN_TASK] = job.taskId;
    header[Slot.RUN_BASE] = base;
    header[Slot.RUN_PAYLOAD] = one ? Payload.ONE : each ? Payload.EACH : Payload.MANY;
    header[Slot.RUN_TIMED] = job.request.timed ? 1 : 0;
    header[Slot.RUN_SHARED] = (shared === undefined ? 0 : Shares.REFS) |
      (delivery === undefined ? 0 : Shares.WRAPPED);
    if (job.request.seed) {
      [header[Slot.RUN_SEED_HIGH], header[Slot.RUN_SEED_LOW]] = seedWords(job.request.seed);
    } else header[Slot.RUN_SEED_HIGH] = header[Slot.RUN_SEED_LOW] = 0;
    const payload = one ? items[0] : each ? { items, seeds: each.seeds } : items;
    try {
      if (delivery === undefined) worker.handle.postMessage(payload);
      else {
        const wrapped: WrappedPayload = {
          shares: delivery.shares,
          forget: delivery.forget,
          payload,
        };
        worker.handle.postMessage(wrapped);
        worker.shares.sent(delivery);
      }
    } catch (error) {
      worker.job = undefined;
      if (job.members !== undefined) this.unbatch(job, uncloneableInputs(items, error));
      else this.settle(job, inputCloneError(base, items, error));
      this.release(worker);
      return;
    }
    job.request.onStart?.(worker.no);
    const timeoutMs = job.request.timeoutMs;
    if (timeoutMs !== undefined) {
      job.timer = setTimeout(() => this.#timeout(job, timeoutMs), timeoutMs);
    }
  }

  #timeout(job: Job, timeoutMs: number): void {
    const worker = job.worker;
    if (job.settled || worker === undefined || worker.job !== job) return;
    const index = job.request.base;
    const hard = this.#factory.canStopBusyThread;
    this.settle(
      job,
      new TaskTimeoutError(
        index,
        timeoutMs,
        `Task ${index} ran past its timeout of ${timeoutMs} ms; ` +
          (hard
            ? "its thread was terminated"
            : "a busy thread cannot be stopped on Deno, so the task was asked to stop through " +
              "ctx.signal and keeps its thread until it returns. Only the processes strategy " +
              "can hard-stop a busy task"),
      ),
    );
    this.#stop(worker, job, hard);
  }

  /** Stops the job a worker runs: terminates the thread, or asks the task through ctx.signal. */
  #stop(worker: PoolWorker, job: Job, hard: boolean): void {
    if (hard && this.#factory.canStopBusyThread) {
      this.retire(worker);
      this.pump();
    } else {
      // Cooperative: the task sees ctx.signal abort (read from shared memory even in a sync
      // loop); the worker stays busy, and out of the idle list, until it replies.
      Atomics.store(worker.header, Slot.CANCELLED, job.id);
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
    const job = worker.job;
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
    } else if (job !== undefined && !job.settled && job.members !== undefined) {
      const running = Atomics.load(worker.header, Slot.RUNNING_INDEX);
      this.unbatch(job, crashedBatch(job, running, exit, exit.error ?? worker.fatal));
    } else if (job !== undefined && !job.settled) {
      const { base, items } = job.request;
      const running = Atomics.load(worker.header, Slot.RUNNING_INDEX);
      const index = running >= base && running < base + items.length ? running : base;
      this.settle(
        job,
        new WorkerCrashedError(`The worker running task ${index} crashed: ${exit.message}`, {
          index,
          exitCode: exit.code,
          cause: exit.error ?? worker.fatal,
        }),
      );
    }
    this.pump();
  }

  /**
   * Takes a worker out of the pool and stops its thread. A thread that started child processes
   * (a nested pool) is first asked to stop them, so they are reaped: once terminated, it could
   * not, and they would stay behind as zombies. It gets their kill grace and a little more; a
   * thread busy in synchronous code cannot answer, and is terminated after that.
   */
  protected retire(worker: PoolWorker, gone = false): void {
    if (worker.dead) return;
    this.unlist(worker);
    this.hold(worker, true);
    // A thread that already died cannot answer, nor reap anything any more.
    const children = !gone && worker.ready && Atomics.load(worker.header, Slot.CHILDREN) > 0;
    const stopping = children
      ? stopChildren(worker, this.options.killGraceMs ?? KILL_GRACE_MS)
      : Promise.resolve();
    this.track(
      stopping.then(() => {
        worker.control?.[releaseProxy]();
        for (const port of worker.ports) port.close();
        return worker.handle.terminate();
      }).catch(() => {}),
    );
    this.checkDrained();
  }
}

/** A batch's reply when some of its items failed (see `Payload.EACH`). */
interface EachReply {
  values: unknown[];
  failures: EachFailure[];
}

/** The errors of a batch's failed items, by position. */
function eachFailures(reply: EachReply): Map<number, unknown> {
  const failures = new Map<number, unknown>();
  for (const { at, error, clone } of reply.failures) {
    const cause = reviveError(error);
    failures.set(
      at,
      clone !== undefined
        ? cloneError("result", 0, clone, cause)
        : taskFailure(0, cause, error.capturedName),
    );
  }
  return failures;
}

/** The submits of a batch whose input could not be sent, each with its own error. */
function uncloneableInputs(items: unknown[], error: unknown): Map<number, unknown> {
  const failed = new Map<number, unknown>();
  for (let k = 0; k < items.length; k++) {
    const found = findUncloneable(items[k], "input");
    if (found !== undefined) failed.set(k, cloneError("input", 0, found, error));
  }
  // The clone failed, yet no single item is to blame: fail them all rather than retry forever.
  if (failed.size === 0) { for (let k = 0; k < items.length; k++) failed.set(k, error); }
  return failed;
}

/**
 * What a crash did to a batch: the submit that was running failed with the crash, those
 * before it ran but lost their results with the worker; those after it never ran.
 */
function crashedBatch(
  job: Job,
  running: number,
  exit: ThreadExit,
  cause: unknown,
): Map<number, unknown> {
  const members = job.members!;
  const at = running >= 0 && running < members.length ? running : 0;
  const failed = new Map<number, unknown>();
  for (let k = 0; k <= at; k++) {
    failed.set(
      k,
      new WorkerCrashedError(
        k === at
          ? `The worker running task 0 crashed: ${exit.message}`
          : `The worker crashed (${exit.message}) after task 0 ran, before its result came back: ` +
            `it ran in one batch with the submit whose task crashed the worker`,
        { index: 0, exitCode: exit.code, cause },
      ),
    );
  }
  return failed;
}
