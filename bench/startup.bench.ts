/**
 * `deno bench -A --no-check bench/startup.bench.ts`: the start-up scenario (`startup.ts`,
 * part d) as a Deno bench: a fresh pool of two workers, its first task (inline, a `.js`
 * module task, a `.ts` module task) and `close()`, against two bare workers started, pinged
 * once and terminated.
 *
 * `--no-check`: with type checking on, Deno re-checks each worker's module graph at every
 * worker start (~0.6 s each), which would swamp the figures; see bench/README.md.
 *
 * @module
 */

import { bareStartPing, FIRST_TASKS, startRunClose } from "./startup.ts";

const WORKERS = 2;
/** A start that takes this long is a hang: the bench fails instead of waiting for ever. */
const LIMIT_MS = 60_000;
const group = `start + first task + close, ${WORKERS} workers`;

Deno.bench(
  { name: "bare workers: start, ping, terminate", group, baseline: true, n: 10 },
  async () => await bareStartPing(WORKERS, LIMIT_MS),
);

for (const first of FIRST_TASKS) {
  Deno.bench(
    { name: `fanout, ${first.label}`, group, n: 10 },
    async () => await startRunClose(WORKERS, first, LIMIT_MS),
  );
}
