// @ts-check
/**
 * The trivial task again, in plain JavaScript: a worker that imports it pays no type
 * stripping (Node strips the types of every `.ts` module a fresh thread loads, ~28 ms the
 * first time). The start-up scenarios (`startup.ts`, `processes.ts`) time a pool's start with
 * this module, with `work.ts` and with an inline function, to show that cost separately.
 *
 * @module
 */

/**
 * @param {number} n
 * @returns {number} `n + 1`
 */
export function inc(n) {
  return n + 1;
}
