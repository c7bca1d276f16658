/**
 * A submit straight to a fixed built-in strategy. A service that calls `submit()` once per
 * piece of work makes thousands of calls a second, so a submit that nobody watches (no
 * `onEvent`, no `log`) and that cannot fall back (no `forceSerialOnFailure`) skips the
 * `Route`: it claims shared handles, runs its one item, and counts itself in the stats, as a
 * route would, with nothing else allocated. Auto, telemetry and fallbacks take the route
 * (`submitRouted`).
 *
 * @module
 */

import type { Core } from "./_core.ts";
import type { BuiltInStrategy } from "./strategy/_builtin.ts";
import type { TaskSpec } from "./protocol.ts";
import type { resolveCall } from "./_options.ts";
import type { CallPin, SharedEntry } from "./shared.ts";
import type { JobEnd } from "./strategy/_queue.ts";
import { WorkerCrashedError } from "./errors.ts";
import { Route } from "./_route.ts";

/** The strategy a submit may go to directly, or `undefined` when it needs a `Route`. */
export function directStrategy(core: Core): BuiltInStrategy | undefined {
  if (core.direct !== undefined) return core.direct ?? undefined;
  const { choice, onEvent, log, forceSerialOnFailure } = core.settings;
  const direct = typeof choice !== "string" || choice === "auto" || onEvent !== undefined ||
      log || (forceSerialOnFailure && choice !== "serial" && choice !== "async")
    ? null
    : core.builtIn(choice);
  // The settings never change, nor does the strategy an executor made for a name.
  core.direct = direct;
  return direct ?? undefined;
}

/** Runs one submit on `strategy`; counted by `close()` and in the stats like any call. */
export function submitDirect<O>(
  core: Core,
  strategy: BuiltInStrategy,
  spec: TaskSpec,
  input: unknown,
  call: ReturnType<typeof resolveCall>,
): Promise<O> {
  const registry = core.shared;
  // Without any handle alive there is nothing to pin, nor to find in the input.
  const pin = registry.quiet ? undefined : registry.begin();
  const items = [input];
  let shared: SharedEntry[] | undefined;
  if (pin !== undefined) {
    try {
      shared = registry.claim(pin, 0, items);
    } catch (error) {
      registry.end(pin);
      throw error;
    }
  }
  core.begin();
  const end = core.submitEnd ??= submitEnd(core, strategy.name);
  const { signal, timeoutMs, seed } = call;
  const concurrency = call.concurrency;
  const request = concurrency === undefined || concurrency === 1
    ? { task: spec, base: 0, items, signal, timeoutMs, seed, single: true, shared }
    : { task: spec, base: 0, items, signal, timeoutMs, seed, single: true, shared, concurrency };
  const enqueue = strategy.enqueue;
  if (enqueue === undefined) {
    return strategy.run(request).then((result) => {
      end.ended(shared, pin, true, undefined);
      return result.values[0] as O;
    }, (error: unknown) => {
      end.ended(shared, pin, false, error);
      throw error;
    });
  }
  // One promise, settled by the pool itself with the submit's value; `end` counts it. Nothing
  // else is made per submit: a service may keep millions of them pending.
  return new Promise<O>((resolve, reject) =>
    enqueue.call(strategy, request, resolve as (value: unknown) => void, reject, end, pin)
  );
}

/** How an executor counts a direct submit that settled, as a route would count the call. */
function submitEnd(core: Core, name: string): JobEnd {
  const registry = core.shared;
  const stats = core.stats;
  return {
    ended(shared, pin, ok, error): void {
      if (shared !== undefined) registry.unclaim(shared);
      if (pin !== undefined) registry.end(pin as CallPin);
      stats.calls++;
      stats.tasks++;
      stats.chunks++;
      stats.byStrategy[name] = (stats.byStrategy[name] ?? 0) + 1;
      if (!ok) {
        stats.failedCalls++;
        if (error instanceof WorkerCrashedError) stats.crashes++;
      }
      core.end();
    },
  };
}

/**
 * Runs one submit through a `Route`: under auto (which may probe first), with telemetry, or
 * with a fallback to serial.
 */
export function submitRouted<O>(
  core: Core,
  spec: TaskSpec,
  input: unknown,
  call: ReturnType<typeof resolveCall>,
): Promise<O> {
  const route = new Route(core, "submit", spec, [input], call);
  const { signal, timeoutMs, seed } = call;
  const perChunk = route.runner.perChunk;
  return route.runner.run({
    task: spec,
    base: 0,
    items: [input],
    signal,
    timeoutMs,
    seed,
    single: true,
    concurrency: perChunk > 1 ? perChunk : undefined,
  }).then(async (result) => {
    await route.concluded();
    route.end(true);
    return result.values[0] as O;
  }, async (error: unknown) => {
    await route.concluded();
    route.end(false, error);
    throw error;
  });
}
