/**
 * What running tasks on the calling thread costs: the serial strategy (and `"auto"` while it
 * runs tasks there) contains each task it runs (src/runtime/_contain.ts: an
 * `AsyncLocalStorage` context per task, exit and error hooks while tasks run). Each figure is
 * the time of a fanout call ÷ a plain loop doing the same work, in the same process.
 *
 * ```sh
 * node_modules/.bin/node bench/calling_thread.ts
 * node_modules/.bin/bun bench/calling_thread.ts
 * node_modules/.bin/deno run -A bench/calling_thread.ts
 * ```
 *
 * `FANOUT_BENCH_OTHER=<path to another checkout's mod.ts>` measures that checkout too, in the
 * same process, alternating runs (the before and after of a change).
 *
 * @module
 */

import process from "node:process";
import { pathToFileURL } from "node:url";
import { median, timeAsync } from "./_measure.ts";
import { detect } from "../src/runtime/mod.ts";

type Mod = typeof import("../mod.ts");

const ITEMS = 200_000;
const SUBMITS = 20_000;
const ROUNDS = 9;

const trivial = (n: number): number => n + 1;
const items = Array.from({ length: ITEMS }, (_, i) => i);

/** A plain loop doing what the map does, without fanout. */
function plainLoop(): number {
  const out = new Array(items.length);
  for (let i = 0; i < items.length; i++) out[i] = trivial(items[i]);
  return out.length;
}

/** A plain loop of awaited calls, as `submit()` one at a time does. */
async function plainAwaits(): Promise<number> {
  let sum = 0;
  for (let i = 0; i < SUBMITS; i++) sum += await Promise.resolve(trivial(i));
  return sum;
}

async function measure(mod: Mod): Promise<{ map: number; submit: number }> {
  await using ex = new mod.ParallelExecutor({ strategy: "serial" });
  const map: number[] = [];
  const submit: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    const base = await timeAsync(plainLoop);
    map.push((await timeAsync(() => ex.map(trivial, items))) / base);
    const baseAwait = await timeAsync(plainAwaits);
    submit.push(
      (await timeAsync(async () => {
        for (let i = 0; i < SUBMITS; i++) await ex.submit(trivial, i);
      })) / baseAwait,
    );
  }
  return { map: median(map), submit: median(submit) };
}

const mods: [string, Mod][] = [["this checkout", await import("../mod.ts")]];
const other = process.env.FANOUT_BENCH_OTHER;
if (other) mods.push([other, await import(pathToFileURL(other).href)]);

const results = new Map<string, { map: number[]; submit: number[] }>();
for (let pass = 0; pass < 3; pass++) {
  for (const [name, mod] of mods) {
    const r = await measure(mod);
    const seen = results.get(name) ?? { map: [], submit: [] };
    seen.map.push(r.map);
    seen.submit.push(r.submit);
    results.set(name, seen);
  }
}
console.log(`${detect().name} ${detect().version}: serial, median of ${ROUNDS} rounds × 3 passes`);
for (const [name, r] of results) {
  console.log(
    `  ${name}: map of ${ITEMS} trivial items ÷ plain loop ${
      r.map.map((x) => x.toFixed(2)).join(" / ")
    }; ${SUBMITS} awaited submits ÷ plain awaits ${r.submit.map((x) => x.toFixed(1)).join(" / ")}`,
  );
}
