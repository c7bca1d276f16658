/**
 * How much of a stretch of time the calling thread spent computing rather than waiting: what
 * tells an I/O-bound task (it awaits, and the thread is idle meanwhile) from a CPU-bound one.
 * Auto's probe measures it while its first items run on the calling thread.
 *
 * The thread's own CPU clock (`process.threadCpuUsage`) ticks in 4–10 ms steps on Linux (the
 * kernel's jiffies; measured on Deno, Bun and Node alike), too coarse for items of a few ms.
 * Node measures its event loop itself (`performance.eventLoopUtilization()`: the time the loop
 * was not waiting for I/O), to the microsecond and for free; the meter reads that there. Deno
 * and Bun answer zeros to it, so there, while a task awaits, the meter keeps one `setImmediate`
 * pending: an idle event loop runs it within microseconds, a busy one only once the code running
 * now returns. The gaps between its turns, beyond a turn's own cost, are the time the thread was
 * busy. Spinning like that costs a core, so it lasts `SPIN_MS` at most; past it the thread's CPU
 * clock takes over, by then long enough for its steps. (On Node the spin's own garbage made
 * collections that it then counted as busy: a pure wait measured 50% computing.)
 *
 * Neither the event loop nor the spin can tell computing from waiting for a CPU: on a loaded
 * machine a thread put off the CPU outside its poll (a timer already due when it is back, so it
 * never waits) looked busy all along, and a task that only awaits 2 ms timers measured 100%
 * computing. Where the thread has a CPU clock, what the meter says is therefore capped at what
 * that clock counted, plus one of its steps.
 *
 * @module
 */

import process from "node:process";
import { setImmediate } from "node:timers";
import { detect } from "./runtime/mod.ts";

/** Longest the meter spins the event loop; after it, the thread's CPU clock is read instead. */
export const SPIN_MS = 50;
/** A gap up to this long is an idle turn of the event loop, not work. */
const IDLE_GAP_MS = 0.05;
/** The coarsest step of a thread's CPU clock seen on Linux (a jiffy at 100 Hz), in ms. */
const CPU_STEP_MS = 10;

type CpuUsage = { user: number; system: number };
const threadCpu = (process as { threadCpuUsage?: () => CpuUsage }).threadCpuUsage;

type Utilization = { idle: number; active: number; utilization: number };
type Elu = (since?: Utilization) => Utilization;
/** The runtime's own measure of its event loop, where it has one that measures (Node). */
const elu: Elu | undefined = detect().capabilities.eventLoopUtilization
  ? (performance as unknown as { eventLoopUtilization?: Elu }).eventLoopUtilization
    ?.bind(performance)
  : undefined;

/** One measurement: started when a task first awaits, read when its chunk ends. */
export class BusyMeter {
  readonly #start: number;
  #last: number;
  #busy: number;
  #spinning = true;
  /** The thread's CPU clock when spinning stopped, in µs; -1 where there is none. */
  #cpuAt = -1;
  /** The thread's CPU clock when the meter started, in µs, and the busy time before it. */
  readonly #cpuStart: number;
  readonly #before: number;
  /** On Node: the event loop's utilization when the meter started. */
  readonly #elu: Utilization | undefined;

  /**
   * Starts measuring, counting the time since `since` as busy: the synchronous part of the
   * task that has just returned its promise.
   */
  constructor(since: number) {
    const now = performance.now();
    this.#start = since;
    this.#last = now;
    this.#busy = this.#before = now - since;
    this.#cpuStart = cpuUs();
    if (elu !== undefined) {
      this.#elu = elu();
      this.#spinning = false;
    } else setImmediate(this.#tick);
  }

  readonly #tick = (): void => {
    if (!this.#spinning) return;
    const now = performance.now();
    this.#gap(now);
    if (now - this.#start < SPIN_MS) {
      setImmediate(this.#tick);
      return;
    }
    this.#spinning = false;
    this.#cpuAt = cpuUs();
  };

  #gap(now: number): void {
    const gap = now - this.#last;
    if (gap > IDLE_GAP_MS) this.#busy += gap - IDLE_GAP_MS;
    this.#last = now;
  }

  /** Stops without a result (the chunk failed): no more turns of the event loop. */
  cancel(): void {
    this.#spinning = false;
  }

  /**
   * Stops, and says how long the thread was busy since `since`, in ms (the wall time it covers
   * is the caller's to measure).
   */
  stop(): number {
    const busy = this.#measure();
    if (this.#cpuStart < 0) return busy;
    // Time off the CPU is not computing: never more than the CPU clock counted (see above).
    return Math.min(busy, this.#before + (cpuUs() - this.#cpuStart) / 1000 + CPU_STEP_MS);
  }

  #measure(): number {
    const now = performance.now();
    if (this.#elu !== undefined) {
      return Math.min(this.#busy + elu!(this.#elu).active, now - this.#start);
    }
    if (this.#spinning) {
      // The time since the last turn is the code that ends the chunk: busy.
      this.#gap(now);
      this.#spinning = false;
      return Math.min(this.#busy, now - this.#start);
    }
    let busy = this.#busy;
    if (this.#cpuAt >= 0) busy += (cpuUs() - this.#cpuAt) / 1000;
    else {
      // No clock after the spin: assume the rest went as the spin measured.
      const spun = this.#last - this.#start;
      busy += spun > 0 ? ((now - this.#last) * this.#busy) / spun : 0;
    }
    return Math.min(busy, now - this.#start);
  }
}

/** The thread's CPU clock (user and system), in µs; -1 where the runtime has none. */
function cpuUs(): number {
  if (threadCpu === undefined) return -1;
  const usage = threadCpu();
  return usage.user + usage.system;
}

/** What waking the calling thread for one settled wait costs it, once measured (see `wakeCost`). */
let wake: Promise<number> | undefined;

/**
 * What the calling thread computes to wake up for one wait that settles (the event loop's turn,
 * a timer's or an I/O callback's own cost, the meter's own reads), in ms: the least of three
 * 1 ms timers, measured once per process. A probed item's busy time includes it for every wait,
 * though with many items in flight one turn of the loop serves many of them; auto takes it off.
 */
export function wakeCost(): Promise<number> {
  return wake ??= (async () => {
    let least = Infinity;
    for (let k = 0; k < 3; k++) {
      const since = performance.now();
      const meter = new BusyMeter(since);
      await new Promise<void>((resolve) => setTimeout(resolve, 1));
      least = Math.min(least, meter.stop());
    }
    return least;
  })();
}
