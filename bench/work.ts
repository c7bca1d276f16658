/**
 * Workloads for the benchmarks and the demo. Every export is a module task: the pool calls it
 * as `fn(input, ctx)`, and the serial baselines call it directly.
 *
 * The CPU task is sized by an iteration count, never by reading the clock, so that the serial
 * baseline and the threads do exactly the same work. `bench/run.ts` re-measures the count that
 * takes ~20 ms on the runtime it runs on before it starts timing.
 *
 * @module
 */

/**
 * Iterations of {@linkcode spin} that take about 20 ms on this project's reference machine
 * (2-core AMD EPYC; Deno 2.9, Bun 1.4 and Node 24 are within 5% of each other here).
 */
export const SPIN_ITERATIONS_20MS = 12_500_000;

/**
 * A CPU-bound task of fixed size: `iterations` steps of a xorshift generator, folded into a
 * checksum so that no engine can drop the loop.
 *
 * @param iterations How many steps; {@linkcode SPIN_ITERATIONS_20MS} takes about 20 ms.
 * @returns The checksum; the same for the same `iterations` on every runtime.
 */
export function spin(iterations: number): number {
  let x = 0x2545f491 | 0;
  let acc = 0;
  for (let i = 0; i < iterations; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    // Masked, not `| 0`: the sum then never leaves the small-integer range, so V8 does not
    // deoptimize on overflow (with `| 0`, Node 24 settled on code 2.8× slower after ~400 calls).
    acc = (acc + (x & 1023)) & 0x3fffffff;
  }
  return acc;
}

/** A half-open range of integers, `[from, to)`. */
export interface Range {
  from: number;
  to: number;
}

/**
 * Counts the primes in a range by trial division: the demo's workload.
 *
 * @param range The range `[from, to)`.
 * @returns How many primes it holds.
 */
export function countPrimes(range: Range): number {
  let count = 0;
  for (let n = Math.max(range.from, 2); n < range.to; n++) {
    let prime = true;
    for (let d = 2; d * d <= n; d++) {
      if (n % d === 0) {
        prime = false;
        break;
      }
    }
    if (prime) count++;
  }
  return count;
}

/**
 * The trivial task used to measure per-item overhead.
 *
 * @param n A number.
 * @returns `n + 1`.
 */
export function inc(n: number): number {
  return n + 1;
}

/** Does nothing: one call measures a pure round trip. */
export function noop(): void {}
