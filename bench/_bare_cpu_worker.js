/**
 * The bare worker behind the CPU baseline: runs `spin(n)` from `work.ts` for each number `n`
 * it receives and replies with the checksum, one message each way.
 *
 * @module
 */

import { spin } from "./work.ts";

const scope = /** @type {any} */ (globalThis);
// Web workers (Deno, Bun) have `self.postMessage`; Node's worker_threads use `parentPort`.
if (typeof scope.self === "object" && typeof scope.self.postMessage === "function") {
  scope.self.onmessage = (/** @type {MessageEvent<number>} */ event) => {
    scope.self.postMessage(spin(event.data));
  };
  scope.self.postMessage("ready");
} else {
  const { parentPort } = await import("node:worker_threads");
  if (parentPort === null) throw new Error("_bare_cpu_worker.js must run in a worker");
  parentPort.on("message", (/** @type {number} */ n) => parentPort.postMessage(spin(n)));
  parentPort.postMessage("ready");
}
