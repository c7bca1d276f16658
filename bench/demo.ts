/**
 * The README's main job: count the primes below 8,000,000 by splitting the range into 64
 * pieces, once on the calling thread and once on worker threads, and compare.
 *
 * ```sh
 * npm run demo                              # Node 24
 * node_modules/.bin/deno run -A bench/demo.ts
 * node_modules/.bin/bun bench/demo.ts
 * ```
 *
 * @module
 */

import process from "node:process";
import { ParallelExecutor, tasks } from "../mod.ts";
import type { Range } from "./work.ts";

const LIMIT = 8_000_000;
const PIECES = 64;

const work = tasks<typeof import("./work.ts")>(new URL("./work.ts", import.meta.url));

const ranges: Range[] = Array.from({ length: PIECES }, (_, i) => ({
  from: Math.floor((LIMIT * i) / PIECES),
  to: Math.floor((LIMIT * (i + 1)) / PIECES),
}));

/** Runs the job with one strategy; returns the total and the wall time. */
async function countWith(
  strategy: "serial" | "threads",
): Promise<{ primes: number; ms: number; workers: number }> {
  const start = performance.now();
  // `await using` closes the executor (and stops its workers) when the block ends.
  await using ex = new ParallelExecutor({ strategy });
  const counts = await ex.map(work.countPrimes, ranges);
  const ms = performance.now() - start;
  return { primes: counts.reduce((a, b) => a + b, 0), ms, workers: ex.maxWorkers };
}

function runtime(): string {
  const g = globalThis as { Deno?: { version: { deno: string } }; Bun?: { version: string } };
  if (g.Deno) return `Deno ${g.Deno.version.deno}`;
  if (g.Bun) return `Bun ${g.Bun.version}`;
  return `Node ${process.versions.node}`;
}

const serial = await countWith("serial");
const threads = await countWith("threads");
if (serial.primes !== threads.primes) {
  throw new Error(`serial found ${serial.primes} primes but threads found ${threads.primes}`);
}

console.log(`runtime:  ${runtime()}`);
console.log(
  `job:      count the primes below ${LIMIT.toLocaleString("en-US")} in ${PIECES} ranges`,
);
console.log(`primes:   ${serial.primes.toLocaleString("en-US")}`);
console.log(`serial:   ${serial.ms.toFixed(0)} ms`);
console.log(
  `threads:  ${threads.ms.toFixed(0)} ms on ${threads.workers} workers (pool start included)`,
);
console.log(`speedup:  ${(serial.ms / threads.ms).toFixed(2)}×`);
