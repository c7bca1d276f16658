// @ts-check
/**
 * `npm run bench`: runs `bench/run.ts` under Deno, Bun and Node 24 (the copies in
 * node_modules/.bin), one runtime after the other, and prints one table per runtime and a
 * summary of the targets. Part c (round-trip latency) runs in a separate process pinned to one
 * CPU with `taskset -c 0`.
 *
 * Plain JavaScript so that any Node, including the system's Node 20, can start it.
 *
 * ```sh
 * npm run bench                       # everything, default sizes
 * npm run bench -- --quick            # smaller sizes
 * node bench/compare.mjs --runtimes deno,node --only a,c --cycles 200
 * ```
 * Flags other than `--runtimes`, `--only` and `--no-pin` are passed on to `run.ts`.
 * The merged reports are saved to bench/results/ (git-ignored).
 *
 * @module
 */

/** @import { Figure, Report } from "./_table.js" */

import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { formatReport, formatValue, REPORT_MARKER } from "./_table.js";

const BENCH = dirname(fileURLToPath(import.meta.url));
const ROOT = dirname(BENCH);
const RUN = join(BENCH, "run.ts");
const BIN = join(ROOT, "node_modules", ".bin");
const PARTS = ["a", "b", "c", "d", "e"];
/** The latency part, run pinned to one CPU. */
const PINNED_PART = "c";
/** How long one `run.ts` process may take before it is killed. */
const RUN_LIMIT_MS = 20 * 60_000;
/** How long a process may linger after printing its report before it counts as not exiting. */
const EXIT_GRACE_MS = 15_000;

/** @type {Record<string, string[]>} */
const COMMANDS = {
  deno: [join(BIN, "deno"), "run", "-A", RUN],
  bun: [join(BIN, "bun"), RUN],
  node: [join(BIN, "node"), RUN],
};

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
    if (name === "--runtimes") runtimes = value().split(",").map((s) => s.trim()).filter(Boolean);
    else if (name === "--only") parts = value().split(",").map((s) => s.trim()).filter(Boolean);
    else if (name === "--no-pin") pin = false;
    else forward.push(arg);
  }
  for (const rt of runtimes) {
    if (!(rt in COMMANDS)) {
      throw new RangeError(
        `Expected \`--runtimes\` to list deno, bun or node, got ${JSON.stringify(rt)}`,
      );
    }
  }
  for (const p of parts) {
    if (!PARTS.includes(p)) {
      throw new RangeError(
        `Expected \`--only\` to list parts from a to e, got ${JSON.stringify(p)}`,
      );
    }
  }
  return { runtimes, parts, pin, forward };
}

/**
 * Runs one `run.ts` process and returns its report.
 *
 * @param {string[]} command
 * @param {string} label
 * @returns {Promise<{ report?: Report, problems: string[] }>}
 */
function runOnce(command, label) {
  return new Promise((resolve) => {
    console.error(`\n$ ${command.map((c) => c.replace(ROOT + "/", "")).join(" ")}`);
    const child = spawn(command[0], command.slice(1), {
      cwd: ROOT,
      stdio: ["ignore", "pipe", "inherit"],
    });
    /** @type {string[]} */
    const problems = [];
    let stdout = "";
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    let exitTimer;
    const limit = setTimeout(() => {
      problems.push(`${label}: killed after ${RUN_LIMIT_MS / 60_000} min`);
      child.kill("SIGKILL");
    }, RUN_LIMIT_MS);
    child.stdout.setEncoding("utf8");
    child.stdout.on("data", (chunk) => {
      stdout += chunk;
      if (exitTimer === undefined && stdout.includes(REPORT_MARKER) && stdout.endsWith("\n")) {
        exitTimer = setTimeout(() => {
          problems.push(
            `${label}: printed its report but did not exit within ${EXIT_GRACE_MS / 1000} s ` +
              "(something keeps the process alive); killed",
          );
          child.kill("SIGKILL");
        }, EXIT_GRACE_MS);
      }
    });
    child.on("error", (error) => problems.push(`${label}: could not start: ${error.message}`));
    child.on("close", (code, signal) => {
      clearTimeout(limit);
      clearTimeout(exitTimer);
      if (code !== 0 && signal === null) problems.push(`${label}: exited with code ${code}`);
      const at = stdout.indexOf(REPORT_MARKER);
      if (at === -1) {
        problems.push(`${label}: printed no report`);
        resolve({ problems });
        return;
      }
      try {
        const json = stdout.slice(at + REPORT_MARKER.length).trim().split("\n")[0];
        resolve({ report: JSON.parse(json), problems });
      } catch (error) {
        problems.push(`${label}: report did not parse: ${error}`);
        resolve({ problems });
      }
    });
  });
}

function hasTaskset() {
  for (const path of ["/usr/bin/taskset", "/bin/taskset"]) if (existsSync(path)) return path;
  const which = spawnSync("sh", ["-c", "command -v taskset"], { encoding: "utf8" });
  return which.status === 0 ? which.stdout.trim() : undefined;
}

/**
 * Runs every part for one runtime: the pinned part in its own process.
 *
 * @param {string} runtime
 * @param {{ parts: string[], pin: boolean, forward: string[] }} plan
 * @param {string | undefined} taskset
 * @returns {Promise<{ report?: Report, problems: string[] }>}
 */
async function runRuntime(runtime, plan, taskset) {
  const base = [...COMMANDS[runtime], "--json", ...plan.forward];
  const main = plan.parts.filter((p) => p !== PINNED_PART);
  /** @type {string[]} */
  const problems = [];
  /** @type {Report[]} */
  const reports = [];
  /** @type {string[]} */
  const pinNotes = [];
  if (main.length > 0) {
    const r = await runOnce([...base, "--only", main.join(",")], `${runtime} (parts ${main})`);
    problems.push(...r.problems);
    if (r.report) reports.push(r.report);
  }
  if (plan.parts.includes(PINNED_PART)) {
    let command = [...base, "--only", PINNED_PART];
    if (plan.pin && taskset !== undefined) {
      command = [taskset, "-c", "0", ...command];
      pinNotes.push("c: ran in its own process under `taskset -c 0` (one CPU)");
    } else {
      pinNotes.push(
        plan.pin
          ? "c: taskset not found, so part c ran NOT pinned to one CPU"
          : "c: --no-pin given, so part c ran NOT pinned to one CPU",
      );
    }
    const r = await runOnce(command, `${runtime} (part c)`);
    problems.push(...r.problems);
    if (r.report) reports.push(r.report);
  }
  if (reports.length === 0) return { problems };
  /** @type {Report} */
  const merged = {
    runtime: reports[0].runtime,
    cpus: reports[0].cpus,
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
 * One line per targeted figure, one column per runtime.
 *
 * @param {Report[]} reports
 * @returns {string}
 */
function summary(reports) {
  /** @type {Map<string, Map<string, Figure>>} */
  const byName = new Map();
  for (const r of reports) {
    for (const f of r.figures) {
      if (f.target === undefined && f.name !== "FAILED") continue;
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
