/**
 * The process strategy: a lazily started pool of child processes of the parent's own runtime,
 * each running `src/worker/process_entry.js`, reused for the executor's life and never larger
 * than the work queued for it.
 *
 * ```
 * run(chunk) ──► queue ──► idle process? ──► "run" {id, task (+ spec the first time), items}
 *                  ▲                                                   │
 *   abort ─────────┤  (queued: dropped; running: process killed,       ▼
 *   timeout ───────┤   or, for a soft cancel, "cancel" → ctx.signal) process
 *                  │                                                   │
 * resolve/reject ◄─┴── "done" | "fail" | "cancelled" | exit status ◄──┘
 * ```
 *
 * What processes buy over threads: a crash, an exit or a runaway allocation takes down only
 * its own process; a busy task can be stopped on every runtime (SIGTERM, then SIGKILL); and a
 * memory cap applies per process. What they cost: a spawn per worker (5–80 ms), and every
 * input and result is serialized (no shared memory).
 *
 * Every job is settled by the pool itself, from messages or from the exit status, so no
 * promise hangs when a process dies. A process that dies fails only the job it was running
 * and is replaced on demand; one that dies before it is ready fails the queued jobs with
 * `WorkerStartError` (retrying would only fail again).
 *
 * @module
 */

import type { FromProcess, ToProcess } from "../protocol.ts";
import type { Job as Job_ } from "./_pool.ts";
import { WarmPool } from "./_warm_pool.ts";
import { stopsHard } from "../_abort.ts";
import type { PoolOptions } from "./_pool.ts";
import { WorkerShares } from "./_shares.ts";
import type { ChildExit } from "../runtime/mod.ts";
import { describeExit, startWorkerProcess } from "../runtime/worker_process.ts";
import { workerEntry } from "../runtime/_entries.ts";
import type { LastWords, WorkerProcess } from "../runtime/worker_process.ts";
import { describeKill, KILL_GRACE_MS, killGently } from "../runtime/_kill.ts";
import { TaskTimeoutError, WorkerCrashedError, WorkerStartError } from "../errors.ts";
import { cloneError, inputCloneError, loadFailure, reviveError, taskFailure } from "../_revive.ts";
import { crashedBatch, eachFailures, uncloneableInputs } from "./_pool_errors.ts";

// How a process's end is told (exit status, signal, stderr, its last message); tests use it.
export { describeExit };

const ENTRY = new URL("../worker/process_entry.js", import.meta.url);

/** Options of the process pool: `maxMemoryMb` applies on Deno and Node (the executor warns on Bun). */
export type ProcessPoolOptions = PoolOptions;

type Job = Job_<PoolProcess>;

interface PoolProcess {
  /** Its number in the pool, for telemetry. */
  readonly no: number;
  /** Set once the process has started. */
  proc: WorkerProcess | undefined;
  ready: boolean;
  dead: boolean;
  readonly prepared: Set<number>;
  readonly shares: WorkerShares;
  /** The job it is running; kept after a soft cancel until the process replies. */
  job: Job | undefined;
  tasks: number;
  heapBytes: number;
  wait: ReturnType<typeof setTimeout> | undefined;
  /** What the process said about its own end, if anything. */
  last: LastWords | undefined;
}

/** Runs chunks on a pool of child processes. */
export class ProcessPool extends WarmPool<PoolProcess> {
  readonly name = "processes";

  /**
   * @param maxWorkers Most processes the pool runs at once.
   * @param options Memory cap, bounds, kill grace and recycling.
   */
  constructor(maxWorkers: number, options: ProcessPoolOptions = {}) {
    super(maxWorkers, options);
    // A process runs a batch of submits as one message (`each`).
    this.queue.coalesce = true;
  }

  protected spawn(): void {
    let entry: URL;
    try {
      entry = workerEntry("process_entry.js", ENTRY);
    } catch (error) {
      return this.failQueue(error);
    }
    const worker: PoolProcess = {
      no: this.nextNumber(),
      proc: undefined,
      ready: false,
      dead: false,
      prepared: new Set(),
      shares: new WorkerShares(),
      job: undefined,
      last: undefined,
      tasks: 0,
      heapBytes: 0,
      wait: undefined,
    };
    this.enlist(worker);
    const starting = startWorkerProcess({
      entry,
      maxMemoryMb: this.options.maxMemoryMb,
      onMessage: (message) => this.#onMessage(worker, message),
      onProtocolError: (error) => this.#onProtocolError(worker, error),
    });
    starting.then(
      (proc) => {
        worker.proc = proc;
        this.track(proc.exited.then((exit) => this.#onExit(worker, exit)));
        // Retired while it was starting (terminate, close): stop it now.
        if (worker.dead) this.#kill(proc);
      },
      (error: unknown) => {
        this.#onStartFailure(worker, error instanceof Error ? error.message : String(error), {
          cause: error,
        });
      },
    );
    // After the handlers above, so that a started process is tracked before this is dropped.
    this.track(starting);
  }

  #onMessage(worker: PoolProcess, message: FromProcess): void {
    if (worker.dead) return;
    switch (message.type) {
      case "ready":
        this.ready(worker);
        this.release(worker);
        return;
      case "loaded": {
        const job = worker.job;
        if (job === undefined || job.taskId !== message.task) return;
        // The load bound ends whatever became of the job (a soft cancel leaves it settled).
        this.loaded(worker);
        if (!job.settled) this.#startClock(job);
        return;
      }
      case "done":
      case "fail":
      case "cancelled": {
        const job = worker.job;
        if (job === undefined || job.id !== message.id) return;
        worker.job = undefined;
        if (message.heap !== undefined) worker.heapBytes = message.heap;
        // A reply means the load is over, whichever way.
        this.loaded(worker);
        if (message.type === "done") {
          const ms = job.request.timed ? message.ms : NaN;
          const { values, failures } = message;
          this.settle(job, undefined, {
            values,
            ms,
            failures: failures && eachFailures({ values, failures }),
          });
        } else if (message.type === "fail") {
          if (message.load) worker.prepared.delete(job.taskId);
          this.settle(job, failure(message));
          if (message.stragglers) {
            // Items of the failed chunk run on: none may outlive its call.
            this.retire(worker);
            this.pump();
            return;
          }
        } else this.settle(job, job.request.signal?.reason);
        this.release(worker);
        return;
      }
      case "fatal":
      case "exit":
        // The exit status follows; this says which item ran and why.
        worker.last = message;
        return;
    }
  }

  /**
   * The channel to a process broke (Deno: a corrupt frame): nothing more will come from it, so
   * fail what it runs and replace it, as for a crash.
   */
  #onProtocolError(worker: PoolProcess, error: Error): void {
    if (worker.dead) return;
    if (!worker.ready) return this.#onStartFailure(worker, error.message, { cause: error });
    const job = worker.job;
    this.retire(worker);
    if (job?.members !== undefined && !job.settled) {
      this.queue.unbatch(job, crashedBatch(job, undefined, { message: error.message }, error));
    } else if (job !== undefined && !job.settled) {
      const { base, items } = job.request;
      const which = whichTask(base, items.length);
      this.settle(
        job,
        new WorkerCrashedError(
          `The worker process running ${which} was stopped: ${error.message}`,
          { index: base, cause: error },
        ),
      );
    }
    this.pump();
  }

  protected assign(worker: PoolProcess, job: Job): void {
    worker.job = job;
    job.worker = worker;
    job.id = this.nextChunk++;
    const { task, base, items, timed, shared, each } = job.request;
    const first = !worker.prepared.has(job.taskId);
    const delivery = worker.shares.plan(shared);
    const message: Extract<ToProcess, { type: "run" }> = {
      type: "run",
      id: job.id,
      task: job.taskId,
      spec: first ? task : undefined,
      base,
      items,
      timed: timed === true,
    };
    if (shared !== undefined) message.refs = true;
    if (job.request.seed) message.seed = job.request.seed;
    if (each !== undefined) message.each = { seeds: each.seeds };
    const concurrency = job.request.concurrency;
    if (concurrency !== undefined && concurrency > 1) message.concurrency = concurrency;
    if (this.options.idleMemoryLimitMb !== undefined) message.heap = true;
    if (delivery?.shares !== undefined) {
      message.shares = delivery.shares.map(([id, value]) => [id, toSendable(value)]);
    }
    try {
      worker.proc!.send(message);
      if (delivery !== undefined) worker.shares.sent(delivery);
    } catch (error) {
      worker.job = undefined;
      if (job.members !== undefined) this.queue.unbatch(job, uncloneableInputs(items, error));
      else this.settle(job, inputCloneError(base, items, error));
      this.release(worker);
      return;
    }
    if (first) worker.prepared.add(job.taskId);
    job.request.onStart?.(worker.no);
    // The task's clock starts once its module has loaded: a load is bounded on its own.
    if (first) this.loading(worker, job);
    else this.#startClock(job);
  }

  /** Starts the job's `timeoutMs`, if it has one. */
  #startClock(job: Job): void {
    const timeoutMs = job.request.timeoutMs;
    if (timeoutMs !== undefined && job.timer === undefined) {
      job.timer = setTimeout(() => this.#timeout(job, timeoutMs), timeoutMs);
    }
  }

  forget(id: number): void {
    for (const worker of this.workers) {
      // One ordered channel: the release reaches the process before any later chunk.
      if (worker.shares.drop(id, true)) this.#send(worker, { type: "release", ids: [id] });
    }
  }

  protected abort(job: Job): void {
    const worker = job.worker;
    const reason = job.request.signal?.reason;
    if (worker === undefined) return this.dropQueued(job, reason);
    this.settle(job, reason);
    if (worker.job !== job) return;
    if (stopsHard(job.request.signal)) {
      this.retire(worker);
      this.pump();
    } else {
      // Soft: the task sees ctx.signal abort; the process stays busy until it replies.
      this.#send(worker, { type: "cancel", id: job.id });
    }
  }

  #timeout(job: Job, timeoutMs: number): void {
    const worker = job.worker;
    if (job.settled || worker === undefined || worker.job !== job) return;
    const index = job.request.base;
    const grace = this.options.killGraceMs ?? KILL_GRACE_MS;
    this.settle(
      job,
      new TaskTimeoutError(
        index,
        timeoutMs,
        `Task ${index} ran past its timeout of ${timeoutMs} ms; its process was stopped ` +
          describeKill(grace),
      ),
    );
    this.retire(worker);
    this.pump();
  }

  #send(worker: PoolProcess, message: ToProcess): void {
    try {
      worker.proc?.send(message);
    } catch {
      // The process is going away; its exit settles what it ran.
    }
  }

  #onExit(worker: PoolProcess, exit: ChildExit): void {
    if (worker.dead) return; // Stopped on purpose: its job was settled then.
    const proc = worker.proc!;
    const how = describeExit(exit, worker.last, proc.stderrTail(), this.options.maxMemoryMb);
    if (!worker.ready) {
      const stderr = proc.stderrTail().trim();
      this.#onStartFailure(
        worker,
        `${how}${stderr ? `; its stderr ended with: ${stderr.slice(-500)}` : ""}`,
        { exitCode: exit.code ?? undefined, signal: exit.signal ?? undefined },
      );
      return;
    }
    const job = worker.job;
    this.retire(worker);
    const last = worker.last;
    if (job?.members !== undefined && !job.settled) {
      const cause = last?.type === "fatal" ? reviveError(last.error) : undefined;
      // Without last words (SIGKILL, a native crash) nothing says how far the batch got: every
      // submit in it fails, rather than one that may have run being run again.
      const running = last === undefined ? undefined : last.index;
      const code = exit.code ?? (last?.type === "exit" ? last.code : undefined);
      const exitLike = { message: how, code };
      this.queue.unbatch(job, crashedBatch(job, running, exitLike, cause, last === undefined));
    } else if (job !== undefined && !job.settled) {
      const { base, items } = job.request;
      const index = last !== undefined && last.index >= base && last.index < base + items.length
        ? last.index
        : base;
      // With several in flight, the last one started is not the one that crashed it.
      const several = (job.request.concurrency ?? 1) > 1 && index > base;
      const which = several
        ? `one of tasks ${base}–${index} (up to ${job.request.concurrency} in flight at once)`
        : whichTask(base, items.length, last === undefined ? undefined : index);
      this.settle(
        job,
        new WorkerCrashedError(`The worker process running ${which} crashed: ${how}`, {
          index: several ? undefined : index,
          exitCode: exit.code ?? (last?.type === "exit" ? last.code : undefined),
          signal: exit.signal ?? undefined,
          cause: last?.type === "fatal" ? reviveError(last.error) : undefined,
        }),
      );
    }
    this.pump();
  }

  /** A process could not start: fail what waits, unless another process is up to serve it. */
  #onStartFailure(
    worker: PoolProcess,
    message: string,
    info: { exitCode?: number; signal?: string; cause?: unknown },
  ): void {
    if (worker.dead) return;
    this.retire(worker);
    if ([...this.workers].some((w) => w.ready)) return this.pump();
    this.startError = new WorkerStartError(`A worker process failed to start: ${message}`, info);
    this.failQueue(this.startError);
  }

  protected startFailed(worker: PoolProcess, message: string): void {
    this.#onStartFailure(worker, message, {});
  }

  protected hold(worker: PoolProcess, busy: boolean): void {
    if (busy) worker.proc?.ref();
    else worker.proc?.unref();
  }

  /** Takes a process out of the pool and stops it. */
  protected retire(worker: PoolProcess): void {
    if (worker.dead) return;
    this.unlist(worker);
    if (worker.proc !== undefined) this.#kill(worker.proc);
    this.checkDrained();
  }

  /** SIGTERM, then SIGKILL after the grace (`killGently`); the pool is drained once it exited. */
  #kill(proc: WorkerProcess): void {
    proc.ref(); // Its exit is awaited: the program waits for it too.
    killGently(proc, this.options.killGraceMs ?? KILL_GRACE_MS);
    this.track(proc.exited);
  }
}

/** The error for a `fail` message. */
function failure(message: Extract<FromProcess, { type: "fail" }>): unknown {
  const cause = reviveError(message.error);
  if (message.load) return loadFailure(message.index, cause);
  if (message.clone !== undefined) return cloneError("result", message.index, message.clone, cause);
  return taskFailure(message.index, cause, message.error.capturedName);
}

/** `task 3`, or `one of tasks 3–7` for a chunk of several when which one ran is unknown. */
function whichTask(base: number, count: number, index?: number): string {
  return index === undefined && count > 1
    ? `one of tasks ${base}–${base + count - 1}`
    : `task ${index ?? base}`;
}

/**
 * A shared value as a process can receive it: Node's IPC serializer refuses a bare
 * `SharedArrayBuffer` (views over one go as copies), so it goes as a plain copy, and the
 * process moves it back into shared memory.
 */
function toSendable(value: unknown): unknown {
  if (!(value instanceof SharedArrayBuffer)) return value;
  const copy = new ArrayBuffer(value.byteLength);
  new Uint8Array(copy).set(new Uint8Array(value));
  return copy;
}
