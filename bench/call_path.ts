/**
 * How much code one warm `map()` on threads runs on the calling thread, and how often it moves
 * from one of fanout's `src/` files to another: a figure for the structure of the pipeline, not
 * for speed. One `map()` of 4 items on a warm 2-thread pool (one chunk):
 *
 * 1. V8's precise coverage counts the calls into each file;
 * 2. a tracer in a worker thread (`_call_tracer.ts`) puts a breakpoint at the entry of every
 *    function the first count saw, and records the entries of a second, identical call in
 *    order. A **move** is an entry into a function of another file than the one entered last;
 *    "entered" counts, per file, the moves into it.
 *
 * The worker's side is not counted (another isolate). Node only (`node:inspector`).
 *
 * ```sh
 * node_modules/.bin/node bench/call_path.ts        # calls and moves per file
 * node_modules/.bin/node bench/call_path.ts -v     # and the calls per function, and the moves in order
 * ```
 *
 * @module
 */

import { Session } from "node:inspector/promises";
import process from "node:process";
import { Worker } from "node:worker_threads";
import type { Entry, Watched } from "./_call_tracer.ts";
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
const watched: Watched[] = [];
for (const script of result) {
  if (!script.url.startsWith(root)) continue;
  const file = script.url.slice(root.length);
  for (const fn of script.functions) {
    const { count, startOffset, endOffset } = fn.ranges[0];
    // The module's own top-level function (offset 0, no name) ran at load, not in the call.
    if (count === 0 || (fn.functionName === "" && startOffset === 0)) continue;
    const name = fn.functionName || "(anonymous)";
    byFile.set(file, (byFile.get(file) ?? 0) + count);
    byFunction.push(`${file} ${name} ×${count}`);
    watched.push({ scriptId: script.scriptId, file, name, startOffset, endOffset });
  }
}

// The same call again, with every function seen above watched at its entry.
const tracer = new Worker(new URL("./_call_tracer.ts", import.meta.url));
const replies = (): Promise<unknown> =>
  new Promise((resolve, reject) => {
    tracer.once("message", resolve);
    tracer.once("error", reject);
  });
let reply = replies();
tracer.postMessage({ functions: watched });
await reply;
await ex.map(inc, items);
reply = replies();
tracer.postMessage("stop");
const entries = (await reply) as Entry[];
await tracer.terminate();

const entered = new Map<string, number>();
const moves: string[] = [];
let last: string | undefined;
for (const { file, name } of entries) {
  if (file !== last) {
    entered.set(file, (entered.get(file) ?? 0) + 1);
    moves.push(`${last ?? "(caller)"} → ${file} ${name}`);
  }
  last = file;
}

let total = 0;
console.log(" calls  entered  file");
for (const [file, count] of [...byFile].sort()) {
  console.log(
    `${String(count).padStart(6)}  ${String(entered.get(file) ?? 0).padStart(7)}  ${file}`,
  );
  total += count;
}
console.log(`${String(total).padStart(6)}  calls in ${byFile.size} files`);
console.log(
  `${String(moves.length).padStart(6)}  moves between ${entered.size} files ` +
    `(${entries.length} function entries traced)`,
);
if (process.argv.includes("-v")) {
  console.log(byFunction.join("\n"));
  console.log(moves.map((move, k) => `${String(k + 1).padStart(3)}. ${move}`).join("\n"));
}
