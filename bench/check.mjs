// @ts-check
/**
 * `npm run bench:check`: a short regression check of a handful of ratio figures on Deno, Bun
 * and Node 24, each against its bare baseline measured in the same run, compared with the
 * committed baseline file (`bench/baseline.json`). A figure more than 1.1× worse than its
 * baseline is flagged "slower"; more than 1.5× worse fails the check (exit 1), as does a
 * figure that was measured in the baseline and could not be now, a part that failed, or a run
 * that did not report. A figure that would fail while other processes took more than 25% of
 * the CPUs every time it was measured is reported as "busy" and does not fail: that says more
 * about the machine than about fanout. About 12 s per runtime on a quiet machine.
 *
 * The figures (see {@linkcode CHECKS}): part b (200,000 trivial items through `map` against a
 * bare pool), c (one `submit()` round trip against a raw ping-pong, pinned with
 * `taskset -c 0`), sb1 (200,000 submits at once against a bare pool, fewer repetitions than
 * the full scenario) and sb5 (64 × ~20 ms tasks through one `map`: speedup over a plain loop).
 * Per runtime, b, sb1 and sb5 run in one process, c in another under `taskset -c 0`; a
 * runtime with a failing figure is measured once more, and each figure keeps the better of
 * its two measurements (noise on this shared machine only ever makes one look worse).
 *
 * ```sh
 * npm run bench:check                             # check against bench/baseline.json
 * npm run bench:check -- --update                 # measure and rewrite the baseline
 * npm run bench:check -- --json > check.json      # the result as JSON (the table on stderr)
 * node bench/check.mjs --runtimes node,bun        # some runtimes only
 * node bench/check.mjs --baseline other.json      # another baseline file
 * ```
 *
 * `--update` measures each runtime twice and writes the geometric mean of each figure's two
 * ratios; with `--runtimes` it rewrites only those runtimes' figures. Plain JavaScript so that
 * any Node, including the system's Node 20, can start it.
 *
 * @module
 */

/** @import { Figure, Report, Target } from "./_report.js" */

import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { pathToFileURL } from "node:url";
import { meets } from "./_report.js";
import { BENCH, COMMANDS, hasTaskset, parseRuntimes, ROOT, RUN, runOnce } from "./_runs.mjs";
import { parseArgs } from "node:util";

/** A figure this much worse than its baseline is flagged "slower". */
export const SLOWER = 1.1;
/** A figure this much worse than its baseline fails the check. */
export const FAIL = 1.5;
/**
 * Other processes' share of the CPUs above which a measurement is not to be trusted: a failing
 * figure measured (both times) while others took more is "busy", not judged; `--update` warns
 * that its baseline may be off.
 */
export const BUSY_PCT = 25;
/** The default baseline file. */
export const BASELINE = join(BENCH, "baseline.json");
/** How long one run.ts process of the check may take. */
const RUN_LIMIT_MS = 90_000;
/**
 * How long the whole check may take (a quiet run takes ~35 s): past it, the runs left are
 * skipped and reported, so that a hang cannot hold CI for long.
 */
const BUDGET_MS = 5 * 60_000;
const checkStarted = performance.now();

/**
 * One checked figure: which row of which run's report it is, and which way is worse.
 *
 * @typedef {object} Check
 * @property {string} id Its key in the baseline file.
 * @property {string} label How the tables name it.
 * @property {"higher" | "lower"} better Which way its ratio is better: "higher" for a speedup
 *   or a multiple of a bare pool's throughput, "lower" for an overhead (× a raw round trip).
 * @property {"main" | "pinned"} run Which of the runtime's two processes measures it.
 * @property {string} part The part of its scenario.
 * @property {(name: string) => boolean} pick Which of the part's figures it is, by name.
 */

/** @type {Check[]} */
export const CHECKS = [
  {
    id: "map_200k_vs_bare",
    label: "b: map() of 200,000 trivial items, items/s ÷ bare pool",
    better: "higher",
    run: "main",
    part: "b",
    pick: () => true,
  },
  {
    id: "submit_round_trip_vs_raw",
    label: "c: submit() round trip ÷ raw ping-pong, pinned, median",
    better: "lower",
    run: "pinned",
    part: "c",
    pick: (name) => name.endsWith("(median)"),
  },
  {
    id: "submits_200k_vs_bare",
    label: "sb1: 200,000 submit() at once, items/s ÷ bare pool",
    better: "higher",
    run: "main",
    part: "sb1",
    pick: (name) => !name.includes("pre-flight"),
  },
  {
    id: "map_64x20ms_speedup",
    label: "sb5: 64 × 20 ms tasks, one map(), speedup over serial",
    better: "higher",
    run: "main",
    part: "sb5",
    pick: (name) => name.includes("one map()"),
  },
];

/** The sizes each run gets: fixed here, so that a baseline and a check measure the same. */
const RUN_ARGS = {
  main: [
    ["--workers", "2"],
    ["--items", "200000"],
    ["--item-reps", "3"],
    ["--submits", "200000"],
    ["--submit-reps", "2"],
    ["--submit-cap-ms", "10000"],
    ["--spin-tasks", "64"],
    ["--spin-reps", "2"],
  ].flat(),
  pinned: ["--pings", "3000"],
};

/**
 * What one checked figure measured on one runtime.
 *
 * @typedef {object} Measured
 * @property {number | null} ratio The ratio, or null when it could not be measured.
 * @property {string} [reason] Why it could not be, or how to read it.
 * @property {number} [value] The figure's own value, and its unit.
 * @property {string} [unit]
 * @property {{ name: string, value: number, unit: string }} [bare] Its same-run baseline.
 * @property {Target} [target] The project's goal for it.
 * @property {boolean} [met] Whether the goal is met.
 * @property {string} [load] The machine's load while its part ran.
 * @property {"best" | "mean"} [of2] Whether this is the better of two measurements, or their
 *   geometric mean (then `ratios` are the two).
 * @property {(number | null)[]} [ratios] The two measurements' ratios, when there were two.
 */

/**
 * What one runtime measured: its figures, and its version and CPUs.
 *
 * @typedef {{ figures: Map<string, Measured>, info?: { version: string, cpus: number } }}
 *   RuntimeFigures
 */

/**
 * The baseline file: per figure and runtime, the ratio it had when written.
 *
 * @typedef {object} Baseline
 * @property {string} about
 * @property {string} written
 * @property {string} [source] The commit measured, and whether src/ had changes on top of it.
 * @property {Record<string, { version: string, cpus: number }>} runtimes
 * @property {Record<string, { label: string, better: "higher" | "lower", target?: Target,
 *   runtimes: Record<string, Measured> }>} figures
 */

/**
 * One row of the check's result.
 *
 * @typedef {object} Row
 * @property {string} id
 * @property {string} label
 * @property {"higher" | "lower"} better
 * @property {string} runtime
 * @property {Measured} current
 * @property {number | null} baseline The baseline's ratio (null: not measured then).
 * @property {boolean} hasBaseline Whether the baseline file has this figure for this runtime.
 * @property {number | null} worse How many times worse than the baseline (below 1: better).
 * @property {"ok" | "faster" | "slower" | "FAIL" | "busy" | "not measured" | "no baseline"} status
 *   "busy": it would fail, but other processes took more than {@linkcode BUSY_PCT}% of the CPUs
 *   during every measurement of it, so it is reported and not judged.
 * @property {boolean} fails Whether this row fails the check.
 */

function parseCommandLine() {
  const { values } = parseArgs({
    options: {
      runtimes: { type: "string", default: Object.keys(COMMANDS).join(",") },
      update: { type: "boolean", default: false },
      json: { type: "boolean", default: false },
      baseline: { type: "string", default: BASELINE },
      "no-retry": { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help) {
    console.log(
      "usage: node bench/check.mjs [--update] [--json] [--runtimes deno,bun,node] " +
        "[--baseline file] [--no-retry]",
    );
    process.exit(0);
  }
  const { update, json, baseline } = values;
  return {
    runtimes: parseRuntimes(values.runtimes),
    update,
    json,
    baseline,
    retry: !values["no-retry"],
  };
}

/**
 * The checked figures of one report, measured or not (with the reason).
 *
 * @param {Report | undefined} report
 * @param {"main" | "pinned"} run
 * @param {string[]} problems The run's problems, for a figure it did not report.
 * @returns {Map<string, Measured>}
 */
function pick(report, run, problems) {
  /** @type {Map<string, Measured>} */
  const out = new Map();
  for (const check of CHECKS.filter((c) => c.run === run)) {
    const figures = report?.figures.filter((f) => f.part === check.part) ?? [];
    const failed = figures.find((f) => f.name === "FAILED");
    const f = figures.find((f) => f.name !== "FAILED" && check.pick(f.name));
    const load = report?.notes.find((n) => n.startsWith(`${check.part}: took `))
      ?.slice(check.part.length + 2);
    /** @type {Measured} */
    let m;
    if (f !== undefined && f.ratio !== undefined && Number.isFinite(f.ratio)) {
      m = {
        ratio: f.ratio,
        value: f.value,
        unit: f.unit,
        ...(f.baseline ? { bare: f.baseline } : {}),
        ...(f.target ? { target: f.target, met: f.met === true } : {}),
      };
    } else if (f !== undefined) {
      m = {
        ratio: null,
        reason: f.note ?? "no ratio",
        ...(f.baseline ? { bare: f.baseline } : {}),
        ...(f.target ? { target: f.target, met: false } : {}),
      };
    } else if (failed !== undefined) {
      m = { ratio: null, reason: `part ${check.part} failed: ${failed.note ?? ""}` };
    } else {
      m = {
        ratio: null,
        reason: report === undefined
          ? `no report (${problems.join("; ")})`
          : `part ${check.part} reported no such figure`,
      };
    }
    if (load !== undefined) m.load = load;
    out.set(check.id, m);
  }
  return out;
}

/**
 * How many times worse `ratio` is than `base`, given which way is better.
 *
 * @param {number} ratio
 * @param {number} base
 * @param {"higher" | "lower"} better
 */
function worseBy(ratio, base, better) {
  return better === "higher" ? base / ratio : ratio / base;
}

/**
 * Measures every checked figure on one runtime: the main run and the pinned run.
 *
 * @param {string} runtime
 * @param {string | undefined} taskset
 * @param {("main" | "pinned")[]} runs Which of the two to run.
 * @returns {Promise<{ figures: Map<string, Measured>, info?: { version: string, cpus: number },
 *   problems: string[], pinned: boolean }>}
 */
async function measure(runtime, taskset, runs) {
  /** @type {Map<string, Measured>} */
  const figures = new Map();
  /** @type {string[]} */
  const problems = [];
  /** @type {{ version: string, cpus: number } | undefined} */
  let info;
  for (const run of runs) {
    const parts = [...new Set(CHECKS.filter((c) => c.run === run).map((c) => c.part))];
    if (performance.now() - checkStarted > BUDGET_MS) {
      const why = `${runtime} ${parts}: skipped, the check's ${BUDGET_MS / 60_000}-minute budget ` +
        "was spent";
      problems.push(why);
      for (const [id, m] of pick(undefined, run, [why])) figures.set(id, m);
      continue;
    }
    let command = [
      ...COMMANDS[runtime](RUN),
      "--json",
      "--only",
      parts.join(","),
      ...RUN_ARGS[run],
    ];
    if (run === "pinned" && taskset !== undefined) command = [taskset, "-c", "0", ...command];
    const r = await runOnce(command, `${runtime} ${parts}`, RUN_LIMIT_MS, { quiet: true });
    problems.push(...r.problems);
    if (r.report !== undefined && run === "main") {
      info = { version: r.report.runtime.version, cpus: r.report.cpus };
    }
    for (const [id, m] of pick(r.report, run, r.problems)) figures.set(id, m);
  }
  return { figures, info, problems, pinned: taskset !== undefined };
}

/**
 * Whether other processes took more than {@linkcode BUSY_PCT}% of the CPUs during every
 * measurement a load note describes ("others used N% …", once per measurement).
 *
 * @param {string | undefined} load
 */
function busy(load) {
  const shares = [...(load ?? "").matchAll(/others used (\d+)%/g)].map((m) => Number(m[1]));
  return shares.length > 0 && shares.every((pct) => pct > BUSY_PCT);
}

/**
 * Compares the measured figures with the baseline.
 *
 * @param {string} runtime
 * @param {Map<string, Measured>} figures
 * @param {Baseline | undefined} baseline
 * @returns {Row[]}
 */
function compare(runtime, figures, baseline) {
  return CHECKS.map((check) => {
    const current = figures.get(check.id) ?? { ratio: null, reason: "not run" };
    const entry = baseline?.figures[check.id]?.runtimes[runtime];
    const base = entry?.ratio ?? null;
    /** @type {Row["status"]} */
    let status;
    let worse = null;
    let fails = false;
    if (current.ratio === null) {
      status = "not measured";
      // Measured then and not now: worse than anything the check can put a number on.
      fails = base !== null;
    } else if (entry === undefined || base === null) {
      status = "no baseline";
    } else {
      worse = worseBy(current.ratio, base, check.better);
      status = worse > FAIL
        ? "FAIL"
        : worse > SLOWER
        ? "slower"
        : worse < 1 / SLOWER
        ? "faster"
        : "ok";
      fails = worse > FAIL;
    }
    if (fails && busy(current.load)) {
      status = "busy";
      fails = false;
    }
    return {
      id: check.id,
      label: check.label,
      better: check.better,
      runtime,
      current,
      baseline: base,
      hasBaseline: entry !== undefined,
      worse,
      status,
      fails,
    };
  });
}

/**
 * Two measurements of each figure made one: the better of the two (a failing check's second
 * try: noise on a shared machine only ever makes a figure look worse), or their geometric mean
 * (a baseline, which should sit in the middle of what a run gives, not at its best). A measured
 * figure beats an unmeasured one either way.
 *
 * @param {Map<string, Measured>} first
 * @param {Map<string, Measured>} second
 * @param {"best" | "mean"} how
 * @returns {Map<string, Measured>}
 */
function combine(first, second, how) {
  /** @type {Map<string, Measured>} */
  const out = new Map();
  const gm = (/** @type {number} */ x, /** @type {number} */ y) => Math.sqrt(x * y);
  for (const check of CHECKS) {
    const a = first.get(check.id);
    const b = second.get(check.id);
    if (a === undefined || b === undefined) {
      const one = a ?? b;
      if (one !== undefined) out.set(check.id, one);
      continue;
    }
    const of = { of2: how, ratios: [a.ratio, b.ratio] };
    if (a.ratio === null || b.ratio === null) {
      out.set(check.id, { ...(a.ratio === null ? b : a), ...of });
    } else if (how === "best") {
      out.set(check.id, {
        ...(worseBy(b.ratio, a.ratio, check.better) < 1 ? b : a),
        ...(a.load !== undefined && b.load !== undefined
          ? { load: `${a.load}; then ${b.load}` }
          : {}),
        ...of,
      });
    } else {
      const ratio = gm(a.ratio, b.ratio);
      out.set(check.id, {
        ...a,
        ratio,
        ...(a.value !== undefined && b.value !== undefined ? { value: gm(a.value, b.value) } : {}),
        ...(a.bare && b.bare ? { bare: { ...a.bare, value: gm(a.bare.value, b.bare.value) } } : {}),
        ...(a.target ? { met: meets(a.target, NaN, ratio) } : {}),
        ...(a.load !== undefined && b.load !== undefined
          ? { load: `${a.load}; then ${b.load}` }
          : {}),
        ...of,
      });
    }
  }
  return out;
}

/** @param {number | null} x */
const times = (x) => (x === null ? "n/a" : `${x.toFixed(2)}×`);

/**
 * The result as a text table, with the reasons for figures not measured.
 *
 * @param {Row[]} rows
 * @returns {string}
 */
export function formatRows(rows) {
  const header = ["figure", "runtime", "better", "baseline", "now", "worse by", "flag", "target"];
  const cells = rows.map((r) => [
    r.label,
    r.runtime,
    r.better,
    r.hasBaseline ? times(r.baseline) : "-",
    times(r.current.ratio) +
    (r.current.of2 === undefined ? "" : r.current.of2 === "best" ? " (best of 2)" : " (mean of 2)"),
    r.worse === null ? "-" : `${r.worse.toFixed(2)}×`,
    r.status,
    r.current.target ? `${r.current.target.label} ${r.current.met ? "met" : "not met"}` : "",
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i].length)));
  const line = (/** @type {string[]} */ c) =>
    c.map((x, i) => x.padEnd(widths[i])).join("  ").trimEnd();
  const out = [line(header), line(widths.map((w) => "-".repeat(w))), ...cells.map(line)];
  const notes = rows.filter((r) => r.current.ratio === null)
    .map((r) => `  * ${r.runtime}: ${r.label}: not measured: ${r.current.reason}`);
  // How busy the machine was: other processes' share of the CPUs while each part ran.
  for (const runtime of new Set(rows.map((r) => r.runtime))) {
    const loads = rows.filter((r) => r.runtime === runtime && r.current.load !== undefined)
      .map((r) => {
        const shares = [...(r.current.load ?? "").matchAll(/others used (\d+%)/g)].map((m) => m[1]);
        return `${r.label.split(":")[0]}: others used ${shares.join(", then ") || "?"}`;
      });
    if (loads.length > 0) notes.push(`  * ${runtime}, the machine meanwhile: ${loads.join("; ")}`);
  }
  if (notes.length > 0) out.push("", ...notes);
  return out.join("\n");
}

/**
 * Reads a baseline file, if there is one.
 *
 * @param {string} file
 * @returns {Baseline | undefined}
 */
export function readBaseline(file) {
  if (!existsSync(file)) return undefined;
  return JSON.parse(readFileSync(file, "utf8"));
}

/** The commit measured, and whether src/ had uncommitted changes (read with git, if any). */
function source() {
  const git = (/** @type {string[]} */ args) =>
    spawnSync("git", args, { cwd: ROOT, encoding: "utf8" }).stdout?.trim() ?? "";
  const commit = git(["rev-parse", "--short", "HEAD"]);
  if (commit === "") return "unknown (no git)";
  const dirty = git(["status", "--porcelain", "--", "src", "mod.ts"]) !== "";
  return dirty ? `${commit} with uncommitted changes to src/` : commit;
}

/**
 * The baseline file rewritten with the figures just measured (other runtimes' kept).
 *
 * @param {Baseline | undefined} old
 * @param {Map<string, RuntimeFigures>} measured
 * @returns {Baseline}
 */
function updated(old, measured) {
  /** @type {Baseline} */
  const next = {
    about: "Written by `npm run bench:check -- --update` (bench/check.mjs): per figure and " +
      "runtime, its ratio to a bare baseline measured in the same run. `better` says which " +
      "way is better; the check flags a figure more than " + `${SLOWER}× worse as "slower" and ` +
      `fails on one more than ${FAIL}× worse.`,
    written: new Date().toISOString(),
    source: source(),
    runtimes: { ...(old?.runtimes ?? {}) },
    figures: {},
  };
  for (const check of CHECKS) {
    next.figures[check.id] = {
      label: check.label,
      better: check.better,
      runtimes: { ...(old?.figures[check.id]?.runtimes ?? {}) },
    };
  }
  for (const [runtime, { figures, info }] of measured) {
    if (info !== undefined) next.runtimes[runtime] = info;
    for (const check of CHECKS) {
      const m = figures.get(check.id);
      if (m === undefined) continue;
      const { target: _, ...rest } = m;
      next.figures[check.id].runtimes[runtime] = rest;
      if (m.target !== undefined) next.figures[check.id].target = m.target;
    }
  }
  return next;
}

async function main() {
  const plan = parseCommandLine();
  const taskset = hasTaskset();
  const baseline = readBaseline(plan.baseline);
  const started = performance.now();
  /** @type {Row[]} */
  const rows = [];
  /** @type {string[]} */
  const problems = [];
  /** @type {string[]} */
  const notes = [];
  /** @type {Map<string, RuntimeFigures>} */
  const measured = new Map();
  if (taskset === undefined) notes.push("taskset not found: c ran NOT pinned to one CPU");
  if (baseline === undefined && !plan.update) {
    notes.push(`no baseline file at ${plan.baseline}: run with --update to write one`);
  }
  for (const runtime of plan.runtimes) {
    let m = await measure(runtime, taskset, ["main", "pinned"]);
    if (plan.update) {
      // A baseline is the geometric mean of two measurements.
      const again = await measure(runtime, taskset, ["main", "pinned"]);
      m = {
        ...m,
        figures: combine(m.figures, again.figures, "mean"),
        problems: [...m.problems, ...again.problems],
      };
    }
    let r = compare(runtime, m.figures, baseline);
    const failing = [
      ...new Set(
        r.filter((x) => x.fails || x.status === "busy")
          .map((x) => CHECKS.find((c) => c.id === x.id)?.run),
      ),
    ];
    if (plan.retry && !plan.update && failing.length > 0) {
      console.error(
        `\n${runtime}: ${
          r.filter((x) => x.fails || x.status === "busy").map((x) => x.id)
        } failing; measuring once more`,
      );
      const again = await measure(
        runtime,
        taskset,
        /** @type {("main" | "pinned")[]} */ (failing),
      );
      m = {
        ...m,
        figures: combine(m.figures, again.figures, "best"),
        problems: [...m.problems, ...again.problems],
      };
      r = compare(runtime, m.figures, baseline);
      notes.push(
        `${runtime}: measured ${failing.join(" and ")} twice; each figure keeps the better`,
      );
    }
    problems.push(...m.problems);
    measured.set(runtime, m);
    rows.push(...r);
    console.error(
      `${runtime}: ${r.map((x) => `${x.id} ${times(x.current.ratio)} (${x.status})`).join(", ")}`,
    );
  }
  if (plan.update) {
    // A baseline measured while others kept the CPUs busy is not one to commit.
    const busyParts = rows.flatMap((r) =>
      [...(r.current.load ?? "").matchAll(/others used (\d+)%/g)]
        .filter((m) => Number(m[1]) > BUSY_PCT)
        .map((m) => `${r.runtime} ${r.label.split(":")[0]} (others used ${m[1]}%)`)
    );
    if (busyParts.length > 0) {
      notes.push(
        `the machine was busy while measuring ${[...new Set(busyParts)].join(", ")}: ` +
          "this baseline may be off; run --update again when it is quiet",
      );
    }
  }
  const totalMs = performance.now() - started;
  const failed = problems.length > 0 || (!plan.update && rows.some((r) => r.fails));
  const result = {
    kind: "fanout bench:check",
    date: new Date().toISOString(),
    runtimes: Object.fromEntries(
      [...measured].flatMap(([rt, m]) => (m.info ? [[rt, m.info]] : [])),
    ),
    thresholds: { slower: SLOWER, fail: FAIL },
    baselineFile: plan.baseline.replace(ROOT + "/", ""),
    baselineWritten: baseline?.written ?? null,
    rows,
    notes,
    problems,
    failed,
    totalMs,
  };
  const dir = join(BENCH, "results");
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `check-${result.date.replaceAll(":", "-")}.json`);
  writeFileSync(file, JSON.stringify(result, null, 2) + "\n");
  const out = plan.json ? console.error : console.log;
  out(
    `\nbench:check — ${(totalMs / 1000).toFixed(0)} s; baseline ${result.baselineFile}` +
      `${baseline ? ` (written ${baseline.written})` : " (none)"}; "worse by" > ${SLOWER}× is ` +
      `flagged slower, > ${FAIL}× fails`,
  );
  out(formatRows(rows));
  for (const n of [...notes, ...problems]) out(`  * ${n}`);
  out(`Saved ${file.replace(ROOT + "/", "")}`);
  if (plan.update) {
    const next = updated(baseline, measured);
    writeFileSync(plan.baseline, JSON.stringify(next, null, 2) + "\n");
    out(`Wrote ${plan.baseline.replace(ROOT + "/", "")}`);
  } else {
    const bad = rows.filter((r) => r.fails);
    out(
      failed
        ? `bench:check FAILED: ${
          [...bad.map((r) => `${r.runtime} ${r.id} (${r.status})`), ...problems].join("; ")
        }`
        : `bench:check ok (${rows.filter((r) => r.status === "slower").length} flagged slower${
          rows.some((r) => r.status === "busy")
            ? `; ${
              rows.filter((r) => r.status === "busy").length
            } not judged: more than ${FAIL}× worse while others took over ${BUSY_PCT}% of the ` +
              "CPUs, every time it was measured"
            : ""
        })`,
    );
  }
  if (plan.json) console.log(JSON.stringify(result));
  process.exitCode = failed ? 1 : 0;
}

// Run as a script (the appendix imports its constants).
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await main();
}
