/**
 * Small statistics and timing helpers shared by the benches.
 *
 * @module
 */

/** The median of some samples (the mean of the middle two for an even count). */
export function median(samples: readonly number[]): number {
  if (samples.length === 0) return NaN;
  const sorted = [...samples].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** The arithmetic mean of some samples. */
export function mean(samples: readonly number[]): number {
  if (samples.length === 0) return NaN;
  let sum = 0;
  for (const s of samples) sum += s;
  return sum / samples.length;
}

/** The smallest sample. */
export function min(samples: readonly number[]): number {
  return samples.length === 0 ? NaN : Math.min(...samples);
}

/** The largest sample. */
export function max(samples: readonly number[]): number {
  return samples.length === 0 ? NaN : Math.max(...samples);
}

/** Milliseconds taken by a synchronous function. */
export function timeSync(fn: () => unknown): number {
  const start = performance.now();
  fn();
  return performance.now() - start;
}

/** Milliseconds taken by an asynchronous function. */
export async function timeAsync(fn: () => Promise<unknown>): Promise<number> {
  const start = performance.now();
  await fn();
  return performance.now() - start;
}

/** Thrown by {@linkcode withWatchdog} when the watched promise takes too long. */
export class WatchdogTimeout extends Error {
  /** Creates the error for `label`, which did not settle within `ms`. */
  constructor(label: string, ms: number) {
    super(`${label} did not settle within ${ms} ms`);
    this.name = "WatchdogTimeout";
  }
}

/**
 * Waits for `promise`, but no longer than `ms`: a bench must report a hang, not become one.
 *
 * @param promise What to wait for.
 * @param ms The limit.
 * @param label What is being waited for, for the error message.
 * @returns The promise's value.
 * @throws {WatchdogTimeout} If the limit passes first.
 */
export async function withWatchdog<T>(promise: Promise<T>, ms: number, label: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new WatchdogTimeout(label, ms)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** A reading of the machine's CPU counters (Linux `/proc`), to tell how noisy a run was. */
export interface CpuSample {
  /** Jiffies of all CPUs spent busy (user, nice, system, irq, softirq). */
  busy: number;
  /** Jiffies the hypervisor gave to someone else. */
  steal: number;
  /** All jiffies of all CPUs. */
  total: number;
  /** Jiffies this process spent on any CPU (user + system, every thread). */
  self: number;
}

/**
 * Reads the CPU counters; `undefined` where `/proc` is not readable.
 *
 * @param read Reads a file as text (passed in so that this module has no `node:fs` import).
 * @returns The counters.
 */
export function sampleCpu(read: (path: string) => string): CpuSample | undefined {
  try {
    const cpu = read("/proc/stat").split("\n")[0].trim().split(/\s+/).slice(1).map(Number);
    const [user, nice, system, idle, iowait, irq, softirq, steal] = cpu;
    // /proc/self/stat: the command name may hold spaces, so count fields from the last ")".
    const stat = read("/proc/self/stat");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const self = Number(fields[11]) + Number(fields[12]);
    return {
      busy: user + nice + system + irq + softirq,
      steal,
      total: user + nice + system + idle + iowait + irq + softirq + steal,
      self,
    };
  } catch {
    return undefined;
  }
}

/**
 * A CPU reading in which "this process" includes its child processes: the reaped ones
 * (`cutime` + `cstime` of /proc/self/stat) and the live ones in `pids` (their own
 * /proc/<pid>/stat), so that a worker process's CPU is not counted as another's load.
 *
 * @param read Reads a file as text.
 * @param pids The live child processes.
 * @returns The counters.
 */
export function sampleCpuWithChildren(
  read: (path: string) => string,
  pids: readonly number[],
): CpuSample | undefined {
  const sample = sampleCpu(read);
  if (sample === undefined) return undefined;
  const fields = (path: string): string[] | undefined => {
    try {
      const stat = read(path);
      return stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    } catch {
      return undefined;
    }
  };
  const own = fields("/proc/self/stat");
  let children = own === undefined ? 0 : Number(own[13]) + Number(own[14]);
  for (const pid of pids) {
    const f = fields(`/proc/${pid}/stat`);
    if (f !== undefined) children += Number(f[11]) + Number(f[12]);
  }
  return { ...sample, self: sample.self + children };
}

/**
 * How much of the machine others used between two samples: busy time not spent by this
 * process, plus steal, as a share of all CPU time.
 *
 * @returns A description such as "others used 12% of the CPUs (steal 3%)".
 */
export function describeLoad(from: CpuSample | undefined, to: CpuSample | undefined): string {
  if (from === undefined || to === undefined || to.total <= from.total) {
    return "machine load unknown";
  }
  const total = to.total - from.total;
  const others = Math.max(0, (to.busy - from.busy) - (to.self - from.self));
  const steal = to.steal - from.steal;
  const pct = (x: number): string => `${Math.round((100 * x) / total)}%`;
  return `others used ${pct(others + steal)} of the CPUs (steal ${pct(steal)}), this process ${
    pct(to.self - from.self)
  }`;
}
