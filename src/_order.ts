/**
 * The keys of `runParallel`: the order its results and failures are sorted in, and how a key
 * reads in a message. The order depends on the keys alone (`orderKey(key)`, ties by submit
 * index), so a run gives the same answer whichever task finished first.
 *
 * @module
 */

import { describe } from "./_checks.ts";

/** A value `orderKey` may return: numbers (and bigints), strings, or arrays of them compared element by element. */
export type OrderValue = number | bigint | string | readonly OrderValue[];

/**
 * Submit indices sorted by `orderKey(key)`, ties by index. Every key is mapped and checked
 * before any comparison, so a bad `orderKey` fails the same way whatever the sort visits first.
 *
 * @throws {TypeError} If `orderKey` returns something that cannot be ordered, or values of
 *   two kinds.
 */
export function sortedOrder<K>(keys: readonly K[], orderKey: (key: K) => OrderValue): number[] {
  const values = keys.map((key) => {
    const value = orderKey(key);
    checkOrderValue(key, value, value);
    return value;
  });
  return keys.map((_, at) => at).sort((a, b) =>
    compareOrder(values[a], values[b], keys[a], keys[b]) || a - b
  );
}

/** A key as a message shows it: strings quoted, bigints with their `n`, objects as JSON. */
export function showKey(key: unknown): string {
  if (typeof key === "string") return JSON.stringify(key);
  if (typeof key === "bigint") return `${key}n`;
  if (typeof key === "number" || typeof key === "boolean" || key == null) return String(key);
  try {
    return JSON.stringify(key) ?? String(key);
  } catch {
    return String(key);
  }
}

function checkOrderValue(key: unknown, value: unknown, whole: unknown): void {
  if (typeof value === "string" || typeof value === "bigint") return;
  if (typeof value === "number" && !Number.isNaN(value)) return;
  if (Array.isArray(value)) {
    for (const inner of value) checkOrderValue(key, inner, whole);
    return;
  }
  throw new TypeError(
    `Expected orderKey to return a number, bigint, string or an array of them for key ${
      showKey(key)
    }, got ${whole === value ? describe(value) : `${describe(value)} inside an array`}`,
  );
}

/** Numbers and bigints compare with each other, so they are one kind. */
function kindOf(value: OrderValue): string {
  return typeof value === "bigint" ? "number" : Array.isArray(value) ? "array" : typeof value;
}

function compareOrder(a: OrderValue, b: OrderValue, keyA: unknown, keyB: unknown): number {
  const kind = kindOf(a);
  if (kind !== kindOf(b)) {
    throw new TypeError(
      `Expected orderKey to return values of one kind, got a ${kind} for key ${
        showKey(keyA)
      } and a ${kindOf(b)} for key ${showKey(keyB)}, which cannot be ordered`,
    );
  }
  if (kind === "array") {
    const x = a as readonly OrderValue[];
    const y = b as readonly OrderValue[];
    for (let i = 0; i < x.length && i < y.length; i++) {
      const c = compareOrder(x[i], y[i], keyA, keyB);
      if (c !== 0) return c;
    }
    // A shorter array that is a prefix of the longer sorts first.
    return x.length - y.length;
  }
  return a < b ? -1 : a > b ? 1 : 0;
}
