/**
 * How much code one warm `map()` on threads runs on the calling thread: V8's precise coverage
 * counts the calls into each of fanout's `src/` files for one `map()` of 4 items on a warm
 * 2-thread pool (one chunk). A figure for the structure of the pipeline, not for speed; the
 * worker's side is not counted (another isolate). Node only (`node:inspector`).
 *
 * ```sh
 * node_modules/.bin/node bench/call_path.ts        # calls per file
 * node_modules/.bin/node bench/call_path.ts -v     # and per function
 * ```
 *
 * @module
 */

import { Session } from "node:inspector/promises";
import process from "node:process";
import { ParallelExecutor } from "../mod.ts";

const root = new URL("../src/", import.meta.url).href;
await using ex = new ParallelExecutor({ strategy: "threads", maxWorkers: 2 });
const inc = (n: number): number => n + 1;
const items = [1, 2, 3, 4];
for (let i = 0; i < 50; i++) await ex.map(inc, items);

const session = new Session();
session.connect();
await session.post("Profiler.enable");
await session.post("Profiler.startPreciseCoverage", { callCount: true, detailed: false });
await session.post("Profiler.takePreciseCoverage"); // Drops what the warm-up counted.
await ex.map(inc, items);
const { result } = await session.post("Profiler.takePreciseCoverage");
await session.post("Profiler.stopPreciseCoverage");
session.disconnect();

const byFile = new Map<string, number>();
const byFunction: string[] = [];
for (const script of result) {
  if (!script.url.startsWith(root)) continue;
  const file = script.url.slice(root.length);
  for (const fn of script.functions) {
    const count = fn.ranges[0].count;
    // The module's own top-level function (offset 0, no name) ran at load, not in the call.
    if (count === 0 || (fn.functionName === "" && fn.ranges[0].startOffset === 0)) continue;
    byFile.set(file, (byFile.get(file) ?? 0) + count);
    byFunction.push(`${file} ${fn.functionName || "(anonymous)"} ×${count}`);
  }
}
let total = 0;
for (const [file, count] of [...byFile].sort()) {
  console.log(`${String(count).padStart(4)}  ${file}`);
  total += count;
}
console.log(`${String(total).padStart(4)}  calls in ${byFile.size} files`);
if (process.argv.includes("-v")) console.log(byFunction.join("\n"));
