/**
 * `deno bench -A --no-check bench/submits.bench.ts`: two groups of the per-call scenario
 * (`submits.ts`) as Deno benches, each against its bare baseline so that Deno's summary prints
 * the ratios:
 *
 * - at once (part sb1): 20,000 `submit(work.inc, i)` issued at once then `Promise.all`, on two
 *   workers, against a bare pool posting one message per item, all at once;
 * - bounded (part sb3): the same 20,000 with at most 1,024 in flight, against the bare pool
 *   with the same bound.
 *
 * Sizes are those of `--quick` (the full 200,000 can take far longer than a bench should while
 * a submit's cost grows with the queue). Each iteration starts its own pool and warms it before
 * `b.start()`, and closes it after `b.end()`. The runs carry no cap here: `run.ts` has them.
 *
 * @module
 */

import { ParallelExecutor } from "../mod.ts";
import { bareMap, barePoolBench } from "./_bare.ts";
import { bareBounded } from "./_bare_bounded.ts";
import { expectValues } from "./_measure.ts";
import { boundedSubmits, burst } from "./submits.ts";
import { trivialItems } from "./throughput.ts";

const ITEMS = 20_000;
const IN_FLIGHT = 1_024;
const WORKERS = 2;
/** Far above what any run here takes: a cap that never cuts a run off. */
const NO_CAP = 10 * 60_000;

const { items, expected } = trivialItems(ITEMS);
const atOnce = `submits at once: ${ITEMS.toLocaleString("en-US")}, ${WORKERS} workers`;
const bounded = `≤ ${IN_FLIGHT} in flight: ${ITEMS.toLocaleString("en-US")}, ${WORKERS} workers`;

/** Fails a run that a cap cut off (none should be). */
function done(r: { done: boolean }): void {
  if (!r.done) throw new Error("a run was cut off");
}

Deno.bench(
  { name: "bare pool, all posted at once", group: atOnce, baseline: true, n: 10 },
  barePoolBench(
    WORKERS,
    (workers) => bareMap(workers, items),
    (values) => expectValues(values, expected, "bare pool"),
  ),
);

Deno.bench({ name: "fanout submit() × n, Promise.all", group: atOnce, n: 10 }, async (b) => {
  await using ex = new ParallelExecutor({ strategy: "threads", maxWorkers: WORKERS });
  done(await burst(ex, 2_000, NO_CAP));
  b.start();
  const r = await burst(ex, ITEMS, NO_CAP);
  b.end();
  done(r);
});

Deno.bench(
  { name: `bare pool, ≤ ${IN_FLIGHT} in flight`, group: bounded, baseline: true, n: 10 },
  barePoolBench(
    WORKERS,
    (workers) => bareBounded(workers, items, IN_FLIGHT),
    (values) => expectValues(values, expected, "bare bounded"),
  ),
);

Deno.bench(
  { name: `fanout submit(), ≤ ${IN_FLIGHT} in flight`, group: bounded, n: 10 },
  async (b) => {
    await using ex = new ParallelExecutor({ strategy: "threads", maxWorkers: WORKERS });
    done(await boundedSubmits(ex, 2_000, IN_FLIGHT, NO_CAP));
    b.start();
    const r = await boundedSubmits(ex, ITEMS, IN_FLIGHT, NO_CAP);
    b.end();
    done(r);
  },
);
