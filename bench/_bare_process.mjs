// @ts-check
/**
 * The bare process baseline of `processes.ts` (figure p1): a child of the runtime's own
 * executable that echoes every message back, on the transport the process strategy uses but
 * with none of its machinery: the IPC channel on Node and Bun (structured serialization), and
 * on Deno frames over stdin/stdout (a 4-byte little-endian length, then the message in V8's
 * format through `node:v8`). It says "ready" first, and exits when its channel closes.
 *
 * @module
 */

import process from "node:process";

/** @type {any} */
const deno = /** @type {any} */ (globalThis).Deno;

if (typeof process.send === "function") {
  const send = /** @type {NonNullable<typeof process.send>} */ (process.send).bind(process);
  process.on("message", (message) => send(message));
  process.on("disconnect", () => process.exit(0));
  send("ready");
} else if (deno !== undefined) {
  const { frame, unframer } = await import("./_frames.mjs");
  /** @param {unknown} message */
  const send = (message) => {
    const bytes = frame(message);
    let written = 0;
    while (written < bytes.length) written += deno.stdout.writeSync(bytes.subarray(written));
  };
  send("ready");
  const push = unframer(send);
  for await (const chunk of deno.stdin.readable) push(chunk);
} else {
  throw new Error("_bare_process.mjs must be started by bench/processes.ts");
}
