/**
 * Node's module compile cache for `.ts` task modules (`src/worker/compile_cache.js`): what a
 * worker start plus its first `.ts` task costs with it and without it. Node only (Deno and Bun
 * keep their own caches); not one of `run.ts`'s scenarios: it runs itself.
 *
 * ```sh
 * node_modules/.bin/node bench/node_compile_cache.ts [--rounds 10] [--json]
 * ```
 *
 * Two groups of rows, each a ratio of medians measured in the same run (the variants
 * interleaved round by round, in a shuffled order), with the median of the paired ratios:
 *
 * - `mechanism`: a fresh worker thread, or a fresh child process, that imports a `.ts` module
 *   and answers once: without the cache, and with it (compile_cache.js's `startCompileCache()`
 *   before the import, `saveCompileCache()` after), in a fresh cache directory (one per variant)
 *   filled by one earlier start of the same variant. The process is then stopped with SIGTERM, as the pool stops its processes;
 *   `process, not saved` leaves out `saveCompileCache()` to show why it is there. Modules:
 *   `bench/work.ts` (one module) and `mod.ts` (fanout itself, some 60 `.ts` modules).
 * - `fanout`: `new ParallelExecutor({ strategy, maxWorkers: 1 })`, one `submit(work.inc)` and
 *   `close()`, for threads and processes: without (`NODE_DISABLE_COMPILE_CACHE=1`, which the
 *   workers inherit) and with (nothing set: the worker enables the cache in Node's default
 *   directory, `<os.tmpdir()>/node-compile-cache`, warmed by one earlier start), and with
 *   `NODE_COMPILE_CACHE` set as a user would (the workers inherit it and have the cache on from
 *   their first line, fanout's own worker modules included). The `cache` rows show ~1.0 until
 *   the worker programs call compile_cache.js; the report says whether they do.
 *
 * @module
 */

import process from "node:process";
import { parseArgs } from "node:util";
import { spawn } from "node:child_process";
import { Worker } from "node:worker_threads";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ParallelExecutor } from "../mod.ts";
import { detect } from "../src/runtime/mod.ts";
import type { CpuSample } from "./_measure.ts";
import { load, median, noise, paired, withWatchdog, workTasks } from "./_measure.ts";

const WATCHDOG_MS = 60_000;
const CACHE_MODULE = new URL("../src/worker/compile_cache.js", import.meta.url).href;
const MODULES = [
  { label: "bench/work.ts", url: new URL("./work.ts", import.meta.url).href },
  { label: "mod.ts (fanout)", url: new URL("../mod.ts", import.meta.url).href },
];

/**
 * What a fresh worker runs (as a CommonJS script: `new Worker(code, { eval: true })` or
 * `node -e`): the cache if asked, the import, the answer. `workerData` or argv[1] says what.
 */
const PROBE = `
const { parentPort, workerData } = require("node:worker_threads");
const args = parentPort ? workerData : JSON.parse(process.argv[1]);
(async () => {
  const cache = await import(args.cacheModule);
  if (args.cache) cache.startCompileCache();
  const start = performance.now();
  await import(args.url);
  const importMs = performance.now() - start;
  if (args.cache && args.save) cache.saveCompileCache();
  const answer = { importMs };
  if (parentPort) parentPort.postMessage(answer); else process.send(answer);
})();
`;

interface ProbeArgs {
  cacheModule: string;
  url: string;
  cache: boolean;
  save: boolean;
}

interface Sample {
  /** From `new Worker` / spawn to the answer. */
  totalMs: number;
  /** The import alone, as the worker timed it. */
  importMs: number;
}

/** A fresh worker thread runs the probe; its environment is `env`. */
async function probeThread(
  args: ProbeArgs,
  env: Record<string, string | undefined>,
): Promise<Sample> {
  const start = performance.now();
  const worker = new Worker(PROBE, { eval: true, workerData: args, env });
  try {
    const answer = await withWatchdog(
      new Promise<{ importMs: number }>((resolve, reject) => {
        worker.once("message", resolve);
        worker.once("error", reject);
      }),
      WATCHDOG_MS,
      "probe thread",
    );
    return { totalMs: performance.now() - start, importMs: answer.importMs };
  } finally {
    await worker.terminate();
  }
}

/** A fresh child process runs the probe, and is stopped with SIGTERM once it answered. */
async function probeProcess(
  args: ProbeArgs,
  env: Record<string, string | undefined>,
): Promise<Sample> {
  const start = performance.now();
  const child = spawn(process.execPath, ["-e", PROBE, JSON.stringify(args)], {
    env,
    stdio: ["ignore", "inherit", "inherit", "ipc"],
    serialization: "advanced",
  });
  const exited = new Promise((resolve) => child.once("exit", resolve));
  try {
    const answer = await withWatchdog(
      new Promise<{ importMs: number }>((resolve, reject) => {
        child.once("message", (m) => resolve(m as { importMs: number }));
        child.once("error", reject);
        child.once("exit", (code) => reject(new Error(`probe process exited with ${code}`)));
      }),
      WATCHDOG_MS,
      "probe process",
    );
    return { totalMs: performance.now() - start, importMs: answer.importMs };
  } finally {
    child.kill("SIGTERM");
    await exited;
  }
}

/** One fanout start: an executor of one worker, its first `.ts` task, `close()`. */
async function fanoutStart(strategy: "threads" | "processes"): Promise<Sample> {
  const start = performance.now();
  const ex = new ParallelExecutor({ strategy, maxWorkers: 1 });
  try {
    const answer = await withWatchdog(ex.submit(workTasks.inc, 1), WATCHDOG_MS, strategy);
    if (answer !== 2) throw new Error(`wrong result: work.inc(1) gave ${answer}`);
    const totalMs = performance.now() - start;
    return { totalMs, importMs: NaN };
  } finally {
    await withWatchdog(ex.close(), WATCHDOG_MS, `${strategy}: close()`);
  }
}

/** A variant measured: its name, and one start. */
interface Variant {
  name: string;
  run(): Promise<Sample>;
}

/** A row of the report: `variant` against `baseline`, both over the same rounds. */
interface Row {
  group: string;
  name: string;
  baseline: string;
  totalMs: number;
  baselineTotalMs: number;
  ratio: number;
  importMs: number;
  baselineImportMs: number;
  note: string;
}

/** Runs `variants` `rounds` times each, interleaved in a shuffled order per round. */
async function interleave(variants: Variant[], rounds: number): Promise<Map<string, Sample[]>> {
  const samples = new Map(variants.map((v) => [v.name, [] as Sample[]]));
  for (let round = 0; round < rounds; round++) {
    const order = [...variants].sort(() => Math.random() - 0.5);
    for (const v of order) samples.get(v.name)!.push(await v.run());
  }
  return samples;
}

function row(
  group: string,
  samples: Map<string, Sample[]>,
  name: string,
  baseline: string,
): Row {
  const s = samples.get(name)!;
  const b = samples.get(baseline)!;
  const total = median(s.map((x) => x.totalMs));
  const base = median(b.map((x) => x.totalMs));
  return {
    group,
    name,
    baseline,
    totalMs: total,
    baselineTotalMs: base,
    ratio: total / base,
    importMs: median(s.map((x) => x.importMs)),
    baselineImportMs: median(b.map((x) => x.importMs)),
    note: paired(s.map((x, i) => x.totalMs / b[i].totalMs)),
  };
}

/** Whether the worker programs call compile_cache.js (else the fanout rows stay at ~1.0). */
function wired(): Record<string, boolean> {
  const read = (name: string): boolean => {
    try {
      return readFileSync(new URL(`../src/worker/${name}`, import.meta.url), "utf8").includes(
        "startCompileCache()",
      );
    } catch {
      return false;
    }
  };
  return {
    "thread_entry.js": read("thread_entry.js"),
    "process_entry.js": read("process_entry.js"),
  };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { rounds: { type: "string", default: "10" }, json: { type: "boolean" } },
  });
  const rounds = Number(values.rounds);
  if (detect().name !== "node") {
    console.log(`node_compile_cache: Node only (this is ${detect().name}); nothing measured`);
    return;
  }
  const rows: Row[] = [];
  const from: CpuSample | undefined = load();

  // Mechanism: fresh threads and processes importing a .ts module. Each variant has a cache
  // directory of its own, filled (or not) by one start of that variant.
  const dirs: string[] = [];
  const cacheEnv = (): Record<string, string | undefined> => {
    const dir = mkdtempSync(join(tmpdir(), "fanout-bench-compile-cache-"));
    dirs.push(dir);
    const env: Record<string, string | undefined> = { ...process.env, NODE_COMPILE_CACHE: dir };
    delete env.NODE_DISABLE_COMPILE_CACHE;
    return env;
  };
  const off = { ...process.env, NODE_DISABLE_COMPILE_CACHE: "1" };
  try {
    for (const mod of MODULES) {
      const args = (cache: boolean, save = true): ProbeArgs => ({
        cacheModule: CACHE_MODULE,
        url: mod.url,
        cache,
        save,
      });
      const [thread, proc, unsaved] = [cacheEnv(), cacheEnv(), cacheEnv()];
      const variants: Variant[] = [
        { name: "thread, no cache", run: () => probeThread(args(false), off) },
        { name: "thread, cache", run: () => probeThread(args(true), thread) },
        { name: "process, no cache", run: () => probeProcess(args(false), off) },
        { name: "process, cache", run: () => probeProcess(args(true), proc) },
        {
          name: "process, cache not saved",
          run: () => probeProcess(args(true, false), unsaved),
        },
      ];
      for (const v of variants) await v.run(); // The first start of all, which fills the cache.
      const samples = await interleave(variants, rounds);
      const group = `mechanism: ${mod.label}`;
      rows.push(row(group, samples, "thread, cache", "thread, no cache"));
      rows.push(row(group, samples, "process, cache", "process, no cache"));
      rows.push(row(group, samples, "process, cache not saved", "process, no cache"));
    }
  } finally {
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  }

  // Through fanout: the worker programs' own use of it, in Node's default directory; and, for
  // comparison, a user's NODE_COMPILE_CACHE, which workers inherit from their first line (so
  // fanout's own worker modules come from the cache too).
  const userDirs: string[] = [];
  const vars = ["NODE_DISABLE_COMPILE_CACHE", "NODE_COMPILE_CACHE"] as const;
  const withEnv = async <T>(
    set: Partial<Record<typeof vars[number], string>>,
    fn: () => Promise<T>,
  ): Promise<T> => {
    const saved = vars.map((name) => [name, process.env[name]] as const);
    for (const name of vars) {
      if (set[name] === undefined) delete process.env[name];
      else process.env[name] = set[name];
    }
    try {
      return await fn();
    } finally {
      for (const [name, value] of saved) {
        if (value === undefined) delete process.env[name];
        else process.env[name] = value;
      }
    }
  };
  try {
    for (const strategy of ["threads", "processes"] as const) {
      const userDir = mkdtempSync(join(tmpdir(), "fanout-bench-compile-cache-"));
      userDirs.push(userDir);
      const variants: Variant[] = [
        {
          name: `${strategy}, no cache`,
          run: () => withEnv({ NODE_DISABLE_COMPILE_CACHE: "1" }, () => fanoutStart(strategy)),
        },
        { name: `${strategy}, cache`, run: () => withEnv({}, () => fanoutStart(strategy)) },
        {
          name: `${strategy}, NODE_COMPILE_CACHE`,
          run: () => withEnv({ NODE_COMPILE_CACHE: userDir }, () => fanoutStart(strategy)),
        },
      ];
      for (const v of variants) await v.run(); // Warms each cache.
      const samples = await interleave(variants, rounds);
      const group = "fanout: start + first .ts task + close";
      rows.push(row(group, samples, `${strategy}, cache`, `${strategy}, no cache`));
      rows.push(row(group, samples, `${strategy}, NODE_COMPILE_CACHE`, `${strategy}, no cache`));
    }
  } finally {
    for (const dir of userDirs) rmSync(dir, { recursive: true, force: true });
  }

  const machine = noise(from, load());
  const report = {
    runtime: `node ${process.version}`,
    rounds,
    machine,
    workerProgramsCallIt: wired(),
    rows,
  };
  if (values.json) {
    console.log(JSON.stringify(report, null, 2));
    return;
  }
  console.log(`node_compile_cache on ${report.runtime}, ${rounds} rounds; ${machine}`);
  const calls = Object.entries(report.workerProgramsCallIt);
  console.log(
    `worker programs calling startCompileCache(): ${
      calls.map(([name, yes]) => `${name} ${yes ? "yes" : "NO"}`).join(", ")
    }`,
  );
  let group = "";
  for (const r of rows) {
    if (r.group !== group) console.log(`\n${(group = r.group)}`);
    const imports = Number.isNaN(r.importMs)
      ? ""
      : `; import ${r.importMs.toFixed(1)} vs ${r.baselineImportMs.toFixed(1)} ms`;
    console.log(
      `  ${r.name.padEnd(26)} ${r.totalMs.toFixed(1).padStart(7)} ms vs ${
        r.baselineTotalMs.toFixed(1).padStart(7)
      } ms (${r.baseline}): ×${r.ratio.toFixed(2)}${imports}\n    ${r.note}`,
    );
  }
}

await main();
