/**
 * Values of the `fanout` command's flags, checked: a bad one is a {@linkcode UsageError}
 * naming the flag and what was expected.
 *
 * @module
 */

import { UsageError } from "./errors.ts";

/** A whole number from `min`. */
export function whole(flag: string, text: string, min = 1): number {
  const n = Number(text);
  if (!/^\d+$/.test(text) || n < min) {
    throw new UsageError(
      flag,
      `Expected ${flag} to be a whole number from ${min}, got ${JSON.stringify(text)}`,
    );
  }
  return n;
}

/** A number of seconds above 0. */
export function seconds(flag: string, text: string): number {
  const n = Number(text);
  if (text === "" || !Number.isFinite(n) || n <= 0) {
    throw new UsageError(
      flag,
      `Expected ${flag} to be a number of seconds above 0, got ${JSON.stringify(text)}`,
    );
  }
  return n;
}
