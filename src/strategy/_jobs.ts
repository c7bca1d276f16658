/**
 * Job bookkeeping shared by the thread and process pools: a chunk request waiting for, or
 * running on, a worker; task ids; and settling a job exactly once.
 *
 * @module
 */

import type { TaskSpec } from "../protocol.ts";
import type { ChunkRequest, ChunkResult } from "./types.ts";

/** A chunk request in a pool, from `run()` until it settles. */
export interface Job<W> {
  readonly request: ChunkRequest;
  readonly taskId: number;
  readonly resolve: (result: ChunkResult) => void;
  readonly reject: (error: unknown) => void;
  /** Chunk id, set when the job is given to a worker. */
  id: number;
  worker: W | undefined;
  settled: boolean;
  onAbort: (() => void) | undefined;
  /** The timeout's timer, while it runs on a worker with `timeoutMs`. */
  timer: ReturnType<typeof setTimeout> | undefined;
}

/**
 * Makes the job for `request` and hands it to `enqueue`; the promise settles with it. An
 * aborted signal rejects at once; a later abort calls `onAbort(job)`.
 */
export function startJob<W>(
  request: ChunkRequest,
  taskId: number,
  onAbort: (job: Job<W>) => void,
  enqueue: (job: Job<W>) => void,
): Promise<ChunkResult> {
  const signal = request.signal;
  if (signal?.aborted) return Promise.reject(signal.reason);
  return new Promise<ChunkResult>((resolve, reject) => {
    const job: Job<W> = {
      request,
      taskId,
      resolve,
      reject,
      id: 0,
      worker: undefined,
      settled: false,
      onAbort: undefined,
      timer: undefined,
    };
    if (signal !== undefined) {
      job.onAbort = () => onAbort(job);
      signal.addEventListener("abort", job.onAbort, { once: true });
    }
    enqueue(job);
  });
}

/** Settles a job once: with `result` when given, else rejecting with `error`. */
export function settleJob<W>(job: Job<W>, error: unknown, result?: ChunkResult): void {
  if (job.settled) return;
  job.settled = true;
  clearTimeout(job.timer);
  if (job.onAbort !== undefined) job.request.signal?.removeEventListener("abort", job.onAbort);
  if (result !== undefined) job.resolve(result);
  else job.reject(error);
}

/** What a load timeout names: the module's URL, or the inline function. */
export function moduleOf(task: TaskSpec): string {
  return task.kind === "module" ? task.url : "(an inline function)";
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
    const key = task.kind === "module" ? `m:${task.url}#${task.name}` : `f:${task.source}`;
    id = this.#byKey.get(key);
    if (id === undefined) {
      id = this.#byKey.size + 1;
      this.#byKey.set(key, id);
    }
    this.#bySpec.set(task, id);
    return id;
  }
}
