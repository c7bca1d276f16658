/**
 * What the thread and process pools have in common: jobs (a chunk waiting for, or running on,
 * a worker) and their task ids, the queue, handing jobs to idle workers,
 * starting workers for what is left (never more than `concurrency`, never more than the work
 * queued), draining on `close()`, cancelling on `terminate()`, and waiting until every
 * worker is gone. A subclass says how to start, feed, stop and abort its kind of worker. The
 * warm start on request is a layer above (`WarmPool`, `_warm_pool.ts`); what the pool counts of
 * its workers' lives is in `_pool_counts.ts`.
 *
 * @module
 */

import type { ChunkResult, StrategyName } from "./types.ts";
import type { BuiltInRequest, BuiltInResult, BuiltInStrategy } from "./_builtin.ts";
import { moduleOf } from "../task.ts";
import type { Job, JobEnd } from "./_queue.ts";
import { JobQueue, newJob, settleJob, TaskIds } from "./_queue.ts";
import { onAbort } from "../_abort.ts";
import type { WorkerShares } from "./_shares.ts";
import { ExecutorClosedError, LoadTimeoutError } from "../errors.ts";
import { WorkerCounts } from "./_pool_counts.ts";

export type { Job } from "./_queue.ts";

/** What every pool is started with (see `ParallelConfig` for each). */
export interface PoolOptions {
  /** V8 heap cap per worker in MB, where the runtime has one. */
  maxMemoryMb?: number;
  /** Longest a worker may take to start, and a task's module to load in it. */
  loadTimeoutMs?: number;
  /** SIGTERM to SIGKILL, for processes. */
  killGraceMs?: number;
  /** Replace a worker once it has run this many tasks. */
  maxTasksPerWorker?: number;
  /** Replace a worker whose heap in use is past this after a chunk. */
  idleMemoryLimitMb?: number;
}

/** What the pool reads of its workers. */
export interface PoolMember {
  /** Its number in the pool, for telemetry. */
  readonly no: number;
  ready: boolean;
  dead: boolean;
  /** The job it is running; kept after a soft cancel until the worker replies. */
  job: Job<PoolMember> | undefined;
  /** A job posted behind `job`, where the pool pipelines (threads). */
  next?: Job<PoolMember> | undefined;
  readonly shares: WorkerShares;
  /** Tasks (items) given to it so far, for `maxTasksPerWorker`. */
  tasks: number;
  /** Its heap in use after its last chunk, in bytes, when `idleMemoryLimitMb` asks; else 0. */
  heapBytes: number;
  /** While it starts, or loads a task's module: the timer that bounds the wait. */
  wait: ReturnType<typeof setTimeout> | undefined;
  /** Called once it leaves the pool (for `warmup()`, which must not wait on a dead worker). */
  onGone?: (() => void)[];
  /** When it was started (`performance.now()`), until it is ready. */
  bornAt?: number;
}

/** A pool of workers of one kind. */
export abstract class Pool<W extends PoolMember> implements BuiltInStrategy {
  abstract readonly name: StrategyName;
  readonly concurrency: number;
  protected readonly options: PoolOptions;
  protected readonly workers: Set<W> = new Set();
  protected readonly idle: W[] = [];
  /** Jobs waiting for a worker (`queue.coalesce`: the workers run batches of submits). */
  protected readonly queue: JobQueue<W>;
  protected readonly taskIds: TaskIds = new TaskIds();
  /** Workers started but not ready yet. */
  protected starting = 0;
  protected nextChunk = 1;
  protected closed = false;
  /** Stops under way (a thread terminating, a process exiting); shutdown waits for them. */
  readonly #exiting = new Set<Promise<unknown>>();
  #drained: (() => void) | undefined;
  #closing: Promise<void> | undefined;
  readonly #counts = new WorkerCounts();
  /** Callers of `allStarted()` waiting until no worker is starting. */
  #whenStarted: (() => void)[] = [];
  /** Why the last worker that died before it was ready did not start. */
  protected startError: unknown;

  /**
   * @param maxWorkers Most workers the pool runs at once.
   * @param options Bounds, caps and recycling.
   */
  constructor(maxWorkers: number, options: PoolOptions = {}) {
    this.concurrency = maxWorkers;
    this.options = options;
    this.queue = new JobQueue(maxWorkers);
  }

  get live(): number {
    return this.workers.size;
  }

  /** How long its workers took to start, spawn to ready, in ms (see `WorkerCounts`). */
  get startMs(): number | undefined {
    return this.#counts.startMs;
  }

  get respawns(): number {
    return this.#counts.respawns;
  }

  /** Workers replaced because of `maxTasksPerWorker` or `idleMemoryLimitMb`. */
  get recycled(): number {
    return this.#counts.recycled;
  }

  /**
   * Queues a chunk for the next idle worker. An aborted signal rejects at once; a later abort
   * calls `abort(job)`.
   */
  run(request: BuiltInRequest): Promise<ChunkResult> {
    return new Promise<ChunkResult>((resolve, reject) => this.enqueue(request, resolve, reject));
  }

  /**
   * `run()` for a caller that makes its own promise (a submit: one promise instead of two).
   * With `end`, the job resolves with its one value and `end` counts it (see `JobEnd`).
   */
  enqueue(
    request: BuiltInRequest,
    resolve: (result: BuiltInResult) => void,
    reject: (error: unknown) => void,
    end?: JobEnd,
    pin?: object,
  ): void {
    const job = newJob<W>(request, this.taskIds.of(request.task), resolve, reject);
    if (end !== undefined) {
      job.end = end;
      job.pin = pin;
    }
    if (this.closed) return settleJob(job, new ExecutorClosedError());
    if (request.signal?.aborted) return settleJob(job, request.signal.reason);
    if (request.signal !== undefined) job.unlisten = onAbort(request.signal, () => this.abort(job));
    this.queue.push(job);
    this.pump();
  }

  abstract forget(id: number): void;

  /** Resolves once no worker is starting (at once, if none is). */
  protected allStarted(): Promise<void> {
    if (this.starting === 0) return Promise.resolve();
    return new Promise<void>((resolve) => this.#whenStarted.push(resolve));
  }

  /** Starts one worker (calling `enlist`). */
  protected abstract spawn(): void;
  /** Gives `job` to an idle, ready `worker`. */
  protected abstract assign(worker: W, job: Job<W>): void;
  /** Takes a worker out of the pool and stops it (calling `unlist` and `track`). */
  protected abstract retire(worker: W): void;
  /** The job's signal aborted: drop it from the queue, or stop it on its worker. */
  protected abstract abort(job: Job<W>): void;
  /** A worker did not start in time: fail what waits for one, as for a worker that died starting. */
  protected abstract startFailed(worker: W, message: string): void;
  /**
   * Lets an idle worker's thread or process not keep the program alive (`busy` false), or
   * makes it count again (`busy` true), where the runtime allows it.
   */
  protected abstract hold(worker: W, busy: boolean): void;

  /** Settles a job once: with `result` when given, else rejecting with `error`. */
  protected settle(job: Job<W>, error: unknown, result?: BuiltInResult): void {
    settleJob(job, error, result);
  }

  /** Hands queued jobs to idle workers, and starts workers for what is left. */
  protected pump(): void {
    while (this.queue.waiting > 0 && this.idle.length > 0) {
      this.#give(this.idle.pop()!, this.queue.take()!);
    }
    let wanted = this.queue.waiting - this.starting;
    while (wanted-- > 0 && this.workers.size < this.concurrency) this.spawn();
    this.checkDrained();
  }

  /**
   * A worker is free again: replace it if it is worn (`maxTasksPerWorker`,
   * `idleMemoryLimitMb`), else give it the next job, or park it.
   */
  protected release(worker: W): void {
    if (worker.dead) return;
    if (this.#worn(worker)) {
      this.#counts.recycle();
      this.retire(worker);
      this.pump();
      return;
    }
    const next = this.queue.take() ?? this.steal(worker);
    if (next !== undefined) this.#give(worker, next);
    else {
      this.idle.push(worker);
      this.hold(worker, false);
      if (this.closed) this.checkDrained();
    }
  }

  /**
   * A job to post behind the one `worker` runs (pipelining), if one waits that `accept`s, and
   * enough wait that no worker would be left without work by it: at the tail of a call, the
   * last chunks go to workers that are free rather than behind busy ones.
   */
  protected takeNext(worker: W, accept: (job: Job<W>) => boolean): Job<W> | undefined {
    // Every idle worker still gets a job of its own, and enough wait to go round.
    if (this.queue.waiting < Math.max(this.concurrency, this.idle.length + 1)) return undefined;
    const { maxTasksPerWorker, idleMemoryLimitMb } = this.options;
    // A worker that is to be replaced after a chunk gets one chunk at a time.
    if (maxTasksPerWorker !== undefined || idleMemoryLimitMb !== undefined) return undefined;
    const job = this.queue.take(accept);
    if (job !== undefined) worker.tasks += job.request.items.length;
    return job;
  }

  /**
   * A job for `worker`, free while nothing is queued, taken from another worker that holds it
   * but has not started it (pipelining); pools that do not pipeline have none.
   */
  protected steal(_worker: W): Job<W> | undefined {
    return undefined;
  }

  /** A queued job's signal aborted: it settles now, and is skipped when it is reached. */
  protected dropQueued(job: Job<W>, reason: unknown): void {
    this.queue.drop(job, reason);
  }

  #give(worker: W, job: Job<W>): void {
    worker.tasks += job.request.items.length;
    this.hold(worker, true);
    this.assign(worker, job);
  }

  #worn(worker: W): boolean {
    const { maxTasksPerWorker, idleMemoryLimitMb } = this.options;
    return (maxTasksPerWorker !== undefined && worker.tasks >= maxTasksPerWorker) ||
      (idleMemoryLimitMb !== undefined && worker.heapBytes > idleMemoryLimitMb * 1024 * 1024);
  }

  /** A worker became ready: it no longer counts as starting. */
  protected ready(worker: W): void {
    worker.ready = true;
    this.starting--;
    if (worker.bornAt !== undefined) this.#counts.started(performance.now() - worker.bornAt);
    worker.bornAt = undefined;
    this.#stopWaiting(worker);
    this.#checkStarted();
  }

  #checkStarted(): void {
    if (this.starting > 0 || this.#whenStarted.length === 0) return;
    for (const resolve of this.#whenStarted.splice(0)) resolve();
  }

  /**
   * `job`'s task is loading on `worker` (its first use there): past `loadTimeoutMs` the job
   * fails with `LoadTimeoutError` and the worker, stuck in the import, is stopped. The bound
   * holds even after the job settled otherwise (a soft cancel), so the worker never stays stuck.
   */
  protected loading(worker: W, job: Job<W>): void {
    const limit = this.options.loadTimeoutMs;
    if (limit === undefined) return;
    this.#stopWaiting(worker);
    worker.wait = setTimeout(() => {
      worker.wait = undefined;
      // Only the load this timer was armed for: the worker may have moved on since.
      if (worker.dead || worker.job !== job) return;
      this.settle(job, new LoadTimeoutError(job.request.base, moduleOf(job.request.task), limit));
      this.retire(worker);
      this.pump();
    }, limit);
  }

  /** The task `loading()` waited for has loaded (or failed to). */
  protected loaded(worker: W): void {
    this.#stopWaiting(worker);
  }

  #stopWaiting(worker: W): void {
    clearTimeout(worker.wait);
    worker.wait = undefined;
  }

  /** The number for a worker about to start; counts it as a respawn if it replaces one. */
  protected nextNumber(): number {
    return this.#counts.nextNumber(this.workers.size);
  }

  /** Fails every queued job with `error` (no worker can be started for them). */
  protected failQueue(error: unknown): void {
    this.queue.fail(error);
    this.checkDrained();
  }

  /**
   * A worker started: it counts as live, and as starting until it is ready, which it must be
   * within `loadTimeoutMs`.
   */
  protected enlist(worker: W): void {
    worker.bornAt = performance.now();
    this.workers.add(worker);
    this.#counts.enlisted(this.workers.size);
    this.starting++;
    const limit = this.options.loadTimeoutMs;
    if (limit !== undefined) {
      worker.wait = setTimeout(() => {
        worker.wait = undefined;
        if (!worker.ready && !worker.dead) {
          this.startFailed(worker, `it did not start within ${limit} ms (loadTimeoutMs)`);
        }
      }, limit);
    }
  }

  /** Takes a worker out of the lists (the subclass stops it). */
  protected unlist(worker: W): void {
    this.#stopWaiting(worker);
    worker.dead = true;
    this.workers.delete(worker);
    const at = this.idle.indexOf(worker);
    if (at >= 0) this.idle.splice(at, 1);
    if (!worker.ready) this.starting--;
    for (const resolve of worker.onGone?.splice(0) ?? []) resolve();
    this.#checkStarted();
  }

  /** A stop under way: shutdown waits for it. */
  protected track(stopping: Promise<unknown>): void {
    this.#exiting.add(stopping);
    const done = (): void => void this.#exiting.delete(stopping);
    stopping.then(done, done);
  }

  #busy(): boolean {
    if (this.queue.waiting > 0) return true;
    for (const worker of this.workers) if (worker.job !== undefined) return true;
    return false;
  }

  protected checkDrained(): void {
    if (this.#drained !== undefined && !this.#busy()) this.#drained();
  }

  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.closed = true;
      if (this.#busy()) await new Promise<void>((resolve) => (this.#drained = resolve));
      await this.#shutdown();
    })();
    return this.#closing;
  }

  terminate(): Promise<void> {
    this.closed = true;
    const error = new ExecutorClosedError(
      "The executor was terminated while this call was running",
    );
    this.queue.fail(error);
    for (const worker of this.workers) {
      if (worker.job !== undefined) this.settle(worker.job as Job<W>, error);
      if (worker.next !== undefined) this.settle(worker.next as Job<W>, error);
    }
    this.#drained?.();
    return this.#shutdown();
  }

  async #shutdown(): Promise<void> {
    for (const worker of [...this.workers]) this.retire(worker);
    while (this.#exiting.size > 0) await Promise.all(this.#exiting);
  }
}
