/**
 * Command-line options shared by the bench scripts: `--quick`, `--json`, `--only`, `--help`
 * and one integer flag per workload size, each also settable as `FANOUT_BENCH_<FLAG>`.
 *
 * @module
 */

import process from "node:process";
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { detect } from "../src/runtime/mod.ts";
import type { Figure, Report } from "./_table.js";
import { formatReport, REPORT_MARKER } from "./_table.js";

/** One size flag: its name, its full and `--quick` defaults, and a line of help. */
export interface SizeSpec {
  flag: string;
  full: number;
  quick: number;
  help: string;
}

/** What a bench script was asked to do. */
export type BenchOptions<S extends string, P extends string> = Record<S, number> & {
  parts: P[];
  json: boolean;
  quick: boolean;
};

/**
 * Parses the bench options; prints the usage and exits on `--help`.
 *
 * @param argv The arguments.
 * @param script The script's name, for the usage line.
 * @param parts The parts `--only` may list.
 * @param sizes The size flags.
 */
export function parseBenchOptions<S extends string, P extends string>(
  argv: string[],
  script: string,
  parts: readonly P[],
  sizes: Record<S, SizeSpec>,
): BenchOptions<S, P> {
  const specs = Object.entries(sizes) as [S, SizeSpec][];
  const { values } = parseArgs({
    args: argv,
    options: {
      quick: { type: "boolean" },
      json: { type: "boolean" },
      only: { type: "string" },
      help: { type: "boolean", short: "h" },
      ...Object.fromEntries(specs.map(([, s]) => [s.flag, { type: "string" as const }])),
    },
  });
  const flags = values as Record<string, string | boolean | undefined>;
  const env = detect().env;
  if (flags.help === true) {
    console.log(usage(script, parts, specs.map(([, s]) => s)));
    process.exit(0);
  }
  const quick = flags.quick === true || isTrue(env("FANOUT_BENCH_QUICK"));
  const chosen = {} as Record<S, number>;
  for (const [key, spec] of specs) {
    const envName = `FANOUT_BENCH_${spec.flag.replaceAll("-", "_").toUpperCase()}`;
    const raw = (flags[spec.flag] as string | undefined) ?? env(envName);
    chosen[key] = raw === undefined
      ? (quick ? spec.quick : spec.full)
      : positiveInt(spec.flag, raw);
  }
  const only = (flags.only as string | undefined) ?? env("FANOUT_BENCH_ONLY");
  const listed = only === undefined ? [...parts] : only.split(",").map((p) => p.trim()).filter(
    Boolean,
  );
  for (const p of listed) {
    if (!(parts as readonly string[]).includes(p)) {
      throw new RangeError(
        `Expected \`--only\` to list parts among ${parts.join(", ")}, got ${JSON.stringify(p)}`,
      );
    }
  }
  return {
    ...chosen,
    parts: listed as P[],
    json: flags.json === true || isTrue(env("FANOUT_BENCH_JSON")),
    quick,
  };
}

function usage(script: string, parts: readonly string[], specs: SizeSpec[]): string {
  return [
    `usage: <runtime> bench/${script} [--quick] [--only ${parts.join(",")}] [--json] [sizes]`,
    ...specs.map((s) =>
      `  --${s.flag.padEnd(12)} ${s.help} (default ${s.full}, --quick ${s.quick})`
    ),
    "Each flag can also be set as FANOUT_BENCH_<FLAG>, e.g. FANOUT_BENCH_CYCLES=200.",
  ].join("\n");
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

/** Throws for a workload that computed the wrong answer: its timing would mean nothing. */
export function fail(what: string): never {
  throw new Error(`wrong result: ${what}`);
}

/** What one part of a bench produces. */
export interface PartResult {
  figures: Figure[];
  notes: string[];
}

/** How to read and describe the machine's load around a part. */
export interface LoadProbe<S> {
  sample(): S;
  describe(from: S, to: S): string;
}

/**
 * Runs the chosen parts in order into a report: a part that throws becomes a FAILED figure,
 * and each part gets a note with its duration and the machine's load meanwhile. Then prints the
 * report (as JSON after `REPORT_MARKER` with `--json`) with `leftovers` noted.
 */
export async function runParts<
  P extends string,
  O extends { parts: P[]; json: boolean; quick: boolean },
  S,
>(
  o: O,
  runners: Record<P, (o: O) => Promise<PartResult>>,
  probe: LoadProbe<S>,
  log: (message: string) => void,
  leftovers: () => string[],
): Promise<void> {
  const started = performance.now();
  const info = detect();
  const { parts, json: _json, ...sizes } = o;
  const report: Report = {
    runtime: { name: info.name, version: info.version },
    cpus: info.cpus,
    options: { ...sizes, parts: parts.join(",") },
    figures: [],
    notes: [],
    totalMs: 0,
  };
  for (const part of o.parts) {
    const partStart = performance.now();
    const before = probe.sample();
    log(`part ${part}`);
    try {
      const { figures, notes } = await runners[part](o);
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
    const load = probe.describe(before, probe.sample());
    report.notes.push(`${part}: took ${took}; ${load}`);
    log(`part ${part} took ${took}; ${load}`);
  }
  report.notes.push(...leftovers());
  report.totalMs = performance.now() - started;
  if (o.json) {
    console.log(REPORT_MARKER);
    console.log(JSON.stringify(report));
  } else {
    console.log(formatReport(report));
  }
}

/**
 * A progress logger for one bench script: lines go to stderr (stdout carries the report),
 * prefixed with the script's name and the runtime.
 */
export function benchLog(script: string): (message: string) => void {
  return (message) => console.error(`[${script} ${detect().name}] ${message}`);
}

/** Reads a file as text (for /proc readings). */
export function readText(path: string): string {
  return readFileSync(path, "utf8");
}
