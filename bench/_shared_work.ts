/**
 * The workload of `shared.ts` and `shared.bench.ts`: sums of disjoint ranges of one large
 * `Float64Array`. Every export is a module task (`fn(input, ctx)`); the serial baseline calls
 * the same functions on the main thread. Plain-typed TypeScript, so that Node can strip its
 * types in every worker.
 *
 * @module
 */

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
 * The task: sums one range of the input's array, read once through the handle.
 *
 * @param input The array (handle or array) and the range.
 * @returns The sum of the range.
 */
export function rangeSum(input: RangeInput): number {
  const data = input.data;
  const array = data instanceof Float64Array ? data : data.value;
  return sumRange(array, input.start, input.end);
}

/** Does nothing: warms a pool without sending anything large. */
export function noop(): void {}

/**
 * The value at index `i` of the benches' array: small integers, so every partial sum is exact
 * in a double and any two ways of summing a range agree to the bit.
 */
export function fillValue(i: number): number {
  return i & 1023;
}

/** Tells this module's instances (one per worker) apart in {@linkcode timedRangeSum}. */
const INSTANCE = Math.random();

/**
 * {@linkcode rangeSum}, timed: for `shared.ts`'s diagnosis of where a map's time goes.
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
