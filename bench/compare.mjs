// @ts-check
/**
 * `npm run bench`: runs every scenario through `bench/run.ts` under Deno, Bun and Node 24 (the
 * copies in node_modules/.bin), one runtime after the other, and prints one table per runtime
 * and a summary: throughput, round_trip and startup (parts a to e), processes (p1 to p3),
 * shared_payloads (s1 to s4), auto (workloads tiny, small, cpu, skewed, payload and io,
 * then their suite) and submits (sb1 to sb6), each group in a process of its own. Part c
 * (round-trip latency) runs in a separate process pinned to one CPU with `taskset -c 0`; part
 * p1 (the process round trip) runs unpinned with the other parts, and once more pinned; part
 * sb4 starts its own pinned child.
 *
 * Plain JavaScript so that any Node, including the system's Node 20, can start it.
 *
 * ```sh
 * npm run bench                       # everything, default sizes
 * npm run bench -- --quick            # smaller sizes
 * node bench/compare.mjs --runtimes deno,node --only a,c --cycles 200
 * node bench/compare.mjs --only processes --calls 1000     # p1 to p3
 * node bench/compare.mjs --only s1,s2,s3,s4 --sum-reps 20  # shared_payloads
 * node bench/compare.mjs --only auto                       # tiny to io, and the suite
 * node bench/compare.mjs --only submits --quick             # sb1 to sb6
 * ```
 * `--only` takes part letters and scenario names. Flags other than `--runtimes`, `--only` and
 * `--no-pin` are passed on to every run of `run.ts`, where each scenario reads its own sizes
 * (`--quick`, `--watchdog-ms` and `--workers` are shared by several).
 * The merged reports are saved to bench/results/ (git-ignored).
 *
 * @module
 */

/** @import { Figure, Report } from "./_report.js" */

import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { formatReport, formatValue } from "./_report.js";
import { BENCH, COMMANDS, hasTaskset, parseRuntimes, ROOT, RUN, runOnce } from "./_runs.mjs";

/**
 * The runs of `run.ts` per runtime, in the order they run, each in a process of its own; the
 * part letters name its rows. `pinned`: parts that run only in their own process under
 * `taskset -c 0`; `alsoPinned`: parts that run with the others and once more pinned. `info`:
 * its figures without a target still go in the summary, when they have a ratio.
 * `scenarios`: which scenario holds which parts (`--only` takes these names too).
 *
 * @type {{ scenarios: Record<string, string[]>, pinned: string[], alsoPinned: string[],
 *   info: boolean }[]}
 */
const GROUPS = [
  {
    scenarios: { throughput: ["a", "b"], round_trip: ["c"], startup: ["d", "e"] },
    pinned: ["c"],
    alsoPinned: [],
    info: false,
  },
  { scenarios: { processes: ["p1", "p2", "p3"] }, pinned: [], alsoPinned: ["p1"], info: true },
  {
    scenarios: { shared_payloads: ["s1", "s2", "s3", "s4"] },
    pinned: [],
    alsoPinned: [],
    info: true,
  },
  {
    // "suite" (the targets over the workloads that ran) always runs after them.
    scenarios: { auto: ["tiny", "small", "cpu", "skewed", "payload", "io", "suite"] },
    pinned: [],
    alsoPinned: [],
    info: false,
  },
  {
    // sb4 pins itself: it runs its measurement in a child process under `taskset -c 0`.
    scenarios: { submits: ["sb1", "sb2", "sb3", "sb4", "sb5", "sb6"] },
    pinned: [],
    alsoPinned: [],
    info: false,
  },
];
/** @param {typeof GROUPS[number]} group */
const partsOf = (group) => Object.values(group.scenarios).flat();
const PARTS = GROUPS.flatMap(partsOf);
/** @type {Record<string, string[]>} */
const SCENARIOS = Object.assign({}, ...GROUPS.map((g) => g.scenarios));
/** Parts whose untargeted figures with a ratio go in the summary. */
const INFO_PARTS = GROUPS.filter((g) => g.info).flatMap(partsOf);
/** How long one run.ts process may take before it is killed. */
const RUN_LIMIT_MS = 20 * 60_000;

function parseCommandLine() {
  const args = process.argv.slice(2);
  let runtimes = Object.keys(COMMANDS);
  let parts = PARTS;
  let pin = true;
  /** @type {string[]} */
  const forward = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    const [name, inline] = arg.startsWith("--") && arg.includes("=")
      ? [arg.slice(0, arg.indexOf("=")), arg.slice(arg.indexOf("=") + 1)]
      : [arg, undefined];
    const value = () => inline ?? args[++i] ?? "";
    if (name === "--runtimes") runtimes = parseRuntimes(value());
    else if (name === "--only") {
      parts = value().split(",").map((s) => s.trim()).filter(Boolean)
        .flatMap((p) => SCENARIOS[p] ?? [p]);
    } else if (name === "--no-pin") pin = false;
    else forward.push(arg);
  }
  for (const p of parts) {
    if (!PARTS.includes(p)) {
      throw new RangeError(
        `Expected \`--only\` to list scenarios or parts among ${
          [...Object.keys(SCENARIOS), ...PARTS].join(", ")
        }, got ${JSON.stringify(p)}`,
      );
    }
  }
  return { runtimes, parts, pin, forward };
}

/**
 * Runs every part for one runtime: per group, the unpinned parts in one process, then the
 * pinned ones in another.
 *
 * @param {string} runtime
 * @param {{ parts: string[], pin: boolean, forward: string[] }} plan
 * @param {string | undefined} taskset
 * @returns {Promise<{ report?: Report, problems: string[] }>}
 */
async function runRuntime(runtime, plan, taskset) {
  /** @type {string[]} */
  const problems = [];
  /** @type {Report[]} */
  const reports = [];
  /** @type {string[]} */
  const pinNotes = [];
  const pinning = plan.pin && taskset !== undefined;
  const why = plan.pin ? "taskset not found" : "--no-pin given";
  for (const group of GROUPS) {
    const wanted = partsOf(group).filter((p) => plan.parts.includes(p));
    if (wanted.length === 0) continue;
    const name = Object.keys(group.scenarios).join(", ");
    const base = [...COMMANDS[runtime](RUN), "--json", ...plan.forward];
    const main = wanted.filter((p) => !group.pinned.includes(p));
    const pinned = wanted.filter((p) => group.pinned.includes(p) || group.alsoPinned.includes(p));
    if (main.length > 0) {
      const r = await runOnce(
        [...base, "--only", main.join(",")],
        `${runtime} ${name} (${main})`,
        RUN_LIMIT_MS,
      );
      problems.push(...r.problems);
      if (r.report) reports.push(r.report);
    }
    const onlyPinned = pinned.filter((p) => group.pinned.includes(p));
    const alsoPinned = pinned.filter((p) => group.alsoPinned.includes(p));
    // Without taskset, a part that also ran unpinned is not run again.
    const toRun = pinning ? pinned : onlyPinned;
    if (!pinning && alsoPinned.length > 0) {
      pinNotes.push(`${alsoPinned}: ${why}, so there is no pinned run`);
    }
    if (toRun.length === 0) continue;
    let command = [...base, "--only", toRun.join(",")];
    if (pinning) {
      command = [/** @type {string} */ (taskset), "-c", "0", ...command];
      pinNotes.push(`${toRun}: ran in its own process under \`taskset -c 0\` (one CPU)`);
    } else {
      pinNotes.push(`${toRun}: ${why}, so it ran NOT pinned to one CPU`);
    }
    const r = await runOnce(command, `${runtime} ${name} (${toRun}, pinned)`, RUN_LIMIT_MS);
    problems.push(...r.problems);
    if (r.report) reports.push(r.report);
  }
  if (reports.length === 0) return { problems };
  /** @type {Report} */
  const merged = {
    runtime: reports[0].runtime,
    cpus: Math.max(...reports.map((r) => r.cpus)),
    options: Object.assign({}, ...reports.map((r) => r.options)),
    figures: reports.flatMap((r) => r.figures)
      .sort((x, y) => PARTS.indexOf(x.part) - PARTS.indexOf(y.part)),
    notes: [...reports.flatMap((r) => r.notes), ...pinNotes, ...problems],
    totalMs: reports.reduce((sum, r) => sum + r.totalMs, 0),
  };
  merged.options.parts = plan.parts.join(",");
  return { report: merged, problems };
}

/**
 * One line per targeted figure, and per untargeted ratio of the processes and shared parts,
 * one column per runtime.
 *
 * @param {Report[]} reports
 * @returns {string}
 */
function summary(reports) {
  /** @type {Map<string, Map<string, Figure>>} */
  const byName = new Map();
  for (const r of reports) {
    for (const f of r.figures) {
      const info = INFO_PARTS.includes(f.part) && f.ratio !== undefined;
      if (f.target === undefined && f.name !== "FAILED" && !info) continue;
      const key = `${f.part}  ${f.name}`;
      if (!byName.has(key)) byName.set(key, new Map());
      byName.get(key)?.set(r.runtime.name, f);
    }
  }
  const names = reports.map((r) => r.runtime.name);
  const header = ["figure (target)", ...names];
  const rows = [...byName.entries()].map(([key, cells]) => {
    const any = [...cells.values()][0];
    return [
      `${key} (${any.target?.label ?? "-"})`,
      ...names.map((n) => {
        const f = cells.get(n);
        if (f === undefined) return "";
        if (f.target === undefined && f.ratio !== undefined) {
          return `${formatValue(f.value, f.unit)}, ${f.ratio.toFixed(2)}× ${f.ratioLabel ?? ""}`
            .trimEnd();
        }
        const shown = f.target?.on === "ratio" && f.ratio !== undefined
          ? `${f.ratio.toFixed(2)}×`
          : formatValue(f.value, f.unit);
        return `${shown} ${f.met ? "yes" : "NO"}`;
      }),
    ];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (/** @type {string[]} */ cells) =>
    cells.map((c, i) => c.padEnd(widths[i])).join("  ").trimEnd();
  return [line(header), line(widths.map((w) => "-".repeat(w))), ...rows.map(line)].join("\n");
}

async function main() {
  const plan = parseCommandLine();
  const taskset = plan.pin ? hasTaskset() : undefined;
  /** @type {Report[]} */
  const reports = [];
  /** @type {string[]} */
  const problems = [];
  for (const runtime of plan.runtimes) {
    const r = await runRuntime(runtime, plan, taskset);
    problems.push(...r.problems);
    if (r.report) {
      reports.push(r.report);
      console.log(`\n${formatReport(r.report)}`);
    } else {
      console.log(`\n${runtime}: no report (${r.problems.join("; ")})`);
    }
  }
  if (reports.length > 1) console.log(`\nSummary\n${summary(reports)}`);
  const dir = join(BENCH, "results");
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `compare-${new Date().toISOString().replaceAll(":", "-")}.json`);
  writeFileSync(file, JSON.stringify({ reports, problems }, null, 2) + "\n");
  console.log(`\nSaved ${file.replace(ROOT + "/", "")}`);
  // Hangs, leaks, failed parts and runs that did not report are errors; slow figures are not.
  const broken = problems.length > 0 ||
    reports.some((r) =>
      r.figures.some((f) => f.name === "FAILED" || (f.part === "e" && f.met === false))
    );
  process.exitCode = broken ? 1 : 0;
}

await main();
