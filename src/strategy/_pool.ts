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
import type { BuiltInRequest, BuiltInResult, BuiltInStrategy } from "./_builtin.ts";
import { Deque } from "../_deque.ts";
import type { TaskSpec } from "../protocol.ts";
import { moduleOf, taskKey } from "../task.ts";
import { onAbort } from "../_abort.ts";
import type { WorkerShares } from "./_shares.ts";
import { ExecutorClosedError, LoadTimeoutError, WorkerStartError } from "../errors.ts";

/**
 * Most submits one batch carries. Past a few hundred trivial items the round trip is a
 * negligible share of a batch, and smaller batches spread the tail of a burst evenly.
 */
export const MAX_BATCH = 1024;

/** A chunk request in a pool, from `run()` until it settles. */
export interface Job<W> {
  readonly request: BuiltInRequest;
  readonly taskId: number;
  readonly resolve: (result: BuiltInResult) => void;
  readonly reject: (error: unknown) => void;
  /** Chunk id, set when the job is given to a worker. */
  id: number;
  worker: W | undefined;
  settled: boolean;
  /** Removes the abort listener. */
  unlisten: () => void;
  /** The timeout's timer, while it runs on a worker with `timeoutMs`. */
  timer: ReturnType<typeof setTimeout> | undefined;
  /** For a batch of coalesced submits (see `Pool.take`): the submits, in the batch's order. */
  members?: Job<W>[];
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
  /** Jobs waiting for a worker; an aborted one stays until it is reached, and is skipped. */
  protected readonly queue: Deque<Job<W>> = new Deque();
  /** Whether queued submits of one task go to a worker together (the worker supports `each`). */
  protected coalesce = false;
  /** Queued jobs not settled yet. */
  #waiting = 0;
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
  /** `warmup()` calls waiting until no worker is starting. */
  #whenStarted: (() => void)[] = [];
  /** Why the last worker that died before it was ready did not start. */
  protected startError: unknown;
  #startMs: number | undefined;
  #starts = 0;

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

  /**
   * How long its workers took to start, from spawn to ready, in ms: the mean of every start
   * so far, or `undefined` before the first worker was ready.
   */
  get startMs(): number | undefined {
    return this.#startMs;
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
    return new Promise<ChunkResult>((resolve, reject) => this.enqueue(request, resolve, reject));
  }

  /** `run()` for a caller that makes its own promise (a submit: one promise instead of two). */
  enqueue(
    request: BuiltInRequest,
    resolve: (result: BuiltInResult) => void,
    reject: (error: unknown) => void,
  ): void {
    if (this.closed) return reject(new ExecutorClosedError());
    if (request.signal?.aborted) return reject(request.signal.reason);
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
    if (request.signal !== undefined) job.unlisten = onAbort(request.signal, () => this.abort(job));
    this.queue.push(job);
    this.#waiting++;
    this.pump();
  }

  abstract forget(id: number): void;

  /**
   * Starts every worker up to `concurrency` and waits until each is ready; then loads `tasks`
   * in each, where the pool can (`preload`). A second call while the first runs, or after,
   * starts nothing more: it waits for the same workers.
   *
   * @throws {ExecutorClosedError} If the pool is closed.
   * @throws {WorkerStartError} If no worker could start.
   */
  async warmup(tasks: readonly TaskSpec[] = []): Promise<void> {
    if (this.closed) throw new ExecutorClosedError();
    while (this.workers.size < this.concurrency) {
      const before = this.workers.size;
      this.spawn();
      if (this.workers.size === before) break; // It could not even be started.
    }
    if (this.starting > 0) await new Promise<void>((resolve) => this.#whenStarted.push(resolve));
    const ready = [...this.workers].filter((worker) => worker.ready);
    if (ready.length === 0) {
      if (this.closed) throw new ExecutorClosedError();
      throw this.startError ?? new WorkerStartError("No worker of the pool could start");
    }
    await Promise.all(ready.flatMap((worker) => tasks.map((task) => this.#preload(worker, task))));
  }

  /** Loads `task` in `worker`, bounded by `loadTimeoutMs`; a worker that dies meanwhile is skipped. */
  async #preload(worker: W, task: TaskSpec): Promise<void> {
    const id = this.taskIds.of(task);
    let timer: ReturnType<typeof setTimeout> | undefined;
    let timedOut = false;
    const gone = new Promise<void>((resolve) => (worker.onGone ??= []).push(resolve));
    const limit = this.options.loadTimeoutMs;
    if (limit !== undefined) {
      timer = setTimeout(() => {
        timedOut = true;
        this.retire(worker); // Stuck in the import: it would serve nothing.
        this.pump();
      }, limit);
    }
    try {
      await Promise.race([this.preload(worker, id, task), gone]);
    } finally {
      clearTimeout(timer);
    }
    if (timedOut) throw new LoadTimeoutError(0, moduleOf(task), limit!);
  }

  /** Loads task `id` in `worker` ahead of its first chunk; pools that cannot, resolve. */
  protected preload(_worker: W, _id: number, _task: TaskSpec): Promise<void> {
    return Promise.resolve();
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
    if (job.settled) return;
    job.settled = true;
    clearTimeout(job.timer);
    job.unlisten();
    if (result !== undefined) job.resolve(result);
    else job.reject(error);
  }

  /** Hands queued jobs to idle workers, and starts workers for what is left. */
  protected pump(): void {
    while (this.#waiting > 0 && this.idle.length > 0) {
      this.#give(this.idle.pop()!, this.#take()!);
    }
    let wanted = this.#waiting - this.starting;
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
    const next = this.#take();
    if (next !== undefined) this.#give(worker, next);
    else {
      this.idle.push(worker);
      this.hold(worker, false);
      if (this.closed) this.checkDrained();
    }
  }

  /**
   * The next queued job, skipping aborted ones. Where the pool coalesces, a submit takes the
   * submits of the same task queued right behind it along, as one batch: a share of what
   * waits (so the tail of a burst still spreads over every worker), at most `MAX_BATCH`. A
   * submit that finds an idle worker goes alone, at once: nothing waits for company.
   */
  #take(): Job<W> | undefined {
    let first: Job<W> | undefined;
    while (first === undefined || first.settled) {
      first = this.queue.shift();
      if (first === undefined) return undefined;
    }
    this.#waiting--;
    if (!this.coalesce || !coalescable(first.request) || this.#waiting === 0) return first;
    const more = Math.min(MAX_BATCH - 1, Math.ceil(this.#waiting / (2 * this.concurrency)));
    const members = [first];
    while (members.length <= more) {
      const next = this.queue.peek();
      if (next === undefined) break;
      if (next.settled) {
        this.queue.shift();
        continue;
      }
      if (next.taskId !== first.taskId || !coalescable(next.request)) break;
      this.queue.shift();
      this.#waiting--;
      members.push(next);
    }
    return members.length === 1 ? first : this.#batch(members);
  }

  /** One job carrying `members`, each settled on its own when the batch settles. */
  #batch(members: Job<W>[]): Job<W> {
    const items = new Array<unknown>(members.length);
    let seeds: (bigint | undefined)[] | undefined;
    let timed = false;
    let started: ((no: number) => void)[] | undefined;
    for (let k = 0; k < members.length; k++) {
      const request = members[k].request;
      items[k] = request.items[0];
      if (request.seed) (seeds ??= new Array(members.length))[k] = request.seed;
      if (request.timed) timed = true;
      if (request.onStart !== undefined) (started ??= []).push(request.onStart);
    }
    const first = members[0];
    const request: BuiltInRequest = {
      task: first.request.task,
      base: 0,
      items,
      timed,
      each: { seeds },
      onStart: started && ((no) => {
        for (const onStart of started) onStart(no);
      }),
    };
    return {
      request,
      taskId: first.taskId,
      resolve: (result) => {
        const { failures, values } = result;
        const ms = result.ms / members.length;
        for (let k = 0; k < members.length; k++) {
          if (failures?.has(k)) this.settle(members[k], failures.get(k));
          else this.settle(members[k], undefined, { values: [values[k]], ms });
        }
      },
      reject: (error) => {
        for (const member of members) this.settle(member, error);
      },
      id: 0,
      worker: undefined,
      settled: false,
      unlisten: noop,
      timer: undefined,
      members,
    };
  }

  /**
   * Settles a batch in part: the members in `failed` with their errors, while the others,
   * which never ran, go back to the front of the queue in their order.
   */
  protected unbatch(job: Job<W>, failed: Map<number, unknown>): void {
    const members = job.members!;
    job.settled = true;
    for (let k = members.length - 1; k >= 0; k--) {
      if (failed.has(k)) continue;
      this.queue.unshift(members[k]);
      this.#waiting++;
    }
    for (const [k, error] of failed) this.settle(members[k], error);
  }

  /** A queued job's signal aborted: it settles now, and is skipped when the queue reaches it. */
  protected dropQueued(job: Job<W>, reason: unknown): void {
    if (job.settled) return;
    this.#waiting--;
    this.settle(job, reason);
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
    if (worker.bornAt !== undefined) {
      const ms = performance.now() - worker.bornAt;
      this.#starts++;
      this.#startMs = this.#startMs === undefined
        ? ms
        : this.#startMs + (ms - this.#startMs) / this.#starts;
      worker.bornAt = undefined;
    }
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
    if (this.workers.size < this.#peak) {
      if (this.#owed > 0) this.#owed--;
      else this.#respawns++;
    }
    return this.#nextNo++;
  }

  /** Fails every queued job with `error` (no worker can be started for them). */
  protected failQueue(error: unknown): void {
    this.#waiting = 0;
    for (const job of this.queue.drain()) this.settle(job, error);
    this.checkDrained();
  }

  /**
   * A worker started: it counts as live, and as starting until it is ready, which it must be
   * within `loadTimeoutMs`.
   */
  protected enlist(worker: W): void {
    worker.bornAt = performance.now();
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
    if (this.#waiting > 0) return true;
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
    this.#waiting = 0;
    for (const job of this.queue.drain()) this.settle(job, error);
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

/** A submit that may travel with others: nothing of it needs a worker to itself. */
function coalescable(request: BuiltInRequest): boolean {
  // A timeout or an abort may have to stop the worker, and with it every item of a batch;
  // shared handles are delivered per chunk. Such submits go alone.
  return request.single === true && request.signal === undefined &&
    request.timeoutMs === undefined && request.shared === undefined;
}
