/**
 * The bare worker behind the baselines: replies to each number `n` with `n + 1`, one message
 * each way, nothing else. Plain JavaScript so that Node pays no type stripping to start it,
 * like the pool's own worker entry.
 *
 * @module
 */

const scope = /** @type {any} */ (globalThis);
// Web workers (Deno, Bun) have `self.postMessage`; Node's worker_threads use `parentPort`.
if (typeof scope.self === "object" && typeof scope.self.postMessage === "function") {
  scope.self.onmessage = (/** @type {MessageEvent<number>} */ event) => {
    scope.self.postMessage(event.data + 1);
  };
  scope.self.postMessage("ready");
} else {
  const { parentPort } = await import("node:worker_threads");
  if (parentPort === null) throw new Error("_bare_worker.js must run in a worker");
  parentPort.on("message", (/** @type {number} */ n) => parentPort.postMessage(n + 1));
  parentPort.postMessage("ready");
}
