/**
 * What the thread and process pools have in common: jobs (a chunk waiting for, or running on,
 * a worker) and their task ids, the queue, handing jobs to idle workers,
 * starting workers for what is left (never more than `concurrency`, never more than the work
 * queued), draining on `close()`, cancelling on `terminate()`, and waiting until every
 * worker is gone. A subclass says how to start, feed, stop and abort its kind of worker.
 *
 * @module
 */

import type { ChunkResult, StrategyName } from "./types.ts";
import type { BuiltInRequest, BuiltInStrategy } from "./_builtin.ts";
import type { TaskSpec } from "../protocol.ts";
import { moduleOf, taskKey } from "../task.ts";
import { onAbort } from "../_abort.ts";
import type { WorkerShares } from "./_shares.ts";
import { ExecutorClosedError, LoadTimeoutError } from "../errors.ts";

/** A chunk request in a pool, from `run()` until it settles. */
export interface Job<W> {
  readonly request: BuiltInRequest;
  readonly taskId: number;
  readonly resolve: (result: ChunkResult) => void;
  readonly reject: (error: unknown) => void;
  /** Chunk id, set when the job is given to a worker. */
  id: number;
  worker: W | undefined;
  settled: boolean;
  /** Removes the abort listener. */
  unlisten: () => void;
  /** The timeout's timer, while it runs on a worker with `timeoutMs`. */
  timer: ReturnType<typeof setTimeout> | undefined;
}

/** Small numeric ids for tasks, so a worker prepares each task once and messages stay short. */
export class TaskIds {
  readonly #byKey = new Map<string, number>();
  readonly #bySpec = new WeakMap<TaskSpec, number>();

  /** The id of `task`; equal tasks from different call sites share one. */
  of(task: TaskSpec): number {
    // Specs are cached per task by the executor, so the object is the cheap key.
    let id = this.#bySpec.get(task);
    if (id !== undefined) return id;
    const key = taskKey(task);
    id = this.#byKey.get(key);
    if (id === undefined) {
      id = this.#byKey.size + 1;
      this.#byKey.set(key, id);
    }
    this.#bySpec.set(task, id);
    return id;
  }
}

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
  readonly shares: WorkerShares;
  /** Tasks (items) given to it so far, for `maxTasksPerWorker`. */
  tasks: number;
  /** Its heap in use after its last chunk, in bytes, when `idleMemoryLimitMb` asks; else 0. */
  heapBytes: number;
  /** While it starts, or loads a task's module: the timer that bounds the wait. */
  wait: ReturnType<typeof setTimeout> | undefined;
}

/** A pool of workers of one kind. */
export abstract class Pool<W extends PoolMember> implements BuiltInStrategy {
  abstract readonly name: StrategyName;
  readonly concurrency: number;
  protected readonly options: PoolOptions;
  protected readonly workers: Set<W> = new Set();
  protected readonly idle: W[] = [];
  protected readonly queue: Job<W>[] = [];
  protected readonly taskIds: TaskIds = new TaskIds();
  /** Workers started but not ready yet. */
  protected starting = 0;
  protected nextChunk = 1;
  protected closed = false;
  /** Stops under way (a thread terminating, a process exiting); shutdown waits for them. */
  readonly #exiting = new Set<Promise<unknown>>();
  #drained: (() => void) | undefined;
  #closing: Promise<void> | undefined;
  #nextNo = 1;
  /** Most workers alive at once so far: a start below it replaces one. */
  #peak = 0;
  #respawns = 0;
  #recycled = 0;
  /** Recycled workers not replaced yet: their replacements are not respawns. */
  #owed = 0;

  /**
   * @param maxWorkers Most workers the pool runs at once.
   * @param options Bounds, caps and recycling.
   */
  constructor(maxWorkers: number, options: PoolOptions = {}) {
    this.concurrency = maxWorkers;
    this.options = options;
  }

  get live(): number {
    return this.workers.size;
  }

  get respawns(): number {
    return this.#respawns;
  }

  /** Workers replaced because of `maxTasksPerWorker` or `idleMemoryLimitMb`. */
  get recycled(): number {
    return this.#recycled;
  }

  /**
   * Queues a chunk for the next idle worker. An aborted signal rejects at once; a later abort
   * calls `abort(job)`.
   */
  run(request: BuiltInRequest): Promise<ChunkResult> {
    if (this.closed) return Promise.reject(new ExecutorClosedError());
    const signal = request.signal;
    if (signal?.aborted) return Promise.reject(signal.reason);
    return new Promise<ChunkResult>((resolve, reject) => {
      const job: Job<W> = {
        request,
        taskId: this.taskIds.of(request.task),
        resolve,
        reject,
        id: 0,
        worker: undefined,
        settled: false,
        unlisten: noop,
        timer: undefined,
      };
      job.unlisten = onAbort(signal, () => this.abort(job));
      this.queue.push(job);
      this.pump();
    });
  }

  abstract forget(id: number): void;

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
  protected settle(job: Job<W>, error: unknown, result?: ChunkResult): void {
    if (job.settled) return;
    job.settled = true;
    clearTimeout(job.timer);
    job.unlisten();
    if (result !== undefined) job.resolve(result);
    else job.reject(error);
  }

  /** Hands queued jobs to idle workers, and starts workers for what is left. */
  protected pump(): void {
    while (this.queue.length > 0 && this.idle.length > 0) {
      this.#give(this.idle.pop()!, this.queue.shift()!);
    }
    let wanted = this.queue.length - this.starting;
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
      this.#recycled++;
      this.#owed++;
      this.retire(worker);
      this.pump();
      return;
    }
    const next = this.queue.shift();
    if (next !== undefined) this.#give(worker, next);
    else {
      this.idle.push(worker);
      this.hold(worker, false);
      if (this.closed) this.checkDrained();
    }
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
    this.#stopWaiting(worker);
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
    if (this.workers.size < this.#peak) {
      if (this.#owed > 0) this.#owed--;
      else this.#respawns++;
    }
    return this.#nextNo++;
  }

  /** Fails every queued job with `error` (no worker can be started for them). */
  protected failQueue(error: unknown): void {
    for (const job of this.queue.splice(0)) this.settle(job, error);
    this.checkDrained();
  }

  /**
   * A worker started: it counts as live, and as starting until it is ready, which it must be
   * within `loadTimeoutMs`.
   */
  protected enlist(worker: W): void {
    this.workers.add(worker);
    this.#peak = Math.max(this.#peak, this.workers.size);
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
  }

  /** A stop under way: shutdown waits for it. */
  protected track(stopping: Promise<unknown>): void {
    this.#exiting.add(stopping);
    const done = (): void => void this.#exiting.delete(stopping);
    stopping.then(done, done);
  }

  #busy(): boolean {
    if (this.queue.length > 0) return true;
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
    for (const job of this.queue.splice(0)) this.settle(job, error);
    for (const worker of this.workers) {
      if (worker.job !== undefined) this.settle(worker.job as Job<W>, error);
    }
    this.#drained?.();
    return this.#shutdown();
  }

  async #shutdown(): Promise<void> {
    for (const worker of [...this.workers]) this.retire(worker);
    while (this.#exiting.size > 0) await Promise.all(this.#exiting);
  }
}

function noop(): void {}
