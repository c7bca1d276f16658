/**
 * Seeds: the base seed of a call (`seed` options), checked here, and `seedFor`, the seed of
 * one keyed task. The mixing itself is `worker/seed.js`, which workers import as is.
 *
 * @module
 */

import { describe } from "./_checks.ts";
import { mixSeed } from "./worker/seed.js";

const MAX_U64 = (1n << 64n) - 1n;

/**
 * Validates a base seed: an integer from 0 to 2^64 - 1, as a safe-integer number or a bigint.
 *
 * @throws {TypeError} If it is neither.
 * @throws {RangeError} If it is out of range.
 */
export function toBaseSeed(value: unknown, name = "seed"): bigint {
  const expected =
    `Expected \`${name}\` to be an integer from 0 to 2^64 - 1 (a safe-integer number or a bigint)`;
  if (typeof value === "bigint") {
    if (value < 0n || value > MAX_U64) throw new RangeError(`${expected}, got ${value}n`);
    return value;
  }
  if (typeof value !== "number") throw new TypeError(`${expected}, got ${describe(value)}`);
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new RangeError(`${expected}, got ${value}`);
  }
  return BigInt(value);
}

const FNV_OFFSET = 0xcbf29ce484222325n;
const FNV_PRIME = 0x100000001b3n;

/**
 * Derives a seed for one task of {@linkcode runParallel} (or any keyed work) from a base seed
 * and the task's key, the same way `ctx.seed` is derived for the task at an index.
 *
 * - A numeric key `k` (an integer from 0 up) gives exactly the `ctx.seed` of index `k` under
 *   the same base seed.
 * - A string key is first hashed to 64 bits with FNV-1a over its UTF-8 bytes, and that hash
 *   is used as the index.
 *
 * The index is then mixed with SplitMix64 (`z = base + 0x9E3779B97F4A7C15 · (index + 1)`,
 * then `z ^= z >> 30; z *= 0xBF58476D1CE4E5B9; z ^= z >> 27; z *= 0x94D049BB133111EB;
 * z ^= z >> 31`, all mod 2^64), and the top 53 bits are returned, so the seed is a safe
 * integer. Nothing else goes in: no time, no worker identity.
 *
 * To seed a generator of your own, feed it this number: for a 32-bit generator take
 * `seed % 2 ** 32` (and `Math.floor(seed / 2 ** 32)` for a second word); for a 64-bit one,
 * `BigInt(seed)`.
 *
 * @param baseSeed An integer from 0 to 2^64 - 1 (number or bigint).
 * @param key A string, or an integer from 0 up (number or bigint).
 * @returns An integer from 0 to 2^53 - 1.
 * @throws {TypeError} If `baseSeed` or `key` has the wrong type.
 * @throws {RangeError} If `baseSeed` or a numeric `key` is out of range.
 *
 * @example Same key, same seed; a numeric key matches ctx.seed
 * ```ts
 * import { ParallelExecutor, seedFor } from "@fanout/fanout";
 * import assert from "node:assert/strict";
 *
 * assert.equal(seedFor(42, "alpha"), seedFor(42n, "alpha"));
 * assert.notEqual(seedFor(42, "alpha"), seedFor(42, "beta"));
 *
 * await using ex = new ParallelExecutor({ strategy: "serial", seed: 42 });
 * const seeds = await ex.map((_: string, ctx) => ctx.seed, ["a", "b"]);
 * assert.deepEqual(seeds, [seedFor(42, 0), seedFor(42, 1)]);
 * ```
 */
export function seedFor(baseSeed: number | bigint, key: string | number | bigint): number {
  const base = toBaseSeed(baseSeed, "baseSeed");
  let index: bigint;
  if (typeof key === "string") {
    index = FNV_OFFSET;
    for (const byte of new TextEncoder().encode(key)) {
      index = ((index ^ BigInt(byte)) * FNV_PRIME) & MAX_U64;
    }
  } else if (typeof key === "number" || typeof key === "bigint") {
    index = toBaseSeed(key, "key");
  } else {
    throw new TypeError(
      `Expected \`key\` to be a string or an integer from 0 up, got ${describe(key)}`,
    );
  }
  return mixSeed(base, index);
}
