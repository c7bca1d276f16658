/**
 * What `explain()` answers: the route a `map` of the same task and items takes, found the way
 * `map` finds it. Under auto, when the task's time per item is not known yet, that means
 * running auto's one probe (the same `collect()` of the pipeline, stopped once the probe
 * decided), so what `explain()` says is what `map()` does.
 *
 * @module
 */

import type { Explanation } from "./config.ts";
import type { Settings } from "./_options.ts";
import type { Pipeline } from "./_pipeline.ts";
import { collect } from "./_pipeline.ts";
import { AutoRunner } from "./strategy/_auto_runner.ts";
import { SoftStop } from "./_abort.ts";

/** The strategy, reason, workers and concurrency of `pipeline`'s call, probing if auto must. */
export async function explain(pipeline: Pipeline, settings: Settings): Promise<Explanation> {
  const route = pipeline.route;
  const auto = route.runner instanceof AutoRunner ? route.runner : undefined;
  if (auto?.decision === undefined && auto !== undefined) {
    // Auto must measure first: its probe, as map() would run it, and nothing after it.
    await collect(pipeline).catch((error: unknown) => {
      if (!(error instanceof SoftStop)) throw error;
    });
    await auto.conclude();
  } else route.end(true);
  if (auto !== undefined && auto.decision === undefined) {
    return {
      strategy: "serial",
      reason: "serial: no items",
      workers: 1,
      concurrency: 1,
      inProcess: true,
    };
  }
  const runner = route.runner;
  // Auto's probe ran on the calling thread: what it chose is in its decision, not its runner.
  const concurrency = auto !== undefined
    ? auto.decision?.concurrency ?? settings.concurrency ?? 1
    : runner.onCaller
    ? runner.concurrency
    : runner.perChunk;
  return {
    strategy: route.strategy,
    reason: route.reason,
    workers: route.workers,
    concurrency,
    inProcess: route.strategy === "serial" || route.strategy === "async",
  };
}
