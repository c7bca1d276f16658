/**
 * Job bookkeeping shared by the thread and process pools: a chunk request waiting for, or
 * running on, a worker, and task ids (`Pool` in `_pool.ts` starts and settles jobs).
 *
 * @module
 */

import type { TaskSpec } from "../protocol.ts";
import type { ChunkResult } from "./types.ts";
import type { BuiltInRequest } from "./_builtin.ts";
import { taskKey } from "../task.ts";

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
