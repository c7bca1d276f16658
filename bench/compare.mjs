// @ts-check
/**
 * `npm run bench`: runs `bench/run.ts` (parts a to e), `bench/processes.ts` (parts p1 to p3),
 * `bench/shared.ts` (parts s1 to s4) and `bench/ablation.ts` (workloads tiny, small, cpu,
 * skewed, payload and io, then their suite) under Deno, Bun and Node 24 (the copies in
 * node_modules/.bin), one runtime after the other, and prints one table per runtime and a
 * summary. Part c (round-trip latency) runs in a
 * separate process pinned to one CPU with `taskset -c 0`; part p1 (the process round trip)
 * runs unpinned with the other parts, and once more pinned.
 *
 * Plain JavaScript so that any Node, including the system's Node 20, can start it.
 *
 * ```sh
 * npm run bench                       # everything, default sizes
 * npm run bench -- --quick            # smaller sizes
 * node bench/compare.mjs --runtimes deno,node --only a,c --cycles 200
 * node bench/compare.mjs --only p1,p2,p3 --calls 1000      # processes.ts only
 * node bench/compare.mjs --only s1,s2,s3,s4 --sum-reps 20  # shared.ts only
 * node bench/compare.mjs --only tiny,small,cpu,skewed,payload,io   # ablation.ts only
 * ```
 * Flags other than `--runtimes`, `--only` and `--no-pin` are passed on: `--quick` and
 * `--watchdog-ms` to every script, processes.ts's, shared.ts's and ablation.ts's own sizes
 * (each script's `flags`) to that script, and the rest to `run.ts`.
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
const BIN = join(ROOT, "node_modules", ".bin");

/**
 * The bench scripts, in the order they run. `pinned`: parts that run only in their own process
 * under `taskset -c 0`; `alsoPinned`: parts that run with the others and once more pinned.
 * `flags`: the size flags only this script takes (each followed by a value); `rest`: the
 * script also takes every flag no other script claims. `info`: its figures without a target
 * still go in the summary, when they have a ratio.
 *
 * @type {{ file: string, parts: string[], pinned: string[], alsoPinned: string[],
 *   flags: string[], rest: boolean, info: boolean }[]}
 */
const SCRIPTS = [
  {
    file: join(BENCH, "run.ts"),
    parts: ["a", "b", "c", "d", "e"],
    pinned: ["c"],
    alsoPinned: [],
    flags: [],
    rest: true,
    info: false,
  },
  {
    file: join(BENCH, "processes.ts"),
    parts: ["p1", "p2", "p3"],
    pinned: [],
    alsoPinned: ["p1"],
    flags: ["--calls", "--warmup", "--rounds", "--pool-starts", "--map-items", "--map-reps"],
    rest: false,
    info: true,
  },
  {
    file: join(BENCH, "shared.ts"),
    parts: ["s1", "s2", "s3", "s4"],
    pinned: [],
    alsoPinned: [],
    flags: [
      "--payload-mb",
      "--small-mb",
      "--sum-tasks",
      "--sum-warmup",
      "--sum-reps",
      "--clone-reps",
      "--proc-mb",
      "--proc-reps",
    ],
    rest: false,
    info: true,
  },
  {
    file: join(BENCH, "ablation.ts"),
    // "suite" (the targets over the workloads that ran) always runs after them.
    parts: ["tiny", "small", "cpu", "skewed", "payload", "io", "suite"],
    pinned: [],
    alsoPinned: [],
    flags: [
      "--tiny-items",
      "--small-items",
      "--small-us",
      "--cpu-items",
      "--cpu-ms",
      "--skew-items",
      "--skew-ms",
      "--skew-slow",
      "--shared-mb",
      "--shared-tasks",
      "--shared-passes",
      "--io-items",
      "--io-ms",
      "--warm-maps",
      "--warm-reps",
      "--sample-ms",
      "--cold-reps",
    ],
    rest: false,
    info: false,
  },
];
const PARTS = SCRIPTS.flatMap((s) => s.parts);
/** Parts whose untargeted figures with a ratio go in the summary. */
const INFO_PARTS = SCRIPTS.filter((s) => s.info).flatMap((s) => s.parts);
/** Size flags some script claims; the others go to the `rest` script. */
const CLAIMED_FLAGS = SCRIPTS.flatMap((s) => s.flags);
/** Flags every script takes. */
const SHARED_FLAGS = ["--quick", "--watchdog-ms"];
/** How long one bench script process may take before it is killed. */
const RUN_LIMIT_MS = 20 * 60_000;
/** How long a process may linger after printing its report before it counts as not exiting. */
const EXIT_GRACE_MS = 15_000;

/** @type {Record<string, (file: string) => string[]>} */
const COMMANDS = {
  deno: (file) => [join(BIN, "deno"), "run", "-A", file],
  bun: (file) => [join(BIN, "bun"), file],
  node: (file) => [join(BIN, "node"), file],
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
        `Expected \`--only\` to list parts among ${PARTS.join(", ")}, got ${JSON.stringify(p)}`,
      );
    }
  }
  return { runtimes, parts, pin, forward };
}

/**
 * The forwarded flags one script takes: the shared ones, its own sizes, and, for the `rest`
 * script (run.ts), every flag no script claims.
 *
 * @param {string[]} forward
 * @param {typeof SCRIPTS[number]} script
 * @returns {string[]}
 */
function flagsFor(forward, script) {
  /** @type {string[]} */
  const out = [];
  for (let i = 0; i < forward.length; i++) {
    const arg = forward[i];
    const name = arg.includes("=") ? arg.slice(0, arg.indexOf("=")) : arg;
    // A flag without "=" takes the next argument as its value, unless it is a switch.
    const next = !arg.includes("=") && name !== "--quick" && forward[i + 1] !== undefined &&
        !forward[i + 1].startsWith("--")
      ? [forward[++i]]
      : [];
    const mine = SHARED_FLAGS.includes(name) || script.flags.includes(name) ||
      (script.rest && !CLAIMED_FLAGS.includes(name));
    if (mine) out.push(arg, ...next);
  }
  return out;
}

/**
 * Runs one bench script process and returns its report.
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
 * Runs every part for one runtime: per script, the unpinned parts in one process, then the
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
  for (const script of SCRIPTS) {
    const wanted = script.parts.filter((p) => plan.parts.includes(p));
    if (wanted.length === 0) continue;
    const name = script.file.replace(BENCH + "/", "");
    const base = [
      ...COMMANDS[runtime](script.file),
      "--json",
      ...flagsFor(plan.forward, script),
    ];
    const main = wanted.filter((p) => !script.pinned.includes(p));
    const pinned = wanted.filter((p) => script.pinned.includes(p) || script.alsoPinned.includes(p));
    if (main.length > 0) {
      const r = await runOnce([...base, "--only", main.join(",")], `${runtime} ${name} (${main})`);
      problems.push(...r.problems);
      if (r.report) reports.push(r.report);
    }
    const onlyPinned = pinned.filter((p) => script.pinned.includes(p));
    const alsoPinned = pinned.filter((p) => script.alsoPinned.includes(p));
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
    const r = await runOnce(command, `${runtime} ${name} (${toRun}, pinned)`);
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
