// @ts-check
/**
 * `npm run bench:appendix`: rewrites the "Performance" section at the end of the README, between
 * `<!-- perf:begin -->` and `<!-- perf:end -->` (appended if the markers are not there yet),
 * with a table of the figures of `npm run bench:check` per runtime and their targets, and how to
 * read them. Without an argument it runs `bench/check.mjs --json` (about a minute); given a
 * file, it reads that instead: a `check.mjs --json` result, or a baseline file such as
 * `bench/baseline.json`.
 *
 * ```sh
 * npm run bench:appendix                          # measure now, then rewrite the section
 * npm run bench:appendix -- bench/baseline.json   # the committed baseline's figures
 * node bench/appendix.mjs bench/results/check-….json --readme README.md
 * ```
 *
 * The section is formatted as `deno fmt` formats the README (and then through `deno fmt -`
 * when the binary is there), so that `deno fmt --check` stays clean; the rest of the README
 * is left as it is. Plain JavaScript so that any Node
 * can start it.
 *
 * @module
 */

import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { pathToFileURL } from "node:url";
import { BUSY_PCT, CHECKS, FAIL, SLOWER } from "./check.mjs";
import { BENCH, BIN, ROOT } from "./_runs.mjs";

export const BEGIN = "<!-- perf:begin -->";
export const END = "<!-- perf:end -->";
const RUNTIMES = ["deno", "bun", "node"];
const NAMES = /** @type {Record<string, string>} */ ({ deno: "Deno", bun: "Bun", node: "Node" });

/**
 * The figures to print, whichever file they came from.
 *
 * @typedef {object} Figures
 * @property {string} date When they were measured.
 * @property {string} source Where they came from, for the section's first line (markdown).
 * @property {Record<string, { version: string, cpus: number }>} runtimes
 * @property {{ id: string, label: string, better: string, target?: string,
 *   cells: Record<string, { ratio: number | null, met?: boolean, reason?: string }> }[]} rows
 */

/**
 * Reads a check result or a baseline file.
 *
 * @param {any} data
 * @param {string} source
 * @returns {Figures}
 */
export function normalize(data, source) {
  if (Array.isArray(data.rows)) {
    // A `check.mjs --json` result: one row per figure and runtime.
    /** @type {Figures["rows"]} */
    const rows = [];
    for (const check of CHECKS) {
      const mine = data.rows.filter((/** @type {any} */ r) => r.id === check.id);
      if (mine.length === 0) continue;
      rows.push({
        id: check.id,
        label: check.label,
        better: check.better,
        target: mine.find((/** @type {any} */ r) => r.current.target)?.current.target.label,
        cells: Object.fromEntries(
          mine.map((/** @type {any} */ r) => [r.runtime, {
            ratio: r.current.ratio,
            met: r.current.met,
            reason: r.current.reason,
          }]),
        ),
      });
    }
    return { date: data.date, source, runtimes: data.runtimes, rows };
  }
  if (data.figures && typeof data.figures === "object") {
    // A baseline file: per figure, per runtime.
    return {
      date: data.written,
      source,
      runtimes: data.runtimes,
      rows: CHECKS.filter((c) => data.figures[c.id] !== undefined).map((check) => {
        const f = data.figures[check.id];
        return {
          id: check.id,
          label: check.label,
          better: check.better,
          target: f.target?.label,
          cells: Object.fromEntries(
            Object.entries(f.runtimes).map(([rt, /** @type {any} */ m]) => [rt, {
              ratio: m.ratio,
              met: m.met,
              reason: m.reason,
            }]),
          ),
        };
      }),
    };
  }
  throw new TypeError(`Expected ${source} to be a bench:check result or a baseline file`);
}

/**
 * A markdown table, its columns padded as `deno fmt` pads them.
 *
 * @param {string[]} header
 * @param {string[][]} rows
 */
function table(header, rows) {
  const widths = header.map((h, i) => Math.max(3, h.length, ...rows.map((r) => r[i].length)));
  const line = (/** @type {string[]} */ cells) =>
    `| ${cells.map((c, i) => c.padEnd(widths[i])).join(" | ")} |`;
  return [line(header), line(widths.map((w) => "-".repeat(w))), ...rows.map(line)].join("\n");
}

/**
 * Wraps a paragraph at 100 columns, as `deno fmt` does with this project's settings.
 *
 * @param {string} text
 */
function wrap(text) {
  const lines = [];
  let line = "";
  for (const word of text.split(/\s+/).filter(Boolean)) {
    if (line !== "" && line.length + 1 + word.length > 100) {
      lines.push(line);
      line = word;
    } else line = line === "" ? word : `${line} ${word}`;
  }
  if (line !== "") lines.push(line);
  return lines.join("\n");
}

/**
 * The section, markers included.
 *
 * @param {Figures} figures
 * @returns {string}
 */
export function section(figures) {
  const runtimes = RUNTIMES.filter((rt) => figures.rows.some((r) => r.cells[rt] !== undefined));
  const head = (/** @type {string} */ rt) =>
    `${NAMES[rt]}${figures.runtimes?.[rt] ? ` ${figures.runtimes[rt].version}` : ""}`;
  /** @type {string[]} */
  const unmeasured = [];
  const rows = figures.rows.map((r) => [
    r.label.replace(/^\w+: /, "").replace(/\|/g, "\\|") + ` (${r.label.split(":")[0]})`,
    r.better === "higher" ? "higher" : "lower",
    r.target ?? "",
    ...runtimes.map((rt) => {
      const c = r.cells[rt];
      if (c === undefined) return "";
      if (c.ratio === null) {
        unmeasured.push(`${NAMES[rt]}, ${r.label.split(":")[0]}: ${c.reason ?? "no reason given"}`);
        return "not measured";
      }
      return `${c.ratio.toFixed(2)}×${c.met === undefined ? "" : c.met ? " (met)" : " (not met)"}`;
    }),
  ]);
  const day = figures.date ? figures.date.slice(0, 10) : "an unknown date";
  const body = [
    BEGIN,
    "",
    "## Performance",
    "",
    "<!-- Written by `npm run bench:appendix` (bench/appendix.mjs); edits here are " +
    "overwritten. -->",
    "",
    wrap(
      `What the benchmark check (\`bench/check.mjs\`) measured on ${day}, on a shared 2-core ` +
        `Linux machine (from ${figures.source}); \`bench/README.md\` says what each part ` +
        "measures.",
    ),
    "",
    table(["figure (part)", "better", "target", ...runtimes.map(head)], rows),
    "",
    wrap(
      "Every figure is a ratio to a baseline measured in the same process run, not an " +
        "absolute time: the map and the submits against a bare pool of two raw workers " +
        "posting one message per item, the round trip against a raw `postMessage` ping-pong " +
        "in the same process pinned to one CPU, the speedup against the same 64 tasks in a " +
        "plain loop; so that much of a shared machine's noise cancels out, and only the " +
        "ratio is compared. Higher is better for the throughput multiples and the speedup, " +
        "lower for the round trip's overhead; the target is the project's goal, which a " +
        "figure may not meet yet. The check compares each figure with the committed " +
        "baseline file, `bench/baseline.json`: it flags one more than " +
        `${SLOWER}× worse than its baseline as "slower", and fails (in CI too) when one is ` +
        `more than ${FAIL}× worse (unless others kept over ${BUSY_PCT}% of the CPUs busy each ` +
        'time it was measured: then it is flagged "busy"), or was measured in the baseline ' +
        "and cannot be now. After a change that moves a figure on purpose, the baseline is " +
        "measured again and this section rewritten from it, as `bench/README.md` describes.",
    ),
    ...(unmeasured.length === 0 ? [] : ["", wrap(`Not measured: ${unmeasured.join("; ")}.`)]),
    "",
    END,
  ];
  return body.join("\n");
}

/**
 * Formats markdown with `deno fmt` (the project's settings), if the binary is there.
 *
 * @param {string} text
 * @returns {string}
 */
function denoFmt(text) {
  const deno = join(BIN, "deno");
  if (!existsSync(deno)) return text;
  const r = spawnSync(deno, ["fmt", "--ext", "md", "-"], {
    cwd: ROOT,
    input: text,
    encoding: "utf8",
  });
  return r.status === 0 ? r.stdout : text;
}

/**
 * The README with the section replaced (or appended).
 *
 * @param {string} readme
 * @param {string} block
 * @returns {string}
 */
export function replaceSection(readme, block) {
  const begin = readme.indexOf(BEGIN);
  const end = readme.indexOf(END);
  if (begin !== -1 && end > begin) {
    return readme.slice(0, begin) + block + readme.slice(end + END.length);
  }
  return `${readme.trimEnd()}\n\n${block}\n`;
}

function main() {
  const args = process.argv.slice(2);
  let readmePath = join(ROOT, "README.md");
  /** @type {string | undefined} */
  let input;
  for (let i = 0; i < args.length; i++) {
    if (args[i] === "--readme") readmePath = args[++i];
    else if (args[i] === "--help" || args[i] === "-h") {
      console.log("usage: node bench/appendix.mjs [result-or-baseline.json] [--readme README.md]");
      return;
    } else input = args[i];
  }
  /** @type {Figures} */
  let figures;
  if (input !== undefined) {
    figures = normalize(
      JSON.parse(readFileSync(input, "utf8")),
      `\`${input.replace(ROOT + "/", "")}\``,
    );
  } else {
    console.error("running bench/check.mjs --json …");
    const r = spawnSync(process.execPath, [join(BENCH, "check.mjs"), "--json"], {
      cwd: ROOT,
      encoding: "utf8",
      stdio: ["ignore", "pipe", "inherit"],
      maxBuffer: 64 * 1024 * 1024,
    });
    const last = r.stdout.trim().split("\n").at(-1) ?? "";
    if (!last.startsWith("{")) {
      console.error("bench/check.mjs printed no JSON result; the README is unchanged");
      process.exitCode = 1;
      return;
    }
    if (r.status !== 0) console.error("bench:check failed; writing its figures anyway");
    figures = normalize(JSON.parse(last), "a fresh run");
  }
  const readme = readFileSync(readmePath, "utf8");
  // Only the section goes through deno fmt: the rest of the README is left as it is.
  const next = replaceSection(readme, denoFmt(section(figures)).trimEnd());
  writeFileSync(readmePath, next);
  console.error(`rewrote the Performance section of ${readmePath.replace(ROOT + "/", "")}`);
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main();
}
