/**
 * The loopback server of `io.ts`'s fetch part, run as a process of its own, as a real server
 * is: its request handling must not count as the client's computing, nor take the client's
 * thread. A `node:http` server on 127.0.0.1 (port 0) that answers `fetchAnswer(id)` to
 * `GET /?id=N` after `delayMs` (its first argument).
 *
 * Its stdout says `{"port":N}` once listening; then each `stats` line on its stdin is answered
 * with one JSON line `{"served","open","peak"}` (the peak since the previous `stats`). The end
 * of its stdin closes it.
 *
 * @module
 */

import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import process from "node:process";
import { createInterface } from "node:readline";
import { fetchAnswer } from "./_io_work.ts";

const delayMs = Number(process.argv.at(-1));
if (!(delayMs >= 0)) {
  process.stderr.write(`_io_server: expected a delay in ms as the last argument, got ${delayMs}\n`);
  process.exit(2);
}
const state = { served: 0, open: 0, peak: 0 };
const server = createServer((req, res) => {
  state.open++;
  if (state.open > state.peak) state.peak = state.open;
  const id = Number(new URL(req.url ?? "/", "http://127.0.0.1").searchParams.get("id"));
  setTimeout(() => {
    state.open--;
    state.served++;
    if (!Number.isInteger(id)) {
      res.writeHead(400, { "content-type": "text/plain" });
      res.end(`no id in ${req.url}`);
      return;
    }
    res.writeHead(200, { "content-type": "text/plain" });
    res.end(String(fetchAnswer(id)));
  }, delayMs);
});
server.listen(0, "127.0.0.1", () => {
  process.stdout.write(`${JSON.stringify({ port: (server.address() as AddressInfo).port })}\n`);
});
const lines = createInterface({ input: process.stdin });
lines.on("line", (line) => {
  if (line !== "stats") return;
  process.stdout.write(`${JSON.stringify(state)}\n`);
  state.peak = state.open;
});
lines.on("close", () => {
  server.close(() => process.exit(0));
  server.closeAllConnections?.();
});
