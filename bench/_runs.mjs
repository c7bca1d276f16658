// @ts-check
/**
 * Running `run.ts` in a process of its own and reading its report: what `compare.mjs`
 * (`npm run bench`) and `check.mjs` (`npm run bench:check`) share. Plain JavaScript so that
 * any Node, including the system's Node 20, can load it.
 *
 * @module
 */

/** @import { Report } from "./_report.js" */

import { spawn, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { REPORT_MARKER } from "./_report.js";

/** This folder. */
export const BENCH = dirname(fileURLToPath(import.meta.url));
/** The repository. */
export const ROOT = dirname(BENCH);
/** Where `npm install` puts the runtimes. */
export const BIN = join(ROOT, "node_modules", ".bin");
/** `run.ts`. */
export const RUN = join(BENCH, "run.ts");

/**
 * The command that runs a script on each runtime (the copies in node_modules/.bin).
 *
 * @type {Record<string, (file: string) => string[]>}
 */
export const COMMANDS = {
  deno: (file) => [join(BIN, "deno"), "run", "-A", file],
  bun: (file) => [join(BIN, "bun"), file],
  node: (file) => [join(BIN, "node"), file],
};

/** How long a process may linger after printing its report before it counts as not exiting. */
/**
 * The runtimes a `--runtimes deno,bun,node` list names.
 *
 * @param {string} list
 * @returns {string[]}
 */
export function parseRuntimes(list) {
  const runtimes = list.split(",").map((s) => s.trim()).filter(Boolean);
  for (const rt of runtimes) {
    if (!(rt in COMMANDS)) {
      throw new RangeError(
        `Expected \`--runtimes\` to list deno, bun or node, got ${JSON.stringify(rt)}`,
      );
    }
  }
  return runtimes;
}

export const EXIT_GRACE_MS = 15_000;

/**
 * Runs one run.ts process (started with `--json`) and returns its report.
 *
 * @param {string[]} command
 * @param {string} label How problems name this run.
 * @param {number} limitMs How long it may take before it is killed.
 * @param {{ quiet?: boolean }} [options] `quiet`: its stderr (the progress lines) is not shown.
 * @returns {Promise<{ report?: Report, problems: string[] }>}
 */
export function runOnce(command, label, limitMs, options = {}) {
  return new Promise((resolve) => {
    console.error(`\n$ ${command.map((c) => c.replace(ROOT + "/", "")).join(" ")}`);
    const child = spawn(command[0], command.slice(1), {
      cwd: ROOT,
      stdio: ["ignore", "pipe", options.quiet ? "pipe" : "inherit"],
    });
    /** @type {string[]} */
    const problems = [];
    let stdout = "";
    let stderr = "";
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    let exitTimer;
    const limit = setTimeout(() => {
      problems.push(`${label}: killed after ${(limitMs / 60_000).toFixed(1)} min`);
      child.kill("SIGKILL");
    }, limitMs);
    child.stderr?.setEncoding("utf8");
    child.stderr?.on("data", (chunk) => {
      stderr += chunk;
    });
    const out = /** @type {import("node:stream").Readable} */ (child.stdout);
    out.setEncoding("utf8");
    out.on("data", (chunk) => {
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
      // A quiet run that went wrong shows what it said.
      if (options.quiet && (code !== 0 || signal !== null) && stderr !== "") {
        console.error(stderr.trimEnd());
      }
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

/**
 * Where taskset is, if it is installed.
 *
 * @returns {string | undefined}
 */
export function hasTaskset() {
  for (const path of ["/usr/bin/taskset", "/bin/taskset"]) if (existsSync(path)) return path;
  const which = spawnSync("sh", ["-c", "command -v taskset"], { encoding: "utf8" });
  return which.status === 0 ? which.stdout.trim() : undefined;
}
