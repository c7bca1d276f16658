/**
 * The payload the shared-payload and auto scenarios sum: a large `Float64Array` over a
 * `SharedArrayBuffer`, filled with `work.fillValue` and cut into disjoint ranges, one per task,
 * with the sums each range must give and the tasks' inputs over the array or its handle.
 *
 * @module
 */

import { sharedArray } from "../mod.ts";
import { fillValue, sumRange } from "./work.ts";
import { expectValues } from "./_measure.ts";

export const MIB = 1 << 20;

/** A half-open range of indices. */
export interface IndexRange {
  start: number;
  end: number;
}

/** A large array summed in disjoint ranges (the shared-payload scenario and auto's "payload"). */
export interface Payload {
  /** `mb` MiB over a SharedArrayBuffer, filled with `fillValue`. */
  data: Float64Array;
  /** `tasks` disjoint ranges covering it. */
  ranges: IndexRange[];
}

/** Builds a {@linkcode Payload} of `mb` MiB in `tasks` ranges. */
export function payload(mb: number, tasks: number): Payload {
  const n = (mb * MIB) / Float64Array.BYTES_PER_ELEMENT;
  const data = sharedArray(Float64Array, n);
  for (let i = 0; i < n; i++) data[i] = fillValue(i);
  const ranges = Array.from({ length: tasks }, (_, k) => ({
    start: Math.floor((k * n) / tasks),
    end: Math.floor(((k + 1) * n) / tasks),
  }));
  return { data, ranges };
}

/** Each range's sum: what `work.rangeSum` must give. */
export function rangeSums({ data, ranges }: Payload): number[] {
  return ranges.map((r) => sumRange(data, r.start, r.end));
}

/** Fails unless a map gave the ranges' sums. */
export function checkSums(
  values: readonly number[],
  expected: readonly number[],
  what: string,
): void {
  expectValues(values, expected, what, "range");
}

/** The tasks' inputs of `work.rangeSum`: each range, over the array or its handle. */
export function rangeInputs<D>(
  ranges: readonly IndexRange[],
  data: D,
): { data: D; start: number; end: number }[] {
  return ranges.map((r) => ({ data, start: r.start, end: r.end }));
}

/** A plain (not shared) copy of an array: what a task's message clones in full. */
export function plainCopy(data: Float64Array): Float64Array {
  return new Float64Array(data);
}
