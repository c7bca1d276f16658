/**
 * Shared memory for typed arrays: {@linkcode sharedArray} allocates one there, and
 * {@linkcode toSharedMemory} moves a typed array, DataView or buffer there for `share()`, so
 * that threads see one copy and no task input carries the bytes.
 *
 * @module
 */

import { checkInteger, describe } from "./_checks.ts";

/** A typed array class, as fanout makes its views: over a buffer, from an offset, a length. */
export type TypedArrayClass = new (
  buffer: ArrayBufferLike,
  offset?: number,
  length?: number,
) => ArrayBufferView;

/** The typed array classes this runtime has, by name (`Float16Array` where there is one). */
export const TYPED_ARRAY_CLASSES: Readonly<Record<string, TypedArrayClass>> = (() => {
  const classes: Record<string, TypedArrayClass> = {};
  const all = [
    Int8Array,
    Uint8Array,
    Uint8ClampedArray,
    Int16Array,
    Uint16Array,
    Int32Array,
    Uint32Array,
    Float32Array,
    Float64Array,
    BigInt64Array,
    BigUint64Array,
    (globalThis as { Float16Array?: unknown }).Float16Array,
  ];
  for (const Type of all) {
    if (typeof Type === "function") classes[Type.name] = Type as unknown as TypedArrayClass;
  }
  return classes;
})();

/**
 * Makes a typed array of each class over shared memory, by the class's name (Float16Array only
 * where the runtime has it). A view is looked up by its tag (`Object.prototype.toString`),
 * which holds for one of another realm too, where `instanceof` would not.
 */
const TYPED_ARRAYS: Record<string, (buffer: SharedArrayBuffer, length: number) => unknown> = {};
for (const [name, View] of Object.entries(TYPED_ARRAY_CLASSES)) {
  TYPED_ARRAYS[name] = (buffer, length) => new View(buffer, 0, length);
}

/**
 * A typed array, DataView or buffer over shared memory: itself if it already is, else a copy
 * (made once, here); `undefined` for any other value, which `share()` snapshots instead.
 *
 * @throws {TypeError} For a view of a kind this runtime cannot make over shared memory.
 */
export function toSharedMemory(value: unknown): unknown {
  if (value instanceof SharedArrayBuffer) return value;
  if (value instanceof ArrayBuffer) return copyToShared(new Uint8Array(value)).buffer;
  if (!ArrayBuffer.isView(value)) return undefined;
  if (value.buffer instanceof SharedArrayBuffer) return value;
  const bytes = copyToShared(new Uint8Array(value.buffer, value.byteOffset, value.byteLength));
  if (value instanceof DataView) return new DataView(bytes.buffer);
  const tag = Object.prototype.toString.call(value).slice(8, -1);
  const make = TYPED_ARRAYS[tag];
  if (make === undefined) {
    throw new TypeError(`Expected a typed array, DataView or buffer to share, got a ${tag}`);
  }
  return make(bytes.buffer as SharedArrayBuffer, (value as unknown as { length: number }).length);
}

function copyToShared(bytes: Uint8Array): Uint8Array<SharedArrayBuffer> {
  const copy = new Uint8Array(new SharedArrayBuffer(bytes.byteLength));
  copy.set(bytes);
  return copy;
}

/** A typed array class {@linkcode sharedArray} can allocate. */
export type TypedArrayConstructor =
  | Int8ArrayConstructor
  | Uint8ArrayConstructor
  | Uint8ClampedArrayConstructor
  | Int16ArrayConstructor
  | Uint16ArrayConstructor
  | Int32ArrayConstructor
  | Uint32ArrayConstructor
  | Float32ArrayConstructor
  | Float64ArrayConstructor
  | BigInt64ArrayConstructor
  | BigUint64ArrayConstructor;

/** The array {@linkcode sharedArray} makes for the class `C`: its type, over shared memory. */
export type SharedTypedArray<C extends TypedArrayConstructor> = C extends Int8ArrayConstructor
  ? Int8Array<SharedArrayBuffer>
  : C extends Uint8ArrayConstructor ? Uint8Array<SharedArrayBuffer>
  : C extends Uint8ClampedArrayConstructor ? Uint8ClampedArray<SharedArrayBuffer>
  : C extends Int16ArrayConstructor ? Int16Array<SharedArrayBuffer>
  : C extends Uint16ArrayConstructor ? Uint16Array<SharedArrayBuffer>
  : C extends Int32ArrayConstructor ? Int32Array<SharedArrayBuffer>
  : C extends Uint32ArrayConstructor ? Uint32Array<SharedArrayBuffer>
  : C extends Float32ArrayConstructor ? Float32Array<SharedArrayBuffer>
  : C extends Float64ArrayConstructor ? Float64Array<SharedArrayBuffer>
  : C extends BigInt64ArrayConstructor ? BigInt64Array<SharedArrayBuffer>
  : C extends BigUint64ArrayConstructor ? BigUint64Array<SharedArrayBuffer>
  : never;

/**
 * Allocates a typed array directly in shared memory, zero-filled. Share it with
 * `ex.share(array)` (no copy is made), write it before or after, and let tasks write their
 * results into disjoint ranges of it: on threads and serial the caller sees the writes.
 *
 * @param type The typed array class, e.g. `Float64Array`.
 * @param length Number of elements.
 * @returns A typed array of `type` over a new `SharedArrayBuffer`.
 * @throws {TypeError} If `type` is not a typed array class, or `length` is not a number.
 * @throws {RangeError} If `length` is not an integer from 0 up.
 *
 * @example An output array tasks write into
 * ```ts
 * import { ParallelExecutor, sharedArray } from "@fanout/fanout";
 * import type { Shared } from "@fanout/fanout";
 * import assert from "node:assert/strict";
 *
 * await using ex = new ParallelExecutor({ strategy: "threads", maxWorkers: 2 });
 * const out = sharedArray(Float64Array, 4);
 * using handle = ex.share(out);
 * await ex.map((job: { out: Shared<Float64Array>; i: number }) => {
 *   job.out.value[job.i] = job.i * 10;
 * }, [0, 1, 2, 3].map((i) => ({ out: handle, i })));
 * assert.deepEqual([...out], [0, 10, 20, 30]);
 * ```
 */
export function sharedArray<C extends TypedArrayConstructor>(
  type: C,
  length: number,
): SharedTypedArray<C> {
  if (
    typeof type !== "function" || TYPED_ARRAYS[type.name] === undefined ||
    (globalThis as Record<string, unknown>)[type.name] !== type
  ) {
    throw new TypeError(
      `Expected \`type\` to be a typed array class such as Float64Array, got ${describe(type)}`,
    );
  }
  checkInteger("length", length, 0);
  const buffer = new SharedArrayBuffer(length * type.BYTES_PER_ELEMENT);
  return new (type as unknown as new (b: SharedArrayBuffer) => SharedTypedArray<C>)(buffer);
}
