/**
 * The workloads of `ablation.ts` and `ablation.bench.ts` (issue 5): one module task per kind
 * of work. Every export is a module task (`fn(input, ctx)`); the expected results are computed
 * by calling the same functions on the main thread. Plain-typed TypeScript, so that Node can
 * strip its types in every worker.
 *
 * CPU work is sized by an iteration count, never by reading the clock, so that every strategy
 * does exactly the same work; `ablation.ts` calibrates the counts per runtime.
 *
 * @module
 */

/**
 * The trivial task ("tiny" items): far below a microsecond.
 *
 * @param n A number.
 * @returns `n + 1`.
 */
export function inc(n: number): number {
  return n + 1;
}

// The CPU-bound task of fixed size ("small", "cpu" and "skewed" items), and the iterations that
// take about 20 ms before calibration: bench/work.ts's.
export { spin, SPIN_ITERATIONS_20MS } from "./work.ts";

/** What a task reads of a `Shared<Float64Array>` handle (`import type` would pull in mod.ts). */
export interface SharedFloat64 {
  readonly value: Float64Array;
}

/** One "payload" task: a range of the shared array, summed `passes` times. */
export interface RangeInput {
  data: SharedFloat64;
  start: number;
  end: number;
  passes: number;
}

/**
 * The value at index `i` of the payload array: small integers, so that every partial sum is
 * exact in a double and every strategy's sums agree to the bit.
 */
export function fillValue(i: number): number {
  return i & 1023;
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
 * The "payload" task: reads the shared array through its handle and sums one range of it.
 *
 * @param input The handle, the range and the number of passes.
 * @returns {@linkcode weightedSum} of the range.
 */
export function rangeSum(input: RangeInput): number {
  return weightedSum(input.data.value, input.start, input.end, input.passes);
}

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
