/**
 * Per-task seeds: SplitMix64 (Steele, Lea and Flood, 2014), the mixing function behind
 * `ctx.seed` and `seedFor`. Plain JavaScript so that workers import it as is (see
 * run_task.js). Nothing here reads a clock or any other source of entropy.
 *
 * @module
 */

const MASK = (1n << 64n) - 1n;
const GAMMA = 0x9e3779b97f4a7c15n;

/**
 * The seed of the task at `index` for the base seed `base`: the `index + 1`-th output of
 * SplitMix64 started at `base`, cut to its top 53 bits so that it is a safe integer.
 *
 * ```
 * z = (base + 0x9E3779B97F4A7C15 · (index + 1)) mod 2^64
 * z = (z ^ (z >> 30)) · 0xBF58476D1CE4E5B9 mod 2^64
 * z = (z ^ (z >> 27)) · 0x94D049BB133111EB mod 2^64
 * z = z ^ (z >> 31)
 * seed = z >> 11
 * ```
 *
 * @param {bigint} base An unsigned 64-bit integer.
 * @param {bigint} index An unsigned 64-bit integer.
 * @returns {number} An integer from 0 to 2^53 - 1.
 */
export function mixSeed(base, index) {
  let z = (base + GAMMA * (index + 1n)) & MASK;
  z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & MASK;
  z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & MASK;
  z ^= z >> 31n;
  return Number(z >> 11n);
}

/**
 * A base seed as the two 32-bit words a thread's shared header holds.
 *
 * @param {bigint} seed
 * @returns {[number, number]} High and low word, each as a signed 32-bit integer.
 */
export function seedWords(seed) {
  return [Number(BigInt.asIntN(32, seed >> 32n)), Number(BigInt.asIntN(32, seed))];
}

/**
 * The base seed back from its two words.
 *
 * @param {number} high
 * @param {number} low
 * @returns {bigint}
 */
export function seedFromWords(high, low) {
  return (BigInt(high >>> 0) << 32n) | BigInt(low >>> 0);
}
