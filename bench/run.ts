/**
 * The one entry of the scenarios: runs the parts asked for on whichever runtime runs it, and
 * prints their report, one row per figure, each against a baseline measured in the same
 * process (see bench/README.md for what each part measures).
 *
 * - `throughput.ts`: a (CPU-bound speedup), b (trivial items against a bare pool);
 * - `round_trip.ts`: c (one `submit()` round trip against a raw ping-pong);
 * - `startup.ts`: d (start + first task + close), e (create/run/dispose cycles);
 * - `processes.ts`: p1 (round trip), p2 (start-up), p3 (trivial items), on processes;
 * - `shared_payloads.ts`: s1 to s4 (what `ex.share()` saves);
 * - `auto.ts`: tiny, small, cpu, skewed, payload, io (does auto choose well), then suite;
 * - `submits.ts`: sb1 to sb6 (per-call workloads on `submit()`, each against a bare baseline);
 * - `io.ts`: timers, fetch, mixed (tasks that mostly wait: auto against a bare promise pool,
 *   the ideal, and the best fixed strategy and concurrency).
 *
 * ```sh
 * node_modules/.bin/deno run -A bench/run.ts [scenario or part …] [--only a,b] [--quick] [--json]
 * node_modules/.bin/bun bench/run.ts round_trip --pings 2000
 * node_modules/.bin/node bench/run.ts a,b --quick
 * ```
 *
 * Names (as arguments or in `--only`) pick scenarios or single parts (`scenario:part` picks
 * one part of one scenario; see {@linkcode stepsOf} for a name that is both); without any,
 * every part runs (a scenario file started as a script calls {@linkcode main} with its own
 * name). Sizes come from flags, else from `FANOUT_BENCH_<FLAG>` environment variables (e.g.
 * `FANOUT_BENCH_CYCLES=200`), else from each scenario's defaults (or its `--quick` ones); a flag
 * two scenarios share (`--workers`, `--watchdog-ms`) sets both, each keeping its own default.
 * `--json` prints the report as JSON after `REPORT_MARKER`, which is how `compare.mjs` reads it.
 *
 * @module
 */

import process from "node:process";
import { parseArgs } from "node:util";
import { detect, liveProcessPids, liveThreadCount } from "../src/runtime/mod.ts";
import { auto } from "./auto.ts";
import { ioScenario } from "./io.ts";
import { processes } from "./processes.ts";
import { roundTrip } from "./round_trip.ts";
import { sharedPayloads } from "./shared_payloads.ts";
import { startup } from "./startup.ts";
import { submits } from "./submits.ts";
import { throughput } from "./throughput.ts";
import type { Report, Scenario, SizeSpec } from "./_measure.ts";
import { benchLog, formatReport, load, noise, REPORT_MARKER } from "./_measure.ts";

/** Every scenario, in the order their parts run by default. */
const SCENARIOS: readonly Scenario[] = [
  throughput,
  roundTrip,
  startup,
  processes,
  sharedPayloads,
  auto,
  submits,
  ioScenario,
];

/** One part to run, and its scenario. */
interface Step {
  scenario: Scenario;
  part: string;
}

/** What the command line asked for. */
interface Plan {
  steps: Step[];
  /** Each scenario's sizes, resolved. */
  sizes: Map<Scenario, Record<string, number>>;
  quick: boolean;
  json: boolean;
}

function isTrue(value: string | undefined): boolean {
  return value !== undefined && value !== "" && value !== "0" && value !== "false";
}

function positiveInt(name: string, raw: string): number {
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) {
    throw new RangeError(
      `Expected \`--${name}\` to be an integer from 1 and up, got ${JSON.stringify(raw)}`,
    );
  }
  return n;
}

function usage(): string {
  const lines = [
    "usage: <runtime> bench/run.ts [scenario or part …] [--only a,b] [--quick] [--json] [sizes]",
  ];
  for (const s of SCENARIOS) {
    lines.push(`${s.name}: parts ${Object.keys(s.parts).join(", ")}`);
    for (const spec of Object.values(s.sizes)) {
      lines.push(
        `  --${spec.flag.padEnd(14)} ${spec.help} (default ${spec.full}, --quick ${spec.quick})`,
      );
    }
  }
  lines.push("Each flag can also be set as FANOUT_BENCH_<FLAG>, e.g. FANOUT_BENCH_CYCLES=200.");
  return lines.join("\n");
}

/**
 * The parts a name stands for: a scenario's, or the one part of that name, or with
 * `scenario:part` that scenario's part. A name that is both a scenario and another scenario's
 * part ("io": the scenario `io.ts`, and auto's io workload) is the part when another of the
 * names asked for belongs to that part's scenario (as in compare.mjs's
 * `--only tiny,…,io,suite`), else the scenario.
 */
function stepsOf(name: string, names: readonly string[]): Step[] {
  const colon = name.indexOf(":");
  if (colon !== -1) {
    const scenario = SCENARIOS.find((s) => s.name === name.slice(0, colon));
    const part = name.slice(colon + 1);
    if (scenario !== undefined && part in scenario.parts) return [{ scenario, part }];
  } else {
    const scenario = SCENARIOS.find((s) => s.name === name);
    const owner = SCENARIOS.find((s) => name in s.parts);
    const withOwner = owner !== undefined &&
      names.some((n) => n !== name && (n === owner.name || n in owner.parts));
    if (owner !== undefined && (scenario === undefined || withOwner)) {
      return [{ scenario: owner, part: name }];
    }
    if (scenario !== undefined) {
      return Object.keys(scenario.parts).map((part) => ({ scenario, part }));
    }
  }
  const known = SCENARIOS.flatMap((s) => [s.name, ...Object.keys(s.parts)]);
  throw new RangeError(
    `Expected \`--only\` to list scenarios or parts among ${known.join(", ")}, got ${
      JSON.stringify(name)
    }`,
  );
}

/** Parses the command line; prints the usage and exits on `--help`. */
function parseCommandLine(argv: string[], scenario?: string): Plan {
  const flags = new Map<string, SizeSpec>();
  for (const s of SCENARIOS) for (const spec of Object.values(s.sizes)) flags.set(spec.flag, spec);
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      quick: { type: "boolean" },
      json: { type: "boolean" },
      only: { type: "string" },
      help: { type: "boolean", short: "h" },
      ...Object.fromEntries([...flags.keys()].map((flag) => [flag, { type: "string" as const }])),
    },
  });
  const given = values as Record<string, string | boolean | undefined>;
  if (given.help === true) {
    console.log(usage());
    process.exit(0);
  }
  const env = detect().env;
  const quick = given.quick === true || isTrue(env("FANOUT_BENCH_QUICK"));
  const names = [
    ...positionals,
    ...((given.only as string | undefined) ?? env("FANOUT_BENCH_ONLY") ?? "").split(","),
  ].flatMap((n) => n.split(",")).map((n) => n.trim()).filter(Boolean);
  if (names.length === 0) names.push(...(scenario ? [scenario] : SCENARIOS.map((s) => s.name)));
  let steps = names.flatMap((name) => stepsOf(name, names));
  steps = steps.filter((s, i) =>
    steps.findIndex((t) => t.scenario === s.scenario && t.part === s.part) === i
  );
  // A closing part runs last, whenever any part of its scenario runs.
  for (const scenario of new Set(steps.map((s) => s.scenario))) {
    const closing = scenario.closing;
    if (closing === undefined) continue;
    steps = [...steps.filter((s) => s.scenario !== scenario || s.part !== closing), {
      scenario,
      part: closing,
    }];
  }
  const sizes = new Map<Scenario, Record<string, number>>();
  for (const scenario of SCENARIOS) {
    const chosen: Record<string, number> = {};
    for (const [key, spec] of Object.entries(scenario.sizes)) {
      const envName = `FANOUT_BENCH_${spec.flag.replaceAll("-", "_").toUpperCase()}`;
      const raw = (given[spec.flag] as string | undefined) ?? env(envName);
      chosen[key] = raw === undefined
        ? (quick ? spec.quick : spec.full)
        : positiveInt(spec.flag, raw);
    }
    sizes.set(scenario, chosen);
  }
  return {
    steps,
    sizes,
    quick,
    json: given.json === true || isTrue(env("FANOUT_BENCH_JSON")),
  };
}

/**
 * Runs the steps in order into a report: a part that throws becomes a FAILED figure, and each
 * part gets a note with its duration and the machine's load meanwhile.
 */
async function run(plan: Plan): Promise<Report> {
  const started = performance.now();
  const info = detect();
  const ran = SCENARIOS.filter((s) => plan.steps.some((step) => step.scenario === s));
  const report: Report = {
    runtime: { name: info.name, version: info.version },
    cpus: info.cpus,
    options: {
      ...Object.assign({}, ...ran.map((s) => plan.sizes.get(s))),
      quick: plan.quick,
      parts: plan.steps.map((s) => s.part).join(","),
    },
    figures: [],
    notes: [],
    totalMs: 0,
  };
  for (const { scenario, part } of plan.steps) {
    const log = benchLog(scenario.name);
    const partStart = performance.now();
    const before = load();
    log(`part ${part}`);
    try {
      const { figures, notes } = await scenario.parts[part](plan.sizes.get(scenario)!);
      report.figures.push(...figures);
      report.notes.push(...notes);
    } catch (error) {
      report.figures.push({
        part,
        name: "FAILED",
        value: NaN,
        unit: "count",
        met: false,
        note: error instanceof Error ? `${error.name}: ${error.message}` : String(error),
      });
      log(`part ${part} failed: ${error instanceof Error ? error.stack : error}`);
    }
    const took = `${((performance.now() - partStart) / 1000).toFixed(1)} s`;
    const machine = noise(before, load(), scenario.children === true);
    report.notes.push(`${part}: took ${took}; ${machine}`);
    log(`part ${part} took ${took}; ${machine}`);
  }
  const pids = liveProcessPids();
  report.notes.push(
    ...ran.flatMap((s) => s.notes?.() ?? []),
    ...(pids.length === 0 ? [] : [`worker processes still alive at the end: ${pids}`]),
    ...(liveThreadCount() === 0
      ? []
      : [`${liveThreadCount()} worker thread(s) still alive at the end of the run`]),
  );
  report.totalMs = performance.now() - started;
  return report;
}

/**
 * Runs what the command line asks for and prints the report.
 *
 * @param argv The arguments.
 * @param scenario What runs when they name nothing: every scenario, or the one whose file was
 * started (a scenario file runs itself through this).
 */
export async function main(argv: string[], scenario?: string): Promise<void> {
  const plan = parseCommandLine(argv, scenario);
  const report = await run(plan);
  if (plan.json) {
    console.log(REPORT_MARKER);
    console.log(JSON.stringify(report));
  } else {
    console.log(formatReport(report));
  }
}

if (import.meta.main) await main(process.argv.slice(2));
