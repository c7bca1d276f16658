/**
 * A pool that can start ahead of work (`ParallelExecutor.warmup`): every worker up to its
 * `concurrency`, each waited for until ready, then given the tasks' modules to load
 * (`preload`) and a few chunks of fanout's own to run (`prime`), so that the first real chunk
 * costs what later ones do. Pools that cannot load or prime ahead keep the defaults, which
 * resolve at once.
 *
 * @module
 */

import type { TaskSpec } from "../protocol.ts";
import { moduleOf } from "../task.ts";
import { ExecutorClosedError, LoadTimeoutError, WorkerStartError } from "../errors.ts";
import type { PoolMember } from "./_pool.ts";
import { Pool } from "./_pool.ts";
import { newJob } from "./_queue.ts";

/** What `prime` runs through each worker: fanout's own identity task. */
const PRIME_TASK = { kind: "inline", source: "(x) => x" } as const;

/** A pool of workers of one kind, with a warm start on request. */
export abstract class WarmPool<W extends PoolMember> extends Pool<W> {
  /** How many one-item chunks `prime` runs through each worker (none: it does not prime). */
  protected readonly primeRounds: number = 0;

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
    await this.allStarted();
    const ready = [...this.workers].filter((worker) => worker.ready);
    if (ready.length === 0) {
      if (this.closed) throw new ExecutorClosedError();
      throw this.startError ?? new WorkerStartError("No worker of the pool could start");
    }
    // Idle workers do not keep the program alive; while they load and prime for warmup(),
    // they must: a program awaiting warmup() may have nothing else pending.
    for (const worker of ready) if (this.idle.includes(worker)) this.hold(worker, true);
    try {
      await Promise.all(
        ready.flatMap((worker) => tasks.map((task) => this.#preload(worker, task))),
      );
      // Chunks of fanout's own through each idle worker: what a chunk runs through on both
      // sides is compiled before the first real one, which then costs what later ones do.
      await Promise.all(ready.map((worker) => {
        if (worker.dead || this.closed || !this.idle.includes(worker)) return;
        const gone = new Promise<void>((resolve) => (worker.onGone ??= []).push(resolve));
        return Promise.race([this.prime(worker), gone]);
      }));
    } finally {
      for (const worker of ready) {
        if (!worker.dead && this.idle.includes(worker)) this.hold(worker, false);
      }
    }
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
        // Stuck in the import: an idle worker would serve nothing, so it goes. One running a
        // call's chunk stays until that settles: the stuck import does not stop it.
        if (worker.job !== undefined) return;
        this.retire(worker);
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

  /**
   * `primeRounds` one-item chunks of fanout's own identity task through an idle `worker`, each
   * as a submit sends it: the worker's item path and the reply's are compiled before the first
   * real submit, which then costs about what later ones do (on threads, an empty chunk left the
   * first submit at ~4× a warm round trip, and the first few after it 2–1.5×). Never the
   * caller's tasks: their inputs are unknown, and a call of one could do anything.
   */
  protected async prime(worker: W): Promise<void> {
    if (this.primeRounds === 0) return;
    // Taken by real work meanwhile (or gone): that primes it as well.
    if (!this.idle.includes(worker) || worker.dead || this.closed) return;
    const id = this.taskIds.of(PRIME_TASK);
    // An idle worker keeps nothing alive, and the caller of warmup() may await this alone
    // (a worker that was busy when warmup() began has been idle, and unref'd, since).
    this.hold(worker, true);
    try {
      await this.preload(worker, id, PRIME_TASK);
    } finally {
      if (!worker.dead && this.idle.includes(worker)) this.hold(worker, false);
    }
    for (let round = 0; round < this.primeRounds; round++) {
      const at = this.idle.indexOf(worker);
      if (at < 0 || worker.dead || this.closed) return;
      this.idle.splice(at, 1);
      this.hold(worker, true);
      await new Promise<void>((resolve) => {
        const request = { task: PRIME_TASK, base: 0, items: [round], single: true };
        this.assign(worker, newJob<W>(request, id, () => resolve(), () => resolve()));
      });
    }
  }

  /** Loads task `id` in `worker` ahead of its first chunk; pools that cannot, resolve. */
  protected preload(_worker: W, _id: number, _task: TaskSpec): Promise<void> {
    return Promise.resolve();
  }
}
