/**
 * Jobs (a chunk waiting for, or running on, a worker), their task ids, and the queue they wait
 * in: O(1) to add and take at any length, aborted jobs skipped when reached, and, where the
 * pool's workers support it, submits of one task queued together taken as one batch.
 *
 * @module
 */

import type { BuiltInRequest, BuiltInResult } from "./_builtin.ts";
import type { TaskSpec } from "../protocol.ts";
import { taskKey } from "../task.ts";
import { Deque } from "../_deque.ts";

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
  /** For a batch of coalesced submits (see `JobQueue.take`): the submits, in the batch's order. */
  members?: Job<W>[];
  /** The header bank it was posted in, on threads (see `Bank`). */
  bank?: number;
  /**
   * A submit's job (see `_submit.ts`): it resolves with its one value, not a `ChunkResult`, and
   * `end` counts it when it settles, with `pin`.
   */
  end?: JobEnd;
  pin?: object;
}

/** What a submit's job does once it settles, besides settling; one per executor. */
export interface JobEnd {
  ended(
    shared: BuiltInRequest["shared"],
    pin: object | undefined,
    ok: boolean,
    error: unknown,
  ): void;
}

/** A new job for `request`, not queued yet. */
export function newJob<W>(
  request: BuiltInRequest,
  taskId: number,
  resolve: (result: BuiltInResult) => void,
  reject: (error: unknown) => void,
): Job<W> {
  return {
    request,
    taskId,
    resolve,
    reject,
    id: 0,
    worker: undefined,
    settled: false,
    unlisten: noop,
    timer: undefined,
  };
}

/** Settles a job once: with `result` when given, else rejecting with `error`. */
export function settleJob<W>(job: Job<W>, error: unknown, result?: BuiltInResult): void {
  if (job.settled) return;
  job.settled = true;
  if (job.timer !== undefined) clearTimeout(job.timer);
  job.unlisten();
  const end = job.end;
  if (end === undefined) {
    if (result !== undefined) job.resolve(result);
    else job.reject(error);
    return;
  }
  end.ended(job.request.shared, job.pin, result !== undefined, error);
  if (result !== undefined) (job.resolve as (value: unknown) => void)(result.values[0]);
  else job.reject(error);
}

/** Settles one submit of a batch with its `value`, making no `ChunkResult` where none is needed. */
function settleValue<W>(job: Job<W>, value: unknown, ms: number): void {
  if (job.end === undefined || job.settled) {
    return settleJob(job, undefined, { values: [value], ms });
  }
  job.settled = true;
  job.unlisten();
  job.end.ended(job.request.shared, job.pin, true, undefined);
  (job.resolve as (value: unknown) => void)(value);
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

/** The jobs waiting for a worker of one pool. */
export class JobQueue<W> {
  readonly #jobs = new Deque<Job<W>>();
  /** Queued jobs not settled yet (an aborted one stays in `#jobs` until it is reached). */
  #waiting = 0;
  readonly #concurrency: number;
  /** Whether submits of one task queued together are taken as one batch (see `take`). */
  coalesce = false;

  /** @param concurrency Workers of the pool: a batch takes a share of what waits. */
  constructor(concurrency: number) {
    this.#concurrency = concurrency;
  }

  /** Jobs waiting, not counting aborted ones. */
  get waiting(): number {
    return this.#waiting;
  }

  /** Adds a job at the end. */
  push(job: Job<W>): void {
    this.#jobs.push(job);
    this.#waiting++;
  }

  /**
   * The next job, skipping aborted ones; `undefined` when none waits, or when `accept` refuses
   * the first. With `coalesce`, a submit takes the submits of the same task queued right
   * behind it along, as one batch: a share of what waits (so the tail of a burst still spreads
   * over every worker), at most `MAX_BATCH`. A submit that finds an idle worker goes alone, at
   * once: nothing waits for company.
   */
  take(accept?: (job: Job<W>) => boolean): Job<W> | undefined {
    let first: Job<W> | undefined;
    while (first === undefined || first.settled) {
      first = this.#jobs.peek();
      if (first === undefined) return undefined;
      if (!first.settled && accept !== undefined && !accept(first)) return undefined;
      this.#jobs.shift();
    }
    this.#waiting--;
    if (!this.coalesce || !coalescable(first.request) || this.#waiting === 0) return first;
    const more = Math.min(MAX_BATCH - 1, Math.ceil(this.#waiting / (2 * this.#concurrency)));
    const members = [first];
    while (members.length <= more) {
      const next = this.#jobs.peek();
      if (next === undefined) break;
      if (next.settled) {
        this.#jobs.shift();
        continue;
      }
      if (
        next.taskId !== first.taskId || !coalescable(next.request) ||
        next.request.concurrency !== first.request.concurrency
      ) break;
      this.#jobs.shift();
      this.#waiting--;
      members.push(next);
    }
    return members.length === 1 ? first : batchOf(members);
  }

  /** Puts a job that never ran back at the front, to go to the next free worker. */
  requeue(job: Job<W>): void {
    job.worker = undefined;
    // A batch goes back as its submits, which may travel in other batches.
    if (job.members !== undefined) return this.unbatch(job, new Map());
    this.#jobs.unshift(job);
    this.#waiting++;
  }

  /**
   * Settles a batch in part: the members in `failed` with their errors, while the others,
   * which never ran, go back to the front in their order.
   */
  unbatch(job: Job<W>, failed: Map<number, unknown>): void {
    const members = job.members!;
    job.settled = true;
    for (let k = members.length - 1; k >= 0; k--) {
      if (failed.has(k)) continue;
      this.#jobs.unshift(members[k]);
      this.#waiting++;
    }
    for (const [k, error] of failed) settleJob(members[k], error);
  }

  /** A queued job's signal aborted: it settles now, and is skipped when it is reached. */
  drop(job: Job<W>, reason: unknown): void {
    if (job.settled) return;
    this.#waiting--;
    settleJob(job, reason);
  }

  /** Fails every queued job with `error`. */
  fail(error: unknown): void {
    this.#waiting = 0;
    for (const job of this.#jobs.drain()) settleJob(job, error);
  }
}

/** One job carrying `members`, each settled on its own when the batch settles. */
function batchOf<W>(members: Job<W>[]): Job<W> {
  const items = new Array<unknown>(members.length);
  let seeds: (bigint | undefined)[] | undefined;
  let timed = false;
  let started: ((no: number, behind?: boolean) => void)[] | undefined;
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
    concurrency: first.request.concurrency,
    onStart: started && ((no, behind) => {
      for (const onStart of started) onStart(no, behind);
    }),
  };
  const job = newJob<W>(request, first.taskId, (result) => {
    const { failures, values } = result;
    const ms = result.ms / members.length;
    for (let k = 0; k < members.length; k++) {
      if (failures?.has(k)) settleJob(members[k], failures.get(k));
      else settleValue(members[k], values[k], ms);
    }
  }, (error) => {
    for (const member of members) settleJob(member, error);
  });
  job.members = members;
  return job;
}

/** A submit that may travel with others: nothing of it needs a worker to itself. */
function coalescable(request: BuiltInRequest): boolean {
  // A timeout or an abort may have to stop the worker, and with it every item of a batch;
  // shared handles are delivered per chunk. Such submits go alone.
  return request.single === true && request.signal === undefined &&
    request.timeoutMs === undefined && request.shared === undefined;
}

function noop(): void {}
