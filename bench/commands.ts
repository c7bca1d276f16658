/**
 * Command batches: what `runCommands()` costs over the runtime's own spawn API. Not one of
 * `run.ts`'s scenarios (its figures are not in `compare.mjs`'s tables): it runs itself.
 *
 * ```sh
 * node_modules/.bin/deno run -A bench/commands.ts [--json] [--reps 5]
 * node_modules/.bin/bun bench/commands.ts
 * node_modules/.bin/node bench/commands.ts
 * ```
 *
 * Figures (one line each, or one JSON object with `--json`):
 * - `sleep`: 16 jobs of `sleep 0.5` on 4 workers; wall time against the ideal 2.0 s
 *   (target ≤ 1.1×).
 * - `trivial`: 200 jobs of `true` on 4 workers; the time per job per worker slot
 *   (wall / 200 × 4), against the same 200 commands run by a bare loop over the runtime's own
 *   spawn API (`bareRun` of `_bare_spawn.ts`) with 4 in flight, in the same process. Both pipe
 *   and read stdout and stderr, as `runCommands()` does.
 * - `own overhead`: (fanout − bare) / 200 × 4, fanout's own cost per job on top of starting the
 *   process — the figure GNU parallel documents as 3–10 ms for itself.
 *
 * The trivial runs alternate fanout and bare, `--reps` times each, and report the medians.
 *
 * @module
 */

import process from "node:process";
import { parseArgs } from "node:util";
import { runCommands } from "../mod.ts";
import { detect, liveProcessPids } from "../src/runtime/mod.ts";
import { bareRun } from "./_bare_spawn.ts";
import type { CpuSample } from "./_measure.ts";
import { load, median, timeAsync, withWatchdog } from "./_measure.ts";

const WORKERS = 4;
const SLEEP_JOBS = 16;
const SLEEP_S = 0.5;
const IDEAL_SLEEP_MS = (SLEEP_JOBS / WORKERS) * SLEEP_S * 1000;
const SLEEP_TARGET = 1.1;
const TRIVIAL_JOBS = 200;
/** What GNU parallel's documentation gives as its own overhead per job, in ms. */
const GNU_PARALLEL_MS = [3, 10] as const;
/** A bench must report a hang, not become one. */
const WATCHDOG_MS = 120_000;

/** One reported figure. */
export interface CommandFigure {
  name: string;
  value: number;
  unit: string;
  note: string;
}

/** What one run measured. */
export interface CommandReport {
  runtime: string;
  version: string;
  cpus: number;
  machineBusy: string;
  samples: { sleepMs: number; fanoutMs: number[]; bareMs: number[] };
  figures: CommandFigure[];
  leakedPids: number[];
}

/** Runs `count` commands with `workers` in flight, with no fanout involved. */
export async function bareBatch(cmd: string, count: number, workers: number): Promise<void> {
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < count) {
      next++;
      await bareRun(cmd);
    }
  };
  await Promise.all(Array.from({ length: workers }, lane));
}

/** Runs `count` commands with `workers` in flight through `runCommands()`; all must succeed. */
export async function fanoutBatch(cmd: string[], count: number, workers: number): Promise<void> {
  const batch = await runCommands(Array.from({ length: count }, () => ({ cmd })), {
    maxWorkers: workers,
  });
  if (batch.failed > 0) {
    const bad = batch.results.find((r) => r.exitCode !== 0);
    throw new Error(`a bench job failed: ${JSON.stringify(bad)}`);
  }
}

function timed(label: string, fn: () => Promise<void>): Promise<number> {
  return timeAsync(() => withWatchdog(fn(), WATCHDOG_MS, label));
}

/** Share of the machine's CPU time that was busy (all processes, ours and our children too). */
function busyShare(from: CpuSample | undefined, to: CpuSample | undefined): string {
  if (from === undefined || to === undefined || to.total <= from.total) return "unknown";
  return `${Math.round((100 * (to.busy - from.busy)) / (to.total - from.total))}%`;
}

/** The sleep batch, then `reps` trivial batches of each kind, alternating. */
export async function commandBatches(reps: number): Promise<CommandReport> {
  const info = detect();
  const cpuStart = load();
  // Warm-up: the first spawns of a process pay for loading code on both paths.
  await fanoutBatch(["true"], 8, WORKERS);
  await bareBatch("true", 8, WORKERS);

  const sleepMs = await timed(
    "the sleep batch",
    () => fanoutBatch(["sleep", String(SLEEP_S)], SLEEP_JOBS, WORKERS),
  );
  const fanoutMs: number[] = [];
  const bareMs: number[] = [];
  for (let rep = 0; rep < reps; rep++) {
    fanoutMs.push(
      await timed("the fanout batch", () => fanoutBatch(["true"], TRIVIAL_JOBS, WORKERS)),
    );
    bareMs.push(await timed("the bare batch", () => bareBatch("true", TRIVIAL_JOBS, WORKERS)));
  }
  const cpuEnd = load();

  const perSlot = (wall: number): number => (wall / TRIVIAL_JOBS) * WORKERS;
  const fanoutPerJob = perSlot(median(fanoutMs));
  const barePerJob = perSlot(median(bareMs));
  const ownPerJob = fanoutPerJob - barePerJob;
  const sleepRatio = sleepMs / IDEAL_SLEEP_MS;
  const beats = (ms: number): string =>
    ms < GNU_PARALLEL_MS[0]
      ? `beats GNU parallel's ${GNU_PARALLEL_MS[0]}–${GNU_PARALLEL_MS[1]} ms`
      : ms <= GNU_PARALLEL_MS[1]
      ? `within GNU parallel's ${GNU_PARALLEL_MS[0]}–${GNU_PARALLEL_MS[1]} ms`
      : `slower than GNU parallel's ${GNU_PARALLEL_MS[1]} ms`;
  return {
    runtime: info.name,
    version: info.version,
    cpus: info.cpus,
    machineBusy: busyShare(cpuStart, cpuEnd),
    samples: { sleepMs, fanoutMs, bareMs },
    figures: [
      {
        name: "sleep wall",
        value: sleepRatio,
        unit: "x ideal",
        note: `${SLEEP_JOBS} x sleep ${SLEEP_S} on ${WORKERS} workers: ${
          (sleepMs / 1000).toFixed(3)
        } s vs ideal ${(IDEAL_SLEEP_MS / 1000).toFixed(1)} s (target <= ${SLEEP_TARGET}x: ${
          sleepRatio <= SLEEP_TARGET ? "met" : "MISSED"
        })`,
      },
      {
        name: "trivial per job (fanout)",
        value: fanoutPerJob,
        unit: "ms",
        note: `${TRIVIAL_JOBS} x true on ${WORKERS} workers: wall ${
          median(fanoutMs).toFixed(1)
        } ms (median of ${reps}), per job per slot; ${beats(fanoutPerJob)}`,
      },
      {
        name: "trivial per job (bare spawn loop)",
        value: barePerJob,
        unit: "ms",
        note: `same jobs, the runtime's own spawn API, ${WORKERS} in flight: wall ${
          median(bareMs).toFixed(1)
        } ms`,
      },
      {
        name: "trivial ratio fanout / bare",
        value: fanoutPerJob / barePerJob,
        unit: "x",
        note: "1.00x = no cost over the bare loop",
      },
      {
        name: "own overhead per job",
        value: ownPerJob,
        unit: "ms",
        note: `(fanout - bare) per job per slot; ${beats(ownPerJob)}`,
      },
    ],
    leakedPids: liveProcessPids(),
  };
}

if (import.meta.main) {
  const { values: flags } = parseArgs({
    args: process.argv.slice(2),
    options: { json: { type: "boolean", default: false }, reps: { type: "string", default: "5" } },
  });
  const reps = Number(flags.reps);
  if (!Number.isInteger(reps) || reps < 1) {
    throw new RangeError(`Expected \`--reps\` to be an integer from 1 and up, got ${flags.reps}`);
  }
  const report = await commandBatches(reps);
  if (flags.json) {
    console.log(JSON.stringify(report, null, 2));
  } else {
    console.log(
      `runtime: ${report.runtime} ${report.version}, ${report.cpus} CPUs, machine busy ${report.machineBusy}`,
    );
    for (const f of report.figures) {
      const value = f.unit === "ms" ? f.value.toFixed(2) : f.value.toFixed(3);
      console.log(`${f.name}: ${value} ${f.unit} (${f.note})`);
    }
    if (report.leakedPids.length > 0) {
      console.log(`LEAKED child processes: ${report.leakedPids.join(", ")}`);
    }
  }
  if (report.leakedPids.length > 0) process.exitCode = 1;
}
