/**
 * The tasks of every scenario and of the demo. Every export that takes an input is a module
 * task: the pool calls it as `fn(input, ctx)`, and the serial baselines and the expected
 * results call the same function on the main thread. Plain-typed TypeScript with no imports,
 * so that a worker loads nothing else and Node can strip its types in every worker.
 *
 * CPU work is sized by an iteration count, never by reading the clock, so that the serial
 * baseline and every strategy do exactly the same work; the scenarios calibrate the count on
 * the runtime they run on before they start timing (`calibrateSpin` in `_measure.ts`).
 *
 * @module
 */

/**
 * Iterations of {@linkcode spin} that take about 20 ms on this project's reference machine
 * (2-core AMD EPYC; Deno 2.9, Bun 1.4 and Node 24 are within 5% of each other here).
 */
export const SPIN_ITERATIONS_20MS = 12_500_000;

/**
 * A CPU-bound task of fixed size: `iterations` steps of a xorshift generator, folded into a
 * checksum so that no engine can drop the loop.
 *
 * @param iterations How many steps; {@linkcode SPIN_ITERATIONS_20MS} takes about 20 ms.
 * @returns The checksum; the same for the same `iterations` on every runtime.
 */
export function spin(iterations: number): number {
  let x = 0x2545f491 | 0;
  let acc = 0;
  for (let i = 0; i < iterations; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    // Masked, not `| 0`: the sum then never leaves the small-integer range, so V8 does not
    // deoptimize on overflow (with `| 0`, Node 24 settled on code 2.8× slower after ~400 calls).
    acc = (acc + (x & 1023)) & 0x3fffffff;
  }
  return acc;
}

/** A half-open range of integers, `[from, to)`. */
export interface Range {
  from: number;
  to: number;
}

/**
 * Counts the primes in a range by trial division: the demo's workload.
 *
 * @param range The range `[from, to)`.
 * @returns How many primes it holds.
 */
export function countPrimes(range: Range): number {
  let count = 0;
  for (let n = Math.max(range.from, 2); n < range.to; n++) {
    let prime = true;
    for (let d = 2; d * d <= n; d++) {
      if (n % d === 0) {
        prime = false;
        break;
      }
    }
    if (prime) count++;
  }
  return count;
}

/**
 * The trivial task used to measure per-item overhead (the "tiny" workload of auto).
 *
 * @param n A number.
 * @returns `n + 1`.
 */
export function inc(n: number): number {
  return n + 1;
}

/** Does nothing: one call measures a pure round trip, or warms a pool sending nothing large. */
export function noop(): void {}

// ---------------------------------------------------------------------------------------------
// Payloads: sums over ranges of one large Float64Array (shared payloads, auto's "payload")

/** What a task reads of a `Shared<Float64Array>` handle (`import type` would pull in mod.ts). */
export interface SharedFloat64 {
  readonly value: Float64Array;
}

/** One task's input: the array (a shared handle, or the array itself, cloned per task). */
export interface RangeInput {
  data: SharedFloat64 | Float64Array;
  start: number;
  end: number;
}

/**
 * The value at index `i` of the payload array: small integers, so that every partial sum is
 * exact in a double and any two ways of summing a range agree to the bit.
 */
export function fillValue(i: number): number {
  return i & 1023;
}

/**
 * Sums `a[start]` to `a[end - 1]`.
 *
 * @param a The array.
 * @param start First index.
 * @param end One past the last index.
 * @returns The sum.
 */
export function sumRange(a: Float64Array, start: number, end: number): number {
  let sum = 0;
  for (let i = start; i < end; i++) sum += a[i];
  return sum;
}

/**
 * The shared-payload task: sums one range of the input's array, read once through the handle.
 *
 * @param input The array (handle or array) and the range.
 * @returns The sum of the range.
 */
export function rangeSum(input: RangeInput): number {
  const data = input.data;
  const array = data instanceof Float64Array ? data : data.value;
  return sumRange(array, input.start, input.end);
}

/** Tells this module's instances (one per worker) apart in {@linkcode timedRangeSum}. */
const INSTANCE = Math.random();

/**
 * {@linkcode rangeSum}, timed: for the shared-payload scenario's diagnosis of where a map's
 * time goes.
 *
 * @returns `[sum, start, end, instance]`: the times in ms since the epoch
 * (`performance.timeOrigin + performance.now()`, comparable across threads), and a number
 * that is the same for every call in one worker.
 */
export function timedRangeSum(input: RangeInput): [number, number, number, number] {
  const start = performance.timeOrigin + performance.now();
  const sum = rangeSum(input);
  return [sum, start, performance.timeOrigin + performance.now(), INSTANCE];
}

/** One task of auto's "payload" workload: a range of the shared array, summed `passes` times. */
export interface PassesInput {
  data: SharedFloat64;
  start: number;
  end: number;
  passes: number;
}

/**
 * Sums `a[start]` to `a[end - 1]`, `passes` times, the p-th pass weighted by p + 1 (so that no
 * engine can fold the passes into one); exact for the values of {@linkcode fillValue}.
 */
export function weightedSum(a: Float64Array, start: number, end: number, passes: number): number {
  let total = 0;
  for (let p = 1; p <= passes; p++) {
    let sum = 0;
    for (let i = start; i < end; i++) sum += a[i];
    total += p * sum;
  }
  return total;
}

/**
 * Auto's "payload" task: reads the shared array through its handle and sums one range of it.
 *
 * @param input The handle, the range and the number of passes.
 * @returns {@linkcode weightedSum} of the range.
 */
export function passesSum(input: PassesInput): number {
  return weightedSum(input.data.value, input.start, input.end, input.passes);
}

// ---------------------------------------------------------------------------------------------
// I/O-like waits (auto's "io")

/** One "io" task: how long to wait, and a value to answer with. */
export interface WaitInput {
  ms: number;
  value: number;
}

/**
 * The answer of {@linkcode wait} for `value`, computed without waiting (the expected results).
 */
export function waitAnswer(value: number): number {
  return value * 3 + 1;
}

/**
 * The "io" task: an I/O-like wait (a timer), then a trivial answer. Takes almost no CPU.
 *
 * @param input How long to wait and what to answer.
 * @returns {@linkcode waitAnswer} of the value, once the timer fired.
 */
export async function wait(input: WaitInput): Promise<number> {
  await new Promise<void>((resolve) => setTimeout(resolve, input.ms));
  return waitAnswer(input.value);
}
