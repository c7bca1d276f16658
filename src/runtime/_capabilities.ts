/**
 * What each runtime can and cannot do, as data: the one place the executor, auto and the
 * pools learn a runtime's limits from, instead of testing its name. `detect()` reports the
 * entry of the runtime it runs on.
 *
 * The costs are measured on this project's reference machine (2 cores): see `bench/` for the
 * scenarios that measure them. They are auto's prior: once a process has measured its own
 * (`Calibration` in _calibration.ts), those stand in for them.
 *
 * @module
 */

import type { RuntimeName } from "./types.ts";

/** A runtime's limits, and what its workers cost. */
export interface Capabilities {
  /** The runtime's name as messages print it ("Deno"). */
  readonly label: string;
  /**
   * Whether a thread busy in synchronous code can be stopped from outside. Deno cannot
   * terminate a Web Worker that never yields; there only a process can stop a busy task.
   */
  readonly stopBusyThread: boolean;
  /** Whether a worker thread's heap can be capped (`maxMemoryMb`): Node's `resourceLimits`. */
  readonly threadHeapCap: boolean;
  /** Whether a child process's heap can be capped: V8's `--max-old-space-size`. */
  readonly processHeapCap: boolean;
  /**
   * Start of a pool plus its first task, in ms: a cold call minus a warm one (the start-up
   * scenario of bench/).
   */
  readonly startMs: { readonly threads: number; readonly processes: number };
  /** Transport per item when items go in chunks, in ms (the throughput scenario, tiny items). */
  readonly transportMs: number;
  /** Why a heap cap has no effect on a worker here, for the warning; empty where it has. */
  readonly noHeapCap: string;
  /**
   * One-item chunks `warmup()` runs through each thread, so that the first real submit costs
   * what later ones do (bench/submits.ts, part sb6): V8 compiled the path after about 16,
   * while on JavaScriptCore more than 4 left the first submits slower (its tiers compile later,
   * in the middle of them).
   */
  readonly primeRounds: number;
  /**
   * Whether command batches start their jobs through the long-lived launcher
   * (`runtime/_launcher.ts`) rather than the runtime's own spawn: on Node, whose
   * `child_process.spawn` forks the whole runtime, 200 × `true` on 4 slots took ~2.5× as long
   * spawned directly; Deno's and Bun's spawn beat a round trip through the launcher
   * (bench/commands.ts).
   */
  readonly spawnThroughLauncher: boolean;
  /**
   * Whether `performance.eventLoopUtilization()` measures the event loop (Node); Deno and Bun
   * have the function, but it answers zeros.
   */
  readonly eventLoopUtilization: boolean;
}

/** The facts of every runtime. */
export const CAPABILITIES: Readonly<Record<RuntimeName, Capabilities>> = {
  deno: {
    label: "Deno",
    stopBusyThread: false,
    threadHeapCap: false,
    processHeapCap: true,
    startMs: { threads: 35, processes: 35 },
    transportMs: 0.0001,
    noHeapCap: 'Deno\'s Web Workers have no per-worker heap limit (use strategy: "processes")',
    primeRounds: 16,
    spawnThroughLauncher: false,
    eventLoopUtilization: false,
  },
  bun: {
    label: "Bun",
    stopBusyThread: true,
    threadHeapCap: false,
    processHeapCap: false,
    startMs: { threads: 10, processes: 12 },
    transportMs: 0.00003,
    noHeapCap: "Bun (JavaScriptCore) has no per-worker heap limit",
    primeRounds: 4,
    spawnThroughLauncher: false,
    eventLoopUtilization: false,
  },
  node: {
    label: "Node",
    stopBusyThread: true,
    threadHeapCap: true,
    processHeapCap: true,
    startMs: { threads: 90, processes: 95 },
    transportMs: 0.0001,
    noHeapCap: "",
    primeRounds: 16,
    spawnThroughLauncher: true,
    eventLoopUtilization: true,
  },
};
