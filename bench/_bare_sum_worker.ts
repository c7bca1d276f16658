/**
 * The bare worker behind the shared-payload scenario's ceiling (part s2): the raw worker API,
 * no pool. Its first message is the shared `Float64Array` (over a `SharedArrayBuffer`, so
 * nothing is copied); every later message is a flat list of ranges
 * `[start0, end0, start1, end1, …]`, answered with one message holding their sums (`sumRange`
 * of `work.ts`) and the ms the summing took.
 *
 * @module
 */

import { sumRange } from "./work.ts";

interface Port {
  post(message: unknown): void;
}

let data: Float64Array | undefined;

function receive(port: Port, message: Float64Array | number[]): void {
  if (message instanceof Float64Array) {
    data = message;
    port.post("ok");
    return;
  }
  if (data === undefined) throw new Error("_bare_sum_worker: ranges before the array");
  const sums: number[] = [];
  const start = performance.now();
  for (let k = 0; k < message.length; k += 2) sums.push(sumRange(data, message[k], message[k + 1]));
  port.post({ sums, ms: performance.now() - start });
}

// deno-lint-ignore no-explicit-any
const scope = globalThis as any;
// Web workers (Deno, Bun) have `self.postMessage`; Node's worker_threads use `parentPort`.
if (typeof scope.self === "object" && typeof scope.self.postMessage === "function") {
  const port: Port = { post: (m) => scope.self.postMessage(m) };
  scope.self.onmessage = (event: MessageEvent<Float64Array | number[]>) =>
    receive(port, event.data);
  port.post("ready");
} else {
  const { parentPort } = await import("node:worker_threads");
  if (parentPort === null) throw new Error("_bare_sum_worker.ts must run in a worker");
  const port: Port = { post: (m) => parentPort.postMessage(m) };
  parentPort.on("message", (m: Float64Array | number[]) => receive(port, m));
  port.post("ready");
}
