#!/usr/bin/env node
/**
 * `npm test`: runs the whole suite under Deno, Bun and Node 24, one after another, using the
 * binaries in node_modules/.bin (never PATH), streams each runner's own output, then prints a
 * summary table and `total: N passed, M failed`.
 *
 * Plain JavaScript on purpose: `npm test` may be started by an older Node (20) that cannot
 * run TypeScript.
 *
 * Usage: node tests/_run_all.mjs [deno] [bun] [node]   (default: all three)
 * Env:   FANOUT_TEST_TIMEOUT_MS  per-runtime limit (default 6 minutes)
 *
 * Exits non-zero if any runtime failed, hung, or ran no tests.
 */

import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import path from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const TIMEOUT_MS = Number(process.env.FANOUT_TEST_TIMEOUT_MS) || 6 * 60 * 1000;

const bin = (name) => path.join(ROOT, "node_modules", ".bin", name);

/** Removes ANSI colour codes so the summaries can be parsed. */
// deno-lint-ignore no-control-regex
const stripAnsi = (text) => text.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, "");

const lastMatch = (text, regex) => {
  const all = [...text.matchAll(regex)];
  return all.length ? all[all.length - 1] : undefined;
};

/**
 * Deno: `ok | 3 passed (41 steps) | 0 failed` or `FAILED | 2 passed (30 steps) | 1 failed (2 steps)`.
 * Each describe() is a test and each it() a step; the suite puts every it() inside a
 * describe(), so steps are the leaf tests. A describe that failed on its own (no failed step)
 * counts as one failure.
 */
function parseDeno(text) {
  const m = lastMatch(
    text,
    /(?:ok|FAILED) \| (\d+) passed(?: \((\d+) steps?\))? \| (\d+) failed(?: \((\d+) steps?\))?/g,
  );
  if (!m) return undefined;
  const [, tests, steps, failedTests, failedSteps] = m;
  const passed = steps !== undefined ? Number(steps) : Number(tests);
  const failed = failedSteps !== undefined ? Number(failedSteps) : Number(failedTests);
  return { passed, failed };
}

/** Bun: lines ` 40 pass` and ` 0 fail`. */
function parseBun(text) {
  const pass = lastMatch(text, /^\s*(\d+) pass\s*$/gm);
  const fail = lastMatch(text, /^\s*(\d+) fail\s*$/gm);
  if (!pass && !fail) return undefined;
  return { passed: Number(pass?.[1] ?? 0), failed: Number(fail?.[1] ?? 0) };
}

/** Node spec reporter: `ℹ pass 40`, `ℹ fail 0`, `ℹ cancelled 0` (a cancelled test failed too). */
function parseNode(text) {
  const pass = lastMatch(text, /^ℹ pass (\d+)/gm);
  const fail = lastMatch(text, /^ℹ fail (\d+)/gm);
  const cancelled = lastMatch(text, /^ℹ cancelled (\d+)/gm);
  if (!pass && !fail) return undefined;
  return {
    passed: Number(pass?.[1] ?? 0),
    failed: Number(fail?.[1] ?? 0) + Number(cancelled?.[1] ?? 0),
  };
}

const RUNTIMES = [
  {
    name: "deno",
    cmd: bin("deno"),
    // --no-check: `deno test` type-checks each worker's module graph every time a worker
    // starts (~0.7 s per worker here, ~10x the suite's time); .ci/run type-checks tests/
    // and src/ once with `deno check` instead.
    args: ["test", "-A", "--no-check", "tests/"],
    parse: parseDeno,
  },
  {
    name: "bun",
    // bunfig.toml sets the per-test timeout; --timeout repeats it so it holds without it.
    cmd: bin("bun"),
    args: ["test", "--timeout", "120000", "./tests/"],
    parse: parseBun,
  },
  {
    name: "node",
    // The glob is expanded by node itself (no shell). The spec reporter prints the summary.
    cmd: bin("node"),
    args: ["--test", "--test-reporter=spec", "tests/**/*.test.ts"],
    parse: parseNode,
  },
];

/** The process group of the run in progress, so an interrupt can stop it. */
let current;

function run(runtime) {
  return new Promise((resolve) => {
    const started = Date.now();
    console.log(
      `\n===== ${runtime.name}: ${path.relative(ROOT, runtime.cmd)} ${runtime.args.join(" ")}\n`,
    );
    if (!existsSync(runtime.cmd)) {
      console.log(`${runtime.cmd} not found: run npm install`);
      resolve({ name: runtime.name, code: null, hung: false, counts: undefined, ms: 0 });
      return;
    }
    // A process group of its own, so a hung run is killed with everything it started.
    const child = spawn(runtime.cmd, runtime.args, {
      cwd: ROOT,
      stdio: ["ignore", "pipe", "pipe"],
      detached: true,
      // An operator's CE_PARALLEL would change what the tests' executors do; the tests that
      // need it set it themselves.
      env: withoutParallelEnv(process.env),
    });
    current = child;
    let output = "";
    child.stdout.on("data", (chunk) => {
      process.stdout.write(chunk);
      output += chunk;
    });
    child.stderr.on("data", (chunk) => {
      process.stderr.write(chunk);
      output += chunk;
    });
    let hung = false;
    const timer = setTimeout(() => {
      hung = true;
      console.log(`\n${runtime.name}: no result after ${TIMEOUT_MS / 1000} s, killing it`);
      killGroup(child);
    }, TIMEOUT_MS);
    const finish = (code, signal) => {
      clearTimeout(timer);
      current = undefined;
      resolve({
        name: runtime.name,
        code: code ?? (signal ? `signal ${signal}` : null),
        hung,
        counts: runtime.parse(stripAnsi(output)),
        ms: Date.now() - started,
      });
    };
    child.on("error", (error) => {
      console.log(`${runtime.name}: could not start: ${error.message}`);
      finish(null, null);
    });
    child.on("close", finish);
  });
}

function killGroup(child) {
  try {
    process.kill(-child.pid, "SIGKILL");
  } catch {
    child.kill("SIGKILL");
  }
}

process.on("SIGINT", () => {
  if (current) killGroup(current);
  process.exit(130);
});

const wanted = process.argv.slice(2);
const unknown = wanted.filter((name) => !RUNTIMES.some((r) => r.name === name));
if (unknown.length) {
  console.error(`Unknown runtime(s): ${unknown.join(", ")}; expected deno, bun and/or node`);
  process.exit(2);
}
const selected = wanted.length ? RUNTIMES.filter((r) => wanted.includes(r.name)) : RUNTIMES;

const results = [];
for (const runtime of selected) results.push(await run(runtime));

let totalPassed = 0;
let totalFailed = 0;
let ok = true;
const rows = [["runtime", "exit", "passed", "failed", "time", "status"]];
for (const r of results) {
  const passed = r.counts?.passed;
  const failed = r.counts?.failed;
  totalPassed += passed ?? 0;
  totalFailed += failed ?? 0;
  let status = "ok";
  if (r.hung) status = "FAILED (hung)";
  else if (r.code !== 0) status = "FAILED";
  else if (r.counts === undefined) status = "FAILED (no summary found)";
  else if (passed + failed === 0) status = "FAILED (no tests ran)";
  else if (failed > 0) status = "FAILED";
  if (status !== "ok") ok = false;
  rows.push([
    r.name,
    String(r.code),
    passed === undefined ? "?" : String(passed),
    failed === undefined ? "?" : String(failed),
    `${(r.ms / 1000).toFixed(1)} s`,
    status,
  ]);
}
const widths = rows[0].map((_, i) => Math.max(...rows.map((row) => row[i].length)));
console.log("\n===== summary\n");
for (const row of rows) {
  console.log(row.map((cell, i) => cell.padEnd(widths[i])).join("  ").trimEnd());
}
console.log(`\ntotal: ${totalPassed} passed, ${totalFailed} failed`);
process.exit(ok ? 0 : 1);

/** The environment minus CE_PARALLEL. */
function withoutParallelEnv(env) {
  const copy = { ...env };
  delete copy.CE_PARALLEL;
  return copy;
}
