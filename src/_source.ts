/**
 * A call's input: the one place that decides whether `items` can be read, and how. Arrays and
 * typed arrays are sliced; any other iterable or async iterable is read lazily, item by item,
 * as `for…of` would read it.
 *
 * @module
 */

import { describe } from "./_checks.ts";

/** An input, resolved. */
export type Source =
  | { readonly kind: "array"; readonly items: ArrayLike<unknown> }
  | { readonly kind: "sync"; readonly iterator: Iterator<unknown> }
  | { readonly kind: "async"; readonly iterator: AsyncIterator<unknown> };

/**
 * Resolves `items` into a source.
 *
 * @throws {TypeError} If `items` is neither iterable nor async iterable.
 */
export function toSource(items: unknown): Source {
  if (Array.isArray(items) || ArrayBuffer.isView(items) && !(items instanceof DataView)) {
    return { kind: "array", items: items as ArrayLike<unknown> };
  }
  if (items !== null && typeof items === "object" || typeof items === "string") {
    const object = items as Partial<AsyncIterable<unknown> & Iterable<unknown>>;
    if (typeof object[Symbol.asyncIterator] === "function") {
      return { kind: "async", iterator: object[Symbol.asyncIterator]!() };
    }
    if (typeof object[Symbol.iterator] === "function") {
      return { kind: "sync", iterator: object[Symbol.iterator]!() };
    }
  }
  throw new TypeError(
    `Expected \`items\` to be an iterable or async iterable, got ${describe(items)}`,
  );
}

/**
 * An iterator result, checked the way `for…of` checks it: a `next()` that returns a
 * non-object would otherwise read as an endless stream of `undefined` items.
 */
export function checkResult<T>(result: IteratorResult<T>): IteratorResult<T> {
  if ((typeof result !== "object" || result === null) && typeof result !== "function") {
    throw new TypeError(
      `Expected the iterator of \`items\` to return an object from next(), got ${describe(result)}`,
    );
  }
  return result;
}

/** Reads up to `size` items from `source` from `position` on (arrays are sliced). */
export function take(source: Source, position: number, size: number): unknown[] {
  if (source.kind === "array") {
    const end = Math.min(position + size, source.items.length);
    return Array.prototype.slice.call(source.items, position, end);
  }
  const items: unknown[] = [];
  const iterator = source.iterator as Iterator<unknown>;
  while (items.length < size) {
    const next = checkResult(iterator.next());
    if (next.done) break;
    items.push(next.value);
  }
  return items;
}

/** Reads up to `size` items from an async source. */
export async function takeAsync(
  iterator: AsyncIterator<unknown>,
  size: number,
): Promise<unknown[]> {
  const items: unknown[] = [];
  while (items.length < size) {
    const next = checkResult(await iterator.next());
    if (next.done) break;
    items.push(next.value);
  }
  return items;
}

/** Lets go of an input read only in part: its iterator's `return()`, whose failure is ignored. */
export function abandon(source: Source): void {
  if (source.kind === "array") return;
  try {
    const returned = source.iterator.return?.();
    if (returned instanceof Promise) returned.catch(() => {});
  } catch {
    // The input's own cleanup failed; the call's error is the one to report.
  }
}

/** How many items an input holds, when that is known without reading it. */
export function countOf(items: unknown): number | undefined {
  if (Array.isArray(items)) return items.length;
  if (ArrayBuffer.isView(items) && !(items instanceof DataView)) {
    return (items as unknown as { length: number }).length;
  }
  if (items instanceof Set || items instanceof Map) return items.size;
  return undefined;
}
