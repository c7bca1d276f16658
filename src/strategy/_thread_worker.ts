/**
 * One thread of the thread pool, as the pool sees it: its handle, the shared header it and the
 * pool read and write (see `Slot` in protocol.ts), and its state; and the graceful stop of a
 * thread whose tasks started child processes.
 *
 * @module
 */

import type { Remote } from "comlink";
import type { Port, ToWorkerEvent, WorkerControl } from "../protocol.ts";
import { MS_OFFSET, SLOTS } from "../protocol.ts";
import type { ThreadHandle } from "../runtime/mod.ts";
import type { Job } from "./_pool.ts";
import { WorkerShares } from "./_shares.ts";

/**
 * How long a thread that started child processes (a nested pool) gets to stop them before it
 * is terminated, beyond their own kill grace: a terminated thread can no longer reap its
 * children, which would stay behind as zombies of this process.
 */
const STOP_GRACE_MS = 2000;

/** A thread of the pool. */
export interface PoolWorker {
  /** Its number in the pool, for telemetry. */
  readonly no: number;
  readonly handle: ThreadHandle;
  /** The shared header (see `Slot` in protocol.ts). */
  readonly header: Int32Array;
  /** Run time of the last chunk, written by the worker. */
  readonly runMs: Float64Array;
  ready: boolean;
  dead: boolean;
  control: Remote<WorkerControl> | undefined;
  ports: Port[];
  events: Port | undefined;
  readonly prepared: Set<number>;
  readonly shares: WorkerShares;
  /** The job it is running; kept after a cooperative cancel until the worker replies. */
  job: Job<PoolWorker> | undefined;
  fatal: unknown;
  tasks: number;
  heapBytes: number;
  wait: ReturnType<typeof setTimeout> | undefined;
  /** Settles the graceful stop of a thread with child processes, when it says it is done. */
  stopped: (() => void) | undefined;
}

/** A thread just started, over its shared state. */
export function newWorker(no: number, handle: ThreadHandle, state: SharedArrayBuffer): PoolWorker {
  return {
    no,
    handle,
    header: new Int32Array(state, 0, SLOTS),
    runMs: new Float64Array(state, MS_OFFSET, 1),
    ready: false,
    dead: false,
    control: undefined,
    ports: [],
    events: undefined,
    prepared: new Set(),
    shares: new WorkerShares(),
    job: undefined,
    fatal: undefined,
    tasks: 0,
    heapBytes: 0,
    wait: undefined,
    stopped: undefined,
  };
}

/**
 * Asks a thread to terminate the executors its tasks made; resolves when it has, or after
 * their kill grace and a little more (a thread busy in synchronous code cannot answer).
 */
export function stopChildren(worker: PoolWorker, killGraceMs: number): Promise<void> {
  return new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, killGraceMs + STOP_GRACE_MS);
    worker.stopped = () => {
      clearTimeout(timer);
      resolve();
    };
    const stop: ToWorkerEvent = { type: "stop" };
    try {
      worker.events?.postMessage(stop);
    } catch {
      resolve();
    }
  });
}
