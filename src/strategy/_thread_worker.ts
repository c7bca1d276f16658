/**
 * One thread of the thread pool, as the pool sees it: its handle, the shared header it and the
 * pool read and write (see `Slot` in protocol.ts), and its state; and the graceful stop of a
 * thread whose tasks started child processes. What the pool writes and posts to one thread for
 * a chunk, and how it takes a chunk posted behind another back, live here too.
 *
 * @module
 */

import type { Remote } from "comlink";
import { releaseProxy, wrap } from "comlink";
import type {
  FromWorkerEvent,
  InitMessage,
  Port,
  ToWorkerEvent,
  WorkerControl,
  WrappedPayload,
} from "../protocol.ts";
import { Bank, bankAt, Claim, MS_OFFSET, Payload, Shares, Slot, SLOTS } from "../protocol.ts";
import { seedWords } from "../worker/seed.js";
import type { ThreadExit, ThreadHandle } from "../runtime/mod.ts";
import { reviveError } from "../_revive.ts";
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
  /** Run time of the last chunk of each bank, written by the worker. */
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
  /** A job posted behind `job`, so the worker goes on without waiting for a round trip. */
  next: Job<PoolWorker> | undefined;
  /** Chunks posted to it so far: the next one uses bank `sent % 2`. */
  sent: number;
  /**
   * Set when `next` must be stopped hard once `job`'s reply, already posted, has been read
   * (stopping the thread before would lose it).
   */
  stopAfterReply: boolean;
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
    runMs: new Float64Array(state, MS_OFFSET, 2),
    ready: false,
    dead: false,
    control: undefined,
    ports: [],
    events: undefined,
    prepared: new Set(),
    shares: new WorkerShares(),
    job: undefined,
    next: undefined,
    sent: 0,
    stopAfterReply: false,
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

/**
 * Writes what a chunk is into its bank of the header (starting at `at`), before its payload
 * is posted. Plain stores: the postMessage that follows orders them before the worker reads
 * them, and an atomic store is a full fence on x86, four of them a visible part of a round trip.
 */
function writeRun(
  header: Int32Array,
  at: number,
  job: Job<PoolWorker>,
  one: boolean,
  wrapped: boolean,
): void {
  const { taskId, request } = job;
  header[at + Bank.RUN_ID] = job.id;
  header[at + Bank.RUN_TASK] = taskId;
  header[at + Bank.RUN_BASE] = request.base;
  header[at + Bank.RUN_PAYLOAD] = one ? Payload.ONE : request.each ? Payload.EACH : Payload.MANY;
  header[at + Bank.RUN_TIMED] = request.timed ? 1 : 0;
  header[at + Bank.RUN_CONCURRENCY] = request.concurrency ?? 1;
  header[at + Bank.RUN_SHARED] = (request.shared === undefined ? 0 : Shares.REFS) |
    (wrapped ? Shares.WRAPPED : 0);
  header[at + Bank.CANCELLED] = 0;
  header[at + Bank.CLAIM] = job.id;
  if (request.seed) {
    [header[at + Bank.RUN_SEED_HIGH], header[at + Bank.RUN_SEED_LOW]] = seedWords(request.seed);
  } else header[at + Bank.RUN_SEED_HIGH] = header[at + Bank.RUN_SEED_LOW] = 0;
}

/**
 * Posts `job` to `worker` in the bank its chunk before the one before has freed (its reply has
 * been read), after writing what the chunk is into that bank. Throws, with nothing sent and the
 * bank still free, when the items cannot be cloned.
 */
export function sendChunk(worker: PoolWorker, job: Job<PoolWorker>): void {
  const { items, shared, each } = job.request;
  const one = items.length === 1 && each === undefined;
  const delivery = worker.shares.plan(shared);
  const bank = worker.sent & 1;
  writeRun(worker.header, bankAt(bank), job, one, delivery !== undefined);
  const payload = one ? items[0] : each ? { items, seeds: each.seeds } : items;
  if (delivery === undefined) worker.handle.postMessage(payload);
  else {
    const wrapped: WrappedPayload = { shares: delivery.shares, forget: delivery.forget, payload };
    worker.handle.postMessage(wrapped);
    worker.shares.sent(delivery);
  }
  worker.sent++;
  job.bank = bank;
}

/**
 * Takes back `next`, posted behind the chunk `worker` runs, if the worker has not started it
 * (whoever changes its claim first wins). False when the worker had started it, so the chunk
 * before it has finished.
 */
export function takeBack(worker: PoolWorker, next: Job<PoolWorker>): boolean {
  const at = bankAt(next.bank!) + Bank.CLAIM;
  const was = Atomics.compareExchange(worker.header, at, next.id, Claim.REVOKED);
  // Taken back already (aborted, or another worker took it): the worker will skip it too.
  return was === next.id || was === Claim.REVOKED;
}

/**
 * How a thread's own "fatal" or "exit" event ends it (a fatal error is kept on the worker, as
 * the cause of the crash it makes); undefined for any other event.
 */
export function exitOf(worker: PoolWorker, event: FromWorkerEvent): ThreadExit | undefined {
  if (event.type === "exit") {
    return { code: event.code, message: `the worker called exit with code ${event.code}` };
  }
  if (event.type !== "fatal") return undefined;
  const fatal = worker.fatal = reviveError(event.error);
  return {
    error: fatal,
    message: fatal instanceof Error
      ? `uncaught ${fatal.name}: ${fatal.message}`
      : `uncaught ${String(fatal)}`,
  };
}

/**
 * Stops a thread taken out of the pool. One that started child processes (a nested pool) is
 * first asked to stop them, so they are reaped: once terminated, it could not, and they would
 * stay behind as zombies. It gets their kill grace and a little more; a thread busy in
 * synchronous code cannot answer, and is terminated after that. `gone`: it already died, and
 * can neither answer nor reap anything any more.
 */
export function stopThread(worker: PoolWorker, gone: boolean, killGraceMs: number): Promise<void> {
  const children = !gone && worker.ready && Atomics.load(worker.header, Slot.CHILDREN) > 0;
  const stopping = children ? stopChildren(worker, killGraceMs) : Promise.resolve();
  return stopping.then(() => {
    worker.control?.[releaseProxy]();
    for (const port of worker.ports) port.close();
    return worker.handle.terminate();
  }).catch(() => {});
}

/**
 * After a thread said it is ready: its events and control ports, handed over in `init` with
 * the shared header (`heap`: whether to report its heap after each chunk).
 */
export function connect(
  worker: PoolWorker,
  heap: boolean,
  onEvent: (event: FromWorkerEvent) => void,
): void {
  const events = new MessageChannel();
  const control = new MessageChannel();
  worker.ports = [events.port1, control.port1];
  worker.events = events.port1;
  worker.events.onmessage = (event: MessageEvent<FromWorkerEvent>) => onEvent(event.data);
  worker.control = wrap<WorkerControl>(control.port1);
  const init: InitMessage = {
    type: "init",
    state: worker.header.buffer as SharedArrayBuffer,
    events: events.port2,
    control: control.port2,
    heap,
  };
  worker.handle.postMessage(init, [events.port2, control.port2]);
}
